//! Mapping Klaviyo webhook events to Segment track events (pure).

pub mod email_properties;
pub mod message_id;
pub mod segment_call;
pub mod webhook_event;

pub use webhook_event::{Mapped, Receipt, Rejection, map_webhook};
