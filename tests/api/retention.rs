//! The lifecycle of signals: an unjustified withdrawal erases everything of the signal
//! (checked by scanning every sled tree), and the match it alone made possible closes.

use crate::helpers::*;
use samenloop::pseudonym::{PersonFields, Pseudonym};
use serde_json::{Value, json};

const NOORD: &str = "zorgnetwerk-noord";

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn an_unjustified_withdrawal_erases_the_signal_from_every_tree() {
    let app = spawn_app().await;
    let (w, p) = (app.partner("woonstad"), app.partner("politie"));
    // The signal to erase: a person at an address nobody else has, with a parent.
    let mut erased = with_address(
        person("ERASE-1", "Fenna", "Zwartjes", "2012-04-09"),
        "9999 ZZ",
        "77",
    );
    erased.parents = vec![PersonFields {
        given_names: "Gerrit".into(),
        family_name: "Zwartjes".into(),
        birth_date: "1980-01-30".into(),
        ..Default::default()
    }];
    let mut body = app.signal(NOORD, erased.clone());
    body["contact"] = json!({"name": "Team Uitwissen", "phone": "+31 6 1111 2222",
                             "email": "uitwissen@woonstad.example"});
    let resp = app.post("/v1/signals", &w, &body).await;
    assert_eq!(resp.status(), 201);
    let sig: Value = resp.json().await.unwrap();
    let id = sig["id"].as_str().unwrap().to_string();
    // The police signal the same child (no address, no parent): a person match.
    let other = app.signal(NOORD, person("P-ERASE", "Fenna", "Zwartjes", "2012-04-09"));
    assert_eq!(app.post("/v1/signals", &p, &other).await.status(), 201);
    let coord = app.coordinator(NOORD);
    let page: Value = app
        .get(&format!("/v1/networks/{NOORD}/matches"), &coord)
        .await
        .json()
        .await
        .unwrap();
    let handle = page["matches"][0]["handle"].as_str().unwrap().to_string();

    let resp = app
        .post(
            &format!("/v1/signals/{id}/withdraw"),
            &w,
            &json!({"reason": "unjustified"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let last: Value = resp.json().await.unwrap();
    assert_eq!(
        (&last["status"], &last["withdraw_reason"]),
        (&Value::from("withdrawn"), &Value::from("unjustified"))
    );
    // Gone for the partner: by id, by reference, and the reference is free again.
    expect_problem(
        app.get(&format!("/v1/signals/{id}"), &w).await,
        404,
        "not-found",
    )
    .await;
    expect_problem(
        app.get(
            &format!("/v1/signals?network={NOORD}&reference=ERASE-1"),
            &w,
        )
        .await,
        404,
        "not-found",
    )
    .await;
    // The match it alone made possible is closed; the coordinator sees no trace of it.
    let m: Value = app
        .get(&format!("/v1/matches/{handle}"), &coord)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        m["networks"][0]["follow_up"]["closed_reason"], "withdrawn",
        "{m}"
    );
    assert!(!m.to_string().contains("Uitwissen"), "{m}");

    // Every sled tree, scanned.
    let keys = app.keys(erased);
    let cfg = app.cfg.clone();
    let index_key = samenloop::http::startup::load_index_key(&cfg).unwrap();
    let mut own_p2 = Vec::new();
    for k in keys["household"].as_array().unwrap().iter().chain(
        keys["family"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|f| f.as_array().unwrap()),
    ) {
        let p1 = Pseudonym::from_wire(k.as_str().unwrap()).unwrap();
        own_p2.push(index_key.rekey(&p1).p2);
    }
    assert!(!own_p2.is_empty());
    let dump = app.stop_and_dump().await;
    assert!(!dump.is_empty());
    for (k, v) in &dump {
        // The access log keeps the public id (ids only): its entries `L` and its
        // per-object index `O`.
        let log = matches!(k.first(), Some(b'L' | b'O' | b'U'));
        for (what, needle) in [
            ("reference", b"ERASE-1".as_slice()),
            ("contact name", b"Team Uitwissen"),
            ("contact phone", b"1111 2222"),
            ("contact e-mail", b"uitwissen@"),
        ] {
            assert!(
                !contains(k, needle) && !contains(v, needle),
                "the {what} survived in {:?}",
                String::from_utf8_lossy(k)
            );
        }
        if !log {
            assert!(
                !contains(k, id.as_bytes()) && !contains(v, id.as_bytes()),
                "the public id survived in {:?}",
                String::from_utf8_lossy(k)
            );
        }
        for p2 in &own_p2 {
            assert!(
                !contains(k, p2) && !contains(v, p2),
                "a key of the signal survived in {:?}",
                String::from_utf8_lossy(k)
            );
        }
    }
    // The access log still names it: the submission and the withdrawal.
    let named: Vec<&(Vec<u8>, Vec<u8>)> = dump
        .iter()
        .filter(|(k, v)| k.first() == Some(&b'L') && contains(v, id.as_bytes()))
        .collect();
    assert!(named.len() >= 2, "{}", named.len());
}

const DAY: i64 = 86_400;

async fn run(app: &TestApp, dry_run: bool) -> Value {
    let admin = app.token(samenloop::http::auth::Role::Admin, "gemeente", &[]);
    let resp = app
        .post(
            "/v1/admin/retention/run",
            &admin,
            &json!({ "dry_run": dry_run }),
        )
        .await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

async fn submit(app: &TestApp, org: &str, reference: &str, days: u32) -> String {
    let mut body = app.signal(NOORD, person(reference, "Sanne", "Kwakman", "1990-06-15"));
    body["valid_days"] = json!(days);
    let resp = app.post("/v1/signals", &app.partner(org), &body).await;
    assert_eq!(resp.status(), 201);
    resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn status(app: &TestApp, org: &str, id: &str) -> (u16, Value) {
    let resp = app
        .get(&format!("/v1/signals/{id}"), &app.partner(org))
        .await;
    let s = resp.status().as_u16();
    (s, resp.json().await.unwrap())
}

async fn event_types(app: &TestApp) -> Vec<String> {
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
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn expiry_stops_matching_at_the_moment_and_the_job_archives_and_later_erases() {
    let app = spawn_app_with(|c| {
        c.retention.archive_days = 30;
        c.retention.run_every_secs = 86_400;
    })
    .await;
    // Exact moments: the server's clock moves only when the test says so.
    app.freeze();
    let short = submit(&app, "woonstad", "EXP-W", 10).await;
    submit(&app, "politie", "EXP-P", 365).await;
    let coord = app.coordinator(NOORD);
    let orgs = |m: &Value| m["matches"][0]["organisations"].as_u64().unwrap();
    let matches = || async {
        app.get(&format!("/v1/networks/{NOORD}/matches"), &coord)
            .await
            .json::<Value>()
            .await
            .unwrap()
    };
    assert_eq!(orgs(&matches().await), 2);

    // One second before its end it counts; at its end it does not.
    app.advance(10 * DAY - 1);
    assert_eq!(status(&app, "woonstad", &short).await.1["status"], "active");
    assert_eq!(orgs(&matches().await), 2);
    app.advance(1);
    assert_eq!(
        status(&app, "woonstad", &short).await.1["status"],
        "expired"
    );
    assert_eq!(orgs(&matches().await), 1);

    // A dry run lists it and changes nothing.
    let plan = run(&app, true).await;
    assert_eq!(plan["archived"], 1, "{plan}");
    assert_eq!(plan["to_archive"][0]["id"], short.as_str(), "{plan}");
    assert_eq!(plan["to_archive"][0]["organisation"], "woonstad");
    assert!(
        !event_types(&app)
            .await
            .contains(&"match.dissolved".to_string())
    );
    // The run archives it: the match, left with one organisation, is dissolved.
    let done = run(&app, false).await;
    assert_eq!(
        (&done["archived"], &done["erased"], &done["alerts"]),
        (&json!(1), &json!(0), &json!(1)),
        "{done}"
    );
    assert!(
        event_types(&app)
            .await
            .contains(&"match.dissolved".to_string())
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("samenloop_retention_total{phase=\"archive\"} 1\n"),
        "{metrics}"
    );
    // A second run has nothing to do.
    let again = run(&app, false).await;
    assert_eq!(
        (&again["archived"], &again["erased"]),
        (&json!(0), &json!(0))
    );
    // Archived: a data-subject access request still finds it.
    let fg = app.token(
        samenloop::http::auth::Role::PrivacyOfficer,
        "gemeente",
        &[NOORD],
    );
    let dsar: Value = app
        .post(
            "/v1/audit/subject-access",
            &fg,
            &json!({"subject": app.keys(person("X", "Sanne", "Kwakman", "1990-06-15"))}),
        )
        .await
        .json()
        .await
        .unwrap();
    let found: Vec<&str> = dsar["signals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert!(found.contains(&short.as_str()), "{dsar}");

    // Thirty days after its end: erased.
    app.advance(30 * DAY - 1);
    assert_eq!(run(&app, false).await["erased"], 0);
    app.advance(1);
    let done = run(&app, false).await;
    assert_eq!(done["erased"], 1, "{done}");
    assert_eq!(status(&app, "woonstad", &short).await.0, 404);
    // Both steps are in the access log, by the index, naming the signal.
    let log = app.audit_entries(&fg, &format!("object={short}")).await;
    let by_index: Vec<&str> = log
        .iter()
        .filter(|e| e["actor"] == "samenloop")
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(by_index, ["archive", "erase"], "{log:#?}");
}

#[tokio::test]
async fn renewal_moves_the_expiry_and_a_concern_over_withdrawal_is_erased_after_the_archive_period()
{
    let app = spawn_app_with(|c| {
        c.retention.archive_days = 30;
        c.retention.run_every_secs = 86_400;
    })
    .await;
    app.freeze();
    let w = app.partner("woonstad");
    let renewed = submit(&app, "woonstad", "REN-1", 10).await;
    let withdrawn = submit(&app, "woonstad", "WDR-1", 365).await;
    app.advance(9 * DAY);
    let resp = app
        .post(
            &format!("/v1/signals/{renewed}/renew"),
            &w,
            &json!({"valid_days": 30}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let resp = app
        .post(
            &format!("/v1/signals/{withdrawn}/withdraw"),
            &w,
            &json!({"reason": "concern_over"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    // Past the first end: the renewed signal is still active and nothing is archived.
    app.advance(2 * DAY);
    let done = run(&app, false).await;
    assert_eq!(
        (&done["archived"], &done["erased"]),
        (&json!(0), &json!(0)),
        "{done}"
    );
    assert_eq!(
        status(&app, "woonstad", &renewed).await.1["status"],
        "active"
    );
    // Thirty days after the withdrawal it goes; the renewed one (ended on day 39) waits
    // for its own archive period.
    app.advance(28 * DAY);
    let done = run(&app, false).await;
    assert_eq!(
        (&done["archived"], &done["erased"]),
        (&json!(1), &json!(1)),
        "{done}"
    );
    assert_eq!(status(&app, "woonstad", &withdrawn).await.0, 404);
    assert_eq!(
        status(&app, "woonstad", &renewed).await.1["status"],
        "expired"
    );
    // Only the admin may run it.
    expect_problem(
        app.post("/v1/admin/retention/run", &w, &json!({})).await,
        403,
        "forbidden-role",
    )
    .await;
}

#[tokio::test]
async fn access_log_entries_past_their_retention_are_pruned_behind_a_checkpoint_and_the_rest_verifies()
 {
    let app = spawn_app_with(|c| c.retention.run_every_secs = 86_400).await;
    let fg = app.token(
        samenloop::http::auth::Role::PrivacyOfficer,
        "gemeente",
        &[NOORD],
    );
    // Some history: a signal, reads, a checkpoint.
    let id = submit(&app, "woonstad", "LOG-1", 30).await;
    status(&app, "woonstad", &id).await;
    app.get("/v1/audit/entries", &fg).await;
    let old = app.audit_entries(&fg, "").await;
    let last_old = old.last().unwrap()["seq"].as_u64().unwrap();

    // Five years and a day later (1,826 days is the shortest the log may be kept).
    app.advance(1827 * DAY);
    status(&app, "woonstad", &id).await;
    let done = run(&app, false).await;
    let pruned = done["log_entries_pruned"].as_u64().unwrap();
    let through = done["log_pruned_through"].as_u64().unwrap();
    assert!(pruned > last_old, "{done}");
    assert_eq!(pruned, through, "{done}");
    // What is left verifies, from the checkpoint at the last pruned entry.
    let v: Value = app.get("/v1/audit/verify", &fg).await.json().await.unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["first_seq"], through + 1, "{v}");
    assert!(v["notes"].to_string().contains("pruned"), "{v}");
    // No entry of the first five years is left, and an export still verifies.
    let now = app.audit_entries(&fg, "").await;
    assert!(
        now.iter().all(|e| e["seq"].as_u64().unwrap() > through),
        "{now:#?}"
    );
    assert!(
        app.audit_entries(&fg, &format!("object={id}"))
            .await
            .iter()
            .all(|e| e["seq"].as_u64().unwrap() > through)
    );
    let text = app.get("/v1/audit/export", &fg).await.text().await.unwrap();
    let r = samenloop::audit::verify::verify_export(text.as_bytes(), None, Vec::new());
    assert!(r.ok, "{r:?}");
    // The pruning is itself in the log, naming the checkpoint.
    let pruning = app
        .audit_entries(&fg, &format!("object=cp_{through}"))
        .await;
    assert_eq!(pruning.len(), 1, "{pruning:#?}");
    assert_eq!(pruning[0]["action"], "erase");
    assert_eq!(pruning[0]["object_type"], "access_log");
}

#[tokio::test]
async fn a_closed_match_is_erased_after_the_networks_period_from_every_tree() {
    let app = spawn_app_with(|c| {
        c.retention.run_every_secs = 86_400;
        c.networks[0].closed_match_days = 30;
    })
    .await;
    app.freeze();
    let w_sig = submit(&app, "woonstad", "CLOSED-W", 365).await;
    submit(&app, "politie", "CLOSED-P", 365).await;
    let coord = app.coordinator(NOORD);
    let list = || async {
        let page: Value = app
            .get(&format!("/v1/networks/{NOORD}/matches"), &coord)
            .await
            .json()
            .await
            .unwrap();
        page["matches"].as_array().unwrap().clone()
    };
    let handle = list().await[0]["handle"].as_str().unwrap().to_string();
    for body in [
        json!({"action": "acknowledge"}),
        json!({"action": "close", "reason": "care_in_place"}),
    ] {
        let resp = app
            .post(&format!("/v1/matches/{handle}/follow-up"), &coord, &body)
            .await;
        assert_eq!(resp.status(), 200, "{body}");
    }
    let events: Value = app
        .get(&format!("/v1/networks/{NOORD}/events?limit=500"), &coord)
        .await
        .json()
        .await
        .unwrap();
    let event_ids: Vec<String> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(event_ids.len(), 3, "formed, followed up twice: {events}");

    // A second before the period ends it stays, dry or not.
    app.advance(30 * DAY - 1);
    let plan = run(&app, true).await;
    assert_eq!(plan["matches_erased"], 0, "{plan}");
    assert_eq!(run(&app, false).await["matches_erased"], 0);
    // At the second: a dry run lists it and changes nothing.
    app.advance(1);
    let plan = run(&app, true).await;
    assert_eq!(plan["matches_erased"], 1, "{plan}");
    assert_eq!(plan["matches_to_erase"][0]["handle"], handle.as_str());
    assert_eq!(plan["matches_to_erase"][0]["networks"], json!([NOORD]));
    let resp = app.get(&format!("/v1/matches/{handle}"), &coord).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(list().await.len(), 1);
    // The run erases it: gone by handle, from the list and from the event list.
    let done = run(&app, false).await;
    assert_eq!(done["matches_erased"], 1, "{done}");
    expect_problem(
        app.get(&format!("/v1/matches/{handle}"), &coord).await,
        404,
        "not-found",
    )
    .await;
    assert!(list().await.is_empty());
    assert!(event_types(&app).await.is_empty());
    assert_eq!(run(&app, false).await["matches_erased"], 0, "once");
    // Its signals have their own lifecycle: still active.
    assert_eq!(status(&app, "woonstad", &w_sig).await.1["status"], "active");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("samenloop_retention_total{phase=\"match_erase\"} 1\n"),
        "{metrics}"
    );
    // The erasure is in the access log, by the index, naming the handle; and the log
    // still verifies.
    let fg = app.token(
        samenloop::http::auth::Role::PrivacyOfficer,
        "gemeente",
        &[NOORD],
    );
    let log = app.audit_entries(&fg, &format!("object={handle}")).await;
    let by_index: Vec<(&str, &str)> = log
        .iter()
        .filter(|e| e["actor"] == "samenloop")
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["object_type"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(by_index, [("erase", "match")], "{log:#?}");
    let v: Value = app.get("/v1/audit/verify", &fg).await.json().await.unwrap();
    assert_eq!(v["ok"], true, "{v}");

    // Every sled tree, scanned: only the access log (ids only) still names it.
    let dump = app.stop_and_dump().await;
    for (k, v) in &dump {
        if matches!(k.first(), Some(b'L' | b'O' | b'U' | b'K')) {
            continue;
        }
        for needle in std::iter::once(&handle).chain(&event_ids) {
            assert!(
                !contains(k, needle.as_bytes()) && !contains(v, needle.as_bytes()),
                "{needle} survived in {:?}",
                String::from_utf8_lossy(k)
            );
        }
        assert!(
            !matches!(
                k.first(),
                Some(b'm' | b'j' | b'M' | b'f' | b'o' | b'a' | b'g' | b'Y')
            ),
            "a key of the match survived: {:?}",
            String::from_utf8_lossy(k)
        );
    }
}
