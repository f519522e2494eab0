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
//!
//! A signal has an `X` entry while it is active (moved by a renewal), and a `Z` entry
//! from its expiry (found by the job) or its withdrawal with reason `concern_over` until
//! it is erased. The job reads only the entries that are due, so its cost grows with
//! what it does, not with what is stored; each chunk of work is one transaction, so a
//! crash in the middle resumes where it stopped.

use super::engine::{self, EngineError, IdSource, Kv, KvRead, Policy};
use super::model::{SignalId, SignalRecord, SignalState};

/// Key of an active signal's expiry.
pub fn expiry_key(valid_until: i64, signal: SignalId) -> Vec<u8> {
    time_key(b'X', valid_until, signal)
}

/// Key of an archived signal's place in the erasure schedule.
pub fn archive_key(since: i64, signal: SignalId) -> Vec<u8> {
    time_key(b'Z', since, signal)
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

/// What one step of the job did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Done {
    /// Public ids of the signals archived (expired).
    pub archived: Vec<String>,
    /// Public ids of the signals erased.
    pub erased: Vec<String>,
    /// Alerts written (matches that fell below a threshold).
    pub alerts: u64,
    /// Entries that stood for nothing any more (a renewed or erased signal), removed.
    pub stale: u64,
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

    #[test]
    fn keys_hold_time_then_signal_in_order() {
        let k = expiry_key(1_700_000_000, 42);
        assert_eq!(parse_time_key(&k), Some((1_700_000_000, 42)));
        assert!(expiry_key(5, 1) < expiry_key(6, 0));
        assert_eq!(parse_time_key(&k[..16]), None);
    }
}
