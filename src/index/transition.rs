//! The end of a domain-key transition: retiring a domain key id.
//!
//! During a transition partners resubmit their signals by reference under the new key
//! id; each becomes a re-keyed copy with the old record as its shadow
//! ([`engine::submit`]). When the operator retires the old key id, key sets under it are
//! refused, and a sweep over the signal records (in transactions of `max`, with its
//! cursor in the same transaction, so a crash resumes where it stopped) drops every
//! shadow under it ([`engine::drop_shadow`]) and ends every other active signal under
//! it now: the retention job archives those in the same run, as expired.
//!
//! Key: `Gr` key id → u64 BE, the last signal id swept (`u64::MAX`: done).

use super::engine::{self, EngineError, IdSource, Kv, KvRead, Policy};
use super::model::SignalId;

const DONE: u64 = u64::MAX;

/// The key of a retired key id's sweep cursor.
pub fn sweep_key(key_id: &str) -> Vec<u8> {
    [b"Gr".as_slice(), key_id.as_bytes()].concat()
}

fn cursor(kv: &dyn KvRead, key_id: &str) -> Result<Option<u64>, EngineError> {
    match kv.get(&sweep_key(key_id))? {
        None => Ok(None),
        Some(v) => Ok(Some(u64::from_be_bytes(
            v.as_slice()
                .try_into()
                .map_err(|_| EngineError::Corrupt('G'))?,
        ))),
    }
}

/// Whether the sweep of a retired key id has finished.
pub fn swept(kv: &dyn KvRead, key_id: &str) -> Result<bool, EngineError> {
    Ok(cursor(kv, key_id)? == Some(DONE))
}

/// What a sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    /// Public ids of the signals whose validity was ended now.
    pub expired: Vec<String>,
    /// Shadows dropped.
    pub shadows: u64,
    /// Public ids of the signals whose shadows were dropped.
    pub rekeyed: Vec<String>,
    /// Alerts written.
    pub alerts: u64,
}

/// Sweeps up to `max` signal records after the cursor of retired `key_id`. Returns
/// whether the sweep is done.
pub fn sweep(
    kv: &mut dyn Kv,
    policy: &Policy,
    ids: &mut dyn IdSource,
    key_id: &str,
    now: i64,
    max: usize,
    out: &mut Swept,
) -> Result<bool, EngineError> {
    let from = match cursor(kv, key_id)? {
        Some(DONE) => return Ok(true),
        Some(c) => c.saturating_add(1),
        None => 0,
    };
    let found = kv.range(&engine::signal_key(from), &[b's' + 1], max)?;
    let mut last: SignalId = from;
    for (k, _) in &found {
        let Some(sid) = k
            .get(1..9)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
        else {
            continue;
        };
        last = sid;
        // Read again: an earlier signal of this chunk may have dropped it as its shadow.
        let Some(rec) = engine::signal_by_id(kv, sid)? else {
            continue;
        };
        if rec.key_id != key_id || !rec.is_active(now) {
            continue;
        }
        if engine::is_shadow(kv, rec.id)? {
            out.alerts += engine::drop_shadow(kv, policy, ids, &rec, now)?;
            out.shadows += 1;
            out.rekeyed.push(rec.public_id);
            continue;
        }
        if let Some(shadow) = engine::shadow_of(kv, rec.id)? {
            out.alerts += engine::drop_shadow(kv, policy, ids, &shadow, now)?;
            out.shadows += 1;
            out.rekeyed.push(shadow.public_id);
        }
        // Its active time ends now (the day counters move its end like a renewal).
        super::counters::on_renew(kv, &rec, now, now)?;
        engine::set_validity(kv, &rec, now, None)?;
        out.expired.push(rec.public_id);
    }
    let done = found.len() < max;
    kv.put(
        sweep_key(key_id),
        (if done { DONE } else { last }).to_be_bytes().to_vec(),
    );
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::engine::{Effects, NewSignal, SubmitOutcome, submit, withdraw};
    use crate::index::model::{Contact, SignalState, StoredKey, WithdrawReason};
    use crate::index::testkv::Mem;
    use crate::pseudonym::KeyKind;

    struct Counter(u64);
    impl IdSource for Counter {
        fn random16(&mut self) -> [u8; 16] {
            self.0 += 1;
            let mut b = [0; 16];
            b[..8].copy_from_slice(&self.0.to_be_bytes());
            b
        }
    }

    fn policy(current: &str) -> Policy {
        Policy {
            thresholds: [("n".to_string(), 2)].into_iter().collect(),
            max_postings_per_key: 32,
            max_component_signals: 64,
            current_key_id: Some(current.into()),
            ..Policy::default()
        }
    }

    /// A signal on person key `person` under domain key id `key_id`.
    fn sig(org: &str, reference: &str, key_id: &str, person: u8) -> NewSignal {
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
            key_id: key_id.into(),
            valid_until: 1_000_000,
            person: vec![StoredKey {
                kind: KeyKind::Bsn as u8,
                p2: [person; 32],
            }],
            household: vec![],
            family: vec![],
            content_hash: [person; 32],
        }
    }

    fn run(kv: &mut Mem, p: &Policy, s: NewSignal) -> (SubmitOutcome, u64) {
        let mut fx = Effects::default();
        let mut ids = Counter(kv.0.len() as u64 * 1000);
        let o = submit(kv, p, s, 10, &mut ids, &mut fx).unwrap();
        (o, fx.alerts)
    }

    fn keys(kv: &Mem, prefix: u8) -> usize {
        kv.0.keys().filter(|k| k[0] == prefix).count()
    }

    #[test]
    fn a_resubmission_under_the_new_key_id_is_a_twin_until_the_old_one_is_retired() {
        let old = policy("k1");
        let mut kv = Mem::default();
        // Person 1 under k1 by a and b: a match.
        let (first, _) = run(&mut kv, &old, sig("a", "ra", "k1", 1));
        let (_, alerts) = run(&mut kv, &old, sig("b", "rb", "k1", 1));
        assert_eq!(alerts, 1);
        let SubmitOutcome::Created { public_id, .. } = first else {
            panic!("{first:?}")
        };
        // k2 is the newest: a resubmits (person 1 is person 101 under k2).
        let new = policy("k2");
        let (o, alerts) = run(&mut kv, &new, sig("a", "ra", "k2", 101));
        assert_eq!(
            o,
            SubmitOutcome::Rekeyed {
                public_id: public_id.clone(),
                alerts: 0
            }
        );
        assert_eq!(alerts, 0, "the same state: no alert");
        let (o, _) = run(&mut kv, &new, sig("a", "ra", "k2", 101));
        assert_eq!(
            o,
            SubmitOutcome::Existing {
                public_id: public_id.clone()
            }
        );
        let primary = engine::signal_by_public_id(&kv, &public_id)
            .unwrap()
            .unwrap();
        assert_eq!(primary.key_id, "k2");
        let shadow = engine::shadow_of(&kv, primary.id).unwrap().unwrap();
        assert_eq!(
            (shadow.key_id.as_str(), shadow.entity),
            ("k1", primary.entity)
        );
        assert!(engine::is_shadow(&kv, shadow.id).unwrap());
        // Both keys link: c under k2 and d under k1 each join the one match.
        let (_, alerts) = run(&mut kv, &new, sig("c", "rc", "k2", 101));
        assert_eq!(alerts, 1, "c joined");
        let (_, alerts) = run(&mut kv, &new, sig("d", "rd", "k1", 1));
        assert_eq!(alerts, 1, "d joined through the shadow's old key");
        let m = engine::matches_of(&kv, &primary).unwrap();
        assert_eq!(m.len(), 1);
        let shown = engine::match_signals(&kv, &m[0]).unwrap();
        assert_eq!(shown.len(), 4, "the shadow is not shown");
        assert!(shown.iter().all(|s| s.id != shadow.id));

        // Renewal moves both.
        let renewed = engine::renew(&mut kv, &primary, 2_000_000, 11).unwrap();
        let shadow = engine::signal_by_id(&kv, shadow.id).unwrap().unwrap();
        assert_eq!(shadow.valid_until, 2_000_000);

        // Retire k1 in chunks of 2: b's and d's signals end, a's shadow goes.
        let mut out = Swept::default();
        let mut rounds = 0;
        while !sweep(&mut kv, &new, &mut Counter(1000), "k1", 20, 2, &mut out).unwrap() {
            rounds += 1;
            assert!(rounds < 10);
        }
        assert!(swept(&kv, "k1").unwrap());
        assert_eq!(out.shadows, 1);
        assert_eq!(out.expired.len(), 2);
        assert!(engine::signal_by_id(&kv, shadow.id).unwrap().is_none());
        assert_eq!(keys(&kv, b'D'), 0);
        assert!(kv.postings(&[1; 32]).iter().all(|p| p.signal != shadow.id));
        let primary = engine::signal_by_id(&kv, renewed.id).unwrap().unwrap();
        assert!(primary.is_active(20), "the re-keyed signal lives on");
        assert_eq!(
            engine::signal_by_public_id(&kv, &public_id)
                .unwrap()
                .unwrap()
                .id,
            primary.id,
            "its public id and reference still lead to it"
        );
        // Swept again: nothing more.
        let mut again = Swept::default();
        assert!(sweep(&mut kv, &new, &mut Counter(2000), "k1", 30, 2, &mut again).unwrap());
        assert_eq!(again, Swept::default());
    }

    #[test]
    fn withdrawing_a_rekeyed_signal_takes_its_shadow() {
        let mut kv = Mem::default();
        run(&mut kv, &policy("k1"), sig("a", "ra", "k1", 1));
        let new = policy("k2");
        let (o, _) = run(&mut kv, &new, sig("a", "ra", "k2", 101));
        let SubmitOutcome::Rekeyed { public_id, .. } = o else {
            panic!("{o:?}")
        };
        let primary = engine::signal_by_public_id(&kv, &public_id)
            .unwrap()
            .unwrap();
        let shadow = engine::shadow_of(&kv, primary.id).unwrap().unwrap();
        engine::drop_shadow(&mut kv, &new, &mut Counter(50), &shadow, 11).unwrap();
        let w = withdraw(&mut kv, &primary, WithdrawReason::Unjustified, 11).unwrap();
        assert!(matches!(w.state, SignalState::Withdrawn { .. }));
        engine::erase(&mut kv, &w).unwrap();
        assert_eq!(keys(&kv, b's'), 0, "both records gone");
        assert_eq!(keys(&kv, b'D') + keys(&kv, b'i') + keys(&kv, b'r'), 0);
        assert!(kv.postings(&[1; 32]).is_empty() && kv.postings(&[101; 32]).is_empty());
    }
}
