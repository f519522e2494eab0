//! Per-network daily signal counters for the network figures (issue "Coordinator alerts
//! and follow-up" §5), kept in the same transaction as the signal write so that the
//! figures never need to read the signal records (10 million of them at the design point).
//!
//! Keys (same keyspace as [`super::engine`]):
//!
//! | prefix | key | value |
//! |---|---|---|
//! | `C` | network 0 `s` local day (u32 BE) | i64 BE: signals submitted that day |
//! | `C` | network 0 `e` local day (u32 BE) | i64 BE: signals whose active time ends that day |
//! | `C` | (nothing more) | empty: the counters cover every stored signal |
//!
//! Days are Dutch local days ([`crate::calendar::local_day`]). A signal is active from
//! its submission until the earliest of its validity end and its withdrawal (both
//! exclusive). Each signal adds one to `s` on its submission day and one to `e` on the
//! day its active time ends, as far as known now: its validity end, moved by a renewal,
//! or brought forward to the withdrawal day. So a signal is active at the last second of
//! day `D` exactly when it was submitted on or before `D` and its end lies after `D`:
//!
//! `active(D) = Σ_{d ≤ D} s[d] − Σ_{d ≤ D} e[d]`.
//!
//! This holds for every day up to yesterday; for today and later the `e` entries are
//! planned ends that a withdrawal may still bring forward, which is why the figures
//! only cover completed days.

use super::engine::{EngineError, Kv, KvRead};
use super::model::SignalRecord;
use crate::calendar::local_day;

const SUBMITTED: u8 = b's';
const ENDED: u8 = b'e';

/// Prefix of one of a network's counter series (`s` or `e`).
fn series_prefix(network: &str, series: u8) -> Vec<u8> {
    let mut k = Vec::with_capacity(3 + network.len() + 4);
    k.push(b'C');
    k.extend_from_slice(network.as_bytes());
    k.push(0);
    k.push(series);
    k
}

/// The local day of unix time `t`, as stored in a counter key.
fn day_of(t: i64) -> u32 {
    u32::try_from(local_day(t).max(0)).unwrap_or(u32::MAX)
}

fn counter_key(network: &str, series: u8, day: u32) -> Vec<u8> {
    let mut k = series_prefix(network, series);
    k.extend_from_slice(&day.to_be_bytes());
    k
}

fn decode(v: &[u8]) -> Result<i64, EngineError> {
    let arr: [u8; 8] = v.try_into().map_err(|_| EngineError::Corrupt('C'))?;
    Ok(i64::from_be_bytes(arr))
}

fn add(kv: &mut dyn Kv, network: &str, series: u8, t: i64, delta: i64) -> Result<(), EngineError> {
    let k = counter_key(network, series, day_of(t));
    let now = match kv.get(&k)? {
        Some(v) => decode(&v)?,
        None => 0,
    };
    let next = now + delta;
    if next == 0 {
        kv.remove(k);
    } else {
        kv.put(k, next.to_be_bytes().to_vec());
    }
    Ok(())
}

/// A new signal was stored.
pub fn on_submit(kv: &mut dyn Kv, rec: &SignalRecord) -> Result<(), EngineError> {
    add(kv, &rec.network, SUBMITTED, rec.submitted_at, 1)?;
    add(kv, &rec.network, ENDED, rec.valid_until, 1)
}

/// Signal `old` (as it was before) is withdrawn at `now`: its active time ends now,
/// unless it had already ended by expiry.
pub fn on_withdraw(kv: &mut dyn Kv, old: &SignalRecord, now: i64) -> Result<(), EngineError> {
    if now >= old.valid_until {
        return Ok(());
    }
    add(kv, &old.network, ENDED, old.valid_until, -1)?;
    add(kv, &old.network, ENDED, now, 1)
}

/// Signal `old` (as it was before, active at `now`) is renewed to `valid_until`.
pub fn on_renew(
    kv: &mut dyn Kv,
    old: &SignalRecord,
    valid_until: i64,
    _now: i64,
) -> Result<(), EngineError> {
    // Renewal is refused for signals that are no longer active (the route checks it),
    // so the active time is one interval whose end moves.
    add(kv, &old.network, ENDED, old.valid_until, -1)?;
    add(kv, &old.network, ENDED, valid_until, 1)
}

/// Key that says the counters cover every stored signal: written by the first
/// [`Backfill`] (a database made before the counters existed) or at creation.
pub const COMPLETE_KEY: &[u8] = b"C";

/// Counters rebuilt from the signal records, for a database made before they existed.
/// The store feeds it from the scan it makes at start anyway (posting lists).
#[derive(Debug, Default)]
pub struct Backfill {
    counts: std::collections::BTreeMap<Vec<u8>, i64>,
}

impl Backfill {
    /// Counts one stored signal: submitted on its day; its active time ends at its
    /// withdrawal if that came before its validity end, else at its validity end.
    pub fn add(&mut self, rec: &SignalRecord) {
        let end = match rec.state {
            super::model::SignalState::Withdrawn { at, .. } => at.min(rec.valid_until),
            super::model::SignalState::Active => rec.valid_until,
        };
        for (series, t) in [(SUBMITTED, rec.submitted_at), (ENDED, end)] {
            *self
                .counts
                .entry(counter_key(&rec.network, series, day_of(t)))
                .or_default() += 1;
        }
    }

    /// The entries to write, the [`COMPLETE_KEY`] marker included.
    pub fn into_entries(self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out: Vec<(Vec<u8>, Vec<u8>)> = self
            .counts
            .into_iter()
            .map(|(k, n)| (k, n.to_be_bytes().to_vec()))
            .collect();
        out.push((COMPLETE_KEY.to_vec(), Vec::new()));
        out
    }
}

/// Signals of a network submitted on local days `from..=to`, and active at the last
/// second of local day `to`. Reads the network's day counters only (one entry per day
/// with a submission or an end), never the signals.
pub fn signal_counts(
    kv: &dyn KvRead,
    network: &str,
    from: i64,
    to: i64,
) -> Result<(u64, u64), EngineError> {
    let mut submitted = 0i64;
    let mut started = 0i64;
    let prefix = series_prefix(network, SUBMITTED);
    for (k, v) in kv.scan_prefix(&prefix)? {
        let day = day_from_key(&k, prefix.len())?;
        if day > to {
            break;
        }
        let n = decode(&v)?;
        started += n;
        if day >= from {
            submitted += n;
        }
    }
    let mut ended = 0i64;
    let prefix = series_prefix(network, ENDED);
    for (k, v) in kv.scan_prefix(&prefix)? {
        if day_from_key(&k, prefix.len())? > to {
            break;
        }
        ended += decode(&v)?;
    }
    Ok((
        u64::try_from(submitted).unwrap_or(0),
        u64::try_from(started - ended).unwrap_or(0),
    ))
}

fn day_from_key(k: &[u8], at: usize) -> Result<i64, EngineError> {
    let arr: [u8; 4] = k
        .get(at..)
        .and_then(|d| d.try_into().ok())
        .ok_or(EngineError::Corrupt('C'))?;
    Ok(i64::from(u32::from_be_bytes(arr)))
}

#[cfg(test)]
mod tests {
    use super::super::engine::{self, Effects, IdSource, NewSignal, Policy};
    use super::super::model::*;
    use super::super::testkv::Mem;
    use super::*;
    use crate::calendar::local_midnight;

    struct Ids(u128);
    impl IdSource for Ids {
        fn random16(&mut self) -> [u8; 16] {
            self.0 += 1;
            self.0.to_be_bytes()
        }
    }

    const DAY: i64 = 86_400;
    /// `hour` hours after local midnight of local day `day`.
    fn at(day: i64, hour: i64) -> i64 {
        local_midnight(day) + hour * 3600
    }
    /// 2026-10-22: the days checked span the end of summer time (25 October), when a
    /// local day has 25 hours.
    const D: i64 = 20_748;

    fn submit(kv: &mut Mem, network: &str, reference: &str, now: i64, until: i64) -> SignalRecord {
        let new = NewSignal {
            org: "o".into(),
            network: network.into(),
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
                kind: 0,
                p2: [reference.len() as u8; 32],
            }],
            household: vec![],
            family: vec![],
            content_hash: [1; 32],
        };
        let policy = Policy {
            max_postings_per_key: 32,
            max_component_signals: 64,
            ..Policy::default()
        };
        let out = engine::submit(
            kv,
            &policy,
            new,
            now,
            &mut Ids(now as u128),
            &mut Effects::default(),
        )
        .unwrap();
        let engine::SubmitOutcome::Created { public_id, .. } = out else {
            panic!("not created: {out:?}");
        };
        engine::signal_by_public_id(kv, &public_id)
            .unwrap()
            .unwrap()
    }

    /// The truth, from the records: submitted on days from..=to, active at the end of `to`.
    fn truth(kv: &Mem, network: &str, from: i64, to: i64) -> (u64, u64) {
        let end = local_midnight(to + 1) - 1;
        let recs: Vec<SignalRecord> = kv
            .scan_prefix(b"s")
            .unwrap()
            .iter()
            .filter_map(|(_, v)| SignalRecord::decode(v))
            .filter(|r| r.network == network)
            .collect();
        let submitted = recs
            .iter()
            .filter(|r| (from..=to).contains(&local_day(r.submitted_at)))
            .count() as u64;
        let active = recs
            .iter()
            .filter(|r| {
                let withdrawn_before =
                    matches!(r.state, SignalState::Withdrawn { at, .. } if at <= end);
                r.submitted_at <= end && end < r.valid_until && !withdrawn_before
            })
            .count() as u64;
        (submitted, active)
    }

    #[test]
    fn submit_withdraw_renew_and_expiry_keep_active_at_end_exact() {
        let mut kv = Mem::default();
        let n = "noord";
        // Day D: three signals; one valid for 2 days, one for 10, one until 23:00.
        let a = submit(&mut kv, n, "a", at(D, 9), at(D, 9) + 2 * DAY);
        let b = submit(&mut kv, n, "bb", at(D, 10), at(D, 10) + 10 * DAY);
        let c = submit(&mut kv, n, "ccc", at(D, 11), at(D, 23));
        // Valid until exactly midnight: still active at the last second of D + 5.
        submit(&mut kv, n, "ffffff", at(D + 5, 8), local_midnight(D + 6));
        // Another network's signal never counts here.
        submit(&mut kv, "jeugd", "dddd", at(D, 12), at(D, 12) + 10 * DAY);
        // Day D+1: b withdrawn at 15:00; a renewed by 5 days.
        let b2 = engine::withdraw(&mut kv, &b, WithdrawReason::ConcernOver, at(D + 1, 15)).unwrap();
        let a2 = engine::renew(&mut kv, &a, at(D + 1, 8) + 5 * DAY, at(D + 1, 8)).unwrap();
        // Day D+2: e submitted and withdrawn the same day.
        let e = submit(&mut kv, n, "eeeee", at(D + 2, 9), at(D + 2, 9) + 30 * DAY);
        engine::withdraw(&mut kv, &e, WithdrawReason::Unjustified, at(D + 2, 10)).unwrap();
        // Withdrawing c after it expired changes nothing.
        engine::withdraw(&mut kv, &c, WithdrawReason::ConcernOver, at(D + 3, 10)).unwrap();
        // A renewal to a shorter validity brings the end forward: a2 now ends on D+4.
        engine::renew(&mut kv, &a2, at(D + 4, 1), at(D + 3, 9)).unwrap();
        assert!(matches!(b2.state, SignalState::Withdrawn { .. }));

        for from in D - 1..=D + 8 {
            for to in from..=D + 8 {
                assert_eq!(
                    signal_counts(&kv, n, from, to).unwrap(),
                    truth(&kv, n, from, to),
                    "from {from} to {to}"
                );
            }
        }
        // Spot checks against the story.
        assert_eq!(signal_counts(&kv, n, D, D).unwrap(), (3, 2)); // c ended at 23:00
        assert_eq!(signal_counts(&kv, n, D, D + 1).unwrap(), (3, 1)); // b withdrawn
        assert_eq!(signal_counts(&kv, n, D + 2, D + 2).unwrap(), (1, 1)); // e gone, a left
        assert_eq!(signal_counts(&kv, n, D, D + 4).unwrap(), (4, 0));
        assert_eq!(signal_counts(&kv, n, D + 5, D + 5).unwrap(), (1, 1));
        assert_eq!(signal_counts(&kv, n, D + 6, D + 6).unwrap(), (0, 0));
        assert_eq!(signal_counts(&kv, "jeugd", D, D).unwrap(), (1, 1));
    }

    #[test]
    fn a_backfill_from_the_records_equals_the_counters_kept_on_the_way() {
        let mut kv = Mem::default();
        let a = submit(&mut kv, "n", "a", at(D, 9), at(D, 9) + 2 * DAY);
        let b = submit(&mut kv, "n", "bb", at(D, 10), at(D, 10) + 10 * DAY);
        submit(&mut kv, "m", "ccc", at(D + 1, 10), at(D + 1, 10) + DAY);
        let c = submit(&mut kv, "n", "dddd", at(D + 1, 11), at(D + 1, 12));
        engine::renew(&mut kv, &a, at(D + 1, 8) + 5 * DAY, at(D + 1, 8)).unwrap();
        engine::withdraw(&mut kv, &b, WithdrawReason::ConcernOver, at(D + 2, 15)).unwrap();
        engine::withdraw(&mut kv, &c, WithdrawReason::ConcernOver, at(D + 3, 15)).unwrap();
        let kept: Vec<_> = kv.scan_prefix(b"C").unwrap();
        let mut backfill = Backfill::default();
        for (_, v) in kv.scan_prefix(b"s").unwrap() {
            backfill.add(&SignalRecord::decode(&v).unwrap());
        }
        let mut rebuilt = backfill.into_entries();
        assert_eq!(rebuilt.pop(), Some((COMPLETE_KEY.to_vec(), Vec::new())));
        assert_eq!(rebuilt, kept);
    }

    #[test]
    fn opening_a_store_without_counters_rebuilds_them_once() {
        let dir = tempfile::tempdir().unwrap();
        let policy = Policy {
            max_postings_per_key: 32,
            max_component_signals: 64,
            ..Policy::default()
        };
        let open = || crate::store::Store::open(dir.path(), 8, &policy, at(D, 8)).unwrap();
        let store = open();
        assert!(
            store.get(COMPLETE_KEY).unwrap().is_some(),
            "a new store is complete"
        );
        let kept = store
            .transact(|kv| {
                let mut fx = Effects::default();
                for (i, r) in ["a", "bb", "ccc"].iter().enumerate() {
                    let mut s = NewSignal {
                        org: "o".into(),
                        network: "n".into(),
                        reference: (*r).into(),
                        category: None,
                        contact: Contact {
                            name: "team".into(),
                            phone: None,
                            email: None,
                        },
                        key_id: "k".into(),
                        valid_until: at(D, 9) + (i as i64 + 1) * DAY,
                        person: vec![],
                        household: vec![],
                        family: vec![],
                        content_hash: [1; 32],
                    };
                    s.content_hash[0] = i as u8;
                    engine::submit(kv, &policy, s, at(D, 9), &mut Ids(i as u128), &mut fx)?;
                }
                let b = engine::signal_by_public_id(&*kv, &public_id(2))?.unwrap();
                engine::withdraw(kv, &b, WithdrawReason::ConcernOver, at(D, 10))?;
                // What a database from before the counters holds: no `C` keys at all.
                let kept = kv.scan_prefix(b"C")?;
                for (k, _) in &kept {
                    kv.remove(k.clone());
                }
                Ok(kept)
            })
            .unwrap();
        // The marker, one submission day, three end days (the withdrawn one on D).
        assert_eq!(kept.len(), 5, "{kept:?}");
        assert!(store.scan_prefix(b"C").unwrap().is_empty());
        store.flush().unwrap();
        drop(store);
        let store = open();
        assert_eq!(store.scan_prefix(b"C").unwrap(), kept);
        assert_eq!(signal_counts(&store, "n", D, D).unwrap(), (3, 2));
    }

    /// The public id [`Ids`] hands out for its `n`-th draw starting from 0.
    fn public_id(n: u128) -> String {
        format!("sig_{:032x}", n + 1)
    }

    #[test]
    fn resubmission_of_the_same_signal_counts_once() {
        let mut kv = Mem::default();
        submit(&mut kv, "n", "a", at(D, 9), at(D, 9) + DAY * 3);
        let policy = Policy {
            max_postings_per_key: 32,
            max_component_signals: 64,
            ..Policy::default()
        };
        let again = NewSignal {
            org: "o".into(),
            network: "n".into(),
            reference: "a".into(),
            category: None,
            contact: Contact {
                name: "team".into(),
                phone: None,
                email: None,
            },
            key_id: "k".into(),
            valid_until: at(D, 9) + DAY * 3,
            person: vec![],
            household: vec![],
            family: vec![],
            content_hash: [1; 32],
        };
        engine::submit(
            &mut kv,
            &policy,
            again,
            at(D, 10),
            &mut Ids(9),
            &mut Effects::default(),
        )
        .unwrap();
        assert_eq!(signal_counts(&kv, "n", D, D).unwrap(), (1, 1));
    }
}
