//! The domain-key transition: a new key id is accepted beside the old one, partners
//! resubmit their signals by reference under it (idempotently) without losing a match or
//! raising a second alert, and retiring the old key id ends what was not resubmitted and
//! leaves nothing of the old keys of what was.

use crate::helpers::*;
use samenloop::http::auth::Role;
use samenloop::pseudonym::{Date, DomainKey, KeyId, SubjectFields, pseudonymise};
use serde_json::{Value, json};

const NOORD: &str = "zorgnetwerk-noord";
const NEW_KEY: &str = "regio-2027-1";

fn admin(app: &TestApp) -> String {
    app.token_as(Role::Admin, "beheer", "beheerder", &[])
}

fn new_key() -> DomainKey {
    DomainKey::new(KeyId::parse(NEW_KEY).unwrap(), [42; 32])
}

/// A signal body with the key set under `key`.
fn signal_with(key: &DomainKey, s: SubjectFields) -> Value {
    let k = pseudonymise(key, &s, Date::new(2026, 1, 1).unwrap()).unwrap();
    json!({
        "network": NOORD,
        "subject": serde_json::from_str::<Value>(&k.to_json()).unwrap(),
        "contact": { "name": "Wijkteam Noord" },
    })
}

async fn events(app: &TestApp) -> Vec<String> {
    let page: Value = app
        .get(
            &format!("/v1/networks/{NOORD}/events"),
            &app.coordinator(NOORD),
        )
        .await
        .json()
        .await
        .unwrap();
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

async fn the_match(app: &TestApp) -> Value {
    let coord = app.coordinator(NOORD);
    let page: Value = app
        .get(&format!("/v1/networks/{NOORD}/matches"), &coord)
        .await
        .json()
        .await
        .unwrap();
    let list = page["matches"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{page}");
    let handle = list[0]["handle"].as_str().unwrap();
    app.get(&format!("/v1/matches/{handle}"), &coord)
        .await
        .json()
        .await
        .unwrap()
}

async fn key_ids(app: &TestApp) -> Vec<Value> {
    let v: Value = app
        .get("/v1/admin/domain-keys", &admin(app))
        .await
        .json()
        .await
        .unwrap();
    v["key_ids"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_domain_key_transition_keeps_every_match_and_retirement_ends_the_rest() {
    let app = spawn_app().await;
    let root = admin(&app);
    let (w, p, g) = (
        app.partner("woonstad"),
        app.partner("politie"),
        app.partner("ggz-noord"),
    );
    let marieke = |r: &str| person(r, "Marieke", "Jansen", "1984-03-12");
    let resp = app
        .post("/v1/signals", &w, &app.signal(NOORD, marieke("W-1")))
        .await;
    assert_eq!(resp.status(), 201);
    let wid = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let resp = app
        .post("/v1/signals", &p, &app.signal(NOORD, marieke("P-1")))
        .await;
    assert_eq!(resp.status(), 201);
    let pid = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = the_match(&app).await;
    assert_eq!(events(&app).await, vec!["match.formed"]);

    // Not yet accepted: refused.
    let resp = app
        .post("/v1/signals", &w, &signal_with(&new_key(), marieke("W-1")))
        .await;
    expect_problem(resp, 422, "unknown-key-id").await;
    for (body, status, code) in [
        (json!({"key_id": "Not Valid"}), 422, "invalid-field"),
        (json!({"key_id": "dev-2026"}), 409, "already-exists"),
        (json!({"id": NEW_KEY}), 422, "invalid-body"),
    ] {
        let resp = app.post("/v1/admin/domain-keys", &root, &body).await;
        expect_problem(resp, status, code).await;
    }
    let resp = app
        .post("/v1/admin/domain-keys", &root, &json!({"key_id": NEW_KEY}))
        .await;
    assert_eq!(resp.status(), 201);
    let ids = key_ids(&app).await;
    assert_eq!(
        ids.iter()
            .map(|k| (
                k["key_id"].as_str().unwrap(),
                k["current"].as_bool().unwrap()
            ))
            .collect::<Vec<_>>(),
        vec![("dev-2026", false), (NEW_KEY, true)]
    );

    // Woonstad re-pseudonymises and resubmits by reference: the same signal, the same
    // match, no alert.
    let again = signal_with(&new_key(), marieke("W-1"));
    for _ in 0..2 {
        let resp = app.post("/v1/signals", &w, &again).await;
        assert_eq!(resp.status(), 200, "idempotent");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["id"], wid);
        assert_eq!(v["status"], "active");
    }
    let after = the_match(&app).await;
    assert_eq!(after["handle"], before["handle"]);
    assert_eq!(
        after.to_string().matches(&wid).count(),
        before.to_string().matches(&wid).count(),
        "shown once: {after}"
    );
    assert_eq!(events(&app).await, vec!["match.formed"], "no second alert");
    // The old key set again: the signal holds the newest one now.
    let resp = app
        .post("/v1/signals", &w, &app.signal(NOORD, marieke("W-1")))
        .await;
    expect_problem(resp, 409, "reference-conflict").await;

    // A third organisation, already on the new key, joins the match through Woonstad.
    let resp = app
        .post("/v1/signals", &g, &signal_with(&new_key(), marieke("G-1")))
        .await;
    assert_eq!(resp.status(), 201);
    assert_eq!(
        events(&app).await,
        vec!["match.formed", "match.organisation_joined"]
    );
    // Late on the old key, the police (not yet resubmitted) still meet Woonstad too:
    // the old keys are held until the old key id is retired.
    let resp = app
        .post("/v1/signals", &p, &app.signal(NOORD, marieke("P-2")))
        .await;
    assert_eq!(resp.status(), 201);
    assert_eq!(
        events(&app).await.len(),
        2,
        "the police were in the match already"
    );

    // Retirement: the newest key id cannot go; the old one can, once.
    let resp = app
        .post(
            &format!("/v1/admin/domain-keys/{NEW_KEY}/retire"),
            &root,
            &json!({}),
        )
        .await;
    expect_problem(resp, 409, "invalid-transition").await;
    let resp = app
        .post("/v1/admin/domain-keys/nope/retire", &root, &json!({}))
        .await;
    expect_problem(resp, 404, "not-found").await;
    let resp = app
        .post("/v1/admin/domain-keys/dev-2026/retire", &root, &json!({}))
        .await;
    assert_eq!(resp.status(), 200);
    let resp = app
        .post("/v1/admin/domain-keys/dev-2026/retire", &root, &json!({}))
        .await;
    expect_problem(resp, 409, "invalid-transition").await;
    let resp = app
        .post("/v1/signals", &p, &app.signal(NOORD, marieke("P-3")))
        .await;
    expect_problem(resp, 422, "unknown-key-id").await;
    // The sweep runs in the background; a retention run finishes it if need be.
    let mut swept = false;
    for _ in 0..100 {
        let ids = key_ids(&app).await;
        if ids[0]["swept"] == true {
            swept = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(swept, "the sweep finished");
    let run: Value = app
        .post("/v1/admin/retention/run", &root, &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(run["ended_by_key_retirement"], 0, "nothing left: {run}");

    // The police's signals under the old key ended; Woonstad's signal lives on.
    for (id, token, status) in [(&pid, &p, "expired"), (&wid, &w, "active")] {
        let v: Value = app
            .get(&format!("/v1/signals/{id}"), token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(v["status"], status, "{v}");
    }
    let m = the_match(&app).await;
    assert_eq!(m["handle"], before["handle"]);
    assert_eq!(m["status"], "open", "Woonstad and GGZ remain: {m}");
    assert!(!m.to_string().contains(&pid), "{m}");

    // The access log has the admin changes and the sweep.
    let po = app.privacy_officer("fg", &[NOORD]);
    let logged = app.audit_entries(&po, &format!("object={pid}")).await;
    assert!(
        logged
            .iter()
            .any(|e| e["operation"] == "domain key retirement" && e["actor"] == "samenloop"),
        "{logged:?}"
    );
    let changes = app.audit_entries(&po, "object=dev-2026").await;
    assert!(
        changes
            .iter()
            .any(|e| e["action"] == "update" && e["status"] == 200)
    );

    // Nothing of Woonstad's shadow is left: one record of its signal, no shadow keys.
    let dump = app.stop_and_dump().await;
    assert!(
        !dump.iter().any(|(k, _)| k.first() == Some(&b'D')),
        "no shadow keys"
    );
    let woonstad_records = dump
        .iter()
        .filter(|(k, _)| k.len() == 9 && k[0] == b's')
        .filter_map(|(_, v)| samenloop::index::model::SignalRecord::decode(v))
        .filter(|r| r.org == "woonstad")
        .count();
    assert_eq!(woonstad_records, 1);
}
