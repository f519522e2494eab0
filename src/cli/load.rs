//! `samenloop load` (being written).

use std::process::ExitCode;

/// Arguments of `samenloop load`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs the subcommand.
pub fn run(_args: Args) -> ExitCode {
    super::fail("not available in this build")
}
