//! `samenloop submit`: post key sets from `samenloop pseudonymise` to a server in batches.
//!
//! Idempotent by reference, so a batch is simply resent after a transient failure
//! (connection error, 429 with `Retry-After`, 502/503/504). Tokens come from a file or
//! the `SAMENLOOP_TOKEN` environment variable, never from the command line (process
//! lists show it). Nothing identifying is printed: line numbers, references and problem
//! types only.

use crate::pseudonym::SubjectKeys;
use serde_json::{Value, json};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `samenloop submit`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// JSON Lines of key sets (`-` for standard input).
    pub input: PathBuf,
    /// Server base URL.
    #[arg(long, default_value = "https://localhost:8443")]
    pub server: String,
    /// File holding the bearer token (else the SAMENLOOP_TOKEN environment variable).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Network to submit to.
    #[arg(long)]
    pub network: String,
    /// Contact point: team or function name of the handling professional.
    #[arg(long)]
    pub contact_name: String,
    /// Contact point: phone number.
    #[arg(long)]
    pub contact_phone: Option<String>,
    /// Contact point: e-mail address.
    #[arg(long)]
    pub contact_email: Option<String>,
    /// Category from the network's list.
    #[arg(long)]
    pub category: Option<String>,
    /// Days the signals stay active (capped by the server at the network maximum).
    #[arg(long)]
    pub valid_days: Option<u32>,
    /// Signals per request (at most 1000).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub batch_size: u32,
    /// Trust only this PEM certificate (e.g. keys-example/tls-cert.dev.pem); default: system roots.
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
    /// Retries of a batch after a transient failure.
    #[arg(long, default_value_t = 6)]
    pub retries: u32,
    /// Write refused lines as JSON Lines to this file.
    #[arg(long)]
    pub rejects: Option<PathBuf>,
}

struct Item {
    line: usize,
    reference: String,
    body: Value,
}

#[derive(Default)]
struct Tally {
    new: usize,
    existing: usize,
    rejected: usize,
    reports: Vec<Value>,
}

impl Tally {
    fn reject(&mut self, line: usize, reference: Option<&str>, status: u16, problem: &Value) {
        self.rejected += 1;
        let ty = problem["type"].as_str().unwrap_or("");
        let title = problem["title"].as_str().unwrap_or("");
        if self.rejected <= 50 {
            eprintln!("line {line}: {status} {ty}: {title}");
        }
        let mut r = json!({ "line": line, "status": status, "type": ty, "title": title });
        if let Some(reference) = reference {
            r["reference"] = json!(reference);
        }
        if let Some(d) = problem["detail"].as_str() {
            r["detail"] = json!(d);
        }
        self.reports.push(r);
    }
}

fn read_token(args: &Args) -> Result<String, String> {
    read_token_from(args.token_file.as_deref())
}

/// The bearer token from `path`, or else from the `SAMENLOOP_TOKEN` environment variable
/// (never from the command line: process lists show it).
pub(crate) fn read_token_from(path: Option<&std::path::Path>) -> Result<String, String> {
    let token = match path {
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| format!("cannot read token file {}: {e}", p.display()))?,
        None => std::env::var("SAMENLOOP_TOKEN")
            .map_err(|_| "no token: give --token-file or set SAMENLOOP_TOKEN".to_string())?,
    };
    let token = token.trim().to_string();
    if token.is_empty() {
        return Err("the token is empty".into());
    }
    Ok(token)
}

fn client(args: &Args) -> Result<reqwest::Client, String> {
    https_client(
        args.ca_cert.as_deref(),
        reqwest::Client::builder().timeout(Duration::from_secs(120)),
    )
}

/// An HTTPS-only client from `builder` that trusts only `ca_cert` (PEM) when given, else
/// the system roots.
pub(crate) fn https_client(
    ca_cert: Option<&std::path::Path>,
    builder: reqwest::ClientBuilder,
) -> Result<reqwest::Client, String> {
    let mut b = builder.https_only(true);
    if let Some(p) = ca_cert {
        let pem = std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
        let cert =
            reqwest::Certificate::from_pem(&pem).map_err(|e| format!("{}: {e}", p.display()))?;
        b = b.add_root_certificate(cert).tls_built_in_root_certs(false);
    }
    b.build()
        .map_err(|e| format!("cannot build the HTTPS client: {e}"))
}

/// Runs the subcommand.
pub fn run(args: Args) -> ExitCode {
    let token = match read_token(&args) {
        Ok(t) => t,
        Err(e) => return super::fail(e),
    };
    let input: Box<dyn BufRead> = if args.input.as_os_str() == "-" {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        match std::fs::File::open(&args.input) {
            Ok(f) => Box::new(std::io::BufReader::new(f)),
            Err(e) => return super::fail(format!("cannot read {}: {e}", args.input.display())),
        }
    };
    let mut contact = json!({ "name": args.contact_name });
    if let Some(p) = &args.contact_phone {
        contact["phone"] = json!(p);
    }
    if let Some(e) = &args.contact_email {
        contact["email"] = json!(e);
    }
    let mut tally = Tally::default();
    let mut items = Vec::new();
    for (i, line) in input.split(b'\n').enumerate() {
        let n = i + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) => return super::fail(format!("cannot read {}: {e}", args.input.display())),
        };
        let text = String::from_utf8_lossy(&line);
        if text.trim().is_empty() {
            continue;
        }
        match SubjectKeys::from_json(text.trim()) {
            Ok(keys) => {
                let mut body = json!({
                    "network": args.network,
                    "subject": serde_json::from_str::<Value>(&keys.to_json()).unwrap_or(Value::Null),
                    "contact": contact,
                });
                if let Some(c) = &args.category {
                    body["category"] = json!(c);
                }
                if let Some(d) = args.valid_days {
                    body["valid_days"] = json!(d);
                }
                items.push(Item {
                    line: n,
                    reference: keys.reference,
                    body,
                });
            }
            Err(e) => {
                let problem = json!({ "type": "local:invalid-key-set", "title": e.to_string() });
                tally.reject(n, None, 0, &problem);
            }
        }
    }
    let client = match client(&args) {
        Ok(c) => c,
        Err(e) => return super::fail(e),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return super::fail(format!("cannot start the runtime: {e}")),
    };
    let url = format!("{}/v1/signals/batch", args.server.trim_end_matches('/'));
    let total = items.len();
    for chunk in items.chunks(args.batch_size as usize) {
        let body = json!({ "signals": chunk.iter().map(|i| &i.body).collect::<Vec<_>>() });
        let answer = runtime.block_on(post_with_retries(
            &client,
            &url,
            &token,
            &body,
            args.retries,
        ));
        let answer = match answer {
            Ok(a) => a,
            Err(e) => return super::fail(e),
        };
        for r in answer["results"].as_array().into_iter().flatten() {
            let Some(item) = r["index"].as_u64().and_then(|i| chunk.get(i as usize)) else {
                continue;
            };
            match r["status"].as_u64().unwrap_or(0) {
                201 => tally.new += 1,
                200 => tally.existing += 1,
                s => tally.reject(item.line, Some(&item.reference), s as u16, &r["problem"]),
            }
        }
    }
    if let Some(path) = &args.rejects {
        let mut text = String::new();
        for r in &tally.reports {
            text.push_str(&r.to_string());
            text.push('\n');
        }
        if let Err(e) = std::fs::File::create(path).and_then(|mut f| f.write_all(text.as_bytes())) {
            return super::fail(format!("cannot write {}: {e}", path.display()));
        }
    }
    eprintln!(
        "submitted {}: accepted {} (new {}, already stored {}), rejected {}",
        total + tally.reports.iter().filter(|r| r["status"] == 0).count(),
        tally.new + tally.existing,
        tally.new,
        tally.existing,
        tally.rejected
    );
    if tally.rejected > 0 {
        ExitCode::from(super::EXIT_REJECTS)
    } else {
        ExitCode::SUCCESS
    }
}

/// Posts one batch, retrying transient failures with exponential backoff and jitter.
async fn post_with_retries(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    body: &Value,
    retries: u32,
) -> Result<Value, String> {
    let mut attempt = 0;
    loop {
        let wait = match client.post(url).bearer_auth(token).json(body).send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                if status == 200 {
                    return resp
                        .json()
                        .await
                        .map_err(|e| format!("unreadable answer from the server: {e}"));
                }
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                let problem: Value = resp.json().await.unwrap_or(Value::Null);
                if !matches!(status, 429 | 502 | 503 | 504) {
                    return Err(format!(
                        "the server refused the batch: {status} {} {}",
                        problem["type"].as_str().unwrap_or(""),
                        problem["title"].as_str().unwrap_or("")
                    ));
                }
                retry_after.map(Duration::from_secs)
            }
            Err(e) if e.is_builder() => return Err(format!("cannot send to {url}: {e}")),
            Err(_) => None,
        };
        attempt += 1;
        if attempt > retries {
            return Err(format!(
                "giving up after {retries} retries: the server at {url} did not accept the batch"
            ));
        }
        let backoff = Duration::from_millis(200 * (1 << attempt.min(8)));
        let jitter = Duration::from_millis(u64::from(std::process::id() % 97) * attempt as u64);
        tokio::time::sleep(wait.unwrap_or(backoff + jitter)).await;
    }
}
