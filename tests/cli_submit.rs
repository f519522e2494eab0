//! `samenloop submit` against a real server: per-line rejects, idempotent resubmission,
//! fatal token problems.

use samenloop::config::{Config, development_config_path};
use samenloop::http::auth::{Claims, Role, mint};
use samenloop::http::startup::Application;
use samenloop::pseudonym::keyfile::read_key_file;
use samenloop::pseudonym::{Date, PersonFields, SubjectFields, pseudonymise};
use std::process::Command;

fn start(dir: &std::path::Path) -> (u16, Config) {
    let mut cfg = Config::load(&development_config_path()).unwrap();
    cfg.server.listen = "127.0.0.1:0".parse().unwrap();
    cfg.server.data_dir = dir.join("db");
    cfg.server.workers = Some(2);
    let c = cfg.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let app = Application::build(c).unwrap();
            tx.send(app.port()).unwrap();
            app.run_until_stopped().await.unwrap();
        })
    });
    (rx.recv().unwrap(), cfg)
}

fn token(cfg: &Config, role: Role) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    mint(
        cfg,
        None,
        &Claims {
            sub: "t".into(),
            iss: cfg.auth.issuer.clone(),
            aud: cfg.auth.audience.clone(),
            exp: now + 600,
            nbf: now - 5,
            iat: now,
            org: if role == Role::Partner {
                "woonstad".into()
            } else {
                "gemeente".into()
            },
            role,
            networks: vec!["zorgnetwerk-noord".into()],
            obo: None,
            purpose: None,
        },
    )
    .unwrap()
}

fn submit(
    port: u16,
    token: Option<&str>,
    input: &std::path::Path,
    rejects: &std::path::Path,
) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_samenloop"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "submit",
            "--server",
            &format!("https://localhost:{port}"),
            "--network",
            "zorgnetwerk-noord",
        ])
        .args([
            "--contact-name",
            "Team",
            "--ca-cert",
            "keys-example/tls-cert.dev.pem",
            "--batch-size",
            "2",
            "--rejects",
        ])
        .arg(rejects)
        .arg(input)
        .env_remove("SAMENLOOP_TOKEN");
    if let Some(t) = token {
        cmd.env("SAMENLOOP_TOKEN", t);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn submit_reports_rejects_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let (port, cfg) = start(dir.path());
    let key = read_key_file(
        &development_config_path()
            .parent()
            .unwrap()
            .join("domain-key.dev.toml"),
    )
    .unwrap();
    let mut lines = Vec::new();
    for i in 0..4 {
        let s = SubjectFields {
            reference: format!("S-{i}"),
            person: PersonFields {
                given_names: "Eva".into(),
                family_name: "Mulder".into(),
                birth_date: format!("2001-03-{:02}", i + 1),
                ..Default::default()
            },
            ..Default::default()
        };
        lines.push(
            pseudonymise(&key, &s, Date::new(2026, 1, 1).unwrap())
                .unwrap()
                .to_json(),
        );
    }
    lines.insert(
        2,
        "{\"reference\":\"bad\",\"key_id\":\"dev-2026\",\"person\":[\"nd:short\"]}".to_string(),
    );
    let mut wrong_key = lines[0].replace("\"S-0\"", "\"S-9\"");
    wrong_key = wrong_key.replace("dev-2026", "old-2020");
    lines.push(wrong_key);
    let input = dir.path().join("keys.jsonl");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let rejects = dir.path().join("rejects.jsonl");

    let (code, stderr) = submit(port, Some(&token(&cfg, Role::Partner)), &input, &rejects);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("submitted 6: accepted 4 (new 4, already stored 0), rejected 2"),
        "{stderr}"
    );
    let report = std::fs::read_to_string(&rejects).unwrap();
    assert!(
        report.contains("\"line\":3") && report.contains("local:invalid-key-set"),
        "{report}"
    );
    assert!(
        report.contains("\"line\":6")
            && report.contains("unknown-key-id")
            && report.contains("\"reference\":\"S-9\""),
        "{report}"
    );

    let (code, stderr) = submit(port, Some(&token(&cfg, Role::Partner)), &input, &rejects);
    assert_eq!(code, Some(3));
    assert!(
        stderr.contains("accepted 4 (new 0, already stored 4)"),
        "{stderr}"
    );

    let (code, stderr) = submit(port, None, &input, &rejects);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("no token"), "{stderr}");
    let (code, stderr) = submit(
        port,
        Some(&token(&cfg, Role::Coordinator)),
        &input,
        &rejects,
    );
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("403") && stderr.contains("forbidden-role"),
        "{stderr}"
    );
}
