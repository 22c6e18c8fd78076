//! The pull from Klaviyo's Events API, the pure part: which windows to read, where each
//! stream stands (the state a run saves after every stored page), and the request budget.
//! The edge (HTTP, the state store, the sink) lives in the function crate.

pub mod id_ledger;
pub mod late_events;
pub mod page_position;
pub mod rate_budget;
pub mod state;
pub mod windows;
