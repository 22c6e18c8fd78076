//! One deadline per request, taken from the Lambda invocation: a Firehose that never answers
//! and a dead-letter store that hangs end the request with a 503 before Lambda's deadline,
//! and a silent Firehose alone ends in a stored (spilled) 200.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use source_io::firehose::delivery::{CallFuture, RecordBatchApi};
use source_io::sink::dead_letter::{DeadLetterStore, StoreFuture};
use source_io::sink::firehose::{FirehoseSink, FirehoseSinkSettings};
use tokio::time::Instant;

use crate::support::*;

struct SilentFirehose;

impl RecordBatchApi for SilentFirehose {
    fn put_record_batch<'a>(&'a self, _records: Vec<Vec<u8>>) -> CallFuture<'a> {
        Box::pin(std::future::pending())
    }
}

#[derive(Default)]
struct Store {
    hangs: bool,
    objects: Mutex<usize>,
}

impl DeadLetterStore for Store {
    fn store<'a>(&'a self, key: String, _object: Vec<u8>) -> StoreFuture<'a> {
        Box::pin(async move {
            if self.hangs {
                std::future::pending::<()>().await;
            }
            *self.objects.lock().unwrap() += 1;
            Ok(key)
        })
    }
}

fn lambda_context(seconds_left: u64) -> lambda_http::Context {
    let mut context = lambda_http::Context::default();
    context.deadline = now().timestamp_millis() as u64 + seconds_left * 1000;
    context
}

async fn post_with_deadline(store: Arc<Store>, seconds_left: u64) -> (u16, Duration) {
    let sink = Arc::new(FirehoseSink::new(
        Arc::new(SilentFirehose),
        store,
        FirehoseSinkSettings::default(),
    ));
    let app = app_with(sink, source_io::config::LARGEST_MAX_BODY_BYTES);
    let mut request = signed_request(&fixture("all_six_collections.json"), CURRENT_KEY);
    request
        .extensions_mut()
        .insert(lambda_context(seconds_left));
    let started = Instant::now();
    let (status, _, _) = send(&app, request).await;
    (status, Instant::now() - started)
}

#[tokio::test(start_paused = true)]
async fn a_silent_firehose_is_cut_off_in_time_to_spill_and_answer_200() {
    let store = Arc::new(Store::default());
    let (status, took) = post_with_deadline(store.clone(), 12).await;
    assert_eq!(status, 200);
    assert_eq!(*store.objects.lock().unwrap(), 1, "the rows were spilled");
    // 12 s left, less 0.5 s for the answer, less 8 s kept for the spill.
    assert_eq!(took, Duration::from_millis(3_500));
}

#[tokio::test(start_paused = true)]
async fn a_hanging_spill_ends_in_a_503_before_lambdas_deadline() {
    let store = Arc::new(Store {
        hangs: true,
        ..Store::default()
    });
    let (status, took) = post_with_deadline(store, 12).await;
    assert_eq!(status, 503);
    assert_eq!(took, Duration::from_millis(11_500));
}
