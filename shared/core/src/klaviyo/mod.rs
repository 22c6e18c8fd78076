//! Klaviyo: system webhooks (authentication, envelope decoding, topic names) and the
//! Events and Metrics APIs the pull reads.

pub mod accounts_page;
pub mod attributions;
pub mod events_page;
pub mod events_query;
pub mod json_api;
pub mod metric_aggregates;
pub mod metric_alias;
pub mod metrics_page;
pub mod query_string;
pub mod signature;
pub mod topic;
pub mod webhook;
pub mod webhook_decode;
#[cfg(fuzzing)]
pub mod webhook_one_pass;
#[cfg(not(fuzzing))]
mod webhook_one_pass;
