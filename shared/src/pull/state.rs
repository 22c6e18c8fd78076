//! Where each stream of a pull stands: saved after every stored page, read at the start of
//! every run. A position only moves past rows that are already durable, so a run killed at
//! any point resumes with no gap (and at most the last page read twice, same ids).

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::windows::{next_window, previous_window};

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
/// (as Klaviyo listed it when read); the trailing re-read catches what it listed late.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamState {
    /// The metric's name when last seen (a rename is reported).
    pub metric_name: String,
    /// The webhook topic the stream's events carry, fixed when the stream starts so a
    /// rename of the metric never moves its events to another collection.
    pub topic: String,
    /// The realtime sweep: from its start to the settled limit, advancing every run.
    pub realtime: Sweep,
    /// The current re-read of the trailing window, if one is under way.
    #[serde(default)]
    pub reread: Option<Sweep>,
    /// When the last re-read started; the next one starts a re-read interval later.
    #[serde(default)]
    pub last_reread_started: Option<DateTime<Utc>>,
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

/// A range of time read window by window. `done` is the boundary reached so far: for
/// oldest-first everything in `[from, done)` is stored, for newest-first `[done, to)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sweep {
    /// Start of the range (inclusive).
    pub from: DateTime<Utc>,
    /// End of the range (exclusive); an open-ended realtime sweep moves it every run.
    pub to: DateTime<Utc>,
    /// The reading order.
    pub order: Order,
    /// How far the completed windows reach.
    pub done: DateTime<Utc>,
    /// The window being read, if a run stopped inside one.
    #[serde(default)]
    pub open: Option<OpenWindow>,
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
            open: None,
        }
    }

    /// The window to read next: the open one, else the next unread one; `None` when the
    /// sweep is complete.
    pub fn current_window(&self) -> Option<OpenWindow> {
        if let Some(open) = &self.open {
            return Some(open.clone());
        }
        let (from, to) = match self.order {
            Order::OldestFirst => next_window(self.done, self.to)?,
            Order::NewestFirst => previous_window(self.done, self.from)?,
        };
        Some(OpenWindow {
            from,
            to,
            resume_at: from,
            next_link: None,
        })
    }

    /// Records a stored page of `window`: the last event's time and Klaviyo's next link.
    /// With no next link the window is complete and the sweep moves past it.
    pub fn page_stored(
        &mut self,
        window: &OpenWindow,
        last_event_at: Option<DateTime<Utc>>,
        next_link: Option<String>,
    ) {
        let resume_at = last_event_at
            .map(|at| at.max(window.resume_at).min(window.to))
            .unwrap_or(window.resume_at);
        match next_link {
            Some(next_link) => {
                self.open = Some(OpenWindow {
                    resume_at,
                    next_link: Some(next_link),
                    ..window.clone()
                });
            }
            None => {
                self.open = None;
                self.done = match self.order {
                    Order::OldestFirst => window.to,
                    Order::NewestFirst => window.from,
                };
            }
        }
    }

    /// Forgets the next link of the open window (Klaviyo called the cursor invalid): the
    /// window is read again from the last stored event's second.
    pub fn restart_open_window(&mut self) {
        if let Some(open) = &mut self.open {
            open.next_link = None;
        }
    }

    /// Whether every window has been read.
    pub fn is_complete(&self) -> bool {
        self.current_window().is_none()
    }

    /// Time left to read, for progress and lag.
    pub fn remaining(&self) -> TimeDelta {
        let (start, end) = match self.order {
            Order::OldestFirst => (
                self.open.as_ref().map_or(self.done, |open| open.resume_at),
                self.to,
            ),
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

    #[test]
    fn a_sweep_moves_past_a_window_only_when_its_last_page_is_stored() {
        let mut sweep = Sweep::new(
            t("2024-01-01T00:30:00Z"),
            t("2024-01-02T02:00:00Z"),
            Order::OldestFirst,
        );
        let first = sweep.current_window().unwrap();
        assert_eq!(
            (first.from, first.to),
            (t("2024-01-01T00:30:00Z"), t("2024-01-02T00:00:00Z"))
        );
        sweep.page_stored(
            &first,
            Some(t("2024-01-01T00:40:00Z")),
            Some("https://a.klaviyo.com/api/events?page%5Bcursor%5D=c1".into()),
        );
        assert_eq!(sweep.done, t("2024-01-01T00:30:00Z"));
        let open = sweep.current_window().unwrap();
        assert_eq!(open.resume_at, t("2024-01-01T00:40:00Z"));
        assert!(open.next_link.is_some());

        sweep.restart_open_window();
        assert_eq!(sweep.current_window().unwrap().next_link, None);
        assert_eq!(
            sweep.current_window().unwrap().resume_at,
            t("2024-01-01T00:40:00Z")
        );

        let open = sweep.current_window().unwrap();
        sweep.page_stored(&open, Some(t("2024-01-01T23:59:59Z")), None);
        assert_eq!(sweep.done, t("2024-01-02T00:00:00Z"));
        let second = sweep.current_window().unwrap();
        sweep.page_stored(&second, None, None);
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
        while let Some(window) = sweep.current_window() {
            seen.push(window.from);
            sweep.page_stored(&window, None, None);
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
