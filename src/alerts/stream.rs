//! The live event stream (server-sent events) of one network.
//!
//! A stream first sends the backlog after the client's position (`Last-Event-ID` or
//! `?after=`) in pages, then waits for the next durable commit of the store
//! ([`crate::store::Writer::commits`]) and sends what it added; while nothing happens it
//! sends a comment every `alerts.stream_keepalive_secs`, which also keeps the
//! connection's idle guard from closing it. It ends when the server stops and when the
//! caller's token expires (the client reconnects with a fresh token and `Last-Event-ID`).

use crate::alerts::payload::{network_alerts_after, render};
use crate::http::State;
use actix_web::web::Bytes;
use futures_util::Stream;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::sync::watch;

/// Alerts read from the store at a time.
const PAGE: usize = 100;

/// One alert as an event-stream frame: `id`, `event` and one line of JSON `data`.
pub fn frame(payload: &crate::alerts::payload::AlertPayload) -> Bytes {
    let data = serde_json::to_string(payload).unwrap_or_default();
    Bytes::from(format!(
        "id: {}\nevent: {}\ndata: {data}\n\n",
        payload.sequence, payload.event_type
    ))
}

/// The comment sent while nothing happens.
pub const KEEPALIVE: &[u8] = b": keep-alive\n\n";

struct Cursor {
    state: State,
    network: String,
    after: u64,
    commits: watch::Receiver<u64>,
    stop: watch::Receiver<bool>,
    keepalive: Duration,
    queue: VecDeque<Bytes>,
    /// The caller's token expires: the stream ends (the client reconnects with a fresh
    /// token and `Last-Event-ID`).
    until: tokio::time::Instant,
    /// The access-log entry of each batch sent (its `related` filled per batch); `None`
    /// when the log is off.
    log: Option<crate::audit::Entry>,
}

/// The event stream of `network` after sequence `after`, until the caller's token
/// expires at `expires_at` (unix seconds, real time like the token check).
pub fn events(
    state: State,
    network: String,
    after: u64,
    expires_at: u64,
    log: Option<crate::audit::Entry>,
) -> impl Stream<Item = Result<Bytes, actix_web::Error>> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let until = tokio::time::Instant::now() + Duration::from_secs(expires_at.saturating_sub(now));
    let cursor = Cursor {
        until,
        commits: state.writer.commits(),
        stop: state.shutdown.subscribe(),
        keepalive: Duration::from_secs(state.cfg.alerts.stream_keepalive_secs),
        state,
        network,
        after,
        queue: VecDeque::new(),
        log,
    };
    futures_util::stream::unfold(cursor, |mut c| async move {
        loop {
            if let Some(b) = c.queue.pop_front() {
                return Some((Ok(b), c));
            }
            if *c.stop.borrow() || tokio::time::Instant::now() >= c.until {
                return None;
            }
            // Seen before reading, so a commit during the read wakes the wait below.
            c.commits.borrow_and_update();
            let alerts = network_alerts_after(&c.state, &c.network, c.after, PAGE).ok()?;
            if !alerts.is_empty() {
                let mut shown = Vec::new();
                for a in alerts {
                    c.after = a.seq;
                    // An alert that cannot be rendered (its match is gone) is skipped.
                    if let Ok(p) = render(&c.state, &a) {
                        if c.log.is_some() {
                            for id in crate::http::routes::matches::disclosed(&p.match_view) {
                                if !shown.contains(&id) {
                                    shown.push(id);
                                }
                            }
                        }
                        c.queue.push_back(frame(&p));
                    }
                }
                // Logged before it is sent; if the log cannot be written, the stream ends.
                if let (Some(template), false) = (&c.log, shown.is_empty()) {
                    let mut e = template.clone();
                    e.at_ms = c.state.now_ms();
                    e.related = shown;
                    crate::http::audit::append(&c.state, e).await.ok()?;
                }
                continue;
            }
            tokio::select! {
                r = c.commits.changed() => r.ok()?,
                r = c.stop.changed() => {
                    r.ok()?;
                }
                _ = tokio::time::sleep(c.keepalive) => c.queue.push_back(Bytes::from_static(KEEPALIVE)),
                _ = tokio::time::sleep_until(c.until) => return None,
            }
        }
    })
}
