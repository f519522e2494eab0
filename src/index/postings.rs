//! The posting lists: for each stored key `P2`, the signals that hold it.
//!
//! Postings are derived data. Every signal record carries its own keys, so the lists are
//! kept in memory and rebuilt from the records when the store opens
//! ([`crate::index::engine::index_signal`]); the store writes one record per signal
//! instead of one entry per key, and a lookup is a hash probe instead of a range scan.
//!
//! Memory: a key with one posting costs one 48-byte slot plus its table's control byte
//! and slack; see the README ("Matching in the store") for measured figures.
//!
//! The table is keyed by the first 16 bytes of `P2`. `P2` is a keyed BLAKE3 output that
//! no partner can choose, so the bytes are uniform: they need no further hashing
//! (and cannot be crafted to collide), and two of 10^9 distinct keys share 16 bytes with
//! probability below 10^-20. A posting also carries the key's kind, which the engine
//! compares.

use super::model::{Posting, SignalId};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Hasher for keys that are already uniformly random: the low 64 bits are the hash.
#[derive(Default)]
pub struct UniformHasher(u64);

impl Hasher for UniformHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only reached for other key types; fold the bytes in.
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(b);
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
}

type Uniform = BuildHasherDefault<UniformHasher>;

/// The table key of a `P2`.
pub fn slot_key(p2: &[u8; 32]) -> u128 {
    let mut b = [0u8; 16];
    b.copy_from_slice(&p2[..16]);
    u128::from_le_bytes(b)
}

/// Most keys are held by one signal: that posting lives inline.
#[derive(Debug, Clone)]
enum Slot {
    One(Posting),
    Many(Vec<Posting>),
}

impl Slot {
    fn as_slice(&self) -> &[Posting] {
        match self {
            Slot::One(p) => std::slice::from_ref(p),
            Slot::Many(v) => v,
        }
    }
}

/// Number of tables the index is split into. A hash table that outgrows its capacity
/// moves every entry at once; split in 256, the writer pauses for 1/256 of the index
/// (about a millisecond at ten million keys) instead of for all of it.
const SHARDS: usize = 256;

type Table = HashMap<u128, Slot, Uniform>;

/// Every posting list, in memory.
#[derive(Debug)]
pub struct PostingIndex {
    shards: Vec<Table>,
    postings: u64,
}

impl Default for PostingIndex {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Table::default()).collect(),
            postings: 0,
        }
    }
}

impl PostingIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// The table of a key: chosen by its top byte, which the tables' own hash (the low
    /// 64 bits) does not use.
    fn shard(&self, key: u128) -> &Table {
        &self.shards[(key >> 120) as usize % SHARDS]
    }

    fn shard_mut(&mut self, key: u128) -> &mut Table {
        &mut self.shards[(key >> 120) as usize % SHARDS]
    }

    /// The postings of a key, oldest first.
    pub fn get(&self, p2: &[u8; 32]) -> &[Posting] {
        let key = slot_key(p2);
        self.shard(key).get(&key).map(Slot::as_slice).unwrap_or(&[])
    }

    /// Adds a posting; a signal already on the key is replaced.
    pub fn add(&mut self, p2: &[u8; 32], p: Posting) {
        use std::collections::hash_map::Entry;
        let key = slot_key(p2);
        let added = match self.shard_mut(key).entry(key) {
            Entry::Vacant(v) => {
                v.insert(Slot::One(p));
                true
            }
            Entry::Occupied(mut o) => {
                let slot = o.get_mut();
                match slot {
                    Slot::One(old) if old.signal == p.signal => {
                        *old = p;
                        false
                    }
                    Slot::One(old) => {
                        *slot = Slot::Many(vec![*old, p]);
                        true
                    }
                    Slot::Many(list) => match list.iter_mut().find(|q| q.signal == p.signal) {
                        Some(q) => {
                            *q = p;
                            false
                        }
                        None => {
                            list.push(p);
                            true
                        }
                    },
                }
            }
        };
        self.postings += u64::from(added);
    }

    /// Removes a signal's posting from a key (nothing happens if it has none).
    pub fn remove(&mut self, p2: &[u8; 32], signal: SignalId) {
        use std::collections::hash_map::Entry;
        let key = slot_key(p2);
        let Entry::Occupied(mut o) = self.shard_mut(key).entry(key) else {
            return;
        };
        let removed = match o.get_mut() {
            Slot::One(p) if p.signal == signal => {
                o.remove();
                1
            }
            Slot::One(_) => 0,
            Slot::Many(list) => {
                let before = list.len();
                list.retain(|q| q.signal != signal);
                let removed = before - list.len();
                match list.len() {
                    0 => {
                        o.remove();
                    }
                    1 => {
                        let only = list[0];
                        *o.get_mut() = Slot::One(only);
                    }
                    _ => {}
                }
                removed as u64
            }
        };
        self.postings -= removed;
    }

    /// Number of keys with at least one posting.
    pub fn keys(&self) -> u64 {
        self.shards.iter().map(|t| t.len() as u64).sum()
    }

    /// Number of postings.
    pub fn postings(&self) -> u64 {
        self.postings
    }

    /// Reserves room for `keys` more keys (before a rebuild).
    pub fn reserve(&mut self, keys: usize) {
        for t in &mut self.shards {
            t.reserve(keys.div_ceil(SHARDS));
        }
    }
}

/// One change to a posting list, in the order a request made it.
#[derive(Debug, Clone, Copy)]
enum Op {
    Add(Posting),
    Remove(SignalId),
}

/// The changes to one key's list.
#[derive(Debug)]
struct KeyOps {
    p2: [u8; 32],
    ops: Vec<Op>,
}

/// A request's posting changes on top of the index; applied only if its batch commits.
#[derive(Debug, Default)]
pub struct PostingDelta {
    ops: HashMap<u128, KeyOps, Uniform>,
}

impl PostingDelta {
    /// The postings of a key as the request sees them: the index's plus its own changes.
    pub fn view(&self, base: &PostingIndex, p2: &[u8; 32]) -> Vec<Posting> {
        let mut list = base.get(p2).to_vec();
        if let Some(k) = self.ops.get(&slot_key(p2)) {
            for op in &k.ops {
                match *op {
                    Op::Add(p) => match list.iter_mut().find(|q| q.signal == p.signal) {
                        Some(q) => *q = p,
                        None => list.push(p),
                    },
                    Op::Remove(s) => list.retain(|q| q.signal != s),
                }
            }
        }
        list
    }

    /// Records an added posting.
    pub fn add(&mut self, p2: &[u8; 32], p: Posting) {
        self.entry(p2).push(Op::Add(p));
    }

    /// Records a removed posting.
    pub fn remove(&mut self, p2: &[u8; 32], signal: SignalId) {
        self.entry(p2).push(Op::Remove(signal));
    }

    fn entry(&mut self, p2: &[u8; 32]) -> &mut Vec<Op> {
        &mut self
            .ops
            .entry(slot_key(p2))
            .or_insert_with(|| KeyOps {
                p2: *p2,
                ops: Vec::new(),
            })
            .ops
    }

    /// Whether the request changed no posting.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Applies the changes to the index (after the request's batch is written).
    pub fn apply(self, index: &mut PostingIndex) {
        for (_, k) in self.ops {
            for op in k.ops {
                match op {
                    Op::Add(p) => index.add(&k.p2, p),
                    Op::Remove(s) => index.remove(&k.p2, s),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::model::Role;

    fn p(signal: SignalId, until_min: u32) -> Posting {
        Posting {
            signal,
            kind: 2,
            role: Role::Person,
            until_min,
        }
    }

    #[test]
    fn add_replace_and_remove_keep_counts_right() {
        let mut idx = PostingIndex::new();
        let a = [1u8; 32];
        idx.add(&a, p(1, 10));
        idx.add(&a, p(1, 20));
        assert_eq!(idx.get(&a), &[p(1, 20)], "same signal replaces");
        idx.add(&a, p(2, 10));
        idx.add(&a, p(3, 10));
        assert_eq!((idx.keys(), idx.postings()), (1, 3));
        idx.remove(&a, 2);
        assert_eq!(idx.get(&a), &[p(1, 20), p(3, 10)]);
        idx.remove(&a, 9);
        idx.remove(&a, 1);
        assert_eq!(idx.get(&a), &[p(3, 10)]);
        idx.remove(&a, 3);
        assert!(idx.get(&a).is_empty());
        assert_eq!((idx.keys(), idx.postings()), (0, 0));
    }

    #[test]
    fn keys_with_other_leading_bytes_do_not_meet() {
        let mut idx = PostingIndex::new();
        let mut a = [7u8; 32];
        idx.add(&a, p(1, 10));
        a[0] = 8;
        assert!(idx.get(&a).is_empty());
    }

    #[test]
    fn keys_in_every_table_are_kept_apart_and_counted() {
        // Byte 15 chooses the table, bytes 0..8 the place in it: vary both.
        let mut idx = PostingIndex::new();
        let key = |i: usize| {
            let mut k = [0u8; 32];
            k[15] = (i % 256) as u8;
            k[0] = (i / 256) as u8;
            k
        };
        for i in 0..1024 {
            idx.add(&key(i), p(i as SignalId, 10));
        }
        assert_eq!((idx.keys(), idx.postings()), (1024, 1024));
        for i in 0..1024 {
            assert_eq!(idx.get(&key(i)), &[p(i as SignalId, 10)]);
        }
        for i in (0..1024).step_by(2) {
            idx.remove(&key(i), i as SignalId);
        }
        assert_eq!((idx.keys(), idx.postings()), (512, 512));
        assert!(idx.get(&key(2)).is_empty() && !idx.get(&key(3)).is_empty());
    }

    #[test]
    fn a_delta_is_seen_by_its_request_and_applied_only_when_asked() {
        let mut idx = PostingIndex::new();
        let a = [1u8; 32];
        idx.add(&a, p(1, 10));
        let mut d = PostingDelta::default();
        d.add(&a, p(2, 10));
        d.remove(&a, 1);
        d.add(&a, p(2, 30));
        assert_eq!(d.view(&idx, &a), vec![p(2, 30)]);
        assert_eq!(idx.get(&a), &[p(1, 10)], "nothing applied yet");
        d.apply(&mut idx);
        assert_eq!(idx.get(&a), &[p(2, 30)]);
        assert_eq!(idx.postings(), 1);
    }
}
