//! The data-subject access request (GDPR art. 15): which signals the index holds on a
//! person, found by the key set the privacy officer computed locally with
//! `samenloop pseudonymise`, by the same link rule as matching (spec §5.2). Only the
//! signals that rule links to the person are returned, so the privacy officer never
//! sees another person's signals.
//!
//! Active and expired signals are found through the in-memory posting lists; withdrawn
//! ones, which leave those lists, through the archive key index (`A` p2 signal id,
//! written at withdrawal, see [`crate::index::engine::withdraw`]).

use crate::index::engine::{self, KvRead};
use crate::index::model::{MatchRecord, Role, SignalRecord, StoredKey};
use crate::pseudonym::link::Shared;
use crate::store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// How a found signal concerns the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    /// The person is the signal's subject.
    Subject,
    /// The person is a parent or guardian named in the signal (family keys).
    Parent,
}

/// A signal on the person.
#[derive(Debug, Clone)]
pub struct Found {
    /// The signal.
    pub signal: SignalRecord,
    /// How it concerns the person.
    pub relation: Relation,
}

/// Whether the person's keys link to `keys` (and `household` to `their_household`).
fn links(
    person: &[StoredKey],
    household: &[StoredKey],
    keys: &[StoredKey],
    their_household: &[StoredKey],
) -> bool {
    let mut s = Shared::default();
    for k in person {
        if keys.iter().any(|x| x.kind == k.kind && x.p2 == k.p2) {
            engine::add_kind(&mut s, k.kind);
        }
    }
    if household
        .iter()
        .any(|h| their_household.iter().any(|x| x.p2 == h.p2))
    {
        s.add_household();
    }
    if engine::bsn_differs(person, keys) {
        s.set_bsn_differs();
    }
    s.links()
}

/// Key of the archive key index.
pub fn archive_key(p2: &[u8; 32], signal: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(41);
    k.push(b'A');
    k.extend_from_slice(p2);
    k.extend_from_slice(&signal.to_be_bytes());
    k
}

/// The signals of `networks` on the person with these (re-keyed) keys, oldest first.
/// `previous`: the same keys in the previous index epoch while a rotation of `K_index`
/// runs (archive entries of signals not yet re-written are found by them; every record
/// is compared in the current epoch).
pub fn find(
    store: &Store,
    person: &[StoredKey],
    household: &[StoredKey],
    previous: &[StoredKey],
    networks: &[String],
) -> Result<Vec<Found>, StoreError> {
    let mut candidates: BTreeSet<u64> = BTreeSet::new();
    for k in previous {
        let mut prefix = vec![b'A'];
        prefix.extend_from_slice(&k.p2);
        for (key, _) in KvRead::scan_prefix(store, &prefix)? {
            if let Some(b) = key.get(33..41) {
                candidates.insert(u64::from_be_bytes(b.try_into().unwrap_or([0; 8])));
            }
        }
    }
    for k in person.iter().chain(household.iter()) {
        for p in store.postings_of(&k.p2) {
            let useful = match p.role {
                Role::Person | Role::Family => p.kind == k.kind,
                Role::Household => household.iter().any(|h| h.p2 == k.p2),
            };
            if useful {
                candidates.insert(p.signal);
            }
        }
        let mut prefix = vec![b'A'];
        prefix.extend_from_slice(&k.p2);
        for (key, _) in KvRead::scan_prefix(store, &prefix)? {
            if let Some(b) = key.get(33..41) {
                candidates.insert(u64::from_be_bytes(b.try_into().unwrap_or([0; 8])));
            }
        }
    }
    let mut out = Vec::new();
    for id in candidates {
        let Some(rec) = engine::signal_by_id(store, id)? else {
            continue;
        };
        if !networks.iter().any(|n| n == &rec.network) {
            continue;
        }
        let relation = if links(person, household, &rec.person, &rec.household) {
            Some(Relation::Subject)
        } else if rec
            .family
            .iter()
            .any(|f| links(person, household, f, &rec.household))
        {
            Some(Relation::Parent)
        } else {
            None
        };
        if let Some(relation) = relation {
            out.push(Found {
                signal: rec,
                relation,
            });
        }
    }
    out.sort_by_key(|f| (f.signal.submitted_at, f.signal.id));
    Ok(out)
}

/// The matches the signals are (or were) in, including matches later merged into them,
/// by match id.
pub fn matches_of(
    store: &Store,
    found: &[Found],
    networks: &[String],
) -> Result<Vec<MatchRecord>, StoreError> {
    let mut by_id: BTreeMap<u64, MatchRecord> = BTreeMap::new();
    for f in found {
        for m in engine::matches_of(store, &f.signal)? {
            by_id.insert(m.id, m);
        }
    }
    // Matches merged into one of these: found on the networks' match lists.
    loop {
        let mut more = Vec::new();
        for n in networks {
            for (k, _) in KvRead::scan_prefix(store, &engine::network_matches_prefix(n))? {
                let Some(b) = k.len().checked_sub(8).and_then(|i| k.get(i..)) else {
                    continue;
                };
                let id = u64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
                if by_id.contains_key(&id) {
                    continue;
                }
                if let Some(m) = engine::match_by_id(store, id)? {
                    if m.merged_into.is_some_and(|into| by_id.contains_key(&into)) {
                        more.push(m);
                    }
                }
            }
        }
        if more.is_empty() {
            break;
        }
        for m in more {
            by_id.insert(m.id, m);
        }
    }
    Ok(by_id.into_values().collect())
}
