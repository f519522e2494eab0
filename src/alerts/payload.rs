//! The body of an alert, as webhook, event stream and event list deliver it.
//!
//! It is rendered at delivery time from the match as the network's coordinator sees it
//! (organisations, contact points, categories, dates, follow-up), so a signal withdrawn
//! in between is no longer in it. It never holds pseudonyms or identities.

use crate::http::error::ApiError;
use crate::http::routes::matches::{MatchView, match_view};
use crate::http::{State, rfc3339};
use crate::index::engine;
use crate::index::model::{Alert, Deadline};
use serde::{Deserialize, Serialize};

/// An organisation named in an alert.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OrgRef {
    /// Organisation id.
    pub id: String,
    /// Display name.
    pub name: String,
}

/// One alert, as delivered.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AlertPayload {
    /// Stable id: the same on every delivery attempt and every path. De-duplicate on it.
    pub event_id: String,
    /// Position in the index's event order (the event stream's `id`).
    pub sequence: u64,
    /// `match.formed`, `match.organisation_joined`, `match.reopened`, `match.escalated`
    /// or `match.followed_up`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When the event happened.
    pub occurred_at: String,
    /// The recipient network.
    pub network: String,
    /// Organisations that joined with this event (for `match.formed`: all of them), as
    /// far as they have a signal in the recipient network.
    pub organisations_joined: Vec<OrgRef>,
    /// For `match.escalated`: the deadline that passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Deadline>,
    /// For `match.dissolved`: the network's organisations whose signals left.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub organisations_left: Vec<OrgRef>,
    /// The match now, as the network's coordinator sees it.
    #[serde(rename = "match")]
    pub match_view: MatchView,
}

fn org_ref(state: &State, id: &str) -> OrgRef {
    OrgRef {
        id: id.to_string(),
        name: state
            .cfg
            .organisation(id)
            .map(|c| c.name.clone())
            .unwrap_or_default(),
    }
}

/// Renders an outbox entry for its network.
pub fn render(state: &State, alert: &Alert) -> Result<AlertPayload, ApiError> {
    let m = engine::match_by_id(&state.store, alert.match_id)?.ok_or(ApiError::Internal)?;
    // A match merged into another is shown as the one it became part of.
    let m = match m.merged_into {
        Some(into) => engine::match_by_id(&state.store, into)?.unwrap_or(m),
        None => m,
    };
    let network = alert.network.clone();
    let view = match_view(state, &m, &|n| n == network)?;
    // Only organisations with a signal in the recipient network are named: of other
    // networks a coordinator sees the network's name and coordinator contact only.
    let own: std::collections::BTreeSet<&str> = view
        .networks
        .iter()
        .filter(|p| p.network == network)
        .flat_map(|p| p.signals.iter().flatten())
        .map(|s| s.organisation.as_str())
        .collect();
    Ok(AlertPayload {
        event_id: alert.event_id.clone(),
        sequence: alert.seq,
        event_type: alert.event.clone(),
        occurred_at: rfc3339(alert.at),
        network: alert.network.clone(),
        organisations_joined: alert
            .new_orgs
            .iter()
            .filter(|o| own.contains(o.as_str()))
            .map(|o| org_ref(state, o))
            .collect(),
        deadline: alert.deadline,
        organisations_left: alert.left_orgs.iter().map(|o| org_ref(state, o)).collect(),
        match_view: view,
    })
}

/// The outbox entry with sequence number `seq`.
pub fn alert_at(state: &State, seq: u64) -> Result<Option<Alert>, ApiError> {
    match engine::KvRead::get(&state.store, &engine::outbox_key(seq))? {
        None => Ok(None),
        Some(v) => serde_json::from_slice(&v)
            .map(Some)
            .map_err(|_| ApiError::Internal),
    }
}

/// Up to `limit` alerts of `network` after sequence `after`, oldest first.
pub fn network_alerts_after(
    state: &State,
    network: &str,
    after: u64,
    limit: usize,
) -> Result<Vec<Alert>, ApiError> {
    let prefix = crate::index::followup::network_events_prefix(network);
    let mut from = prefix.clone();
    from.extend_from_slice(&after.to_be_bytes());
    let rows = state.store.scan_prefix_after(&prefix, Some(&from), limit)?;
    let mut out = Vec::with_capacity(rows.len());
    for (k, _) in rows {
        let seq_bytes: [u8; 8] = k[k.len() - 8..]
            .try_into()
            .map_err(|_| ApiError::Internal)?;
        if let Some(a) = alert_at(state, u64::from_be_bytes(seq_bytes))? {
            out.push(a);
        }
    }
    Ok(out)
}
