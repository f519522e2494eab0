//! The end-to-end load tool behind `samenloop load`: drives a real server over HTTPS
//! on loopback with a synthetic workload and reports throughput, latency percentiles,
//! time to alert, server CPU and memory, and disk use per stored signal.
//!
//! Without a server URL it starts `samenloop serve` itself (the same binary) with a
//! configuration written for the run ([`server::write_config`]): the development keys,
//! a free port, a fresh or kept data directory, many organisations in several networks
//! and a rate limit high enough not to throttle the test. Durability is as in
//! production: every answer waits for the group commit (fsync).
//!
//! A run has phases: an optional preload through the batch API as fast as it goes,
//! then one measurement per target rate (or one closed-loop measurement), batch or
//! single-signal. Open-loop phases send on a fixed schedule and measure latency from
//! the scheduled time, so a slow server cannot hide its queue (no coordinated
//! omission). Time-to-alert probes run alongside the measurement. Nothing
//! identifying is printed: the workload is synthetic and tokens are never shown.

pub mod crash;
pub mod report;
pub mod server;
pub mod workload;

use crate::config::{Config, development_config_path};
use crate::http::auth::{Claims, Role, mint};
use report::{AlertFigures, Percentiles, Phase, Report, ServerFigures, StoreFigures};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use workload::{Network, Organisation, SignalKind, Workload};

/// How signals are sent in the measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `POST /v1/signals/batch`.
    Batch,
    /// `POST /v1/signals`, one signal per request.
    Single,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Batch => "batch",
            Mode::Single => "single",
        }
    }
}

/// Everything a run needs (the command line of `samenloop load`).
#[derive(Debug, Clone)]
pub struct Options {
    /// A running server; none: start one.
    pub server: Option<String>,
    /// CA certificate to trust (default: the development certificate).
    pub ca_cert: Option<PathBuf>,
    /// With `server`: its configuration (token keys, organisations, networks).
    pub config: Option<PathBuf>,
    /// With `server`: the process to sample CPU and memory of.
    pub server_pid: Option<u32>,
    /// With `server`: its data directory, for disk use.
    pub data_dir: Option<PathBuf>,
    /// Started server: keep the database in this directory (reused if it exists).
    pub keep_data: Option<PathBuf>,
    /// Started server: sled cache, MiB.
    pub cache_mib: u64,
    /// Started server: HTTP workers.
    pub workers: Option<usize>,
    /// Started server: organisations.
    pub organisations: usize,
    /// Started server: networks.
    pub networks: usize,
    /// Signals to store through the batch API before measuring.
    pub preload: u64,
    /// Batch requests in flight during the preload.
    pub preload_concurrency: usize,
    /// Measurement mode.
    pub mode: Mode,
    /// Signals per measurement step (when no duration is given).
    pub signals: u64,
    /// Duration of each measurement step.
    pub duration: Option<Duration>,
    /// Run the measurement workload this long first, reported as its own phase
    /// (a freshly started server on a large database reads its pages in).
    pub warmup: Option<Duration>,
    /// Target request rates, one step each; empty: one closed-loop step.
    pub rates: Vec<f64>,
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Signals per batch request.
    pub batch_size: usize,
    /// Share of signals about a person or household another organisation signalled.
    pub match_share: f64,
    /// Workload seed.
    pub seed: u64,
    /// Time-to-alert probes.
    pub probes: usize,
    /// Start a probe this often during the measurement.
    pub probe_interval: Duration,
    /// Started server: start an HTTPS webhook receiver in the load tool, give every
    /// network a webhook to it, and report the time to webhook of the probes.
    pub webhook: bool,
    /// Negotiate HTTP/2 (default HTTP/1.1 with keep-alive).
    pub http2: bool,
    /// Started server: the access log on (off only to measure what it costs).
    pub access_log: bool,
    /// Token signing key id.
    pub kid: Option<String>,
    /// Print progress to stderr.
    pub progress: bool,
}

/// A directory under the system temp dir, removed when dropped.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new() -> Result<TempDir, String> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let p =
            std::env::temp_dir().join(format!("samenloop-load-{}-{nanos:08x}", std::process::id()));
        std::fs::create_dir_all(&p).map_err(|e| format!("cannot create {}: {e}", p.display()))?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the load tool reads from the server's `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Scrape {
    pub(crate) signals: u64,
    pub(crate) matches: u64,
    size: u64,
}

struct Shared {
    client: reqwest::Client,
    base: String,
    partner_tokens: Vec<String>,
    coordinator_tokens: Vec<String>,
    workload: Mutex<Workload>,
    progress: bool,
    webhooks: Option<Arc<WebhookLog>>,
}

/// What the load tool's webhook receiver got.
#[derive(Default)]
pub(crate) struct WebhookLog {
    /// First arrival of a webhook naming each probe's contact name.
    arrivals: Mutex<std::collections::HashMap<String, Instant>>,
    /// Every (network, match handle) an alert arrived for.
    pub(crate) alerted: Mutex<std::collections::HashSet<(String, String)>>,
    pub(crate) received: AtomicU64,
    repeats: AtomicU64,
}

/// The load tool's webhook receiver (its own thread and runtime).
pub(crate) struct WebhookReceiver {
    pub(crate) url: String,
    pub(crate) log: Arc<WebhookLog>,
    handle: actix_web::dev::ServerHandle,
}

impl WebhookReceiver {
    /// Listens on a free loopback port with the development certificate and verifies
    /// with the development webhook secret.
    pub(crate) fn start() -> Result<WebhookReceiver, String> {
        use crate::alerts::receiver::{Received, serve, tls_from_files};
        let dir = development_config_path()
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let secret =
            crate::alerts::signature::WebhookSecret::read(&dir.join("webhook-secret.dev.toml"))
                .map_err(|e| e.to_string())?;
        let tls = tls_from_files(&dir.join("tls-cert.dev.pem"), &dir.join("tls-key.dev.pem"))?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| format!("webhook receiver: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("webhook receiver: {e}"))?
            .port();
        let log = Arc::new(WebhookLog::default());
        let l = log.clone();
        let on_alert = Arc::new(move |r: Received| {
            l.received.fetch_add(1, Ordering::Relaxed);
            if let (Some(n), Some(h)) = (
                r.body["network"].as_str(),
                r.body["match"]["handle"].as_str(),
            ) {
                lock(&l.alerted).insert((n.to_string(), h.to_string()));
            }
            if r.repeat {
                l.repeats.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let mut arrivals = lock(&l.arrivals);
            for part in r.body["match"]["networks"].as_array().into_iter().flatten() {
                for sig in part["signals"].as_array().into_iter().flatten() {
                    if let Some(name) = sig["contact"]["name"].as_str() {
                        if name.starts_with("Load probe ") {
                            arrivals.entry(name.to_string()).or_insert(r.at);
                        }
                    }
                }
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("load-webhook-receiver".into())
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    match serve(listener, tls, secret, 2, on_alert) {
                        Ok(server) => {
                            let _ = tx.send(Ok(server.handle()));
                            let _ = server.await;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(format!("webhook receiver: {e}")));
                        }
                    }
                })
            })
            .map_err(|e| format!("webhook receiver: {e}"))?;
        let handle = rx
            .recv()
            .map_err(|_| "the webhook receiver did not start".to_string())??;
        Ok(WebhookReceiver {
            url: format!("https://localhost:{port}/alerts"),
            log,
            handle,
        })
    }

    /// Stops the receiver (without waiting for open connections).
    pub(crate) fn stop(self) {
        drop(self.handle.stop(false));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The outcome of one request, per signal.
#[derive(Debug, Default)]
struct Outcome {
    new: u64,
    existing: u64,
    errors: Vec<(String, u64)>,
}

#[derive(Deserialize)]
struct BatchLite {
    results: Vec<ItemLite>,
}

#[derive(Deserialize)]
struct ItemLite {
    status: u16,
}

#[derive(Default)]
struct Tally {
    requests: u64,
    submitted: u64,
    new: u64,
    existing: u64,
    matching: u64,
    errors: BTreeMap<String, u64>,
    latencies_us: Vec<u64>,
    /// Second of the phase in which each request was sent (or due), parallel to
    /// `latencies_us`.
    seconds: Vec<u32>,
}

impl Tally {
    fn record(
        &mut self,
        signals: u64,
        matching: u64,
        out: Outcome,
        sent: Instant,
        phase_start: Instant,
    ) {
        let latency = sent.elapsed();
        self.requests += 1;
        self.submitted += signals;
        self.matching += matching;
        self.new += out.new;
        self.existing += out.existing;
        for (k, n) in out.errors {
            *self.errors.entry(k).or_default() += n;
        }
        self.latencies_us.push(latency.as_micros() as u64);
        self.seconds
            .push(sent.saturating_duration_since(phase_start).as_secs() as u32);
    }
}

fn transport_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else {
        "transport".into()
    }
}

/// Sends one request with `bodies` (one signal, or a batch) for organisation `org`.
async fn send(shared: &Shared, mode: Mode, org: usize, bodies: &[String]) -> Outcome {
    let n = bodies.len() as u64;
    let (url, body) = match mode {
        Mode::Single => (
            format!("{}/v1/signals", shared.base),
            bodies.first().cloned().unwrap_or_default(),
        ),
        Mode::Batch => {
            let mut b =
                String::with_capacity(16 + bodies.iter().map(|s| s.len() + 1).sum::<usize>());
            b.push_str("{\"signals\":[");
            for (i, s) in bodies.iter().enumerate() {
                if i > 0 {
                    b.push(',');
                }
                b.push_str(s);
            }
            b.push_str("]}");
            (format!("{}/v1/signals/batch", shared.base), b)
        }
    };
    let fail = |k: String| Outcome {
        errors: vec![(k, n)],
        ..Outcome::default()
    };
    let resp = match shared
        .client
        .post(url)
        .bearer_auth(&shared.partner_tokens[org])
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => return fail(transport_error(&e)),
    };
    let status = resp.status().as_u16();
    let bytes = match resp.bytes().await {
        Ok(b) => b,
        Err(e) => return fail(transport_error(&e)),
    };
    match (mode, status) {
        (Mode::Single, 201) => Outcome {
            new: 1,
            ..Outcome::default()
        },
        (Mode::Single, 200) => Outcome {
            existing: 1,
            ..Outcome::default()
        },
        (Mode::Batch, 200) => match serde_json::from_slice::<BatchLite>(&bytes) {
            Ok(answer) => {
                let mut out = Outcome::default();
                let mut errors: BTreeMap<String, u64> = BTreeMap::new();
                for item in &answer.results {
                    match item.status {
                        201 => out.new += 1,
                        200 => out.existing += 1,
                        s => *errors.entry(s.to_string()).or_default() += 1,
                    }
                }
                let missing = n.saturating_sub(answer.results.len() as u64);
                if missing > 0 {
                    *errors.entry("missing-from-answer".into()).or_default() += missing;
                }
                out.errors = errors.into_iter().collect();
                out
            }
            Err(_) => fail("unreadable-answer".into()),
        },
        (_, s) => fail(s.to_string()),
    }
}

/// Generates one request's signals: one organisation, `n` signals.
fn generate(shared: &Shared, n: usize) -> (usize, Vec<String>, u64) {
    let mut w = lock(&shared.workload);
    let org = w.pick_org();
    let mut matching = 0;
    let bodies = (0..n)
        .map(|_| {
            let p = w.next(Some(org));
            if p.kind != SignalKind::Fresh {
                matching += 1;
            }
            p.body
        })
        .collect();
    (org, bodies, matching)
}

/// How one phase is run.
#[derive(Debug, Clone)]
struct PhaseSpec {
    name: String,
    mode: Mode,
    batch_size: usize,
    concurrency: usize,
    rate: Option<f64>,
    signals: u64,
    duration: Option<Duration>,
}

/// Samples a process's resident memory every 100 ms, keeping the highest value.
struct RssSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    fn start(pid: Option<u32>) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let thread = pid.and_then(|pid| {
            let (stop, peak) = (stop.clone(), peak.clone());
            std::thread::Builder::new()
                .name("load-rss".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        if let Some((rss, _)) = server::memory(pid) {
                            peak.fetch_max(rss, Ordering::Relaxed);
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                })
                .ok()
        });
        RssSampler { stop, peak, thread }
    }

    fn finish(mut self) -> Option<u64> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
            Some(self.peak.load(Ordering::Relaxed))
        } else {
            None
        }
    }
}

fn cpu_percent(before: Option<Duration>, after: Option<Duration>, wall: f64) -> Option<f64> {
    match (before, after) {
        // CPU time comes in 10 ms ticks: too coarse for very short phases.
        (Some(b), Some(a)) if wall >= 0.5 => Some(a.saturating_sub(b).as_secs_f64() / wall * 100.0),
        _ => None,
    }
}

/// Opens up to `n` keep-alive connections before a phase, so that TLS handshakes
/// are not measured as request latency.
async fn warm_up(shared: &Arc<Shared>, n: usize) {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let s = shared.clone();
        tasks.push(tokio::spawn(async move {
            if let Ok(r) = s.client.get(format!("{}/healthz", s.base)).send().await {
                let _ = r.bytes().await;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

async fn run_phase(shared: &Arc<Shared>, spec: &PhaseSpec, pid: Option<u32>) -> Phase {
    warm_up(shared, spec.concurrency).await;
    let tally = Arc::new(Mutex::new(Tally::default()));
    let sampler = RssSampler::start(pid);
    let server_cpu0 = pid.and_then(|p| server::cpu_time(Some(p)));
    let client_cpu0 = server::cpu_time(None);
    let started = Instant::now();
    let deadline = spec.duration.map(|d| started + d);
    let progress = shared.progress.then(|| {
        let (tally, name) = (tally.clone(), spec.name.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            tick.tick().await;
            loop {
                tick.tick().await;
                let done = lock(&tally).submitted;
                let secs = started.elapsed().as_secs_f64();
                eprintln!(
                    "  {name}: {} signals in {secs:.0} s ({} signals/s)",
                    report::thousands(done),
                    report::thousands((done as f64 / secs) as u64)
                );
            }
        })
    });
    let per_request = match spec.mode {
        Mode::Single => 1,
        Mode::Batch => spec.batch_size.max(1),
    };
    match spec.rate {
        None => {
            // Closed loop: `concurrency` workers send back to back.
            let left = Arc::new(AtomicU64::new(spec.signals));
            let mut workers = Vec::new();
            for _ in 0..spec.concurrency.max(1) {
                let (shared, tally, left) = (shared.clone(), tally.clone(), left.clone());
                let mode = spec.mode;
                workers.push(tokio::spawn(async move {
                    loop {
                        let n = if let Some(d) = deadline {
                            if Instant::now() >= d {
                                break;
                            }
                            per_request
                        } else {
                            let claimed =
                                left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| {
                                    Some(l.saturating_sub(per_request as u64))
                                });
                            match claimed {
                                Ok(l) if l > 0 => (l as usize).min(per_request),
                                _ => break,
                            }
                        };
                        let (org, bodies, matching) = generate(&shared, n);
                        let sent = Instant::now();
                        let out = send(&shared, mode, org, &bodies).await;
                        lock(&tally).record(n as u64, matching, out, sent, started);
                    }
                }));
            }
            for w in workers {
                let _ = w.await;
            }
        }
        Some(rate) => {
            // Open loop: request i is due at start + i / rate, whatever happened before.
            let requests = match spec.duration {
                Some(d) => (d.as_secs_f64() * rate).round() as u64,
                None => spec.signals.div_ceil(per_request as u64),
            };
            let permits = Arc::new(tokio::sync::Semaphore::new(spec.concurrency.max(1)));
            let mut left = spec.signals;
            let mut tasks = Vec::new();
            for i in 0..requests {
                let due = started + Duration::from_secs_f64(i as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
                let n = if spec.duration.is_some() {
                    per_request
                } else {
                    let n = (left as usize).min(per_request);
                    left -= n as u64;
                    n
                };
                let (org, bodies, matching) = generate(shared, n);
                let (shared, tally, permits) = (shared.clone(), tally.clone(), permits.clone());
                let mode = spec.mode;
                tasks.push(tokio::spawn(async move {
                    let _permit = permits.acquire_owned().await;
                    let out = send(&shared, mode, org, &bodies).await;
                    lock(&tally).record(n as u64, matching, out, due, started);
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    if let Some(p) = progress {
        p.abort();
    }
    let server_cpu1 = pid.and_then(|p| server::cpu_time(Some(p)));
    let client_cpu1 = server::cpu_time(None);
    let peak = sampler.finish();
    let mem = pid.and_then(server::memory);
    let t = std::mem::take(&mut *lock(&tally));
    let accepted = t.new + t.existing;
    Phase {
        name: spec.name.clone(),
        mode: spec.mode.name().into(),
        batch_size: per_request,
        concurrency: spec.concurrency,
        target_rate: spec.rate,
        requests: t.requests,
        submitted: t.submitted,
        accepted,
        new: t.new,
        errors: t.errors,
        matching_signals: t.matching,
        seconds,
        signals_per_sec: accepted as f64 / seconds.max(1e-9),
        requests_per_sec: t.requests as f64 / seconds.max(1e-9),
        timeline: report::timeline(&t.seconds, &t.latencies_us),
        latency_ms: Percentiles::of_micros(t.latencies_us),
        server: ServerFigures {
            cpu_percent: cpu_percent(server_cpu0, server_cpu1, seconds),
            rss_bytes: mem.map(|m| m.0),
            peak_rss_bytes: peak.map(|p| p.max(mem.map(|m| m.0).unwrap_or(0))),
            hwm_bytes: mem.map(|m| m.1),
        },
        client_cpu_percent: cpu_percent(client_cpu0, client_cpu1, seconds),
        matches_formed: 0,
        store: StoreFigures::default(),
    }
}

pub(crate) async fn scrape(client: &reqwest::Client, base: &str) -> Result<Scrape, String> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .map_err(|e| format!("cannot read {base}/metrics: {e}"))?
        .text()
        .await
        .map_err(|e| format!("cannot read {base}/metrics: {e}"))?;
    let value = |name: &str| {
        text.lines().find_map(|l| {
            l.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse::<u64>()
                .ok()
        })
    };
    Ok(Scrape {
        signals: value("samenloop_store_signals").ok_or_else(|| {
            "the server's /metrics has no samenloop_store_signals (an older server?)".to_string()
        })?,
        matches: value("samenloop_store_matches").unwrap_or(0),
        size: value("samenloop_store_size_bytes").unwrap_or(0),
    })
}

fn store_figures(s: Scrape, data_dir: Option<&Path>, rss: Option<u64>) -> StoreFigures {
    let disk = data_dir.map(server::disk_usage).unwrap_or(s.size);
    let per = |b: u64| (s.signals > 0).then(|| b as f64 / s.signals as f64);
    StoreFigures {
        signals: s.signals,
        matches: s.matches,
        disk_bytes: disk,
        disk_bytes_per_signal: per(disk),
        rss_bytes_per_signal: rss.and_then(per),
    }
}

#[derive(Deserialize)]
struct PageLite {
    #[serde(default)]
    matches: Vec<MatchLite>,
    #[serde(default)]
    next_cursor: Option<String>,
}
#[derive(Deserialize)]
struct MatchLite {
    #[serde(default)]
    networks: Vec<PartLite>,
}
#[derive(Deserialize)]
struct PartLite {
    #[serde(default)]
    signals: Vec<SignalLite>,
}
#[derive(Deserialize)]
struct SignalLite {
    contact: ContactLite,
}
#[derive(Deserialize)]
struct ContactLite {
    name: String,
}

/// One time-to-alert probe: two organisations signal one new person; the time from
/// the second answer until the coordinator's list shows the match, and (with a webhook
/// receiver) until the match's webhook arrived (None: not within 10 s).
async fn probe(
    shared: Arc<Shared>,
    n: usize,
    tally: Arc<Mutex<Tally>>,
) -> (Option<Duration>, Option<Duration>) {
    let name = format!("Load probe {n}");
    let Some((answered, network)) = probe_send(&shared, &name, &tally).await else {
        return (None, None);
    };
    let listed = probe_list(&shared, &name, network, answered).await;
    let webhook = match &shared.webhooks {
        None => None,
        Some(log) => loop {
            if let Some(at) = lock(&log.arrivals).get(&name) {
                break Some(at.saturating_duration_since(answered));
            }
            if answered.elapsed() > Duration::from_secs(10) {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        },
    };
    (listed, webhook)
}

/// Sends a probe's pair; the instant of the second answer and the network (None: refused).
async fn probe_send(shared: &Shared, name: &str, tally: &Mutex<Tally>) -> Option<(Instant, usize)> {
    let (first, second) = lock(&shared.workload).probe_pair(name);
    for p in [&first, &second] {
        let sent = Instant::now();
        let out = send(shared, Mode::Single, p.org, std::slice::from_ref(&p.body)).await;
        let ok = out.errors.is_empty();
        lock(tally).record(1, 0, out, sent, sent);
        if !ok {
            return None;
        }
    }
    Some((Instant::now(), second.network))
}

/// Polls the coordinator's list until it shows the probe's match.
async fn probe_list(
    shared: &Shared,
    name: &str,
    network: usize,
    answered: Instant,
) -> Option<Duration> {
    let url = format!(
        "{}/v1/networks/{}/matches?limit=100",
        shared.base,
        lock(&shared.workload).networks()[network].id
    );
    let token = &shared.coordinator_tokens[network];
    let name = name.to_string();
    while answered.elapsed() < Duration::from_secs(10) {
        // Newest first: under heavy load more matches may have formed since the probe's,
        // so look a few pages deep before polling again.
        let mut page_url = url.clone();
        for _ in 0..10 {
            let Ok(r) = shared.client.get(&page_url).bearer_auth(token).send().await else {
                break;
            };
            let Ok(page) = r.json::<PageLite>().await else {
                break;
            };
            let seen = page.matches.iter().any(|m| {
                m.networks
                    .iter()
                    .any(|p| p.signals.iter().any(|s| s.contact.name == name))
            });
            if seen {
                return Some(answered.elapsed());
            }
            match page.next_cursor {
                Some(c) => page_url = format!("{url}&cursor={c}"),
                None => break,
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    None
}

/// Runs the probes: one every `interval` while `running` (each on its own task, so a
/// slow one does not hold up the next), then the rest back to back.
async fn run_probes(
    shared: Arc<Shared>,
    count: usize,
    interval: Duration,
    running: Arc<AtomicBool>,
    tally: Arc<Mutex<Tally>>,
) -> Vec<(Option<Duration>, Option<Duration>)> {
    let mut out = Vec::with_capacity(count);
    let mut tasks = tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut started = 0;
    while started < count {
        if running.load(Ordering::Relaxed) {
            tick.tick().await;
            if !running.load(Ordering::Relaxed) {
                continue;
            }
            started += 1;
            tasks.spawn(probe(shared.clone(), started, tally.clone()));
        } else {
            started += 1;
            out.push(probe(shared.clone(), started, tally.clone()).await);
        }
    }
    while let Some(r) = tasks.join_next().await {
        out.push(r.unwrap_or((None, None)));
    }
    out
}

pub(crate) fn token(
    cfg: &Config,
    kid: Option<&str>,
    role: Role,
    org: &str,
    networks: Vec<String>,
) -> Result<String, String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let claims = Claims {
        sub: format!("load-{org}"),
        iss: cfg.auth.issuer.clone(),
        aud: cfg.auth.audience.clone(),
        // Scale runs take hours; these are development keys on loopback.
        exp: now + 7 * 86_400,
        nbf: now.saturating_sub(60),
        iat: now,
        org: org.to_string(),
        role,
        networks,
        obo: None,
        purpose: None,
    };
    mint(cfg, kid, &claims).map_err(|e| format!("cannot mint a token: {e}"))
}

pub(crate) fn build_client(
    ca: &Path,
    http2: bool,
    server: Option<(&str, u16)>,
) -> Result<reqwest::Client, String> {
    let pem = std::fs::read(ca).map_err(|e| format!("cannot read {}: {e}", ca.display()))?;
    let cert =
        reqwest::Certificate::from_pem(&pem).map_err(|e| format!("{}: {e}", ca.display()))?;
    let mut b = reqwest::Client::builder()
        .add_root_certificate(cert)
        .tls_built_in_root_certs(false)
        .https_only(true)
        .timeout(Duration::from_secs(120))
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(600));
    if !http2 {
        b = b.http1_only();
    }
    if let Some((host, port)) = server {
        b = b.resolve(host, std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    b.build()
        .map_err(|e| format!("cannot build the HTTPS client: {e}"))
}

pub(crate) async fn wait_ready(
    client: &reqwest::Client,
    base: &str,
    progress: bool,
    spawned: &mut Option<server::Spawned>,
) -> Result<(), String> {
    let started = Instant::now();
    let mut said = false;
    loop {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        if let Some(s) = spawned.as_mut() {
            if let Some(status) = s.exited() {
                return Err(format!(
                    "the server stopped ({status}) before it was ready; its last output:\n{}",
                    s.stderr_tail(15)
                ));
            }
        }
        if started.elapsed() > Duration::from_secs(600) {
            return Err(format!("{base} was not ready within 600 s"));
        }
        if !said && started.elapsed() > Duration::from_secs(5) && progress {
            eprintln!("waiting for {base}/readyz ...");
            said = true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs the load test and returns its report.
pub fn run(opts: Options) -> Result<Report, String> {
    if opts.organisations < 2 {
        return Err("at least 2 organisations are needed for matches".into());
    }
    let tmp = TempDir::new()?;
    let data_dir = match (&opts.server, &opts.keep_data) {
        (Some(_), _) => opts.data_dir.clone(),
        (None, Some(d)) => {
            std::fs::create_dir_all(d)
                .map_err(|e| format!("cannot create {}: {e}", d.display()))?;
            Some(
                d.canonicalize()
                    .map_err(|e| format!("{}: {e}", d.display()))?,
            )
        }
        (None, None) => Some(tmp.0.join("db")),
    };
    if opts.webhook && opts.server.is_some() {
        return Err("--webhook needs a server the load tool starts (no --server)".into());
    }
    let receiver = if opts.webhook {
        Some(WebhookReceiver::start()?)
    } else {
        None
    };
    let (cfg, mut spawned, base, pid) = match &opts.server {
        Some(url) => {
            let path = opts.config.clone().unwrap_or_else(development_config_path);
            let cfg = Config::load(&path).map_err(|e| e.to_string())?;
            (
                cfg,
                None,
                url.trim_end_matches('/').to_string(),
                opts.server_pid,
            )
        }
        None => {
            let path = server::write_config(
                &tmp.0,
                &server::GeneratedConfig {
                    data_dir: data_dir.clone().unwrap_or_default(),
                    organisations: opts.organisations,
                    networks: opts.networks,
                    cache_mib: opts.cache_mib,
                    workers: opts.workers,
                    webhook_url: receiver.as_ref().map(|r| r.url.clone()),
                    access_log: opts.access_log,
                },
            )?;
            let cfg = Config::load(&path).map_err(|e| e.to_string())?;
            let exe = std::env::current_exe()
                .map_err(|e| format!("cannot find the samenloop binary: {e}"))?;
            let s = server::Spawned::start(&exe, &path, &tmp.0, Duration::from_secs(600))?;
            let base = format!("https://localhost:{}", s.port);
            let pid = s.pid();
            (cfg, Some(s), base, pid)
        }
    };
    let ca = match &opts.ca_cert {
        Some(p) => p.clone(),
        None if spawned.is_some() => cfg.resolve(&cfg.server.tls_cert),
        None => development_config_path()
            .parent()
            .map(|d| d.join("tls-cert.dev.pem"))
            .unwrap_or_default(),
    };
    let client = build_client(
        &ca,
        opts.http2,
        spawned.as_ref().map(|s| ("localhost", s.port)),
    )?;
    let networks: Vec<Network> = cfg
        .networks
        .iter()
        .map(|n| Network {
            id: n.id.clone(),
            categories: n.categories.clone(),
        })
        .collect();
    let organisations: Vec<Organisation> = cfg
        .organisations
        .iter()
        .filter(|o| o.id != server::COORDINATOR_ORG && !o.networks.is_empty())
        .map(|o| Organisation {
            id: o.id.clone(),
            networks: o
                .networks
                .iter()
                .filter_map(|n| networks.iter().position(|x| &x.id == n))
                .collect(),
        })
        .collect();
    if organisations.len() < 2 {
        return Err("the configuration needs at least 2 organisations with a network".into());
    }
    let kid = opts.kid.as_deref();
    let partner_tokens = organisations
        .iter()
        .map(|o| {
            let nets = o.networks.iter().map(|n| networks[*n].id.clone()).collect();
            token(&cfg, kid, Role::Partner, &o.id, nets)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let coordinator_tokens = networks
        .iter()
        .map(|n| {
            token(
                &cfg,
                kid,
                Role::Coordinator,
                server::COORDINATOR_ORG,
                vec![n.id.clone()],
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let key_id = cfg
        .domain
        .accepted_key_ids
        .first()
        .cloned()
        .unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let n_orgs = organisations.len();
    let n_nets = networks.len();
    let work = async {
        wait_ready(&client, &base, opts.progress, &mut spawned).await?;
        let before = scrape(&client, &base).await?;
        let shared = Arc::new(Shared {
            client,
            base: base.clone(),
            partner_tokens,
            coordinator_tokens,
            // The store's count tells runs on a kept database apart: a second run
            // gets other persons and references.
            workload: Mutex::new(Workload::new(
                opts.seed,
                before.signals,
                &key_id,
                networks,
                organisations,
                opts.match_share,
            )),
            progress: opts.progress,
            webhooks: receiver.as_ref().map(|r| r.log.clone()),
        });
        let mut report = Report {
            server_url: base.clone(),
            spawned: spawned.is_some(),
            http: if opts.http2 { "2".into() } else { "1.1".into() },
            seed: opts.seed,
            run: before.signals,
            organisations: n_orgs,
            networks: n_nets,
            match_share: opts.match_share,
            stored_before: before.signals,
            ..Report::default()
        };
        let mut specs = Vec::new();
        if opts.preload > 0 {
            specs.push(PhaseSpec {
                name: "preload".into(),
                mode: Mode::Batch,
                batch_size: opts.batch_size,
                concurrency: opts.preload_concurrency,
                rate: None,
                signals: opts.preload,
                duration: None,
            });
        }
        let measuring = opts.duration.is_some() || opts.signals > 0;
        let rates: Vec<Option<f64>> = if opts.rates.is_empty() {
            vec![None]
        } else {
            opts.rates.iter().copied().map(Some).collect()
        };
        if measuring {
            if let Some(w) = opts.warmup {
                specs.push(PhaseSpec {
                    name: "warm-up".into(),
                    mode: opts.mode,
                    batch_size: opts.batch_size,
                    concurrency: opts.concurrency,
                    rate: rates.first().copied().flatten(),
                    signals: 0,
                    duration: Some(w),
                });
            }
            for r in rates {
                specs.push(PhaseSpec {
                    name: match r {
                        Some(r) => format!("measure at {r} req/s"),
                        None => "measure".into(),
                    },
                    mode: opts.mode,
                    batch_size: opts.batch_size,
                    concurrency: opts.concurrency,
                    rate: r,
                    signals: opts.signals,
                    duration: opts.duration,
                });
            }
        }
        let probe_tally = Arc::new(Mutex::new(Tally::default()));
        let probes_running = Arc::new(AtomicBool::new(true));
        let mut probes = None;
        let mut last = before;
        for spec in &specs {
            if spec.name.starts_with("measure") && probes.is_none() {
                probes = Some(tokio::spawn(run_probes(
                    shared.clone(),
                    opts.probes,
                    opts.probe_interval,
                    probes_running.clone(),
                    probe_tally.clone(),
                )));
            }
            if opts.progress {
                eprintln!("{} ...", spec.name);
            }
            let mut phase = run_phase(&shared, spec, pid).await;
            let now = scrape(&shared.client, &shared.base).await?;
            phase.matches_formed = now.matches.saturating_sub(last.matches);
            phase.store = store_figures(now, data_dir.as_deref(), phase.server.rss_bytes);
            last = now;
            if let Some(s) = spawned.as_mut() {
                if let Some(status) = s.exited() {
                    return Err(format!(
                        "the server stopped ({status}) during {}; its last output:\n{}",
                        spec.name,
                        s.stderr_tail(15)
                    ));
                }
            }
            report.phases.push(phase);
        }
        probes_running.store(false, Ordering::Relaxed);
        let samples = match probes {
            Some(p) => p.await.unwrap_or_default(),
            None => {
                run_probes(
                    shared.clone(),
                    opts.probes,
                    opts.probe_interval,
                    probes_running.clone(),
                    probe_tally.clone(),
                )
                .await
            }
        };
        let micros = |d: &Duration| d.as_micros() as u64;
        let seen: Vec<u64> = samples
            .iter()
            .filter_map(|s| s.0.as_ref())
            .map(micros)
            .collect();
        let arrived: Vec<u64> = samples
            .iter()
            .filter_map(|s| s.1.as_ref())
            .map(micros)
            .collect();
        report.time_to_alert = AlertFigures {
            probes: samples.len(),
            seen: seen.len(),
            latency_ms: Percentiles::of_micros(seen),
            webhook: shared.webhooks.as_ref().map(|log| report::WebhookFigures {
                arrived: arrived.len(),
                before_answer: arrived.iter().filter(|&&m| m == 0).count(),
                latency_ms: Percentiles::of_micros(arrived),
                received: log.received.load(Ordering::Relaxed),
                repeats: log.repeats.load(Ordering::Relaxed),
            }),
        };
        let end = scrape(&shared.client, &shared.base).await?;
        let rss = pid.and_then(server::memory).map(|m| m.0);
        report.store = store_figures(end, data_dir.as_deref(), rss);
        report.stored_after = end.signals;
        report.matches_formed = end.matches.saturating_sub(before.matches);
        let pt = lock(&probe_tally);
        report.submitted = report.phases.iter().map(|p| p.submitted).sum::<u64>() + pt.submitted;
        report.accepted =
            report.phases.iter().map(|p| p.accepted).sum::<u64>() + pt.new + pt.existing;
        report.new = report.phases.iter().map(|p| p.new).sum::<u64>() + pt.new;
        report.errors = report.phases.iter().map(|p| p.error_count()).sum::<u64>()
            + pt.errors.values().sum::<u64>();
        Ok::<Report, String>(report)
    };
    let result = runtime.block_on(async {
        tokio::select! {
            r = work => r,
            // The server, in the same process group, gets the terminal's SIGINT too and
            // stops gracefully; returning lets the temporary directory be removed.
            _ = tokio::signal::ctrl_c() => Err("interrupted".to_string()),
        }
    });
    // Close every connection before the graceful stop, which waits for open ones.
    runtime.shutdown_timeout(Duration::from_secs(5));
    let mut report = result?;
    if let Some(mut s) = spawned.take() {
        match s.stop_or_watchdog(Duration::from_secs(120))? {
            server::StopOutcome::Graceful(took) => {
                report.server_stop_seconds = Some(took.as_secs_f64())
            }
            server::StopOutcome::Watchdog(line) => report.server_stop_hung = Some(line),
        }
    }
    if let Some(r) = receiver {
        r.stop();
    }
    drop(tmp);
    Ok(report)
}
