//! Attacks over the real API that `auth.rs` (forged tokens) and `signals.rs` (bad input)
//! do not already try: role and network escalation, id guessing, probing whether a
//! person is known, oversized and deeply nested JSON, slow clients, old TLS and plaintext.

use crate::helpers::*;
use samenloop::http::auth::Role;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

const NOORD: &str = "zorgnetwerk-noord";
const JEUGD: &str = "jeugd-0-12";

/// `samenloop_store_signals` and `samenloop_store_matches` from `/metrics`.
async fn store_counts(app: &TestApp) -> (u64, u64) {
    let m = app.metrics().await;
    let read = |name: &str| -> u64 {
        m.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} in /metrics"))
            .trim()
            .parse()
            .unwrap()
    };
    (
        read("samenloop_store_signals"),
        read("samenloop_store_matches"),
    )
}

/// A token with arbitrary claims, signed with the development ES256 key.
fn raw_token(claims: &Value) -> String {
    let pem = dev_file("jwt-es256.dev.key.pem");
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    h.kid = Some("dev-es256".into());
    jsonwebtoken::encode(
        &h,
        claims,
        &jsonwebtoken::EncodingKey::from_ec_pem(&pem).unwrap(),
    )
    .unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Status, content type and body of an answer.
async fn answer(resp: reqwest::Response) -> (u16, String, String) {
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, ct, resp.text().await.unwrap())
}

#[tokio::test]
async fn role_and_network_escalation_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let woonstad = app.partner("woonstad");
    let politie = app.partner("politie");
    for (token, r) in [(&woonstad, "E-W"), (&politie, "E-P")] {
        let r = app
            .post(
                "/v1/signals",
                token,
                &app.signal(NOORD, person(r, "Kees", "Visser", "1961-02-03")),
            )
            .await;
        assert_eq!(r.status().as_u16(), 201);
    }
    let list: Value = app
        .get(
            &format!("/v1/networks/{NOORD}/matches"),
            &app.coordinator(NOORD),
        )
        .await
        .json()
        .await
        .unwrap();
    let handle = list["matches"][0]["handle"].as_str().unwrap().to_string();
    assert_eq!(store_counts(&app).await, (2, 1));

    // Partners, privacy officers and admins do not use the coordinator endpoints, even
    // with the right network in the token.
    for role in [Role::Partner, Role::PrivacyOfficer, Role::Admin] {
        let t = app.token(role, "politie", &[NOORD, JEUGD]);
        expect_problem(
            app.get(&format!("/v1/networks/{NOORD}/matches"), &t).await,
            403,
            "forbidden-role",
        )
        .await;
        expect_problem(
            app.get(&format!("/v1/matches/{handle}"), &t).await,
            403,
            "forbidden-role",
        )
        .await;
    }
    // Nor do coordinators, privacy officers and admins submit, read or change signals.
    for role in [Role::Coordinator, Role::PrivacyOfficer, Role::Admin] {
        let t = app.token(role, "woonstad", &[NOORD]);
        expect_problem(
            app.post(
                "/v1/signals/batch",
                &t,
                &json!({"signals": [app.signal(NOORD, person("E-X", "A", "B", "1990-01-01"))]}),
            )
            .await,
            403,
            "forbidden-role",
        )
        .await;
        expect_problem(
            app.get(&format!("/v1/signals?network={NOORD}&reference=E-W"), &t)
                .await,
            403,
            "forbidden-role",
        )
        .await;
    }

    // A coordinator of another network, of no network, or of a network that does not
    // exist: 404 with the same body as a handle that does not exist.
    let absent = answer(
        app.get(
            &format!("/v1/matches/mat_{}", random_hex(16)),
            &app.coordinator(NOORD),
        )
        .await,
    )
    .await;
    assert_eq!(absent.0, 404);
    for t in [
        app.coordinator(JEUGD),
        app.token(Role::Coordinator, "gemeente", &[]),
        app.coordinator("nowhere"),
    ] {
        assert_eq!(
            answer(app.get(&format!("/v1/matches/{handle}"), &t).await).await,
            absent
        );
        assert_eq!(
            answer(app.get(&format!("/v1/networks/{NOORD}/matches"), &t).await).await,
            absent
        );
    }
    assert_eq!(
        answer(
            app.get("/v1/networks/nowhere/matches", &app.coordinator("nowhere"))
                .await
        )
        .await,
        absent
    );

    // A partner token that claims a network its organisation is not configured for
    // (woonstad is only in the adult network) cannot submit into it, alone or in a batch.
    let claims_more = app.token(Role::Partner, "woonstad", &[NOORD, JEUGD]);
    let youth = app.signal(JEUGD, person("E-J", "Kees", "Visser", "1961-02-03"));
    expect_problem(
        app.post("/v1/signals", &claims_more, &youth).await,
        404,
        "not-found",
    )
    .await;
    let b: Value = app
        .post(
            "/v1/signals/batch",
            &claims_more,
            &json!({"signals": [youth]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(b["accepted"], 0, "{b}");
    assert_eq!(b["results"][0]["status"], 404, "{b}");
    // A configured network that the token does not claim is refused too.
    let claims_less = app.token(Role::Partner, "politie", &[JEUGD]);
    expect_problem(
        app.post(
            "/v1/signals",
            &claims_less,
            &app.signal(NOORD, person("E-P2", "Kees", "Visser", "1961-02-03")),
        )
        .await,
        404,
        "not-found",
    )
    .await;
    // A partner of an organisation that is not configured at all.
    expect_problem(
        app.post(
            "/v1/signals",
            &app.token(Role::Partner, "evil-org", &[NOORD]),
            &app.signal(NOORD, person("E-E", "Kees", "Visser", "1961-02-03")),
        )
        .await,
        401,
        "invalid-token",
    )
    .await;

    // A role that does not exist, or no role at all: the token is not valid.
    let base = json!({
        "sub": "x", "iss": app.cfg.auth.issuer, "aud": app.cfg.auth.audience,
        "exp": now() + 600, "nbf": now() - 5, "org": "gemeente", "networks": [NOORD],
    });
    let mut superuser = base.clone();
    superuser["role"] = json!("superuser");
    let mut uppercase = base.clone();
    uppercase["role"] = json!("Coordinator");
    let mut list_role = base.clone();
    list_role["role"] = json!(["partner", "coordinator"]);
    let mut no_networks = base.clone();
    no_networks["role"] = json!("coordinator");
    no_networks.as_object_mut().unwrap().remove("networks");
    let mut string_networks = base.clone();
    string_networks["role"] = json!("coordinator");
    string_networks["networks"] = json!(NOORD);
    for claims in [
        base.clone(),
        superuser,
        uppercase,
        list_role,
        no_networks,
        string_networks,
    ] {
        let t = raw_token(&claims);
        expect_problem(
            app.get(&format!("/v1/networks/{NOORD}/matches"), &t).await,
            401,
            "invalid-token",
        )
        .await;
    }
    // The same claims with a proper role get in (the refusals above are about the role).
    let mut good = base.clone();
    good["role"] = json!("coordinator");
    assert_eq!(
        app.get(&format!("/v1/networks/{NOORD}/matches"), &raw_token(&good))
            .await
            .status()
            .as_u16(),
        200
    );

    assert_eq!(store_counts(&app).await, (2, 1), "nothing was stored");
    let woonstad_own: Value = app
        .get(
            &format!("/v1/signals?network={NOORD}&reference=E-W"),
            &woonstad,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(woonstad_own["status"], "active");
}

#[tokio::test]
async fn another_organisations_signal_cannot_be_found_by_guessing() {
    let app = spawn_app().await;
    let woonstad = app.partner("woonstad");
    let politie = app.partner("politie");
    let created: Value = app
        .post(
            "/v1/signals",
            &woonstad,
            &app.signal(NOORD, person("G-W-1", "Fatima", "El Amrani", "1979-11-23")),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    let absent = format!("sig_{}", random_hex(16));

    // Read, renew, withdraw (both reasons) and lookup by reference: the answers to the
    // other organisation are byte for byte those for an id that does not exist.
    let attempts: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/v1/signals/{}".into(), None),
        ("POST", "/v1/signals/{}/renew".into(), Some(json!({}))),
        (
            "POST",
            "/v1/signals/{}/renew".into(),
            Some(json!({"valid_days": 5})),
        ),
        (
            "POST",
            "/v1/signals/{}/withdraw".into(),
            Some(json!({"reason": "unjustified"})),
        ),
        (
            "POST",
            "/v1/signals/{}/withdraw".into(),
            Some(json!({"reason": "concern_over"})),
        ),
    ];
    for (method, template, body) in &attempts {
        let call = |target: &str| {
            let path = template.replace("{}", target);
            let app = &app;
            let politie = &politie;
            let body = body.clone();
            async move {
                match body {
                    None => app.get(&path, politie).await,
                    Some(b) => app.post(&path, politie, &b).await,
                }
            }
        };
        let theirs = answer(call(&id).await).await;
        let nobody = answer(call(&absent).await).await;
        assert_eq!(theirs.0, 404, "{method} {template}: {theirs:?}");
        assert_eq!(theirs, nobody, "{method} {template}");
    }
    let by_ref = answer(
        app.get(
            &format!("/v1/signals?network={NOORD}&reference=G-W-1"),
            &politie,
        )
        .await,
    )
    .await;
    let by_absent_ref = answer(
        app.get(
            &format!(
                "/v1/signals?network={NOORD}&reference=G-W-{}",
                random_hex(4)
            ),
            &politie,
        )
        .await,
    )
    .await;
    assert_eq!(by_ref.0, 404);
    assert_eq!(by_ref, by_absent_ref);

    // A batch of guessed ids, ids of other shapes and path tricks: all 404, no 5xx.
    let mut guesses: Vec<String> = (0..200)
        .map(|_| format!("sig_{}", random_hex(16)))
        .collect();
    // Near misses of the real id (one hex digit changed).
    for i in [4, 10, 20, 35] {
        let mut s = id.clone().into_bytes();
        s[i] = if s[i] == b'0' { b'1' } else { b'0' };
        guesses.push(String::from_utf8(s).unwrap());
    }
    guesses.extend(
        [
            id.to_uppercase(),
            id.trim_start_matches("sig_").to_string(),
            format!("{id}%00"),
            format!("{id}x"),
            "sig_".into(),
            "0".into(),
            "1".into(),
            "%2e%2e%2fmetrics".into(),
            "sig_%27%20OR%201%3D1".into(),
            "a".repeat(64),
            "a".repeat(5000),
        ]
        .into_iter(),
    );
    for g in &guesses {
        let (status, ct, body) = answer(app.get(&format!("/v1/signals/{g}"), &politie).await).await;
        assert_eq!(status, 404, "{g}: {body}");
        assert_eq!(ct, "application/problem+json", "{g}");
    }
    // The owner still sees its signal unchanged.
    let again: Value = app
        .get(&format!("/v1/signals/{id}"), &woonstad)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again, created);
    assert_eq!(store_counts(&app).await, (1, 0));
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Header names of an answer, apart from those that differ per request anyway.
fn header_shape(resp: &reqwest::Response) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = resp
        .headers()
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "date" | "location" | "content-length"))
        // Every answer has its own request id: only that it is there is compared.
        .map(|(k, v)| match k.as_str() {
            "x-request-id" => (k.to_string(), "req_…".to_string()),
            _ => (k.to_string(), v.to_str().unwrap_or("").to_string()),
        })
        .collect();
    h.sort();
    h
}

/// The shape of a signal answer: member names, and values that are not per-signal.
fn body_shape(v: &Value) -> Value {
    let mut v = v.clone();
    let o = v.as_object_mut().unwrap();
    for k in ["id", "reference", "submitted_at", "valid_until"] {
        assert!(o.contains_key(k), "{k}");
        o.insert(k.into(), json!("…"));
    }
    v
}

#[tokio::test]
async fn whether_a_person_is_known_is_not_told_by_the_answer_and_timing_is_measured() {
    let app = spawn_app().await;
    let woonstad = app.partner("woonstad");
    let politie = app.partner("politie");
    const N: usize = 200;
    // The housing corporation knows N people; the police will submit each of them (a
    // match forms) and N people nobody else knows, interleaved.
    // Family names of letters only: "Bekendaaa", "Bekendaab", ...
    let name = |prefix: &str, i: usize| {
        let letters: String = [i / 676, (i / 26) % 26, i % 26]
            .iter()
            .map(|&d| char::from(b'a' + d as u8))
            .collect();
        format!("{prefix}{letters}")
    };
    // Birth dates 37 days apart, so that no two of these people link.
    let born = |i: usize| {
        samenloop::pseudonym::Date::from_days_since_epoch(-7000 + 37 * i as i64).to_string()
    };
    let known = |i: usize| person(&format!("K-{i}"), "Johan", &name("Bekend", i), &born(i));
    let unknown = |i: usize| {
        person(
            &format!("U-{i}"),
            "Maria",
            &name("Onbekend", i),
            &born(N + i),
        )
    };
    for chunk in (0..N).collect::<Vec<_>>().chunks(100) {
        let signals: Vec<Value> = chunk.iter().map(|&i| app.signal(NOORD, known(i))).collect();
        let r: Value = app
            .post("/v1/signals/batch", &woonstad, &json!({"signals": signals}))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(r["accepted"], chunk.len());
    }
    // Warm up the connection and the code paths.
    for i in 0..10 {
        app.post(
            "/v1/signals",
            &politie,
            &app.signal(NOORD, person(&format!("W-{i}"), "Warm", "Up", "1980-01-01")),
        )
        .await;
    }

    let mut matched = Vec::with_capacity(N);
    let mut unmatched = Vec::with_capacity(N);
    let mut first_shapes = None;
    for i in 0..N {
        let order: [bool; 2] = if i % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for is_known in order {
            let body = if is_known {
                let mut s = known(i);
                s.reference = format!("PK-{i}");
                app.signal(NOORD, s)
            } else {
                app.signal(NOORD, unknown(i))
            };
            let started = Instant::now();
            let resp = app.post("/v1/signals", &politie, &body).await;
            let status = resp.status().as_u16();
            let headers = header_shape(&resp);
            let value: Value = resp.json().await.unwrap();
            let took = started.elapsed().as_secs_f64() * 1000.0;
            assert_eq!(status, 201, "{value}");
            let shape = (status, headers, body_shape(&value));
            match &first_shapes {
                None => first_shapes = Some(shape),
                Some(first) => assert_eq!(&shape, first, "matched {is_known}"),
            }
            if is_known {
                &mut matched
            } else {
                &mut unmatched
            }
            .push(took);
        }
    }
    let (signals, matches) = store_counts(&app).await;
    assert_eq!(signals as usize, 3 * N + 10);
    assert_eq!(matches as usize, N, "every known person formed a match");

    matched.sort_by(f64::total_cmp);
    unmatched.sort_by(f64::total_cmp);
    let (m50, m90) = (percentile(&matched, 0.5), percentile(&matched, 0.9));
    let (u50, u90) = (percentile(&unmatched, 0.5), percentile(&unmatched, 0.9));
    eprintln!(
        "no-oracle timing over {N} + {N} interleaved submissions (ms): \
         matched p50 {m50:.3} p90 {m90:.3}; unmatched p50 {u50:.3} p90 {u90:.3}; \
         difference p50 {:+.3} p90 {:+.3}",
        m50 - u50,
        m90 - u90
    );
}

#[tokio::test]
async fn oversized_and_deeply_nested_bodies_are_refused_and_the_server_stays_up() {
    let app = spawn_app_with(|c| c.limits.max_body_bytes = 64 * 1024).await;
    let token = app.partner("woonstad");
    let good = app.signal(NOORD, person("O-1", "Piet", "Jansen", "1950-12-12"));
    let raw = |path: &'static str, body: String| {
        let app = &app;
        let token = &token;
        async move {
            app.client
                .post(format!("{}{path}", app.base))
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };

    // Over the configured limit, with a Content-Length: 413 before the body is read.
    let mut big = good.clone();
    big["contact"]["name"] = json!("x".repeat(100 * 1024));
    let r = app.post("/v1/signals", &token, &big).await;
    expect_problem(r, 413, "payload-too-large").await;
    let r = app
        .post(
            "/v1/signals/batch",
            &token,
            &json!({"signals": vec![good.clone(); 400]}),
        )
        .await;
    expect_problem(r, 413, "payload-too-large").await;

    // Nested 10,000 deep, arrays and objects, at the top and inside free-form members.
    let deep_arrays = "[".repeat(10_000) + &"]".repeat(10_000);
    let deep_objects = "{\"a\":".repeat(10_000) + "1" + &"}".repeat(10_000);
    for (path, body) in [
        ("/v1/signals", deep_arrays.clone()),
        ("/v1/signals", deep_objects.clone()),
        (
            "/v1/signals",
            format!("{{\"network\":\"{NOORD}\",\"subject\":{deep_objects}}}"),
        ),
        (
            "/v1/signals/batch",
            format!("{{\"signals\":[{deep_arrays}]}}"),
        ),
        (
            "/v1/signals/batch",
            format!("{{\"signals\":[{deep_objects}]}}"),
        ),
        ("/v1/signals/batch", deep_objects.clone()),
        ("/v1/signals/x/withdraw", "[".repeat(3000)),
    ] {
        let (status, ct, text) = answer(raw(path, body).await).await;
        assert_eq!(ct, "application/problem+json", "{path}: {text}");
        let p: Value = serde_json::from_str(&text).unwrap();
        assert!(
            status == 400 && p["type"] == "urn:samenloop:problem:malformed-json"
                || status == 422 && p["type"] == "urn:samenloop:problem:invalid-body",
            "{path}: {status} {text}"
        );
    }

    // Huge strings (under the body limit) in every string member: refused with a short
    // problem that does not echo them.
    let huge = "Z".repeat(60 * 1024);
    let mut cases = Vec::new();
    let mut v = good.clone();
    v["network"] = json!(huge);
    cases.push((v, 404, "not-found"));
    let mut v = good.clone();
    v["category"] = json!(huge);
    cases.push((v, 422, "unknown-category"));
    let mut v = good.clone();
    v["contact"]["name"] = json!(huge);
    cases.push((v, 422, "invalid-field"));
    let mut v = good.clone();
    v["contact"]["email"] = json!(format!("a@{huge}.nl"));
    cases.push((v, 422, "invalid-field"));
    let mut v = good.clone();
    v["subject"]["reference"] = json!(huge);
    cases.push((v, 422, "invalid-key-set"));
    let mut v = good.clone();
    v["subject"]["key_id"] = json!(huge);
    cases.push((v, 422, "invalid-key-set"));
    let mut v = good.clone();
    v["subject"]["person"][0] = json!(format!("nd:{huge}"));
    cases.push((v, 422, "invalid-key-set"));
    // Many keys instead of long ones.
    let mut v = good.clone();
    let key = v["subject"]["person"][0].clone();
    v["subject"]["person"] = json!(vec![key; 200]);
    cases.push((v, 422, "invalid-key-set"));
    for (body, status, code) in cases {
        let r = app.post("/v1/signals", &token, &body).await;
        let p = expect_problem(r, status, code).await;
        assert!(p.to_string().len() < 1000, "{p}");
        assert!(!p.to_string().contains("ZZZZ"));
    }

    // One more than limits.max_batch.
    let app_small = spawn_app_with(|c| c.limits.max_batch = 5).await;
    let r = app_small
        .post(
            "/v1/signals/batch",
            &app_small.partner("woonstad"),
            &json!({"signals": vec![good.clone(); 6]}),
        )
        .await;
    expect_problem(r, 422, "batch-too-large").await;
    assert_eq!(store_counts(&app_small).await, (0, 0));

    // Still alive, nothing stored, and a good body is accepted.
    assert_eq!(store_counts(&app).await, (0, 0));
    assert_eq!(
        app.post("/v1/signals", &token, &good)
            .await
            .status()
            .as_u16(),
        201
    );
    assert_eq!(store_counts(&app).await, (1, 0));
}

// ---------------------------------------------------------------------------------------
// Raw connections: slow clients, old TLS, plaintext.

fn tls_client_config(alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let pem = dev_file("tls-cert.dev.pem");
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(cfg)
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn port(app: &TestApp) -> u16 {
    app.base.rsplit(':').next().unwrap().parse().unwrap()
}

/// A TLS connection (HTTP/1.1 by ALPN) with the handshake done.
fn tls_connect(app: &TestApp) -> Tls {
    let tcp = TcpStream::connect(("127.0.0.1", port(app))).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    let conn = rustls::ClientConnection::new(
        tls_client_config(&[b"http/1.1"]),
        "localhost".try_into().unwrap(),
    )
    .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).unwrap();
    }
    tls
}

/// Reads until the server closes the connection (or it errors); returns what was read
/// and how long the close took from `since`. Panics if it stays open for `max`.
fn read_until_closed(s: &mut impl Read, since: Instant, max: Duration) -> (String, Duration) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
        assert!(since.elapsed() < max, "the connection is still open");
    }
    let took = since.elapsed();
    assert!(
        took < max,
        "the connection stayed open for {took:?}; read: {}",
        String::from_utf8_lossy(&out)
    );
    (String::from_utf8_lossy(&out).into_owned(), took)
}

fn slow_app_tweak(c: &mut samenloop::config::Config) {
    c.limits.client_request_timeout_secs = 1;
    c.limits.client_body_timeout_secs = 1;
    // Two seconds above the body timeout: a refused body is logged (a flush, slow on a
    // busy shared disk) before its 408 goes out, and the idle guard must not close the
    // connection first.
    c.limits.client_idle_timeout_secs = 3;
    c.limits.keep_alive_secs = 4;
}

#[tokio::test]
async fn slow_clients_are_cut_off() {
    let app = spawn_app_with(slow_app_tweak).await;
    let token = app.partner("woonstad");
    let limit = Duration::from_secs(8);

    // 1. A request head sent one byte every 300 ms never completes: cut off after
    //    client_request_timeout_secs (408).
    let mut s = tls_connect(&app);
    s.sock
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let started = Instant::now();
    let head = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut closed = false;
    let mut got = Vec::new();
    for b in head {
        if s.write_all(&[*b]).and_then(|_| s.flush()).is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 1024];
        match s.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
        if started.elapsed() > limit {
            break;
        }
    }
    let got = String::from_utf8_lossy(&got);
    assert!(
        closed,
        "slow head: still open after {:?}",
        started.elapsed()
    );
    assert!(
        got.is_empty() || got.starts_with("HTTP/1.1 408"),
        "slow head: {got}"
    );
    eprintln!("slow head closed after {:?}", started.elapsed());

    // 2. A complete head, then a body that never comes: 408 problem after
    //    client_body_timeout_secs, and the connection is closed.
    let mut s = tls_connect(&app);
    let started = Instant::now();
    write!(
        s,
        "POST /v1/signals HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"network\":"
    )
    .unwrap();
    s.flush().unwrap();
    let (text, took) = read_until_closed(&mut s, started, limit);
    assert!(text.starts_with("HTTP/1.1 408"), "unfinished body: {text}");
    assert!(
        text.contains("urn:samenloop:problem:request-timeout"),
        "{text}"
    );
    eprintln!("unfinished body answered and closed after {took:?}");

    // 3. The same with a chunked body that stops.
    let mut s = tls_connect(&app);
    let started = Instant::now();
    write!(
        s,
        "POST /v1/signals/batch HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{{\"si\r\n"
    )
    .unwrap();
    s.flush().unwrap();
    let (text, _) = read_until_closed(&mut s, started, limit);
    assert!(
        text.starts_with("HTTP/1.1 408"),
        "unfinished chunked body: {text}"
    );

    // 3b. A body the route does not read (a GET with a body, an unknown route), stalled:
    //     answered, then closed rather than left waiting for the rest.
    for (method, path) in [
        ("GET", "/healthz"),
        ("POST", "/v1/nothing"),
        ("GET", "/v1/signals/x"),
    ] {
        let mut s = tls_connect(&app);
        let started = Instant::now();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"a\":"
        )
        .unwrap();
        s.flush().unwrap();
        let (text, took) = read_until_closed(&mut s, started, limit);
        assert!(text.starts_with("HTTP/1.1 "), "{method} {path}: {text}");
        eprintln!("{method} {path} with a stalled body: closed after {took:?}");
    }

    // 4. After one good request on a keep-alive connection, a second head that starts
    //    and never finishes.
    let mut s = tls_connect(&app);
    write!(s, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    s.flush().unwrap();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let started = Instant::now();
    s.write_all(b"GET /hea").unwrap();
    s.flush().unwrap();
    let (_, took) = read_until_closed(&mut s, started, limit);
    eprintln!("second, unfinished head closed after {took:?}");

    // 5. A TLS connection that never sends a request, and a TCP connection that never
    //    starts TLS.
    let mut s = tls_connect(&app);
    let started = Instant::now();
    let (text, _) = read_until_closed(&mut s, started, limit);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
    let mut tcp = TcpStream::connect(("127.0.0.1", port(&app))).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let started = Instant::now();
    let (text, took) = read_until_closed(&mut tcp, started, limit);
    assert!(text.is_empty());
    eprintln!("TCP connection without a TLS handshake closed after {took:?}");

    // The server still serves.
    let r = app
        .client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test]
async fn many_idle_connections_do_not_stop_a_normal_client() {
    let app = spawn_app().await;
    let token = app.partner("woonstad");
    let submit = |i: usize| {
        let app = &app;
        let token = &token;
        async move {
            let r = app
                .post(
                    "/v1/signals",
                    token,
                    &app.signal(
                        NOORD,
                        person(&format!("I-{i}"), "Anna", "Smit", "1991-09-09"),
                    ),
                )
                .await;
            r.status().as_u16()
        }
    };
    // Idle TCP connections that never start TLS, and TLS connections that never send a
    // request, all held open while a normal client works.
    let mut idle_tcp = Vec::new();
    for _ in 0..200 {
        idle_tcp.push(TcpStream::connect(("127.0.0.1", port(&app))).unwrap());
    }
    let mut idle_tls = Vec::new();
    for _ in 0..50 {
        idle_tls.push(tls_connect(&app));
    }
    let started = Instant::now();
    for i in 0..5 {
        assert!(matches!(submit(i).await, 200 | 201));
    }
    let took = started.elapsed();
    eprintln!("5 submissions beside 200 idle TCP and 50 idle TLS connections: {took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");

    // More idle TCP connections than the TLS acceptors take at once (256 handshakes per
    // worker): a new client waits until the handshake timeout frees places, then is served.
    for _ in 0..600 {
        idle_tcp.push(TcpStream::connect(("127.0.0.1", port(&app))).unwrap());
    }
    let fresh = client();
    let started = Instant::now();
    let r = fresh
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(r.status().as_u16(), 200);
    eprintln!("a new client beside 800 idle TCP connections: served after {took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    drop(idle_tcp);
    drop(idle_tls);
}

/// A TLS 1.1 (or 1.0) ClientHello, written by hand: rustls cannot make one.
fn old_client_hello(version: [u8; 2]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&version); // client_version
    body.extend_from_slice(&[7u8; 32]); // random
    body.push(0); // session id
    // Cipher suites of the TLS 1.0/1.1 era.
    let suites: [u16; 6] = [0xc013, 0xc014, 0xc009, 0xc00a, 0x002f, 0x0035];
    body.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    for s in suites {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]); // compression: null
    // Extensions: server_name localhost, supported groups, ec point formats.
    let mut ext = Vec::new();
    let name = b"localhost";
    let mut sni = Vec::new();
    sni.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
    sni.push(0);
    sni.extend_from_slice(&(name.len() as u16).to_be_bytes());
    sni.extend_from_slice(name);
    ext.extend_from_slice(&0u16.to_be_bytes());
    ext.extend_from_slice(&(sni.len() as u16).to_be_bytes());
    ext.extend_from_slice(&sni);
    ext.extend_from_slice(&[0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x17]);
    ext.extend_from_slice(&[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);

    let mut hs = vec![1u8]; // client_hello
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x01]; // handshake record, version TLS 1.0
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

#[tokio::test]
async fn old_tls_versions_and_plaintext_are_refused() {
    let app = spawn_app().await;
    for (name, version) in [
        ("TLS 1.0", [3u8, 1u8]),
        ("TLS 1.1", [3, 2]),
        ("SSL 3", [3, 0]),
    ] {
        let mut tcp = TcpStream::connect(("127.0.0.1", port(&app))).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        tcp.write_all(&old_client_hello(version)).unwrap();
        let mut got = Vec::new();
        let _ = tcp.read_to_end(&mut got);
        // An alert record (21), never a handshake record (22) carrying a ServerHello.
        assert!(!got.is_empty(), "{name}: closed without an alert");
        assert_eq!(got[0], 21, "{name}: {got:02x?}");
        assert!(
            !got.windows(2).any(|w| w == [0x16, 0x03]),
            "{name}: a handshake record in {got:02x?}"
        );
        // protocol_version (70) or handshake_failure (40).
        assert!(matches!(got[6], 70 | 40), "{name}: alert {}", got[6]);
        eprintln!("{name} ClientHello: alert {}", got[6]);
    }
    // A hand-made TLS 1.2 hello does get a ServerHello: the test can tell.
    let mut tcp = TcpStream::connect(("127.0.0.1", port(&app))).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(&tls12_client_hello()).unwrap();
    let mut buf = [0u8; 5];
    tcp.read_exact(&mut buf).unwrap();
    assert_eq!(
        buf[0], 22,
        "TLS 1.2 hello answered with a handshake: {buf:02x?}"
    );

    // Plaintext HTTP on the TLS port: no HTTP answer.
    let mut tcp = TcpStream::connect(("127.0.0.1", port(&app))).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let _ = tcp.read_to_end(&mut got);
    assert!(
        !got.starts_with(b"HTTP"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert!(got.is_empty() || got[0] == 21, "{got:02x?}");
    // And the server is fine.
    assert_eq!(
        app.client
            .get(format!("{}/healthz", app.base))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
}

/// A hand-made TLS 1.2 ClientHello with suites and extensions the server accepts.
fn tls12_client_hello() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&[3, 3]);
    body.extend_from_slice(&[9u8; 32]);
    body.push(0);
    let suites: [u16; 4] = [0xc02b, 0xc02f, 0xc02c, 0xc030];
    body.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    for s in suites {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]);
    let mut ext = Vec::new();
    // supported_groups: x25519, secp256r1
    ext.extend_from_slice(&[0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17]);
    ext.extend_from_slice(&[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]);
    // signature_algorithms: ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha256, ed25519
    ext.extend_from_slice(&[
        0x00, 0x0d, 0x00, 0x0a, 0x00, 0x08, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01, 0x08, 0x07,
    ]);
    // extended_master_secret, renegotiation_info
    ext.extend_from_slice(&[0x00, 0x17, 0x00, 0x00]);
    ext.extend_from_slice(&[0xff, 0x01, 0x00, 0x01, 0x00]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![1u8];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x01];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}
