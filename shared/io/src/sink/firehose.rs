//! The Firehose sink: pack rows into records, send them in batches within the API limits,
//! resend only failed records, and spill whatever is still undelivered to the dead-letter
//! store before answering. It acknowledges rows only when each is in Firehose or in the
//! dead-letter store.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::dead_letter::{DeadLetterError, DeadLetterStore, dead_letter_key, encode_dead_letter};
use super::{DeliveryFuture, DeliveryReport, EventSink, SinkError};
use crate::firehose::delivery::{RecordBatchApi, put_with_retries};
use source_core::firehose::MAX_RECORD_BYTES;
use source_core::firehose::batching::batch_ranges;
use source_core::firehose::packing::pack_rows;
use source_core::retry::RetryPolicy;
use source_core::warehouse::row::WarehouseRow;

/// How the Firehose sink behaves.
#[derive(Debug, Clone)]
pub struct FirehoseSinkSettings {
    /// Largest packed record, bytes (0: one row per record).
    pub pack_budget: usize,
    /// Resend pacing.
    pub retry: RetryPolicy,
    /// Time allowed for all Firehose calls of one delivery, before spilling the rest.
    pub delivery_timeout: Duration,
    /// Time kept back from the request's deadline for the dead-letter spill: Firehose calls
    /// stop this long before it.
    pub spill_reserve: Duration,
    /// Dead-letter key prefix, e.g. `dead-letter/`.
    pub dead_letter_prefix: String,
    /// Schema name, part of the dead-letter key.
    pub schema: String,
    /// The wall clock that dates dead-letter keys: passed in, so the sink reads no hidden
    /// clock.
    pub clock: fn() -> DateTime<Utc>,
    /// Jitter in `[0, 1)` for resend backoffs: passed in, so tests can pin it.
    pub jitter: fn() -> f64,
}

impl Default for FirehoseSinkSettings {
    fn default() -> Self {
        Self {
            pack_budget: MAX_RECORD_BYTES,
            retry: RetryPolicy::default(),
            // API Gateway gives up after 30 s; leave room for the spill and the answer.
            delivery_timeout: Duration::from_secs(20),
            // The S3 client's whole-operation timeout (source_io::aws_clients).
            spill_reserve: Duration::from_secs(8),
            dead_letter_prefix: "dead-letter/".to_owned(),
            schema: "klaviyo".to_owned(),
            clock: Utc::now,
            jitter: fastrand::f64,
        }
    }
}

/// Delivers rows to a Firehose stream, spilling to a dead-letter store.
pub struct FirehoseSink {
    api: Arc<dyn RecordBatchApi>,
    dead_letter: Arc<dyn DeadLetterStore>,
    settings: FirehoseSinkSettings,
}

impl FirehoseSink {
    /// A sink over `api`, spilling to `dead_letter`.
    pub fn new(
        api: Arc<dyn RecordBatchApi>,
        dead_letter: Arc<dyn DeadLetterStore>,
        settings: FirehoseSinkSettings,
    ) -> Self {
        Self {
            api,
            dead_letter,
            settings,
        }
    }

    async fn deliver_rows(
        &self,
        rows: Vec<WarehouseRow>,
        request_deadline: Instant,
    ) -> Result<DeliveryReport, SinkError> {
        let deadline = (Instant::now() + self.settings.delivery_timeout).min(
            request_deadline
                .checked_sub(self.settings.spill_reserve)
                .unwrap_or_else(Instant::now),
        );
        let packing = pack_rows(&rows, self.settings.pack_budget);
        let mut report = DeliveryReport {
            rows: rows.len(),
            ..DeliveryReport::default()
        };
        let mut spill: Vec<usize> = packing.oversized.clone();
        let mut failure: Option<String> =
            (!spill.is_empty()).then(|| "rows larger than a Firehose record".to_owned());
        let sizes: Vec<usize> = packing.records.iter().map(|r| r.data.len()).collect();
        let mut stream_failing = false;
        for range in batch_ranges(&sizes) {
            let batch = &packing.records[range];
            if stream_failing {
                // Firehose itself is failing: do not spend the deadline on more calls.
                spill.extend(batch.iter().flat_map(|r| r.rows.iter().copied()));
                continue;
            }
            let data: Vec<&[u8]> = batch.iter().map(|r| r.data.as_slice()).collect();
            let outcome = put_with_retries(
                self.api.as_ref(),
                &data,
                &self.settings.retry,
                deadline,
                self.settings.jitter,
            )
            .await;
            report.objects += outcome.delivered.len();
            report.resent += outcome.resent;
            if !outcome.undelivered.is_empty() {
                spill.extend(
                    outcome
                        .undelivered
                        .iter()
                        .flat_map(|&i| batch[i].rows.iter().copied()),
                );
                // A call that failed as a whole outlasted the SDK's retries (transient) or
                // can never succeed (permanent): either way, no more calls this request.
                stream_failing = outcome.call_error.is_some();
                failure = Some(match (outcome.call_error, outcome.refused.first()) {
                    (Some(error), _) => error.to_string(),
                    (None, Some((_, code))) => format!(
                        "{} records refused for good ({code}), {} still failing after retries",
                        outcome.refused.len(),
                        outcome.undelivered.len() - outcome.refused.len()
                    ),
                    (None, None) => format!(
                        "{} records still failing after retries",
                        outcome.undelivered.len()
                    ),
                });
            }
        }
        if let Some(delivery) = failure {
            spill.sort_unstable();
            let spilled: Vec<&WarehouseRow> = spill.iter().map(|&i| &rows[i]).collect();
            self.spill(&spilled, delivery, request_deadline).await?;
            report.spilled = spilled.len();
        }
        Ok(report)
    }

    async fn spill(
        &self,
        rows: &[&WarehouseRow],
        delivery: String,
        deadline: Instant,
    ) -> Result<(), SinkError> {
        let key = dead_letter_key(
            &self.settings.dead_letter_prefix,
            &self.settings.schema,
            (self.settings.clock)(),
            rows,
        );
        let object = encode_dead_letter(rows).map_err(|err| SinkError::DeadLetter {
            delivery: delivery.clone(),
            dead_letter: DeadLetterError::Encoding(err),
        })?;
        let stored = tokio::time::timeout_at(deadline, self.dead_letter.store(key, object))
            .await
            .unwrap_or(Err(DeadLetterError::Deadline));
        match stored {
            Ok(key) => {
                tracing::warn!(rows = rows.len(), %key, reason = %delivery, "rows spilled to the dead-letter store");
                Ok(())
            }
            Err(dead_letter) => Err(SinkError::DeadLetter {
                delivery,
                dead_letter,
            }),
        }
    }
}

impl EventSink for FirehoseSink {
    fn deliver<'a>(&'a self, rows: Vec<WarehouseRow>, deadline: Instant) -> DeliveryFuture<'a> {
        Box::pin(self.deliver_rows(rows, deadline))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firehose::delivery::{CallError, CallFuture, RecordResult};
    use crate::sink::dead_letter::{StoreFuture, decode_dead_letter};
    use serde_json::json;
    use std::collections::BTreeSet;
    use std::sync::Mutex;

    /// Accepts every record except those whose data contains a marker, a given number of
    /// times; or fails every call.
    #[derive(Default)]
    struct FlakyFirehose {
        fail_marker: Option<(String, Mutex<usize>)>,
        fail_calls: bool,
        accepted: Mutex<Vec<Vec<u8>>>,
    }

    impl RecordBatchApi for FlakyFirehose {
        fn put_record_batch<'a>(&'a self, records: Vec<Vec<u8>>) -> CallFuture<'a> {
            Box::pin(async move {
                if self.fail_calls {
                    return Err(CallError::Transient("ServiceUnavailable".into()));
                }
                let mut results: Vec<RecordResult> = Vec::new();
                for record in records {
                    let failing = self.fail_marker.as_ref().is_some_and(|(marker, left)| {
                        let mut left = left.lock().unwrap();
                        let hit =
                            *left > 0 && String::from_utf8_lossy(&record).contains(marker.as_str());
                        if hit {
                            *left -= 1;
                        }
                        hit
                    });
                    if failing {
                        results.push(Some("InternalFailure".into()));
                    } else {
                        self.accepted.lock().unwrap().push(record);
                        results.push(None);
                    }
                }
                Ok(results)
            })
        }
    }

    /// A Firehose that never answers (a network that swallows the call).
    struct SilentFirehose;

    impl RecordBatchApi for SilentFirehose {
        fn put_record_batch<'a>(&'a self, _records: Vec<Vec<u8>>) -> CallFuture<'a> {
            Box::pin(std::future::pending())
        }
    }

    #[derive(Default)]
    struct RecordingStore {
        broken: bool,
        silent: bool,
        objects: Mutex<Vec<(String, Vec<u8>)>>,
    }

    impl DeadLetterStore for RecordingStore {
        fn store<'a>(&'a self, key: String, object: Vec<u8>) -> StoreFuture<'a> {
            Box::pin(async move {
                if self.broken {
                    return Err(DeadLetterError::Refused("AccessDenied".to_owned()));
                }
                if self.silent {
                    std::future::pending::<()>().await;
                }
                self.objects.lock().unwrap().push((key.clone(), object));
                Ok(key)
            })
        }
    }

    fn rows(n: usize) -> Vec<WarehouseRow> {
        (0..n)
            .map(|i| WarehouseRow::minimal("email_opened", "2024-01-04", &format!("id-{i:04}")))
            .collect()
    }

    fn sink(
        api: Arc<FlakyFirehose>,
        store: Arc<RecordingStore>,
        pack_budget: usize,
    ) -> FirehoseSink {
        let settings = FirehoseSinkSettings {
            pack_budget,
            ..FirehoseSinkSettings::default()
        };
        FirehoseSink::new(api, store, settings)
    }

    fn ids_in(records: &[Vec<u8>]) -> Vec<String> {
        records
            .iter()
            .flat_map(|r| {
                String::from_utf8(r.clone())
                    .unwrap()
                    .lines()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .map(|line| {
                serde_json::from_str::<serde_json::Value>(&line).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_without_answer_is_cut_at_the_deadline_and_its_rows_spilled() {
        let store = Arc::new(RecordingStore::default());
        let sink = FirehoseSink::new(
            Arc::new(SilentFirehose),
            store.clone(),
            FirehoseSinkSettings::default(),
        );
        let started = Instant::now();
        // A Lambda with 12 s left: 8 s of it are kept for the spill.
        let deadline = started + Duration::from_secs(12);
        let report = sink.deliver(rows(5), deadline).await.unwrap();
        assert_eq!(report.spilled, 5);
        assert_eq!(store.objects.lock().unwrap().len(), 1);
        assert_eq!(Instant::now() - started, Duration::from_secs(4));
    }

    #[tokio::test(start_paused = true)]
    async fn a_spill_that_outlives_the_deadline_fails_the_delivery_in_time() {
        let store = Arc::new(RecordingStore {
            silent: true,
            ..RecordingStore::default()
        });
        let sink = FirehoseSink::new(
            Arc::new(SilentFirehose),
            store,
            FirehoseSinkSettings::default(),
        );
        let started = Instant::now();
        let err = sink
            .deliver(rows(2), started + Duration::from_secs(12))
            .await
            .unwrap_err();
        assert!(matches!(err, SinkError::DeadLetter { .. }), "{err}");
        assert_eq!(Instant::now() - started, Duration::from_secs(12));
    }

    #[tokio::test(start_paused = true)]
    async fn packs_rows_and_delivers_each_exactly_once() {
        let api = Arc::new(FlakyFirehose::default());
        let store = Arc::new(RecordingStore::default());
        let report = sink(api.clone(), store.clone(), 1000)
            .deliver(rows(100), Instant::now() + Duration::from_secs(60))
            .await
            .unwrap();
        let accepted = api.accepted.lock().unwrap().clone();
        // Every row's line has the same length here, so a 1,000-byte budget holds
        // floor(1000 / line) rows per record.
        let line_len = rows(1)[0].json().len() + 1;
        let per_record = 1000 / line_len;
        assert_eq!(accepted.len(), 100usize.div_ceil(per_record));
        assert!(accepted.iter().all(|r| r.len() <= 1000));
        let ids = ids_in(&accepted);
        assert_eq!(
            ids,
            rows(100)
                .iter()
                .map(|r| r.id().to_owned())
                .collect::<Vec<_>>()
        );
        assert_eq!(
            (report.rows, report.objects, report.spilled),
            (100, accepted.len(), 0)
        );
        assert!(store.objects.lock().unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn partial_failures_are_resent_without_duplicates() {
        let api = Arc::new(FlakyFirehose {
            fail_marker: Some(("id-0007".into(), Mutex::new(2))),
            ..FlakyFirehose::default()
        });
        let store = Arc::new(RecordingStore::default());
        let report = sink(api.clone(), store.clone(), 0)
            .deliver(rows(20), Instant::now() + Duration::from_secs(60))
            .await
            .unwrap();
        let ids = ids_in(&api.accepted.lock().unwrap());
        assert_eq!(ids.len(), 20, "each row accepted once");
        assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 20);
        assert_eq!((report.resent, report.spilled), (2, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn exhausted_retries_spill_exactly_the_undelivered_rows() {
        let api = Arc::new(FlakyFirehose {
            fail_marker: Some(("id-0003".into(), Mutex::new(usize::MAX))),
            ..FlakyFirehose::default()
        });
        let store = Arc::new(RecordingStore::default());
        let report = sink(api.clone(), store.clone(), 0)
            .deliver(rows(10), Instant::now() + Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(report.spilled, 1);
        let objects = store.objects.lock().unwrap().clone();
        assert_eq!(objects.len(), 1);
        let spilled = decode_dead_letter(&objects[0].1).unwrap();
        assert_eq!(
            spilled.iter().map(|r| r.id()).collect::<Vec<_>>(),
            vec!["id-0003"]
        );
        assert_eq!(ids_in(&api.accepted.lock().unwrap()).len(), 9);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_stream_spills_everything_after_one_call_per_batch() {
        let api = Arc::new(FlakyFirehose {
            fail_calls: true,
            ..FlakyFirehose::default()
        });
        let store = Arc::new(RecordingStore::default());
        let report = sink(api, store.clone(), 0)
            .deliver(rows(1200), Instant::now() + Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(report.spilled, 1200);
        let objects = store.objects.lock().unwrap().clone();
        assert_eq!(decode_dead_letter(&objects[0].1).unwrap().len(), 1200);
    }

    #[tokio::test(start_paused = true)]
    async fn fails_when_the_dead_letter_store_fails_too() {
        let api = Arc::new(FlakyFirehose {
            fail_calls: true,
            ..FlakyFirehose::default()
        });
        let store = Arc::new(RecordingStore {
            broken: true,
            ..RecordingStore::default()
        });
        let err = sink(api, store, 0)
            .deliver(rows(3), Instant::now() + Duration::from_secs(60))
            .await
            .unwrap_err();
        assert!(matches!(err, SinkError::DeadLetter { .. }), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn oversized_rows_go_straight_to_the_dead_letter_store() {
        let mut big = rows(2);
        let mut columns = big[1].columns().unwrap();
        columns.insert("pad".into(), json!("x".repeat(MAX_RECORD_BYTES)));
        big[1] = WarehouseRow::from_columns(columns).unwrap();
        let api = Arc::new(FlakyFirehose::default());
        let store = Arc::new(RecordingStore::default());
        let report = sink(api.clone(), store.clone(), MAX_RECORD_BYTES)
            .deliver(big, Instant::now() + Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(report.spilled, 1);
        assert_eq!(ids_in(&api.accepted.lock().unwrap()), vec!["id-0000"]);
    }
}
