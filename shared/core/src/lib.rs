//! The pure core of the Klaviyo Source.
//!
//! The request path is a pipeline of small, separately testable steps:
//!
//! ```text
//! verify (klaviyo::signature) ─► decode (klaviyo::webhook) ─► map (mapping)
//!        ─► flatten (warehouse::row) ─► deliver (sink)
//! ```
//!
//! Everything up to the sink is pure: the receive time is passed in, nothing reads a clock,
//! draws a random number or touches the network. AWS appears only in the sink adapters and
//! in the Lambda entry point.

pub mod collection;
pub mod compaction;
pub mod decoded_object;
pub mod event_time;
pub mod firehose;
pub mod identity;
pub mod json_depth;
pub mod klaviyo;
pub mod mapping;
pub mod pull;
pub mod raw_object;
pub mod retry;
pub mod secret;
pub mod segment;
pub mod time_format;
pub mod warehouse;
