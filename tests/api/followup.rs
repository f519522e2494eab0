//! The coordinator's follow-up workflow, deadlines and escalation, the list filters and
//! the partner feedback, over the real API.

use crate::helpers::*;
use samenloop::http::auth::{Claims, Role};
use serde_json::{Value, json};

const NOORD: &str = "zorgnetwerk-noord";
const JEUGD: &str = "jeugd-0-12";

/// A person match of woonstad and politie in NOORD; returns the handle and both signals.
async fn form_match(app: &TestApp) -> (String, Value, Value) {
    let w: Value = app
        .post(
            "/v1/signals",
            &app.partner("woonstad"),
            &app.signal(NOORD, person("W-1", "Marieke", "de Vries", "1985-03-07")),
        )
        .await
        .json()
        .await
        .unwrap();
    let p: Value = app
        .post(
            "/v1/signals",
            &app.partner("politie"),
            &app.signal(NOORD, person("P-1", "Marieke", "de Vries", "1985-03-07")),
        )
        .await
        .json()
        .await
        .unwrap();
    let page = list(app, "").await;
    let handle = page[0]["handle"].as_str().expect("a match").to_string();
    (handle, w, p)
}

async fn list(app: &TestApp, query: &str) -> Vec<Value> {
    let resp = app
        .get(
            &format!("/v1/networks/{NOORD}/matches{query}"),
            &app.coordinator(NOORD),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    let page: Value = resp.json().await.unwrap();
    page["matches"].as_array().unwrap().clone()
}

async fn step(app: &TestApp, handle: &str, body: Value) -> reqwest::Response {
    app.post(
        &format!("/v1/matches/{handle}/follow-up"),
        &app.coordinator(NOORD),
        &body,
    )
    .await
}

async fn ok_step(app: &TestApp, handle: &str, body: Value) -> Value {
    let resp = step(app, handle, body.clone()).await;
    assert_eq!(resp.status().as_u16(), 200, "{body}");
    let m: Value = resp.json().await.unwrap();
    m["networks"][0]["follow_up"].clone()
}

async fn follow_up(app: &TestApp, handle: &str) -> Value {
    let m: Value = app
        .get(&format!("/v1/matches/{handle}"), &app.coordinator(NOORD))
        .await
        .json()
        .await
        .unwrap();
    m["networks"][0]["follow_up"].clone()
}

async fn events(app: &TestApp, network: &str) -> Vec<Value> {
    let resp = app
        .get(
            &format!("/v1/networks/{network}/events?limit=500"),
            &app.coordinator(network),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    let page: Value = resp.json().await.unwrap();
    page["events"].as_array().unwrap().clone()
}

/// A refused step: the status, the problem code, and nothing changed.
async fn refused(app: &TestApp, handle: &str, body: Value, status: u16, code: &str) -> Value {
    let before = follow_up(app, handle).await;
    let n = events(app, NOORD).await.len();
    let problem = expect_problem(step(app, handle, body).await, status, code).await;
    assert_eq!(follow_up(app, handle).await, before, "nothing changed");
    assert_eq!(events(app, NOORD).await.len(), n, "no alert");
    problem
}

fn today_plus(app: &TestApp, days: i64) -> String {
    let _ = app;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let day = samenloop::calendar::local_day(now) + days;
    samenloop::pseudonym::Date::from_days_since_epoch(day).to_string()
}

#[tokio::test]
async fn every_transition_and_every_refusal() {
    let app = spawn_app().await;
    let (handle, _, _) = form_match(&app).await;
    let f = follow_up(&app, &handle).await;
    assert_eq!(f["stage"], "new");
    assert_eq!(f["unacknowledged"], true);

    // Only acknowledge is allowed on a new match.
    let p = refused(
        &app,
        &handle,
        json!({"action": "ask_consent"}),
        409,
        "invalid-transition",
    )
    .await;
    let detail = p["detail"].as_str().unwrap();
    assert!(
        detail.contains("stage new") && detail.contains("acknowledge"),
        "{detail}"
    );
    refused(
        &app,
        &handle,
        json!({"action": "close", "reason": "no_concern"}),
        409,
        "invalid-transition",
    )
    .await;
    // Bad bodies: unknown action, member, reason; members that do not fit the action.
    refused(
        &app,
        &handle,
        json!({"action": "archive"}),
        422,
        "invalid-body",
    )
    .await;
    refused(
        &app,
        &handle,
        json!({"action": "acknowledge", "note": "x"}),
        422,
        "invalid-body",
    )
    .await;
    refused(
        &app,
        &handle,
        json!({"action": "acknowledge", "reason": "no_concern"}),
        422,
        "invalid-field",
    )
    .await;
    refused(
        &app,
        &handle,
        json!({"action": "close"}),
        422,
        "invalid-field",
    )
    .await;
    refused(
        &app,
        &handle,
        json!({"action": "close", "reason": "gone"}),
        422,
        "invalid-body",
    )
    .await;
    refused(
        &app,
        &handle,
        json!({"action": "close", "reason": "withdrawn"}),
        422,
        "invalid-field",
    )
    .await;
    refused(
        &app,
        &handle,
        json!({"action": "acknowledge", "network": JEUGD}),
        404,
        "not-found",
    )
    .await;
    // Who may act: a partner (403), another network's coordinator and unknown handles (404).
    let body = json!({"action": "acknowledge"});
    let path = format!("/v1/matches/{handle}/follow-up");
    expect_problem(
        app.post(&path, &app.partner("woonstad"), &body).await,
        403,
        "forbidden-role",
    )
    .await;
    expect_problem(
        app.post(&path, &app.coordinator(JEUGD), &body).await,
        404,
        "not-found",
    )
    .await;
    expect_problem(
        app.post(
            "/v1/matches/m_00000000000000000000000000000000/follow-up",
            &app.coordinator(NOORD),
            &body,
        )
        .await,
        404,
        "not-found",
    )
    .await;

    // acknowledge, with the subject and on-behalf-of of the token.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let obo_token = app.token_with(Claims {
        sub: "regie-app".into(),
        iss: app.cfg.auth.issuer.clone(),
        aud: app.cfg.auth.audience.clone(),
        exp: now + 600,
        nbf: now - 5,
        iat: now,
        org: "gemeente".into(),
        role: Role::Coordinator,
        networks: vec![NOORD.into()],
        obo: Some("r.de.jong".into()),
        purpose: None,
    });
    let resp = app.post(&path, &obo_token, &body).await;
    assert_eq!(resp.status().as_u16(), 200);
    let m: Value = resp.json().await.unwrap();
    let f = &m["networks"][0]["follow_up"];
    assert_eq!(f["stage"], "acknowledged");
    assert_eq!(f["unacknowledged"], false);
    assert!(
        f.get("acknowledge_due").is_none(),
        "met deadlines are cleared"
    );
    assert!(f.get("decision_due").is_some());
    let last = f["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action"], "acknowledge");
    assert_eq!(last["by"], "regie-app");
    assert_eq!(last["on_behalf_of"], "r.de.jong");
    refused(
        &app,
        &handle,
        json!({"action": "acknowledge"}),
        409,
        "invalid-transition",
    )
    .await;
    refused(
        &app,
        &handle,
        json!({"action": "plan_meeting", "date": today_plus(&app, 3)}),
        409,
        "invalid-transition",
    )
    .await;

    // choose_lead: only an organisation with an active signal of the network in it.
    refused(
        &app,
        &handle,
        json!({"action": "choose_lead", "organisation": "ggz-noord"}),
        422,
        "lead-not-involved",
    )
    .await;
    refused(
        &app,
        &handle,
        json!({"action": "choose_lead", "organisation": "nobody"}),
        422,
        "lead-not-involved",
    )
    .await;
    refused(
        &app,
        &handle,
        json!({"action": "choose_lead"}),
        422,
        "invalid-field",
    )
    .await;
    let f = ok_step(
        &app,
        &handle,
        json!({"action": "choose_lead", "organisation": "politie"}),
    )
    .await;
    assert_eq!(f["lead_organisation"], "politie");
    assert_eq!(f["stage"], "acknowledged");

    let f = ok_step(&app, &handle, json!({"action": "ask_consent"})).await;
    assert_eq!(f["stage"], "consent_asked");
    refused(
        &app,
        &handle,
        json!({"action": "ask_consent"}),
        409,
        "invalid-transition",
    )
    .await;
    let f = ok_step(&app, &handle, json!({"action": "consent_refused"})).await;
    assert_eq!(f["stage"], "consent_refused");
    assert!(
        f.get("decision_due").is_none(),
        "a decision meets the decision deadline"
    );
    refused(
        &app,
        &handle,
        json!({"action": "consent_given"}),
        409,
        "invalid-transition",
    )
    .await;
    let f = ok_step(&app, &handle, json!({"action": "ask_consent"})).await;
    assert_eq!(f["stage"], "consent_asked");
    let f = ok_step(&app, &handle, json!({"action": "consent_given"})).await;
    assert_eq!(f["stage"], "consent_given");

    // plan_meeting: a real date, not in the past, at most a year ahead.
    for bad in [
        today_plus(&app, -1),
        today_plus(&app, 400),
        "2026-02-30".into(),
        "morgen".into(),
        "2026-1-01".into(),
    ] {
        refused(
            &app,
            &handle,
            json!({"action": "plan_meeting", "date": bad}),
            422,
            "invalid-field",
        )
        .await;
    }
    refused(
        &app,
        &handle,
        json!({"action": "plan_meeting"}),
        422,
        "invalid-field",
    )
    .await;
    let f = ok_step(
        &app,
        &handle,
        json!({"action": "plan_meeting", "date": today_plus(&app, 1)}),
    )
    .await;
    assert_eq!(f["stage"], "meeting_planned");
    let later = today_plus(&app, 14);
    let f = ok_step(
        &app,
        &handle,
        json!({"action": "plan_meeting", "date": later}),
    )
    .await;
    assert_eq!(f["meeting_on"], later.as_str());

    let f = ok_step(
        &app,
        &handle,
        json!({"action": "close", "reason": "care_in_place"}),
    )
    .await;
    assert_eq!(f["stage"], "closed");
    assert_eq!(f["closed_reason"], "care_in_place");
    let p = refused(
        &app,
        &handle,
        json!({"action": "close", "reason": "no_concern"}),
        409,
        "invalid-transition",
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("stage closed"));

    let actions: Vec<&str> = f["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "formed",
            "acknowledge",
            "choose_lead",
            "ask_consent",
            "consent_refused",
            "ask_consent",
            "consent_given",
            "plan_meeting",
            "plan_meeting",
            "close"
        ]
    );
    // Every step went out as an alert of the network.
    let ev = events(&app, NOORD).await;
    let types: Vec<&str> = ev.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types[0], "match.formed");
    assert_eq!(
        types.iter().filter(|t| **t == "match.followed_up").count(),
        9
    );
    assert!(ev.iter().all(|e| e["network"] == NOORD));
    // Filters on the list.
    assert_eq!(list(&app, "?status=closed").await.len(), 1);
    assert!(list(&app, "?status=open").await.is_empty());
    assert!(list(&app, "?status=unacknowledged").await.is_empty());
    expect_problem(
        app.get(
            &format!("/v1/networks/{NOORD}/matches?status=late"),
            &app.coordinator(NOORD),
        )
        .await,
        400,
        "invalid-query",
    )
    .await;
    let metrics = app.metrics().await;
    assert!(metrics.contains(&format!(
        "samenloop_followup_steps_total{{network=\"{NOORD}\",action=\"plan_meeting\"}} 2"
    )));
}

#[tokio::test]
async fn a_closed_match_reopens_when_a_new_signal_arrives() {
    let app = spawn_app().await;
    let (handle, _, _) = form_match(&app).await;
    ok_step(&app, &handle, json!({"action": "acknowledge"})).await;
    ok_step(
        &app,
        &handle,
        json!({"action": "close", "reason": "no_concern"}),
    )
    .await;
    assert!(list(&app, "?status=unacknowledged").await.is_empty());

    app.advance(3 * 86_400);
    let resp = app
        .post(
            "/v1/signals",
            &app.partner("ggz-noord"),
            &app.signal(NOORD, person("G-1", "Marieke", "de Vries", "1985-03-07")),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 201);
    let f = follow_up(&app, &handle).await;
    assert_eq!(f["stage"], "new");
    assert_eq!(f["unacknowledged"], true);
    assert!(f.get("closed_reason").is_none());
    assert!(f.get("acknowledge_due").is_some() && f.get("decision_due").is_some());
    let history = f["history"].as_array().unwrap();
    assert_eq!(history.last().unwrap()["action"], "reopened");
    assert_eq!(history.last().unwrap()["by"], "index");
    let ev = events(&app, NOORD).await;
    let last = ev.last().unwrap();
    assert_eq!(last["type"], "match.reopened");
    assert_eq!(last["organisations_joined"][0]["id"], "ggz-noord");
    assert_eq!(last["match"]["handle"], handle.as_str());
    assert_eq!(list(&app, "?status=unacknowledged").await.len(), 1);
    assert_eq!(list(&app, "?status=open").await.len(), 1);
    // The new round starts at new again: acknowledge first.
    expect_problem(
        step(
            &app,
            &handle,
            json!({"action": "close", "reason": "no_concern"}),
        )
        .await,
        409,
        "invalid-transition",
    )
    .await;
    ok_step(&app, &handle, json!({"action": "acknowledge"})).await;
}

/// Unix time of a UTC date and hour.
fn at(date: &str, hour: i64) -> i64 {
    samenloop::pseudonym::Date::parse_iso(date)
        .unwrap()
        .days_since_epoch()
        * 86_400
        + hour * 3600
}

fn system_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The value of a metric line (labels included in `name`), 0 if absent.
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0)
}

/// Waits until the escalation job has run `n` more times than now (so a check at the
/// current server time has certainly happened).
async fn checks_pass(app: &TestApp, n: u64) {
    let name = "samenloop_escalation_runs_total{outcome=\"ok\"}";
    let start = metric(&app.metrics().await, name);
    for _ in 0..200 {
        if metric(&app.metrics().await, name) >= start + n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the escalation job did not run");
}

#[tokio::test]
async fn deadlines_count_working_days_and_escalate_once() {
    // Acknowledge within 1 working day, decide within 3; Monday 7 December is a holiday.
    let app = spawn_app_with(|cfg| {
        cfg.alerts.escalation_check_secs = 1;
        cfg.alerts.holidays = vec!["2026-12-07".into()];
        cfg.networks[0].acknowledge_within_days = 1;
        cfg.networks[0].decide_within_days = 3;
    })
    .await;
    // The server's clock: Friday 4 December 2026, 15:00 UTC.
    app.advance(at("2026-12-04", 15) - system_now());
    let (handle, _, _) = form_match(&app).await;
    let f = follow_up(&app, &handle).await;
    // Saturday, Sunday and the holiday are skipped: the end of Tuesday 8 December
    // (local midnight, 23:00 UTC); deciding: the end of Thursday 10 December.
    assert_eq!(f["acknowledge_due"], "2026-12-08T23:00:00Z");
    assert_eq!(f["decision_due"], "2026-12-10T23:00:00Z");

    // Tuesday 22:59 UTC: not yet due.
    app.advance(at("2026-12-08", 23) - 60 - at("2026-12-04", 15));
    checks_pass(&app, 2).await;
    assert!(list(&app, "?status=overdue").await.is_empty());
    assert_eq!(follow_up(&app, &handle).await["overdue"], false);

    // Two minutes later it is.
    app.advance(120);
    checks_pass(&app, 2).await;
    let overdue = list(&app, "?status=overdue").await;
    assert_eq!(overdue.len(), 1);
    let f = &overdue[0]["networks"][0]["follow_up"];
    assert_eq!(f["overdue"], true);
    assert_eq!(f["overdue_deadlines"], json!(["acknowledge"]));
    let last = f["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["action"].as_str(), last["deadline"].as_str()),
        (Some("escalated"), Some("acknowledge"))
    );
    let escalated: Vec<Value> = events(&app, NOORD)
        .await
        .into_iter()
        .filter(|e| e["type"] == "match.escalated")
        .collect();
    assert_eq!(escalated.len(), 1);
    assert_eq!(escalated[0]["deadline"], "acknowledge");
    assert!(
        events(&app, JEUGD).await.is_empty(),
        "only the network's own coordinator is told"
    );
    let m = app.metrics().await;
    assert_eq!(
        metric(
            &m,
            &format!("samenloop_matches_overdue{{network=\"{NOORD}\"}}")
        ),
        1
    );
    assert_eq!(
        metric(
            &m,
            &format!("samenloop_matches_overdue{{network=\"{JEUGD}\"}}")
        ),
        0
    );
    assert_eq!(
        metric(
            &m,
            &format!("samenloop_escalations_total{{network=\"{NOORD}\",deadline=\"acknowledge\"}}")
        ),
        1
    );

    // Later checks do not escalate the same deadline again.
    checks_pass(&app, 2).await;
    let n = events(&app, NOORD)
        .await
        .iter()
        .filter(|e| e["type"] == "match.escalated")
        .count();
    assert_eq!(n, 1);

    // Acknowledging takes it off the overdue list; the decision deadline still runs.
    let f = ok_step(&app, &handle, json!({"action": "acknowledge"})).await;
    assert_eq!(f["overdue"], false);
    assert!(list(&app, "?status=overdue").await.is_empty());
    assert_eq!(
        metric(
            &app.metrics().await,
            &format!("samenloop_matches_overdue{{network=\"{NOORD}\"}}")
        ),
        0
    );
    // Past Thursday: the decision deadline escalates; deciding clears it.
    app.advance(at("2026-12-11", 9) - at("2026-12-08", 23) - 60);
    checks_pass(&app, 2).await;
    let overdue = list(&app, "?status=overdue").await;
    assert_eq!(overdue.len(), 1);
    assert_eq!(
        overdue[0]["networks"][0]["follow_up"]["overdue_deadlines"],
        json!(["decision"])
    );
    ok_step(
        &app,
        &handle,
        json!({"action": "close", "reason": "handed_over"}),
    )
    .await;
    assert!(list(&app, "?status=overdue").await.is_empty());
    let kinds: Vec<Value> = events(&app, NOORD)
        .await
        .into_iter()
        .filter(|e| e["type"] == "match.escalated")
        .map(|e| e["deadline"].clone())
        .collect();
    assert_eq!(kinds, [json!("acknowledge"), json!("decision")]);
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

async fn signal_of(app: &TestApp, org: &str, s: &Value) -> Value {
    let id = s["id"].as_str().unwrap();
    let by_id = app
        .get(&format!("/v1/signals/{id}"), &app.partner(org))
        .await;
    assert_eq!(by_id.status().as_u16(), 200);
    let by_id: Value = by_id.json().await.unwrap();
    let reference = s["reference"].as_str().unwrap();
    let by_ref: Value = app
        .get(
            &format!("/v1/signals?network={NOORD}&reference={reference}"),
            &app.partner(org),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_id, by_ref, "lookup by reference answers the same");
    by_id
}

#[tokio::test]
async fn partners_hear_back_without_an_oracle() {
    let app = spawn_app().await;
    // An unmatched signal of woonstad beside the matched one.
    let alone: Value = app
        .post(
            "/v1/signals",
            &app.partner("woonstad"),
            &app.signal(NOORD, person("W-9", "Pieter", "Zwart", "1970-01-01")),
        )
        .await
        .json()
        .await
        .unwrap();
    let (handle, w, p) = form_match(&app).await;

    // Before the coordinator acts, the matched signal reads exactly like the unmatched one.
    let matched = signal_of(&app, "woonstad", &w).await;
    let unmatched = signal_of(&app, "woonstad", &alone).await;
    assert_eq!(keys(&matched), keys(&unmatched));
    assert!(matched.get("feedback").is_none());
    assert_eq!(matched["status"], unmatched["status"]);

    ok_step(&app, &handle, json!({"action": "acknowledge"})).await;
    for (org, s) in [("woonstad", &w), ("politie", &p)] {
        let v = signal_of(&app, org, s).await;
        assert_eq!(v["feedback"]["status"], "picked_up", "{org}");
        assert!(v["feedback"].get("reason").is_none());
        assert!(v["feedback"]["at"].is_string());
    }
    assert!(
        signal_of(&app, "woonstad", &alone)
            .await
            .get("feedback")
            .is_none()
    );

    // A signal that joins later hears nothing until the coordinator's next step.
    let g: Value = app
        .post(
            "/v1/signals",
            &app.partner("ggz-noord"),
            &app.signal(NOORD, person("G-1", "Marieke", "de Vries", "1985-03-07")),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(
        signal_of(&app, "ggz-noord", &g)
            .await
            .get("feedback")
            .is_none()
    );
    // The join awaits acknowledgement again; acknowledging it keeps the stage.
    assert_eq!(list(&app, "?status=unacknowledged").await.len(), 1);
    let f = ok_step(&app, &handle, json!({"action": "acknowledge"})).await;
    assert_eq!(
        (f["stage"].as_str(), f["unacknowledged"].as_bool()),
        (Some("acknowledged"), Some(false))
    );
    assert_eq!(
        signal_of(&app, "ggz-noord", &g).await["feedback"]["status"],
        "picked_up"
    );
    assert!(list(&app, "?status=unacknowledged").await.is_empty());
    ok_step(
        &app,
        &handle,
        json!({"action": "close", "reason": "moved_out_of_region"}),
    )
    .await;
    for (org, s) in [("woonstad", &w), ("politie", &p), ("ggz-noord", &g)] {
        let v = signal_of(&app, org, s).await;
        assert_eq!(v["feedback"]["status"], "closed", "{org}");
        assert_eq!(v["feedback"]["reason"], "moved_out_of_region");
    }
    // The feedback never carries anything about the match or the other organisations.
    let v = signal_of(&app, "woonstad", &w).await;
    assert_eq!(keys(&v["feedback"]), ["at", "reason", "status"]);
    let text = v.to_string();
    assert!(!text.contains("politie") && !text.contains(&handle) && !text.contains("ggz"));
    // And one organisation never reads another's signal.
    let id = w["id"].as_str().unwrap();
    expect_problem(
        app.get(&format!("/v1/signals/{id}"), &app.partner("politie"))
            .await,
        404,
        "not-found",
    )
    .await;
    expect_problem(
        app.get(
            &format!("/v1/signals?network={NOORD}&reference=W-1"),
            &app.partner("politie"),
        )
        .await,
        404,
        "not-found",
    )
    .await;
}

#[tokio::test]
async fn each_network_follows_up_its_own_part_of_a_cross_network_match() {
    let app = spawn_app().await;
    let j: Value = app
        .post(
            "/v1/signals",
            &app.partner("politie"),
            &app.signal(JEUGD, person("J-1", "Daan", "de Boer", "2014-05-05")),
        )
        .await
        .json()
        .await
        .unwrap();
    let n: Value = app
        .post(
            "/v1/signals",
            &app.partner("woonstad"),
            &app.signal(NOORD, person("N-1", "Daan", "Boer", "2014-05-05")),
        )
        .await
        .json()
        .await
        .unwrap();
    let handle = list(&app, "").await[0]["handle"]
        .as_str()
        .unwrap()
        .to_string();
    let both = app.token(Role::Coordinator, "gemeente", &[NOORD, JEUGD]);
    let path = format!("/v1/matches/{handle}/follow-up");
    let p = expect_problem(
        app.post(&path, &both, &json!({"action": "acknowledge"}))
            .await,
        422,
        "invalid-field",
    )
    .await;
    assert!(p["detail"].as_str().unwrap().starts_with("/network"));
    let resp = app
        .post(
            &path,
            &both,
            &json!({"action": "acknowledge", "network": JEUGD}),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    let m: Value = resp.json().await.unwrap();
    let stage = |m: &Value, net: &str| {
        m["networks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["network"] == net)
            .unwrap()["follow_up"]["stage"]
            .clone()
    };
    assert_eq!(stage(&m, JEUGD), "acknowledged");
    assert_eq!(
        stage(&m, NOORD),
        "new",
        "the other network's part is untouched"
    );
    // The lead of the youth network's part must have a signal in that network.
    expect_problem(
        app.post(
            &path,
            &both,
            &json!({"action": "choose_lead", "network": JEUGD, "organisation": "woonstad"}),
        )
        .await,
        422,
        "lead-not-involved",
    )
    .await;
    // Feedback only on the acting network's signals.
    let fb = |org: &str, s: &Value| {
        let id = s["id"].as_str().unwrap().to_string();
        let token = app.partner(org);
        let app = &app;
        async move {
            let v: Value = app
                .get(&format!("/v1/signals/{id}"), &token)
                .await
                .json()
                .await
                .unwrap();
            v.get("feedback").cloned()
        }
    };
    assert_eq!(fb("politie", &j).await.unwrap()["status"], "picked_up");
    assert!(fb("woonstad", &n).await.is_none());
    // Only the youth network hears of its step.
    let jeugd: Vec<String> = events(&app, JEUGD)
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(jeugd, ["match.formed", "match.followed_up"]);
    assert_eq!(events(&app, NOORD).await.len(), 1);
    // A coordinator of one of the networks needs no `network`.
    let f = ok_step(&app, &handle, json!({"action": "acknowledge"})).await;
    assert_eq!(f["stage"], "acknowledged");
    assert_eq!(fb("woonstad", &n).await.unwrap()["status"], "picked_up");
}

#[tokio::test]
async fn a_match_whose_signals_leave_below_the_threshold_is_dissolved_and_can_form_again() {
    let app = spawn_app().await;
    let (handle, w, p) = form_match(&app).await;
    ok_step(&app, &handle, json!({"action": "acknowledge"})).await;
    // The police withdraw: one organisation is left, below the threshold of 2.
    let pid = p["id"].as_str().unwrap();
    let resp = app
        .post(
            &format!("/v1/signals/{pid}/withdraw"),
            &app.partner("politie"),
            &json!({"reason": "concern_over"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let f = follow_up(&app, &handle).await;
    assert_eq!(f["stage"], "closed", "{f}");
    assert_eq!(f["closed_reason"], "withdrawn", "{f}");
    let last = f["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (&last["action"], &last["by"], &last["reason"]),
        (
            &Value::from("close"),
            &Value::from("index"),
            &Value::from("withdrawn")
        ),
        "{f}"
    );
    assert!(f.get("acknowledge_due").is_none() && f.get("decision_due").is_none());
    let evs = events(&app, NOORD).await;
    let d: Vec<&Value> = evs
        .iter()
        .filter(|e| e["type"] == "match.dissolved")
        .collect();
    assert_eq!(d.len(), 1, "{evs:#?}");
    assert_eq!(d[0]["match"]["handle"], handle.as_str());
    assert_eq!(d[0]["organisations_left"][0]["id"], "politie", "{}", d[0]);
    // The housing corporation had heard its signal was picked up: now it is closed.
    let wid = w["id"].as_str().unwrap();
    let mine: Value = app
        .get(&format!("/v1/signals/{wid}"), &app.partner("woonstad"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["feedback"]["status"], "closed", "{mine}");
    assert_eq!(mine["feedback"]["reason"], "withdrawn", "{mine}");
    // GGZ signals the same person: the match reopens, with GGZ as a new organisation,
    // and the police count anew if they come back.
    let resp = app
        .post(
            "/v1/signals",
            &app.partner("ggz-noord"),
            &app.signal(NOORD, person("G-2", "Marieke", "de Vries", "1985-03-07")),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let evs = events(&app, NOORD).await;
    let reopened: Vec<&Value> = evs
        .iter()
        .filter(|e| e["type"] == "match.reopened")
        .collect();
    assert_eq!(reopened.len(), 1, "{evs:#?}");
    assert_eq!(reopened[0]["match"]["handle"], handle.as_str());
    assert_eq!(reopened[0]["organisations_joined"][0]["id"], "ggz-noord");
    assert_eq!(follow_up(&app, &handle).await["stage"], "new");
    // When every signal has gone, a new pair on the person is a new match: the closed
    // one stays closed, and a further withdrawal tells nobody twice.
    let dissolved = |evs: &[Value]| {
        evs.iter()
            .filter(|e| e["type"] == "match.dissolved")
            .count()
    };
    let wid = w["id"].as_str().unwrap();
    app.post(
        &format!("/v1/signals/{wid}/withdraw"),
        &app.partner("woonstad"),
        &json!({"reason": "concern_over"}),
    )
    .await;
    assert_eq!(dissolved(&events(&app, NOORD).await), 2);
    let gid = resp_id(&app, "ggz-noord", "G-2").await;
    app.post(
        &format!("/v1/signals/{gid}/withdraw"),
        &app.partner("ggz-noord"),
        &json!({"reason": "concern_over"}),
    )
    .await;
    assert_eq!(dissolved(&events(&app, NOORD).await), 2);
}

async fn resp_id(app: &TestApp, org: &str, reference: &str) -> String {
    let v: Value = app
        .get(
            &format!("/v1/signals?network={NOORD}&reference={reference}"),
            &app.partner(org),
        )
        .await
        .json()
        .await
        .unwrap();
    v["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_dissolved_match_the_coordinator_never_touched_gives_no_feedback() {
    let app = spawn_app().await;
    let (handle, w, p) = form_match(&app).await;
    let pid = p["id"].as_str().unwrap();
    app.post(
        &format!("/v1/signals/{pid}/withdraw"),
        &app.partner("politie"),
        &json!({"reason": "unjustified"}),
    )
    .await;
    assert_eq!(follow_up(&app, &handle).await["closed_reason"], "withdrawn");
    // No coordinator acted: the remaining signal reads as one that never matched.
    let wid = w["id"].as_str().unwrap();
    let mine: Value = app
        .get(&format!("/v1/signals/{wid}"), &app.partner("woonstad"))
        .await
        .json()
        .await
        .unwrap();
    assert!(mine.get("feedback").is_none(), "{mine}");
}
