//! Building and running the HTTPS server.

use super::audit::{Audit, Record, request_id};
use super::auth::Verifier;
use super::error::ApiError;
use super::idle::IdleGuard;
use super::metrics::Metrics;
use super::routes::{
    admin, audit, deliveries, events, figures, followup, health, matches, signals,
};
use super::{AppState, Clock, State, system_clock};
use crate::config::Config;
use crate::index::IndexKey;
use crate::pseudonym::keyfile::read_secret_file;
use crate::store::{Store, Writer};
use actix_http::{ConnectionType, HttpService, Protocol};
use actix_service::{IntoServiceFactory, ServiceFactoryExt, map_config};
use actix_tls::accept::rustls_0_23::{Acceptor, TlsStream};
use actix_web::body::MessageBody;
use actix_web::dev::{
    AppConfig, Server, ServerHandle, Service, ServiceFactory, ServiceRequest, ServiceResponse,
};
use actix_web::http::header;
use actix_web::rt::net::TcpStream;
use actix_web::{App, HttpMessage, HttpResponse, web};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A configured file could not be used.
    #[error("{0}")]
    Setup(String),
    /// The store could not be opened.
    #[error("cannot open the database: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: String,
        /// OS error.
        source: std::io::Error,
    },
}

/// A built, not yet running server.
pub struct Application {
    port: u16,
    server: Server,
    state: State,
    shutdown: Arc<tokio::sync::watch::Sender<bool>>,
    writer_thread: Option<std::thread::JoinHandle<()>>,
    webhooks: Option<crate::alerts::webhook::Worker>,
    /// Where this server is in its life (see [`Stopper::progress`]).
    progress: Arc<AtomicU8>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

fn tls_config(cfg: &Config) -> Result<rustls::ServerConfig, StartError> {
    let cert_path = cfg.resolve(&cfg.server.tls_cert);
    let key_path = cfg.resolve(&cfg.server.tls_key);
    let cert_pem = std::fs::read(&cert_path)
        .map_err(|e| StartError::Setup(format!("server.tls_cert {}: {e}", cert_path.display())))?;
    let key_pem = std::fs::read(&key_path)
        .map_err(|e| StartError::Setup(format!("server.tls_key {}: {e}", key_path.display())))?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| StartError::Setup(format!("server.tls_cert {}: {e}", cert_path.display())))?;
    if certs.is_empty() {
        return Err(StartError::Setup(format!(
            "server.tls_cert {}: no certificate in the file",
            cert_path.display()
        )));
    }
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| StartError::Setup(format!("server.tls_key {}: {e}", key_path.display())))?
        .ok_or_else(|| {
            StartError::Setup(format!(
                "server.tls_key {}: no private key in the file",
                key_path.display()
            ))
        })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| StartError::Setup(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| StartError::Setup(format!("TLS certificate and key do not fit: {e}")))
}

/// Loads `K_index` from the configured key file.
pub fn load_index_key(cfg: &Config) -> Result<IndexKey, StartError> {
    let path = cfg.resolve(&cfg.domain.index_key_file);
    let (id, secret) = read_secret_file(&path, crate::pseudonym::keyfile::INDEX_KEY_FILE_FORMAT)
        .map_err(|e| StartError::Setup(format!("domain.index_key_file: {e}")))?;
    Ok(IndexKey::new(id.to_string(), *secret))
}

/// The directory of `domain.index_key_file`: the only place key files of later epochs
/// of the ring are read from.
pub fn index_key_dir(cfg: &Config) -> std::path::PathBuf {
    cfg.resolve(&cfg.domain.index_key_file)
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| std::path::PathBuf::from("."))
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

/// The routes and the metrics middleware.
fn app(
    state: State,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let metrics = state.metrics.clone();
    let audit_state = state.clone();
    App::new()
        .app_data(state)
        .wrap_fn(move |req, srv| {
            // The access log: one entry per request under /v1/ (see `http::audit`).
            let state = audit_state.clone();
            let audit = (state.cfg.audit.enabled && req.path().starts_with("/v1/")).then(|| {
                let a = Audit::new(Record {
                    request_id: request_id(),
                    client: req
                        .peer_addr()
                        .map(|a| a.ip().to_string())
                        .unwrap_or_else(|| "-".into()),
                    operation: format!(
                        "{} {}",
                        req.method(),
                        req.match_pattern().unwrap_or_else(|| "(no route)".into())
                    ),
                    read: req.method() == actix_web::http::Method::GET,
                    ..Record::default()
                });
                req.extensions_mut().insert(a.clone());
                a
            });
            let fut = srv.call(req);
            async move {
                let res = fut.await?;
                let Some(audit) = audit else {
                    return Ok(res.map_into_left_body());
                };
                let status = res.status().as_u16();
                let written = match audit.pending(&state, status) {
                    Some(entry) => crate::http::audit::append(&state, entry).await,
                    None => Ok(()),
                };
                let mut res = match written {
                    Ok(()) => res.map_into_left_body(),
                    // Not logged, not shown: the answer becomes the failure.
                    Err(e) => {
                        let (req, _) = res.into_parts();
                        ServiceResponse::new(req, HttpResponse::from_error(e)).map_into_right_body()
                    }
                };
                if let Some(id) = audit.request_id() {
                    if let Ok(v) = header::HeaderValue::from_str(&id) {
                        res.headers_mut()
                            .insert(header::HeaderName::from_static("x-request-id"), v);
                    }
                }
                Ok(res)
            }
        })
        .wrap_fn(move |req, srv| {
            let started = Instant::now();
            let route = req
                .match_pattern()
                .unwrap_or_else(|| "unmatched".to_string());
            let method = req.method().to_string();
            let metrics = metrics.clone();
            // A request that announces a body which the handler may not have read to the
            // end (an error answer, or a route that takes no body): the rest of the body
            // would still be in the connection, and actix would wait for it without any
            // timeout, so the connection is closed after the answer.
            let has_body = req
                .headers()
                .get(header::CONTENT_LENGTH)
                .is_some_and(|v| v.as_bytes() != b"0")
                || req.headers().contains_key(header::TRANSFER_ENCODING);
            let reads_body = req.method() == actix_web::http::Method::POST;
            let fut = srv.call(req);
            async move {
                let mut res = fut.await?;
                if has_body && (!reads_body || res.status().as_u16() >= 400) {
                    res.response_mut()
                        .head_mut()
                        .set_connection_type(ConnectionType::Close);
                }
                let status = res.status().as_u16();
                if let Some(e) = res.response().error() {
                    if let Some(api) = e.as_error::<ApiError>() {
                        metrics.problem(api.code());
                    }
                }
                metrics.request(&route, &method, status, started.elapsed().as_secs_f64());
                Ok(res)
            }
        })
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics))
        .route("/v1/signals", web::post().to(signals::submit))
        .route("/v1/signals", web::get().to(signals::lookup))
        .route("/v1/signals/batch", web::post().to(signals::batch))
        .route("/v1/signals/{id}", web::get().to(signals::get))
        .route("/v1/signals/{id}/renew", web::post().to(signals::renew))
        .route(
            "/v1/signals/{id}/withdraw",
            web::post().to(signals::withdraw),
        )
        .route(
            "/v1/networks/{network}/matches",
            web::get().to(matches::list),
        )
        .route("/v1/matches/{handle}", web::get().to(matches::get))
        .route(
            "/v1/matches/{handle}/follow-up",
            web::post().to(followup::act),
        )
        .route(
            "/v1/networks/{network}/events",
            web::get().to(events::events),
        )
        .route(
            "/v1/networks/{network}/figures",
            web::get().to(figures::get),
        )
        .route(
            "/v1/networks/{network}/deliveries",
            web::get().to(deliveries::list),
        )
        .route(
            "/v1/networks/{network}/deliveries/{event_id}/retry",
            web::post().to(deliveries::retry),
        )
        .route("/v1/audit/entries", web::get().to(audit::entries))
        .route("/v1/audit/export", web::get().to(audit::export))
        .route("/v1/audit/views/users", web::get().to(audit::per_user))
        .route("/v1/audit/views/days", web::get().to(audit::per_day))
        .route("/v1/audit/anomalies", web::get().to(audit::anomalies))
        .route(
            "/v1/audit/subject-access",
            web::post().to(audit::subject_access),
        )
        .route("/v1/audit/checkpoints", web::get().to(audit::checkpoints))
        .route(
            "/v1/audit/checkpoints",
            web::post().to(audit::make_checkpoint),
        )
        .route("/v1/audit/verify", web::get().to(audit::verify))
        .route(
            "/v1/admin/retention/run",
            web::post().to(admin::retention_run),
        )
        .route(
            "/v1/admin/organisations",
            web::get().to(admin::organisations),
        )
        .route(
            "/v1/admin/organisations",
            web::post().to(admin::add_organisation),
        )
        .route(
            "/v1/admin/organisations/{id}",
            web::patch().to(admin::change_organisation),
        )
        .route("/v1/admin/networks", web::get().to(admin::networks))
        .route(
            "/v1/admin/networks/{id}",
            web::patch().to(admin::change_network),
        )
        .route(
            "/v1/admin/excluded-addresses",
            web::get().to(admin::excluded),
        )
        .route(
            "/v1/admin/excluded-addresses",
            web::post().to(admin::add_excluded),
        )
        .route(
            "/v1/admin/excluded-addresses/{id}",
            web::delete().to(admin::remove_excluded),
        )
        .route("/v1/admin/domain-keys", web::get().to(admin::key_ids))
        .route("/v1/admin/domain-keys", web::post().to(admin::add_key_id))
        .route(
            "/v1/admin/domain-keys/{id}/retire",
            web::post().to(admin::retire_key_id),
        )
        .route(
            "/v1/admin/index-key/rotation",
            web::post().to(admin::rotation_start),
        )
        .route(
            "/v1/admin/index-key/rotation",
            web::get().to(admin::rotation_get),
        )
        .default_service(web::to(not_found))
}

impl Application {
    /// Opens the store, loads the keys and binds the listener (port 0 picks a free port).
    pub fn build(cfg: Config) -> Result<Application, StartError> {
        Self::build_with_clock(cfg, system_clock())
    }

    /// As [`Application::build`], with a given clock.
    pub fn build_with_clock(cfg: Config, clock: Clock) -> Result<Application, StartError> {
        let tls = tls_config(&cfg)?;
        let verifier = Verifier::from_config(&cfg).map_err(StartError::Setup)?;
        let first_key = load_index_key(&cfg)?;
        let checkpoints = super::CheckpointKeys::from_config(&cfg).map_err(StartError::Setup)?;
        if !cfg.audit.enabled {
            eprintln!(
                "samenloop: WARNING: the access log is switched off (audit.enabled = false): \
                 accesses are not logged. Only for measuring its cost; never with real data."
            );
        }
        let webhook_targets = crate::alerts::webhook::targets(&cfg).map_err(StartError::Setup)?;
        let data_dir = cfg.resolve(&cfg.server.data_dir);
        std::fs::create_dir_all(&data_dir).map_err(|e| {
            StartError::Setup(format!("server.data_dir {}: {e}", data_dir.display()))
        })?;
        let key_dir = index_key_dir(&cfg);
        // The file's rules serve the rebuild of the posting lists (which takes every key:
        // exclusions apply at lookup); the stored directory is read once the store is open.
        let (store, _) = Store::open_with_ring(
            &data_dir,
            cfg.server.cache_mib,
            clock(),
            |state| {
                crate::store::rotation::load_ring(state, first_key, &key_dir, |p| {
                    read_secret_file(p, crate::pseudonym::keyfile::INDEX_KEY_FILE_FORMAT)
                        .map(|(id, secret)| (id.to_string(), secret))
                        .map_err(|e| e.to_string())
                })
            },
            |ring| crate::directory::policy(&cfg, &cfg.networks, &[], ring),
        )
        .map_err(|e| match e {
            crate::store::StoreError::Keys(m) => StartError::Setup(format!("index key ring: {m}")),
            e => StartError::Store(e),
        })?;
        let directory = crate::directory::Directory::load(&cfg, &store, &store.ring())
            .map_err(|e| StartError::Setup(format!("the stored directory: {e}")))?;
        let (writer, writer_thread) = Writer::start(
            store.clone(),
            cfg.limits.min_free_disk_mib.saturating_mul(1 << 20),
        )?;
        let addr = cfg.server.listen.to_string();
        let listener = TcpListener::bind(cfg.server.listen).map_err(|source| StartError::Bind {
            addr: addr.clone(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartError::Bind { addr, source })?
            .port();
        let workers = cfg.server.workers.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        });
        let limits = cfg.limits.clone();
        let shutdown = Arc::new(tokio::sync::watch::channel(false).0);
        let state = web::Data::new(AppState {
            cfg: Arc::new(cfg),
            store,
            writer,
            verifier,
            directory: std::sync::RwLock::new(Arc::new(directory)),
            admin_lock: tokio::sync::Mutex::new(()),
            metrics: Arc::new(Metrics::default()),
            buckets: Mutex::new(Default::default()),
            clock,
            shutdown: shutdown.clone(),
            checkpoints: Arc::new(checkpoints),
        });
        let mut tls = tls;
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let tls = Arc::new(tls);
        let local = listener.local_addr().map_err(|source| StartError::Bind {
            addr: "listener".into(),
            source,
        })?;
        let secs = std::time::Duration::from_secs;
        let request_timeout = secs(limits.client_request_timeout_secs);
        let idle = secs(limits.client_idle_timeout_secs);
        let keep_alive = secs(limits.keep_alive_secs);
        let app_state = state.clone();
        let webhooks = crate::alerts::webhook::Worker::start(state.clone(), webhook_targets)
            .map_err(|e| StartError::Setup(format!("cannot start the webhook worker: {e}")))?;
        // The pipeline of `HttpServer::listen_rustls_0_23`, with every TLS connection
        // wrapped in an [`IdleGuard`] (see `idle.rs` for why).
        let server = actix_server::Server::build()
            .workers(workers)
            .shutdown_timeout(30)
            .listen("samenloop-https", listener, move || {
                let app = app(app_state.clone());
                let mut acceptor = Acceptor::new((*tls).clone());
                acceptor.set_handshake_timeout(request_timeout.min(secs(3)));
                let http = HttpService::build()
                    .keep_alive(keep_alive)
                    .client_request_timeout(request_timeout)
                    .client_disconnect_timeout(secs(5))
                    .local_addr(local)
                    .finish(map_config(
                        app.into_factory()
                            .map_err(|e: actix_web::Error| e.error_response()),
                        // Only for URL generation and `ConnectionInfo` fallbacks, which
                        // the routes do not use (actix's own constructor is private).
                        |_| AppConfig::default(),
                    ));
                acceptor
                    .map_init_err(|_| ())
                    .map_err(|_| ())
                    .and_then(move |io: TlsStream<TcpStream>| async move {
                        let proto = match io.get_ref().1.alpn_protocol() {
                            Some(p) if p == b"h2" => Protocol::Http2,
                            _ => Protocol::Http1,
                        };
                        let peer = io.get_ref().0.peer_addr().ok();
                        Ok::<_, ()>((IdleGuard::new(io, idle), proto, peer))
                    })
                    .and_then(http.map_err(|_| ()))
            })
            .map_err(|source| StartError::Bind {
                addr: "listener".into(),
                source,
            })?
            .run();
        Ok(Application {
            port,
            server,
            state,
            shutdown,
            writer_thread: Some(writer_thread),
            webhooks,
            progress: Arc::new(AtomicU8::new(0)),
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the server gracefully.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// A handle that ends the event streams and background jobs first and then stops the
    /// server (an open stream would otherwise hold a graceful stop for its 30 s timeout).
    pub fn stopper(&self) -> Stopper {
        Stopper {
            handle: self.server.handle(),
            shutdown: self.shutdown.clone(),
            progress: self.progress.clone(),
        }
    }

    /// Runs until stopped (SIGINT/SIGTERM or [`ServerHandle::stop`]), then flushes the store
    /// and waits (up to 10 s) for the writer thread to finish its queue. The background
    /// jobs (escalation of overdue follow-ups) run meanwhile.
    pub async fn run_until_stopped(mut self) -> std::io::Result<()> {
        crate::alerts::escalation::spawn(self.state.clone());
        super::audit::spawn_checkpoints(self.state.clone());
        super::retention::spawn(self.state.clone());
        super::rotation::spawn(self.state.clone());
        spawn_signal_listener(self.shutdown.clone(), self.server.handle());
        let progress = self.progress.clone();
        let enter = move |stage: stopping::Stage| {
            progress.store(stage as u8, Ordering::Relaxed);
            stopping::enter(stage);
        };
        self.progress.store(SERVING, Ordering::Relaxed);
        let result = self.server.await;
        stopping::begin(stopping::Stage::Jobs);
        enter(stopping::Stage::Jobs);
        // However the server stopped, the background jobs end and drop their state.
        self.shutdown.send_replace(true);
        // The worker holds a handle on the writer: stop it before waiting for the writer.
        if let Some(w) = self.webhooks.take() {
            enter(stopping::Stage::Webhooks);
            w.stop().await;
        }
        enter(stopping::Stage::Flush);
        let _ = self.state.store.flush();
        let thread = self.writer_thread.take();
        drop(self.state);
        if let Some(t) = thread {
            enter(stopping::Stage::Writer);
            let deadline = Instant::now() + std::time::Duration::from_secs(10);
            while !t.is_finished() && Instant::now() < deadline {
                actix_web::rt::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
        enter(stopping::Stage::Exit);
        result
    }
}

/// [`Stopper::progress`]: the server runs (it was built, then `run_until_stopped` got as
/// far as awaiting the HTTP server, which a stop ends). Before it: 0, built only.
const SERVING: u8 = 100;

/// The stages of a stop, and a watchdog that ends the process when one of them hangs.
///
/// Every acknowledged write is on disk before its 2xx (the writer syncs before it
/// replies), so a stop that hangs has nothing left to save: the watchdog names the
/// stage that did not finish and exits, instead of leaving a process that an operator
/// (or systemd's `TimeoutStopSec`) has to kill without knowing why.
pub mod stopping {
    use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
    use std::time::Duration;

    /// How long a stop may take in all (the HTTP stop alone may take its 30 s timeout
    /// for open connections, the webhook worker 5 s, the writer 10 s).
    pub const LIMIT: Duration = Duration::from_secs(60);

    /// Where a stop is.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    #[repr(u8)]
    pub enum Stage {
        /// Open requests finish (the HTTP server's graceful stop).
        Requests = 1,
        /// The background jobs end.
        Jobs = 2,
        /// The webhook worker ends its attempts.
        Webhooks = 3,
        /// The store is flushed.
        Flush = 4,
        /// The writer thread finishes its queue.
        Writer = 5,
        /// The process exits.
        Exit = 6,
    }

    impl Stage {
        /// The words for a stage (given as its `u8`).
        pub fn name(v: u8) -> &'static str {
            match v {
                1 => "finishing open requests",
                2 => "ending the background jobs",
                3 => "stopping the webhook worker",
                4 => "flushing the store",
                5 => "waiting for the writer",
                _ => "exiting",
            }
        }
    }

    static STAGE: AtomicU8 = AtomicU8::new(0);
    static ARMED: AtomicBool = AtomicBool::new(false);
    static STARTED: AtomicBool = AtomicBool::new(false);

    /// Lets a stop start the watchdog: for a process that runs one server (`samenloop
    /// serve`), not for a library user that runs several in one process.
    pub fn arm() {
        ARMED.store(true, Ordering::Relaxed);
    }

    /// The stop has begun (at `stage`): starts the watchdog once per armed process.
    pub fn begin(stage: Stage) {
        STAGE.fetch_max(stage as u8, Ordering::Relaxed);
        if !ARMED.load(Ordering::Relaxed) || STARTED.swap(true, Ordering::Relaxed) {
            return;
        }
        let _ = std::thread::Builder::new()
            .name("samenloop-stop-watchdog".into())
            .spawn(|| {
                std::thread::sleep(LIMIT);
                let stage = Stage::name(STAGE.load(Ordering::Relaxed));
                eprintln!(
                    "samenloop: the stop hung while {stage} ({} s); exiting (every acknowledged write was already on disk)",
                    LIMIT.as_secs()
                );
                std::process::exit(1);
            });
    }

    /// The stop went on to `stage`.
    pub fn enter(stage: Stage) {
        STAGE.fetch_max(stage as u8, Ordering::Relaxed);
    }
}

/// Stops a server: see [`Application::stopper`].
#[derive(Clone)]
pub struct Stopper {
    handle: ServerHandle,
    shutdown: Arc<tokio::sync::watch::Sender<bool>>,
    progress: Arc<AtomicU8>,
}

impl std::fmt::Debug for Stopper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stopper").finish_non_exhaustive()
    }
}

impl Stopper {
    /// Ends the event streams and jobs, then stops the server (gracefully or not). Both
    /// happen at the call; the future completes when the server has stopped.
    pub fn stop(&self, graceful: bool) -> impl std::future::Future<Output = ()> + use<> {
        self.shutdown.send_replace(true);
        self.handle.stop(graceful)
    }

    /// Where the server is, for a stop that does not finish: `built` (not yet run),
    /// `serving` (running, or the HTTP server's own stop has not ended: open
    /// connections, workers), or the stage its stop reached after that.
    pub fn progress(&self) -> &'static str {
        match self.progress.load(Ordering::Relaxed) {
            0 => "built",
            SERVING => "serving",
            s => stopping::Stage::name(s),
        }
    }
}

/// Ends the event streams and jobs on SIGINT or SIGTERM and stops the server (SIGTERM
/// gracefully, SIGINT at once), beside actix's own handling of those signals: open
/// streams do not hold the stop, and the stop does not depend on which of the two
/// handlers sees the signal first.
fn spawn_signal_listener(
    shutdown: Arc<tokio::sync::watch::Sender<bool>>,
    handle: actix_web::dev::ServerHandle,
) {
    actix_web::rt::spawn(async move {
        let mut stopped = shutdown.subscribe();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        let graceful = tokio::select! {
            _ = tokio::signal::ctrl_c() => false,
            _ = term => true,
            _ = stopped.wait_for(|s| *s) => return,
        };
        stopping::begin(stopping::Stage::Requests);
        shutdown.send_replace(true);
        // A second stop command after actix's own is ignored (its loop has ended).
        handle.stop(graceful).await;
    });
}
