//! Submitting, reading, renewing and withdrawing signals; bad input.

use crate::helpers::*;
use serde_json::{Value, json};

const NOORD: &str = "zorgnetwerk-noord";

async fn lookup_status(app: &TestApp, org: &str, reference: &str) -> u16 {
    app.get(
        &format!("/v1/signals?network={NOORD}&reference={reference}"),
        &app.partner(org),
    )
    .await
    .status()
    .as_u16()
}

#[tokio::test]
async fn submit_read_and_idempotent_resubmit() {
    let app = spawn_app().await;
    let token = app.partner("woonstad");
    let body = app.signal(NOORD, person("DOS-1", "Marieke", "de Vries", "1985-03-07"));
    let resp = app.post("/v1/signals", &token, &body).await;
    assert_eq!(resp.status().as_u16(), 201);
    let created: Value = resp.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("sig_"));
    assert_eq!(created["reference"], "DOS-1");
    assert_eq!(created["status"], "active");

    let again = app.post("/v1/signals", &token, &body).await;
    assert_eq!(again.status().as_u16(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], created["id"]);

    let read: Value = app
        .get(&format!("/v1/signals/{id}"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read, created);

    // Same reference, different content: a conflict, nothing changed.
    let mut other = app.signal(NOORD, person("DOS-1", "Jan", "Smit", "1970-01-01"));
    other["contact"] = json!({"name": "Team B"});
    expect_problem(
        app.post("/v1/signals", &token, &other).await,
        409,
        "reference-conflict",
    )
    .await;

    // Other organisations, and other roles, do not see it.
    expect_problem(
        app.get(&format!("/v1/signals/{id}"), &app.partner("politie"))
            .await,
        404,
        "not-found",
    )
    .await;
    expect_problem(
        app.get(&format!("/v1/signals/{id}"), &app.coordinator(NOORD))
            .await,
        403,
        "forbidden-role",
    )
    .await;
    expect_problem(
        app.get("/v1/signals/sig_00000000000000000000000000000000", &token)
            .await,
        404,
        "not-found",
    )
    .await;
}

#[tokio::test]
async fn renew_and_withdraw() {
    let app = spawn_app().await;
    let token = app.partner("woonstad");
    let body = json!({
        "network": NOORD,
        "subject": app.keys(person("DOS-2", "Sanne", "Bakker", "1999-04-30")),
        "contact": {"name": "Team Huurachterstand", "email": "team@woonstad.example"},
        "category": "huurachterstand",
        "valid_days": 10,
    });
    let created: Value = app
        .post("/v1/signals", &token, &body)
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let renewed = app
        .post(
            &format!("/v1/signals/{id}/renew"),
            &token,
            &json!({"valid_days": 5000}),
        )
        .await;
    assert_eq!(renewed.status().as_u16(), 200);
    let renewed: Value = renewed.json().await.unwrap();
    assert!(renewed["valid_until"].as_str().unwrap() > created["valid_until"].as_str().unwrap());

    let w = app
        .post(
            &format!("/v1/signals/{id}/withdraw"),
            &token,
            &json!({"reason": "concern_over"}),
        )
        .await;
    assert_eq!(w.status().as_u16(), 200);
    let w: Value = w.json().await.unwrap();
    assert_eq!(w["status"], "withdrawn");
    assert_eq!(w["withdraw_reason"], "concern_over");
    expect_problem(
        app.post(
            &format!("/v1/signals/{id}/withdraw"),
            &token,
            &json!({"reason": "unjustified"}),
        )
        .await,
        409,
        "signal-not-active",
    )
    .await;
    expect_problem(
        app.post(&format!("/v1/signals/{id}/renew"), &token, &json!({}))
            .await,
        409,
        "signal-not-active",
    )
    .await;
    expect_problem(
        app.post(
            &format!("/v1/signals/{id}/withdraw"),
            &token,
            &json!({"reason": "bored"}),
        )
        .await,
        422,
        "invalid-body",
    )
    .await;
    // Another organisation cannot withdraw it.
    expect_problem(
        app.post(
            &format!("/v1/signals/{id}/withdraw"),
            &app.partner("politie"),
            &json!({"reason": "unjustified"}),
        )
        .await,
        404,
        "not-found",
    )
    .await;
}

#[tokio::test]
async fn bad_input_is_refused_precisely_and_stores_nothing() {
    let app = spawn_app().await;
    let token = app.partner("woonstad");
    let good = app.signal(NOORD, person("BAD-1", "Jan", "Smit", "1970-01-01"));
    let url = format!("{}/v1/signals", app.base);

    let r = app
        .client
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    expect_problem(r, 400, "malformed-json").await;
    let r = app
        .client
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body(good.to_string())
        .send()
        .await
        .unwrap();
    expect_problem(r, 415, "unsupported-media-type").await;

    let mut free_text = good.clone();
    free_text["notes"] = json!("client is aggressive");
    expect_problem(
        app.post("/v1/signals", &token, &free_text).await,
        422,
        "invalid-body",
    )
    .await;
    let mut wrong_type = good.clone();
    wrong_type["valid_days"] = json!("ten");
    expect_problem(
        app.post("/v1/signals", &token, &wrong_type).await,
        422,
        "invalid-body",
    )
    .await;
    let mut bad_key = good.clone();
    bad_key["subject"]["person"][0] = json!("nd:notbase64!!");
    expect_problem(
        app.post("/v1/signals", &token, &bad_key).await,
        422,
        "invalid-key-set",
    )
    .await;
    let mut subject_free_text = good.clone();
    subject_free_text["subject"]["name"] = json!("Jan Smit");
    expect_problem(
        app.post("/v1/signals", &token, &subject_free_text).await,
        422,
        "invalid-key-set",
    )
    .await;
    let mut unknown_kid = good.clone();
    unknown_kid["subject"]["key_id"] = json!("old-2020");
    expect_problem(
        app.post("/v1/signals", &token, &unknown_kid).await,
        422,
        "unknown-key-id",
    )
    .await;
    let mut unknown_cat = good.clone();
    unknown_cat["category"] = json!("diagnose_schizofrenie");
    expect_problem(
        app.post("/v1/signals", &token, &unknown_cat).await,
        422,
        "unknown-category",
    )
    .await;
    let mut bad_contact = good.clone();
    bad_contact["contact"] = json!({"name": "", "phone": "call me"});
    expect_problem(
        app.post("/v1/signals", &token, &bad_contact).await,
        422,
        "invalid-field",
    )
    .await;
    let mut unknown_net = good.clone();
    unknown_net["network"] = json!("nowhere");
    expect_problem(
        app.post("/v1/signals", &token, &unknown_net).await,
        404,
        "not-found",
    )
    .await;
    // Woonstad is not a member of the youth network.
    let mut not_member = good.clone();
    not_member["network"] = json!("jeugd-0-12");
    expect_problem(
        app.post("/v1/signals", &token, &not_member).await,
        404,
        "not-found",
    )
    .await;
    // Coordinators do not submit signals.
    expect_problem(
        app.post("/v1/signals", &app.coordinator(NOORD), &good)
            .await,
        403,
        "forbidden-role",
    )
    .await;

    let huge = json!({ "network": NOORD, "subject": good["subject"], "contact": {"name": "x".repeat(5 * 1024 * 1024)} });
    expect_problem(
        app.post("/v1/signals", &token, &huge).await,
        413,
        "payload-too-large",
    )
    .await;
    // Deeply nested JSON inside a free-form member hits the parser's depth limit.
    let deep = format!(
        "{{\"network\":\"{NOORD}\",\"subject\":{}}}",
        "[".repeat(10_000)
    );
    let r = app
        .client
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .await
        .unwrap();
    expect_problem(r, 400, "malformed-json").await;

    assert_eq!(
        lookup_status(&app, "woonstad", "BAD-1").await,
        404,
        "nothing was stored"
    );
    // And the good body is accepted afterwards.
    assert_eq!(
        app.post("/v1/signals", &token, &good)
            .await
            .status()
            .as_u16(),
        201
    );
    assert_eq!(lookup_status(&app, "woonstad", "BAD-1").await, 200);

    // Every refusal is counted in /metrics.
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("samenloop_problems_total{type=\"invalid-key-set\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("samenloop_signals_created_total 1"));
    // The store's own count survives restarts (the load tool reads it).
    assert!(
        metrics.contains("\nsamenloop_store_signals 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nsamenloop_store_matches 0\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn batch_stores_the_good_and_reports_the_bad() {
    let app = spawn_app().await;
    let token = app.partner("politie");
    let good1 = app.signal(NOORD, person("B-1", "Jan", "Smit", "1970-01-01"));
    let good2 = app.signal(NOORD, person("B-2", "Piet", "Jansen", "1971-02-02"));
    let mut bad = good1.clone();
    bad["subject"]["reference"] = json!("B-3");
    bad["category"] = json!("nope");
    let resp = app
        .post(
            "/v1/signals/batch",
            &token,
            &json!({"signals": [good1, bad, good2, {"network": 5}]}),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["accepted"], 2);
    assert_eq!(body["rejected"], 2);
    let statuses: Vec<u64> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, vec![201, 422, 201, 422]);
    assert_eq!(
        body["results"][1]["problem"]["type"],
        "urn:samenloop:problem:unknown-category"
    );
    assert_eq!(lookup_status(&app, "politie", "B-2").await, 200);
    assert_eq!(lookup_status(&app, "politie", "B-3").await, 404);

    let too_many = json!({"signals": vec![json!({}); 1001]});
    expect_problem(
        app.post("/v1/signals/batch", &token, &too_many).await,
        422,
        "batch-too-large",
    )
    .await;
    expect_problem(
        app.post("/v1/signals/batch", &token, &json!({"signals": []}))
            .await,
        422,
        "invalid-field",
    )
    .await;
}

#[tokio::test]
async fn the_stopper_tells_how_far_the_server_got() {
    let mut app = spawn_app().await;
    // Built, then serving once `run_until_stopped` awaits the HTTP server.
    for _ in 0..500 {
        if app.server_progress() == "serving" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(app.server_progress(), "serving");
    app.stop_server().await;
    assert_eq!(app.server_progress(), "exiting");
}

#[tokio::test]
async fn restart_keeps_every_acknowledged_signal() {
    let mut app = spawn_app().await;
    let token = app.partner("woonstad");
    let mut ids = Vec::new();
    for i in 0..20 {
        let body = app.signal(
            NOORD,
            person(
                &format!("R-{i}"),
                "Anna",
                "Visser",
                &format!("1980-01-{:02}", i + 1),
            ),
        );
        let v: Value = app
            .post("/v1/signals", &token, &body)
            .await
            .json()
            .await
            .unwrap();
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    app.restart().await;
    let token = app.partner("woonstad");
    for id in &ids {
        assert_eq!(
            app.get(&format!("/v1/signals/{id}"), &token)
                .await
                .status()
                .as_u16(),
            200
        );
    }
}

#[tokio::test]
async fn partners_are_rate_limited_per_organisation() {
    let app = spawn_app_with(|cfg| {
        cfg.limits.partner_rate_per_sec = 1;
        cfg.limits.partner_burst = 2;
    })
    .await;
    let token = app.partner("woonstad");
    for i in 0..2 {
        let r = app
            .post(
                "/v1/signals",
                &token,
                &app.signal(
                    NOORD,
                    person(&format!("RL-{i}"), "Jan", "Smit", "1970-01-01"),
                ),
            )
            .await;
        assert!(r.status().is_success());
    }
    let r = app
        .post(
            "/v1/signals",
            &token,
            &app.signal(NOORD, person("RL-2", "Jan", "Smit", "1970-01-01")),
        )
        .await;
    assert!(r.headers().get("retry-after").is_some());
    expect_problem(r, 429, "rate-limited").await;
    assert_eq!(lookup_status(&app, "woonstad", "RL-2").await, 404);
    // Another organisation has its own bucket.
    let r = app
        .post(
            "/v1/signals",
            &app.partner("politie"),
            &app.signal(NOORD, person("RL-3", "Jan", "Smit", "1970-01-01")),
        )
        .await;
    assert_eq!(r.status().as_u16(), 201);
}
