//! The tables that hold each event once: Parquet files written from the raw landing by the
//! compaction step (the winner rule and columns are the core's `source_core::compaction`).

pub mod local_compaction;
pub mod parquet_file;
