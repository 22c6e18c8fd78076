//! `klaviyo-source pull`, `backfill` and `reconcile`: the pull run from the
//! command line, writing to the local lake (or Firehose when DELIVERY_STREAM_NAME is set).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use source_core::klaviyo::metric_aggregates::{
    count_spans, daily_count_request, parse_daily_counts,
};
use source_core::pull::late_events::LatePasses;
use source_core::pull::rate_budget::windows_for_budget;
use source_core::pull::state::Order;
use source_core::time_format::parse_iso_datetime;
use source_io::sink::EventSink;
use source_io::sink::local_lake::LocalLakeSink;
use tokio::time::Instant;

use crate::lake_dir::lake_dir;
use crate::setting_flags::{self, SettingFlags};
use source_io::aws_clients::load_sdk_config;
use source_io::config::Config;
use source_io::pull::events_api::EventsApi;
use source_io::pull::id_ledgers::{IdLedgerStore, LocalIdLedgers, S3IdLedgers};
use source_io::pull::metric_selection::{MetricChoice, select_metrics};
use source_io::pull::run::{Progress, PullPlan, PullReport, PullRun, PullSettings};
use source_io::pull::s3_state::S3StateObject;
use source_io::pull::state_store::{LocalStateFile, PullStateStore};
use source_io::s3_lake::S3LakeSink;
use source_io::s3_objects::S3Objects;
use source_io::settings;

/// Exit status when the run stopped before everything asked for was stored.
pub const EXIT_INCOMPLETE: u8 = 3;
/// Where a backfill into a bucket keeps its state.
pub const DEFAULT_BACKFILL_STATE_KEY: &str = "pull-state/backfill.json";

/// Where a run's rows and state go, and how to name that place.
pub struct Destination {
    /// Where rows go.
    pub sink: Arc<dyn EventSink>,
    /// Where the state lives.
    pub store: Arc<dyn PullStateStore>,
    /// Where the ids stored per metric and day live.
    pub ledgers: Arc<dyn IdLedgerStore>,
    /// The lake's place, for messages.
    pub place: String,
}

/// The local lake directory, or with `bucket` the bucket itself.
pub async fn destination(
    config: &Config,
    lake: &Path,
    bucket: Option<&str>,
    state_key: &str,
) -> Result<Destination, CommandError> {
    Ok(match bucket {
        Some(bucket) => {
            let s3 = Arc::new(S3Objects::new(&load_sdk_config().await?));
            Destination {
                sink: Arc::new(S3LakeSink::new(
                    s3.clone(),
                    bucket.to_owned(),
                    config.schema.clone(),
                )),
                store: Arc::new(S3StateObject::new(
                    s3.clone(),
                    bucket.to_owned(),
                    state_key.to_owned(),
                )),
                ledgers: Arc::new(S3IdLedgers::beside_state(s3, bucket.to_owned(), state_key)),
                place: format!("s3://{bucket}/{}/", config.schema),
            }
        }
        None => {
            let lake_sink = LocalLakeSink::new(lake, &config.schema);
            lake_sink.remove_leftover_temp_files()?;
            Destination {
                sink: Arc::new(lake_sink),
                store: Arc::new(LocalStateFile::in_lake(lake)),
                ledgers: Arc::new(LocalIdLedgers::in_lake(lake)),
                place: lake.display().to_string(),
            }
        }
    })
}

/// Flags shared by `pull` and `backfill`.
#[derive(Debug, Clone, clap::Args)]
pub struct PullArgs {
    /// The lake (the pull keeps its state under it), channels and request budget.
    #[command(flatten)]
    pub settings: SettingFlags<setting_flags::Pull>,
    /// Start of the window to read (RFC 3339, inclusive). Without --from/--to the pull
    /// continues from its saved cursor.
    #[arg(long, requires = "to", value_parser = parse_time)]
    pub from: Option<DateTime<Utc>>,
    /// End of the window (RFC 3339, exclusive).
    #[arg(long, requires = "from", value_parser = parse_time)]
    pub to: Option<DateTime<Utc>>,
    /// Read the newest day first (a backfill that wants recent history soonest).
    #[arg(long)]
    pub newest_first: bool,
    /// A further metric to read, by name (repeatable).
    #[arg(long = "metric")]
    pub metrics: Vec<String>,
    /// Seconds a lease holds without renewal; a crashed run blocks the next one this long.
    #[arg(long, default_value_t = PullSettings::default().lease.num_seconds(),
          value_parser = clap::value_parser!(i64).range(1..))]
    pub lease_secs: i64,
    /// Hours before now a stream without saved state starts.
    #[arg(long, default_value_t = PullSettings::default().first_run_lookback.num_hours(),
          value_parser = clap::value_parser!(i64).range(1..))]
    pub lookback_hours: i64,
    /// Hours behind the realtime cursor the recent late-event pass reads again (Klaviyo
    /// lists some events late). 0: no recent pass.
    #[arg(long, default_value_t = PullSettings::default().late.recent.num_hours(),
          value_parser = clap::value_parser!(i64).range(0..))]
    pub recent_hours: i64,
    /// Minutes between recent passes.
    #[arg(long, default_value_t = PullSettings::default().late.recent_every.num_minutes(),
          value_parser = clap::value_parser!(i64).range(0..))]
    pub recent_every_minutes: i64,
    /// Whole days behind the cursor's day whose counts are checked against Klaviyo's
    /// every --check-every-hours (days that differ are read again). 0: no check.
    #[arg(long, default_value_t = PullSettings::default().late.week_days)]
    pub check_days: u64,
    /// Hours between checks of the last --check-days days.
    #[arg(long, default_value_t = PullSettings::default().late.week_every.num_hours(),
          value_parser = clap::value_parser!(i64).range(0..))]
    pub check_every_hours: i64,
    /// The oldest day behind the cursor's day checked once a day (from --check-days + 1).
    #[arg(long, default_value_t = PullSettings::default().late.month_days)]
    pub old_check_days: u64,
    /// Seconds behind now a read stays.
    #[arg(long, default_value_t = PullSettings::default().settle.num_seconds(),
          value_parser = clap::value_parser!(i64).range(1..))]
    pub settle_secs: i64,
    /// Days (windows) read at once per metric: each window's pages come one after the
    /// other, so several at once keep the request budget busy while pages are slow.
    /// Default: enough to spend the request budget (8 at 700 a minute, 35 at 3,500).
    #[arg(long, value_parser = parallel_windows)]
    pub parallel_windows: Option<usize>,
    /// Write the lake's objects straight into this S3 bucket instead of a directory (a
    /// backfill that skips Firehose); the state then lives in the bucket too (--state-key).
    #[arg(long, conflicts_with = settings::LAKE_DIR.var)]
    pub bucket: Option<String>,
    /// The state object's key with --bucket; not the scheduled pull's own key, so a
    /// backfill and the schedule never hold each other's lease.
    #[arg(long, default_value = DEFAULT_BACKFILL_STATE_KEY, requires = "bucket")]
    pub state_key: String,
    /// Print the plan (metrics, Klaviyo's event counts) and read nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// A count of windows read at once: at least one.
fn parallel_windows(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(count) if count >= 1 => Ok(count),
        _ => Err(format!("{text:?} is not a count of windows (1 or more)")),
    }
}

/// An RFC 3339 time given on the command line.
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    parse_iso_datetime(text).ok_or_else(|| format!("{text:?} is not an RFC 3339 time"))
}

/// Errors of the pull commands.
type CommandError = Box<dyn std::error::Error + Send + Sync>;

/// Runs `pull` (or `backfill`, which adds a progress line); the exit status.
pub async fn run_pull(config: &Config, args: PullArgs, progress: bool) -> Result<u8, CommandError> {
    let lake = lake_dir(config);
    let api = events_api(config)?;
    let plan = match (args.from, args.to) {
        (Some(from), Some(to)) if from < to => PullPlan::Window {
            from,
            to,
            order: if args.newest_first {
                Order::NewestFirst
            } else {
                Order::OldestFirst
            },
        },
        (Some(_), Some(_)) => return Err("--from must be before --to".into()),
        _ => PullPlan::Incremental,
    };
    let settings = settings(config, &args);
    let destination = destination(config, &lake, args.bucket.as_deref(), &args.state_key).await?;
    if args.dry_run {
        print_plan(&api, &settings, &plan, destination.store.as_ref()).await?;
        return Ok(0);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let on_progress: Arc<dyn Fn(Progress) + Send + Sync> = if progress {
        let api = api.clone();
        let total = estimate(&api, &settings, &plan, destination.store.as_ref())
            .await?
            .total();
        eprintln!(
            "Klaviyo counts about {total} events in the window; Ctrl-C stops after the page being stored, and the same command resumes."
        );
        Arc::new(move |p: Progress| print_progress(p, &api, started, total))
    } else {
        Arc::new(|_| {})
    };
    let run = PullRun {
        api: api.clone(),
        store: destination.store.clone(),
        ledgers: destination.ledgers.clone(),
        sink: destination.sink.clone(),
        settings,
        clock: Arc::new(Utc::now),
        holder: run_id()?,
        on_progress,
        stop: stop.clone(),
    };
    let watcher = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\nstopping after the page being stored (Ctrl-C again to kill)...");
            stop.store(true, Ordering::Relaxed);
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    // A local run has no deadline but the user's patience.
    let report = run
        .run(
            &plan,
            Instant::now() + Duration::from_secs(10 * 365 * 24 * 3600),
        )
        .await;
    watcher.abort();
    let report = report?;
    print_report(&report, &api, &destination.place);
    Ok(if report.complete { 0 } else { EXIT_INCOMPLETE })
}

fn events_api(config: &Config) -> Result<Arc<EventsApi>, CommandError> {
    let Some(api_key) = config.identity.api_key.clone() else {
        return Err("KLAVIYO_API_KEY is not set: the pull needs a private API key with the events:read and metrics:read scopes".into());
    };
    Ok(EventsApi::for_account(
        config,
        api_key,
        config.pull_requests_per_minute,
    )?)
}

fn settings(config: &Config, args: &PullArgs) -> PullSettings {
    PullSettings {
        choice: MetricChoice {
            channels: config.pull_channels.clone(),
            names: args.metrics.clone(),
        },
        settle: TimeDelta::seconds(args.settle_secs),
        late: LatePasses {
            recent: TimeDelta::hours(args.recent_hours),
            recent_every: TimeDelta::minutes(args.recent_every_minutes),
            week_days: args.check_days,
            week_every: TimeDelta::hours(args.check_every_hours),
            month_days: args.old_check_days,
            ..LatePasses::default()
        },
        first_run_lookback: TimeDelta::hours(args.lookback_hours),
        lease: TimeDelta::seconds(args.lease_secs),
        only_own_profiles: config.identity.only_own_profiles,
        parallel_windows: args
            .parallel_windows
            .unwrap_or_else(|| windows_for_budget(config.pull_requests_per_minute)),
        ..PullSettings::default()
    }
}

/// A random id for the lease: the host's process id plus random bits.
fn run_id() -> Result<String, CommandError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes)?;
    let random: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("pid-{}-{random}", std::process::id()))
}

/// Klaviyo's count of the events a plan covers, per metric.
struct Estimate {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    per_metric: Vec<(String, String, u64)>,
    warnings: Vec<String>,
}

impl Estimate {
    fn total(&self) -> u64 {
        self.per_metric.iter().map(|(_, _, n)| n).sum()
    }
}

/// Asks Klaviyo (metric aggregates, one request per metric) how many events `plan` covers.
async fn estimate(
    api: &EventsApi,
    settings: &PullSettings,
    plan: &PullPlan,
    store: &dyn PullStateStore,
) -> Result<Estimate, CommandError> {
    let far = Instant::now() + Duration::from_secs(600);
    let account = api.metrics(far).await?;
    let (saved, _) = store.load().await?;
    let selection = select_metrics(&account, &settings.choice, &saved.streams);
    let (from, to) = match plan {
        PullPlan::Window { from, to, .. } => (*from, *to),
        PullPlan::Incremental => {
            let to = Utc::now() - settings.settle;
            (to - settings.first_run_lookback, to)
        }
    };
    let mut per_metric = Vec::new();
    for metric in &selection.metrics {
        let mut events = 0;
        // Klaviyo answers at most a year a query, five years back (metric_aggregates.rs).
        for (span_from, span_to) in count_spans(from, to, Utc::now()) {
            let body = daily_count_request(&metric.id, span_from, span_to);
            let counts = parse_daily_counts(&api.metric_aggregates(body, far).await?)?;
            events += counts.iter().map(|(_, n)| n).sum::<u64>();
        }
        per_metric.push((metric.name.clone(), metric.id.clone(), events));
    }
    Ok(Estimate {
        from,
        to,
        per_metric,
        warnings: selection.warnings,
    })
}

async fn print_plan(
    api: &EventsApi,
    settings: &PullSettings,
    plan: &PullPlan,
    store: &dyn PullStateStore,
) -> Result<(), CommandError> {
    let estimate = estimate(api, settings, plan, store).await?;
    println!(
        "plan: {} .. {} (dry run: nothing is read or stored)",
        estimate.from, estimate.to
    );
    for (name, id, events) in &estimate.per_metric {
        println!("  {name:<40} {events:>12} events  ({id})");
    }
    let total = estimate.total();
    let per_minute = f64::from(api.requests_per_minute());
    let pages = total.div_ceil(u64::from(
        source_core::klaviyo::events_query::MAX_EVENTS_PAGE_SIZE,
    ));
    println!(
        "  total {total} events, at least {pages} pages: about {:.1} minutes at {per_minute} requests a minute",
        pages as f64 / per_minute.max(1.0)
    );
    for warning in &estimate.warnings {
        println!("  warning: {warning}");
    }
    Ok(())
}

/// The progress line of a backfill: events stored of Klaviyo's estimate, requests a minute,
/// 429s and the time left at the rate so far.
fn print_progress(progress: Progress, api: &EventsApi, started: Instant, estimated_total: u64) {
    let counts = api.counts();
    let seconds = started.elapsed().as_secs_f64();
    let per_minute = if seconds > 0.0 {
        counts.requests as f64 * 60.0 / seconds
    } else {
        0.0
    };
    let rate = progress.events as f64 / seconds.max(0.001);
    let left = estimated_total.saturating_sub(progress.events) as f64 / rate.max(1.0);
    eprint!(
        "\r{} / ~{} events, {:.0} requests/min, {} x 429, ETA {}m{:02}s   ",
        progress.events,
        estimated_total,
        per_minute,
        counts.rate_limited,
        (left / 60.0) as u64,
        (left % 60.0) as u64
    );
}

fn print_report(report: &PullReport, api: &EventsApi, place: &str) {
    let counts = api.counts();
    eprintln!();
    println!(
        "{} events stored ({} rejected, {} skipped, {} already stored) from {} pages of {} metric(s) into {}; {} requests, {} x 429{}",
        report.events,
        report.rejected,
        report.skipped,
        report.already_stored,
        report.pages,
        report.metrics.len(),
        place,
        counts.requests,
        counts.rate_limited,
        if report.complete {
            ""
        } else {
            "; NOT complete: run again to continue"
        }
    );
    if report.count_checks > 0 {
        println!(
            "late events: {} daily-count queries, {} day(s) read again",
            report.count_checks, report.days_reread
        );
    }
    for warning in &report.warnings {
        println!("warning: {warning}");
    }
}
