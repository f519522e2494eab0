//! The crash-safety harness behind `samenloop crash` (issue 7, item 2).
//!
//! It starts the real `samenloop serve` (the same binary) on a data directory,
//! submits signals from several organisations concurrently over HTTPS (single and
//! batch requests mixed, a share of them about persons and households another
//! organisation signalled, from the load workload), and after a random delay kills the
//! server with SIGKILL while requests are in flight. It restarts the server on the same
//! directory and checks over the real API, with partner and coordinator tokens:
//!
//! - every *acknowledged* signal (its request got a 2xx) is readable by its id and by
//!   its reference, with the id the answer gave and the content that was sent;
//! - every *unacknowledged* signal (its request was cut off by the kill) is either
//!   wholly present (readable by reference and by id, and a resubmission returns the
//!   same id: no duplicate) or wholly absent (a resubmission creates it); anything in
//!   between (found by reference but not by id, an error, a conflict) is a violation;
//! - `samenloop_store_signals` is at least the number acknowledged, and after the
//!   resubmissions exactly the number of signals the run generated (no duplicates, no
//!   loss);
//! - matches: every group of signals that shared a match at the end of the previous
//!   iteration still shares one after the kill, and every pair the workload built to
//!   match for certain (the same person again, submitted by another organisation, with
//!   the full key set both times) whose two signals were acknowledged shares a match.
//!
//! - alerts: every network's alerts go to a webhook receiver of the harness that lives
//!   through the kills; at the end every match each coordinator lists must have reached
//!   it at least once (within a minute);
//! - the access log: after every restart the whole chain verifies
//!   (`GET /v1/audit/verify`), and a sample of the round's acknowledged signals each
//!   has its successful `create` entry.
//!
//! Then it goes on with the next iteration on the same directory, so the store grows
//! across crashes. Older signals are re-read in a rotating window every iteration, and
//! all of them at the end. Nothing identifying is printed: the workload is synthetic,
//! contact names are `Signal {n}`, and tokens are never shown.

use super::server::{self, GeneratedConfig, Spawned, StopOutcome};
use super::workload::{Network, Organisation, SignalKind, Workload};
use super::{TempDir, build_client, scrape, token, wait_ready};
use crate::config::Config;
use crate::http::auth::Role;
use crate::synth::rng::Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Everything a crash run needs (the command line of `samenloop crash`).
#[derive(Debug, Clone)]
pub struct Options {
    /// Kill-restart-verify rounds.
    pub iterations: usize,
    /// Keep the database in this directory (reused if it exists).
    pub keep_data: Option<PathBuf>,
    /// Seed of the workload and of the kill moments.
    pub seed: u64,
    /// Shortest delay from the start of the submissions to the kill, ms.
    pub min_delay_ms: u64,
    /// Longest delay, ms.
    pub max_delay_ms: u64,
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Largest batch (batches have 2 to this many signals).
    pub max_batch: usize,
    /// Share of requests that are single submissions (the rest are batches).
    pub single_share: f64,
    /// Share of signals about a person or household another organisation signalled.
    pub match_share: f64,
    /// Submitting organisations.
    pub organisations: usize,
    /// Networks.
    pub networks: usize,
    /// Signals of earlier iterations re-read after each kill.
    pub recheck: usize,
    /// sled cache of the server, MiB.
    pub cache_mib: u64,
    /// Progress on stderr.
    pub progress: bool,
}

/// One kill-restart-verify round.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Iteration {
    /// 1, 2, ...
    pub iteration: usize,
    /// From the start of the submissions to the SIGKILL, ms.
    pub kill_after_ms: u64,
    /// Requests the client had sent and not had an answer to when the server was killed.
    pub requests_in_flight_at_kill: u64,
    /// Signals sent in this round.
    pub sent: u64,
    /// Of those, acknowledged (2xx).
    pub acknowledged: u64,
    /// Not acknowledged, found wholly present after the restart.
    pub unacknowledged_present: u64,
    /// Not acknowledged, found absent after the restart (then resubmitted).
    pub unacknowledged_absent: u64,
    /// From the restart of the process until `/readyz` answered, ms.
    pub restart_ms: u64,
    /// Violations found in this round.
    pub violations: u64,
}

/// The outcome of a crash run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CrashReport {
    /// Seed.
    pub seed: u64,
    /// Rounds completed.
    pub iterations: usize,
    /// SIGKILLs sent.
    pub kills: usize,
    /// Kills while at least one request was in flight.
    pub kills_with_requests_in_flight: usize,
    /// Requests sent.
    pub requests: u64,
    /// Signals sent.
    pub signals_sent: u64,
    /// Signals acknowledged with a 2xx.
    pub acknowledged: u64,
    /// Signals whose request got no answer (cut off by a kill).
    pub unacknowledged: u64,
    /// Of those, found wholly present after the restart.
    pub unacknowledged_present: u64,
    /// Of those, found absent after the restart.
    pub unacknowledged_absent: u64,
    /// Signal reads checked (by id and by reference, after a restart).
    pub signal_checks: u64,
    /// Signals read back in the final pass over everything.
    pub final_pass_signals: u64,
    /// Match groups of the previous round re-checked after a kill.
    pub match_groups_checked: u64,
    /// Certain match pairs (same person, two organisations) checked.
    pub match_pairs_checked: u64,
    /// Verifications of the whole access log after a restart (each must be ok).
    pub access_log_verifications: u64,
    /// Acknowledged signals whose access-log entry (`create`) was looked up.
    pub access_log_signals_checked: u64,
    /// Access-log entries at the end.
    pub access_log_entries_at_end: u64,
    /// Webhook alerts the harness's receiver got (repeats included).
    pub webhook_alerts_received: u64,
    /// Matches (per network) checked to have had at least one webhook alert.
    pub webhook_matches_checked: u64,
    /// Matches the coordinators see at the end.
    pub matches_at_end: u64,
    /// `samenloop_store_signals` at the end.
    pub stored_signals_at_end: u64,
    /// Signals in the store before the run (a kept database).
    pub stored_before: u64,
    /// Wall-clock time of the run, seconds.
    pub seconds: f64,
    /// How the last graceful stop (SIGTERM) went.
    pub final_stop: String,
    /// Violations of the guarantees (0 when all held).
    pub violations: u64,
    /// The first violations, described.
    pub failures: Vec<String>,
    /// Per round.
    pub rounds: Vec<Iteration>,
}

impl CrashReport {
    /// The report as text.
    pub fn render(&self) -> String {
        let mut s = String::new();
        s.push_str(&format!(
            "crash run: {} iterations (seed {}), {:.1} s\n",
            self.iterations, self.seed, self.seconds
        ));
        s.push_str(&format!(
            "  kills (SIGKILL):            {} ({} with requests in flight)\n",
            self.kills, self.kills_with_requests_in_flight
        ));
        s.push_str(&format!(
            "  signals sent:               {} in {} requests\n",
            self.signals_sent, self.requests
        ));
        s.push_str(&format!(
            "  acknowledged:               {} (each read back after its kill)\n",
            self.acknowledged
        ));
        s.push_str(&format!(
            "  unacknowledged:             {} ({} wholly present, {} absent, resubmitted)\n",
            self.unacknowledged, self.unacknowledged_present, self.unacknowledged_absent
        ));
        s.push_str(&format!(
            "  signals read back:          {} (by id and reference; final pass over all: {})\n",
            self.signal_checks, self.final_pass_signals
        ));
        s.push_str(&format!(
            "  match checks:               {} groups kept across a kill, {} certain pairs (cumulative)\n",
            self.match_groups_checked, self.match_pairs_checked
        ));
        s.push_str(&format!(
            "  access log:                 verified whole after {} restarts; {} acknowledged signals found in it; {} entries at the end\n",
            self.access_log_verifications, self.access_log_signals_checked, self.access_log_entries_at_end
        ));
        s.push_str(&format!(
            "  webhooks:                   {} matches checked to have reached the receiver ({} alerts received, repeats included)\n",
            self.webhook_matches_checked, self.webhook_alerts_received
        ));
        s.push_str(&format!(
            "  store at end:               {} signals ({} before), {} matches\n",
            self.stored_signals_at_end, self.stored_before, self.matches_at_end
        ));
        s.push_str(&format!(
            "  final stop (SIGTERM):       {}\n",
            self.final_stop
        ));
        s.push_str(&format!(
            "  violations:                 {}\n",
            self.violations
        ));
        for f in &self.failures {
            s.push_str(&format!("    - {f}\n"));
        }
        s
    }
}

/// Most violations described in the report.
const MAX_FAILURES: usize = 50;

/// What the harness knows about one generated signal.
#[derive(Debug, Clone)]
struct Entry {
    org: usize,
    network: usize,
    reference: String,
    body: String,
    kind: SignalKind,
    partner: Option<u64>,
    exact: bool,
    /// The id a 2xx answer gave.
    acked: Option<String>,
    /// The id it is stored under, once known (acknowledged or verified).
    stored: Option<String>,
    /// The round it was sent in.
    round: usize,
}

/// What a request's content says, to compare with what the server gives back.
#[derive(Debug, Deserialize)]
struct SentBody {
    network: String,
    #[serde(default)]
    category: Option<String>,
    contact: ContactLite,
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
struct ContactLite {
    name: String,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ViewLite {
    id: String,
    reference: String,
    network: String,
    #[serde(default)]
    category: Option<String>,
    contact: ContactLite,
    status: String,
}

#[derive(Debug, Deserialize)]
struct BatchAnswerLite {
    results: Vec<BatchItemLite>,
}

#[derive(Debug, Deserialize)]
struct BatchItemLite {
    index: usize,
    status: u16,
    #[serde(default)]
    signal: Option<ViewLite>,
}

#[derive(Debug, Deserialize)]
struct PageLite {
    #[serde(default)]
    matches: Vec<MatchLite>,
    #[serde(default)]
    next_cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
struct MatchLite {
    handle: String,
    #[serde(default)]
    networks: Vec<PartLite>,
}

#[derive(Debug, Deserialize)]
struct PartLite {
    #[serde(default)]
    signals: Option<Vec<InvolvedLite>>,
}

#[derive(Debug, Deserialize)]
struct InvolvedLite {
    contact: ContactLite,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Violations found so far.
#[derive(Default)]
struct Violations {
    count: u64,
    details: Vec<String>,
}

impl Violations {
    fn add(&mut self, detail: String) {
        self.count += 1;
        if self.details.len() < MAX_FAILURES {
            self.details.push(detail);
        }
    }
}

/// State shared by the submitting tasks.
struct Submit {
    client: reqwest::Client,
    base: String,
    tokens: Arc<Vec<String>>,
    workload: Arc<Mutex<Workload>>,
    entries: Arc<Mutex<Vec<Entry>>>,
    rng: Mutex<Rng>,
    stop: AtomicBool,
    in_flight: AtomicU64,
    requests: AtomicU64,
    round: usize,
    single_share: f64,
    max_batch: usize,
    violations: Arc<Mutex<Violations>>,
}

/// Sends requests until `stop`; records every acknowledged signal.
async fn submitter(s: Arc<Submit>) {
    while !s.stop.load(Ordering::SeqCst) {
        let n = {
            let mut r = lock(&s.rng);
            if s.max_batch < 2 || r.chance(s.single_share) {
                1
            } else {
                r.range(2, s.max_batch as i64) as usize
            }
        };
        let single = n == 1;
        // Generate and register before sending: a signal whose request is cut off
        // must still be checked.
        let (org, first_seq, bodies) = {
            let mut w = lock(&s.workload);
            let mut entries = lock(&s.entries);
            let org = w.pick_org();
            let mut bodies = Vec::with_capacity(n);
            let mut first = 0;
            for i in 0..n {
                let p = w.next(Some(org));
                if i == 0 {
                    first = p.seq;
                }
                debug_assert_eq!(p.seq as usize, entries.len() + 1);
                bodies.push(p.body.clone());
                entries.push(Entry {
                    org,
                    network: p.network,
                    reference: p.reference,
                    body: p.body,
                    kind: p.kind,
                    partner: p.partner,
                    exact: p.exact,
                    acked: None,
                    stored: None,
                    round: s.round,
                });
            }
            (org, first, bodies)
        };
        let (url, body) = if single {
            (format!("{}/v1/signals", s.base), bodies[0].clone())
        } else {
            (
                format!("{}/v1/signals/batch", s.base),
                format!("{{\"signals\":[{}]}}", bodies.join(",")),
            )
        };
        s.requests.fetch_add(1, Ordering::Relaxed);
        s.in_flight.fetch_add(1, Ordering::SeqCst);
        let answer = async {
            let r = s
                .client
                .post(url)
                .bearer_auth(&s.tokens[org])
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await?;
            let status = r.status().as_u16();
            let bytes = r.bytes().await?;
            Ok::<_, reqwest::Error>((status, bytes))
        }
        .await;
        s.in_flight.fetch_sub(1, Ordering::SeqCst);
        let (status, bytes) = match answer {
            Ok(a) => a,
            Err(_) => {
                // Cut off (or the server is gone): the signals stay unacknowledged.
                if !s.stop.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                continue;
            }
        };
        let mut acks: Vec<(u64, String)> = Vec::new();
        let mut refused: Vec<(u64, String)> = Vec::new();
        match (single, status) {
            (true, 200 | 201) => match serde_json::from_slice::<ViewLite>(&bytes) {
                Ok(v) => acks.push((first_seq, v.id)),
                Err(e) => refused.push((first_seq, format!("unreadable {status} answer: {e}"))),
            },
            (false, 200) => match serde_json::from_slice::<BatchAnswerLite>(&bytes) {
                Ok(a) => {
                    let mut answered = vec![false; n];
                    for item in a.results {
                        let seq = first_seq + item.index as u64;
                        if item.index >= n {
                            refused.push((seq, "batch answer index out of range".into()));
                            continue;
                        }
                        answered[item.index] = true;
                        match (item.status, item.signal) {
                            (200 | 201, Some(v)) => acks.push((seq, v.id)),
                            (st, _) => refused.push((seq, format!("batch item status {st}"))),
                        }
                    }
                    for (i, a) in answered.iter().enumerate() {
                        if !a {
                            refused
                                .push((first_seq + i as u64, "missing from batch answer".into()));
                        }
                    }
                }
                Err(e) => {
                    for i in 0..n {
                        refused.push((
                            first_seq + i as u64,
                            format!("unreadable batch answer: {e}"),
                        ));
                    }
                }
            },
            (_, st) => {
                for i in 0..n {
                    refused.push((first_seq + i as u64, format!("answer status {st}")));
                }
            }
        }
        {
            let mut entries = lock(&s.entries);
            for (seq, id) in acks {
                let e = &mut entries[seq as usize - 1];
                e.stored = Some(id.clone());
                e.acked = Some(id);
            }
        }
        if !refused.is_empty() {
            let mut v = lock(&s.violations);
            for (seq, why) in refused {
                v.add(format!(
                    "round {}: signal {seq} refused before the kill: {why}",
                    s.round
                ));
            }
        }
    }
}

/// The API as one round sees it after a restart.
struct Api {
    client: reqwest::Client,
    base: String,
    tokens: Arc<Vec<String>>,
    networks: Vec<String>,
}

/// How a signal looked when read back.
enum Read {
    Found(ViewLite),
    NotFound,
    Other(String),
}

impl Api {
    async fn get(&self, org: usize, url: String) -> Read {
        let r = match self
            .client
            .get(url)
            .bearer_auth(&self.tokens[org])
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return Read::Other(format!("transport error: {e}")),
        };
        let status = r.status().as_u16();
        match status {
            200 => match r.json::<ViewLite>().await {
                Ok(v) => Read::Found(v),
                Err(e) => Read::Other(format!("unreadable answer: {e}")),
            },
            404 => Read::NotFound,
            s => Read::Other(format!("status {s}")),
        }
    }

    async fn by_id(&self, org: usize, id: &str) -> Read {
        self.get(org, format!("{}/v1/signals/{id}", self.base))
            .await
    }

    async fn by_reference(&self, e: &Entry) -> Read {
        self.get(
            e.org,
            format!(
                "{}/v1/signals?network={}&reference={}",
                self.base, self.networks[e.network], e.reference
            ),
        )
        .await
    }

    /// Resubmits a signal: `(status, id)`.
    async fn resubmit(&self, e: &Entry) -> Result<(u16, Option<String>), String> {
        let r = self
            .client
            .post(format!("{}/v1/signals", self.base))
            .bearer_auth(&self.tokens[e.org])
            .header("content-type", "application/json")
            .body(e.body.clone())
            .send()
            .await
            .map_err(|err| format!("transport error: {err}"))?;
        let status = r.status().as_u16();
        let id = r.json::<ViewLite>().await.ok().map(|v| v.id);
        Ok((status, id))
    }
}

/// Compares what the server holds with what was sent.
fn same_content(e: &Entry, v: &ViewLite, networks: &[String]) -> Result<(), String> {
    let sent: SentBody =
        serde_json::from_str(&e.body).map_err(|err| format!("harness: bad body: {err}"))?;
    let mut diff = Vec::new();
    if v.reference != e.reference {
        diff.push("reference");
    }
    if v.network != sent.network || v.network != networks[e.network] {
        diff.push("network");
    }
    if v.category != sent.category {
        diff.push("category");
    }
    if v.contact != sent.contact {
        diff.push("contact");
    }
    if v.status != "active" {
        diff.push("status");
    }
    if diff.is_empty() {
        Ok(())
    } else {
        Err(format!("differs in {}", diff.join(", ")))
    }
}

/// Checks a signal stored under `id`: by id and by reference, same id and content.
async fn check_stored(api: &Api, seq: u64, e: &Entry, id: &str, what: &str) -> Result<(), String> {
    let tag = format!("signal {seq} ({what} as {id}, round {})", e.round);
    match api.by_id(e.org, id).await {
        Read::Found(v) => {
            if v.id != id {
                return Err(format!("{tag}: read by id gives id {}", v.id));
            }
            same_content(e, &v, &api.networks).map_err(|d| format!("{tag}: read by id {d}"))?;
        }
        Read::NotFound => return Err(format!("{tag}: not found by id")),
        Read::Other(why) => return Err(format!("{tag}: read by id: {why}")),
    }
    match api.by_reference(e).await {
        Read::Found(v) if v.id == id => {
            same_content(e, &v, &api.networks).map_err(|d| format!("{tag}: by reference {d}"))
        }
        Read::Found(v) => Err(format!("{tag}: its reference gives id {}", v.id)),
        Read::NotFound => Err(format!("{tag}: not found by reference")),
        Read::Other(why) => Err(format!("{tag}: read by reference: {why}")),
    }
}

/// Checks an unacknowledged signal: wholly present or wholly absent; then makes sure
/// it is stored. `Ok((present, id))`.
async fn check_unacknowledged(api: &Api, seq: u64, e: &Entry) -> Result<(bool, String), String> {
    let tag = format!("unacknowledged signal {seq} (round {})", e.round);
    match api.by_reference(e).await {
        Read::Found(v) => {
            let id = v.id.clone();
            same_content(e, &v, &api.networks)
                .map_err(|d| format!("{tag}: found by reference but {d}"))?;
            match api.by_id(e.org, &id).await {
                Read::Found(w) if w.id == id => {}
                Read::Found(w) => {
                    return Err(format!("{tag}: by reference {id}, by id gives {}", w.id));
                }
                Read::NotFound => {
                    return Err(format!(
                        "{tag}: half-written: found by reference as {id}, not by id"
                    ));
                }
                Read::Other(why) => return Err(format!("{tag}: read by id {id}: {why}")),
            }
            match api.resubmit(e).await? {
                (200, Some(again)) if again == id => Ok((true, id)),
                (st, again) => Err(format!(
                    "{tag}: present as {id}, but resubmitting gave status {st} id {}",
                    again.unwrap_or_else(|| "-".into())
                )),
            }
        }
        Read::NotFound => match api.resubmit(e).await? {
            (201, Some(id)) => check_stored(api, seq, e, &id, "resubmitted")
                .await
                .map(|()| (false, id)),
            (st, id) => Err(format!(
                "{tag}: half-written: not found by reference, but resubmitting gave status {st} id {}",
                id.unwrap_or_else(|| "-".into())
            )),
        },
        Read::Other(why) => Err(format!("{tag}: read by reference: {why}")),
    }
}

/// Work for the checking tasks.
enum Job {
    Stored(u64, String, &'static str),
    Unacknowledged(u64),
}

/// Outcome of one job.
enum Done {
    Checked,
    Present(u64, String),
    Absent(u64, String),
    Failed(String),
}

/// Runs the jobs with `concurrency` tasks.
async fn run_jobs(
    api: &Arc<Api>,
    entries: &Arc<Mutex<Vec<Entry>>>,
    jobs: Vec<Job>,
    concurrency: usize,
) -> Vec<Done> {
    let jobs = Arc::new(Mutex::new(jobs));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (api, entries, jobs) = (api.clone(), entries.clone(), jobs.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let Some(job) = lock(&jobs).pop() else { break };
                let seq = match &job {
                    Job::Stored(s, _, _) | Job::Unacknowledged(s) => *s,
                };
                let e = lock(&entries)[seq as usize - 1].clone();
                out.push(match job {
                    Job::Stored(_, id, what) => {
                        match check_stored(&api, seq, &e, &id, what).await {
                            Ok(()) => Done::Checked,
                            Err(f) => Done::Failed(f),
                        }
                    }
                    Job::Unacknowledged(_) => match check_unacknowledged(&api, seq, &e).await {
                        Ok((true, id)) => Done::Present(seq, id),
                        Ok((false, id)) => Done::Absent(seq, id),
                        Err(f) => Done::Failed(f),
                    },
                });
            }
            out
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        match t.await {
            Ok(o) => all.extend(o),
            Err(e) => all.push(Done::Failed(format!("harness: a check task failed: {e}"))),
        }
    }
    all
}

/// The matches all coordinators see, each as the sorted signal numbers it holds.
async fn matches(api: &Api, coordinator: &str) -> Result<Vec<Vec<u64>>, String> {
    let mut seen: HashMap<String, Vec<u64>> = HashMap::new();
    for n in &api.networks {
        let url = format!("{}/v1/networks/{n}/matches?limit=500", api.base);
        let mut page_url = url.clone();
        loop {
            let r = api
                .client
                .get(&page_url)
                .bearer_auth(coordinator)
                .send()
                .await
                .map_err(|e| format!("cannot list the matches of {n}: {e}"))?;
            let status = r.status();
            if !status.is_success() {
                return Err(format!("listing the matches of {n}: status {status}"));
            }
            let page: PageLite = r
                .json()
                .await
                .map_err(|e| format!("the match list of {n} is unreadable: {e}"))?;
            for m in page.matches {
                let mut signals: Vec<u64> = m
                    .networks
                    .iter()
                    .flat_map(|p| p.signals.iter().flatten())
                    .filter_map(|s| Workload::parse_contact_tag(&s.contact.name))
                    .collect();
                signals.sort_unstable();
                signals.dedup();
                seen.insert(m.handle, signals);
            }
            match page.next_cursor {
                Some(c) => page_url = format!("{url}&cursor={c}"),
                None => break,
            }
        }
    }
    Ok(seen.into_values().collect())
}

/// For each signal, the matches (indexes into `groups`) it is in.
fn index_matches(groups: &[Vec<u64>]) -> HashMap<u64, Vec<usize>> {
    let mut idx: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, g) in groups.iter().enumerate() {
        for s in g {
            idx.entry(*s).or_default().push(i);
        }
    }
    idx
}

/// Whether one match holds all of `signals`.
fn together(groups: &[Vec<u64>], idx: &HashMap<u64, Vec<usize>>, signals: &[u64]) -> bool {
    let Some(first) = signals.first() else {
        return true;
    };
    idx.get(first).is_some_and(|ms| {
        ms.iter()
            .any(|m| signals.iter().all(|s| groups[*m].binary_search(s).is_ok()))
    })
}

/// Pairs the workload built to match for certain: the same person again, by another
/// organisation, with the full key set both times. `stored_only`: both must be
/// stored; otherwise both acknowledged.
fn certain_pairs(entries: &[Entry], acknowledged_only: bool) -> Vec<(u64, u64)> {
    let ok = |e: &Entry| {
        if acknowledged_only {
            e.acked.is_some()
        } else {
            e.stored.is_some()
        }
    };
    entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            let p = e.partner?;
            let pe = entries.get(p as usize - 1)?;
            (e.kind == SignalKind::SamePerson && e.exact && pe.exact && ok(e) && ok(pe))
                .then_some((p, i as u64 + 1))
        })
        .collect()
}

/// Checks the matches against the previous round's groups and the certain pairs.
fn check_matches(
    groups: &[Vec<u64>],
    previous: &[Vec<u64>],
    pairs: &[(u64, u64)],
    when: &str,
    report: &mut CrashReport,
    v: &mut Violations,
) {
    let idx = index_matches(groups);
    for g in previous.iter().filter(|g| g.len() >= 2) {
        report.match_groups_checked += 1;
        if !together(groups, &idx, g) {
            v.add(format!(
                "{when}: signals {g:?} shared a match before the kill and no longer do"
            ));
        }
    }
    for (a, b) in pairs {
        report.match_pairs_checked += 1;
        let mut pair = [*a, *b];
        pair.sort_unstable();
        if !together(groups, &idx, &pair) {
            v.add(format!(
                "{when}: signals {a} and {b} (the same person, two organisations) share no match"
            ));
        }
    }
}

/// How long the end of a run waits for the last webhooks.
const WEBHOOK_WAIT: Duration = Duration::from_secs(60);

/// Every (network, match handle) the coordinators see.
async fn match_handles(
    api: &Api,
    coordinator: &str,
) -> Result<std::collections::BTreeSet<(String, String)>, String> {
    #[derive(Deserialize)]
    struct Page {
        matches: Vec<Handle>,
        next_cursor: Option<String>,
    }
    #[derive(Deserialize)]
    struct Handle {
        handle: String,
    }
    let mut out = std::collections::BTreeSet::new();
    for n in &api.networks {
        let url = format!("{}/v1/networks/{n}/matches?limit=500", api.base);
        let mut page_url = url.clone();
        loop {
            let r = api
                .client
                .get(&page_url)
                .bearer_auth(coordinator)
                .send()
                .await
                .map_err(|e| format!("cannot list the matches of {n}: {e}"))?;
            if !r.status().is_success() {
                return Err(format!("listing the matches of {n}: status {}", r.status()));
            }
            let page: Page = r
                .json()
                .await
                .map_err(|e| format!("the match list of {n} is unreadable: {e}"))?;
            out.extend(page.matches.into_iter().map(|m| (n.clone(), m.handle)));
            match page.next_cursor {
                Some(c) => page_url = format!("{url}&cursor={c}"),
                None => break,
            }
        }
    }
    Ok(out)
}

/// Acknowledged signals of a round whose access-log entry is looked up at most.
const LOG_SAMPLE: usize = 20;

/// The access-log checks after a restart: `GET /v1/audit/verify` must be ok, and each
/// of (a sample of) `acked` must be named by a successful `create` entry. Returns the
/// failures.
async fn check_access_log(
    api: &Api,
    officer: &str,
    acked: &[String],
    report: &mut CrashReport,
) -> Vec<String> {
    let mut out = Vec::new();
    let get = |path: String| {
        api.client
            .get(format!("{}{path}", api.base))
            .bearer_auth(officer)
            .send()
    };
    match get("/v1/audit/verify".into()).await {
        Ok(r) if r.status().is_success() => match r.json::<serde_json::Value>().await {
            Ok(v) if v["ok"] == true => {
                report.access_log_verifications += 1;
                report.access_log_entries_at_end = v["last_seq"].as_u64().unwrap_or(0);
            }
            Ok(v) => out.push(format!(
                "the access log does not verify after the restart: {}",
                v["broken"]
            )),
            Err(e) => out.push(format!(
                "the access-log verification answer is not JSON: {e}"
            )),
        },
        Ok(r) => out.push(format!("GET /v1/audit/verify answered {}", r.status())),
        Err(e) => out.push(format!("GET /v1/audit/verify failed: {e}")),
    }
    let step = (acked.len() / LOG_SAMPLE).max(1);
    for id in acked.iter().step_by(step).take(LOG_SAMPLE) {
        report.access_log_signals_checked += 1;
        let found = match get(format!(
            "/v1/audit/entries?object={id}&action=create&outcome=success"
        ))
        .await
        {
            Ok(r) if r.status().is_success() => r
                .json::<serde_json::Value>()
                .await
                .ok()
                .and_then(|v| v["entries"].as_array().map(|a| !a.is_empty())),
            _ => None,
        };
        match found {
            Some(true) => {}
            Some(false) => out.push(format!(
                "acknowledged signal {id} has no create entry in the access log"
            )),
            None => out.push(format!(
                "the access-log entries of signal {id} could not be read"
            )),
        }
    }
    out
}

/// Runs the crash harness and returns its report (violations are in the report).
pub fn run(opts: Options) -> Result<CrashReport, String> {
    if opts.organisations < 2 {
        return Err("at least 2 organisations are needed for matches".into());
    }
    if opts.min_delay_ms > opts.max_delay_ms {
        return Err("the shortest delay is longer than the longest".into());
    }
    let started = Instant::now();
    let tmp = TempDir::new()?;
    let data_dir = match &opts.keep_data {
        Some(d) => {
            std::fs::create_dir_all(d)
                .map_err(|e| format!("cannot create {}: {e}", d.display()))?;
            d.canonicalize()
                .map_err(|e| format!("{}: {e}", d.display()))?
        }
        None => tmp.0.join("db"),
    };
    // Every network's alerts go to a receiver that outlives the kills: at the end each
    // match must have reached it at least once.
    let receiver = super::WebhookReceiver::start()?;
    let config_path = server::write_config(
        &tmp.0,
        &GeneratedConfig {
            data_dir,
            organisations: opts.organisations,
            networks: opts.networks,
            cache_mib: opts.cache_mib,
            workers: None,
            webhook_url: Some(receiver.url.clone()),
            access_log: true,
        },
    )?;
    let cfg = Config::load(&config_path).map_err(|e| e.to_string())?;
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot find the samenloop binary: {e}"))?;
    let ca = cfg.resolve(&cfg.server.tls_cert);
    let networks: Vec<Network> = cfg
        .networks
        .iter()
        .map(|n| Network {
            id: n.id.clone(),
            categories: n.categories.clone(),
        })
        .collect();
    let network_ids: Vec<String> = networks.iter().map(|n| n.id.clone()).collect();
    let organisations: Vec<Organisation> = cfg
        .organisations
        .iter()
        .filter(|o| o.id != server::COORDINATOR_ORG && !o.networks.is_empty())
        .map(|o| Organisation {
            id: o.id.clone(),
            networks: o
                .networks
                .iter()
                .filter_map(|n| network_ids.iter().position(|x| x == n))
                .collect(),
        })
        .collect();
    let tokens = Arc::new(
        organisations
            .iter()
            .map(|o| {
                let nets = o.networks.iter().map(|n| network_ids[*n].clone()).collect();
                token(&cfg, None, Role::Partner, &o.id, nets)
            })
            .collect::<Result<Vec<_>, _>>()?,
    );
    let coordinator = token(
        &cfg,
        None,
        Role::Coordinator,
        server::COORDINATOR_ORG,
        network_ids.clone(),
    )?;
    let privacy_officer = token(
        &cfg,
        None,
        Role::PrivacyOfficer,
        server::COORDINATOR_ORG,
        network_ids.clone(),
    )?;
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
    let mut rng = Rng::new(opts.seed, 0xC0A5);
    let mut report = CrashReport {
        seed: opts.seed,
        ..CrashReport::default()
    };
    let violations = Arc::new(Mutex::new(Violations::default()));
    let entries: Arc<Mutex<Vec<Entry>>> = Arc::new(Mutex::new(Vec::new()));
    let mut spawned: Option<Spawned> = None;
    let progress = opts.progress;

    let start_server = |spawned: &mut Option<Spawned>| -> Result<Api, String> {
        let s = Spawned::start(&exe, &config_path, &tmp.0, Duration::from_secs(600))?;
        let client = build_client(&ca, false, Some(("localhost", s.port)))?;
        let base = format!("https://localhost:{}", s.port);
        *spawned = Some(s);
        Ok(Api {
            client,
            base,
            tokens: tokens.clone(),
            networks: network_ids.clone(),
        })
    };

    let work = async {
        let mut api = Arc::new(start_server(&mut spawned)?);
        wait_ready(&api.client, &api.base, progress, &mut spawned).await?;
        let before = scrape(&api.client, &api.base).await?;
        report.stored_before = before.signals;
        // Matches of a kept database were alerted to an earlier run's receiver.
        let handles_before = match_handles(&api, &coordinator).await?;
        let mut workload = Workload::new(
            opts.seed,
            before.signals,
            &key_id,
            networks.clone(),
            organisations.clone(),
            opts.match_share,
        );
        workload.tag_contacts(true);
        let workload = Arc::new(Mutex::new(workload));
        let mut previous_groups: Vec<Vec<u64>> = Vec::new();
        let mut recheck_cursor = 0usize;
        for round in 1..=opts.iterations {
            let mut it = Iteration {
                iteration: round,
                ..Iteration::default()
            };
            let first_new = lock(&entries).len();
            let v_before = lock(&violations).count;
            // 1. Load, then SIGKILL at a random moment.
            let delay = opts.min_delay_ms + rng.below(opts.max_delay_ms - opts.min_delay_ms + 1);
            let submit = Arc::new(Submit {
                client: api.client.clone(),
                base: api.base.clone(),
                tokens: tokens.clone(),
                workload: workload.clone(),
                entries: entries.clone(),
                rng: Mutex::new(Rng::new(opts.seed, 0x5EED_0000 + round as u64)),
                stop: AtomicBool::new(false),
                in_flight: AtomicU64::new(0),
                requests: AtomicU64::new(0),
                round,
                single_share: opts.single_share,
                max_batch: opts.max_batch,
                violations: violations.clone(),
            });
            let load_start = Instant::now();
            let tasks: Vec<_> = (0..opts.concurrency.max(1))
                .map(|_| tokio::spawn(submitter(submit.clone())))
                .collect();
            tokio::time::sleep(Duration::from_millis(delay)).await;
            let s = spawned
                .as_mut()
                .ok_or_else(|| "harness: no server to kill".to_string())?;
            if let Some(status) = s.exited() {
                return Err(format!(
                    "the server stopped by itself ({status}) in round {round}; its last output:\n{}",
                    s.stderr_tail(15)
                ));
            }
            let in_flight = submit.in_flight.load(Ordering::SeqCst);
            s.kill()?;
            it.kill_after_ms = load_start.elapsed().as_millis() as u64;
            submit.stop.store(true, Ordering::SeqCst);
            spawned = None;
            it.requests_in_flight_at_kill = in_flight;
            report.kills += 1;
            if in_flight > 0 {
                report.kills_with_requests_in_flight += 1;
            }
            for t in tasks {
                let _ = t.await;
            }
            report.requests += submit.requests.load(Ordering::Relaxed);
            drop(submit);

            // 2. Restart on the same directory.
            let restart = Instant::now();
            api = Arc::new(start_server(&mut spawned)?);
            wait_ready(&api.client, &api.base, progress, &mut spawned).await?;
            it.restart_ms = restart.elapsed().as_millis() as u64;

            // 2b. The access log came through the kill: the whole chain verifies, and
            // the acknowledged signals of this round (a sample) have their entry.
            {
                let acked: Vec<String> = lock(&entries)
                    .iter()
                    .skip(first_new)
                    .filter_map(|e| e.acked.clone())
                    .collect();
                let failures = check_access_log(&api, &privacy_officer, &acked, &mut report).await;
                let mut v = lock(&violations);
                for f in failures {
                    v.add(format!("round {round}: {f}"));
                }
            }

            // 3. Matches as they came through the kill, before anything is resubmitted.
            let after_kill = scrape(&api.client, &api.base).await?;
            let (jobs, acked_total) = {
                let es = lock(&entries);
                let mut jobs = Vec::new();
                for (i, e) in es.iter().enumerate().skip(first_new) {
                    let seq = i as u64 + 1;
                    it.sent += 1;
                    match &e.acked {
                        Some(id) => {
                            it.acknowledged += 1;
                            jobs.push(Job::Stored(seq, id.clone(), "acknowledged"));
                        }
                        None => jobs.push(Job::Unacknowledged(seq)),
                    }
                }
                // Earlier rounds: a rotating window.
                let older = first_new;
                let n = opts.recheck.min(older);
                for k in 0..n {
                    let i = (recheck_cursor + k) % older;
                    if let Some(id) = &es[i].stored {
                        let what = if es[i].acked.is_some() {
                            "acknowledged"
                        } else {
                            "stored"
                        };
                        jobs.push(Job::Stored(i as u64 + 1, id.clone(), what));
                    }
                }
                if older > 0 {
                    recheck_cursor = (recheck_cursor + n) % older;
                }
                let acked = es.iter().filter(|e| e.acked.is_some()).count() as u64;
                (jobs, acked)
            };
            if after_kill.signals < before.signals + acked_total {
                lock(&violations).add(format!(
                    "round {round}: after the kill the store counts {} signals, fewer than the {} acknowledged",
                    after_kill.signals - before.signals.min(after_kill.signals),
                    acked_total
                ));
            }
            let groups = matches(&api, &coordinator).await?;
            {
                let pairs = certain_pairs(&lock(&entries), true);
                let mut v = lock(&violations);
                check_matches(
                    &groups,
                    &previous_groups,
                    &pairs,
                    &format!("round {round}, after the kill"),
                    &mut report,
                    &mut v,
                );
            }

            // 4. Signals: acknowledged ones intact, unacknowledged ones all or nothing.
            report.signal_checks += jobs.len() as u64;
            let done = run_jobs(&api, &entries, jobs, opts.concurrency.clamp(1, 16)).await;
            {
                let mut es = lock(&entries);
                let mut v = lock(&violations);
                for d in done {
                    match d {
                        Done::Checked => {}
                        Done::Present(seq, id) => {
                            it.unacknowledged_present += 1;
                            es[seq as usize - 1].stored = Some(id);
                        }
                        Done::Absent(seq, id) => {
                            it.unacknowledged_absent += 1;
                            es[seq as usize - 1].stored = Some(id);
                        }
                        Done::Failed(f) => v.add(format!("round {round}: {f}")),
                    }
                }
            }

            // 5. Now every generated signal is stored once: the count says so exactly.
            let now = scrape(&api.client, &api.base).await?;
            let expected = before.signals + lock(&entries).len() as u64;
            if now.signals != expected {
                lock(&violations).add(format!(
                    "round {round}: the store counts {} signals, expected {expected} (every signal of the run once)",
                    now.signals
                ));
            }
            let groups = matches(&api, &coordinator).await?;
            {
                let pairs = certain_pairs(&lock(&entries), false);
                let mut v = lock(&violations);
                check_matches(
                    &groups,
                    &[],
                    &pairs,
                    &format!("round {round}, after resubmission"),
                    &mut report,
                    &mut v,
                );
            }
            previous_groups = groups;

            it.violations = lock(&violations).count - v_before;
            report.signals_sent += it.sent;
            report.acknowledged += it.acknowledged;
            report.unacknowledged += it.sent - it.acknowledged;
            report.unacknowledged_present += it.unacknowledged_present;
            report.unacknowledged_absent += it.unacknowledged_absent;
            report.iterations = round;
            if progress {
                eprintln!(
                    "round {round}/{}: killed after {} ms with {} requests in flight; {} signals sent, {} acknowledged, {} unacknowledged ({} present, {} absent); restart {} ms; {} violations",
                    opts.iterations,
                    it.kill_after_ms,
                    it.requests_in_flight_at_kill,
                    it.sent,
                    it.acknowledged,
                    it.sent - it.acknowledged,
                    it.unacknowledged_present,
                    it.unacknowledged_absent,
                    it.restart_ms,
                    it.violations
                );
            }
            report.rounds.push(it);
        }

        // 6. A last pass over every signal of the run.
        let jobs: Vec<Job> = lock(&entries)
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                e.stored
                    .clone()
                    .map(|id| Job::Stored(i as u64 + 1, id, "stored"))
            })
            .collect();
        report.final_pass_signals = jobs.len() as u64;
        report.signal_checks += jobs.len() as u64;
        if progress {
            eprintln!("final pass over {} signals ...", jobs.len());
        }
        for d in run_jobs(&api, &entries, jobs, opts.concurrency.clamp(1, 16)).await {
            if let Done::Failed(f) = d {
                lock(&violations).add(format!("final pass: {f}"));
            }
        }
        let end = scrape(&api.client, &api.base).await?;
        report.stored_signals_at_end = end.signals;
        report.matches_at_end = previous_groups.len() as u64;

        // 7. Every match of every network reached the webhook receiver at least once
        // (alerts wait in the outbox through the kills and are sent after the restart).
        let handles: Vec<(String, String)> = match_handles(&api, &coordinator)
            .await?
            .into_iter()
            .filter(|h| !handles_before.contains(h))
            .collect();
        report.webhook_matches_checked = handles.len() as u64;
        let deadline = Instant::now() + WEBHOOK_WAIT;
        let missing = loop {
            let missing: Vec<(String, String)> = {
                let got = super::lock(&receiver.log.alerted);
                handles
                    .iter()
                    .filter(|h| !got.contains(*h))
                    .cloned()
                    .collect()
            };
            if missing.is_empty() || Instant::now() >= deadline {
                break missing;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        report.webhook_alerts_received = receiver.log.received.load(Ordering::Relaxed);
        let mut v = lock(&violations);
        for (n, h) in missing {
            v.add(format!(
                "match {h} of network {n} never reached the webhook receiver (waited {} s)",
                WEBHOOK_WAIT.as_secs()
            ));
        }
        drop(v);
        Ok::<(), String>(())
    };
    let result = runtime.block_on(async {
        tokio::select! {
            r = work => r,
            _ = tokio::signal::ctrl_c() => Err("interrupted".to_string()),
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
    if let Some(mut s) = spawned.take() {
        match s.stop_or_watchdog(Duration::from_secs(120)) {
            Ok(StopOutcome::Graceful(took)) => {
                report.final_stop = format!("graceful, {:.1} s", took.as_secs_f64())
            }
            Ok(StopOutcome::Watchdog(line)) => report.final_stop = line,
            Err(e) if result.is_ok() => return Err(e),
            Err(_) => {}
        }
    }
    result?;
    receiver.stop();
    let v = std::mem::take(&mut *lock(&violations));
    report.violations = v.count;
    report.failures = v.details;
    report.seconds = started.elapsed().as_secs_f64();
    drop(tmp);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn together_needs_one_match_with_all() {
        let groups = vec![vec![1, 2, 3], vec![3, 4]];
        let idx = index_matches(&groups);
        assert!(together(&groups, &idx, &[1, 3]));
        assert!(together(&groups, &idx, &[3, 4]));
        assert!(!together(&groups, &idx, &[1, 4]));
        assert!(!together(&groups, &idx, &[5, 6]));
    }

    #[test]
    fn a_lost_match_is_a_violation() {
        let mut report = CrashReport::default();
        let mut v = Violations::default();
        check_matches(
            &[vec![1, 2]],
            &[vec![1, 2], vec![3, 4]],
            &[(1, 2), (5, 6)],
            "test",
            &mut report,
            &mut v,
        );
        assert_eq!(report.match_groups_checked, 2);
        assert_eq!(report.match_pairs_checked, 2);
        assert_eq!(v.count, 2);
    }
}
