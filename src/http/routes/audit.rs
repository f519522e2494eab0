//! `/v1/audit/…`: the access log for privacy officers (role `privacy_officer`), scoped
//! to the networks of their token (`spec/access-log.md`). Every call is itself logged.

use crate::audit::checkpoint::Checkpoint;
use crate::audit::export::{Export, Format};
use crate::audit::query::{self, AnomalyParams, Filter, Order};
use crate::audit::{Action, Entry, ObjectType, Outcome, Scope, rfc3339_ms};
use crate::http::audit::Audit;
use crate::http::auth::{Caller, Role};
use crate::http::error::ApiError;
use crate::http::{State, read_json, rfc3339};
use crate::index::model::{SignalState, WithdrawReason};
use crate::pseudonym::{Date, SubjectKeys};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

/// Entries looked at by one page request at most (it answers a cursor to go on).
const MAX_SCAN: usize = 200_000;
/// Accesses a data-subject access answer lists at most.
const MAX_SUBJECT_ACCESSES: usize = 10_000;

/// The privacy officer's scope: the configured networks of its token.
fn scope(state: &State, caller: &Caller) -> Result<(Scope, Vec<String>), ApiError> {
    caller.require(&[Role::PrivacyOfficer])?;
    let nets: Vec<String> = caller
        .networks
        .iter()
        .filter(|n| state.cfg.network(n).is_some())
        .cloned()
        .collect();
    if nets.is_empty() {
        return Err(ApiError::NotFound);
    }
    Ok((Scope::Networks(nets.clone()), nets))
}

/// Unix ms of an RFC 3339 date-time (`2026-11-25T10:15:02Z`, `…+01:00`, fractions).
pub fn parse_datetime(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[10] != b'T' && b[10] != b't' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let date = Date::parse_iso(&s[..10])?;
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (h, m, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut ms = 0i64;
    if let Some(f) = rest.strip_prefix('.') {
        let digits = f.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        let frac = &f[..digits];
        ms = format!("{frac:0<3}")[..3].parse().ok()?;
        rest = &f[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) && &o[3..4] == ":" => {
            let hh: i64 = o[1..3].parse().ok()?;
            let mm: i64 = o[4..6].parse().ok()?;
            let v = hh * 3600 + mm * 60;
            if o.starts_with('-') { -v } else { v }
        }
        _ => return None,
    };
    let secs = date.days_since_epoch() * 86_400 + h * 3600 + m * 60 + sec.min(59) - offset;
    Some(secs * 1000 + ms)
}

/// `from`: a date-time, or a date (its local midnight).
fn time_from(s: &str, name: &str) -> Result<i64, ApiError> {
    if s.len() == 10 {
        if let Some(d) = Date::parse_iso(s) {
            return Ok(crate::calendar::local_midnight(d.days_since_epoch()) * 1000);
        }
    }
    parse_datetime(s).ok_or_else(|| {
        ApiError::InvalidQuery(format!(
            "{name} must be a date YYYY-MM-DD or an RFC 3339 date-time"
        ))
    })
}

/// `to`: a date-time (exclusive), or a date (included: until the next local midnight).
fn time_to(s: &str, name: &str) -> Result<i64, ApiError> {
    if s.len() == 10 {
        if let Some(d) = Date::parse_iso(s) {
            return Ok(crate::calendar::local_midnight(d.days_since_epoch() + 1) * 1000);
        }
    }
    time_from(s, name)
}

/// The filter parameters every read of the log takes.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct FilterQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    actor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    organisation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    object: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    network: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    to: Option<String>,
    // Page parameters (entries only).
    #[serde(default, skip_serializing)]
    order: Option<String>,
    #[serde(default, skip_serializing)]
    limit: Option<usize>,
    #[serde(default, skip_serializing)]
    cursor: Option<String>,
    // Export only.
    #[serde(default, skip_serializing)]
    format: Option<String>,
    // Anomalies only.
    #[serde(default, skip_serializing)]
    factor: Option<f64>,
    #[serde(default, skip_serializing)]
    min_matches: Option<u64>,
    #[serde(default, skip_serializing)]
    min_refused: Option<u64>,
}

impl FilterQuery {
    fn parse(req: &HttpRequest) -> Result<FilterQuery, ApiError> {
        crate::http::parse_query::<FilterQuery>(req)
    }

    /// Refuses the parameters `allowed` does not name.
    fn only(&self, allowed: &[&str]) -> Result<(), ApiError> {
        let given = [
            ("order", self.order.is_some()),
            ("limit", self.limit.is_some()),
            ("cursor", self.cursor.is_some()),
            ("format", self.format.is_some()),
            ("factor", self.factor.is_some()),
            ("min_matches", self.min_matches.is_some()),
            ("min_refused", self.min_refused.is_some()),
        ];
        for (name, present) in given {
            if present && !allowed.contains(&name) {
                return Err(ApiError::InvalidQuery(format!(
                    "unknown parameter `{name}` here"
                )));
            }
        }
        Ok(())
    }

    fn filter(&self, state: &State, need_period: bool) -> Result<Filter, ApiError> {
        let short = |v: &Option<String>,
                     name: &str,
                     max: usize|
         -> Result<Option<String>, ApiError> {
            match v {
                Some(s) if s.is_empty() || s.len() > max || s.chars().any(char::is_control) => Err(
                    ApiError::InvalidQuery(format!("{name} must be 1 to {max} characters")),
                ),
                other => Ok(other.clone()),
            }
        };
        let action = match &self.action {
            None => None,
            Some(a) => Some(Action::parse(a).ok_or_else(|| {
                ApiError::InvalidQuery(format!(
                    "action must be one of {}",
                    Action::ALL.map(Action::name).join(", ")
                ))
            })?),
        };
        let outcome = match &self.outcome {
            None => None,
            Some(o) => Some(Outcome::parse(o).ok_or_else(|| {
                ApiError::InvalidQuery(format!(
                    "outcome must be one of {}",
                    Outcome::ALL.map(Outcome::name).join(", ")
                ))
            })?),
        };
        if let Some(n) = &self.network {
            if state.cfg.network(n).is_none() {
                return Err(ApiError::InvalidQuery(
                    "network is not a configured network".into(),
                ));
            }
        }
        let from_ms = self
            .from
            .as_deref()
            .map(|s| time_from(s, "from"))
            .transpose()?;
        let to_ms = self.to.as_deref().map(|s| time_to(s, "to")).transpose()?;
        if need_period && (from_ms.is_none() || to_ms.is_none()) {
            return Err(ApiError::InvalidQuery("from and to are required".into()));
        }
        if let (Some(f), Some(t)) = (from_ms, to_ms) {
            if t <= f {
                return Err(ApiError::InvalidQuery("to must be after from".into()));
            }
        }
        Ok(Filter {
            actor: short(&self.actor, "actor", 256)?,
            org: short(&self.organisation, "organisation", 256)?,
            object: short(&self.object, "object", 64)?,
            action,
            outcome,
            network: self.network.clone(),
            from_ms,
            to_ms,
        })
    }

    fn echo(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// One entry as the API shows it: the stored entry with its time as text.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct EntryView {
    /// The time (RFC 3339 UTC, milliseconds).
    pub at: String,
    /// The entry.
    #[serde(flatten)]
    pub entry: Entry,
}

impl From<Entry> for EntryView {
    fn from(entry: Entry) -> Self {
        EntryView {
            at: rfc3339_ms(entry.at_ms),
            entry,
        }
    }
}

/// A page of entries.
#[derive(Debug, Serialize, Deserialize)]
pub struct EntryPage {
    /// Entries in the requested order.
    pub entries: Vec<EntryView>,
    /// Pass as `cursor` for the next page; absent at the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, ApiError> + Send + 'static,
) -> Result<R, ApiError> {
    web::block(f).await.map_err(|_| ApiError::Internal)?
}

/// `GET /v1/audit/entries`
pub async fn entries(
    state: State,
    caller: Caller,
    audit: Audit,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    audit.set(Action::Search, ObjectType::AccessLog);
    let (scope, _) = scope(&state, &caller)?;
    let q = FilterQuery::parse(&req)?;
    q.only(&["order", "limit", "cursor"])?;
    let filter = q.filter(&state, false)?;
    let order = match q.order.as_deref() {
        None | Some("asc") => Order::Asc,
        Some("desc") => Order::Desc,
        Some(_) => return Err(ApiError::InvalidQuery("order must be asc or desc".into())),
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::InvalidQuery("limit must be 1 to 1000".into()));
    }
    let cursor = q
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<u64>()
                .map_err(|_| ApiError::InvalidQuery("cursor is not valid".into()))
        })
        .transpose()?;
    let store = state.store.clone();
    let page = blocking(move || {
        query::page(&store, &scope, &filter, order, cursor, limit, MAX_SCAN).map_err(ApiError::from)
    })
    .await?;
    Ok(HttpResponse::Ok().json(EntryPage {
        entries: page.entries.into_iter().map(EntryView::from).collect(),
        next_cursor: page.next_cursor.map(|c| c.to_string()),
    }))
}

/// `GET /v1/audit/export?format=jsonl|csv&…`: streamed.
pub async fn export(
    state: State,
    caller: Caller,
    audit: Audit,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    audit.set(Action::Export, ObjectType::AccessLog);
    let (scope, _) = scope(&state, &caller)?;
    let q = FilterQuery::parse(&req)?;
    q.only(&["format"])?;
    let filter = q.filter(&state, false)?;
    let (format, ctype, ext) = match q.format.as_deref() {
        None | Some("jsonl") => (Format::Jsonl, "application/x-ndjson", "jsonl"),
        Some("csv") => (Format::Csv, "text/csv; charset=utf-8", "csv"),
        Some(_) => return Err(ApiError::InvalidQuery("format must be jsonl or csv".into())),
    };
    let store = state.store.clone();
    let echo = q.echo();
    let now_ms = state.now_ms();
    let ex = blocking(move || {
        Export::new(&store, scope, filter, echo, format, now_ms).map_err(ApiError::from)
    })
    .await?;
    let store = state.store.clone();
    let body = futures_util::stream::unfold(Some(ex), move |ex| {
        let store = store.clone();
        async move {
            let mut ex = ex?;
            let r = web::block(move || {
                let chunk = ex.next_chunk(&store, 4096);
                (ex, chunk)
            })
            .await;
            match r {
                Ok((ex, Ok(Some(chunk)))) => Some((Ok(web::Bytes::from(chunk)), Some(ex))),
                Ok((_, Ok(None))) => None,
                // A failure mid-stream cuts the export short; its missing end line tells.
                Ok((_, Err(_))) | Err(_) => Some((
                    Err(actix_web::error::ErrorInternalServerError("export failed")),
                    None,
                )),
            }
        }
    });
    let name = format!(
        "samenloop-access-log-{}.{ext}",
        rfc3339(state.now()).replace(':', "")
    );
    Ok(HttpResponse::Ok()
        .content_type(ctype)
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .streaming(body))
}

/// The answer of a view.
#[derive(Debug, Serialize, Deserialize)]
pub struct ViewAnswer<T> {
    /// The period and conditions.
    pub filter: serde_json::Value,
    /// The rows.
    pub rows: Vec<T>,
}

/// A view over the filter's period: `f` computes its rows.
async fn view<T: Serialize + Send + 'static>(
    state: State,
    caller: Caller,
    audit: Audit,
    req: HttpRequest,
    f: fn(&crate::store::Store, &Scope, &Filter) -> Result<Vec<T>, crate::store::StoreError>,
) -> Result<HttpResponse, ApiError> {
    audit.set(Action::Search, ObjectType::AccessLog);
    let (scope, _) = scope(&state, &caller)?;
    let q = FilterQuery::parse(&req)?;
    q.only(&[])?;
    let filter = q.filter(&state, true)?;
    let store = state.store.clone();
    let rows = blocking(move || f(&store, &scope, &filter).map_err(ApiError::from)).await?;
    Ok(HttpResponse::Ok().json(ViewAnswer {
        filter: q.echo(),
        rows,
    }))
}

/// `GET /v1/audit/views/users?from=&to=&…`: the per-user view.
pub async fn per_user(
    state: State,
    caller: Caller,
    audit: Audit,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    view(state, caller, audit, req, query::per_user).await
}

/// `GET /v1/audit/views/days?from=&to=&…`: the per-day view.
pub async fn per_day(
    state: State,
    caller: Caller,
    audit: Audit,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    view(state, caller, audit, req, query::per_day).await
}

/// The anomaly report.
#[derive(Debug, Serialize, Deserialize)]
pub struct AnomalyAnswer {
    /// The period and conditions.
    pub filter: serde_json::Value,
    /// The thresholds used.
    pub thresholds: serde_json::Value,
    /// The counts.
    #[serde(flatten)]
    pub report: query::Anomalies,
}

/// `GET /v1/audit/anomalies?from=&to=[&factor=&min_matches=&min_refused=]`
pub async fn anomalies(
    state: State,
    caller: Caller,
    audit: Audit,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    audit.set(Action::Search, ObjectType::AccessLog);
    let (scope, _) = scope(&state, &caller)?;
    let q = FilterQuery::parse(&req)?;
    q.only(&["factor", "min_matches", "min_refused"])?;
    let filter = q.filter(&state, true)?;
    let p = AnomalyParams {
        factor: q.factor.unwrap_or(3.0),
        min_matches: q.min_matches.unwrap_or(10),
        office_start_hour: state.cfg.audit.office_start_hour,
        office_end_hour: state.cfg.audit.office_end_hour,
        min_refused: q.min_refused.unwrap_or(5),
    };
    if !(p.factor.is_finite() && (1.0..=100.0).contains(&p.factor)) {
        return Err(ApiError::InvalidQuery("factor must be 1 to 100".into()));
    }
    if p.min_matches == 0 || p.min_refused == 0 {
        return Err(ApiError::InvalidQuery(
            "min_matches and min_refused must be at least 1".into(),
        ));
    }
    let thresholds = serde_json::json!({
        "factor": p.factor,
        "min_matches": p.min_matches,
        "min_refused": p.min_refused,
        "office_hours": format!("{:02}:00-{:02}:00 on working days (Europe/Amsterdam)", p.office_start_hour, p.office_end_hour),
    });
    let store = state.store.clone();
    let cal = state.policy().calendar.clone();
    let report = blocking(move || {
        query::anomalies(&store, &scope, &filter, &p, &cal).map_err(ApiError::from)
    })
    .await?;
    Ok(HttpResponse::Ok().json(AnomalyAnswer {
        filter: q.echo(),
        thresholds,
        report,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubjectBody {
    subject: serde_json::Value,
    #[serde(default)]
    networks: Option<Vec<String>>,
}

/// A signal on the person, as the access request shows it.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SubjectSignal {
    /// Public id.
    pub id: String,
    /// How it concerns the person.
    pub relation: crate::audit::subject::Relation,
    /// Organisation id.
    pub organisation: String,
    /// Organisation name.
    pub organisation_name: String,
    /// Network.
    pub network: String,
    /// Category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// `active`, `expired` or `withdrawn`.
    pub status: String,
    /// Withdrawal reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdraw_reason: Option<WithdrawReason>,
    /// Submitted.
    pub submitted_at: String,
    /// Valid until.
    pub valid_until: String,
    /// Withdrawn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawn_at: Option<String>,
}

/// One network's follow-up of a match, as the access request shows it.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SubjectFollowUp {
    /// Network.
    pub network: String,
    /// Stage.
    pub stage: crate::index::model::Stage,
    /// Closing reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_reason: Option<crate::index::model::CloseReason>,
}

/// A match on the person.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SubjectMatch {
    /// Handle.
    pub handle: String,
    /// Kind.
    pub kind: crate::index::model::MatchKind,
    /// Status.
    pub status: crate::index::model::MatchStatus,
    /// Formed.
    pub created_at: String,
    /// Last changed.
    pub updated_at: String,
    /// The follow-ups of the privacy officer's networks.
    pub follow_ups: Vec<SubjectFollowUp>,
}

/// The answer to a data-subject access request.
#[derive(Debug, Serialize, Deserialize)]
pub struct SubjectAnswer {
    /// When it was made.
    pub generated_at: String,
    /// The networks searched.
    pub networks: Vec<String>,
    /// The signals on the person (as subject or as parent/guardian).
    pub signals: Vec<SubjectSignal>,
    /// The matches those signals are or were in.
    pub matches: Vec<SubjectMatch>,
    /// Every logged access to those signals and matches, oldest first.
    pub accesses: Vec<EntryView>,
    /// Whether `accesses` stopped at its maximum (10,000): query the rest with
    /// `GET /v1/audit/entries?object=`.
    pub accesses_truncated: bool,
}

/// An access as a data subject's answer shows it: the ids of other people's signals
/// and matches that the same request named (a list page, a batch) are left out.
fn only_theirs(mut e: Entry, theirs: &[String]) -> Entry {
    let other =
        |id: &String| (id.starts_with("sig_") || id.starts_with("m_")) && !theirs.contains(id);
    e.related.retain(|id| !other(id));
    if e.object_id.as_ref().is_some_and(other) {
        e.object_id = None;
    }
    e
}

/// `POST /v1/audit/subject-access`: which signals, matches and accesses concern the
/// person whose key set (from `samenloop pseudonymise`) is given.
pub async fn subject_access(
    state: State,
    caller: Caller,
    audit: Audit,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    audit.set(Action::SubjectAccess, ObjectType::Person);
    let (scope, mine) = scope(&state, &caller)?;
    let body: SubjectBody = read_json(&req, payload, 64 * 1024).await?;
    let networks = match body.networks {
        None => mine,
        Some(ns) if ns.is_empty() => {
            return Err(ApiError::InvalidField {
                field: "/networks".into(),
                detail: "at least one network".into(),
            });
        }
        Some(ns) => {
            if ns.iter().any(|n| !mine.contains(n)) {
                return Err(ApiError::NotFound);
            }
            ns
        }
    };
    let keys = SubjectKeys::from_value(body.subject)
        .map_err(|e| ApiError::InvalidKeySet(e.to_string()))?;
    // A retired key id still finds what is kept under it (archived signals).
    if !state
        .directory()
        .key_ids
        .iter()
        .any(|k| k.key_id == keys.key_id)
    {
        return Err(ApiError::UnknownKeyId);
    }
    let st = state.clone();
    let nets = networks.clone();
    let answer = blocking(move || {
        let store = &st.store;
        let found = loop {
            // During a rotation of K_index, withdrawn signals not yet re-written keep
            // their archive entries in the previous epoch: look there too. A switch
            // between deriving and looking is seen by the epoch and the lookup redone.
            let ring = store.ring();
            let rekey = |ps: &[crate::pseudonym::Pseudonym], epoch: u32| -> Vec<_> {
                ps.iter().map(|p| ring.rekey_at(p, epoch)).collect()
            };
            let person = rekey(&keys.person, ring.epoch());
            let household = rekey(&keys.household, ring.epoch());
            let mut previous = Vec::new();
            if ring.epoch() > 0
                && store
                    .rotation_progress()
                    .running
                    .load(std::sync::atomic::Ordering::Relaxed)
            {
                previous = rekey(&keys.person, ring.epoch() - 1);
                previous.extend(rekey(&keys.household, ring.epoch() - 1));
            }
            let found = crate::audit::subject::find(store, &person, &household, &previous, &nets)?;
            if store.ring().epoch() == ring.epoch() {
                break found;
            }
        };
        let matches = crate::audit::subject::matches_of(store, &found, &nets)?;
        let now = st.now();
        let signals: Vec<SubjectSignal> = found
            .iter()
            .map(|f| {
                let s = &f.signal;
                let (status, reason) = crate::http::routes::signals::status_of(s, now);
                let at = match s.state {
                    SignalState::Withdrawn { at, .. } => Some(at),
                    SignalState::Active => None,
                };
                SubjectSignal {
                    id: s.public_id.clone(),
                    relation: f.relation,
                    organisation: s.org.clone(),
                    organisation_name: st
                        .cfg
                        .organisation(&s.org)
                        .map(|o| o.name.clone())
                        .unwrap_or_default(),
                    network: s.network.clone(),
                    category: s.category.clone(),
                    status: status.into(),
                    withdraw_reason: reason,
                    submitted_at: rfc3339(s.submitted_at),
                    valid_until: rfc3339(s.valid_until),
                    withdrawn_at: at.map(rfc3339),
                }
            })
            .collect();
        let mut views = Vec::new();
        for m in &matches {
            let mut follow_ups = Vec::new();
            for n in m.networks.iter().filter(|n| nets.contains(n)) {
                if let Some(f) = crate::index::followup::load(store, m.id, n)? {
                    follow_ups.push(SubjectFollowUp {
                        network: n.clone(),
                        stage: f.stage,
                        closed_reason: f.closed_reason,
                    });
                }
            }
            views.push(SubjectMatch {
                handle: m.handle.clone(),
                kind: m.kind,
                status: m.status,
                created_at: rfc3339(m.created_at),
                updated_at: rfc3339(m.updated_at),
                follow_ups,
            });
        }
        let ids: Vec<String> = signals
            .iter()
            .map(|s| s.id.clone())
            .chain(views.iter().map(|m| m.handle.clone()))
            .collect();
        let mut seqs = std::collections::BTreeSet::new();
        for id in &ids {
            for r in store.range(
                crate::audit::object_prefix(id),
                {
                    let mut e = crate::audit::object_prefix(id);
                    e.extend_from_slice(&u64::MAX.to_be_bytes());
                    e
                },
                false,
            ) {
                let (k, _) = r?;
                if let Some(s) = crate::audit::seq_of_index_key(&k) {
                    seqs.insert(s);
                }
            }
        }
        let mut accesses = Vec::new();
        let mut truncated = false;
        for s in seqs {
            if accesses.len() == MAX_SUBJECT_ACCESSES {
                truncated = true;
                break;
            }
            if let Some(e) = query::entry_at(store, s)?.and_then(|l| l.entry()) {
                if scope.sees(&e) {
                    accesses.push(EntryView::from(only_theirs(e, &ids)));
                }
            }
        }
        Ok::<_, ApiError>((
            SubjectAnswer {
                generated_at: rfc3339(now),
                networks: nets,
                signals,
                matches: views,
                accesses,
                accesses_truncated: truncated,
            },
            ids,
        ))
    })
    .await?;
    let (answer, ids) = answer;
    audit.related(ids);
    Ok(HttpResponse::Ok().json(answer))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointQuery {
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    before: Option<u64>,
}

/// A page of checkpoints.
#[derive(Debug, Serialize, Deserialize)]
pub struct CheckpointPage {
    /// Newest first.
    pub checkpoints: Vec<Checkpoint>,
}

/// `GET /v1/audit/checkpoints?limit=&before=`
pub async fn checkpoints(
    state: State,
    caller: Caller,
    audit: Audit,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    audit.set(Action::Search, ObjectType::Checkpoint);
    scope(&state, &caller)?;
    let q = crate::http::parse_query::<CheckpointQuery>(&req)?;
    let limit = q.limit.unwrap_or(20);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::InvalidQuery("limit must be 1 to 1000".into()));
    }
    let list = crate::audit::checkpoint::list(&state.store, q.before, limit)?;
    Ok(HttpResponse::Ok().json(CheckpointPage { checkpoints: list }))
}

/// `POST /v1/audit/checkpoints`: a checkpoint of the log as it is now (201), or the
/// newest one when it already covers the head (200).
pub async fn make_checkpoint(
    state: State,
    caller: Caller,
    audit: Audit,
) -> Result<HttpResponse, ApiError> {
    audit.set(Action::Create, ObjectType::Checkpoint);
    scope(&state, &caller)?;
    match crate::http::audit::checkpoint_now(&state).await? {
        Some((cp, new)) => {
            audit.object(&format!("cp_{}", cp.seq), None);
            let mut resp = if new {
                HttpResponse::Created()
            } else {
                HttpResponse::Ok()
            };
            Ok(resp.json(cp))
        }
        // An empty log: nothing to commit to (cannot happen behind the middleware,
        // which has logged earlier requests).
        None => Err(ApiError::NotFound),
    }
}

/// The answer of an online verification.
#[derive(Debug, Serialize, Deserialize)]
pub struct VerifyAnswer {
    /// When it ran.
    pub verified_at: String,
    /// Whether checkpoint signatures were checked (a checkpoint key is configured).
    pub signatures_checked: bool,
    /// What it found.
    #[serde(flatten)]
    pub report: crate::audit::verify::Report,
}

/// `GET /v1/audit/verify`: verifies the whole chain of the live log now.
pub async fn verify(state: State, caller: Caller, audit: Audit) -> Result<HttpResponse, ApiError> {
    audit.set(Action::Read, ObjectType::AccessLog);
    scope(&state, &caller)?;
    let st = state.clone();
    let report = blocking(move || {
        crate::audit::verify::verify_store(&st.store, st.checkpoints.verifier.as_ref(), Vec::new())
            .map_err(ApiError::from)
    })
    .await?;
    Ok(HttpResponse::Ok().json(VerifyAnswer {
        verified_at: rfc3339(state.now()),
        signatures_checked: state.checkpoints.verifier.is_some(),
        report,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_times_in_rfc_3339() {
        assert_eq!(parse_datetime("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_datetime("1970-01-01T01:00:01.5+01:00"), Some(1500));
        assert_eq!(parse_datetime("1970-01-01T00:00:00.123456Z"), Some(123));
        assert_eq!(parse_datetime("1970-01-01 00:00:00Z"), None);
        assert_eq!(parse_datetime("1970-01-01T24:00:00Z"), None);
        assert_eq!(parse_datetime("1970-01-01T00:00:00"), None);
        assert_eq!(parse_datetime("1970-02-30T00:00:00Z"), None);
    }
}
