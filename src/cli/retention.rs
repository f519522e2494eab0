//! `samenloop retention run`: runs the server's retention job now, or lists what it
//! would do (`--dry-run`), through `POST /v1/admin/retention/run` with an admin token.

use super::audit::{ServerArgs, post_json, runtime};
use crate::http::retention::RunReport;
use std::process::ExitCode;

/// The subcommands of `samenloop retention`.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Run the retention job now (archive expired signals, erase archived ones whose
    /// period has passed, erase closed matches whose network's period has passed, prune
    /// the access log), or with --dry-run list what it would archive and erase.
    Run(RunArgs),
}

/// Arguments of `samenloop retention run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Change nothing: list the signals that would be archived and erased, and the
    /// closed matches that would be erased.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs a `retention` subcommand.
pub fn run(cmd: Command) -> ExitCode {
    match cmd {
        Command::Run(a) => run_job(a),
    }
}

fn render(r: &RunReport) -> String {
    let mut s = if r.dry_run {
        format!(
            "dry run at {}: {} signals would be archived (expired), {} erased (archive period over), {} closed matches erased (period over); nothing was changed\n",
            r.at, r.archived, r.erased, r.matches_erased
        )
    } else {
        format!(
            "retention run at {}: {} signals archived, {} erased, {} matches dissolved, {} closed matches erased, {} access-log entries pruned{}\n",
            r.at,
            r.archived,
            r.erased,
            r.alerts,
            r.matches_erased,
            r.log_entries_pruned,
            r.log_pruned_through
                .map(|k| format!(" (the log now starts after the checkpoint at entry {k})"))
                .unwrap_or_default()
        )
    };
    for (what, list) in [("archive", &r.to_archive), ("erase", &r.to_erase)] {
        for p in list {
            s.push_str(&format!(
                "  {what:<8} {}  {}  {}  since {}\n",
                p.id, p.organisation, p.network, p.since
            ));
        }
    }
    for m in &r.matches_to_erase {
        s.push_str(&format!(
            "  {:<8} {}  {}  closed {}  erasable since {}\n",
            "match",
            m.handle,
            m.networks.join(","),
            m.closed_at,
            m.erasable_since
        ));
    }
    s
}

fn run_job(args: RunArgs) -> ExitCode {
    let token = match super::submit::read_token_from(args.server.token_file.as_deref()) {
        Ok(t) => t,
        Err(e) => return super::fail(e),
    };
    let rt = match runtime() {
        Ok(r) => r,
        Err(e) => return super::fail(e),
    };
    let body = serde_json::json!({ "dry_run": args.dry_run });
    let v = match rt.block_on(post_json(
        &args.server,
        "/v1/admin/retention/run",
        &token,
        &body,
    )) {
        Ok((_, v)) => v,
        Err(e) => return super::fail(format!("the retention job did not run: {e}")),
    };
    let report: RunReport = match serde_json::from_value(v) {
        Ok(r) => r,
        Err(e) => return super::fail(format!("unreadable answer from the server: {e}")),
    };
    match super::print_report(&report, args.json, render) {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}
