//! The pull run in process: the real `PullRun` against an in-memory stand-in for Klaviyo's
//! Events API, an in-memory state store and the memory sink, on tokio's paused clock. The
//! interleavings that used to need the whole binary and the HTTP double (a run stopped and
//! resumed, a dense window split, an expired cursor, a lease held by another run) are here;
//! `tests/e2e/test_pull.py` keeps the end-to-end cases.
//!
//! The stand-in answers as Klaviyo documents `GET /api/events` (revision 2026-01-15):
//! JSON:API resources `{"type": "event", "id", "attributes": {"timestamp", "datetime",
//! "event_properties", "uuid"}, "relationships": {"metric", "profile"}}`, sorted by
//! `datetime` with the `filter` conditions `equals(metric_id, ...)`,
//! `greater-or-equal(datetime, ...)`, `less-than(datetime, ...)`, up to `page[size]` events
//! a page, `links.next` with `page[cursor]` while more remain, and the profiles in
//! `included`. An expired cursor is a 400 "Invalid cursor provided." (the run sees
//! `EventsApiError::InvalidCursor`).
//! <https://developers.klaviyo.com/en/reference/get_events>
//!
//! `POST /api/metric-aggregates` answers the daily `count` of the events listed by then,
//! per UTC day of `[greater-or-equal, less-than)` (`interval: day`, `timezone: UTC`):
//! `{"data": {"attributes": {"dates": [...], "data": [{"measurements": {"count": [...]}}]}}}`.
//! <https://developers.klaviyo.com/en/reference/query_metric_aggregates>
//!
//! `GET /api/accounts` lists the one account of the key: `{"data": [{"type": "account",
//! "id"}]}`. <https://developers.klaviyo.com/en/reference/get_accounts>
//!
//! An event may be listed late (Klaviyo is eventually consistent): until the stand-in's
//! clock reaches its `listed_at`, no query and no count sees it (an **assumption**: Klaviyo
//! documents late listing, not how late).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use source_core::klaviyo::metrics_page::AccountMetric;
use source_core::pull::state::{Lease, PullState};
use source_io::pull::events_source::{EventsApiError, EventsSource, SourceFuture};
use source_io::pull::id_ledgers::MemoryIdLedgers;
use source_io::pull::run::{PullError, PullPlan, PullRun, PullSettings};
use source_io::pull::state_store::{PullStateStore, StateError, StateVersion, StoreFuture};
use source_io::sink::memory::MemorySink;
use source_io::sink::{DeliveryFuture, EventSink, SinkError};
use tokio::time::Instant;

const BASE: &str = "https://a.klaviyo.test";
/// The account the stand-in's key belongs to (`GET /api/accounts`).
const ACCOUNT: &str = "XyZ9Ab";
pub(crate) const OPENED: &str = "MtOpen";

pub(crate) fn now() -> DateTime<Utc> {
    "2026-11-10T12:00:00Z".parse().unwrap()
}

/// One event the stand-in holds.
#[derive(Debug, Clone)]
pub(crate) struct StoredEvent {
    pub(crate) id: String,
    pub(crate) at: DateTime<Utc>,
    /// When Klaviyo starts listing it (`None`: at once).
    pub(crate) listed_at: Option<DateTime<Utc>>,
}

/// Klaviyo's Events API, in memory.
pub(crate) struct KlaviyoStandIn {
    events: Vec<StoredEvent>,
    /// The stand-in's (and the runs') current time.
    pub(crate) clock: Mutex<DateTime<Utc>>,
    /// Requests answered: event pages, and daily-count queries.
    pub(crate) pages_served: AtomicUsize,
    pub(crate) counts_served: AtomicUsize,
    /// Cursor uses to refuse as expired before accepting any.
    expire_cursors: AtomicUsize,
    /// The most events a page holds whatever `page[size]` asks (0: as asked): Klaviyo's
    /// 2026-01-15 reference still says "a maximum of 200 events per page" in one place.
    page_cap: AtomicUsize,
    /// Every `greater-or-equal(datetime, ...)` of a fresh query (no cursor), in order.
    fresh_query_starts: Mutex<Vec<String>>,
}

impl KlaviyoStandIn {
    pub(crate) fn new(mut events: Vec<StoredEvent>) -> Arc<Self> {
        events.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
        Arc::new(Self {
            events,
            clock: Mutex::new(now()),
            pages_served: AtomicUsize::new(0),
            counts_served: AtomicUsize::new(0),
            page_cap: AtomicUsize::new(0),
            expire_cursors: AtomicUsize::new(0),
            fresh_query_starts: Mutex::new(Vec::new()),
        })
    }

    fn page(&self, url: &str) -> Result<Vec<u8>, EventsApiError> {
        let query = url.split_once('?').map_or("", |(_, query)| query);
        let param = |name: &str| {
            query.split('&').find_map(|pair| {
                let (key, value) = pair.split_once('=')?;
                (decode(key) == name).then(|| decode(value))
            })
        };
        let filter = param("filter").unwrap_or_default();
        let condition = |operator: &str| {
            let start = filter.find(&format!("{operator}("))? + operator.len() + 1;
            let (_, value) = filter[start..filter[start..].find(')')? + start].split_once(',')?;
            Some(value.trim_matches('"').to_owned())
        };
        let metric = condition("equals").unwrap_or_default();
        let low: DateTime<Utc> = condition("greater-or-equal").unwrap().parse().unwrap();
        let high: DateTime<Utc> = condition("less-than").unwrap().parse().unwrap();
        let size: usize = param("page[size]").map_or(200, |size| size.parse().unwrap());
        let size = match self.page_cap.load(Ordering::Relaxed) {
            0 => size,
            cap => size.min(cap),
        };
        let after = match param("page[cursor]") {
            Some(cursor) => {
                if self
                    .expire_cursors
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
                {
                    return Err(EventsApiError::InvalidCursor);
                }
                Some(cursor)
            }
            None => {
                let start = condition("greater-or-equal").unwrap();
                self.fresh_query_starts.lock().unwrap().push(start);
                None
            }
        };
        let listed_by = *self.clock.lock().unwrap();
        let matching: Vec<&StoredEvent> = self
            .events
            .iter()
            .filter(|e| metric == OPENED && low <= e.at && e.at < high)
            .filter(|e| e.listed_at.is_none_or(|listed| listed <= listed_by))
            .filter(|e| {
                after
                    .as_deref()
                    .is_none_or(|key| cursor_key(e).as_str() > key)
            })
            .collect();
        let page: Vec<&StoredEvent> = matching.iter().take(size).copied().collect();
        let next = (matching.len() > size).then(|| {
            let rest: Vec<&str> = query
                .split('&')
                .filter(|pair| !pair.starts_with("page%5Bcursor%5D="))
                .collect();
            format!(
                "{BASE}/api/events?{}&page%5Bcursor%5D={}",
                rest.join("&"),
                cursor_key(page[page.len() - 1])
            )
        });
        let data: Vec<Value> = page.iter().map(|e| resource(e)).collect();
        let profiles: BTreeSet<String> = page.iter().map(|e| profile_of(e)).collect();
        let included: Vec<Value> = profiles
            .iter()
            .map(|id| json!({"type": "profile", "id": id,
                "attributes": {"email": format!("{id}@example.com"), "external_id": format!("ext-{id}")}}))
            .collect();
        Ok(serde_json::to_vec(&json!({
            "data": data, "included": included,
            "links": {"self": url, "next": next, "prev": null}
        }))
        .unwrap())
    }
}

impl KlaviyoStandIn {
    /// Daily counts of the events listed by now, for a `daily_count_request` body.
    fn daily_counts(&self, body: &[u8]) -> Vec<u8> {
        let request: Value = serde_json::from_slice(body).unwrap();
        let attributes = &request["data"]["attributes"];
        assert_eq!(attributes["interval"], "day");
        assert_eq!(attributes["timezone"], "UTC");
        let bound = |operator: &str| -> DateTime<Utc> {
            let filter = attributes["filter"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .find(|f| f.starts_with(operator))
                .unwrap();
            filter[operator.len() + "(datetime,".len()..filter.len() - 1]
                .parse()
                .unwrap()
        };
        let (low, high) = (bound("greater-or-equal"), bound("less-than"));
        assert!(
            high - low <= TimeDelta::days(366),
            "Klaviyo's maximum is a year"
        );
        let listed_by = *self.clock.lock().unwrap();
        let metric = attributes["metric_id"].as_str().unwrap();
        let mut dates = Vec::new();
        let mut counts = Vec::new();
        let mut day = low.date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc();
        while day < high {
            let (from, to) = (day.max(low), (day + TimeDelta::days(1)).min(high));
            let count = self
                .events
                .iter()
                .filter(|e| metric == OPENED && from <= e.at && e.at < to)
                .filter(|e| e.listed_at.is_none_or(|listed| listed <= listed_by))
                .count();
            dates.push(day.to_rfc3339());
            counts.push(count as f64);
            day += TimeDelta::days(1);
        }
        serde_json::to_vec(&json!({"data": {"type": "metric-aggregate", "id": "x",
            "attributes": {"dates": dates,
                "data": [{"dimensions": [], "measurements": {"count": counts}}]}}}))
        .unwrap()
    }
}

/// A cursor: the page's last (datetime, id), as text that sorts like the pair.
fn cursor_key(event: &StoredEvent) -> String {
    format!("{}~{}", event.at.timestamp_micros(), event.id)
}

fn profile_of(event: &StoredEvent) -> String {
    format!("P{}", event.id.len() % 7)
}

fn resource(event: &StoredEvent) -> Value {
    json!({
        "type": "event",
        "id": event.id,
        "attributes": {
            "timestamp": event.at.timestamp(),
            "datetime": event.at.to_rfc3339(),
            "event_properties": {"Subject": "Hello", "$message": "01JMSG", "Campaign Name": "Launch"},
            "uuid": format!("uuid-{}", event.id),
        },
        "relationships": {
            "metric": {"data": {"type": "metric", "id": OPENED}},
            "profile": {"data": {"type": "profile", "id": profile_of(event)}},
        },
    })
}

fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .unwrap()
        .into_owned()
}

impl EventsSource for KlaviyoStandIn {
    fn base_url(&self) -> &str {
        BASE
    }

    fn revision(&self) -> &str {
        "2026-01-15"
    }

    fn metrics(&self, _deadline: Instant) -> SourceFuture<'_, Vec<AccountMetric>> {
        Box::pin(async {
            Ok(vec![AccountMetric {
                id: OPENED.into(),
                name: "Opened Email".into(),
                integration_key: Some("klaviyo".into()),
            }])
        })
    }

    fn events_page<'a>(&'a self, url: &'a str, _deadline: Instant) -> SourceFuture<'a, Vec<u8>> {
        Box::pin(async move {
            // A page takes Klaviyo a moment; on the paused clock this only orders the windows.
            tokio::time::sleep(Duration::from_millis(300)).await;
            self.pages_served.fetch_add(1, Ordering::Relaxed);
            self.page(url)
        })
    }

    fn account_id(&self, _deadline: Instant) -> SourceFuture<'_, Option<String>> {
        Box::pin(async { Ok(Some(ACCOUNT.to_owned())) })
    }

    fn metric_aggregates(&self, body: Vec<u8>, _deadline: Instant) -> SourceFuture<'_, Vec<u8>> {
        Box::pin(async move {
            self.counts_served.fetch_add(1, Ordering::Relaxed);
            Ok(self.daily_counts(&body))
        })
    }
}

/// The state in memory, with S3's compare-and-set: a save names the version it read.
#[derive(Default)]
pub(crate) struct MemoryState {
    pub(crate) stored: Mutex<(PullState, u64)>,
    /// The id ledgers, kept with the state so every run of a test shares them.
    pub(crate) ledgers: Arc<MemoryIdLedgers>,
}

impl PullStateStore for MemoryState {
    fn load(&self) -> StoreFuture<'_, (PullState, StateVersion)> {
        Box::pin(async {
            let stored = self.stored.lock().unwrap();
            let version = (stored.1 > 0).then(|| stored.1.to_string());
            Ok((stored.0.clone(), version))
        })
    }

    fn save<'a>(
        &'a self,
        state: &'a PullState,
        read_at: &'a StateVersion,
    ) -> StoreFuture<'a, StateVersion> {
        Box::pin(async move {
            let mut stored = self.stored.lock().unwrap();
            let current = (stored.1 > 0).then(|| stored.1.to_string());
            if current != *read_at {
                return Err(StateError::Conflict);
            }
            stored.1 += 1;
            stored.0 = state.clone();
            Ok(Some(stored.1.to_string()))
        })
    }

    fn place(&self) -> String {
        "memory".into()
    }
}

/// A stand-in holding `events`, an empty state and an empty sink.
fn fresh(events: &[StoredEvent]) -> (Arc<KlaviyoStandIn>, Arc<MemoryState>, Arc<MemorySink>) {
    (
        KlaviyoStandIn::new(events.to_vec()),
        Arc::new(MemoryState::default()),
        Arc::new(MemorySink::default()),
    )
}

pub(crate) fn run_over(
    api: Arc<KlaviyoStandIn>,
    store: Arc<MemoryState>,
    sink: Arc<MemorySink>,
    holder: &str,
) -> PullRun {
    let ledgers = store.ledgers.clone();
    let clock_of = api.clone();
    PullRun {
        api,
        store,
        ledgers,
        sink,
        settings: PullSettings::default(),
        clock: Arc::new(move || *clock_of.clock.lock().unwrap()),
        holder: holder.into(),
        on_progress: Arc::new(|_| {}),
        stop: Arc::new(AtomicBool::new(false)),
    }
}

/// `count` events spread evenly over the `days` before now, less the settle minute.
fn events_over(days: i64, count: usize) -> Vec<StoredEvent> {
    let start = now() - TimeDelta::days(days);
    let step = (TimeDelta::days(days) - TimeDelta::minutes(5)).num_milliseconds() / count as i64;
    (0..count)
        .map(|i| StoredEvent {
            id: format!("E{i:06}"),
            at: start + TimeDelta::milliseconds(step * i as i64),
            listed_at: None,
        })
        .collect()
}

/// Each stored row's Klaviyo event id, checked to be stored once.
pub(crate) fn stored_once(sink: &MemorySink) -> BTreeSet<String> {
    let rows = sink.rows();
    let mut ids = BTreeSet::new();
    for row in &rows {
        let columns = row.columns().unwrap();
        let event_id = columns["context_klaviyo_event_id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(ids.insert(event_id.clone()), "{event_id} stored twice");
    }
    ids
}

fn ids_of(events: &[StoredEvent]) -> BTreeSet<String> {
    events.iter().map(|e| e.id.clone()).collect()
}

pub(crate) fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(840)
}

#[tokio::test(start_paused = true)]
async fn an_incremental_run_stores_every_event_once_and_saves_its_cursor() {
    let events = events_over(3, 2_500);
    let (api, store, sink) = fresh(&events);
    let report = run_over(api, store.clone(), sink.clone(), "run-1")
        .run(&PullPlan::Incremental, deadline())
        .await
        .unwrap();
    assert!(report.complete);
    assert_eq!(report.events, 2_500);
    assert_eq!(stored_once(&sink), ids_of(&events));
    // Every row names the account, as a webhook row does (read once, kept in the state).
    assert!(sink.rows().iter().all(|row| {
        row.columns().unwrap()["context_klaviyo_account_id"].as_str() == Some(ACCOUNT)
    }));
    let state = store.stored.lock().unwrap().0.clone();
    assert_eq!(state.lease, None, "the lease is released at the end");
    let stream = &state.streams[OPENED];
    assert_eq!(stream.realtime.done, now() - TimeDelta::seconds(60));
    assert_eq!(report.oldest_cursor, Some(stream.realtime.done));
}

#[tokio::test(start_paused = true)]
async fn a_run_stopped_between_pages_is_continued_by_the_next_without_a_copy() {
    // About 2,000 events a day: each day window takes two pages, read one window at a time.
    let events = events_over(3, 6_000);
    let (api, store, sink) = fresh(&events);
    let mut first = run_over(api.clone(), store.clone(), sink.clone(), "run-1");
    first.settings.parallel_windows = 1;
    let stop = first.stop.clone();
    first.on_progress = Arc::new(move |progress| {
        if progress.events >= 1_500 {
            stop.store(true, Ordering::Relaxed);
        }
    });
    let stopped = first.run(&PullPlan::Incremental, deadline()).await.unwrap();
    assert!(!stopped.complete);
    let after_first = stored_once(&sink);
    // Stopped after the page that passed 1,500 events, well before the 6,000.
    assert!(
        (1_500..3_000).contains(&after_first.len()),
        "{}",
        after_first.len()
    );
    assert_eq!(after_first.len() as u64, stopped.events);

    let resumed = run_over(api, store, sink.clone(), "run-2")
        .run(&PullPlan::Incremental, deadline())
        .await
        .unwrap();
    assert!(resumed.complete);
    assert_eq!(stopped.events + resumed.events, 6_000);
    assert_eq!(stored_once(&sink), ids_of(&events));
}

#[tokio::test(start_paused = true)]
async fn a_dense_window_is_split_and_read_once() {
    dense_day_is_split(0).await;
}

#[tokio::test(start_paused = true)]
async fn a_dense_window_is_split_even_when_klaviyo_sends_fewer_events_than_asked() {
    // page[size]=1000 asked, 200 sent: the page is full by its next link, not its length.
    dense_day_is_split(200).await;
}

/// 5,000 events, one a second from the start of a past day: the first full page covers
/// minutes of the day's window, so the rest of the window is split.
async fn dense_day_is_split(page_cap: usize) {
    let start: DateTime<Utc> = "2026-11-08T00:00:00Z".parse().unwrap();
    let end = start + TimeDelta::days(1);
    let events: Vec<StoredEvent> = (0..5_000)
        .map(|i| StoredEvent {
            id: format!("D{i:06}"),
            at: start + TimeDelta::seconds(i),
            listed_at: None,
        })
        .collect();
    let (api, store, sink) = fresh(&events);
    api.page_cap.store(page_cap, Ordering::Relaxed);
    let report = run_over(api.clone(), store, sink.clone(), "run-1")
        .run(&PullPlan::Incremental, deadline())
        .await
        .unwrap();
    assert!(report.complete);
    assert_eq!(stored_once(&sink), ids_of(&events));
    // The split's second half was read by a fresh query of its own, inside the dense day.
    let starts: Vec<DateTime<Utc>> = api
        .fresh_query_starts
        .lock()
        .unwrap()
        .iter()
        .map(|text| text.parse().unwrap())
        .collect();
    let inside = starts
        .iter()
        .filter(|at| **at > start && **at < end)
        .count();
    assert!(
        inside >= 1,
        "no query started inside the dense window: {starts:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_expired_cursor_rereads_from_the_last_stored_second_without_a_copy() {
    // Many events per second, so the restart second holds ids already stored.
    let start = now() - TimeDelta::hours(20);
    let events: Vec<StoredEvent> = (0..2_400)
        .map(|i| StoredEvent {
            id: format!("C{i:06}"),
            at: start + TimeDelta::seconds(i / 6),
            listed_at: None,
        })
        .collect();
    let (api, store, sink) = fresh(&events);
    api.expire_cursors.store(1, Ordering::SeqCst);
    let report = run_over(api.clone(), store, sink.clone(), "run-1")
        .run(&PullPlan::Incremental, deadline())
        .await
        .unwrap();
    assert!(report.complete);
    assert_eq!(
        api.expire_cursors.load(Ordering::SeqCst),
        0,
        "the expiry was met"
    );
    assert_eq!(stored_once(&sink), ids_of(&events));
}

#[tokio::test(start_paused = true)]
async fn a_lease_held_by_another_run_stops_this_one_until_it_lapses() {
    let events = events_over(1, 300);
    let (api, store, sink) = fresh(&events);
    let held_until = now() + TimeDelta::minutes(1);
    store.stored.lock().unwrap().0.lease = Some(Lease {
        holder: "other-run".into(),
        expires_at: held_until,
    });
    store.stored.lock().unwrap().1 = 1;
    let refused = run_over(api.clone(), store.clone(), sink.clone(), "run-1")
        .run(&PullPlan::Incremental, deadline())
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, PullError::LeaseHeld { holder, until } if holder == "other-run" && *until == held_until),
        "{refused}"
    );
    assert!(sink.rows().is_empty());
    assert_eq!(store.stored.lock().unwrap().1, 1, "nothing was written");

    let mut later = run_over(api, store, sink.clone(), "run-1");
    later.clock = Arc::new(move || held_until + TimeDelta::seconds(1));
    let report = later.run(&PullPlan::Incremental, deadline()).await.unwrap();
    assert!(report.complete);
    assert_eq!(stored_once(&sink), ids_of(&events));
}

#[tokio::test(start_paused = true)]
async fn two_runs_at_once_store_each_event_once() {
    let events = events_over(2, 1_800);
    let (api, store, sink) = fresh(&events);
    let first = run_over(api.clone(), store.clone(), sink.clone(), "run-1");
    let second = run_over(api, store, sink.clone(), "run-2");
    let (a, b) = tokio::join!(
        first.run(&PullPlan::Incremental, deadline()),
        second.run(&PullPlan::Incremental, deadline())
    );
    let finished: Vec<_> = [a, b].into_iter().filter_map(Result::ok).collect();
    assert_eq!(finished.len(), 1, "exactly one run holds the lease");
    assert_eq!(stored_once(&sink), ids_of(&events));
}

/// A sink that refuses every delivery while `down` is set (the lake or Firehose failing).
struct FailingSink {
    down: AtomicBool,
    inner: MemorySink,
}

impl EventSink for FailingSink {
    fn deliver<'a>(
        &'a self,
        rows: Vec<source_core::warehouse::row::WarehouseRow>,
        deadline: Instant,
    ) -> DeliveryFuture<'a> {
        if self.down.load(Ordering::SeqCst) {
            return Box::pin(async { Err(SinkError::Task("the store is down".into())) });
        }
        self.inner.deliver(rows, deadline)
    }
}

#[tokio::test(start_paused = true)]
async fn the_cursor_never_moves_past_rows_that_were_not_stored() {
    let events = events_over(2, 1_500);
    let (api, store) = (
        KlaviyoStandIn::new(events.clone()),
        Arc::new(MemoryState::default()),
    );
    let sink = Arc::new(FailingSink {
        down: AtomicBool::new(true),
        inner: MemorySink::default(),
    });
    let mut failing = run_over(
        api.clone(),
        store.clone(),
        Arc::new(MemorySink::default()),
        "run-1",
    );
    failing.sink = sink.clone();
    let err = failing
        .run(&PullPlan::Incremental, deadline())
        .await
        .unwrap_err();
    assert!(matches!(err, PullError::Store(_)), "{err}");
    let state = store.stored.lock().unwrap().0.clone();
    let sweep = &state.streams[OPENED].realtime;
    // Only the empty days before the first event may count as read.
    let first_event = events.iter().map(|e| e.at).min().unwrap();
    assert!(sweep.done <= first_event, "{} > {first_event}", sweep.done);
    assert!(
        sweep
            .open
            .iter()
            .all(|w| w.resume_at <= first_event || w.next_link.is_none())
    );
    assert_eq!(state.lease, None);

    sink.down.store(false, Ordering::SeqCst);
    let mut healed = run_over(api, store, Arc::new(MemorySink::default()), "run-2");
    healed.sink = sink.clone();
    let report = healed
        .run(&PullPlan::Incremental, deadline())
        .await
        .unwrap();
    assert!(report.complete);
    assert_eq!(stored_once(&sink.inner), ids_of(&events));
}

#[tokio::test(start_paused = true)]
async fn a_cursor_that_always_expires_stops_the_run_instead_of_looping() {
    let at = now() - TimeDelta::hours(3);
    // 2,500 events in one second: no page can get past that second without its cursor.
    let events: Vec<StoredEvent> = (0..2_500)
        .map(|i| StoredEvent {
            id: format!("S{i:06}"),
            at,
            listed_at: None,
        })
        .collect();
    let (api, store, sink) = fresh(&events);
    api.expire_cursors.store(usize::MAX, Ordering::SeqCst);
    let err = run_over(api.clone(), store.clone(), sink.clone(), "run-1")
        .run(&PullPlan::Incremental, deadline())
        .await
        .unwrap_err();
    assert!(
        matches!(err, PullError::CursorKeepsExpiring { at: second } if second == at),
        "{err}"
    );
    // The first page of the second was stored once, whatever the restarts read again.
    assert_eq!(stored_once(&sink).len(), 1_000);

    api.expire_cursors.store(1, Ordering::SeqCst);
    let report = run_over(api, store, sink.clone(), "run-2")
        .run(&PullPlan::Incremental, deadline())
        .await
        .unwrap();
    assert!(report.complete);
    assert_eq!(stored_once(&sink), ids_of(&events));
}
