//! Klaviyo system webhooks: authentication, envelope decoding and topic names.

pub mod signature;
pub mod topic;
pub mod webhook;
