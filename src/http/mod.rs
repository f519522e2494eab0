//! The HTTPS API: startup, authentication, errors and one file per resource.

pub mod audit;
pub mod auth;
pub mod error;
pub mod idle;
pub mod metrics;
pub mod retention;
pub mod rotation;
pub mod routes;
pub mod startup;

use crate::config::Config;
use crate::directory::Directory;
use crate::index::engine::Policy;
use crate::pseudonym::Date;
use crate::store::{Store, Writer};
use actix_web::{FromRequest, HttpRequest, web};
use auth::{Caller, Verifier};
use error::ApiError;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The clock of the server, unix seconds (replaceable in tests).
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    })
}

/// Everything a request handler needs.
pub struct AppState {
    /// Configuration.
    pub cfg: Arc<Config>,
    /// Read access to the store.
    pub store: Store,
    /// Write access to the store.
    pub writer: Writer,
    /// Token verification.
    pub verifier: Verifier,
    /// The networks, organisations and excluded addresses in force, with the matching
    /// rules derived from them; swapped whole by the admin endpoints.
    pub directory: std::sync::RwLock<Arc<Directory>>,
    /// Held by an admin change from reading the directory to swapping it, so that
    /// changes (and a rotation of the index key) do not overwrite each other.
    pub admin_lock: tokio::sync::Mutex<()>,
    /// Metrics.
    pub metrics: Arc<metrics::Metrics>,
    /// Per-organisation token buckets.
    pub buckets: Mutex<HashMap<String, (f64, Instant)>>,
    /// The clock.
    pub clock: Clock,
    /// Becomes true when the server stops: event streams and background jobs end.
    pub shutdown: Arc<tokio::sync::watch::Sender<bool>>,
    /// The access log's checkpoint keys and file.
    pub checkpoints: Arc<CheckpointKeys>,
}

/// The keys that sign and verify access-log checkpoints, and the file they go to.
#[derive(Debug, Default)]
pub struct CheckpointKeys {
    /// Signs new checkpoints (none: they are unsigned).
    pub signer: Option<crate::audit::checkpoint::Signer>,
    /// Verifies them.
    pub verifier: Option<crate::audit::checkpoint::Verifier>,
    /// Every new checkpoint is appended to this file.
    pub file: Option<std::path::PathBuf>,
}

impl CheckpointKeys {
    /// Loads the keys named in `[audit]`.
    pub fn from_config(cfg: &Config) -> Result<CheckpointKeys, String> {
        let a = &cfg.audit;
        let read = |p: &std::path::Path, what: &str| {
            let path = cfg.resolve(p);
            std::fs::read(&path).map_err(|e| format!("audit.{what} {}: {e}", path.display()))
        };
        let signer = match &a.checkpoint_key {
            Some(p) => Some(
                crate::audit::checkpoint::Signer::from_pem(
                    &zeroize::Zeroizing::new(read(p, "checkpoint_key")?),
                    &a.checkpoint_key_id,
                )
                .map_err(|e| format!("audit.checkpoint_key: {e}"))?,
            ),
            None => None,
        };
        let verifier = match &a.checkpoint_public_key {
            Some(p) => Some(
                crate::audit::checkpoint::Verifier::from_pem(&read(p, "checkpoint_public_key")?)
                    .map_err(|e| format!("audit.checkpoint_public_key: {e}"))?,
            ),
            None => None,
        };
        Ok(CheckpointKeys {
            signer,
            verifier,
            file: Some(cfg.checkpoint_file()),
        })
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

impl AppState {
    /// Takes `n` tokens from the organisation's bucket, or says how long to wait.
    pub fn rate_limit(&self, org: &str, n: u32) -> Result<(), ApiError> {
        let rate = f64::from(self.cfg.limits.partner_rate_per_sec);
        let burst = f64::from(self.cfg.limits.partner_burst);
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let (tokens, last) = b.entry(org.to_string()).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(burst);
        *last = now;
        let need = f64::from(n);
        if *tokens >= need {
            *tokens -= need;
            Ok(())
        } else {
            Err(ApiError::RateLimited(
                ((need - *tokens) / rate).ceil().max(1.0) as u64,
            ))
        }
    }

    /// The directory in force.
    pub fn directory(&self) -> Arc<Directory> {
        self.directory
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The matching rules in force.
    pub fn policy(&self) -> Arc<Policy> {
        self.directory().policy.clone()
    }

    /// Reads the directory again from the configuration and the store (after a change
    /// was written) and puts it in force.
    pub fn reload_directory(&self) -> Result<Arc<Directory>, ApiError> {
        let d = Arc::new(
            Directory::load(&self.cfg, &self.store, &self.store.ring()).map_err(|e| {
                eprintln!("samenloop: cannot read the directory: {e}");
                ApiError::Internal
            })?,
        );
        *self.directory.write().unwrap_or_else(|p| p.into_inner()) = d.clone();
        Ok(d)
    }

    /// Now, unix seconds.
    pub fn now(&self) -> i64 {
        (self.clock)()
    }

    /// Now, unix milliseconds: the clock's second with the system clock's milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.now() * 1000 + crate::audit::system_ms().rem_euclid(1000)
    }
}

/// Shared state as actix app data.
pub type State = web::Data<AppState>;

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Caller, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<State>().cloned();
        let audit = audit::Audit::of(req);
        let header = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .map(|h| h.as_bytes().to_vec());
        Box::pin(async move {
            let state = state.ok_or(ApiError::Internal)?;
            let header = header.ok_or(ApiError::Unauthenticated)?;
            let text = std::str::from_utf8(&header).map_err(|_| ApiError::InvalidToken)?;
            let token = text
                .strip_prefix("Bearer ")
                .or_else(|| text.strip_prefix("bearer "))
                .ok_or(ApiError::Unauthenticated)?
                .trim();
            let caller = state.verifier.verify(token)?;
            // Signed by a configured key: who it is goes into the log even if refused below.
            audit.caller(&caller);
            if caller.role == auth::Role::Partner
                && state.directory().organisation(&caller.org).is_none()
            {
                return Err(ApiError::InvalidToken);
            }
            Ok(caller)
        })
    }
}

/// Reads a JSON request body of at most `limit` bytes and parses it.
pub async fn read_json<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<T, ApiError> {
    let ct = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::UnsupportedMediaType);
    }
    if let Some(len) = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if len > limit {
            return Err(ApiError::PayloadTooLarge(limit));
        }
    }
    // The whole body must arrive within the configured time: a client that sends a head
    // and then trickles (or never sends) its body would otherwise hold the connection.
    let secs = req
        .app_data::<State>()
        .map(|s| s.cfg.limits.client_body_timeout_secs)
        .unwrap_or(10);
    let read = async {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk =
                chunk.map_err(|_| ApiError::MalformedJson("the body could not be read".into()))?;
            if body.len() + chunk.len() > limit {
                return Err(ApiError::PayloadTooLarge(limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    let body = actix_web::rt::time::timeout(std::time::Duration::from_secs(secs), read)
        .await
        .map_err(|_| ApiError::RequestTimeout)??;
    serde_json::from_slice(&body).map_err(|e| error::json_error(&e))
}

/// Parses the query string into `T`. On a value of the wrong type the problem names the
/// parameter (serde only says "invalid digit found in string"), found by parsing again
/// without each parameter in turn; values are never echoed.
pub fn parse_query<T: serde::de::DeserializeOwned>(req: &HttpRequest) -> Result<T, ApiError> {
    let q = req.query_string();
    let e = match web::Query::<T>::from_query(q) {
        Ok(v) => return Ok(v.into_inner()),
        Err(e) => e.to_string(),
    };
    // Unknown and missing parameters are named by serde already.
    if e.contains("unknown field") || e.contains("missing field") {
        return Err(ApiError::InvalidQuery(e));
    }
    let parts: Vec<&str> = q.split('&').filter(|p| !p.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        let Some((k, _)) = web::Query::<Vec<(String, String)>>::from_query(part)
            .ok()
            .and_then(|p| p.into_inner().into_iter().next())
        else {
            continue;
        };
        let without: Vec<&str> = parts
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, p)| *p)
            .collect();
        let fixed = match web::Query::<T>::from_query(&without.join("&")) {
            Ok(_) => true,
            Err(e2) => e2.to_string().contains(&format!("missing field `{k}`")),
        };
        // Parameter names are the server's own (unknown ones were refused above).
        if fixed && k.len() <= 32 && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return Err(ApiError::InvalidQuery(format!(
                "{k}: the value has the wrong type or form"
            )));
        }
    }
    Err(ApiError::InvalidQuery(e))
}

/// RFC 3339 UTC text of a unix time.
pub fn rfc3339(secs: i64) -> String {
    let d = Date::from_days_since_epoch(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!("{d}T{:02}:{:02}:{:02}Z", s / 3600, (s / 60) % 60, s % 60)
}
