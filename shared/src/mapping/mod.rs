//! Mapping Klaviyo events (pushed or pulled) and Segment calls to Segment track events (pure).

pub mod email_properties;
pub mod message_id;
pub mod outcome;
pub mod pulled_event;
pub mod segment_call;
pub mod webhook_event;

pub use outcome::{IntakeSource, Mapped, Rejection};
pub use webhook_event::{KlaviyoDelivery, Receipt, map_klaviyo_events, map_webhook};
