//! Runs the benchmark's full path (or its baseline) a fixed number of times, so an
//! instruction counter can measure it: counts stay exact on a shared, noisy machine where
//! timings move by ±20 %.
//!
//! `pipeline_count <full|baseline> <events per body> <repetitions>`; `bench/instructions.sh`
//! runs it under valgrind's callgrind and prints instructions per event.

use std::hint::black_box;
use std::process::ExitCode;

use chrono::Utc;

#[path = "../benches/common/work.rs"]
mod work;
use work::{baseline, full_path, signed_body, verifier};

/// The allocator the deployed functions use, so the figures are the ones they get.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(mode), Some(Ok(events)), Some(Ok(repetitions))) = (
        args.first(),
        args.get(1).map(|n| n.parse::<usize>()),
        args.get(2).map(|n| n.parse::<usize>()),
    ) else {
        eprintln!("usage: pipeline_count <full|baseline> <events per body> <repetitions>");
        return ExitCode::FAILURE;
    };
    let now = Utc::now();
    let Some(verifier) = verifier() else {
        eprintln!("the benchmark key is not a valid write key");
        return ExitCode::FAILURE;
    };
    let body = signed_body(events, now);
    let mut produced = 0;
    for _ in 0..repetitions {
        produced += match mode.as_str() {
            "full" => black_box(full_path(black_box(&body), &verifier, now)),
            "baseline" => black_box(baseline(black_box(&body))),
            _ => {
                eprintln!("mode must be full or baseline");
                return ExitCode::FAILURE;
            }
        };
    }
    if repetitions > 0 && produced == 0 {
        eprintln!("the {mode} path produced nothing");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
