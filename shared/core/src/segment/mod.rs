//! Segment's event model and HTTP Tracking API shapes.

pub mod klaviyo_context;
pub mod partition_cap;
pub mod track;
pub mod tracking_api;
pub mod write_keys;
