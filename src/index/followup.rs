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
//! | `V` | network 0 match id | empty (the network's overdue follow-ups) |
//!
//! Every change of a follow-up also keeps the closed-match schedule (`Y`) in step, and
//! every alert is listed under its match (`g`): see [`super::retention`].
//!
//! The coordinator's workflow ([`act`], [`transition`]):
//!
//! | action | allowed in stage | stage after |
//! |---|---|---|
//! | `acknowledge` | while `unacknowledged` | `new` → `acknowledged`; otherwise unchanged |
//! | `choose_lead` | any but `new` and `closed` | unchanged |
//! | `ask_consent` | `acknowledged`, `consent_refused` | `consent_asked` |
//! | `consent_given` | `consent_asked` | `consent_given` |
//! | `consent_refused` | `consent_asked` | `consent_refused` |
//! | `plan_meeting` | `consent_given`, `meeting_planned` | `meeting_planned` |
//! | `close` | any but `new` and `closed` | `closed` |

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

/// Prefix of a network's overdue follow-ups (entries end in the match id, u64 BE, the
/// same layout as the network's match list).
pub fn overdue_prefix(network: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + network.len());
    k.push(b'V');
    k.extend_from_slice(network.as_bytes());
    k.push(0);
    k
}

/// Key of an overdue follow-up.
pub fn overdue_key(network: &str, mid: u64) -> Vec<u8> {
    let mut k = overdue_prefix(network);
    k.extend_from_slice(&mid.to_be_bytes());
    k
}

/// Whether a follow-up belongs in its network's overdue list.
fn listed_overdue(f: &FollowUp) -> bool {
    f.is_overdue() && f.stage != Stage::Closed
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
/// deadline that is set and not yet overdue, none otherwise; and the overdue list: an
/// entry while a deadline of the round has passed and the follow-up is not closed.
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
    super::retention::reschedule(kv, mid, network, old, new)?;
    if listed_overdue(new) {
        kv.put(overdue_key(network, mid), Vec::new());
    } else if old.is_some_and(listed_overdue) {
        kv.remove(overdue_key(network, mid));
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
/// where `into` has none for that network, and `from`'s deadlines (and its place in the
/// overdue list) are dropped.
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
                overdue: Vec::new(),
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
        left_orgs: Vec::new(),
    };
    kv.put(
        super::engine::outbox_key(seq),
        serde_json::to_vec(&alert).map_err(|e| EngineError::Store(e.to_string()))?,
    );
    let mut a = network_events_prefix(network);
    a.extend_from_slice(&seq.to_be_bytes());
    kv.put(a, Vec::new());
    kv.put(super::retention::match_alert_key(mid, seq), Vec::new());
    if policy.webhook_networks.contains(network) {
        kv.put(pending_key(network, seq), Vec::new());
    }
    Ok(seq)
}

/// A coordinator's follow-up action, validated at the edge (the date is `YYYY-MM-DD`
/// and the reason one a coordinator may choose).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// "I have seen it".
    Acknowledge,
    /// The lead organisation ("regievoerder").
    ChooseLead(String),
    /// One of the organisations asks the client for consent.
    AskConsent,
    /// The client consented.
    ConsentGiven,
    /// The client refused.
    ConsentRefused,
    /// A case meeting on this date.
    PlanMeeting(String),
    /// Closed with a reason (never [`CloseReason::Withdrawn`]).
    Close(CloseReason),
}

impl Action {
    /// The action's name in the API and in the history.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Acknowledge => "acknowledge",
            Action::ChooseLead(_) => "choose_lead",
            Action::AskConsent => "ask_consent",
            Action::ConsentGiven => "consent_given",
            Action::ConsentRefused => "consent_refused",
            Action::PlanMeeting(_) => "plan_meeting",
            Action::Close(_) => "close",
        }
    }
}

/// Every action name, in the order of the transition table.
pub const ACTIONS: [&str; 7] = [
    "acknowledge",
    "choose_lead",
    "ask_consent",
    "consent_given",
    "consent_refused",
    "plan_meeting",
    "close",
];

/// Whether the action named `name` is allowed on `f` (the transition table).
pub fn allowed(f: &FollowUp, name: &str) -> bool {
    use Stage::*;
    let s = f.stage;
    match name {
        "acknowledge" => f.unacknowledged,
        "choose_lead" | "close" => !matches!(s, New | Closed),
        "ask_consent" => matches!(s, Acknowledged | ConsentRefused),
        "consent_given" | "consent_refused" => s == ConsentAsked,
        "plan_meeting" => matches!(s, ConsentGiven | MeetingPlanned),
        _ => false,
    }
}

/// The actions allowed on `f` now.
pub fn allowed_actions(f: &FollowUp) -> Vec<&'static str> {
    ACTIONS.into_iter().filter(|a| allowed(f, a)).collect()
}

/// Why a coordinator's action was refused (nothing is changed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionError {
    /// Not allowed in the current stage.
    InvalidTransition {
        /// The current stage.
        stage: Stage,
        /// What is allowed instead.
        allowed: Vec<&'static str>,
    },
    /// The lead organisation has no active signal of the network in the match.
    LeadNotInvolved,
    /// The match was merged into another (its follow-up moved there).
    Merged,
    /// The network has no follow-up of the match (it was never alerted on it).
    NoFollowUp,
}

/// Who acts: the token's subject and on-behalf-of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// Subject (`sub`).
    pub by: String,
    /// On behalf of (`obo`).
    pub on_behalf_of: Option<String>,
}

/// Applies `action` to `f` at `now` by `actor`, or says why it is not allowed. Pure: the
/// deadline and overdue bookkeeping of the round is done here, the indexes by [`store`].
pub fn transition(
    f: &FollowUp,
    action: &Action,
    actor: &Actor,
    now: i64,
) -> Result<FollowUp, ActionError> {
    if !allowed(f, action.name()) {
        return Err(ActionError::InvalidTransition {
            stage: f.stage,
            allowed: allowed_actions(f),
        });
    }
    let mut n = f.clone();
    let mut step = Step {
        action: action.name().to_string(),
        stage: f.stage,
        by: actor.by.clone(),
        on_behalf_of: actor.on_behalf_of.clone(),
        at: now,
        organisation: None,
        date: None,
        reason: None,
        deadline: None,
    };
    let mut decided = false;
    match action {
        Action::Acknowledge => {
            n.unacknowledged = false;
            if n.stage == Stage::New {
                n.stage = Stage::Acknowledged;
            }
            n.acknowledged_at.get_or_insert(now);
            n.acknowledge_due = None;
            n.overdue.retain(|d| *d != Deadline::Acknowledge);
        }
        Action::ChooseLead(org) => {
            n.lead = Some(org.clone());
            step.organisation = Some(org.clone());
        }
        Action::AskConsent => n.stage = Stage::ConsentAsked,
        Action::ConsentGiven => {
            n.stage = Stage::ConsentGiven;
            decided = true;
        }
        Action::ConsentRefused => {
            n.stage = Stage::ConsentRefused;
            decided = true;
        }
        Action::PlanMeeting(date) => {
            n.stage = Stage::MeetingPlanned;
            n.meeting_on = Some(date.clone());
            step.date = Some(date.clone());
        }
        Action::Close(reason) => {
            n.stage = Stage::Closed;
            n.closed_reason = Some(*reason);
            // Closing deals with whatever awaited acknowledgement.
            n.unacknowledged = false;
            step.reason = Some(*reason);
            decided = true;
        }
    }
    if decided {
        n.decided_at.get_or_insert(now);
        n.decision_due = None;
        n.overdue.retain(|d| *d != Deadline::Decision);
    }
    step.stage = n.stage;
    n.history.push(step);
    Ok(n)
}

/// Sets the partner feedback of every active signal of `network` in match `m` after a
/// coordinator's step: `closed` (with the reason) after a close, `picked_up` otherwise
/// (a signal already picked up keeps its first date).
fn give_feedback(
    kv: &mut dyn Kv,
    m: &MatchRecord,
    network: &str,
    closed: Option<CloseReason>,
    now: i64,
) -> Result<(), EngineError> {
    for s in super::engine::match_signals(kv, m)? {
        if s.network != network || !s.is_active(now) {
            continue;
        }
        let key = feedback_key(s.id);
        let old: Option<Feedback> = match kv.get(&key)? {
            Some(v) => serde_json::from_slice(&v).map_err(|_| EngineError::Corrupt('b'))?,
            None => None,
        };
        let new = match (closed, old) {
            (Some(reason), _) => Feedback::Closed { reason, at: now },
            (None, Some(keep @ Feedback::PickedUp { .. })) => keep,
            (None, _) => Feedback::PickedUp { at: now },
        };
        if Some(new) != old {
            kv.put(
                key,
                serde_json::to_vec(&new).map_err(|e| EngineError::Store(e.to_string()))?,
            );
        }
    }
    Ok(())
}

/// The partner feedback of a signal, if a coordinator has acted on a match it is in.
pub fn feedback(kv: &dyn KvRead, signal: SignalId) -> Result<Option<Feedback>, EngineError> {
    match kv.get(&feedback_key(signal))? {
        None => Ok(None),
        Some(v) => serde_json::from_slice(&v)
            .map(Some)
            .map_err(|_| EngineError::Corrupt('b')),
    }
}

/// Records a coordinator's action on match `mid` for `network` in one transaction: the
/// follow-up (and its indexes), the partner feedback and a `match.followed_up` alert.
/// On an [`ActionError`] nothing is written.
#[allow(clippy::too_many_arguments)]
pub fn act(
    kv: &mut dyn Kv,
    policy: &Policy,
    ids: &mut dyn IdSource,
    mid: u64,
    network: &str,
    action: &Action,
    actor: &Actor,
    now: i64,
) -> Result<Result<FollowUp, ActionError>, EngineError> {
    let Some(m) = super::engine::match_by_id(kv, mid)? else {
        return Ok(Err(ActionError::NoFollowUp));
    };
    if m.status == MatchStatus::Merged {
        return Ok(Err(ActionError::Merged));
    }
    let Some(old) = load(kv, mid, network)? else {
        return Ok(Err(ActionError::NoFollowUp));
    };
    let new = match transition(&old, action, actor, now) {
        Ok(n) => n,
        Err(e) => return Ok(Err(e)),
    };
    if let Action::ChooseLead(org) = action {
        let involved = super::engine::match_signals(kv, &m)?
            .iter()
            .any(|s| &s.org == org && s.network == network && s.is_active(now));
        if !involved {
            return Ok(Err(ActionError::LeadNotInvolved));
        }
    }
    store(kv, mid, network, Some(&old), &new)?;
    let closed = match action {
        Action::Close(r) => Some(*r),
        _ => None,
    };
    give_feedback(kv, &m, network, closed, now)?;
    emit(
        kv,
        policy,
        ids,
        event::FOLLOWED_UP,
        mid,
        network,
        Vec::new(),
        None,
        now,
    )?;
    Ok(Ok(new))
}

/// Signals left match `m` so that fewer organisations than `network`'s threshold remain:
/// the index closes the network's follow-up with reason `withdrawn` (a `close` step by
/// `index`, which is not a decision), the partners who already had feedback on a signal
/// in it see it closed — those who had none still see none (no oracle) — and a
/// `match.dissolved` alert names `left` (the network's organisations whose signals
/// went). Nothing happens for a follow-up that is already closed. Returns whether it
/// closed.
#[allow(clippy::too_many_arguments)]
pub fn dissolve(
    kv: &mut dyn Kv,
    policy: &Policy,
    ids: &mut dyn IdSource,
    m: &MatchRecord,
    network: &str,
    left: Vec<String>,
    now: i64,
) -> Result<bool, EngineError> {
    let Some(old) = load(kv, m.id, network)? else {
        return Ok(false);
    };
    if old.stage == Stage::Closed {
        return Ok(false);
    }
    let mut n = old.clone();
    n.stage = Stage::Closed;
    n.closed_reason = Some(CloseReason::Withdrawn);
    n.unacknowledged = false;
    // The round ends: its deadlines no longer run.
    n.acknowledge_due = None;
    n.decision_due = None;
    n.overdue.clear();
    let mut step = index_step("close", Stage::Closed, now);
    step.reason = Some(CloseReason::Withdrawn);
    n.history.push(step);
    store(kv, m.id, network, Some(&old), &n)?;
    for s in super::engine::match_signals(kv, m)? {
        let key = feedback_key(s.id);
        if s.network == network && kv.get(&key)?.is_some() {
            let fb = Feedback::Closed {
                reason: CloseReason::Withdrawn,
                at: now,
            };
            kv.put(
                key,
                serde_json::to_vec(&fb).map_err(|e| EngineError::Store(e.to_string()))?,
            );
        }
    }
    let seq = emit(
        kv,
        policy,
        ids,
        event::DISSOLVED,
        m.id,
        network,
        Vec::new(),
        None,
        now,
    )?;
    // The organisations that left travel with the alert.
    let key = super::engine::outbox_key(seq);
    if let Some(v) = kv.get(&key)? {
        let mut a: Alert = serde_json::from_slice(&v).map_err(|_| EngineError::Corrupt('o'))?;
        a.left_orgs = left;
        kv.put(
            key,
            serde_json::to_vec(&a).map_err(|e| EngineError::Store(e.to_string()))?,
        );
    }
    Ok(true)
}

/// What [`escalate`] did with one deadline index entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Escalation {
    /// The deadline passed: marked overdue, an `escalated` step and a `match.escalated`
    /// alert for the network.
    Escalated {
        /// The network.
        network: String,
        /// Which deadline.
        deadline: Deadline,
    },
    /// The entry no longer stood for a live deadline (closed, merged, moved): removed.
    Stale,
    /// Not due yet, or already gone.
    Nothing,
}

/// Handles one deadline index entry (a key under `t`) at `now`.
pub fn escalate(
    kv: &mut dyn Kv,
    policy: &Policy,
    ids: &mut dyn IdSource,
    key: &[u8],
    now: i64,
) -> Result<Escalation, EngineError> {
    if kv.get(key)?.is_none() {
        return Ok(Escalation::Nothing);
    }
    let Some((due, mid, which, network)) = parse_deadline_key(key) else {
        kv.remove(key.to_vec());
        return Ok(Escalation::Stale);
    };
    if due > now {
        return Ok(Escalation::Nothing);
    }
    let m = super::engine::match_by_id(kv, mid)?;
    let f = load(kv, mid, &network)?;
    let (Some(m), Some(f)) = (m, f) else {
        kv.remove(key.to_vec());
        return Ok(Escalation::Stale);
    };
    let current = match which {
        Deadline::Acknowledge => f.acknowledge_due,
        Deadline::Decision => f.decision_due,
    };
    if m.status == MatchStatus::Merged
        || f.stage == Stage::Closed
        || current != Some(due)
        || f.overdue.contains(&which)
    {
        kv.remove(key.to_vec());
        return Ok(Escalation::Stale);
    }
    let mut n = f.clone();
    n.overdue.push(which);
    let mut step = index_step("escalated", n.stage, now);
    step.deadline = Some(which);
    n.history.push(step);
    store(kv, mid, &network, Some(&f), &n)?;
    emit(
        kv,
        policy,
        ids,
        event::ESCALATED,
        mid,
        &network,
        Vec::new(),
        Some(which),
        now,
    )?;
    Ok(Escalation::Escalated {
        network,
        deadline: which,
    })
}

#[cfg(test)]
mod tests {
    use super::super::engine::{Effects, Entry, NewSignal, submit};
    use super::super::postings::PostingIndex;
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Default)]
    struct Mem(BTreeMap<Vec<u8>, Vec<u8>>, PostingIndex);
    impl KvRead for Mem {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
            Ok(self.0.get(key).cloned())
        }
        fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<Entry>, EngineError> {
            Ok(self
                .0
                .range(prefix.to_vec()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect())
        }
    }
    impl Kv for Mem {
        fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
            self.0.insert(key, value);
        }
        fn remove(&mut self, key: Vec<u8>) {
            self.0.remove(&key);
        }
        fn postings(&self, p2: &[u8; 32]) -> Vec<Posting> {
            self.1.get(p2).to_vec()
        }
        fn add_posting(&mut self, p2: &[u8; 32], posting: Posting) {
            self.1.add(p2, posting);
        }
        fn remove_posting(&mut self, p2: &[u8; 32], signal: SignalId) {
            self.1.remove(p2, signal);
        }
    }
    struct Counter(u128);
    impl IdSource for Counter {
        fn random16(&mut self) -> [u8; 16] {
            self.0 += 1;
            self.0.to_be_bytes()
        }
    }

    const DAY: i64 = 86_400;
    /// Monday 7 December 2026, 10:00 UTC.
    const MONDAY: i64 = 20_794 * DAY + 10 * 3600;

    fn policy() -> Policy {
        Policy {
            thresholds: [("n".to_string(), 2)].into_iter().collect(),
            max_postings_per_key: 32,
            max_component_signals: 64,
            deadlines: [("n".to_string(), (1, 3))].into_iter().collect(),
            ..Policy::default()
        }
    }

    fn signal(org: &str, reference: &str) -> NewSignal {
        NewSignal {
            org: org.into(),
            network: "n".into(),
            reference: reference.into(),
            category: None,
            contact: Contact {
                name: "team".into(),
                phone: None,
                email: None,
            },
            key_id: "k".into(),
            valid_until: MONDAY + 400 * DAY,
            person: vec![StoredKey {
                kind: 0,
                p2: [7; 32],
            }],
            household: vec![],
            family: vec![],
            content_hash: [reference.len() as u8; 32],
        }
    }

    /// A store with a match of organisations a and b in network n, formed on `MONDAY`.
    fn matched() -> (Mem, Policy, u64) {
        let (mut kv, p) = (Mem::default(), policy());
        for (org, r) in [("a", "1"), ("b", "2")] {
            submit(
                &mut kv,
                &p,
                signal(org, r),
                MONDAY,
                &mut Counter(0),
                &mut Effects::default(),
            )
            .unwrap();
        }
        (kv, p, 1)
    }

    fn alerts(kv: &Mem) -> Vec<Alert> {
        kv.0.iter()
            .filter(|(k, _)| k[0] == b'o')
            .map(|(_, v)| serde_json::from_slice(v).unwrap())
            .collect()
    }

    fn actor() -> Actor {
        Actor {
            by: "regisseur".into(),
            on_behalf_of: Some("r.jansen".into()),
        }
    }

    fn act_ok(kv: &mut Mem, p: &Policy, a: Action, now: i64) -> FollowUp {
        act(kv, p, &mut Counter(100), 1, "n", &a, &actor(), now)
            .unwrap()
            .unwrap()
    }

    fn keys(kv: &Mem, prefix: u8) -> usize {
        kv.0.keys().filter(|k| k[0] == prefix).count()
    }

    #[test]
    fn the_transition_table() {
        use Stage::*;
        let expected: [(Stage, &[&str]); 7] = [
            (New, &["acknowledge"]),
            (Acknowledged, &["choose_lead", "ask_consent", "close"]),
            (
                ConsentAsked,
                &["choose_lead", "consent_given", "consent_refused", "close"],
            ),
            (ConsentGiven, &["choose_lead", "plan_meeting", "close"]),
            (ConsentRefused, &["choose_lead", "ask_consent", "close"]),
            (MeetingPlanned, &["choose_lead", "plan_meeting", "close"]),
            (Closed, &[]),
        ];
        let (kv, _, _) = matched();
        let base = load(&kv, 1, "n").unwrap().unwrap();
        for (stage, allowed) in expected {
            let f = FollowUp {
                stage,
                unacknowledged: stage == New,
                ..base.clone()
            };
            assert_eq!(allowed_actions(&f), allowed.to_vec(), "{stage:?}");
            // After a join, acknowledge is allowed in any stage but closed.
            let joined = FollowUp {
                unacknowledged: true,
                ..f
            };
            if stage != Closed {
                assert!(
                    allowed_actions(&joined).contains(&"acknowledge"),
                    "{stage:?}"
                );
            }
        }
    }

    #[test]
    fn a_step_writes_follow_up_feedback_and_alert_and_a_refusal_writes_nothing() {
        let (mut kv, p, mid) = matched();
        let before = kv.0.clone();
        let e = act(
            &mut kv,
            &p,
            &mut Counter(100),
            mid,
            "n",
            &Action::AskConsent,
            &actor(),
            MONDAY,
        )
        .unwrap()
        .unwrap_err();
        assert_eq!(
            e,
            ActionError::InvalidTransition {
                stage: Stage::New,
                allowed: vec!["acknowledge"]
            }
        );
        assert_eq!(kv.0, before, "a refused step changes nothing");
        assert_eq!(
            keys(&kv, b'b'),
            0,
            "no feedback before the coordinator acts"
        );
        assert_eq!(keys(&kv, b't'), 2, "both deadlines are indexed");

        let f = act_ok(&mut kv, &p, Action::Acknowledge, MONDAY + 60);
        assert_eq!(f.stage, Stage::Acknowledged);
        assert!(!f.unacknowledged);
        assert_eq!(f.acknowledged_at, Some(MONDAY + 60));
        assert_eq!(f.acknowledge_due, None);
        assert_eq!(keys(&kv, b't'), 1, "only the decision deadline is left");
        let step = f.history.last().unwrap();
        assert_eq!(
            (step.by.as_str(), step.on_behalf_of.as_deref()),
            ("regisseur", Some("r.jansen"))
        );
        assert_eq!(keys(&kv, b'b'), 2, "both signals are picked up");
        for id in [1, 2] {
            assert_eq!(
                feedback(&kv, id).unwrap(),
                Some(Feedback::PickedUp { at: MONDAY + 60 })
            );
        }
        assert_eq!(alerts(&kv).last().unwrap().event, event::FOLLOWED_UP);

        let before = kv.0.clone();
        let e = act(
            &mut kv,
            &p,
            &mut Counter(100),
            mid,
            "n",
            &Action::ChooseLead("c".into()),
            &actor(),
            MONDAY,
        )
        .unwrap()
        .unwrap_err();
        assert_eq!(e, ActionError::LeadNotInvolved);
        assert_eq!(kv.0, before);
        let f = act_ok(&mut kv, &p, Action::ChooseLead("b".into()), MONDAY + 120);
        assert_eq!(f.lead.as_deref(), Some("b"));
        assert_eq!(
            feedback(&kv, 1).unwrap(),
            Some(Feedback::PickedUp { at: MONDAY + 60 }),
            "picked up keeps its first date"
        );
        let f = act_ok(
            &mut kv,
            &p,
            Action::Close(CloseReason::CareInPlace),
            MONDAY + 180,
        );
        assert_eq!(f.stage, Stage::Closed);
        assert_eq!(f.decided_at, Some(MONDAY + 180));
        assert_eq!(keys(&kv, b't'), 0, "no deadlines left");
        assert_eq!(
            feedback(&kv, 2).unwrap(),
            Some(Feedback::Closed {
                reason: CloseReason::CareInPlace,
                at: MONDAY + 180
            })
        );
    }

    #[test]
    fn deadlines_escalate_once_and_leave_the_overdue_list_when_met() {
        let (mut kv, p, mid) = matched();
        let f = load(&kv, mid, "n").unwrap().unwrap();
        // One working day after Monday: the end of Tuesday (local time).
        let due = f.acknowledge_due.unwrap();
        assert_eq!(due, p.calendar.add_working_days(MONDAY, 1));
        let key = deadline_key(due, mid, Deadline::Acknowledge, "n");
        let esc = |kv: &mut Mem, now| escalate(kv, &p, &mut Counter(200), &key, now).unwrap();
        assert_eq!(esc(&mut kv, due - 1), Escalation::Nothing);
        assert_eq!(keys(&kv, b'V'), 0);
        assert_eq!(
            esc(&mut kv, due),
            Escalation::Escalated {
                network: "n".into(),
                deadline: Deadline::Acknowledge
            }
        );
        let f = load(&kv, mid, "n").unwrap().unwrap();
        assert_eq!(f.overdue, vec![Deadline::Acknowledge]);
        assert_eq!(f.history.last().unwrap().action, "escalated");
        let a = alerts(&kv);
        assert_eq!(a.last().unwrap().event, event::ESCALATED);
        assert_eq!(a.last().unwrap().deadline, Some(Deadline::Acknowledge));
        assert_eq!(kv.scan_prefix(&overdue_prefix("n")).unwrap().len(), 1);
        assert_eq!(esc(&mut kv, due + 10), Escalation::Nothing, "only once");
        assert_eq!(alerts(&kv).len(), a.len());

        act_ok(&mut kv, &p, Action::Acknowledge, due + 20);
        assert_eq!(keys(&kv, b'V'), 0, "acknowledged: no longer overdue");

        // A stale entry (the deadline moved) is removed without an alert.
        let stale = deadline_key(due - 5, mid, Deadline::Decision, "n");
        kv.put(stale.clone(), Vec::new());
        assert_eq!(
            escalate(&mut kv, &p, &mut Counter(300), &stale, due + 30).unwrap(),
            Escalation::Stale
        );
        assert!(kv.get(&stale).unwrap().is_none());
        assert_eq!(alerts(&kv).len(), a.len() + 1, "only the followed_up alert");
    }

    #[test]
    fn a_merged_match_leaves_the_overdue_list_and_its_follow_up_moves() {
        let (mut kv, p, mid) = matched();
        let f = load(&kv, mid, "n").unwrap().unwrap();
        let key = deadline_key(f.acknowledge_due.unwrap(), mid, Deadline::Acknowledge, "n");
        escalate(&mut kv, &p, &mut Counter(200), &key, MONDAY + 30 * DAY).unwrap();
        assert_eq!(kv.scan_prefix(&overdue_prefix("n")).unwrap().len(), 1);
        fold(&mut kv, mid, 9, &["n".to_string()]).unwrap();
        let listed: Vec<Vec<u8>> = kv
            .scan_prefix(&overdue_prefix("n"))
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            listed,
            vec![overdue_key("n", 9)],
            "listed under the surviving match"
        );
        let old = load(&kv, mid, "n").unwrap().unwrap();
        assert!(old.acknowledge_due.is_none() && old.decision_due.is_none());
        assert!(old.overdue.is_empty());
        // Its remaining deadline entries (the decision) moved with it.
        let t: Vec<_> = kv
            .scan_prefix(b"t")
            .unwrap()
            .into_iter()
            .filter_map(|(k, _)| parse_deadline_key(&k))
            .map(|(_, m, which, _)| (m, which))
            .collect();
        assert_eq!(t, vec![(9, Deadline::Decision)]);
    }

    #[test]
    fn a_closed_follow_up_reopens_with_new_deadlines() {
        let (mut kv, p, mid) = matched();
        act_ok(&mut kv, &p, Action::Acknowledge, MONDAY);
        act_ok(&mut kv, &p, Action::Close(CloseReason::NoConcern), MONDAY);
        let later = MONDAY + 10 * DAY;
        submit(
            &mut kv,
            &p,
            signal("a", "3"),
            later,
            &mut Counter(500),
            &mut Effects::default(),
        )
        .unwrap();
        let f = load(&kv, mid, "n").unwrap().unwrap();
        assert_eq!(f.stage, Stage::New);
        assert!(f.unacknowledged);
        assert_eq!(f.closed_reason, None);
        assert_eq!(f.opened_at, later);
        assert!(f.acknowledge_due.unwrap() > later);
        assert_eq!(keys(&kv, b't'), 2);
        assert_eq!(alerts(&kv).last().unwrap().event, event::REOPENED);
    }
}
