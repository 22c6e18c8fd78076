//! Segment's event model.

pub mod track;
