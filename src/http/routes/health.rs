//! `/healthz`, `/readyz` and `/metrics`.

use crate::http::State;
use crate::http::error::ApiError;
use actix_web::HttpResponse;

/// Liveness: the process answers.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// Readiness: the store is readable and the last flush succeeded.
pub async fn readyz(state: State) -> Result<HttpResponse, ApiError> {
    let readable = crate::index::engine::KvRead::get(&state.store, b"c").is_ok();
    if readable && state.writer.is_healthy() {
        Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })))
    } else {
        Err(ApiError::Unavailable)
    }
}

/// Prometheus metrics (no personal data: counts and latencies only).
pub async fn metrics(state: State) -> HttpResponse {
    let flushes = state
        .writer
        .flushes
        .load(std::sync::atomic::Ordering::Relaxed);
    let disk = state.store.size_on_disk();
    let count = |name| crate::index::engine::counter(&state.store, name).unwrap_or(0);
    let (signals, matches) = (count("signal"), count("match"));
    let text = state.metrics.render(&[
        (
            "samenloop_store_flushes",
            "Group commits (fsync) done",
            flushes,
        ),
        (
            "samenloop_store_size_bytes",
            "Size of the database on disk",
            disk,
        ),
        (
            "samenloop_store_signals",
            "Signals ever stored in the database (all states)",
            signals,
        ),
        (
            "samenloop_store_matches",
            "Matches ever formed in the database",
            matches,
        ),
    ]);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(text)
}
