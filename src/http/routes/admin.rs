//! `/v1/admin/…`: the operator's endpoints (role `admin`). Every call is logged.

use crate::audit::{Action, ObjectType};
use crate::http::audit::Audit;
use crate::http::auth::{Caller, Role};
use crate::http::error::ApiError;
use crate::http::{State, read_json};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunBody {
    #[serde(default)]
    dry_run: bool,
}

/// `POST /v1/admin/retention/run`: runs the retention job now, or (`dry_run`) lists what
/// it would archive and erase: ids, organisations, networks and dates, nothing of the
/// signals' content.
pub async fn retention_run(
    state: State,
    caller: Caller,
    audit: Audit,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    audit.set(Action::Erase, ObjectType::Signal);
    caller.require(&[Role::Admin])?;
    let body: RunBody = read_json(&req, payload, 1024).await?;
    if body.dry_run {
        audit.set(Action::Search, ObjectType::Signal);
    }
    let report = crate::http::retention::run_once(&state, body.dry_run).await?;
    Ok(HttpResponse::Ok().json(report))
}
