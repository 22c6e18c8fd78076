//! `klaviyo-source compact`: a lake's raw landing into its tables (see
//! `source_io::tables::compaction_run`), in the local lake or, with `--bucket`, the bucket.

use source_io::aws_clients::load_sdk_config;
use source_io::config::Config;
use source_io::s3_objects::S3Objects;
use source_io::settings;
use source_io::tables::compaction_run::{Compaction, FIREHOSE_ERRORS_PREFIX};
use source_io::tables::glue_catalog::GlueCatalog;
use source_io::tables::local_store::LocalStore;
use source_io::tables::s3_store::S3Store;
use source_io::tables::table_store::TableStore;

use crate::lake_dir::lake_dir;
use crate::setting_flags::{self, SettingFlags};

/// Flags of `compact`.
#[derive(Debug, Clone, clap::Args)]
pub struct CompactArgs {
    /// The lake and its schema.
    #[command(flatten)]
    pub settings: SettingFlags<setting_flags::Compact>,
    /// Compact the lake in this S3 bucket (the deployed lake) instead of a directory.
    #[arg(long, conflicts_with = settings::LAKE_DIR.var)]
    pub bucket: Option<String>,
}

/// Compacts the lake; prints what the run did as one JSON line; the exit status.
pub async fn compact(
    config: &Config,
    args: &CompactArgs,
) -> Result<u8, Box<dyn std::error::Error + Send + Sync>> {
    let mut catalog = None;
    let store: Box<dyn TableStore> = match &args.bucket {
        Some(bucket) => {
            let sdk = load_sdk_config().await?;
            catalog = config
                .glue_database
                .as_ref()
                .map(|database| GlueCatalog::new(&sdk, database, bucket.clone()));
            Box::new(S3Store::new(
                S3Objects::new(&sdk),
                bucket.clone(),
                format!("pid-{}", std::process::id()),
            ))
        }
        None if config.glue_database.is_some() => {
            return Err("--glue-database registers the tables of a bucket: give --bucket".into());
        }
        None => Box::new(LocalStore::new(lake_dir(config))),
    };
    let mut compaction = Compaction::new(store.as_ref(), config.schema.clone())
        .with_dead_letter(config.dead_letter_prefix.clone())
        .with_error_records(FIREHOSE_ERRORS_PREFIX)
        .with_raw_retention(config.raw_retention_days, chrono::Utc::now().date_naive());
    if let Some(catalog) = &catalog {
        compaction = compaction.with_catalog(catalog);
    }
    let report = compaction.run().await?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(0)
}
