//! `samenloop webhook-receiver`: a coordinator's webhook receiver for trying the index
//! out (README, "Coordinator contact"). It verifies each webhook's signature with the
//! network's secret file (`spec/webhooks.md`), answers 401 to a bad one, and prints each
//! verified alert once as one JSON line on stdout (a repeat of an event id it already
//! printed is noted on stderr only).

use crate::alerts::receiver::{Received, serve, tls_from_files};
use crate::alerts::signature::WebhookSecret;
use crate::config::development_config_path;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Arguments of `samenloop webhook-receiver`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on (HTTPS).
    #[arg(long, default_value = "127.0.0.1:9443")]
    pub listen: SocketAddr,
    /// The network's webhook secret file (default: the development one).
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
    /// PEM certificate chain (default: the development certificate for localhost).
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (default: the development key).
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
}

/// Runs the receiver until SIGINT or SIGTERM.
pub fn run(args: Args) -> ExitCode {
    let dev = |name: &str| {
        development_config_path()
            .parent()
            .map(|d| d.join(name))
            .unwrap_or_else(|| PathBuf::from(name))
    };
    let secret_path = args
        .secret_file
        .unwrap_or_else(|| dev("webhook-secret.dev.toml"));
    let secret = match WebhookSecret::read(&secret_path) {
        Ok(s) => s,
        Err(e) => return super::fail(format!("--secret-file: {e}")),
    };
    let cert = args.tls_cert.unwrap_or_else(|| dev("tls-cert.dev.pem"));
    let key = args.tls_key.unwrap_or_else(|| dev("tls-key.dev.pem"));
    let tls = match tls_from_files(&cert, &key) {
        Ok(t) => t,
        Err(e) => return super::fail(e),
    };
    let listener = match std::net::TcpListener::bind(args.listen) {
        Ok(l) => l,
        Err(e) => return super::fail(format!("cannot listen on {}: {e}", args.listen)),
    };
    let on_alert = Arc::new(|r: Received| {
        if r.repeat {
            eprintln!("repeat of {} (already printed)", r.event_id);
            return;
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", r.body);
        let _ = out.flush();
    });
    let system = actix_web::rt::System::new();
    let result = system.block_on(async move {
        let server = serve(listener, tls, secret, 1, on_alert).map_err(|e| e.to_string())?;
        eprintln!(
            "webhook receiver listening on https://{}/ (answers 401 to a bad signature)",
            args.listen
        );
        server.await.map_err(|e| e.to_string())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => super::fail(e),
    }
}
