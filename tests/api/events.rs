//! The event list of a network: live as server-sent events (resumable with
//! `Last-Event-ID`), and as JSON pages.

use crate::helpers::*;
use serde_json::{Value, json};
use std::time::Duration;

const NOORD: &str = "zorgnetwerk-noord";
const JEUGD: &str = "jeugd-0-12";

/// A client for streams: HTTP/1.1, and no idle connection kept after a stream ends.
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

struct Sse {
    resp: reqwest::Response,
    buf: String,
}

/// One frame of the stream: a comment, or an event.
#[derive(Debug)]
enum Frame {
    Comment(String),
    Event { id: u64, event: String, data: Value },
}

impl Sse {
    async fn open(app: &TestApp, network: &str, last: Option<u64>) -> Sse {
        Sse::open_with(app, network, last, &app.coordinator(network)).await
    }

    async fn open_with(app: &TestApp, network: &str, last: Option<u64>, token: &str) -> Sse {
        let mut req = stream_client()
            .get(format!("{}/v1/networks/{network}/events", app.base))
            .bearer_auth(token)
            .header("accept", "text/event-stream");
        if let Some(id) = last {
            req = req.header("last-event-id", id.to_string());
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(
            resp.headers().get("content-type").unwrap(),
            "text/event-stream"
        );
        Sse {
            resp,
            buf: String::new(),
        }
    }

    /// The next frame; `None` when the stream ended.
    async fn frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let text: String = self.buf.drain(..end + 2).collect();
                let text = text.trim_end();
                if let Some(c) = text.strip_prefix(':') {
                    return Some(Frame::Comment(c.trim().to_string()));
                }
                let (mut id, mut event, mut data) = (None, None, None);
                for line in text.lines() {
                    let (k, v) = line.split_once(": ").unwrap();
                    match k {
                        "id" => id = Some(v.parse().unwrap()),
                        "event" => event = Some(v.to_string()),
                        "data" => data = Some(serde_json::from_str(v).unwrap()),
                        other => panic!("unexpected field {other}"),
                    }
                }
                return Some(Frame::Event {
                    id: id.unwrap(),
                    event: event.unwrap(),
                    data: data.unwrap(),
                });
            }
            let chunk = tokio::time::timeout(Duration::from_secs(20), self.resp.chunk())
                .await
                .expect("the stream says something within 20 s");
            match chunk {
                Ok(Some(b)) => self.buf.push_str(std::str::from_utf8(&b).unwrap()),
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// The next event (comments skipped).
    async fn event(&mut self) -> (u64, String, Value) {
        loop {
            match self.frame().await.expect("the stream is open") {
                Frame::Comment(_) => continue,
                Frame::Event { id, event, data } => return (id, event, data),
            }
        }
    }
}

async fn submit(app: &TestApp, org: &str, network: &str, reference: &str, who: (&str, &str, &str)) {
    let resp = app
        .post(
            "/v1/signals",
            &app.partner(org),
            &app.signal(network, person(reference, who.0, who.1, who.2)),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 201);
}

async fn step(app: &TestApp, handle: &str, body: Value) {
    let resp = app
        .post(
            &format!("/v1/matches/{handle}/follow-up"),
            &app.coordinator(NOORD),
            &body,
        )
        .await;
    assert_eq!(resp.status().as_u16(), 200);
}

async fn page(app: &TestApp, network: &str, query: &str) -> Value {
    let resp = app
        .get(
            &format!("/v1/networks/{network}/events{query}"),
            &app.coordinator(network),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    resp.json().await.unwrap()
}

const MARIEKE: (&str, &str, &str) = ("Marieke", "de Vries", "1985-03-07");
const SEM: (&str, &str, &str) = ("Sem", "Bakker", "2016-05-01");

#[tokio::test]
async fn a_dashboard_sees_matches_live_and_resumes_with_last_event_id() {
    let app = spawn_app().await;
    // An older event: a new stream without a position starts after it.
    submit(
        &app,
        "woonstad",
        NOORD,
        "W-0",
        ("Pieter", "Zwart", "1970-01-01"),
    )
    .await;
    submit(
        &app,
        "ggz-noord",
        NOORD,
        "G-0",
        ("Pieter", "Zwart", "1970-01-01"),
    )
    .await;
    let old = page(&app, NOORD, "").await;
    assert_eq!(old["events"].as_array().unwrap().len(), 1);

    let mut sse = Sse::open(&app, NOORD, None).await;
    // The other network's match comes first; this stream never shows it.
    submit(&app, "politie", JEUGD, "P-J", SEM).await;
    submit(&app, "school-de-linde", JEUGD, "S-J", SEM).await;
    submit(&app, "woonstad", NOORD, "W-1", MARIEKE).await;
    submit(&app, "politie", NOORD, "P-1", MARIEKE).await;
    let (id, event, data) = sse.event().await;
    assert_eq!(event, "match.formed");
    assert_eq!(data["sequence"], id);
    assert_eq!(data["network"], NOORD);
    assert_eq!(
        data["match"]["networks"][0]["signals"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let handle = data["match"]["handle"].as_str().unwrap().to_string();
    let jeugd = page(&app, JEUGD, "").await;
    let jeugd_seq = jeugd["events"][0]["sequence"].as_u64().unwrap();
    assert!(
        jeugd_seq < id,
        "the other network's event came first and was not sent"
    );
    let text = data.to_string();
    assert!(!text.contains("W-1") && !text.contains("P-1") && !text.contains("sig_"));

    step(&app, &handle, json!({"action": "acknowledge"})).await;
    let (seen, event, data) = sse.event().await;
    assert_eq!(event, "match.followed_up");
    assert_eq!(
        data["match"]["networks"][0]["follow_up"]["stage"],
        "acknowledged"
    );
    drop(sse);

    // Missed while away: two steps.
    step(
        &app,
        &handle,
        json!({"action": "choose_lead", "organisation": "politie"}),
    )
    .await;
    step(&app, &handle, json!({"action": "ask_consent"})).await;
    let missed = page(&app, NOORD, &format!("?after={seen}")).await;
    let missed_ids: Vec<u64> = missed["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(missed_ids.len(), 2);
    assert_eq!(missed["next_after"], missed_ids[1]);

    let mut sse = Sse::open(&app, NOORD, Some(seen)).await;
    let mut resumed = Vec::new();
    for _ in 0..2 {
        let (id, event, data) = sse.event().await;
        assert_eq!(event, "match.followed_up");
        assert_eq!(data["network"], NOORD);
        resumed.push(id);
    }
    assert_eq!(resumed, missed_ids, "exactly the missed events");
    // Then live again, nothing repeated or skipped.
    step(&app, &handle, json!({"action": "consent_given"})).await;
    let (id, _, data) = sse.event().await;
    assert!(id > missed_ids[1]);
    assert_eq!(
        data["match"]["networks"][0]["follow_up"]["stage"],
        "consent_given"
    );
    assert_eq!(
        page(&app, NOORD, &format!("?after={}", missed_ids[1])).await["events"][0]["sequence"],
        id
    );

    // ?after= is the same position as Last-Event-ID.
    let resp = stream_client()
        .get(format!(
            "{}/v1/networks/{NOORD}/events?after={seen}",
            app.base
        ))
        .bearer_auth(app.coordinator(NOORD))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let mut sse = Sse {
        resp,
        buf: String::new(),
    };
    assert_eq!(sse.event().await.0, missed_ids[0]);
}

#[tokio::test]
async fn only_the_networks_coordinator_reads_its_events() {
    let app = spawn_app().await;
    let path = format!("/v1/networks/{NOORD}/events");
    expect_problem(
        app.get(&path, &app.partner("woonstad")).await,
        403,
        "forbidden-role",
    )
    .await;
    expect_problem(
        app.get(&path, &app.coordinator(JEUGD)).await,
        404,
        "not-found",
    )
    .await;
    expect_problem(
        app.get("/v1/networks/nowhere/events", &app.coordinator("nowhere"))
            .await,
        404,
        "not-found",
    )
    .await;
    let stream = |token: String| {
        stream_client()
            .get(format!("{}{path}", app.base))
            .bearer_auth(token)
            .header("accept", "text/event-stream")
    };
    expect_problem(
        stream(app.partner("politie")).send().await.unwrap(),
        403,
        "forbidden-role",
    )
    .await;
    expect_problem(
        stream(app.coordinator(JEUGD)).send().await.unwrap(),
        404,
        "not-found",
    )
    .await;
    expect_problem(
        stream(app.coordinator(NOORD))
            .header("last-event-id", "x1")
            .send()
            .await
            .unwrap(),
        400,
        "invalid-query",
    )
    .await;
    for q in ["?limit=0", "?limit=501", "?after=-1", "?from=1"] {
        expect_problem(
            app.get(&format!("{path}{q}"), &app.coordinator(NOORD))
                .await,
            400,
            "invalid-query",
        )
        .await;
    }
    let empty = page(&app, NOORD, "?after=7").await;
    assert_eq!(empty, json!({"events": [], "next_after": 7}));
}

#[tokio::test]
async fn streams_keep_alive_and_end_when_the_server_stops() {
    let mut app = spawn_app_with(|cfg| cfg.alerts.stream_keepalive_secs = 1).await;
    let mut sse = Sse::open(&app, NOORD, None).await;
    match sse.frame().await {
        Some(Frame::Comment(c)) => assert_eq!(c, "keep-alive"),
        other => panic!("expected a keep-alive comment, got {other:?}"),
    }
    // A stop does not wait for the open stream: the stream ends and the server restarts
    // well within the 30 s graceful-stop timeout.
    tokio::time::timeout(Duration::from_secs(20), app.restart())
        .await
        .expect("the restart does not wait for the open stream");
    loop {
        match sse.frame().await {
            None => break,
            Some(Frame::Comment(_)) => continue,
            Some(e) => panic!("unexpected {e:?}"),
        }
    }
    // The restarted server streams again.
    let mut sse = Sse::open(&app, NOORD, Some(0)).await;
    submit(&app, "woonstad", NOORD, "W-1", MARIEKE).await;
    submit(&app, "politie", NOORD, "P-1", MARIEKE).await;
    assert_eq!(sse.event().await.1, "match.formed");
}

#[tokio::test]
async fn a_stream_ends_when_the_token_expires() {
    let app = spawn_app_with(|cfg| cfg.alerts.stream_keepalive_secs = 1).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let short = app.token_with(samenloop::http::auth::Claims {
        sub: "regie".into(),
        iss: app.cfg.auth.issuer.clone(),
        aud: app.cfg.auth.audience.clone(),
        exp: now + 3,
        nbf: now - 5,
        iat: now,
        org: "gemeente".into(),
        role: samenloop::http::auth::Role::Coordinator,
        networks: vec![NOORD.into()],
        obo: None,
        purpose: None,
    });
    let mut sse = Sse::open_with(&app, NOORD, None, &short).await;
    let mut comments = 0;
    tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match sse.frame().await {
                None => break,
                Some(Frame::Comment(_)) => comments += 1,
                Some(e) => panic!("unexpected {e:?}"),
            }
        }
    })
    .await
    .expect("the stream ends when the token expires");
    assert!(
        comments >= 1,
        "the stream was open before the token expired"
    );
    // A fresh token resumes where the old one ended.
    submit(&app, "woonstad", NOORD, "W-1", MARIEKE).await;
    submit(&app, "politie", NOORD, "P-1", MARIEKE).await;
    let mut sse = Sse::open(&app, NOORD, Some(0)).await;
    assert_eq!(sse.event().await.1, "match.formed");
}

/// Measures how long after the 2xx of the signal that completes a match its
/// `match.formed` event reaches a dashboard's stream. Prints figures, asserts none:
/// `cargo test --test api -- --ignored stream_latency --nocapture`.
#[tokio::test]
#[ignore]
async fn stream_latency() {
    let app = spawn_app().await;
    let mut sse = Sse::open(&app, NOORD, None).await;
    let (w, p) = (app.partner("woonstad"), app.partner("politie"));
    let mut ms = Vec::new();
    for i in 0..200 {
        let born = format!(
            "19{}-{:02}-{:02}",
            50 + i / 100,
            1 + (i / 28) % 12,
            1 + i % 28
        );
        let who = person(&format!("L-{i}"), "Anna", "Latour", &born);
        let mut other = who.clone();
        other.reference = format!("M-{i}");
        let a = app.post("/v1/signals", &w, &app.signal(NOORD, who)).await;
        assert_eq!(a.status().as_u16(), 201);
        let b = app.post("/v1/signals", &p, &app.signal(NOORD, other)).await;
        assert_eq!(b.status().as_u16(), 201);
        let t = std::time::Instant::now();
        let (_, event, _) = sse.event().await;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(event, "match.formed");
    }
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let q = |f: f64| ms[((ms.len() as f64 * f) as usize).min(ms.len() - 1)];
    eprintln!(
        "2xx -> event on the stream, {} matches: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms.len(),
        q(0.5),
        q(0.9),
        q(0.99),
        ms[ms.len() - 1]
    );
}
