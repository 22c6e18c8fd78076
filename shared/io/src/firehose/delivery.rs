//! One `PutRecordBatch` call and the resends of its failed records.
//!
//! Firehose reports partial failure inside a successful answer: `FailedPutCount` and a
//! per-record `ErrorCode`, index-aligned with the request. Only the failed records are
//! sent again, after a jittered backoff, while attempts and the deadline allow. A failed
//! *call* is not retried here: the SDK's retry layer already retried it, and stacking a
//! second loop on top would multiply the wait.

use std::future::Future;
use std::pin::Pin;

use tokio::time::Instant;

use source_core::retry::RetryPolicy;

/// Firehose's answer for one record: `None` if accepted, else its error code.
pub type RecordResult = Option<String>;

/// A boxed future of one call, so the API can be a trait object.
pub type CallFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<RecordResult>, CallError>> + Send + 'a>>;

/// A `PutRecordBatch` call that failed as a whole, by what can be done about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The stream cannot take records at all (it does not exist, access is denied, the
    /// request is invalid): no retry can help, so the rows are spilled at once.
    #[error("PutRecordBatch refused for good: {0}")]
    Permanent(String),
    /// A failure that may pass (throttling, a timeout, the network) and outlasted the SDK's
    /// own retries.
    #[error("PutRecordBatch failed: {0}")]
    Transient(String),
}

impl CallError {
    /// Whether retrying could help.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Permanent(_))
    }
}

/// Whether a per-record `ErrorCode` says the record can never be accepted as it is
/// (access to the stream's KMS key denied, the key missing or disabled, an invalid
/// argument): resending it would only spend the deadline. Throttling and internal failures
/// (`ServiceUnavailableException`, `InternalFailure`) and unknown codes are retried.
pub fn record_error_is_permanent(code: &str) -> bool {
    [
        "AccessDeniedException",
        "NotFoundException",
        "DisabledException",
        "InvalidStateException",
        "InvalidArgumentException",
        "OptInRequired",
    ]
    .iter()
    .any(|kind| code.ends_with(kind))
}

/// The `PutRecordBatch` operation of one delivery stream.
pub trait RecordBatchApi: Send + Sync {
    /// Sends `records`; the answer has one result per record, in order.
    fn put_record_batch<'a>(&'a self, records: Vec<Vec<u8>>) -> CallFuture<'a>;
}

/// What happened to one batch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Indexes of records Firehose accepted.
    pub delivered: Vec<usize>,
    /// Indexes of records still not accepted when attempts, deadline or the call ran out.
    pub undelivered: Vec<usize>,
    /// Records sent more than once (each resend counted).
    pub resent: usize,
    /// Calls made.
    pub calls: usize,
    /// Why the last call failed as a whole, if it did.
    pub call_error: Option<CallError>,
    /// Records refused with a permanent error code (not resent), with the code.
    pub refused: Vec<(usize, String)>,
}

/// Sends `records` and resends the failed ones per `policy` until `deadline`. `unit_random`
/// supplies jitter in `[0, 1)`.
pub async fn put_with_retries(
    api: &dyn RecordBatchApi,
    records: &[&[u8]],
    policy: &RetryPolicy,
    deadline: Instant,
    mut unit_random: impl FnMut() -> f64,
) -> BatchOutcome {
    let mut outcome = BatchOutcome::default();
    let mut pending: Vec<usize> = (0..records.len()).collect();
    for attempt in 1..=policy.max_attempts {
        if pending.is_empty() {
            break;
        }
        if attempt > 1 {
            let delay = policy.backoff(attempt - 1, unit_random());
            if Instant::now() + delay >= deadline {
                break;
            }
            tokio::time::sleep(delay).await;
            outcome.resent += pending.len();
        }
        if Instant::now() >= deadline {
            // No time left (the request arrived already late): a call sent now could only be
            // abandoned, and might land records the caller is told were not stored.
            outcome.call_error = Some(CallError::Transient(
                "the request's delivery deadline had passed before the call".into(),
            ));
            break;
        }
        let payload = pending.iter().map(|&i| records[i].to_vec()).collect();
        outcome.calls += 1;
        // A call still in flight at the deadline is abandoned: its records count as
        // undelivered and are spilled (if Firehose took them after all, the copies share
        // ids and the dedupe views drop them).
        let answer = tokio::time::timeout_at(deadline, api.put_record_batch(payload))
            .await
            .unwrap_or_else(|_| {
                Err(CallError::Transient(
                    "no answer before the request's delivery deadline".into(),
                ))
            });
        match answer {
            Ok(results) if results.len() == pending.len() => {
                let mut failed = Vec::new();
                for (&index, result) in pending.iter().zip(&results) {
                    match result {
                        None => outcome.delivered.push(index),
                        Some(code) if record_error_is_permanent(code) => {
                            outcome.refused.push((index, code.clone()));
                        }
                        Some(_) => failed.push(index),
                    }
                }
                pending = failed;
            }
            Ok(results) => {
                // Cannot tell which records landed; keep them all (duplicates are
                // removed by id in the warehouse, losses could never be recovered).
                outcome.call_error = Some(CallError::Transient(format!(
                    "answer has {} results for {} records",
                    results.len(),
                    pending.len()
                )));
                break;
            }
            Err(error) => {
                outcome.call_error = Some(error);
                break;
            }
        }
    }
    // Records refused for good were not resent; they are undelivered too.
    pending.extend(outcome.refused.iter().map(|(index, _)| *index));
    pending.sort_unstable();
    outcome.undelivered = pending;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    /// Answers each call from a script: per call, the error codes by position of the
    /// record's first byte, or a whole-call error.
    struct ScriptedApi {
        script: Mutex<Vec<Result<Vec<u8>, CallError>>>,
        received: Mutex<Vec<Vec<Vec<u8>>>>,
    }

    impl ScriptedApi {
        /// `script[n]` lists the record ids (first byte) that fail on call n.
        fn new(script: Vec<Result<Vec<u8>, CallError>>) -> Self {
            Self {
                script: Mutex::new(script),
                received: Mutex::new(Vec::new()),
            }
        }
    }

    impl RecordBatchApi for ScriptedApi {
        fn put_record_batch<'a>(&'a self, records: Vec<Vec<u8>>) -> CallFuture<'a> {
            let step = {
                let mut script = self.script.lock().unwrap();
                if script.is_empty() {
                    Ok(Vec::new())
                } else {
                    script.remove(0)
                }
            };
            self.received.lock().unwrap().push(records.clone());
            Box::pin(async move {
                let failing = step?;
                Ok(records
                    .iter()
                    .map(|r| {
                        failing
                            .contains(&r[0])
                            .then(|| "ServiceUnavailableException".to_owned())
                    })
                    .collect())
            })
        }
    }

    fn records() -> Vec<Vec<u8>> {
        (0u8..5).map(|i| vec![i]).collect()
    }

    async fn run(api: &dyn RecordBatchApi, policy: RetryPolicy) -> BatchOutcome {
        let records = records();
        let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        let deadline = Instant::now() + Duration::from_secs(20);
        put_with_retries(api, &refs, &policy, deadline, || 0.5).await
    }

    #[tokio::test(start_paused = true)]
    async fn resends_only_failed_records() {
        let api = ScriptedApi::new(vec![Ok(vec![1, 3]), Ok(vec![3]), Ok(vec![])]);
        let outcome = run(&api, RetryPolicy::default()).await;
        let calls = api.received.lock().unwrap().clone();
        assert_eq!(
            calls,
            vec![records(), vec![vec![1], vec![3]], vec![vec![3]]]
        );
        let mut delivered = outcome.delivered.clone();
        delivered.sort();
        assert_eq!(delivered, vec![0, 1, 2, 3, 4]);
        assert!(outcome.undelivered.is_empty());
        assert_eq!(outcome.resent, 3);
        assert_eq!(outcome.calls, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_max_attempts_and_reports_the_rest() {
        let api = ScriptedApi::new(vec![Ok(vec![2]); 10]);
        let policy = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        let outcome = run(&api, policy).await;
        assert_eq!(outcome.undelivered, vec![2]);
        assert_eq!(outcome.calls, 3);
        assert_eq!(outcome.delivered.len(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn does_not_retry_a_failed_call() {
        let api = ScriptedApi::new(vec![Err(CallError::Transient("throttled".into()))]);
        let outcome = run(&api, RetryPolicy::default()).await;
        assert_eq!(outcome.calls, 1);
        assert_eq!(outcome.undelivered, vec![0, 1, 2, 3, 4]);
        assert_eq!(
            outcome.call_error,
            Some(CallError::Transient("throttled".into()))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn records_refused_for_good_are_not_resent() {
        struct KmsDenied;
        impl RecordBatchApi for KmsDenied {
            fn put_record_batch<'a>(&'a self, records: Vec<Vec<u8>>) -> CallFuture<'a> {
                Box::pin(async move {
                    Ok(records
                        .iter()
                        .map(|r| (r[0] == 1).then(|| "KMSAccessDeniedException".to_owned()))
                        .collect())
                })
            }
        }
        let outcome = run(&KmsDenied, RetryPolicy::default()).await;
        assert_eq!(outcome.calls, 1, "nothing left worth resending");
        assert_eq!(outcome.undelivered, vec![1]);
        assert_eq!(
            outcome.refused,
            vec![(1, "KMSAccessDeniedException".to_owned())]
        );
        assert!(record_error_is_permanent("KMSNotFoundException"));
        assert!(!record_error_is_permanent("ServiceUnavailableException"));
        assert!(!record_error_is_permanent("InternalFailure"));
    }

    #[tokio::test(start_paused = true)]
    async fn stops_before_a_backoff_would_pass_the_deadline() {
        let api = ScriptedApi::new(vec![Ok(vec![0]); 10]);
        let records = records();
        let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        let deadline = Instant::now() + Duration::from_millis(120);
        let outcome =
            put_with_retries(&api, &refs, &RetryPolicy::default(), deadline, || 0.99).await;
        // First backoff ~99 ms fits, the second (~198 ms) would not.
        assert_eq!(outcome.calls, 2);
        assert_eq!(outcome.undelivered, vec![0]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_misaligned_answer_keeps_every_pending_record() {
        struct ShortAnswer;
        impl RecordBatchApi for ShortAnswer {
            fn put_record_batch<'a>(&'a self, _: Vec<Vec<u8>>) -> CallFuture<'a> {
                Box::pin(async { Ok(vec![None]) })
            }
        }
        let records = records();
        let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        let deadline = Instant::now() + Duration::from_secs(1);
        let outcome = put_with_retries(
            &ShortAnswer,
            &refs,
            &RetryPolicy::default(),
            deadline,
            || 0.5,
        )
        .await;
        assert_eq!(outcome.undelivered.len(), 5);
        assert!(outcome.call_error.is_some());
    }
}
