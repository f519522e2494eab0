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

// ---- The directory: organisations, network settings, excluded addresses ----

use crate::directory::{self, Excluded, NetworkSettings, Organisation};
use crate::index::engine::Kv;
use serde::Serialize;

/// Longest display name or label.
const MAX_NAME: usize = 200;
/// Largest body of a directory change.
const MAX_BODY: usize = 16 * 1024;

fn invalid(field: &str, detail: &str) -> ApiError {
    ApiError::InvalidField {
        field: field.into(),
        detail: detail.into(),
    }
}

/// A display name or label: 1 to 200 characters, no control characters.
fn check_text(field: &str, s: &str) -> Result<(), ApiError> {
    if s.trim().is_empty() || s.chars().count() > MAX_NAME || s.chars().any(char::is_control) {
        return Err(invalid(
            field,
            "must be 1 to 200 characters, without control characters",
        ));
    }
    Ok(())
}

fn check_networks(state: &State, field: &str, nets: &[String]) -> Result<(), ApiError> {
    if nets.is_empty() || nets.len() > 64 {
        return Err(invalid(field, "must list 1 to 64 networks"));
    }
    for (i, n) in nets.iter().enumerate() {
        if state.cfg.network(n).is_none() {
            return Err(invalid(&format!("{field}/{i}"), "no such network"));
        }
        if nets[..i].contains(n) {
            return Err(invalid(&format!("{field}/{i}"), "listed twice"));
        }
    }
    Ok(())
}

/// Writes `put` (and removes `remove`) with the request's access-log entry in one
/// transaction, then puts the changed directory in force.
async fn commit(
    state: &State,
    audit: &Audit,
    status: u16,
    put: Option<(Vec<u8>, Vec<u8>)>,
    remove: Option<Vec<u8>>,
) -> Result<(), ApiError> {
    let entry = audit.draft(state, status);
    state
        .writer
        .run(move |kv: &mut dyn Kv| {
            if let Some((k, v)) = put {
                kv.put(k, v);
            }
            if let Some(k) = remove {
                kv.remove(k);
            }
            if let Some(e) = entry {
                crate::audit::append(kv, e)?;
            }
            Ok(())
        })
        .await?;
    audit.logged();
    state.reload_directory()?;
    Ok(())
}

/// `GET /v1/admin/organisations`: every member organisation, suspended ones included.
pub async fn organisations(
    state: State,
    caller: Caller,
    audit: Audit,
) -> Result<HttpResponse, ApiError> {
    audit.set(Action::Search, ObjectType::Organisation);
    caller.require(&[Role::Admin])?;
    let d = state.directory();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "organisations": d.organisations })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOrganisation {
    id: String,
    name: String,
    networks: Vec<String>,
}

/// `POST /v1/admin/organisations`: adds a member organisation; its tokens work at once.
pub async fn add_organisation(
    state: State,
    caller: Caller,
    audit: Audit,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    audit.set(Action::Create, ObjectType::Organisation);
    caller.require(&[Role::Admin])?;
    let body: NewOrganisation = read_json(&req, payload, MAX_BODY).await?;
    if !crate::config::valid_id(&body.id) {
        return Err(invalid("/id", "must be 1-64 of a-z, 0-9, '-', '_'"));
    }
    check_text("/name", &body.name)?;
    check_networks(&state, "/networks", &body.networks)?;
    let _held = state.admin_lock.lock().await;
    if state.directory().organisation(&body.id).is_some() {
        return Err(ApiError::AlreadyExists(
            "an organisation with this id exists".into(),
        ));
    }
    let org = Organisation {
        id: body.id,
        name: body.name,
        networks: body.networks,
        suspended: false,
        changed_at: Some(state.now()),
    };
    audit.object(&org.id, None);
    let value = serde_json::to_vec(&org).map_err(|_| ApiError::Internal)?;
    commit(
        &state,
        &audit,
        201,
        Some((directory::org_key(&org.id), value)),
        None,
    )
    .await?;
    Ok(HttpResponse::Created().json(org))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrganisationPatch {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    networks: Option<Vec<String>>,
    #[serde(default)]
    suspended: Option<bool>,
}

/// `PATCH /v1/admin/organisations/{id}`: renames, changes networks, suspends or
/// reinstates an organisation. Its signals stay as they are.
pub async fn change_organisation(
    state: State,
    caller: Caller,
    audit: Audit,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    audit.set(Action::Update, ObjectType::Organisation);
    caller.require(&[Role::Admin])?;
    if state.directory().organisation(&path).is_some() {
        audit.object(&path, None);
    }
    let body: OrganisationPatch = read_json(&req, payload, MAX_BODY).await?;
    if let Some(n) = &body.name {
        check_text("/name", n)?;
    }
    if let Some(n) = &body.networks {
        check_networks(&state, "/networks", n)?;
    }
    let _held = state.admin_lock.lock().await;
    let mut org = state
        .directory()
        .organisation(&path)
        .cloned()
        .ok_or(ApiError::NotFound)?;
    audit.object(&org.id, None);
    if let Some(n) = body.name {
        org.name = n;
    }
    if let Some(n) = body.networks {
        org.networks = n;
    }
    if let Some(s) = body.suspended {
        org.suspended = s;
    }
    org.changed_at = Some(state.now());
    let value = serde_json::to_vec(&org).map_err(|_| ApiError::Internal)?;
    commit(
        &state,
        &audit,
        200,
        Some((directory::org_key(&org.id), value)),
        None,
    )
    .await?;
    Ok(HttpResponse::Ok().json(org))
}

/// A network as the admin API shows it.
#[derive(Debug, Serialize)]
struct NetworkView {
    id: String,
    #[serde(flatten)]
    settings: NetworkSettings,
    /// Whether alerts go to a webhook (set in the configuration file only).
    webhook: bool,
}

fn network_view(state: &State, id: &str) -> Option<NetworkView> {
    let d = state.directory();
    let n = d.network(id)?;
    let mut settings = NetworkSettings::of(n);
    if d.changed_networks.contains(id) {
        settings.changed_at =
            crate::index::engine::KvRead::get(&state.store, &directory::network_key(id))
                .ok()
                .flatten()
                .and_then(|v| serde_json::from_slice::<NetworkSettings>(&v).ok())
                .and_then(|s| s.changed_at);
    }
    Some(NetworkView {
        id: n.id.clone(),
        settings,
        webhook: n.webhook.is_some(),
    })
}

/// `GET /v1/admin/networks`: every network's settings.
pub async fn networks(
    state: State,
    caller: Caller,
    audit: Audit,
) -> Result<HttpResponse, ApiError> {
    audit.set(Action::Search, ObjectType::Network);
    caller.require(&[Role::Admin])?;
    let views: Vec<NetworkView> = state
        .cfg
        .networks
        .iter()
        .filter_map(|n| network_view(&state, &n.id))
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "networks": views })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkPatch {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    coordinator_contact: Option<String>,
    #[serde(default)]
    categories: Option<Vec<String>>,
    #[serde(default)]
    match_threshold: Option<usize>,
    #[serde(default)]
    max_validity_days: Option<u32>,
    #[serde(default)]
    acknowledge_within_days: Option<u32>,
    #[serde(default)]
    decide_within_days: Option<u32>,
    #[serde(default)]
    closed_match_days: Option<u32>,
}

/// `PATCH /v1/admin/networks/{id}`: changes a network's settings. They apply from the
/// next request on: a new threshold to the next change of an entity or household,
/// new deadlines to the next new or reopened match, a shorter validity to new
/// submissions and renewals (stored signals keep their end), a closed-match period to
/// the next retention run.
pub async fn change_network(
    state: State,
    caller: Caller,
    audit: Audit,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    audit.set(Action::Update, ObjectType::Network);
    caller.require(&[Role::Admin])?;
    // Refusals of bad bodies are logged against the network too.
    if state.cfg.network(&path).is_some() {
        audit.object(&path, Some(&path));
    }
    let body: NetworkPatch = read_json(&req, payload, MAX_BODY).await?;
    let _held = state.admin_lock.lock().await;
    let mut n = state
        .directory()
        .network(&path)
        .cloned()
        .ok_or(ApiError::NotFound)?;
    audit.object(&n.id, Some(&n.id));
    if let Some(v) = body.name {
        n.name = v;
    }
    if let Some(v) = body.coordinator_contact {
        n.coordinator_contact = v;
    }
    if let Some(v) = body.categories {
        if v.len() > 256 {
            return Err(invalid("/categories", "at most 256 categories"));
        }
        n.categories = v;
    }
    if let Some(v) = body.match_threshold {
        n.match_threshold = v;
    }
    if let Some(v) = body.max_validity_days {
        n.max_validity_days = v;
    }
    if let Some(v) = body.acknowledge_within_days {
        n.acknowledge_within_days = v;
    }
    if let Some(v) = body.decide_within_days {
        n.decide_within_days = v;
    }
    if let Some(v) = body.closed_match_days {
        n.closed_match_days = v;
    }
    check_text("/name", &n.name)?;
    check_text("/coordinator_contact", &n.coordinator_contact)?;
    // `categories[2]` → `/categories/2`.
    n.check_settings().map_err(|(setting, message)| {
        invalid(
            &format!("/{}", setting.replace('[', "/").replace(']', "")),
            message,
        )
    })?;
    let mut settings = NetworkSettings::of(&n);
    settings.changed_at = Some(state.now());
    let value = serde_json::to_vec(&settings).map_err(|_| ApiError::Internal)?;
    commit(
        &state,
        &audit,
        200,
        Some((directory::network_key(&n.id), value)),
        None,
    )
    .await?;
    let view = network_view(&state, &n.id).ok_or(ApiError::Internal)?;
    Ok(HttpResponse::Ok().json(view))
}

/// An excluded address as the admin API shows it (never its pseudonym).
#[derive(Debug, Serialize)]
struct ExcludedView {
    id: String,
    label: String,
    key_id: String,
    added_at: String,
    added_by: String,
}

impl ExcludedView {
    fn of(e: &Excluded) -> ExcludedView {
        ExcludedView {
            id: e.id.clone(),
            label: e.label.clone(),
            key_id: e.key_id.clone(),
            added_at: crate::http::rfc3339(e.added_at),
            added_by: e.added_by.clone(),
        }
    }
}

/// `GET /v1/admin/excluded-addresses`: the list entered through the API (the
/// configuration file's `domain.excluded_address_keys` apply besides; they are counted).
pub async fn excluded(
    state: State,
    caller: Caller,
    audit: Audit,
) -> Result<HttpResponse, ApiError> {
    audit.set(Action::Search, ObjectType::ExcludedAddress);
    caller.require(&[Role::Admin])?;
    let d = state.directory();
    let list: Vec<ExcludedView> = d
        .excluded
        .iter()
        .map(|(_, e)| ExcludedView::of(e))
        .collect();
    audit.related(list.iter().map(|e| e.id.clone()));
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "excluded_addresses": list,
        "from_configuration": state.cfg.domain.excluded_address_keys.len(),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewExcluded {
    key_id: String,
    key: String,
    label: String,
}

/// `POST /v1/admin/excluded-addresses`: puts an institutional address on the list, as
/// the address key (`adr:…`) that `samenloop pseudonymise` computes for it. From the
/// next submission on it links no household.
pub async fn add_excluded(
    state: State,
    caller: Caller,
    audit: Audit,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    audit.set(Action::Create, ObjectType::ExcludedAddress);
    caller.require(&[Role::Admin])?;
    let body: NewExcluded = read_json(&req, payload, MAX_BODY).await?;
    if !state.directory().accepts(&body.key_id) {
        return Err(ApiError::UnknownKeyId);
    }
    check_text("/label", &body.label)?;
    // Held before the key is derived: a rotation of the index key takes the lock too, so
    // the P2 is in the epoch the list is in.
    let _held = state.admin_lock.lock().await;
    let p2 = directory::address_p2(&body.key, &state.store.ring())
        .ok_or_else(|| invalid("/key", "must be an address key in wire form (adr:…)"))?;
    if state.directory().policy.excluded_addresses.contains(&p2) {
        return Err(ApiError::AlreadyExists(
            "this address is on the list".into(),
        ));
    }
    let mut id = [0u8; 8];
    getrandom::fill(&mut id).map_err(|_| ApiError::Internal)?;
    let entry = Excluded {
        id: format!(
            "exa_{}",
            id.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ),
        label: body.label,
        key_id: body.key_id,
        added_at: state.now(),
        added_by: caller.sub.clone(),
    };
    audit.object(&entry.id, None);
    let value = serde_json::to_vec(&entry).map_err(|_| ApiError::Internal)?;
    commit(
        &state,
        &audit,
        201,
        Some((directory::excluded_key(&p2), value)),
        None,
    )
    .await?;
    Ok(HttpResponse::Created().json(ExcludedView::of(&entry)))
}

/// `DELETE /v1/admin/excluded-addresses/{id}`: takes an address off the list; from the
/// next submission on it links households again (with every signal that holds it).
pub async fn remove_excluded(
    state: State,
    caller: Caller,
    audit: Audit,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    audit.set(Action::Update, ObjectType::ExcludedAddress);
    caller.require(&[Role::Admin])?;
    let _held = state.admin_lock.lock().await;
    let d = state.directory();
    let (p2, e) = d
        .excluded
        .iter()
        .find(|(_, e)| e.id == *path)
        .ok_or(ApiError::NotFound)?;
    audit.object(&e.id, None);
    commit(&state, &audit, 204, None, Some(directory::excluded_key(p2))).await?;
    Ok(HttpResponse::NoContent().finish())
}

// ---- Domain key ids: the transition window ----

use crate::directory::{DomainKeyId, KeyIdState};

/// A domain key id as the admin API shows it.
#[derive(Debug, Serialize)]
struct KeyIdView {
    key_id: String,
    state: KeyIdState,
    /// Whether it is the newest accepted one: stored signals resubmitted by reference
    /// under it are re-keyed.
    current: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    added_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retired_at: Option<String>,
    /// Retired: whether the sweep over its signals has finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    swept: Option<bool>,
}

fn key_id_view(state: &State, k: &DomainKeyId) -> Result<KeyIdView, ApiError> {
    let swept = match k.state {
        KeyIdState::Retired => Some(crate::index::transition::swept(&state.store, &k.key_id)?),
        KeyIdState::Accepted => None,
    };
    Ok(KeyIdView {
        key_id: k.key_id.clone(),
        state: k.state,
        current: state.policy().current_key_id.as_deref() == Some(k.key_id.as_str()),
        added_at: k.added_at.map(crate::http::rfc3339),
        retired_at: k.retired_at.map(crate::http::rfc3339),
        swept,
    })
}

/// `GET /v1/admin/domain-keys`: the domain key ids, oldest first.
pub async fn key_ids(state: State, caller: Caller, audit: Audit) -> Result<HttpResponse, ApiError> {
    audit.set(Action::Search, ObjectType::DomainKey);
    caller.require(&[Role::Admin])?;
    let d = state.directory();
    let list = d
        .key_ids
        .iter()
        .map(|k| key_id_view(&state, k))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "key_ids": list })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKeyId {
    key_id: String,
}

/// `POST /v1/admin/domain-keys`: accepts key sets under a new domain key id, which
/// becomes the newest: the transition window opens.
pub async fn add_key_id(
    state: State,
    caller: Caller,
    audit: Audit,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    audit.set(Action::Create, ObjectType::DomainKey);
    caller.require(&[Role::Admin])?;
    let body: NewKeyId = read_json(&req, payload, MAX_BODY).await?;
    if crate::pseudonym::KeyId::parse(&body.key_id).is_none() {
        return Err(invalid("/key_id", "not a valid domain key id"));
    }
    let _held = state.admin_lock.lock().await;
    if state
        .directory()
        .key_ids
        .iter()
        .any(|k| k.key_id == body.key_id)
    {
        return Err(ApiError::AlreadyExists(
            "this domain key id is known (accepted or retired)".into(),
        ));
    }
    let k = DomainKeyId {
        key_id: body.key_id,
        state: KeyIdState::Accepted,
        added_at: Some(state.now()),
        retired_at: None,
    };
    audit.object(&k.key_id, None);
    let value = serde_json::to_vec(&k).map_err(|_| ApiError::Internal)?;
    commit(
        &state,
        &audit,
        201,
        Some((directory::key_id_key(&k.key_id), value)),
        None,
    )
    .await?;
    Ok(HttpResponse::Created().json(key_id_view(&state, &k)?))
}

/// `POST /v1/admin/domain-keys/{id}/retire`: ends the transition window of an old key
/// id: key sets under it are refused from now on, and a sweep (started at once, resumed
/// by every retention run until done) drops the shadows of re-keyed signals and ends
/// every other active signal under it, which the retention job archives as expired.
pub async fn retire_key_id(
    state: State,
    caller: Caller,
    audit: Audit,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    audit.set(Action::Update, ObjectType::DomainKey);
    caller.require(&[Role::Admin])?;
    let k = {
        let _held = state.admin_lock.lock().await;
        let d = state.directory();
        let mut k = d
            .key_ids
            .iter()
            .find(|k| k.key_id == *path)
            .cloned()
            .ok_or(ApiError::NotFound)?;
        audit.object(&k.key_id, None);
        if k.state == KeyIdState::Retired {
            return Err(ApiError::InvalidTransition(
                "the key id is retired already".into(),
            ));
        }
        if d.policy.current_key_id.as_deref() == Some(k.key_id.as_str()) {
            return Err(ApiError::InvalidTransition(
                "the newest accepted key id cannot be retired: add its successor first".into(),
            ));
        }
        k.state = KeyIdState::Retired;
        k.retired_at = Some(state.now());
        let value = serde_json::to_vec(&k).map_err(|_| ApiError::Internal)?;
        commit(
            &state,
            &audit,
            200,
            Some((directory::key_id_key(&k.key_id), value)),
            None,
        )
        .await?;
        k
    };
    // The sweep runs beside the requests, as a retention run.
    let st = state.clone();
    actix_web::rt::spawn(async move {
        if crate::http::retention::run_once(&st, false).await.is_err() {
            eprintln!(
                "samenloop: the retention run after a key retirement failed; the next one resumes it"
            );
        }
    });
    Ok(HttpResponse::Ok().json(key_id_view(&state, &k)?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RotationBody {
    key_file: String,
}

/// `POST /v1/admin/index-key/rotation`: starts re-keying every stored key under the
/// index key in `key_file` (a file in the directory of `domain.index_key_file`). The
/// switch to the new key is durable when this answers 202; the records are re-written
/// in the background (spec/index-key-rotation.md).
pub async fn rotation_start(
    state: State,
    caller: Caller,
    audit: Audit,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    audit.set(Action::Update, ObjectType::Signal);
    caller.require(&[Role::Admin])?;
    let body: RotationBody = read_json(&req, payload, 4096).await?;
    let dir = crate::http::startup::index_key_dir(&state.cfg);
    let key = crate::http::rotation::read_named_key(&dir, &body.key_file)?;
    if state.store.ring().contains(&key.key_id) {
        return Err(ApiError::KeyIdInRing);
    }
    // The lock keeps directory changes out while the excluded addresses move epoch.
    let _held = state.admin_lock.lock().await;
    let entry = audit.draft(&state, 202);
    let start = crate::store::rotation::StartRotation {
        key_id: key.key_id,
        key: key.secret,
        file: key.file,
        policy: state.policy(),
        now: state.now(),
    };
    let started = state
        .writer
        .start_rotation(
            start,
            Box::new(move |kv, _| {
                if let Some(e) = entry {
                    crate::audit::append(kv, e)?;
                }
                Ok(())
            }),
        )
        .await?;
    match started {
        Ok(_) => {}
        Err(crate::store::rotation::Refused::Running) => return Err(ApiError::RotationRunning),
        Err(crate::store::rotation::Refused::KeyIdInRing) => return Err(ApiError::KeyIdInRing),
    }
    audit.logged();
    // The policy in force was lifted at the switch; the directory's own list of excluded
    // addresses is read again from their moved keys.
    state.reload_directory()?;
    Ok(HttpResponse::Accepted().json(rotation_status(&state)?))
}

fn rotation_status(state: &State) -> Result<crate::http::rotation::RotationStatus, ApiError> {
    let ring = state.store.ring();
    let record = crate::index::rotation::load(&state.store)?;
    Ok(crate::http::rotation::RotationStatus::of(
        record.as_ref(),
        &ring,
    ))
}

/// `GET /v1/admin/index-key/rotation`: the state of the last rotation of the index key.
pub async fn rotation_get(
    state: State,
    caller: Caller,
    audit: Audit,
) -> Result<HttpResponse, ApiError> {
    audit.set(Action::Search, ObjectType::Signal);
    caller.require(&[Role::Admin])?;
    Ok(HttpResponse::Ok().json(rotation_status(&state)?))
}
