//! `samenloop admin`: the operator keeps the directory of a running server — member
//! organisations, network settings, the excluded-address list — through
//! `/v1/admin/…` with an admin token. Every change takes effect at once, is stored
//! (it outlives a restart) and is in the access log. Answers are printed as JSON.

use super::audit::{ServerArgs, request_json, runtime};
use reqwest::Method;
use serde_json::{Value, json};
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

/// The subcommands of `samenloop admin`.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// List the member organisations (suspended ones included).
    Orgs(Plain),
    /// Add a member organisation; its tokens work at once.
    OrgAdd(OrgAdd),
    /// Change an organisation's name or networks.
    OrgSet(OrgSet),
    /// Suspend an organisation: it can no longer submit or renew; it can read and
    /// withdraw, and its signals stay until withdrawn or expired.
    OrgSuspend(OrgId),
    /// Reinstate a suspended organisation.
    OrgReinstate(OrgId),
    /// List every network's settings.
    Networks(Plain),
    /// Change a network's settings (only the options given).
    NetworkSet(NetworkSet),
    /// List the excluded (institutional) addresses entered through the API.
    Excluded(Plain),
    /// Put addresses on the excluded list: one `adr:` key, or every row of a
    /// `samenloop pseudonymise` output (its address key; the row's reference is the label).
    ExcludedAdd(ExcludedAdd),
    /// Take an address off the excluded list.
    ExcludedRemove(ExcludedRemove),
    /// List the domain key ids (oldest first; the newest accepted one is `current`).
    KeyIds(Plain),
    /// Accept key sets under a new domain key id: the transition window opens.
    KeyAdd(KeyIdArg),
    /// Retire an old domain key id: the window closes, its signals expire (re-keyed ones
    /// lose their old keys).
    KeyRetire(KeyIdArg),
}

/// A domain key id.
#[derive(clap::Args, Debug)]
pub struct KeyIdArg {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The key id.
    pub key_id: String,
}

/// Only the server.
#[derive(clap::Args, Debug)]
pub struct Plain {
    #[command(flatten)]
    pub server: ServerArgs,
}

/// `samenloop admin org-add`.
#[derive(clap::Args, Debug)]
pub struct OrgAdd {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Id, as in the `org` claim of its tokens (a-z, 0-9, '-', '_').
    #[arg(long)]
    pub id: String,
    /// Display name.
    #[arg(long)]
    pub name: String,
    /// A network it may submit to (repeat for more).
    #[arg(long = "network", required = true)]
    pub networks: Vec<String>,
}

/// `samenloop admin org-set`.
#[derive(clap::Args, Debug)]
pub struct OrgSet {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The organisation.
    pub id: String,
    /// New display name.
    #[arg(long)]
    pub name: Option<String>,
    /// The networks it may submit to from now on (repeat; replaces the list).
    #[arg(long = "network")]
    pub networks: Vec<String>,
}

/// An organisation.
#[derive(clap::Args, Debug)]
pub struct OrgId {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The organisation.
    pub id: String,
}

/// `samenloop admin network-set`.
#[derive(clap::Args, Debug)]
pub struct NetworkSet {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The network.
    pub id: String,
    /// Display name.
    #[arg(long)]
    pub name: Option<String>,
    /// How partners reach the coordinator.
    #[arg(long)]
    pub coordinator_contact: Option<String>,
    /// The category list from now on (repeat; replaces the list).
    #[arg(long = "category")]
    pub categories: Vec<String>,
    /// Distinct organisations needed for a match (at least 2).
    #[arg(long)]
    pub match_threshold: Option<usize>,
    /// Longest validity of a signal, days (1 to 730).
    #[arg(long)]
    pub max_validity_days: Option<u32>,
    /// Working days to acknowledge a new match.
    #[arg(long)]
    pub acknowledge_within_days: Option<u32>,
    /// Working days to reach a decision.
    #[arg(long)]
    pub decide_within_days: Option<u32>,
    /// Days a closed match is kept before it is erased (1 to 3653).
    #[arg(long)]
    pub closed_match_days: Option<u32>,
}

/// `samenloop admin excluded-add`.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["key", "from"])))]
pub struct ExcludedAdd {
    #[command(flatten)]
    pub server: ServerArgs,
    /// One address key in wire form (`adr:…`); needs --key-id and --label.
    #[arg(long, requires_all = ["key_id", "label"])]
    pub key: Option<String>,
    /// The domain key id the key was computed with.
    #[arg(long)]
    pub key_id: Option<String>,
    /// What the institution is (never a person's name).
    #[arg(long)]
    pub label: Option<String>,
    /// JSON Lines from `samenloop pseudonymise` of the institutions' addresses: each
    /// row's first household key is added, labelled with the row's reference.
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
}

/// `samenloop admin excluded-remove`.
#[derive(clap::Args, Debug)]
pub struct ExcludedRemove {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The entry's id (`exa_…`, from `samenloop admin excluded`).
    pub id: String,
}

/// Runs an `admin` subcommand.
pub fn run(cmd: Command) -> ExitCode {
    let result = match cmd {
        Command::Orgs(a) => call(&a.server, Method::GET, "/v1/admin/organisations", None),
        Command::OrgAdd(a) => call(
            &a.server,
            Method::POST,
            "/v1/admin/organisations",
            Some(json!({"id": a.id, "name": a.name, "networks": a.networks})),
        ),
        Command::OrgSet(a) => {
            let mut body = json!({});
            if let Some(n) = a.name {
                body["name"] = json!(n);
            }
            if !a.networks.is_empty() {
                body["networks"] = json!(a.networks);
            }
            patch_org(&a.server, &a.id, body)
        }
        Command::OrgSuspend(a) => patch_org(&a.server, &a.id, json!({"suspended": true})),
        Command::OrgReinstate(a) => patch_org(&a.server, &a.id, json!({"suspended": false})),
        Command::Networks(a) => call(&a.server, Method::GET, "/v1/admin/networks", None),
        Command::NetworkSet(a) => {
            let mut body = json!({});
            for (k, v) in [
                ("name", a.name.map(Value::from)),
                (
                    "coordinator_contact",
                    a.coordinator_contact.map(Value::from),
                ),
                ("match_threshold", a.match_threshold.map(Value::from)),
                ("max_validity_days", a.max_validity_days.map(Value::from)),
                (
                    "acknowledge_within_days",
                    a.acknowledge_within_days.map(Value::from),
                ),
                ("decide_within_days", a.decide_within_days.map(Value::from)),
                ("closed_match_days", a.closed_match_days.map(Value::from)),
            ] {
                if let Some(v) = v {
                    body[k] = v;
                }
            }
            if !a.categories.is_empty() {
                body["categories"] = json!(a.categories);
            }
            if body.as_object().is_some_and(|o| o.is_empty()) {
                Err("nothing to change: give at least one setting".into())
            } else {
                call(
                    &a.server,
                    Method::PATCH,
                    &format!("/v1/admin/networks/{}", a.id),
                    Some(body),
                )
            }
        }
        Command::Excluded(a) => call(&a.server, Method::GET, "/v1/admin/excluded-addresses", None),
        Command::ExcludedAdd(a) => excluded_add(a),
        Command::ExcludedRemove(a) => call(
            &a.server,
            Method::DELETE,
            &format!("/v1/admin/excluded-addresses/{}", a.id),
            None,
        )
        .map(|_| json!({"removed": a.id})),
        Command::KeyIds(a) => call(&a.server, Method::GET, "/v1/admin/domain-keys", None),
        Command::KeyAdd(a) => call(
            &a.server,
            Method::POST,
            "/v1/admin/domain-keys",
            Some(json!({"key_id": a.key_id})),
        ),
        Command::KeyRetire(a) => call(
            &a.server,
            Method::POST,
            &format!("/v1/admin/domain-keys/{}/retire", a.key_id),
            None,
        ),
    };
    match result {
        Ok(v) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&v).unwrap_or_else(|_| v.to_string())
            );
            ExitCode::SUCCESS
        }
        Err(e) => super::fail(e),
    }
}

fn patch_org(server: &ServerArgs, id: &str, body: Value) -> Result<Value, String> {
    call(
        server,
        Method::PATCH,
        &format!("/v1/admin/organisations/{id}"),
        Some(body),
    )
}

fn call(
    server: &ServerArgs,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let token = super::submit::read_token_from(server.token_file.as_deref())?;
    runtime()?
        .block_on(request_json(server, method, path, &token, body.as_ref()))
        .map(|(_, v)| v)
}

/// The entries to add: one from the flags, or one per row of a pseudonymise output.
fn excluded_entries(a: &ExcludedAdd) -> Result<Vec<Value>, String> {
    if let (Some(key), Some(key_id), Some(label)) = (&a.key, &a.key_id, &a.label) {
        return Ok(vec![json!({"key_id": key_id, "key": key, "label": label})]);
    }
    let path = a.from.as_ref().ok_or("give --key or --from")?;
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| format!("{} line {}: {e}", path.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let row: Value = serde_json::from_str(&line)
            .map_err(|e| format!("{} line {}: not JSON: {e}", path.display(), i + 1))?;
        let key = row["household"][0].as_str();
        let (Some(key), Some(key_id), Some(label)) =
            (key, row["key_id"].as_str(), row["reference"].as_str())
        else {
            return Err(format!(
                "{} line {}: needs key_id, reference and a household key (pseudonymise the \
                 postcode and house number)",
                path.display(),
                i + 1
            ));
        };
        out.push(json!({"key_id": key_id, "key": key, "label": label}));
    }
    if out.is_empty() {
        return Err(format!("{}: no rows", path.display()));
    }
    Ok(out)
}

fn excluded_add(a: ExcludedAdd) -> Result<Value, String> {
    // The whole file is read (and checked) before anything is sent.
    let entries = excluded_entries(&a)?;
    let mut added = Vec::new();
    for (i, e) in entries.into_iter().enumerate() {
        match call(
            &a.server,
            Method::POST,
            "/v1/admin/excluded-addresses",
            Some(e),
        ) {
            Ok(v) => added.push(v),
            Err(err) => {
                return Err(format!(
                    "entry {} was not added ({} before it were): {err}",
                    i + 1,
                    added.len()
                ));
            }
        }
    }
    Ok(json!({ "added": added }))
}
