//! Mapping Klaviyo events (pushed or pulled) and Segment calls to Segment track events (pure).

pub mod email_properties;
pub mod klaviyo_event;
pub mod message_id;
pub mod outcome;
pub mod pulled_event;
pub mod segment_call;

pub use klaviyo_event::{KlaviyoDelivery, Receipt, map_klaviyo_events, map_webhook};
pub use outcome::{IntakeSource, Mapped, Rejection};
