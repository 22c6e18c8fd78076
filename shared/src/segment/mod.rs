//! Segment's event model and HTTP Tracking API shapes.

pub mod track;
pub mod tracking_api;
pub mod write_keys;
