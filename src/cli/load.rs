//! `samenloop load`: the end-to-end load tool (see [`crate::load`]).

use crate::load::{Mode, Options};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `samenloop load`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Without --server, starts `samenloop serve` itself on a free loopback port with the \
development keys, a fresh database (or --keep-data DIR) and durability on, and stops it \
(SIGTERM) at the end. Example: samenloop load --preload 100000 --mode single --rate 1000 --duration 30")]
pub struct Args {
    /// Use a running server at this base URL instead of starting one.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Trust this PEM certificate (default: the development certificate in keys-example/).
    #[arg(long, value_name = "PEM")]
    pub ca_cert: Option<PathBuf>,
    /// With --server: its configuration file (token signing keys, organisations, networks).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// With --server: process id of the server, to report its CPU and memory.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// With --server: its data directory, to report disk use (else the server's own figure).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Keep the database of the started server in DIR, and reuse it if it exists
    /// (build scale runs up: preload 1M once, measure many times).
    #[arg(long, value_name = "DIR", conflicts_with = "server")]
    pub keep_data: Option<PathBuf>,
    /// Started server: sled page cache, MiB.
    #[arg(long, default_value_t = 256, conflicts_with = "server")]
    pub cache_mib: u64,
    /// Started server: HTTP worker threads (default: number of cores).
    #[arg(long, conflicts_with = "server", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub workers: Option<u32>,
    /// Started server: submitting organisations (the first 20 have realistic names).
    #[arg(long, default_value_t = 20, conflicts_with = "server",
          value_parser = clap::value_parser!(u32).range(2..=1000))]
    pub organisations: u32,
    /// Started server: networks (organisations take part in one to three of them).
    #[arg(long, default_value_t = 3, conflicts_with = "server",
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub networks: u32,
    /// Signals to store through the batch API, as fast as possible, before measuring.
    #[arg(long, default_value_t = 0)]
    pub preload: u64,
    /// Batch requests in flight during the preload.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub preload_concurrency: u32,
    /// Measurement: batch (`POST /v1/signals/batch`) or single (`POST /v1/signals`).
    #[arg(long, value_enum, default_value = "batch")]
    pub mode: ModeArg,
    /// Signals to send in each measurement step (0: no measurement).
    #[arg(long, default_value_t = 10_000, conflicts_with = "duration")]
    pub signals: u64,
    /// Length of each measurement step, seconds (instead of --signals).
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub duration: Option<f64>,
    /// Before measuring, run the measurement workload this long, reported as a separate
    /// "warm-up" phase (a freshly started server on a large database is reading its pages in).
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub warmup: Option<f64>,
    /// Target requests per second, open loop on a fixed schedule; a list (500,1000,2000)
    /// runs one step per rate. Without it: closed loop, as fast as --concurrency allows.
    #[arg(long, value_name = "R[,R...]", value_delimiter = ',', value_parser = parse_rate)]
    pub rate: Vec<f64>,
    /// Requests in flight at most (connections, with HTTP/1.1); default 4 in batch
    /// mode, 64 in single mode.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub concurrency: Option<u32>,
    /// Signals per batch request (preload and batch mode).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub batch_size: u32,
    /// Share of signals about a person or household another organisation already
    /// signalled (0 to 1).
    #[arg(long, default_value_t = 0.1, value_parser = parse_share)]
    pub match_share: f64,
    /// Workload seed (same seed, same signals).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Time-to-alert probes (pairs of signals whose match the coordinator polls for).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub probes: u32,
    /// Milliseconds between two probes during the measurement.
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub probe_interval_ms: u64,
    /// Start an HTTPS webhook receiver in the load tool, give every network of the started
    /// server a webhook to it, and report each probe's time to webhook.
    #[arg(long, conflicts_with = "server")]
    pub webhook: bool,
    /// Negotiate HTTP/2 (all requests multiplexed on one connection).
    #[arg(long)]
    pub http2: bool,
    /// Measure what the access log costs: run the whole load N times (at least 2, each
    /// with a fresh server and database), alternately with the access log off and on
    /// (off, on, on, off, …), and report the signals/s of the measurement with and
    /// without it and their ratio.
    #[arg(long, value_name = "N", default_value_t = 0, conflicts_with_all = ["server", "keep_data"],
          value_parser = clap::value_parser!(u32).range(0..=100))]
    pub compare_audit: u32,
    /// Key id to sign the tokens with (default: the first key with a private key).
    #[arg(long)]
    pub kid: Option<String>,
    /// Print the report as JSON on stdout (progress still goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// No progress messages on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `--mode`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum ModeArg {
    /// `POST /v1/signals/batch`.
    Batch,
    /// `POST /v1/signals`.
    Single,
}

fn parse_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 86_400.0 * 7.0 => Ok(v),
        _ => Err("a number of seconds above 0 (at most a week)".into()),
    }
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1_000_000.0 => Ok(v),
        _ => Err("a request rate above 0 (at most 1,000,000 per second)".into()),
    }
}

fn parse_share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err("a share from 0 to 1, e.g. 0.1".into()),
    }
}

/// Runs the load test and prints the report; exit 3 when any signal was refused.
pub fn run(args: Args) -> ExitCode {
    // Checked here rather than with clap's `requires`: clap drops that requirement
    // when a flag that conflicts with --server (e.g. --organisations) is present.
    if args.server.is_none() {
        for (given, flag) in [
            (args.config.is_some(), "--config"),
            (args.server_pid.is_some(), "--server-pid"),
            (args.data_dir.is_some(), "--data-dir"),
        ] {
            if given {
                eprintln!(
                    "error: {flag} describes a running server: it needs --server URL\n\n\
                     For more information, try '--help'."
                );
                return ExitCode::from(2);
            }
        }
    }
    let mode = match args.mode {
        ModeArg::Batch => Mode::Batch,
        ModeArg::Single => Mode::Single,
    };
    let opts = Options {
        server: args.server,
        ca_cert: args.ca_cert,
        config: args.config,
        server_pid: args.server_pid,
        data_dir: args.data_dir,
        keep_data: args.keep_data,
        cache_mib: args.cache_mib,
        workers: args.workers.map(|w| w as usize),
        organisations: args.organisations as usize,
        networks: args.networks as usize,
        preload: args.preload,
        preload_concurrency: args.preload_concurrency as usize,
        mode,
        signals: args.signals,
        duration: args.duration.map(Duration::from_secs_f64),
        warmup: args.warmup.map(Duration::from_secs_f64),
        rates: args.rate,
        concurrency: args.concurrency.map(|c| c as usize).unwrap_or(match mode {
            Mode::Batch => 4,
            Mode::Single => 64,
        }),
        batch_size: args.batch_size as usize,
        match_share: args.match_share,
        seed: args.seed,
        probes: args.probes as usize,
        probe_interval: Duration::from_millis(args.probe_interval_ms),
        webhook: args.webhook,
        http2: args.http2,
        access_log: true,
        kid: args.kid,
        progress: !args.quiet,
    };
    if args.compare_audit > 0 {
        return compare_audit(opts, args.compare_audit, args.json);
    }
    let report = match crate::load::run(opts) {
        Ok(r) => r,
        Err(e) => return super::fail(e),
    };
    if let Err(code) = super::print_report(&report, args.json, |r| r.render()) {
        return code;
    }
    if report.errors > 0 {
        ExitCode::from(super::EXIT_REJECTS)
    } else {
        ExitCode::SUCCESS
    }
}

/// One run of `--compare-audit`.
#[derive(Debug, serde::Serialize)]
struct CompareRun {
    access_log: bool,
    signals_per_sec: f64,
    p99_ms: f64,
}

/// The result of `--compare-audit`.
#[derive(Debug, serde::Serialize)]
struct Compare {
    runs: Vec<CompareRun>,
    without_log_signals_per_sec: f64,
    with_log_signals_per_sec: f64,
    ratio: f64,
}

fn compare_audit(opts: Options, rounds: u32, json: bool) -> ExitCode {
    let rounds = rounds.max(2);
    let mut runs = Vec::new();
    for i in 0..rounds {
        // off, on, on, off, off, on, …: a drift of the machine cancels out.
        let on = matches!(i % 4, 1 | 2);
        let mut o = opts.clone();
        o.access_log = on;
        if o.progress {
            eprintln!(
                "compare-audit: run {} of {rounds}, access log {}",
                i + 1,
                if on { "on" } else { "off" }
            );
        }
        let report = match crate::load::run(o) {
            Ok(r) => r,
            Err(e) => return super::fail(e),
        };
        let measured: Vec<_> = report
            .phases
            .iter()
            .filter(|p| p.name.starts_with("measure"))
            .collect();
        let secs: f64 = measured.iter().map(|p| p.seconds).sum();
        let accepted: u64 = measured.iter().map(|p| p.accepted).sum();
        let p99 = measured
            .iter()
            .map(|p| p.latency_ms.p99)
            .fold(0.0f64, f64::max);
        runs.push(CompareRun {
            access_log: on,
            signals_per_sec: if secs > 0.0 {
                accepted as f64 / secs
            } else {
                0.0
            },
            p99_ms: p99,
        });
    }
    let mean = |on: bool| {
        let v: Vec<f64> = runs
            .iter()
            .filter(|r| r.access_log == on)
            .map(|r| r.signals_per_sec)
            .collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    let (off, on) = (mean(false), mean(true));
    let c = Compare {
        without_log_signals_per_sec: off,
        with_log_signals_per_sec: on,
        ratio: if off > 0.0 { on / off } else { 0.0 },
        runs,
    };
    let printed = super::print_report(&c, json, |c| {
        let mut s = String::from("access log  signals/s   p99 ms\n");
        for r in &c.runs {
            s.push_str(&format!(
                "{:<10}  {:>9.0}  {:>7.2}\n",
                if r.access_log { "on" } else { "off" },
                r.signals_per_sec,
                r.p99_ms
            ));
        }
        s.push_str(&format!(
            "mean: without {:.0} signals/s, with {:.0} signals/s; ratio with/without {:.3}\n",
            c.without_log_signals_per_sec, c.with_log_signals_per_sec, c.ratio
        ));
        s
    });
    match printed {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}
