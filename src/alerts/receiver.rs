//! A webhook receiver: the coordinator's side of `spec/webhooks.md`, for
//! `samenloop webhook-receiver` (the README walkthrough) and the load tool's
//! time-to-webhook measurement. It answers 401 to a request whose signature does not
//! verify, 200 to one that does (also when it is a repeat of an event it already had).

use super::signature::{EVENT_ID_HEADER, SIGNATURE_HEADER, WebhookSecret};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use std::collections::HashSet;
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One verified webhook.
#[derive(Debug, Clone)]
pub struct Received {
    /// The `Samenloop-Event-Id` header.
    pub event_id: String,
    /// Whether this event id arrived before (the index delivers at least once).
    pub repeat: bool,
    /// The body (an `AlertPayload`).
    pub body: serde_json::Value,
    /// When it arrived.
    pub at: Instant,
}

/// What to do with each verified webhook.
pub type OnAlert = Arc<dyn Fn(Received) + Send + Sync>;

/// A TLS server configuration from PEM certificate chain and key files.
pub fn tls_from_files(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, String> {
    let cert_pem =
        std::fs::read(cert).map_err(|e| format!("certificate {}: {e}", cert.display()))?;
    let key_pem = std::fs::read(key).map_err(|e| format!("key {}: {e}", key.display()))?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("certificate {}: {e}", cert.display()))?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| format!("key {}: {e}", key.display()))?
        .ok_or_else(|| format!("key {}: no private key in the file", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("TLS certificate and key do not fit: {e}"))?;
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tls)
}

struct Shared {
    secret: WebhookSecret,
    seen: Mutex<HashSet<String>>,
    on_alert: OnAlert,
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

async fn receive(shared: web::Data<Shared>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let at = Instant::now();
    let header = req
        .headers()
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Err(e) = shared.secret.verify(header, &body, unix_now()) {
        return HttpResponse::Unauthorized().json(serde_json::json!({ "error": e.to_string() }));
    }
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return HttpResponse::BadRequest().json(serde_json::json!({ "error": "not JSON" }));
    };
    let event_id = req
        .headers()
        .get(EVENT_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| json["event_id"].as_str().map(str::to_string))
        .unwrap_or_default();
    let repeat = !shared
        .seen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(event_id.clone());
    (shared.on_alert)(Received {
        event_id,
        repeat,
        body: json,
        at,
    });
    HttpResponse::Ok().json(serde_json::json!({ "received": true }))
}

/// Starts a receiver on `listener` that verifies with `secret` and hands every verified
/// webhook to `on_alert`. Await the returned server (or stop it through its handle).
pub fn serve(
    listener: TcpListener,
    tls: rustls::ServerConfig,
    secret: WebhookSecret,
    workers: usize,
    on_alert: OnAlert,
) -> std::io::Result<actix_web::dev::Server> {
    let shared = web::Data::new(Shared {
        secret,
        seen: Mutex::new(HashSet::new()),
        on_alert,
    });
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(shared.clone())
            .app_data(web::PayloadConfig::new(4 << 20))
            .default_service(web::post().to(receive))
    })
    .workers(workers)
    .listen_rustls_0_23(listener, tls)?
    .run())
}
