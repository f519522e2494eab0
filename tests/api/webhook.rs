//! Webhook delivery against a real HTTPS receiver on loopback: signature, retries,
//! timeouts, redirects, untrusted certificates, dead letters and their requeue, restarts,
//! and isolation between networks.

use crate::helpers::*;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use samenloop::alerts::receiver::tls_from_files;
use samenloop::alerts::signature::WebhookSecret;
use samenloop::config::{WebhookConfig, development_config_path};
use serde_json::Value;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const NOORD: &str = "zorgnetwerk-noord";
const JEUGD: &str = "jeugd-0-12";

/// How the test receiver answers one request.
#[derive(Clone, Copy, Debug)]
enum Answer {
    Ok,
    Status(u16),
    Hang(u64),
    Redirect,
}

#[derive(Clone, Debug)]
struct Hit {
    path: String,
    signature: String,
    event_id: String,
    event_type: String,
    content_type: String,
    body: Vec<u8>,
}

#[derive(Default)]
struct Script {
    next: VecDeque<Answer>,
    default: Option<Answer>,
    hits: Vec<Hit>,
    /// Requests answered (a hanging one counts when it ends).
    done: usize,
}

/// An HTTPS receiver with the development certificate that answers as scripted.
struct Receiver {
    port: u16,
    script: Arc<Mutex<Script>>,
    handle: actix_web::dev::ServerHandle,
}

fn dev_path(name: &str) -> PathBuf {
    std::path::absolute(development_config_path().parent().unwrap().join(name)).unwrap()
}

async fn handle(
    script: web::Data<Mutex<Script>>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let header = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let answer = {
        let mut s = script.lock().unwrap();
        s.hits.push(Hit {
            path: req.path().to_string(),
            signature: header("Samenloop-Signature"),
            event_id: header("Samenloop-Event-Id"),
            event_type: header("Samenloop-Event-Type"),
            content_type: header("Content-Type"),
            body: body.to_vec(),
        });
        s.next.pop_front().or(s.default).unwrap_or(Answer::Ok)
    };
    let resp = match answer {
        Answer::Ok => HttpResponse::Ok().body("thanks"),
        Answer::Status(s) => HttpResponse::build(actix_web::http::StatusCode::from_u16(s).unwrap())
            .body("receiver body that must not be stored"),
        Answer::Hang(secs) => {
            actix_web::rt::time::sleep(Duration::from_secs(secs)).await;
            HttpResponse::Ok().finish()
        }
        Answer::Redirect => HttpResponse::Found()
            .insert_header(("Location", "/followed"))
            .finish(),
    };
    script.lock().unwrap().done += 1;
    resp
}

impl Receiver {
    fn start(default: Answer) -> Receiver {
        Self::start_on(0, default)
    }

    fn start_on(port: u16, default: Answer) -> Receiver {
        let script = Arc::new(Mutex::new(Script {
            default: Some(default),
            ..Default::default()
        }));
        let data = web::Data::from(script.clone());
        let tls =
            tls_from_files(&dev_path("tls-cert.dev.pem"), &dev_path("tls-key.dev.pem")).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
                let port = listener.local_addr().unwrap().port();
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(data.clone())
                        .default_service(web::to(handle))
                })
                .workers(2)
                .shutdown_timeout(0)
                .listen_rustls_0_23(listener, tls)
                .unwrap()
                .run();
                tx.send((port, server.handle())).unwrap();
                let _ = server.await;
            })
        });
        let (port, handle) = rx.recv().unwrap();
        Receiver {
            port,
            script,
            handle,
        }
    }

    fn url(&self) -> String {
        format!("https://localhost:{}/hook", self.port)
    }

    fn hits(&self) -> Vec<Hit> {
        self.script.lock().unwrap().hits.clone()
    }

    fn done(&self) -> usize {
        self.script.lock().unwrap().done
    }

    fn set(&self, default: Answer) {
        self.script.lock().unwrap().default = Some(default);
    }

    fn then(&self, answers: &[Answer]) {
        self.script
            .lock()
            .unwrap()
            .next
            .extend(answers.iter().copied());
    }

    async fn stop(&self) {
        self.handle.stop(false).await;
    }

    /// Waits until `n` requests have arrived (at most 30 s).
    async fn wait_hits(&self, n: usize) -> Vec<Hit> {
        for _ in 0..1200 {
            let h = self.hits();
            if h.len() >= n {
                return h;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{} requests arrived, expected {n}", self.hits().len());
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

fn webhook(url: String, trusted: bool) -> WebhookConfig {
    WebhookConfig {
        url,
        secret_file: dev_path("webhook-secret.dev.toml"),
        ca_file: trusted.then(|| dev_path("tls-cert.dev.pem")),
        timeout_secs: 2,
        dead_letter_after_secs: 3600,
        max_backoff_secs: 1,
    }
}

fn set_webhook(cfg: &mut samenloop::config::Config, network: &str, w: WebhookConfig) {
    cfg.networks
        .iter_mut()
        .find(|n| n.id == network)
        .unwrap()
        .webhook = Some(w);
}

/// Two organisations signal one person in `network`: a match forms.
async fn form_match(app: &TestApp, network: &str, n: usize) {
    let (a, b) = if network == NOORD {
        ("woonstad", "ggz-noord")
    } else {
        ("politie", "school-de-linde")
    };
    for (i, org) in [a, b].into_iter().enumerate() {
        let body = app.signal(
            network,
            person(
                &format!("WH-{n}-{i}"),
                "Sanne",
                &format!(
                    "Webhook{}",
                    "abcdefghijklmnopqrstuvwxyz".chars().nth(n % 26).unwrap()
                ),
                &format!("19{:02}-0{}-1{}", 50 + n / 26, 1 + n % 9, n % 10),
            ),
        );
        let r = app.post("/v1/signals", &app.partner(org), &body).await;
        assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
    }
}

async fn deliveries(app: &TestApp, network: &str, state: &str) -> Vec<Value> {
    let r = app
        .get(
            &format!("/v1/networks/{network}/deliveries?state={state}"),
            &app.coordinator(network),
        )
        .await;
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.unwrap();
    v["deliveries"].as_array().unwrap().clone()
}

/// Waits (at most 30 s) until `f` holds of the network's deliveries in `state`.
async fn wait_deliveries(
    app: &TestApp,
    network: &str,
    state: &str,
    f: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    for _ in 0..600 {
        let d = deliveries(app, network, state).await;
        if f(&d) {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{state} deliveries of {network} never got there: {:?}",
        deliveries(app, network, state).await
    );
}

/// The value of a metric line (0 if absent).
fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn an_alert_arrives_signed_with_a_stable_event_id() {
    let rx = Receiver::start(Answer::Ok);
    let url = rx.url();
    let app = spawn_app_with(|c| set_webhook(c, NOORD, webhook(url, true))).await;
    form_match(&app, NOORD, 1).await;
    let hits = rx.wait_hits(1).await;
    let h = &hits[0];
    assert_eq!(h.path, "/hook");
    assert_eq!(h.content_type, "application/json");
    assert_eq!(h.event_type, "match.formed");
    let secret = WebhookSecret::read(&dev_path("webhook-secret.dev.toml")).unwrap();
    secret
        .verify(&h.signature, &h.body, now())
        .expect("the signature verifies with the network's secret");
    let other = WebhookSecret::from_bytes([1; 32]);
    assert!(other.verify(&h.signature, &h.body, now()).is_err());
    let body: Value = serde_json::from_slice(&h.body).unwrap();
    assert_eq!(body["event_id"], h.event_id.as_str());
    assert_eq!(body["type"], "match.formed");
    assert_eq!(body["network"], NOORD);
    let text = String::from_utf8(h.body.clone()).unwrap();
    for forbidden in ["prs:", "adr:", "Sanne", "Webhook", "WH-1"] {
        assert!(!text.contains(forbidden), "the webhook carries {forbidden}");
    }
    // The alert is the same one the coordinator's event list holds.
    let m = app
        .get(
            &format!("/v1/networks/{NOORD}/matches"),
            &app.coordinator(NOORD),
        )
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(body["match"]["handle"], m["matches"][0]["handle"]);
    // Delivered: nothing pending, counted, timed.
    wait_deliveries(&app, NOORD, "pending", |d| d.is_empty()).await;
    let metrics = app.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            &format!(
                "samenloop_webhook_deliveries_total{{network=\"{NOORD}\",outcome=\"delivered\"}}"
            )
        ),
        1
    );
    assert_eq!(
        metric(
            &metrics,
            &format!("samenloop_webhook_pending{{network=\"{NOORD}\"}}")
        ),
        0
    );
    assert_eq!(
        metric(
            &metrics,
            &format!("samenloop_webhook_delivery_seconds_count{{network=\"{NOORD}\"}}")
        ),
        1
    );
    // The network without a webhook gets none; its coordinator sees an empty list.
    assert!(deliveries(&app, JEUGD, "pending").await.is_empty());
    assert_eq!(rx.hits().len(), 1, "delivered once");
    // The delivery is in the access log: the index showed the match to the receiver.
    let fg = app.privacy_officer("fg-noord", &[NOORD]);
    let delivered = app.audit_entries(&fg, "action=deliver").await;
    assert_eq!(delivered.len(), 1, "{delivered:#?}");
    let e = &delivered[0];
    assert_eq!(
        (&e["actor"], &e["outcome"], &e["status"], &e["operation"]),
        (
            &Value::from("samenloop"),
            &Value::from("success"),
            &Value::from(200),
            &Value::from("webhook POST")
        )
    );
    assert_eq!(e["network"], NOORD);
    assert_eq!(e["object_type"], "match");
    assert_eq!(e["object_id"], body["match"]["handle"]);
    // The event id, then the two signals the alert showed.
    let related = e["related"].as_array().unwrap();
    assert_eq!(related[0], Value::from(h.event_id.as_str()), "{e}");
    assert_eq!(related.len(), 3, "{e}");
    assert!(
        related[1..]
            .iter()
            .all(|id| id.as_str().unwrap().starts_with("sig_")),
        "{e}"
    );
    assert_eq!(e["request_id"], h.event_id.as_str());
    assert_eq!(e["client"], format!("localhost:{}", rx.port));
}

#[tokio::test]
async fn a_failing_receiver_is_retried_until_it_answers_2xx() {
    let rx = Receiver::start(Answer::Status(500));
    let url = rx.url();
    let app = spawn_app_with(|c| set_webhook(c, NOORD, webhook(url, true))).await;
    form_match(&app, NOORD, 2).await;
    rx.wait_hits(2).await;
    let pending = wait_deliveries(&app, NOORD, "pending", |d| {
        d.len() == 1 && d[0]["attempts"].as_u64() >= Some(2)
    })
    .await;
    let p = &pending[0];
    assert_eq!(p["last_outcome"], "500");
    assert_eq!(p["state"], "pending");
    assert_eq!(p["type"], "match.formed");
    assert!(p["first_attempt_at"].is_string() && p["next_attempt_at"].is_string());
    let text = serde_json::to_string(&pending).unwrap();
    assert!(
        !text.contains("must not be stored"),
        "the receiver's body is not kept"
    );
    rx.set(Answer::Ok);
    wait_deliveries(&app, NOORD, "pending", |d| d.is_empty()).await;
    let hits = rx.hits();
    assert!(hits.len() >= 3);
    assert!(
        hits.iter()
            .all(|h| h.event_id == p["event_id"].as_str().unwrap()),
        "every attempt carries the same event id"
    );
    let metrics = app.metrics().await;
    let series = |o: &str| {
        metric(
            &metrics,
            &format!("samenloop_webhook_deliveries_total{{network=\"{NOORD}\",outcome=\"{o}\"}}"),
        )
    };
    assert_eq!(series("delivered"), 1);
    assert_eq!(series("http_error") as usize, hits.len() - 1);
    assert!(deliveries(&app, NOORD, "dead").await.is_empty());
}

#[tokio::test]
async fn a_hanging_receiver_and_a_redirect_are_failed_attempts() {
    let rx = Receiver::start(Answer::Ok);
    rx.then(&[Answer::Hang(5), Answer::Redirect]);
    let url = rx.url();
    let app = spawn_app_with(|c| {
        let mut w = webhook(url, true);
        w.timeout_secs = 1;
        set_webhook(c, NOORD, w)
    })
    .await;
    form_match(&app, NOORD, 3).await;
    rx.wait_hits(3).await;
    wait_deliveries(&app, NOORD, "pending", |d| d.is_empty()).await;
    let hits = rx.hits();
    assert_eq!(
        hits.len(),
        3,
        "no more than the scripted failures and one success"
    );
    assert!(
        hits.iter().all(|h| h.path == "/hook"),
        "the redirect was not followed"
    );
    assert!(hits.iter().all(|h| h.event_id == hits[0].event_id));
    let metrics = app.metrics().await;
    for (o, n) in [("timeout", 1), ("redirect", 1), ("delivered", 1)] {
        assert_eq!(
            metric(
                &metrics,
                &format!(
                    "samenloop_webhook_deliveries_total{{network=\"{NOORD}\",outcome=\"{o}\"}}"
                )
            ),
            n,
            "{o}"
        );
    }
}

#[tokio::test]
async fn an_untrusted_certificate_is_dead_lettered_shown_and_requeued_after_a_restart() {
    let rx = Receiver::start(Answer::Ok);
    let url = rx.url();
    let mut app = spawn_app_with(|c| {
        let mut w = webhook(url, false);
        w.dead_letter_after_secs = 1;
        set_webhook(c, NOORD, w)
    })
    .await;
    form_match(&app, NOORD, 4).await;
    let dead = wait_deliveries(&app, NOORD, "dead", |d| d.len() == 1).await;
    let d = &dead[0];
    assert_eq!(d["last_outcome"], "tls");
    assert_eq!(d["state"], "dead");
    assert!(d["attempts"].as_u64().unwrap() >= 1);
    assert!(d["dead_lettered_at"].is_string());
    assert!(d.get("next_attempt_at").is_none());
    assert!(deliveries(&app, NOORD, "pending").await.is_empty());
    assert!(
        rx.hits().is_empty(),
        "nothing reached the untrusted receiver"
    );
    let event_id = d["event_id"].as_str().unwrap().to_string();
    // Every failed attempt is in the access log too, without an HTTP status.
    let fg = app.privacy_officer("fg-noord", &[NOORD]);
    let attempts = app
        .audit_entries(&fg, &format!("action=deliver&object={event_id}"))
        .await;
    assert_eq!(
        attempts.len() as u64,
        d["attempts"].as_u64().unwrap(),
        "{attempts:#?}"
    );
    assert!(
        attempts
            .iter()
            .all(|e| e["outcome"] == "error" && e["status"] == 0),
        "{attempts:#?}"
    );
    let metrics = app.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            &format!("samenloop_webhook_dead_letters{{network=\"{NOORD}\"}}")
        ),
        1
    );
    assert_eq!(
        metric(
            &metrics,
            &format!("samenloop_webhook_dead_lettered_total{{network=\"{NOORD}\"}}")
        ),
        1
    );
    assert!(
        metric(
            &metrics,
            &format!("samenloop_webhook_deliveries_total{{network=\"{NOORD}\",outcome=\"tls\"}}")
        ) >= 1,
        "{metrics}"
    );

    // Who may look and requeue.
    let list = format!("/v1/networks/{NOORD}/deliveries?state=dead");
    let retry = format!("/v1/networks/{NOORD}/deliveries/{event_id}/retry");
    expect_problem(
        app.get(&list, &app.partner("woonstad")).await,
        403,
        "forbidden-role",
    )
    .await;
    expect_problem(
        app.get(&list, &app.coordinator(JEUGD)).await,
        404,
        "not-found",
    )
    .await;
    expect_problem(
        app.get(
            &format!("/v1/networks/{NOORD}/deliveries?state=gone"),
            &app.coordinator(NOORD),
        )
        .await,
        400,
        "invalid-query",
    )
    .await;
    let admin = app.token(samenloop::http::auth::Role::Admin, "gemeente", &[]);
    assert_eq!(app.get(&list, &admin).await.status().as_u16(), 200);
    expect_problem(
        app.post(&retry, &app.coordinator(JEUGD), &Value::Null)
            .await,
        404,
        "not-found",
    )
    .await;
    expect_problem(
        app.post(
            &format!("/v1/networks/{NOORD}/deliveries/evt_nope/retry"),
            &app.coordinator(NOORD),
            &Value::Null,
        )
        .await,
        404,
        "not-found",
    )
    .await;

    // The operator fixes the trust (ca_file) and restarts; the dead letter stays dead
    // until the coordinator requeues it, then it is delivered with the same event id.
    for n in app.cfg.networks.iter_mut().filter(|n| n.id == NOORD) {
        if let Some(w) = n.webhook.as_mut() {
            w.ca_file = Some(dev_path("tls-cert.dev.pem"));
            w.dead_letter_after_secs = 3600;
        }
    }
    app.restart().await;
    assert_eq!(deliveries(&app, NOORD, "dead").await.len(), 1);
    assert!(rx.hits().is_empty());
    let r = app
        .post(&retry, &app.coordinator(NOORD), &Value::Null)
        .await;
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["state"], "pending");
    assert_eq!(v["event_id"], event_id.as_str());
    let hits = rx.wait_hits(1).await;
    assert_eq!(hits[0].event_id, event_id);
    wait_deliveries(&app, NOORD, "pending", |d| d.is_empty()).await;
    assert!(deliveries(&app, NOORD, "dead").await.is_empty());
    // Delivered: nothing to requeue any more.
    expect_problem(
        app.post(&retry, &app.coordinator(NOORD), &Value::Null)
            .await,
        404,
        "not-found",
    )
    .await;
}

#[tokio::test]
async fn an_alert_pending_across_a_restart_is_delivered_after_it() {
    // The receiver's port is reserved, then nothing listens there: connections fail.
    let down = Receiver::start(Answer::Ok);
    let port = down.port;
    let url = down.url();
    down.stop().await;
    drop(down);
    let mut app = spawn_app_with(|c| set_webhook(c, NOORD, webhook(url, true))).await;
    form_match(&app, NOORD, 5).await;
    let pending = wait_deliveries(&app, NOORD, "pending", |d| {
        d.len() == 1 && d[0]["attempts"].as_u64() >= Some(1)
    })
    .await;
    assert_eq!(pending[0]["last_outcome"], "connect");
    let event_id = pending[0]["event_id"].as_str().unwrap().to_string();
    // A request still pending on a retry answers 409.
    expect_problem(
        app.post(
            &format!("/v1/networks/{NOORD}/deliveries/{event_id}/retry"),
            &app.coordinator(NOORD),
            &Value::Null,
        )
        .await,
        409,
        "delivery-not-dead",
    )
    .await;
    app.restart().await;
    let rx = Receiver::start_on(port, Answer::Ok);
    let hits = rx.wait_hits(1).await;
    assert_eq!(
        hits[0].event_id, event_id,
        "the same event after the restart"
    );
    wait_deliveries(&app, NOORD, "pending", |d| d.is_empty()).await;
}

#[tokio::test]
async fn an_alert_written_while_the_server_stops_is_delivered_after_the_restart() {
    // The alert's outbox row and pending entry are written with the match; the server
    // stops before any attempt can succeed (the receiver answers 503), and the alert
    // arrives after the restart.
    let rx = Receiver::start(Answer::Status(503));
    let url = rx.url();
    let mut app = spawn_app_with(|c| set_webhook(c, NOORD, webhook(url, true))).await;
    form_match(&app, NOORD, 6).await;
    app.restart().await;
    rx.set(Answer::Ok);
    wait_deliveries(&app, NOORD, "pending", |d| d.is_empty()).await;
    let hits = rx.hits();
    let ok = hits.last().unwrap();
    assert!(hits.iter().all(|h| h.event_id == ok.event_id));
    assert_eq!(ok.event_type, "match.formed");
}

#[tokio::test]
async fn a_hanging_receiver_delays_neither_intake_nor_another_network() {
    let slow = Receiver::start(Answer::Hang(20));
    let fast = Receiver::start(Answer::Ok);
    let (slow_url, fast_url) = (slow.url(), fast.url());
    let app = spawn_app_with(|c| {
        let mut w = webhook(slow_url, true);
        w.timeout_secs = 30;
        set_webhook(c, NOORD, w);
        set_webhook(c, JEUGD, webhook(fast_url, true));
    })
    .await;
    // More alerts than attempts in flight per network, all hanging.
    for n in 0..10 {
        form_match(&app, NOORD, 10 + n).await;
    }
    slow.wait_hits(8).await;
    form_match(&app, JEUGD, 30).await;
    let hits = fast.wait_hits(1).await;
    assert_eq!(hits[0].event_type, "match.formed");
    assert_eq!(
        slow.done(),
        0,
        "the other network's alert arrived while every attempt of the first still hung"
    );
    assert_eq!(
        slow.hits().len(),
        8,
        "at most 8 attempts in flight per network"
    );
    assert_eq!(deliveries(&app, NOORD, "pending").await.len(), 10);
}

#[test]
fn a_missing_or_malformed_secret_file_stops_the_start_naming_the_setting() {
    let data = tempfile::tempdir().unwrap();
    let bad = data.path().join("secret.toml");
    std::fs::write(
        &bad,
        "format = \"samenloop-webhook-secret/1\"\nkey_id = \"k\"\nsecret = \"c0ffee5ec2e7\"\n",
    )
    .unwrap();
    for (file, expect) in [
        (data.path().join("absent.toml"), "cannot access"),
        (bad, "64 hexadecimal digits"),
    ] {
        let mut cfg = dev_config(data.path().join("db"));
        let mut w = webhook("https://localhost:9/hook".into(), true);
        w.secret_file = file;
        set_webhook(&mut cfg, JEUGD, w);
        let err = samenloop::http::startup::Application::build(cfg)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("networks[1].webhook.secret_file: ") && err.contains(expect),
            "{err}"
        );
        assert!(
            !err.contains("c0ffee5ec2e7"),
            "no secret material in the message"
        );
    }
}
