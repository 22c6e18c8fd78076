//! What reading one raw row costs, step by step, on the rows `bench/compaction.py` lands: the
//! floor under a compaction's dropped copy. A copy that differs from the kept row has to be
//! ranked (its id, identity and `received_at` decide whether it wins), so its cost is at least
//! inflating it, hashing it (the exact-copy check and the tie-break) and reading its members.
//! Printed per line, the best of a few rounds. `bash bench/json_floor.sh` runs it.

use std::borrow::Cow;
use std::io::Read;
use std::time::Instant;

use serde::Deserialize;
use serde::de::IgnoredAny;
use source_core::compaction::winner::CopyRank;
use source_core::raw_object::RawObject;

/// The three members a rank needs, every other one skipped.
#[derive(Deserialize)]
struct RankMembers<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    context_klaviyo_identity_resolved: Option<bool>,
    #[serde(borrow)]
    received_at: Option<Cow<'a, str>>,
}

const ROUNDS: usize = 5;
const REPEATS: usize = 40;

/// The best time per line of `work` over every line, in microseconds.
fn per_line(lines: usize, mut work: impl FnMut() -> usize) -> f64 {
    let mut best = f64::MAX;
    let mut sink = 0;
    for _ in 0..ROUNDS {
        let started = Instant::now();
        for _ in 0..REPEATS {
            sink += work();
        }
        let micros = started.elapsed().as_secs_f64() * 1e6 / (REPEATS * lines) as f64;
        best = best.min(micros);
    }
    std::hint::black_box(sink);
    best
}

fn inflate(gzip: &[u8]) -> Vec<u8> {
    let mut text = Vec::new();
    flate2::bufread::MultiGzDecoder::new(gzip)
        .read_to_end(&mut text)
        .expect("a gzip object");
    text
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: json-floor OBJECT.gz");
    let gzip = std::fs::read(&path).expect("the object");
    let text = inflate(&gzip);
    let lines: Vec<&[u8]> = text
        .split(|byte| *byte == b'\n')
        .filter(|line| !line.is_empty())
        .collect();
    let n = lines.len();
    let bytes = text.len() / n;
    let backend = if cfg!(feature = "zlib-rs") {
        "zlib-rs"
    } else {
        "miniz_oxide"
    };
    println!("{n} lines of {bytes} bytes on average, from {path}");
    let rows = [
        (
            format!("inflate ({backend})"),
            per_line(n, || inflate(&gzip).len()),
        ),
        (
            "XXH3-128 of the line".to_owned(),
            per_line(n, || {
                lines
                    .iter()
                    .map(|line| twox_hash::XxHash3_128::oneshot(line) as usize)
                    .fold(0, usize::wrapping_add)
            }),
        ),
        (
            "serde_json, skipping every member (IgnoredAny)".to_owned(),
            per_line(n, || {
                lines
                    .iter()
                    .filter(|line| serde_json::from_slice::<IgnoredAny>(line).is_ok())
                    .count()
            }),
        ),
        (
            "serde_json, the three rank members (the rest skipped)".to_owned(),
            per_line(n, || {
                lines
                    .iter()
                    .filter_map(|line| serde_json::from_slice::<RankMembers>(line).ok())
                    .map(|rank| {
                        rank.id.len()
                            + rank.received_at.map_or(0, |at| at.len())
                            + usize::from(rank.context_klaviyo_identity_resolved == Some(true))
                    })
                    .sum()
            }),
        ),
        (
            "sonic-rs, the three rank members (the rest skipped)".to_owned(),
            per_line(n, || {
                lines
                    .iter()
                    .filter_map(|line| sonic_rs::from_slice::<RankMembers>(line).ok())
                    .map(|rank| rank.id.len())
                    .sum()
            }),
        ),
        (
            "the project's RawObject::parse (every member's text)".to_owned(),
            per_line(n, || {
                lines
                    .iter()
                    .filter_map(|line| RawObject::parse(line))
                    .map(|members| members.0.len())
                    .sum()
            }),
        ),
        (
            "the project's CopyRank::of_line (hash, parse, rank)".to_owned(),
            per_line(n, || {
                lines
                    .iter()
                    .filter_map(|line| CopyRank::of_line(line).ok())
                    .map(|rank| rank.id.len())
                    .sum()
            }),
        ),
    ];
    for (step, micros) in rows {
        println!("{micros:>7.3} µs/line  {step}");
    }
}
