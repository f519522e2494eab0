//! `samenloop synth`: a synthetic Dutch population and noisy partner exports of it,
//! written as CSV files with mapping files, plus the truth for evaluation.

use crate::synth::{self, Config, files};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Arguments of `samenloop synth`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Writes into DIR, for each partner: partner-a.csv (its export, in its own columns and
formats) and partner-a.mapping.toml (its column mapping, for `samenloop pseudonymise
--mapping`); and truth.csv, which says which made-up person each record is about. The
truth is for evaluation only (`samenloop quality --dir DIR`): a real partner has no such
file. All data is synthetic; the same --persons, --seed and --partners give the same
files on every machine.")]
pub struct Args {
    /// Number of persons in the population (whole households: a few more may be made).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub persons: usize,
    /// Seed of the generator.
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u64,
    /// Number of partner exports (2 to 26).
    #[arg(long, value_name = "K", default_value_t = 4)]
    pub partners: usize,
    /// Output directory (created if needed; existing files of the same names are replaced).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Runs the subcommand.
pub fn run(args: Args) -> ExitCode {
    let started = Instant::now();
    let config = Config::new(args.persons, args.seed, args.partners);
    let syn = match synth::generate(&config) {
        Ok(s) => s,
        Err(e) => return super::fail(e),
    };
    let paths = match files::write_dir(&syn, &config, &args.out) {
        Ok(p) => p,
        Err(e) => return super::fail(e),
    };
    eprintln!(
        "synthetic population of {} persons in {} households (seed {})",
        syn.population.persons.len(),
        syn.population.households.len(),
        args.seed
    );
    for e in &syn.exports {
        let profile = &synth::PROFILES[e.profile % synth::PROFILES.len()];
        eprintln!(
            "  {}.csv: {} records ({}; dates like {})",
            e.name,
            e.records.len(),
            profile.description,
            profile.date_format.example()
        );
    }
    eprintln!(
        "wrote {} files to {} in {:.1} s; truth.csv is for evaluation only",
        paths.len(),
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}
