//! Webhook delivery (`spec/webhooks.md`): every alert of a network with a
//! `[networks.webhook]` is POSTed, signed, to the coordinator's receiver until it answers
//! 2xx, or dead-lettered after `dead_letter_after_secs`.
//!
//! The work list is in the store: [`crate::index::followup::emit`] writes a pending entry
//! (`q` network 0 sequence) in the same transaction as the alert, so a crash between a
//! match and its delivery loses nothing. The entry's value holds the [`Delivery`] state
//! (empty until the first attempt); a 2xx removes it, a dead letter moves it to `x`
//! network 0 sequence. Every change goes through the writer (durable).
//!
//! The worker runs on its own thread with its own runtime, one task per network, so a
//! slow or absent receiver never holds up intake or another network. Within a network
//! each alert has its own schedule and at most [`MAX_IN_FLIGHT`] attempts run at once,
//! so one failing alert does not hold up the others. The tasks wake on the writer's
//! commit notifications and on the next scheduled attempt; they never poll.

use super::signature::{EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, WebhookSecret};
use crate::config::Config;
use crate::http::State;
use crate::index::engine::{self, EngineError, Kv, KvRead};
use crate::index::followup::{pending_key, pending_prefix};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Attempts in flight per network at most.
pub const MAX_IN_FLIGHT: usize = 8;

/// First backoff before the second attempt (doubling from there, full jitter).
const FIRST_BACKOFF_MS: u64 = 1_000;

/// Store counter bumped when a dead letter is requeued (the worker then rescans).
pub const REQUEUE_COUNTER: &str = "webhook-requeue";

/// Delivery state of one alert to one network's webhook (the value of its `q` or `x` entry).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Attempts made.
    pub attempts: u32,
    /// First attempt (unix seconds; the dead-letter clock starts here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_attempt: Option<i64>,
    /// Last attempt (unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt: Option<i64>,
    /// Next attempt (unix seconds; none: as soon as possible).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt: Option<i64>,
    /// Outcome of the last attempt: an HTTP status (`"500"`, `"302"`) or an error class
    /// (`timeout`, `connect`, `tls`, `error`). Never the receiver's body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_outcome: Option<String>,
    /// When it was dead-lettered (unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_at: Option<i64>,
}

impl Delivery {
    /// Decodes an entry's value (empty: no attempt yet).
    pub fn decode(v: &[u8]) -> Result<Delivery, EngineError> {
        if v.is_empty() {
            return Ok(Delivery::default());
        }
        serde_json::from_slice(v).map_err(|_| EngineError::Corrupt('q'))
    }

    fn encode(&self) -> Result<Vec<u8>, EngineError> {
        serde_json::to_vec(self).map_err(|e| EngineError::Store(e.to_string()))
    }
}

/// Prefix of a network's dead letters (entries end in the outbox sequence, u64 BE).
pub fn dead_prefix(network: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + network.len());
    k.push(b'x');
    k.extend_from_slice(network.as_bytes());
    k.push(0);
    k
}

/// Key of a dead letter.
pub fn dead_key(network: &str, seq: u64) -> Vec<u8> {
    let mut k = dead_prefix(network);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The sequence number at the end of a `q` or `x` key.
pub fn seq_of(key: &[u8]) -> Option<u64> {
    let b: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(u64::from_be_bytes(b))
}

/// Moves a dead letter back to the pending deliveries: the attempt count is kept, the
/// dead-letter clock starts again at the next attempt. `Ok(false)`: no such dead letter.
pub fn requeue(kv: &mut dyn Kv, network: &str, seq: u64) -> Result<Option<Delivery>, EngineError> {
    let Some(v) = kv.get(&dead_key(network, seq))? else {
        return Ok(None);
    };
    let mut d = Delivery::decode(&v)?;
    d.first_attempt = None;
    d.next_attempt = None;
    d.dead_at = None;
    kv.remove(dead_key(network, seq));
    kv.put(pending_key(network, seq), d.encode()?);
    engine::next_counter(kv, REQUEUE_COUNTER)?;
    Ok(Some(d))
}

/// One network's receiver.
#[derive(Debug)]
pub struct Target {
    network: String,
    url: String,
    secret: WebhookSecret,
    client: reqwest::Client,
    dead_after: i64,
    max_backoff_ms: u64,
}

/// Reads the webhook settings of every network (secret files, CA files) and builds the
/// HTTPS clients. Errors name the setting.
pub fn targets(cfg: &Config) -> Result<Vec<Target>, String> {
    let mut out = Vec::new();
    for (i, n) in cfg.networks.iter().enumerate() {
        let Some(w) = &n.webhook else { continue };
        let secret_path = cfg.resolve(&w.secret_file);
        let secret = WebhookSecret::read(&secret_path)
            .map_err(|e| format!("networks[{i}].webhook.secret_file: {e}"))?;
        let timeout = Duration::from_secs(w.timeout_secs);
        let mut b = reqwest::Client::builder()
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("samenloop/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &w.ca_file {
            let p = cfg.resolve(ca);
            let pem = std::fs::read(&p)
                .map_err(|e| format!("networks[{i}].webhook.ca_file {}: {e}", p.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("networks[{i}].webhook.ca_file {}: {e}", p.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "networks[{i}].webhook.ca_file {}: no certificate in the file",
                    p.display()
                ));
            }
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        let client = b
            .build()
            .map_err(|e| format!("networks[{i}].webhook: cannot build the HTTPS client: {e}"))?;
        out.push(Target {
            network: n.id.clone(),
            url: w.url.clone(),
            secret,
            client,
            dead_after: i64::try_from(w.dead_letter_after_secs).unwrap_or(i64::MAX),
            max_backoff_ms: w.max_backoff_secs.saturating_mul(1000),
        });
    }
    Ok(out)
}

/// The running delivery worker; [`Worker::stop`] ends it.
#[derive(Debug)]
pub struct Worker {
    stop: tokio::sync::watch::Sender<bool>,
    thread: std::thread::JoinHandle<()>,
}

impl Worker {
    /// Starts the worker thread for `targets` (none: no thread).
    pub fn start(state: State, targets: Vec<Target>) -> std::io::Result<Option<Worker>> {
        if targets.is_empty() {
            return Ok(None);
        }
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("samenloop-webhook")
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("samenloop-webhooks".into())
            .spawn(move || {
                rt.block_on(async move {
                    let mut tasks = JoinSet::new();
                    for t in targets {
                        tasks.spawn(run_network(state.clone(), Arc::new(t), stopped.clone()));
                    }
                    drop(state);
                    while tasks.join_next().await.is_some() {}
                });
                // Attempts still running are dropped: their alerts stay pending and are
                // sent again after the restart (at-least-once).
                rt.shutdown_timeout(Duration::from_millis(200));
            })?;
        Ok(Some(Worker { stop, thread }))
    }

    /// Stops the worker: no new attempts; waits (up to 5 s) for the thread to end.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.thread.is_finished() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if self.thread.is_finished() {
            let _ = self.thread.join();
        }
    }
}

/// What became of one attempt.
enum Next {
    /// Delivered, or the entry is gone: forget it.
    Done,
    /// Try again after this pause.
    Retry(Duration),
}

/// The network's schedule: alerts known to be pending, when each is due, which are in flight.
#[derive(Default)]
struct Schedule {
    queue: BTreeSet<(Instant, u64)>,
    known: HashSet<u64>,
    in_flight: HashSet<u64>,
    /// When each alert was first seen by this process live (for the latency histogram).
    seen_live: HashMap<u64, Instant>,
    cursor: Option<u64>,
}

impl Schedule {
    /// Adds the pending entries after the cursor (all of them when `full`).
    fn discover(
        &mut self,
        state: &State,
        network: &str,
        full: bool,
        live: bool,
    ) -> Result<(), EngineError> {
        let prefix = pending_prefix(network);
        let mut after = if full {
            None
        } else {
            self.cursor.map(|c| pending_key(network, c))
        };
        let now_unix = state.now();
        let now = Instant::now();
        loop {
            let rows = state
                .store
                .scan_prefix_after(&prefix, after.as_deref(), 1024)
                .map_err(|e| EngineError::Store(e.to_string()))?;
            let n = rows.len();
            for (k, v) in rows {
                let Some(seq) = seq_of(&k) else { continue };
                self.cursor = Some(self.cursor.map_or(seq, |c| c.max(seq)));
                if self.known.insert(seq) {
                    let d = Delivery::decode(&v).unwrap_or_default();
                    let wait = d
                        .next_attempt
                        .map(|t| u64::try_from(t - now_unix).unwrap_or(0))
                        .unwrap_or(0);
                    self.queue.insert((now + Duration::from_secs(wait), seq));
                    if live {
                        self.seen_live.insert(seq, now);
                    }
                }
                after = Some(k);
            }
            if n < 1024 {
                return Ok(());
            }
        }
    }
}

async fn run_network(
    state: State,
    target: Arc<Target>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut commits = state.writer.commits();
    let mut s = Schedule::default();
    let mut jobs: JoinSet<(u64, Next)> = JoinSet::new();
    let requeues = |state: &State| engine::counter(&state.store, REQUEUE_COUNTER).unwrap_or(0);
    let mut seen_requeues = requeues(&state);
    let mut full = true;
    let mut live = false;
    loop {
        if *stop.borrow() {
            return;
        }
        if s.discover(&state, &target.network, full, live).is_err() {
            // A read error: look at everything again on the next wake.
            full = true;
        } else {
            full = false;
        }
        live = true;
        let now = Instant::now();
        while s.in_flight.len() < MAX_IN_FLIGHT {
            let Some(&(due, seq)) = s.queue.first() else {
                break;
            };
            if due > now {
                break;
            }
            s.queue.pop_first();
            s.in_flight.insert(seq);
            let seen = s.seen_live.get(&seq).copied();
            jobs.spawn(attempt(state.clone(), target.clone(), seq, seen));
        }
        let next_due = if s.in_flight.len() < MAX_IN_FLIGHT {
            s.queue.first().map(|(d, _)| *d)
        } else {
            None
        };
        tokio::select! {
            _ = stop.changed() => return,
            r = commits.changed() => {
                if r.is_err() {
                    return;
                }
                let n = requeues(&state);
                if n != seen_requeues {
                    seen_requeues = n;
                    full = true;
                }
            }
            Some(done) = jobs.join_next(), if !jobs.is_empty() => {
                if let Ok((seq, next)) = done {
                    s.in_flight.remove(&seq);
                    match next {
                        Next::Done => {
                            s.known.remove(&seq);
                            s.seen_live.remove(&seq);
                        }
                        Next::Retry(after) => {
                            s.queue.insert((Instant::now() + after, seq));
                        }
                    }
                }
            }
            _ = sleep_until(next_due), if next_due.is_some() => {}
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
    }
}

/// A random pause for attempt `n` (1-based, the one that just failed): uniform in
/// `[0, min(cap, 1 s * 2^(n-1))]` ("full jitter"), at least 50 ms.
fn backoff(attempts: u32, max_backoff_ms: u64) -> Duration {
    let ceiling = FIRST_BACKOFF_MS
        .saturating_mul(1u64 << attempts.saturating_sub(1).min(30))
        .min(max_backoff_ms.max(100));
    let mut b = [0u8; 8];
    let r = match getrandom::fill(&mut b) {
        Ok(()) => u64::from_le_bytes(b),
        Err(_) => ceiling / 2,
    };
    Duration::from_millis((r % (ceiling + 1)).max(50))
}

/// The class of a failed request (never its text, which may quote the receiver).
fn error_class(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        return "timeout";
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.downcast_ref::<rustls::Error>().is_some() {
            return "tls";
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return "timeout";
            }
            // `io::Error::source` skips the wrapped error itself: step into it.
            if let Some(inner) = io.get_ref() {
                cur = Some(inner as &(dyn std::error::Error + 'static));
                continue;
            }
        }
        cur = err.source();
    }
    if e.is_connect() { "connect" } else { "error" }
}

/// One attempt to deliver alert `seq`, and the durable record of its outcome.
async fn attempt(
    state: State,
    target: Arc<Target>,
    seq: u64,
    seen: Option<Instant>,
) -> (u64, Next) {
    let network = target.network.clone();
    let key = pending_key(&network, seq);
    // The entry may have been delivered by an attempt of an earlier run of this process.
    match KvRead::get(&state.store, &key) {
        Ok(Some(_)) => {}
        Ok(None) => return (seq, Next::Done),
        Err(_) => return (seq, Next::Retry(Duration::from_secs(1))),
    }
    let alert = match super::payload::alert_at(&state, seq) {
        Ok(Some(a)) => a,
        // An entry without its alert cannot be sent: drop it.
        Ok(None) => {
            let k = key.clone();
            let _ = state
                .writer
                .run(move |kv| {
                    kv.remove(k);
                    Ok(())
                })
                .await;
            return (seq, Next::Done);
        }
        Err(_) => return (seq, Next::Retry(Duration::from_secs(1))),
    };
    let (body, handle, shown) = match super::payload::render(&state, &alert).and_then(|p| {
        serde_json::to_vec(&p)
            .map(|b| (b, p.match_view.handle.clone(), p.match_view.shown.clone()))
            .map_err(|_| crate::http::error::ApiError::Internal)
    }) {
        Ok(b) => b,
        Err(_) => return (seq, Next::Retry(Duration::from_secs(1))),
    };
    // The delivery is an access: the receiver's coordinator saw the match.
    let log = state.cfg.audit.enabled.then(|| {
        let mut e = crate::audit::Entry::by_index(
            crate::audit::Action::Deliver,
            "webhook POST",
            crate::audit::ObjectType::Match,
            0,
            alert.event_id.clone(),
        );
        e.network = Some(network.clone());
        e.object_id = Some(handle);
        e.related = std::iter::once(alert.event_id.clone())
            .chain(shown)
            .collect();
        e.client = reqwest::Url::parse(&target.url)
            .ok()
            .and_then(|u| {
                u.host_str()
                    .map(|h| format!("{h}:{}", u.port_or_known_default().unwrap_or(443)))
            })
            .unwrap_or_else(|| "-".into());
        e
    });
    let now = state.now();
    let sent = target
        .client
        .post(&target.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, target.secret.header(now, &body))
        .header(EVENT_ID_HEADER, &alert.event_id)
        .header(EVENT_TYPE_HEADER, &alert.event)
        .body(body)
        .send()
        .await;
    // Every attempt is logged: one that failed may still have reached the receiver
    // (an error answer, a timeout after the body was sent). Status 0: no HTTP answer.
    let mut log = log;
    if let Some(e) = log.as_mut() {
        e.at_ms = state.now_ms();
        match &sent {
            Ok(resp) => {
                e.status = resp.status().as_u16();
                e.outcome = crate::audit::Outcome::of_status(e.status, false);
                if !resp.status().is_success() {
                    e.outcome = crate::audit::Outcome::Error;
                }
            }
            Err(_) => {
                e.status = 0;
                e.outcome = crate::audit::Outcome::Error;
            }
        }
    }
    let outcome: Result<(), String> = match sent {
        Ok(resp) if resp.status().is_success() => Ok(()),
        Ok(resp) => Err(resp.status().as_u16().to_string()),
        Err(e) => Err(error_class(&e).to_string()),
    };
    let class = match &outcome {
        Ok(()) => "delivered".to_string(),
        Err(o) if o.bytes().all(|b| b.is_ascii_digit()) && o.starts_with('3') => {
            "redirect".to_string()
        }
        Err(o) if o.bytes().all(|b| b.is_ascii_digit()) => "http_error".to_string(),
        Err(o) => o.clone(),
    };
    state.metrics.inc(
        "samenloop_webhook_deliveries_total",
        format!("network=\"{network}\",outcome=\"{class}\""),
        1,
    );
    let done_at = state.now();
    let (dead_after, max_backoff_ms) = (target.dead_after, target.max_backoff_ms);
    let k = key.clone();
    let net = network.clone();
    let recorded = state
        .writer
        .run(move |kv| {
            if let Some(e) = log {
                crate::audit::append(kv, e)?;
            }
            let Some(v) = kv.get(&k)? else {
                return Ok(None);
            };
            let mut d = Delivery::decode(&v)?;
            d.attempts = d.attempts.saturating_add(1);
            let first = *d.first_attempt.get_or_insert(now);
            d.last_attempt = Some(done_at);
            match outcome {
                Ok(()) => {
                    kv.remove(k);
                    Ok(Some((d, None)))
                }
                Err(o) => {
                    d.last_outcome = Some(o);
                    if done_at - first >= dead_after {
                        d.next_attempt = None;
                        d.dead_at = Some(done_at);
                        kv.remove(k);
                        kv.put(dead_key(&net, seq), d.encode()?);
                        Ok(Some((d, None)))
                    } else {
                        let pause = backoff(d.attempts, max_backoff_ms);
                        d.next_attempt =
                            Some(done_at + i64::try_from(pause.as_secs()).unwrap_or(0));
                        kv.put(k, d.encode()?);
                        Ok(Some((d, Some(pause))))
                    }
                }
            }
        })
        .await;
    match recorded {
        Ok(None) => (seq, Next::Done),
        Ok(Some((_, Some(pause)))) => (seq, Next::Retry(pause)),
        Ok(Some((d, None))) => {
            if d.dead_at.is_some() {
                // Ids and classes only: nothing personal, nothing the receiver said.
                eprintln!(
                    "samenloop: webhook of network {network}: alert {} dead-lettered after {} attempts (last: {})",
                    alert.event_id,
                    d.attempts,
                    d.last_outcome.as_deref().unwrap_or("-")
                );
                state.metrics.inc(
                    "samenloop_webhook_dead_lettered_total",
                    format!("network=\"{network}\""),
                    1,
                );
            } else {
                let secs = match seen {
                    Some(t) => t.elapsed().as_secs_f64(),
                    None => (done_at - alert.at).max(0) as f64,
                };
                state.metrics.delivered(&network, secs);
            }
            (seq, Next::Done)
        }
        // Not recorded (disk full, shutting down): try again later; the receiver
        // de-duplicates on the event id if it did get it.
        Err(_) => (seq, Next::Retry(backoff(1, max_backoff_ms))),
    }
}

/// The webhook gauges for `/metrics`: pending deliveries and dead letters per network.
pub fn metrics_text(state: &State) -> String {
    let mut pending = String::new();
    let mut dead = String::new();
    for n in state.cfg.networks.iter().filter(|n| n.webhook.is_some()) {
        let count = |p: Vec<u8>| {
            KvRead::scan_prefix(&state.store, &p)
                .map(|v| v.len())
                .unwrap_or(0)
        };
        pending.push_str(&format!(
            "samenloop_webhook_pending{{network=\"{}\"}} {}\n",
            n.id,
            count(pending_prefix(&n.id))
        ));
        dead.push_str(&format!(
            "samenloop_webhook_dead_letters{{network=\"{}\"}} {}\n",
            n.id,
            count(dead_prefix(&n.id))
        ));
    }
    if pending.is_empty() {
        return String::new();
    }
    format!(
        "# HELP samenloop_webhook_pending Alerts waiting for webhook delivery\n\
         # TYPE samenloop_webhook_pending gauge\n{pending}\
         # HELP samenloop_webhook_dead_letters Alerts whose webhook delivery gave up (requeue with POST .../retry)\n\
         # TYPE samenloop_webhook_dead_letters gauge\n{dead}"
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_the_cap_with_jitter() {
        for _ in 0..200 {
            let b1 = backoff(1, 600_000);
            assert!(b1 <= Duration::from_millis(1_000) && b1 >= Duration::from_millis(50));
            let b4 = backoff(4, 600_000);
            assert!(b4 <= Duration::from_millis(8_000));
            let capped = backoff(30, 5_000);
            assert!(capped <= Duration::from_millis(5_000));
        }
        // Full jitter: spread over the whole range, not clustered at the ceiling.
        let v: Vec<_> = (0..200).map(|_| backoff(5, 600_000)).collect();
        assert!(v.iter().any(|d| *d < Duration::from_secs(8)));
        assert!(v.iter().any(|d| *d > Duration::from_secs(8)));
    }

    #[test]
    fn delivery_state_round_trips_and_an_empty_value_is_fresh() {
        assert_eq!(Delivery::decode(b"").unwrap(), Delivery::default());
        let d = Delivery {
            attempts: 3,
            first_attempt: Some(10),
            last_attempt: Some(20),
            next_attempt: Some(22),
            last_outcome: Some("500".into()),
            dead_at: None,
        };
        assert_eq!(Delivery::decode(&d.encode().unwrap()).unwrap(), d);
        assert_eq!(seq_of(&dead_key("n", 77)), Some(77));
    }
}
