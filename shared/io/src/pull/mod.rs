//! The pull from Klaviyo's Events API: the third way in. It reads pages, maps them with the
//! webhook path's mapping, and stores them through the same rows-and-delivery step.

pub mod events_api;
pub mod events_source;
pub mod id_ledgers;
pub mod metric_selection;
pub mod run;
pub mod s3_state;
pub mod state_store;
