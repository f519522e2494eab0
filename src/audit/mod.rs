//! The access log (NEN 7513 style): one entry per access to personal data, written in
//! the same transaction as the access, each committing to the one before it with a
//! BLAKE3 chain hash (issue "The access log for privacy officers").
//!
//! Keys (same keyspace as [`crate::index::engine`]):
//!
//! | prefix | key | value |
//! |---|---|---|
//! | `L` | sequence (u64 BE) | the entry's [`Sealed`] line (UTF-8 JSON, see below) |
//! | `c` | `audit` | last sequence handed out (u64 BE) |
//! | `c` | `audit_head` | chain hash of the last entry (32 bytes) |
//!
//! **Chain.** `chain_0` is 32 zero bytes; `chain_n = BLAKE3(chain_{n-1} || body_n)`,
//! where `body_n` is the entry's canonical JSON (the struct's fields in declaration
//! order, no whitespace, absent options left out) exactly as stored. The stored line
//! is `body_n` with its closing `}` replaced by `,"chain":"<64 lowercase hex>"}`, so a
//! verifier in any language recovers `body_n` by string operations alone: cut the
//! last 76 bytes (`,"chain":"` + 64 hex + `"}`) and append `}`.
//! Entries hold ids, never pseudonyms, keys, tokens or contact details.

use crate::index::engine::{EngineError, Kv, KvRead, next_counter};
use serde::{Deserialize, Serialize};

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A signal was stored (or an idempotent resubmission answered).
    Create,
    /// One object was read.
    Read,
    /// A list or lookup was read (matches, events, figures, deliveries, signal by reference).
    Search,
    /// An object was changed (renewal, follow-up step, delivery requeue).
    Update,
    /// A signal was withdrawn.
    Withdraw,
    /// Data was erased (retention).
    Erase,
    /// The access log or a report was exported.
    Export,
    /// A request without a usable token.
    LoginRefused,
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Done.
    Success,
    /// The caller's role or scope does not allow it (answered 403/404).
    Denied,
    /// The object does not exist (answered 404).
    NotFound,
    /// The request was malformed or invalid (4xx).
    Invalid,
    /// The index failed (5xx).
    Error,
}

/// The kind of object accessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectType {
    /// A signal (`sig_…`).
    Signal,
    /// A match (`m_…`).
    Match,
    /// A network's event list or stream.
    Events,
    /// A network's webhook deliveries.
    Deliveries,
    /// A network's figures.
    Figures,
    /// The access log itself.
    AccessLog,
}

/// One access, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Sequence number (1, 2, …): the entry's id and its place in the chain.
    pub seq: u64,
    /// When (unix milliseconds, server clock).
    pub at_ms: i64,
    /// What.
    pub action: Action,
    /// How it ended.
    pub outcome: Outcome,
    /// HTTP status answered.
    pub status: u16,
    /// Subject of the token (`-` when there was no usable token).
    pub actor: String,
    /// Organisation of the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// Role of the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The responsible user when a system acts for a professional (token claim `obo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
    /// Purpose of the access (token claim `purpose`), if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// Network concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Kind of object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_type: Option<ObjectType>,
    /// Public id of the object (`sig_…`, `m_…`), never a pseudonym or reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_id: Option<String>,
    /// Further objects the answer disclosed (e.g. the signals of a match read), public ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disclosed: Vec<String>,
    /// Client address (IP).
    pub client: String,
    /// Request id (also answered in the `X-Request-Id` header).
    pub request_id: String,
}

/// Key of an entry.
pub fn entry_key(seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(b'L');
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

const HEAD: &[u8] = b"caudit_head";

/// Length of the `,"chain":"<hex>"}` suffix of a stored line.
pub const CHAIN_SUFFIX_LEN: usize = 76;

/// An entry as stored: its canonical body with the chain hash appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The stored line.
    pub line: Vec<u8>,
}

impl Sealed {
    /// The canonical body (what the chain hashes).
    pub fn body(&self) -> Option<Vec<u8>> {
        if self.line.len() < CHAIN_SUFFIX_LEN + 2 {
            return None;
        }
        let mut b = self.line[..self.line.len() - CHAIN_SUFFIX_LEN].to_vec();
        b.push(b'}');
        Some(b)
    }

    /// The chain hash written in the line.
    pub fn chain(&self) -> Option<[u8; 32]> {
        let n = self.line.len();
        if n < CHAIN_SUFFIX_LEN || &self.line[n - CHAIN_SUFFIX_LEN..n - 66] != b",\"chain\":\"" {
            return None;
        }
        let hex = std::str::from_utf8(&self.line[n - 66..n - 2]).ok()?;
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        (&self.line[n - 2..] == b"\"}").then_some(out)
    }

    /// The entry.
    pub fn entry(&self) -> Option<Entry> {
        serde_json::from_slice(&self.body()?).ok()
    }
}

/// `BLAKE3(prev || body)`.
pub fn chain(prev: &[u8; 32], body: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(prev);
    h.update(body);
    *h.finalize().as_bytes()
}

/// Seals `entry` after `prev`.
pub fn seal(prev: &[u8; 32], entry: &Entry) -> Result<(Sealed, [u8; 32]), EngineError> {
    let body = serde_json::to_vec(entry).map_err(|e| EngineError::Store(e.to_string()))?;
    let c = chain(prev, &body);
    let mut line = body;
    line.pop();
    line.extend_from_slice(b",\"chain\":\"");
    for b in c {
        line.extend_from_slice(format!("{b:02x}").as_bytes());
    }
    line.extend_from_slice(b"\"}");
    Ok((Sealed { line }, c))
}

/// The chain hash of the last entry (zeros before the first).
pub fn head(kv: &dyn KvRead) -> Result<[u8; 32], EngineError> {
    match kv.get(HEAD)? {
        None => Ok([0; 32]),
        Some(v) => v
            .as_slice()
            .try_into()
            .map_err(|_| EngineError::Corrupt('c')),
    }
}

/// Appends an entry in the caller's transaction: assigns its sequence number, seals it
/// after the current head and moves the head. Returns the sequence number.
pub fn append(kv: &mut dyn Kv, mut entry: Entry) -> Result<u64, EngineError> {
    let seq = next_counter(kv, "audit")?;
    entry.seq = seq;
    let prev = head(kv)?;
    let (sealed, c) = seal(&prev, &entry)?;
    kv.put(entry_key(seq), sealed.line);
    kv.put(HEAD.to_vec(), c.to_vec());
    Ok(seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            seq: 0,
            at_ms: 1_764_000_000_000,
            action: Action::Read,
            outcome: Outcome::Success,
            status: 200,
            actor: "regie-1".into(),
            org: Some("gemeente".into()),
            role: Some("coordinator".into()),
            on_behalf_of: None,
            purpose: None,
            network: Some("n".into()),
            object_type: Some(ObjectType::Match),
            object_id: Some("m_00".into()),
            disclosed: vec![],
            client: "127.0.0.1".into(),
            request_id: "r1".into(),
        }
    }

    #[test]
    fn a_sealed_line_gives_back_its_body_and_chain() {
        let (s, c) = seal(&[0; 32], &entry()).unwrap();
        assert_eq!(s.chain(), Some(c));
        assert_eq!(s.entry(), Some(entry()));
        assert_eq!(chain(&[0; 32], &s.body().unwrap()), c);
        let text = String::from_utf8(s.line.clone()).unwrap();
        assert!(text.starts_with("{\"seq\":0,\"at_ms\":"), "{text}");
        assert!(text.ends_with(&format!(
            "\"chain\":\"{}\"}}",
            blake3::Hash::from(c).to_hex()
        )));
        let cut = Sealed {
            line: s.line[..s.line.len() - 1].to_vec(),
        };
        assert_eq!(cut.chain(), None);
    }
}
