//! The pull's commands: `pull`, `backfill` (the pull run of `source_io::pull` against the
//! local lake or the bucket) and `reconcile` (Klaviyo's counts against the stored rows).

pub mod command;
pub mod reconcile;
