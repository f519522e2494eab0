//! `samenloop index-key rotate | status`: the rotation of the index key `K_index` of a
//! running server (spec/index-key-rotation.md), through
//! `POST|GET /v1/admin/index-key/rotation` with an admin token.

use super::audit::{ServerArgs, get_json, post_json, runtime};
use crate::http::rotation::RotationStatus;
use std::process::ExitCode;

/// The subcommands of `samenloop index-key`.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Start re-keying every stored key under a new index key. The key file (from
    /// `samenloop keys generate --index`) must lie in the directory of the server's
    /// `domain.index_key_file`; name it by its file name. The server re-writes the
    /// records in the background; follow it with `status`.
    Rotate(RotateArgs),
    /// Show the state of the last rotation (idle, running or done) and its progress.
    Status(StatusArgs),
}

/// Arguments of `samenloop index-key rotate`.
#[derive(clap::Args, Debug)]
pub struct RotateArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The new index key file's name in the directory of `domain.index_key_file`.
    #[arg(long, value_name = "FILE")]
    pub key_file: String,
    /// Print the answer as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `samenloop index-key status`.
#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Print the answer as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs an `index-key` subcommand.
pub fn run(cmd: Command) -> ExitCode {
    match cmd {
        Command::Rotate(a) => {
            let body = serde_json::json!({ "key_file": a.key_file });
            call(&a.server, a.json, |rt, s, t| {
                rt.block_on(post_json(s, PATH, t, &body)).map(|(_, v)| v)
            })
        }
        Command::Status(a) => call(&a.server, a.json, |rt, s, t| {
            rt.block_on(get_json(s, PATH, t))
        }),
    }
}

const PATH: &str = "/v1/admin/index-key/rotation";

fn call(
    server: &ServerArgs,
    json: bool,
    f: impl FnOnce(&tokio::runtime::Runtime, &ServerArgs, &str) -> Result<serde_json::Value, String>,
) -> ExitCode {
    let token = match super::submit::read_token_from(server.token_file.as_deref()) {
        Ok(t) => t,
        Err(e) => return super::fail(e),
    };
    let rt = match runtime() {
        Ok(r) => r,
        Err(e) => return super::fail(e),
    };
    let v = match f(&rt, server, &token) {
        Ok(v) => v,
        Err(e) => return super::fail(e),
    };
    let status: RotationStatus = match serde_json::from_value(v) {
        Ok(s) => s,
        Err(e) => return super::fail(format!("unreadable answer from the server: {e}")),
    };
    match super::print_report(&status, json, render) {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}

/// The status as text.
pub fn render(s: &RotationStatus) -> String {
    let mut out = format!(
        "index key ring: epoch {} ({})\n",
        s.epoch,
        s.key_ids.join(" -> ")
    );
    if s.state == "idle" {
        out.push_str("never rotated\n");
        return out;
    }
    out.push_str(&format!(
        "rotation {} -> {}: {}, {} of {} signals re-written, {} keys re-keyed, {} excluded addresses moved\n",
        s.from_key_id.as_deref().unwrap_or("?"),
        s.to_key_id.as_deref().unwrap_or("?"),
        s.state,
        s.signals_rekeyed,
        s.signals_total,
        s.keys_rekeyed,
        s.excluded_moved,
    ));
    if let Some(t) = &s.started_at {
        out.push_str(&format!("started  {t}\n"));
    }
    if let Some(t) = &s.finished_at {
        out.push_str(&format!("finished {t}\n"));
    }
    out
}
