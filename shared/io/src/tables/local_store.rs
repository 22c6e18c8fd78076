//! The local lake directory as a [`TableStore`]: a key is a path under the lake. A write goes
//! to a synced temporary file renamed over the key, so a reader sees the old object or the
//! new one; a conditional write compares the object's digest under the compaction lock, an
//! exclusive `flock` on `_tables/.compaction.lock` that the process holds until it unlocks or
//! exits (a killed run leaves no lock behind).

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::table_store::{Precondition, StoreError, StoreFuture, StoredBytes, TableStore};

/// The lake at a directory.
#[derive(Debug)]
pub struct LocalStore {
    root: PathBuf,
    lock: Mutex<Option<File>>,
}

impl LocalStore {
    /// The lake at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            lock: Mutex::new(None),
        }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    fn failed(&self, path: &Path, err: impl std::fmt::Display) -> StoreError {
        StoreError::failed(path.display().to_string(), err)
    }

    fn list_now(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        // The prefix's folder: a key prefix ends in `/` or names a file's start.
        let (dir, _) = prefix.rsplit_once('/').unwrap_or(("", prefix));
        let mut keys = Vec::new();
        let mut pending = vec![self.root.join(dir)];
        while let Some(folder) = pending.pop() {
            let entries = match fs::read_dir(&folder) {
                Ok(entries) => entries,
                Err(err) if err.kind() == ErrorKind::NotFound => continue,
                Err(err) => return Err(self.failed(&folder, err)),
            };
            for entry in entries {
                let path = entry.map_err(|err| self.failed(&folder, err))?.path();
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
                // Temporary files (ours and the lake sink's) start with `.`.
                if name.is_none_or(|n| n.starts_with('.')) {
                    continue;
                }
                if path.is_dir() {
                    pending.push(path);
                } else if let Ok(relative) = path.strip_prefix(&self.root) {
                    let key = relative.to_string_lossy().replace('\\', "/");
                    if key.starts_with(prefix) {
                        keys.push(key);
                    }
                }
            }
        }
        keys.sort();
        Ok(keys)
    }

    fn get_now(&self, key: &str) -> Result<Option<StoredBytes>, StoreError> {
        let path = self.path(key);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(StoredBytes {
                tag: hex::encode(Sha256::digest(&bytes)),
                bytes: Bytes::from(bytes),
            })),
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
            Err(err) => Err(self.failed(&path, err)),
        }
    }

    fn put_now(
        &self,
        key: &str,
        bytes: &[u8],
        precondition: &Precondition,
    ) -> Result<(), StoreError> {
        let current = match precondition {
            Precondition::None => None,
            _ => Some(self.get_now(key)?.map(|stored| stored.tag)),
        };
        let holds = match (precondition, current) {
            (Precondition::Absent, Some(current)) => current.is_none(),
            (Precondition::Matches(tag), Some(current)) => current.as_ref() == Some(tag),
            _ => true,
        };
        if !holds {
            return Err(StoreError::Conflict(key.to_owned()));
        }
        let path = self.path(key);
        let dir = path.parent().unwrap_or(&self.root).to_owned();
        fs::create_dir_all(&dir).map_err(|err| self.failed(&dir, err))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = dir.join(format!(".{name}.tmp"));
        let write = || -> std::io::Result<()> {
            let mut file = File::create(&temp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            fs::rename(&temp, &path)
        };
        write().map_err(|err| self.failed(&path, err))
    }

    fn delete_now(&self, keys: &[String]) -> Result<(), StoreError> {
        for key in keys {
            let path = self.path(key);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(err) if err.kind() == ErrorKind::NotFound => {}
                Err(err) => return Err(self.failed(&path, err)),
            }
            // Empty folders left behind go too (a deleted version's `v=<n>/`).
            if let Some(dir) = path.parent()
                && fs::remove_dir(dir).is_err()
            {
                // Not empty (or already gone): it stays.
            }
        }
        Ok(())
    }

    fn lock_now(&self) -> Result<(), StoreError> {
        let dir = self.root.join("_tables");
        fs::create_dir_all(&dir).map_err(|err| self.failed(&dir, err))?;
        let path = dir.join(".compaction.lock");
        // Opened, never written: a run that finds nothing new changes no file at all.
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|err| self.failed(&path, err))?;
        if file.try_lock().is_err() {
            return Err(StoreError::Locked(path.display().to_string()));
        }
        if let Ok(mut held) = self.lock.lock() {
            *held = Some(file);
        }
        Ok(())
    }
}

impl TableStore for LocalStore {
    fn list<'a>(&'a self, prefix: &'a str) -> StoreFuture<'a, Vec<String>> {
        Box::pin(async move { self.list_now(prefix) })
    }

    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<StoredBytes>> {
        Box::pin(async move { self.get_now(key) })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        bytes: Vec<u8>,
        precondition: Precondition,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move { self.put_now(key, &bytes, &precondition) })
    }

    fn delete<'a>(&'a self, keys: &'a [String]) -> StoreFuture<'a, ()> {
        Box::pin(async move { self.delete_now(keys) })
    }

    fn lock(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move { self.lock_now() })
    }

    fn unlock(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            if let Ok(mut held) = self.lock.lock() {
                // Closing the file releases the flock.
                held.take();
            }
            Ok(())
        })
    }

    fn place(&self) -> String {
        self.root.display().to_string()
    }
}
