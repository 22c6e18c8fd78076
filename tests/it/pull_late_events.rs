//! Late events over days of the schedule: the real `PullRun` against the in-memory stand-in
//! of pull_run.rs, whose events are listed seconds, minutes, hours and days after their
//! `datetime`. Each event must be stored once, and not one may be missing, while the
//! late-event passes read again only what they must.
//!
//! `cargo test -p integration-tests --test it pull_late_events -- --nocapture` prints the
//! figures (rows per distinct event, Klaviyo requests a day).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use source_core::pull::late_events::LatePasses;
use source_io::pull::run::PullPlan;
use source_io::sink::memory::MemorySink;
use tokio::time::Instant;

use super::pull_run::{
    KlaviyoStandIn, MemoryState, StoredEvent, deadline, now, run_over, stored_once,
};

/// The first simulated instant: events start here.
fn start() -> DateTime<Utc> {
    "2026-11-01T00:00:00Z".parse().unwrap()
}

/// How late event `i` is listed, spread deterministically: 85 % within seconds, 8 %
/// minutes, 5 % hours, 1 % days, 1 % beyond a week.
fn lateness(i: i64) -> TimeDelta {
    // A fixed multiplicative scramble, so lateness does not follow the event's order.
    let r = (i.wrapping_mul(2_654_435_761) >> 7).rem_euclid(10_000);
    match r % 100 {
        0..=84 => TimeDelta::seconds(10),
        85..=92 => TimeDelta::minutes(5 + r % 45),
        93..=97 => TimeDelta::hours(1 + r % 20),
        98 => TimeDelta::days(1 + r % 6),
        _ => TimeDelta::days(9 + r % 6),
    }
}

/// One event a minute for `days` days from [`start`], each listed after its lateness.
fn late_events(days: i64) -> Vec<StoredEvent> {
    (0..days * 24 * 60)
        .map(|i| {
            let at = start() + TimeDelta::minutes(i) + TimeDelta::seconds(i % 50);
            StoredEvent {
                id: format!("L{i:06}"),
                at,
                listed_at: Some(at + lateness(i)),
            }
        })
        .collect()
}

/// What a simulated schedule did.
struct Simulated {
    rows: usize,
    distinct: usize,
    missing: usize,
    pages: usize,
    count_queries: usize,
    /// The longest time from Klaviyo listing an event to its row, for events listed up to
    /// a week late, and for those listed later.
    longest_wait_within_week: TimeDelta,
    longest_wait_later: TimeDelta,
}

/// Runs the incremental pull every `every` until `until`, then hourly until `settled`.
async fn simulate(
    events: &[StoredEvent],
    late: LatePasses,
    every: TimeDelta,
    until: DateTime<Utc>,
    settled: DateTime<Utc>,
) -> Simulated {
    let api = KlaviyoStandIn::new(events.to_vec());
    let store = Arc::new(MemoryState::default());
    let sink = Arc::new(MemorySink::default());
    let mut at = start() + every;
    while at <= settled {
        *api.clock.lock().unwrap() = at;
        let mut run = run_over(api.clone(), store.clone(), sink.clone(), "schedule");
        run.settings.late = late;
        let report = run.run(&PullPlan::Incremental, deadline()).await.unwrap();
        assert!(report.complete, "a run at {at} did not finish");
        at += if at < until {
            every
        } else {
            TimeDelta::hours(1)
        };
        // Simulated time passes between runs; tokio's paused clock with it, for the
        // state's save interval.
        tokio::time::advance(Duration::from_secs(60)).await;
    }
    let stored = sink.rows().len();
    let ids = stored_once_or_count(&sink);
    let missing = events.iter().filter(|e| !ids.contains(&e.id)).count();
    let received: std::collections::HashMap<String, DateTime<Utc>> = sink
        .rows()
        .iter()
        .map(|row| {
            let columns = row.columns().unwrap();
            let id = columns["context_klaviyo_event_id"]
                .as_str()
                .unwrap()
                .to_owned();
            let at = columns["received_at"].as_str().unwrap().parse().unwrap();
            (id, at)
        })
        .collect();
    let mut longest_wait_within_week = TimeDelta::zero();
    let mut longest_wait_later = TimeDelta::zero();
    for event in events {
        let (Some(listed), Some(stored_at)) = (event.listed_at, received.get(&event.id)) else {
            continue;
        };
        let wait = *stored_at - listed.max(event.at);
        if listed - event.at <= TimeDelta::days(7) {
            longest_wait_within_week = longest_wait_within_week.max(wait);
        } else {
            longest_wait_later = longest_wait_later.max(wait);
        }
    }
    Simulated {
        rows: stored,
        distinct: ids.len(),
        missing,
        pages: api.pages_served.load(Ordering::Relaxed),
        count_queries: api.counts_served.load(Ordering::Relaxed),
        longest_wait_within_week,
        longest_wait_later,
    }
}

/// The distinct ids stored (copies allowed: the figure counts them).
fn stored_once_or_count(sink: &MemorySink) -> std::collections::BTreeSet<String> {
    sink.rows()
        .iter()
        .map(|row| {
            row.columns().unwrap()["context_klaviyo_event_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn ten_days_of_the_schedule_store_every_late_event_once() {
    let days = 10;
    let events = late_events(days);
    let every = TimeDelta::minutes(15);
    let until = start() + TimeDelta::days(days);
    // Long enough for the latest event (14 days late) and the daily check after it.
    let settled = until + TimeDelta::days(16);
    let with_passes = simulate(&events, LatePasses::default(), every, until, settled).await;
    let without = simulate(&events, LatePasses::none(), every, until, settled).await;
    let ratio = with_passes.rows as f64 / with_passes.distinct as f64;
    let runs_days = (settled - start()).num_days() as f64;
    let late_pages_a_day = (with_passes.pages - without.pages) as f64 / runs_days;
    let counts_a_day = with_passes.count_queries as f64 / runs_days;
    eprintln!(
        "late events over {days} days of a 15-minute schedule (then hourly to day {}): {} events, {} raw rows, {} distinct, {ratio:.4} rows per distinct event, {} missing; without late passes {} missing",
        runs_days,
        events.len(),
        with_passes.rows,
        with_passes.distinct,
        with_passes.missing,
        without.missing
    );
    eprintln!(
        "Klaviyo requests a day for the late-event passes, one metric: {late_pages_a_day:.1} event pages + {counts_a_day:.1} daily-count queries (realtime alone: {:.1} pages a day)",
        without.pages as f64 / runs_days
    );
    eprintln!(
        "longest wait from listing to row: {} min for events listed up to a week late, {} h for later ones",
        with_passes.longest_wait_within_week.num_minutes(),
        with_passes.longest_wait_later.num_hours()
    );
    assert_eq!(with_passes.missing, 0, "not one late event may be missing");
    // The bounds of docs/pull.md: the week check every 6 hours (plus the hourly runs of the
    // simulation's tail), the month check once a day.
    assert!(with_passes.longest_wait_within_week <= TimeDelta::hours(7));
    assert!(with_passes.longest_wait_later <= TimeDelta::hours(25));
    assert!(ratio <= 1.05, "{ratio} raw rows per distinct event");
    // The realtime sweep alone misses what Klaviyo listed behind its cursor: the passes
    // are what catches it.
    assert!(without.missing > events.len() / 20, "{}", without.missing);
    assert_eq!(without.count_queries, 0);
}

#[tokio::test(start_paused = true)]
async fn an_explicit_window_read_again_stores_only_its_late_events() {
    let from = now() - TimeDelta::days(3);
    let to = now() - TimeDelta::days(1);
    let events: Vec<StoredEvent> = (0..2_000)
        .map(|i| StoredEvent {
            id: format!("W{i:05}"),
            at: from + TimeDelta::seconds(i * 80),
            // Every tenth event is listed only after the first read.
            listed_at: (i % 10 == 0).then(|| now() + TimeDelta::hours(1)),
        })
        .collect();
    let api = KlaviyoStandIn::new(events.clone());
    let store = Arc::new(MemoryState::default());
    let sink = Arc::new(MemorySink::default());
    let plan = PullPlan::Window {
        from,
        to,
        order: source_core::pull::state::Order::OldestFirst,
    };
    let first = run_over(api.clone(), store.clone(), sink.clone(), "cli")
        .run(&plan, deadline())
        .await
        .unwrap();
    assert!(first.complete);
    assert_eq!(first.events, 1_800);
    *api.clock.lock().unwrap() = now() + TimeDelta::hours(2);
    let again = run_over(api.clone(), store.clone(), sink.clone(), "cli")
        .run(&plan, Instant::now() + Duration::from_secs(840))
        .await
        .unwrap();
    assert!(again.complete);
    assert_eq!(again.events, 200, "only the late events are stored");
    assert_eq!(again.already_stored, 1_800);
    assert_eq!(stored_once(&sink).len(), 2_000);
    // A third read finds nothing new and stores nothing.
    let third = run_over(api, store, sink.clone(), "cli")
        .run(&plan, Instant::now() + Duration::from_secs(840))
        .await
        .unwrap();
    assert_eq!((third.events, third.already_stored), (0, 2_000));
    assert_eq!(sink.rows().len(), 2_000);
}
