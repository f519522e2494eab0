//! Coordinator read API: the matches of the coordinator's networks.
//!
//! A coordinator sees, of its own network's signals in a match, the organisation,
//! contact point, category and dates; of other networks only their name and
//! coordinator contact. Never a pseudonym, never a reference.

use crate::audit::{Action, ObjectType};
use crate::http::audit::Audit;
use crate::http::auth::{Caller, Role};
use crate::http::error::ApiError;
use crate::http::{State, rfc3339};
use crate::index::engine;
use crate::index::followup;
use crate::index::model::{
    CloseReason, Deadline, FollowUp, MatchKind, MatchRecord, MatchStatus, Stage,
};
use crate::pseudonym::Date;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One signal in a match, as its network's coordinator sees it.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct InvolvedSignal {
    /// Organisation id.
    pub organisation: String,
    /// Organisation name.
    pub organisation_name: String,
    /// Contact point.
    pub contact: crate::index::model::Contact,
    /// Category.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Submitted.
    pub submitted_at: String,
    /// Valid until.
    pub valid_until: String,
}

/// A network's part of a match.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct NetworkPart {
    /// Network id.
    pub network: String,
    /// Network name.
    pub name: String,
    /// Coordinator contact.
    pub coordinator_contact: String,
    /// The signals (only for the caller's own networks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signals: Option<Vec<InvolvedSignal>>,
    /// The network's follow-up (only for the caller's own networks that were alerted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_up: Option<FollowUpView>,
}

/// One recorded follow-up step, as the API shows it.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StepView {
    /// The action.
    pub action: String,
    /// Stage after it.
    pub stage: Stage,
    /// Who (the coordinator's subject, or `index`).
    pub by: String,
    /// On behalf of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
    /// When.
    pub at: String,
    /// `choose_lead`: the organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation: Option<String>,
    /// `plan_meeting`: the date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// `close`: the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<CloseReason>,
    /// `escalated`: the deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Deadline>,
}

/// A network's follow-up of a match, as the API shows it.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FollowUpView {
    /// Stage.
    pub stage: Stage,
    /// Whether something (formation, a join, a reopening) awaits acknowledgement.
    pub unacknowledged: bool,
    /// Whether a deadline of the current round has passed unmet.
    pub overdue: bool,
    /// The deadlines that passed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overdue_deadlines: Vec<Deadline>,
    /// Lead organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_organisation: Option<String>,
    /// Planned case meeting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meeting_on: Option<String>,
    /// Closing reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_reason: Option<CloseReason>,
    /// Start of the current round.
    pub opened_at: String,
    /// Deadline to acknowledge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledge_due: Option<String>,
    /// Deadline to decide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_due: Option<String>,
    /// Every step, oldest first.
    pub history: Vec<StepView>,
}

impl FollowUpView {
    /// The view of a stored follow-up.
    pub fn of(f: &FollowUp) -> FollowUpView {
        FollowUpView {
            stage: f.stage,
            unacknowledged: f.unacknowledged,
            overdue: f.is_overdue(),
            overdue_deadlines: f.overdue.clone(),
            lead_organisation: f.lead.clone(),
            meeting_on: f.meeting_on.clone(),
            closed_reason: f.closed_reason,
            opened_at: rfc3339(f.opened_at),
            acknowledge_due: f.acknowledge_due.map(rfc3339),
            decision_due: f.decision_due.map(rfc3339),
            history: f
                .history
                .iter()
                .map(|s| StepView {
                    action: s.action.clone(),
                    stage: s.stage,
                    by: s.by.clone(),
                    on_behalf_of: s.on_behalf_of.clone(),
                    at: rfc3339(s.at),
                    organisation: s.organisation.clone(),
                    date: s.date.clone(),
                    reason: s.reason,
                    deadline: s.deadline,
                })
                .collect(),
        }
    }
}

/// A match as a coordinator sees it.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct MatchView {
    /// Opaque handle.
    pub handle: String,
    /// `person`, `household` or `family`.
    pub kind: MatchKind,
    /// Status.
    pub status: MatchStatus,
    /// Number of distinct organisations with an active signal in it.
    pub organisations: usize,
    /// Formed.
    pub created_at: String,
    /// Last changed.
    pub updated_at: String,
    /// The caller's networks first, then the others.
    pub networks: Vec<NetworkPart>,
    /// Public ids of the signals the view shows (for the access log; not sent).
    #[serde(skip)]
    pub shown: Vec<String>,
}

fn visible(m: &MatchRecord, caller: &Caller) -> bool {
    m.networks.iter().any(|n| caller.in_network(n))
}

/// A match as the coordinator of the networks `own` says yes to sees it.
pub fn match_view(
    state: &State,
    m: &MatchRecord,
    own: &dyn Fn(&str) -> bool,
) -> Result<MatchView, ApiError> {
    let now = state.now();
    let signals = engine::match_signals(&state.store, m)?;
    let mut parts: BTreeMap<String, Vec<InvolvedSignal>> = BTreeMap::new();
    let mut orgs = std::collections::BTreeSet::new();
    let mut shown = Vec::new();
    for s in signals.iter().filter(|s| s.is_active(now)) {
        orgs.insert(s.org.clone());
        let entry = parts.entry(s.network.clone()).or_default();
        if own(&s.network) {
            shown.push(s.public_id.clone());
            entry.push(InvolvedSignal {
                organisation: s.org.clone(),
                organisation_name: state
                    .cfg
                    .organisation(&s.org)
                    .map(|o| o.name.clone())
                    .unwrap_or_default(),
                contact: s.contact.clone(),
                category: s.category.clone(),
                submitted_at: rfc3339(s.submitted_at),
                valid_until: rfc3339(s.valid_until),
            });
        }
    }
    // A network that was alerted keeps its part (and follow-up) after its signals left.
    for n in m.networks.iter().filter(|n| own(n)) {
        parts.entry(n.clone()).or_default();
    }
    let mut networks = Vec::with_capacity(parts.len());
    for (id, sigs) in parts {
        let mine = own(&id);
        let directory = state.directory();
        let cfg = directory.network(&id);
        let follow_up = if mine {
            followup::load(&state.store, m.id, &id)?.map(|f| FollowUpView::of(&f))
        } else {
            None
        };
        networks.push(NetworkPart {
            name: cfg.map(|n| n.name.clone()).unwrap_or_default(),
            coordinator_contact: cfg
                .map(|n| n.coordinator_contact.clone())
                .unwrap_or_default(),
            network: id,
            signals: mine.then_some(sigs),
            follow_up,
        });
    }
    networks.sort_by_key(|p| (p.signals.is_none(), p.network.clone()));
    Ok(MatchView {
        handle: m.handle.clone(),
        kind: m.kind,
        status: m.status,
        organisations: orgs.len(),
        created_at: rfc3339(m.created_at),
        updated_at: rfc3339(m.updated_at),
        networks,
        shown,
    })
}

/// The public ids of the signals a view shows (for the access log).
pub fn shown_signals(state: &State, m: &MatchRecord, own: &dyn Fn(&str) -> bool) -> Vec<String> {
    let now = state.now();
    engine::match_signals(&state.store, m)
        .map(|sigs| {
            sigs.into_iter()
                .filter(|s| s.is_active(now) && own(&s.network))
                .map(|s| s.public_id)
                .collect()
        })
        .unwrap_or_default()
}

/// The ids a view discloses, for the access log: the handle and the signals shown.
pub fn disclosed(view: &MatchView) -> Vec<String> {
    let mut out = Vec::with_capacity(1 + view.shown.len());
    out.push(view.handle.clone());
    out.extend(view.shown.iter().cloned());
    out
}

/// `GET /v1/matches/{handle}`
pub async fn get(
    state: State,
    caller: Caller,
    audit: Audit,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    audit.set(Action::Read, ObjectType::Match);
    caller.require(&[Role::Coordinator])?;
    if path.len() > 64 {
        return Err(ApiError::NotFound);
    }
    let m = engine::match_by_handle(&state.store, &path)?.ok_or(ApiError::NotFound)?;
    if !visible(&m, &caller) {
        audit.object(&m.handle, m.networks.first().map(String::as_str));
        audit.scope_denied();
        return Err(ApiError::NotFound);
    }
    let view = match_view(&state, &m, &|n| caller.in_network(n))?;
    audit.object(
        &m.handle,
        m.networks
            .iter()
            .find(|n| caller.in_network(n))
            .map(String::as_str),
    );
    audit.related(view.shown.iter().cloned());
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    until: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    cursor: Option<String>,
}

/// The `status` filter of the match list, on the listed network's follow-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListStatus {
    /// Not closed.
    Open,
    /// Formed, joined or reopened since the last acknowledgement.
    Unacknowledged,
    /// A deadline of the current round passed (and it is not closed).
    Overdue,
    /// Closed.
    Closed,
}

impl ListStatus {
    fn parse(s: &str) -> Option<ListStatus> {
        Some(match s {
            "open" => ListStatus::Open,
            "unacknowledged" => ListStatus::Unacknowledged,
            "overdue" => ListStatus::Overdue,
            "closed" => ListStatus::Closed,
            _ => return None,
        })
    }

    /// Whether a follow-up (none: a match alerted before follow-ups existed, which
    /// counts as open) passes the filter.
    fn holds(self, f: Option<&FollowUp>) -> bool {
        let closed = f.is_some_and(|f| f.stage == Stage::Closed);
        match self {
            ListStatus::Open => !closed,
            ListStatus::Closed => closed,
            ListStatus::Unacknowledged => f.is_some_and(|f| f.unacknowledged),
            ListStatus::Overdue => f.is_some_and(|f| f.is_overdue()) && !closed,
        }
    }
}

/// A page of matches.
#[derive(Debug, Serialize, Deserialize)]
pub struct MatchPage {
    /// Matches, newest first.
    pub matches: Vec<MatchView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

fn day_start(s: &str, name: &str) -> Result<i64, ApiError> {
    Date::parse_iso(s)
        .map(|d| d.days_since_epoch() * 86_400)
        .ok_or_else(|| ApiError::InvalidQuery(format!("{name} must be a date YYYY-MM-DD")))
}

/// `GET /v1/networks/{network}/matches`
pub async fn list(
    state: State,
    caller: Caller,
    audit: Audit,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    audit.set(Action::Search, ObjectType::Match);
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
    let q = crate::http::parse_query::<ListQuery>(&req)?;
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(ListStatus::parse(s).ok_or_else(|| {
            ApiError::InvalidQuery("status must be open, unacknowledged, overdue or closed".into())
        })?),
    };
    let since = q
        .since
        .as_deref()
        .map(|s| day_start(s, "since"))
        .transpose()?;
    let until = q
        .until
        .as_deref()
        .map(|s| day_start(s, "until"))
        .transpose()?
        .map(|t| t + 86_400);
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::InvalidQuery("limit must be 1 to 500".into()));
    }
    // Overdue follow-ups have their own list (same key layout), so that filter reads
    // only them.
    let prefix = if status == Some(ListStatus::Overdue) {
        followup::overdue_prefix(&network)
    } else {
        engine::network_matches_prefix(&network)
    };
    let mut before = match &q.cursor {
        Some(c) => {
            let id: u64 = c
                .strip_prefix("c")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| ApiError::InvalidQuery("cursor is not valid".into()))?;
            let mut k = prefix.clone();
            k.extend_from_slice(&id.to_be_bytes());
            Some(k)
        }
        None => None,
    };
    let mut out = Vec::new();
    let mut next = None;
    'pages: loop {
        let rows = state
            .store
            .scan_prefix_rev(&prefix, before.as_deref(), 256)?;
        if rows.is_empty() {
            break;
        }
        for (k, _) in &rows {
            before = Some(k.clone());
            let id_bytes: [u8; 8] = k[k.len() - 8..]
                .try_into()
                .map_err(|_| ApiError::Internal)?;
            let id = u64::from_be_bytes(id_bytes);
            let Some(m) = engine::match_by_id(&state.store, id)? else {
                continue;
            };
            if m.status == MatchStatus::Merged {
                continue;
            }
            if let Some(s) = status {
                if !s.holds(followup::load(&state.store, id, &network)?.as_ref()) {
                    continue;
                }
            }
            if since.is_some_and(|s| m.created_at < s) || until.is_some_and(|u| m.created_at >= u) {
                continue;
            }
            if out.len() == limit {
                next = Some(format!("c{}", u64::from_be_bytes(id_bytes) + 1));
                break 'pages;
            }
            let view = match_view(&state, &m, &|n| caller.in_network(n))?;
            audit.related(disclosed(&view));
            out.push(view);
        }
    }
    Ok(HttpResponse::Ok().json(MatchPage {
        matches: out,
        next_cursor: next,
    }))
}
