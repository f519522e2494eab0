//! `samenloop quality`: person-pair recall and precision of the match-key ladder on a
//! synthetic population (generated in memory, or written earlier by `samenloop synth`).

use crate::pseudonym::keyfile::read_key_file;
use crate::pseudonym::{Date, DomainKey, KeyId};
use crate::quality::{self, Options, Report};
use crate::synth::{self, Config, files};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Arguments of `samenloop quality`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Without --dir, generates a synthetic population and partner exports in memory (as
`samenloop synth` would write them) and evaluates them. With --dir, reads the exports
and truth.csv that `samenloop synth --out DIR` wrote.

Every record is normalised and its keys derived (spec/pseudonymisation.md); records of
different exports that share a key are candidates; the spec's rule (same_person)
decides each candidate; the result is compared with the truth. Recall is counted over
the true cross-export record pairs of one person, split by BSN status; precision over
the predicted pairs. Floors: precision >= 99.9%; recall >= 99% when one or both records
have a BSN; recall >= 95% when neither has. Exit status: 0 all floors hold, 1 a floor
fails or the evaluation could not run, 2 usage error.")]
pub struct Args {
    /// Number of persons in the generated population.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 20_000,
        conflicts_with = "dir"
    )]
    pub persons: usize,
    /// Seed of the generator.
    #[arg(long, value_name = "S", default_value_t = 1, conflicts_with = "dir")]
    pub seed: u64,
    /// Number of partner exports to generate (2 to 26).
    #[arg(long, value_name = "K", default_value_t = 4, conflicts_with = "dir")]
    pub partners: usize,
    /// Evaluate the exports in this directory (written by `samenloop synth`) instead.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Domain key file [default: a fixed throw-away key; the figures do not depend on it].
    #[arg(long, value_name = "PATH")]
    pub key: Option<PathBuf>,
    /// Processing date [default: 2026-01-01, the reference date of synthetic data].
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub today: Option<Date>,
    /// Print the report as JSON on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    /// Include this many example misses and false links (synthetic records) in the report.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub examples: usize,
    /// Worker threads for pseudonymisation [default: available parallelism].
    #[arg(long, value_name = "N")]
    pub threads: Option<std::num::NonZeroUsize>,
}

fn parse_date(s: &str) -> Result<Date, String> {
    Date::parse_iso(s).ok_or_else(|| "expected a date YYYY-MM-DD".to_string())
}

/// Runs the subcommand.
pub fn run(args: Args) -> ExitCode {
    match run_inner(&args) {
        Ok(report) => {
            if let Err(code) = super::print_report(&report, args.json, |r| r.to_text()) {
                return code;
            }
            if report.passed {
                ExitCode::SUCCESS
            } else {
                eprintln!("samenloop quality: a floor is not met");
                ExitCode::from(1)
            }
        }
        Err(msg) => super::fail(msg),
    }
}

fn run_inner(args: &Args) -> Result<Report, String> {
    let key = match &args.key {
        Some(path) => read_key_file(path).map_err(|e| e.to_string())?,
        None => throwaway_key()?,
    };
    let threads = args
        .threads
        .map(|n| n.get())
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
        .min(64);
    let opts = Options {
        key,
        today: args.today.unwrap_or(synth::REFERENCE_DATE),
        threads,
        examples: args.examples,
    };
    let started = Instant::now();
    let report = match &args.dir {
        Some(dir) => {
            eprintln!("reading {} ...", dir.display());
            let back = files::read_dir(dir).map_err(|e| e.to_string())?;
            eprintln!(
                "read {} exports in {:.1} s; evaluating ...",
                back.exports.len(),
                started.elapsed().as_secs_f64()
            );
            quality::evaluate(&back.exports, &back.kin, None, &opts)
        }
        None => {
            let config = Config::new(args.persons, args.seed, args.partners);
            eprintln!(
                "generating {} persons, {} partner exports (seed {}) ...",
                args.persons, args.partners, args.seed
            );
            let syn = synth::generate(&config).map_err(|e| e.to_string())?;
            let kin: HashMap<u32, synth::Kin> = syn
                .population
                .kin()
                .into_iter()
                .enumerate()
                .map(|(i, k)| (i as u32, k))
                .collect();
            eprintln!(
                "generated in {:.1} s; evaluating ...",
                started.elapsed().as_secs_f64()
            );
            quality::evaluate(
                &syn.exports,
                &kin,
                Some(syn.population.persons.len() as u64),
                &opts,
            )
        }
    };
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(report)
}

/// A fixed key that is never used for real data: quality figures do not depend on it.
fn throwaway_key() -> Result<DomainKey, String> {
    let id = KeyId::parse("quality-eval").ok_or("invalid key id")?;
    Ok(DomainKey::new(id, *b"samenloop quality: throw-away k!"))
}
