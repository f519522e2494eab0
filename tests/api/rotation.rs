//! The rotation of the index key `K_index` in place (spec/index-key-rotation.md): online,
//! with intake going on, resumed after a stop, and leaving no key of the old epoch.

use crate::helpers::*;
use samenloop::http::auth::Role;
use samenloop::pseudonym::{PersonFields, Pseudonym};
use serde_json::{Value, json};
use std::time::Duration;

const NOORD: &str = "zorgnetwerk-noord";
const ROT: &str = "/v1/admin/index-key/rotation";

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A server whose index key lives in a directory of its own, with a second key file
/// `idx-2.toml` (key id `idx-dev-2`) there, re-keying one signal per chunk, `pause_ms`
/// apart, so that a test can act while the rotation runs.
async fn app_with_keys(pause_ms: u64) -> (TestApp, tempfile::TempDir) {
    let (keys, index_key) = index_key_dir();
    write_index_key(keys.path(), "idx-2.toml", "idx-dev-2", 0x5a);
    let app = spawn_app_with(move |cfg| {
        cfg.domain.index_key_file = index_key;
        cfg.limits.rotation_chunk_signals = 1;
        cfg.limits.rotation_pause_ms = pause_ms;
    })
    .await;
    (app, keys)
}

fn admin(app: &TestApp) -> String {
    app.token(Role::Admin, "gemeente", &[])
}

async fn submit(app: &TestApp, org: &str, subject: samenloop::pseudonym::SubjectFields) -> String {
    let resp = app
        .post(
            "/v1/signals",
            &app.partner(org),
            &app.signal(NOORD, subject),
        )
        .await;
    assert_eq!(resp.status(), 201);
    resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn status(app: &TestApp) -> Value {
    let resp = app.get(ROT, &admin(app)).await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

async fn wait_done(app: &TestApp) -> Value {
    for _ in 0..600 {
        let s = status(app).await;
        if s["state"] == "done" {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the rotation did not finish: {}", status(app).await);
}

/// (type, match handle) of the network's events, oldest first.
async fn events(app: &TestApp) -> Vec<(String, String)> {
    let page: Value = app
        .get(
            &format!("/v1/networks/{NOORD}/events?limit=500"),
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
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_string(),
                e["match"]["handle"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

async fn subject_ids(app: &TestApp, subject: samenloop::pseudonym::SubjectFields) -> Vec<String> {
    let po = app.privacy_officer("fg", &[NOORD]);
    let resp = app
        .post(
            "/v1/audit/subject-access",
            &po,
            &json!({"subject": app.keys(subject)}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await.unwrap();
    let mut ids: Vec<String> = answer["signals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

/// Every P1 of the subjects' key sets (person, household, family).
fn p1s(app: &TestApp, subjects: &[samenloop::pseudonym::SubjectFields]) -> Vec<Pseudonym> {
    let mut out = Vec::new();
    for s in subjects {
        let keys = app.keys(s.clone());
        let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
        let family = list(&keys["family"]).into_iter().flat_map(|f| list(&f));
        for k in list(&keys["person"])
            .into_iter()
            .chain(list(&keys["household"]))
            .chain(family)
        {
            out.push(Pseudonym::from_wire(k.as_str().unwrap()).unwrap());
        }
    }
    out
}

fn marieke(reference: &str) -> samenloop::pseudonym::SubjectFields {
    with_address(
        person(reference, "Marieke", "de Vries", "1985-03-07"),
        "1234 AB",
        "5",
    )
}

fn kees(reference: &str) -> samenloop::pseudonym::SubjectFields {
    let mut s = person(reference, "Kees", "Bakker", "2014-09-01");
    s.parents = vec![PersonFields {
        given_names: "Anja".into(),
        family_name: "Bakker".into(),
        birth_date: "1982-02-02".into(),
        ..Default::default()
    }];
    s
}

fn filler(i: usize) -> samenloop::pseudonym::SubjectFields {
    person(
        &format!("F-{i}"),
        ["Jan", "Piet", "Joris", "Corneel", "Bram", "Sem"][i % 6],
        ["Smit", "Visser", "Mulder", "Bos", "Peters", "Hendriks"][i % 6],
        &format!("19{}-0{}-1{}", 50 + i, 1 + i % 8, i % 9),
    )
}

#[tokio::test]
async fn a_rotation_runs_online_keeps_every_match_and_leaves_no_old_key() {
    let (app, keys) = app_with_keys(150).await;
    // Two matches before the rotation, filler signals, and an archived signal (last,
    // so that the rotation reaches it last).
    submit(&app, "woonstad", marieke("W-M")).await;
    submit(&app, "politie", marieke("P-M")).await;
    submit(&app, "woonstad", kees("W-K")).await;
    submit(&app, "politie", kees("P-K")).await;
    for i in 0..6 {
        submit(&app, "ggz-noord", filler(i)).await;
    }
    let gone = person("W-GONE", "Truus", "Oosterhuis", "1950-05-05");
    let gone_id = submit(&app, "woonstad", gone.clone()).await;
    let resp = app
        .post(
            &format!("/v1/signals/{gone_id}/withdraw"),
            &app.partner("woonstad"),
            &json!({"reason": "concern_over"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    // An answer left unread would hold its connection, and so the graceful stop.
    drop(resp);
    let before = events(&app).await;
    assert_eq!(
        before.iter().filter(|(t, _)| t == "match.formed").count(),
        2,
        "{before:?}"
    );
    let marieke_match = before[0].1.clone();
    let idle = status(&app).await;
    assert_eq!(
        (&idle["state"], &idle["epoch"]),
        (&json!("idle"), &json!(0))
    );
    let marieke_before = subject_ids(&app, marieke("x")).await;
    assert_eq!(marieke_before.len(), 2);

    // Only the operator may rotate or look: a partner and a coordinator are refused by
    // role (the endpoint names no object of theirs).
    for token in [app.partner("woonstad"), app.coordinator(NOORD)] {
        expect_problem(
            app.post(ROT, &token, &json!({"key_file": "idx-2.toml"}))
                .await,
            403,
            "forbidden-role",
        )
        .await;
        expect_problem(app.get(ROT, &token).await, 403, "forbidden-role").await;
    }
    // Bad key files: precise problems, nothing changes.
    std::fs::write(
        keys.path().join("domain.toml"),
        "format = \"samenloop-domain-key/1\"\nkey_id = \"d\"\nsecret = \"00\"\n",
    )
    .unwrap();
    write_index_key(keys.path(), "same-id.toml", "idx-dev-1", 0x77);
    let outside = tempfile::tempdir().unwrap();
    write_index_key(outside.path(), "out.toml", "idx-out", 0x78);
    for (file, status, code) in [
        ("../idx-2.toml", 422, "invalid-key-file"),
        ("sub/idx-2.toml", 422, "invalid-key-file"),
        ("..", 422, "invalid-key-file"),
        ("", 422, "invalid-key-file"),
        ("missing.toml", 422, "invalid-key-file"),
        ("domain.toml", 422, "invalid-key-file"),
        ("same-id.toml", 409, "key-id-in-ring"),
    ] {
        let body = expect_problem(
            app.post(ROT, &admin(&app), &json!({"key_file": file}))
                .await,
            status,
            code,
        )
        .await;
        assert!(!body.to_string().contains("7777"), "no secret in {body}");
    }
    let abs = outside.path().join("out.toml");
    expect_problem(
        app.post(ROT, &admin(&app), &json!({"key_file": abs})).await,
        422,
        "invalid-key-file",
    )
    .await;
    expect_problem(
        app.post(ROT, &admin(&app), &json!({"key": "idx-2.toml"}))
            .await,
        422,
        "invalid-body",
    )
    .await;
    assert_eq!(status(&app).await, idle, "nothing changed");

    // The rotation starts: the switch is durable at the 202.
    let resp = app
        .post(ROT, &admin(&app), &json!({"key_file": "idx-2.toml"}))
        .await;
    assert_eq!(resp.status(), 202);
    let started: Value = resp.json().await.unwrap();
    assert_eq!(started["epoch"], 1, "{started}");
    assert_eq!(started["key_ids"], json!(["idx-dev-1", "idx-dev-2"]));
    assert_eq!(started["to_key_id"], "idx-dev-2");
    assert_eq!(started["signals_total"], 11);
    // A second start while it runs.
    write_index_key(keys.path(), "idx-3.toml", "idx-dev-3", 0x6b);
    expect_problem(
        app.post(ROT, &admin(&app), &json!({"key_file": "idx-3.toml"}))
            .await,
        409,
        "rotation-running",
    )
    .await;
    expect_problem(
        app.post(ROT, &admin(&app), &json!({"key_file": "idx-2.toml"}))
            .await,
        409,
        "key-id-in-ring",
    )
    .await;

    // During it: a new organisation joins Marieke's match (one join alert, no second
    // "formed"), and the privacy officer still finds everyone, the archived signal too.
    let running = status(&app).await;
    assert_eq!(running["state"], "running", "{running}");
    submit(&app, "ggz-noord", marieke("G-M")).await;
    let during = events(&app).await;
    let new: Vec<_> = during[before.len()..].to_vec();
    assert_eq!(
        new,
        vec![(
            "match.organisation_joined".to_string(),
            marieke_match.clone()
        )],
        "{during:?}"
    );
    assert_eq!(subject_ids(&app, marieke("x")).await.len(), 3);
    assert_eq!(subject_ids(&app, gone.clone()).await, vec![gone_id.clone()]);
    let m = app.metrics().await;
    assert!(m.contains("samenloop_index_key_epoch 1"), "{m}");

    let done = wait_done(&app).await;
    assert_eq!(done["signals_rekeyed"], 11, "{done}");
    assert!(done["keys_rekeyed"].as_u64().unwrap() > 11, "{done}");
    assert!(done["finished_at"].is_string(), "{done}");
    let m = app.metrics().await;
    for line in [
        "samenloop_index_key_rotation_running 0",
        "samenloop_index_key_rotation_signals_rekeyed 11",
        "samenloop_index_key_rotation_remaining_signals 0",
    ] {
        assert!(m.contains(line), "{line} in\n{m}");
    }
    // After it: matching with freshly derived keys (Kees's match gets a third
    // organisation), subject access, and a new rotation may start.
    submit(&app, "ggz-noord", kees("G-K")).await;
    let after = events(&app).await;
    assert_eq!(
        after.last().map(|(t, _)| t.as_str()),
        Some("match.organisation_joined"),
        "{after:?}"
    );
    assert_eq!(
        after.iter().filter(|(t, _)| t == "match.formed").count(),
        2,
        "no match formed twice: {after:?}"
    );
    assert_eq!(subject_ids(&app, gone.clone()).await, vec![gone_id.clone()]);
    assert_eq!(subject_ids(&app, marieke("x")).await.len(), 3);

    // No P2 (nor content hash) of the old epoch is left in any tree; the new ones are there.
    let cfg = app.cfg.clone();
    let ring0 = samenloop::http::startup::load_index_key(&cfg).unwrap();
    let ring1 = ring0.with_epoch("idx-dev-2".into(), [0x5a; 32]);
    let subjects = [marieke("x"), kees("x"), gone.clone()];
    let p1 = p1s(&app, &subjects);
    let mut fillers = Vec::new();
    for i in 0..6 {
        fillers.push(filler(i));
    }
    let p1_fill = p1s(&app, &fillers);
    let dump = app.stop_and_dump().await;
    let scan = |needle: &[u8; 32]| {
        dump.iter()
            .any(|(k, v)| contains(k, needle) || contains(v, needle))
    };
    for p in p1.iter().chain(&p1_fill) {
        assert!(!scan(&ring0.rekey(p).p2), "an epoch-0 key is left");
    }
    assert!(
        p1.iter().any(|p| scan(&ring1.rekey(p).p2)),
        "the epoch-1 keys are stored"
    );
    let signals: Vec<_> = dump
        .iter()
        .filter(|(k, _)| k.first() == Some(&b's') && k.len() == 9)
        .map(|(_, v)| samenloop::index::model::SignalRecord::decode(v).unwrap())
        .collect();
    assert_eq!(signals.len(), 13);
    assert!(signals.iter().all(|s| s.epoch == 1));
}

#[tokio::test]
async fn a_rotation_stopped_halfway_resumes_at_the_next_start_and_loses_nothing() {
    let (mut app, keys) = app_with_keys(200).await;
    submit(&app, "woonstad", marieke("W-M")).await;
    submit(&app, "politie", marieke("P-M")).await;
    submit(&app, "woonstad", kees("W-K")).await;
    submit(&app, "politie", kees("P-K")).await;
    for i in 0..8 {
        submit(&app, "ggz-noord", filler(i)).await;
    }
    let before = events(&app).await;
    assert_eq!(before.len(), 2, "{before:?}");
    let resp = app
        .post(ROT, &admin(&app), &json!({"key_file": "idx-2.toml"}))
        .await;
    assert_eq!(resp.status(), 202);
    drop(resp);
    // Stop after a few chunks, in the middle.
    let mut seen = Value::Null;
    for _ in 0..200 {
        seen = status(&app).await;
        if seen["signals_rekeyed"].as_u64().unwrap() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen["state"], "running", "{seen}");
    app.stop_server().await;

    // The ring's files are needed at start: a missing one or one with another key id
    // is a clear start error.
    let file = keys.path().join("idx-2.toml");
    let text = std::fs::read(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    let err = app
        .start_error()
        .expect("no start without the ring's key file");
    assert!(
        err.contains("epoch 1") && err.contains("idx-dev-2") && err.contains("idx-2.toml"),
        "{err}"
    );
    write_index_key(keys.path(), "idx-2.toml", "idx-dev-9", 0x5a);
    let err = app.start_error().expect("no start with another key id");
    assert!(
        err.contains("idx-dev-9") && err.contains("idx-dev-2"),
        "{err}"
    );
    std::fs::write(&file, text).unwrap();

    app.start_server();
    let resumed = status(&app).await;
    assert_eq!(resumed["epoch"], 1, "{resumed}");
    let halfway = resumed["signals_rekeyed"].as_u64().unwrap();
    assert!(
        resumed["state"] == "running" && halfway < 12,
        "stopped in the middle: {resumed}"
    );
    // Intake goes on while it resumes: a third organisation joins Marieke's match.
    submit(&app, "ggz-noord", marieke("G-M")).await;
    let done = wait_done(&app).await;
    assert_eq!(
        done["signals_rekeyed"], 12,
        "each record re-written once: {done}"
    );
    assert_eq!(done["signals_total"], 12, "{done}");
    // Nothing lost: both matches, the join, and a join after the rotation.
    submit(&app, "ggz-noord", kees("G-K")).await;
    let after = events(&app).await;
    let kinds: Vec<&str> = after.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        kinds,
        vec![
            "match.formed",
            "match.formed",
            "match.organisation_joined",
            "match.organisation_joined"
        ],
        "{after:?}"
    );
    assert_eq!(after[2].1, before[0].1);
    assert_eq!(after[3].1, before[1].1);
    assert_eq!(subject_ids(&app, kees("x")).await.len(), 3);
    let cfg = app.cfg.clone();
    let ring0 = samenloop::http::startup::load_index_key(&cfg).unwrap();
    let p1 = p1s(&app, &[marieke("x"), kees("x")]);
    let dump = app.stop_and_dump().await;
    for p in &p1 {
        let old = ring0.rekey(p).p2;
        assert!(
            !dump
                .iter()
                .any(|(k, v)| contains(k, &old) || contains(v, &old)),
            "an epoch-0 key is left"
        );
    }
}

/// An address put on the excluded list through the admin API before a rotation is still
/// excluded after it (its key moved epoch at the switch), is listed under the same id,
/// and taken off the list links households again: the list and the ring agree.
#[tokio::test]
async fn an_excluded_address_stays_excluded_across_a_rotation_and_can_be_removed_after() {
    let (app, _keys) = app_with_keys(0).await;
    let root = admin(&app);
    let shelter = |r: &str, given: &str, born: &str| {
        with_address(person(r, given, "Visser", born), "1011 AB", "5")
    };
    let keys = app.keys(shelter("X", "Anna", "1980-01-01"));
    let resp = app
        .post(
            "/v1/admin/excluded-addresses",
            &root,
            &json!({"key_id": keys["key_id"], "key": keys["household"][0], "label": "Opvang De Haven"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let id = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    submit(&app, "woonstad", shelter("W-1", "Anna", "1980-01-01")).await;

    let resp = app
        .post(ROT, &root, &json!({"key_file": "idx-2.toml"}))
        .await;
    assert_eq!(resp.status(), 202);
    drop(resp);
    let done = wait_done(&app).await;
    assert_eq!(done["excluded_moved"], 1, "{done}");

    // The same entry, and the same key refused as a duplicate: it is found in the new epoch.
    let list: Value = app
        .get("/v1/admin/excluded-addresses", &root)
        .await
        .json()
        .await
        .unwrap();
    let entries = list["excluded_addresses"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{list}");
    assert_eq!(entries[0]["id"], json!(id));
    let resp = app
        .post(
            "/v1/admin/excluded-addresses",
            &root,
            &json!({"key_id": keys["key_id"], "key": keys["household"][0], "label": "Twice"}),
        )
        .await;
    expect_problem(resp, 409, "already-exists").await;

    // A second resident, of another organisation: still no household match.
    submit(&app, "ggz-noord", shelter("G-1", "Bram", "1975-03-04")).await;
    let formed = |ev: &[(String, String)]| ev.iter().filter(|(t, _)| t == "match.formed").count();
    assert_eq!(formed(&events(&app).await), 0);

    // Off the list: the next resident links the household with both.
    let resp = app
        .client
        .delete(format!("{}/v1/admin/excluded-addresses/{id}", app.base))
        .bearer_auth(&root)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    submit(&app, "politie", shelter("P-1", "Cas", "2001-09-09")).await;
    assert_eq!(formed(&events(&app).await), 1);
}
