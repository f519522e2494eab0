//! `/v1/signals`: partners submit, read, renew and withdraw their own signals.
//!
//! The answer to a submission is the same whether or not the signal matched: the
//! matching runs on the same path for every signal and its outcome is never returned.

use crate::audit::{Action, Entry, ObjectType};
use crate::http::audit::Audit;
use crate::http::auth::{Caller, Role};
use crate::http::error::{ApiError, Problem};
use crate::http::{State, read_json, rfc3339};
use crate::index::engine::{self, Effects, IdSource, NewSignal, SubmitOutcome};
use crate::index::model::{Contact, SignalRecord, SignalState, WithdrawReason};
use crate::pseudonym::SubjectKeys;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;

/// Body of one submission.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitBody {
    /// Network id.
    pub network: String,
    /// The key set from `samenloop pseudonymise` (spec/pseudonymisation.md §7).
    pub subject: serde_json::Value,
    /// Category from the network's list.
    #[serde(default)]
    pub category: Option<String>,
    /// Contact point of the handling professional or team.
    pub contact: Contact,
    /// Days the signal stays active (capped at the network's maximum).
    #[serde(default)]
    pub valid_days: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    signals: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RenewBody {
    #[serde(default)]
    valid_days: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WithdrawBody {
    reason: WithdrawReason,
}

/// What a partner sees of its own signal.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SignalView {
    /// Public id.
    pub id: String,
    /// The partner's reference.
    pub reference: String,
    /// Network.
    pub network: String,
    /// Category.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Contact point.
    pub contact: Contact,
    /// `active`, `expired` or `withdrawn`.
    pub status: String,
    /// Withdrawal reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdraw_reason: Option<WithdrawReason>,
    /// Submitted.
    pub submitted_at: String,
    /// Valid until.
    pub valid_until: String,
    /// What the coordinator did, once a coordinator acted on a match the signal is in;
    /// absent otherwise (exactly as for a signal that never matched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<FeedbackView>,
}

/// The partner feedback on an own signal ("terugkoppeling").
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FeedbackView {
    /// `picked_up` (a coordinator picked up a match the signal is in) or `closed`.
    pub status: String,
    /// For `closed`: the closing reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<crate::index::model::CloseReason>,
    /// When.
    pub at: String,
}

/// The view of an own signal with its feedback, if any.
fn shown(state: &State, rec: &SignalRecord, now: i64) -> Result<SignalView, ApiError> {
    use crate::index::model::Feedback;
    let mut v = view(rec, now);
    v.feedback = crate::index::followup::feedback(&state.store, rec.id)?.map(|f| match f {
        Feedback::PickedUp { at } => FeedbackView {
            status: "picked_up".into(),
            reason: None,
            at: rfc3339(at),
        },
        Feedback::Closed { reason, at } => FeedbackView {
            status: "closed".into(),
            reason: Some(reason),
            at: rfc3339(at),
        },
    });
    Ok(v)
}

/// A signal's status as the API names it (`active`, `expired`, `withdrawn`) and, for a
/// withdrawn one, the reason.
pub fn status_of(rec: &SignalRecord, now: i64) -> (&'static str, Option<WithdrawReason>) {
    match &rec.state {
        SignalState::Withdrawn { reason, .. } => ("withdrawn", Some(*reason)),
        SignalState::Active if now >= rec.valid_until => ("expired", None),
        SignalState::Active => ("active", None),
    }
}

fn view(rec: &SignalRecord, now: i64) -> SignalView {
    let (status, withdraw_reason) = status_of(rec, now);
    SignalView {
        id: rec.public_id.clone(),
        reference: rec.reference.clone(),
        network: rec.network.clone(),
        category: rec.category.clone(),
        contact: rec.contact.clone(),
        status: status.to_string(),
        withdraw_reason,
        submitted_at: rfc3339(rec.submitted_at),
        valid_until: rfc3339(rec.valid_until),
        feedback: None,
    }
}

/// Operating-system randomness for public ids.
pub struct OsIds;

impl IdSource for OsIds {
    fn random16(&mut self) -> [u8; 16] {
        let mut b = [0u8; 16];
        // getrandom only fails when the OS has no entropy source at all; then ids
        // stay unique through the counters they are paired with in the engine.
        let _ = getrandom::fill(&mut b);
        b
    }
}

fn invalid(field: &str, detail: &str) -> ApiError {
    ApiError::InvalidField {
        field: field.to_string(),
        detail: detail.to_string(),
    }
}

fn check_contact(c: &Contact) -> Result<(), ApiError> {
    let name = c.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(invalid(
            "/contact/name",
            "1 to 100 characters, no control characters",
        ));
    }
    if let Some(p) = &c.phone {
        let digits = p.chars().filter(char::is_ascii_digit).count();
        if !(6..=20).contains(&digits)
            || p.len() > 30
            || !p
                .chars()
                .all(|ch| ch.is_ascii_digit() || " +-()".contains(ch))
        {
            return Err(invalid(
                "/contact/phone",
                "a phone number: 6 to 20 digits, spaces, +, -, ( and )",
            ));
        }
    }
    if let Some(e) = &c.email {
        let ok = e.len() <= 254
            && !e.chars().any(|ch| ch.is_whitespace() || ch.is_control())
            && e.split_once('@').is_some_and(|(l, d)| {
                !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.')
            });
        if !ok {
            return Err(invalid("/contact/email", "an e-mail address"));
        }
    }
    Ok(())
}

/// The checks of a submission body that need no server state, in the order the
/// handlers make them: the JSON shape (one signal, or a batch and then each item), the
/// key set, the validity and the contact point. Used by the fuzz targets
/// ([`crate::fuzz`]); the handlers make the same checks inside [`prepare`].
pub fn check_submission(bytes: &[u8]) -> Result<(), ApiError> {
    let one = |b: SubmitBody| -> Result<(), ApiError> {
        SubjectKeys::from_value(b.subject).map_err(|e| ApiError::InvalidKeySet(e.to_string()))?;
        if b.valid_days == Some(0) {
            return Err(invalid("/valid_days", "at least 1"));
        }
        check_contact(&b.contact)
    };
    match serde_json::from_slice::<BatchBody>(bytes) {
        Ok(batch) => {
            for raw in batch.signals {
                serde_json::from_value::<SubmitBody>(raw)
                    .map_err(|e| crate::http::error::json_error(&e))
                    .and_then(one)?;
            }
            Ok(())
        }
        Err(_) => serde_json::from_slice::<SubmitBody>(bytes)
            .map_err(|e| crate::http::error::json_error(&e))
            .and_then(one),
    }
}

/// A suspended organisation may read and withdraw its signals, not submit or renew.
fn not_suspended(state: &State, caller: &Caller) -> Result<(), ApiError> {
    match state.directory().organisation(&caller.org) {
        Some(o) if o.suspended => Err(ApiError::OrganisationSuspended),
        _ => Ok(()),
    }
}

/// Validates one submission into a [`NewSignal`].
fn prepare(
    state: &State,
    ring: &crate::index::IndexKey,
    caller: &Caller,
    body: SubmitBody,
    now: i64,
) -> Result<NewSignal, ApiError> {
    let directory = state.directory();
    let network = directory.network(&body.network).ok_or(ApiError::NotFound)?;
    let member = directory
        .organisation(&caller.org)
        .is_some_and(|o| o.networks.iter().any(|n| n == &network.id));
    if !member || !caller.in_network(&network.id) {
        return Err(ApiError::NotFound);
    }
    let keys = SubjectKeys::from_value(body.subject)
        .map_err(|e| ApiError::InvalidKeySet(e.to_string()))?;
    if !directory.accepts(&keys.key_id) {
        return Err(ApiError::UnknownKeyId);
    }
    if let Some(c) = &body.category {
        if !network.categories.iter().any(|x| x == c) {
            return Err(ApiError::UnknownCategory);
        }
    }
    check_contact(&body.contact)?;
    let days = match body.valid_days {
        Some(0) => return Err(invalid("/valid_days", "at least 1")),
        Some(d) => d.min(network.max_validity_days),
        None => network.max_validity_days,
    };
    let canonical = serde_json::json!({
        "network": network.id,
        "subject": serde_json::from_str::<serde_json::Value>(&keys.to_json()).unwrap_or_default(),
        "category": body.category,
        "contact": body.contact,
        "valid_days": body.valid_days,
    });
    let content_hash = ring.hash("samenloop/content", canonical.to_string().as_bytes());
    let rekey =
        |ps: &[crate::pseudonym::Pseudonym]| ps.iter().map(|p| ring.rekey(p)).collect::<Vec<_>>();
    Ok(NewSignal {
        org: caller.org.clone(),
        network: network.id.clone(),
        reference: keys.reference.clone(),
        category: body.category,
        contact: body.contact,
        key_id: keys.key_id.clone(),
        valid_until: now + i64::from(days) * 86_400,
        person: rekey(&keys.person),
        household: rekey(&keys.household),
        family: keys.family.iter().map(|f| rekey(f)).collect(),
        content_hash,
    })
}

fn record_effects(state: &State, fx: &Effects, created: u64) {
    let m = &state.metrics;
    m.signals_created.fetch_add(created, Ordering::Relaxed);
    m.matches_formed
        .fetch_add(fx.matches_formed, Ordering::Relaxed);
    m.alerts_written.fetch_add(fx.alerts, Ordering::Relaxed);
    m.saturated_keys
        .fetch_add(fx.saturated_keys, Ordering::Relaxed);
    m.refused_merges
        .fetch_add(fx.refused_merges, Ordering::Relaxed);
}

/// How a submission's access-log entry is completed in its transaction.
enum Log {
    /// One signal: its status (201, 200 or 409) and id.
    One(Entry),
    /// A batch: status 200, the stored signals as `related`.
    Batch(Entry),
}

/// Runs submissions on the writer and returns each outcome with the stored signal; the
/// access-log entry (if any) is appended in the same transaction. The items' keys were
/// derived in index epoch `epoch`: if a rotation of `K_index` switched the ring since,
/// they are lifted on the writer, where the switch is serialised with every write.
async fn store_all(
    state: &State,
    items: Vec<NewSignal>,
    epoch: u32,
    now: i64,
    log: Option<Log>,
) -> Result<Vec<(SubmitOutcome, Option<SignalRecord>)>, ApiError> {
    let policy = state.policy();
    let (results, fx) = state
        .writer
        .run(move |kv| {
            let mut fx = Effects::default();
            let mut out = Vec::with_capacity(items.len());
            let mut stored = Vec::new();
            let mut last = (0u16, String::new());
            let ring = kv.index_ring();
            for mut item in items {
                if let Some(r) = &ring {
                    r.lift_new(&mut item, epoch);
                }
                let outcome = engine::submit(kv, &policy, item, now, &mut OsIds, &mut fx)?;
                let (status, id) = match &outcome {
                    SubmitOutcome::Created { public_id, .. } => (201, public_id.clone()),
                    SubmitOutcome::Existing { public_id }
                    | SubmitOutcome::Rekeyed { public_id, .. } => (200, public_id.clone()),
                    SubmitOutcome::Conflict { public_id } => (409, public_id.clone()),
                };
                if status != 409 {
                    stored.push(id.clone());
                }
                let rec = engine::signal_by_public_id(&*kv, &id)?;
                last = (status, id);
                out.push((outcome, rec));
            }
            match log {
                Some(Log::One(mut e)) => {
                    e.status = last.0;
                    e.outcome = crate::audit::Outcome::of_status(last.0, false);
                    e.object_id = Some(last.1);
                    crate::audit::append(kv, e)?;
                }
                Some(Log::Batch(mut e)) => {
                    e.related = stored;
                    crate::audit::append(kv, e)?;
                }
                None => {}
            }
            Ok((out, fx))
        })
        .await?;
    let created = results
        .iter()
        .filter(|(o, _)| matches!(o, SubmitOutcome::Created { .. }))
        .count() as u64;
    record_effects(state, &fx, created);
    Ok(results)
}

fn answer(
    state: &State,
    outcome: &SubmitOutcome,
    rec: Option<&SignalRecord>,
    now: i64,
) -> Result<(u16, SignalView), ApiError> {
    let rec = rec.ok_or(ApiError::Internal)?;
    match outcome {
        SubmitOutcome::Created { .. } => Ok((201, shown(state, rec, now)?)),
        SubmitOutcome::Existing { .. } | SubmitOutcome::Rekeyed { .. } => {
            Ok((200, shown(state, rec, now)?))
        }
        SubmitOutcome::Conflict { .. } => Err(ApiError::ReferenceConflict),
    }
}

/// `POST /v1/signals`
pub async fn submit(
    state: State,
    caller: Caller,
    audit: Audit,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    audit.set(Action::Create, ObjectType::Signal);
    caller.require(&[Role::Partner])?;
    not_suspended(&state, &caller)?;
    let body: SubmitBody = read_json(&req, payload, state.cfg.limits.max_body_bytes).await?;
    state.rate_limit(&caller.org, 1)?;
    let now = state.now();
    let ring = state.store.ring();
    let item = prepare(&state, &ring, &caller, body, now)?;
    audit.network(&item.network);
    let log = audit.draft(&state, 201).map(Log::One);
    let mut results = store_all(&state, vec![item], ring.epoch(), now, log).await?;
    audit.logged();
    let (outcome, rec) = results.pop().ok_or(ApiError::Internal)?;
    let (status, v) = answer(&state, &outcome, rec.as_ref(), now)?;
    let mut resp = if status == 201 {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(resp
        .insert_header(("Location", format!("/v1/signals/{}", v.id)))
        .json(v))
}

/// One item of a batch answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct BatchItem {
    /// Position in the request.
    pub index: usize,
    /// 201 created, 200 already stored, or the problem's status.
    pub status: u16,
    /// The signal, when stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<SignalView>,
    /// The problem, when refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
}

/// The answer to a batch.
#[derive(Debug, Serialize, Deserialize)]
pub struct BatchAnswer {
    /// Items stored (new or already stored).
    pub accepted: usize,
    /// Items refused.
    pub rejected: usize,
    /// Per item, in request order.
    pub results: Vec<BatchItem>,
}

/// `POST /v1/signals/batch`: every good item is stored, bad ones are reported per item.
pub async fn batch(
    state: State,
    caller: Caller,
    audit: Audit,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    audit.set(Action::Create, ObjectType::Signal);
    caller.require(&[Role::Partner])?;
    not_suspended(&state, &caller)?;
    let body: BatchBody = read_json(&req, payload, state.cfg.limits.max_body_bytes).await?;
    if body.signals.len() > state.cfg.limits.max_batch {
        return Err(ApiError::BatchTooLarge(state.cfg.limits.max_batch));
    }
    if body.signals.is_empty() {
        return Err(invalid("/signals", "at least one signal"));
    }
    state.rate_limit(&caller.org, body.signals.len() as u32)?;
    let now = state.now();
    let ring = state.store.ring();
    let mut results: Vec<Option<BatchItem>> = Vec::with_capacity(body.signals.len());
    let mut items = Vec::new();
    let mut positions = Vec::new();
    for (index, raw) in body.signals.into_iter().enumerate() {
        let prepared = serde_json::from_value::<SubmitBody>(raw)
            .map_err(|e| crate::http::error::json_error(&e))
            .and_then(|b| prepare(&state, &ring, &caller, b, now));
        match prepared {
            Ok(item) => {
                items.push(item);
                positions.push(index);
                results.push(None);
            }
            Err(e) => {
                state.metrics.problem(e.code());
                results.push(Some(BatchItem {
                    index,
                    status: e.status().as_u16(),
                    signal: None,
                    problem: Some(e.problem()),
                }))
            }
        }
    }
    if !items.is_empty() {
        // One network per batch item; the entry names one when they all agree.
        if let Some(first) = items.first().map(|i| i.network.clone()) {
            if items.iter().all(|i| i.network == first) {
                audit.network(&first);
            }
        }
        let log = audit.draft(&state, 200).map(Log::Batch);
        let stored = store_all(&state, items, ring.epoch(), now, log).await?;
        audit.logged();
        for (index, (outcome, rec)) in positions.into_iter().zip(stored) {
            results[index] = Some(match answer(&state, &outcome, rec.as_ref(), now) {
                Ok((status, v)) => BatchItem {
                    index,
                    status,
                    signal: Some(v),
                    problem: None,
                },
                Err(e) => {
                    state.metrics.problem(e.code());
                    BatchItem {
                        index,
                        status: e.status().as_u16(),
                        signal: None,
                        problem: Some(e.problem()),
                    }
                }
            });
        }
    }
    let results: Vec<BatchItem> = results.into_iter().flatten().collect();
    let accepted = results.iter().filter(|r| r.status < 300).count();
    Ok(HttpResponse::Ok().json(BatchAnswer {
        accepted,
        rejected: results.len() - accepted,
        results,
    }))
}

/// The caller's own signal with this public id. A signal of another organisation
/// answers exactly like one that does not exist; the log records which it was.
fn own(state: &State, caller: &Caller, audit: &Audit, id: &str) -> Result<SignalRecord, ApiError> {
    if id.len() > 64 {
        return Err(ApiError::NotFound);
    }
    let rec = engine::signal_by_public_id(&state.store, id)?.ok_or(ApiError::NotFound)?;
    audit.object(&rec.public_id, Some(&rec.network));
    if rec.org != caller.org || !caller.in_network(&rec.network) {
        audit.scope_denied();
        return Err(ApiError::NotFound);
    }
    Ok(rec)
}

/// `GET /v1/signals/{id}`
pub async fn get(
    state: State,
    caller: Caller,
    audit: Audit,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    audit.set(Action::Read, ObjectType::Signal);
    caller.require(&[Role::Partner])?;
    let rec = own(&state, &caller, &audit, &path)?;
    Ok(HttpResponse::Ok().json(shown(&state, &rec, state.now())?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LookupQuery {
    network: String,
    reference: String,
}

/// `GET /v1/signals?network=…&reference=…`: find an own signal by reference.
pub async fn lookup(
    state: State,
    caller: Caller,
    audit: Audit,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    audit.set(Action::Search, ObjectType::Signal);
    caller.require(&[Role::Partner])?;
    let q = crate::http::parse_query::<LookupQuery>(&req)?;
    if q.reference.len() > 100 || !caller.in_network(&q.network) {
        return Err(ApiError::NotFound);
    }
    let key = engine::reference_key(&caller.org, &q.network, &q.reference);
    let id = crate::index::engine::KvRead::get(&state.store, &key)?.ok_or(ApiError::NotFound)?;
    let id = u64::from_be_bytes(id.as_slice().try_into().map_err(|_| ApiError::Internal)?);
    let rec = engine::signal_by_id(&state.store, id)?.ok_or(ApiError::NotFound)?;
    audit.object(&rec.public_id, Some(&rec.network));
    Ok(HttpResponse::Ok().json(shown(&state, &rec, state.now())?))
}

/// Applies `change` to an own signal on the writer, if `still` holds for it there
/// (the state may have changed since it was read); otherwise `signal-not-active`.
async fn change_own(
    state: &State,
    audit: &Audit,
    id: String,
    now: i64,
    still: impl Fn(&SignalRecord) -> bool + Send + 'static,
    change: impl FnOnce(&mut dyn engine::Kv, &SignalRecord) -> Result<SignalRecord, engine::EngineError>
    + Send
    + 'static,
) -> Result<HttpResponse, ApiError> {
    let log = audit.draft(state, 200);
    let updated = state
        .writer
        .run(move |kv| match engine::signal_by_public_id(&*kv, &id)? {
            Some(c) if still(&c) => {
                let updated = change(kv, &c)?;
                if let Some(e) = log {
                    crate::audit::append(kv, e)?;
                }
                Ok(Some(updated))
            }
            _ => Ok(None),
        })
        .await?
        .ok_or(ApiError::SignalNotActive)?;
    audit.logged();
    Ok(HttpResponse::Ok().json(shown(state, &updated, now)?))
}

/// `POST /v1/signals/{id}/renew`
pub async fn renew(
    state: State,
    caller: Caller,
    audit: Audit,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    audit.set(Action::Update, ObjectType::Signal);
    caller.require(&[Role::Partner])?;
    not_suspended(&state, &caller)?;
    let body: RenewBody = read_json(&req, payload, 4096).await?;
    let rec = own(&state, &caller, &audit, &path)?;
    let now = state.now();
    if !rec.is_active(now) {
        return Err(ApiError::SignalNotActive);
    }
    let max = state
        .directory()
        .network(&rec.network)
        .map(|n| n.max_validity_days)
        .unwrap_or(1);
    let days = match body.valid_days {
        Some(0) => return Err(invalid("/valid_days", "at least 1")),
        Some(d) => d.min(max),
        None => max,
    };
    let until = now + i64::from(days) * 86_400;
    change_own(
        &state,
        &audit,
        rec.public_id,
        now,
        move |c| c.is_active(now),
        move |kv, c| engine::renew(kv, c, until, now),
    )
    .await
}

/// `POST /v1/signals/{id}/withdraw`
pub async fn withdraw(
    state: State,
    caller: Caller,
    audit: Audit,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    audit.set(Action::Withdraw, ObjectType::Signal);
    caller.require(&[Role::Partner])?;
    let body: WithdrawBody = read_json(&req, payload, 4096).await?;
    let rec = own(&state, &caller, &audit, &path)?;
    let now = state.now();
    let reason = body.reason;
    let policy = state.policy();
    change_own(
        &state,
        &audit,
        rec.public_id,
        now,
        |c| c.state == SignalState::Active,
        move |kv, c| {
            // A re-keyed signal's shadow (its old keys) goes first, leaving the signal
            // itself to close what it alone made possible.
            if let Some(shadow) = engine::shadow_of(&*kv, c.id)? {
                engine::drop_shadow(kv, &policy, &mut OsIds, &shadow, now)?;
            }
            let w = engine::withdraw(kv, c, reason, now)?;
            // Matches it alone made possible close; their coordinators are told.
            engine::leave(kv, &policy, &mut OsIds, &w, now)?;
            // Unjustified: nothing of it is kept (the answer is the last sight of it).
            if reason == WithdrawReason::Unjustified {
                engine::erase(kv, &w)?;
            }
            Ok(w)
        },
    )
    .await
}
