//! A crash between a match and its webhook: the real `samenloop serve` process is
//! SIGKILLed while the alert waits for a receiver that is down; after the restart the
//! alert reaches the receiver (`samenloop webhook-receiver`, a process too), signed.

#[path = "common/binary_config.rs"]
mod binary_config;

use samenloop::config::development_config_path;
use samenloop::http::auth::{Claims, Role, mint};
use samenloop::pseudonym::keyfile::read_key_file;
use samenloop::pseudonym::{Date, PersonFields, SubjectFields, pseudonymise};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn keys() -> PathBuf {
    development_config_path()
        .parent()
        .unwrap()
        .canonicalize()
        .unwrap()
}

/// The development configuration for the binary (see [`binary_config::write`]) with a
/// webhook for `zorgnetwerk-noord` to `https://localhost:{hook_port}/alerts`.
fn write_config(dir: &Path, hook_port: u16) -> PathBuf {
    let keys = keys();
    binary_config::write(
        dir,
        |_, _| None,
        |line| {
            // The first network's (zorgnetwerk-noord's) last line.
            (line == "max_validity_days = 730").then(|| {
                format!(
                    "[networks.webhook]\nurl = \"https://localhost:{hook_port}/alerts\"\n\
                     secret_file = \"{}\"\nca_file = \"{}\"\ntimeout_secs = 2\n\
                     dead_letter_after_secs = 3600\nmax_backoff_secs = 1\n",
                    keys.join("webhook-secret.dev.toml").display(),
                    keys.join("tls-cert.dev.pem").display()
                )
            })
        },
    )
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(config: &Path) -> (Killed, u16) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_samenloop"))
        .args(["serve", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    (Killed(child), port)
}

fn client() -> reqwest::Client {
    let pem = std::fs::read(keys().join("tls-cert.dev.pem")).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .tls_built_in_root_certs(false)
        .build()
        .unwrap()
}

fn partner(org: &str) -> String {
    let cfg = samenloop::config::Config::load(&development_config_path()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = Claims {
        sub: format!("{org}-system"),
        iss: cfg.auth.issuer.clone(),
        aud: cfg.auth.audience.clone(),
        exp: now + 600,
        nbf: now - 5,
        iat: now,
        org: org.into(),
        role: Role::Partner,
        networks: vec!["zorgnetwerk-noord".into()],
        obo: None,
        purpose: None,
    };
    mint(&cfg, None, &claims).unwrap()
}

async fn pending(port: u16) -> u64 {
    let text = client()
        .get(format!("https://localhost:{port}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| {
            l.strip_prefix("samenloop_webhook_pending{network=\"zorgnetwerk-noord\"} ")?
                .parse()
                .ok()
        })
        .expect("the pending gauge")
}

#[tokio::test]
async fn an_alert_survives_a_sigkill_before_its_delivery() {
    let hook_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), hook_port);
    let (mut server, port) = serve(&config);
    let key = read_key_file(&keys().join("domain-key.dev.toml")).unwrap();
    let c = client();
    for (i, org) in ["woonstad", "ggz-noord"].into_iter().enumerate() {
        let s = SubjectFields {
            reference: format!("CR-{i}"),
            person: PersonFields {
                given_names: "Noor".into(),
                family_name: "Crashtest".into(),
                birth_date: "1979-04-12".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        let keys = pseudonymise(&key, &s, Date::new(2026, 1, 1).unwrap()).unwrap();
        let body = serde_json::json!({"network": "zorgnetwerk-noord", "subject": serde_json::from_str::<serde_json::Value>(&keys.to_json()).unwrap(), "contact": {"name": "Team"}});
        let r = c
            .post(format!("https://localhost:{port}/v1/signals"))
            .bearer_auth(partner(org))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
    }
    // The match's alert waits: nobody listens on the receiver's port.
    assert_eq!(pending(port).await, 1);
    server.0.kill().unwrap(); // SIGKILL
    server.0.wait().unwrap();

    let mut receiver = Command::new(env!("CARGO_BIN_EXE_samenloop"))
        .args([
            "webhook-receiver",
            "--listen",
            &format!("127.0.0.1:{hook_port}"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = receiver.stdout.take().unwrap();
    let _receiver = Killed(receiver);
    let (_server, port) = serve(&config);
    let read = tokio::task::spawn_blocking(move || BufReader::new(out).lines().next());
    let line = tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("the alert reached the receiver after the restart")
        .unwrap()
        .unwrap()
        .unwrap();
    let alert: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(alert["type"], "match.formed");
    assert_eq!(alert["network"], "zorgnetwerk-noord");
    assert!(alert["event_id"].as_str().unwrap().starts_with("evt_"));
    for _ in 0..200 {
        if pending(port).await == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the delivered alert is still pending");
}
