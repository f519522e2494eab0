//! The `samenloop` command: parses the command line and hands off to the library.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use samenloop::cli;
use std::process::ExitCode;

/// mimalloc instead of the system allocator: sled and the index allocate many small
/// objects on the writer thread (see the README, "End to end over HTTPS").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// samenloop — privacy-preserving signal-matching index (verwijsindex).
#[derive(Parser)]
#[command(name = "samenloop", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the index: the HTTPS API partners and coordinators use.
    Serve(cli::serve::Args),
    /// Post key sets from `pseudonymise` to a server in batches, idempotent by reference.
    Submit(cli::submit::Args),
    /// Mint a development token (uses a private key named in the configuration).
    Token(cli::token::Args),
    /// Turn a partner's CSV or JSON Lines export into match-key sets (spec/pseudonymisation.md).
    Pseudonymise(cli::pseudonymise::Args),
    /// Manage pseudonymisation domain keys.
    #[command(subcommand)]
    Keys(cli::keys::Command),
    /// Generate a synthetic Dutch population and noisy partner exports of it.
    Synth(cli::synth::Args),
    /// Measure person-pair recall and precision of the match-key ladder on partner exports.
    Quality(cli::quality::Args),
    /// Drive a real server over HTTPS with a synthetic workload and report throughput,
    /// latency, time to alert, server CPU, memory and disk.
    Load(cli::load::Args),
    /// Kill a real server with SIGKILL at random moments under load, restart it and check
    /// that every acknowledged signal and its matches survived, and nothing half-written.
    Crash(cli::crash::Args),
    /// The directory of a running server (admin token): organisations, network
    /// settings, excluded addresses; changes take effect without a restart.
    #[command(subcommand)]
    Admin(cli::admin::Command),
    /// Rotate the index key K_index of a running server in place (admin token).
    #[command(subcommand)]
    IndexKey(cli::index_key::Command),
    /// The retention job of a running server (admin token).
    #[command(subcommand)]
    Retention(cli::retention::Command),
    /// A coordinator's webhook receiver for trying the index out: verifies each
    /// webhook's signature and prints each alert as one JSON line.
    WebhookReceiver(cli::receive::Args),
    /// The access log for privacy officers: verify it offline, export it, answer a
    /// data-subject access request, make a checkpoint.
    #[command(subcommand)]
    Audit(cli::audit::Command),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => cli::serve::run(args),
        Command::Token(args) => cli::token::run(args),
        Command::Submit(args) => cli::submit::run(args),
        Command::Pseudonymise(args) => cli::pseudonymise::run(args),
        Command::Keys(cmd) => cli::keys::run(cmd),
        Command::Synth(args) => cli::synth::run(args),
        Command::Quality(args) => cli::quality::run(args),
        Command::Load(args) => cli::load::run(args),
        Command::Crash(args) => cli::crash::run(args),
        Command::WebhookReceiver(args) => cli::receive::run(args),
        Command::IndexKey(cmd) => cli::index_key::run(cmd),
        Command::Retention(cmd) => cli::retention::run(cmd),
        Command::Admin(cmd) => cli::admin::run(cmd),
        Command::Audit(cmd) => cli::audit::run(cmd),
    }
}
