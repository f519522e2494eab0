//! `samenloop audit …` against a real server and its stopped database: offline
//! verification (and tampering caught at the right entry), exports, data-subject access.

use samenloop::audit::{self, COUNTER_KEY, Entry, Sealed, entry_key, seal};
use samenloop::config::{Config, development_config_path};
use samenloop::http::auth::{Claims, Role, mint};
use samenloop::http::startup::{Application, Stopper};
use samenloop::index::engine::{EngineError, Kv, Policy};
use samenloop::pseudonym::keyfile::read_key_file;
use samenloop::pseudonym::{Date, PersonFields, SubjectFields, pseudonymise};
use samenloop::store::Store;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

const NOORD: &str = "zorgnetwerk-noord";
const HEAD_KEY: &[u8] = b"caudit_head";

fn keys_dir() -> PathBuf {
    development_config_path()
        .parent()
        .unwrap()
        .canonicalize()
        .unwrap()
}

/// The development configuration with absolute key paths, a port of its own and its data
/// in `dir/db` (so the default checkpoint file is `dir/db.checkpoints.jsonl`).
fn write_config(dir: &Path) -> PathBuf {
    let keys = keys_dir();
    let text = std::fs::read_to_string(development_config_path()).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let l = line.trim_start();
        let line = if l.starts_with("listen =") {
            "listen = \"127.0.0.1:0\"".to_string()
        } else if l.starts_with("data_dir =") {
            format!("data_dir = \"{}\"", dir.join("db").display())
        } else if l.starts_with("cache_mib =") {
            "cache_mib = 16".to_string()
        } else if let Some((k, v)) = l.split_once(" = \"") {
            if [
                "tls_cert",
                "tls_key",
                "index_key_file",
                "checkpoint_key",
                "checkpoint_public_key",
                "public_key",
                "private_key",
            ]
            .contains(&k.trim())
            {
                let file = v.split('"').next().unwrap();
                format!("{k} = \"{}\"", keys.join(file).display())
            } else {
                line.to_string()
            }
        } else {
            line.to_string()
        };
        out.push_str(&line);
        out.push('\n');
    }
    let path = dir.join("config.toml");
    std::fs::write(&path, out).unwrap();
    path
}

struct Server {
    base: String,
    cfg: Config,
    client: reqwest::Client,
    stopper: Stopper,
    thread: std::thread::JoinHandle<()>,
}

fn client() -> reqwest::Client {
    let pem = std::fs::read(keys_dir().join("tls-cert.dev.pem")).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .tls_built_in_root_certs(false)
        .build()
        .unwrap()
}

fn start(config: &Path) -> Server {
    let mut cfg = Config::load(config).unwrap();
    cfg.server.workers = Some(2);
    let c = cfg.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let app = Application::build(c).unwrap();
            tx.send((app.port(), app.stopper())).unwrap();
            app.run_until_stopped().await.unwrap();
        })
    });
    let (port, stopper) = rx.recv().unwrap();
    Server {
        base: format!("https://localhost:{port}"),
        cfg,
        client: client(),
        stopper,
        thread,
    }
}

impl Server {
    /// Stops the server gracefully; its database is closed (unlocked) on return.
    async fn stop(self) {
        // Idle keep-alive connections would hold the graceful stop open.
        drop(self.client);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        self.stopper.stop(true).await;
        self.thread.join().unwrap();
    }

    fn token(&self, role: Role, org: &str, sub: &str) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        mint(
            &self.cfg,
            Some("dev-es256"),
            &Claims {
                sub: sub.into(),
                iss: self.cfg.auth.issuer.clone(),
                aud: self.cfg.auth.audience.clone(),
                exp: now + 600,
                nbf: now - 5,
                iat: now,
                org: org.into(),
                role,
                networks: vec![NOORD.into()],
                obo: None,
                purpose: None,
            },
        )
        .unwrap()
    }

    async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// Submits a signal on `person` as `org`; returns its public id.
    async fn signal(&self, org: &str, person: &SubjectFields, category: &str) -> String {
        let key = read_key_file(&keys_dir().join("domain-key.dev.toml")).unwrap();
        let keys = pseudonymise(&key, person, Date::new(2026, 1, 1).unwrap()).unwrap();
        let body = json!({
            "network": NOORD,
            "subject": serde_json::from_str::<Value>(&keys.to_json()).unwrap(),
            "contact": {"name": "Team"},
            "category": category,
        });
        let (status, v) = self
            .post(
                "/v1/signals",
                &self.token(Role::Partner, org, &format!("{org}-user")),
                &body,
            )
            .await;
        assert_eq!(status, 201, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    fn officer(&self) -> String {
        self.token(Role::PrivacyOfficer, "gemeente", "fg-noord")
    }
}

fn marieke(reference: &str) -> SubjectFields {
    SubjectFields {
        reference: reference.into(),
        person: PersonFields {
            bsn: "123456782".into(),
            given_names: "Marieke".into(),
            prefix: "de".into(),
            family_name: "Vries".into(),
            birth_date: "1985-03-07".into(),
            ..Default::default()
        },
        postcode: "1011AB".into(),
        house_number: "12".into(),
        ..Default::default()
    }
}

fn johan(reference: &str) -> SubjectFields {
    SubjectFields {
        reference: reference.into(),
        person: PersonFields {
            bsn: "111222333".into(),
            given_names: "Johan".into(),
            family_name: "Bakker".into(),
            birth_date: "1970-01-01".into(),
            ..Default::default()
        },
        postcode: "9711AA".into(),
        house_number: "3".into(),
        ..Default::default()
    }
}

/// Runs the binary (without a token in the environment unless `token` is given).
fn run(args: &[&str], token: Option<&str>) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_samenloop"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .env_remove("SAMENLOOP_TOKEN");
    if let Some(t) = token {
        cmd.env("SAMENLOOP_TOKEN", t);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Changes the stopped database in `db` directly, as an attacker with disk access would.
fn tamper(db: &Path, f: impl FnOnce(&mut dyn Kv) -> Result<(), EngineError>) {
    let policy = Policy {
        max_postings_per_key: 32,
        ..Default::default()
    };
    let store = Store::open(db, 16, &policy, 1_800_000_000).unwrap();
    store.transact(f).unwrap();
    store.flush().unwrap();
}

/// A copy of the database in `db`, tampered with by `f`.
fn tampered(
    db: &Path,
    name: &str,
    f: impl FnOnce(&mut dyn Kv) -> Result<(), EngineError>,
) -> PathBuf {
    let copy = db.with_file_name(name);
    copy_dir(db, &copy);
    tamper(&copy, f);
    copy
}

fn line(kv: &dyn Kv, seq: u64) -> Vec<u8> {
    kv.get(&entry_key(seq)).unwrap().unwrap()
}

fn entry(kv: &dyn Kv, seq: u64) -> Entry {
    Sealed {
        line: line(kv, seq),
    }
    .entry()
    .unwrap()
}

/// Moves the head (counter and chain hash) to entry `seq`, as the writer would have.
fn set_head(kv: &mut dyn Kv, seq: u64) {
    let sealed = Sealed {
        line: line(kv, seq),
    };
    let mut hv = sealed.chain().unwrap().to_vec();
    hv.extend_from_slice(&sealed.entry().unwrap().at_ms.to_be_bytes());
    kv.put(COUNTER_KEY.to_vec(), seq.to_be_bytes().to_vec());
    kv.put(HEAD_KEY.to_vec(), hv);
}

fn checkpoint_key(seq: u64) -> Vec<u8> {
    samenloop::audit::checkpoint::checkpoint_key(seq)
}

/// Rewrites entry `k` with `change` and recomputes the chain of every entry after it,
/// and the head: only a checkpoint made before can tell.
fn rewrite_and_rechain(kv: &mut dyn Kv, k: u64, last: u64, change: impl Fn(&mut Entry)) {
    let mut prev = if k == 1 {
        [0; 32]
    } else {
        Sealed {
            line: line(kv, k - 1),
        }
        .chain()
        .unwrap()
    };
    for seq in k..=last {
        let mut e = entry(kv, seq);
        if seq == k {
            change(&mut e);
        }
        let (sealed, c) = seal(&prev, &e).unwrap();
        kv.put(entry_key(seq), sealed.line);
        prev = c;
    }
    set_head(kv, last);
}

#[tokio::test]
async fn verify_finds_tampering_at_the_right_entry() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let db = dir.path().join("db");
    let cpfile = dir.path().join("db.checkpoints.jsonl");
    let pubkey = keys_dir().join("audit-checkpoint.dev.pub.pem");
    let pubkey = s(&pubkey);

    let srv = start(&config);
    let a = srv
        .signal("woonstad", &marieke("W-1"), "huurachterstand")
        .await;
    srv.signal("politie", &marieke("P-1"), "overlast").await;
    let woonstad = srv.token(Role::Partner, "woonstad", "woonstad-user");
    for _ in 0..3 {
        assert_eq!(srv.get(&format!("/v1/signals/{a}"), &woonstad).await.0, 200);
    }
    let regie = srv.token(Role::Coordinator, "gemeente", "regie");
    let (st, _) = srv
        .get(&format!("/v1/networks/{NOORD}/matches"), &regie)
        .await;
    assert_eq!(st, 200);
    let (st, cp) = srv
        .post("/v1/audit/checkpoints", &srv.officer(), &json!({}))
        .await;
    assert_eq!(st, 201, "{cp}");
    let c1 = cp["seq"].as_u64().unwrap();
    assert!(c1 >= 6, "{cp}");
    for _ in 0..4 {
        srv.get(&format!("/v1/signals/{a}"), &woonstad).await;
    }
    // An export to verify offline later.
    let export = dir.path().join("log.jsonl");
    let (code, _, err) = run(
        &[
            "audit",
            "export",
            "--server",
            &srv.base,
            "--ca-cert",
            "keys-example/tls-cert.dev.pem",
            "--output",
            s(&export),
        ],
        Some(&srv.officer()),
    );
    assert_eq!(code, Some(0), "{err}");

    // A running server holds the lock: a clear refusal, not a second writer.
    let (code, out, err) = run(&["audit", "verify", "--config", s(&config)], None);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains("in use")
            && err.contains("Stop the server")
            && err.contains("GET /v1/audit/verify"),
        "{err}"
    );
    srv.stop().await;

    // Untouched: verifies, with the stored checkpoints and those of the file, signed.
    let (code, out, err) = run(&["audit", "verify", "--config", s(&config)], None);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.starts_with("OK: the access log in "), "{out}");
    assert!(
        out.contains("checkpoints compared: 2, with a valid signature: 2"),
        "{out}"
    );
    assert!(out.contains(s(&cpfile)), "{out}");
    let (code, out, _) = run(&["audit", "verify", "--config", s(&config), "--json"], None);
    assert_eq!(code, Some(0));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["signatures_checked"], true);
    assert_eq!(v["first_seq"], 1);
    let n = v["last_seq"].as_u64().unwrap();
    assert_eq!(v["entries"].as_u64(), Some(n));
    assert_eq!(
        v["last_checkpoint"]["seq"].as_u64(),
        Some(n),
        "stopping made one"
    );
    assert!(n > c1 + 4);

    let verify = |data: &Path, extra: &[&str]| {
        let mut args = vec!["audit", "verify", "--data", s(data)];
        args.extend_from_slice(extra);
        let (code, out, err) = run(&args, None);
        assert!(err.is_empty(), "{err}");
        (code, out)
    };
    let broken = |data: &Path, extra: &[&str], at: u64, says: &str| {
        let (code, out) = verify(data, extra);
        assert_eq!(code, Some(4), "{out}");
        let first = out.lines().next().unwrap_or_default();
        assert!(
            first.starts_with(&format!("BROKEN at entry {at}: ")),
            "{out}"
        );
        assert!(first.contains(says), "expected {says:?}: {out}");
    };
    let key = ["--checkpoint-key", pubkey];
    let k = 3;

    // (a) One byte of entry k changed.
    let d = tampered(&db, "a", |kv| {
        let l = String::from_utf8(line(kv, k)).unwrap();
        assert!(l.contains("\"client\":\"127.0.0.1\""), "{l}");
        let l = l.replace("\"client\":\"127.0.0.1\"", "\"client\":\"127.0.0.9\"");
        kv.put(entry_key(k), l.into_bytes());
        Ok(())
    });
    broken(&d, &key, k, "the chain breaks at entry 3");

    // (b) Entry k deleted.
    let d = tampered(&db, "b", |kv| {
        kv.remove(entry_key(k));
        Ok(())
    });
    broken(
        &d,
        &key,
        k,
        "entry 3 is missing (the next one present is 4)",
    );

    // (c) Entries k and k+1 swapped.
    let d = tampered(&db, "c", |kv| {
        let (x, y) = (line(kv, k), line(kv, k + 1));
        kv.put(entry_key(k), y);
        kv.put(entry_key(k + 1), x);
        Ok(())
    });
    broken(&d, &key, k, "the entry in place 3 says it is entry 4");

    // The first entries deleted.
    let d = tampered(&db, "f", |kv| {
        kv.remove(entry_key(1));
        kv.remove(entry_key(2));
        Ok(())
    });
    broken(&d, &key, 1, "entries 1 to 2 are missing");

    // (d) The last entries deleted, the head left as it was.
    let d = tampered(&db, "d1", |kv| {
        kv.remove(entry_key(n));
        kv.remove(entry_key(n - 1));
        Ok(())
    });
    broken(
        &d,
        &key,
        n - 1,
        &format!("entries {} to {n} are missing", n - 1),
    );

    // (d) Cut back to before the checkpoint made through the API, with the counter and
    // head fixed and the newer (shutdown) checkpoint deleted: the stored checkpoint tells.
    let m = c1 - 2;
    let cut = |kv: &mut dyn Kv, all_checkpoints: bool| {
        for seq in m + 1..=n {
            kv.remove(entry_key(seq));
        }
        set_head(kv, m);
        for seq in 0..=n {
            if all_checkpoints || seq > c1 {
                kv.remove(checkpoint_key(seq));
            }
        }
    };
    let d = tampered(&db, "d2", |kv| {
        cut(kv, false);
        Ok(())
    });
    broken(
        &d,
        &key,
        m + 1,
        &format!("a checkpoint covers entries up to {c1}, but the log ends at {m}"),
    );
    // With every stored checkpoint deleted too, only a checkpoint kept elsewhere tells.
    let d = tampered(&db, "d3", |kv| {
        cut(kv, true);
        Ok(())
    });
    let (code, out) = verify(&d, &key);
    assert_eq!(code, Some(0), "nothing in the database can tell: {out}");
    broken(
        &d,
        &["--checkpoints", s(&cpfile)],
        m + 1,
        &format!("a checkpoint covers entries up to {n}, but the log ends at {m}"),
    );

    // (e) Entry k rewritten and the whole chain after it recomputed: the checkpoint made
    // through the API no longer agrees.
    let hide = |e: &mut Entry| e.actor = "someone-else".into();
    let d = tampered(&db, "e1", |kv| {
        rewrite_and_rechain(kv, k, n, hide);
        Ok(())
    });
    broken(
        &d,
        &key,
        c1,
        &format!("the chain at entry {c1} differs from the checkpoint"),
    );
    // … and with the stored checkpoints rewritten to the new chain as well, only their
    // signatures (or a checkpoint kept elsewhere) tell.
    let d = tampered(&db, "e2", |kv| {
        rewrite_and_rechain(kv, k, n, hide);
        for (key, v) in kv.scan_prefix(b"K")? {
            let mut cp: Value = serde_json::from_slice(&v).unwrap();
            let seq = cp["seq"].as_u64().unwrap();
            let c = Sealed {
                line: line(kv, seq),
            }
            .chain()
            .unwrap();
            cp["chain"] = json!(audit::hex(&c));
            kv.put(key, serde_json::to_vec(&cp).unwrap());
        }
        Ok(())
    });
    broken(
        &d,
        &key,
        c1,
        &format!("the checkpoint at entry {c1} is not authentic"),
    );
    let (code, out) = verify(&d, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("signatures were not checked"), "{out}");
    broken(
        &d,
        &["--checkpoints", s(&cpfile)],
        c1,
        &format!("the chain at entry {c1} differs from the checkpoint"),
    );

    // The export verifies offline; a changed line or a missing end line does not.
    let (code, out, err) = run(
        &[
            "audit",
            "verify",
            "--export",
            s(&export),
            "--checkpoint-key",
            pubkey,
        ],
        None,
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.starts_with("OK: the access-log export"), "{out}");
    // With the configuration: its checkpoint key and checkpoint file.
    let (code, out, err) = run(
        &[
            "audit",
            "verify",
            "--export",
            s(&export),
            "--config",
            s(&config),
        ],
        None,
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("checkpoints compared: 1, with a valid signature: 1")
            && out.contains(s(&cpfile)),
        "{out}"
    );
    let text = std::fs::read_to_string(&export).unwrap();
    let changed = dir.path().join("changed.jsonl");
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("{\"seq\":2,") {
                l.replace("127.0.0.1", "127.0.0.9")
            } else {
                l.to_string()
            }
        })
        .collect();
    assert_ne!(lines.join("\n") + "\n", text);
    std::fs::write(&changed, lines.join("\n") + "\n").unwrap();
    let (code, out, _) = run(&["audit", "verify", "--export", s(&changed)], None);
    assert_eq!(code, Some(4), "{out}");
    assert!(
        out.starts_with("BROKEN at entry 2: the chain breaks at entry 2"),
        "{out}"
    );
    // Entry 2 rewritten, the chain, the end line and the header's checkpoint recomputed
    // to match: only the checkpoint's signature or a checkpoint kept elsewhere tells.
    let forged = dir.path().join("forged.jsonl");
    let mut out_lines = Vec::new();
    let mut header: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let mut prev = audit::unhex(header["prev_chain"].as_str().unwrap()).unwrap();
    let mut chains = std::collections::BTreeMap::new();
    for l in text.lines().skip(1) {
        let v: Value = serde_json::from_str(l).unwrap();
        if v.get("end").is_some() {
            let mut end = v;
            end["chain"] = json!(audit::hex(&prev));
            out_lines.push(end.to_string());
        } else if v.get("body_hash").is_some() {
            let seq = v["seq"].as_u64().unwrap();
            let bh = audit::unhex(v["body_hash"].as_str().unwrap()).unwrap();
            prev = audit::link(&prev, seq, &bh);
            chains.insert(seq, prev);
            out_lines.push(
                json!({"seq": seq, "body_hash": v["body_hash"], "chain": audit::hex(&prev)})
                    .to_string(),
            );
        } else {
            let mut e = Sealed {
                line: l.as_bytes().to_vec(),
            }
            .entry()
            .unwrap();
            if e.seq == 2 {
                e.actor = "someone-else".into();
            }
            let (sealed, c) = seal(&prev, &e).unwrap();
            prev = c;
            chains.insert(e.seq, c);
            out_lines.push(String::from_utf8(sealed.line).unwrap());
        }
    }
    let cp_seq = header["checkpoint"]["seq"].as_u64().unwrap();
    assert_eq!(cp_seq, c1);
    header["checkpoint"]["chain"] = json!(audit::hex(&chains[&cp_seq]));
    out_lines.insert(0, header.to_string());
    std::fs::write(&forged, out_lines.join("\n") + "\n").unwrap();
    let (code, out, _) = run(&["audit", "verify", "--export", s(&forged)], None);
    assert_eq!(code, Some(0), "nothing in the file can tell: {out}");
    let (code, out, _) = run(
        &[
            "audit",
            "verify",
            "--export",
            s(&forged),
            "--checkpoint-key",
            pubkey,
        ],
        None,
    );
    assert_eq!(code, Some(4), "{out}");
    assert!(
        out.starts_with(&format!(
            "BROKEN at entry {c1}: the checkpoint at entry {c1} is not authentic"
        )),
        "{out}"
    );
    let (code, out, _) = run(
        &[
            "audit",
            "verify",
            "--export",
            s(&forged),
            "--checkpoints",
            s(&cpfile),
        ],
        None,
    );
    assert_eq!(
        code,
        Some(4),
        "the checkpoint kept elsewhere is not shadowed by the file's own: {out}"
    );
    assert!(
        out.starts_with(&format!(
            "BROKEN at entry {c1}: the chain at entry {c1} differs from the checkpoint"
        )),
        "{out}"
    );

    let cut_short = dir.path().join("cut.jsonl");
    let original: Vec<&str> = text.lines().collect();
    std::fs::write(&cut_short, original[..original.len() - 1].join("\n") + "\n").unwrap();
    let (code, out, _) = run(&["audit", "verify", "--export", s(&cut_short)], None);
    assert_eq!(code, Some(4), "{out}");
    assert!(
        out.contains("without its end line: it was cut short"),
        "{out}"
    );

    // Last, the server's own database cut back with all its checkpoints deleted:
    // `--config` compares the configured checkpoint file by default.
    tamper(&db, |kv| {
        cut(kv, true);
        Ok(())
    });
    let (code, out, _) = run(&["audit", "verify", "--config", s(&config)], None);
    assert_eq!(code, Some(4), "{out}");
    assert!(
        out.starts_with(&format!(
            "BROKEN at entry {}: a checkpoint covers entries up to {n}",
            m + 1
        )),
        "{out}"
    );
}

#[tokio::test]
async fn export_and_subject_access_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let srv = start(&config);
    let w = srv
        .signal("woonstad", &marieke("W-1"), "huurachterstand")
        .await;
    let p = srv.signal("politie", &marieke("P-1"), "overlast").await;
    let other = srv.signal("ggz-noord", &johan("G-1"), "zorgmijding").await;
    let regie = srv.token(Role::Coordinator, "gemeente", "regie");
    let (_, list) = srv
        .get(&format!("/v1/networks/{NOORD}/matches"), &regie)
        .await;
    let handle = list["matches"][0]["handle"].as_str().unwrap().to_string();
    assert_eq!(list["matches"].as_array().unwrap().len(), 1, "{list}");
    let (st, _) = srv.get(&format!("/v1/matches/{handle}"), &regie).await;
    assert_eq!(st, 200);
    let officer = srv.officer();
    let ca = [
        "--server",
        &srv.base,
        "--ca-cert",
        "keys-example/tls-cert.dev.pem",
    ];
    let token_file = dir.path().join("officer.token");
    std::fs::write(&token_file, &officer).unwrap();

    // Export: a complete file, owner-only, nothing else left in the directory.
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let jsonl = out_dir.join("log.jsonl");
    let mut args = vec!["audit", "export", "--token-file", s(&token_file)];
    args.extend_from_slice(&ca);
    args.extend_from_slice(&["--output", s(&jsonl)]);
    let (code, _, err) = run(&args, None);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("exported ") && err.contains(" lines ("),
        "{err}"
    );
    let text = std::fs::read_to_string(&jsonl).unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["end"], true, "{text}");
    assert!(
        err.contains(&format!("{} entries", last["entries"])),
        "{err}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&jsonl).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (code, out, _) = run(&["audit", "verify", "--export", s(&jsonl)], None);
    assert_eq!(code, Some(0), "{out}");
    // With a filter, the other entries are stubs and the file still verifies.
    let mine = out_dir.join("mine.jsonl");
    let mut args = vec!["audit", "export", "--actor", "regie"];
    args.extend_from_slice(&ca);
    args.extend_from_slice(&["--output", s(&mine)]);
    let (code, _, err) = run(&args, Some(&officer));
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains(": 2 entries, "), "{err}");
    let (code, out, _) = run(&["audit", "verify", "--export", s(&mine)], None);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("entries checked: 2, stubs: "), "{out}");
    // CSV with a filter: only that actor's rows.
    let csv = out_dir.join("woonstad.csv");
    let mut args = vec![
        "audit",
        "export",
        "--format",
        "csv",
        "--actor",
        "woonstad-user",
    ];
    args.extend_from_slice(&ca);
    args.extend_from_slice(&["--output", s(&csv)]);
    let (code, _, err) = run(&args, Some(&officer));
    assert_eq!(code, Some(0), "{err}");
    let rows = std::fs::read_to_string(&csv).unwrap();
    let mut r = rows.lines();
    assert!(r.next().unwrap().starts_with("seq,time,action"));
    let body: Vec<&str> = r.collect();
    assert_eq!(body.len(), 1, "{rows}");
    assert!(body.iter().all(|l| l.contains(",woonstad-user,")), "{rows}");
    assert!(err.contains("1 rows"), "{err}");
    // Refusals: the problem is shown, and no file (partial or not) is left.
    let refused = out_dir.join("refused.jsonl");
    let partner = srv.token(Role::Partner, "woonstad", "woonstad-user");
    for (token, status) in [(partner.as_str(), "403"), ("not-a-token", "401")] {
        let mut args = vec!["audit", "export"];
        args.extend_from_slice(&ca);
        args.extend_from_slice(&["--output", s(&refused)]);
        let (code, _, err) = run(&args, Some(token));
        assert_eq!(code, Some(1), "{err}");
        assert!(
            err.contains(&format!("the server refused the export: {status} ")) && err.contains('['),
            "{err}"
        );
    }
    let mut args = vec!["audit", "export", "--from", "yesterday"];
    args.extend_from_slice(&ca);
    args.extend_from_slice(&["--output", s(&refused)]);
    let (code, _, err) = run(&args, Some(&officer));
    assert_eq!(code, Some(1));
    assert!(
        err.contains("400 Bad Request") && err.contains("from must be"),
        "{err}"
    );
    let mut args = vec!["audit", "export"];
    args.extend_from_slice(&ca);
    let nowhere = out_dir.join("no-such-dir").join("log.jsonl");
    args.extend_from_slice(&["--output", s(&nowhere)]);
    let (code, _, err) = run(&args, Some(&officer));
    assert_eq!(code, Some(1));
    assert!(
        err.contains("cannot write") && err.contains("no-such-dir"),
        "{err}"
    );
    let mut left: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["log.jsonl", "mine.jsonl", "woonstad.csv"]);

    // Subject access for Marieke, given on the command line: her two signals, the
    // match and the accesses; nothing of Johan; no fields, no pseudonyms.
    let subject_args = |extra: &[&str]| {
        let mut a = vec![
            "audit",
            "subject-access",
            "--key",
            "keys-example/domain-key.dev.toml",
            "--token-file",
            s(&token_file),
        ];
        a.extend_from_slice(&ca);
        a.extend_from_slice(extra);
        a.iter().map(|x| x.to_string()).collect::<Vec<_>>()
    };
    let fields = [
        "--bsn",
        "123456782",
        "--given-names",
        "Marieke",
        "--prefix",
        "de",
        "--family-name",
        "Vries",
        "--birth-date",
        "1985-03-07",
        "--postcode",
        "1011AB",
        "--house-number",
        "12",
    ];
    let a = subject_args(&fields);
    let (code, out, err) = run(&a.iter().map(String::as_str).collect::<Vec<_>>(), None);
    assert_eq!(code, Some(0), "{err}");
    for want in [
        w.as_str(),
        p.as_str(),
        handle.as_str(),
        "Woonstad (woningcorporatie)",
        "Politie basisteam Noord",
        "huurachterstand",
        "overlast",
        "Signals on this person (2):",
        "Matches these signals are or were in (1):",
        "woonstad-user",
        "regie",
        "create",
        "success",
    ] {
        assert!(out.contains(want), "{want:?} missing from:\n{out}");
    }
    let key = read_key_file(&keys_dir().join("domain-key.dev.toml")).unwrap();
    let keys = pseudonymise(&key, &marieke("X"), Date::new(2026, 1, 1).unwrap()).unwrap();
    for pseudonym in keys.person.iter().chain(keys.household.iter()) {
        let wire = pseudonym.to_wire();
        let secret = wire.split(':').nth(1).unwrap();
        assert!(!out.contains(secret) && !err.contains(secret), "{out}");
    }
    for never in [
        other.as_str(),
        "GGZ Noord",
        "zorgmijding",
        "123456782",
        "Marieke",
        "Vries",
        "1011AB",
        // The whole birth date: four digits alone may turn up in an id.
        "1985-03-07",
        "07-03-1985",
    ] {
        assert!(!out.contains(never), "{never:?} printed:\n{out}");
    }
    // The answer to a file instead: owner-only, the same text.
    let answer = dir.path().join("answer.txt");
    let mut with_output = fields.to_vec();
    with_output.extend_from_slice(&["--output", s(&answer)]);
    let a = subject_args(&with_output);
    let (code, printed, err) = run(&a.iter().map(String::as_str).collect::<Vec<_>>(), None);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        printed.is_empty() && err.contains("wrote the answer to"),
        "{err}"
    );
    let written = std::fs::read_to_string(&answer).unwrap();
    assert!(written.contains("Signals on this person (2):"), "{written}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&answer).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // The same person from a one-row file, answered as JSON.
    let one = dir.path().join("one.csv");
    std::fs::write(
        &one,
        "reference;bsn;given_names;prefix;family_name;birth_date;postcode;house_number\n\
         DSAR-1;123456782;Marieke;de;Vries;07-03-1985;1011 AB;12\n",
    )
    .unwrap();
    let a = subject_args(&["--input", s(&one), "--json"]);
    let (code, out, err) = run(&a.iter().map(String::as_str).collect::<Vec<_>>(), None);
    assert_eq!(code, Some(0), "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let mut ids: Vec<&str> = v["signals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut want = vec![w.as_str(), p.as_str()];
    want.sort();
    assert_eq!(ids, want);
    assert!(!v["accesses"].as_array().unwrap().is_empty());

    // Bad input: nothing is sent (the log has no further subject access), the reasons are
    // printed without the values.
    let asked = |srv: &Server| {
        let officer = officer.clone();
        let base = srv.base.clone();
        async move {
            let r = client()
                .get(format!(
                    "{base}/v1/audit/entries?action=subject_access&limit=1000"
                ))
                .bearer_auth(&officer)
                .send()
                .await
                .unwrap();
            let v: Value = r.json().await.unwrap();
            v["entries"].as_array().unwrap().len()
        }
    };
    let before = asked(&srv).await;
    assert_eq!(before, 3, "the three requests above");
    let two = dir.path().join("two.csv");
    std::fs::write(
        &two,
        "reference,bsn,given_names,family_name,birth_date\n\
         A-1,123456782,Marieke,Vries,1985-03-07\n\
         A-2,111222333,Johan,Bakker,1970-01-01\n",
    )
    .unwrap();
    let a = subject_args(&["--input", s(&two)]);
    let (code, out, err) = run(&a.iter().map(String::as_str).collect::<Vec<_>>(), None);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains("holds 2 rows") && err.contains("nothing was sent"),
        "{err}"
    );
    assert!(
        !err.contains("Marieke") && !err.contains("123456782"),
        "{err}"
    );
    let mut bad = fields;
    bad[1] = "123456783";
    let a = subject_args(&bad);
    let (code, out, err) = run(&a.iter().map(String::as_str).collect::<Vec<_>>(), None);
    assert_eq!(code, Some(3), "{out}{err}");
    assert!(
        err.contains("--bsn: ") && err.contains("nothing was sent"),
        "{err}"
    );
    assert!(!err.contains("123456783") && out.is_empty(), "{err}");
    let bad_row = dir.path().join("bad.csv");
    std::fs::write(
        &bad_row,
        "reference,bsn,given_names,family_name,birth_date\nA-1,123456783,Marieke,Vries,1985-03-07\n",
    )
    .unwrap();
    let a = subject_args(&["--input", s(&bad_row)]);
    let (code, _, err) = run(&a.iter().map(String::as_str).collect::<Vec<_>>(), None);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("line 2: bsn: "), "{err}");
    assert!(!err.contains("123456783"), "{err}");
    assert_eq!(asked(&srv).await, before, "nothing was sent");

    // Checkpoint on demand, appended to a file kept elsewhere.
    let kept = dir.path().join("kept.jsonl");
    let mut args = vec!["audit", "checkpoint", "--append", s(&kept)];
    args.extend_from_slice(&ca);
    let (code, out, err) = run(&args, Some(&officer));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with("new checkpoint of the access log: entries 1 to "),
        "{out}"
    );
    assert!(out.contains("signed"), "{out}");
    assert_eq!(std::fs::read_to_string(&kept).unwrap().lines().count(), 1);
    srv.stop().await;
    let (code, out, _) = run(
        &[
            "audit",
            "verify",
            "--config",
            s(&config),
            "--checkpoints",
            s(&kept),
        ],
        None,
    );
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn verify_refuses_what_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    let (code, _, err) = run(&["audit", "verify", "--data", s(&missing)], None);
    assert_eq!(code, Some(1));
    assert!(err.contains("does not exist"), "{err}");
    assert!(!missing.exists(), "no database was created");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (code, _, err) = run(&["audit", "verify", "--data", s(&empty)], None);
    assert_eq!(code, Some(1));
    assert!(err.contains("holds no samenloop database"), "{err}");
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);

    let (code, _, err) = run(
        &[
            "audit",
            "verify",
            "--export",
            s(&dir.path().join("none.jsonl")),
        ],
        None,
    );
    assert_eq!(code, Some(1));
    assert!(
        err.contains("none.jsonl") && err.contains("No such file"),
        "{err}"
    );
    let (code, _, err) = run(&["audit", "verify", "--export", s(dir.path())], None);
    assert_eq!(code, Some(1));
    assert!(err.contains("is a directory"), "{err}");
    let csv = dir.path().join("log.csv");
    std::fs::write(&csv, "seq,time,action\n1,2026-01-01T00:00:00.000Z,read\n").unwrap();
    let (code, _, err) = run(&["audit", "verify", "--export", s(&csv)], None);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("CSV export, which cannot be verified"),
        "{err}"
    );
    let junk = dir.path().join("junk.jsonl");
    std::fs::write(&junk, "hello\n").unwrap();
    let (code, out, _) = run(&["audit", "verify", "--export", s(&junk)], None);
    assert_eq!(code, Some(4));
    assert!(
        out.contains("line 1 is not the header of an access-log export"),
        "{out}"
    );
    let (code, _, err) = run(
        &[
            "audit",
            "verify",
            "--export",
            s(&junk),
            "--checkpoint-key",
            s(&csv),
        ],
        None,
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("not an Ed25519 public key"), "{err}");

    let (code, _, _) = run(&["audit", "verify"], None);
    assert_eq!(code, Some(2));
    let (code, _, err) = run(&["audit", "export", "--output", "x"], None);
    assert_eq!(code, Some(1));
    assert!(err.contains("no token"), "{err}");
    let (code, _, err) = run(
        &[
            "audit",
            "subject-access",
            "--key",
            "keys-example/domain-key.dev.toml",
        ],
        Some("t"),
    );
    assert_eq!(code, Some(2), "{err}");
}

#[tokio::test]
async fn retention_run_lists_then_does_and_refuses_a_non_admin() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let server = start(&config);
    let id = server
        .signal("woonstad", &marieke("RET-1"), "schulden")
        .await;
    let (status, _) = server
        .post(
            &format!("/v1/signals/{id}/withdraw"),
            &server.token(Role::Partner, "woonstad", "woonstad-user"),
            &json!({"reason": "concern_over"}),
        )
        .await;
    assert_eq!(status, 200);
    let admin = server.token(Role::Admin, "gemeente", "beheer");
    let base = ["--server", server.base.as_str(), "--ca-cert"];
    let ca = keys_dir().join("tls-cert.dev.pem");
    let args = |extra: &[&str]| -> Vec<String> {
        ["retention", "run"]
            .iter()
            .chain(base.iter())
            .map(|s| s.to_string())
            .chain([ca.display().to_string()])
            .chain(extra.iter().map(|s| s.to_string()))
            .collect()
    };
    // Within its archive period (five years) nothing is due.
    let a = args(&["--dry-run"]);
    let (code, out, err) = run(
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
        Some(&admin),
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("dry run at "), "{out}");
    assert!(out.contains("0 signals would be archived"), "{out}");
    let a = args(&["--json"]);
    let (code, out, err) = run(
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
        Some(&admin),
    );
    assert_eq!(code, Some(0), "{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (&r["dry_run"], &r["erased"]),
        (&json!(false), &json!(0)),
        "{r}"
    );
    // A privacy officer may not run it: a clear refusal, exit 1.
    let a = args(&[]);
    let (code, _, err) = run(
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
        Some(&server.officer()),
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("403") && err.contains("forbidden-role"),
        "{err}"
    );
    server.stop().await;
}

#[tokio::test]
async fn admin_commands_keep_the_directory_of_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let server = start(&config);
    let admin = server.token(Role::Admin, "gemeente", "beheer");
    let ca = keys_dir().join("tls-cert.dev.pem").display().to_string();
    let cli = |args: &[&str], token: &str| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--server", server.base.as_str(), "--ca-cert", ca.as_str()]);
        run(&all, Some(token))
    };

    let (code, out, err) = cli(
        &[
            "admin",
            "org-add",
            "--id",
            "wijkteam-oost",
            "--name",
            "Wijkteam Oost",
            "--network",
            NOORD,
        ],
        &admin,
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["id"],
        "wijkteam-oost"
    );
    server
        .signal("wijkteam-oost", &marieke("OOST-1"), "schulden")
        .await;
    let (code, _, err) = cli(&["admin", "org-suspend", "wijkteam-oost"], &admin);
    assert_eq!(code, Some(0), "{err}");
    let key = read_key_file(&keys_dir().join("domain-key.dev.toml")).unwrap();
    let keys = pseudonymise(&key, &marieke("OOST-2"), Date::new(2026, 1, 1).unwrap()).unwrap();
    let body = json!({"network": NOORD, "contact": {"name": "Team"},
                      "subject": serde_json::from_str::<Value>(&keys.to_json()).unwrap()});
    let oost = server.token(Role::Partner, "wijkteam-oost", "oost-user");
    let (status, v) = server.post("/v1/signals", &oost, &body).await;
    assert_eq!(
        (status, v["type"].as_str()),
        (403, Some("urn:samenloop:problem:organisation-suspended"))
    );
    let (code, out, _) = cli(&["admin", "orgs"], &admin);
    assert_eq!(code, Some(0));
    let orgs: Value = serde_json::from_str(&out).unwrap();
    assert!(
        orgs["organisations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["id"] == "wijkteam-oost" && o["suspended"] == true)
    );

    // Network settings: a clear refusal for a bad value or no change at all.
    let (code, _, err) = cli(
        &["admin", "network-set", NOORD, "--match-threshold", "1"],
        &admin,
    );
    assert_eq!(code, Some(1));
    assert!(
        err.contains("422") && err.contains("/match_threshold"),
        "{err}"
    );
    let (code, _, err) = cli(&["admin", "network-set", NOORD], &admin);
    assert_eq!(code, Some(1));
    assert!(err.contains("nothing to change"), "{err}");
    let (code, out, err) = cli(
        &[
            "admin",
            "network-set",
            NOORD,
            "--match-threshold",
            "3",
            "--decide-within-days",
            "15",
        ],
        &admin,
    );
    assert_eq!(code, Some(0), "{err}");
    let n: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (&n["match_threshold"], &n["decide_within_days"]),
        (&json!(3), &json!(15))
    );

    // Excluded addresses from a pseudonymise output: every row, labelled by reference.
    let rows = dir.path().join("instellingen.jsonl");
    let mut text = String::new();
    for (r, number) in [("opvang-de-haven", "5"), ("pi-noord", "120")] {
        let s = SubjectFields {
            reference: r.into(),
            postcode: "1011 AB".into(),
            house_number: number.into(),
            ..marieke("x")
        };
        text.push_str(
            &pseudonymise(&key, &s, Date::new(2026, 1, 1).unwrap())
                .unwrap()
                .to_json(),
        );
        text.push('\n');
    }
    std::fs::write(&rows, text).unwrap();
    let (code, out, err) = cli(&["admin", "excluded-add", "--from", s(&rows)], &admin);
    assert_eq!(code, Some(0), "{err}");
    let added: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(added["added"].as_array().unwrap().len(), 2, "{added}");
    let (code, _, err) = cli(&["admin", "excluded-add", "--from", s(&rows)], &admin);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("entry 1 was not added") && err.contains("409"),
        "{err}"
    );
    let id = added["added"][0]["id"].as_str().unwrap();
    let (code, _, err) = cli(&["admin", "excluded-remove", id], &admin);
    assert_eq!(code, Some(0), "{err}");
    let (_, out, _) = cli(&["admin", "excluded"], &admin);
    let list: Value = serde_json::from_str(&out).unwrap();
    let labels: Vec<&str> = list["excluded_addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, vec!["pi-noord"]);

    // Domain key ids: open a transition window, close the old one.
    let (code, out, err) = cli(&["admin", "key-add", "regio-2027-1"], &admin);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["current"],
        true
    );
    let (code, _, err) = cli(&["admin", "key-retire", "regio-2027-1"], &admin);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("409") && err.contains("invalid-transition"),
        "{err}"
    );
    let (code, out, err) = cli(&["admin", "key-retire", "dev-2026"], &admin);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["state"],
        "retired"
    );
    let (code, out, _) = cli(&["admin", "key-ids"], &admin);
    assert_eq!(code, Some(0));
    let ids: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(ids["key_ids"].as_array().unwrap().len(), 2);

    // Not an admin: refused, exit 1.
    let (code, _, err) = cli(&["admin", "orgs"], &server.officer());
    assert_eq!(code, Some(1));
    assert!(
        err.contains("403") && err.contains("forbidden-role"),
        "{err}"
    );
    server.stop().await;
}
