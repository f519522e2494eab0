//! Administration without restart: organisations added and suspended, network settings
//! changed and the excluded-address list maintained through `/v1/admin/…` take effect
//! on the next request, survive a restart, refuse bad input without changing anything,
//! and are all in the access log.

use crate::helpers::*;
use samenloop::http::auth::Role;
use serde_json::{Value, json};

const NOORD: &str = "zorgnetwerk-noord";
const JEUGD: &str = "jeugd-0-12";

fn admin(app: &TestApp) -> String {
    app.token_as(Role::Admin, "beheer", "beheerder", &[])
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut r = app
        .client
        .request(method, format!("{}{path}", app.base))
        .bearer_auth(token);
    if let Some(b) = body {
        r = r.json(b);
    }
    r.send().await.unwrap()
}

async fn patch(app: &TestApp, path: &str, token: &str, body: &Value) -> reqwest::Response {
    send(app, reqwest::Method::PATCH, path, token, Some(body)).await
}

async fn matches(app: &TestApp, network: &str) -> Vec<Value> {
    let page: Value = app
        .get(
            &format!("/v1/networks/{network}/matches"),
            &app.coordinator(network),
        )
        .await
        .json()
        .await
        .unwrap();
    page["matches"].as_array().unwrap().clone()
}

async fn network(app: &TestApp, id: &str) -> Value {
    let resp = app.get("/v1/admin/networks", &admin(app)).await;
    assert_eq!(resp.status(), 200);
    let all: Value = resp.json().await.unwrap();
    all["networks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == id)
        .cloned()
        .unwrap()
}

#[tokio::test]
async fn an_added_organisation_submits_at_once_and_a_suspended_one_cannot() {
    let mut app = spawn_app().await;
    let root = admin(&app);
    let oost = app.token(Role::Partner, "wijkteam-oost", &[NOORD]);
    let child = person("OOST-1", "Ravi", "Bakker", "1990-02-03");
    // Not a member yet: its (validly signed) token is refused.
    let resp = app
        .post("/v1/signals", &oost, &app.signal(NOORD, child.clone()))
        .await;
    expect_problem(resp, 401, "invalid-token").await;

    // Bad input changes nothing.
    for (body, status, code) in [
        (
            json!({"id": "Wijkteam Oost", "name": "x", "networks": [NOORD]}),
            422,
            "invalid-field",
        ),
        (
            json!({"id": "wijkteam-oost", "name": "", "networks": [NOORD]}),
            422,
            "invalid-field",
        ),
        (
            json!({"id": "wijkteam-oost", "name": "Oost", "networks": ["elders"]}),
            422,
            "invalid-field",
        ),
        (
            json!({"id": "wijkteam-oost", "name": "Oost", "networks": [NOORD], "admin": true}),
            422,
            "invalid-body",
        ),
        (
            json!({"id": "woonstad", "name": "Woonstad", "networks": [NOORD]}),
            409,
            "already-exists",
        ),
    ] {
        let resp = app.post("/v1/admin/organisations", &root, &body).await;
        expect_problem(resp, status, code).await;
    }
    let resp = app
        .post(
            "/v1/admin/organisations",
            &app.coordinator(NOORD),
            &json!({"id": "wijkteam-oost", "name": "Oost", "networks": [NOORD]}),
        )
        .await;
    expect_problem(resp, 403, "forbidden-role").await;
    let list: Value = app
        .get("/v1/admin/organisations", &root)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        !list["organisations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["id"] == "wijkteam-oost")
    );

    let resp = app
        .post(
            "/v1/admin/organisations",
            &root,
            &json!({"id": "wijkteam-oost", "name": "Wijkteam Oost", "networks": [NOORD]}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let org: Value = resp.json().await.unwrap();
    assert_eq!(org["suspended"], false);

    // At once: it submits, and meets Woonstad's signal of the same person.
    let resp = app
        .post("/v1/signals", &oost, &app.signal(NOORD, child.clone()))
        .await;
    assert_eq!(resp.status(), 201);
    let sig: Value = resp.json().await.unwrap();
    let sid = sig["id"].as_str().unwrap().to_string();
    let w = app.partner("woonstad");
    let resp = app
        .post(
            "/v1/signals",
            &w,
            &app.signal(NOORD, person("W-OOST", "Ravi", "Bakker", "1990-02-03")),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let found = matches(&app, NOORD).await;
    assert_eq!(found.len(), 1, "{found:?}");

    // Suspended: no submissions or renewals; reading and withdrawing still work.
    let resp = patch(
        &app,
        "/v1/admin/organisations/wijkteam-oost",
        &root,
        &json!({"suspended": true}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["suspended"], true);
    let other = person("OOST-2", "Sanne", "Bakker", "1992-05-06");
    let resp = app
        .post("/v1/signals", &oost, &app.signal(NOORD, other.clone()))
        .await;
    expect_problem(resp, 403, "organisation-suspended").await;
    let resp = app
        .post(
            "/v1/signals/batch",
            &oost,
            &json!({"signals": [app.signal(NOORD, other.clone())]}),
        )
        .await;
    expect_problem(resp, 403, "organisation-suspended").await;
    let resp = app
        .post(&format!("/v1/signals/{sid}/renew"), &oost, &json!({}))
        .await;
    expect_problem(resp, 403, "organisation-suspended").await;
    assert_eq!(
        app.get(&format!("/v1/signals/{sid}"), &oost).await.status(),
        200
    );
    assert_eq!(matches(&app, NOORD).await.len(), 1, "its signal stays");

    // Bad changes: refused, nothing changed.
    for (body, code) in [
        (json!({"suspended": "yes"}), "invalid-body"),
        (json!({"networks": []}), "invalid-field"),
        (json!({"name": "a\u{7}b"}), "invalid-field"),
    ] {
        let resp = patch(&app, "/v1/admin/organisations/wijkteam-oost", &root, &body).await;
        expect_problem(resp, 422, code).await;
    }
    let resp = patch(
        &app,
        "/v1/admin/organisations/nobody",
        &root,
        &json!({"suspended": true}),
    )
    .await;
    expect_problem(resp, 404, "not-found").await;

    // Stored: a restart keeps both the new member and its suspension.
    app.restart().await;
    let resp = app
        .post("/v1/signals", &oost, &app.signal(NOORD, other.clone()))
        .await;
    expect_problem(resp, 403, "organisation-suspended").await;
    let resp = patch(
        &app,
        "/v1/admin/organisations/wijkteam-oost",
        &root,
        &json!({"suspended": false}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let resp = app
        .post("/v1/signals", &oost, &app.signal(NOORD, other))
        .await;
    assert_eq!(resp.status(), 201, "reinstated");
    let resp = app
        .post(
            &format!("/v1/signals/{sid}/withdraw"),
            &oost,
            &json!({"reason": "concern_over"}),
        )
        .await;
    assert_eq!(resp.status(), 200);

    // Every change is in the access log, with who made it.
    let po = app.privacy_officer("fg", &[NOORD]);
    let entries = app.audit_entries(&po, "actor=beheerder").await;
    let changes: Vec<(String, u64, String)> = entries
        .iter()
        .filter(|e| e["object_type"] == "organisation" && e["status"].as_u64() < Some(300))
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["status"].as_u64().unwrap(),
                e["object_id"].as_str().unwrap_or("").to_string(),
            )
        })
        .filter(|(a, _, _)| a != "search")
        .collect();
    assert_eq!(
        changes,
        vec![
            ("create".into(), 201, "wijkteam-oost".into()),
            ("update".into(), 200, "wijkteam-oost".into()),
            ("update".into(), 200, "wijkteam-oost".into()),
        ]
    );
    let refused = entries
        .iter()
        .filter(|e| e["object_type"] == "organisation" && e["outcome"] == "invalid")
        .count();
    assert_eq!(refused, 8, "refused changes are logged too");
}

#[tokio::test]
async fn network_settings_change_matching_without_restart() {
    let mut app = spawn_app().await;
    let root = admin(&app);
    let before = network(&app, JEUGD).await;
    assert_eq!(before["match_threshold"], 2);

    for (body, status, code) in [
        (json!({"match_threshold": 1}), 422, "invalid-field"),
        (json!({"max_validity_days": 731}), 422, "invalid-field"),
        (
            json!({"categories": ["ok", "Niet OK"]}),
            422,
            "invalid-field",
        ),
        (
            json!({"webhook": {"url": "https://x"}}),
            422,
            "invalid-body",
        ),
        (json!({"match_threshold": "3"}), 422, "invalid-body"),
        (json!({"closed_match_days": 0}), 422, "invalid-field"),
    ] {
        let resp = patch(&app, &format!("/v1/admin/networks/{JEUGD}"), &root, &body).await;
        let p = expect_problem(resp, status, code).await;
        if body.get("match_threshold") == Some(&json!(1)) {
            assert!(
                p["detail"]
                    .as_str()
                    .unwrap()
                    .starts_with("/match_threshold")
            );
        }
    }
    let resp = patch(
        &app,
        "/v1/admin/networks/elders",
        &root,
        &json!({"match_threshold": 3}),
    )
    .await;
    expect_problem(resp, 404, "not-found").await;
    assert_eq!(network(&app, JEUGD).await, before, "nothing changed");

    // Three organisations needed, and a new category.
    let mut cats: Vec<Value> = before["categories"].as_array().unwrap().clone();
    cats.push(json!("armoede"));
    let resp = patch(
        &app,
        &format!("/v1/admin/networks/{JEUGD}"),
        &root,
        &json!({"match_threshold": 3, "categories": cats, "max_validity_days": 90,
                "closed_match_days": 30}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let after: Value = resp.json().await.unwrap();
    assert_eq!(after["match_threshold"], 3);
    assert_eq!(after["closed_match_days"], 30);
    assert!(after["changed_at"].is_number());

    let child = |r: &str| person(r, "Noor", "Yilmaz", "2018-07-01");
    let mut body = app.signal(JEUGD, child("P-1"));
    body["category"] = json!("armoede");
    let resp = app
        .post("/v1/signals", &app.partner("politie"), &body)
        .await;
    assert_eq!(resp.status(), 201, "the new category is accepted at once");
    let sig: Value = resp.json().await.unwrap();
    let until = sig["valid_until"].as_str().unwrap().to_string();
    assert!(
        until < samenloop::http::rfc3339(app.now() + 91 * 86_400),
        "validity capped at 90 days: {until}"
    );
    let resp = app
        .post(
            "/v1/signals",
            &app.partner("school-de-linde"),
            &app.signal(JEUGD, child("S-1")),
        )
        .await;
    assert_eq!(resp.status(), 201);
    assert!(matches(&app, JEUGD).await.is_empty(), "two of three");
    let resp = app
        .post(
            "/v1/signals",
            &app.partner("gemeente"),
            &app.signal(JEUGD, child("G-1")),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let found = matches(&app, JEUGD).await;
    assert_eq!(found.len(), 1, "three organisations: a match");

    // Stored: the settings outlive a restart.
    app.restart().await;
    let kept = network(&app, JEUGD).await;
    assert_eq!(
        (
            kept["match_threshold"].clone(),
            kept["max_validity_days"].clone()
        ),
        (json!(3), json!(90))
    );
    let po = app.privacy_officer("fg", &[JEUGD]);
    let logged = app
        .audit_entries(
            &po,
            &format!("actor=beheerder&network={JEUGD}&action=update"),
        )
        .await;
    assert_eq!(
        logged.iter().filter(|e| e["status"] == 200).count(),
        1,
        "{logged:?}"
    );
    assert_eq!(
        logged.iter().filter(|e| e["outcome"] == "invalid").count(),
        6
    );
}

#[tokio::test]
async fn an_excluded_address_links_no_household_from_the_next_submission_on() {
    let app = spawn_app().await;
    let root = admin(&app);
    let shelter = |r: &str, given: &str, born: &str| {
        with_address(person(r, given, "Visser", born), "1011 AB", "5")
    };
    let keys = app.keys(shelter("X", "Anna", "1980-01-01"));
    let address = keys["household"][0].as_str().unwrap().to_string();
    let key_id = keys["key_id"].as_str().unwrap().to_string();
    assert!(address.starts_with("adr:"));

    for (body, status, code) in [
        (
            json!({"key_id": key_id, "key": keys["person"][0], "label": "Opvang"}),
            422,
            "invalid-field",
        ),
        (
            json!({"key_id": "other-key", "key": address, "label": "Opvang"}),
            422,
            "unknown-key-id",
        ),
        (
            json!({"key_id": key_id, "key": address, "label": ""}),
            422,
            "invalid-field",
        ),
        (
            json!({"key_id": key_id, "key": address}),
            422,
            "invalid-body",
        ),
    ] {
        let resp = app.post("/v1/admin/excluded-addresses", &root, &body).await;
        expect_problem(resp, status, code).await;
    }
    let resp = app
        .post(
            "/v1/admin/excluded-addresses",
            &root,
            &json!({"key_id": key_id, "key": address, "label": "Opvang De Haven"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let entry: Value = resp.json().await.unwrap();
    let id = entry["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("exa_"));
    let resp = app
        .post(
            "/v1/admin/excluded-addresses",
            &root,
            &json!({"key_id": key_id, "key": address, "label": "Twice"}),
        )
        .await;
    expect_problem(resp, 409, "already-exists").await;
    let list = app.get("/v1/admin/excluded-addresses", &root).await;
    let text = list.text().await.unwrap();
    assert!(text.contains("Opvang De Haven"));
    assert!(
        !text.contains(&address[4..]),
        "the list never shows a pseudonym"
    );

    // Two residents of the shelter, known to two organisations: no household match.
    for (org, r, given, born) in [
        ("woonstad", "W-1", "Anna", "1980-01-01"),
        ("ggz-noord", "G-1", "Bram", "1975-03-04"),
    ] {
        let resp = app
            .post(
                "/v1/signals",
                &app.partner(org),
                &app.signal(NOORD, shelter(r, given, born)),
            )
            .await;
        assert_eq!(resp.status(), 201);
    }
    assert!(matches(&app, NOORD).await.is_empty());

    // Off the list: the next resident links the household with both.
    let resp = send(
        &app,
        reqwest::Method::DELETE,
        &format!("/v1/admin/excluded-addresses/{id}"),
        &root,
        None,
    )
    .await;
    assert_eq!(resp.status(), 204);
    let resp = send(
        &app,
        reqwest::Method::DELETE,
        &format!("/v1/admin/excluded-addresses/{id}"),
        &root,
        None,
    )
    .await;
    expect_problem(resp, 404, "not-found").await;
    let resp = app
        .post(
            "/v1/signals",
            &app.partner("politie"),
            &app.signal(NOORD, shelter("P-1", "Cas", "2001-09-09")),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let found = matches(&app, NOORD).await;
    assert_eq!(found.len(), 1, "{found:?}");
    let handle = found[0]["handle"].as_str().unwrap();
    let m: Value = app
        .get(&format!("/v1/matches/{handle}"), &app.coordinator(NOORD))
        .await
        .json()
        .await
        .unwrap();
    let orgs = m.to_string();
    for org in ["woonstad", "ggz-noord", "politie"] {
        assert!(orgs.contains(org), "{org} in {m}");
    }

    let po = app.privacy_officer("fg", &[NOORD]);
    let logged = app.audit_entries(&po, &format!("object={id}")).await;
    let actions: Vec<(&str, u64)> = logged
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["status"].as_u64().unwrap()))
        .collect();
    // The list showed it (its id is named), then it was removed.
    assert_eq!(
        actions,
        vec![("create", 201), ("search", 200), ("update", 204)]
    );
}
