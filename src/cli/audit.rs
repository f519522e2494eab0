//! `samenloop audit …`: the privacy officer's tools for the access log.
//!
//! - `verify` checks the hash chain, the head and the checkpoints of a stopped server's
//!   database, or of a JSON Lines export, offline ([`crate::audit::verify`]).
//! - `export` downloads an export through `GET /v1/audit/export` into a file that
//!   appears only when it is complete.
//! - `subject-access` answers a data-subject access request (GDPR art. 15) end to end:
//!   the one person is pseudonymised locally with the code of `samenloop pseudonymise`,
//!   only the key set is sent (`POST /v1/audit/subject-access`), and the answer is
//!   printed. Neither the identifying fields nor the pseudonyms are ever printed.
//! - `checkpoint` asks the server for a checkpoint of the log now.
//!
//! Tokens come from a file or `SAMENLOOP_TOKEN`, never from the command line.

use super::pseudonymise::{
    InputFormat, format_from_extension, parse_date, parse_delimiter, parse_map,
};
use crate::audit::checkpoint::{self, Checkpoint, Verifier};
use crate::audit::export::EndLine;
use crate::audit::verify::Report;
use crate::audit::{Action, Outcome};
use crate::config::Config;
use crate::export::reject::describe;
use crate::export::{Format, MappingSpec, Observer, Options, RowError, Source};
use crate::http::routes::audit::SubjectAnswer;
use crate::pseudonym::keyfile::read_key_file;
use crate::pseudonym::{Date, PersonFields, SubjectFields, SubjectKeys, pseudonymise};
use serde::Serialize;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// The reference sent with the key set of a subject access request: the server does not
/// use it, and the reference of the input row (a partner's dossier number) stays here.
const SUBJECT_REFERENCE: &str = "subject-access";

/// Cache of the database opened for verification, MiB (without `--config`).
const VERIFY_CACHE_MIB: u64 = 64;

/// The subcommands of `samenloop audit`.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Verify the access log offline: the hash chain, head and checkpoints of a stopped
    /// server's database (--config or --data), or of a JSON Lines export (--export).
    #[command(after_help = "\
Exit status: 0 the log verifies, 4 it does not (the report names the first broken entry),
1 fatal error (missing or unreadable input, database in use by a running server),
2 usage error.

A running server holds a lock on its database: stop it first, or verify the live log
with the API (GET /v1/audit/verify, privacy officer token).")]
    Verify(VerifyArgs),
    /// Download an export of the access log (GET /v1/audit/export) into a file.
    Export(ExportArgs),
    /// Answer a data-subject access request (GDPR art. 15) for one person: pseudonymise
    /// the person here, send only the key set, print the signals, matches and accesses.
    SubjectAccess(SubjectArgs),
    /// Make a checkpoint of the access log now (POST /v1/audit/checkpoints) and print it.
    Checkpoint(CheckpointArgs),
}

/// Runs a subcommand of `samenloop audit`.
pub fn run(cmd: Command) -> ExitCode {
    match cmd {
        Command::Verify(a) => verify(a),
        Command::Export(a) => export(a),
        Command::SubjectAccess(a) => subject_access(a),
        Command::Checkpoint(a) => make_checkpoint(a),
    }
}

/// How to reach the server.
#[derive(clap::Args, Debug)]
pub struct ServerArgs {
    /// Server base URL.
    #[arg(long, value_name = "URL", default_value = "https://localhost:8443")]
    pub server: String,
    /// File holding the bearer token (a privacy officer's for `audit`, an admin's for
    /// `retention`; else the SAMENLOOP_TOKEN environment variable).
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// Trust only this PEM certificate (e.g. keys-example/tls-cert.dev.pem); default:
    /// system roots.
    #[arg(long, value_name = "PEM")]
    pub ca_cert: Option<PathBuf>,
}

impl ServerArgs {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.trim_end_matches('/'))
    }

    pub(crate) fn client(&self, read_timeout: Duration) -> Result<reqwest::Client, String> {
        super::submit::https_client(
            self.ca_cert.as_deref(),
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(30))
                .read_timeout(read_timeout),
        )
    }
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

/// A transport error with its causes (reqwest's own text leaves out why).
fn transport(url: &str, e: &reqwest::Error) -> String {
    let mut s = format!("cannot reach {url}: {e}");
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let _ = write!(s, ": {c}");
        cause = c.source();
    }
    s
}

/// An error answer (RFC 9457 problem+json) as one line: status, title, detail, type.
fn problem_text(status: reqwest::StatusCode, body: &[u8]) -> String {
    let mut s = status.to_string();
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(p) if p.is_object() => {
            if let Some(t) = p["title"].as_str() {
                let _ = write!(s, ": {t}");
            }
            if let Some(d) = p["detail"].as_str() {
                let _ = write!(s, " ({d})");
            }
            if let Some(t) = p["type"].as_str() {
                let _ = write!(s, " [{t}]");
            }
        }
        _ => {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
            let text = text.trim();
            if !text.is_empty() {
                let _ = write!(s, ": {text}");
            }
        }
    }
    s
}

// ---------------------------------------------------------------------------------
// verify

/// Arguments of `samenloop audit verify`.
#[derive(clap::Args, Debug)]
#[command(group(
    clap::ArgGroup::new("source")
        .required(true)
        .multiple(true)
        .args(["config", "data", "export"])
))]
pub struct VerifyArgs {
    /// The server's configuration: verifies its data directory (unless --export is
    /// given), with its audit.checkpoint_public_key and its checkpoint file by default.
    #[arg(long, value_name = "FILE", conflicts_with = "data")]
    pub config: Option<PathBuf>,
    /// A data directory to verify (the server must be stopped).
    #[arg(long, value_name = "DIR", conflicts_with = "export")]
    pub data: Option<PathBuf>,
    /// A JSON Lines export (from `samenloop audit export` or GET /v1/audit/export).
    #[arg(long, value_name = "FILE")]
    pub export: Option<PathBuf>,
    /// Ed25519 public key (PEM) that checks the checkpoints' signatures [default with
    /// --config: audit.checkpoint_public_key].
    #[arg(long, value_name = "PEM")]
    pub checkpoint_key: Option<PathBuf>,
    /// Checkpoint files (JSON Lines) kept elsewhere, to compare the chain with
    /// [default with --config: the configured checkpoint file, if it exists].
    #[arg(long = "checkpoints", value_name = "FILE", num_args = 1..)]
    pub checkpoints: Vec<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The report of `samenloop audit verify`.
#[derive(Debug, Serialize)]
struct Verified {
    /// `database` or `export`.
    kind: &'static str,
    /// What was verified.
    path: String,
    /// Whether checkpoint signatures were checked (a checkpoint key was given).
    signatures_checked: bool,
    /// The checkpoint files compared with the chain.
    checkpoint_files: Vec<String>,
    #[serde(flatten)]
    report: Report,
}

fn verify(args: VerifyArgs) -> ExitCode {
    match verify_inner(&args) {
        Ok(v) => {
            if let Err(code) = super::print_report(&v, args.json, render_verify) {
                return code;
            }
            if v.report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(super::EXIT_VIOLATIONS)
            }
        }
        Err(msg) => super::fail(msg),
    }
}

fn verify_inner(args: &VerifyArgs) -> Result<Verified, String> {
    let cfg = match &args.config {
        Some(p) => Some(Config::load(p).map_err(|e| e.to_string())?),
        None => None,
    };
    let key_path = match (&args.checkpoint_key, &cfg) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(c)) => c.audit.checkpoint_public_key.as_ref().map(|p| c.resolve(p)),
        (None, None) => None,
    };
    let key = match &key_path {
        Some(p) => {
            let pem = std::fs::read(p)
                .map_err(|e| format!("cannot read the checkpoint key {}: {e}", p.display()))?;
            Some(Verifier::from_pem(&pem).map_err(|e| format!("{}: {e}", p.display()))?)
        }
        None => None,
    };
    let mut notes = Vec::new();
    let mut files = args.checkpoints.clone();
    if files.is_empty() {
        if let Some(c) = &cfg {
            let f = c.checkpoint_file();
            if f.exists() {
                files.push(f);
            } else {
                notes.push(format!(
                    "the configured checkpoint file {} does not exist: only the checkpoints \
                     in the database were compared",
                    f.display()
                ));
            }
        }
    }
    let mut external: Vec<Checkpoint> = Vec::new();
    for f in &files {
        external.extend(checkpoint::read_file(f)?);
    }
    let checkpoint_files = files.iter().map(|f| f.display().to_string()).collect();
    let (kind, path, mut report) = if let Some(export) = &args.export {
        (
            "export",
            export.display().to_string(),
            verify_export(export, key.as_ref(), external)?,
        )
    } else {
        let (dir, cache_mib, max_postings, max_component) = match (&args.data, &cfg) {
            (Some(d), _) => (d.clone(), VERIFY_CACHE_MIB, 32, 64),
            (None, Some(c)) => (
                c.resolve(&c.server.data_dir),
                c.server.cache_mib.min(VERIFY_CACHE_MIB * 4),
                c.limits.max_postings_per_key,
                c.limits.max_component_signals,
            ),
            (None, None) => return Err("give --config, --data or --export".into()),
        };
        let store = open_offline(&dir, cache_mib, max_postings, max_component)?;
        let report = crate::audit::verify::verify_store(&store, key.as_ref(), external)
            .map_err(|e| format!("cannot read the database in {}: {e}", dir.display()))?;
        ("database", dir.display().to_string(), report)
    };
    report.notes.extend(notes);
    Ok(Verified {
        kind,
        path,
        signatures_checked: key.is_some(),
        checkpoint_files,
        report,
    })
}

fn verify_export(
    path: &Path,
    key: Option<&Verifier>,
    external: Vec<Checkpoint>,
) -> Result<Report, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.is_dir() {
        return Err(format!("{} is a directory, not an export", path.display()));
    }
    // A CSV export proves nothing by itself: say so instead of calling it broken.
    let mut head = [0u8; 16];
    let n = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if head[..n].starts_with(b"seq,time,") {
        return Err(format!(
            "{} is a CSV export, which cannot be verified: export with --format jsonl",
            path.display()
        ));
    }
    crate::audit::verify::verify_export_file(path, key, external)
}

/// Opens a stopped server's database for reading its log. Refuses a directory that
/// does not hold a database (opening would create one) and explains a lock.
fn open_offline(
    dir: &Path,
    cache_mib: u64,
    max_postings_per_key: usize,
    max_component_signals: usize,
) -> Result<crate::store::Store, String> {
    let meta = std::fs::metadata(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            format!("the data directory {} does not exist", dir.display())
        }
        _ => format!("cannot read the data directory {}: {e}", dir.display()),
    })?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    if !dir.join("db").is_file() {
        return Err(format!(
            "{} holds no samenloop database (no sled `db` file in it): give the server's \
             data directory (server.data_dir)",
            dir.display()
        ));
    }
    // Verification reads the log only; the policy matters only to the posting lists
    // that opening rebuilds.
    let policy = crate::index::engine::Policy {
        max_postings_per_key,
        max_component_signals,
        ..Default::default()
    };
    crate::store::Store::open(dir, cache_mib, &policy, crate::audit::system_ms() / 1000).map_err(
        |e| {
            let text = e.to_string();
            if text.contains("could not acquire lock") {
                format!(
                    "the database in {} is in use: a running server holds its lock. Stop the \
                     server first, or verify the live log through the API \
                     (GET /v1/audit/verify with a privacy officer token)",
                    dir.display()
                )
            } else {
                format!("cannot open the database in {}: {text}", dir.display())
            }
        },
    )
}

fn render_verify(v: &Verified) -> String {
    let r = &v.report;
    let what = match v.kind {
        "database" => format!("the access log in {}", v.path),
        _ => format!("the access-log export {}", v.path),
    };
    let mut s = String::new();
    match &r.broken {
        None => {
            let _ = writeln!(s, "OK: {what} verifies");
        }
        Some(b) if b.seq == 0 => {
            let _ = writeln!(s, "BROKEN: {what}: {}", b.problem);
        }
        Some(b) => {
            let _ = writeln!(s, "BROKEN at entry {}: {}", b.seq, b.problem);
            let _ = writeln!(s, "  in {what}");
        }
    }
    let _ = write!(s, "  entries checked: {}", r.entries);
    if r.stubs > 0 {
        let _ = write!(
            s,
            ", stubs: {} (entries outside the export's selection, checked by their hashes)",
            r.stubs
        );
    }
    match (r.first_seq, r.last_seq) {
        (Some(f), Some(l)) => {
            let _ = writeln!(s, "; entries {f} to {l} verified");
        }
        _ => {
            let _ = writeln!(s, "; no entry verified");
        }
    }
    let _ = write!(s, "  checkpoints compared: {}", r.checkpoints_checked);
    if v.signatures_checked {
        let _ = write!(s, ", with a valid signature: {}", r.checkpoints_signed);
    }
    s.push('\n');
    if !v.checkpoint_files.is_empty() {
        let _ = writeln!(s, "  checkpoint files: {}", v.checkpoint_files.join(", "));
    }
    if let Some(cp) = &r.last_checkpoint {
        let first = r.first_seq.unwrap_or(1);
        let _ = writeln!(
            s,
            "  entries {first} to {} agree with the checkpoint made at {}{}",
            cp.seq,
            cp.at,
            if v.signatures_checked {
                " (signed)"
            } else {
                ""
            }
        );
    }
    if let (Some(l), Some(c)) = (r.last_seq, &r.chain) {
        if r.ok {
            let _ = writeln!(s, "  chain hash after entry {l}: {c}");
        }
    }
    for n in &r.notes {
        let _ = writeln!(s, "  note: {n}");
    }
    s
}

// ---------------------------------------------------------------------------------
// export

/// Export formats.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// JSON Lines: a verifiable segment of the chain (header, entries or stubs, end line).
    Jsonl,
    /// CSV of the selected entries, for spreadsheets (proves nothing by itself).
    Csv,
}

/// Arguments of `samenloop audit export`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Dates are YYYY-MM-DD (local midnight; --to includes that whole day) or RFC 3339 date-times
(--to exclusive). The file is written under a temporary name (owner-only, mode 0600) and
renamed into place only when the whole export has arrived; a JSON Lines export must end
with its end line. Exit status: 0 written, 1 refused by the server or cut short (nothing
written), 2 usage error.")]
pub struct ExportArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Export format.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: ExportFormat,
    /// From this date or date-time.
    #[arg(long, value_name = "DATE|DATETIME")]
    pub from: Option<String>,
    /// Up to this date (included) or date-time (excluded).
    #[arg(long, value_name = "DATE|DATETIME")]
    pub to: Option<String>,
    /// Only the entries of this actor (token subject).
    #[arg(long)]
    pub actor: Option<String>,
    /// Only the entries that name this object (`sig_…`, `m_…`).
    #[arg(long)]
    pub object: Option<String>,
    /// Only the entries of this action.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(Action::ALL.map(Action::name)))]
    pub action: Option<String>,
    /// Only the entries with this outcome.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(Outcome::ALL.map(Outcome::name)))]
    pub outcome: Option<String>,
    /// Only the entries of this organisation.
    #[arg(long)]
    pub organisation: Option<String>,
    /// Only the entries of this network.
    #[arg(long)]
    pub network: Option<String>,
    /// Where to write the export.
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,
}

fn export(args: ExportArgs) -> ExitCode {
    let token = match super::submit::read_token_from(args.server.token_file.as_deref()) {
        Ok(t) => t,
        Err(e) => return super::fail(e),
    };
    let rt = match runtime() {
        Ok(r) => r,
        Err(e) => return super::fail(e),
    };
    match rt.block_on(export_inner(&args, &token)) {
        Ok(msg) => {
            eprintln!("{msg}");
            ExitCode::SUCCESS
        }
        Err(e) => super::fail(e),
    }
}

/// A file written under a temporary name beside its destination (owner-only) and
/// renamed into place by [`Partial::keep`]; dropped without it, it is removed.
struct Partial {
    file: Option<std::fs::File>,
    path: PathBuf,
    dest: PathBuf,
}

impl Partial {
    fn create(dest: &Path) -> Result<Partial, String> {
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| format!("{} is not a file name", dest.display()))?;
        let path = dest.with_file_name(format!(".{name}.{}.partial", std::process::id()));
        let mut opts = std::fs::File::options();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            // The access log and subject access answers are personal data: owner only.
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts
            .open(&path)
            .map_err(|e| format!("cannot write {}: {e}", dest.display()))?;
        Ok(Partial {
            file: Some(file),
            path,
            dest: dest.to_path_buf(),
        })
    }

    fn write(&mut self, b: &[u8]) -> Result<(), String> {
        match &mut self.file {
            Some(f) => f
                .write_all(b)
                .map_err(|e| format!("cannot write {}: {e}", self.dest.display())),
            None => Ok(()),
        }
    }

    fn keep(mut self) -> Result<(), String> {
        let cannot = |e: std::io::Error| format!("cannot write {}: {e}", self.dest.display());
        if let Some(f) = self.file.take() {
            f.sync_all().map_err(cannot)?;
        }
        std::fs::rename(&self.path, &self.dest).map_err(cannot)?;
        self.path = PathBuf::new();
        Ok(())
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            self.file.take();
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

async fn export_inner(args: &ExportArgs, token: &str) -> Result<String, String> {
    let client = args.server.client(Duration::from_secs(300))?;
    let url = args.server.url("/v1/audit/export");
    let format = match args.format {
        ExportFormat::Jsonl => "jsonl",
        ExportFormat::Csv => "csv",
    };
    let mut query: Vec<(&str, &str)> = vec![("format", format)];
    for (name, v) in [
        ("from", &args.from),
        ("to", &args.to),
        ("actor", &args.actor),
        ("object", &args.object),
        ("action", &args.action),
        ("outcome", &args.outcome),
        ("organisation", &args.organisation),
        ("network", &args.network),
    ] {
        if let Some(v) = v {
            query.push((name, v));
        }
    }
    // Created before asking, so that an unwritable destination is found before the
    // server runs (and logs) the export; dropped on any error, it leaves nothing.
    let mut out = Partial::create(&args.output)?;
    let mut resp = client
        .get(&url)
        .bearer_auth(token)
        .query(&query)
        .send()
        .await
        .map_err(|e| transport(&url, &e))?;
    let status = resp.status();
    if status != reqwest::StatusCode::OK {
        let body = resp.bytes().await.unwrap_or_default();
        return Err(format!(
            "the server refused the export: {}; nothing was written",
            problem_text(status, &body)
        ));
    }
    let (mut bytes, mut lines) = (0u64, 0u64);
    // The last lines, to find the end line of a JSON Lines export.
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let chunk = match resp.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => {
                return Err(format!(
                    "the export was cut short after {bytes} bytes ({}); nothing was written to {}",
                    transport(&url, &e),
                    args.output.display()
                ));
            }
        };
        out.write(&chunk)?;
        bytes += chunk.len() as u64;
        lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
        tail.extend_from_slice(&chunk);
        if tail.len() > 8192 {
            tail.drain(..tail.len() - 4096);
        }
    }
    let summary = match args.format {
        ExportFormat::Jsonl => {
            let last = tail
                .strip_suffix(b"\n")
                .unwrap_or(&tail)
                .rsplit(|&b| b == b'\n')
                .next()
                .unwrap_or_default();
            let Ok(end) = serde_json::from_slice::<EndLine>(last) else {
                return Err(format!(
                    "the export ended without its end line: it was cut short; nothing was \
                     written to {}",
                    args.output.display()
                ));
            };
            format!(
                "{} entries, {} stubs (entries outside your scope or the selection, kept as \
                 hashes so that the file verifies: samenloop audit verify --export {})",
                end.entries,
                end.stubs,
                args.output.display()
            )
        }
        ExportFormat::Csv => format!("{} rows", lines.saturating_sub(1)),
    };
    out.keep()?;
    Ok(format!(
        "exported {lines} lines ({bytes} bytes) to {}: {summary}",
        args.output.display()
    ))
}

// ---------------------------------------------------------------------------------
// subject-access

/// Arguments of `samenloop audit subject-access`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
The person is given either as a file with exactly one row, in the formats of
`samenloop pseudonymise` (canonical column names or --map/--mapping; a reference column is
required there, its value is not sent), or with the field options below. Field options are
visible in the process list and the shell history of this machine: prefer --input (or
--input - to read standard input).

Only the key set is sent; neither the fields nor the pseudonyms are printed. The answer
lists the signals on the person (as subject, or as parent or guardian) in the networks of
the token (or --network), the matches they are or were in, and every logged access to
them.

Exit status: 0 answered, 3 the person's data was rejected (the reasons are printed,
nothing was sent), 1 fatal error (no or more than one row, refused by the server),
2 usage error.")]
#[command(group(clap::ArgGroup::new("fields").multiple(true)))]
pub struct SubjectArgs {
    /// Domain key file (K_domain), e.g. keys-example/domain-key.dev.toml.
    #[arg(long, value_name = "PATH")]
    pub key: PathBuf,
    #[command(flatten)]
    pub server: ServerArgs,
    /// Search only these networks (repeatable) [default: all networks of the token].
    #[arg(long = "network", value_name = "ID")]
    pub networks: Vec<String>,
    /// A file with the one person (CSV or JSON Lines); `-` reads standard input.
    #[arg(long, value_name = "PATH", conflicts_with = "fields")]
    pub input: Option<PathBuf>,
    /// Input format [default: jsonl for *.jsonl and *.ndjson, else csv].
    #[arg(long, value_enum, value_name = "FORMAT", requires = "input")]
    pub format: Option<InputFormat>,
    /// Map a column to a canonical field, e.g. --map birth_date=Geboortedatum (repeatable).
    #[arg(long = "map", value_name = "FIELD=COLUMN", value_parser = parse_map, requires = "input")]
    pub map: Vec<(String, String)>,
    /// Mapping file: TOML with a [columns] table of field = "Column header".
    #[arg(long, value_name = "FILE", requires = "input")]
    pub mapping: Option<PathBuf>,
    /// CSV field delimiter: one character, or `tab` [default: detected].
    #[arg(long, value_name = "CHAR", value_parser = parse_delimiter, requires = "input")]
    pub delimiter: Option<u8>,
    /// Burgerservicenummer.
    #[arg(long, group = "fields")]
    pub bsn: Option<String>,
    /// V-nummer (for people without a BSN).
    #[arg(long, group = "fields")]
    pub v_number: Option<String>,
    /// Given names (voornamen).
    #[arg(long, group = "fields")]
    pub given_names: Option<String>,
    /// Initials (voorletters), when the given names are not known.
    #[arg(long, group = "fields")]
    pub initials: Option<String>,
    /// Tussenvoegsel(s).
    #[arg(long, group = "fields")]
    pub prefix: Option<String>,
    /// Family name (achternaam).
    #[arg(long, group = "fields")]
    pub family_name: Option<String>,
    /// Birth date.
    #[arg(long, group = "fields")]
    pub birth_date: Option<String>,
    /// Postcode of the address.
    #[arg(long, group = "fields")]
    pub postcode: Option<String>,
    /// House number.
    #[arg(long, group = "fields")]
    pub house_number: Option<String>,
    /// House-number addition (huisletter/toevoeging).
    #[arg(long, group = "fields")]
    pub house_number_addition: Option<String>,
    /// Processing date; later birth dates are rejected [default: today (UTC)].
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub today: Option<Date>,
    /// Print the server's answer as JSON.
    #[arg(long)]
    pub json: bool,
    /// Write the answer to this file (owner-only) instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Why no key set was made.
enum NoKeys {
    /// Exit 1.
    Fatal(String),
    /// The person's data was rejected: exit 3.
    Rejected(String),
}

#[derive(Default)]
struct Rejects(Vec<(u64, Vec<RowError>)>);

impl Observer for Rejects {
    fn rejected(&mut self, line: u64, errors: &[RowError]) {
        self.0.push((line, errors.to_vec()));
    }
}

fn keys_from_input(args: &SubjectArgs, input: &Path, today: Date) -> Result<SubjectKeys, NoKeys> {
    let fatal = NoKeys::Fatal;
    let key = read_key_file(&args.key).map_err(|e| fatal(e.to_string()))?;
    let mut mapping = match &args.mapping {
        Some(p) => MappingSpec::read_file(p).map_err(fatal)?,
        None => MappingSpec::new(),
    };
    for (field, column) in &args.map {
        mapping.set(field, column);
    }
    let stdin = input.as_os_str() == "-";
    let format = match args.format {
        Some(InputFormat::Csv) => Format::Csv,
        Some(InputFormat::Jsonl) => Format::Jsonl,
        None => format_from_extension(input),
    };
    let name = if stdin {
        "standard input".to_string()
    } else {
        input.display().to_string()
    };
    let reader: Box<dyn std::io::Read + Send> = if stdin {
        Box::new(std::io::stdin())
    } else {
        Box::new(
            std::fs::File::open(input)
                .map_err(|e| fatal(format!("cannot read input {name}: {e}")))?,
        )
    };
    let source = match format {
        Format::Csv => Source::csv(reader, args.delimiter, &mapping),
        Format::Jsonl => Source::jsonl(reader, &mapping),
    }
    .map_err(|e| fatal(format!("{name}: {e}")))?;
    let mut out: Vec<u8> = Vec::new();
    let mut rejects = Rejects::default();
    let opts = Options {
        key,
        today,
        threads: 1,
        batch_rows: 16,
    };
    let summary = crate::export::run(opts, source, &mut out, None::<Vec<u8>>, &mut rejects)
        .map_err(|e| fatal(format!("{name}: {e}")))?;
    match summary.accepted + summary.rejected {
        0 => {
            return Err(fatal(format!(
                "{name} holds no person (no data rows); nothing was sent"
            )));
        }
        1 => {}
        n => {
            return Err(fatal(format!(
                "{name} holds {n} rows: a subject access request is for one person, give a \
                 file with exactly one row; nothing was sent"
            )));
        }
    }
    if let Some((line, errors)) = rejects.0.first() {
        return Err(NoKeys::Rejected(format!(
            "the person's row was rejected; nothing was sent:\n  {}",
            describe(*line, errors)
        )));
    }
    let text = String::from_utf8_lossy(&out);
    SubjectKeys::from_json(text.trim()).map_err(|e| fatal(format!("internal error: {e}")))
}

fn keys_from_fields(args: &SubjectArgs, today: Date) -> Result<SubjectKeys, NoKeys> {
    let key = read_key_file(&args.key).map_err(|e| NoKeys::Fatal(e.to_string()))?;
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    let s = SubjectFields {
        reference: SUBJECT_REFERENCE.into(),
        person: PersonFields {
            bsn: v(&args.bsn),
            v_number: v(&args.v_number),
            given_names: v(&args.given_names),
            initials: v(&args.initials),
            prefix: v(&args.prefix),
            family_name: v(&args.family_name),
            full_name: String::new(),
            birth_date: v(&args.birth_date),
        },
        postcode: v(&args.postcode),
        house_number: v(&args.house_number),
        house_number_addition: v(&args.house_number_addition),
        parents: Vec::new(),
    };
    pseudonymise(&key, &s, today).map_err(|errors| {
        let mut msg = String::from("the person's data was rejected; nothing was sent:");
        for e in errors.into_iter().map(RowError::from) {
            // Fields are named as the options that gave them; messages never hold values.
            let flag = match e.field.as_ref() {
                "row" => "input".to_string(),
                f => format!("--{}", f.replace('_', "-")),
            };
            let _ = write!(msg, "\n  {flag}: {} ({})", e.message, e.code);
        }
        NoKeys::Rejected(msg)
    })
}

fn subject_access(args: SubjectArgs) -> ExitCode {
    let token = match super::submit::read_token_from(args.server.token_file.as_deref()) {
        Ok(t) => t,
        Err(e) => return super::fail(e),
    };
    let no_fields = [
        &args.bsn,
        &args.v_number,
        &args.given_names,
        &args.initials,
        &args.prefix,
        &args.family_name,
        &args.birth_date,
        &args.postcode,
        &args.house_number,
        &args.house_number_addition,
    ]
    .iter()
    .all(|f| f.is_none());
    let today = args.today.unwrap_or_else(Date::today_utc);
    let keys = match &args.input {
        Some(input) => keys_from_input(&args, input, today),
        None if no_fields => {
            eprintln!(
                "samenloop: error: give the person with --input FILE or with field options \
                 (--bsn, --given-names, --family-name, --birth-date, …)"
            );
            return ExitCode::from(2);
        }
        None => keys_from_fields(&args, today),
    };
    let keys = match keys {
        Ok(k) => k,
        Err(NoKeys::Fatal(msg)) => return super::fail(msg),
        Err(NoKeys::Rejected(msg)) => {
            eprintln!("samenloop: {msg}");
            return ExitCode::from(super::EXIT_REJECTS);
        }
    };
    let mut subject: serde_json::Value = match serde_json::from_str(&keys.to_json()) {
        Ok(v) => v,
        Err(e) => return super::fail(format!("internal error: {e}")),
    };
    subject["reference"] = serde_json::Value::from(SUBJECT_REFERENCE);
    let mut body = serde_json::json!({ "subject": subject });
    if !args.networks.is_empty() {
        body["networks"] = serde_json::json!(args.networks);
    }
    let mut output = match args.output.as_deref().map(Partial::create).transpose() {
        Ok(o) => o,
        Err(e) => return super::fail(e),
    };
    let rt = match runtime() {
        Ok(r) => r,
        Err(e) => return super::fail(e),
    };
    let answer = match rt.block_on(post_json(
        &args.server,
        "/v1/audit/subject-access",
        &token,
        &body,
    )) {
        Ok((_, v)) => v,
        Err(e) => return super::fail(format!("the subject access request failed: {e}")),
    };
    let text = if args.json {
        match serde_json::to_string_pretty(&answer) {
            Ok(s) => s + "\n",
            Err(e) => return super::fail(format!("cannot write the answer: {e}")),
        }
    } else {
        match serde_json::from_value::<SubjectAnswer>(answer) {
            Ok(a) => render_subject(&a),
            Err(e) => return super::fail(format!("unreadable answer from the server: {e}")),
        }
    };
    match output.take() {
        None => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Some(mut f) => {
            let dest = f.dest.display().to_string();
            match f.write(text.as_bytes()).and_then(|()| f.keep()) {
                Ok(()) => {
                    eprintln!("wrote the answer to {dest}");
                    ExitCode::SUCCESS
                }
                Err(e) => super::fail(e),
            }
        }
    }
}

/// POSTs `body` and returns the status and JSON answer of a 2xx, or the problem as text.
pub(crate) async fn post_json(
    server: &ServerArgs,
    path: &str,
    token: &str,
    body: &serde_json::Value,
) -> Result<(u16, serde_json::Value), String> {
    request_json(server, reqwest::Method::POST, path, token, Some(body)).await
}

/// Sends a request with an optional JSON body and returns the status and the JSON answer
/// (`null` for an answer without a body); an error answer becomes its problem's text.
pub(crate) async fn request_json(
    server: &ServerArgs,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<&serde_json::Value>,
) -> Result<(u16, serde_json::Value), String> {
    let client = server.client(Duration::from_secs(120))?;
    let url = server.url(path);
    let mut req = client.request(method, &url).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().await.map_err(|e| transport(&url, &e))?;
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|e| transport(&url, &e))?;
    if !status.is_success() {
        return Err(format!(
            "the server answered {}",
            problem_text(status, &bytes)
        ));
    }
    if bytes.is_empty() {
        return Ok((status.as_u16(), serde_json::Value::Null));
    }
    let v = serde_json::from_slice(&bytes)
        .map_err(|e| format!("unreadable answer from the server: {e}"))?;
    Ok((status.as_u16(), v))
}

/// GETs `path` with the bearer token and returns the JSON answer (an error answer as
/// its problem text).
pub(crate) async fn get_json(
    server: &ServerArgs,
    path: &str,
    token: &str,
) -> Result<serde_json::Value, String> {
    let client = server.client(Duration::from_secs(120))?;
    let url = server.url(path);
    let resp = client
        .get(&url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| transport(&url, &e))?;
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|e| transport(&url, &e))?;
    if !status.is_success() {
        return Err(format!(
            "the server answered {}",
            problem_text(status, &bytes)
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("unreadable answer from the server: {e}"))
}

/// The wire name of a serialisable enum value.
fn name<T: Serialize>(t: &T) -> String {
    match serde_json::to_value(t) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(v) => v.to_string(),
        Err(_) => "?".into(),
    }
}

/// Rows as aligned columns under a header, indented by two spaces.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut s = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::from(" ");
        for (c, w) in cells.zip(&widths) {
            let _ = write!(l, " {c:<w$}");
        }
        s.push_str(l.trim_end());
        s.push('\n');
    };
    line(&mut header.iter().copied());
    for r in rows {
        line(&mut r.iter().map(String::as_str));
    }
    s
}

fn render_subject(a: &SubjectAnswer) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Data-subject access request, answered {}",
        a.generated_at
    );
    let _ = writeln!(s, "Networks searched: {}", a.networks.join(", "));
    let _ = writeln!(s);
    if a.signals.is_empty() {
        let _ = writeln!(s, "Signals: none on this person in these networks.");
    } else {
        let _ = writeln!(s, "Signals on this person ({}):", a.signals.len());
        let rows: Vec<Vec<String>> = a
            .signals
            .iter()
            .map(|g| {
                let status = match &g.withdraw_reason {
                    Some(r) => format!("{} ({})", g.status, name(r)),
                    None => g.status.clone(),
                };
                vec![
                    g.id.clone(),
                    if g.organisation_name.is_empty() {
                        g.organisation.clone()
                    } else {
                        g.organisation_name.clone()
                    },
                    g.network.clone(),
                    g.category.clone().unwrap_or_else(|| "-".into()),
                    name(&g.relation),
                    status,
                    g.submitted_at.clone(),
                    g.valid_until.clone(),
                    g.withdrawn_at.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        s.push_str(&table(
            &[
                "SIGNAL",
                "ORGANISATION",
                "NETWORK",
                "CATEGORY",
                "RELATION",
                "STATUS",
                "SUBMITTED",
                "VALID UNTIL",
                "WITHDRAWN",
            ],
            &rows,
        ));
    }
    let _ = writeln!(s);
    if a.matches.is_empty() {
        let _ = writeln!(s, "Matches: none.");
    } else {
        let _ = writeln!(
            s,
            "Matches these signals are or were in ({}):",
            a.matches.len()
        );
        let rows: Vec<Vec<String>> = a
            .matches
            .iter()
            .map(|m| {
                let follow: Vec<String> = m
                    .follow_ups
                    .iter()
                    .map(|f| match &f.closed_reason {
                        Some(r) => format!("{}: {} ({})", f.network, name(&f.stage), name(r)),
                        None => format!("{}: {}", f.network, name(&f.stage)),
                    })
                    .collect();
                vec![
                    m.handle.clone(),
                    name(&m.kind),
                    name(&m.status),
                    m.created_at.clone(),
                    m.updated_at.clone(),
                    if follow.is_empty() {
                        "-".into()
                    } else {
                        follow.join("; ")
                    },
                ]
            })
            .collect();
        s.push_str(&table(
            &["MATCH", "KIND", "STATUS", "FORMED", "UPDATED", "FOLLOW-UP"],
            &rows,
        ));
    }
    let _ = writeln!(s);
    if a.accesses.is_empty() {
        let _ = writeln!(s, "Accesses: none logged.");
    } else {
        let _ = writeln!(
            s,
            "Accesses to these signals and matches ({}), oldest first:",
            a.accesses.len()
        );
        let dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
        let rows: Vec<Vec<String>> = a
            .accesses
            .iter()
            .map(|v| {
                let e = &v.entry;
                let object = match (&e.object_type, &e.object_id) {
                    (Some(t), Some(id)) => format!("{} {id}", name(t)),
                    (Some(t), None) => name(t),
                    (None, Some(id)) => id.clone(),
                    (None, None) => "-".into(),
                };
                vec![
                    v.at.clone(),
                    e.actor.clone(),
                    dash(&e.org),
                    dash(&e.role),
                    dash(&e.on_behalf_of),
                    e.action.name().to_string(),
                    e.outcome.name().to_string(),
                    object,
                    e.operation.clone(),
                ]
            })
            .collect();
        s.push_str(&table(
            &[
                "TIME",
                "ACTOR",
                "ORGANISATION",
                "ROLE",
                "ON BEHALF OF",
                "ACTION",
                "OUTCOME",
                "OBJECT",
                "OPERATION",
            ],
            &rows,
        ));
        if a.accesses_truncated {
            let _ = writeln!(
                s,
                "  (only the first {} accesses are listed: query the rest with \
                 GET /v1/audit/entries?object=ID)",
                a.accesses.len()
            );
        }
    }
    s
}

// ---------------------------------------------------------------------------------
// checkpoint

/// Arguments of `samenloop audit checkpoint`.
#[derive(clap::Args, Debug)]
pub struct CheckpointArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Also append the checkpoint to this file (JSON Lines), kept off the server, for
    /// `samenloop audit verify --checkpoints FILE`.
    #[arg(long, value_name = "FILE")]
    pub append: Option<PathBuf>,
    /// Print the checkpoint as JSON.
    #[arg(long)]
    pub json: bool,
}

fn make_checkpoint(args: CheckpointArgs) -> ExitCode {
    let token = match super::submit::read_token_from(args.server.token_file.as_deref()) {
        Ok(t) => t,
        Err(e) => return super::fail(e),
    };
    let rt = match runtime() {
        Ok(r) => r,
        Err(e) => return super::fail(e),
    };
    let (status, v) = match rt.block_on(post_json(
        &args.server,
        "/v1/audit/checkpoints",
        &token,
        &serde_json::json!({}),
    )) {
        Ok(a) => a,
        Err(e) => return super::fail(format!("no checkpoint was made: {e}")),
    };
    let cp: Checkpoint = match serde_json::from_value(v) {
        Ok(c) => c,
        Err(e) => return super::fail(format!("unreadable answer from the server: {e}")),
    };
    if let Some(p) = &args.append {
        if let Err(e) = checkpoint::append_to_file(p, &cp) {
            return super::fail(format!("cannot append to {}: {e}", p.display()));
        }
    }
    let new = status == 201;
    let printed = super::print_report(&cp, args.json, |cp| {
        format!(
            "{} checkpoint of the access log: entries 1 to {}, chain {}, made {}, domain {}, {}\n",
            if new { "new" } else { "existing" },
            cp.seq,
            cp.chain,
            cp.at,
            cp.domain,
            if cp.signature.is_some() {
                "signed"
            } else {
                "unsigned"
            }
        )
    });
    match printed {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_one_line() {
        let body = br#"{"type":"https://samenloop.example/problems/forbidden-role","title":"Forbidden","status":403,"detail":"needs privacy_officer"}"#;
        let t = problem_text(reqwest::StatusCode::FORBIDDEN, body);
        assert_eq!(
            t,
            "403 Forbidden: Forbidden (needs privacy_officer) [https://samenloop.example/problems/forbidden-role]"
        );
        assert_eq!(
            problem_text(reqwest::StatusCode::BAD_GATEWAY, b"  \n"),
            "502 Bad Gateway"
        );
    }

    #[test]
    fn tables_align() {
        let t = table(&["A", "BB"], &[vec!["xyz".into(), "1".into()]]);
        assert_eq!(t, "  A   BB\n  xyz 1\n");
    }
}
