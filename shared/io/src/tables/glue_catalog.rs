//! The compacted tables in the Glue Data Catalog, where Athena and Redshift Spectrum find them:
//! one table per collection under its own name (partition `dt`), and `tracks` over every
//! collection's [`TRACKS_COLUMNS`] (partitions `collection`, `dt`) that points at the same
//! folders, so nothing is stored twice. Each partition points at the version its manifest
//! names; a table's columns in Glue grow with its `_columns.json` (`UpdateTable`), never
//! shrink.
//!
//! Every call is idempotent and compares before it writes: a partition already pointing at
//! its version, or a table already holding every column, costs a read and no write.
//! <https://docs.aws.amazon.com/glue/latest/webapi/API_UpdatePartition.html>,
//! <https://docs.aws.amazon.com/glue/latest/webapi/API_UpdateTable.html>

use std::collections::HashMap;
use std::sync::Mutex;

use aws_sdk_glue::Client;
use aws_sdk_glue::error::DisplayErrorContext;
use aws_sdk_glue::types::{Column, PartitionInput, SerDeInfo, StorageDescriptor, TableInput};
use source_core::compaction::columns::{ColumnType, TRACKS_COLUMNS, TableColumns};

use super::table_store::StoreError;
use super::table_store::StoreFuture;

/// The table over every collection's common columns.
pub const TRACKS_TABLE: &str = "tracks";
/// The collection of events that could not be mapped: a table of its own, not in `tracks`.
pub const REJECTED_COLLECTION: &str = "rejected_events";

/// How Athena and Spectrum read the files: Hive's Parquet classes.
/// <https://docs.aws.amazon.com/athena/latest/ug/parquet-serde.html>
const PARQUET_SERDE: &str = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe";
const PARQUET_INPUT: &str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat";
const PARQUET_OUTPUT: &str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat";

/// A committed version of one partition, to be what readers of the catalog see.
#[derive(Debug, Clone)]
pub struct PublishedVersion<'a> {
    /// The collection (its table's name).
    pub collection: &'a str,
    /// The day (`dt`).
    pub day: &'a str,
    /// The version's folder, a key relative to the lake (`_tables/<schema>/<c>/dt=<d>/v=…`).
    pub folder: &'a str,
    /// The table's folder (`_tables/<schema>/<c>`).
    pub table_folder: &'a str,
    /// The table's columns when the version was written (the version's file has them all).
    pub columns: &'a TableColumns,
}

/// Where the tables are registered for readers.
pub trait TableCatalog: Send + Sync {
    /// Makes `version` the partition readers see: its table created or grown first, then
    /// its partition (and, but for rejected events, its `tracks` partition) pointed at it.
    fn publish<'a>(&'a self, version: &'a PublishedVersion<'a>) -> StoreFuture<'a, ()>;
}

/// The Glue Data Catalog's database of the tables, over the lake bucket.
#[derive(Debug)]
pub struct GlueCatalog {
    glue: Client,
    database: String,
    bucket: String,
    /// Columns each table is known to have in Glue, so a run reads each table once.
    known_columns: Mutex<HashMap<String, usize>>,
}

impl GlueCatalog {
    /// The tables of `database`, over files in `bucket`.
    pub fn new(
        sdk: &aws_types::SdkConfig,
        database: impl Into<String>,
        bucket: impl Into<String>,
    ) -> Self {
        Self {
            glue: Client::new(sdk),
            database: database.into(),
            bucket: bucket.into(),
            known_columns: Mutex::new(HashMap::new()),
        }
    }

    fn location(&self, folder: &str) -> String {
        format!("s3://{}/{folder}/", self.bucket)
    }

    fn failed(&self, place: &str, err: impl std::error::Error) -> StoreError {
        StoreError::failed(
            format!("glue:{}.{place}", self.database),
            DisplayErrorContext(err),
        )
    }

    /// Creates `table`, or grows its columns to `columns`; nothing when Glue has them all.
    async fn ensure_table(
        &self,
        table: &str,
        columns: &TableColumns,
        keys: &[&str],
        folder: &str,
    ) -> Result<(), StoreError> {
        let wanted = columns.columns().len();
        if self.known(table).is_some_and(|known| known >= wanted) {
            return Ok(());
        }
        let input = self.table_input(table, columns, keys, folder)?;
        let found = self
            .glue
            .get_table()
            .database_name(&self.database)
            .name(table)
            .send()
            .await;
        match found {
            Ok(output) => {
                let held = output
                    .table()
                    .and_then(|t| t.storage_descriptor())
                    .map_or(0, |sd| sd.columns().len());
                if held < wanted {
                    self.glue
                        .update_table()
                        .database_name(&self.database)
                        .table_input(input)
                        .send()
                        .await
                        .map_err(|err| self.failed(table, err))?;
                }
                self.remember(table, held.max(wanted));
            }
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_entity_not_found_exception()) =>
            {
                let created = self
                    .glue
                    .create_table()
                    .database_name(&self.database)
                    .table_input(input)
                    .send()
                    .await;
                match created {
                    Ok(_) => {}
                    // Another run created it first: read it again next time.
                    Err(err)
                        if err
                            .as_service_error()
                            .is_some_and(|e| e.is_already_exists_exception()) =>
                    {
                        return Box::pin(self.ensure_table(table, columns, keys, folder)).await;
                    }
                    Err(err) => return Err(self.failed(table, err)),
                }
                self.remember(table, wanted);
            }
            Err(err) => return Err(self.failed(table, err)),
        }
        Ok(())
    }

    /// Points `table`'s partition `values` at `folder`; nothing when it already does.
    async fn ensure_partition(
        &self,
        table: &str,
        values: &[&str],
        folder: &str,
        columns: &TableColumns,
    ) -> Result<(), StoreError> {
        let location = self.location(folder);
        let place = format!("{table}/{}", values.join("/"));
        let values: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        let input = PartitionInput::builder()
            .set_values(Some(values.clone()))
            .storage_descriptor(self.storage(columns, &location)?)
            .build();
        let found = self
            .glue
            .get_partition()
            .database_name(&self.database)
            .table_name(table)
            .set_partition_values(Some(values.clone()))
            .send()
            .await;
        match found {
            Ok(output) => {
                let current = output
                    .partition()
                    .and_then(|p| p.storage_descriptor())
                    .and_then(|sd| sd.location());
                if current == Some(location.as_str()) {
                    return Ok(());
                }
                self.glue
                    .update_partition()
                    .database_name(&self.database)
                    .table_name(table)
                    .set_partition_value_list(Some(values))
                    .partition_input(input)
                    .send()
                    .await
                    .map_err(|err| self.failed(&place, err))?;
            }
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_entity_not_found_exception()) =>
            {
                self.glue
                    .create_partition()
                    .database_name(&self.database)
                    .table_name(table)
                    .partition_input(input)
                    .send()
                    .await
                    .map_err(|err| self.failed(&place, err))?;
            }
            Err(err) => return Err(self.failed(&place, err)),
        }
        Ok(())
    }

    fn known(&self, table: &str) -> Option<usize> {
        self.known_columns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(table)
            .copied()
    }

    fn remember(&self, table: &str, columns: usize) {
        self.known_columns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(table.to_owned(), columns);
    }

    fn storage(
        &self,
        columns: &TableColumns,
        location: &str,
    ) -> Result<StorageDescriptor, StoreError> {
        let columns = columns
            .columns()
            .iter()
            .map(|(name, ty)| glue_column(name, *ty))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| self.failed(location, err))?;
        Ok(StorageDescriptor::builder()
            .set_columns(Some(columns))
            .location(location)
            .input_format(PARQUET_INPUT)
            .output_format(PARQUET_OUTPUT)
            .serde_info(
                SerDeInfo::builder()
                    .serialization_library(PARQUET_SERDE)
                    .build(),
            )
            .build())
    }

    fn table_input(
        &self,
        table: &str,
        columns: &TableColumns,
        keys: &[&str],
        folder: &str,
    ) -> Result<TableInput, StoreError> {
        let keys = keys
            .iter()
            .map(|key| glue_column(key, ColumnType::Text))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| self.failed(table, err))?;
        TableInput::builder()
            .name(table)
            .description(description(table))
            .table_type("EXTERNAL_TABLE")
            .parameters("classification", "parquet")
            .parameters("EXTERNAL", "TRUE")
            .set_partition_keys(Some(keys))
            .storage_descriptor(self.storage(columns, &self.location(folder))?)
            .build()
            .map_err(|err| self.failed(table, err))
    }
}

impl TableCatalog for GlueCatalog {
    fn publish<'a>(&'a self, version: &'a PublishedVersion<'a>) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.ensure_table(
                version.collection,
                version.columns,
                &["dt"],
                version.table_folder,
            )
            .await?;
            self.ensure_partition(
                version.collection,
                &[version.day],
                version.folder,
                version.columns,
            )
            .await?;
            if version.collection == REJECTED_COLLECTION {
                return Ok(());
            }
            let tracks = TableColumns::default();
            // The tables' common folder: `_tables/<schema>`.
            let schema_folder = version
                .table_folder
                .rsplit_once('/')
                .map_or(version.table_folder, |(parent, _)| parent);
            self.ensure_table(TRACKS_TABLE, &tracks, &["collection", "dt"], schema_folder)
                .await?;
            self.ensure_partition(
                TRACKS_TABLE,
                &[version.collection, version.day],
                version.folder,
                &tracks,
            )
            .await
        })
    }
}

fn description(table: &str) -> String {
    if table == TRACKS_TABLE {
        format!(
            "Every collection's common columns ({}), one row per event; partitions point at the collections' own files.",
            TRACKS_COLUMNS.join(", ")
        )
    } else {
        format!("{table}: each event once, compacted from the raw landing; columns only grow.")
    }
}

/// A Glue column of `ty`: Hive's names for the Parquet types the files hold.
fn glue_column(name: &str, ty: ColumnType) -> Result<Column, aws_sdk_glue::error::BuildError> {
    let hive = match ty {
        ColumnType::Text => "string",
        ColumnType::Boolean => "boolean",
        ColumnType::Timestamp => "timestamp",
    };
    Column::builder().name(name).r#type(hive).build()
}
