//! One compaction run over a lake (a local directory or the bucket, see [`TableStore`]): the
//! raw landing under `<schema>/collection=*/dt=*/` into one Parquet table per collection under
//! `_tables/<schema>/<collection>/`, each day a partition that holds each event once.
//!
//! A partition `dt=<day>/` holds versions `v=<n>-<run>/` (`part.parquet`, and `index.ndjson.gz`
//! with the rank of every id it holds) and `manifest.json`, which names the current version
//! and every raw object already consumed. A version is written whole before the manifest
//! names it, and the manifest is replaced with a conditional write (only if still the
//! version this run read), so a reader that follows the manifest never sees a half-written
//! day or two versions of one, and a run that lost the race writes nothing over the winner.
//! A replaced version stays for [`SUPERSEDED_GRACE`] for readers that planned on it, then
//! goes; a folder no manifest named (a killed run's) goes at the next commit. A table's columns (`_columns.json`) only grow and are saved before any file that
//! uses them. The store's lock keeps two runs apart.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};

use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use flate2::Compression;
use flate2::bufread::MultiGzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use source_core::compaction::columns::{
    CAST_ERRORS, Cell, EXTRA, TableColumns, TableRow, cell_of, table_row_growing,
};
use source_core::compaction::merge::PartitionMerge;
use source_core::compaction::winner::CopyRank;
use source_core::warehouse::row::PartitionKey;

use super::glue_catalog::{PublishedVersion, TableCatalog};
use super::parquet_file::{TableFileError, read_table_file, write_table_file};
use super::table_store::{Precondition, StoreError, TableStore};

/// Where the stack's delivery stream writes the records it could not deliver, by schema
/// (`ErrorOutputPrefix` in template.yaml, up to the schema; a test holds them equal).
pub const FIREHOSE_ERRORS_PREFIX: &str = "firehose-errors/";
/// The tables' folder beside the raw landing's schema folder.
pub const TABLES_DIR: &str = "_tables";
/// A version's id index. Its name starts with `_`, which Athena and Redshift Spectrum take
/// for a hidden file, so readers of the version's folder read only its Parquet file.
pub const INDEX_FILE: &str = "_index.ndjson.gz";
/// The most room a raw object's gzip trailer may reserve before it is inflated.
const GUNZIP_HINT_CAP: usize = 256 << 20;
/// Room made beyond a gzip trailer's size hint, and the least room first made.
const GUNZIP_MIN_ROOM: usize = 64 << 10;
/// A version's rows.
pub const PART_FILE: &str = "part.parquet";
/// Where a run marks the partitions whose new version the catalog may not show yet: set
/// before the manifest's commit, cleared once the catalog points at the version, so a run
/// killed in between is finished by the next one before it deletes any old version.
const CATALOG_PENDING_DIR: &str = "_tables/.catalog-pending";

/// Why a compaction could not finish; what it committed before stays committed.
#[derive(Debug, thiserror::Error)]
pub enum CompactionError {
    /// The store failed, or another run holds its lock.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A manifest, index or columns file, or a raw object, is not what it should be.
    #[error("{key} is not readable: {detail}")]
    Corrupt {
        /// The object.
        key: String,
        /// What is wrong.
        detail: String,
    },
    /// A table file could not be written or read.
    #[error(transparent)]
    TableFile(#[from] TableFileError),
}

fn corrupt(key: &str, detail: impl std::fmt::Display) -> CompactionError {
    CompactionError::Corrupt {
        key: key.to_owned(),
        detail: detail.to_string(),
    }
}

/// A partition's manifest: the committed version and the raw objects it consumed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionManifest {
    /// The current version (0: none yet).
    pub version: u64,
    /// Its folder in the partition, `v=<version>-<run>`: each run writes a version into a
    /// folder of its own, so a run that loses the race for the manifest never overwrites the
    /// files the winner committed.
    #[serde(default)]
    pub dir: String,
    /// Versions replaced less than [`SUPERSEDED_GRACE`] ago, kept for the readers that
    /// planned on them.
    #[serde(default)]
    pub superseded: Vec<Superseded>,
    /// Rows in the current version.
    pub rows: u64,
    /// Names of the raw objects consumed, in this partition's raw folder.
    pub consumed: BTreeSet<String>,
}

/// How long a replaced version stays for readers that planned on it: longer than an Athena
/// query may run (30 minutes by default).
pub const SUPERSEDED_GRACE: TimeDelta = TimeDelta::hours(1);

/// A version a newer one replaced, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Superseded {
    /// Its folder in the partition.
    pub dir: String,
    /// When the manifest stopped naming it.
    pub at: DateTime<Utc>,
}

/// The superseded versions a commit at `now` keeps listed (`kept`) and the ones whose grace
/// is over (`expired`, to delete once the commit is done).
fn sort_superseded(
    listed: Vec<Superseded>,
    now: DateTime<Utc>,
) -> (Vec<Superseded>, Vec<Superseded>) {
    listed
        .into_iter()
        .partition(|old| now - old.at < SUPERSEDED_GRACE)
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CompactionReport {
    /// Raw objects read for the first time.
    pub objects_read: u64,
    /// Partitions given a new version.
    pub versions_written: u64,
    /// Rows in those new versions.
    pub rows_written: u64,
    /// Ids a table did not have before.
    pub new_ids: u64,
    /// Raw copies the tables did not take (they lost to a kept row or a better copy).
    pub duplicates_dropped: u64,
    /// Raw lines that are not rows (kept in the landing, counted here).
    pub unreadable_lines: u64,
    /// Partitions another writer committed first: left as that writer made them; the next
    /// run reads what it did not consume.
    pub lost_races: u64,
    /// Dead-letter objects whose rows are all in committed tables, and so deleted.
    pub dead_letter_objects_compacted: u64,
    /// Firehose error objects whose rows are all in committed tables, and so deleted.
    pub error_objects_compacted: u64,
    /// Raw landing objects of days past the retention that the tables hold, deleted.
    pub raw_objects_expired: u64,
    /// Firehose error objects found under the error prefix (whether Firehose logged them
    /// or not): each means records took the error path.
    pub error_objects_found: u64,
    /// Versions an earlier, stopped run committed that this run registered in the catalog.
    pub publications_finished: u64,
    /// New rows with a value that did not fit its declared column (kept in `_cast_errors`).
    pub rows_with_cast_errors: u64,
    /// New rows with properties past the column cap (kept in `_extra`).
    pub rows_past_column_cap: u64,
}

/// Compaction of one schema's lake in `store`.
pub struct Compaction<'a> {
    store: &'a dyn TableStore,
    schema: String,
    /// This run's mark on the versions it writes.
    run: String,
    /// Where rows Firehose would not take were spilled (`dead-letter/`), if the lake has
    /// such a store: they reach the tables too, and their objects are deleted once every
    /// partition they fed is committed.
    dead_letter_prefix: Option<String>,
    /// Where Firehose writes the records it could not deliver (`firehose-errors/`), if the
    /// lake has them: their rows reach the tables the same way.
    error_prefix: Option<String>,
    /// Where committed versions are registered for readers (Glue), if anywhere.
    catalog: Option<&'a dyn TableCatalog>,
    /// Raw objects of days before this one are deleted once their partition's manifest has
    /// consumed them (the tables hold their rows), if set.
    raw_kept_from: Option<String>,
}

/// What a partition's new rows come from.
enum Source {
    /// A raw landing object of the partition, by name.
    Raw(String),
    /// The partition's lines of a dead-letter object.
    Spilled {
        /// How the partition's manifest records the object as consumed.
        consumed: String,
        /// The object's key.
        key: String,
        /// Its lines that belong to this partition.
        lines: Vec<Vec<u8>>,
    },
}

impl Source {
    /// How the partition's manifest records it as consumed.
    fn consumed_name(&self) -> String {
        match self {
            Self::Raw(name) => name.clone(),
            Self::Spilled { consumed, .. } => consumed.clone(),
        }
    }
}

/// How a partition's compaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PartitionOutcome {
    /// Everything offered is in the committed manifest (now or before).
    Committed,
    /// Another writer committed first; what this run read is not recorded.
    LostRace,
}

/// Rows that did not reach the raw landing, and where they wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SpillKind {
    /// Rows the endpoint spilled when Firehose would not take them: gzip NDJSON rows.
    DeadLetter,
    /// Records Firehose could not partition or deliver: gzip NDJSON of its error documents,
    /// each with the record's bytes in base64 `rawData`.
    /// <https://docs.aws.amazon.com/firehose/latest/dev/dynamic-partitioning-error-handling.html>
    ErrorRecords,
}

impl SpillKind {
    /// How a manifest names a consumed object of this kind.
    fn label(self) -> &'static str {
        match self {
            Self::DeadLetter => "dead-letter",
            Self::ErrorRecords => "firehose-error",
        }
    }

    /// The rows of an object of this kind (gzip, or plain text when it does not start with
    /// gzip's magic bytes); `Err` for a part that can never be one, or for the whole object
    /// when it cannot be read (it then stays where it is, counted).
    fn rows(self, key: &str, bytes: &[u8]) -> Result<Vec<Result<Vec<u8>, ()>>, CompactionError> {
        let lines = if bytes.starts_with(&[0x1f, 0x8b]) {
            gzip_lines(key, bytes)?
        } else {
            lines_of(bytes).map(<[u8]>::to_vec).collect()
        };
        Ok(match self {
            Self::DeadLetter => lines.into_iter().map(Ok).collect(),
            Self::ErrorRecords => lines
                .iter()
                .flat_map(|line| match error_record_rows(line) {
                    Some(rows) => rows.into_iter().map(Ok).collect(),
                    None => vec![Err(())],
                })
                .collect(),
        })
    }
}

/// A Firehose error document's `rawData`.
#[derive(Deserialize)]
struct ErrorRecordWire {
    #[serde(rename = "rawData")]
    raw_data: String,
}

/// The rows one Firehose error document carries: its record's bytes (base64 `rawData`),
/// which hold one or more JSON objects one after another (the stream de-aggregates records
/// by JSON), each as its exact bytes. `None` when the document or its record is not that.
fn error_record_rows(document: &[u8]) -> Option<Vec<Vec<u8>>> {
    use base64::Engine;
    let wire: ErrorRecordWire = serde_json::from_slice(document).ok()?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(wire.raw_data)
        .ok()?;
    let mut rows = Vec::new();
    let mut objects =
        serde_json::Deserializer::from_slice(&raw).into_iter::<serde::de::IgnoredAny>();
    let mut start = 0;
    while let Some(next) = objects.next() {
        next.ok()?;
        let end = objects.byte_offset();
        let row = raw[start..end].trim_ascii();
        if !row.is_empty() {
            rows.push(row.to_vec());
        }
        start = end;
    }
    Some(rows)
}

/// The members of a spilled row that place it ([`PartitionKey::of_row`]).
#[derive(Deserialize)]
struct PlaceWire {
    event: String,
    timestamp: String,
}

impl<'a> Compaction<'a> {
    /// Compaction of `schema`'s raw landing in `store`.
    pub fn new(store: &'a dyn TableStore, schema: impl Into<String>) -> Self {
        Self {
            store,
            schema: schema.into(),
            run: format!("{:016x}", fastrand::u64(..)),
            dead_letter_prefix: None,
            error_prefix: None,
            catalog: None,
            raw_kept_from: None,
        }
    }

    /// Deletes the raw objects of days more than `days` before today once the tables hold
    /// their rows (0: keeps every raw object). Only objects a committed manifest lists as
    /// consumed go, so a stalled compaction deletes nothing it has not compacted.
    pub fn with_raw_retention(mut self, days: u32, today: chrono::NaiveDate) -> Self {
        self.raw_kept_from = (days > 0).then(|| {
            (today - TimeDelta::days(i64::from(days)))
                .format("%Y-%m-%d")
                .to_string()
        });
        self
    }

    /// Also points `catalog`'s tables at each version this run commits.
    pub fn with_catalog(mut self, catalog: &'a dyn TableCatalog) -> Self {
        self.catalog = Some(catalog);
        self
    }

    /// Also compacts the rows spilled under `prefix` (`dead-letter/`).
    pub fn with_dead_letter(mut self, prefix: impl Into<String>) -> Self {
        self.dead_letter_prefix = Some(prefix.into());
        self
    }

    /// Also compacts the rows in Firehose's error records under `prefix` (the stream's
    /// `ErrorOutputPrefix` up to the schema: `firehose-errors/`).
    pub fn with_error_records(mut self, prefix: impl Into<String>) -> Self {
        self.error_prefix = Some(prefix.into());
        self
    }

    /// Compacts every raw object not yet consumed, under the store's lock.
    pub async fn run(&self) -> Result<CompactionReport, CompactionError> {
        self.store.lock().await?;
        let result = self.run_locked().await;
        let released = self.store.unlock().await;
        let report = result?;
        released?;
        Ok(report)
    }

    async fn run_locked(&self) -> Result<CompactionReport, CompactionError> {
        let mut report = CompactionReport::default();
        self.finish_pending_publications(&mut report).await?;
        let raw_prefix = format!("{}/", self.schema);
        let mut partitions: BTreeMap<(String, String), Vec<Source>> = BTreeMap::new();
        for key in self.store.list(&raw_prefix).await? {
            // <schema>/collection=<c>/dt=<d>/<name>.gz
            let mut parts = key[raw_prefix.len()..].split('/');
            let (Some(collection), Some(day), Some(name), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let (Some(collection), Some(day)) = (
                collection.strip_prefix("collection="),
                day.strip_prefix("dt="),
            ) else {
                continue;
            };
            if name.ends_with(".gz") && !name.starts_with('.') {
                partitions
                    .entry((collection.to_owned(), day.to_owned()))
                    .or_default()
                    .push(Source::Raw(name.to_owned()));
            }
        }
        // Spilled objects still waiting, and how many partitions each feeds.
        let mut spilled: BTreeMap<String, (SpillKind, usize)> = BTreeMap::new();
        let kinds = [
            (SpillKind::DeadLetter, &self.dead_letter_prefix),
            (SpillKind::ErrorRecords, &self.error_prefix),
        ];
        for (kind, prefix) in kinds {
            let Some(prefix) = prefix else { continue };
            for key in self
                .store
                .list(&format!("{prefix}{}/", self.schema))
                .await?
            {
                if kind == SpillKind::ErrorRecords {
                    report.error_objects_found += 1;
                }
                let bytes = self.get_required(&key).await?;
                let mut lines_by_partition: BTreeMap<(String, String), Vec<Vec<u8>>> =
                    BTreeMap::new();
                let mut placeable = true;
                let rows = kind.rows(&key, &bytes).unwrap_or_else(|err| {
                    // One unreadable object must not stop the run: it stays, counted.
                    tracing::warn!(object = %key, error = %err, "a spilled object cannot be read; it stays");
                    vec![Err(())]
                });
                for line in rows {
                    let partition = line.ok().and_then(|line| {
                        let place = serde_json::from_slice::<PlaceWire>(&line).ok()?;
                        let partition = PartitionKey::of_row(&place.event, &place.timestamp)?;
                        Some(((partition.collection, partition.dt), line))
                    });
                    match partition {
                        Some((partition, line)) => {
                            lines_by_partition.entry(partition).or_default().push(line);
                        }
                        None => {
                            // A line that can never be a row: the object stays, counted.
                            report.unreadable_lines += 1;
                            placeable = false;
                        }
                    }
                }
                if placeable {
                    spilled.insert(key.clone(), (kind, lines_by_partition.len()));
                }
                for (partition, lines) in lines_by_partition {
                    partitions
                        .entry(partition)
                        .or_default()
                        .push(Source::Spilled {
                            consumed: format!("{}:{key}", kind.label()),
                            key: key.clone(),
                            lines,
                        });
                }
            }
        }
        for ((collection, day), sources) in partitions {
            let fed: Vec<String> = sources
                .iter()
                .filter_map(|source| match source {
                    Source::Spilled { key, .. } => Some(key.clone()),
                    Source::Raw(_) => None,
                })
                .collect();
            let expiring: Vec<String> = match &self.raw_kept_from {
                Some(kept_from) if day.as_str() < kept_from.as_str() => sources
                    .iter()
                    .filter_map(|source| match source {
                        Source::Raw(name) => Some(format!(
                            "{}/collection={collection}/dt={day}/{name}",
                            self.schema
                        )),
                        Source::Spilled { .. } => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let outcome = self
                .compact_partition(&collection, &day, sources, &mut report)
                .await?;
            if outcome == PartitionOutcome::Committed {
                // Every raw object offered is in the committed manifest: past the retention,
                // the landing's copy goes.
                report.raw_objects_expired += expiring.len() as u64;
                self.store.delete(&expiring).await?;
                for key in fed {
                    if let Some((_, waiting)) = spilled.get_mut(&key) {
                        *waiting -= 1;
                    }
                }
            }
        }
        // A spilled object every partition of which is committed is in the tables: it goes.
        let done: Vec<String> = spilled
            .into_iter()
            .filter(|(_, (_, waiting))| *waiting == 0)
            .map(|(key, (kind, _))| {
                match kind {
                    SpillKind::DeadLetter => report.dead_letter_objects_compacted += 1,
                    SpillKind::ErrorRecords => report.error_objects_compacted += 1,
                }
                key
            })
            .collect();
        self.store.delete(&done).await?;
        Ok(report)
    }

    fn table_key(&self, collection: &str) -> String {
        format!("{TABLES_DIR}/{}/{collection}", self.schema)
    }

    fn pending_key(&self, collection: &str, day: &str) -> String {
        format!(
            "{CATALOG_PENDING_DIR}/{}/{collection}/dt={day}",
            self.schema
        )
    }

    /// Points the catalog at the versions an earlier run committed but was stopped before
    /// it could register.
    async fn finish_pending_publications(
        &self,
        report: &mut CompactionReport,
    ) -> Result<(), CompactionError> {
        let Some(_) = self.catalog else {
            return Ok(());
        };
        let prefix = format!("{CATALOG_PENDING_DIR}/{}/", self.schema);
        for key in self.store.list(&prefix).await? {
            let mut parts = key[prefix.len()..].split('/');
            let (Some(collection), Some(day), None) = (
                parts.next(),
                parts.next().and_then(|part| part.strip_prefix("dt=")),
                parts.next(),
            ) else {
                continue;
            };
            let manifest_key = format!("{}/dt={day}/manifest.json", self.table_key(collection));
            if let Some(stored) = self.store.get(&manifest_key).await? {
                let manifest: PartitionManifest = serde_json::from_slice(&stored.bytes)
                    .map_err(|err| corrupt(&manifest_key, err))?;
                if manifest.version > 0 {
                    let columns = self.read_columns(collection).await?;
                    self.publish(collection, day, &manifest.dir, &columns)
                        .await?;
                    report.publications_finished += 1;
                }
            }
            self.store.delete(std::slice::from_ref(&key)).await?;
        }
        Ok(())
    }

    /// Registers `collection`'s version `dir` of `day` in the catalog, if there is one.
    async fn publish(
        &self,
        collection: &str,
        day: &str,
        dir: &str,
        columns: &TableColumns,
    ) -> Result<(), CompactionError> {
        let Some(catalog) = self.catalog else {
            return Ok(());
        };
        let table_folder = self.table_key(collection);
        let folder = format!("{table_folder}/dt={day}/{dir}");
        catalog
            .publish(&PublishedVersion {
                collection,
                day,
                folder: &folder,
                table_folder: &table_folder,
                columns,
            })
            .await?;
        Ok(())
    }

    /// The table's columns (`_columns.json`), or a new table's.
    async fn read_columns(&self, collection: &str) -> Result<TableColumns, CompactionError> {
        let columns_key = format!("{}/_columns.json", self.table_key(collection));
        Ok(match self.store.get(&columns_key).await? {
            Some(stored) => {
                serde_json::from_slice(&stored.bytes).map_err(|err| corrupt(&columns_key, err))?
            }
            None => TableColumns::default(),
        })
    }

    async fn compact_partition(
        &self,
        collection: &str,
        day: &str,
        sources: Vec<Source>,
        report: &mut CompactionReport,
    ) -> Result<PartitionOutcome, CompactionError> {
        let partition = format!("{}/dt={day}", self.table_key(collection));
        let manifest_key = format!("{partition}/manifest.json");
        let (manifest, manifest_tag) = match self.store.get(&manifest_key).await? {
            Some(stored) => (
                serde_json::from_slice::<PartitionManifest>(&stored.bytes)
                    .map_err(|err| corrupt(&manifest_key, err))?,
                Precondition::Matches(stored.tag),
            ),
            None => (PartitionManifest::default(), Precondition::Absent),
        };
        let new_sources: Vec<Source> = sources
            .into_iter()
            .filter(|source| !manifest.consumed.contains(&source.consumed_name()))
            .collect();
        if new_sources.is_empty() {
            return Ok(PartitionOutcome::Committed);
        }
        let committed = if manifest.version > 0 {
            let key = format!("{partition}/{}/{INDEX_FILE}", manifest.dir);
            read_index(&key, self.get_required(&key).await?)?
        } else {
            Vec::new()
        };
        let mut merge = PartitionMerge::over(committed);
        let columns_key = format!("{}/_columns.json", self.table_key(collection));
        let mut columns = self.read_columns(collection).await?;
        // A line the next version takes becomes its row straight from the members its rank
        // was read from (one parse), its new names appended to the columns first.
        let mut grown = false;
        let (mut objects_read, mut unreadable_lines) = (0, 0);
        let mut offer = |line: &[u8]| {
            let taken = merge.offer(line, |members| {
                let (row, grew) = table_row_growing(members, &mut columns);
                grown |= grew;
                row
            });
            if taken.is_err() {
                unreadable_lines += 1;
            }
        };
        // One buffer for every object's text (`gunzip_into`).
        let mut text = Vec::new();
        for source in &new_sources {
            match source {
                Source::Raw(name) => {
                    let key = format!("{}/collection={collection}/dt={day}/{name}", self.schema);
                    // Offered in place from the inflated text: a copy that is dropped costs
                    // no line of its own.
                    let bytes = self.get_required(&key).await?;
                    lines_of(gunzip_into(&key, &bytes, &mut text)?).for_each(&mut offer);
                    objects_read += 1;
                }
                Source::Spilled { lines, .. } => {
                    lines.iter().map(Vec::as_slice).for_each(&mut offer);
                }
            }
        }
        report.objects_read += objects_read;
        report.unreadable_lines += unreadable_lines;
        let mut next = manifest.clone();
        next.consumed
            .extend(new_sources.iter().map(Source::consumed_name));
        let duplicates = merge.duplicates();
        if !merge.changed() {
            // Only copies of rows already kept: the day keeps its version.
            if self
                .commit(&manifest_key, &next, manifest_tag, report)
                .await?
            {
                report.duplicates_dropped += duplicates;
                return Ok(PartitionOutcome::Committed);
            }
            return Ok(PartitionOutcome::LostRace);
        }
        let (ranks, taken) = merge.finish();
        let row_id = |row: &TableRow, columns: &TableColumns| match cell_of(row, columns, "id") {
            Cell::Text(id) => Some(id.into_owned()),
            _ => None,
        };
        let mut rows: BTreeMap<String, TableRow> = if manifest.version > 0 {
            let key = format!("{partition}/{}/{PART_FILE}", manifest.dir);
            read_table_file(self.get_required(&key).await?, &columns)?
                .into_iter()
                .filter_map(|row| Some((row_id(&row, &columns)?, row)))
                .collect()
        } else {
            BTreeMap::new()
        };
        let new_ids = taken
            .iter()
            .filter(|(id, _)| !rows.contains_key(id))
            .count() as u64;
        let (mut cast_error_rows, mut capped_rows) = (0, 0);
        for (id, row) in taken {
            cast_error_rows += u64::from(cell_of(&row, &columns, CAST_ERRORS) != Cell::Null);
            capped_rows += u64::from(cell_of(&row, &columns, EXTRA) != Cell::Null);
            // The merge took the row under its text `id`, which the row holds as it is.
            rows.insert(id, row);
        }
        if grown {
            // Saved before any file that has them: a file's columns are always a prefix of
            // the table's.
            let bytes =
                serde_json::to_vec_pretty(&columns).map_err(|err| corrupt(&columns_key, err))?;
            self.store
                .put(&columns_key, bytes, Precondition::None)
                .await?;
        }
        let rows: Vec<TableRow> = rows.into_values().collect();
        let version = manifest.version + 1;
        let dir = format!("v={version}-{}", self.run);
        let version_dir = format!("{partition}/{dir}");
        // A version left half-written by a killed run is written again whole.
        self.store
            .put(
                &format!("{version_dir}/{PART_FILE}"),
                write_table_file(&columns, &rows)?,
                Precondition::None,
            )
            .await?;
        self.store
            .put(
                &format!("{version_dir}/{INDEX_FILE}"),
                index_bytes(&ranks)?,
                Precondition::None,
            )
            .await?;
        let now = Utc::now();
        let mut superseded = manifest.superseded.clone();
        if manifest.version > 0 {
            superseded.push(Superseded {
                dir: manifest.dir.clone(),
                at: now,
            });
        }
        let (kept, expired) = sort_superseded(superseded, now);
        next.version = version;
        next.dir = dir;
        next.rows = rows.len() as u64;
        next.superseded = kept;
        let pending = self.pending_key(collection, day);
        if self.catalog.is_some() {
            self.store
                .put(&pending, Vec::new(), Precondition::None)
                .await?;
        }
        if !self
            .commit(&manifest_key, &next, manifest_tag, report)
            .await?
        {
            return Ok(PartitionOutcome::LostRace);
        }
        // Readers of the catalog move to the new version before any old one may go.
        if self.catalog.is_some() {
            self.publish(collection, day, &next.dir, &columns).await?;
            self.store.delete(std::slice::from_ref(&pending)).await?;
        }
        report.versions_written += 1;
        report.rows_with_cast_errors += cast_error_rows;
        report.rows_past_column_cap += capped_rows;
        report.rows_written += rows.len() as u64;
        report.new_ids += new_ids;
        report.duplicates_dropped += duplicates;
        // Versions whose grace is over go, and so do folders no manifest ever named (a
        // killed run's): no reader can have planned on them.
        let named: Vec<&str> = std::iter::once(next.dir.as_str())
            .chain(next.superseded.iter().map(|old| old.dir.as_str()))
            .collect();
        let gone: Vec<String> = self
            .store
            .list(&format!("{partition}/v="))
            .await?
            .into_iter()
            .filter(|key| {
                let dir = key[partition.len() + 1..]
                    .split('/')
                    .next()
                    .unwrap_or_default();
                !named.contains(&dir) || expired.iter().any(|old| old.dir == dir)
            })
            .collect();
        self.store.delete(&gone).await?;
        Ok(PartitionOutcome::Committed)
    }

    /// Replaces the manifest if it is still the one read; whether this run's version is the
    /// one committed (a lost race leaves the other writer's).
    async fn commit(
        &self,
        key: &str,
        manifest: &PartitionManifest,
        read_as: Precondition,
        report: &mut CompactionReport,
    ) -> Result<bool, CompactionError> {
        let bytes = serde_json::to_vec_pretty(manifest).map_err(|err| corrupt(key, err))?;
        match self.store.put(key, bytes, read_as).await {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict(_)) => {
                report.lost_races += 1;
                Ok(false)
            }
            Err(err) => Err(err.into()),
        }
    }

    async fn get_required(&self, key: &str) -> Result<Bytes, CompactionError> {
        self.store
            .get(key)
            .await?
            .map(|stored| stored.bytes)
            .ok_or_else(|| corrupt(key, "listed or named, but not there"))
    }
}

/// The text of a gzip object (one or more gzip members), inflated whole.
fn gunzip(key: &str, bytes: &[u8]) -> Result<Vec<u8>, CompactionError> {
    let mut text = Vec::new();
    let len = gunzip_into(key, bytes, &mut text)?.len();
    text.truncate(len);
    Ok(text)
}

/// The text of a gzip object (one or more gzip members), inflated whole into `buffer`, whose
/// bytes are reused: a buffer kept across a run's objects is zeroed only where it grows, where
/// `read_to_end` zeroes the room it reads into for every new buffer (6 % of dropping copies
/// in `perf`, and its pages faulted in anew). The buffer keeps its length; the text is the
/// slice returned.
fn gunzip_into<'a>(
    key: &str,
    bytes: &[u8],
    buffer: &'a mut Vec<u8>,
) -> Result<&'a [u8], CompactionError> {
    // The last member's size (its trailer's last 4 bytes, RFC 1952) is the whole text of a
    // one-member object: room for it and a little more (to read the end without doubling)
    // is made at once, not doubled up to from a small one. Only a hint, capped so a false
    // trailer cannot claim much.
    let last_member_size = bytes
        .last_chunk::<4>()
        .map_or(0, |size| u32::from_le_bytes(*size) as usize);
    let mut decoder = MultiGzDecoder::new(bytes);
    let mut filled = 0;
    loop {
        if filled == buffer.len() {
            let room =
                (buffer.len() * 2).max(last_member_size.min(GUNZIP_HINT_CAP) + GUNZIP_MIN_ROOM);
            buffer.resize(room, 0);
        }
        match decoder.read(&mut buffer[filled..]) {
            Ok(0) => return Ok(&buffer[..filled]),
            Ok(read) => filled += read,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(corrupt(key, err)),
        }
    }
}

/// The lines of NDJSON `text`, blank ones left out.
fn lines_of(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    // memchr's vector search for the ends: a byte-at-a-time split cost more than inflating.
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        Some(match memchr::memchr(b'\n', current) {
            Some(end) => {
                rest = Some(&current[end + 1..]);
                &current[..end]
            }
            None => {
                rest = None;
                current
            }
        })
    })
    .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
}

/// The lines of a gzip NDJSON object, each its own buffer, blank ones left out.
fn gzip_lines(key: &str, bytes: &[u8]) -> Result<Vec<Vec<u8>>, CompactionError> {
    Ok(lines_of(&gunzip(key, bytes)?).map(<[u8]>::to_vec).collect())
}

fn read_index(key: &str, bytes: Bytes) -> Result<Vec<CopyRank>, CompactionError> {
    lines_of(&gunzip(key, &bytes)?)
        .map(|line| serde_json::from_slice(line).map_err(|err| corrupt(key, err)))
        .collect()
}

fn index_bytes(ranks: &[CopyRank]) -> Result<Vec<u8>, CompactionError> {
    let mut text = Vec::new();
    for rank in ranks {
        serde_json::to_writer(&mut text, rank).map_err(|err| corrupt("index", err))?;
        text.push(b'\n');
    }
    // The fastest level: the next run reads the index back whole; its size matters little.
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder
        .write_all(&text)
        .and_then(|()| encoder.finish())
        .map_err(|err| corrupt("index", err))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip_members(members: &[&[u8]]) -> Vec<u8> {
        let mut object = Vec::new();
        for member in members {
            let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
            encoder.write_all(member).unwrap();
            object.extend(encoder.finish().unwrap());
        }
        object
    }

    #[test]
    fn one_buffer_inflates_objects_of_any_size_and_members_in_turn() {
        let big: Vec<u8> = (0..30_000u32).flat_map(|i| (i % 251) as u8..=250).collect();
        let mut buffer = Vec::new();
        let objects: [(Vec<u8>, Vec<u8>); 4] = [
            (gzip_members(&[&big]), big.clone()),
            (
                gzip_members(&[b"{\"id\":\"a\"}\n", b"{\"id\":\"b\"}\n"]),
                b"{\"id\":\"a\"}\n{\"id\":\"b\"}\n".to_vec(),
            ),
            (gzip_members(&[b""]), Vec::new()),
            (
                gzip_members(&[&big[..1000], &big]),
                [&big[..1000], &big[..]].concat(),
            ),
        ];
        for (object, text) in &objects {
            assert_eq!(gunzip_into("k", object, &mut buffer).unwrap(), &text[..]);
            assert_eq!(gunzip("k", object).unwrap(), *text);
        }
        let mut broken = objects[1].0.clone();
        broken.truncate(broken.len() - 9);
        assert!(gunzip_into("k", &broken, &mut buffer).is_err());
        assert!(gunzip_into("k", b"not gzip", &mut buffer).is_err());
    }

    #[test]
    fn an_error_record_gives_back_each_json_object_of_its_record_exactly() {
        use base64::Engine;
        let record = b"{\"id\":\"a\",\"n\":1.50}\n{\"id\":\"b\"}  {\"id\":\"c\"}\n";
        let document = serde_json::json!({
            "attemptsMade": 1,
            "errorCode": "DynamicPartitioning.ActivePartitionsLimitExceeded",
            "rawData": base64::engine::general_purpose::STANDARD.encode(record),
        });
        let rows = error_record_rows(document.to_string().as_bytes()).unwrap();
        assert_eq!(
            rows,
            [
                br#"{"id":"a","n":1.50}"#.to_vec(),
                br#"{"id":"b"}"#.to_vec(),
                br#"{"id":"c"}"#.to_vec()
            ]
        );
        let not_json = base64::engine::general_purpose::STANDARD.encode(b"{\"id\": tru");
        let broken = serde_json::json!({ "rawData": not_json }).to_string();
        assert_eq!(error_record_rows(broken.as_bytes()), None);
        assert_eq!(error_record_rows(b"{\"attemptsMade\":1}"), None);
    }

    #[test]
    fn a_replaced_version_stays_for_its_grace_and_no_longer() {
        let now: DateTime<Utc> = "2026-12-03T12:00:00Z".parse().unwrap();
        let old = |dir: &str, minutes_ago: i64| Superseded {
            dir: dir.into(),
            at: now - TimeDelta::minutes(minutes_ago),
        };
        let (kept, expired) = sort_superseded(
            vec![old("v=1-a", 61), old("v=2-b", 59), old("v=3-c", 0)],
            now,
        );
        let dirs = |list: &[Superseded]| list.iter().map(|o| o.dir.clone()).collect::<Vec<_>>();
        assert_eq!(dirs(&kept), ["v=2-b", "v=3-c"]);
        assert_eq!(dirs(&expired), ["v=1-a"]);
    }
}
