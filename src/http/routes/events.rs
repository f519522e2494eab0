//! `GET /v1/networks/{network}/events`: a network's alerts in order, as a live
//! server-sent-events stream (`Accept: text/event-stream`) or as JSON pages (pull).

use crate::alerts::payload::{AlertPayload, network_alerts_after, render};
use crate::audit::{Action, ObjectType};
use crate::http::State;
use crate::http::audit::Audit;
use crate::http::auth::{Caller, Role};
use crate::http::error::ApiError;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    #[serde(default)]
    after: Option<u64>,
    #[serde(default)]
    limit: Option<usize>,
}

/// A page of a network's events (the pull form).
#[derive(Debug, Serialize, Deserialize)]
pub struct EventPage {
    /// Events after `after`, oldest first.
    pub events: Vec<AlertPayload>,
    /// Pass as `after` for the next page (the last sequence seen; unchanged when empty).
    pub next_after: u64,
}

/// The sequence of the network's newest event (0 if none).
fn latest(state: &State, network: &str) -> Result<u64, ApiError> {
    let prefix = crate::index::followup::network_events_prefix(network);
    let rows = state.store.scan_prefix_rev(&prefix, None, 1)?;
    Ok(match rows.first() {
        Some((k, _)) => {
            let b: [u8; 8] = k[k.len() - 8..]
                .try_into()
                .map_err(|_| ApiError::Internal)?;
            u64::from_be_bytes(b)
        }
        None => 0,
    })
}

fn wants_stream(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',').any(|m| {
                m.split(';')
                    .next()
                    .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/event-stream"))
            })
        })
}

/// `GET /v1/networks/{network}/events`
pub async fn events(
    state: State,
    caller: Caller,
    audit: Audit,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    audit.set(Action::Search, ObjectType::Events);
    caller.require(&[Role::Coordinator])?;
    let network = path.into_inner();
    if state.cfg.network(&network).is_none() {
        return Err(ApiError::NotFound);
    }
    audit.network(&network);
    if !caller.in_network(&network) {
        audit.scope_denied();
        return Err(ApiError::NotFound);
    }
    let q = crate::http::parse_query::<EventsQuery>(&req)?;
    if wants_stream(&req) {
        let last = match req.headers().get("last-event-id") {
            None => None,
            Some(v) => Some(
                v.to_str()
                    .ok()
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .ok_or_else(|| {
                        ApiError::InvalidQuery("Last-Event-ID must be an event sequence".into())
                    })?,
            ),
        };
        let after = match last.or(q.after) {
            Some(a) => a,
            None => latest(&state, &network)?,
        };
        // The opening is logged by the middleware; every batch of events the stream
        // sends later is logged before it is sent, with the matches it shows.
        let log = audit.draft(&state, 200).map(|mut e| {
            e.action = Action::Read;
            e
        });
        let stream =
            crate::alerts::stream::events(state.clone(), network, after, caller.expires_at, log);
        return Ok(HttpResponse::Ok()
            .content_type("text/event-stream")
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .insert_header(("X-Accel-Buffering", "no"))
            .streaming(stream));
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::InvalidQuery("limit must be 1 to 500".into()));
    }
    let after = q.after.unwrap_or(0);
    let alerts = network_alerts_after(&state, &network, after, limit)?;
    let next_after = alerts.last().map(|a| a.seq).unwrap_or(after);
    let events = alerts
        .iter()
        .map(|a| render(&state, a))
        .collect::<Result<Vec<_>, _>>()?;
    for e in &events {
        audit.related(crate::http::routes::matches::disclosed(&e.match_view));
    }
    Ok(HttpResponse::Ok().json(EventPage { events, next_after }))
}
