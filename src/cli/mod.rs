//! The subcommands of the `samenloop` binary, one file each.
//!
//! Exit codes are shared by all subcommands: 0 success, 1 a fatal error (nothing or
//! not everything was done), 2 a usage error (from the argument parser), 3 the run
//! completed but some input rows were rejected (see the rejects report; for
//! `audit subject-access`, the person's row, and nothing was sent), 4 a check found a
//! violated guarantee (`crash`, `audit verify`).

pub mod admin;
pub mod audit;
pub mod crash;
pub mod index_key;
pub mod keys;
pub mod load;
pub mod pseudonymise;
pub mod quality;
pub mod receive;
pub mod retention;
pub mod serve;
pub mod submit;
pub mod synth;
pub mod token;

use std::process::ExitCode;

/// Exit code: some input rows were rejected, the rest was processed.
pub const EXIT_REJECTS: u8 = 3;

/// Exit code: the run completed and found a violated guarantee (see the report).
pub const EXIT_VIOLATIONS: u8 = 4;

/// Prints `samenloop: error: {msg}` to stderr and returns exit code 1.
pub fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("samenloop: error: {msg}");
    ExitCode::from(1)
}

/// Prints a report on stdout, as pretty JSON with `--json` or else as `text` renders it;
/// `Err` carries the exit code when the JSON cannot be written.
pub fn print_report<R: serde::Serialize>(
    report: &R,
    json: bool,
    text: impl FnOnce(&R) -> String,
) -> Result<(), ExitCode> {
    if json {
        let s = serde_json::to_string_pretty(report)
            .map_err(|e| fail(format!("cannot write the report as JSON: {e}")))?;
        println!("{s}");
    } else {
        print!("{}", text(report));
    }
    Ok(())
}
