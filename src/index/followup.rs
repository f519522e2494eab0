//! The follow-up of matches: one [`FollowUp`] per match and network, its deadlines and
//! the alerts it raises (design.md "Delivery of alerts"; issue "Coordinator alerts and
//! follow-up").
//!
//! Keys (same keyspace as [`super::engine`]):
//!
//! | prefix | key | value |
//! |---|---|---|
//! | `f` | match id, network | [`FollowUp`] JSON |
//! | `t` | due (u64 BE), match id, deadline code, network | empty (deadline index) |
//! | `a` | network 0 outbox sequence | empty (the network's event list) |
//! | `q` | network 0 outbox sequence | empty (webhook delivery pending) |
//! | `b` | signal id | [`Feedback`] JSON (what the partner sees) |

use super::engine::{EngineError, IdSource, Kv, KvRead, Policy};
use super::model::*;

/// Key of a follow-up.
pub fn followup_key(mid: u64, network: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(10 + network.len());
    k.push(b'f');
    k.extend_from_slice(&mid.to_be_bytes());
    k.extend_from_slice(network.as_bytes());
    k
}

/// Key of a deadline index entry.
pub fn deadline_key(due: i64, mid: u64, which: Deadline, network: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(18 + network.len());
    k.push(b't');
    k.extend_from_slice(&(due.max(0) as u64).to_be_bytes());
    k.extend_from_slice(&mid.to_be_bytes());
    k.push(which.code());
    k.extend_from_slice(network.as_bytes());
    k
}

/// Decodes a deadline index key into (due, match id, deadline, network).
pub fn parse_deadline_key(k: &[u8]) -> Option<(i64, u64, Deadline, String)> {
    if k.len() < 18 || k[0] != b't' {
        return None;
    }
    let due = u64::from_be_bytes(k[1..9].try_into().ok()?) as i64;
    let mid = u64::from_be_bytes(k[9..17].try_into().ok()?);
    let which = Deadline::from_code(k[17])?;
    let network = String::from_utf8(k[18..].to_vec()).ok()?;
    Some((due, mid, which, network))
}

/// Prefix of a network's event list (entries end in the outbox sequence, u64 BE).
pub fn network_events_prefix(network: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + network.len());
    k.push(b'a');
    k.extend_from_slice(network.as_bytes());
    k.push(0);
    k
}

/// Prefix of a network's pending webhook deliveries (entries end in the sequence).
pub fn pending_prefix(network: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + network.len());
    k.push(b'q');
    k.extend_from_slice(network.as_bytes());
    k.push(0);
    k
}

/// Key of a pending webhook delivery.
pub fn pending_key(network: &str, seq: u64) -> Vec<u8> {
    let mut k = pending_prefix(network);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// Key of a signal's partner feedback.
pub fn feedback_key(signal: SignalId) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(b'b');
    k.extend_from_slice(&signal.to_be_bytes());
    k
}

/// The follow-up of a match by a network.
pub fn load(kv: &dyn KvRead, mid: u64, network: &str) -> Result<Option<FollowUp>, EngineError> {
    match kv.get(&followup_key(mid, network))? {
        None => Ok(None),
        Some(v) => serde_json::from_slice(&v)
            .map(Some)
            .map_err(|_| EngineError::Corrupt('f')),
    }
}

/// Stores a follow-up and keeps the deadline index in step with it: an entry for each
/// deadline that is set and not yet overdue, none otherwise.
pub fn store(
    kv: &mut dyn Kv,
    mid: u64,
    network: &str,
    old: Option<&FollowUp>,
    new: &FollowUp,
) -> Result<(), EngineError> {
    let entries = |f: &FollowUp| {
        let mut v = Vec::new();
        for (which, due) in [
            (Deadline::Acknowledge, f.acknowledge_due),
            (Deadline::Decision, f.decision_due),
        ] {
            if let Some(due) = due {
                if !f.overdue.contains(&which) {
                    v.push(deadline_key(due, mid, which, network));
                }
            }
        }
        v
    };
    let new_entries = entries(new);
    if let Some(old) = old {
        for k in entries(old) {
            if !new_entries.contains(&k) {
                kv.remove(k);
            }
        }
    }
    for k in new_entries {
        kv.put(k, Vec::new());
    }
    kv.put(
        followup_key(mid, network),
        serde_json::to_vec(new).map_err(|e| EngineError::Store(e.to_string()))?,
    );
    Ok(())
}

/// A step taken by the index itself.
pub fn index_step(action: &str, stage: Stage, at: i64) -> Step {
    Step {
        action: action.to_string(),
        stage,
        by: "index".to_string(),
        on_behalf_of: None,
        at,
        organisation: None,
        date: None,
        reason: None,
        deadline: None,
    }
}

/// A new round of follow-up (formation or reopening): stage `new`, both deadlines set.
fn new_round(
    policy: &Policy,
    network: &str,
    now: i64,
    mut history: Vec<Step>,
    action: &str,
) -> FollowUp {
    let (ack, decide) = policy.deadlines.get(network).copied().unwrap_or((5, 20));
    history.push(index_step(action, Stage::New, now));
    FollowUp {
        stage: Stage::New,
        unacknowledged: true,
        lead: None,
        meeting_on: None,
        closed_reason: None,
        opened_at: now,
        acknowledged_at: None,
        decided_at: None,
        acknowledge_due: Some(policy.calendar.add_working_days(now, ack)),
        decision_due: Some(policy.calendar.add_working_days(now, decide)),
        overdue: Vec::new(),
        history,
    }
}

/// Starts the follow-up of a match that a network was just alerted on.
pub fn start(
    kv: &mut dyn Kv,
    policy: &Policy,
    mid: u64,
    network: &str,
    now: i64,
) -> Result<(), EngineError> {
    let old = load(kv, mid, network)?;
    let f = new_round(policy, network, now, Vec::new(), "formed");
    store(kv, mid, network, old.as_ref(), &f)
}

/// What a new signal on a match the network already follows does to the follow-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// The follow-up was closed: it is reopened (alert `match.reopened`).
    Reopened,
    /// New organisations joined an open follow-up (alert `match.organisation_joined`).
    Joined,
    /// Nothing to tell.
    Quiet,
}

/// A new signal arrived on match `mid`, followed up by `network`; `joined` says whether
/// it brought organisations new to the match.
pub fn on_arrival(
    kv: &mut dyn Kv,
    policy: &Policy,
    mid: u64,
    network: &str,
    joined: bool,
    now: i64,
) -> Result<Arrival, EngineError> {
    let Some(old) = load(kv, mid, network)? else {
        // A match alerted before follow-ups existed: start one now.
        start(kv, policy, mid, network, now)?;
        return Ok(if joined {
            Arrival::Joined
        } else {
            Arrival::Quiet
        });
    };
    if old.stage == Stage::Closed {
        let f = new_round(policy, network, now, old.history.clone(), "reopened");
        store(kv, mid, network, Some(&old), &f)?;
        return Ok(Arrival::Reopened);
    }
    if joined {
        let mut f = old.clone();
        f.unacknowledged = true;
        store(kv, mid, network, Some(&old), &f)?;
        return Ok(Arrival::Joined);
    }
    Ok(Arrival::Quiet)
}

/// When match `from` is folded into `into`: each follow-up of `from` moves to `into`
/// where `into` has none for that network, and `from`'s deadlines are dropped.
pub fn fold(kv: &mut dyn Kv, from: u64, into: u64, networks: &[String]) -> Result<(), EngineError> {
    for n in networks {
        let Some(f) = load(kv, from, n)? else {
            continue;
        };
        store(
            kv,
            from,
            n,
            Some(&f),
            &FollowUp {
                acknowledge_due: None,
                decision_due: None,
                ..f.clone()
            },
        )?;
        if load(kv, into, n)?.is_none() {
            store(kv, into, n, None, &f)?;
        }
    }
    Ok(())
}

/// Writes an alert to the outbox, the network's event list and, for a network with a
/// webhook, the pending deliveries. Returns its sequence number.
#[allow(clippy::too_many_arguments)]
pub fn emit(
    kv: &mut dyn Kv,
    policy: &Policy,
    ids: &mut dyn IdSource,
    event: &str,
    mid: u64,
    network: &str,
    new_orgs: Vec<String>,
    deadline: Option<Deadline>,
    now: i64,
) -> Result<u64, EngineError> {
    let seq = super::engine::next_counter(kv, "outbox")?;
    let alert = Alert {
        seq,
        event_id: super::engine::public_id(ids, "evt_"),
        event: event.to_string(),
        match_id: mid,
        network: network.to_string(),
        new_orgs,
        at: now,
        deadline,
    };
    kv.put(
        super::engine::outbox_key(seq),
        serde_json::to_vec(&alert).map_err(|e| EngineError::Store(e.to_string()))?,
    );
    let mut a = network_events_prefix(network);
    a.extend_from_slice(&seq.to_be_bytes());
    kv.put(a, Vec::new());
    if policy.webhook_networks.contains(network) {
        kv.put(pending_key(network, seq), Vec::new());
    }
    Ok(seq)
}
