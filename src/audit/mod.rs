//! The access log (NEN 7513 style): one entry per access to personal data, written in
//! the same transaction as the access, each committing to the one before it with a
//! BLAKE3 chain hash. The normative description is `spec/access-log.md`.
//!
//! Keys (same keyspace as [`crate::index::engine`]):
//!
//! | prefix | key | value |
//! |---|---|---|
//! | `L` | sequence (u64 BE) | the entry's sealed line (UTF-8 JSON, see below) |
//! | `U` | actor 0 sequence | empty: the entries of one actor (per-user view) |
//! | `O` | object id 0 sequence | empty: the entries that name an object (`object_id` or `related`) |
//! | `K` | sequence (u64 BE) | a [`checkpoint::Checkpoint`] (JSON) over the chain up to that entry |
//! | `c` | `audit` | last sequence handed out (u64 BE) |
//! | `c` | `audit_head` | chain hash of the last entry (32 bytes) and its time (i64 BE ms) |
//!
//! **Chain.** `chain_0` is 32 zero bytes;
//! `chain_n = BLAKE3(chain_{n-1} || u64be(n) || BLAKE3(body_n))`, where `body_n` is the
//! entry's canonical JSON exactly as stored. Hashing the body's hash (rather than the
//! body) lets an export replace entries outside the reader's scope by their body hash
//! and still be verified end to end. The stored line is `body_n` with its closing `}`
//! replaced by `,"chain":"<64 lowercase hex>"}`, so a verifier in any language recovers
//! `body_n` by string operations alone: cut the last 76 bytes and append `}`.
//!
//! **Time.** Entries are appended by the one writer thread, and an entry's `at_ms` is
//! never before its predecessor's (a clock that steps back repeats the last time), so
//! the sequence is also the time order and a time range is a sequence range.
//!
//! Entries hold ids, never pseudonyms, keys, tokens or contact details.

pub mod checkpoint;
pub mod export;
pub mod query;
pub mod subject;
pub mod verify;

use crate::index::engine::{EngineError, Kv, KvRead};
use serde::{Deserialize, Serialize};

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A signal was stored (or an idempotent resubmission answered); a checkpoint made.
    Create,
    /// One object was read.
    Read,
    /// A list, lookup or search was read (matches, events, figures, deliveries, the log).
    Search,
    /// An object was changed (renewal, follow-up step, delivery requeue).
    Update,
    /// A signal was withdrawn.
    Withdraw,
    /// Data was erased (retention).
    Erase,
    /// The access log was exported.
    Export,
    /// A request without a usable token.
    LoginRefused,
    /// A data-subject access request (GDPR art. 15) was answered.
    SubjectAccess,
    /// An alert was sent to a coordinator's webhook receiver (every attempt).
    Deliver,
    /// Signals went to the archive (they expired).
    Archive,
}

impl Action {
    /// Every action, in declaration order.
    pub const ALL: [Action; 11] = [
        Action::Create,
        Action::Read,
        Action::Search,
        Action::Update,
        Action::Withdraw,
        Action::Erase,
        Action::Export,
        Action::LoginRefused,
        Action::SubjectAccess,
        Action::Deliver,
        Action::Archive,
    ];

    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Read => "read",
            Action::Search => "search",
            Action::Update => "update",
            Action::Withdraw => "withdraw",
            Action::Erase => "erase",
            Action::Export => "export",
            Action::LoginRefused => "login_refused",
            Action::SubjectAccess => "subject_access",
            Action::Deliver => "deliver",
            Action::Archive => "archive",
        }
    }

    /// The action of a wire name.
    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == s)
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Done.
    Success,
    /// The caller had no valid token, or its role or scope does not allow it (answered
    /// 401, 403, or 404 for an object that exists outside the caller's scope).
    Denied,
    /// The object does not exist (answered 404).
    NotFound,
    /// The request was malformed or invalid (another 4xx).
    Invalid,
    /// The index failed or could not take the write (5xx).
    Error,
}

impl Outcome {
    /// Every outcome, in declaration order.
    pub const ALL: [Outcome; 5] = [
        Outcome::Success,
        Outcome::Denied,
        Outcome::NotFound,
        Outcome::Invalid,
        Outcome::Error,
    ];

    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::NotFound => "not_found",
            Outcome::Invalid => "invalid",
            Outcome::Error => "error",
        }
    }

    /// The outcome of a wire name.
    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.name() == s)
    }

    /// The outcome of an HTTP status; `scope_denied`: a 404 for an object that exists
    /// outside the caller's scope.
    pub fn of_status(status: u16, scope_denied: bool) -> Outcome {
        match status {
            200..=399 => Outcome::Success,
            401 | 403 => Outcome::Denied,
            404 if scope_denied => Outcome::Denied,
            404 => Outcome::NotFound,
            400..=499 => Outcome::Invalid,
            _ => Outcome::Error,
        }
    }
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
    /// A checkpoint of the access log.
    Checkpoint,
    /// A person, found by the key set of a data-subject access request.
    Person,
    /// A member organisation (admin changes).
    Organisation,
    /// A network's settings (admin changes).
    Network,
    /// An entry of the excluded-address list (`exa_…`).
    ExcludedAddress,
    /// A domain key id (accepted or retired).
    DomainKey,
}

/// One access, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Sequence number (1, 2, …): the entry's id and its place in the chain.
    pub seq: u64,
    /// When (unix milliseconds, server clock; never before the previous entry).
    pub at_ms: i64,
    /// What.
    pub action: Action,
    /// How it ended.
    pub outcome: Outcome,
    /// HTTP status answered (for a webhook delivery attempt: the receiver's, 0 when it
    /// gave no HTTP answer).
    pub status: u16,
    /// The operation: method and route template (`GET /v1/signals/{id}`), or
    /// `webhook POST` for a delivery.
    pub operation: String,
    /// Subject of the token (`-` when there was no usable token; `samenloop` for the
    /// index itself).
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
    /// The networks of the token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actor_networks: Vec<String>,
    /// Network of the object concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Kind of object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_type: Option<ObjectType>,
    /// Public id of the object (`sig_…`, `m_…`), never a pseudonym or a reference; only
    /// ids of objects that exist (a guessed id is not recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_id: Option<String>,
    /// Further objects the request disclosed or changed (the signals shown with a match,
    /// the matches of a list, the signals of a batch), public ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<String>,
    /// Client address (IP), or the receiver's host for a webhook delivery.
    pub client: String,
    /// Request id (also answered in the `X-Request-Id` header).
    pub request_id: String,
}

impl Entry {
    /// An entry for something the index did itself (actor `samenloop`, no token), with
    /// `operation`, the object kind, a successful status and no objects yet.
    pub fn by_index(
        action: Action,
        operation: &str,
        object_type: ObjectType,
        at_ms: i64,
        request_id: String,
    ) -> Entry {
        Entry {
            seq: 0,
            at_ms,
            action,
            outcome: Outcome::Success,
            status: 200,
            operation: operation.to_string(),
            actor: "samenloop".into(),
            org: None,
            role: None,
            on_behalf_of: None,
            purpose: None,
            actor_networks: Vec::new(),
            network: None,
            object_type: Some(object_type),
            object_id: None,
            related: Vec::new(),
            client: "-".into(),
            request_id,
        }
    }

    /// Every object id the entry names (`object_id`, then `related`), without repeats.
    pub fn objects(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::with_capacity(1 + self.related.len());
        for id in self.object_id.iter().chain(self.related.iter()) {
            if !out.contains(&id.as_str()) {
                out.push(id);
            }
        }
        out
    }
}

/// Who may read which entries: a privacy officer sees the entries of its networks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Everything (the offline tools of the operator).
    All,
    /// The entries whose object's network is one of these; of the entries that concern
    /// no network's object, those whose actor acts in one of these networks (or in
    /// none: refused requests without a usable token concern every network's security).
    /// What a user of two networks did in the other network is that network's.
    Networks(Vec<String>),
}

impl Scope {
    /// Whether the scope covers `e`.
    pub fn sees(&self, e: &Entry) -> bool {
        match self {
            Scope::All => true,
            Scope::Networks(nets) => {
                let has = |n: &String| nets.iter().any(|x| x == n);
                match &e.network {
                    Some(n) => has(n),
                    None => e.actor_networks.is_empty() || e.actor_networks.iter().any(has),
                }
            }
        }
    }
}

/// Key of an entry.
pub fn entry_key(seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(b'L');
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The sequence number of an entry key.
pub fn seq_of_entry_key(k: &[u8]) -> Option<u64> {
    (k.len() == 9 && k[0] == b'L').then(|| u64::from_be_bytes(k[1..9].try_into().unwrap_or([0; 8])))
}

fn index_key(prefix: u8, id: &str, seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(10 + id.len());
    k.push(prefix);
    k.extend_from_slice(id.as_bytes());
    k.push(0);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// Prefix of the per-actor index of `actor`.
pub fn actor_prefix(actor: &str) -> Vec<u8> {
    let mut k = index_key(b'U', actor, 0);
    k.truncate(k.len() - 8);
    k
}

/// Prefix of the per-object index of `id`.
pub fn object_prefix(id: &str) -> Vec<u8> {
    let mut k = index_key(b'O', id, 0);
    k.truncate(k.len() - 8);
    k
}

/// The sequence number at the end of an index key.
pub fn seq_of_index_key(k: &[u8]) -> Option<u64> {
    let n = k.len();
    (n >= 9).then(|| u64::from_be_bytes(k[n - 8..].try_into().unwrap_or([0; 8])))
}

/// The counter of sequence numbers (`c` `audit`).
pub const COUNTER_KEY: &[u8] = b"caudit";
const HEAD_KEY: &[u8] = b"caudit_head";

/// Length of the `,"chain":"<hex>"}` suffix of a stored line.
pub const CHAIN_SUFFIX_LEN: usize = 76;

/// `BLAKE3(body)`.
pub fn body_hash(body: &[u8]) -> [u8; 32] {
    *blake3::hash(body).as_bytes()
}

/// `BLAKE3(prev || u64be(seq) || body_hash)`.
pub fn link(prev: &[u8; 32], seq: u64, body_hash: &[u8; 32]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(prev);
    h.update(&seq.to_be_bytes());
    h.update(body_hash);
    *h.finalize().as_bytes()
}

/// Lowercase hex of 32 bytes.
pub fn hex(b: &[u8; 32]) -> String {
    blake3::Hash::from(*b).to_hex().to_string()
}

/// 32 bytes from 64 hex digits.
pub fn unhex(s: &str) -> Option<[u8; 32]> {
    blake3::Hash::from_hex(s).ok().map(|h| *h.as_bytes())
}

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
        if &self.line[n - 2..] != b"\"}" {
            return None;
        }
        let hex = std::str::from_utf8(&self.line[n - 66..n - 2]).ok()?;
        // Only lowercase hex is canonical.
        if hex.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        unhex(hex)
    }

    /// The entry.
    pub fn entry(&self) -> Option<Entry> {
        serde_json::from_slice(&self.body()?).ok()
    }

    /// The time of the entry, read from the start of the line without parsing it all
    /// (`{"seq":N,"at_ms":M,…`).
    pub fn at_ms(&self) -> Option<i64> {
        let rest = self.line.strip_prefix(b"{\"seq\":")?;
        let comma = rest.iter().position(|&b| b == b',')?;
        let rest = rest[comma..].strip_prefix(b",\"at_ms\":")?;
        let end = rest.iter().position(|&b| b == b',')?;
        std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
    }
}

/// Seals `entry` after `prev`.
pub fn seal(prev: &[u8; 32], entry: &Entry) -> Result<(Sealed, [u8; 32]), EngineError> {
    let body = serde_json::to_vec(entry).map_err(|e| EngineError::Store(e.to_string()))?;
    let c = link(prev, entry.seq, &body_hash(&body));
    let mut line = body;
    line.pop();
    line.extend_from_slice(b",\"chain\":\"");
    line.extend_from_slice(hex(&c).as_bytes());
    line.extend_from_slice(b"\"}");
    Ok((Sealed { line }, c))
}

/// The end of the chain: the last entry's sequence, chain hash and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Sequence of the last entry (0 before the first).
    pub seq: u64,
    /// Its chain hash (zeros before the first).
    pub chain: [u8; 32],
    /// Its time (0 before the first).
    pub at_ms: i64,
}

/// The end of the chain.
pub fn head(kv: &dyn KvRead) -> Result<Head, EngineError> {
    let seq = match kv.get(COUNTER_KEY)? {
        None => 0,
        Some(v) => u64::from_be_bytes(
            v.as_slice()
                .try_into()
                .map_err(|_| EngineError::Corrupt('c'))?,
        ),
    };
    match kv.get(HEAD_KEY)? {
        None => Ok(Head {
            seq,
            chain: [0; 32],
            at_ms: 0,
        }),
        Some(v) if v.len() == 40 => Ok(Head {
            seq,
            chain: v[..32].try_into().map_err(|_| EngineError::Corrupt('c'))?,
            at_ms: i64::from_be_bytes(v[32..].try_into().map_err(|_| EngineError::Corrupt('c'))?),
        }),
        Some(_) => Err(EngineError::Corrupt('c')),
    }
}

/// Appends an entry in the caller's transaction: assigns its sequence number and time
/// (`entry.at_ms`, or the previous entry's if that is later), seals it after the
/// current head, writes its index keys and moves the head. Returns the sequence number.
/// Only [`Kv::put_log`] is used, so a request that writes nothing but its log entry
/// can still be logged while the disk is low (see [`crate::store::Writer::start`]).
pub fn append(kv: &mut dyn Kv, mut entry: Entry) -> Result<u64, EngineError> {
    let h = head(kv)?;
    let seq = h.seq + 1;
    entry.seq = seq;
    entry.at_ms = entry.at_ms.max(h.at_ms);
    let (sealed, c) = seal(&h.chain, &entry)?;
    kv.put_log(entry_key(seq), sealed.line);
    kv.put_log(index_key(b'U', &entry.actor, seq), Vec::new());
    for id in entry.objects() {
        kv.put_log(index_key(b'O', id, seq), Vec::new());
    }
    kv.put_log(COUNTER_KEY.to_vec(), seq.to_be_bytes().to_vec());
    let mut hv = c.to_vec();
    hv.extend_from_slice(&entry.at_ms.to_be_bytes());
    kv.put_log(HEAD_KEY.to_vec(), hv);
    Ok(seq)
}

/// Prunes up to `max` of the oldest entries dated before `cutoff_ms` (the end of the
/// log's retention period), with their index keys, behind a checkpoint: the chain hash
/// of the last pruned entry is stored (signed) as a checkpoint at its sequence first, so
/// that what remains verifies from it (`spec/access-log.md` §6). The newest entry is
/// never pruned. Returns how many were pruned and the checkpoint's sequence.
pub fn prune(
    kv: &mut dyn Kv,
    domain: &str,
    signer: Option<&checkpoint::Signer>,
    cutoff_ms: i64,
    now_secs: i64,
    max: usize,
) -> Result<(usize, Option<u64>), EngineError> {
    let h = head(kv)?;
    let mut last: Option<(u64, [u8; 32])> = None;
    let mut n = 0;
    for (k, v) in kv.range(&entry_key(0), &entry_key(u64::MAX), max)? {
        let Some(seq) = seq_of_entry_key(&k) else {
            break;
        };
        let sealed = Sealed { line: v };
        let (Some(at), Some(chain)) = (sealed.at_ms(), sealed.chain()) else {
            // A broken entry stays for the verifier to report.
            break;
        };
        if at >= cutoff_ms || seq >= h.seq {
            break;
        }
        if let Some(e) = sealed.entry() {
            kv.remove(index_key(b'U', &e.actor, seq));
            for id in e.objects() {
                kv.remove(index_key(b'O', id, seq));
            }
        }
        kv.remove(k);
        last = Some((seq, chain));
        n += 1;
    }
    let Some((seq, chain)) = last else {
        return Ok((0, None));
    };
    if kv.get(&checkpoint::checkpoint_key(seq))?.is_none() {
        let at = Head {
            seq,
            chain,
            at_ms: 0,
        };
        let cp = checkpoint::of_head(&at, domain, now_secs, signer).map_err(EngineError::Store)?;
        let v = serde_json::to_vec(&cp).map_err(|e| EngineError::Store(e.to_string()))?;
        kv.put_log(checkpoint::checkpoint_key(seq), v);
    }
    Ok((n, Some(seq)))
}

/// Unix milliseconds of the system clock.
pub fn system_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// RFC 3339 UTC text of unix milliseconds (`2026-11-25T10:15:02.123Z`).
pub fn rfc3339_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let s = crate::http::rfc3339(secs);
    format!("{}.{:03}Z", &s[..s.len() - 1], ms.rem_euclid(1000))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::index::testkv::Mem;

    pub(crate) fn entry() -> Entry {
        Entry {
            seq: 0,
            at_ms: 1_764_000_000_000,
            action: Action::Read,
            outcome: Outcome::Success,
            status: 200,
            operation: "GET /v1/matches/{handle}".into(),
            actor: "regie-1".into(),
            org: Some("gemeente".into()),
            role: Some("coordinator".into()),
            on_behalf_of: None,
            purpose: None,
            actor_networks: vec!["n".into()],
            network: Some("n".into()),
            object_type: Some(ObjectType::Match),
            object_id: Some("m_00".into()),
            related: vec!["sig_1".into(), "m_00".into()],
            client: "127.0.0.1".into(),
            request_id: "r1".into(),
        }
    }

    #[test]
    fn a_sealed_line_gives_back_its_body_chain_and_time() {
        let (s, c) = seal(&[0; 32], &entry()).unwrap();
        assert_eq!(s.chain(), Some(c));
        assert_eq!(s.entry(), Some(entry()));
        assert_eq!(s.at_ms(), Some(1_764_000_000_000));
        assert_eq!(link(&[0; 32], 0, &body_hash(&s.body().unwrap())), c);
        let text = String::from_utf8(s.line.clone()).unwrap();
        assert!(text.starts_with("{\"seq\":0,\"at_ms\":"), "{text}");
        assert!(text.ends_with(&format!("\"chain\":\"{}\"}}", hex(&c))));
        let cut = Sealed {
            line: s.line[..s.line.len() - 1].to_vec(),
        };
        assert_eq!(cut.chain(), None);
        let upper = Sealed {
            line: text.replace(&hex(&c), &hex(&c).to_uppercase()).into_bytes(),
        };
        assert_eq!(upper.chain(), None);
    }

    #[test]
    fn append_chains_indexes_and_never_goes_back_in_time() {
        let mut kv = Mem::default();
        let s1 = append(&mut kv, entry()).unwrap();
        let mut e2 = entry();
        e2.at_ms -= 5_000;
        e2.actor = "other".into();
        let s2 = append(&mut kv, e2).unwrap();
        assert_eq!((s1, s2), (1, 2));
        let l1 = Sealed {
            line: kv.get(&entry_key(1)).unwrap().unwrap(),
        };
        let l2 = Sealed {
            line: kv.get(&entry_key(2)).unwrap().unwrap(),
        };
        assert_eq!(l2.entry().unwrap().at_ms, 1_764_000_000_000);
        let c1 = link(&[0; 32], 1, &body_hash(&l1.body().unwrap()));
        assert_eq!(l1.chain(), Some(c1));
        let c2 = link(&c1, 2, &body_hash(&l2.body().unwrap()));
        assert_eq!(l2.chain(), Some(c2));
        let h = head(&kv).unwrap();
        assert_eq!((h.seq, h.chain), (2, c2));
        // Index keys: one per actor entry, one per distinct object.
        assert_eq!(kv.scan_prefix(&actor_prefix("regie-1")).unwrap().len(), 1);
        assert_eq!(kv.scan_prefix(&object_prefix("m_00")).unwrap().len(), 2);
        assert_eq!(kv.scan_prefix(&object_prefix("sig_1")).unwrap().len(), 2);
        assert_eq!(seq_of_entry_key(&entry_key(7)), Some(7));
    }

    #[test]
    fn scope_of_a_privacy_officer() {
        let s = Scope::Networks(vec!["n".into()]);
        let mut e = entry();
        assert!(s.sees(&e));
        e.network = Some("m".into());
        assert!(
            !s.sees(&e),
            "an actor of the network, acting in another one"
        );
        e.network = None;
        assert!(
            s.sees(&e),
            "an actor of the network, on no network's object"
        );
        e.actor_networks = vec!["m".into()];
        assert!(!s.sees(&e));
        e.actor_networks.clear();
        assert!(s.sees(&e), "a refused request without a network");
        assert_eq!(Outcome::of_status(404, true), Outcome::Denied);
        assert_eq!(Outcome::of_status(404, false), Outcome::NotFound);
        assert_eq!(Outcome::of_status(507, false), Outcome::Error);
        assert_eq!(Action::parse("login_refused"), Some(Action::LoginRefused));
    }

    #[test]
    fn time_has_millisecond_text() {
        assert_eq!(rfc3339_ms(1_764_000_000_123), "2025-11-24T16:00:00.123Z");
    }
}
