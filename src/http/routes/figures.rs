//! `GET /v1/networks/{network}/figures`: aggregate counts of one network over a period,
//! for the municipality. Counts only, small cells withheld ([`crate::index::figures`]).

use crate::audit::{Action, ObjectType};
use crate::http::audit::Audit;
use crate::http::auth::{Caller, Role};
use crate::http::error::ApiError;
use crate::http::{State, rfc3339};
use crate::index::figures::{self, Published};
use crate::pseudonym::Date;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

/// The longest period, in days (a leap year).
pub const MAX_PERIOD_DAYS: i64 = 366;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FiguresQuery {
    from: String,
    to: String,
}

/// The answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct FiguresView {
    /// Network id.
    pub network: String,
    /// First day of the period (Dutch local date).
    pub from: String,
    /// Last day of the period (Dutch local date, included).
    pub to: String,
    /// When the figures were computed (overdue is counted at this moment).
    pub generated_at: String,
    /// Counts below this are withheld.
    pub min_cell: u64,
    /// The figures.
    #[serde(flatten)]
    pub figures: Published,
}

fn day(s: &str, name: &str) -> Result<i64, ApiError> {
    Date::parse_iso(s)
        .map(Date::days_since_epoch)
        .ok_or_else(|| ApiError::InvalidQuery(format!("{name} must be a date YYYY-MM-DD")))
}

/// `GET /v1/networks/{network}/figures?from=YYYY-MM-DD&to=YYYY-MM-DD`
pub async fn get(
    state: State,
    caller: Caller,
    audit: Audit,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    audit.set(Action::Search, ObjectType::Figures);
    caller.require(&[Role::Coordinator, Role::Admin])?;
    let network = path.into_inner();
    // The operator sees every network's figures; a coordinator only its own.
    let allowed = caller.role == Role::Admin || caller.in_network(&network);
    if state.cfg.network(&network).is_none() {
        return Err(ApiError::NotFound);
    }
    audit.network(&network);
    if !allowed {
        audit.scope_denied();
        return Err(ApiError::NotFound);
    }
    let q = crate::http::parse_query::<FiguresQuery>(&req)?;
    let from = day(&q.from, "from")?;
    let to = day(&q.to, "to")?;
    if to < from {
        return Err(ApiError::InvalidQuery("to must not be before from".into()));
    }
    if to - from + 1 > MAX_PERIOD_DAYS {
        return Err(ApiError::InvalidQuery(format!(
            "the period may be at most {MAX_PERIOD_DAYS} days"
        )));
    }
    let now = state.now();
    if to >= crate::calendar::local_day(now) {
        return Err(ApiError::InvalidQuery(
            "to must be a completed day: before today (Europe/Amsterdam)".into(),
        ));
    }
    let min_cell = state.cfg.figures.min_cell;
    // Reads every match of the network (about 5.6 µs each, see the README): off the
    // worker thread, so a large network does not hold up other requests.
    let (st, n) = (state.clone(), network.clone());
    let published = web::block(move || figures::collect(&st.store, &n, from, to, now, min_cell))
        .await
        .map_err(|_| ApiError::Internal)??;
    Ok(HttpResponse::Ok().json(FiguresView {
        network,
        from: q.from,
        to: q.to,
        generated_at: rfc3339(now),
        min_cell,
        figures: published,
    }))
}
