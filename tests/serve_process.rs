//! The real `samenloop serve` process: start-up output, configuration errors, and a
//! graceful SIGTERM that loses no acknowledged write.

#[path = "common/binary_config.rs"]
mod binary_config;

use samenloop::config::development_config_path;
use samenloop::http::auth::{Claims, Role, mint};
use samenloop::pseudonym::keyfile::read_key_file;
use samenloop::pseudonym::{Date, PersonFields, SubjectFields, pseudonymise};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

fn start(config: &Path) -> (Child, u16, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_samenloop"))
        .args(["serve", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let port: u16 = line
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    (child, port, line)
}

fn client() -> reqwest::Client {
    let pem = std::fs::read(
        development_config_path()
            .parent()
            .unwrap()
            .join("tls-cert.dev.pem"),
    )
    .unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .tls_built_in_root_certs(false)
        .build()
        .unwrap()
}

fn token() -> String {
    let cfg = samenloop::config::Config::load(&development_config_path()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = Claims {
        sub: "t".into(),
        iss: cfg.auth.issuer.clone(),
        aud: cfg.auth.audience.clone(),
        exp: now + 600,
        nbf: now - 5,
        iat: now,
        org: "woonstad".into(),
        role: Role::Partner,
        networks: vec!["zorgnetwerk-noord".into()],
        obo: None,
        purpose: None,
    };
    mint(&cfg, None, &claims).unwrap()
}

#[tokio::test]
async fn sigterm_is_graceful_and_keeps_acknowledged_signals() {
    let dir = tempfile::tempdir().unwrap();
    let config = binary_config::write(dir.path(), |_, _| None, |_| None);
    let (child, port, line) = start(&config);
    assert!(line.contains("listening on https://"));
    let key = read_key_file(
        &development_config_path()
            .parent()
            .unwrap()
            .join("domain-key.dev.toml"),
    )
    .unwrap();
    let (client, token) = (client(), token());
    let mut ids = Vec::new();
    for i in 0..25 {
        let s = SubjectFields {
            reference: format!("T-{i}"),
            person: PersonFields {
                given_names: "Kim".into(),
                family_name: "Vos".into(),
                birth_date: format!("1990-02-{:02}", i + 1),
                ..Default::default()
            },
            ..Default::default()
        };
        let keys = pseudonymise(&key, &s, Date::new(2026, 1, 1).unwrap()).unwrap();
        let body = serde_json::json!({"network": "zorgnetwerk-noord", "subject": serde_json::from_str::<serde_json::Value>(&keys.to_json()).unwrap(), "contact": {"name": "Team"}});
        let r = client
            .post(format!("https://localhost:{port}/v1/signals"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        let v: serde_json::Value = r.json().await.unwrap();
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    // Idle keep-alive connections would hold the graceful shutdown open until its timeout.
    drop(client);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "graceful exit");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("DEVELOPMENT CONFIGURATION"),
        "the loud warning is printed: {stderr}"
    );
    assert!(stderr.contains("all acknowledged writes are on disk"));

    let (mut child, port, _) = start(&config);
    let client = self::client();
    for id in &ids {
        let r = client
            .get(format!("https://localhost:{port}/v1/signals/{id}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    // No plaintext listener: an HTTP request on the port gets no HTTP answer.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    // TLS 1.2 and 1.3 are both offered.
    for v in [
        reqwest::tls::Version::TLS_1_2,
        reqwest::tls::Version::TLS_1_3,
    ] {
        let pem = std::fs::read(
            development_config_path()
                .parent()
                .unwrap()
                .join("tls-cert.dev.pem"),
        )
        .unwrap();
        let c = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .tls_built_in_root_certs(false)
            .min_tls_version(v)
            .max_tls_version(v)
            .build()
            .unwrap();
        assert_eq!(
            c.get(format!("https://localhost:{port}/healthz"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
            200
        );
    }
    child.kill().unwrap();
    let _ = child.wait();
}

#[test]
fn configuration_errors_are_precise() {
    let dir = tempfile::tempdir().unwrap();
    for (extra_replace, expect) in [
        (
            ("match_threshold = 2", "match_threshold = 1"),
            "networks[0].match_threshold: must be at least 2",
        ),
        (
            ("max_validity_days = 730", "max_validity_days = 900"),
            "networks[0].max_validity_days",
        ),
        (
            ("algorithm = \"ES256\"", "algorithm = \"HS256\""),
            "auth.keys[0].algorithm: must be ES256 or EdDSA",
        ),
        (
            (
                "networks = [\"zorgnetwerk-noord\"]",
                "networks = [\"nergens\"]",
            ),
            "organisations[0].networks[0]: no such network",
        ),
        (
            ("listen = \"127.0.0.1:8443\"", "listen = \"not an address\""),
            "invalid socket address",
        ),
        (("[limits]", "[limits]\nbogus = 1"), "unknown field `bogus`"),
        (
            ("[limits]", "[limits]\nretention_chunk = 0"),
            "limits.retention_chunk: must be 1 to 100000",
        ),
    ] {
        let text = std::fs::read_to_string(development_config_path())
            .unwrap()
            .replacen(extra_replace.0, extra_replace.1, 1);
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_samenloop"))
            .args(["serve", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expect), "expected {expect:?} in {stderr}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_samenloop"))
        .args(["serve", "--config", "/nonexistent.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("cannot read configuration /nonexistent.toml")
    );
}
