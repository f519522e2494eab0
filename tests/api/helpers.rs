//! `spawn_app()` and friends.

use samenloop::config::{Config, development_config_path};
use samenloop::http::auth::{Claims, Role, mint};
use samenloop::http::startup::Application;
use samenloop::pseudonym::keyfile::read_key_file;
use samenloop::pseudonym::{Date, DomainKey, PersonFields, SubjectFields, pseudonymise};
use serde_json::{Value, json};
use std::path::PathBuf;

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub cfg: Config,
    pub domain_key: DomainKey,
    pub _data: tempfile::TempDir,
    /// Seconds added to the system time by the server's clock (see [`TestApp::advance`]).
    pub clock_offset: std::sync::Arc<std::sync::atomic::AtomicI64>,
    /// When not 0: the server's clock stands still at this time (see [`TestApp::freeze`]).
    pub frozen: std::sync::Arc<std::sync::atomic::AtomicI64>,
    handle: samenloop::http::startup::Stopper,
    thread: Option<std::thread::JoinHandle<()>>,
}

pub fn dev_config(data_dir: PathBuf) -> Config {
    let mut cfg = Config::load(&development_config_path()).expect("dev config");
    cfg.server.listen = "127.0.0.1:0".parse().unwrap();
    cfg.server.data_dir = data_dir;
    cfg.server.workers = Some(2);
    cfg.server.cache_mib = 16;
    cfg
}

/// A file of `keys-example/` (development keys and certificates).
pub fn dev_file(name: &str) -> Vec<u8> {
    std::fs::read(development_config_path().parent().unwrap().join(name)).unwrap()
}

/// A new HTTPS client (its own connections) that trusts the development certificate.
pub fn client() -> reqwest::Client {
    let pem = dev_file("tls-cert.dev.pem");
    let cert = reqwest::Certificate::from_pem(&pem).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(cert)
        .tls_built_in_root_certs(false)
        .https_only(true)
        .build()
        .unwrap()
}

fn start(
    cfg: Config,
    offset: std::sync::Arc<std::sync::atomic::AtomicI64>,
    frozen: std::sync::Arc<std::sync::atomic::AtomicI64>,
) -> (
    u16,
    samenloop::http::startup::Stopper,
    std::thread::JoinHandle<()>,
) {
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let clock: samenloop::http::Clock = std::sync::Arc::new(move || {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs() as i64;
                match frozen.load(std::sync::atomic::Ordering::Relaxed) {
                    0 => now + offset.load(std::sync::atomic::Ordering::Relaxed),
                    f => f,
                }
            });
            let app = Application::build_with_clock(cfg, clock).expect("server builds");
            tx.send((app.port(), app.stopper())).unwrap();
            app.run_until_stopped().await.unwrap();
        })
    });
    let (port, handle) = rx.recv().expect("server started");
    (port, handle, thread)
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = dev_config(data.path().join("db"));
    tweak(&mut cfg);
    let clock_offset = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    let frozen = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    let (port, handle, thread) = start(cfg.clone(), clock_offset.clone(), frozen.clone());
    let domain_key = read_key_file(
        &development_config_path()
            .parent()
            .unwrap()
            .join("domain-key.dev.toml"),
    )
    .unwrap();
    TestApp {
        base: format!("https://localhost:{port}"),
        client: client(),
        cfg,
        domain_key,
        _data: data,
        clock_offset,
        frozen,
        handle,
        thread: Some(thread),
    }
}

impl TestApp {
    /// Moves the server's clock forward by `secs` seconds (tokens keep real time).
    #[allow(dead_code)]
    pub fn advance(&self, secs: i64) {
        use std::sync::atomic::Ordering::Relaxed;
        if self.frozen.load(Relaxed) != 0 {
            self.frozen.fetch_add(secs, Relaxed);
        } else {
            self.clock_offset.fetch_add(secs, Relaxed);
        }
    }

    /// Stops the server's clock at its current second: from now on only
    /// [`TestApp::advance`] moves it (for tests of exact moments).
    #[allow(dead_code)]
    pub fn freeze(&self) {
        self.frozen
            .store(self.now(), std::sync::atomic::Ordering::Relaxed);
    }

    /// The server's clock now (unix seconds): system time plus what [`TestApp::advance`]
    /// added, or the frozen time.
    #[allow(dead_code)]
    pub fn now(&self) -> i64 {
        use std::sync::atomic::Ordering::Relaxed;
        match self.frozen.load(Relaxed) {
            0 => {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs() as i64
                    + self.clock_offset.load(Relaxed)
            }
            f => f,
        }
    }

    /// Stops the server gracefully and starts it again on the same database.
    pub async fn restart(&mut self) {
        self.stop_server().await;
        self.start_server();
    }

    /// Where the in-process server is in its life ([`Stopper::progress`]).
    ///
    /// [`Stopper::progress`]: samenloop::http::startup::Stopper::progress
    #[allow(dead_code)]
    pub fn server_progress(&self) -> &'static str {
        self.handle.progress()
    }

    /// Stops the server gracefully (the database stays; see [`TestApp::start_server`]).
    pub async fn stop_server(&mut self) {
        // Idle keep-alive connections would hold the graceful stop open until its timeout.
        self.client = client();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        // The graceful stop gives open requests 30 s; a stop that takes twice that hung.
        let stop = self.handle.stop(true);
        if tokio::time::timeout(std::time::Duration::from_secs(60), stop)
            .await
            .is_err()
        {
            panic!(
                "the in-process server did not stop within 60 s (it was {}); this process's threads: {}",
                self.handle.progress(),
                samenloop::load::server::threads(std::process::id())
            );
        }
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }

    /// With the server stopped: why a server on this configuration and database does
    /// not start (`None`: it would; then it is not left running).
    #[allow(dead_code)]
    pub fn start_error(&self) -> Option<String> {
        let cfg = self.cfg.clone();
        // On a thread of its own: the test's runtime cannot host another.
        std::thread::spawn(move || {
            actix_web::rt::System::new()
                .block_on(async move { Application::build(cfg).err().map(|e| e.to_string()) })
        })
        .join()
        .unwrap()
    }

    /// Starts the server again on the same database (after [`TestApp::stop_server`]).
    pub fn start_server(&mut self) {
        let (port, handle, thread) = start(
            self.cfg.clone(),
            self.clock_offset.clone(),
            self.frozen.clone(),
        );
        self.base = format!("https://localhost:{port}");
        self.handle = handle;
        self.thread = Some(thread);
    }

    /// Stops the server gracefully and returns every key and value of its database
    /// (all sled trees), read with the store code as a later start would.
    #[allow(dead_code)]
    pub async fn stop_and_dump(mut self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.stop_server().await;
        let store = samenloop::store::Store::open(
            &self.cfg.server.data_dir,
            16,
            &samenloop::index::engine::Policy::default(),
            self.now(),
        )
        .unwrap();
        store.dump().unwrap()
    }

    pub fn token(&self, role: Role, org: &str, networks: &[&str]) -> String {
        self.token_with(self.claims(role, org, &format!("{org}-user"), networks))
    }

    /// The claims of a token valid for ten minutes (real time) for subject `sub`.
    pub fn claims(&self, role: Role, org: &str, sub: &str, networks: &[&str]) -> Claims {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        Claims {
            sub: sub.into(),
            iss: self.cfg.auth.issuer.clone(),
            aud: self.cfg.auth.audience.clone(),
            exp: now + 600,
            nbf: now - 5,
            iat: now,
            org: org.into(),
            role,
            networks: networks.iter().map(|s| s.to_string()).collect(),
            obo: None,
            purpose: None,
        }
    }

    /// A token of `role` for `org` with its own subject `sub`.
    #[allow(dead_code)]
    pub fn token_as(&self, role: Role, org: &str, sub: &str, networks: &[&str]) -> String {
        self.token_with(self.claims(role, org, sub, networks))
    }

    /// A privacy officer (subject `sub`, organisation `gemeente`) of `networks`.
    #[allow(dead_code)]
    pub fn privacy_officer(&self, sub: &str, networks: &[&str]) -> String {
        self.token_as(Role::PrivacyOfficer, "gemeente", sub, networks)
    }

    /// The access-log entries the privacy officer with `token` sees for `query`
    /// (`GET /v1/audit/entries`, one page of at most 1000), in the order asked.
    #[allow(dead_code)]
    pub async fn audit_entries(&self, token: &str, query: &str) -> Vec<Value> {
        let sep = if query.is_empty() { "" } else { "&" };
        let resp = self
            .get(&format!("/v1/audit/entries?limit=1000{sep}{query}"), token)
            .await;
        assert_eq!(resp.status().as_u16(), 200, "audit entries {query}");
        let page: Value = resp.json().await.unwrap();
        assert!(
            page.get("next_cursor").is_none(),
            "more than one page: {query}"
        );
        page["entries"].as_array().unwrap().clone()
    }

    /// The text of `GET /v1/audit/export?query` for the privacy officer with `token`.
    #[allow(dead_code)]
    pub async fn audit_export(&self, token: &str, query: &str) -> String {
        let resp = self.get(&format!("/v1/audit/export?{query}"), token).await;
        assert_eq!(resp.status().as_u16(), 200, "audit export {query}");
        resp.text().await.unwrap()
    }

    pub fn token_with(&self, claims: Claims) -> String {
        mint(&self.cfg, Some("dev-es256"), &claims).unwrap()
    }

    pub fn partner(&self, org: &str) -> String {
        let nets: Vec<&str> = self
            .cfg
            .organisation(org)
            .unwrap()
            .networks
            .iter()
            .map(|s| s.as_str())
            .collect();
        self.token(Role::Partner, org, &nets)
    }

    pub fn coordinator(&self, network: &str) -> String {
        self.token(Role::Coordinator, "gemeente", &[network])
    }

    /// The wire key set of a subject, derived with the development domain key.
    pub fn keys(&self, s: SubjectFields) -> Value {
        let k = pseudonymise(&self.domain_key, &s, Date::new(2026, 1, 1).unwrap())
            .expect("valid subject");
        serde_json::from_str(&k.to_json()).unwrap()
    }

    pub fn signal(&self, network: &str, subject: SubjectFields) -> Value {
        json!({
            "network": network,
            "subject": self.keys(subject),
            "contact": { "name": "Wijkteam Noord", "phone": "+31 20 123 4567" },
        })
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        let resp = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.text().await.unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let h = self.handle.clone();
        drop(h.stop(false));
    }
}

pub fn person(reference: &str, given: &str, family: &str, birth: &str) -> SubjectFields {
    SubjectFields {
        reference: reference.into(),
        person: PersonFields {
            given_names: given.into(),
            family_name: family.into(),
            birth_date: birth.into(),
            ..Default::default()
        },
        ..Default::default()
    }
}

pub fn with_address(mut s: SubjectFields, postcode: &str, number: &str) -> SubjectFields {
    s.postcode = postcode.into();
    s.house_number = number.into();
    s
}

/// Asserts a problem+json answer with the given status and problem code; returns the body.
pub async fn expect_problem(resp: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(resp.status().as_u16(), status, "status");
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["type"],
        format!("urn:samenloop:problem:{code}"),
        "{body}"
    );
    assert_eq!(body["status"], status);
    body
}

/// A temporary directory holding a copy of the development index key file (epoch 0),
/// where a test writes the key files of rotations; point `domain.index_key_file` at
/// the returned path.
#[allow(dead_code)]
pub fn index_key_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index-key.dev.toml");
    std::fs::write(&path, dev_file("index-key.dev.toml")).unwrap();
    (dir, path)
}

/// Writes an index key file `name` in `dir` with key id `id` and a secret of `byte`s.
#[allow(dead_code)]
pub fn write_index_key(dir: &std::path::Path, name: &str, id: &str, byte: u8) {
    let secret: String = std::iter::repeat_n(format!("{byte:02x}"), 32).collect();
    std::fs::write(
        dir.join(name),
        format!(
            "# test index key\nformat = \"samenloop-index-key/1\"\nkey_id = \"{id}\"\nsecret = \"{secret}\"\n"
        ),
    )
    .unwrap();
}
