//! The index: signals, person entities, households, matches and the alert outbox.
//! Pure domain logic; storage is behind [`engine::Kv`].

pub mod counters;
pub mod engine;
pub mod figures;
pub mod followup;
pub mod model;
pub mod postings;
pub mod retention;
#[cfg(test)]
pub(crate) mod testkv;

use crate::pseudonym::Pseudonym;
use zeroize::Zeroizing;

/// The index-side key `K_index` (design.md "Two layers of pseudonyms").
pub struct IndexKey {
    id: String,
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for IndexKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl IndexKey {
    /// A key from its id and secret.
    pub fn new(id: String, key: [u8; 32]) -> IndexKey {
        IndexKey {
            id,
            key: Zeroizing::new(key),
        }
    }

    /// The key id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `P2 = BLAKE3-keyed(K_index, P1)`: the only form of a pseudonym the index stores.
    pub fn rekey(&self, p1: &Pseudonym) -> model::StoredKey {
        model::StoredKey {
            kind: p1.kind.index() as u8,
            p2: *blake3::keyed_hash(&self.key, &p1.bytes).as_bytes(),
        }
    }

    /// A keyed hash for other index-internal uses (content hashes), domain-separated.
    pub fn hash(&self, context: &str, data: &[u8]) -> [u8; 32] {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        h.update(context.as_bytes());
        h.update(&[0]);
        h.update(data);
        *h.finalize().as_bytes()
    }
}
