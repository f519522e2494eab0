//! `samenloop keys` (being written).

use std::process::ExitCode;

/// Subcommands of `samenloop keys`.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Write a new random domain key file.
    Generate {},
}

/// Runs the subcommand.
pub fn run(_cmd: Command) -> ExitCode {
    super::fail("not available in this build")
}
