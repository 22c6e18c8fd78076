//! Compaction of a local lake: the raw landing under `<lake>/<schema>/collection=*/dt=*/`
//! into one Parquet table per collection under `<lake>/_tables/<schema>/<collection>/`, each
//! day a partition that holds each event once.
//!
//! A partition `dt=<day>/` holds versions `v=<n>/` (`part.parquet` and `index.ndjson.gz`, the
//! rank of every id it holds) and `manifest.json`, which names the current version and every
//! raw object already consumed. A version is written whole before the manifest names it, and
//! the manifest is replaced by a rename, so a reader that follows the manifest never sees a
//! half-written day or two versions of one; the version before the current one stays for
//! readers that planned on it, older ones are deleted. A table's columns (`_columns.json`)
//! only grow and are saved before any file that uses them. A lock file keeps two runs apart.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use source_core::compaction::columns::{TableColumns, TableRow, table_row};
use source_core::compaction::merge::PartitionMerge;
use source_core::compaction::winner::CopyRank;

use super::parquet_file::{TableFileError, read_table_file, write_table_file};

/// The tables' folder beside the raw landing's schema folder.
pub const TABLES_DIR: &str = "_tables";

/// Why a compaction could not finish; what it committed before stays committed.
#[derive(Debug, thiserror::Error)]
pub enum CompactionError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Another compaction holds the lake's lock.
    #[error("another compaction is running on this lake ({0} is locked)")]
    Locked(PathBuf),
    /// A manifest, index or columns file is not what compaction wrote.
    #[error("{path} is not readable: {detail}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A table file could not be written or read.
    #[error(transparent)]
    TableFile(#[from] TableFileError),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> CompactionError + '_ {
    move |source| CompactionError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A partition's manifest: the committed version and the raw objects it consumed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionManifest {
    /// The current version (0: none yet).
    pub version: u64,
    /// Rows in the current version.
    pub rows: u64,
    /// Names of the raw objects consumed, in this partition's raw folder.
    pub consumed: BTreeSet<String>,
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
    /// Copies dropped as losing to a kept row.
    pub duplicates_dropped: u64,
    /// Raw lines that are not rows (kept in the landing, counted here).
    pub unreadable_lines: u64,
}

/// The local lake at `lake`, schema `schema`.
#[derive(Debug, Clone)]
pub struct LocalTables {
    lake: PathBuf,
    schema: String,
}

impl LocalTables {
    /// The tables of `schema` in the lake at `lake`.
    pub fn new(lake: impl Into<PathBuf>, schema: impl Into<String>) -> Self {
        Self {
            lake: lake.into(),
            schema: schema.into(),
        }
    }

    fn raw_dir(&self) -> PathBuf {
        self.lake.join(&self.schema)
    }

    /// Where the tables of the schema are.
    pub fn tables_dir(&self) -> PathBuf {
        self.lake.join(TABLES_DIR).join(&self.schema)
    }

    /// Compacts every raw object not yet consumed; holds the lake's lock while it runs.
    pub fn compact(&self) -> Result<CompactionReport, CompactionError> {
        let tables = self.tables_dir();
        fs::create_dir_all(&tables).map_err(io_error(&tables))?;
        let lock_path = tables.join(".compaction.lock");
        // Opened, never written: a run that finds nothing new changes no file at all.
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_error(&lock_path))?;
        if lock.try_lock().is_err() {
            return Err(CompactionError::Locked(lock_path));
        }
        let mut report = CompactionReport::default();
        for (collection, days) in self.raw_partitions()? {
            for day in days {
                self.compact_partition(&collection, &day, &mut report)?;
            }
        }
        Ok(report)
    }

    /// Every raw partition, as (collection slug, day).
    fn raw_partitions(&self) -> Result<BTreeMap<String, Vec<String>>, CompactionError> {
        let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for collection_dir in sorted_entries(&self.raw_dir())? {
            let Some(collection) = hive_value(&collection_dir, "collection") else {
                continue;
            };
            for day_dir in sorted_entries(&collection_dir)? {
                if let Some(day) = hive_value(&day_dir, "dt") {
                    found.entry(collection.clone()).or_default().push(day);
                }
            }
        }
        Ok(found)
    }

    fn partition_dir(&self, collection: &str, day: &str) -> PathBuf {
        self.tables_dir().join(collection).join(format!("dt={day}"))
    }

    /// The current version's file of a partition, if it has one: what readers read.
    pub fn current_file(&self, collection: &str, day: &str) -> Option<PathBuf> {
        let dir = self.partition_dir(collection, day);
        let manifest: PartitionManifest = read_json(&dir.join("manifest.json")).ok()??;
        (manifest.version > 0).then(|| version_dir(&dir, manifest.version).join("part.parquet"))
    }

    fn compact_partition(
        &self,
        collection: &str,
        day: &str,
        report: &mut CompactionReport,
    ) -> Result<(), CompactionError> {
        let raw = self
            .raw_dir()
            .join(format!("collection={collection}"))
            .join(format!("dt={day}"));
        let dir = self.partition_dir(collection, day);
        let manifest_path = dir.join("manifest.json");
        let manifest: PartitionManifest = read_json(&manifest_path)?.unwrap_or_default();
        let new_objects: Vec<PathBuf> = sorted_entries(&raw)?
            .into_iter()
            .filter(|path| is_raw_object(path) && !manifest.consumed.contains(&file_name(path)))
            .collect();
        if new_objects.is_empty() {
            return Ok(());
        }
        let committed = if manifest.version > 0 {
            read_index(&version_dir(&dir, manifest.version).join("index.ndjson.gz"))?
        } else {
            Vec::new()
        };
        let mut merge = PartitionMerge::over(committed);
        for object in &new_objects {
            report.objects_read += 1;
            for line in gzip_lines(object)? {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                if merge.offer(&line).is_err() {
                    report.unreadable_lines += 1;
                }
            }
        }
        let mut next = PartitionManifest {
            consumed: manifest.consumed.clone(),
            ..manifest.clone()
        };
        next.consumed
            .extend(new_objects.iter().map(|path| file_name(path)));
        report.duplicates_dropped += merge.duplicates();
        if !merge.changed() {
            // Only copies of rows already kept: the day keeps its version.
            return write_json_atomically(&manifest_path, &next);
        }
        let (ranks, taken) = merge.finish();
        let mut rows: BTreeMap<String, TableRow> = if manifest.version > 0 {
            let file = version_dir(&dir, manifest.version).join("part.parquet");
            let bytes = fs::read(&file).map_err(io_error(&file))?;
            read_table_file(Bytes::from(bytes))?
                .into_iter()
                .filter_map(|row| Some((row_id(&row)?, row)))
                .collect()
        } else {
            BTreeMap::new()
        };
        report.new_ids += taken
            .iter()
            .filter(|(id, _)| !rows.contains_key(id))
            .count() as u64;
        let members: Vec<Map<String, Value>> = taken
            .iter()
            .filter_map(|(_, line)| match serde_json::from_slice(line) {
                Ok(Value::Object(members)) => Some(members),
                _ => None,
            })
            .collect();
        let columns_path = self.tables_dir().join(collection).join("_columns.json");
        let mut columns: TableColumns = read_json(&columns_path)?.unwrap_or_default();
        if columns.grow(members.iter().flat_map(|m| m.keys().map(String::as_str))) > 0 {
            // Saved before any file that has them: a file's columns are always a prefix of
            // the table's.
            write_json_atomically(&columns_path, &columns)?;
        }
        for members in members {
            let row = table_row(members, &columns);
            if let Some(id) = row_id(&row) {
                rows.insert(id, row);
            }
        }
        let rows: Vec<TableRow> = rows.into_values().collect();
        let version = manifest.version + 1;
        let target = version_dir(&dir, version);
        // A version left half-written by a killed run is written again from the start.
        if target.exists() {
            fs::remove_dir_all(&target).map_err(io_error(&target))?;
        }
        fs::create_dir_all(&target).map_err(io_error(&target))?;
        write_atomically(
            &target.join("part.parquet"),
            &write_table_file(&columns, &rows)?,
        )?;
        write_atomically(&target.join("index.ndjson.gz"), &index_bytes(&ranks)?)?;
        next.version = version;
        next.rows = rows.len() as u64;
        write_json_atomically(&manifest_path, &next)?;
        report.versions_written += 1;
        report.rows_written += rows.len() as u64;
        // The previous version stays for readers that planned on it; older ones go.
        for old in sorted_entries(&dir)? {
            let older = hive_value(&old, "v")
                .and_then(|v| v.parse::<u64>().ok())
                .is_some_and(|v| v + 1 < version);
            if older {
                fs::remove_dir_all(&old).map_err(io_error(&old))?;
            }
        }
        Ok(())
    }
}

fn version_dir(partition: &Path, version: u64) -> PathBuf {
    partition.join(format!("v={version}"))
}

fn row_id(row: &TableRow) -> Option<String> {
    match row.get("id") {
        Some(source_core::compaction::columns::Cell::Text(id)) => Some(id.clone()),
        _ => None,
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A finished raw object (the local lake's temporary files start with `.`).
fn is_raw_object(path: &Path) -> bool {
    let name = file_name(path);
    !name.starts_with('.') && name.ends_with(".gz")
}

/// `name=value` folder names: the value when the folder is `<key>=...`.
fn hive_value(path: &Path, key: &str) -> Option<String> {
    file_name(path)
        .strip_prefix(&format!("{key}="))
        .map(str::to_owned)
}

/// A folder's entries, sorted; none when the folder does not exist.
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, CompactionError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(io_error(dir)(err)),
    };
    let mut paths = Vec::new();
    for entry in entries {
        paths.push(entry.map_err(io_error(dir))?.path());
    }
    paths.sort();
    Ok(paths)
}

/// The lines of a gzip NDJSON object (one or more gzip members).
fn gzip_lines(path: &Path) -> Result<Vec<Vec<u8>>, CompactionError> {
    let file = File::open(path).map_err(io_error(path))?;
    BufReader::new(MultiGzDecoder::new(file))
        .split(b'\n')
        .collect::<Result<_, _>>()
        .map_err(io_error(path))
}

fn read_index(path: &Path) -> Result<Vec<CopyRank>, CompactionError> {
    gzip_lines(path)?
        .into_iter()
        .filter(|line| !line.is_empty())
        .map(|line| {
            serde_json::from_slice(&line).map_err(|err| CompactionError::Corrupt {
                path: path.to_owned(),
                detail: err.to_string(),
            })
        })
        .collect()
}

fn index_bytes(ranks: &[CopyRank]) -> Result<Vec<u8>, CompactionError> {
    let mut text = Vec::new();
    for rank in ranks {
        serde_json::to_writer(&mut text, rank).map_err(|err| CompactionError::Corrupt {
            path: PathBuf::from("index.ndjson.gz"),
            detail: err.to_string(),
        })?;
        text.push(b'\n');
    }
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder
        .write_all(&text)
        .and_then(|()| encoder.finish())
        .map_err(io_error(Path::new("index.ndjson.gz")))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, CompactionError> {
    let mut text = Vec::new();
    match File::open(path) {
        Ok(mut file) => file.read_to_end(&mut text).map_err(io_error(path))?,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(io_error(path)(err)),
    };
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|err| CompactionError::Corrupt {
            path: path.to_owned(),
            detail: err.to_string(),
        })
}

fn write_json_atomically<T: Serialize>(path: &Path, value: &T) -> Result<(), CompactionError> {
    let text = serde_json::to_vec_pretty(value).map_err(|err| CompactionError::Corrupt {
        path: path.to_owned(),
        detail: err.to_string(),
    })?;
    write_atomically(path, &text)
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, and renames it over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CompactionError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_error(dir))?;
    let temp = dir.join(format!(".{}.tmp", file_name(path)));
    let mut file = File::create(&temp).map_err(io_error(&temp))?;
    file.write_all(bytes).map_err(io_error(&temp))?;
    file.sync_all().map_err(io_error(&temp))?;
    fs::rename(&temp, path).map_err(io_error(path))?;
    Ok(())
}
