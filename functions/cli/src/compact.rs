//! `klaviyo-source compact`: the local lake's raw landing into its tables (see
//! `source_io::tables::local_compaction`).

use source_io::config::Config;
use source_io::tables::local_compaction::LocalTables;

use crate::lake_dir::lake_dir;
use crate::setting_flags::{self, SettingFlags};

/// Flags of `compact`.
#[derive(Debug, Clone, clap::Args)]
pub struct CompactArgs {
    /// The lake and its schema.
    #[command(flatten)]
    pub settings: SettingFlags<setting_flags::Compact>,
}

/// Compacts the lake; prints what the run did as one JSON line; the exit status.
pub async fn compact(config: &Config) -> Result<u8, Box<dyn std::error::Error + Send + Sync>> {
    let tables = LocalTables::new(lake_dir(config), config.schema.clone());
    let report = tokio::task::spawn_blocking(move || tables.compact()).await??;
    println!("{}", serde_json::to_string(&report)?);
    Ok(0)
}
