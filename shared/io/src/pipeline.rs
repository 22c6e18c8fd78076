//! The one way through for every intake. A source only authenticates and decodes its input
//! into mapped events; from there, identity, rows, delivery and the answer are the same
//! code, so a Klaviyo event gives the same row whichever way it came in.

use std::collections::{BTreeMap, HashMap};

use crate::sink::{DeliveryReport, EventSink, SinkError};
use chrono::{DateTime, Utc};
use source_core::identity::apply::klaviyo_profile_id;
use source_core::identity::resolution::{Resolution, ResolutionStats};
use source_core::mapping::Mapped;
pub use source_core::warehouse::request_rows::IntakeOutcome;
use source_core::warehouse::request_rows::request_rows;
use source_core::warehouse::row::WarehouseRow;
use tokio::time::Instant;

use crate::app_state::AppState;
use crate::metrics::StoredRequest;
use crate::request_deadline::identity_deadline;

/// Bodies up to this size are verified, decoded, mapped and flattened on the async worker
/// that received them: measured on this machine (bench/load.py), a 125 KB body of 100 events
/// takes about 2.5 ms of CPU, less than the hand-off to the blocking pool costs at a
/// thousand requests a second, and the pool's threads (each holding a request's rows, each
/// with its own allocator arena) are what raised the peak RSS under load.
pub const INLINE_WORK_MAX_BYTES: usize = 128 * 1024;

/// How much CPU work a request brings, which decides where that work runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkSize {
    /// A body of at most [`INLINE_WORK_MAX_BYTES`]: run where the request is.
    Small,
    /// A larger body (up to 4 MiB of webhook, 2,500 Segment events, a pulled page of 1,000
    /// events): tens of milliseconds, so on the blocking pool, where it cannot hold up the
    /// other requests (or `/health`).
    Large,
}

impl WorkSize {
    /// The size class of a request body of `bytes`.
    pub fn of_body(bytes: usize) -> Self {
        if bytes <= INLINE_WORK_MAX_BYTES {
            Self::Small
        } else {
            Self::Large
        }
    }
}

/// The blocking task that ran a request's CPU work did not finish (it panicked).
#[derive(Debug, thiserror::Error)]
#[error("the request's work on the blocking pool failed")]
pub struct WorkerFailed;

/// Runs CPU-heavy request work (hashing, parsing, mapping, flattening) where its `size`
/// says: inline when small, on the blocking pool when large.
pub async fn cpu_work<T: Send + 'static>(
    size: WorkSize,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, WorkerFailed> {
    match size {
        WorkSize::Small => Ok(work()),
        WorkSize::Large => tokio::task::spawn_blocking(work).await.map_err(|err| {
            tracing::error!(error = %err, "request work failed");
            WorkerFailed
        }),
    }
}

/// Stores `mapped` (every event of one request, in order): profile lookup for the events
/// that name a Klaviyo profile, rows, delivery before `deadline`. Answers the outcome and
/// what to record; fails (nothing acknowledged) only when the rows could not be stored.
pub async fn store_mapped(
    state: &AppState,
    size: WorkSize,
    mapped: Vec<Mapped>,
    received_at: DateTime<Utc>,
    deadline: Instant,
) -> Result<(IntakeOutcome, StoredRequest), StoreError> {
    let (resolutions, identity_stats) =
        resolve_profiles(state, &mapped, identity_deadline(deadline)).await;
    let (outcome, mut stored) = store_resolved(
        state.sink.as_ref(),
        state.only_own_profiles,
        size,
        mapped,
        resolutions,
        received_at,
        deadline,
    )
    .await?;
    stored.unresolved = identity_stats.unresolved;
    Ok((outcome, stored))
}

/// Why mapped events could not be stored; nothing of them may be acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The sink could not make the rows durable.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// The blocking task that builds the rows did not finish.
    #[error("the row-building task failed")]
    Worker,
}

/// The common tail of every intake, once identities are known (looked up for webhooks,
/// included in the page for the pull): rows, delivery to `sink` before `deadline`, and
/// the outcome.
pub async fn store_resolved(
    sink: &dyn EventSink,
    only_own_profiles: bool,
    size: WorkSize,
    mapped: Vec<Mapped>,
    resolutions: HashMap<String, Resolution>,
    received_at: DateTime<Utc>,
    deadline: Instant,
) -> Result<(IntakeOutcome, StoredRequest), StoreError> {
    let (rows, outcome) = cpu_work(size, move || {
        request_rows(mapped, &resolutions, only_own_profiles, received_at)
    })
    .await
    .map_err(|_| StoreError::Worker)?;
    let rows_per_collection = count_per_collection(&rows);
    let started = Instant::now();
    let report = if rows.is_empty() {
        DeliveryReport::default()
    } else {
        sink.deliver(rows, deadline).await?
    };
    let stored = StoredRequest {
        accepted: outcome.accepted,
        rejected: outcome.rejected,
        skipped: outcome.skipped,
        unresolved: 0,
        resent: report.resent,
        spilled: report.spilled,
        delivery_ms: started.elapsed().as_secs_f64() * 1000.0,
        rows_per_collection,
    };
    Ok((outcome, stored))
}

/// Looks up the profiles the mapped events name, when lookup is configured.
async fn resolve_profiles(
    state: &AppState,
    mapped: &[Mapped],
    not_after: Instant,
) -> (HashMap<String, Resolution>, ResolutionStats) {
    let Some(resolver) = &state.identity else {
        return (HashMap::new(), ResolutionStats::default());
    };
    let ids: Vec<&str> = mapped
        .iter()
        .filter_map(|m| m.as_ref().ok())
        .filter_map(klaviyo_profile_id)
        .collect();
    if ids.is_empty() {
        return (HashMap::new(), ResolutionStats::default());
    }
    resolver.resolve(&ids, not_after).await
}

fn count_per_collection(rows: &[WarehouseRow]) -> Vec<(String, usize)> {
    let mut counts = BTreeMap::<&str, usize>::new();
    for row in rows {
        *counts.entry(row.partition.collection.as_str()).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(collection, rows)| (collection.to_owned(), rows))
        .collect()
}
