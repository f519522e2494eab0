//! Records of the index and their byte encodings.

use serde::{Deserialize, Serialize};

/// Internal numeric id of a signal (never shown to callers).
pub type SignalId = u64;

/// Why a partner withdrew a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WithdrawReason {
    /// The concern is over; the signal is archived (retention issue) and stops matching.
    ConcernOver,
    /// The signal should never have been made; it is erased (retention issue) and stops matching.
    Unjustified,
}

/// State of a signal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SignalState {
    /// Matching until `valid_until`.
    Active,
    /// Withdrawn by the partner.
    Withdrawn {
        /// Why.
        reason: WithdrawReason,
        /// When (unix seconds).
        at: i64,
    },
}

/// The contact point of the professional or team handling the signal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// Team or function name ("Wijkteam Noord", "casemanager huurachterstand").
    pub name: String,
    /// Phone number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// E-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// One index-side key: `BLAKE3-keyed(K_index, P1)` and its kind code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredKey {
    /// Kind index (`KeyKind::index`).
    pub kind: u8,
    /// The re-keyed pseudonym P2.
    #[serde(with = "hex32")]
    pub p2: [u8; 32],
}

/// A stored signal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalRecord {
    /// Internal id.
    pub id: SignalId,
    /// Opaque public id.
    pub public_id: String,
    /// Submitting organisation (from the token).
    pub org: String,
    /// Network.
    pub network: String,
    /// The partner's reference.
    pub reference: String,
    /// Category from the network's list.
    pub category: Option<String>,
    /// Contact point.
    pub contact: Contact,
    /// Domain key id of the key set.
    pub key_id: String,
    /// Submitted (unix seconds).
    pub submitted_at: i64,
    /// Last renewed (unix seconds).
    pub renewed_at: Option<i64>,
    /// Valid until (unix seconds, exclusive).
    pub valid_until: i64,
    /// State.
    pub state: SignalState,
    /// Person entity it belongs to.
    pub entity: u64,
    /// BLAKE3 of the submitted content, for idempotent resubmission.
    #[serde(with = "hex32")]
    pub content_hash: [u8; 32],
    /// Person keys.
    pub person: Vec<StoredKey>,
    /// Household keys.
    pub household: Vec<StoredKey>,
    /// Family keys per parent.
    pub family: Vec<Vec<StoredKey>>,
}

impl SignalRecord {
    /// Whether the signal takes part in matching at `now`.
    pub fn is_active(&self, now: i64) -> bool {
        self.state == SignalState::Active && now < self.valid_until
    }
}

/// The role a key plays in its signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A person key of the subject.
    Person = 0,
    /// A household (address) key.
    Household = 1,
    /// A person key of a parent/guardian.
    Family = 2,
}

/// One entry of a key's posting list (14 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Posting {
    /// The signal.
    pub signal: SignalId,
    /// Kind index of the key.
    pub kind: u8,
    /// Role of the key in the signal.
    pub role: Role,
    /// Validity end of the signal, unix seconds / 60 (minutes), so expiry needs no record load.
    pub until_min: u32,
}

impl Posting {
    const LEN: usize = 14;

    /// Decodes a posting list.
    pub fn decode_list(bytes: &[u8]) -> Vec<Posting> {
        bytes
            .chunks_exact(Self::LEN)
            .map(|c| Posting {
                signal: u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]),
                kind: c[8],
                role: match c[9] {
                    0 => Role::Person,
                    1 => Role::Household,
                    _ => Role::Family,
                },
                until_min: u32::from_be_bytes([c[10], c[11], c[12], c[13]]),
            })
            .collect()
    }

    /// Encodes a posting list.
    pub fn encode_list(list: &[Posting]) -> Vec<u8> {
        let mut out = Vec::with_capacity(list.len() * Self::LEN);
        for p in list {
            out.extend_from_slice(&p.signal.to_be_bytes());
            out.push(p.kind);
            out.push(p.role as u8);
            out.extend_from_slice(&p.until_min.to_be_bytes());
        }
        out
    }

    /// Whether the posting's signal is still valid at `now`.
    pub fn valid_at(&self, now: i64) -> bool {
        i64::from(self.until_min) * 60 > now
    }
}

/// One member of a person entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The signal.
    pub signal: SignalId,
    /// Its organisation.
    pub org: String,
    /// Its network.
    pub network: String,
    /// Its validity end.
    pub valid_until: i64,
    /// False once withdrawn.
    pub active: bool,
}

impl Member {
    /// Whether the member counts at `now`.
    pub fn counts(&self, now: i64) -> bool {
        self.active && now < self.valid_until
    }
}

/// A person entity: signals linked by person keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityRecord {
    /// Members.
    pub members: Vec<Member>,
    /// Household it belongs to.
    pub household: u64,
}

/// A household: person entities linked by address or family keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HouseholdRecord {
    /// Entities.
    pub entities: Vec<u64>,
    /// Whether any link in it is a family (parent/child, sibling) link.
    pub family: bool,
}

/// Kind of match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    /// Signals on one person.
    Person,
    /// Signals on people at one address.
    Household,
    /// Signals on a child and its parents, or on siblings.
    Family,
}

/// State of a match (the follow-up workflow extends this).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchStatus {
    /// Formed, not yet acted on.
    Open,
    /// Folded into another match when their entities merged.
    Merged,
}

/// A match ("samenloop").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchRecord {
    /// Internal id.
    pub id: u64,
    /// Opaque public handle.
    pub handle: String,
    /// Kind.
    pub kind: MatchKind,
    /// Status.
    pub status: MatchStatus,
    /// Entity (person) or household id.
    pub scope: u64,
    /// Formed (unix seconds).
    pub created_at: i64,
    /// Last changed (unix seconds).
    pub updated_at: i64,
    /// Organisations ever alerted on, in order of joining.
    pub orgs: Vec<String>,
    /// Networks whose coordinator was alerted.
    pub networks: Vec<String>,
    /// The match it was merged into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<u64>,
}

/// An alert in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Outbox sequence number.
    pub seq: u64,
    /// Stable event id for de-duplication by receivers.
    pub event_id: String,
    /// `match.formed` or `match.organisation_joined`.
    pub event: String,
    /// The match.
    pub match_id: u64,
    /// Recipient network.
    pub network: String,
    /// Organisations that joined with this event.
    pub new_orgs: Vec<String>,
    /// When (unix seconds).
    pub at: i64,
}

/// Serde helper: 32 bytes as hex.
pub mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialises as lowercase hex.
    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        let mut out = String::with_capacity(64);
        for b in v {
            out.push_str(&format!("{b:02x}"));
        }
        s.serialize_str(&out)
    }

    /// Parses lowercase hex.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        let b = s.as_bytes();
        if b.len() != 64 {
            return Err(serde::de::Error::custom("expected 64 hex digits"));
        }
        let mut out = [0u8; 32];
        for (i, pair) in b.chunks(2).enumerate() {
            let hi = (pair[0] as char)
                .to_digit(16)
                .ok_or_else(|| serde::de::Error::custom("hex"))?;
            let lo = (pair[1] as char)
                .to_digit(16)
                .ok_or_else(|| serde::de::Error::custom("hex"))?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Ok(out)
    }
}
