//! Crashes in the middle of the index's own long jobs: the real `samenloop serve`
//! process is SIGKILLed while a rotation of `K_index` re-keys the store (and while it
//! starts), and while the retention job archives and erases, then restarted on the same
//! database. Checked over HTTPS after every restart and at the end: no acknowledged
//! signal is lost, the matches are the ones the signals make, the job resumes and
//! finishes, every step it took is in the access log exactly once (and nothing it did
//! is missing there), every `match.dissolved` alert exists exactly once, and the access
//! log verifies. `SAMENLOOP_LIFECYCLE_ROUNDS` (default 1) repeats each scenario with
//! other kill points.

#[path = "common/binary_config.rs"]
mod binary_config;
#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use helpers::*;
use samenloop::config::development_config_path;
use samenloop::http::auth::Role;
use samenloop::load::server::Spawned;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const NOORD: &str = "zorgnetwerk-noord";
const ROT: &str = "/v1/admin/index-key/rotation";
const DAY: i64 = 86_400;

fn rounds() -> u64 {
    std::env::var("SAMENLOOP_LIFECYCLE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// The development configuration for the binary (see [`binary_config::write`]) with
/// `index_key` for `K_index`, the `[limits]` lines `limits` added, the disk guard off
/// (this is not the disk test) and `archive_days`.
fn write_config(dir: &Path, index_key: &Path, limits: &str, archive_days: u32) -> PathBuf {
    binary_config::write(
        dir,
        |key, _| match key {
            "index_key_file" => Some(format!(
                "index_key_file = {:?}",
                index_key.display().to_string()
            )),
            "min_free_disk_mib" => Some("min_free_disk_mib = 0".into()),
            "archive_days" => Some(format!("archive_days = {archive_days}")),
            _ => None,
        },
        |line| (line == "[limits]").then(|| limits.to_string()),
    )
}

/// The binary, started on `config`, with `app` pointed at it (a new client: the old
/// one's connections died with the last process).
fn serve(app: &mut TestApp, config: &Path, dir: &Path) -> Spawned {
    let s = Spawned::start(
        Path::new(env!("CARGO_BIN_EXE_samenloop")),
        config,
        dir,
        Duration::from_secs(120),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    app.base = format!("https://localhost:{}", s.port);
    app.client = client();
    s
}

/// Stops the binary with SIGTERM: it must stop gracefully. (The client's idle
/// keep-alive connections go first; a graceful stop waits for open connections.)
fn stop(app: &mut TestApp, mut server: Spawned) {
    app.client = client();
    server
        .stop(Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}"));
}

/// POSTs `body` to `path` on a task of its own, so that the server can be killed
/// while the request is open.
fn post_in_background(
    app: &TestApp,
    path: &str,
    token: &str,
    body: Value,
) -> tokio::task::JoinHandle<reqwest::Result<reqwest::Response>> {
    let request = app
        .client
        .post(format!("{}{path}", app.base))
        .bearer_auth(token)
        .json(&body);
    tokio::spawn(request.send())
}

/// A person nobody else in the test is: a name of its own and a birth date of its own.
fn someone(n: usize) -> samenloop::pseudonym::SubjectFields {
    let letters: String = [n / 676, (n / 26) % 26, n % 26]
        .iter()
        .map(|&i| (b'a' + i as u8) as char)
        .collect();
    let birth = format!(
        "{}-{:02}-{:02}",
        1940 + n / 336,
        (n / 28) % 12 + 1,
        n % 28 + 1
    );
    person(
        &format!("P-{n}"),
        &format!("Mar{letters}"),
        &format!("Vel{letters}dijk"),
        &birth,
    )
}

/// A signal body for person `n`, contact name `Signal {tag}` (match views show it), valid
/// `days` (none: the network's maximum).
fn body(app: &TestApp, n: usize, tag: u64, days: Option<u32>) -> Value {
    let mut b = app.signal(NOORD, someone(n));
    b["contact"] = json!({"name": format!("Signal {tag}"), "phone": "+31 20 123 4567"});
    if let Some(d) = days {
        b["valid_days"] = json!(d);
    }
    b
}

/// Submits `(org, body)` in batches; returns the ids, in order. Every one must be created.
async fn submit_all(app: &TestApp, items: &[(&str, Value)]) -> Vec<String> {
    let mut by_org: BTreeMap<&str, Vec<(usize, &Value)>> = BTreeMap::new();
    for (i, (org, b)) in items.iter().enumerate() {
        by_org.entry(org).or_default().push((i, b));
    }
    let mut out = vec![String::new(); items.len()];
    for (org, list) in by_org {
        for chunk in list.chunks(200) {
            let bodies: Vec<&Value> = chunk.iter().map(|(_, b)| *b).collect();
            let resp = app
                .post(
                    "/v1/signals/batch",
                    &app.partner(org),
                    &json!({"signals": bodies}),
                )
                .await;
            assert_eq!(resp.status(), 200);
            let r: Value = resp.json().await.unwrap();
            for ((i, _), item) in chunk.iter().zip(r["results"].as_array().unwrap()) {
                assert_eq!(item["status"], 201, "{item}");
                out[*i] = item["signal"]["id"].as_str().unwrap().to_string();
            }
        }
    }
    out
}

/// The signals `(org, id)` as their organisations read them, 16 requests in flight:
/// (status code, body) each, in order.
async fn read_all(app: &TestApp, signals: &[(&str, &str)]) -> Vec<(u16, Value)> {
    let mut tokens: HashMap<&str, String> = HashMap::new();
    let mut out = Vec::with_capacity(signals.len());
    for chunk in signals.chunks(16) {
        let mut tasks = Vec::new();
        for (org, id) in chunk {
            let token = tokens
                .entry(org)
                .or_insert_with(|| app.partner(org))
                .clone();
            let (client, url) = (app.client.clone(), format!("{}/v1/signals/{id}", app.base));
            tasks.push(tokio::spawn(async move {
                let resp = client.get(url).bearer_auth(token).send().await.unwrap();
                let status = resp.status().as_u16();
                (status, resp.json().await.unwrap_or(Value::Null))
            }));
        }
        for t in tasks {
            out.push(t.await.unwrap());
        }
    }
    out
}

/// The matches of the network as its coordinator lists them (`status` filter or all):
/// handle → the tags of the signals shown, sorted.
async fn matches(app: &TestApp, status: Option<&str>) -> BTreeMap<String, Vec<u64>> {
    let filter = status.map(|s| format!("&status={s}")).unwrap_or_default();
    let base = format!("/v1/networks/{NOORD}/matches?limit=500{filter}");
    let mut url = base.clone();
    let mut out = BTreeMap::new();
    loop {
        let resp = app.get(&url, &app.coordinator(NOORD)).await;
        assert_eq!(resp.status(), 200);
        let page: Value = resp.json().await.unwrap();
        for m in page["matches"].as_array().unwrap() {
            let mut tags: Vec<u64> = m["networks"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|p| p["signals"].as_array().cloned().unwrap_or_default())
                .filter_map(|s| {
                    s["contact"]["name"]
                        .as_str()?
                        .strip_prefix("Signal ")?
                        .parse()
                        .ok()
                })
                .collect();
            tags.sort_unstable();
            out.insert(m["handle"].as_str().unwrap().to_string(), tags);
        }
        match page["next_cursor"].as_str() {
            Some(c) => url = format!("{base}&cursor={c}"),
            None => return out,
        }
    }
}

/// Whether the signals tagged `tags` share one match of `groups`.
fn together(groups: &BTreeMap<String, Vec<u64>>, tags: &[u64]) -> bool {
    groups
        .values()
        .any(|g| tags.iter().all(|t| g.binary_search(t).is_ok()))
}

fn privacy_officer(app: &TestApp) -> String {
    app.privacy_officer("fg-crash", &[NOORD])
}

/// The whole access log verifies.
async fn assert_log_verifies(app: &TestApp, when: &str) {
    let resp = app.get("/v1/audit/verify", &privacy_officer(app)).await;
    assert_eq!(resp.status(), 200, "{when}");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["ok"], true, "{when}: {v}");
}

/// The entries the index made itself with `action`: how often each public id is named.
async fn logged_by_index(app: &TestApp, action: &str) -> HashMap<String, u32> {
    let text = app
        .audit_export(
            &privacy_officer(app),
            &format!("format=jsonl&actor=samenloop&action={action}"),
        )
        .await;
    let mut seen = HashMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let e: Value = serde_json::from_str(line).unwrap();
        // Skip the header, the stubs of entries the filter left out, and the end line.
        if e.get("action").is_none() {
            continue;
        }
        assert_eq!(e["action"], action, "{e}");
        for id in e["related"].as_array().into_iter().flatten() {
            *seen.entry(id.as_str().unwrap().to_string()).or_insert(0) += 1;
        }
    }
    seen
}

/// Waits until `done` says yes of the answer of GET `path` (polled every 5 ms, at most
/// `secs`), and returns that answer.
async fn poll(
    app: &TestApp,
    path: &str,
    token: &str,
    secs: u64,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        if let Ok(resp) = app
            .client
            .get(format!("{}{path}", app.base))
            .bearer_auth(token)
            .send()
            .await
            && resp.status() == 200
        {
            let v: Value = resp.json().await.unwrap();
            if done(&v) {
                return v;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(secs),
            "{path}: waited {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

// ---------------------------------------------------------------------------------
// Rotation of K_index

/// Persons whose two signals (woonstad, politie) were both stored before the rotation;
/// persons with only woonstad's signal before it, whose politie signal is sent while it
/// runs; persons with one signal only (ggz-noord), who must match nobody.
const PAIRS: usize = 100;
const HALVES: usize = 60;
const SINGLES: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_killed_while_it_starts_and_while_it_re_keys_resumes_and_loses_nothing() {
    for round in 0..rounds() {
        rotation_round(round).await;
    }
}

async fn rotation_round(round: u64) {
    let dir = tempfile::tempdir().unwrap();
    let (keys, index_key) = index_key_dir();
    write_index_key(keys.path(), "idx-2.toml", "idx-dev-2", 0x5a);
    // Two records a transaction, 60 ms apart: the re-keying takes about ten seconds.
    let config = write_config(
        dir.path(),
        &index_key,
        "rotation_chunk_signals = 2\nrotation_pause_ms = 60\n",
        1826,
    );
    // The in-process server only lends its helpers (tokens, key sets) and idles; the
    // binary is the server under test.
    let mut app = spawn_app().await;
    let mut server = serve(&mut app, &config, dir.path());

    // Tags: person n's woonstad signal is 2n, its politie signal 2n + 1.
    let mut items = Vec::new();
    for n in 0..PAIRS {
        items.push(("woonstad", body(&app, n, 2 * n as u64, None)));
        items.push(("politie", body(&app, n, 2 * n as u64 + 1, None)));
    }
    for n in PAIRS..PAIRS + HALVES {
        items.push(("woonstad", body(&app, n, 2 * n as u64, None)));
    }
    for n in PAIRS + HALVES..PAIRS + HALVES + SINGLES {
        items.push(("ggz-noord", body(&app, n, 2 * n as u64, None)));
    }
    let ids = submit_all(&app, &items).await;
    // tag → (organisation, id) of every acknowledged signal.
    let mut acked: BTreeMap<u64, (&str, String)> = BTreeMap::new();
    for ((org, b), id) in items.iter().zip(&ids) {
        let tag = b["contact"]["name"].as_str().unwrap()[7..].parse().unwrap();
        acked.insert(tag, (org, id.clone()));
    }
    let before = matches(&app, None).await;
    assert_eq!(before.len(), PAIRS, "{before:?}");
    let admin = app.token(Role::Admin, "gemeente", &[]);

    // Kill 1: while the start is in flight (before, during or just after the switch).
    let start = post_in_background(&app, ROT, &admin, json!({"key_file": "idx-2.toml"}));
    tokio::time::sleep(Duration::from_millis(2 + 7 * round % 20)).await;
    server.kill().unwrap();
    let answered = matches!(start.await.unwrap(), Ok(r) if r.status() == 202);
    server = serve(&mut app, &config, dir.path());
    let s: Value = app.get(ROT, &admin).await.json().await.unwrap();
    let mut report = format!(
        "rotation round {round}: start {} and {} after the kill",
        if answered { "answered" } else { "cut off" },
        s["state"].as_str().unwrap()
    );
    // A 202 is durable; without one, either outcome is whole.
    match s["state"].as_str().unwrap() {
        "idle" => {
            assert!(!answered, "the start was acknowledged and lost: {s}");
            assert_eq!(s["epoch"], 0, "{s}");
            let resp = app
                .post(ROT, &admin, &json!({"key_file": "idx-2.toml"}))
                .await;
            assert_eq!(resp.status(), 202);
        }
        "running" | "done" => assert_eq!(s["epoch"], 1, "{s}"),
        other => panic!("state {other}: {s}"),
    }
    assert_log_verifies(&app, "after the kill at the start").await;

    // Kills 2 and 3: a third and two thirds of the way, with politie's signals of the
    // half-pairs going in meanwhile.
    let mut next_half = PAIRS;
    let mut unanswered: Vec<(u64, Value)> = Vec::new();
    for thirds in [1, 2] {
        let s = poll(&app, ROT, &admin, 120, |s| {
            assert_ne!(
                s["state"], "done",
                "the rotation ended before the kill: {s}"
            );
            s["state"] == "running"
                && s["signals_rekeyed"].as_u64().unwrap() * 3
                    >= s["signals_total"].as_u64().unwrap() * thirds
        })
        .await;
        report += &format!(
            "; killed at {}/{} re-keyed",
            s["signals_rekeyed"], s["signals_total"]
        );
        assert!(
            s["signals_rekeyed"].as_u64() < s["signals_total"].as_u64(),
            "{s}"
        );
        // Half the remaining half-pairs, sent one by one, eight in flight.
        let upto = (next_half + HALVES / 2).min(PAIRS + HALVES);
        let token = app.partner("politie");
        // Four in flight at a time; the kill comes once half of them are answered.
        let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(4));
        let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut sent = Vec::new();
        for n in next_half..upto {
            let tag = 2 * n as u64 + 1;
            let b = body(&app, n, tag, None);
            let (client, url, token) = (
                app.client.clone(),
                format!("{}/v1/signals", app.base),
                token.clone(),
            );
            let (gate, answered) = (gate.clone(), answered.clone());
            sent.push((
                tag,
                b.clone(),
                tokio::spawn(async move {
                    let _turn = gate.acquire_owned().await.unwrap();
                    let r = client.post(url).bearer_auth(token).json(&b).send().await;
                    answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let r = r.ok()?;
                    (r.status() == 201).then_some(())?;
                    r.json::<Value>().await.ok()?["id"]
                        .as_str()
                        .map(String::from)
                }),
            ));
        }
        let half = (upto - next_half) / 2;
        next_half = upto;
        let waited = Instant::now();
        while answered.load(std::sync::atomic::Ordering::Relaxed) < half
            && waited.elapsed() < Duration::from_secs(60)
        {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        server.kill().unwrap();
        for (tag, b, h) in sent {
            match h.await.unwrap() {
                Some(id) => {
                    acked.insert(tag, ("politie", id));
                }
                None => unanswered.push((tag, b)),
            }
        }
        server = serve(&mut app, &config, dir.path());
        // Every acknowledged signal is there, whole.
        let all: Vec<(&str, &str)> = acked.values().map(|(o, i)| (*o, i.as_str())).collect();
        for ((tag, _), (status, v)) in acked.iter().zip(read_all(&app, &all).await) {
            assert_eq!(
                status, 200,
                "signal {tag} after a kill during the rotation: {v}"
            );
            assert_eq!(v["contact"]["name"], format!("Signal {tag}"), "{v}");
        }
        assert_log_verifies(&app, "after a kill during the rotation").await;
    }
    // The cut-off ones are all or nothing: resubmitted, they are created or found again.
    let mut found = 0;
    for (tag, b) in &unanswered {
        let resp = app.post("/v1/signals", &app.partner("politie"), b).await;
        let status = resp.status().as_u16();
        assert!(status == 200 || status == 201, "signal {tag}: {status}");
        found += usize::from(status == 200);
        let v: Value = resp.json().await.unwrap();
        acked.insert(*tag, ("politie", v["id"].as_str().unwrap().to_string()));
    }
    let done = poll(&app, ROT, &admin, 300, |s| s["state"] == "done").await;
    assert_eq!(done["epoch"], 1, "{done}");
    assert_eq!(done["key_ids"], json!(["idx-dev-1", "idx-dev-2"]), "{done}");
    assert_eq!(done["signals_rekeyed"], done["signals_total"], "{done}");
    // The rest of the half-pairs after it.
    let rest: Vec<(&str, Value)> = (next_half..PAIRS + HALVES)
        .map(|n| ("politie", body(&app, n, 2 * n as u64 + 1, None)))
        .collect();
    for ((_, b), id) in rest.iter().zip(submit_all(&app, &rest).await) {
        let tag = b["contact"]["name"].as_str().unwrap()[7..].parse().unwrap();
        acked.insert(tag, ("politie", id));
    }

    // Every signal once, every pair in a match of its own, the singles in none.
    let m = samenloop_metric(&app, "samenloop_store_signals").await;
    assert_eq!(m, acked.len() as u64);
    let after = matches(&app, None).await;
    assert_eq!(after.len(), PAIRS + HALVES, "{after:?}");
    for n in 0..PAIRS + HALVES {
        let pair = [2 * n as u64, 2 * n as u64 + 1];
        assert!(together(&after, &pair), "person {n}: {after:?}");
    }
    for (handle, tags) in &before {
        assert_eq!(after.get(handle), Some(tags), "match {handle} changed");
    }
    for n in PAIRS + HALVES..PAIRS + HALVES + SINGLES {
        assert!(!together(&after, &[2 * n as u64]), "single {n} matched");
    }
    // The stored keys are re-keyed: a third organisation joins the existing matches.
    let third: Vec<(&str, Value)> = (0..10)
        .map(|n| ("ggz-noord", body(&app, n, 10_000 + n as u64, None)))
        .collect();
    submit_all(&app, &third).await;
    let joined = matches(&app, None).await;
    assert_eq!(joined.len(), PAIRS + HALVES);
    for n in 0..10u64 {
        assert!(
            together(&joined, &[2 * n, 2 * n + 1, 10_000 + n]),
            "{joined:?}"
        );
    }
    assert_log_verifies(&app, "at the end").await;
    eprintln!(
        "{report}; of the {} signals sent during it {} acknowledged, {} cut off or not sent by a kill ({found} of them found stored when sent again)",
        2 * (HALVES / 2),
        2 * (HALVES / 2) - unanswered.len(),
        unanswered.len()
    );
    stop(&mut app, server);
    drop(keys);
}

/// A counter or gauge of `/metrics` without labels.
async fn samenloop_metric(app: &TestApp, name: &str) -> u64 {
    let text = app.metrics().await;
    text.lines()
        .find_map(|l| {
            l.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {name} in /metrics")) as u64
}

// ---------------------------------------------------------------------------------
// Retention

/// The `match.dissolved` alerts of the network: match handle → how many.
async fn dissolved_alerts(app: &TestApp) -> BTreeMap<String, u32> {
    let mut dissolved = BTreeMap::new();
    let base = format!("/v1/networks/{NOORD}/events?limit=500");
    let mut url = base.clone();
    loop {
        let resp = app.get(&url, &app.coordinator(NOORD)).await;
        assert_eq!(resp.status(), 200);
        let page: Value = resp.json().await.unwrap();
        for e in page["events"].as_array().unwrap() {
            if e["type"] == "match.dissolved" {
                let handle = e["match"]["handle"].as_str().unwrap().to_string();
                *dissolved.entry(handle).or_insert(0) += 1;
            }
        }
        match page["next_cursor"].as_str() {
            Some(c) => url = format!("{base}&cursor={c}"),
            None => return dissolved,
        }
    }
}

/// Checks each person's match against what the log says was archived: a match of
/// expired signals is dissolved (one `match.dissolved`, no longer open) exactly when one
/// of them is named archived, else still open and not alerted; the matches of
/// long-valid pairs stay open with both signals. Returns the number dissolved.
async fn check_matches(
    app: &TestApp,
    kinds: &[usize],
    handles: &[Option<String>],
    archived: &HashMap<String, u32>,
    ids: &HashMap<u64, String>,
) -> usize {
    let dissolved = dissolved_alerts(app).await;
    let open = matches(app, Some("open")).await;
    for (p, (g, h)) in kinds.iter().zip(handles).enumerate() {
        let Some(h) = h else { continue };
        let (a, b) = (10 * p as u64, 10 * p as u64 + 1);
        let due: &[u64] = match g {
            0 => &[a, b],
            1 => &[a],
            _ => &[],
        };
        let left = due.iter().any(|t| archived.contains_key(&ids[t]));
        if left {
            assert_eq!(
                dissolved.get(h),
                Some(&1),
                "person {p}'s match {h}: {dissolved:?}"
            );
            assert!(
                !open.contains_key(h),
                "person {p}'s match {h} is still open"
            );
        } else {
            assert!(
                !dissolved.contains_key(h),
                "person {p}'s match {h} dissolved early"
            );
            assert!(open.contains_key(h), "person {p}'s match {h} is not open");
        }
        if *g == 2 {
            assert_eq!(open.get(h), Some(&vec![a, b]), "person {p}");
        }
    }
    assert!(dissolved.keys().all(|h| handles.contains(&Some(h.clone()))));
    dissolved.len()
}

/// Persons whose two signals expired together (their match dissolves); persons whose
/// woonstad signal expired and whose politie signal did not (the match dissolves too);
/// persons whose two signals are valid for long (the match stays); persons with one
/// expired signal.
/// An organisation and the validity it gives its signal (none: the network's maximum).
type Sent = (&'static str, Option<u32>);

const BOTH_DUE: usize = 60;
const ONE_DUE: usize = 20;
const NONE_DUE: usize = 20;
const LONE_DUE: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retention_run_killed_while_it_archives_and_while_it_erases_resumes_and_logs_every_step_once()
 {
    for round in 0..rounds() {
        retention_round(round).await;
    }
}

async fn retention_round(round: u64) {
    let dir = tempfile::tempdir().unwrap();
    let index_key = development_config_path()
        .parent()
        .unwrap()
        .join("index-key.dev.toml")
        .canonicalize()
        .unwrap();
    // Three signals a transaction: the run is long enough to be cut, twice.
    let config = write_config(dir.path(), &index_key, "retention_chunk = 3\n", 1);
    // Ten days ago, in process (only there can the clock be moved): the signals are
    // written, most valid one day.
    let cfg = samenloop::config::Config::load(&config).unwrap();
    let mut app = spawn_app_with(move |c| *c = cfg).await;
    app.advance(-10 * DAY);
    let mut plan: Vec<(&str, Option<u32>, u64)> = Vec::new();
    let groups: [(usize, &[Sent]); 4] = [
        (BOTH_DUE, &[("woonstad", Some(1)), ("politie", Some(1))]),
        (ONE_DUE, &[("woonstad", Some(1)), ("politie", None)]),
        (NONE_DUE, &[("woonstad", None), ("politie", None)]),
        (LONE_DUE, &[("ggz-noord", Some(1))]),
    ];
    let mut p = 0usize;
    let mut kinds = Vec::new();
    for (g, (count, orgs)) in groups.iter().enumerate() {
        for _ in 0..*count {
            for (k, (org, days)) in orgs.iter().enumerate() {
                plan.push((org, *days, (10 * p + k) as u64));
            }
            kinds.push(g);
            p += 1;
        }
    }
    let items: Vec<(&str, Value)> = plan
        .iter()
        .map(|(org, days, tag)| (*org, body(&app, (*tag / 10) as usize, *tag, *days)))
        .collect();
    let ids = submit_all(&app, &items).await;
    // The matches as they were while the signals were valid (a match shows only the
    // signals that still are).
    let before = matches(&app, None).await;
    assert_eq!(before.len(), BOTH_DUE + ONE_DUE + NONE_DUE, "{before:?}");
    app.stop_server().await;
    // tag → (organisation, id, due)
    let signals: Vec<(u64, &str, String, bool)> = plan
        .iter()
        .zip(&ids)
        .map(|((org, days, tag), id)| (*tag, *org, id.clone(), days.is_some()))
        .collect();
    let all: Vec<(&str, &str)> = signals.iter().map(|s| (s.1, s.2.as_str())).collect();
    let id_of: HashMap<u64, String> = signals.iter().map(|s| (s.0, s.2.clone())).collect();
    let due: BTreeSet<&str> = signals
        .iter()
        .filter(|s| s.3)
        .map(|s| s.2.as_str())
        .collect();

    let mut server = serve(&mut app, &config, dir.path());
    // Each person's match (the lone signals have none).
    let handles: Vec<Option<String>> = (0..kinds.len() as u64)
        .map(|p| {
            let pair = [10 * p, 10 * p + 1];
            before
                .iter()
                .find(|(_, g)| g[..] == pair)
                .map(|(h, _)| h.clone())
        })
        .collect();
    assert_eq!(handles.iter().flatten().count(), before.len());
    let admin = app.token(Role::Admin, "gemeente", &[]);
    let po = privacy_officer(&app);

    // Kill 1 once the first archive chunk is logged, kill 2 once the first erase chunk
    // is; then a run to the end.
    let mut cut = Vec::new();
    for phase in ["archive", "erase"] {
        let run = post_in_background(&app, "/v1/admin/retention/run", &admin, json!({}));
        poll(
            &app,
            &format!("/v1/audit/entries?actor=samenloop&action={phase}&limit=1"),
            &po,
            120,
            |v| !v["entries"].as_array().unwrap().is_empty(),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(round % 5)).await;
        server.kill().unwrap();
        let _ = run.await;
        server = serve(&mut app, &config, dir.path());

        // What the log says was done, and what was done, agree; nothing twice.
        assert_log_verifies(&app, &format!("after the kill in the {phase} phase")).await;
        let archived = logged_by_index(&app, "archive").await;
        let erased = logged_by_index(&app, "erase").await;
        for (id, times) in archived.iter().chain(&erased) {
            assert_eq!(*times, 1, "{id} logged {times} times");
            assert!(due.contains(id.as_str()), "{id} was not due");
        }
        let mut present = 0;
        for ((tag, _, id, is_due), (status, v)) in signals.iter().zip(read_all(&app, &all).await) {
            if erased.contains_key(id) {
                assert!(archived.contains_key(id), "signal {tag} erased unarchived");
                assert_eq!(status, 404, "signal {tag} logged as erased: {v}");
            } else {
                assert_eq!(status, 200, "signal {tag} lost: {v}");
                let want = if *is_due { "expired" } else { "active" };
                assert_eq!(v["status"], want, "signal {tag}");
                present += 1;
            }
        }
        // A match dissolved, alerted once, exactly when the log names a signal of it as
        // archived; the long-valid pairs' matches stay open.
        check_matches(&app, &kinds, &handles, &archived, &id_of).await;
        cut.push((phase, archived.len(), erased.len(), present));
        // The cut fell inside the run: not everything was erased. (The chunk whose entry
        // the poll saw may be lost with the kill: it was not acknowledged to anyone. The
        // archive phase was, chunk by chunk, before the erase phase began.)
        assert!(erased.len() < due.len(), "{cut:?}");
        if phase == "erase" {
            assert_eq!(archived.len(), due.len(), "{cut:?}");
        }
    }
    let resp = app
        .post("/v1/admin/retention/run", &admin, &json!({}))
        .await;
    assert_eq!(resp.status(), 200);
    let last: Value = resp.json().await.unwrap();
    eprintln!(
        "retention round {round}: {} due of {} signals; (phase, archived, erased, present) at the kills: {cut:?}; the last run archived {} and erased {}",
        due.len(),
        signals.len(),
        last["archived"],
        last["erased"]
    );
    let (_, archived_before, erased_before, _) = cut[1];
    assert_eq!(
        last["archived"],
        (due.len() - archived_before) as u64,
        "{last} {cut:?}"
    );
    assert_eq!(
        last["erased"],
        (due.len() - erased_before) as u64,
        "{last} {cut:?}"
    );

    // The end: every due signal archived once, erased once, gone; the rest untouched.
    let archived = logged_by_index(&app, "archive").await;
    let erased = logged_by_index(&app, "erase").await;
    assert_eq!(archived.len(), due.len());
    assert_eq!(erased.len(), due.len());
    assert!(archived.values().chain(erased.values()).all(|&t| t == 1));
    for ((tag, _, id, is_due), (status, _)) in signals.iter().zip(read_all(&app, &all).await) {
        assert_eq!(status, if *is_due { 404 } else { 200 }, "signal {tag}");
        assert_eq!(archived.contains_key(id), *is_due, "signal {tag}");
    }
    // The matches of expired signals dissolved, each alerted once; the others stay open.
    let dissolved = check_matches(&app, &kinds, &handles, &archived, &id_of).await;
    assert_eq!(dissolved, BOTH_DUE + ONE_DUE);
    assert_log_verifies(&app, "at the end").await;
    stop(&mut app, server);
}
