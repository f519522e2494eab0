//! `samenloop crash`: the crash-safety harness (see [`crate::load::crash`]).

use crate::load::crash::Options;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `samenloop crash`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Starts `samenloop serve` itself on a free loopback port with the development keys and a \
fresh database (or --keep-data DIR), submits signals concurrently, kills the server with \
SIGKILL at a random moment, restarts it on the same directory and checks over HTTPS that \
every acknowledged signal is intact, every unacknowledged one is wholly present or absent, \
and matches survived; then the next iteration. Exit 0: no violation; 4: violations (listed \
in the report); 1: the harness could not run. Example: samenloop crash --iterations 200")]
pub struct Args {
    /// Kill-restart-verify iterations.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub iterations: u32,
    /// Keep the database in DIR, and reuse it if it exists.
    #[arg(long, value_name = "DIR")]
    pub keep_data: Option<PathBuf>,
    /// Seed of the workload and of the kill moments (same seed, same signals and delays).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Shortest time from the start of an iteration's submissions to the kill, ms.
    #[arg(long, value_name = "MS", default_value_t = 50,
          value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub min_delay: u64,
    /// Longest time to the kill, ms (the delay is drawn uniformly in between).
    #[arg(long, value_name = "MS", default_value_t = 1500,
          value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub max_delay: u64,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
    /// Largest batch request (batches carry 2 to this many signals).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(2..=1000))]
    pub max_batch: u32,
    /// Share of requests that submit one signal (`POST /v1/signals`); the rest are batches.
    #[arg(long, default_value_t = 0.5, value_parser = parse_share)]
    pub single_share: f64,
    /// Share of signals about a person or household another organisation signalled.
    #[arg(long, default_value_t = 0.3, value_parser = parse_share)]
    pub match_share: f64,
    /// Submitting organisations.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(2..=1000))]
    pub organisations: u32,
    /// Networks.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub networks: u32,
    /// Signals of earlier iterations read back after each kill (a rotating window; all
    /// of them are read back once at the end).
    #[arg(long, default_value_t = 2000)]
    pub recheck: usize,
    /// sled page cache of the server, MiB.
    #[arg(long, default_value_t = 64)]
    pub cache_mib: u64,
    /// Print the report as JSON on stdout (progress still goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// No progress messages on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

fn parse_share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err("a share from 0 to 1, e.g. 0.3".into()),
    }
}

/// Runs the harness and prints the report; exit 4 when a guarantee was violated.
pub fn run(args: Args) -> ExitCode {
    if args.min_delay > args.max_delay {
        eprintln!(
            "error: --min-delay ({}) is longer than --max-delay ({})\n\n\
             For more information, try '--help'.",
            args.min_delay, args.max_delay
        );
        return ExitCode::from(2);
    }
    let opts = Options {
        iterations: args.iterations as usize,
        keep_data: args.keep_data,
        seed: args.seed,
        min_delay_ms: args.min_delay,
        max_delay_ms: args.max_delay,
        concurrency: args.concurrency as usize,
        max_batch: args.max_batch as usize,
        single_share: args.single_share,
        match_share: args.match_share,
        organisations: args.organisations as usize,
        networks: args.networks as usize,
        recheck: args.recheck,
        cache_mib: args.cache_mib,
        progress: !args.quiet,
    };
    let report = match crate::load::crash::run(opts) {
        Ok(r) => r,
        Err(e) => return super::fail(e),
    };
    if let Err(code) = super::print_report(&report, args.json, |r| r.render()) {
        return code;
    }
    if report.violations > 0 {
        ExitCode::from(super::EXIT_VIOLATIONS)
    } else {
        ExitCode::SUCCESS
    }
}
