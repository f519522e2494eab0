//! `samenloop webhook-receiver` (the README's coordinator contact) and the Python
//! receiver of `spec/webhooks.md`, each as a real process: a signed webhook is printed
//! once as one JSON line, a bad or stale signature answers 401, a repeat is not printed
//! again.

use samenloop::alerts::signature::WebhookSecret;
use samenloop::config::development_config_path;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn dev(name: &str) -> PathBuf {
    std::path::absolute(development_config_path().parent().unwrap().join(name)).unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(dev("tls-cert.dev.pem")).unwrap())
                .unwrap(),
        )
        .tls_built_in_root_certs(false)
        .build()
        .unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn post(url: &str, signature: &str, event_id: &str, body: &str) -> u16 {
    for _ in 0..200 {
        match client()
            .post(url)
            .header("Content-Type", "application/json")
            .header("Samenloop-Signature", signature)
            .header("Samenloop-Event-Id", event_id)
            .header("Samenloop-Event-Type", "match.formed")
            .body(body.to_string())
            .send()
            .await
        {
            Ok(r) => return r.status().as_u16(),
            // Not listening yet.
            Err(e) if e.is_connect() => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("the receiver never listened");
}

/// Drives a running receiver at `url` and checks what it printed on `stdout`.
async fn exercise(url: &str, stdout: std::process::ChildStdout) {
    let secret = WebhookSecret::read(&dev("webhook-secret.dev.toml")).unwrap();
    let body = r#"{"event_id":"evt_00000000000000000000000000000001","sequence":1,"type":"match.formed","network":"zorgnetwerk-noord"}"#;
    let other = r#"{"event_id":"evt_00000000000000000000000000000002","sequence":2,"type":"match.formed","network":"zorgnetwerk-noord"}"#;
    let eid = "evt_00000000000000000000000000000001";
    let t = now();
    // Bad signatures first: none of them may be printed.
    let wrong = WebhookSecret::from_bytes([9; 32]);
    assert_eq!(
        post(url, &wrong.header(t, body.as_bytes()), eid, body).await,
        401
    );
    assert_eq!(
        post(url, &secret.header(t - 600, body.as_bytes()), eid, body).await,
        401,
        "a stale timestamp"
    );
    assert_eq!(
        post(url, &secret.header(t, body.as_bytes()), eid, other).await,
        401,
        "a body that was not signed"
    );
    assert_eq!(post(url, "", eid, body).await, 401);
    // The good one, twice (at-least-once delivery), then another event.
    let good = secret.header(t, body.as_bytes());
    assert!((200..300).contains(&post(url, &good, eid, body).await));
    assert!((200..300).contains(&post(url, &good, eid, body).await));
    let eid2 = "evt_00000000000000000000000000000002";
    assert!(
        (200..300).contains(&post(url, &secret.header(t, other.as_bytes()), eid2, other).await)
    );
    let mut lines = BufReader::new(stdout).lines();
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["event_id"], eid);
    let second: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(second["event_id"], eid2, "the repeat was not printed again");
}

#[tokio::test]
async fn the_receiver_subcommand_verifies_and_prints_each_alert_once() {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_samenloop"))
        .args(["webhook-receiver", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _guard = Killed(child);
    exercise(&format!("https://localhost:{port}/alerts"), stdout).await;
}

#[tokio::test]
async fn the_python_receiver_of_the_spec_verifies_and_prints_each_alert_once() {
    let python = Command::new("python3")
        .arg("-c")
        .arg("import tomllib")
        .output()
        .is_ok_and(|o| o.status.success());
    if !python {
        eprintln!("python3 (3.11+) not available: skipped");
        return;
    }
    let spec =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/spec/webhooks.md")).unwrap();
    let code = spec
        .split("```python\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("a python block in spec/webhooks.md");
    let port = free_port();
    let code = code
        .replace(
            "\"webhook-secret.dev.toml\"",
            &format!("{:?}", dev("webhook-secret.dev.toml")),
        )
        .replace(
            "\"tls-cert.dev.pem\"",
            &format!("{:?}", dev("tls-cert.dev.pem")),
        )
        .replace(
            "\"tls-key.dev.pem\"",
            &format!("{:?}", dev("tls-key.dev.pem")),
        )
        .replace("9443", &port.to_string());
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(code)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _guard = Killed(child);
    exercise(&format!("https://localhost:{port}/alerts"), stdout).await;
}
