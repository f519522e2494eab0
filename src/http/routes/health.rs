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
    let postings = state.store.posting_stats();
    let rotation = state.store.rotation_progress();
    let load = |v: &std::sync::atomic::AtomicU64| v.load(std::sync::atomic::Ordering::Relaxed);
    let count = |name| crate::index::engine::counter(&state.store, name).unwrap_or(0);
    let (signals, matches) = (count("signal"), count("match"));
    let audit_head = crate::audit::head(&state.store).map(|h| h.seq).unwrap_or(0);
    let last_checkpoint = crate::audit::checkpoint::list(&state.store, None, 1)
        .ok()
        .and_then(|l| l.first().map(|c| c.seq))
        .unwrap_or(0);
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
            "samenloop_store_free_bytes",
            "Free space on the data directory's file system at the writer's last check",
            load(&state.writer.disk.free_bytes),
        ),
        (
            "samenloop_store_disk_low",
            "1 while free space is below limits.min_free_disk_mib and writes are refused",
            u64::from(
                state
                    .writer
                    .disk
                    .low
                    .load(std::sync::atomic::Ordering::Relaxed),
            ),
        ),
        (
            "samenloop_posting_keys",
            "Keys in the in-memory posting lists",
            load(&postings.keys),
        ),
        (
            "samenloop_postings",
            "Postings (signal holds key) in memory",
            load(&postings.postings),
        ),
        (
            "samenloop_postings_rebuilt_from_signals",
            "Signal records read to rebuild the posting lists at start",
            load(&postings.rebuilt_from),
        ),
        (
            "samenloop_postings_rebuild_milliseconds",
            "Time the posting lists took to rebuild at start",
            load(&postings.rebuild_ms),
        ),
        (
            "samenloop_index_key_epoch",
            "Current epoch of the index key ring (0 before any rotation)",
            u64::from(state.store.ring().epoch()),
        ),
        (
            "samenloop_index_key_rotation_running",
            "1 while a rotation of the index key re-writes stored records",
            u64::from(rotation.running.load(std::sync::atomic::Ordering::Relaxed)),
        ),
        (
            "samenloop_index_key_rotation_signals_rekeyed",
            "Signal records the running or last rotation of the index key re-wrote",
            load(&rotation.signals_rekeyed),
        ),
        (
            "samenloop_index_key_rotation_keys_rekeyed",
            "Stored keys the running or last rotation of the index key re-keyed",
            load(&rotation.keys_rekeyed),
        ),
        (
            "samenloop_index_key_rotation_remaining_signals",
            "Signal records the running rotation of the index key has still to re-write",
            load(&rotation.remaining),
        ),
        (
            "samenloop_index_key_rotation_switch_milliseconds",
            "Time the writer paused at the last rotation's switch (posting lists rebuilt in the new epoch)",
            load(&rotation.switch_ms),
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
        (
            "samenloop_audit_entries",
            "Sequence of the last access-log entry (entries appended so far)",
            audit_head,
        ),
        (
            "samenloop_audit_last_checkpoint_seq",
            "Sequence covered by the newest access-log checkpoint",
            last_checkpoint,
        ),
        (
            "samenloop_store_disk_critical",
            "1 while free space is below half of limits.min_free_disk_mib: even access-log entries (and so reads) are refused",
            u64::from(
                state
                    .writer
                    .disk
                    .critical
                    .load(std::sync::atomic::Ordering::Relaxed),
            ),
        ),
    ]);
    let text = text + &crate::alerts::escalation::overdue_metrics(&state);
    let text = text + &crate::alerts::webhook::metrics_text(&state);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(text)
}
