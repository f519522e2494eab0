//! The server configuration: one TOML file, validated at start (see
//! `keys-example/samenloop.dev.toml` for an annotated example).

use crate::pseudonym::KeyId;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Why the configuration cannot be used. Each message names the file and the setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not TOML of the expected shape.
    #[error("configuration {path}: {message}")]
    Parse {
        /// The path.
        path: String,
        /// The parser's message (names the key and line).
        message: String,
    },
    /// A setting has an invalid value.
    #[error("configuration {path}: {setting}: {message}")]
    Invalid {
        /// The path.
        path: String,
        /// The setting, e.g. `networks[1].match_threshold`.
        setting: String,
        /// What is wrong.
        message: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listener, TLS and storage.
    pub server: ServerConfig,
    /// The pseudonymisation domain.
    pub domain: DomainConfig,
    /// Token verification.
    pub auth: AuthConfig,
    /// Request and rate limits.
    #[serde(default)]
    pub limits: Limits,
    /// The networks served.
    pub networks: Vec<NetworkConfig>,
    /// The member organisations.
    pub organisations: Vec<OrganisationConfig>,
    /// Alert delivery, follow-up deadlines and the working-day calendar.
    #[serde(default)]
    pub alerts: AlertsConfig,
    /// Aggregate network figures.
    #[serde(default)]
    pub figures: FiguresConfig,
    /// The access log.
    #[serde(default)]
    pub audit: AuditConfig,
    /// Retention of signals.
    #[serde(default)]
    pub retention: RetentionConfig,
    /// Whether this configuration uses the published development keys.
    #[serde(default)]
    pub development: bool,
    /// The directory the file was read from; relative paths are resolved against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on, e.g. `127.0.0.1:8443`.
    pub listen: SocketAddr,
    /// Directory of the sled database.
    pub data_dir: PathBuf,
    /// PEM certificate chain.
    pub tls_cert: PathBuf,
    /// PEM private key.
    pub tls_key: PathBuf,
    /// Worker threads (default: available parallelism).
    #[serde(default)]
    pub workers: Option<usize>,
    /// sled page-cache size in MiB.
    #[serde(default = "default_cache_mib")]
    pub cache_mib: u64,
}

fn default_cache_mib() -> u64 {
    256
}

/// `[domain]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainConfig {
    /// Name of the pseudonymisation domain (region).
    pub name: String,
    /// Domain key ids whose key sets are accepted.
    pub accepted_key_ids: Vec<String>,
    /// File with the index key `K_index`.
    pub index_key_file: PathBuf,
    /// Address keys (`adr:…` wire form, computed with `samenloop pseudonymise`) of
    /// institutional addresses (shelters, care homes, prisons) that never link a household.
    #[serde(default)]
    pub excluded_address_keys: Vec<String>,
}

/// `[auth]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Required `iss` claim.
    pub issuer: String,
    /// Required `aud` claim.
    pub audience: String,
    /// Clock leeway for `exp` and `nbf`, seconds.
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// Verification keys, selected by the token's `kid`.
    pub keys: Vec<JwtKeyConfig>,
}

fn default_leeway() -> u64 {
    30
}

/// One JWT verification key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtKeyConfig {
    /// Key id (`kid` header).
    pub kid: String,
    /// Pinned algorithm: `ES256` or `EdDSA`.
    pub algorithm: String,
    /// PEM public key (SubjectPublicKeyInfo).
    pub public_key: PathBuf,
    /// PEM private key, only for `samenloop token` with development keys.
    #[serde(default)]
    pub private_key: Option<PathBuf>,
}

/// `[limits]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// Most signals in one batch.
    pub max_batch: usize,
    /// Sustained submissions per organisation per second.
    pub partner_rate_per_sec: u32,
    /// Burst of submissions per organisation.
    pub partner_burst: u32,
    /// Seconds a client may take to send the head of the first request on a connection.
    pub client_request_timeout_secs: u64,
    /// Seconds a client may take to send a request body, once its head has arrived.
    pub client_body_timeout_secs: u64,
    /// Seconds a connection may sit without any byte moving either way while the server
    /// waits for the client (a stalled head on a kept-alive connection, a stalled TLS
    /// record, a client that stopped answering); then it is closed.
    pub client_idle_timeout_secs: u64,
    /// Seconds an idle HTTP/1.1 connection is kept open between requests (HTTP/2: the
    /// interval of keep-alive pings).
    pub keep_alive_secs: u64,
    /// Most signals one key may link before it is treated as too common to link.
    pub max_postings_per_key: usize,
    /// Most signals in one person entity or household.
    pub max_component_signals: usize,
    /// Free space (MiB) the data directory's file system must keep: below it, writes
    /// are refused (507) and reads go on, until space returns. 0 turns the guard off.
    pub min_free_disk_mib: u64,
    /// Signal records a rotation of `K_index` re-writes per transaction.
    pub rotation_chunk_signals: usize,
    /// Milliseconds the rotation waits between chunks (0: none; intake shares the writer
    /// with it either way, chunk by chunk).
    pub rotation_pause_ms: u64,
    /// Signals (or closed matches, or access-log entries) the retention job archives or
    /// erases per transaction (1 to 100,000).
    pub retention_chunk: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 4 * 1024 * 1024,
            max_batch: 1000,
            partner_rate_per_sec: 500,
            partner_burst: 5000,
            client_request_timeout_secs: 10,
            client_body_timeout_secs: 10,
            client_idle_timeout_secs: 30,
            keep_alive_secs: 30,
            max_postings_per_key: 32,
            max_component_signals: 64,
            min_free_disk_mib: 512,
            rotation_chunk_signals: 2000,
            rotation_pause_ms: 0,
            retention_chunk: 2000,
        }
    }
}

/// One `[[networks]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// Stable id used in URLs and tokens.
    pub id: String,
    /// Display name.
    pub name: String,
    /// How partners reach the coordinator (function mailbox or phone; not a person's name).
    pub coordinator_contact: String,
    /// The fixed category list.
    pub categories: Vec<String>,
    /// Distinct organisations needed for a match.
    #[serde(default = "default_threshold")]
    pub match_threshold: usize,
    /// Longest validity of a signal, days.
    #[serde(default = "default_validity")]
    pub max_validity_days: u32,
    /// Working days the coordinator has to acknowledge a new (or reopened) match.
    #[serde(default = "default_ack_days")]
    pub acknowledge_within_days: u32,
    /// Working days the coordinator has to reach a decision (consent given or refused,
    /// or the match closed) on a new (or reopened) match.
    #[serde(default = "default_decide_days")]
    pub decide_within_days: u32,
    /// Days after which a match whose follow-up the network's coordinator closed (or the
    /// index closed, reason `withdrawn`) is erased by the retention job (1 to 3653).
    #[serde(default = "default_closed_match_days")]
    pub closed_match_days: u32,
    /// Where the network's coordinator receives alerts by HTTPS POST (optional: the
    /// stream and the pull list work without it).
    #[serde(default)]
    pub webhook: Option<WebhookConfig>,
}

impl NetworkConfig {
    /// Checks the settings the operator may also change at runtime (threshold, validity,
    /// deadlines, categories): the setting's name and what is wrong.
    pub fn check_settings(&self) -> Result<(), (String, &'static str)> {
        if self.match_threshold < 2 {
            return Err(("match_threshold".into(), "must be at least 2"));
        }
        if !(1..=730).contains(&self.max_validity_days) {
            return Err(("max_validity_days".into(), "must be 1 to 730 (24 months)"));
        }
        if !(1..=3653).contains(&self.closed_match_days) {
            return Err((
                "closed_match_days".into(),
                "must be 1 to 3653 days (10 years)",
            ));
        }
        for (name, days) in [
            ("acknowledge_within_days", self.acknowledge_within_days),
            ("decide_within_days", self.decide_within_days),
        ] {
            if !(1..=250).contains(&days) {
                return Err((name.into(), "must be 1 to 250 working days"));
            }
        }
        if self.name.trim().is_empty() || self.name.chars().count() > 200 {
            return Err(("name".into(), "must be 1 to 200 characters"));
        }
        if self.coordinator_contact.trim().is_empty()
            || self.coordinator_contact.chars().count() > 200
        {
            return Err(("coordinator_contact".into(), "must be 1 to 200 characters"));
        }
        let mut cats = BTreeSet::new();
        for (j, c) in self.categories.iter().enumerate() {
            if !valid_id(c) || !cats.insert(c) {
                return Err((
                    format!("categories[{j}]"),
                    "must be unique, 1-64 of a-z, 0-9, '-', '_'",
                ));
            }
        }
        Ok(())
    }
}

fn default_ack_days() -> u32 {
    5
}

fn default_decide_days() -> u32 {
    20
}

fn default_closed_match_days() -> u32 {
    365
}

/// `[networks.webhook]`: signed HTTPS POSTs of every alert of the network.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `https://` URL of the receiver.
    pub url: String,
    /// File with the shared HMAC secret (see `spec/webhooks.md`).
    pub secret_file: PathBuf,
    /// Extra PEM CA certificates the receiver's certificate may chain to (besides the
    /// system roots), e.g. a municipality's private CA.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Seconds one attempt may take (connect, send, answer).
    #[serde(default = "default_webhook_timeout")]
    pub timeout_secs: u64,
    /// Seconds after the first attempt after which an undelivered alert is dead-lettered.
    #[serde(default = "default_dead_letter")]
    pub dead_letter_after_secs: u64,
    /// Longest pause between two attempts, seconds (the backoff doubles up to it).
    #[serde(default = "default_max_backoff")]
    pub max_backoff_secs: u64,
}

fn default_webhook_timeout() -> u64 {
    10
}

fn default_dead_letter() -> u64 {
    86_400
}

fn default_max_backoff() -> u64 {
    600
}

/// `[alerts]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Public holidays (`YYYY-MM-DD`) that are not working days, besides weekends.
    pub holidays: Vec<String>,
    /// How often the deadline check runs, seconds.
    pub escalation_check_secs: u64,
    /// Seconds between keep-alive comments on an idle event stream.
    pub stream_keepalive_secs: u64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            holidays: Vec::new(),
            escalation_check_secs: 60,
            stream_keepalive_secs: 15,
        }
    }
}

/// `[figures]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FiguresConfig {
    /// Counts below this are suppressed (shown as `null`) so nobody can be singled out.
    pub min_cell: u64,
}

impl Default for FiguresConfig {
    fn default() -> Self {
        FiguresConfig { min_cell: 5 }
    }
}

/// `[retention]`: how long archived signals are kept, and how often the job runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Days an archived signal (expired, or withdrawn because the concern is over) is
    /// kept, readable only for data-subject access requests and the privacy officer,
    /// before it is erased.
    pub archive_days: u32,
    /// Seconds between runs of the retention job inside `serve`.
    pub run_every_secs: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            archive_days: 1826,
            run_every_secs: 3600,
        }
    }
}

/// `[audit]`: the access log (`spec/access-log.md`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Whether accesses are logged. Only `samenloop load --compare-audit` turns it off,
    /// to measure what the log costs; a server with it off prints a warning at start.
    pub enabled: bool,
    /// Seconds between scheduled checkpoints (made only when the log has grown).
    pub checkpoint_every_secs: u64,
    /// Ed25519 private key (PEM) that signs checkpoints; without it they are unsigned.
    pub checkpoint_key: Option<PathBuf>,
    /// Its public key (PEM), with which `audit verify` and the verify endpoint check them.
    pub checkpoint_public_key: Option<PathBuf>,
    /// Key id in the signatures.
    pub checkpoint_key_id: String,
    /// Every checkpoint is also appended to this file (JSON Lines), for copying off the
    /// machine; by default `<data_dir>.checkpoints.jsonl` beside the data directory.
    pub checkpoint_file: Option<PathBuf>,
    /// Days an access-log entry is kept (at least 1826, five years); the retention job
    /// prunes older ones behind a checkpoint.
    pub retention_days: u32,
    /// Office hours for the anomaly hints, local time: from this hour…
    pub office_start_hour: u32,
    /// …to this hour (exclusive), on working days (`alerts.holidays` are not).
    pub office_end_hour: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            enabled: true,
            checkpoint_every_secs: 3600,
            checkpoint_key: None,
            checkpoint_public_key: None,
            checkpoint_key_id: "audit".into(),
            checkpoint_file: None,
            retention_days: 1826,
            office_start_hour: 7,
            office_end_hour: 19,
        }
    }
}

fn default_threshold() -> usize {
    2
}

fn default_validity() -> u32 {
    730
}

/// One `[[organisations]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganisationConfig {
    /// Stable id, as in the `org` token claim.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Networks it may submit to.
    pub networks: Vec<String>,
}

/// Whether `s` is a valid id: 1-64 of a-z, 0-9, '-', '_'.
pub fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: p.clone(),
            source,
        })?;
        let mut cfg: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: p.clone(),
            message: e.to_string(),
        })?;
        cfg.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        cfg.validate(&p)?;
        Ok(cfg)
    }

    /// Resolves a configured path against the configuration file's directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    /// The network with this id.
    pub fn network(&self, id: &str) -> Option<&NetworkConfig> {
        self.networks.iter().find(|n| n.id == id)
    }

    /// The file every access-log checkpoint is appended to.
    pub fn checkpoint_file(&self) -> PathBuf {
        match &self.audit.checkpoint_file {
            Some(p) => self.resolve(p),
            None => {
                let data = self.resolve(&self.server.data_dir);
                let mut name = data.file_name().unwrap_or_default().to_os_string();
                name.push(".checkpoints.jsonl");
                data.with_file_name(name)
            }
        }
    }

    /// The organisation with this id.
    pub fn organisation(&self, id: &str) -> Option<&OrganisationConfig> {
        self.organisations.iter().find(|o| o.id == id)
    }

    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let bad = |setting: String, message: &str| ConfigError::Invalid {
            path: path.to_string(),
            setting,
            message: message.to_string(),
        };
        if self.domain.accepted_key_ids.is_empty() {
            return Err(bad(
                "domain.accepted_key_ids".into(),
                "at least one key id is required",
            ));
        }
        for (i, k) in self.domain.accepted_key_ids.iter().enumerate() {
            if KeyId::parse(k).is_none() {
                return Err(bad(
                    format!("domain.accepted_key_ids[{i}]"),
                    "not a valid key id",
                ));
            }
        }
        if self.auth.keys.is_empty() {
            return Err(bad(
                "auth.keys".into(),
                "at least one verification key is required",
            ));
        }
        let mut kids = BTreeSet::new();
        for (i, k) in self.auth.keys.iter().enumerate() {
            if !matches!(k.algorithm.as_str(), "ES256" | "EdDSA") {
                return Err(bad(
                    format!("auth.keys[{i}].algorithm"),
                    "must be ES256 or EdDSA (HMAC and none are refused)",
                ));
            }
            if !kids.insert(&k.kid) || k.kid.is_empty() {
                return Err(bad(
                    format!("auth.keys[{i}].kid"),
                    "must be non-empty and unique",
                ));
            }
        }
        if self.networks.is_empty() {
            return Err(bad("networks".into(), "at least one network is required"));
        }
        let mut ids = BTreeSet::new();
        for (i, n) in self.networks.iter().enumerate() {
            if !valid_id(&n.id) || !ids.insert(n.id.as_str()) {
                return Err(bad(
                    format!("networks[{i}].id"),
                    "must be unique, 1-64 of a-z, 0-9, '-', '_'",
                ));
            }
            if let Err((setting, message)) = n.check_settings() {
                return Err(bad(format!("networks[{i}].{setting}"), message));
            }
            if let Some(w) = &n.webhook {
                if !w.url.starts_with("https://") || w.url.len() > 2048 {
                    return Err(bad(
                        format!("networks[{i}].webhook.url"),
                        "must be an https:// URL (at most 2048 characters)",
                    ));
                }
                if !(1..=300).contains(&w.timeout_secs) {
                    return Err(bad(
                        format!("networks[{i}].webhook.timeout_secs"),
                        "must be 1 to 300 seconds",
                    ));
                }
                if w.dead_letter_after_secs == 0 || !(1..=86_400).contains(&w.max_backoff_secs) {
                    return Err(bad(
                        format!("networks[{i}].webhook"),
                        "dead_letter_after_secs must be positive, max_backoff_secs 1 to 86400",
                    ));
                }
            }
        }
        let mut orgs = BTreeSet::new();
        for (i, o) in self.organisations.iter().enumerate() {
            if !valid_id(&o.id) || !orgs.insert(o.id.as_str()) {
                return Err(bad(
                    format!("organisations[{i}].id"),
                    "must be unique, 1-64 of a-z, 0-9, '-', '_'",
                ));
            }
            for (j, n) in o.networks.iter().enumerate() {
                if self.network(n).is_none() {
                    return Err(bad(
                        format!("organisations[{i}].networks[{j}]"),
                        "no such network",
                    ));
                }
            }
        }
        for (i, h) in self.alerts.holidays.iter().enumerate() {
            if crate::pseudonym::Date::parse_iso(h).is_none() {
                return Err(bad(
                    format!("alerts.holidays[{i}]"),
                    "must be a date YYYY-MM-DD",
                ));
            }
        }
        if !(1..=3600).contains(&self.alerts.escalation_check_secs)
            || !(1..=3600).contains(&self.alerts.stream_keepalive_secs)
        {
            return Err(bad(
                "alerts".into(),
                "escalation_check_secs and stream_keepalive_secs must be 1 to 3600",
            ));
        }
        // A stream's keep-alive comments are what keeps the idle guard from closing it.
        if self.alerts.stream_keepalive_secs >= self.limits.client_idle_timeout_secs {
            return Err(bad(
                "alerts.stream_keepalive_secs".into(),
                "must be below limits.client_idle_timeout_secs",
            ));
        }
        if !(1..=100_000).contains(&self.limits.retention_chunk) {
            return Err(bad("limits.retention_chunk".into(), "must be 1 to 100000"));
        }
        let r = &self.retention;
        if !(1..=3653).contains(&r.archive_days) {
            return Err(bad(
                "retention.archive_days".into(),
                "must be 1 to 3653 days",
            ));
        }
        if !(10..=86_400).contains(&r.run_every_secs) {
            return Err(bad(
                "retention.run_every_secs".into(),
                "must be 10 to 86400 seconds",
            ));
        }
        let a = &self.audit;
        if a.retention_days < 1826 {
            return Err(bad(
                "audit.retention_days".into(),
                "must be at least 1826 (five years, NEN 7513)",
            ));
        }
        if !(10..=86_400).contains(&a.checkpoint_every_secs) {
            return Err(bad(
                "audit.checkpoint_every_secs".into(),
                "must be 10 to 86400 seconds",
            ));
        }
        if a.office_start_hour >= a.office_end_hour || a.office_end_hour > 24 {
            return Err(bad(
                "audit.office_start_hour".into(),
                "office hours must satisfy 0 <= office_start_hour < office_end_hour <= 24",
            ));
        }
        if a.checkpoint_key.is_some() && a.checkpoint_public_key.is_none() {
            return Err(bad(
                "audit.checkpoint_public_key".into(),
                "required with audit.checkpoint_key",
            ));
        }
        let l = &self.limits;
        if l.max_batch == 0
            || l.max_body_bytes < 1024
            || l.partner_rate_per_sec == 0
            || l.max_postings_per_key < 2
        {
            return Err(bad(
                "limits".into(),
                "limits must be positive (max_body_bytes >= 1024, max_postings_per_key >= 2)",
            ));
        }
        for (name, secs) in [
            ("client_request_timeout_secs", l.client_request_timeout_secs),
            ("client_body_timeout_secs", l.client_body_timeout_secs),
            ("client_idle_timeout_secs", l.client_idle_timeout_secs),
            ("keep_alive_secs", l.keep_alive_secs),
        ] {
            if !(1..=3600).contains(&secs) {
                return Err(bad(format!("limits.{name}"), "must be 1 to 3600 seconds"));
            }
        }
        Ok(())
    }
}

/// The development configuration shipped in `keys-example/`.
pub fn development_config_path() -> PathBuf {
    let local = PathBuf::from("keys-example/samenloop.dev.toml");
    if local.exists() {
        local
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("keys-example/samenloop.dev.toml")
    }
}
