//! What a leaving signal alone held together comes apart.
//!
//! A person entity is a connected component of signals under the link rule (spec §5.2),
//! a household a connected component of entities under shared addresses and family
//! links. Merging is done at intake ([`super::engine::submit`]); this module does the
//! reverse when a signal leaves (withdrawn, expired, or a shadow dropped): it recomputes
//! the components of the signal's entity and household from the *remaining counting*
//! signals' own keys, by the same rule and with the same guards (the BSN veto, excluded
//! addresses, keys too common to link), and gives each new component an entity or
//! household of its own. The match of the old scope goes with the component that keeps
//! the most organisations; [`super::engine::leave`] then closes it if that is too few.
//! A split-off component that is a match on its own forms one (a different person, or
//! a different household, that two organisations are involved with).
//!
//! Signals that no longer count (withdrawn, expired, archived) stay where they were:
//! they link nothing and are only kept in their entity for erasure.

use super::engine::{
    EngineError, Kv, entity_key, get_json, get_u64, household_key, indexed, load_entity,
    load_household, put_json, put_signal, scope_key, shadow_primary, signal_by_id,
};
use super::model::*;
use crate::index::engine::{Policy, bsn_differs};
use crate::pseudonym::link::Shared;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// The scopes that a split made without a match: entities and households to be
/// evaluated as matches of their own.
#[derive(Debug, Default)]
pub(super) struct Split {
    pub entities: Vec<u64>,
    pub households: Vec<u64>,
}

/// Splits the entity and then the household of `leaving` where the remaining counting
/// signals no longer hold them together. Call it after the signal stopped counting
/// (its member inactive or expired) and before its matches are recounted.
pub(super) fn after_leave(
    kv: &mut dyn Kv,
    policy: &Policy,
    leaving: &SignalRecord,
    now: i64,
) -> Result<Split, EngineError> {
    let mut out = Split::default();
    let eid = leaving.entity;
    out.entities = split_entity(kv, policy, eid, leaving.id, now)?;
    let Some(entity) = load_entity(kv, eid)? else {
        return Ok(out);
    };
    out.households = split_household(kv, policy, entity.household, leaving.id, now)?;
    Ok(out)
}

/// A tiny union-find over `0..n`.
struct Components(Vec<usize>);

impl Components {
    fn new(n: usize) -> Self {
        Components((0..n).collect())
    }
    fn root(&mut self, mut i: usize) -> usize {
        while self.0[i] != i {
            self.0[i] = self.0[self.0[i]];
            i = self.0[i];
        }
        i
    }
    fn join(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.root(a), self.root(b));
        if ra != rb {
            self.0[ra.max(rb)] = ra.min(rb);
        }
    }
    /// The groups, each in index order, ordered by their first index.
    fn groups(mut self) -> Vec<Vec<usize>> {
        let mut by_root: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for i in 0..self.0.len() {
            let r = self.root(i);
            by_root.entry(r).or_default().push(i);
        }
        by_root.into_values().collect()
    }
}

/// Whether a key holds so many live postings that it links nothing (as at intake).
fn saturated(kv: &dyn Kv, policy: &Policy, p2: &[u8; 32], now: i64) -> bool {
    kv.postings(p2).iter().filter(|p| p.valid_at(now)).count() >= policy.max_postings_per_key
}

/// Pairs of positions in `records` that share a key, per key: `keys(r)` lists a
/// record's keys with a tag that must be equal too (the key kind, or 0).
fn shared_pairs<'a>(
    records: &'a [SignalRecord],
    keys: impl Fn(&'a SignalRecord) -> Vec<(&'a [u8; 32], u8)>,
) -> Vec<((usize, usize), &'a [u8; 32], u8)> {
    let mut holders: HashMap<(&[u8; 32], u8), BTreeSet<usize>> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        for k in keys(r) {
            holders.entry(k).or_default().insert(i);
        }
    }
    let mut out = Vec::new();
    for ((p2, tag), who) in holders {
        let who: Vec<usize> = who.into_iter().collect();
        for (x, a) in who.iter().enumerate() {
            for b in &who[x + 1..] {
                out.push(((*a, *b), p2, tag));
            }
        }
    }
    out
}

/// The signals that count of an entity's members, other than `leaving`.
fn counting(
    kv: &dyn Kv,
    members: &[Member],
    leaving: SignalId,
    now: i64,
) -> Result<Vec<SignalRecord>, EngineError> {
    let mut out = Vec::new();
    for m in members
        .iter()
        .filter(|m| m.signal != leaving && m.counts(now))
    {
        if let Some(r) = signal_by_id(kv, m.signal)? {
            out.push(r);
        }
    }
    Ok(out)
}

fn orgs_of<'a>(records: impl IntoIterator<Item = &'a SignalRecord>) -> BTreeSet<&'a str> {
    records.into_iter().map(|r| r.org.as_str()).collect()
}

/// Writes an entity, or removes its record where the implicit one says the same
/// (one signal, its own household).
fn put_entity(kv: &mut dyn Kv, id: u64, e: &EntityRecord) {
    if e.members.len() > 1 || e.household != id {
        put_json(kv, entity_key(id), e);
    } else {
        kv.remove(entity_key(id));
    }
}

/// Writes a household, or removes its record where the implicit one says the same
/// (one entity, the one it is named after).
fn put_household(kv: &mut dyn Kv, id: u64, h: &HouseholdRecord) {
    if h.entities.len() > 1 || h.entities.first().is_some_and(|e| *e != id) {
        put_json(kv, household_key(id), h);
    } else {
        kv.remove(household_key(id));
    }
}

/// Moves the match of `(kind, from)` (if any) to scope `to`.
fn move_scope(kv: &mut dyn Kv, kind: MatchKind, from: u64, to: u64) -> Result<(), EngineError> {
    let Some(mid) = get_u64(kv, &scope_key(kind, from))? else {
        return Ok(());
    };
    kv.remove(scope_key(kind, from));
    kv.put(scope_key(kind, to), mid.to_be_bytes().to_vec());
    if let Some(mut m) = get_json::<MatchRecord>(kv, &super::engine::match_key(mid))? {
        m.scope = to;
        put_json(kv, super::engine::match_key(mid), &m);
    }
    Ok(())
}

/// Splits person entity `eid`. Returns the ids of the parts that do not carry its match
/// (if it had one): the parts split off, and `eid` itself when the match went elsewhere.
fn split_entity(
    kv: &mut dyn Kv,
    policy: &Policy,
    eid: u64,
    leaving: SignalId,
    now: i64,
) -> Result<Vec<u64>, EngineError> {
    // An implicit entity has one signal: nothing to split.
    let Some(entity) = get_json::<EntityRecord>(kv, &entity_key(eid))? else {
        return Ok(Vec::new());
    };
    let live = counting(kv, &entity.members, leaving, now)?;
    if live.len() < 2 {
        return Ok(Vec::new());
    }
    let mut evidence: BTreeMap<(usize, usize), Shared> = BTreeMap::new();
    for (pair, p2, kind) in shared_pairs(&live, |r| {
        r.person.iter().map(|k| (&k.p2, k.kind)).collect()
    }) {
        // Keys that link only with an address are not posted, so never full.
        if indexed(kind) && saturated(kv, policy, p2, now) {
            continue;
        }
        super::engine::add_kind(evidence.entry(pair).or_default(), kind);
    }
    let addresses: HashSet<(usize, usize)> =
        shared_pairs(&live, |r| r.household.iter().map(|k| (&k.p2, 0)).collect())
            .into_iter()
            .filter(|(_, p2, _)| {
                !policy.excluded_addresses.contains(p2) && !saturated(kv, policy, p2, now)
            })
            .map(|(pair, _, _)| pair)
            .collect();
    let mut parts = Components::new(live.len());
    for ((a, b), mut e) in evidence {
        if addresses.contains(&(a, b)) {
            e.add_household();
        }
        if bsn_differs(&live[a].person, &live[b].person) {
            e.set_bsn_differs();
        }
        if e.links() {
            parts.join(a, b);
        }
    }
    // A shadow and its re-keyed copy are one signal, whatever they share.
    let position: HashMap<SignalId, usize> =
        live.iter().enumerate().map(|(i, r)| (r.id, i)).collect();
    for (i, r) in live.iter().enumerate() {
        if let Some(j) = shadow_primary(kv, r.id)?.and_then(|p| position.get(&p)) {
            parts.join(i, *j);
        }
    }
    let groups = parts.groups();
    if groups.len() < 2 {
        return Ok(Vec::new());
    }

    // The entity keeps its id with the group of the signal it is named after, if that
    // still counts, else with the first group; the others are named after their first
    // signal whose id no entity holds (else a fresh id, see [`split_id`]). The signals
    // that no longer count stay in `eid`.
    let orgs = |g: &Vec<usize>| orgs_of(g.iter().map(|i| &live[*i])).len();
    let keeper = groups
        .iter()
        .position(|g| g.iter().any(|i| live[*i].id == eid))
        .unwrap_or_else(|| most_orgs(&groups, orgs));
    let (groups, ids) = name_parts(kv, &groups, keeper, eid, |i| live[i].id, entity_key)?;
    let keeper = 0;
    let most = most_orgs(&groups, orgs);
    let moved: HashMap<SignalId, u64> = groups
        .iter()
        .enumerate()
        .filter(|(x, _)| *x != keeper)
        .flat_map(|(x, g)| g.iter().map(move |i| (*i, x)))
        .map(|(i, x)| (live[i].id, ids[x]))
        .collect();
    let mut kept = entity.clone();
    kept.members.retain(|m| !moved.contains_key(&m.signal));
    put_entity(kv, eid, &kept);
    let mut household = load_household(kv, entity.household)?.unwrap_or(HouseholdRecord {
        entities: vec![eid],
        family: false,
    });
    for (x, g) in groups.iter().enumerate() {
        if x == keeper {
            continue;
        }
        let members: Vec<Member> = entity
            .members
            .iter()
            .filter(|m| moved.get(&m.signal) == Some(&ids[x]))
            .cloned()
            .collect();
        put_entity(
            kv,
            ids[x],
            &EntityRecord {
                members,
                household: entity.household,
            },
        );
        for i in g {
            let mut r = live[*i].clone();
            r.entity = ids[x];
            put_signal(kv, &r)?;
        }
        household.entities.push(ids[x]);
    }
    put_household(kv, entity.household, &household);
    if most != keeper {
        move_scope(kv, MatchKind::Person, eid, ids[most])?;
    }
    Ok(ids
        .into_iter()
        .enumerate()
        .filter(|(x, _)| *x != most)
        .map(|(_, id)| id)
        .collect())
}

/// Whether two key lists link as one person by shared indexed keys alone (the family
/// rule: a parent recorded on one signal met as the subject, or as a parent, of
/// another), with the BSN veto.
fn family_link(kv: &dyn Kv, policy: &Policy, a: &[StoredKey], b: &[StoredKey], now: i64) -> bool {
    let mut e = Shared::default();
    for k in a.iter().filter(|k| indexed(k.kind)) {
        if b.iter().any(|x| x.kind == k.kind && x.p2 == k.p2) && !saturated(kv, policy, &k.p2, now)
        {
            super::engine::add_kind(&mut e, k.kind);
        }
    }
    if bsn_differs(a, b) {
        e.set_bsn_differs();
    }
    e.links()
}

/// The part with the most organisations (`orgs`), then the most members, then the first.
fn most_orgs(groups: &[Vec<usize>], orgs: impl Fn(&Vec<usize>) -> usize) -> usize {
    (0..groups.len())
        .max_by_key(|x| (orgs(&groups[*x]), groups[*x].len(), std::cmp::Reverse(*x)))
        .unwrap_or(0)
}

/// Names the parts of a split, the keeper first with `id`: every other part takes the
/// lowest of its members' ids (`own`) under which no record is stored (`record_key`) and
/// that no earlier part took, else a fresh id ([`split_id`]).
fn name_parts(
    kv: &mut dyn Kv,
    groups: &[Vec<usize>],
    keeper: usize,
    id: u64,
    own: impl Fn(usize) -> u64,
    record_key: fn(u64) -> Vec<u8>,
) -> Result<(Vec<Vec<usize>>, Vec<u64>), EngineError> {
    let mut taken: HashSet<u64> = HashSet::from([id]);
    let mut parts = vec![groups[keeper].clone()];
    let mut ids = vec![id];
    for (x, g) in groups.iter().enumerate() {
        if x == keeper {
            continue;
        }
        let mut candidates: Vec<u64> = g.iter().map(|m| own(*m)).collect();
        candidates.sort_unstable();
        let mut free = None;
        for c in candidates {
            if !taken.contains(&c) && kv.get(&record_key(c))?.is_none() {
                free = Some(c);
                break;
            }
        }
        let id = match free {
            Some(c) => c,
            None => split_id(kv)?,
        };
        taken.insert(id);
        parts.push(g.clone());
        ids.push(id);
    }
    Ok((parts, ids))
}

/// Ids of split-off parts when none of their own ids is free: counted apart, above every
/// signal id (entities and households are otherwise named after a signal or an entity).
const SPLIT_IDS: u64 = 1 << 48;

fn split_id(kv: &mut dyn Kv) -> Result<u64, EngineError> {
    Ok(SPLIT_IDS | super::engine::next_id(kv, "split")?)
}

/// Splits household `hid`. Returns the ids of the parts that do not carry its match
/// (if it had one), as [`split_entity`] does.
fn split_household(
    kv: &mut dyn Kv,
    policy: &Policy,
    hid: u64,
    leaving: SignalId,
    now: i64,
) -> Result<Vec<u64>, EngineError> {
    // An implicit household has one entity: nothing to split.
    let Some(household) = get_json::<HouseholdRecord>(kv, &household_key(hid))? else {
        return Ok(Vec::new());
    };
    let mut entities: Vec<(u64, EntityRecord)> = Vec::new();
    for e in &household.entities {
        if let Some(rec) = load_entity(kv, *e)? {
            entities.push((*e, rec));
        }
    }
    // The counting signals, each with the position of its entity.
    let mut live: Vec<SignalRecord> = Vec::new();
    let mut owner: Vec<usize> = Vec::new();
    for (x, (_, e)) in entities.iter().enumerate() {
        for r in counting(kv, &e.members, leaving, now)? {
            live.push(r);
            owner.push(x);
        }
    }
    let mut parts = Components::new(entities.len());
    let mut family_pairs: HashSet<(usize, usize)> = HashSet::new();
    for ((a, b), p2, _) in shared_pairs(&live, |r| r.household.iter().map(|k| (&k.p2, 0)).collect())
    {
        if owner[a] != owner[b]
            && !policy.excluded_addresses.contains(p2)
            && !saturated(kv, policy, p2, now)
        {
            parts.join(owner[a], owner[b]);
        }
    }
    for (a, ra) in live.iter().enumerate() {
        for parent in &ra.family {
            for (b, rb) in live.iter().enumerate() {
                if owner[a] == owner[b] {
                    continue;
                }
                let links = family_link(kv, policy, parent, &rb.person, now)
                    || rb
                        .family
                        .iter()
                        .any(|other| family_link(kv, policy, parent, other, now));
                if links {
                    parts.join(owner[a], owner[b]);
                    family_pairs.insert((owner[a].min(owner[b]), owner[a].max(owner[b])));
                }
            }
        }
    }
    let has_live: HashSet<usize> = owner.iter().copied().collect();
    // Entities without a counting signal hold nothing together; they stay with `hid`.
    let groups: Vec<Vec<usize>> = parts
        .groups()
        .into_iter()
        .filter(|g| g.iter().any(|x| has_live.contains(x)))
        .collect();
    if groups.len() < 2 {
        return Ok(Vec::new());
    }
    let orgs = |g: &Vec<usize>| {
        orgs_of(
            live.iter()
                .zip(&owner)
                .filter(|(_, o)| g.contains(o))
                .map(|(r, _)| r),
        )
        .len()
    };
    let keeper = groups
        .iter()
        .position(|g| g.iter().any(|x| entities[*x].0 == hid))
        .unwrap_or_else(|| most_orgs(&groups, orgs));
    // A split-off part is named after one of its entities whose id no household holds
    // yet (a household keeps its id when the entity it was named after leaves it), else
    // a fresh id (see [`split_id`]).
    let (groups, ids) = name_parts(kv, &groups, keeper, hid, |e| entities[e].0, household_key)?;
    let keeper = 0;
    let most = most_orgs(&groups, orgs);
    let mut kept = household.clone();
    for (x, g) in groups.iter().enumerate() {
        if x == keeper {
            continue;
        }
        let own: Vec<u64> = g.iter().map(|e| entities[*e].0).collect();
        kept.entities.retain(|e| !own.contains(e));
        let family = family_pairs
            .iter()
            .any(|(a, b)| g.contains(a) && g.contains(b));
        put_household(
            kv,
            ids[x],
            &HouseholdRecord {
                entities: own.clone(),
                family,
            },
        );
        for e in g {
            let (id, mut rec) = entities[*e].clone();
            rec.household = ids[x];
            put_entity(kv, id, &rec);
        }
    }
    put_household(kv, hid, &kept);
    if most != keeper {
        move_scope(kv, MatchKind::Household, hid, ids[most])?;
    }
    Ok(ids
        .into_iter()
        .enumerate()
        .filter(|(x, _)| *x != most)
        .map(|(_, id)| id)
        .collect())
}
