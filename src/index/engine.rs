//! Incremental matching (design.md "Matching"): pure logic over a key-value view.
//!
//! Every change one request makes is collected by the caller's [`Kv`] and written
//! in one atomic batch; the engine itself does no I/O and takes the clock and the
//! id source as parameters.
//!
//! Layout of the keys (one ordered keyspace):
//!
//! | prefix | key | value |
//! |---|---|---|
//! | `c` | counter name | u64 BE |
//! | `s` | signal id | [`SignalRecord`] (binary, see `SignalRecord::encode`) |
//! | `i` | public signal id | signal id |
//! | `r` | org 0 network 0 reference | signal id |
//! | `e` | entity id | [`EntityRecord`] JSON — only once an entity has two or more signals, or another's household |
//! | `h` | household id | [`HouseholdRecord`] JSON — only once it has two or more entities, or another's |
//! | `m` | match id | [`MatchRecord`] JSON |
//! | `j` | match handle | match id |
//! | `M` | kind byte, scope id | match id |
//! | `n` | network 0 match id | empty (per-network match list) |
//! | `o` | outbox sequence | [`Alert`] JSON |
//! | `C` | network 0 series day | i64 BE: daily signal counters (see [`super::counters`]) |
//! | `A` | P2, signal id | empty: keys of withdrawn and expired signals (see [`crate::audit::subject`]) |
//! | `X` `Z` | time, signal id | empty: expiries and the erasure schedule (see [`super::retention`]) |
//! | `Y` | time, match id | empty: closed matches' erasure schedule (see [`super::retention`]) |
//! | `W` `g` | match id, match id or outbox sequence | empty: merges and alerts of a match (see [`super::retention`]) |
//! | `L` `U` `O` `K` | | the access log (see [`crate::audit`]) |
//!
//! Entity and household ids share the signal-id space: a signal that links to nothing
//! is its own entity and household (id = its signal id) and costs no extra records.
//! The posting lists (which signals hold a key) are not in this keyspace: they are
//! derived from the signal records and kept in memory (see [`super::postings`]); the
//! [`Kv`] view gives the engine the lists with the request's own changes.

use super::model::*;
use super::postings::PostingIndex;
use crate::pseudonym::link::Shared;
use crate::pseudonym::{KeyKind, Strength};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// A failure of the underlying store or a corrupt record.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store failed.
    #[error("store: {0}")]
    Store(String),
    /// A record could not be decoded.
    #[error("corrupt record under prefix {0}")]
    Corrupt(char),
}

/// One key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// Read access to the store.
pub trait KvRead {
    /// Reads a value.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError>;
    /// Every entry whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<Entry>, EngineError>;
    /// Up to `limit` entries with keys from `start` (inclusive) to `end` (exclusive), in
    /// key order. The default reads the whole prefix `start[0]`: views over a real store
    /// read only the range.
    fn range(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Entry>, EngineError> {
        let first = start.first().map(std::slice::from_ref).unwrap_or(&[]);
        Ok(self
            .scan_prefix(first)?
            .into_iter()
            .filter(|(k, _)| k.as_slice() >= start && k.as_slice() < end)
            .take(limit)
            .collect())
    }
    /// The ring of index keys the store's records are lifted by when they are loaded
    /// ([`signal_by_id`]); `None` for stores without rotation (tests, tools).
    fn index_ring(&self) -> Option<std::sync::Arc<crate::index::IndexKey>> {
        None
    }
    /// The current index epoch (records written now are in it).
    fn index_epoch(&self) -> u32 {
        self.index_ring().map(|r| r.epoch()).unwrap_or(0)
    }
}

/// The view of the store the engine writes through: reads see the request's own writes.
pub trait Kv: KvRead {
    /// Writes a value.
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>);
    /// Removes a value.
    fn remove(&mut self, key: Vec<u8>);
    /// Writes an access-log value ([`crate::audit`]): like [`Kv::put`], but a request
    /// whose only writes are these is still taken while the disk is low.
    fn put_log(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.put(key, value);
    }
    /// The postings of a key, the request's own changes included, oldest first.
    fn postings(&self, p2: &[u8; 32]) -> Vec<Posting>;
    /// Adds a signal's posting to a key (replacing one the signal had there).
    fn add_posting(&mut self, p2: &[u8; 32], posting: Posting);
    /// Removes a signal's posting from a key.
    fn remove_posting(&mut self, p2: &[u8; 32], signal: SignalId);
}

/// Source of unguessable public ids.
pub trait IdSource {
    /// 16 random bytes.
    fn random16(&mut self) -> [u8; 16];
}

/// The matching rules in force.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Match threshold per network.
    pub thresholds: HashMap<String, usize>,
    /// Keys held by this many active signals no longer link (too common a key).
    pub max_postings_per_key: usize,
    /// Most signals in one entity or household.
    pub max_component_signals: usize,
    /// P2 of excluded (institutional) addresses.
    pub excluded_addresses: ExcludedAddresses,
    /// Networks whose alerts are delivered by webhook (they get a pending entry).
    pub webhook_networks: HashSet<String>,
    /// Follow-up deadlines per network: (acknowledge, decide) in working days.
    pub deadlines: HashMap<String, (u32, u32)>,
    /// The working-day calendar.
    pub calendar: crate::calendar::Calendar,
    /// The newest accepted domain key id: a signal resubmitted by reference under it,
    /// whose stored key set has another (older) key id, is re-keyed ([`submit`]).
    pub current_key_id: Option<String>,
}

/// The P2s of the excluded (institutional) addresses, shared by every clone of the
/// policy and changed in place when a rotation of `K_index` lifts them
/// ([`ExcludedAddresses::lift`]).
#[derive(Debug, Clone, Default)]
pub struct ExcludedAddresses(std::sync::Arc<std::sync::RwLock<HashSet<[u8; 32]>>>);

impl ExcludedAddresses {
    /// A set of these P2s.
    pub fn new(set: HashSet<[u8; 32]>) -> Self {
        ExcludedAddresses(std::sync::Arc::new(std::sync::RwLock::new(set)))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashSet<[u8; 32]>> {
        // The set is replaced in one assignment, so a poisoned lock still holds a whole set.
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the address is excluded.
    pub fn contains(&self, p2: &[u8; 32]) -> bool {
        self.read().contains(p2)
    }

    /// Adds an address (tests and configuration).
    pub fn insert(&self, p2: [u8; 32]) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).insert(p2);
    }

    /// Number of addresses.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// The set with every P2 replaced by `lift(p2)` (the set itself unchanged).
    pub fn lifted(&self, lift: impl Fn(&[u8; 32]) -> [u8; 32]) -> HashSet<[u8; 32]> {
        self.read().iter().map(lift).collect()
    }

    /// The rotation of `K_index`: every P2 replaced by `lift(p2)`, at once (the one place
    /// the in-memory set is transformed).
    pub fn lift(&self, lift: impl Fn(&[u8; 32]) -> [u8; 32]) {
        let mut set = self.0.write().unwrap_or_else(|p| p.into_inner());
        let lifted: HashSet<[u8; 32]> = set.iter().map(&lift).collect();
        *set = lifted;
    }
}

/// A signal to store.
#[derive(Debug, Clone)]
pub struct NewSignal {
    /// Submitting organisation.
    pub org: String,
    /// Network.
    pub network: String,
    /// Partner reference.
    pub reference: String,
    /// Category.
    pub category: Option<String>,
    /// Contact point.
    pub contact: Contact,
    /// Domain key id.
    pub key_id: String,
    /// Validity end (unix seconds).
    pub valid_until: i64,
    /// Person keys.
    pub person: Vec<StoredKey>,
    /// Household keys.
    pub household: Vec<StoredKey>,
    /// Family keys.
    pub family: Vec<Vec<StoredKey>>,
    /// Hash of the submitted content.
    pub content_hash: [u8; 32],
}

/// What a submission did. The HTTP answer is the same for every variant but
/// `Conflict`: a partner never learns whether its signal matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// Stored as a new signal.
    Created {
        /// Public id.
        public_id: String,
        /// Alerts written (for metrics only; never shown to the partner).
        alerts: usize,
    },
    /// The same reference with the same content was stored before.
    Existing {
        /// Public id.
        public_id: String,
    },
    /// The reference's signal was stored under an older domain key id and is now held
    /// under the newest one as well (a domain-key transition, see [`submit`]).
    Rekeyed {
        /// Public id (unchanged).
        public_id: String,
        /// Alerts written (for metrics only).
        alerts: usize,
    },
    /// The reference is in use with different content.
    Conflict {
        /// Public id of the existing signal.
        public_id: String,
    },
}

/// Counters the engine reports (for /metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effects {
    /// Keys whose posting list was full, so they did not link.
    pub saturated_keys: u64,
    /// Merges refused by the component-size guard.
    pub refused_merges: u64,
    /// Matches formed.
    pub matches_formed: u64,
    /// Alerts written.
    pub alerts: u64,
}

fn key(prefix: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + parts.iter().map(|p| p.len() + 1).sum::<usize>());
    k.push(prefix);
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(0);
        }
        k.extend_from_slice(p);
    }
    k
}

/// Key of a signal record.
pub fn signal_key(id: SignalId) -> Vec<u8> {
    key(b's', &[&id.to_be_bytes()])
}
/// Key of the public-id index.
pub fn public_key(public: &str) -> Vec<u8> {
    key(b'i', &[public.as_bytes()])
}
/// Key of the reference index.
pub fn reference_key(org: &str, network: &str, reference: &str) -> Vec<u8> {
    key(
        b'r',
        &[org.as_bytes(), network.as_bytes(), reference.as_bytes()],
    )
}
pub(super) fn entity_key(id: u64) -> Vec<u8> {
    key(b'e', &[&id.to_be_bytes()])
}
pub(super) fn household_key(id: u64) -> Vec<u8> {
    key(b'h', &[&id.to_be_bytes()])
}
/// Key of a match record.
pub fn match_key(id: u64) -> Vec<u8> {
    key(b'm', &[&id.to_be_bytes()])
}
/// Key of the match-handle index.
pub fn handle_key(handle: &str) -> Vec<u8> {
    key(b'j', &[handle.as_bytes()])
}
pub(super) fn scope_key(kind: MatchKind, scope: u64) -> Vec<u8> {
    let k = match kind {
        MatchKind::Person => b'p',
        MatchKind::Household | MatchKind::Family => b'h',
    };
    key(b'M', &[&[k], &scope.to_be_bytes()])
}
/// Prefix of a network's match list; entries end in the match id (u64 BE).
pub fn network_matches_prefix(network: &str) -> Vec<u8> {
    let mut k = key(b'n', &[network.as_bytes()]);
    k.push(0);
    k
}
fn network_match_key(network: &str, mid: u64) -> Vec<u8> {
    let mut k = network_matches_prefix(network);
    k.extend_from_slice(&mid.to_be_bytes());
    k
}
/// Key of an outbox entry.
pub fn outbox_key(seq: u64) -> Vec<u8> {
    key(b'o', &[&seq.to_be_bytes()])
}

pub(super) fn get_json<T: serde::de::DeserializeOwned>(
    kv: &dyn KvRead,
    k: &[u8],
) -> Result<Option<T>, EngineError> {
    match kv.get(k)? {
        None => Ok(None),
        Some(v) => serde_json::from_slice(&v)
            .map(Some)
            .map_err(|_| EngineError::Corrupt(k[0] as char)),
    }
}

pub(super) fn put_json<T: serde::Serialize>(kv: &mut dyn Kv, k: Vec<u8>, v: &T) {
    // Serialising our own plain records cannot fail.
    kv.put(k, serde_json::to_vec(v).unwrap_or_default());
}

pub(super) fn get_u64(kv: &dyn KvRead, k: &[u8]) -> Result<Option<u64>, EngineError> {
    match kv.get(k)? {
        None => Ok(None),
        Some(v) => {
            let arr: [u8; 8] = v
                .as_slice()
                .try_into()
                .map_err(|_| EngineError::Corrupt(k[0] as char))?;
            Ok(Some(u64::from_be_bytes(arr)))
        }
    }
}

/// The value of a store counter (`signal`, `match`, `outbox`): how many ids it has
/// handed out, so `signal` is the number of signals ever stored. 0 when never used.
pub fn counter(kv: &dyn KvRead, name: &str) -> Result<u64, EngineError> {
    Ok(get_u64(kv, &key(b'c', &[name.as_bytes()]))?.unwrap_or(0))
}

/// Takes the next id of a store counter.
pub fn next_counter(kv: &mut dyn Kv, name: &str) -> Result<u64, EngineError> {
    next_id(kv, name)
}

pub(super) fn next_id(kv: &mut dyn Kv, name: &str) -> Result<u64, EngineError> {
    let k = key(b'c', &[name.as_bytes()]);
    let next = get_u64(kv, &k)?.unwrap_or(0) + 1;
    kv.put(k, next.to_be_bytes().to_vec());
    Ok(next)
}

/// A new unguessable public id with a prefix (`sig_`, `m_`, `evt_`).
pub fn public_id(ids: &mut dyn IdSource, prefix: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + 32);
    s.push_str(prefix);
    for b in ids.random16() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Loads a signal by id, in the current index epoch: a record the rotation of `K_index`
/// has not re-written yet is lifted here, the one place records are loaded
/// (spec/index-key-rotation.md §4).
pub fn signal_by_id(kv: &dyn KvRead, id: SignalId) -> Result<Option<SignalRecord>, EngineError> {
    let Some(mut rec) = stored_signal(kv, id)? else {
        return Ok(None);
    };
    if let Some(ring) = kv.index_ring() {
        ring.lift_record(&mut rec);
    }
    Ok(Some(rec))
}

/// Loads a signal as stored, in its own index epoch (for removing the entries it wrote).
pub fn stored_signal(kv: &dyn KvRead, id: SignalId) -> Result<Option<SignalRecord>, EngineError> {
    match kv.get(&signal_key(id))? {
        None => Ok(None),
        Some(v) => SignalRecord::decode(&v)
            .map(Some)
            .ok_or(EngineError::Corrupt('s')),
    }
}

pub(super) fn put_signal(kv: &mut dyn Kv, rec: &SignalRecord) -> Result<(), EngineError> {
    // A record lifted on load is written in the new epoch: its archive key index
    // entries move with it (the rotation's worker skips it from now on).
    if kv.index_ring().is_some_and(|r| r.epoch() > 0) {
        if let Some(stored) = stored_signal(kv, rec.id)? {
            if stored.epoch < rec.epoch {
                move_archive_keys(kv, &stored, rec)?;
            }
        }
    }
    kv.put(signal_key(rec.id), rec.encode());
    Ok(())
}

/// Moves the archive key index entries of an archived signal (withdrawn, or expired and
/// archived by the retention job) from its stored form to its lifted form (a record of
/// a newer epoch); returns whether it had any. A signal has them for all its keys or for
/// none, so one lookup tells.
pub fn move_archive_keys(
    kv: &mut dyn Kv,
    stored: &SignalRecord,
    lifted: &SignalRecord,
) -> Result<bool, EngineError> {
    let Some(first) = stored.all_keys().next() else {
        return Ok(false);
    };
    if kv
        .get(&crate::audit::subject::archive_key(&first.p2, stored.id))?
        .is_none()
    {
        return Ok(false);
    }
    for k in stored.all_keys() {
        kv.remove(crate::audit::subject::archive_key(&k.p2, stored.id));
    }
    archive_keys(kv, lifted);
    Ok(true)
}

/// Loads a signal by public id.
pub fn signal_by_public_id(
    kv: &dyn KvRead,
    public: &str,
) -> Result<Option<SignalRecord>, EngineError> {
    match get_u64(kv, &public_key(public))? {
        None => Ok(None),
        Some(id) => signal_by_id(kv, id),
    }
}

/// Loads a match by handle.
pub fn match_by_handle(kv: &dyn KvRead, handle: &str) -> Result<Option<MatchRecord>, EngineError> {
    match get_u64(kv, &handle_key(handle))? {
        None => Ok(None),
        Some(id) => get_json(kv, &match_key(id)),
    }
}

/// Loads a match by id.
pub fn match_by_id(kv: &dyn KvRead, id: u64) -> Result<Option<MatchRecord>, EngineError> {
    get_json(kv, &match_key(id))
}

/// The matches a signal is in now: the person match of its entity and the household
/// or family match of its entity's household.
pub fn matches_of(kv: &dyn KvRead, rec: &SignalRecord) -> Result<Vec<MatchRecord>, EngineError> {
    let mut out = Vec::new();
    let mut scopes = vec![scope_key(MatchKind::Person, rec.entity)];
    if let Some(e) = load_entity(kv, rec.entity)? {
        scopes.push(scope_key(MatchKind::Household, e.household));
    }
    for k in scopes {
        if let Some(mid) = get_u64(kv, &k)? {
            if let Some(m) = match_by_id(kv, mid)? {
                out.push(m);
            }
        }
    }
    Ok(out)
}

/// Writes the archive key index of a signal that leaves the posting lists (withdrawn),
/// so that a data-subject access request still finds it ([`crate::audit::subject`]).
pub fn archive_keys(kv: &mut dyn Kv, rec: &SignalRecord) {
    for k in rec.all_keys() {
        kv.put(
            crate::audit::subject::archive_key(&k.p2, rec.id),
            Vec::new(),
        );
    }
}

fn member_of(rec: &SignalRecord) -> Member {
    Member {
        signal: rec.id,
        org: rec.org.clone(),
        network: rec.network.clone(),
        valid_until: rec.valid_until,
        active: rec.state == SignalState::Active,
    }
}

/// An entity: its record, or the implicit one-signal entity of a signal that links to nothing.
pub(super) fn load_entity(kv: &dyn KvRead, eid: u64) -> Result<Option<EntityRecord>, EngineError> {
    if let Some(e) = get_json::<EntityRecord>(kv, &entity_key(eid))? {
        return Ok(Some(e));
    }
    Ok(signal_by_id(kv, eid)?
        .filter(|s| s.entity == eid)
        .map(|s| EntityRecord {
            members: vec![member_of(&s)],
            household: eid,
        }))
}

/// A household: its record, or the implicit one-entity household of an entity.
pub(super) fn load_household(
    kv: &dyn KvRead,
    hid: u64,
) -> Result<Option<HouseholdRecord>, EngineError> {
    if let Some(h) = get_json::<HouseholdRecord>(kv, &household_key(hid))? {
        return Ok(Some(h));
    }
    Ok(load_entity(kv, hid)?
        .filter(|e| e.household == hid)
        .map(|_| HouseholdRecord {
            entities: vec![hid],
            family: false,
        }))
}

/// The signals of a match (members of its entity or household), with their records;
/// shadows of re-keyed signals are left out (their copies stand for them).
pub fn match_signals(kv: &dyn KvRead, m: &MatchRecord) -> Result<Vec<SignalRecord>, EngineError> {
    let entities = match m.kind {
        MatchKind::Person => vec![m.scope],
        _ => load_household(kv, m.scope)?
            .map(|h| h.entities)
            .unwrap_or_default(),
    };
    let mut out = Vec::new();
    for e in entities {
        if let Some(ent) = load_entity(kv, e)? {
            for member in ent.members {
                if is_shadow(kv, member.signal)? {
                    continue;
                }
                if let Some(s) = signal_by_id(kv, member.signal)? {
                    out.push(s);
                }
            }
        }
    }
    Ok(out)
}

/// Records a shared person key of stored kind index `kind` (unknown kinds prove nothing).
pub(crate) fn add_kind(e: &mut Shared, kind: u8) {
    if let Some(k) = KeyKind::ALL.get(usize::from(kind)) {
        e.add_person(*k);
    }
}

const BSN_KIND: u8 = KeyKind::Bsn as u8;

/// Whether keys of this kind are posted (looked up by value). Keys that link only
/// with a household key (`id`) are compared within the signals sharing an address
/// instead: posted, their low-entropy values would fill long posting lists.
pub(super) fn indexed(kind: u8) -> bool {
    KeyKind::ALL
        .get(usize::from(kind))
        .is_none_or(|k| k.strength() != Strength::WithHousehold)
}

/// Whether the parents or guardians of `rec` that share a key with `keys` all have
/// another BSN than `keys` (so `keys` is none of them).
fn parents_differ(keys: &[StoredKey], rec: &SignalRecord) -> bool {
    let mut met = rec
        .family
        .iter()
        .filter(|f| f.iter().any(|x| keys.iter().any(|k| k.p2 == x.p2)))
        .peekable();
    met.peek().is_some() && met.all(|f| bsn_differs(keys, f))
}

/// Whether both key lists carry a BSN key and share none: two different persons
/// whatever else they share (the BSN veto of spec §5.2).
pub(crate) fn bsn_differs(a: &[StoredKey], b: &[StoredKey]) -> bool {
    let is_bsn = |k: &&StoredKey| k.kind == BSN_KIND;
    let mut a_bsn = a.iter().filter(is_bsn).peekable();
    if a_bsn.peek().is_none() || !b.iter().any(|k| k.kind == BSN_KIND) {
        return false;
    }
    !a_bsn.any(|k| b.iter().filter(is_bsn).any(|x| x.p2 == k.p2))
}

/// The live postings of a key, or `None` when the key is too common to link.
fn postings(
    kv: &dyn Kv,
    policy: &Policy,
    p2: &[u8; 32],
    now: i64,
    fx: &mut Effects,
) -> Result<Option<Vec<Posting>>, EngineError> {
    let mut live = kv.postings(p2);
    live.retain(|p| p.valid_at(now));
    if live.len() >= policy.max_postings_per_key {
        fx.saturated_keys += 1;
        return Ok(None);
    }
    Ok(Some(live))
}

/// Adds the postings of a stored signal to an index being rebuilt, by the rule
/// [`submit`] follows: active signals only, and no key that already holds
/// `max_postings_per_key` live postings. Call it in signal-id order.
///
/// The cap is applied afresh: a key that was full when a signal came, and has since
/// fallen below the cap by withdrawals or expiry, takes that signal back (in id order).
/// Excluded addresses are indexed like any other key: the exclusion applies when a key is
/// looked up, so an address put on or taken off the list at runtime links (or stops
/// linking) from the next submission on, with every signal that holds it.
pub fn index_signal(index: &mut PostingIndex, rec: &SignalRecord, policy: &Policy, now: i64) {
    if rec.state != SignalState::Active {
        return;
    }
    let until_min = until_minutes(rec.valid_until);
    let roles = rec
        .person
        .iter()
        .map(|k| (k, Role::Person))
        .chain(rec.household.iter().map(|k| (k, Role::Household)))
        .chain(rec.family.iter().flatten().map(|k| (k, Role::Family)));
    for (k, role) in roles {
        if !indexed(k.kind) {
            continue;
        }
        let live = index.get(&k.p2).iter().filter(|p| p.valid_at(now)).count();
        if live < policy.max_postings_per_key {
            index.add(
                &k.p2,
                Posting {
                    signal: rec.id,
                    kind: k.kind,
                    role,
                    until_min,
                },
            );
        }
    }
}

fn until_minutes(valid_until: i64) -> u32 {
    u32::try_from(valid_until.div_euclid(60)).unwrap_or(u32::MAX)
}

/// Stores a new signal and updates entities, households, matches and the outbox.
///
/// A resubmission of a stored active signal's reference under the newest accepted
/// domain key id (`policy.current_key_id`), when the stored key set has another key id,
/// is a *domain-key transition*: the new key set is stored as the signal's re-keyed
/// copy, which takes over its public id, reference, dates and feedback and links like
/// any new signal, inside the stored signal's entity; the stored record stays as its
/// *shadow* (`D` keys), still holding the old keys so that partners who have not yet
/// re-pseudonymised keep meeting it, and is shown nowhere. No match is lost and none
/// is alerted twice: both copies belong to one organisation. The shadow goes when the
/// signal is withdrawn or when the old key id is retired ([`drop_shadow`]).
pub fn submit(
    kv: &mut dyn Kv,
    policy: &Policy,
    new: NewSignal,
    now: i64,
    ids: &mut dyn IdSource,
    fx: &mut Effects,
) -> Result<SubmitOutcome, EngineError> {
    let rk = reference_key(&new.org, &new.network, &new.reference);
    if let Some(existing) = get_u64(kv, &rk)? {
        let rec = signal_by_id(kv, existing)?.ok_or(EngineError::Corrupt('r'))?;
        if rec.key_id != new.key_id
            && policy.current_key_id.as_deref() == Some(new.key_id.as_str())
            && rec.is_active(now)
        {
            return transition(kv, policy, rec, new, now, ids, fx);
        }
        return Ok(if rec.content_hash == new.content_hash {
            SubmitOutcome::Existing {
                public_id: rec.public_id,
            }
        } else {
            SubmitOutcome::Conflict {
                public_id: rec.public_id,
            }
        });
    }
    store_new(kv, policy, new, now, ids, fx, None)
}

/// Stores a new signal; with `twin`, the re-keyed copy of that stored signal, which it
/// joins in its entity and whose public id, reference, dates and day counts it takes.
fn store_new(
    kv: &mut dyn Kv,
    policy: &Policy,
    mut new: NewSignal,
    now: i64,
    ids: &mut dyn IdSource,
    fx: &mut Effects,
    twin: Option<&SignalRecord>,
) -> Result<SubmitOutcome, EngineError> {
    let rk = reference_key(&new.org, &new.network, &new.reference);
    let sid = next_id(kv, "signal")?;
    let public = match twin {
        Some(t) => t.public_id.clone(),
        None => public_id(ids, "sig_"),
    };
    if let Some(t) = twin {
        new.valid_until = t.valid_until;
    }
    let until_min = until_minutes(new.valid_until);

    // 1. Look up every key once; collect the evidence per stored signal.
    let mut person_ev: HashMap<SignalId, Shared> = HashMap::new();
    let mut address_shared: BTreeSet<SignalId> = BTreeSet::new();
    let mut family_links: BTreeSet<SignalId> = BTreeSet::new();
    let mut writes: Vec<([u8; 32], Posting)> = Vec::new();
    // The subject met a stored signal's parent or guardian.
    let mut as_parent_ev: BTreeMap<SignalId, Shared> = BTreeMap::new();
    for k in new.person.iter().filter(|k| indexed(k.kind)) {
        if let Some(list) = postings(kv, policy, &k.p2, now, fx)? {
            for p in list.iter().filter(|p| p.kind == k.kind) {
                match p.role {
                    Role::Person => add_kind(person_ev.entry(p.signal).or_default(), k.kind),
                    Role::Family => add_kind(as_parent_ev.entry(p.signal).or_default(), k.kind),
                    Role::Household => {}
                }
            }
            writes.push((
                k.p2,
                Posting {
                    signal: sid,
                    kind: k.kind,
                    role: Role::Person,
                    until_min,
                },
            ));
        }
    }
    for k in &new.household {
        let excluded = policy.excluded_addresses.contains(&k.p2);
        if let Some(list) = postings(kv, policy, &k.p2, now, fx)? {
            // An excluded address links nothing, but is held, for the day it is
            // taken off the list.
            if !excluded {
                address_shared.extend(
                    list.iter()
                        .filter(|p| p.role == Role::Household)
                        .map(|p| p.signal),
                );
            }
            writes.push((
                k.p2,
                Posting {
                    signal: sid,
                    kind: k.kind,
                    role: Role::Household,
                    until_min,
                },
            ));
        }
    }
    let new_has_bsn = new.person.iter().any(|k| k.kind == BSN_KIND);
    for (s, mut e) in as_parent_ev {
        if !e.links() {
            continue;
        }
        let rec = if new_has_bsn {
            signal_by_id(kv, s)?
        } else {
            None
        };
        if rec.is_some_and(|rec| parents_differ(&new.person, &rec)) {
            e.set_bsn_differs();
        }
        if e.links() {
            family_links.insert(s);
        }
    }
    for parent in &new.family {
        // Per stored signal and role: the parent met its subject (Person) or one of
        // its parents (Family).
        let mut parent_ev: BTreeMap<(SignalId, Role), Shared> = BTreeMap::new();
        for k in parent.iter().filter(|k| indexed(k.kind)) {
            if let Some(list) = postings(kv, policy, &k.p2, now, fx)? {
                for p in list
                    .iter()
                    .filter(|p| p.kind == k.kind && p.role != Role::Household)
                {
                    add_kind(parent_ev.entry((p.signal, p.role)).or_default(), k.kind);
                }
                writes.push((
                    k.p2,
                    Posting {
                        signal: sid,
                        kind: k.kind,
                        role: Role::Family,
                        until_min,
                    },
                ));
            }
        }
        let parent_has_bsn = parent.iter().any(|k| k.kind == BSN_KIND);
        for ((s, role), mut e) in parent_ev {
            if !e.links() || family_links.contains(&s) {
                continue;
            }
            let rec = if parent_has_bsn {
                signal_by_id(kv, s)?
            } else {
                None
            };
            if let Some(rec) = rec {
                let differs = match role {
                    Role::Person => bsn_differs(parent, &rec.person),
                    _ => parents_differ(parent, &rec),
                };
                if differs {
                    e.set_bsn_differs();
                }
            }
            if e.links() {
                family_links.insert(s);
            }
        }
    }
    // Keys that count only with a shared household key are not posted: they are
    // compared with the signals that share an address, and nowhere else.
    let household_only: Vec<&StoredKey> = new.person.iter().filter(|k| !indexed(k.kind)).collect();
    if !household_only.is_empty() {
        for s in &address_shared {
            if let Some(rec) = signal_by_id(kv, *s)? {
                for k in household_only.iter().filter(|k| rec.person.contains(k)) {
                    add_kind(person_ev.entry(*s).or_default(), k.kind);
                }
            }
        }
    }
    // A weak shared person key plus a shared address is a link (§5.2).
    for s in &address_shared {
        if let Some(e) = person_ev.get_mut(s) {
            e.add_household();
        }
    }
    // The BSN veto needs the stored signal's own keys: read only for signals that
    // would link otherwise, and only when the new signal has a BSN. Their entities
    // are kept for step 3.
    let mut person_links: BTreeSet<SignalId> = BTreeSet::new();
    let mut linked_entity: HashMap<SignalId, u64> = HashMap::new();
    for (s, e) in &mut person_ev {
        if !e.links() {
            continue;
        }
        let rec = if new_has_bsn {
            signal_by_id(kv, *s)?
        } else {
            None
        };
        if let Some(rec) = rec {
            if bsn_differs(&new.person, &rec.person) {
                e.set_bsn_differs();
                continue;
            }
            linked_entity.insert(*s, rec.entity);
        }
        person_links.insert(*s);
    }
    // A re-keyed copy is the same signal: it joins its twin's entity whatever it shares.
    if let Some(t) = twin {
        person_links.insert(t.id);
        linked_entity.insert(t.id, t.entity);
    }

    // 2. Write the signal and its postings.
    let record = SignalRecord {
        id: sid,
        public_id: public.clone(),
        org: new.org,
        network: new.network,
        reference: new.reference,
        category: new.category,
        contact: new.contact,
        key_id: new.key_id,
        submitted_at: twin.map_or(now, |t| t.submitted_at),
        renewed_at: twin.and_then(|t| t.renewed_at),
        valid_until: new.valid_until,
        state: SignalState::Active,
        entity: sid,
        content_hash: new.content_hash,
        person: new.person,
        household: new.household,
        family: new.family,
        epoch: kv.index_epoch(),
    };
    for (p2, posting) in &writes {
        kv.add_posting(p2, *posting);
    }
    kv.put(public_key(&public), sid.to_be_bytes().to_vec());
    kv.put(rk, sid.to_be_bytes().to_vec());
    put_signal(kv, &record)?;
    kv.put(
        super::retention::expiry_key(record.valid_until, record.id),
        Vec::new(),
    );
    // A twin is counted once, by the record it was first stored as.
    if twin.is_none() {
        super::counters::on_submit(kv, &record)?;
    }
    if person_links.is_empty() && address_shared.is_empty() && family_links.is_empty() {
        // The common case: a signal that meets nothing is its own entity and household.
        return Ok(SubmitOutcome::Created {
            public_id: public,
            alerts: 0,
        });
    }

    // 3. Entities: join every entity the new signal links to (within the size guard).
    let me = member_of(&record);
    let mut linked: BTreeSet<u64> = BTreeSet::new();
    for s in &person_links {
        if let Some(e) = linked_entity.get(s) {
            linked.insert(*e);
        } else if let Some(rec) = signal_by_id(kv, *s)? {
            linked.insert(rec.entity);
        }
    }
    let mut entities: Vec<(u64, EntityRecord)> = Vec::new();
    for id in &linked {
        if let Some(e) = load_entity(kv, *id)? {
            entities.push((*id, e));
        }
    }
    entities.sort_by_key(|(id, e)| (std::cmp::Reverse(e.members.len()), *id));
    let mut eid = sid;
    let mut entity = EntityRecord {
        members: vec![me.clone()],
        household: sid,
    };
    let mut absorbed: Vec<(u64, EntityRecord)> = Vec::new();
    if let Some((first_id, first)) = entities.first() {
        if first.members.len() < policy.max_component_signals {
            eid = *first_id;
            entity = first.clone();
            entity.members.push(me);
            for (id, other) in entities.iter().skip(1) {
                if entity.members.len() + other.members.len() > policy.max_component_signals {
                    fx.refused_merges += 1;
                    continue;
                }
                entity.members.extend(other.members.iter().cloned());
                absorbed.push((*id, other.clone()));
            }
        } else {
            fx.refused_merges += 1;
        }
    }
    let mut moved: Vec<SignalId> = vec![sid];
    for (id, other) in &absorbed {
        kv.remove(entity_key(*id));
        moved.extend(other.members.iter().map(|m| m.signal));
    }
    for s in moved {
        if s == sid && eid == sid {
            continue;
        }
        let mut rec = if s == sid {
            record.clone()
        } else {
            signal_by_id(kv, s)?.ok_or(EngineError::Corrupt('s'))?
        };
        if rec.entity != eid {
            rec.entity = eid;
            put_signal(kv, &rec)?;
        }
    }

    // 4. Households: the entity's own, the absorbed entities', and every linked one.
    let mut household_ids: BTreeSet<u64> = BTreeSet::new();
    household_ids.insert(entity.household);
    household_ids.extend(absorbed.iter().map(|(_, e)| e.household));
    for s in address_shared.iter().chain(family_links.iter()) {
        if let Some(rec) = signal_by_id(kv, *s)? {
            if let Some(e) = load_entity(kv, rec.entity)? {
                household_ids.insert(e.household);
            }
        }
    }
    let mut households: Vec<(u64, HouseholdRecord, usize)> = Vec::new();
    for id in &household_ids {
        let h = match load_household(kv, *id)? {
            Some(h) => h,
            // The new signal's own implicit household, or one emptied by the merge above.
            None if *id == sid => HouseholdRecord {
                entities: vec![eid],
                family: false,
            },
            None => continue,
        };
        let mut size = 0;
        for e in &h.entities {
            size += if *e == eid {
                entity.members.len()
            } else {
                load_entity(kv, *e)?.map(|r| r.members.len()).unwrap_or(0)
            };
        }
        households.push((*id, h, size));
    }
    households.sort_by_key(|(id, h, _)| (std::cmp::Reverse(h.entities.len()), *id));
    let (hid, mut household, mut size) = households.first().cloned().unwrap_or((
        eid,
        HouseholdRecord {
            entities: vec![eid],
            family: false,
        },
        entity.members.len(),
    ));
    let mut absorbed_households = Vec::new();
    for (id, other, other_size) in households.iter().skip(1) {
        if size + other_size > policy.max_component_signals {
            fx.refused_merges += 1;
            continue;
        }
        size += other_size;
        household.entities.extend(other.entities.iter().copied());
        household.family |= other.family;
        absorbed_households.push(*id);
    }
    let gone: HashSet<u64> = absorbed.iter().map(|(id, _)| *id).collect();
    let mut seen = HashSet::new();
    household
        .entities
        .retain(|e| !gone.contains(e) && (*e != sid || eid == sid) && seen.insert(*e));
    if !household.entities.contains(&eid) {
        household.entities.push(eid);
    }
    household.family |= !family_links.is_empty();
    for id in &absorbed_households {
        kv.remove(household_key(*id));
    }
    entity.household = hid;
    for e in household.entities.clone() {
        if e == eid {
            continue;
        }
        if let Some(mut er) = load_entity(kv, e)? {
            if er.household != hid {
                er.household = hid;
                put_json(kv, entity_key(e), &er);
            }
        }
    }
    if entity.members.len() > 1 || hid != eid {
        put_json(kv, entity_key(eid), &entity);
    }
    // A household left with one entity that is not the one it is named after keeps its
    // record (the implicit one would say otherwise).
    if household.entities.len() > 1 || household.entities.first().is_some_and(|e| *e != hid) {
        put_json(kv, household_key(hid), &household);
    } else {
        kv.remove(household_key(hid));
    }

    // 5. Matches: fold those of absorbed scopes, then evaluate person and household.
    for (id, _) in &absorbed {
        fold_match(kv, MatchKind::Person, *id, eid, now)?;
    }
    for id in &absorbed_households {
        fold_match(kv, MatchKind::Household, *id, hid, now)?;
    }
    let before = fx.alerts;
    let person_orgs = active_orgs(&entity.members, now);
    evaluate(
        kv,
        policy,
        MatchKind::Person,
        eid,
        &person_orgs,
        now,
        ids,
        fx,
    )?;
    let mut persons = Vec::new();
    for e in &household.entities {
        persons.push(if *e == eid {
            entity.members.clone()
        } else {
            load_entity(kv, *e)?.map(|r| r.members).unwrap_or_default()
        });
    }
    evaluate_household(kv, policy, hid, household.family, &persons, now, ids, fx)?;
    Ok(SubmitOutcome::Created {
        public_id: public,
        alerts: (fx.alerts - before) as usize,
    })
}

/// Key of a shadow's marker: the signal id of the copy that replaced it.
fn shadow_marker(shadow: SignalId) -> Vec<u8> {
    key(b'D', &[b"s", &shadow.to_be_bytes()])
}
/// Key of a re-keyed signal's pointer to its shadow.
fn shadow_pointer(primary: SignalId) -> Vec<u8> {
    key(b'D', &[b"p", &primary.to_be_bytes()])
}

/// Whether a stored signal is the shadow of a re-keyed copy (shown nowhere).
pub fn is_shadow(kv: &dyn KvRead, sid: SignalId) -> Result<bool, EngineError> {
    Ok(kv.get(&shadow_marker(sid))?.is_some())
}

/// The re-keyed copy a shadow stands behind, if `sid` is a shadow.
pub(super) fn shadow_primary(
    kv: &dyn KvRead,
    sid: SignalId,
) -> Result<Option<SignalId>, EngineError> {
    get_u64(kv, &shadow_marker(sid))
}

/// The shadow of a re-keyed signal: its record under the older domain key.
pub fn shadow_of(kv: &dyn KvRead, primary: SignalId) -> Result<Option<SignalRecord>, EngineError> {
    match get_u64(kv, &shadow_pointer(primary))? {
        Some(s) => signal_by_id(kv, s),
        None => Ok(None),
    }
}

fn transition(
    kv: &mut dyn Kv,
    policy: &Policy,
    old: SignalRecord,
    new: NewSignal,
    now: i64,
    ids: &mut dyn IdSource,
    fx: &mut Effects,
) -> Result<SubmitOutcome, EngineError> {
    // A signal re-keyed before keeps one shadow: the older one is no longer needed.
    if let Some(s) = shadow_of(kv, old.id)? {
        fx.alerts += drop_shadow(kv, policy, ids, &s, now)?;
    }
    let feedback = kv.get(&super::followup::feedback_key(old.id))?;
    let before = fx.alerts;
    store_new(kv, policy, new, now, ids, fx, Some(&old))?;
    let rk = reference_key(&old.org, &old.network, &old.reference);
    let sid = get_u64(kv, &rk)?.ok_or(EngineError::Corrupt('r'))?;
    kv.put(shadow_marker(old.id), sid.to_be_bytes().to_vec());
    kv.put(shadow_pointer(sid), old.id.to_be_bytes().to_vec());
    if let Some(f) = feedback {
        kv.remove(super::followup::feedback_key(old.id));
        kv.put(super::followup::feedback_key(sid), f);
    }
    Ok(SubmitOutcome::Rekeyed {
        public_id: old.public_id,
        alerts: (fx.alerts - before) as usize,
    })
}

/// Erases a shadow (its re-keyed copy was withdrawn, or its key id retired): its old
/// keys stop linking, it leaves its entity and its matches (where its copy, of the same
/// organisation, stays), and nothing of it remains. Returns the alerts written.
pub fn drop_shadow(
    kv: &mut dyn Kv,
    policy: &Policy,
    ids: &mut dyn IdSource,
    shadow: &SignalRecord,
    now: i64,
) -> Result<u64, EngineError> {
    for k in shadow.all_keys() {
        kv.remove_posting(&k.p2, shadow.id);
    }
    set_member(kv, shadow, |m| m.active = false)?;
    let alerts = leave(kv, policy, ids, shadow, now)?;
    if let Some(p) = get_u64(kv, &shadow_marker(shadow.id))? {
        kv.remove(shadow_pointer(p));
    }
    erase(kv, shadow)?;
    Ok(alerts)
}

/// Distinct organisations with a counting signal, each with its networks.
fn active_orgs(members: &[Member], now: i64) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in members.iter().filter(|m| m.counts(now)) {
        out.entry(m.org.clone())
            .or_default()
            .insert(m.network.clone());
    }
    out
}

/// When scope `from` was absorbed into `into`, its match (if any) becomes part of `into`'s.
fn fold_match(
    kv: &mut dyn Kv,
    kind: MatchKind,
    from: u64,
    into: u64,
    now: i64,
) -> Result<(), EngineError> {
    let Some(from_id) = get_u64(kv, &scope_key(kind, from))? else {
        return Ok(());
    };
    kv.remove(scope_key(kind, from));
    let Some(mut from_match) = match_by_id(kv, from_id)? else {
        return Ok(());
    };
    match get_u64(kv, &scope_key(kind, into))? {
        None => {
            // The surviving scope had no match: the absorbed one carries on under the new scope.
            from_match.scope = into;
            from_match.updated_at = now;
            put_json(kv, match_key(from_id), &from_match);
            kv.put(scope_key(kind, into), from_id.to_be_bytes().to_vec());
        }
        Some(into_id) => {
            if let Some(mut into_match) = match_by_id(kv, into_id)? {
                for o in &from_match.orgs {
                    if !into_match.orgs.contains(o) {
                        into_match.orgs.push(o.clone());
                    }
                }
                for n in &from_match.networks {
                    if !into_match.networks.contains(n) {
                        into_match.networks.push(n.clone());
                        kv.put(network_match_key(n, into_id), Vec::new());
                    }
                }
                into_match.updated_at = now;
                put_json(kv, match_key(into_id), &into_match);
            }
            super::followup::fold(kv, from_id, into_id, &from_match.networks)?;
            // A merged match is never closed: it leaves the schedule, and goes when the
            // match it became part of goes.
            if let Some(t) = super::retention::closed_since(kv, from_id)? {
                kv.remove(super::retention::closed_key(t, from_id));
            }
            kv.put(super::retention::merged_key(into_id, from_id), Vec::new());
            from_match.status = MatchStatus::Merged;
            from_match.merged_into = Some(into_id);
            from_match.updated_at = now;
            put_json(kv, match_key(from_id), &from_match);
        }
    }
    Ok(())
}

/// Creates or extends the match of a scope and writes the alerts it calls for.
#[allow(clippy::too_many_arguments)]
fn evaluate(
    kv: &mut dyn Kv,
    policy: &Policy,
    kind: MatchKind,
    scope: u64,
    orgs: &BTreeMap<String, BTreeSet<String>>,
    now: i64,
    ids: &mut dyn IdSource,
    fx: &mut Effects,
) -> Result<(), EngineError> {
    if orgs.len() < 2 {
        return Ok(());
    }
    let networks: BTreeSet<&String> = orgs.values().flatten().collect();
    // Networks whose coordinator is told: those with a signal in it whose threshold is reached.
    let due: Vec<String> = networks
        .iter()
        .filter(|n| orgs.len() >= policy.thresholds.get(n.as_str()).copied().unwrap_or(2))
        .map(|n| (*n).clone())
        .collect();
    if due.is_empty() {
        return Ok(());
    }
    let (mid, mut m) = match get_u64(kv, &scope_key(kind, scope))? {
        Some(id) => (id, match_by_id(kv, id)?.ok_or(EngineError::Corrupt('M'))?),
        None => {
            let id = next_id(kv, "match")?;
            let handle = public_id(ids, "m_");
            kv.put(handle_key(&handle), id.to_be_bytes().to_vec());
            kv.put(scope_key(kind, scope), id.to_be_bytes().to_vec());
            fx.matches_formed += 1;
            let m = MatchRecord {
                id,
                handle,
                kind,
                status: MatchStatus::Open,
                scope,
                created_at: now,
                updated_at: now,
                orgs: Vec::new(),
                networks: Vec::new(),
                merged_into: None,
            };
            (id, m)
        }
    };
    if kind == MatchKind::Family {
        m.kind = MatchKind::Family;
    }
    let new_orgs: Vec<String> = orgs
        .keys()
        .filter(|o| !m.orgs.contains(o))
        .cloned()
        .collect();
    let new_networks: Vec<String> = due
        .iter()
        .filter(|n| !m.networks.contains(n))
        .cloned()
        .collect();
    m.orgs.extend(new_orgs.iter().cloned());
    for n in &new_networks {
        m.networks.push(n.clone());
        kv.put(network_match_key(n, mid), Vec::new());
    }
    // Each network: formed (first alert), reopened (its follow-up was closed: a new
    // signal arrived on it), organisation joined, or nothing.
    let mut changed = !new_orgs.is_empty() || !new_networks.is_empty();
    for n in &m.networks {
        let (event, orgs_told) = if new_networks.contains(n) {
            super::followup::start(kv, policy, mid, n, now)?;
            (event::FORMED, m.orgs.clone())
        } else {
            match super::followup::on_arrival(kv, policy, mid, n, !new_orgs.is_empty(), now)? {
                super::followup::Arrival::Reopened => (event::REOPENED, new_orgs.clone()),
                super::followup::Arrival::Joined => (event::JOINED, new_orgs.clone()),
                super::followup::Arrival::Quiet => continue,
            }
        };
        changed = true;
        super::followup::emit(kv, policy, ids, event, mid, n, orgs_told, None, now)?;
        fx.alerts += 1;
    }
    if changed {
        m.updated_at = now;
        put_json(kv, match_key(mid), &m);
    }
    Ok(())
}

/// Withdraws a signal: it stops matching at once (its postings are removed).
pub fn withdraw(
    kv: &mut dyn Kv,
    rec: &SignalRecord,
    reason: WithdrawReason,
    now: i64,
) -> Result<SignalRecord, EngineError> {
    super::counters::on_withdraw(kv, rec, now)?;
    let mut rec = rec.clone();
    for k in rec.all_keys() {
        kv.remove_posting(&k.p2, rec.id);
    }
    kv.remove(super::retention::expiry_key(rec.valid_until, rec.id));
    rec.state = SignalState::Withdrawn { reason, at: now };
    archive_keys(kv, &rec);
    if reason == WithdrawReason::ConcernOver {
        // Archived from now on; erased when the archive period has passed.
        kv.put(super::retention::archive_key(now, rec.id), Vec::new());
    }
    put_signal(kv, &rec)?;
    set_member(kv, &rec, |m| m.active = false)?;
    Ok(rec)
}

/// A signal left (withdrawn now; or expired, as the retention job finds): its entity and
/// household split where it alone held them together (`split::after_leave`),
/// each open match it was in forgets the organisations that no longer have a counting signal in
/// it (so that a later signal of theirs joins anew and alerts), and each alerted network
/// for which fewer organisations than its threshold remain has its follow-up closed by
/// the index with a `match.dissolved` alert ([`super::followup::dissolve`]); a split-off
/// part that meets a threshold forms its own match. Returns the alerts written.
pub fn leave(
    kv: &mut dyn Kv,
    policy: &Policy,
    ids: &mut dyn IdSource,
    rec: &SignalRecord,
    now: i64,
) -> Result<u64, EngineError> {
    let before = matches_of(kv, rec)?;
    // What it alone held together comes apart first, so that each match is recounted
    // on the part it goes on with.
    let split = super::split::after_leave(kv, policy, rec, now)?;
    let mut alerts = 0;
    for m in before {
        let Some(mut m) = match_by_id(kv, m.id)? else {
            continue;
        };
        if m.status != MatchStatus::Open {
            continue;
        }
        let signals = match_signals(kv, &m)?;
        let counting: Vec<&SignalRecord> = signals
            .iter()
            .filter(|s| s.id != rec.id && s.is_active(now))
            .collect();
        let mut orgs: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for s in &counting {
            orgs.entry(&s.org).or_default().insert(&s.network);
        }
        let holds = m.kind == MatchKind::Person || household_holds(&counting);
        let gone: Vec<String> = m
            .orgs
            .iter()
            .filter(|o| !orgs.contains_key(o.as_str()))
            .cloned()
            .collect();
        if gone.is_empty() && holds {
            continue;
        }
        m.orgs.retain(|o| orgs.contains_key(o.as_str()));
        for n in m.networks.clone() {
            let threshold = policy.thresholds.get(&n).copied().unwrap_or(2);
            if holds && orgs.len() >= threshold {
                continue;
            }
            let left: Vec<String> = gone
                .iter()
                .filter(|o| signals.iter().any(|s| &s.org == *o && s.network == n))
                .cloned()
                .collect();
            if super::followup::dissolve(kv, policy, ids, &m, &n, left, now)? {
                alerts += 1;
            }
        }
        m.updated_at = now;
        put_json(kv, match_key(m.id), &m);
    }
    // A part that came apart and is a match on its own forms one.
    let mut fx = Effects::default();
    for e in split.entities {
        if get_u64(kv, &scope_key(MatchKind::Person, e))?.is_some() {
            continue;
        }
        if let Some(entity) = load_entity(kv, e)? {
            let orgs = active_orgs(&entity.members, now);
            evaluate(kv, policy, MatchKind::Person, e, &orgs, now, ids, &mut fx)?;
        }
    }
    for h in split.households {
        if get_u64(kv, &scope_key(MatchKind::Household, h))?.is_some() {
            continue;
        }
        let Some(household) = load_household(kv, h)? else {
            continue;
        };
        let mut persons = Vec::new();
        for e in &household.entities {
            persons.push(load_entity(kv, *e)?.map(|r| r.members).unwrap_or_default());
        }
        evaluate_household(kv, policy, h, household.family, &persons, now, ids, &mut fx)?;
    }
    Ok(alerts + fx.alerts)
}

/// Evaluates the household (or family) match of `hid`, whose persons' members are
/// `persons`: signals of at least two organisations on two or more people of one
/// household, more organisations than any one person's signals explain.
#[allow(clippy::too_many_arguments)]
fn evaluate_household(
    kv: &mut dyn Kv,
    policy: &Policy,
    hid: u64,
    family: bool,
    persons: &[Vec<Member>],
    now: i64,
    ids: &mut dyn IdSource,
    fx: &mut Effects,
) -> Result<(), EngineError> {
    let mut with_signals = 0;
    let mut largest_person = 0;
    for members in persons {
        let orgs = active_orgs(members, now);
        if !orgs.is_empty() {
            with_signals += 1;
        }
        largest_person = largest_person.max(orgs.len());
    }
    let all: Vec<Member> = persons.iter().flatten().cloned().collect();
    let orgs = active_orgs(&all, now);
    if with_signals >= 2 && orgs.len() > largest_person {
        let kind = if family {
            MatchKind::Family
        } else {
            MatchKind::Household
        };
        evaluate(kv, policy, kind, hid, &orgs, now, ids, fx)?;
    }
    Ok(())
}

/// Whether counting signals of one household make a household match: signals on two or
/// more of its people, and more organisations than any one person's signals explain.
fn household_holds(signals: &[&SignalRecord]) -> bool {
    let mut per_person: BTreeMap<u64, BTreeSet<&str>> = BTreeMap::new();
    for s in signals {
        per_person.entry(s.entity).or_default().insert(&s.org);
    }
    let largest = per_person.values().map(BTreeSet::len).max().unwrap_or(0);
    let orgs: BTreeSet<&str> = signals.iter().map(|s| s.org.as_str()).collect();
    per_person.len() >= 2 && orgs.len() > largest
}

/// Erases a signal (withdrawn as unjustified, or at the end of its archive period):
/// its record, its public-id and reference keys (the partner may use the reference
/// again), its postings and archive key index entries, its partner feedback, and its
/// place in its entity and household (a person entity or household left empty goes
/// too). What remains are aggregate day counters, the matches' organisation and
/// network names, and the access log's entries, which hold its public id only. An
/// entity or household keeps the number it was given, which may have been this
/// signal's internal id: a number, not data. Call [`withdraw`] (and [`leave`]) first:
/// the signal must already be out of the matches' counts.
pub fn erase(kv: &mut dyn Kv, rec: &SignalRecord) -> Result<(), EngineError> {
    for k in rec.all_keys() {
        kv.remove_posting(&k.p2, rec.id);
        kv.remove(crate::audit::subject::archive_key(&k.p2, rec.id));
    }
    // During a rotation of K_index the stored record (and its archive entries) may still
    // be in the old epoch.
    if let Some(stored) = stored_signal(kv, rec.id)?.filter(|s| s.epoch != rec.epoch) {
        for k in stored.all_keys() {
            kv.remove(crate::audit::subject::archive_key(&k.p2, rec.id));
        }
    }
    kv.remove(super::retention::expiry_key(rec.valid_until, rec.id));
    kv.remove(super::retention::archive_key(
        super::retention::archived_since(rec),
        rec.id,
    ));
    kv.remove(signal_key(rec.id));
    // A shadow shares its public id and reference with its re-keyed copy.
    for k in [
        public_key(&rec.public_id),
        reference_key(&rec.org, &rec.network, &rec.reference),
    ] {
        if get_u64(kv, &k)? == Some(rec.id) {
            kv.remove(k);
        }
    }
    kv.remove(super::followup::feedback_key(rec.id));
    kv.remove(shadow_marker(rec.id));
    kv.remove(shadow_pointer(rec.id));
    // An implicit one-signal entity is its own household (which may hold others).
    let household = match get_json::<EntityRecord>(kv, &entity_key(rec.entity))? {
        None => rec.entity,
        Some(mut e) => {
            e.members.retain(|m| m.signal != rec.id);
            if !e.members.is_empty() {
                put_json(kv, entity_key(rec.entity), &e);
                return Ok(());
            }
            kv.remove(entity_key(rec.entity));
            e.household
        }
    };
    if let Some(mut h) = get_json::<HouseholdRecord>(kv, &household_key(household))? {
        h.entities.retain(|x| *x != rec.entity);
        if h.entities.is_empty() {
            kv.remove(household_key(household));
        } else {
            put_json(kv, household_key(household), &h);
        }
    }
    Ok(())
}

/// Erases a match at the end of its network's period for closed matches, with every
/// match merged into it: the match record, its handle, its scope entry (when it still
/// points to it), its place in the networks' match and overdue lists, its follow-ups
/// and their deadlines, its alerts (outbox rows, the networks' event lists, pending and
/// dead-lettered webhook deliveries), its merge and closed-schedule entries. The
/// signals stay (they have their own lifecycle; entities and households hold no
/// reference to a match), and so do the partner feedback of those signals, the `match`
/// counter and the access log's entries, which hold its handle only. Returns the
/// handles erased.
pub fn erase_match(kv: &mut dyn Kv, root: &MatchRecord) -> Result<Vec<String>, EngineError> {
    use super::retention::{closed_key, closed_since, match_prefix, merged_key, second_of};
    let mut todo = vec![root.clone()];
    let mut seen = HashSet::new();
    let mut handles = Vec::new();
    while let Some(m) = todo.pop() {
        if !seen.insert(m.id) {
            continue;
        }
        for (k, _) in kv.scan_prefix(&match_prefix(b'W', m.id))? {
            if let Some(from) = second_of(&k).map(|f| match_by_id(kv, f)).transpose()? {
                todo.extend(from);
            }
            kv.remove(k);
        }
        if let Some(into) = m.merged_into {
            kv.remove(merged_key(into, m.id));
        }
        if let Some(t) = closed_since(kv, m.id)? {
            kv.remove(closed_key(t, m.id));
        }
        let mut networks: BTreeSet<String> = m.networks.iter().cloned().collect();
        let fp = match_prefix(b'f', m.id);
        for (k, v) in kv.scan_prefix(&fp)? {
            let network = String::from_utf8_lossy(&k[fp.len()..]).into_owned();
            if let Ok(f) = serde_json::from_slice::<FollowUp>(&v) {
                for (which, due) in [
                    (Deadline::Acknowledge, f.acknowledge_due),
                    (Deadline::Decision, f.decision_due),
                ] {
                    if let Some(due) = due {
                        kv.remove(super::followup::deadline_key(due, m.id, which, &network));
                    }
                }
            }
            kv.remove(k);
            networks.insert(network);
        }
        for n in &networks {
            kv.remove(network_match_key(n, m.id));
            kv.remove(super::followup::overdue_key(n, m.id));
        }
        for (k, _) in kv.scan_prefix(&match_prefix(b'g', m.id))? {
            if let Some(seq) = second_of(&k) {
                let alert = get_json::<Alert>(kv, &outbox_key(seq)).ok().flatten();
                for n in alert.map(|a| a.network).into_iter().chain(networks.clone()) {
                    let mut a = super::followup::network_events_prefix(&n);
                    a.extend_from_slice(&seq.to_be_bytes());
                    kv.remove(a);
                    kv.remove(super::followup::pending_key(&n, seq));
                    kv.remove(crate::alerts::webhook::dead_key(&n, seq));
                }
                kv.remove(outbox_key(seq));
            }
            kv.remove(k);
        }
        let scope = scope_key(m.kind, m.scope);
        if get_u64(kv, &scope)? == Some(m.id) {
            kv.remove(scope);
        }
        kv.remove(handle_key(&m.handle));
        kv.remove(match_key(m.id));
        handles.push(m.handle);
    }
    Ok(handles)
}

/// Renews an active signal to a new validity end.
pub fn renew(
    kv: &mut dyn Kv,
    rec: &SignalRecord,
    valid_until: i64,
    now: i64,
) -> Result<SignalRecord, EngineError> {
    super::counters::on_renew(kv, rec, valid_until, now)?;
    let rec = set_validity(kv, rec, valid_until, Some(now))?;
    // Its shadow lives as long (and is not counted: the copy is).
    if let Some(shadow) = shadow_of(kv, rec.id)? {
        set_validity(kv, &shadow, valid_until, Some(now))?;
    }
    Ok(rec)
}

/// Moves an active signal's validity end (its expiry index entry, its postings and its
/// entity membership), without the day counters.
pub(crate) fn set_validity(
    kv: &mut dyn Kv,
    rec: &SignalRecord,
    valid_until: i64,
    renewed_at: Option<i64>,
) -> Result<SignalRecord, EngineError> {
    kv.remove(super::retention::expiry_key(rec.valid_until, rec.id));
    kv.put(
        super::retention::expiry_key(valid_until, rec.id),
        Vec::new(),
    );
    let mut rec = rec.clone();
    rec.valid_until = valid_until;
    if renewed_at.is_some() {
        rec.renewed_at = renewed_at;
    }
    let until_min = until_minutes(valid_until);
    for k in rec.all_keys() {
        let own = kv.postings(&k.p2).into_iter().find(|p| p.signal == rec.id);
        if let Some(mut p) = own {
            p.until_min = until_min;
            kv.add_posting(&k.p2, p);
        }
    }
    put_signal(kv, &rec)?;
    set_member(kv, &rec, |m| m.valid_until = valid_until)?;
    Ok(rec)
}

fn set_member(
    kv: &mut dyn Kv,
    rec: &SignalRecord,
    f: impl Fn(&mut Member),
) -> Result<(), EngineError> {
    // An implicit one-signal entity reads its member from the signal record itself.
    if let Some(mut e) = get_json::<EntityRecord>(kv, &entity_key(rec.entity))? {
        for m in e.members.iter_mut().filter(|m| m.signal == rec.id) {
            f(m);
        }
        put_json(kv, entity_key(rec.entity), &e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn k(kind: KeyKind, b: u8) -> StoredKey {
        StoredKey {
            kind: kind as u8,
            p2: [b; 32],
        }
    }

    fn sig(
        org: &str,
        reference: &str,
        person: Vec<StoredKey>,
        household: Vec<StoredKey>,
    ) -> NewSignal {
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
            valid_until: 1_000_000,
            person,
            household,
            family: vec![],
            content_hash: [reference.len() as u8; 32],
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

    fn alerts(kv: &Mem) -> Vec<Alert> {
        kv.0.iter()
            .filter(|(k, _)| k[0] == b'o')
            .map(|(_, v)| serde_json::from_slice(v).unwrap())
            .collect()
    }

    fn run(kv: &mut Mem, p: &Policy, s: NewSignal, now: i64) -> Effects {
        let mut fx = Effects::default();
        submit(kv, p, s, now, &mut Counter(0), &mut fx).unwrap();
        fx
    }

    #[test]
    fn one_alert_per_state_change() {
        let (mut kv, p) = (Mem::default(), policy());
        run(
            &mut kv,
            &p,
            sig("a", "1", vec![k(KeyKind::Bsn, 1)], vec![]),
            10,
        );
        assert!(alerts(&kv).is_empty());
        let fx = run(
            &mut kv,
            &p,
            sig("b", "2", vec![k(KeyKind::Bsn, 1)], vec![]),
            11,
        );
        assert_eq!(fx.matches_formed, 1);
        assert_eq!(alerts(&kv).len(), 1);
        assert_eq!(alerts(&kv)[0].event, "match.formed");
        run(
            &mut kv,
            &p,
            sig("b", "3", vec![k(KeyKind::Bsn, 1)], vec![]),
            12,
        );
        assert_eq!(
            alerts(&kv).len(),
            1,
            "the same organisation again changes nothing"
        );
        run(
            &mut kv,
            &p,
            sig("c", "4", vec![k(KeyKind::Bsn, 1)], vec![]),
            13,
        );
        let a = alerts(&kv);
        assert_eq!(a.len(), 2);
        assert_eq!(a[1].event, "match.organisation_joined");
        assert_eq!(a[1].new_orgs, vec!["c".to_string()]);
    }

    #[test]
    fn follow_up_starts_with_the_match_and_reopens_on_a_new_signal() {
        use super::super::followup;
        let (mut kv, p) = (Mem::default(), policy());
        let day = 86_400;
        // Monday 7 December 2026, 09:00 UTC.
        let monday = crate::pseudonym::Date::parse_iso("2026-12-07")
            .unwrap()
            .days_since_epoch()
            * day
            + 9 * 3600;
        let bsn = || vec![k(KeyKind::Bsn, 1)];
        let sig = |org: &str, reference: &str, person, household| NewSignal {
            valid_until: monday + 365 * day,
            ..sig(org, reference, person, household)
        };
        run(&mut kv, &p, sig("a", "1", bsn(), vec![]), monday);
        run(&mut kv, &p, sig("b", "2", bsn(), vec![]), monday);
        let mid = alerts(&kv)[0].match_id;
        let f = followup::load(&kv, mid, "n").unwrap().unwrap();
        assert_eq!((f.stage, f.unacknowledged), (Stage::New, true));
        // 5 working days: end of Monday 14 December, local time (23:00 UTC).
        assert_eq!(f.acknowledge_due, Some(monday + 7 * day + 14 * 3600));
        assert!(kv.0.keys().any(|k| k[0] == b't'), "deadline indexed");
        assert!(
            kv.0.keys().any(|k| k[0] == b'a'),
            "event listed for the network"
        );
        assert!(
            !kv.0.keys().any(|k| k[0] == b'q'),
            "no webhook, nothing pending"
        );

        // The coordinator closes it; a signal of an organisation already in it reopens it.
        let closed = FollowUp {
            stage: Stage::Closed,
            unacknowledged: false,
            closed_reason: Some(CloseReason::NoConcern),
            acknowledge_due: None,
            decision_due: None,
            ..f.clone()
        };
        followup::store(&mut kv, mid, "n", Some(&f), &closed).unwrap();
        assert!(
            !kv.0.keys().any(|k| k[0] == b't'),
            "no deadline while closed"
        );
        run(&mut kv, &p, sig("a", "3", bsn(), vec![]), monday + day);
        let a = alerts(&kv);
        assert_eq!(a.len(), 2);
        assert_eq!(a[1].event, event::REOPENED);
        let f = followup::load(&kv, mid, "n").unwrap().unwrap();
        assert_eq!((f.stage, f.unacknowledged), (Stage::New, true));
        assert_eq!(f.opened_at, monday + day);
        assert_eq!(f.history.last().unwrap().action, "reopened");
        assert_eq!(f.closed_reason, None);

        // An open follow-up: another signal of a known organisation is quiet, a new one joins.
        run(&mut kv, &p, sig("b", "4", bsn(), vec![]), monday + day);
        assert_eq!(alerts(&kv).len(), 2);
        run(&mut kv, &p, sig("c", "5", bsn(), vec![]), monday + day);
        assert_eq!(alerts(&kv)[2].event, event::JOINED);
    }

    #[test]
    fn webhook_networks_get_a_pending_delivery_per_alert() {
        let mut p = policy();
        p.webhook_networks.insert("n".into());
        let mut kv = Mem::default();
        run(
            &mut kv,
            &p,
            sig("a", "1", vec![k(KeyKind::Bsn, 1)], vec![]),
            10,
        );
        run(
            &mut kv,
            &p,
            sig("b", "2", vec![k(KeyKind::Bsn, 1)], vec![]),
            11,
        );
        let seq = alerts(&kv)[0].seq;
        assert!(kv.0.contains_key(&super::super::followup::pending_key("n", seq)));
    }

    #[test]
    fn weak_keys_need_a_second_kind() {
        let (mut kv, p) = (Mem::default(), policy());
        run(
            &mut kv,
            &p,
            sig(
                "a",
                "1",
                vec![k(KeyKind::InitialDate, 1)],
                vec![k(KeyKind::Address, 9)],
            ),
            10,
        );
        run(
            &mut kv,
            &p,
            sig("b", "2", vec![k(KeyKind::InitialDate, 1)], vec![]),
            11,
        );
        assert!(alerts(&kv).is_empty(), "a weak key alone does not link");
        run(
            &mut kv,
            &p,
            sig(
                "c",
                "3",
                vec![k(KeyKind::InitialDate, 1)],
                vec![k(KeyKind::Address, 9)],
            ),
            12,
        );
        let m: Vec<MatchRecord> =
            kv.0.iter()
                .filter(|(k, _)| k[0] == b'm')
                .map(|(_, v)| serde_json::from_slice(v).unwrap())
                .collect();
        assert_eq!(m.len(), 1);
        assert_eq!(
            m[0].kind,
            MatchKind::Person,
            "weak key plus shared address is a person link"
        );
    }

    fn matches(kv: &Mem) -> Vec<MatchRecord> {
        kv.0.iter()
            .filter(|(k, _)| k[0] == b'm')
            .map(|(_, v)| serde_json::from_slice(v).unwrap())
            .collect()
    }

    #[test]
    fn different_bsns_never_link_as_one_person() {
        // Twins at one address: the same name key and address, different BSNs.
        let (mut kv, p) = (Mem::default(), policy());
        let twin = |org: &str, r: &str, bsn: u8| {
            sig(
                org,
                r,
                vec![k(KeyKind::Bsn, bsn), k(KeyKind::NameDate, 5)],
                vec![k(KeyKind::Address, 9)],
            )
        };
        run(&mut kv, &p, twin("a", "1", 1), 10);
        run(&mut kv, &p, twin("b", "2", 2), 11);
        let m = matches(&kv);
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!(
            m[0].kind,
            MatchKind::Household,
            "two persons of one household, not one person"
        );
        // Without a BSN on one side the same keys do link (the rule of §5.2).
        run(
            &mut kv,
            &p,
            sig("c", "3", vec![k(KeyKind::NameDate, 5)], vec![]),
            12,
        );
        assert!(matches(&kv).iter().any(|m| m.kind == MatchKind::Person));
        // same_person on the corresponding key sets agrees.
        let ps = |kind, b| crate::pseudonym::Pseudonym {
            kind,
            bytes: [b; 32],
        };
        assert!(!crate::pseudonym::same_person(
            &[ps(KeyKind::Bsn, 1), ps(KeyKind::NameDate, 5)],
            &[ps(KeyKind::Address, 9)],
            &[ps(KeyKind::Bsn, 2), ps(KeyKind::NameDate, 5)],
            &[ps(KeyKind::Address, 9)],
        ));
    }

    #[test]
    fn parents_link_by_the_same_rule() {
        let p = policy();
        let parent_keys = |bsn: u8| vec![k(KeyKind::Bsn, bsn), k(KeyKind::NameDate, 5)];
        let child = |org: &str, r: &str, bsn: u8| NewSignal {
            family: vec![parent_keys(bsn)],
            ..sig(org, r, vec![k(KeyKind::Bsn, 50 + bsn)], vec![])
        };
        // The parent's own signal with another BSN: no family link.
        let mut kv = Mem::default();
        run(&mut kv, &p, sig("a", "1", parent_keys(1), vec![]), 10);
        run(&mut kv, &p, child("b", "2", 2), 11);
        assert!(matches(&kv).is_empty());
        // With the same BSN: a family match.
        run(&mut kv, &p, child("c", "3", 1), 12);
        let m = matches(&kv);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].kind, MatchKind::Family);
        // A subject that meets a stored child's parent on one weak key only: no link.
        let mut kv = Mem::default();
        run(
            &mut kv,
            &p,
            NewSignal {
                family: vec![vec![k(KeyKind::InitialDate, 7)]],
                ..sig("a", "1", vec![k(KeyKind::Bsn, 60)], vec![])
            },
            10,
        );
        run(
            &mut kv,
            &p,
            sig("b", "2", vec![k(KeyKind::InitialDate, 7)], vec![]),
            11,
        );
        assert!(matches(&kv).is_empty());
    }

    #[test]
    fn initial_and_birth_date_link_only_at_a_shared_address() {
        let p = policy();
        let (id, ini) = (k(KeyKind::InitialBirthDate, 3), k(KeyKind::InitialDate, 4));
        let adr = |b| vec![k(KeyKind::Address, b)];
        // No address, or another one: no link, even with a second weak key (`in`).
        let mut kv = Mem::default();
        run(&mut kv, &p, sig("a", "1", vec![id, ini], adr(8)), 10);
        run(&mut kv, &p, sig("b", "2", vec![id, ini], vec![]), 11);
        run(&mut kv, &p, sig("c", "3", vec![id], adr(9)), 12);
        assert!(matches(&kv).is_empty(), "{:?}", matches(&kv));
        // `id` is never posted: it is compared among signals that share an address.
        assert!(kv.postings(&id.p2).is_empty());
        // The same address: a person match.
        run(&mut kv, &p, sig("d", "4", vec![id], adr(8)), 13);
        let m = matches(&kv);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].kind, MatchKind::Person);
        // At an excluded (institutional) address it does not link.
        let p = policy();
        p.excluded_addresses.insert([7; 32]);
        let mut kv = Mem::default();
        run(&mut kv, &p, sig("a", "1", vec![id], adr(7)), 10);
        run(&mut kv, &p, sig("b", "2", vec![id], adr(7)), 11);
        assert!(matches(&kv).is_empty());
    }

    /// Two persons, each a match of two organisations: `a`, `b` by a BSN, `c`, `d` by a
    /// name key.
    fn two_persons_of_two_organisations() -> (Mem, Policy) {
        let (mut kv, p) = (Mem::default(), policy());
        for (org, r, key) in [
            ("a", "1", k(KeyKind::Bsn, 1)),
            ("b", "2", k(KeyKind::Bsn, 1)),
            ("c", "3", k(KeyKind::NameDate, 2)),
            ("d", "4", k(KeyKind::NameDate, 2)),
        ] {
            run(&mut kv, &p, sig(org, r, vec![key], vec![]), 10);
        }
        (kv, p)
    }

    #[test]
    fn bridging_signal_merges_entities_and_their_matches() {
        let (mut kv, p) = two_persons_of_two_organisations();
        // A record with both the BSN and the name key bridges the two persons.
        run(
            &mut kv,
            &p,
            sig(
                "e",
                "5",
                vec![k(KeyKind::Bsn, 1), k(KeyKind::NameDate, 2)],
                vec![],
            ),
            11,
        );
        let entities: Vec<EntityRecord> =
            kv.0.iter()
                .filter(|(k, _)| k[0] == b'e')
                .map(|(_, v)| serde_json::from_slice(v).unwrap())
                .collect();
        assert_eq!(entities.len(), 1);
        assert_eq!(entities[0].members.len(), 5);
        let matches: Vec<MatchRecord> =
            kv.0.iter()
                .filter(|(k, _)| k[0] == b'm')
                .map(|(_, v)| serde_json::from_slice(v).unwrap())
                .collect();
        let open: Vec<&MatchRecord> = matches
            .iter()
            .filter(|m| m.status == MatchStatus::Open)
            .collect();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].orgs.len(), 5);
        assert_eq!(
            matches
                .iter()
                .filter(|m| m.status == MatchStatus::Merged)
                .count(),
            1
        );
    }

    #[test]
    fn common_keys_and_giant_components_are_contained() {
        let mut p = policy();
        p.max_postings_per_key = 4;
        let mut kv = Mem::default();
        let mut saturated = 0;
        for i in 0..10u8 {
            saturated += run(
                &mut kv,
                &p,
                sig(
                    &format!("o{i}"),
                    &format!("r{i}"),
                    vec![k(KeyKind::Bsn, 7), k(KeyKind::NameDate, 100 + i)],
                    vec![],
                ),
                10,
            )
            .saturated_keys;
        }
        assert_eq!(saturated, 6, "the key stops linking once 4 signals hold it");
        assert_eq!(
            kv.postings(&[7; 32]).len(),
            4,
            "and no further postings are added to it"
        );

        let mut p = policy();
        p.max_component_signals = 3;
        let mut kv = Mem::default();
        let mut refused = 0;
        for i in 0..5u8 {
            refused += run(
                &mut kv,
                &p,
                sig(
                    &format!("o{i}"),
                    &format!("r{i}"),
                    vec![k(KeyKind::Bsn, 8)],
                    vec![],
                ),
                10,
            )
            .refused_merges;
        }
        assert!(refused >= 2);
        let biggest =
            kv.0.iter()
                .filter(|(k, _)| k[0] == b'e')
                .map(|(_, v)| {
                    serde_json::from_slice::<EntityRecord>(v)
                        .unwrap()
                        .members
                        .len()
                })
                .max();
        assert_eq!(biggest, Some(3));
    }

    #[test]
    fn excluded_addresses_and_expired_signals_do_not_link() {
        let p = policy();
        p.excluded_addresses.insert([9; 32]);
        let mut kv = Mem::default();
        run(
            &mut kv,
            &p,
            sig(
                "a",
                "1",
                vec![k(KeyKind::Bsn, 1)],
                vec![k(KeyKind::Address, 9)],
            ),
            10,
        );
        run(
            &mut kv,
            &p,
            sig(
                "b",
                "2",
                vec![k(KeyKind::Bsn, 2)],
                vec![k(KeyKind::Address, 9)],
            ),
            10,
        );
        assert!(
            alerts(&kv).is_empty(),
            "a shelter's address forms no household"
        );

        let mut kv = Mem::default();
        let p = policy();
        let mut old = sig("a", "1", vec![k(KeyKind::Bsn, 1)], vec![]);
        old.valid_until = 600;
        run(&mut kv, &p, old, 10);
        run(
            &mut kv,
            &p,
            sig("b", "2", vec![k(KeyKind::Bsn, 1)], vec![]),
            600,
        );
        assert!(
            alerts(&kv).is_empty(),
            "a signal stops matching at its validity end"
        );
    }

    #[test]
    fn resubmission_is_idempotent_or_a_conflict() {
        let (mut kv, p) = (Mem::default(), policy());
        let mut fx = Effects::default();
        let s = sig("a", "1", vec![k(KeyKind::Bsn, 1)], vec![]);
        let first = submit(&mut kv, &p, s.clone(), 10, &mut Counter(0), &mut fx).unwrap();
        let size = kv.0.len();
        let again = submit(&mut kv, &p, s.clone(), 11, &mut Counter(5), &mut fx).unwrap();
        let SubmitOutcome::Created { public_id, .. } = first else {
            panic!()
        };
        assert_eq!(
            again,
            SubmitOutcome::Existing {
                public_id: public_id.clone()
            }
        );
        assert_eq!(kv.0.len(), size);
        let mut other = s;
        other.content_hash = [99; 32];
        assert_eq!(
            submit(&mut kv, &p, other, 12, &mut Counter(9), &mut fx).unwrap(),
            SubmitOutcome::Conflict { public_id }
        );
    }

    #[test]
    fn rebuilt_postings_equal_those_submissions_left() {
        let mut p = policy();
        p.max_postings_per_key = 3;
        p.excluded_addresses.insert([200; 32]);
        let mut kv = Mem::default();
        for i in 0..8u8 {
            let household = vec![k(KeyKind::Address, 200), k(KeyKind::Address, 150 + i % 4)];
            run(
                &mut kv,
                &p,
                sig(
                    &format!("o{}", i % 3),
                    &format!("r{i}"),
                    vec![
                        k(KeyKind::Bsn, 1 + i % 4),
                        k(KeyKind::NameDate, 7),
                        k(KeyKind::InitialBirthDate, 90),
                    ],
                    household,
                ),
                10,
            );
        }
        let first = signal_by_id(&kv, 1).unwrap().unwrap();
        withdraw(&mut kv, &first, WithdrawReason::ConcernOver, 11).unwrap();
        let second = signal_by_id(&kv, 2).unwrap().unwrap();
        renew(&mut kv, &second, 2_000_000, 11).unwrap();

        let mut rebuilt = PostingIndex::new();
        for (key, v) in kv.scan_prefix(b"s").unwrap() {
            assert_eq!(key.len(), 9);
            index_signal(&mut rebuilt, &SignalRecord::decode(&v).unwrap(), &p, 11);
        }
        for b in [1, 2, 3, 4, 150, 151, 152, 153] {
            let mut want = kv.postings(&[b; 32]);
            let mut got = rebuilt.get(&[b; 32]).to_vec();
            want.sort_by_key(|p| p.signal);
            got.sort_by_key(|p| p.signal);
            assert_eq!(got, want, "postings of key {b}");
        }
        // An excluded address is held (it links nothing), for when it leaves the list;
        // like key 7 below, it was full live and the rebuild applies the cap afresh.
        assert_eq!(rebuilt.get(&[200; 32]).len(), 3, "excluded address is held");
        assert!(rebuilt.get(&[90; 32]).is_empty(), "`id` is never posted");
        // Key 7 was full (1, 2, 3) when signal 4 came; the withdrawal of 1 freed a place.
        // Live, 4 stays out; the rebuild applies the cap afresh, in signal-id order.
        let held: Vec<SignalId> = kv.postings(&[7; 32]).iter().map(|p| p.signal).collect();
        assert_eq!(held, vec![2, 3]);
        let held: Vec<SignalId> = rebuilt.get(&[7; 32]).iter().map(|p| p.signal).collect();
        assert_eq!(held, vec![2, 3, 4], "capped, in id order");
        assert!(
            rebuilt
                .get(&[2; 32])
                .iter()
                .any(|p| p.signal == 2 && p.until_min == until_minutes(2_000_000)),
            "renewal is in the record"
        );
        // Keys 7 and 200 each take one signal back.
        assert_eq!(rebuilt.postings(), kv.1.postings() + 2);
    }

    /// Withdraws the signal of `reference` (organisation `org`) as a partner would.
    fn withdraw_ref(kv: &mut Mem, p: &Policy, org: &str, reference: &str, now: i64) -> u64 {
        let sid = get_u64(kv, &reference_key(org, "n", reference))
            .unwrap()
            .unwrap();
        let rec = signal_by_id(kv, sid).unwrap().unwrap();
        let w = withdraw(kv, &rec, WithdrawReason::ConcernOver, now).unwrap();
        leave(kv, p, &mut Counter(1 << 64), &w, now).unwrap()
    }

    fn entity_of(kv: &Mem, org: &str, reference: &str) -> u64 {
        let sid = get_u64(kv, &reference_key(org, "n", reference))
            .unwrap()
            .unwrap();
        signal_by_id(kv, sid).unwrap().unwrap().entity
    }

    fn events_of(kv: &Mem, event: &str) -> usize {
        alerts(kv).iter().filter(|a| a.event == event).count()
    }

    #[test]
    fn a_withdrawn_bridge_splits_the_person_and_closes_what_it_alone_made() {
        let (mut kv, p) = (Mem::default(), policy());
        run(
            &mut kv,
            &p,
            sig("a", "1", vec![k(KeyKind::Bsn, 1)], vec![]),
            10,
        );
        run(
            &mut kv,
            &p,
            sig("c", "3", vec![k(KeyKind::NameDate, 2)], vec![]),
            10,
        );
        assert!(matches(&kv).is_empty());
        // One record carries both: the three are one person, a match of three.
        let bridge = vec![k(KeyKind::Bsn, 1), k(KeyKind::NameDate, 2)];
        run(&mut kv, &p, sig("e", "5", bridge, vec![]), 11);
        assert_eq!(entity_of(&kv, "a", "1"), entity_of(&kv, "c", "3"));
        assert_eq!(matches(&kv).len(), 1);
        assert_eq!(matches(&kv)[0].orgs.len(), 3);

        // Without it, a and c share nothing: two persons, and no match.
        assert_eq!(withdraw_ref(&mut kv, &p, "e", "5", 12), 1);
        assert_ne!(entity_of(&kv, "a", "1"), entity_of(&kv, "c", "3"));
        assert_eq!(events_of(&kv, event::DISSOLVED), 1);
        let m = &matches(&kv)[0];
        assert_eq!(m.orgs.len(), 1, "{m:?}");
        assert_eq!(events_of(&kv, event::FORMED), 1);

        // Each goes on alone: a new signal on c's name meets c only, and reopens nothing
        // of a's.
        run(
            &mut kv,
            &p,
            sig("x", "7", vec![k(KeyKind::NameDate, 2)], vec![]),
            13,
        );
        assert_eq!(entity_of(&kv, "x", "7"), entity_of(&kv, "c", "3"));
        assert_ne!(entity_of(&kv, "x", "7"), entity_of(&kv, "a", "1"));
        let with_x: Vec<MatchRecord> = matches(&kv)
            .into_iter()
            .filter(|m| m.orgs.contains(&"x".to_string()))
            .collect();
        assert_eq!(with_x.len(), 1);
        assert_eq!(with_x[0].orgs, vec!["c".to_string(), "x".to_string()]);
    }

    #[test]
    fn a_split_that_leaves_two_matches_keeps_one_and_forms_the_other() {
        let (mut kv, p) = two_persons_of_two_organisations();
        let bridge = vec![k(KeyKind::Bsn, 1), k(KeyKind::NameDate, 2)];
        run(&mut kv, &p, sig("e", "5", bridge, vec![]), 11);
        let handle = matches(&kv)
            .into_iter()
            .find(|m| m.status == MatchStatus::Open)
            .unwrap()
            .handle;

        assert_eq!(withdraw_ref(&mut kv, &p, "e", "5", 12), 1);
        let open: Vec<MatchRecord> = matches(&kv)
            .into_iter()
            .filter(|m| m.status == MatchStatus::Open)
            .collect();
        assert_eq!(open.len(), 2, "{open:?}");
        let mut orgs: Vec<Vec<String>> = open.iter().map(|m| m.orgs.clone()).collect();
        orgs.sort();
        assert_eq!(orgs, vec![vec!["a", "b"], vec!["c", "d"]]);
        // The match goes on with one of them (same handle, still two organisations, no
        // dissolution); the other part is a match of its own, and is told as one.
        assert!(open.iter().any(|m| m.handle == handle));
        assert_eq!(events_of(&kv, event::DISSOLVED), 0);
        assert_eq!(
            matches(&kv)
                .iter()
                .filter(|m| m.status == MatchStatus::Merged)
                .count(),
            1
        );
        // Every open match's signals are its own part's.
        for m in &open {
            let signals = match_signals(&kv, m).unwrap();
            let mut of: Vec<String> = signals
                .iter()
                .filter(|s| s.state == SignalState::Active)
                .map(|s| s.org.clone())
                .collect();
            of.sort();
            assert_eq!(of, m.orgs);
        }
    }

    #[test]
    fn a_withdrawn_signal_that_alone_shared_an_address_splits_the_household() {
        let (mut kv, p) = (Mem::default(), policy());
        let y = vec![k(KeyKind::Bsn, 20)];
        run(
            &mut kv,
            &p,
            sig(
                "a",
                "1",
                vec![k(KeyKind::Bsn, 10)],
                vec![k(KeyKind::Address, 101)],
            ),
            10,
        );
        run(
            &mut kv,
            &p,
            sig("b", "2", y.clone(), vec![k(KeyKind::Address, 102)]),
            10,
        );
        // c records y at a's address: y is one person (b, c) and shares a's household.
        run(
            &mut kv,
            &p,
            sig("c", "3", y, vec![k(KeyKind::Address, 101)]),
            11,
        );
        let household = matches(&kv)
            .into_iter()
            .find(|m| m.kind == MatchKind::Household)
            .expect("a household match");
        assert_eq!(household.orgs.len(), 3);

        // Without c nothing ties a to y, nor b to c: the household comes apart and both
        // matches close, each with its own alert.
        assert_eq!(withdraw_ref(&mut kv, &p, "c", "3", 12), 2);
        assert_eq!(events_of(&kv, event::DISSOLVED), 2);
        let a = load_entity(&kv, entity_of(&kv, "a", "1")).unwrap().unwrap();
        let b = load_entity(&kv, entity_of(&kv, "b", "2")).unwrap().unwrap();
        assert_ne!(a.household, b.household);
        // A new signal at a's address by another organisation is a's household only.
        run(
            &mut kv,
            &p,
            sig(
                "x",
                "7",
                vec![k(KeyKind::Bsn, 30)],
                vec![k(KeyKind::Address, 101)],
            ),
            13,
        );
        let x = load_entity(&kv, entity_of(&kv, "x", "7")).unwrap().unwrap();
        assert_eq!(x.household, a.household);
        let reopened = match_by_id(&kv, household.id).unwrap().unwrap();
        assert_eq!(
            match_signals(&kv, &reopened)
                .unwrap()
                .iter()
                .filter(|s| s.state == SignalState::Active)
                .count(),
            2
        );
    }

    #[test]
    fn a_household_match_closes_when_one_person_is_left() {
        let (mut kv, p) = (Mem::default(), policy());
        let adr = || vec![k(KeyKind::Address, 101)];
        run(
            &mut kv,
            &p,
            sig("a", "1", vec![k(KeyKind::Bsn, 10)], adr()),
            10,
        );
        run(
            &mut kv,
            &p,
            sig("b", "2", vec![k(KeyKind::Bsn, 10)], adr()),
            10,
        );
        run(
            &mut kv,
            &p,
            sig("c", "3", vec![k(KeyKind::Bsn, 20)], adr()),
            10,
        );
        let household = matches(&kv)
            .into_iter()
            .find(|m| m.kind == MatchKind::Household)
            .expect("a household match");
        // Two organisations remain, but on one person: that is the person match, not a
        // household one.
        assert_eq!(withdraw_ref(&mut kv, &p, "c", "3", 12), 1);
        let after = match_by_id(&kv, household.id).unwrap().unwrap();
        assert_eq!(after.orgs, vec!["a".to_string(), "b".to_string()]);
        let person = matches(&kv)
            .into_iter()
            .find(|m| m.kind == MatchKind::Person)
            .unwrap();
        assert_eq!(person.status, MatchStatus::Open);
        assert_eq!(events_of(&kv, event::DISSOLVED), 1);
    }

    /// The active signals grouped by `group` (entity or household), as sets of
    /// references.
    fn partition(kv: &Mem, group: impl Fn(&SignalRecord) -> u64) -> BTreeSet<BTreeSet<String>> {
        let mut by: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
        for (key, v) in kv.scan_prefix(b"s").unwrap() {
            if key.len() != 9 {
                continue;
            }
            let r = SignalRecord::decode(&v).unwrap();
            if r.state == SignalState::Active {
                by.entry(group(&r)).or_default().insert(r.reference.clone());
            }
        }
        by.into_values().collect()
    }

    #[test]
    fn after_withdrawals_the_parts_are_those_the_remaining_signals_make_afresh() {
        use KeyKind::*;
        // SAMENLOOP_SPLIT_CASES=20000 for a longer run.
        const DEFAULT_CASES: u64 = 300;
        let cases = std::env::var("SAMENLOOP_SPLIT_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_CASES);
        let pool = [
            (Bsn, 1),
            (Bsn, 2),
            (NameDate, 4),
            (NameDate, 5),
            (InitialDate, 6),
            (InitialDate, 7),
            (GivenStart, 8),
            (InitialBirthDate, 9),
        ];
        let mut seed: u64 = 0x5eed;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        let p = policy();
        for case in 0..cases {
            let n = 4 + next(9) as usize;
            let signals: Vec<NewSignal> = (0..n)
                .map(|i| {
                    let person: Vec<StoredKey> = pool
                        .iter()
                        .filter(|_| next(4) == 0)
                        .map(|(kind, b)| k(*kind, *b))
                        .collect();
                    let mut household = Vec::new();
                    for _ in 0..next(3) {
                        household.push(k(Address, 100 + next(3) as u8));
                    }
                    let org = ["a", "b", "c", "d"][next(4) as usize];
                    sig(org, &format!("r{i}"), person, household)
                })
                .collect();
            let mut kv = Mem::default();
            for s in &signals {
                run(&mut kv, &p, s.clone(), 10);
            }
            let mut gone = BTreeSet::new();
            for _ in 0..next(n as u64) + 1 {
                let i = next(n as u64) as usize;
                if gone.insert(i) {
                    withdraw_ref(&mut kv, &p, &signals[i].org, &signals[i].reference, 11);
                    // After each step every signal's entity holds it, and its household
                    // holds the entity.
                    for (key, v) in kv.scan_prefix(b"s").unwrap() {
                        if key.len() != 9 {
                            continue;
                        }
                        let r = SignalRecord::decode(&v).unwrap();
                        let e = load_entity(&kv, r.entity).unwrap().unwrap();
                        assert!(e.members.iter().any(|m| m.signal == r.id), "case {case}");
                        let h = load_household(&kv, e.household).unwrap();
                        assert!(
                            h.as_ref().is_some_and(|h| h.entities.contains(&r.entity)),
                            "case {case}: {} in entity {} of household {}: {h:?}",
                            r.reference,
                            r.entity,
                            e.household
                        );
                    }
                }
            }
            let mut fresh = Mem::default();
            for (i, s) in signals.iter().enumerate() {
                if !gone.contains(&i) {
                    run(&mut fresh, &p, s.clone(), 12);
                }
            }
            assert_eq!(
                partition(&kv, |r| r.entity),
                partition(&fresh, |r| r.entity),
                "persons, case {case}"
            );
            let household =
                |m: &Mem, r: &SignalRecord| load_entity(m, r.entity).unwrap().unwrap().household;
            assert_eq!(
                partition(&kv, |r| household(&kv, r)),
                partition(&fresh, |r| household(&fresh, r)),
                "households, case {case}"
            );
            // Each person of two or more organisations has its match, with them.
            for (key, v) in kv.scan_prefix(b"s").unwrap() {
                if key.len() != 9 {
                    continue;
                }
                let r = SignalRecord::decode(&v).unwrap();
                let e = load_entity(&kv, r.entity).unwrap().unwrap();
                let orgs = active_orgs(&e.members, 11);
                if r.state != SignalState::Active || orgs.len() < 2 {
                    continue;
                }
                let mid = get_u64(&kv, &scope_key(MatchKind::Person, r.entity))
                    .unwrap()
                    .unwrap_or_else(|| {
                        panic!(
                            "no match for {}, entity {}, case {case}",
                            r.reference, r.entity
                        )
                    });
                let m = match_by_id(&kv, mid).unwrap().unwrap();
                let mut have = m.orgs.clone();
                have.sort();
                assert_eq!(
                    have,
                    orgs.keys().cloned().collect::<Vec<_>>(),
                    "case {case}"
                );
            }
        }
    }
}
