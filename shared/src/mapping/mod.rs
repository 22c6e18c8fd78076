//! Mapping Klaviyo webhook events to Segment track events (pure).

pub mod email_properties;
pub mod message_id;
pub mod outcome;
pub mod segment_call;
pub mod webhook_event;

pub use outcome::{IntakeSource, Mapped, Rejection};
pub use webhook_event::{Receipt, map_webhook};
