//! Where each stream of a pull stands: saved after every stored page, read at the start of
//! every run. A position only moves past rows that are already durable, so a run killed at
//! any point resumes with no gap (and at most the last page read twice, same ids).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::windows::{next_window, previous_window};

/// What a stored page tells its window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredPage {
    /// The second of the page's last event.
    pub last_second: Option<DateTime<Utc>>,
    /// The Klaviyo ids of the page's events in that second.
    pub ids_in_last_second: Vec<String>,
    /// `links.next`: `None` when the page was the window's last.
    pub next_link: Option<String>,
}

/// The saved state of every stream and job, plus the lease of the run that may change it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullState {
    /// Incremental streams, by Klaviyo metric id.
    #[serde(default)]
    pub streams: BTreeMap<String, StreamState>,
    /// Explicit windows (`pull --from --to`, backfills), by job name, then metric id.
    #[serde(default)]
    pub jobs: BTreeMap<String, BTreeMap<String, Sweep>>,
    /// The run allowed to advance anything, until it expires.
    #[serde(default)]
    pub lease: Option<Lease>,
    /// The Klaviyo account's id, read once (`GET /api/accounts`) and put on every row.
    #[serde(default)]
    pub account_id: Option<String>,
}

/// A run's claim on the state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The run's random id.
    pub holder: String,
    /// When the claim lapses if the run does not renew it (a crashed run's lease expires).
    pub expires_at: DateTime<Utc>,
}

impl PullState {
    /// Whether a run other than `holder` holds an unexpired lease at `now`.
    pub fn leased_to_another(&self, holder: &str, now: DateTime<Utc>) -> Option<&Lease> {
        self.lease
            .as_ref()
            .filter(|lease| lease.holder != holder && lease.expires_at > now)
    }
}

/// One metric's incremental stream: everything dated before `realtime` has been stored
/// (as Klaviyo listed it when read); the late-event passes catch what it listed late.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamState {
    /// The metric's name when last seen (a rename is reported).
    pub metric_name: String,
    /// The webhook topic the stream's events carry, fixed when the stream starts so a
    /// rename of the metric never moves its events to another collection.
    pub topic: String,
    /// The realtime sweep: from its start to the settled limit, advancing every run.
    pub realtime: Sweep,
    /// Re-reads queued for late events, read front first: the recent hours behind the
    /// cursor, and whole days whose count at Klaviyo differs from the ids stored.
    #[serde(default)]
    pub rereads: Vec<Reread>,
    /// When each late-event pass last ran.
    #[serde(default)]
    pub passes: PassTimes,
    /// What is known of each recent day: ids stored, Klaviyo's count when last re-read.
    #[serde(default)]
    pub days: BTreeMap<NaiveDate, DayRecord>,
}

/// A re-read queued for late events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reread {
    /// The range read again.
    pub sweep: Sweep,
    /// The whole day it covers and Klaviyo's count that asked for it (count-gated passes);
    /// `None` for the recent hours.
    #[serde(default)]
    pub day_count: Option<(NaiveDate, u64)>,
}

/// When each late-event pass last started (`None`: never).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassTimes {
    /// The re-read of the recent hours.
    #[serde(default)]
    pub recent: Option<DateTime<Utc>>,
    /// The count check of the last week's days.
    #[serde(default)]
    pub week: Option<DateTime<Utc>>,
    /// The count check of the older days.
    #[serde(default)]
    pub month: Option<DateTime<Utc>>,
}

/// One day of a stream, for the count checks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayRecord {
    /// Distinct ids stored for the day (its id ledger's size when last written).
    pub stored: u64,
    /// Klaviyo's count that last made the day be re-read in full: a count Klaviyo keeps
    /// above or below the ids stored (events deleted since, say) does not re-read the day
    /// again until it changes.
    #[serde(default)]
    pub klaviyo_when_reread: Option<u64>,
}

/// Reading order of a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// Oldest window first (the default; the realtime stream always).
    OldestFirst,
    /// Newest window first (a backfill that wants recent history soonest).
    NewestFirst,
}

/// A range of time read window by window, several windows at once. `done` is the boundary
/// reached by the windows completed in order: for oldest-first everything in `[from, done)`
/// is stored, for newest-first `[done, to)`. Windows completed out of order wait in
/// `completed` until the ones before them are done too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sweep {
    /// Start of the range (inclusive).
    pub from: DateTime<Utc>,
    /// End of the range (exclusive); an open-ended realtime sweep moves it every run.
    pub to: DateTime<Utc>,
    /// The reading order.
    pub order: Order,
    /// How far the windows completed in order reach.
    pub done: DateTime<Utc>,
    /// Windows started and not complete (read part-way, or not at all yet).
    #[serde(default)]
    pub open: Vec<OpenWindow>,
    /// Windows complete beyond `done`, as `(from, to)`.
    #[serde(default)]
    pub completed: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

/// A window read part-way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenWindow {
    /// Window start (inclusive).
    pub from: DateTime<Utc>,
    /// Window end (exclusive).
    pub to: DateTime<Utc>,
    /// The `datetime` of the last event stored: a restart of the window reads from here
    /// (inclusive: events of that second may straddle two pages; ids make them one).
    pub resume_at: DateTime<Utc>,
    /// `links.next` of the last stored page, exactly as Klaviyo returned it.
    pub next_link: Option<String>,
    /// The ids already stored whose events fall in the `resume_at` second: a read from that
    /// second skips them.
    #[serde(default)]
    pub stored_in_resume_second: Vec<String>,
}

impl Sweep {
    /// A sweep over `[from, to)` that has done nothing yet.
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>, order: Order) -> Self {
        let done = match order {
            Order::OldestFirst => from,
            Order::NewestFirst => to,
        };
        Self {
            from,
            to,
            order,
            done,
            open: Vec::new(),
            completed: Vec::new(),
        }
    }

    /// The window to read next, other than the windows in `busy` (by start): an open one,
    /// else the next unstarted one, which becomes open. `None` when nothing is left to start.
    pub fn next_window(&mut self, busy: &[DateTime<Utc>]) -> Option<OpenWindow> {
        if let Some(open) = self.open.iter().find(|w| !busy.contains(&w.from)) {
            return Some(open.clone());
        }
        let (from, to) = self.next_unstarted()?;
        let window = OpenWindow {
            from,
            to,
            resume_at: from,
            next_link: None,
            stored_in_resume_second: Vec::new(),
        };
        self.open.push(window.clone());
        Some(window)
    }

    fn next_unstarted(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let started = self
            .open
            .iter()
            .map(|w| (w.from, w.to))
            .chain(self.completed.iter().copied());
        match self.order {
            Order::OldestFirst => {
                let frontier = started.map(|(_, to)| to).fold(self.done, DateTime::max);
                next_window(frontier, self.to)
            }
            Order::NewestFirst => {
                let frontier = started.map(|(from, _)| from).fold(self.done, DateTime::min);
                previous_window(frontier, self.from)
            }
        }
    }

    /// Records a stored page of the open window starting at `window_from`: the second of
    /// its last event and the ids stored in it, and Klaviyo's next link. With no next link
    /// the window is complete.
    pub fn page_stored(&mut self, window_from: DateTime<Utc>, page: StoredPage) {
        let Some(index) = self.open.iter().position(|w| w.from == window_from) else {
            return;
        };
        let window = &mut self.open[index];
        if let Some(second) = page.last_second.filter(|s| *s < window.to) {
            if second == window.resume_at {
                for id in page.ids_in_last_second {
                    if !window.stored_in_resume_second.contains(&id) {
                        window.stored_in_resume_second.push(id);
                    }
                }
            } else if second > window.resume_at {
                window.resume_at = second;
                window.stored_in_resume_second = page.ids_in_last_second;
            }
        }
        match page.next_link {
            Some(next_link) => window.next_link = Some(next_link),
            None => {
                let window = self.open.remove(index);
                self.completed.push((window.from, window.to));
                self.advance();
            }
        }
    }

    /// Moves `done` over the completed windows that now follow it.
    fn advance(&mut self) {
        loop {
            let next = self
                .completed
                .iter()
                .position(|(from, to)| match self.order {
                    Order::OldestFirst => *from == self.done,
                    Order::NewestFirst => *to == self.done,
                });
            let Some(index) = next else { return };
            let (from, to) = self.completed.remove(index);
            self.done = match self.order {
                Order::OldestFirst => to,
                Order::NewestFirst => from,
            };
        }
    }

    /// Splits the open window starting at `window_from` at `at`: it keeps `[from, at)`,
    /// read again from its last stored second without its cursor (the cursor's query reaches
    /// past `at`), and `[at, to)` becomes a window of its own, ready to be read at once.
    /// Whether it split (`at` must lie after what is stored and before the window's end).
    pub fn split_window(&mut self, window_from: DateTime<Utc>, at: DateTime<Utc>) -> bool {
        let Some(window) = self.open.iter_mut().find(|w| w.from == window_from) else {
            return false;
        };
        if at <= window.resume_at || at >= window.to {
            return false;
        }
        let tail = OpenWindow {
            from: at,
            to: window.to,
            resume_at: at,
            next_link: None,
            stored_in_resume_second: Vec::new(),
        };
        window.to = at;
        window.next_link = None;
        self.open.push(tail);
        true
    }

    /// Forgets the next link of the open window starting at `window_from` (Klaviyo called
    /// the cursor invalid): it is read again from the last stored event's second.
    pub fn restart_window(&mut self, window_from: DateTime<Utc>) {
        if let Some(open) = self.open.iter_mut().find(|w| w.from == window_from) {
            open.next_link = None;
        }
    }

    /// Whether every window has been read.
    pub fn is_complete(&self) -> bool {
        self.open.is_empty() && self.completed.is_empty() && self.next_unstarted().is_none()
    }

    /// Time not yet known to be stored, for progress and lag.
    pub fn remaining(&self) -> TimeDelta {
        let (start, end) = match self.order {
            Order::OldestFirst => (self.done, self.to),
            Order::NewestFirst => (self.from, self.done),
        };
        (end - start).max(TimeDelta::zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time_format::parse_iso_datetime;

    fn t(text: &str) -> DateTime<Utc> {
        parse_iso_datetime(text).unwrap()
    }

    fn stored(last_second: Option<DateTime<Utc>>, next_link: Option<&str>) -> StoredPage {
        StoredPage {
            last_second,
            ids_in_last_second: vec!["e1".into()],
            next_link: next_link.map(str::to_owned),
        }
    }

    #[test]
    fn a_sweep_moves_past_a_window_only_when_its_last_page_is_stored() {
        let mut sweep = Sweep::new(
            t("2024-01-01T00:30:00Z"),
            t("2024-01-02T02:00:00Z"),
            Order::OldestFirst,
        );
        let first = sweep.next_window(&[]).unwrap();
        assert_eq!(
            (first.from, first.to),
            (t("2024-01-01T00:30:00Z"), t("2024-01-02T00:00:00Z"))
        );
        sweep.page_stored(
            first.from,
            stored(
                Some(t("2024-01-01T00:40:00Z")),
                Some("https://a.klaviyo.com/api/events?page%5Bcursor%5D=c1"),
            ),
        );
        assert_eq!(sweep.done, t("2024-01-01T00:30:00Z"));
        let open = sweep.next_window(&[]).unwrap();
        assert_eq!(open.resume_at, t("2024-01-01T00:40:00Z"));
        assert!(open.next_link.is_some());

        sweep.restart_window(open.from);
        let restarted = sweep.next_window(&[]).unwrap();
        assert_eq!(restarted.next_link, None);
        assert_eq!(restarted.resume_at, t("2024-01-01T00:40:00Z"));

        sweep.page_stored(first.from, stored(Some(t("2024-01-01T23:59:59Z")), None));
        assert_eq!(sweep.done, t("2024-01-02T00:00:00Z"));
        let second = sweep.next_window(&[]).unwrap();
        sweep.page_stored(second.from, StoredPage::default());
        assert!(sweep.is_complete());
        assert_eq!(sweep.next_window(&[]), None);
    }

    #[test]
    fn windows_read_at_once_complete_out_of_order_without_moving_done_past_a_gap() {
        let mut sweep = Sweep::new(
            t("2024-01-01T00:00:00Z"),
            t("2024-01-04T00:00:00Z"),
            Order::OldestFirst,
        );
        let first = sweep.next_window(&[]).unwrap();
        let second = sweep.next_window(&[first.from]).unwrap();
        let third = sweep.next_window(&[first.from, second.from]).unwrap();
        assert_eq!(
            [first.from, second.from, third.from],
            [
                t("2024-01-01T00:00:00Z"),
                t("2024-01-02T00:00:00Z"),
                t("2024-01-03T00:00:00Z")
            ]
        );
        assert_eq!(
            sweep.next_window(&[first.from, second.from, third.from]),
            None
        );
        sweep.page_stored(third.from, StoredPage::default());
        sweep.page_stored(second.from, StoredPage::default());
        // The first day is not stored yet: nothing counts as done.
        assert_eq!(sweep.done, t("2024-01-01T00:00:00Z"));
        assert!(!sweep.is_complete());
        // A run that resumes from here reads only the first day again.
        let mut resumed: Sweep =
            serde_json::from_str(&serde_json::to_string(&sweep).unwrap()).unwrap();
        assert_eq!(resumed.next_window(&[]).unwrap().from, first.from);
        assert_eq!(resumed.next_window(&[first.from]), None);
        sweep.page_stored(first.from, StoredPage::default());
        assert_eq!(sweep.done, t("2024-01-04T00:00:00Z"));
        assert!(sweep.is_complete());
    }

    #[test]
    fn a_split_window_completes_as_two_and_done_moves_over_both() {
        let mut sweep = Sweep::new(
            t("2024-01-01T00:00:00Z"),
            t("2024-01-02T00:00:00Z"),
            Order::OldestFirst,
        );
        let day = sweep.next_window(&[]).unwrap();
        sweep.page_stored(
            day.from,
            stored(
                Some(t("2024-01-01T00:05:00Z")),
                Some("https://a.klaviyo.com/api/events?page%5Bcursor%5D=c"),
            ),
        );
        assert!(!sweep.split_window(day.from, t("2024-01-01T00:04:00Z")));
        assert!(sweep.split_window(day.from, t("2024-01-01T12:00:00Z")));
        let head = sweep.next_window(&[]).unwrap();
        assert_eq!(
            (head.to, head.resume_at, head.next_link.as_deref()),
            (t("2024-01-01T12:00:00Z"), t("2024-01-01T00:05:00Z"), None)
        );
        let tail = sweep.next_window(&[head.from]).unwrap();
        assert_eq!((tail.from, tail.to), (t("2024-01-01T12:00:00Z"), day.to));
        sweep.page_stored(tail.from, StoredPage::default());
        assert_eq!(sweep.done, day.from);
        sweep.page_stored(head.from, StoredPage::default());
        assert_eq!(sweep.done, day.to);
        assert!(sweep.is_complete());
    }

    #[test]
    fn a_newest_first_sweep_walks_back_to_its_start() {
        let mut sweep = Sweep::new(
            t("2024-01-01T00:00:00Z"),
            t("2024-01-03T00:00:00Z"),
            Order::NewestFirst,
        );
        let mut seen = Vec::new();
        while let Some(window) = sweep.next_window(&[]) {
            seen.push(window.from);
            sweep.page_stored(window.from, StoredPage::default());
        }
        assert_eq!(
            seen,
            vec![t("2024-01-02T00:00:00Z"), t("2024-01-01T00:00:00Z")]
        );
        assert_eq!(sweep.remaining(), TimeDelta::zero());
    }

    #[test]
    fn a_lease_of_another_run_holds_until_it_expires() {
        let state = PullState {
            lease: Some(Lease {
                holder: "run-a".into(),
                expires_at: t("2024-01-01T00:05:00Z"),
            }),
            ..PullState::default()
        };
        assert!(
            state
                .leased_to_another("run-b", t("2024-01-01T00:04:59Z"))
                .is_some()
        );
        assert!(
            state
                .leased_to_another("run-a", t("2024-01-01T00:04:59Z"))
                .is_none()
        );
        assert!(
            state
                .leased_to_another("run-b", t("2024-01-01T00:05:00Z"))
                .is_none()
        );
    }
}
