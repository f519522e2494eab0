//! The README walkthrough, command by command, against a real server.

use samenloop::config::{Config, development_config_path};
use samenloop::http::startup::Application;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn samenloop(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_samenloop"))
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "samenloop {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[tokio::test]
async fn the_readme_walkthrough_finds_one_person_and_one_household() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::load(&development_config_path()).unwrap();
    cfg.server.listen = "127.0.0.1:0".parse().unwrap();
    cfg.server.data_dir = dir.path().join("db");
    cfg.server.workers = Some(2);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let app = Application::build(cfg).unwrap();
            tx.send(app.port()).unwrap();
            app.run_until_stopped().await.unwrap();
        })
    });
    let port = rx.recv().unwrap();
    let server = format!("https://localhost:{port}");
    let net = "zorgnetwerk-noord";
    let (w_jsonl, p_jsonl) = (
        dir.path().join("woonstad.jsonl"),
        dir.path().join("politie.jsonl"),
    );

    // 1. Pseudonymise both exports.
    samenloop(&[
        "pseudonymise",
        "--key",
        "keys-example/domain-key.dev.toml",
        "--input",
        "examples/walkthrough/woonstad.csv",
        "--output",
        p(&w_jsonl),
    ]);
    samenloop(&[
        "pseudonymise",
        "--key",
        "keys-example/domain-key.dev.toml",
        "--input",
        "examples/walkthrough/politie.csv",
        "--mapping",
        "examples/walkthrough/politie.mapping.toml",
        "--output",
        p(&p_jsonl),
    ]);
    let police = std::fs::read_to_string(&p_jsonl).unwrap();
    assert_eq!(police.lines().count(), 3);
    assert!(
        police.contains("PL-77301"),
        "references travel with the key sets"
    );
    for secret in ["Vries", "Jansen", "Bakker", "Ans", "Piet"] {
        assert!(
            !police.contains(secret),
            "{secret} leaked into the key sets"
        );
    }

    // 2. Tokens.
    let token = |role: &str, org: &str, file: &str| {
        let out = samenloop(&["token", "--role", role, "--org", org, "--network", net]);
        let path = dir.path().join(file);
        std::fs::write(&path, out.stdout).unwrap();
        path
    };
    let (wt, pt, rt) = (
        token("partner", "woonstad", "w.token"),
        token("partner", "politie", "p.token"),
        token("coordinator", "gemeente", "r.token"),
    );

    // 3. Submit.
    samenloop(&[
        "submit",
        "--server",
        &server,
        "--token-file",
        p(&wt),
        "--network",
        net,
        "--category",
        "huurachterstand",
        "--contact-name",
        "Team Huurachterstand",
        "--contact-phone",
        "010 123 4567",
        "--ca-cert",
        "keys-example/tls-cert.dev.pem",
        p(&w_jsonl),
    ]);
    samenloop(&[
        "submit",
        "--server",
        &server,
        "--token-file",
        p(&pt),
        "--network",
        net,
        "--category",
        "overlast",
        "--contact-name",
        "Wijkagent Noord",
        "--contact-email",
        "wijkagent.noord@politie.example",
        "--ca-cert",
        "keys-example/tls-cert.dev.pem",
        p(&p_jsonl),
    ]);

    // 4. The coordinator sees a person match and a household match.
    let pem = std::fs::read(repo().join("keys-example/tls-cert.dev.pem")).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .tls_built_in_root_certs(false)
        .build()
        .unwrap();
    let regie = std::fs::read_to_string(&rt).unwrap();
    let page: Value = client
        .get(format!("{server}/v1/networks/{net}/matches"))
        .bearer_auth(regie.trim())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut kinds: Vec<&str> = page["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    kinds.sort();
    assert_eq!(kinds, vec!["household", "person"], "{page:#}");
    for m in page["matches"].as_array().unwrap() {
        assert_eq!(m["organisations"], 2);
    }

    // 5. The coordinator acknowledges every unacknowledged match and makes the police
    //    the lead of the person match.
    let get = |url: String, token: &str| {
        let req = client.get(url).bearer_auth(token.trim());
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let follow_up = |handle: &str, body: Value| {
        let req = client
            .post(format!("{server}/v1/matches/{handle}/follow-up"))
            .bearer_auth(regie.trim())
            .json(&body);
        async move {
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), 200);
            res.json::<Value>().await.unwrap()
        }
    };
    let open = get(
        format!("{server}/v1/networks/{net}/matches?status=unacknowledged"),
        &regie,
    )
    .await;
    assert_eq!(open["matches"].as_array().unwrap().len(), 2, "{open:#}");
    for m in open["matches"].as_array().unwrap() {
        follow_up(
            m["handle"].as_str().unwrap(),
            serde_json::json!({"action": "acknowledge"}),
        )
        .await;
    }
    let person = page["matches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kind"] == "person")
        .unwrap()["handle"]
        .as_str()
        .unwrap()
        .to_string();
    let m = follow_up(
        &person,
        serde_json::json!({"action": "choose_lead", "organisation": "politie"}),
    )
    .await;
    let f = &m["networks"][0]["follow_up"];
    assert_eq!(f["stage"], "acknowledged", "{m:#}");
    assert_eq!(f["lead_organisation"], "politie");
    let left = get(
        format!("{server}/v1/networks/{net}/matches?status=unacknowledged"),
        &regie,
    )
    .await;
    assert_eq!(left["matches"].as_array().unwrap().len(), 0);

    // 6. The police hear back on PL-77301; PL-77303 (no match) shows no feedback.
    let police = std::fs::read_to_string(&pt).unwrap();
    let matched = get(
        format!("{server}/v1/signals?network={net}&reference=PL-77301"),
        &police,
    )
    .await;
    assert_eq!(matched["feedback"]["status"], "picked_up", "{matched:#}");
    let alone = get(
        format!("{server}/v1/signals?network={net}&reference=PL-77303"),
        &police,
    )
    .await;
    assert!(alone.get("feedback").is_none(), "{alone:#}");
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.retain(|k| k != "feedback");
        k
    };
    assert_eq!(keys(&matched), keys(&alone));
}
