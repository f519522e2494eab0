//! The server is checked against `spec/openapi.yaml`: every answer of a scenario that
//! touches every operation (successes and errors) must match the documented schema.

use crate::helpers::*;
use samenloop::http::auth::Role;
use serde_json::{Value, json};
use std::collections::BTreeSet;

const NOORD: &str = "zorgnetwerk-noord";

fn spec() -> Value {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/spec/openapi.yaml")).unwrap();
    serde_yaml_ng::from_str(&text).expect("openapi.yaml parses")
}

fn resolve<'a>(spec: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let mut cur = spec;
            for part in r.trim_start_matches("#/").split('/') {
                cur = &cur[part];
            }
            assert!(!cur.is_null(), "dangling $ref {r}");
            resolve(spec, cur)
        }
        None => v,
    }
}

/// A small JSON Schema validator for the subset the spec uses.
fn validate(spec: &Value, schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = resolve(spec, schema);
    // `type` is one name or (OpenAPI 3.1) a list of names, e.g. `[integer, "null"]`.
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !types.is_empty() {
        let ok = types.iter().any(|t| match *t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            _ => false,
        });
        if !ok {
            errors.push(format!("{at}: expected {}, got {v}", types.join(" or ")));
            return;
        }
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            errors.push(format!("{at}: {v} not in enum {e:?}"));
        }
    }
    if let (Some(p), Some(s)) = (schema.get("pattern").and_then(Value::as_str), v.as_str()) {
        if !regex::Regex::new(p).unwrap().is_match(s) {
            errors.push(format!("{at}: {s:?} does not match {p}"));
        }
    }
    if let (Some("date-time"), Some(s)) = (schema.get("format").and_then(Value::as_str), v.as_str())
    {
        if !regex::Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
            .unwrap()
            .is_match(s)
        {
            errors.push(format!("{at}: {s:?} is not an RFC 3339 date-time"));
        }
    }
    if let (Some(max), Some(s)) = (schema.get("maxLength").and_then(Value::as_u64), v.as_str()) {
        if s.chars().count() as u64 > max {
            errors.push(format!("{at}: longer than {max}"));
        }
    }
    if let (Some(min), Some(n)) = (schema.get("minimum").and_then(Value::as_i64), v.as_i64()) {
        if n < min {
            errors.push(format!("{at}: {n} below minimum {min}"));
        }
    }
    if let Some(obj) = v.as_object() {
        let props = schema.get("properties").and_then(Value::as_object);
        for r in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !obj.contains_key(r.as_str().unwrap()) {
                errors.push(format!("{at}: missing required {r}"));
            }
        }
        for (k, val) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(s) => validate(spec, s, val, &format!("{at}/{k}"), errors),
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    errors.push(format!("{at}: undocumented member {k}"))
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, item) in arr.iter().enumerate() {
            validate(spec, items, item, &format!("{at}/{i}"), errors);
        }
    }
}

struct Checker {
    spec: Value,
    seen: BTreeSet<(String, String, u16)>,
}

impl Checker {
    async fn check(&mut self, method: &str, template: &str, resp: reqwest::Response) -> Value {
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let text = resp.text().await.unwrap();
        let op = &self.spec["paths"][template][method.to_lowercase()];
        assert!(op.is_object(), "{method} {template} is not in the spec");
        let response = op["responses"].get(status.to_string()).unwrap_or_else(|| {
            panic!("{method} {template} answered {status}, which the spec does not list")
        });
        let response = resolve(&self.spec, response);
        if status == 204 {
            assert!(
                text.is_empty() && response.get("content").is_none(),
                "{method} {template} 204 has no body"
            );
            self.seen
                .insert((method.to_string(), template.to_string(), status));
            return Value::Null;
        }
        let schema = &response["content"][&ct]["schema"];
        assert!(
            !schema.is_null(),
            "{method} {template} {status}: content type {ct} is not documented"
        );
        let body: Value = if matches!(
            ct.as_str(),
            "text/plain" | "text/csv" | "application/x-ndjson"
        ) {
            Value::String(text)
        } else {
            serde_json::from_str(&text).unwrap()
        };
        let mut errors = Vec::new();
        validate(&self.spec, schema, &body, "", &mut errors);
        assert!(
            errors.is_empty(),
            "{method} {template} {status}: {errors:#?}\n{body}"
        );
        self.seen
            .insert((method.to_string(), template.to_string(), status));
        body
    }
}

#[tokio::test]
async fn every_answer_matches_the_openapi_description() {
    // A webhook nobody answers, dead-lettered after a second: deliveries to look at.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "https://localhost:{}/hook",
        free.local_addr().unwrap().port()
    );
    drop(free);
    // The index key in a directory of its own, where a rotation's key file is written.
    let (keys, index_key) = index_key_dir();
    write_index_key(keys.path(), "idx-2.toml", "idx-dev-2", 0x5a);
    let app = spawn_app_with(|cfg| {
        cfg.domain.index_key_file = index_key;
        let dir = std::path::absolute(
            samenloop::config::development_config_path()
                .parent()
                .unwrap(),
        )
        .unwrap();
        cfg.networks[0].webhook = Some(samenloop::config::WebhookConfig {
            url,
            secret_file: dir.join("webhook-secret.dev.toml"),
            ca_file: None,
            timeout_secs: 1,
            dead_letter_after_secs: 1,
            max_backoff_secs: 1,
        });
    })
    .await;
    let mut c = Checker {
        spec: spec(),
        seen: BTreeSet::new(),
    };
    let noord = "zorgnetwerk-noord";
    let (w, p, coord) = (
        app.partner("woonstad"),
        app.partner("politie"),
        app.coordinator(noord),
    );

    let body = app.signal(noord, person("OA-1", "Marieke", "de Vries", "1985-03-07"));
    let s = c
        .check(
            "POST",
            "/v1/signals",
            app.post("/v1/signals", &w, &body).await,
        )
        .await;
    c.check(
        "POST",
        "/v1/signals",
        app.post("/v1/signals", &w, &body).await,
    )
    .await;
    let mut bad = body.clone();
    bad["category"] = json!("nope");
    c.check(
        "POST",
        "/v1/signals",
        app.post("/v1/signals", &w, &bad).await,
    )
    .await;
    c.check(
        "POST",
        "/v1/signals",
        app.client
            .post(format!("{}/v1/signals", app.base))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    c.check(
        "POST",
        "/v1/signals",
        app.post("/v1/signals", &coord, &body).await,
    )
    .await;
    let id = s["id"].as_str().unwrap();
    c.check(
        "GET",
        "/v1/signals/{id}",
        app.get(&format!("/v1/signals/{id}"), &w).await,
    )
    .await;
    c.check(
        "GET",
        "/v1/signals/{id}",
        app.get(&format!("/v1/signals/{id}"), &p).await,
    )
    .await;
    c.check(
        "GET",
        "/v1/signals",
        app.get(&format!("/v1/signals?network={noord}&reference=OA-1"), &w)
            .await,
    )
    .await;
    c.check(
        "GET",
        "/v1/signals",
        app.get("/v1/signals?network=x", &w).await,
    )
    .await;
    let batch = json!({"signals": [app.signal(noord, person("OA-2", "Marieke", "Vries", "1985-03-07")), {"network": noord}]});
    c.check(
        "POST",
        "/v1/signals/batch",
        app.post("/v1/signals/batch", &p, &batch).await,
    )
    .await;
    c.check(
        "POST",
        "/v1/signals/{id}/renew",
        app.post(
            &format!("/v1/signals/{id}/renew"),
            &w,
            &json!({"valid_days": 30}),
        )
        .await,
    )
    .await;

    let page = c
        .check(
            "GET",
            "/v1/networks/{network}/matches",
            app.get(&format!("/v1/networks/{noord}/matches"), &coord)
                .await,
        )
        .await;
    let handle = page["matches"][0]["handle"]
        .as_str()
        .expect("a match formed")
        .to_string();
    c.check(
        "GET",
        "/v1/networks/{network}/matches",
        app.get(&format!("/v1/networks/{noord}/matches?limit=0"), &coord)
            .await,
    )
    .await;
    c.check(
        "GET",
        "/v1/networks/{network}/matches",
        app.get("/v1/networks/jeugd-0-12/matches", &coord).await,
    )
    .await;
    c.check(
        "GET",
        "/v1/matches/{handle}",
        app.get(&format!("/v1/matches/{handle}"), &coord).await,
    )
    .await;
    c.check(
        "GET",
        "/v1/matches/{handle}",
        app.get(&format!("/v1/matches/{handle}"), &w).await,
    )
    .await;

    let fu = format!("/v1/matches/{handle}/follow-up");
    for (token, body) in [
        (&coord, json!({"action": "ask_consent"})),
        (&coord, json!({"action": "acknowledge"})),
        (
            &coord,
            json!({"action": "choose_lead", "organisation": "ggz-noord"}),
        ),
        (
            &coord,
            json!({"action": "plan_meeting", "date": "2020-01-01"}),
        ),
        (
            &coord,
            json!({"action": "close", "reason": "care_in_place"}),
        ),
        (&w, json!({"action": "acknowledge"})),
        (
            &app.coordinator("jeugd-0-12"),
            json!({"action": "acknowledge"}),
        ),
    ] {
        c.check(
            "POST",
            "/v1/matches/{handle}/follow-up",
            app.post(&fu, token, &body).await,
        )
        .await;
    }
    c.check(
        "POST",
        "/v1/matches/{handle}/follow-up",
        app.client
            .post(format!("{}{fu}", app.base))
            .bearer_auth(&coord)
            .header("content-type", "application/json")
            .body("{")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let fed = c
        .check(
            "GET",
            "/v1/signals/{id}",
            app.get(&format!("/v1/signals/{id}"), &w).await,
        )
        .await;
    assert_eq!(fed["feedback"]["status"], "closed");
    let events = format!("/v1/networks/{noord}/events");
    let page = c
        .check(
            "GET",
            "/v1/networks/{network}/events",
            app.get(&events, &coord).await,
        )
        .await;
    assert!(page["events"].as_array().unwrap().len() >= 3);
    for (token, path) in [
        (&coord, format!("{events}?limit=0")),
        (&w, events.clone()),
        (&coord, "/v1/networks/jeugd-0-12/events".to_string()),
    ] {
        c.check(
            "GET",
            "/v1/networks/{network}/events",
            app.get(&path, token).await,
        )
        .await;
    }

    let deliveries = "/v1/networks/{network}/deliveries";
    let mut dead = Value::Null;
    for _ in 0..400 {
        let page = c
            .check(
                "GET",
                deliveries,
                app.get(
                    &format!("/v1/networks/{noord}/deliveries?state=dead"),
                    &coord,
                )
                .await,
            )
            .await;
        if let Some(d) = page["deliveries"].get(0) {
            dead = d.clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let event_id = dead["event_id"]
        .as_str()
        .expect("a dead letter")
        .to_string();
    c.check(
        "GET",
        deliveries,
        app.get(&format!("/v1/networks/{noord}/deliveries?limit=1"), &coord)
            .await,
    )
    .await;
    c.check(
        "GET",
        deliveries,
        app.get(&format!("/v1/networks/{noord}/deliveries?state=x"), &coord)
            .await,
    )
    .await;
    c.check(
        "GET",
        deliveries,
        app.get(&format!("/v1/networks/{noord}/deliveries"), &w)
            .await,
    )
    .await;
    c.check(
        "GET",
        deliveries,
        app.get("/v1/networks/jeugd-0-12/deliveries", &coord).await,
    )
    .await;
    c.check(
        "GET",
        deliveries,
        app.client
            .get(format!("{}/v1/networks/{noord}/deliveries", app.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let retry = "/v1/networks/{network}/deliveries/{event_id}/retry";
    let retry_url = format!("/v1/networks/{noord}/deliveries/{event_id}/retry");
    c.check(
        "POST",
        retry,
        app.post(&retry_url, &coord, &Value::Null).await,
    )
    .await;
    c.check(
        "POST",
        retry,
        app.post(&retry_url, &coord, &Value::Null).await,
    )
    .await;
    c.check("POST", retry, app.post(&retry_url, &w, &Value::Null).await)
        .await;
    c.check(
        "POST",
        retry,
        app.post(
            &format!("/v1/networks/{noord}/deliveries/evt_unknown/retry"),
            &coord,
            &Value::Null,
        )
        .await,
    )
    .await;

    c.check(
        "POST",
        "/v1/signals/{id}/withdraw",
        app.post(
            &format!("/v1/signals/{id}/withdraw"),
            &w,
            &json!({"reason": "concern_over"}),
        )
        .await,
    )
    .await;
    c.check(
        "POST",
        "/v1/signals/{id}/withdraw",
        app.post(
            &format!("/v1/signals/{id}/withdraw"),
            &w,
            &json!({"reason": "concern_over"}),
        )
        .await,
    )
    .await;
    c.check(
        "POST",
        "/v1/signals/{id}/renew",
        app.post(&format!("/v1/signals/{id}/renew"), &w, &json!({}))
            .await,
    )
    .await;

    // Figures: the period must have ended, so move the server's clock a day on.
    app.advance(86_400);
    let yesterday = samenloop::pseudonym::Date::from_days_since_epoch(
        samenloop::calendar::local_day(app.now()) - 1,
    )
    .to_string();
    let figures = format!("/v1/networks/{noord}/figures?from={yesterday}&to={yesterday}");
    let f = c
        .check(
            "GET",
            "/v1/networks/{network}/figures",
            app.get(&figures, &coord).await,
        )
        .await;
    assert!(!f["suppressed"].as_array().unwrap().is_empty());
    c.check(
        "GET",
        "/v1/networks/{network}/figures",
        app.get(
            &format!("/v1/networks/{noord}/figures?from={yesterday}"),
            &coord,
        )
        .await,
    )
    .await;
    c.check(
        "GET",
        "/v1/networks/{network}/figures",
        app.get(&figures, &w).await,
    )
    .await;
    c.check(
        "GET",
        "/v1/networks/{network}/figures",
        app.get(&figures.replace(noord, "jeugd-0-12"), &coord).await,
    )
    .await;
    c.check(
        "GET",
        "/v1/networks/{network}/figures",
        app.client
            .get(format!("{}{figures}", app.base))
            .send()
            .await
            .unwrap(),
    )
    .await;

    // The access log, as a privacy officer of the network reads it.
    let po = app.token(Role::PrivacyOfficer, "gemeente", &[noord]);
    let page = c
        .check(
            "GET",
            "/v1/audit/entries",
            app.get("/v1/audit/entries?limit=5&order=desc", &po).await,
        )
        .await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 5);
    c.check(
        "GET",
        "/v1/audit/entries",
        app.get("/v1/audit/entries?action=nope", &po).await,
    )
    .await;
    c.check(
        "GET",
        "/v1/audit/entries",
        app.get("/v1/audit/entries", &coord).await,
    )
    .await;
    c.check(
        "GET",
        "/v1/audit/entries",
        app.client
            .get(format!("{}/v1/audit/entries", app.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    c.check(
        "GET",
        "/v1/audit/entries",
        app.get(
            "/v1/audit/entries",
            &app.token(Role::PrivacyOfficer, "gemeente", &["elders"]),
        )
        .await,
    )
    .await;
    let jsonl = c
        .check(
            "GET",
            "/v1/audit/export",
            app.get("/v1/audit/export", &po).await,
        )
        .await;
    assert!(jsonl.as_str().unwrap().contains("\"end\":true"));
    c.check(
        "GET",
        "/v1/audit/export",
        app.get("/v1/audit/export?format=csv&action=create", &po)
            .await,
    )
    .await;
    c.check(
        "GET",
        "/v1/audit/export",
        app.get("/v1/audit/export?format=xml", &po).await,
    )
    .await;
    let today = samenloop::pseudonym::Date::from_days_since_epoch(samenloop::calendar::local_day(
        app.now(),
    ))
    .to_string();
    for view in ["/v1/audit/views/users", "/v1/audit/views/days"] {
        c.check(
            "GET",
            view,
            app.get(&format!("{view}?from={yesterday}&to={today}"), &po)
                .await,
        )
        .await;
        c.check("GET", view, app.get(view, &po).await).await;
    }
    c.check(
        "GET",
        "/v1/audit/anomalies",
        app.get(
            &format!("/v1/audit/anomalies?from={yesterday}&to={today}&min_refused=1"),
            &po,
        )
        .await,
    )
    .await;
    c.check(
        "GET",
        "/v1/audit/anomalies",
        app.get(
            &format!("/v1/audit/anomalies?from={yesterday}&to={today}&factor=0"),
            &po,
        )
        .await,
    )
    .await;
    let dsar =
        json!({ "subject": app.keys(person("DSAR-1", "Marieke", "de Vries", "1985-03-07")) });
    let answer = c
        .check(
            "POST",
            "/v1/audit/subject-access",
            app.post("/v1/audit/subject-access", &po, &dsar).await,
        )
        .await;
    assert!(
        !answer["signals"].as_array().unwrap().is_empty(),
        "{answer}"
    );
    c.check(
        "POST",
        "/v1/audit/subject-access",
        app.post("/v1/audit/subject-access", &po, &json!({ "subject": {} }))
            .await,
    )
    .await;
    c.check(
        "POST",
        "/v1/audit/subject-access",
        app.post(
            "/v1/audit/subject-access",
            &po,
            &json!({ "subject": dsar["subject"], "networks": ["jeugd-0-12"] }),
        )
        .await,
    )
    .await;
    c.check(
        "POST",
        "/v1/audit/checkpoints",
        app.client
            .post(format!("{}/v1/audit/checkpoints", app.base))
            .bearer_auth(&po)
            .send()
            .await
            .unwrap(),
    )
    .await;
    c.check(
        "POST",
        "/v1/audit/checkpoints",
        app.client
            .post(format!("{}/v1/audit/checkpoints", app.base))
            .bearer_auth(&w)
            .send()
            .await
            .unwrap(),
    )
    .await;
    c.check(
        "GET",
        "/v1/audit/checkpoints",
        app.get("/v1/audit/checkpoints?limit=2", &po).await,
    )
    .await;
    c.check(
        "GET",
        "/v1/audit/checkpoints",
        app.get("/v1/audit/checkpoints?limit=0", &po).await,
    )
    .await;
    let v = c
        .check(
            "GET",
            "/v1/audit/verify",
            app.get("/v1/audit/verify", &po).await,
        )
        .await;
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["checkpoints_signed"], 1, "{v}");
    c.check(
        "GET",
        "/v1/audit/verify",
        app.get("/v1/audit/verify", &coord).await,
    )
    .await;

    // Retention, as the operator runs it.
    let admin = app.token(Role::Admin, "gemeente", &[]);
    let plan = c
        .check(
            "POST",
            "/v1/admin/retention/run",
            app.post("/v1/admin/retention/run", &admin, &json!({"dry_run": true}))
                .await,
        )
        .await;
    assert_eq!(plan["dry_run"], true);
    c.check(
        "POST",
        "/v1/admin/retention/run",
        app.post("/v1/admin/retention/run", &admin, &json!({}))
            .await,
    )
    .await;
    c.check(
        "POST",
        "/v1/admin/retention/run",
        app.post("/v1/admin/retention/run", &admin, &json!({"dry": 1}))
            .await,
    )
    .await;
    c.check(
        "POST",
        "/v1/admin/retention/run",
        app.post("/v1/admin/retention/run", &coord, &json!({}))
            .await,
    )
    .await;

    // The rotation of the index key.
    const ROT: &str = "/v1/admin/index-key/rotation";
    let idle = c.check("GET", ROT, app.get(ROT, &admin).await).await;
    assert_eq!(idle["state"], "idle", "{idle}");
    c.check("GET", ROT, app.get(ROT, &coord).await).await;
    c.check(
        "POST",
        ROT,
        app.post(ROT, &admin, &json!({"key_file": "../idx-2.toml"}))
            .await,
    )
    .await;
    c.check(
        "POST",
        ROT,
        app.post(ROT, &w, &json!({"key_file": "idx-2.toml"})).await,
    )
    .await;
    let started = c
        .check(
            "POST",
            ROT,
            app.post(ROT, &admin, &json!({"key_file": "idx-2.toml"}))
                .await,
        )
        .await;
    assert_eq!(started["epoch"], 1, "{started}");
    write_index_key(keys.path(), "idx-3.toml", "idx-dev-3", 0x6b);
    let again = app
        .post(ROT, &admin, &json!({"key_file": "idx-3.toml"}))
        .await;
    let status = again.status().as_u16();
    c.check("POST", ROT, again).await;
    assert!(status == 409 || status == 202, "{status}");
    c.check("GET", ROT, app.get(ROT, &admin).await).await;

    // The directory, as the operator keeps it.
    let send = |method: reqwest::Method, path: &str, token: &str, body: Option<Value>| {
        let mut r = app
            .client
            .request(method, format!("{}{path}", app.base))
            .bearer_auth(token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send()
    };
    use reqwest::Method;
    c.check(
        "GET",
        "/v1/admin/organisations",
        send(Method::GET, "/v1/admin/organisations", &admin, None)
            .await
            .unwrap(),
    )
    .await;
    c.check(
        "GET",
        "/v1/admin/organisations",
        send(Method::GET, "/v1/admin/organisations", &coord, None)
            .await
            .unwrap(),
    )
    .await;
    let new_org = json!({"id": "wijkteam-oost", "name": "Wijkteam Oost", "networks": [NOORD]});
    for status in [201, 409] {
        let resp = send(
            Method::POST,
            "/v1/admin/organisations",
            &admin,
            Some(new_org.clone()),
        )
        .await
        .unwrap();
        assert_eq!(resp.status().as_u16(), status);
        c.check("POST", "/v1/admin/organisations", resp).await;
    }
    c.check(
        "POST",
        "/v1/admin/organisations",
        send(
            Method::POST,
            "/v1/admin/organisations",
            &admin,
            Some(json!({"id": "X"})),
        )
        .await
        .unwrap(),
    )
    .await;
    let org_path = "/v1/admin/organisations/{id}";
    for (id, body) in [
        ("wijkteam-oost", json!({"suspended": true})),
        ("wijkteam-oost", json!({"networks": ["elders"]})),
        ("nobody", json!({})),
    ] {
        c.check(
            "PATCH",
            org_path,
            send(
                Method::PATCH,
                &format!("/v1/admin/organisations/{id}"),
                &admin,
                Some(body),
            )
            .await
            .unwrap(),
        )
        .await;
    }
    // A suspended organisation may not submit.
    let oost = app.token(Role::Partner, "wijkteam-oost", &[NOORD]);
    let resp = app
        .post(
            "/v1/signals",
            &oost,
            &app.signal(NOORD, person("O-1", "Els", "Dijk", "1990-01-01")),
        )
        .await;
    assert_eq!(resp.status(), 403);
    c.check("POST", "/v1/signals", resp).await;
    c.check(
        "GET",
        "/v1/admin/networks",
        send(Method::GET, "/v1/admin/networks", &admin, None)
            .await
            .unwrap(),
    )
    .await;
    let net_path = "/v1/admin/networks/{id}";
    for body in [
        json!({"decide_within_days": 30}),
        json!({"match_threshold": 0}),
    ] {
        c.check(
            "PATCH",
            net_path,
            send(
                Method::PATCH,
                &format!("/v1/admin/networks/{NOORD}"),
                &admin,
                Some(body),
            )
            .await
            .unwrap(),
        )
        .await;
    }
    let keys = app.keys(samenloop::pseudonym::SubjectFields {
        postcode: "1011 AB".into(),
        house_number: "5".into(),
        ..person("X", "Anna", "Visser", "1980-01-01")
    });
    let exa = json!({"key_id": keys["key_id"], "key": keys["household"][0], "label": "Opvang"});
    let mut exa_id = String::new();
    for status in [201, 409] {
        let resp = send(
            Method::POST,
            "/v1/admin/excluded-addresses",
            &admin,
            Some(exa.clone()),
        )
        .await
        .unwrap();
        assert_eq!(resp.status().as_u16(), status);
        let body = c.check("POST", "/v1/admin/excluded-addresses", resp).await;
        if status == 201 {
            exa_id = body["id"].as_str().unwrap().to_string();
        }
    }
    c.check(
        "GET",
        "/v1/admin/excluded-addresses",
        send(Method::GET, "/v1/admin/excluded-addresses", &admin, None)
            .await
            .unwrap(),
    )
    .await;
    for status in [204, 404] {
        let resp = send(
            Method::DELETE,
            &format!("/v1/admin/excluded-addresses/{exa_id}"),
            &admin,
            None,
        )
        .await
        .unwrap();
        assert_eq!(resp.status().as_u16(), status);
        c.check("DELETE", "/v1/admin/excluded-addresses/{id}", resp)
            .await;
    }

    // Domain key ids: a transition opened and the old key id retired.
    c.check(
        "GET",
        "/v1/admin/domain-keys",
        send(Method::GET, "/v1/admin/domain-keys", &admin, None)
            .await
            .unwrap(),
    )
    .await;
    for (body, status) in [
        (json!({"key_id": "regio-2027-1"}), 201),
        (json!({"key_id": "regio-2027-1"}), 409),
        (json!({"key_id": "No"}), 422),
    ] {
        let resp = send(Method::POST, "/v1/admin/domain-keys", &admin, Some(body))
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), status);
        c.check("POST", "/v1/admin/domain-keys", resp).await;
    }
    for (id, status) in [("regio-2027-1", 409), ("dev-2026", 200), ("nope", 404)] {
        let resp = send(
            Method::POST,
            &format!("/v1/admin/domain-keys/{id}/retire"),
            &admin,
            None,
        )
        .await
        .unwrap();
        assert_eq!(resp.status().as_u16(), status, "{id}");
        c.check("POST", "/v1/admin/domain-keys/{id}/retire", resp)
            .await;
    }

    for path in ["/healthz", "/readyz", "/metrics"] {
        c.check(
            "GET",
            path,
            app.client
                .get(format!("{}{path}", app.base))
                .send()
                .await
                .unwrap(),
        )
        .await;
    }

    // Every operation of the spec was exercised.
    let mut ops = BTreeSet::new();
    for (path, item) in c.spec["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            ops.insert((method.to_uppercase(), path.clone()));
        }
    }
    let seen: BTreeSet<(String, String)> = c
        .seen
        .iter()
        .map(|(m, p, _)| (m.clone(), p.clone()))
        .collect();
    assert_eq!(ops, seen, "every documented operation is exercised");
}

#[test]
fn every_problem_code_is_documented() {
    use samenloop::http::error::ApiError;
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/spec/openapi.yaml")).unwrap();
    let all = [
        ApiError::Unauthenticated,
        ApiError::InvalidToken,
        ApiError::ForbiddenRole,
        ApiError::NotFound,
        ApiError::MalformedJson(String::new()),
        ApiError::InvalidBody(String::new()),
        ApiError::InvalidField {
            field: String::new(),
            detail: String::new(),
        },
        ApiError::InvalidKeySet(String::new()),
        ApiError::UnknownKeyId,
        ApiError::UnknownCategory,
        ApiError::PayloadTooLarge(0),
        ApiError::RequestTimeout,
        ApiError::BatchTooLarge(0),
        ApiError::ReferenceConflict,
        ApiError::SignalNotActive,
        ApiError::DeliveryNotDead,
        ApiError::OrganisationSuspended,
        ApiError::AlreadyExists(String::new()),
        ApiError::RateLimited(1),
        ApiError::UnsupportedMediaType,
        ApiError::InvalidQuery(String::new()),
        ApiError::Unavailable,
        ApiError::InsufficientStorage,
        ApiError::InvalidTransition(String::new()),
        ApiError::LeadNotInvolved,
        ApiError::RotationRunning,
        ApiError::KeyIdInRing,
        ApiError::InvalidKeyFile(String::new()),
        ApiError::Internal,
    ];
    for e in all {
        let row = format!("| {} | {} |", e.code(), e.status().as_u16());
        assert!(
            text.contains(&row),
            "spec/openapi.yaml does not document {row}"
        );
    }
}

#[test]
fn the_validator_rejects_what_the_spec_does_not_allow() {
    let spec = spec();
    let schema = json!({"$ref": "#/components/schemas/Signal"});
    let mut errors = Vec::new();
    validate(
        &spec,
        &schema,
        &json!({"id": "sig_1", "extra": 1, "status": "gone"}),
        "",
        &mut errors,
    );
    let text = errors.join("\n");
    assert!(text.contains("undocumented member extra"), "{text}");
    assert!(text.contains("does not match"), "{text}");
    assert!(text.contains("not in enum"), "{text}");
    assert!(text.contains("missing required"), "{text}");
    // A list of types: a count may be null, never a string.
    let count = json!({"$ref": "#/components/schemas/Count"});
    for (v, ok) in [(json!(null), true), (json!(7), true), (json!("7"), false)] {
        let mut errors = Vec::new();
        validate(&spec, &count, &v, "", &mut errors);
        assert_eq!(errors.is_empty(), ok, "{v}: {errors:?}");
    }
}

#[test]
fn every_key_kind_is_documented() {
    use samenloop::pseudonym::KeyKind;
    let spec = spec();
    let schema = json!({"$ref": "#/components/schemas/Key"});
    let body = "A".repeat(43);
    for kind in KeyKind::ALL {
        let mut errors = Vec::new();
        let key = json!(format!("{}:{body}", kind.code()));
        validate(&spec, &schema, &key, "", &mut errors);
        assert!(errors.is_empty(), "{kind}: {errors:?}");
    }
    let mut errors = Vec::new();
    validate(
        &spec,
        &schema,
        &json!(format!("xx:{body}")),
        "",
        &mut errors,
    );
    assert!(!errors.is_empty(), "an unknown kind does not match");
}
