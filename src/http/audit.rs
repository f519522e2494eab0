//! The access log at the HTTP edge: every request under `/v1/` leaves exactly one entry.
//!
//! A middleware gives each request a [`Record`] (request id, client address, operation)
//! that the [`Caller`](super::auth::Caller) extractor and the handler fill in (who, what
//! action, which object). Handlers that write append the entry in their own transaction
//! and mark it logged; for every other request (reads, refusals, failed writes) the
//! middleware appends it after the handler and before the answer leaves, and answers
//! 503 (or 507) instead when that write fails: nothing is shown that was not logged.

use super::State;
use super::auth::Caller;
use super::error::ApiError;
use crate::audit::{Action, Entry, ObjectType, Outcome};
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use std::future::{Ready, ready};
use std::sync::{Arc, Mutex, MutexGuard};

/// What is known about a request for its log entry.
#[derive(Debug, Default)]
pub struct Record {
    /// Request id (random, answered in `X-Request-Id`).
    pub request_id: String,
    /// Client IP address.
    pub client: String,
    /// Method and route template.
    pub operation: String,
    /// Whether the method is GET (for the default action).
    pub read: bool,
    /// The verified caller, once the token was checked.
    pub caller: Option<Caller>,
    /// The action, as the handler named it.
    pub action: Option<Action>,
    /// The kind of object.
    pub object_type: Option<ObjectType>,
    /// The object (an id that exists).
    pub object_id: Option<String>,
    /// The object's network.
    pub network: Option<String>,
    /// Further objects disclosed or changed.
    pub related: Vec<String>,
    /// The answer is a 404 for an object that exists outside the caller's scope.
    pub scope_denied: bool,
    /// The handler appended the entry in its own transaction.
    pub logged: bool,
}

impl Record {
    /// The entry for an answer with `status`, at unix ms `at_ms`.
    pub fn entry(&self, status: u16, at_ms: i64) -> Entry {
        let c = self.caller.as_ref();
        // A 401 is a refused login, also for a token that verified but was refused
        // after (an organisation that is not configured): then who it was is known.
        let action = match self.action {
            _ if status == 401 => Action::LoginRefused,
            Some(a) => a,
            None if self.read => Action::Read,
            None => Action::Update,
        };
        let role = c.map(|c| {
            serde_json::to_value(c.role)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        });
        Entry {
            seq: 0,
            at_ms,
            action,
            outcome: Outcome::of_status(status, self.scope_denied),
            status,
            operation: self.operation.clone(),
            actor: c.map(|c| c.sub.clone()).unwrap_or_else(|| "-".into()),
            org: c.map(|c| c.org.clone()),
            role,
            on_behalf_of: c.and_then(|c| c.obo.clone()),
            purpose: c.and_then(|c| c.purpose.clone()),
            actor_networks: c.map(|c| c.networks.clone()).unwrap_or_default(),
            network: self.network.clone(),
            object_type: self.object_type,
            object_id: self.object_id.clone(),
            related: self.related.clone(),
            client: self.client.clone(),
            request_id: self.request_id.clone(),
        }
    }
}

/// A handler's hold on its request's [`Record`]; empty for requests that are not
/// logged (outside `/v1/`, or with the access log switched off).
#[derive(Debug, Clone, Default)]
pub struct Audit(Option<Arc<Mutex<Record>>>);

impl Audit {
    /// A new record for a request.
    pub fn new(record: Record) -> Audit {
        Audit(Some(Arc::new(Mutex::new(record))))
    }

    /// The hold of a request (empty if it has none).
    pub fn of(req: &HttpRequest) -> Audit {
        req.extensions().get::<Audit>().cloned().unwrap_or_default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut Record) -> R) -> Option<R> {
        self.0.as_ref().map(|r| {
            let mut g: MutexGuard<'_, Record> = r.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut g)
        })
    }

    /// Whether the request is logged.
    pub fn active(&self) -> bool {
        self.0.is_some()
    }

    /// Names the action and the kind of object.
    pub fn set(&self, action: Action, object_type: ObjectType) {
        self.with(|r| {
            r.action = Some(action);
            r.object_type = Some(object_type);
        });
    }

    /// Names the object (an id that exists) and its network.
    pub fn object(&self, id: &str, network: Option<&str>) {
        self.with(|r| {
            r.object_id = Some(id.to_string());
            if let Some(n) = network {
                r.network = Some(n.to_string());
            }
        });
    }

    /// Names the network concerned (a configured one).
    pub fn network(&self, network: &str) {
        self.with(|r| r.network = Some(network.to_string()));
    }

    /// Adds objects the answer disclosed or the request changed.
    pub fn related(&self, ids: impl IntoIterator<Item = String>) {
        self.with(|r| {
            for id in ids {
                if !r.related.contains(&id) && r.object_id.as_ref() != Some(&id) {
                    r.related.push(id);
                }
            }
        });
    }

    /// The answer is a 404 for an object that exists outside the caller's scope.
    pub fn scope_denied(&self) {
        self.with(|r| r.scope_denied = true);
    }

    /// Records the verified caller.
    pub fn caller(&self, c: &Caller) {
        self.with(|r| r.caller = Some(c.clone()));
    }

    /// The entry as it stands, for an answer with `status`: a handler appends it in its
    /// own transaction (and then calls [`Audit::logged`]). `None` when not logged.
    pub fn draft(&self, state: &State, status: u16) -> Option<Entry> {
        let at = state.now_ms();
        self.with(|r| r.entry(status, at))
    }

    /// The handler's transaction holds the entry.
    pub fn logged(&self) {
        self.with(|r| r.logged = true);
    }

    /// The request id.
    pub fn request_id(&self) -> Option<String> {
        self.with(|r| r.request_id.clone())
    }

    /// The entry still to be written for an answer with `status`, if any.
    pub fn pending(&self, state: &State, status: u16) -> Option<Entry> {
        let at = state.now_ms();
        self.with(|r| (!r.logged).then(|| r.entry(status, at)))
            .flatten()
    }
}

impl FromRequest for Audit {
    type Error = ApiError;
    type Future = Ready<Result<Audit, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(Ok(Audit::of(req)))
    }
}

/// A new random request id (`req_` and 24 hex digits).
pub fn request_id() -> String {
    let mut b = [0u8; 12];
    // Without OS randomness ids repeat their zeros; they identify, they protect nothing.
    let _ = getrandom::fill(&mut b);
    let mut s = String::with_capacity(28);
    s.push_str("req_");
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

/// Appends `entry` on the writer (a transaction of its own).
pub async fn append(state: &State, entry: Entry) -> Result<(), ApiError> {
    state
        .writer
        .run(move |kv| crate::audit::append(kv, entry).map(|_| ()))
        .await
        .map_err(ApiError::from)
}

/// Makes a checkpoint of the log's current head (unless the newest one covers it) and,
/// when it is new, appends it to the configured checkpoint file. Returns it and whether
/// it is new.
pub async fn checkpoint_now(
    state: &State,
) -> Result<Option<(crate::audit::checkpoint::Checkpoint, bool)>, ApiError> {
    let keys = state.checkpoints.clone();
    let domain = state.cfg.domain.name.clone();
    let now = state.now();
    let made = state
        .writer
        .run(move |kv| crate::audit::checkpoint::make(kv, &domain, now, keys.signer.as_ref()))
        .await?;
    if let (Some((cp, true)), Some(path)) = (&made, &state.checkpoints.file) {
        // The checkpoint is in the store already; the file is the copy to take elsewhere.
        if let Err(e) = crate::audit::checkpoint::append_to_file(path, cp) {
            eprintln!(
                "samenloop: cannot append the access-log checkpoint to {}: {e}",
                path.display()
            );
        }
    }
    if let Some((cp, true)) = &made {
        state.metrics.inc(
            "samenloop_audit_checkpoints_total",
            format!("signed=\"{}\"", cp.signature.is_some()),
            1,
        );
    }
    Ok(made)
}

/// The scheduled checkpoints: every `audit.checkpoint_every_secs` while the server
/// runs (when the log grew), and one when it stops.
pub fn spawn_checkpoints(state: State) {
    if !state.cfg.audit.enabled {
        return;
    }
    actix_web::rt::spawn(async move {
        let every = std::time::Duration::from_secs(state.cfg.audit.checkpoint_every_secs);
        let mut stop = state.shutdown.subscribe();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => {}
            }
            let stopping = *stop.borrow();
            if checkpoint_now(&state).await.is_err() {
                eprintln!("samenloop: the scheduled access-log checkpoint could not be written");
            }
            if stopping {
                break;
            }
        }
    });
}
