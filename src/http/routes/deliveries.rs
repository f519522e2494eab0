//! Webhook deliveries of a network: what is pending, what was dead-lettered, and the
//! requeue of a dead letter (`spec/webhooks.md`). For the network's coordinator and for
//! admins. Ids, types, counts, times and outcomes only: never a pseudonym, never the
//! alert's content.

use crate::alerts::payload::alert_at;
use crate::alerts::webhook::{self, Delivery, dead_prefix, seq_of};
use crate::audit::{Action, ObjectType};
use crate::http::audit::Audit;
use crate::http::auth::{Caller, Role};
use crate::http::error::ApiError;
use crate::http::{State, rfc3339};
use crate::index::engine::KvRead;
use crate::index::followup::{pending_key, pending_prefix};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

/// One delivery, as the API shows it.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeliveryView {
    /// The alert's event id (the `Samenloop-Event-Id` header).
    pub event_id: String,
    /// The alert's type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The alert's sequence number.
    pub sequence: u64,
    /// `pending` or `dead`.
    pub state: String,
    /// When the alert was raised.
    pub occurred_at: String,
    /// Attempts made.
    pub attempts: u32,
    /// First attempt (of the current round after a requeue).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_attempt_at: Option<String>,
    /// Last attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt_at: Option<String>,
    /// Next attempt (pending only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    /// The last attempt's HTTP status or error class (`timeout`, `connect`, `tls`, `error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_outcome: Option<String>,
    /// When it was dead-lettered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_lettered_at: Option<String>,
}

/// A page of deliveries.
#[derive(Debug, Serialize, Deserialize)]
pub struct DeliveryPage {
    /// Oldest first.
    pub deliveries: Vec<DeliveryView>,
    /// Pass as `cursor` for the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    cursor: Option<String>,
}

/// The network, if the caller may see its deliveries.
fn network_in_scope(
    state: &State,
    caller: &Caller,
    audit: &Audit,
    network: String,
) -> Result<String, ApiError> {
    caller.require(&[Role::Coordinator, Role::Admin])?;
    if state.cfg.network(&network).is_none() {
        return Err(ApiError::NotFound);
    }
    audit.network(&network);
    if caller.role == Role::Coordinator && !caller.in_network(&network) {
        audit.scope_denied();
        return Err(ApiError::NotFound);
    }
    Ok(network)
}

fn view(state: &State, seq: u64, d: &Delivery, dead: bool) -> Result<DeliveryView, ApiError> {
    let alert = alert_at(state, seq)?.ok_or(ApiError::Internal)?;
    Ok(DeliveryView {
        event_id: alert.event_id,
        event_type: alert.event,
        sequence: seq,
        state: if dead { "dead" } else { "pending" }.to_string(),
        occurred_at: rfc3339(alert.at),
        attempts: d.attempts,
        first_attempt_at: d.first_attempt.map(rfc3339),
        last_attempt_at: d.last_attempt.map(rfc3339),
        next_attempt_at: if dead {
            None
        } else {
            d.next_attempt.map(rfc3339)
        },
        last_outcome: d.last_outcome.clone(),
        dead_lettered_at: d.dead_at.map(rfc3339),
    })
}

/// `GET /v1/networks/{network}/deliveries?state=pending|dead&limit=&cursor=`
pub async fn list(
    state: State,
    caller: Caller,
    audit: Audit,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    audit.set(Action::Search, ObjectType::Deliveries);
    let network = network_in_scope(&state, &caller, &audit, path.into_inner())?;
    let q = crate::http::parse_query::<ListQuery>(&req)?;
    let dead = match q.state.as_deref() {
        None | Some("pending") => false,
        Some("dead") => true,
        Some(_) => {
            return Err(ApiError::InvalidQuery(
                "state must be pending or dead".into(),
            ));
        }
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::InvalidQuery("limit must be 1 to 500".into()));
    }
    let prefix = if dead {
        dead_prefix(&network)
    } else {
        pending_prefix(&network)
    };
    let after = match &q.cursor {
        Some(c) => {
            let seq: u64 = c
                .parse()
                .map_err(|_| ApiError::InvalidQuery("cursor is not valid".into()))?;
            let mut k = prefix.clone();
            k.extend_from_slice(&seq.to_be_bytes());
            Some(k)
        }
        None => None,
    };
    let rows = state
        .store
        .scan_prefix_after(&prefix, after.as_deref(), limit + 1)?;
    let more = rows.len() > limit;
    let mut out = Vec::with_capacity(limit);
    for (k, v) in rows.into_iter().take(limit) {
        let seq = seq_of(&k).ok_or(ApiError::Internal)?;
        out.push(view(&state, seq, &Delivery::decode(&v)?, dead)?);
    }
    let next_cursor = if more {
        out.last().map(|d| d.sequence.to_string())
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(DeliveryPage {
        deliveries: out,
        next_cursor,
    }))
}

/// The sequence number of the network's delivery with this event id, and whether it is
/// dead-lettered.
fn find(state: &State, network: &str, event_id: &str) -> Result<Option<(u64, bool)>, ApiError> {
    for (prefix, dead) in [
        (dead_prefix(network), true),
        (pending_prefix(network), false),
    ] {
        for (k, _) in KvRead::scan_prefix(&state.store, &prefix)? {
            let seq = seq_of(&k).ok_or(ApiError::Internal)?;
            if alert_at(state, seq)?.is_some_and(|a| a.event_id == event_id) {
                return Ok(Some((seq, dead)));
            }
        }
    }
    Ok(None)
}

/// `POST /v1/networks/{network}/deliveries/{event_id}/retry`: a dead letter goes back to
/// the pending deliveries and is attempted at once (409 if it is not dead-lettered).
pub async fn retry(
    state: State,
    caller: Caller,
    audit: Audit,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    audit.set(Action::Update, ObjectType::Deliveries);
    let (network, event_id) = path.into_inner();
    let network = network_in_scope(&state, &caller, &audit, network)?;
    if event_id.len() > 64 {
        return Err(ApiError::NotFound);
    }
    let (seq, dead) = find(&state, &network, &event_id)?.ok_or(ApiError::NotFound)?;
    audit.object(&event_id, None);
    if !dead {
        return Err(ApiError::DeliveryNotDead);
    }
    let net = network.clone();
    let log = audit.draft(&state, 200);
    let requeued = state
        .writer
        .run(move |kv| {
            let d = webhook::requeue(kv, &net, seq)?;
            if let (Some(_), Some(e)) = (&d, log) {
                crate::audit::append(kv, e)?;
            }
            Ok(d)
        })
        .await?;
    if requeued.is_some() {
        audit.logged();
    }
    // Meanwhile requeued by someone else: it is pending now.
    let Some(d) = requeued else {
        if KvRead::get(&state.store, &pending_key(&network, seq))?.is_some() {
            return Err(ApiError::DeliveryNotDead);
        }
        return Err(ApiError::NotFound);
    };
    Ok(HttpResponse::Ok().json(view(&state, seq, &d, false)?))
}
