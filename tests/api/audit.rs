//! The access log over the real API: one entry per request with the right fields, the
//! privacy officer's reads (logged themselves) and their scope, the views, filters,
//! pages and exports, verification and checkpoints, data-subject access requests and
//! the anomaly hints.

use crate::helpers::*;
use samenloop::audit::checkpoint::{Checkpoint, Verifier};
use samenloop::audit::export::CSV_COLUMNS;
use samenloop::audit::verify::{Report, verify_export};
use samenloop::http::auth::{Claims, Role};
use samenloop::pseudonym::{Date, PersonFields, SubjectFields};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

const NOORD: &str = "zorgnetwerk-noord";
const JEUGD: &str = "jeugd-0-12";

/// The request id an answer names.
fn rid(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("x-request-id")
        .expect("every /v1 answer has an X-Request-Id")
        .to_str()
        .unwrap()
        .to_string()
}

/// Asserts that `e` has these fields; a `null` means the field is absent.
#[track_caller]
fn has(e: &Value, want: Value) {
    for (k, v) in want.as_object().unwrap() {
        if v.is_null() {
            assert!(e.get(k).is_none(), "`{k}` should be absent in {e:#}");
        } else {
            assert_eq!(&e[k], v, "`{k}` in {e:#}");
        }
    }
}

/// The strings of a JSON array (or nothing when absent), as a set.
fn set(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

fn ids<const N: usize>(xs: [&str; N]) -> BTreeSet<String> {
    xs.iter().map(|s| s.to_string()).collect()
}

/// Reads the log from where it last stopped: a privacy officer of both networks whose
/// own reads are left out of what it returns (and checked as they pass).
struct Tail {
    token: String,
    after: u64,
    reads: HashSet<String>,
}

impl Tail {
    fn new(app: &TestApp) -> Tail {
        Tail {
            token: app.privacy_officer("fg-tail", &[NOORD, JEUGD]),
            after: 0,
            reads: HashSet::new(),
        }
    }

    /// The entries appended since the last call (other than this reader's own).
    async fn take(&mut self, app: &TestApp) -> Vec<Value> {
        let resp = app
            .get(
                &format!("/v1/audit/entries?limit=1000&cursor={}", self.after),
                &self.token,
            )
            .await;
        assert_eq!(resp.status().as_u16(), 200);
        let id = rid(&resp);
        let page: Value = resp.json().await.unwrap();
        assert!(page.get("next_cursor").is_none(), "{page}");
        let entries = page["entries"].as_array().unwrap().clone();
        if let Some(last) = entries.last() {
            self.after = last["seq"].as_u64().unwrap();
        }
        let mut out = Vec::new();
        for e in entries {
            if self.reads.contains(e["request_id"].as_str().unwrap()) {
                has(
                    &e,
                    json!({"action": "search", "outcome": "success", "status": 200,
                           "operation": "GET /v1/audit/entries", "actor": "fg-tail",
                           "object_type": "access_log"}),
                );
            } else {
                out.push(e);
            }
        }
        self.reads.insert(id);
        out
    }

    /// The status and body of an answer and the one entry it left (exactly one, with
    /// the answer's request id and status).
    async fn one(&mut self, app: &TestApp, resp: reqwest::Response) -> (u16, Value, Value) {
        let status = resp.status().as_u16();
        let id = rid(&resp);
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        let new = self.take(app).await;
        assert_eq!(
            new.len(),
            1,
            "one entry for {id} ({status} {text}): {new:#?}"
        );
        let e = new.into_iter().next().unwrap();
        has(
            &e,
            json!({"request_id": id, "status": status, "client": "127.0.0.1"}),
        );
        assert!(e["at"].as_str().unwrap().ends_with('Z'), "{e}");
        (status, body, e)
    }
}

/// A Tuesday (a working day: the development configuration has no holidays) at least
/// a week after the server's clock, as local days since the epoch.
fn tuesday_ahead(app: &TestApp) -> i64 {
    let mut d = samenloop::calendar::local_day(app.now()) + 7;
    // 1970-01-01 was a Thursday.
    while (d + 3) % 7 != 1 {
        d += 1;
    }
    d
}

/// `YYYY-MM-DD` of a local day.
fn day_text(d: i64) -> String {
    Date::from_days_since_epoch(d).to_string()
}

/// Unix time of `hour`:00 local (Dutch) time on local day `d`.
fn at_hour(d: i64, hour: i64) -> i64 {
    samenloop::calendar::local_midnight(d) + hour * 3600
}

/// Sets the server's clock forward to unix time `t`.
fn set_clock(app: &TestApp, t: i64) {
    let d = t - app.now();
    assert!(d >= 0, "the clock is set forward");
    app.advance(d);
}

fn subject(reference: &str, bsn: &str, given: &str, family: &str, birth: &str) -> SubjectFields {
    let mut s = person(reference, given, family, birth);
    s.person.bsn = bsn.into();
    s
}

fn signal_with_contact(app: &TestApp, network: &str, s: SubjectFields, contact: Value) -> Value {
    let mut b = app.signal(network, s);
    b["contact"] = contact;
    b
}

/// Every pseudonym (`kind:base64`) of a wire key set, and its base64 part.
fn pseudonyms(keys: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |v: &Value| {
        for p in v.as_array().into_iter().flatten() {
            let p = p.as_str().unwrap();
            out.push(p.to_string());
            out.push(p.split_once(':').unwrap().1.to_string());
        }
    };
    push(&keys["person"]);
    push(&keys["household"]);
    for f in keys["family"].as_array().into_iter().flatten() {
        push(f);
    }
    out
}

async fn submit(app: &TestApp, token: &str, body: &Value) -> String {
    let resp = app.post("/v1/signals", token, body).await;
    assert_eq!(resp.status().as_u16(), 201);
    resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The matches of a network, as its coordinator (subject `sub`) lists them.
async fn match_list(app: &TestApp, network: &str, sub: &str) -> Vec<Value> {
    let token = app.token_as(Role::Coordinator, "gemeente", sub, &[network]);
    let resp = app
        .get(&format!("/v1/networks/{network}/matches"), &token)
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    resp.json::<Value>().await.unwrap()["matches"]
        .as_array()
        .unwrap()
        .clone()
}

/// The JSON of a GET that must answer 200.
async fn ok_json(app: &TestApp, token: &str, path: &str) -> Value {
    let resp = app.get(path, token).await;
    assert_eq!(resp.status().as_u16(), 200, "{path}");
    resp.json().await.unwrap()
}

async fn make_checkpoint(app: &TestApp, token: &str) -> (u16, Checkpoint) {
    let resp = app.post("/v1/audit/checkpoints", token, &json!({})).await;
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

/// A data-subject access request: its request id and answer.
async fn subject_access(app: &TestApp, token: &str, keys: Value) -> (String, Value) {
    let resp = app
        .post("/v1/audit/subject-access", token, &json!({"subject": keys}))
        .await;
    assert_eq!(resp.status(), 200);
    (rid(&resp), resp.json().await.unwrap())
}

fn verifier() -> Verifier {
    Verifier::from_pem(&dev_file("audit-checkpoint.dev.pub.pem")).unwrap()
}

fn verify_text(text: &str) -> Report {
    verify_export(text.as_bytes(), Some(&verifier()), Vec::new())
}

#[tokio::test]
async fn every_request_leaves_exactly_one_entry_with_the_right_fields() {
    let app = spawn_app().await;
    let mut log = Tail::new(&app);
    let mut tokens = Vec::new();
    let system = app.token_with(Claims {
        obo: Some("j.jansen".into()),
        purpose: Some("signalering".into()),
        ..app.claims(Role::Partner, "woonstad", "woonstad-koppeling", &[NOORD])
    });
    let woonstad = app.partner("woonstad");
    let ggz = app.partner("ggz-noord");
    let school = app.partner("school-de-linde");
    let regie = app.token_as(Role::Coordinator, "gemeente", "regie-noord", &[NOORD]);
    let regie_j = app.token_as(Role::Coordinator, "gemeente", "regie-jeugd", &[JEUGD]);
    tokens.extend([&system, &woonstad, &ggz, &school, &regie, &regie_j].map(String::clone));

    let marieke = person("AUD-W-1", "Marieke", "de Vries", "1985-03-07");
    let contact = json!({"name": "Team Schuldhulp Oost", "phone": "+31 6 9876 5432",
                         "email": "t.oost@woonstad.example"});
    let w1_body = signal_with_contact(&app, NOORD, marieke.clone(), contact);
    let mut key_sets = vec![w1_body["subject"].clone()];

    // Submission 201, with on-behalf-of and purpose from the token.
    let (s, body, e) = log
        .one(&app, app.post("/v1/signals", &system, &w1_body).await)
        .await;
    assert_eq!(s, 201);
    let w1 = body["id"].as_str().unwrap().to_string();
    has(
        &e,
        json!({"action": "create", "outcome": "success", "operation": "POST /v1/signals",
               "actor": "woonstad-koppeling", "org": "woonstad", "role": "partner",
               "on_behalf_of": "j.jansen", "purpose": "signalering",
               "actor_networks": [NOORD], "network": NOORD, "object_type": "signal",
               "object_id": w1, "related": null}),
    );
    assert!(e["seq"].as_u64().unwrap() > 0);

    // The same again: 200, the same signal; no obo or purpose in this token.
    let (s, _, e) = log
        .one(&app, app.post("/v1/signals", &woonstad, &w1_body).await)
        .await;
    assert_eq!(s, 200);
    has(
        &e,
        json!({"action": "create", "outcome": "success", "actor": "woonstad-user",
               "on_behalf_of": null, "purpose": null, "object_id": w1, "network": NOORD}),
    );

    // The same reference with other content: 409, invalid, the stored signal named.
    let conflict = app.signal(NOORD, marieke.clone());
    let (s, body, e) = log
        .one(&app, app.post("/v1/signals", &woonstad, &conflict).await)
        .await;
    assert_eq!(s, 409);
    assert_eq!(body["type"], "urn:samenloop:problem:reference-conflict");
    has(
        &e,
        json!({"action": "create", "outcome": "invalid", "object_type": "signal",
               "object_id": w1, "network": NOORD}),
    );

    // A batch: a new signal, a resubmission, an unknown category, a bad key set.
    let jan = app.signal(NOORD, person("AUD-W-2", "Jan", "Smit", "1970-01-01"));
    key_sets.push(jan["subject"].clone());
    let mut bad_category = app.signal(NOORD, person("AUD-W-9", "Els", "Kok", "1990-01-01"));
    bad_category["category"] = json!("geen-categorie");
    let mut bad_keys = app.signal(NOORD, person("AUD-W-8", "Els", "Kok", "1990-01-01"));
    bad_keys["subject"] = json!({});
    let batch = json!({"signals": [jan, w1_body, bad_category, bad_keys]});
    let (s, body, e) = log
        .one(&app, app.post("/v1/signals/batch", &woonstad, &batch).await)
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        (body["accepted"].as_u64(), body["rejected"].as_u64()),
        (Some(2), Some(2))
    );
    let w2 = body["results"][0]["signal"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    has(
        &e,
        json!({"action": "create", "outcome": "success", "operation": "POST /v1/signals/batch",
               "network": NOORD, "object_type": "signal", "object_id": null}),
    );
    assert_eq!(set(&e["related"]), ids([&w1, &w2]), "the stored signals");

    // Reading an own signal.
    let (s, _, e) = log
        .one(&app, app.get(&format!("/v1/signals/{w1}"), &woonstad).await)
        .await;
    assert_eq!(s, 200);
    has(
        &e,
        json!({"action": "read", "outcome": "success", "operation": "GET /v1/signals/{id}",
               "object_type": "signal", "object_id": w1, "network": NOORD, "related": null}),
    );

    // Another organisation's signal: 404 to the caller, denied in the log, with the id.
    let (s, _, e) = log
        .one(&app, app.get(&format!("/v1/signals/{w1}"), &ggz).await)
        .await;
    assert_eq!(s, 404);
    has(
        &e,
        json!({"action": "read", "outcome": "denied", "actor": "ggz-noord-user",
               "org": "ggz-noord", "object_id": w1, "network": NOORD}),
    );

    // A guessed id: not found, and the guess is not recorded.
    let (s, _, e) = log
        .one(
            &app,
            app.get("/v1/signals/sig_0000000000000000", &ggz).await,
        )
        .await;
    assert_eq!(s, 404);
    has(
        &e,
        json!({"action": "read", "outcome": "not_found", "object_type": "signal",
               "object_id": null, "network": null}),
    );

    // Lookup by reference: the reference is not in the entry.
    let (s, _, e) = log
        .one(
            &app,
            app.get(
                &format!("/v1/signals?network={NOORD}&reference=AUD-W-1"),
                &woonstad,
            )
            .await,
        )
        .await;
    assert_eq!(s, 200);
    has(
        &e,
        json!({"action": "search", "outcome": "success", "operation": "GET /v1/signals",
               "object_type": "signal", "object_id": w1, "network": NOORD}),
    );

    // Renewal, withdrawal, and a second withdrawal (409).
    let (s, _, e) = log
        .one(
            &app,
            app.post(
                &format!("/v1/signals/{w1}/renew"),
                &woonstad,
                &json!({"valid_days": 30}),
            )
            .await,
        )
        .await;
    assert_eq!(s, 200);
    has(
        &e,
        json!({"action": "update", "outcome": "success",
               "operation": "POST /v1/signals/{id}/renew", "object_id": w1, "network": NOORD}),
    );
    let withdraw = json!({"reason": "concern_over"});
    let path = format!("/v1/signals/{w2}/withdraw");
    let (s, _, e) = log
        .one(&app, app.post(&path, &woonstad, &withdraw).await)
        .await;
    assert_eq!(s, 200);
    has(
        &e,
        json!({"action": "withdraw", "outcome": "success",
               "operation": "POST /v1/signals/{id}/withdraw", "object_id": w2, "network": NOORD}),
    );
    let (s, body, e) = log
        .one(&app, app.post(&path, &woonstad, &withdraw).await)
        .await;
    assert_eq!(s, 409);
    assert_eq!(body["type"], "urn:samenloop:problem:signal-not-active");
    has(
        &e,
        json!({"action": "withdraw", "outcome": "invalid", "object_id": w2}),
    );

    // Match A across networks: woonstad's W-1 (noord) and the school's signal (jeugd).
    let s1_body = app.signal(
        JEUGD,
        person("AUD-S-1", "Marieke", "de Vries", "1985-03-07"),
    );
    let (s, body, e) = log
        .one(&app, app.post("/v1/signals", &school, &s1_body).await)
        .await;
    assert_eq!(s, 201);
    let s1 = body["id"].as_str().unwrap().to_string();
    has(
        &e,
        json!({"network": JEUGD, "actor_networks": [JEUGD], "object_id": s1}),
    );
    // Match B in noord only.
    let kees = |r: &str| person(r, "Kees", "Bakker", "1960-01-01");
    let w3_body = app.signal(NOORD, kees("AUD-W-3"));
    let g3_body = app.signal(NOORD, kees("AUD-G-3"));
    key_sets.extend([s1_body["subject"].clone(), w3_body["subject"].clone()]);
    let (_, body, _) = log
        .one(&app, app.post("/v1/signals", &woonstad, &w3_body).await)
        .await;
    let w3 = body["id"].as_str().unwrap().to_string();
    let (_, body, _) = log
        .one(&app, app.post("/v1/signals", &ggz, &g3_body).await)
        .await;
    let g3 = body["id"].as_str().unwrap().to_string();

    // The match list: every match shown, with the coordinator's network's signals only.
    let (s, body, e) = log
        .one(
            &app,
            app.get(&format!("/v1/networks/{NOORD}/matches"), &regie)
                .await,
        )
        .await;
    assert_eq!(s, 200);
    let matches = body["matches"].as_array().unwrap();
    assert_eq!(matches.len(), 2, "{body}");
    let handle_of = |n: usize| {
        matches
            .iter()
            .find(|m| m["networks"].as_array().unwrap().len() == n)
            .unwrap()["handle"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (ha, hb) = (handle_of(2), handle_of(1));
    has(
        &e,
        json!({"action": "search", "outcome": "success", "actor": "regie-noord",
               "role": "coordinator", "org": "gemeente", "actor_networks": [NOORD],
               "operation": "GET /v1/networks/{network}/matches", "object_type": "match",
               "object_id": null, "network": NOORD}),
    );
    assert_eq!(
        set(&e["related"]),
        ids([&ha, &hb, &w1, &w3, &g3]),
        "the matches and noord's signals, not the school's"
    );

    // One match.
    let (s, _, e) = log
        .one(&app, app.get(&format!("/v1/matches/{ha}"), &regie).await)
        .await;
    assert_eq!(s, 200);
    has(
        &e,
        json!({"action": "read", "outcome": "success", "operation": "GET /v1/matches/{handle}",
               "object_type": "match", "object_id": ha, "network": NOORD}),
    );
    assert_eq!(set(&e["related"]), ids([&w1]));
    // The same match read by the other network's coordinator: its own part.
    let (s, _, e) = log
        .one(&app, app.get(&format!("/v1/matches/{ha}"), &regie_j).await)
        .await;
    assert_eq!(s, 200);
    has(&e, json!({"object_id": ha, "network": JEUGD}));
    assert_eq!(set(&e["related"]), ids([&s1]));
    // A noord-only match read by the jeugd coordinator: denied.
    let (s, _, e) = log
        .one(&app, app.get(&format!("/v1/matches/{hb}"), &regie_j).await)
        .await;
    assert_eq!(s, 404);
    has(
        &e,
        json!({"action": "read", "outcome": "denied", "actor": "regie-jeugd",
               "actor_networks": [JEUGD], "object_id": hb, "network": NOORD, "related": null}),
    );

    // A follow-up step (written in the step's transaction) and a refused one.
    let step = format!("/v1/matches/{hb}/follow-up");
    let ack = json!({"action": "acknowledge"});
    let (s, _, e) = log.one(&app, app.post(&step, &regie, &ack).await).await;
    assert_eq!(s, 200);
    has(
        &e,
        json!({"action": "update", "outcome": "success",
               "operation": "POST /v1/matches/{handle}/follow-up", "object_type": "match",
               "object_id": hb, "network": NOORD}),
    );
    assert_eq!(set(&e["related"]), ids([&w3, &g3]));
    let (s, body, e) = log.one(&app, app.post(&step, &regie, &ack).await).await;
    assert_eq!(s, 409);
    assert_eq!(body["type"], "urn:samenloop:problem:invalid-transition");
    has(
        &e,
        json!({"action": "update", "outcome": "invalid", "object_id": hb, "network": NOORD}),
    );

    // Events (JSON page), figures, deliveries.
    let (s, body, e) = log
        .one(
            &app,
            app.get(&format!("/v1/networks/{NOORD}/events"), &regie)
                .await,
        )
        .await;
    assert_eq!(s, 200);
    let shown: BTreeSet<String> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ev| ev["match"]["handle"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(shown, ids([&ha, &hb]));
    has(
        &e,
        json!({"action": "search", "outcome": "success",
               "operation": "GET /v1/networks/{network}/events", "object_type": "events",
               "network": NOORD, "object_id": null}),
    );
    // The page's matches and the network's signals they show.
    let related = set(&e["related"]);
    assert!(shown.is_subset(&related), "{related:?}");
    let signals: Vec<&String> = related.difference(&shown).collect();
    assert!(!signals.is_empty(), "{related:?}");
    assert!(
        signals.iter().all(|id| id.starts_with("sig_")),
        "{related:?}"
    );
    // Figures are for completed days.
    let yesterday = Date::from_days_since_epoch(samenloop::calendar::local_day(app.now()) - 1);
    let (s, _, e) = log
        .one(
            &app,
            app.get(
                &format!("/v1/networks/{NOORD}/figures?from={yesterday}&to={yesterday}"),
                &regie,
            )
            .await,
        )
        .await;
    assert_eq!(s, 200);
    has(
        &e,
        json!({"action": "search", "outcome": "success", "object_type": "figures",
               "operation": "GET /v1/networks/{network}/figures", "network": NOORD}),
    );
    let (s, _, e) = log
        .one(
            &app,
            app.get(&format!("/v1/networks/{NOORD}/deliveries"), &regie)
                .await,
        )
        .await;
    assert_eq!(s, 200);
    has(
        &e,
        json!({"action": "search", "outcome": "success", "object_type": "deliveries",
               "operation": "GET /v1/networks/{network}/deliveries", "network": NOORD}),
    );

    // Refusals: no token, a bad token, a wrong role.
    let anonymous = app
        .client
        .get(format!("{}/v1/signals/{w1}", app.base))
        .send()
        .await
        .unwrap();
    let (s, body, e) = log.one(&app, anonymous).await;
    assert_eq!(s, 401);
    assert_eq!(body["type"], "urn:samenloop:problem:unauthenticated");
    let refused = json!({"action": "login_refused", "outcome": "denied", "actor": "-",
                         "org": null, "role": null, "actor_networks": null, "network": null,
                         "object_id": null, "operation": "GET /v1/signals/{id}"});
    has(&e, refused.clone());
    let (s, _, e) = log
        .one(&app, app.get(&format!("/v1/signals/{w1}"), "garbage").await)
        .await;
    assert_eq!(s, 401);
    has(&e, refused);
    let (s, body, e) = log
        .one(&app, app.get("/v1/audit/entries", &woonstad).await)
        .await;
    assert_eq!(s, 403);
    assert_eq!(body["type"], "urn:samenloop:problem:forbidden-role");
    has(
        &e,
        json!({"action": "search", "outcome": "denied", "actor": "woonstad-user",
               "role": "partner", "operation": "GET /v1/audit/entries",
               "object_type": "access_log"}),
    );
    let (s, _, e) = log
        .one(&app, app.post("/v1/signals", &regie, &conflict).await)
        .await;
    assert_eq!(s, 403);
    has(
        &e,
        json!({"action": "create", "outcome": "denied", "role": "coordinator",
               "object_type": "signal", "network": null, "object_id": null}),
    );
    // An unknown route under /v1/ is logged too.
    let (s, _, e) = log.one(&app, app.get("/v1/nowhere", &woonstad).await).await;
    assert_eq!(s, 404);
    has(
        &e,
        json!({"outcome": "not_found", "operation": "GET (no route)"}),
    );

    // Nothing in the whole log is a reference, a contact detail, a token or a pseudonym.
    let fg = app.privacy_officer("fg-all", &[NOORD, JEUGD]);
    let all = app.audit_export(&fg, "").await;
    assert!(verify_text(&all).ok);
    assert!(
        all.contains(&w1) && all.contains(&hb),
        "the dump holds the log"
    );
    let mut needles: Vec<String> = [
        "AUD-W-1",
        "AUD-W-2",
        "AUD-W-3",
        "AUD-G-3",
        "AUD-S-1",
        "AUD-W-8",
        "AUD-W-9",
        "Team Schuldhulp Oost",
        "+31 6 9876 5432",
        "t.oost@woonstad.example",
        "Wijkteam Noord",
        "+31 20 123 4567",
        "Marieke",
        "Vries",
        // The whole birth date: four digits alone turn up in any hex hash.
        "1985-03-07",
    ]
    .map(String::from)
    .to_vec();
    tokens.push(fg);
    for t in &tokens {
        needles.push(t.clone());
        needles.push(t.rsplit('.').next().unwrap().to_string());
    }
    for k in &key_sets {
        let ps = pseudonyms(k);
        assert!(!ps.is_empty());
        needles.extend(ps);
    }
    for n in &needles {
        assert!(!all.contains(n.as_str()), "the log holds {n}");
    }
}

/// A client for streams: HTTP/1.1, no idle connection kept after a stream ends.
fn stream_client() -> reqwest::Client {
    let cert = reqwest::Certificate::from_pem(&dev_file("tls-cert.dev.pem")).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(cert)
        .tls_built_in_root_certs(false)
        .https_only(true)
        .http1_only()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// The next event of a server-sent-events stream: its type and data.
async fn next_event(resp: &mut reqwest::Response, buf: &mut String) -> (String, Value) {
    loop {
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            if frame.starts_with(':') {
                continue;
            }
            let field = |name: &str| {
                frame
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .unwrap()
                    .to_string()
            };
            return (
                field("event: "),
                serde_json::from_str(&field("data: ")).unwrap(),
            );
        }
        let chunk = tokio::time::timeout(Duration::from_secs(20), resp.chunk())
            .await
            .expect("an event within 20 s")
            .unwrap()
            .expect("the stream is open");
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

#[tokio::test]
async fn reading_the_log_is_logged_and_a_stream_logs_each_batch_it_sends() {
    let app = spawn_app().await;
    let mut log = Tail::new(&app);
    let fg = app.privacy_officer("fg-noord", &[NOORD]);
    let today = Date::from_days_since_epoch(samenloop::calendar::local_day(app.now()));
    let period = format!("from={today}&to={today}");
    let reads = [
        ("/v1/audit/entries".to_string(), "search", "access_log"),
        ("/v1/audit/export".into(), "export", "access_log"),
        ("/v1/audit/export?format=csv".into(), "export", "access_log"),
        (
            format!("/v1/audit/views/users?{period}"),
            "search",
            "access_log",
        ),
        (
            format!("/v1/audit/views/days?{period}"),
            "search",
            "access_log",
        ),
        (
            format!("/v1/audit/anomalies?{period}"),
            "search",
            "access_log",
        ),
        ("/v1/audit/checkpoints".into(), "search", "checkpoint"),
        ("/v1/audit/verify".into(), "read", "access_log"),
    ];
    for (path, action, object_type) in reads {
        let (s, _, e) = log.one(&app, app.get(&path, &fg).await).await;
        assert_eq!(s, 200, "{path}");
        let operation = format!("GET {}", path.split('?').next().unwrap());
        has(
            &e,
            json!({"action": action, "outcome": "success", "operation": operation,
                   "actor": "fg-noord", "org": "gemeente", "role": "privacy_officer",
                   "actor_networks": [NOORD], "object_type": object_type,
                   "network": null, "object_id": null}),
        );
    }
    let (s, body, e) = log
        .one(
            &app,
            app.post("/v1/audit/checkpoints", &fg, &json!({})).await,
        )
        .await;
    assert_eq!(s, 201);
    has(
        &e,
        json!({"action": "create", "outcome": "success", "operation": "POST /v1/audit/checkpoints",
               "object_type": "checkpoint", "object_id": format!("cp_{}", body["seq"])}),
    );

    // A stream: its opening is one entry, then one entry per batch of events it sends.
    let regie = app.token_as(Role::Coordinator, "gemeente", "regie-noord", &[NOORD]);
    let mut stream = stream_client()
        .get(format!("{}/v1/networks/{NOORD}/events", app.base))
        .bearer_auth(&regie)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let stream_id = rid(&stream);
    let opened = log.take(&app).await;
    assert_eq!(opened.len(), 1, "{opened:#?}");
    has(
        &opened[0],
        json!({"request_id": stream_id, "action": "search", "outcome": "success", "status": 200,
               "operation": "GET /v1/networks/{network}/events", "actor": "regie-noord",
               "object_type": "events", "network": NOORD, "related": null}),
    );
    let who = |r: &str| person(r, "Anna", "Visser", "1979-04-04");
    submit(
        &app,
        &app.partner("woonstad"),
        &app.signal(NOORD, who("SSE-W")),
    )
    .await;
    submit(
        &app,
        &app.partner("ggz-noord"),
        &app.signal(NOORD, who("SSE-G")),
    )
    .await;
    let mut buf = String::new();
    let (event, data) = next_event(&mut stream, &mut buf).await;
    assert_eq!(event, "match.formed");
    let handle = data["match"]["handle"].as_str().unwrap().to_string();
    let batch = |entries: &[Value], n: usize| {
        let sent: Vec<&Value> = entries
            .iter()
            .filter(|e| e["request_id"] == stream_id)
            .collect();
        assert_eq!(sent.len(), n, "{entries:#?}");
        for e in &sent {
            has(
                e,
                json!({"action": "read", "outcome": "success", "status": 200,
                       "operation": "GET /v1/networks/{network}/events", "actor": "regie-noord",
                       "object_type": "events", "network": NOORD}),
            );
            // The match shown, then the two signals it shows.
            let related = e["related"].as_array().unwrap();
            assert_eq!(related[0], Value::from(handle.as_str()), "{e}");
            assert_eq!(related.len(), 3, "{e}");
            assert!(
                related[1..]
                    .iter()
                    .all(|id| id.as_str().unwrap().starts_with("sig_")),
                "{e}"
            );
        }
    };
    let new = log.take(&app).await;
    assert_eq!(new.len(), 3, "two submissions and the batch sent: {new:#?}");
    batch(&new, 1);
    // A follow-up step: the step's entry and the batch that shows it.
    let resp = app
        .post(
            &format!("/v1/matches/{handle}/follow-up"),
            &regie,
            &json!({"action": "acknowledge"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let (event, _) = next_event(&mut stream, &mut buf).await;
    assert_eq!(event, "match.followed_up");
    let new = log.take(&app).await;
    assert_eq!(new.len(), 2, "{new:#?}");
    batch(&new, 1);
    drop(stream);
}

#[tokio::test]
async fn a_privacy_officer_sees_its_networks_and_anonymous_refusals_only() {
    let app = spawn_app().await;
    // Far from midnight: the day view below counts one day.
    set_clock(&app, at_hour(tuesday_ahead(&app), 10));
    let fg_j = app.privacy_officer("fg-jeugd", &[JEUGD]);
    let fg_n = app.privacy_officer("fg-noord", &[NOORD]);
    let anna = |r: &str| person(r, "Anna", "Visser", "1979-04-04");
    let mut noord_ids = Vec::new();
    for (org, r) in [("woonstad", "N-W"), ("ggz-noord", "N-G")] {
        let resp = app
            .post(
                "/v1/signals",
                &app.partner(org),
                &app.signal(NOORD, anna(r)),
            )
            .await;
        assert_eq!(resp.status(), 201);
        noord_ids.push(rid(&resp));
    }
    let regie = app.token_as(Role::Coordinator, "gemeente", "regie-noord", &[NOORD]);
    let resp = app
        .get(&format!("/v1/networks/{NOORD}/matches"), &regie)
        .await;
    noord_ids.push(rid(&resp));
    let handle = resp.json::<Value>().await.unwrap()["matches"][0]["handle"]
        .as_str()
        .unwrap()
        .to_string();
    let school = app.signal(JEUGD, person("J-S", "Sem", "Bakker", "2016-05-01"));
    let resp = app
        .post("/v1/signals", &app.partner("school-de-linde"), &school)
        .await;
    assert_eq!(resp.status(), 201);
    let jeugd_id = rid(&resp);
    let resp = app
        .client
        .get(format!("{}/v1/networks/{JEUGD}/matches", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let anon_id = rid(&resp);

    // Entries.
    let seen_j = app.audit_entries(&fg_j, "").await;
    let rids = |es: &[Value]| -> BTreeSet<String> {
        es.iter()
            .map(|e| e["request_id"].as_str().unwrap().to_string())
            .collect()
    };
    let j = rids(&seen_j);
    assert!(j.contains(&jeugd_id) && j.contains(&anon_id), "{seen_j:#?}");
    for n in &noord_ids {
        assert!(!j.contains(n), "a noord entry shown to jeugd: {seen_j:#?}");
    }
    for e in &seen_j {
        let nets = set(&e["actor_networks"]);
        assert!(
            e["network"] == JEUGD
                || nets.contains(JEUGD)
                || (e.get("network").is_none() && nets.is_empty()),
            "{e}"
        );
    }
    let seen_n = app.audit_entries(&fg_n, "").await;
    let n = rids(&seen_n);
    assert!(noord_ids.iter().all(|i| n.contains(i)) && n.contains(&anon_id));
    assert!(!n.contains(&jeugd_id));

    // Views.
    let today = Date::from_days_since_epoch(samenloop::calendar::local_day(app.now()));
    let resp = app
        .get(
            &format!("/v1/audit/views/users?from={today}&to={today}"),
            &fg_j,
        )
        .await;
    assert_eq!(resp.status(), 200);
    let users: Value = resp.json().await.unwrap();
    let actors: BTreeSet<String> = users["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["actor"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(actors, ids(["-", "fg-jeugd", "school-de-linde-user"]));
    let resp = app
        .get(
            &format!("/v1/audit/views/days?from={today}&to={today}"),
            &fg_j,
        )
        .await;
    let days: Value = resp.json().await.unwrap();
    assert_eq!(days["rows"].as_array().unwrap().len(), 1);
    // What the entries answer showed, that answer and the users view.
    assert_eq!(days["rows"][0]["entries"], seen_j.len() + 2, "{days}");

    // Export: the other network's entries are stubs, and the export still verifies.
    let text = app.audit_export(&fg_j, "").await;
    let report = verify_text(&text);
    assert!(report.ok, "{report:?}");
    let noord_seqs: BTreeSet<u64> = seen_n
        .iter()
        .filter(|e| noord_ids.contains(&e["request_id"].as_str().unwrap().to_string()))
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(noord_seqs.len(), 3);
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut stubs = 0;
    for l in &lines[1..lines.len() - 1] {
        let fields: BTreeSet<String> = l.as_object().unwrap().keys().cloned().collect();
        if noord_seqs.contains(&l["seq"].as_u64().unwrap()) {
            assert_eq!(fields, ids(["seq", "body_hash", "chain"]), "{l}");
        }
        if fields.len() == 3 {
            stubs += 1;
        }
    }
    assert_eq!(lines.last().unwrap()["stubs"], stubs);
    assert!(stubs >= 3);
    for secret in ["woonstad", "ggz-noord", "regie-noord", handle.as_str()] {
        assert!(!text.contains(secret), "{secret} in the jeugd export");
    }
    assert!(text.contains(&jeugd_id) && text.contains(&anon_id));

    // A data-subject access request finds nothing of the other network.
    let keys = app.keys(anna("X"));
    let resp = app
        .post("/v1/audit/subject-access", &fg_j, &json!({"subject": keys}))
        .await;
    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await.unwrap();
    for part in ["signals", "matches", "accesses"] {
        assert_eq!(answer[part], json!([]), "{answer}");
    }
    assert_eq!(answer["networks"], json!([JEUGD]));
    expect_problem(
        app.post(
            "/v1/audit/subject-access",
            &fg_j,
            &json!({"subject": keys, "networks": [NOORD]}),
        )
        .await,
        404,
        "not-found",
    )
    .await;
    // The noord officer does find them (the request above could have found something).
    let resp = app
        .post("/v1/audit/subject-access", &fg_n, &json!({"subject": keys}))
        .await;
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["signals"].as_array().unwrap().len(), 2, "{answer}");

    // A privacy officer of no configured network: 404 everywhere, and logged.
    for nets in [&["nergens"][..], &[][..]] {
        let token = app.privacy_officer("fg-nergens", nets);
        for path in ["/v1/audit/entries", "/v1/audit/verify", "/v1/audit/export"] {
            expect_problem(app.get(path, &token).await, 404, "not-found").await;
        }
        expect_problem(
            app.post(
                "/v1/audit/subject-access",
                &token,
                &json!({"subject": keys}),
            )
            .await,
            404,
            "not-found",
        )
        .await;
    }
    // Those without any network concern no network: every officer sees them.
    let refused = app
        .audit_entries(&fg_j, "actor=fg-nergens&outcome=not_found")
        .await;
    assert_eq!(refused.len(), 4, "{refused:#?}");
    for e in &refused {
        has(
            e,
            json!({"status": 404, "role": "privacy_officer", "actor_networks": null}),
        );
    }
}

/// Seqs of entries.
fn seqs(es: &[Value]) -> Vec<u64> {
    es.iter().map(|e| e["seq"].as_u64().unwrap()).collect()
}

#[tokio::test]
async fn views_filters_pages_and_exports_return_the_right_rows() {
    let app = spawn_app().await;
    // A Tuesday, 10:00 in the Netherlands; then the next day.
    let d1 = tuesday_ahead(&app);
    let (day1, day2) = (day_text(d1), day_text(d1 + 1));
    set_clock(&app, at_hour(d1, 10));
    let woonstad = app.partner("woonstad");
    let ggz = app.partner("ggz-noord");
    let regie = app.token_as(Role::Coordinator, "gemeente", "regie-noord", &[NOORD]);
    let marieke = |r: &str| person(r, "Marieke", "de Vries", "1985-03-07");
    let a1 = submit(&app, &woonstad, &app.signal(NOORD, marieke("V-A1"))).await;
    let jan = person("V-A2", "Jan", "Smit", "1970-01-01");
    let a2 = submit(&app, &woonstad, &app.signal(NOORD, jan)).await;
    let piet = person("V-A3", "Piet", "Kok", "1990-10-10");
    let a3 = submit(&app, &woonstad, &app.signal(NOORD, piet)).await;
    assert_eq!(
        app.get(&format!("/v1/signals/{a1}"), &woonstad)
            .await
            .status(),
        200
    );
    let guess = app.get("/v1/signals/sig_0000000000000000", &woonstad).await;
    assert_eq!(guess.status(), 404);
    let guess_id = rid(&guess);
    let g1 = submit(&app, &ggz, &app.signal(NOORD, marieke("V-G1"))).await;
    let list = app
        .get(&format!("/v1/networks/{NOORD}/matches"), &regie)
        .await;
    let list_id = rid(&list);
    let handle = list.json::<Value>().await.unwrap()["matches"][0]["handle"]
        .as_str()
        .unwrap()
        .to_string();
    app.advance(86_400);
    assert_eq!(
        app.get(&format!("/v1/matches/{handle}"), &regie)
            .await
            .status(),
        200
    );
    let resp = app
        .post(
            &format!("/v1/signals/{a3}/withdraw"),
            &woonstad,
            &json!({"reason": "concern_over"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let school = app.signal(JEUGD, person("V-J1", "Sem", "Bakker", "2016-05-01"));
    submit(&app, &app.partner("school-de-linde"), &school).await;
    // Ten entries; the officer's own reads come an hour later.
    let end = samenloop::http::rfc3339(app.now() + 1);
    app.advance(3600);
    let fg = app.privacy_officer("fg-noord", &[NOORD]);
    let period = format!("from={day1}&to={day2}");

    // Per user.
    let resp = app
        .get(&format!("/v1/audit/views/users?{period}"), &fg)
        .await;
    assert_eq!(resp.status(), 200);
    let users: Value = resp.json().await.unwrap();
    assert_eq!(users["filter"], json!({"from": day1, "to": day2}));
    let rows: BTreeMap<String, Value> = users["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["actor"].as_str().unwrap().to_string(), r.clone()))
        .collect();
    assert_eq!(
        rows.keys().cloned().collect::<BTreeSet<_>>(),
        ids(["ggz-noord-user", "regie-noord", "woonstad-user"]),
        "the school is in jeugd: {users}"
    );
    has(
        &rows["woonstad-user"],
        json!({"organisations": ["woonstad"], "roles": ["partner"], "entries": 6,
               "by_action": {"create": 3, "read": 2, "withdraw": 1},
               "by_outcome": {"success": 5, "not_found": 1}, "objects": 3}),
    );
    let w = &rows["woonstad-user"];
    assert!(w["first_ms"].as_i64() < w["last_ms"].as_i64());
    has(
        &rows["ggz-noord-user"],
        json!({"entries": 1, "by_action": {"create": 1}, "objects": 1}),
    );
    has(
        &rows["regie-noord"],
        json!({"organisations": ["gemeente"], "roles": ["coordinator"], "entries": 2,
               "by_action": {"search": 1, "read": 1}, "by_outcome": {"success": 2},
               "objects": 3}),
    );

    // Per day (the users view above is on the second day).
    let resp = app
        .get(&format!("/v1/audit/views/days?{period}"), &fg)
        .await;
    let days: Value = resp.json().await.unwrap();
    assert_eq!(
        days["rows"],
        json!([
            {"day": day1, "entries": 7, "actors": 3,
             "by_action": {"create": 4, "read": 2, "search": 1},
             "by_outcome": {"success": 6, "not_found": 1}},
            {"day": day2, "entries": 3, "actors": 3,
             "by_action": {"read": 1, "withdraw": 1, "search": 1},
             "by_outcome": {"success": 3}},
        ]),
        "{days}"
    );

    // Filters, all up to the end of the data.
    let to = format!("to={end}");
    let all = app.audit_entries(&fg, &to).await;
    assert_eq!(all.len(), 9, "the school's entry is out of scope: {all:#?}");
    assert_eq!(seqs(&all), (1..=9).collect::<Vec<_>>());
    let q = |f: &str| format!("{f}&{to}");
    let by_actor = app.audit_entries(&fg, &q("actor=woonstad-user")).await;
    assert_eq!(by_actor.len(), 6);
    assert!(by_actor.iter().all(|e| e["actor"] == "woonstad-user"));
    let by_object = app.audit_entries(&fg, &q(&format!("object={a1}"))).await;
    let named: Vec<(String, String)> = by_object
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().into(),
                e["operation"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        named,
        [
            ("create", "POST /v1/signals"),
            ("read", "GET /v1/signals/{id}"),
            ("search", "GET /v1/networks/{network}/matches"),
            ("read", "GET /v1/matches/{handle}"),
        ]
        .map(|(a, o)| (a.to_string(), o.to_string()))
    );
    assert_eq!(by_object[2]["request_id"], list_id);
    let creates = app.audit_entries(&fg, &q("action=create")).await;
    let created: BTreeSet<String> = creates
        .iter()
        .map(|e| e["object_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(created, ids([&a1, &a2, &a3, &g1]));
    let missing = app.audit_entries(&fg, &q("outcome=not_found")).await;
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0]["request_id"], guess_id);
    let ggz_only = app.audit_entries(&fg, &q("organisation=ggz-noord")).await;
    assert_eq!(ggz_only.len(), 1);
    assert_eq!(ggz_only[0]["object_id"], g1);
    let in_noord = app
        .audit_entries(&fg, &q(&format!("network={NOORD}")))
        .await;
    assert_eq!(in_noord.len(), 8, "all but the guessed id");
    assert!(in_noord.iter().all(|e| e["network"] == NOORD));
    assert!(
        app.audit_entries(&fg, &q(&format!("network={JEUGD}")))
            .await
            .is_empty()
    );
    let second = app.audit_entries(&fg, &q(&format!("from={day2}"))).await;
    assert_eq!(seqs(&second), [8, 9]);
    let from_time = samenloop::http::rfc3339(at_hour(d1 + 1, 0));
    let second = app
        .audit_entries(&fg, &q(&format!("from={from_time}")))
        .await;
    assert_eq!(seqs(&second), [8, 9]);
    let until_day1 = app.audit_entries(&fg, &format!("to={day1}")).await;
    assert_eq!(seqs(&until_day1), (1..=7).collect::<Vec<_>>());
    let combined = app
        .audit_entries(&fg, &q("actor=woonstad-user&action=read&outcome=success"))
        .await;
    assert_eq!(combined.len(), 1);
    assert_eq!(combined[0]["object_id"], a1);
    let desc = app.audit_entries(&fg, &q("order=desc")).await;
    assert_eq!(seqs(&desc), (1..=9).rev().collect::<Vec<_>>());

    // Pages: every entry exactly once, in both orders.
    for (order, limit) in [("asc", 2), ("desc", 4)] {
        let mut got = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut path = format!("/v1/audit/entries?{to}&order={order}&limit={limit}");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let page: Value = app.get(&path, &fg).await.json().await.unwrap();
            pages += 1;
            let entries = page["entries"].as_array().unwrap();
            assert!(entries.len() <= limit);
            got.extend(seqs(entries));
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
            assert!(pages < 20);
        }
        let mut want: Vec<u64> = (1..=9).collect();
        if order == "desc" {
            want.reverse();
        }
        assert_eq!(got, want, "{order}");
        assert_eq!(pages, 9usize.div_ceil(limit), "{order}");
    }

    // CSV: the selected entries only.
    let csv = app.audit_export(&fg, &format!("format=csv&{to}")).await;
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        CSV_COLUMNS.to_vec()
    );
    let rows: Vec<BTreeMap<String, String>> = reader.deserialize().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 9);
    let seq_col: Vec<u64> = rows.iter().map(|r| r["seq"].parse().unwrap()).collect();
    assert_eq!(seq_col, (1..=9).collect::<Vec<_>>());
    let guessed = rows.iter().find(|r| r["request_id"] == guess_id).unwrap();
    assert_eq!(guessed["outcome"], "not_found");
    assert_eq!(guessed["object_id"], "");
    assert_eq!(guessed["actor"], "woonstad-user");
    assert_eq!(guessed["organisation"], "woonstad");
    assert_eq!(guessed["actor_networks"], NOORD);
    assert_eq!(guessed["chain"].len(), 64);
    let listed = rows.iter().find(|r| r["request_id"] == list_id).unwrap();
    let related: BTreeSet<String> = listed["related"].split(' ').map(String::from).collect();
    assert_eq!(related, ids([&handle, &a1, &g1]));
    let hour = samenloop::http::rfc3339(at_hour(d1, 10));
    assert!(listed["time"].starts_with(&hour[..14]), "{listed:?}");

    // JSON Lines: the selected entries in full, the others as stubs; it verifies.
    let text = app
        .audit_export(&fg, &format!("actor=woonstad-user&{to}"))
        .await;
    let report = verify_text(&text);
    assert!(report.ok, "{report:?}");
    assert_eq!((report.entries, report.stubs), (6, 4));
    assert_eq!((report.first_seq, report.last_seq), (Some(1), Some(10)));
    let header: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    has(
        &header,
        json!({"format": "samenloop-access-log", "version": 1, "first_seq": 1,
               "prev_chain": "0".repeat(64),
               "filter": {"actor": "woonstad-user", "to": end}}),
    );
    let end_line: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(
        end_line,
        json!({"end": true, "last_seq": 10, "chain": report.chain, "entries": 6, "stubs": 4})
    );
    tampered_exports_break_at_the_right_entry(&text, &guess_id);
}

/// Every change to a verified export is reported at the entry where it was made.
fn tampered_exports_break_at_the_right_entry(text: &str, guessed: &str) {
    let lines: Vec<&str> = text.lines().collect();
    let join = |ls: &[String]| ls.join("\n") + "\n";
    let owned: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let broken_at = |ls: &[String]| {
        let r = verify_text(&join(ls));
        assert!(!r.ok, "{r:?}");
        let b = r.broken.unwrap();
        (b.seq, b.problem)
    };
    let seq_of = |l: &str| {
        serde_json::from_str::<Value>(l).unwrap()["seq"]
            .as_u64()
            .unwrap()
    };
    // The untouched text verifies (the checks below can fail for their change only).
    assert!(verify_text(&join(&owned)).ok);

    // One byte of a full line.
    let i = lines.iter().position(|l| l.contains(guessed)).unwrap();
    let mut ls = owned.clone();
    ls[i] = ls[i].replacen("\"status\":404", "\"status\":204", 1);
    assert_ne!(ls[i], owned[i]);
    let (seq, problem) = broken_at(&ls);
    assert_eq!(seq, seq_of(&owned[i]));
    assert!(problem.contains("chain breaks"), "{problem}");

    // One byte of a stub.
    let j = lines
        .iter()
        .position(|l| l.starts_with("{\"seq\"") && l.contains("body_hash"))
        .unwrap();
    let mut ls = owned.clone();
    let v: Value = serde_json::from_str(&ls[j]).unwrap();
    let h = v["body_hash"].as_str().unwrap();
    let flipped = format!("{}{}", if h.starts_with('0') { "1" } else { "0" }, &h[1..]);
    ls[j] = ls[j].replace(h, &flipped);
    assert_eq!(broken_at(&ls).0, seq_of(&owned[j]));

    // A line deleted.
    let mut ls = owned.clone();
    let gone = ls.remove(5);
    let (seq, problem) = broken_at(&ls);
    assert_eq!(seq, seq_of(&gone));
    assert!(problem.contains("missing"), "{problem}");

    // Two lines swapped.
    let mut ls = owned.clone();
    ls.swap(6, 7);
    assert_eq!(broken_at(&ls).0, seq_of(&owned[6]));

    // The end line cut off, or cut short.
    let last_seq = seq_of(&owned[owned.len() - 2]);
    let mut ls = owned.clone();
    ls.pop();
    let (seq, problem) = broken_at(&ls);
    assert_eq!(seq, last_seq + 1);
    assert!(problem.contains("cut short"), "{problem}");
    let mut ls = owned.clone();
    let n = ls.len() - 1;
    ls[n].truncate(10);
    assert_eq!(broken_at(&ls).0, last_seq + 1);

    // The last entry and the end line both dropped.
    let mut ls = owned.clone();
    ls.truncate(ls.len() - 2);
    assert_eq!(broken_at(&ls).0, last_seq);
}

#[tokio::test]
async fn the_chain_verifies_and_checkpoints_are_signed_and_filed() {
    let mut app = spawn_app().await;
    let woonstad = app.partner("woonstad");
    for (i, name) in ["Anna", "Bram", "Cor"].iter().enumerate() {
        let s = person(&format!("C-{i}"), name, "Visser", "1979-04-04");
        submit(&app, &woonstad, &app.signal(NOORD, s)).await;
    }
    let anonymous = app
        .client
        .get(format!("{}/v1/audit/verify", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    // (An unread answer would hold its connection, and the restart below, open.)
    drop(anonymous);
    let fg = app.privacy_officer("fg-noord", &[NOORD]);
    let v = ok_json(&app, &fg, "/v1/audit/verify").await;
    has(
        &v,
        json!({"ok": true, "signatures_checked": true, "entries": 4, "stubs": 0,
               "first_seq": 1, "last_seq": 4, "checkpoints_checked": 0, "broken": null}),
    );

    // A checkpoint covers the log as it was when asked: the verify request's entry (5).
    let pk = verifier();
    let (status, cp5) = make_checkpoint(&app, &fg).await;
    assert_eq!(status, 201);
    assert_eq!(cp5.seq, 5);
    assert_eq!(cp5.domain, "regio-dev");
    assert_eq!(cp5.chain.len(), 64);
    pk.verify(&cp5).expect("signed with the checkpoint key");
    let mut forged = cp5.clone();
    forged.seq = 4;
    assert!(pk.verify(&forged).is_err());
    // Asked again at once: the first request's own entry is new, so a new checkpoint.
    let (status, cp6) = make_checkpoint(&app, &fg).await;
    assert_eq!((status, cp6.seq), (201, 6));
    pk.verify(&cp6).unwrap();
    let listed: Value = app
        .get("/v1/audit/checkpoints", &fg)
        .await
        .json()
        .await
        .unwrap();
    let listed: Vec<Checkpoint> = serde_json::from_value(listed["checkpoints"].clone()).unwrap();
    assert_eq!(listed, vec![cp6.clone(), cp5.clone()]);
    let file = app.cfg.checkpoint_file();
    assert_eq!(
        samenloop::audit::checkpoint::read_file(&file).unwrap(),
        vec![cp5.clone(), cp6.clone()]
    );
    let v = ok_json(&app, &fg, "/v1/audit/verify").await;
    has(
        &v,
        json!({"ok": true, "entries": 8, "last_seq": 8, "checkpoints_checked": 2,
               "checkpoints_signed": 2}),
    );
    assert_eq!(
        serde_json::from_value::<Checkpoint>(v["last_checkpoint"].clone()).unwrap(),
        cp6
    );
    // The export names the newest checkpoint and agrees with it.
    let text = app.audit_export(&fg, "").await;
    let report = verify_text(&text);
    assert!(report.ok, "{report:?}");
    assert_eq!(
        (report.checkpoints_checked, report.checkpoints_signed),
        (1, 1)
    );
    assert_eq!(report.last_checkpoint.as_ref(), Some(&cp6));

    // A stop makes a checkpoint of the head; asked right after the restart, nothing
    // was appended since, so that one is answered (200).
    app.restart().await;
    let in_file = samenloop::audit::checkpoint::read_file(&file).unwrap();
    assert_eq!(in_file.len(), 3, "{in_file:?}");
    let at_stop = in_file[2].clone();
    assert_eq!(
        at_stop.seq, 10,
        "the head at the stop: the verify above and the export"
    );
    let (status, again) = make_checkpoint(&app, &fg).await;
    assert_eq!((status, &again), (200, &at_stop));
    let (status, next) = make_checkpoint(&app, &fg).await;
    assert_eq!((status, next.seq), (201, 11));
    let v = ok_json(&app, &fg, "/v1/audit/verify").await;
    has(
        &v,
        json!({"ok": true, "entries": 12, "checkpoints_checked": 4, "checkpoints_signed": 4}),
    );
}

#[tokio::test]
async fn a_data_subject_access_request_finds_the_person_and_nothing_of_anyone_else() {
    let app = spawn_app().await;
    let x = |r: &str| subject(r, "111222333", "Marieke", "de Vries", "1985-03-07");
    // The same name and birth date, another BSN: another person.
    let y = |r: &str| subject(r, "123456782", "Marieke", "de Vries", "1985-03-07");
    let woonstad = app.partner("woonstad");
    let politie = app.partner("politie");
    // One batch creates a signal on each.
    let batch =
        json!({"signals": [app.signal(NOORD, x("DS-W-X")), app.signal(NOORD, y("DS-W-Y"))]});
    let resp = app.post("/v1/signals/batch", &woonstad, &batch).await;
    assert_eq!(resp.status(), 200);
    let batch_id = rid(&resp);
    let b: Value = resp.json().await.unwrap();
    let wx = b["results"][0]["signal"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let wy = b["results"][1]["signal"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let gx = submit(
        &app,
        &app.partner("ggz-noord"),
        &app.signal(NOORD, x("DS-G-X")),
    )
    .await;
    let px = submit(&app, &politie, &app.signal(NOORD, x("DS-P-X"))).await;
    let py = submit(&app, &politie, &app.signal(NOORD, y("DS-P-Y"))).await;
    // A child whose parent is X.
    let mut child = person("DS-S-C", "Noah", "de Vries", "2016-09-01");
    child.parents = vec![PersonFields {
        bsn: "111222333".into(),
        given_names: "Marieke".into(),
        family_name: "de Vries".into(),
        birth_date: "1985-03-07".into(),
        ..Default::default()
    }];
    let sc = submit(
        &app,
        &app.partner("school-de-linde"),
        &app.signal(JEUGD, child),
    )
    .await;
    let resp = app
        .post(
            &format!("/v1/signals/{px}/withdraw"),
            &politie,
            &json!({"reason": "concern_over"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let withdraw_id = rid(&resp);
    // The coordinator lists and reads the matches.
    let regie = app.token_as(Role::Coordinator, "gemeente", "regie-noord", &[NOORD]);
    let listed = match_list(&app, NOORD, "regie-noord").await;
    // X's person match, X's family match (with the child) and Y's person match.
    assert_eq!(listed.len(), 3, "{listed:#?}");
    let mut read_ids = BTreeMap::new();
    for m in &listed {
        let h = m["handle"].as_str().unwrap().to_string();
        let resp = app.get(&format!("/v1/matches/{h}"), &regie).await;
        assert_eq!(resp.status(), 200);
        read_ids.insert(h, rid(&resp));
    }
    // Which match is X's: the one the subject access finds (checked against Y's below).
    let fg = app.privacy_officer("fg", &[NOORD, JEUGD]);
    let (x_request, ax) = subject_access(&app, &fg, app.keys(x("any"))).await;
    let (_, ay) = subject_access(&app, &fg, app.keys(y("any"))).await;

    let signals = |a: &Value| -> BTreeMap<String, Value> {
        a["signals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["id"].as_str().unwrap().to_string(), s.clone()))
            .collect()
    };
    let sx = signals(&ax);
    assert_eq!(
        sx.keys().cloned().collect::<BTreeSet<_>>(),
        ids([&wx, &gx, &px, &sc]),
        "{ax:#}"
    );
    has(
        &sx[&wx],
        json!({"relation": "subject", "organisation": "woonstad", "network": NOORD,
               "status": "active"}),
    );
    has(
        &sx[&px],
        json!({"relation": "subject", "organisation": "politie", "status": "withdrawn",
               "withdraw_reason": "concern_over"}),
    );
    assert!(sx[&px]["withdrawn_at"].is_string());
    has(
        &sx[&sc],
        json!({"relation": "parent", "organisation": "school-de-linde", "network": JEUGD}),
    );
    let sy = signals(&ay);
    assert_eq!(sy.keys().cloned().collect::<BTreeSet<_>>(), ids([&wy, &py]));
    let handles = |a: &Value| {
        set(&json!(
            a["matches"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["handle"].clone())
                .collect::<Vec<_>>()
        ))
    };
    let (mx, my) = (handles(&ax), handles(&ay));
    assert!(
        mx.len() == 2 && my.len() == 1 && mx.is_disjoint(&my),
        "{mx:?} {my:?}"
    );
    let kinds: BTreeSet<String> = ax["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ids(["family", "person"]));
    let everything: BTreeSet<String> = read_ids.keys().cloned().collect();
    assert_eq!(&mx | &my, everything);
    let hy = my.iter().next().unwrap().clone();
    for m in ax["matches"].as_array().unwrap() {
        assert!(
            m["follow_ups"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["network"] == NOORD),
            "{m}"
        );
    }

    // The accesses: the batch, the withdrawal, the coordinator's list and read, ...
    let accesses = |a: &Value| -> BTreeSet<String> {
        a["accesses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["request_id"].as_str().unwrap().to_string())
            .collect()
    };
    let acc = accesses(&ax);
    let mut must = vec![&batch_id, &withdraw_id];
    must.extend(mx.iter().map(|h| &read_ids[h]));
    for must in must {
        assert!(acc.contains(must), "{must} missing: {ax:#}");
    }
    assert!(!acc.contains(&read_ids[&hy]), "the read of Y's match");
    let creates: BTreeSet<String> = ax["accesses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "create")
        .flat_map(|e| {
            let mut v = set(&e["related"]);
            v.extend(e["object_id"].as_str().map(String::from));
            v
        })
        .collect();
    assert!(ids([&wx, &gx, &px, &sc]).is_subset(&creates), "{creates:?}");
    let at: Vec<&str> = ax["accesses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["at"].as_str().unwrap())
        .collect();
    assert!(at.windows(2).all(|w| w[0] <= w[1]), "oldest first");
    assert_eq!(ax["accesses_truncated"], false);
    // Nothing of Y (or of Y's match) anywhere in X's answer, and the reverse.
    let text = ax.to_string();
    for other in [&wy, &py, &hy] {
        assert!(
            !text.contains(other.as_str()),
            "{other} in X's answer: {ax:#}"
        );
    }
    let text = ay.to_string();
    for other in [&wx, &gx, &px, &sc].into_iter().chain(&mx) {
        assert!(
            !text.contains(other.as_str()),
            "{other} in Y's answer: {ay:#}"
        );
    }

    // The request is itself an access to what it found.
    let (_, again) = subject_access(&app, &fg, app.keys(x("any"))).await;
    let sar: Vec<&Value> = again["accesses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["request_id"] == x_request)
        .collect();
    assert_eq!(sar.len(), 1);
    has(
        sar[0],
        json!({"action": "subject_access", "outcome": "success", "object_type": "person",
               "operation": "POST /v1/audit/subject-access", "actor": "fg"}),
    );
    let mut named = ids([&wx, &gx, &px, &sc]);
    named.extend(mx.iter().cloned());
    assert_eq!(set(&sar[0]["related"]), named);

    // Malformed requests: precise problems, each logged as a refused subject access.
    let mut log = Tail::new(&app);
    log.take(&app).await;
    let keys = app.keys(x("any"));
    let json_ = "application/json";
    let cases: Vec<(String, &str, u16, &str, &str)> = vec![
        (
            "{\"subject\": ".into(),
            json_,
            400,
            "malformed-json",
            "invalid",
        ),
        (
            "{}".into(),
            "text/plain",
            415,
            "unsupported-media-type",
            "invalid",
        ),
        ("{}".into(), json_, 422, "invalid-body", "invalid"),
        (
            json!({"subject": {}}).to_string(),
            json_,
            422,
            "invalid-key-set",
            "invalid",
        ),
        (
            json!({"subject": "bsn:abc"}).to_string(),
            json_,
            422,
            "invalid-key-set",
            "invalid",
        ),
        (
            json!({"subject": keys, "networks": ["nergens"]}).to_string(),
            json_,
            404,
            "not-found",
            "not_found",
        ),
        (
            json!({"subject": keys, "networks": []}).to_string(),
            json_,
            422,
            "invalid-field",
            "invalid",
        ),
        (
            json!({"subject": keys, "reason": "verzoek"}).to_string(),
            json_,
            422,
            "invalid-body",
            "invalid",
        ),
    ];
    for (body, ctype, status, code, outcome) in cases {
        let resp = app
            .client
            .post(format!("{}/v1/audit/subject-access", app.base))
            .bearer_auth(&fg)
            .header("content-type", ctype)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), status, "{code}");
        let id = rid(&resp);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["type"], format!("urn:samenloop:problem:{code}"));
        let new = log.take(&app).await;
        assert_eq!(new.len(), 1, "{new:#?}");
        has(
            &new[0],
            json!({"request_id": id, "action": "subject_access", "outcome": outcome,
                   "status": status, "object_type": "person", "related": null}),
        );
    }
    let mut unknown_key = keys.clone();
    unknown_key["key_id"] = json!("elders-2026");
    expect_problem(
        app.post(
            "/v1/audit/subject-access",
            &fg,
            &json!({"subject": unknown_key}),
        )
        .await,
        422,
        "unknown-key-id",
    )
    .await;
}

#[tokio::test]
async fn anomalies_count_match_reads_refusals_and_accesses_after_hours() {
    let app = spawn_app().await;
    // A Tuesday, 10:00 in the Netherlands.
    let d1 = tuesday_ahead(&app);
    set_clock(&app, at_hour(d1, 10));
    for (i, (given, family)) in [("Anna", "Visser"), ("Bram", "Kok"), ("Cor", "Smit")]
        .iter()
        .enumerate()
    {
        for org in ["woonstad", "ggz-noord"] {
            let s = person(&format!("AN-{org}-{i}"), given, family, "1979-04-04");
            submit(&app, &app.partner(org), &app.signal(NOORD, s)).await;
        }
    }
    // regie-a lists all three matches; regie-b and regie-c read one each.
    let listed = match_list(&app, NOORD, "regie-a").await;
    assert_eq!(listed.len(), 3);
    let h0 = listed[0]["handle"].as_str().unwrap().to_string();
    let regie_b = app.token_as(Role::Coordinator, "gemeente", "regie-b", &[NOORD]);
    let regie_c = app.token_as(Role::Coordinator, "gemeente", "regie-c", &[NOORD]);
    for t in [&regie_b, &regie_c] {
        assert_eq!(app.get(&format!("/v1/matches/{h0}"), t).await.status(), 200);
    }
    // Six bad tokens, five wrong-role requests.
    for _ in 0..6 {
        assert_eq!(
            app.get(&format!("/v1/matches/{h0}"), "garbage")
                .await
                .status(),
            401
        );
    }
    let woonstad = app.partner("woonstad");
    for _ in 0..5 {
        assert_eq!(app.get("/v1/audit/entries", &woonstad).await.status(), 403);
    }
    // regie-b again at 22:00, twice.
    app.advance(12 * 3600);
    for _ in 0..2 {
        assert_eq!(
            app.get(&format!("/v1/matches/{h0}"), &regie_b)
                .await
                .status(),
            200
        );
    }
    let fg = app.privacy_officer("fg-noord", &[NOORD]);
    let day = format!("from={0}&to={0}", day_text(d1));
    let a = ok_json(
        &app,
        &fg,
        &format!("/v1/audit/anomalies?{day}&factor=1.5&min_matches=2"),
    )
    .await;
    assert_eq!(
        a["many_match_reads"],
        json!([{"actor": "regie-a", "organisation": "gemeente", "network": NOORD,
                "matches_read": 3, "network_median": 1.0, "network_users": 3}]),
        "{a:#}"
    );
    assert_eq!(
        a["outside_office_hours"],
        json!([{"actor": "regie-b", "organisation": "gemeente",
                "outside_office_hours": 2, "total": 3}]),
        "{a:#}"
    );
    assert_eq!(
        a["repeated_refusals"],
        json!([
            {"actor": "-", "client": "127.0.0.1", "refused": 6, "login_refused": 6},
            {"actor": "woonstad-user", "organisation": "woonstad", "refused": 5,
             "login_refused": 0},
        ]),
        "{a:#}"
    );
    has(
        &a["thresholds"],
        json!({"factor": 1.5, "min_matches": 2, "min_refused": 5}),
    );
    // The default thresholds (ten matches at least) list no match reader; higher
    // refusal thresholds drop the partner, then everyone.
    let a = ok_json(
        &app,
        &fg,
        &format!("/v1/audit/anomalies?{day}&min_refused=6"),
    )
    .await;
    assert_eq!(a["many_match_reads"], json!([]));
    assert_eq!(a["repeated_refusals"].as_array().unwrap().len(), 1);
    let a = ok_json(
        &app,
        &fg,
        &format!("/v1/audit/anomalies?{day}&min_refused=7"),
    )
    .await;
    assert_eq!(a["repeated_refusals"], json!([]));
    // Inside office hours only (the morning): nobody outside them.
    let morning = format!(
        "from={}&to={}",
        samenloop::http::rfc3339(at_hour(d1, 9)),
        samenloop::http::rfc3339(at_hour(d1, 12))
    );
    let a = ok_json(&app, &fg, &format!("/v1/audit/anomalies?{morning}")).await;
    assert_eq!(a["outside_office_hours"], json!([]), "{a:#}");
    // The next day: the officer's own reads at 22:00 are outside office hours.
    let a = ok_json(
        &app,
        &fg,
        &format!(
            "/v1/audit/anomalies?from={}&to={}",
            day_text(d1),
            day_text(d1 + 1)
        ),
    )
    .await;
    let officer = a["outside_office_hours"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["actor"] == "fg-noord")
        .cloned()
        .unwrap();
    assert_eq!(officer["outside_office_hours"], 4, "{a:#}");
}

#[tokio::test]
async fn malformed_queries_are_refused_precisely_and_logged_once() {
    let app = spawn_app().await;
    let mut log = Tail::new(&app);
    let fg = app.privacy_officer("fg-noord", &[NOORD]);
    let cases = [
        ("/v1/audit/entries?colour=red", "`colour`"),
        ("/v1/audit/entries?action=peek", "action must be one of"),
        ("/v1/audit/entries?outcome=maybe", "outcome must be one of"),
        ("/v1/audit/entries?from=2026-13-01", "from must be"),
        ("/v1/audit/entries?to=gisteren", "to must be"),
        (
            "/v1/audit/entries?from=2026-12-02&to=2026-12-01",
            "to must be after from",
        ),
        (
            "/v1/audit/entries?from=2026-12-02T10:00:00Z&to=2026-12-02T10:00:00Z",
            "to must be after from",
        ),
        ("/v1/audit/entries?limit=0", "limit"),
        ("/v1/audit/entries?limit=1001", "limit"),
        ("/v1/audit/entries?limit=veel", "limit"),
        ("/v1/audit/entries?cursor=abc", "cursor"),
        ("/v1/audit/entries?order=up", "order"),
        ("/v1/audit/entries?network=nergens", "network"),
        ("/v1/audit/entries?actor=", "actor"),
        ("/v1/audit/entries?format=csv", "`format`"),
        ("/v1/audit/export?format=xml", "format"),
        ("/v1/audit/export?limit=5", "`limit`"),
        (
            "/v1/audit/views/users?from=2026-12-01",
            "from and to are required",
        ),
        (
            "/v1/audit/views/days?to=2026-12-01",
            "from and to are required",
        ),
        (
            "/v1/audit/views/days?from=2026-12-01&to=2026-12-01&order=desc",
            "`order`",
        ),
        (
            "/v1/audit/anomalies?from=2026-12-01&to=2026-12-01&factor=0",
            "factor",
        ),
        (
            "/v1/audit/anomalies?from=2026-12-01&to=2026-12-01&min_refused=0",
            "min_refused",
        ),
        (
            "/v1/audit/anomalies?from=2026-12-01&to=2026-12-01&min_matches=-1",
            "min_matches",
        ),
        (
            "/v1/audit/anomalies?from=2026-12-01&to=2026-12-01&factor=veel",
            "factor",
        ),
        ("/v1/audit/checkpoints?limit=0", "limit"),
        ("/v1/audit/checkpoints?before=gisteren", "before"),
    ];
    for (path, detail) in cases {
        let (s, body, e) = log.one(&app, app.get(path, &fg).await).await;
        assert_eq!(s, 400, "{path}: {body}");
        assert_eq!(
            body["type"], "urn:samenloop:problem:invalid-query",
            "{path}"
        );
        let d = body["detail"].as_str().unwrap_or_default();
        assert!(
            d.contains(detail),
            "{path}: the detail {d:?} names {detail}"
        );
        let operation = format!("GET {}", path.split('?').next().unwrap());
        has(
            &e,
            json!({"outcome": "invalid", "operation": operation, "actor": "fg-noord",
                   "role": "privacy_officer", "object_id": null}),
        );
    }
    // The query string (which could hold anything) is not in the log.
    let all = app.audit_export(&fg, "").await;
    assert!(!all.contains("colour") && !all.contains("gisteren") && !all.contains("veel"));
}
