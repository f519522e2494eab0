//! The index: signals, person entities, households, matches and the alert outbox.
//! Pure domain logic; storage is behind [`engine::Kv`].

pub mod counters;
pub mod engine;
pub mod figures;
pub mod followup;
pub mod model;
pub mod postings;
pub mod retention;
pub mod rotation;
mod split;
#[cfg(test)]
pub(crate) mod testkv;
pub mod transition;

use crate::pseudonym::Pseudonym;
use zeroize::Zeroizing;

/// The context string of the lift rule (spec/index-key-rotation.md §2).
pub const LIFT_CONTEXT: &str = "samenloop/index-lift/v1";

/// The index-side keys `K_index` (design.md "Two layers of pseudonyms"), as a ring of
/// epochs: epoch 0 derives `P2 = BLAKE3-keyed(K_0, P1)`, and each later epoch `i`
/// lifts every stored value `x` of epoch `i - 1` to `lift_i(x)` (see [`IndexKey::lift`]).
/// The current derivation is the whole chain (spec/index-key-rotation.md).
#[derive(Clone)]
pub struct IndexKey {
    epochs: Vec<(String, std::sync::Arc<Zeroizing<[u8; 32]>>)>,
}

impl std::fmt::Debug for IndexKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexKey")
            .field("ids", &self.ids())
            .finish_non_exhaustive()
    }
}

impl IndexKey {
    /// A ring of one epoch (0) from its key id and secret.
    pub fn new(id: String, key: [u8; 32]) -> IndexKey {
        IndexKey {
            epochs: vec![(id, std::sync::Arc::new(Zeroizing::new(key)))],
        }
    }

    /// The ring with one more epoch on top: the key of the next rotation.
    pub fn with_epoch(&self, id: String, key: [u8; 32]) -> IndexKey {
        let mut next = self.clone();
        next.epochs
            .push((id, std::sync::Arc::new(Zeroizing::new(key))));
        next
    }

    /// The id of the current (newest) key.
    pub fn id(&self) -> &str {
        self.epochs.last().map(|(id, _)| id.as_str()).unwrap_or("")
    }

    /// The key ids, epoch 0 first.
    pub fn ids(&self) -> Vec<&str> {
        self.epochs.iter().map(|(id, _)| id.as_str()).collect()
    }

    /// The current epoch (0 before any rotation).
    pub fn epoch(&self) -> u32 {
        u32::try_from(self.epochs.len().saturating_sub(1)).unwrap_or(u32::MAX)
    }

    /// Whether a key id is in the ring.
    pub fn contains(&self, id: &str) -> bool {
        self.epochs.iter().any(|(i, _)| i == id)
    }

    fn key(&self, epoch: u32) -> &[u8; 32] {
        // Epochs come from this ring (`epoch()`) or from records it lifts; an epoch
        // beyond the ring is refused when the store opens.
        let i = (epoch as usize).min(self.epochs.len().saturating_sub(1));
        &self.epochs[i].1
    }

    /// `lift_e(x) = BLAKE3-keyed(K_e, "samenloop/index-lift/v1" || 0x00 || x)`: a value
    /// of epoch `e - 1` (a P2 or a content hash) in epoch `e` (`e >= 1`).
    pub fn lift(&self, epoch: u32, x: &[u8; 32]) -> [u8; 32] {
        let mut h = blake3::Hasher::new_keyed(self.key(epoch));
        h.update(LIFT_CONTEXT.as_bytes());
        h.update(&[0]);
        h.update(x);
        *h.finalize().as_bytes()
    }

    /// A value of epoch `from` lifted through every later epoch of the ring.
    pub fn lift_from(&self, from: u32, x: &[u8; 32]) -> [u8; 32] {
        let mut v = *x;
        for e in from + 1..=self.epoch() {
            v = self.lift(e, &v);
        }
        v
    }

    /// `P2` in epoch `epoch`: `BLAKE3-keyed(K_0, P1)` lifted up to `epoch`.
    pub fn rekey_at(&self, p1: &Pseudonym, epoch: u32) -> model::StoredKey {
        let mut p2 = *blake3::keyed_hash(self.key(0), &p1.bytes).as_bytes();
        for e in 1..=epoch.min(self.epoch()) {
            p2 = self.lift(e, &p2);
        }
        model::StoredKey {
            kind: p1.kind.index() as u8,
            p2,
        }
    }

    /// `P2` in the current epoch: the only form of a pseudonym the index stores.
    pub fn rekey(&self, p1: &Pseudonym) -> model::StoredKey {
        self.rekey_at(p1, self.epoch())
    }

    /// A keyed hash for other index-internal uses (content hashes), domain-separated,
    /// in the current epoch: the epoch-0 hash lifted like a P2.
    pub fn hash(&self, context: &str, data: &[u8]) -> [u8; 32] {
        let mut h = blake3::Hasher::new_keyed(self.key(0));
        h.update(context.as_bytes());
        h.update(&[0]);
        h.update(data);
        self.lift_from(0, h.finalize().as_bytes())
    }

    /// Brings a record of an older epoch into the current one: every key and the content
    /// hash lifted. A record of the current epoch is left as it is.
    pub fn lift_record(&self, rec: &mut model::SignalRecord) {
        if rec.epoch >= self.epoch() {
            return;
        }
        let from = rec.epoch;
        let lift = |k: &mut model::StoredKey| k.p2 = self.lift_from(from, &k.p2);
        rec.person.iter_mut().for_each(lift);
        rec.household.iter_mut().for_each(lift);
        rec.family.iter_mut().flatten().for_each(lift);
        rec.content_hash = self.lift_from(from, &rec.content_hash);
        rec.epoch = self.epoch();
    }

    /// Brings a new signal whose keys were computed in epoch `from` into the current one
    /// (a request that derived its keys just before a rotation switched the ring).
    pub fn lift_new(&self, new: &mut engine::NewSignal, from: u32) {
        if from >= self.epoch() {
            return;
        }
        let lift = |k: &mut model::StoredKey| k.p2 = self.lift_from(from, &k.p2);
        new.person.iter_mut().for_each(lift);
        new.household.iter_mut().for_each(lift);
        new.family.iter_mut().flatten().for_each(lift);
        new.content_hash = self.lift_from(from, &new.content_hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pseudonym::KeyKind;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// The vector of spec/index-key-rotation.md §2.
    #[test]
    fn ring_derivation_matches_the_spec_vector() {
        let ring = IndexKey::new("k0".into(), [0x11; 32]);
        let p1 = Pseudonym {
            kind: KeyKind::Bsn,
            bytes: [0x42; 32],
        };
        let p2_0 = ring.rekey(&p1).p2;
        assert_eq!(
            p2_0,
            *blake3::keyed_hash(&[0x11; 32], &[0x42; 32]).as_bytes()
        );
        let ring1 = ring.with_epoch("k1".into(), [0x22; 32]);
        let p2_1 = ring1.rekey(&p1).p2;
        let mut input = b"samenloop/index-lift/v1\0".to_vec();
        input.extend_from_slice(&p2_0);
        assert_eq!(p2_1, *blake3::keyed_hash(&[0x22; 32], &input).as_bytes());
        assert_eq!(ring1.lift(1, &p2_0), p2_1);
        assert_eq!(ring1.rekey_at(&p1, 0).p2, p2_0);
        assert_eq!(ring1.epoch(), 1);
        assert_eq!(ring1.ids(), vec!["k0", "k1"]);
        assert_eq!(
            hex(&p2_0),
            "d5b6b61ec90e259d6fb02d3f58b8383dd812895f7677cb035694355acdc595fd",
            "epoch 0"
        );
        assert_eq!(
            hex(&p2_1),
            "8265b54c3fc45016229f807eb2d3dd438e81beca50c1c52cbf5b0f4f2a208c81",
            "epoch 1"
        );
        // The content hash follows the same chain.
        let h0 = ring.hash("samenloop/content", b"abc");
        assert_eq!(ring1.hash("samenloop/content", b"abc"), ring1.lift(1, &h0));
    }
}
