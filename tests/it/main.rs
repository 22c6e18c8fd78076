//! Integration tests: the real router, in process, fed with fixture files and real API
//! Gateway event shapes.

// This whole binary is test code: helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bad_inputs;
mod firehose_partitioning;
mod lambda_events;
mod pull_late_events;
mod pull_run;
mod request_deadline;
mod segment_api;
mod support;
mod webhook_errors;
mod webhook_fixtures;
