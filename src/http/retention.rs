//! The retention job inside `serve`: every `retention.run_every_secs`, and on demand
//! (`POST /v1/admin/retention/run`), it archives the signals that expired (they leave
//! their matches, with `match.dissolved` where a match falls below a threshold) and
//! erases the archived signals whose archive period has passed, erases the closed
//! matches whose networks' `closed_match_days` have passed ([`crate::index::retention`]),
//! and prunes access-log entries older than `audit.retention_days` behind a checkpoint
//! ([`crate::audit::prune`]). Work is done in chunks of one transaction each, every
//! chunk with its access-log entry (`archive` or `erase`, actor `samenloop`, the signals'
//! public ids or the matches' handles), and every run with one entry of its own: a crash
//! resumes where it stopped, and nothing is done that is not logged.

use super::State;
use super::error::ApiError;
use super::routes::signals::OsIds;
use crate::audit::{Action, Entry, ObjectType, Outcome};
use crate::index::retention;
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;

/// Signals a dry run lists at most per kind.
const PLAN_MAX: usize = 10_000;

/// A signal a run would archive or erase (ids and dates only).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Planned {
    /// Public id.
    pub id: String,
    /// Organisation.
    pub organisation: String,
    /// Network.
    pub network: String,
    /// `expires`: its validity end; `erase`: the start of its archive period.
    pub since: String,
}

/// A closed match a run would erase (its handle, networks and dates only).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PlannedMatch {
    /// Match handle.
    pub handle: String,
    /// The networks it alerted.
    pub networks: Vec<String>,
    /// When the last of its follow-ups closed.
    pub closed_at: String,
    /// From when it may be erased: the period of each of its networks has passed.
    pub erasable_since: String,
}

/// What a run did (or, dry, would do).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RunReport {
    /// Whether nothing was changed.
    pub dry_run: bool,
    /// When it ran.
    pub at: String,
    /// Signals archived (or to archive).
    pub archived: u64,
    /// Signals erased (or to erase).
    pub erased: u64,
    /// Closed matches erased (or to erase), with the matches merged into them.
    #[serde(default)]
    pub matches_erased: u64,
    /// `match.dissolved` alerts written.
    pub alerts: u64,
    /// Active signals under a retired domain key id whose validity was ended (they are
    /// archived in the same run).
    #[serde(default)]
    pub ended_by_key_retirement: u64,
    /// Shadows of re-keyed signals dropped (their old key id was retired).
    #[serde(default)]
    pub shadows_dropped: u64,
    /// Index entries that stood for nothing any more, removed.
    pub stale: u64,
    /// Access-log entries pruned (older than `audit.retention_days`).
    pub log_entries_pruned: u64,
    /// The checkpoint the access log now starts after, when entries were pruned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_pruned_through: Option<u64>,
    /// Dry run: the signals that would be archived (at most 10,000).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to_archive: Vec<Planned>,
    /// Dry run: the signals that would be erased (at most 10,000).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to_erase: Vec<Planned>,
    /// Dry run: the closed matches that would be erased (at most 10,000; the matches
    /// merged into them go with them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matches_to_erase: Vec<PlannedMatch>,
}

/// The period each network keeps its closed matches, days
/// (`networks[].closed_match_days`): the one place the job learns them.
pub fn closed_match_days(state: &State) -> retention::ClosedMatchDays {
    state
        .directory()
        .networks
        .iter()
        .map(|n| (n.id.clone(), n.closed_match_days))
        .collect()
}

fn entry(state: &State, action: Action, related: Vec<String>) -> Entry {
    let mut e = Entry::by_index(
        action,
        "retention run",
        ObjectType::Signal,
        state.now_ms(),
        super::audit::request_id(),
    );
    e.related = related;
    e
}

/// Runs the job once at the server's now (dry: only lists what it would do). The entry
/// of the run itself is the caller's: the request's for an on-demand run, the
/// scheduler's otherwise.
pub async fn run_once(state: &State, dry_run: bool) -> Result<RunReport, ApiError> {
    let now = state.now();
    // Signals (closed matches, log entries) per transaction: `limits.retention_chunk`.
    let chunk = state.cfg.limits.retention_chunk;
    let archive_secs = i64::from(state.cfg.retention.archive_days) * 86_400;
    let mut report = RunReport {
        dry_run,
        at: super::rfc3339(now),
        ..RunReport::default()
    };
    if dry_run {
        let (exp, era) = retention::plan(&state.store, now, archive_secs, PLAN_MAX)?;
        let planned = |r: &crate::index::model::SignalRecord, since: i64| Planned {
            id: r.public_id.clone(),
            organisation: r.org.clone(),
            network: r.network.clone(),
            since: super::rfc3339(since),
        };
        report.to_archive = exp.iter().map(|r| planned(r, r.valid_until)).collect();
        report.to_erase = era
            .iter()
            .map(|r| planned(r, retention::archived_since(r)))
            .collect();
        report.archived = report.to_archive.len() as u64;
        report.erased = report.to_erase.len() as u64;
        let days = closed_match_days(state);
        for (m, from) in retention::plan_closed(&state.store, &days, now, PLAN_MAX)? {
            let closed = retention::closed_since(&state.store, m.id)?.unwrap_or(from);
            report.matches_to_erase.push(PlannedMatch {
                handle: m.handle,
                networks: m.networks,
                closed_at: super::rfc3339(closed),
                erasable_since: super::rfc3339(from),
            });
        }
        report.matches_erased = report.matches_to_erase.len() as u64;
        return Ok(report);
    }
    let logged = state.cfg.audit.enabled;
    // Retired domain key ids first: what they end is archived below.
    let retired: Vec<String> = state
        .directory()
        .key_ids
        .iter()
        .filter(|k| k.state == crate::directory::KeyIdState::Retired)
        .map(|k| k.key_id.clone())
        .collect();
    for key_id in retired {
        if crate::index::transition::swept(&state.store, &key_id)? {
            continue;
        }
        loop {
            let policy = state.policy();
            let mut log = logged.then(|| entry(state, Action::Update, Vec::new()));
            if let Some(e) = log.as_mut() {
                e.operation = "domain key retirement".into();
            }
            let k = key_id.clone();
            let (done, swept) = state
                .writer
                .run(move |kv| {
                    let mut swept = crate::index::transition::Swept::default();
                    let done = crate::index::transition::sweep(
                        kv, &policy, &mut OsIds, &k, now, chunk, &mut swept,
                    )?;
                    let mut related = swept.expired.clone();
                    related.extend(swept.rekeyed.iter().cloned());
                    if let (Some(mut e), false) = (log, related.is_empty()) {
                        e.related = related;
                        crate::audit::append(kv, e)?;
                    }
                    Ok((done, swept))
                })
                .await?;
            report.ended_by_key_retirement += swept.expired.len() as u64;
            report.shadows_dropped += swept.shadows;
            report.alerts += swept.alerts;
            if done {
                break;
            }
        }
    }
    for phase in [Action::Archive, Action::Erase] {
        loop {
            let policy = state.policy();
            let log = logged.then(|| entry(state, phase, Vec::new()));
            let (n, done) = state
                .writer
                .run(move |kv| {
                    let mut done = retention::Done::default();
                    let n = match phase {
                        Action::Archive => retention::archive_expired(
                            kv, &policy, &mut OsIds, now, chunk, &mut done,
                        )?,
                        _ => retention::erase_archived(kv, now, archive_secs, chunk, &mut done)?,
                    };
                    let ids = match phase {
                        Action::Archive => done.archived.clone(),
                        _ => done.erased.clone(),
                    };
                    if let (Some(mut e), false) = (log, ids.is_empty()) {
                        e.related = ids;
                        crate::audit::append(kv, e)?;
                    }
                    Ok((n, done))
                })
                .await?;
            report.archived += done.archived.len() as u64;
            report.erased += done.erased.len() as u64;
            report.alerts += done.alerts;
            report.stale += done.stale;
            if n < chunk {
                break;
            }
        }
    }
    // Closed matches whose networks' periods have passed; entries not yet due (a
    // network with a longer period) are stepped over, so the cursor moves on.
    let days = closed_match_days(state);
    let mut after: Option<Vec<u8>> = None;
    loop {
        let log = logged.then(|| {
            let mut e = entry(state, Action::Erase, Vec::new());
            e.object_type = Some(ObjectType::Match);
            e
        });
        let (days, cursor) = (days.clone(), after.take());
        let (n, last, done) = state
            .writer
            .run(move |kv| {
                let mut done = retention::Done::default();
                let (n, last) =
                    retention::erase_closed(kv, &days, now, cursor.as_deref(), chunk, &mut done)?;
                if let (Some(mut e), false) = (log, done.matches_erased.is_empty()) {
                    e.related = done.matches_erased.clone();
                    crate::audit::append(kv, e)?;
                }
                Ok((n, last, done))
            })
            .await?;
        report.matches_erased += done.matches_erased.len() as u64;
        report.stale += done.stale;
        if n < chunk {
            break;
        }
        after = last;
    }
    // The access log's own retention: oldest entries first, behind a checkpoint.
    let cutoff_ms = (now - i64::from(state.cfg.audit.retention_days) * 86_400) * 1000;
    loop {
        let keys = state.checkpoints.clone();
        let domain = state.cfg.domain.name.clone();
        let log = logged.then(|| {
            let mut e = entry(state, Action::Erase, Vec::new());
            e.object_type = Some(ObjectType::AccessLog);
            e
        });
        let (n, through) = state
            .writer
            .run(move |kv| {
                let (n, through) =
                    crate::audit::prune(kv, &domain, keys.signer.as_ref(), cutoff_ms, now, chunk)?;
                if let (Some(mut e), Some(seq)) = (log, through) {
                    e.object_id = Some(format!("cp_{seq}"));
                    crate::audit::append(kv, e)?;
                }
                Ok((n, through))
            })
            .await?;
        report.log_entries_pruned += n as u64;
        if through.is_some() {
            report.log_pruned_through = through;
        }
        if n < chunk {
            break;
        }
    }
    let m = &state.metrics;
    m.alerts_written.fetch_add(report.alerts, Ordering::Relaxed);
    for (phase, n) in [
        ("archive", report.archived),
        ("erase", report.erased),
        ("match_erase", report.matches_erased),
        ("log_prune", report.log_entries_pruned),
        ("key_retirement", report.ended_by_key_retirement),
        ("shadow", report.shadows_dropped),
    ] {
        m.inc("samenloop_retention_total", format!("phase=\"{phase}\""), n);
    }
    Ok(report)
}

/// The scheduled runs: every `retention.run_every_secs` while the server runs. Each run
/// is logged (an `erase` entry of the run, with no objects, besides the entries of its
/// chunks).
pub fn spawn(state: State) {
    actix_web::rt::spawn(async move {
        let every = std::time::Duration::from_secs(state.cfg.retention.run_every_secs);
        let mut stop = state.shutdown.subscribe();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                break;
            }
            let outcome = match run_once(&state, false).await {
                Ok(_) => "ok",
                Err(_) => "failed",
            };
            if state.cfg.audit.enabled {
                let mut e = entry(&state, Action::Erase, Vec::new());
                e.operation = "retention run (scheduled)".into();
                if outcome != "ok" {
                    e.outcome = Outcome::Error;
                    e.status = 500;
                }
                let _ = super::audit::append(&state, e).await;
            }
            state.metrics.inc(
                "samenloop_retention_runs_total",
                format!("outcome=\"{outcome}\""),
                1,
            );
        }
    });
}
