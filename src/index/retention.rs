//! Retention: signals that expire leave their matches and go to the archive; archived
//! signals (expired, or withdrawn because the concern is over) are erased when their
//! archive period has passed. Pure logic over the key-value view; the job that runs it
//! on a schedule is [`crate::http::retention`].
//!
//! Keys (same keyspace as [`super::engine`]):
//!
//! | prefix | key | value |
//! |---|---|---|
//! | `X` | validity end (u64 BE), signal id | empty: an active signal's expiry |
//! | `Z` | archive start (u64 BE), signal id | empty: an archived signal, erased `archive_days` after that time |
//! | `Y` | closed at (u64 BE), match id | empty: a closed match, erased `closed_match_days` (of each of its networks) after its follow-ups closed |
//! | `W` | match id (u64 BE), match id | empty: the second match was merged into the first (it goes with it) |
//! | `g` | match id (u64 BE), outbox sequence (u64 BE) | empty: an alert about the match (it goes with it) |
//!
//! A match is *closed* when it was not merged into another and the follow-up of every
//! network it alerted is in stage `closed` — closed by the coordinator, or by the index
//! when its signals left (reason `withdrawn`). Its `Y` entry holds the time the last of
//! them closed; [`reschedule`] keeps it in step with every change of a follow-up, so a
//! match that reopens (a new signal on it) leaves the schedule in the same transaction.
//!
//! A signal has an `X` entry while it is active (moved by a renewal), and a `Z` entry
//! from its expiry (found by the job) or its withdrawal with reason `concern_over` until
//! it is erased. The job reads only the entries that are due, so its cost grows with
//! what it does, not with what is stored; each chunk of work is one transaction, so a
//! crash in the middle resumes where it stopped.

use super::engine::{self, EngineError, IdSource, Kv, KvRead, Policy};
use super::model::{
    FollowUp, MatchRecord, MatchStatus, SignalId, SignalRecord, SignalState, Stage,
};
use std::collections::{BTreeMap, HashMap};

/// Key of an active signal's expiry.
pub fn expiry_key(valid_until: i64, signal: SignalId) -> Vec<u8> {
    time_key(b'X', valid_until, signal)
}

/// Key of an archived signal's place in the erasure schedule.
pub fn archive_key(since: i64, signal: SignalId) -> Vec<u8> {
    time_key(b'Z', since, signal)
}

/// Key of a closed match's place in the erasure schedule.
pub fn closed_key(closed_at: i64, mid: u64) -> Vec<u8> {
    time_key(b'Y', closed_at, mid)
}

/// Key that says match `from` was merged into match `into`.
pub fn merged_key(into: u64, from: u64) -> Vec<u8> {
    pair_key(b'W', into, from)
}

/// Key of an alert (outbox sequence `seq`) about match `mid`.
pub fn match_alert_key(mid: u64, seq: u64) -> Vec<u8> {
    pair_key(b'g', mid, seq)
}

/// Prefix of the `W` or `g` entries of match `mid`.
pub fn match_prefix(prefix: u8, mid: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(prefix);
    k.extend_from_slice(&mid.to_be_bytes());
    k
}

fn pair_key(prefix: u8, a: u64, b: u64) -> Vec<u8> {
    let mut k = match_prefix(prefix, a);
    k.extend_from_slice(&b.to_be_bytes());
    k
}

/// The second number of a `W` or `g` key.
pub fn second_of(k: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(k.get(9..17)?.try_into().ok()?))
}

fn time_key(prefix: u8, t: i64, signal: SignalId) -> Vec<u8> {
    let mut k = Vec::with_capacity(17);
    k.push(prefix);
    k.extend_from_slice(&(t.max(0) as u64).to_be_bytes());
    k.extend_from_slice(&signal.to_be_bytes());
    k
}

/// The time and signal of an `X` or `Z` key.
pub fn parse_time_key(k: &[u8]) -> Option<(i64, SignalId)> {
    if k.len() != 17 {
        return None;
    }
    let t = u64::from_be_bytes(k[1..9].try_into().ok()?);
    let s = u64::from_be_bytes(k[9..17].try_into().ok()?);
    Some((i64::try_from(t).ok()?, s))
}

/// When an archived signal's archive period began: its withdrawal, or its expiry.
pub fn archived_since(rec: &SignalRecord) -> i64 {
    match rec.state {
        SignalState::Withdrawn { at, .. } => at,
        SignalState::Active => rec.valid_until,
    }
}

/// The retention index entries a stored signal should have (for a database written
/// before them): an active one its expiry (until then), one withdrawn because the
/// concern is over its place in the erasure schedule. A signal that expired before is
/// put in the expiry index all the same: the next run archives it. One withdrawn as
/// unjustified before erasure existed is scheduled at time 0: the next run erases it.
pub fn index_entries(rec: &SignalRecord) -> Vec<Vec<u8>> {
    match rec.state {
        SignalState::Active => vec![expiry_key(rec.valid_until, rec.id)],
        SignalState::Withdrawn {
            reason: crate::index::model::WithdrawReason::Unjustified,
            ..
        } => vec![archive_key(0, rec.id)],
        SignalState::Withdrawn { .. } => vec![archive_key(archived_since(rec), rec.id)],
    }
}

/// When a follow-up was closed (the time of its last `close` step), if it is closed.
pub fn follow_up_closed_at(f: &FollowUp) -> Option<i64> {
    if f.stage != Stage::Closed {
        return None;
    }
    let step = f.history.iter().rev().find(|s| s.action == "close");
    Some(step.map(|s| s.at).or(f.decided_at).unwrap_or(f.opened_at))
}

/// When each network's follow-up of match `m` closed, if the match is closed: not
/// merged, with a follow-up for every network it alerted, each of them closed. With
/// `replace`, the follow-up of that network is taken as given (`None`: absent) instead
/// of as stored, so that a change can be judged before and after.
pub fn closed_times(
    kv: &dyn KvRead,
    m: &MatchRecord,
    replace: Option<(&str, Option<&FollowUp>)>,
) -> Result<Option<Vec<(String, i64)>>, EngineError> {
    if m.status != MatchStatus::Open {
        return Ok(None);
    }
    let prefix = match_prefix(b'f', m.id);
    let mut follow_ups: BTreeMap<String, Option<i64>> = BTreeMap::new();
    for (k, v) in kv.scan_prefix(&prefix)? {
        let network =
            String::from_utf8(k[prefix.len()..].to_vec()).map_err(|_| EngineError::Corrupt('f'))?;
        let f: FollowUp = serde_json::from_slice(&v).map_err(|_| EngineError::Corrupt('f'))?;
        follow_ups.insert(network, follow_up_closed_at(&f));
    }
    if let Some((network, f)) = replace {
        match f {
            Some(f) => follow_ups.insert(network.to_string(), follow_up_closed_at(f)),
            None => follow_ups.remove(network),
        };
    }
    if follow_ups.is_empty() || m.networks.iter().any(|n| !follow_ups.contains_key(n)) {
        return Ok(None);
    }
    Ok(follow_ups
        .into_iter()
        .map(|(n, t)| t.map(|t| (n, t)))
        .collect())
}

fn last(times: Option<Vec<(String, i64)>>) -> Option<i64> {
    times.and_then(|v| v.into_iter().map(|(_, t)| t).max())
}

/// When match `mid` became closed (the last of its follow-ups closed), if it is closed.
pub fn closed_since(kv: &dyn KvRead, mid: u64) -> Result<Option<i64>, EngineError> {
    match engine::match_by_id(kv, mid)? {
        None => Ok(None),
        Some(m) => Ok(last(closed_times(kv, &m, None)?)),
    }
}

/// Keeps the `Y` schedule in step when the follow-up of `network` on match `mid` goes
/// from `old` to `new` (called by [`super::followup::store`], in the same transaction):
/// the match enters it when its last follow-up closes and leaves it when one reopens.
pub fn reschedule(
    kv: &mut dyn Kv,
    mid: u64,
    network: &str,
    old: Option<&FollowUp>,
    new: &FollowUp,
) -> Result<(), EngineError> {
    let Some(m) = engine::match_by_id(kv, mid)? else {
        // A match being formed: its first follow-up is open.
        return Ok(());
    };
    let before = last(closed_times(kv, &m, Some((network, old)))?);
    let after = last(closed_times(kv, &m, Some((network, Some(new))))?);
    if before != after {
        if let Some(t) = before {
            kv.remove(closed_key(t, mid));
        }
        if let Some(t) = after {
            kv.put(closed_key(t, mid), Vec::new());
        }
    }
    Ok(())
}

/// The period a network keeps its closed matches, days, by network. A network that is
/// not in the map (no longer configured) gets the longest period in it, so that nothing
/// goes earlier than some configured network allows.
pub type ClosedMatchDays = HashMap<String, u32>;

/// The default of `networks[].closed_match_days` (used when the map is empty).
pub const DEFAULT_CLOSED_MATCH_DAYS: u32 = 365;

fn period_secs(days: &ClosedMatchDays, network: &str) -> i64 {
    let d = days
        .get(network)
        .copied()
        .or_else(|| days.values().copied().max())
        .unwrap_or(DEFAULT_CLOSED_MATCH_DAYS);
    i64::from(d) * 86_400
}

/// When a closed match may be erased: once the period of each of its networks has
/// passed since that network's follow-up closed.
pub fn erasable_at(times: &[(String, i64)], days: &ClosedMatchDays) -> i64 {
    times
        .iter()
        .map(|(n, t)| t.saturating_add(period_secs(days, n)))
        .max()
        .unwrap_or(i64::MAX)
}

/// The end (exclusive) of the `Y` entries that may be due at `now`: no match closed
/// later than `now` minus the shortest period can be.
fn closed_end(days: &ClosedMatchDays, now: i64) -> Vec<u8> {
    let shortest = days
        .values()
        .copied()
        .min()
        .unwrap_or(DEFAULT_CLOSED_MATCH_DAYS);
    let t = now.saturating_sub(i64::from(shortest) * 86_400);
    let mut end = vec![b'Y'];
    end.extend_from_slice(&(t.max(0) as u64).saturating_add(1).to_be_bytes());
    end
}

fn after_key(prefix: u8, after: Option<&[u8]>) -> Vec<u8> {
    match after {
        Some(a) => {
            let mut s = a.to_vec();
            s.push(0);
            s
        }
        None => vec![prefix],
    }
}

/// What the schedule says of one `Y` entry now.
enum Closed {
    /// The entry stands for nothing any more (reopened, merged, erased): remove it.
    Stale,
    /// Closed, not yet due.
    Waiting,
    /// Due: erase it.
    Due(Box<MatchRecord>),
}

fn judge(
    kv: &dyn KvRead,
    k: &[u8],
    days: &ClosedMatchDays,
    now: i64,
) -> Result<Closed, EngineError> {
    let Some((t, mid)) = parse_time_key(k) else {
        return Ok(Closed::Stale);
    };
    let Some(m) = engine::match_by_id(kv, mid)? else {
        return Ok(Closed::Stale);
    };
    let Some(times) = closed_times(kv, &m, None)? else {
        return Ok(Closed::Stale);
    };
    if times.iter().map(|(_, t)| *t).max() != Some(t) {
        return Ok(Closed::Stale);
    }
    Ok(if erasable_at(&times, days) <= now {
        Closed::Due(Box::new(m))
    } else {
        Closed::Waiting
    })
}

/// Reads up to `max` entries of the closed-match schedule after `after` that may be due
/// at `now` and erases the matches among them whose periods have all passed
/// ([`engine::erase_match`]: with the matches merged into them). Returns the entries
/// read (fewer than `max`: the schedule is done) and the last one, where the next
/// chunk goes on: entries that are not due yet (a network with a longer period) stay.
pub fn erase_closed(
    kv: &mut dyn Kv,
    days: &ClosedMatchDays,
    now: i64,
    after: Option<&[u8]>,
    max: usize,
    done: &mut Done,
) -> Result<(usize, Option<Vec<u8>>), EngineError> {
    let rows = kv.range(&after_key(b'Y', after), &closed_end(days, now), max)?;
    let n = rows.len();
    let last = rows.last().map(|(k, _)| k.clone());
    for (k, _) in rows {
        match judge(kv, &k, days, now)? {
            Closed::Stale => {
                kv.remove(k);
                done.stale += 1;
            }
            Closed::Waiting => {}
            Closed::Due(m) => {
                kv.remove(k);
                done.matches_erased.extend(engine::erase_match(kv, &m)?);
            }
        }
    }
    Ok((n, last))
}

/// What a run would erase of the closed matches at `now`: at most `max` of them, with
/// the time from which each may be erased.
pub fn plan_closed(
    kv: &dyn KvRead,
    days: &ClosedMatchDays,
    now: i64,
    max: usize,
) -> Result<Vec<(MatchRecord, i64)>, EngineError> {
    let end = closed_end(days, now);
    let mut out = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let rows = kv.range(&after_key(b'Y', after.as_deref()), &end, 1_000)?;
        let Some((k, _)) = rows.last() else {
            break;
        };
        after = Some(k.clone());
        for (k, _) in &rows {
            if let Closed::Due(m) = judge(kv, k, days, now)? {
                let times = closed_times(kv, &m, None)?.unwrap_or_default();
                out.push((*m, erasable_at(&times, days)));
                if out.len() >= max {
                    return Ok(out);
                }
            }
        }
        if rows.len() < 1_000 {
            break;
        }
    }
    Ok(out)
}

/// The closed-match index entries a stored match should have (for a database written
/// before them): its place in the schedule if it is closed, the merge it went into.
pub fn match_index_entries(kv: &dyn KvRead, m: &MatchRecord) -> Result<Vec<Vec<u8>>, EngineError> {
    let mut out = Vec::new();
    if let Some(t) = last(closed_times(kv, m, None)?) {
        out.push(closed_key(t, m.id));
    }
    if let (MatchStatus::Merged, Some(into)) = (m.status, m.merged_into) {
        out.push(merged_key(into, m.id));
    }
    Ok(out)
}

/// What one step of the job did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Done {
    /// Public ids of the signals archived (expired).
    pub archived: Vec<String>,
    /// Public ids of the signals erased.
    pub erased: Vec<String>,
    /// Alerts written (matches that fell below a threshold).
    pub alerts: u64,
    /// Entries that stood for nothing any more (a renewed or erased signal, a reopened
    /// match), removed.
    pub stale: u64,
    /// Handles of the closed matches erased (with those merged into them).
    pub matches_erased: Vec<String>,
}

/// Archives up to `max` signals whose validity ended at or before `now`: each leaves its
/// matches ([`engine::leave`]), its postings are dropped (they can no longer link) and
/// its keys go to the archive key index for data-subject access requests, and it is
/// scheduled for erasure. Returns what it did; fewer than `max` means nothing is left.
pub fn archive_expired(
    kv: &mut dyn Kv,
    policy: &Policy,
    ids: &mut dyn IdSource,
    now: i64,
    max: usize,
    done: &mut Done,
) -> Result<usize, EngineError> {
    let mut n = 0;
    for (k, _) in due(kv, b'X', now, max)? {
        n += 1;
        kv.remove(k.clone());
        let Some((until, sid)) = parse_time_key(&k) else {
            done.stale += 1;
            continue;
        };
        let Some(rec) = engine::signal_by_id(kv, sid)? else {
            done.stale += 1;
            continue;
        };
        if rec.state != SignalState::Active || rec.valid_until != until {
            done.stale += 1;
            continue;
        }
        done.alerts += engine::leave(kv, policy, ids, &rec, now)?;
        for key in rec.all_keys() {
            kv.remove_posting(&key.p2, rec.id);
        }
        engine::archive_keys(kv, &rec);
        kv.put(archive_key(rec.valid_until, rec.id), Vec::new());
        done.archived.push(rec.public_id);
    }
    Ok(n)
}

/// Erases up to `max` archived signals whose archive period (`archive_secs` after they
/// were withdrawn or expired) has passed at `now`.
pub fn erase_archived(
    kv: &mut dyn Kv,
    now: i64,
    archive_secs: i64,
    max: usize,
    done: &mut Done,
) -> Result<usize, EngineError> {
    let mut n = 0;
    for (k, _) in due(kv, b'Z', now.saturating_sub(archive_secs), max)? {
        n += 1;
        kv.remove(k.clone());
        let Some((_, sid)) = parse_time_key(&k) else {
            done.stale += 1;
            continue;
        };
        let Some(rec) = engine::signal_by_id(kv, sid)? else {
            done.stale += 1;
            continue;
        };
        engine::erase(kv, &rec)?;
        done.erased.push(rec.public_id);
    }
    Ok(n)
}

/// Up to `max` entries under `prefix` with a time at or before `t`, oldest first.
fn due(kv: &dyn KvRead, prefix: u8, t: i64, max: usize) -> Result<Vec<engine::Entry>, EngineError> {
    let mut end = vec![prefix];
    end.extend_from_slice(&(t.max(0) as u64).saturating_add(1).to_be_bytes());
    kv.range(&[prefix], &end, max)
}

/// What a run would do now, without doing it: the signals that would be archived and
/// erased (public ids), at most `max` of each.
pub fn plan(
    kv: &dyn KvRead,
    now: i64,
    archive_secs: i64,
    max: usize,
) -> Result<(Vec<SignalRecord>, Vec<SignalRecord>), EngineError> {
    let mut expiring = Vec::new();
    for (k, _) in due(kv, b'X', now, max)? {
        if let Some((until, sid)) = parse_time_key(&k) {
            if let Some(rec) = engine::signal_by_id(kv, sid)? {
                if rec.state == SignalState::Active && rec.valid_until == until {
                    expiring.push(rec);
                }
            }
        }
    }
    let mut erasing = Vec::new();
    for (k, _) in due(kv, b'Z', now.saturating_sub(archive_secs), max)? {
        if let Some((_, sid)) = parse_time_key(&k) {
            if let Some(rec) = engine::signal_by_id(kv, sid)? {
                erasing.push(rec);
            }
        }
    }
    Ok((expiring, erasing))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::engine::{Effects, NewSignal, submit};
    use crate::index::model::{Contact, StoredKey};
    use crate::index::testkv::Mem;
    use crate::pseudonym::KeyKind;

    struct Counter(u128);
    impl IdSource for Counter {
        fn random16(&mut self) -> [u8; 16] {
            self.0 += 1;
            self.0.to_be_bytes()
        }
    }

    fn policy() -> Policy {
        Policy {
            thresholds: [("n".to_string(), 2)].into_iter().collect(),
            max_postings_per_key: 32,
            max_component_signals: 64,
            ..Policy::default()
        }
    }

    fn sig(org: &str, reference: &str, person: u8, until: i64) -> NewSignal {
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
            valid_until: until,
            person: vec![StoredKey {
                kind: KeyKind::Bsn as u8,
                p2: [person; 32],
            }],
            household: vec![],
            family: vec![],
            content_hash: [reference.len() as u8; 32],
        }
    }

    #[test]
    fn a_run_cut_off_after_any_chunk_resumes_and_handles_each_signal_once() {
        let p = policy();
        let mut kv = Mem::default();
        let mut ids = Counter(0);
        for (i, org) in ["a", "b", "a", "b", "c"].into_iter().enumerate() {
            let mut fx = Effects::default();
            let s = sig(org, &format!("r{i}"), (i / 2) as u8, 100 + i as i64);
            submit(&mut kv, &p, s, 0, &mut ids, &mut fx).unwrap();
        }
        // A run that stops ("crashes") after every chunk of one signal, then goes on.
        let mut all = Done::default();
        loop {
            let mut done = Done::default();
            let n = archive_expired(&mut kv, &p, &mut ids, 1_000, 1, &mut done).unwrap();
            all.archived.extend(done.archived);
            all.alerts += done.alerts;
            if n == 0 {
                break;
            }
        }
        let mut unique = all.archived.clone();
        unique.sort();
        unique.dedup();
        assert_eq!((all.archived.len(), unique.len()), (5, 5));
        // Two matches (persons 0 and 1) dissolved, each once.
        assert_eq!(all.alerts, 2);
        // Erasure: nothing before the period, everything after, each once.
        let mut done = Done::default();
        assert_eq!(
            erase_archived(&mut kv, 1_000, 10_000, 100, &mut done).unwrap(),
            0
        );
        let mut erased = 0;
        loop {
            let mut done = Done::default();
            let n = erase_archived(&mut kv, 20_000, 10_000, 2, &mut done).unwrap();
            erased += done.erased.len();
            if n == 0 {
                break;
            }
        }
        assert_eq!(erased, 5);
        assert!(
            kv.0.keys()
                .all(|k| !matches!(k[0], b's' | b'X' | b'Z' | b'A' | b'i' | b'r'))
        );
    }

    #[test]
    fn an_older_database_gets_its_schedule() {
        let mut kv = Mem::default();
        let p = policy();
        let mut fx = Effects::default();
        submit(
            &mut kv,
            &p,
            sig("a", "r", 1, 100),
            0,
            &mut Counter(0),
            &mut fx,
        )
        .unwrap();
        let rec = engine::signal_by_id(&kv, 1).unwrap().unwrap();
        assert_eq!(index_entries(&rec), vec![expiry_key(100, 1)]);
        let mut w = rec.clone();
        w.state = SignalState::Withdrawn {
            reason: crate::index::model::WithdrawReason::ConcernOver,
            at: 50,
        };
        assert_eq!(index_entries(&w), vec![archive_key(50, 1)]);
        w.state = SignalState::Withdrawn {
            reason: crate::index::model::WithdrawReason::Unjustified,
            at: 50,
        };
        assert_eq!(index_entries(&w), vec![archive_key(0, 1)]);
    }

    const DAY: i64 = 86_400;
    /// Monday 7 December 2026, 10:00 UTC.
    const T0: i64 = 20_794 * DAY + 10 * 3600;

    fn two_networks() -> Policy {
        Policy {
            thresholds: [("n".to_string(), 2), ("w".to_string(), 2)]
                .into_iter()
                .collect(),
            webhook_networks: ["n".to_string()].into_iter().collect(),
            ..policy()
        }
    }

    fn days() -> ClosedMatchDays {
        [("n".to_string(), 30), ("w".to_string(), 300)]
            .into_iter()
            .collect()
    }

    fn put(kv: &mut dyn Kv, p: &Policy, s: NewSignal, now: i64, ids: &mut Counter) -> SignalId {
        let mut fx = Effects::default();
        submit(kv, p, s, now, ids, &mut fx).unwrap();
        engine::counter(kv, "signal").unwrap()
    }

    fn in_network(org: &str, reference: &str, person: u8, network: &str) -> NewSignal {
        NewSignal {
            network: network.into(),
            ..sig(org, reference, person, T0 + 700 * DAY)
        }
    }

    /// A match of organisations a and b on `person` in `network`, formed at `at`.
    fn formed(
        kv: &mut dyn Kv,
        p: &Policy,
        ids: &mut Counter,
        person: u8,
        network: &str,
        at: i64,
    ) -> MatchRecord {
        put(
            kv,
            p,
            in_network("a", &format!("a{person}"), person, network),
            at,
            ids,
        );
        let sid = put(
            kv,
            p,
            in_network("b", &format!("b{person}"), person, network),
            at,
            ids,
        );
        let rec = engine::signal_by_id(kv, sid).unwrap().unwrap();
        engine::matches_of(kv, &rec).unwrap().remove(0)
    }

    fn close(kv: &mut dyn Kv, p: &Policy, ids: &mut Counter, m: &MatchRecord, at: i64) {
        use crate::index::followup::{Action, Actor, act};
        let actor = Actor {
            by: "regisseur".into(),
            on_behalf_of: None,
        };
        let network = m.networks[0].clone();
        for a in [
            Action::Acknowledge,
            Action::Close(crate::index::model::CloseReason::CareInPlace),
        ] {
            act(kv, p, ids, m.id, &network, &a, &actor, at)
                .unwrap()
                .unwrap();
        }
    }

    fn run_all(kv: &mut Mem, now: i64, max: usize) -> Vec<String> {
        let mut erased = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let mut done = Done::default();
            let (n, last) =
                erase_closed(kv, &days(), now, after.as_deref(), max, &mut done).unwrap();
            erased.extend(done.matches_erased);
            if n < max {
                return erased;
            }
            after = last;
        }
    }

    fn scheduled(kv: &Mem) -> Vec<(i64, u64)> {
        kv.0.keys()
            .filter(|k| k[0] == b'Y')
            .filter_map(|k| parse_time_key(k))
            .collect()
    }

    /// Every key or value that still belongs to match `mid` (handle `handle`, alerts
    /// with sequences `seqs`): its id big-endian where a key holds a match id, its
    /// handle anywhere, its alerts' sequences where a key holds one.
    fn traces(kv: &Mem, mid: u64, handle: &str, seqs: &[u64]) -> Vec<Vec<u8>> {
        let id = mid.to_be_bytes();
        let has = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
        let tail = |k: &[u8]| k.get(k.len().saturating_sub(8)..).map(|t| t.to_vec());
        kv.0.iter()
            .filter(|(k, v)| {
                has(k, handle.as_bytes())
                    || has(v, handle.as_bytes())
                    || match k[0] {
                        b'm' | b'f' | b'g' => k.get(1..9) == Some(&id[..]),
                        b't' | b'Y' => k.get(9..17) == Some(&id[..]),
                        b'W' => k.get(1..9) == Some(&id[..]) || k.get(9..17) == Some(&id[..]),
                        b'n' | b'V' => tail(k).as_deref() == Some(&id[..]),
                        b'M' | b'j' => v.as_slice() == id,
                        b'o' => serde_json::from_slice::<crate::index::model::Alert>(v)
                            .is_ok_and(|a| a.match_id == mid),
                        b'a' | b'q' | b'x' => tail(k)
                            .and_then(|t| t.try_into().ok())
                            .is_some_and(|t: [u8; 8]| seqs.contains(&u64::from_be_bytes(t))),
                        _ => false,
                    }
            })
            .map(|(k, _)| k.clone())
            .collect()
    }

    fn alert_seqs(kv: &Mem, mid: u64) -> Vec<u64> {
        kv.0.iter()
            .filter(|(k, _)| k[0] == b'o')
            .filter_map(|(_, v)| serde_json::from_slice::<crate::index::model::Alert>(v).ok())
            .filter(|a| a.match_id == mid)
            .map(|a| a.seq)
            .collect()
    }

    #[test]
    fn a_closed_match_is_erased_at_the_second_its_period_ends_and_leaves_no_trace() {
        let (p, mut ids, mut kv) = (two_networks(), Counter(0), Mem::default());
        let gone = formed(&mut kv, &p, &mut ids, 1, "n", T0);
        let stays = formed(&mut kv, &p, &mut ids, 2, "n", T0);
        // A pending webhook delivery that was dead-lettered stays with its alert.
        let seqs = alert_seqs(&kv, gone.id);
        let q = crate::index::followup::pending_key("n", seqs[0]);
        kv.remove(q);
        kv.put(crate::alerts::webhook::dead_key("n", seqs[0]), Vec::new());
        let closed = T0 + 3 * DAY;
        close(&mut kv, &p, &mut ids, &gone, closed);
        assert_eq!(scheduled(&kv), vec![(closed, gone.id)]);
        let seqs = alert_seqs(&kv, gone.id);
        assert!(seqs.len() >= 3, "formed, followed up twice");
        let signals_before = kv.0.keys().filter(|k| k[0] == b's').count();

        let due = closed + 30 * DAY;
        assert!(run_all(&mut kv, due - 1, 10).is_empty(), "a second early");
        assert!(plan_closed(&kv, &days(), due - 1, 10).unwrap().is_empty());
        let planned = plan_closed(&kv, &days(), due, 10).unwrap();
        assert_eq!(
            planned.iter().map(|(m, t)| (m.id, *t)).collect::<Vec<_>>(),
            vec![(gone.id, due)]
        );
        assert_eq!(run_all(&mut kv, due, 10), vec![gone.handle.clone()]);
        assert_eq!(
            traces(&kv, gone.id, &gone.handle, &seqs),
            Vec::<Vec<u8>>::new()
        );
        assert!(scheduled(&kv).is_empty());
        // The open match and every signal stay.
        assert!(
            engine::match_by_handle(&kv, &stays.handle)
                .unwrap()
                .is_some()
        );
        assert!(!traces(&kv, stays.id, &stays.handle, &alert_seqs(&kv, stays.id)).is_empty());
        assert_eq!(kv.0.keys().filter(|k| k[0] == b's').count(), signals_before);
        assert!(run_all(&mut kv, due + 1_000 * DAY, 10).is_empty(), "once");
        // A new signal on the same person forms a new match, with a new handle.
        put(
            &mut kv,
            &p,
            in_network("c", "c1", 1, "n"),
            due + 1,
            &mut ids,
        );
        let fresh =
            engine::matches_of(&kv, &engine::signal_by_id(&kv, 1).unwrap().unwrap()).unwrap();
        assert_eq!(fresh.len(), 1);
        assert_ne!(fresh[0].handle, gone.handle);
    }

    #[test]
    fn a_reopened_match_leaves_the_schedule_and_a_dissolved_one_enters_it() {
        let (p, mut ids, mut kv) = (two_networks(), Counter(0), Mem::default());
        let m = formed(&mut kv, &p, &mut ids, 1, "n", T0);
        close(&mut kv, &p, &mut ids, &m, T0 + DAY);
        assert_eq!(scheduled(&kv), vec![(T0 + DAY, m.id)]);
        // A new signal on the closed match reopens it: out of the schedule at once.
        put(
            &mut kv,
            &p,
            in_network("a", "a-again", 1, "n"),
            T0 + 2 * DAY,
            &mut ids,
        );
        assert!(scheduled(&kv).is_empty());
        assert!(run_all(&mut kv, T0 + 1_000 * DAY, 10).is_empty());
        assert!(engine::match_by_id(&kv, m.id).unwrap().is_some());
        // A stale entry (as a crash before this code could leave) is removed, not obeyed.
        kv.put(closed_key(T0 + DAY, m.id), Vec::new());
        let mut done = Done::default();
        erase_closed(&mut kv, &days(), T0 + 1_000 * DAY, None, 10, &mut done).unwrap();
        assert_eq!((done.stale, done.matches_erased.len()), (1, 0));
        assert!(engine::match_by_id(&kv, m.id).unwrap().is_some());
        // The signals leave (withdrawn): the index closes it (withdrawn) and it is due
        // 30 days after that.
        let at = T0 + 5 * DAY;
        for sid in [2, 3] {
            let rec = engine::signal_by_id(&kv, sid).unwrap().unwrap();
            let w = engine::withdraw(
                &mut kv,
                &rec,
                crate::index::model::WithdrawReason::ConcernOver,
                at,
            )
            .unwrap();
            engine::leave(&mut kv, &p, &mut ids, &w, at).unwrap();
        }
        let f = crate::index::followup::load(&kv, m.id, "n")
            .unwrap()
            .unwrap();
        assert_eq!(
            f.closed_reason,
            Some(crate::index::model::CloseReason::Withdrawn)
        );
        assert_eq!(scheduled(&kv), vec![(at, m.id)]);
        assert!(run_all(&mut kv, at + 30 * DAY - 1, 10).is_empty());
        assert_eq!(run_all(&mut kv, at + 30 * DAY, 10), vec![m.handle.clone()]);
    }

    #[test]
    fn entries_not_yet_due_are_stepped_over_and_a_run_cut_off_after_any_chunk_resumes() {
        let (p, mut ids, mut kv) = (two_networks(), Counter(0), Mem::default());
        // First in the schedule: a match of network w (300 days), then five of n (30).
        let slow = formed(&mut kv, &p, &mut ids, 1, "w", T0);
        close(&mut kv, &p, &mut ids, &slow, T0);
        let mut fast = Vec::new();
        for person in 2..7 {
            let m = formed(&mut kv, &p, &mut ids, person, "n", T0);
            close(&mut kv, &p, &mut ids, &m, T0 + DAY + i64::from(person));
            fast.push(m.handle);
        }
        let now = T0 + 40 * DAY;
        // A run that stops ("crashes") after every chunk of one entry loses its cursor
        // and starts again from the beginning: the entry not yet due is read again each
        // time, the others go one by one, each once.
        let mut erased = Vec::new();
        for _ in 0..20 {
            let mut done = Done::default();
            erase_closed(&mut kv, &days(), now, None, 2, &mut done).unwrap();
            erased.extend(done.matches_erased);
        }
        assert_eq!(erased, fast);
        assert_eq!(scheduled(&kv), vec![(T0, slow.id)]);
        // With the cursor, chunks of one step over it.
        assert!(run_all(&mut kv, now, 1).is_empty());
        assert_eq!(run_all(&mut kv, T0 + 300 * DAY, 1), vec![slow.handle]);
        assert!(kv.0.keys().all(|k| !matches!(
            k[0],
            b'm' | b'j' | b'M' | b'f' | b'g' | b'o' | b'a' | b'q' | b'n' | b'Y' | b't'
        )));
    }

    #[test]
    fn the_matches_merged_into_a_closed_match_go_with_it() {
        let (p, mut ids, mut kv) = (two_networks(), Counter(0), Mem::default());
        let key = |kind: KeyKind, b: u8| StoredKey {
            kind: kind as u8,
            p2: [b; 32],
        };
        let with = |org: &str, r: &str, keys: Vec<StoredKey>| NewSignal {
            person: keys,
            ..in_network(org, r, 0, "n")
        };
        // Two persons' matches (a+b on a BSN, c+d on a name key); a signal with both
        // keys bridges them, and one match is merged into the other.
        for (org, r, k) in [
            ("a", "1", key(KeyKind::Bsn, 1)),
            ("b", "2", key(KeyKind::Bsn, 1)),
            ("c", "3", key(KeyKind::NameDate, 2)),
            ("d", "4", key(KeyKind::NameDate, 2)),
        ] {
            put(&mut kv, &p, with(org, r, vec![k]), T0, &mut ids);
        }
        let bridge = vec![key(KeyKind::Bsn, 1), key(KeyKind::NameDate, 2)];
        put(&mut kv, &p, with("e", "5", bridge), T0 + 60, &mut ids);
        let all: Vec<MatchRecord> = kv
            .scan_prefix(b"m")
            .unwrap()
            .into_iter()
            .map(|(_, v)| serde_json::from_slice(&v).unwrap())
            .collect();
        assert_eq!(all.len(), 2);
        let (merged, open): (Vec<_>, Vec<_>) = all
            .into_iter()
            .partition(|m| m.status == MatchStatus::Merged);
        let (merged, open) = (&merged[0], &open[0]);
        assert_eq!(merged.merged_into, Some(open.id));
        assert!(kv.get(&merged_key(open.id, merged.id)).unwrap().is_some());
        close(&mut kv, &p, &mut ids, open, T0 + DAY);
        assert_eq!(scheduled(&kv), vec![(T0 + DAY, open.id)]);
        // What a database written before these entries gets when it is opened.
        assert_eq!(
            match_index_entries(&kv, open).unwrap(),
            vec![closed_key(T0 + DAY, open.id)]
        );
        assert_eq!(
            match_index_entries(&kv, merged).unwrap(),
            vec![merged_key(open.id, merged.id)]
        );
        let seqs: Vec<u64> = alert_seqs(&kv, open.id)
            .into_iter()
            .chain(alert_seqs(&kv, merged.id))
            .collect();
        let mut erased = run_all(&mut kv, T0 + 31 * DAY, 10);
        erased.sort();
        let mut want = vec![open.handle.clone(), merged.handle.clone()];
        want.sort();
        assert_eq!(erased, want);
        assert!(traces(&kv, open.id, &open.handle, &seqs).is_empty());
        assert!(traces(&kv, merged.id, &merged.handle, &seqs).is_empty());
        assert_eq!(kv.0.keys().filter(|k| k[0] == b's').count(), 5);
    }

    #[test]
    fn opening_an_older_store_writes_its_closed_match_schedule_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = two_networks();
        let open = || crate::store::Store::open(dir.path(), 8, &p, T0).unwrap();
        let store = open();
        let prefixes: [&[u8]; 3] = [b"Y", b"W", b"g"];
        let kept = store
            .transact(|kv| {
                let mut ids = Counter(0);
                let m = formed(kv, &p, &mut ids, 1, "n", T0);
                close(kv, &p, &mut ids, &m, T0 + DAY);
                formed(kv, &p, &mut ids, 2, "n", T0);
                // What a database from before the schedule holds: none of its entries.
                let mut kept = Vec::new();
                for prefix in prefixes {
                    kept.extend(kv.scan_prefix(prefix)?);
                }
                for (k, _) in &kept {
                    kv.remove(k.clone());
                }
                kv.remove(b"cclosed_match_index".to_vec());
                Ok(kept)
            })
            .unwrap();
        assert!(kept.iter().any(|(k, _)| k[0] == b'Y'));
        assert!(kept.iter().filter(|(k, _)| k[0] == b'g').count() >= 4);
        store.flush().unwrap();
        drop(store);
        let store = open();
        let rebuilt: Vec<engine::Entry> = prefixes
            .iter()
            .flat_map(|p| store.scan_prefix(p).unwrap())
            .collect();
        assert_eq!(rebuilt, kept);
        assert!(store.get(b"cclosed_match_index").unwrap().is_some());
    }

    #[test]
    fn keys_hold_time_then_signal_in_order() {
        let k = expiry_key(1_700_000_000, 42);
        assert_eq!(parse_time_key(&k), Some((1_700_000_000, 42)));
        assert!(expiry_key(5, 1) < expiry_key(6, 0));
        assert_eq!(parse_time_key(&k[..16]), None);
    }
}
