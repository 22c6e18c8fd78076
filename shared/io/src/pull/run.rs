//! One run of the pull: take the lease, choose the metrics, read each stream window by
//! window and page by page, store every page's new events (those its day's id ledger does
//! not hold) through the same rows-and-delivery step as the webhook path, and save the
//! ledgers, then the stream's position, every few seconds (never before the rows are
//! stored). After the realtime sweep, the late-event passes (late_events.rs) read again the
//! recent hours and the days whose count at Klaviyo differs from the ids stored.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use crate::sink::EventSink;
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use futures_util::stream::{FuturesUnordered, StreamExt};
use source_core::identity::resolution::Resolution;
use source_core::klaviyo::events_page::decode_events_page;
use source_core::klaviyo::events_query::{
    DEFAULT_EVENTS_PAGE_SIZE, MAX_EVENTS_PAGE_SIZE, events_query,
};
use source_core::klaviyo::metric_aggregates::{
    count_spans, daily_count_request, parse_daily_counts,
};
use source_core::klaviyo::metric_alias::topic_for_metric_name;
use source_core::klaviyo::metrics_page::AccountMetric;
use source_core::mapping::Mapped;
use source_core::mapping::pulled_event::map_events_page;
use source_core::pull::id_ledger::{IdLedger, fingerprint};
use source_core::pull::late_events::{
    LatePasses, checked_days, days_to_reread, forget_days_before, is_due,
};
use source_core::pull::page_position::{drop_already_stored, stored_page};
use source_core::pull::state::StoredPage;
use source_core::pull::state::{Lease, OpenWindow, Order, PullState, Reread, StreamState, Sweep};
use source_core::pull::windows::{dense_split_point, settled_limit, window_floor};
use tokio::sync::{Mutex, Notify};
use tokio::time::Instant;

use super::events_source::{EventsApiError, EventsSource};
use super::id_ledgers::IdLedgerStore;
use super::metric_selection::{MetricChoice, select_metrics};
use super::state_store::{PullStateStore, StateError, StateVersion};
use crate::app_state::Clock;
use crate::pipeline::{StoreError, WorkSize, cpu_work, store_resolved};

/// How a run behaves; defaults in [`PullSettings::default`].
#[derive(Debug, Clone)]
pub struct PullSettings {
    /// Which metrics to read.
    pub choice: MetricChoice,
    /// How far behind now a read stays (Klaviyo is eventually consistent and refuses
    /// filters in the future).
    pub settle: TimeDelta,
    /// The late-event passes after each incremental realtime sweep.
    pub late: LatePasses,
    /// Where a stream without saved state starts, behind now.
    pub first_run_lookback: TimeDelta,
    /// How long a lease holds without renewal (each save of the state renews it).
    pub lease: TimeDelta,
    /// How often, at most, the ledgers and the state are saved while pages are stored (a
    /// crash re-reads at most this much, and the ledgers keep the re-read from storing it
    /// twice).
    pub save_every: std::time::Duration,
    /// Store only events of profiles with an `external_id`.
    pub only_own_profiles: bool,
    /// How long before the run's deadline it stops fetching, to store and checkpoint.
    pub stop_margin: std::time::Duration,
    /// Windows read at once per metric. Cursor pages of one window come one after the
    /// other, so with a page taking a few hundred milliseconds only several windows at once
    /// can use the request budget.
    pub parallel_windows: usize,
}

impl Default for PullSettings {
    fn default() -> Self {
        Self {
            choice: MetricChoice::default(),
            settle: TimeDelta::seconds(60),
            late: LatePasses::default(),
            first_run_lookback: TimeDelta::days(7),
            lease: TimeDelta::seconds(120),
            save_every: std::time::Duration::from_secs(5),
            only_own_profiles: false,
            stop_margin: std::time::Duration::from_secs(20),
            parallel_windows: 8,
        }
    }
}

/// What a run is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullPlan {
    /// Continue every stream from its saved cursor to now (less the settle time), then
    /// run the late-event passes that are due.
    Incremental,
    /// Read `[from, to)` of every chosen metric (a named job, resumable on its own; asked
    /// again once complete, it reads the window again and stores what is missing).
    Window {
        /// Start (inclusive).
        from: DateTime<Utc>,
        /// End (exclusive); clipped to now less the settle time.
        to: DateTime<Utc>,
        /// Oldest or newest window first.
        order: Order,
    },
}

/// Why a run stopped short.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// Another run holds the lease.
    #[error("another pull run ({holder}) holds the lease until {until}; not starting")]
    LeaseHeld {
        /// The other run.
        holder: String,
        /// When its lease lapses.
        until: DateTime<Utc>,
    },
    /// Klaviyo failed in a way the run cannot get past.
    #[error(transparent)]
    Klaviyo(#[from] EventsApiError),
    /// The state could not be read or saved.
    #[error(transparent)]
    State(#[from] StateError),
    /// Rows could not be stored; the cursor stayed before them.
    #[error("rows could not be stored, the cursor stays before them: {0}")]
    Store(#[from] StoreError),
    /// A page of Klaviyo's could not be read.
    #[error("{0}")]
    Page(String),
    /// Klaviyo expired the cursor again and again without the window moving on.
    #[error(
        "Klaviyo keeps calling the cursor invalid at {at} (more than a page of events in that second?); the run stops, the next one continues from there"
    )]
    CursorKeepsExpiring {
        /// The second the window cannot get past.
        at: DateTime<Utc>,
    },
}

/// Restarts of a window from one and the same second before the run gives up.
const MAX_RESTARTS_WITHOUT_PROGRESS: u32 = 3;

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullReport {
    /// Pages stored.
    pub pages: u64,
    /// Events stored as track events.
    pub events: u64,
    /// Events stored in the rejected collection.
    pub rejected: u64,
    /// Events skipped by "only own profiles".
    pub skipped: u64,
    /// Events read that their day's ledger already held (stored before; not stored again).
    pub already_stored: u64,
    /// Klaviyo daily-count requests of the late-event checks.
    pub count_checks: u64,
    /// Days read again because Klaviyo's count differed from the ids stored.
    pub days_reread: u64,
    /// Whether everything asked for is stored (false: the deadline came first).
    pub complete: bool,
    /// Metrics read.
    pub metrics: Vec<String>,
    /// Things the user should know (missing, vanished or renamed metrics).
    pub warnings: Vec<String>,
    /// The oldest realtime cursor of the metrics read (incremental runs): everything before
    /// it is stored; now minus it is the lag.
    pub oldest_cursor: Option<DateTime<Utc>>,
}

/// Progress after each stored page, for a progress line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Events stored so far in this run.
    pub events: u64,
    /// Pages stored so far.
    pub pages: u64,
    /// Time still to read in the current sweep.
    pub remaining: TimeDelta,
}

/// The parts of a run.
pub struct PullRun {
    /// Klaviyo's Events and Metrics APIs.
    pub api: Arc<dyn EventsSource>,
    /// Where the state lives.
    pub store: Arc<dyn PullStateStore>,
    /// Where the ids stored per metric and day live.
    pub ledgers: Arc<dyn IdLedgerStore>,
    /// Where rows go.
    pub sink: Arc<dyn EventSink>,
    /// Behaviour.
    pub settings: PullSettings,
    /// The current time.
    pub clock: Clock,
    /// This run's id (the lease holder).
    pub holder: String,
    /// Called after every stored page.
    pub on_progress: Arc<dyn Fn(Progress) + Send + Sync>,
    /// Set (by Ctrl-C) to stop after the page being stored, checkpoint and release.
    pub stop: Arc<AtomicBool>,
}

/// Which sweep of the state a read works on.
#[derive(Debug, Clone)]
enum SweepSlot {
    Realtime(String),
    /// The first queued re-read of the stream.
    Reread(String),
    Job(String, String),
}

impl SweepSlot {
    fn get<'s>(&self, state: &'s mut PullState) -> Option<&'s mut Sweep> {
        match self {
            Self::Realtime(id) => state.streams.get_mut(id).map(|s| &mut s.realtime),
            Self::Reread(id) => state
                .streams
                .get_mut(id)
                .and_then(|s| s.rereads.first_mut())
                .map(|r| &mut r.sweep),
            Self::Job(job, id) => state.jobs.get_mut(job).and_then(|j| j.get_mut(id)),
        }
    }
}

/// The mutable part of a run: the state as last saved and its version, and the id ledgers
/// of the days being read.
struct Session {
    state: PullState,
    version: StateVersion,
    report: PullReport,
    page_size: u32,
    ledgers: HashMap<LedgerKey, OpenLedger>,
    last_save: Instant,
}

/// A ledger's metric id and day.
type LedgerKey = (String, NaiveDate);

/// A day's ledger while windows of it are read.
struct OpenLedger {
    /// Every id stored for the day, as loaded plus what this run stored.
    ids: Arc<RwLock<IdLedger>>,
    /// The ids stored since the ledger was last saved.
    unsaved: IdLedger,
    /// Windows reading the day now; at zero the ledger is saved and let go.
    readers: usize,
}

impl PullRun {
    /// Runs `plan` until done or until `deadline` (less the stop margin).
    pub async fn run(&self, plan: &PullPlan, deadline: Instant) -> Result<PullReport, PullError> {
        let session = Mutex::new(self.take_lease().await?);
        let split = Notify::new();
        let result = self.run_leased(plan, deadline, &session, &split).await;
        let mut session = session.into_inner();
        // The ledgers before the state: a saved position never runs ahead of its ids.
        if let Err(err) = self.save_ledgers(&mut session).await {
            tracing::warn!(error = %err, "could not save the id ledgers; a re-read may store their ids again");
        }
        // Let the next run start at once, whatever happened; a conflict means the lease is
        // no longer ours to release.
        session.state.lease = None;
        if let Err(err) = self.store.save(&session.state, &session.version).await {
            tracing::warn!(error = %err, "could not release the pull lease; it lapses by itself");
        }
        result.map(|()| session.report)
    }

    async fn take_lease(&self) -> Result<Session, PullError> {
        let (mut state, version) = self.store.load().await?;
        let now = (self.clock)();
        if let Some(lease) = state.leased_to_another(&self.holder, now) {
            return Err(PullError::LeaseHeld {
                holder: lease.holder.clone(),
                until: lease.expires_at,
            });
        }
        state.lease = Some(self.lease_from(now));
        let version = self.store.save(&state, &version).await?;
        Ok(Session {
            state,
            version,
            report: PullReport::default(),
            page_size: MAX_EVENTS_PAGE_SIZE,
            ledgers: HashMap::new(),
            last_save: Instant::now(),
        })
    }

    fn lease_from(&self, now: DateTime<Utc>) -> Lease {
        Lease {
            holder: self.holder.clone(),
            expires_at: now + self.settings.lease,
        }
    }

    /// Saves the ledgers, then the state (renewing the lease) if nobody else wrote it since.
    async fn checkpoint(&self, session: &mut Session) -> Result<(), PullError> {
        self.save_ledgers(session).await?;
        session.state.lease = Some(self.lease_from((self.clock)()));
        session.version = self.store.save(&session.state, &session.version).await?;
        session.last_save = Instant::now();
        Ok(())
    }

    /// [`Self::checkpoint`] when the last one is [`PullSettings::save_every`] ago.
    async fn checkpoint_if_due(&self, session: &mut Session) -> Result<(), PullError> {
        if session.last_save.elapsed() >= self.settings.save_every {
            self.checkpoint(session).await?;
        }
        Ok(())
    }

    /// Writes the ids stored since the last save into each day's ledger, and the days'
    /// sizes into their streams' records.
    async fn save_ledgers(&self, session: &mut Session) -> Result<(), StateError> {
        for ((metric_id, day), open) in &mut session.ledgers {
            if open.unsaved.is_empty() {
                continue;
            }
            let size = self
                .ledgers
                .merge_save(metric_id, *day, &open.unsaved)
                .await?;
            open.unsaved = IdLedger::default();
            if let Some(stream) = session.state.streams.get_mut(metric_id) {
                stream.days.entry(*day).or_default().stored = size as u64;
            }
        }
        Ok(())
    }

    /// The ledger of `metric_id`'s `day`, loaded on first use, counted as read by one more
    /// window.
    async fn open_ledger(
        &self,
        session: &Mutex<Session>,
        metric_id: &str,
        day: NaiveDate,
    ) -> Result<Arc<RwLock<IdLedger>>, PullError> {
        let key = (metric_id.to_owned(), day);
        if let Some(open) = session.lock().await.ledgers.get_mut(&key) {
            open.readers += 1;
            return Ok(open.ids.clone());
        }
        let loaded = self.ledgers.load(metric_id, day).await?;
        let mut guard = session.lock().await;
        let open = guard.ledgers.entry(key).or_insert_with(|| OpenLedger {
            ids: Arc::new(RwLock::new(loaded)),
            unsaved: IdLedger::default(),
            readers: 0,
        });
        open.readers += 1;
        Ok(open.ids.clone())
    }

    /// One window fewer reads the day; the last one saves its ledger and lets it go, so a
    /// long backfill holds only the days being read.
    async fn close_ledger(
        &self,
        session: &mut Session,
        metric_id: &str,
        day: NaiveDate,
    ) -> Result<(), PullError> {
        let key = (metric_id.to_owned(), day);
        let Some(open) = session.ledgers.get_mut(&key) else {
            return Ok(());
        };
        open.readers = open.readers.saturating_sub(1);
        if open.readers > 0 {
            return Ok(());
        }
        if !open.unsaved.is_empty() {
            let size = self
                .ledgers
                .merge_save(metric_id, day, &open.unsaved)
                .await?;
            if let Some(stream) = session.state.streams.get_mut(metric_id) {
                stream.days.entry(day).or_default().stored = size as u64;
            }
        }
        session.ledgers.remove(&key);
        Ok(())
    }

    fn should_stop(&self, stop_at: Instant) -> bool {
        Instant::now() >= stop_at || self.stop.load(Ordering::Relaxed)
    }

    async fn run_leased(
        &self,
        plan: &PullPlan,
        deadline: Instant,
        session: &Mutex<Session>,
        split: &Notify,
    ) -> Result<(), PullError> {
        let stop_at = deadline
            .checked_sub(self.settings.stop_margin)
            .unwrap_or(deadline);
        let account = self.api.metrics(stop_at).await?;
        self.remember_account_id(session, stop_at).await;
        let selection = {
            let mut guard = session.lock().await;
            let selection = select_metrics(&account, &self.settings.choice, &guard.state.streams);
            guard.report.warnings = selection.warnings.clone();
            guard.report.metrics = selection.metrics.iter().map(|m| m.name.clone()).collect();
            selection
        };
        for warning in &selection.warnings {
            tracing::warn!(warning = %warning, "metric check");
        }
        let limit = settled_limit((self.clock)(), self.settings.settle);
        let mut complete = true;
        for metric in &selection.metrics {
            let done = match plan {
                PullPlan::Incremental => {
                    self.incremental(metric, limit, stop_at, session, split)
                        .await?
                }
                PullPlan::Window { from, to, order } => {
                    let job = format!("{}/{}/{:?}", from.to_rfc3339(), to.to_rfc3339(), order);
                    {
                        let mut guard = session.lock().await;
                        let sweep = guard
                            .state
                            .jobs
                            .entry(job.clone())
                            .or_default()
                            .entry(metric.id.clone())
                            .or_insert_with(|| Sweep::new(*from, (*to).min(limit), *order));
                        // A job asked again later may reach further, up to its own end.
                        sweep.to = (*to).min(limit).max(sweep.to);
                        // Asked again once complete, the window is read again (events
                        // Klaviyo listed late); the ledgers keep what was stored from being
                        // stored twice. An incomplete job continues where it stopped.
                        if sweep.is_complete() {
                            *sweep = Sweep::new(*from, sweep.to, *order);
                        }
                    }
                    let topic = topic_for_metric_name(&metric.name);
                    let slot = SweepSlot::Job(job, metric.id.clone());
                    self.read_sweep(&slot, metric, &topic, stop_at, session, split)
                        .await?
                }
            };
            complete &= done;
        }
        let mut guard = session.lock().await;
        guard.report.complete = complete && plan_reaches(plan, limit);
        if *plan == PullPlan::Incremental {
            guard.report.oldest_cursor = selection
                .metrics
                .iter()
                .filter_map(|m| guard.state.streams.get(&m.id))
                .map(|stream| stream.realtime.done)
                .min();
        }
        Ok(())
    }

    /// Reads the account's id once (it is kept in the state): pulled rows carry it as
    /// webhook rows do. Without it (a key without `accounts:read`, Klaviyo failing) the run
    /// goes on and tries again next time.
    async fn remember_account_id(&self, session: &Mutex<Session>, stop_at: Instant) {
        if session.lock().await.state.account_id.is_some() {
            return;
        }
        match self.api.account_id(stop_at).await {
            Ok(Some(id)) => session.lock().await.state.account_id = Some(id),
            Ok(None) => tracing::warn!(
                "the key may not read the account (accounts:read): pulled rows carry no account id"
            ),
            Err(err) => {
                tracing::warn!(error = %err, "could not read the account id; pulled rows carry none this run")
            }
        }
    }

    /// The realtime sweep to the settled limit, then the late-event passes that are due.
    async fn incremental(
        &self,
        metric: &AccountMetric,
        limit: DateTime<Utc>,
        stop_at: Instant,
        session: &Mutex<Session>,
        split: &Notify,
    ) -> Result<bool, PullError> {
        let start = limit - self.settings.first_run_lookback;
        let now = (self.clock)();
        let topic = {
            let mut guard = session.lock().await;
            let stream = guard
                .state
                .streams
                .entry(metric.id.clone())
                .or_insert_with(|| StreamState {
                    metric_name: metric.name.clone(),
                    topic: topic_for_metric_name(&metric.name),
                    realtime: Sweep::new(start, limit, Order::OldestFirst),
                    rereads: Vec::new(),
                    passes: Default::default(),
                    days: Default::default(),
                });
            stream.metric_name = metric.name.clone();
            stream.realtime.to = stream.realtime.to.max(limit);
            stream.topic.clone()
        };
        let realtime = SweepSlot::Realtime(metric.id.clone());
        if !self
            .read_sweep(&realtime, metric, &topic, stop_at, session, split)
            .await?
        {
            return Ok(false);
        }
        self.queue_late_passes(metric, now, stop_at, session)
            .await?;
        let reread = SweepSlot::Reread(metric.id.clone());
        loop {
            let queued = {
                let mut guard = session.lock().await;
                guard
                    .state
                    .streams
                    .get_mut(&metric.id)
                    .is_some_and(|stream| !stream.rereads.is_empty())
            };
            if !queued {
                return Ok(true);
            }
            if !self
                .read_sweep(&reread, metric, &topic, stop_at, session, split)
                .await?
            {
                return Ok(false);
            }
            let mut guard = session.lock().await;
            if let Some(stream) = guard.state.streams.get_mut(&metric.id)
                && !stream.rereads.is_empty()
            {
                let finished = stream.rereads.remove(0);
                if let Some((day, count)) = finished.day_count {
                    stream.days.entry(day).or_default().klaviyo_when_reread = Some(count);
                }
            }
            self.checkpoint(&mut guard).await?;
        }
    }

    /// Queues the re-reads of the late-event passes that are due for `metric`: the recent
    /// hours behind the cursor, and the days whose count at Klaviyo differs from the ids
    /// stored. A count check Klaviyo cannot answer is skipped with a warning (and tried
    /// again next run); it never stops the run.
    async fn queue_late_passes(
        &self,
        metric: &AccountMetric,
        now: DateTime<Utc>,
        stop_at: Instant,
        session: &Mutex<Session>,
    ) -> Result<(), PullError> {
        let late = self.settings.late;
        let (cursor, stream_from, passes) = {
            let mut guard = session.lock().await;
            let Some(stream) = guard.state.streams.get_mut(&metric.id) else {
                return Ok(());
            };
            let cursor = stream.realtime.done;
            if late.recent > TimeDelta::zero()
                && is_due(stream.passes.recent, late.recent_every, now)
                && stream.rereads.iter().all(|r| r.day_count.is_some())
            {
                let from = (cursor - late.recent).max(stream.realtime.from);
                if from < cursor {
                    stream.rereads.push(Reread {
                        sweep: Sweep::new(from, cursor, Order::OldestFirst),
                        day_count: None,
                    });
                }
                stream.passes.recent = Some(now);
            }
            (cursor, stream.realtime.from, stream.passes.clone())
        };
        let mut checks = Vec::new();
        if late.week_days > 0 && is_due(passes.week, late.week_every, now) {
            checks.push((0, late.week_days, true));
        }
        if late.month_days > late.week_days && is_due(passes.month, late.month_every, now) {
            checks.push((late.week_days + 1, late.month_days, false));
        }
        for (first_back, last_back, is_week) in checks {
            let Some((from, to)) = checked_days(cursor, stream_from, first_back, last_back) else {
                self.mark_pass(session, &metric.id, is_week, now).await;
                continue;
            };
            let mut counts = Vec::new();
            for (span_from, span_to) in count_spans(from, to, now) {
                let body = daily_count_request(&metric.id, span_from, span_to);
                session.lock().await.report.count_checks += 1;
                let answer = match self.api.metric_aggregates(body, stop_at).await {
                    Ok(answer) => answer,
                    Err(EventsApiError::Deadline) => return Ok(()),
                    Err(err @ EventsApiError::Unauthorized { .. }) => return Err(err.into()),
                    Err(err) => {
                        tracing::warn!(metric = %metric.name, error = %err, "Klaviyo's daily counts are not available; the late-event check waits for the next run");
                        return Ok(());
                    }
                };
                match parse_daily_counts(&answer) {
                    Ok(days) => counts.extend(days),
                    Err(err) => {
                        tracing::warn!(metric = %metric.name, error = %err, "Klaviyo's daily counts are not readable; the late-event check waits for the next run");
                        return Ok(());
                    }
                }
            }
            let mut guard = session.lock().await;
            let mut queued = 0;
            if let Some(stream) = guard.state.streams.get_mut(&metric.id) {
                for (day, count) in days_to_reread(&counts, &stream.days) {
                    let Some(day_start) = day.and_hms_opt(0, 0, 0).map(|t| t.and_utc()) else {
                        continue;
                    };
                    if stream
                        .rereads
                        .iter()
                        .any(|r| r.day_count.is_some_and(|(d, _)| d == day))
                    {
                        continue;
                    }
                    stream.rereads.push(Reread {
                        // The cursor's own day only up to the cursor.
                        sweep: Sweep::new(
                            day_start,
                            (day_start + TimeDelta::days(1)).min(cursor),
                            Order::OldestFirst,
                        ),
                        day_count: Some((day, count)),
                    });
                    queued += 1;
                }
                if let Some(oldest) = window_floor(cursor)
                    .checked_sub_days(chrono::Days::new(late.month_days.max(late.week_days) + 1))
                {
                    forget_days_before(&mut stream.days, oldest.date_naive());
                }
            }
            guard.report.days_reread += queued;
            drop(guard);
            self.mark_pass(session, &metric.id, is_week, now).await;
        }
        Ok(())
    }

    async fn mark_pass(
        &self,
        session: &Mutex<Session>,
        metric_id: &str,
        week: bool,
        now: DateTime<Utc>,
    ) {
        if let Some(stream) = session.lock().await.state.streams.get_mut(metric_id) {
            if week {
                stream.passes.week = Some(now);
            } else {
                stream.passes.month = Some(now);
            }
        }
    }

    /// Reads the sweep in `slot` to its end or until `stop_at`, up to
    /// [`PullSettings::parallel_windows`] windows at once; whether it is complete.
    async fn read_sweep(
        &self,
        slot: &SweepSlot,
        metric: &AccountMetric,
        topic: &str,
        stop_at: Instant,
        session: &Mutex<Session>,
        split: &Notify,
    ) -> Result<bool, PullError> {
        let mut in_flight = FuturesUnordered::new();
        let mut busy: Vec<DateTime<Utc>> = Vec::new();
        let mut exhausted = false;
        loop {
            let may_start = !exhausted
                && in_flight.len() < self.settings.parallel_windows.max(1)
                && !self.should_stop(stop_at);
            if !may_start && in_flight.is_empty() {
                break;
            }
            // Waiting for the state's lock and driving the windows in flight at once: a
            // window may hold the lock across its checkpoint's await, and only polling it
            // lets it finish and release the lock.
            tokio::select! {
                biased;
                finished = in_flight.next(), if !in_flight.is_empty() => {
                    if let Some((from, result)) = finished {
                        busy.retain(|started| *started != from);
                        // On an error the other windows stop where they are: each saved its
                        // state after its last stored page, so nothing stored is forgotten.
                        result?;
                    }
                }
                mut guard = session.lock(), if may_start => {
                    let window = slot
                        .get(&mut guard.state)
                        .and_then(|sweep| sweep.next_window(&busy));
                    drop(guard);
                    match window {
                        Some(window) => {
                            busy.push(window.from);
                            in_flight.push(async move {
                                let from = window.from;
                                let result = self
                                    .read_window(
                                        slot, metric, topic, window, stop_at, session, split,
                                    )
                                    .await;
                                (from, result)
                            });
                        }
                        None => exhausted = true,
                    }
                }
                // A window split in two: its second half is a window to start.
                () = split.notified(), if exhausted => exhausted = false,
            }
        }
        let mut guard = session.lock().await;
        Ok(slot
            .get(&mut guard.state)
            .is_none_or(|sweep| sweep.is_complete()))
    }

    /// Reads one window page by page until its last page is stored or the run must stop.
    /// A window whose first page shows it is dense is split, and its second half announced
    /// on `split` for another reader.
    #[allow(clippy::too_many_arguments)]
    async fn read_window(
        &self,
        slot: &SweepSlot,
        metric: &AccountMetric,
        topic: &str,
        window: OpenWindow,
        stop_at: Instant,
        session: &Mutex<Session>,
        split: &Notify,
    ) -> Result<(), PullError> {
        // Windows never cross a UTC day (windows.rs): the window's day is its events' day.
        let day = window.from.date_naive();
        let ledger = self.open_ledger(session, &metric.id, day).await?;
        let result = self
            .read_window_pages(
                slot, metric, topic, window, stop_at, session, split, &ledger,
            )
            .await;
        let closed = {
            let mut guard = session.lock().await;
            self.close_ledger(&mut guard, &metric.id, day).await
        };
        result.and(closed)
    }

    /// [`Self::read_window`]'s pages, with the day's ledger open.
    #[allow(clippy::too_many_arguments)]
    async fn read_window_pages(
        &self,
        slot: &SweepSlot,
        metric: &AccountMetric,
        topic: &str,
        mut window: OpenWindow,
        stop_at: Instant,
        session: &Mutex<Session>,
        split: &Notify,
        ledger: &Arc<RwLock<IdLedger>>,
    ) -> Result<(), PullError> {
        let mut restarts: Option<(DateTime<Utc>, u32)> = None;
        loop {
            if self.should_stop(stop_at) {
                return Ok(());
            }
            let page_size = session.lock().await.page_size;
            let fresh_query_from = window.next_link.is_none().then_some(window.resume_at);
            let url = match &window.next_link {
                Some(next) => next.clone(),
                None => format!(
                    "{}/api/events?{}",
                    self.api.base_url(),
                    events_query(&metric.id, window.resume_at, window.to, page_size)
                ),
            };
            let body = match self.api.events_page(&url, stop_at).await {
                Ok(body) => body,
                Err(EventsApiError::InvalidCursor) if window.next_link.is_some() => {
                    let count = match restarts {
                        Some((at, count)) if at == window.resume_at => count + 1,
                        _ => 1,
                    };
                    if count > MAX_RESTARTS_WITHOUT_PROGRESS {
                        return Err(PullError::CursorKeepsExpiring {
                            at: window.resume_at,
                        });
                    }
                    restarts = Some((window.resume_at, count));
                    tracing::warn!(metric = %metric.name, "cursor expired; reading the window again from the last stored second");
                    window.next_link = None;
                    let mut guard = session.lock().await;
                    if let Some(sweep) = slot.get(&mut guard.state) {
                        sweep.restart_window(window.from);
                    }
                    self.checkpoint(&mut guard).await?;
                    continue;
                }
                Err(EventsApiError::BadRequest(detail))
                    if window.next_link.is_none() && page_size > DEFAULT_EVENTS_PAGE_SIZE =>
                {
                    tracing::warn!(detail = %detail, "Klaviyo refused page[size]={page_size}; using {DEFAULT_EVENTS_PAGE_SIZE}");
                    session.lock().await.page_size = DEFAULT_EVENTS_PAGE_SIZE;
                    continue;
                }
                Err(EventsApiError::Deadline) => return Ok(()),
                Err(err) => return Err(err.into()),
            };
            let received_at = (self.clock)();
            let revision = self.api.revision().to_owned();
            let topic_owned = topic.to_owned();
            let reading = window.clone();
            let known = ledger.clone();
            let account_id = session.lock().await.state.account_id.clone();
            let page = cpu_work(WorkSize::Large, move || {
                let read = PageReading {
                    topic: &topic_owned,
                    revision: &revision,
                    account_id: account_id.as_deref(),
                    received_at,
                    window: &reading,
                    ledger: &known,
                };
                read_page(&body, &read)
            })
            .await
            .map_err(|_| PullError::Page("the page-reading task failed".into()))?
            .map_err(PullError::Page)?;
            let (outcome, _) = store_resolved(
                self.sink.as_ref(),
                self.settings.only_own_profiles,
                WorkSize::Large,
                page.mapped,
                page.resolutions,
                received_at,
                stop_at.max(Instant::now() + std::time::Duration::from_secs(30)),
            )
            .await?;
            {
                let mut known = ledger.write().unwrap_or_else(|p| p.into_inner());
                for &print in &page.new_ids {
                    known.insert_fingerprint(print);
                }
            }
            let mut guard = session.lock().await;
            if let Some(open) = guard
                .ledgers
                .get_mut(&(metric.id.clone(), window.from.date_naive()))
            {
                for &print in &page.new_ids {
                    open.unsaved.insert_fingerprint(print);
                }
            }
            let last_second = page.position.last_second;
            // More events follow in the window: the page was full, whatever size Klaviyo
            // chose to send (it may send fewer than page[size] asked for).
            let more_follow = page.position.next_link.is_some();
            let still_open = slot.get(&mut guard.state).and_then(|sweep| {
                sweep.page_stored(window.from, page.position);
                sweep.open.iter().find(|w| w.from == window.from).cloned()
            });
            self.checkpoint_if_due(&mut guard).await?;
            guard.report.pages += 1;
            guard.report.already_stored += page.already_stored as u64;
            guard.report.events += outcome.accepted as u64;
            guard.report.rejected += outcome.rejected as u64;
            guard.report.skipped += outcome.skipped as u64;
            let remaining = slot
                .get(&mut guard.state)
                .map_or(TimeDelta::zero(), |s| s.remaining());
            (self.on_progress)(Progress {
                events: guard.report.events,
                pages: guard.report.pages,
                remaining,
            });
            // The sweep's copy is the truth: position, ids of the resume second, cursor.
            let Some(open) = still_open else {
                return Ok(());
            };
            window = open;
            let split_at = fresh_query_from
                .zip(last_second)
                .and_then(|(start, last)| dense_split_point(start, window.to, last, more_follow));
            if let Some(at) = split_at
                && slot
                    .get(&mut guard.state)
                    .is_some_and(|sweep| sweep.split_window(window.from, at))
            {
                self.checkpoint(&mut guard).await?;
                window.to = at;
                window.next_link = None;
                split.notify_one();
            }
        }
    }
}

/// What a day's ledger records for an event: Klaviyo's event id, or for an element that
/// could not be read (stored as rejected) its exact text, so a re-read does not reject it
/// again. An event without an id has nothing to record.
fn ledger_id(event: &source_core::klaviyo::webhook::DecodedEvent<'_>) -> Option<String> {
    match event {
        Ok(event) => event.event_id.clone(),
        Err(broken) => Some(format!("unreadable:{}", broken.raw)),
    }
}

/// Whether a plan's end lies within the settled limit (a window reaching into the last
/// seconds is never complete in this run).
fn plan_reaches(plan: &PullPlan, limit: DateTime<Utc>) -> bool {
    match plan {
        PullPlan::Window { to, .. } => *to <= limit,
        PullPlan::Incremental => true,
    }
}

/// A page read and mapped.
struct ReadPage {
    /// The fingerprints of the ids of the events mapped here (not in the day's ledger before).
    new_ids: Vec<u128>,
    /// Events the day's ledger already held, left out.
    already_stored: usize,
    mapped: Vec<Mapped>,
    resolutions: HashMap<String, Resolution>,
    /// Where the page leaves its window.
    position: StoredPage,
}

/// What a page is read with.
struct PageReading<'a> {
    topic: &'a str,
    revision: &'a str,
    account_id: Option<&'a str>,
    received_at: DateTime<Utc>,
    window: &'a OpenWindow,
    ledger: &'a RwLock<IdLedger>,
}

fn read_page(body: &[u8], read: &PageReading<'_>) -> Result<ReadPage, String> {
    let ledger = read.ledger;
    let mut page = decode_events_page(body, read.topic).map_err(|err| err.to_string())?;
    drop_already_stored(&mut page.events, read.window);
    // The position covers every event of the page, stored now or before.
    let position = stored_page(&page.events, page.next.clone());
    let before = page.events.len();
    let mut new_ids = Vec::with_capacity(before);
    {
        let known = ledger.read().unwrap_or_else(|p| p.into_inner());
        // Each id hashed once: the fingerprint is checked here and recorded, once stored,
        // in the day's ledger and in its unsaved part.
        page.events
            .retain(|event| match ledger_id(event).map(|id| fingerprint(&id)) {
                Some(print) if known.contains_fingerprint(print) => false,
                Some(print) => {
                    new_ids.push(print);
                    true
                }
                None => true,
            });
    }
    let already_stored = before - page.events.len();
    let mapped = map_events_page(page, read.revision, read.account_id, read.received_at);
    Ok(ReadPage {
        new_ids,
        already_stored,
        mapped: mapped.mapped,
        resolutions: mapped.resolutions,
        position,
    })
}
