//! Profile resolution with I/O: the cache and time budget around Klaviyo's Profiles API (the
//! identity rules themselves are the core's `source_core::identity`).

pub mod resolver;
