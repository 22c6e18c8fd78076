//! The tables that hold each event once: Parquet files written from the raw landing by the
//! compaction step (the winner rule and columns are the core's `source_core::compaction`),
//! in a local lake or the lake bucket.

pub mod compaction_run;
pub mod glue_catalog;
pub mod local_store;
pub mod parquet_file;
pub mod s3_store;
pub mod table_store;
