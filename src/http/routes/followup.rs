//! `POST /v1/matches/{handle}/follow-up`: the coordinator records what happens to a match.
//!
//! Each network follows up its own part of a match; the transition table is in
//! [`crate::index::followup`]. A step is written with the partner feedback and a
//! `match.followed_up` alert in one transaction; a refused step changes nothing.

use crate::audit::ObjectType;
use crate::calendar;
use crate::http::audit::Audit;
use crate::http::auth::{Caller, Role};
use crate::http::error::ApiError;
use crate::http::routes::matches::match_view;
use crate::http::routes::signals::OsIds;
use crate::http::{State, read_json};
use crate::index::engine;
use crate::index::followup::{self, Action, ActionError, Actor};
use crate::index::model::CloseReason;
use crate::pseudonym::Date;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use std::sync::atomic::Ordering;

/// The action names a body may carry.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ActionName {
    Acknowledge,
    ChooseLead,
    AskConsent,
    ConsentGiven,
    ConsentRefused,
    PlanMeeting,
    Close,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    action: ActionName,
    #[serde(default)]
    network: Option<String>,
    #[serde(default)]
    organisation: Option<String>,
    #[serde(default)]
    date: Option<String>,
    #[serde(default)]
    reason: Option<CloseReason>,
}

/// How far ahead a case meeting may be planned, days.
const MAX_MEETING_AHEAD_DAYS: i64 = 366;

fn invalid(field: &str, detail: &str) -> ApiError {
    ApiError::InvalidField {
        field: field.to_string(),
        detail: detail.to_string(),
    }
}

/// The action of a body, with its one parameter checked; members that do not belong
/// to the action are refused rather than ignored.
fn parse_action(b: &Body, now: i64) -> Result<Action, ApiError> {
    let (needs_org, needs_date, needs_reason) = match b.action {
        ActionName::ChooseLead => (true, false, false),
        ActionName::PlanMeeting => (false, true, false),
        ActionName::Close => (false, false, true),
        _ => (false, false, false),
    };
    for (present, needed, field, with) in [
        (
            b.organisation.is_some(),
            needs_org,
            "/organisation",
            "choose_lead",
        ),
        (b.date.is_some(), needs_date, "/date", "plan_meeting"),
        (b.reason.is_some(), needs_reason, "/reason", "close"),
    ] {
        if present && !needed {
            return Err(invalid(field, &format!("only with the action {with}")));
        }
        if needed && !present {
            return Err(invalid(field, &format!("required with the action {with}")));
        }
    }
    Ok(match b.action {
        ActionName::Acknowledge => Action::Acknowledge,
        ActionName::AskConsent => Action::AskConsent,
        ActionName::ConsentGiven => Action::ConsentGiven,
        ActionName::ConsentRefused => Action::ConsentRefused,
        ActionName::ChooseLead => {
            let org = b.organisation.clone().unwrap_or_default();
            if org.is_empty() || org.len() > 64 {
                return Err(ApiError::LeadNotInvolved);
            }
            Action::ChooseLead(org)
        }
        ActionName::PlanMeeting => {
            let text = b.date.as_deref().unwrap_or("");
            let date = Date::parse_iso(text)
                .filter(|_| {
                    text.bytes()
                        .enumerate()
                        .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
                })
                .ok_or_else(|| invalid("/date", "a date YYYY-MM-DD"))?;
            let day = date.days_since_epoch();
            let today = calendar::local_day(now);
            if day < today {
                return Err(invalid(
                    "/date",
                    "the date is in the past (Dutch local time)",
                ));
            }
            if day > today + MAX_MEETING_AHEAD_DAYS {
                return Err(invalid("/date", "at most one year ahead"));
            }
            Action::PlanMeeting(date.to_string())
        }
        ActionName::Close => match b.reason {
            Some(CloseReason::Withdrawn) | None => {
                return Err(invalid(
                    "/reason",
                    "withdrawn is set by the index, not by a coordinator",
                ));
            }
            Some(r) => Action::Close(r),
        },
    })
}

fn stage_name(s: crate::index::model::Stage) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn refused(e: ActionError) -> ApiError {
    match e {
        ActionError::InvalidTransition { stage, allowed } => {
            let allowed = if allowed.is_empty() {
                "none".to_string()
            } else {
                allowed.join(", ")
            };
            ApiError::InvalidTransition(format!(
                "the follow-up is in stage {}; allowed actions: {allowed}",
                stage_name(stage)
            ))
        }
        ActionError::LeadNotInvolved => ApiError::LeadNotInvolved,
        ActionError::Merged => ApiError::InvalidTransition(
            "the match was merged into another match; follow that one up".into(),
        ),
        ActionError::NoFollowUp => ApiError::NotFound,
    }
}

/// `POST /v1/matches/{handle}/follow-up`
pub async fn act(
    state: State,
    caller: Caller,
    audit: Audit,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    audit.set(crate::audit::Action::Update, ObjectType::Match);
    caller.require(&[Role::Coordinator])?;
    let body: Body = read_json(&req, payload, 4096).await?;
    if path.len() > 64 {
        return Err(ApiError::NotFound);
    }
    let m = engine::match_by_handle(&state.store, &path)?.ok_or(ApiError::NotFound)?;
    let mine: Vec<&String> = m.networks.iter().filter(|n| caller.in_network(n)).collect();
    audit.object(
        &m.handle,
        mine.first()
            .copied()
            .or(m.networks.first())
            .map(|n| n.as_str()),
    );
    if mine.is_empty() {
        audit.scope_denied();
        return Err(ApiError::NotFound);
    }
    let network = match &body.network {
        Some(n) if !caller.in_network(n) || state.cfg.network(n).is_none() => {
            return Err(ApiError::NotFound);
        }
        Some(n) if !mine.contains(&n) => {
            return Err(invalid(
                "/network",
                "this network was not alerted on the match",
            ));
        }
        Some(n) => n.clone(),
        None if mine.len() == 1 => mine[0].clone(),
        None => {
            return Err(invalid(
                "/network",
                "required: you coordinate more than one of the match's networks",
            ));
        }
    };
    audit.network(&network);
    let now = state.now();
    let action = parse_action(&body, now)?;
    let actor = Actor {
        by: caller.sub.clone(),
        on_behalf_of: caller.obo.clone(),
    };
    let policy = state.policy();
    let (mid, net, act) = (m.id, network.clone(), action.clone());
    // The answer shows the match with the network's signals.
    audit.related(crate::http::routes::matches::shown_signals(
        &state,
        &m,
        &|n| caller.in_network(n),
    ));
    let log = audit.draft(&state, 200);
    state
        .writer
        .run(move |kv| {
            let done = followup::act(kv, &policy, &mut OsIds, mid, &net, &act, &actor, now)?;
            if let (Ok(_), Some(e)) = (&done, log) {
                crate::audit::append(kv, e)?;
            }
            Ok(done)
        })
        .await?
        .map_err(refused)?;
    audit.logged();
    state.metrics.alerts_written.fetch_add(1, Ordering::Relaxed);
    state.metrics.inc(
        "samenloop_followup_steps_total",
        format!("network=\"{network}\",action=\"{}\"", action.name()),
        1,
    );
    let m = engine::match_by_id(&state.store, m.id)?.ok_or(ApiError::Internal)?;
    Ok(HttpResponse::Ok().json(match_view(&state, &m, &|n| caller.in_network(n))?))
}
