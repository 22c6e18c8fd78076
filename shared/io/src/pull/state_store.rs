//! Where the pull's state lives, written with compare-and-set: a save succeeds only if the
//! state is still the version this run read, so two overlapping runs can never both move a
//! cursor (the loser's save fails and it stops). Locally a JSON file under the lake
//! directory; in AWS an S3 object written with `If-Match` / `If-None-Match`.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use source_core::pull::state::PullState;

/// The version a state was read at: `None` when there was none yet.
pub type StateVersion = Option<String>;

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Someone else wrote the state since this run read it.
    #[error("the pull state changed under this run (another run is working); stopping")]
    Conflict,
    /// The state is not readable as the pull's state.
    #[error("the pull state at {place} is not readable: {detail}")]
    Corrupt {
        /// Where it is.
        place: String,
        /// What is wrong.
        detail: String,
    },
    /// The store failed.
    #[error("the pull state store failed at {place}: {detail}")]
    Store {
        /// Where.
        place: String,
        /// What happened.
        detail: String,
    },
}

/// A boxed store future.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StateError>> + Send + 'a>>;

/// The pull's state, read and written with compare-and-set.
pub trait PullStateStore: Send + Sync {
    /// The state and its version (a default state and `None` when nothing is saved).
    fn load(&self) -> StoreFuture<'_, (PullState, StateVersion)>;
    /// Saves `state` if the stored version is still `read_at`; the new version.
    fn save<'a>(
        &'a self,
        state: &'a PullState,
        read_at: &'a StateVersion,
    ) -> StoreFuture<'a, StateVersion>;
    /// Where the state lives, for messages.
    fn place(&self) -> String;
}

/// The state as a file: `<lake>/_state/klaviyo-pull.json`, next to the schema directory so
/// table globs never see it. The version is a counter inside the file; the check and the
/// write happen under an exclusive lock of a sibling lock file, and the write is a rename.
#[derive(Debug, Clone)]
pub struct LocalStateFile {
    path: PathBuf,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct VersionedState {
    version: u64,
    state: PullState,
}

impl LocalStateFile {
    /// The state file of the lake at `lake_dir`.
    pub fn in_lake(lake_dir: &Path) -> Self {
        Self {
            path: lake_dir.join("_state").join("klaviyo-pull.json"),
        }
    }

    fn store_error(&self, err: std::io::Error) -> StateError {
        StateError::Store {
            place: self.path.display().to_string(),
            detail: err.to_string(),
        }
    }

    fn read(&self) -> Result<Option<VersionedState>, StateError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|err| StateError::Corrupt {
                        place: self.path.display().to_string(),
                        detail: err.to_string(),
                    })
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(self.store_error(err)),
        }
    }

    fn write_if(
        &self,
        state: &PullState,
        read_at: &StateVersion,
    ) -> Result<StateVersion, StateError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|err| self.store_error(err))?;
        let lock = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("klaviyo-pull.lock"))
            .map_err(|err| self.store_error(err))?;
        lock.lock().map_err(|err| self.store_error(err))?;
        let current = self.read()?.map(|stored| stored.version.to_string());
        if &current != read_at {
            return Err(StateError::Conflict);
        }
        let version = current
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(1, |v| v + 1);
        let bytes = serde_json::to_vec_pretty(&VersionedState {
            version,
            state: state.clone(),
        })
        .map_err(|err| StateError::Corrupt {
            place: self.path.display().to_string(),
            detail: err.to_string(),
        })?;
        let temp = dir.join(".klaviyo-pull.json.tmp");
        let written = std::fs::File::create(&temp).and_then(|mut file| {
            std::io::Write::write_all(&mut file, &bytes)?;
            file.sync_all()
        });
        written
            .and_then(|()| std::fs::rename(&temp, &self.path))
            .map_err(|err| self.store_error(err))?;
        // The lock is released when `lock` is dropped.
        Ok(Some(version.to_string()))
    }
}

impl PullStateStore for LocalStateFile {
    fn load(&self) -> StoreFuture<'_, (PullState, StateVersion)> {
        Box::pin(async move {
            Ok(match self.read()? {
                Some(stored) => (stored.state, Some(stored.version.to_string())),
                None => (PullState::default(), None),
            })
        })
    }

    fn save<'a>(
        &'a self,
        state: &'a PullState,
        read_at: &'a StateVersion,
    ) -> StoreFuture<'a, StateVersion> {
        Box::pin(async move { self.write_if(state, read_at) })
    }

    fn place(&self) -> String {
        self.path.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use source_core::pull::state::Lease;

    #[tokio::test]
    async fn a_save_from_a_stale_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStateFile::in_lake(dir.path());
        let (state, first) = store.load().await.unwrap();
        assert_eq!(first, None);
        let second = store.save(&state, &first).await.unwrap();
        // A run that read before the save above may not write.
        assert!(matches!(
            store.save(&state, &first).await,
            Err(StateError::Conflict)
        ));
        let leased = PullState {
            lease: Some(Lease {
                holder: "run".into(),
                expires_at: chrono::Utc::now(),
            }),
            ..state
        };
        let third = store.save(&leased, &second).await.unwrap();
        let (loaded, version) = store.load().await.unwrap();
        assert_eq!(loaded, leased);
        assert_eq!(version, third);
    }
}
