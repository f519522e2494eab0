//! An in-memory [`Kv`] for unit tests.

use super::engine::{EngineError, Entry, Kv, KvRead};
use super::model::{Posting, SignalId};
use super::postings::PostingIndex;
use std::collections::BTreeMap;

/// The keyspace in a map, the posting lists in a [`PostingIndex`].
#[derive(Default)]
pub struct Mem(pub BTreeMap<Vec<u8>, Vec<u8>>, pub PostingIndex);
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
