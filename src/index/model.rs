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
    /// The index epoch its keys and content hash are in (0 before any rotation of
    /// `K_index`; spec/index-key-rotation.md).
    #[serde(default)]
    pub epoch: u32,
}

impl SignalRecord {
    /// The compact binary form stored in the database (format version 2: version 1 with
    /// the record's index epoch, u32 big-endian, after the version byte).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Vec::with_capacity(260 + 33 * (self.person.len() + self.household.len()));
        w.push(2);
        w.extend_from_slice(&self.epoch.to_be_bytes());
        w.extend_from_slice(&self.id.to_be_bytes());
        for s in [&self.public_id, &self.org, &self.network, &self.reference] {
            put_str(&mut w, s);
        }
        put_opt_str(&mut w, self.category.as_deref());
        put_str(&mut w, &self.contact.name);
        put_opt_str(&mut w, self.contact.phone.as_deref());
        put_opt_str(&mut w, self.contact.email.as_deref());
        put_str(&mut w, &self.key_id);
        w.extend_from_slice(&self.submitted_at.to_be_bytes());
        match self.renewed_at {
            Some(t) => {
                w.push(1);
                w.extend_from_slice(&t.to_be_bytes());
            }
            None => w.push(0),
        }
        w.extend_from_slice(&self.valid_until.to_be_bytes());
        match &self.state {
            SignalState::Active => w.push(0),
            SignalState::Withdrawn { reason, at } => {
                w.push(1);
                w.push(match reason {
                    WithdrawReason::ConcernOver => 0,
                    WithdrawReason::Unjustified => 1,
                });
                w.extend_from_slice(&at.to_be_bytes());
            }
        }
        w.extend_from_slice(&self.entity.to_be_bytes());
        w.extend_from_slice(&self.content_hash);
        put_keys(&mut w, &self.person);
        put_keys(&mut w, &self.household);
        w.push(self.family.len() as u8);
        for f in &self.family {
            put_keys(&mut w, f);
        }
        w
    }

    /// Decodes the binary form (version 1 is epoch 0); `None` if it is corrupt.
    pub fn decode(b: &[u8]) -> Option<SignalRecord> {
        let mut r = Reader(b);
        let epoch = match r.u8()? {
            1 => 0,
            2 => u32::from_be_bytes(r.take(4)?.try_into().ok()?),
            _ => return None,
        };
        let id = r.u64()?;
        let public_id = r.str()?;
        let org = r.str()?;
        let network = r.str()?;
        let reference = r.str()?;
        let category = r.opt_str()?;
        let contact = Contact {
            name: r.str()?,
            phone: r.opt_str()?,
            email: r.opt_str()?,
        };
        let key_id = r.str()?;
        let submitted_at = r.i64()?;
        let renewed_at = if r.u8()? == 1 { Some(r.i64()?) } else { None };
        let valid_until = r.i64()?;
        let state = match r.u8()? {
            0 => SignalState::Active,
            _ => {
                let reason = if r.u8()? == 0 {
                    WithdrawReason::ConcernOver
                } else {
                    WithdrawReason::Unjustified
                };
                SignalState::Withdrawn {
                    reason,
                    at: r.i64()?,
                }
            }
        };
        let entity = r.u64()?;
        let content_hash = r.arr32()?;
        let person = r.keys()?;
        let household = r.keys()?;
        let n = r.u8()?;
        let mut family = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            family.push(r.keys()?);
        }
        Some(SignalRecord {
            id,
            public_id,
            org,
            network,
            reference,
            category,
            contact,
            key_id,
            submitted_at,
            renewed_at,
            valid_until,
            state,
            entity,
            content_hash,
            person,
            household,
            family,
            epoch,
        })
    }

    /// The index epoch of an encoded record, without decoding the rest.
    pub fn epoch_of(b: &[u8]) -> Option<u32> {
        match b.first()? {
            1 => Some(0),
            2 => Some(u32::from_be_bytes(b.get(1..5)?.try_into().ok()?)),
            _ => None,
        }
    }

    /// Every key of the signal: person, household, then each parent's.
    pub fn all_keys(&self) -> impl Iterator<Item = &StoredKey> {
        self.person
            .iter()
            .chain(self.household.iter())
            .chain(self.family.iter().flatten())
    }

    /// Whether the signal takes part in matching at `now`.
    pub fn is_active(&self, now: i64) -> bool {
        self.state == SignalState::Active && now < self.valid_until
    }
}

/// The role a key plays in its signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// A person key of the subject.
    Person = 0,
    /// A household (address) key.
    Household = 1,
    /// A person key of a parent/guardian.
    Family = 2,
}

/// One posting: a signal holds a key, in a role, until a time (see [`super::postings`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Posting {
    /// The signal.
    pub signal: SignalId,
    /// Kind index of the key.
    pub kind: u8,
    /// Role of the key in the signal.
    pub role: Role,
    /// Validity end of the signal in minutes since the epoch, so expiry needs no record load.
    pub until_min: u32,
}

impl Posting {
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

/// Event types of alerts.
pub mod event {
    /// A match reached a network's threshold (first alert of the network on it).
    pub const FORMED: &str = "match.formed";
    /// An organisation joined a match the network was already alerted on.
    pub const JOINED: &str = "match.organisation_joined";
    /// A new signal arrived on a match the network's coordinator had closed.
    pub const REOPENED: &str = "match.reopened";
    /// A follow-up deadline passed (`deadline` says which).
    pub const ESCALATED: &str = "match.escalated";
    /// The coordinator recorded a follow-up step.
    pub const FOLLOWED_UP: &str = "match.followed_up";
    /// Signals left the match (withdrawn, expired) so that fewer organisations than the
    /// network's threshold remain: the index closed the network's follow-up with reason
    /// `withdrawn` (`organisations_left` says whose signals went).
    pub const DISSOLVED: &str = "match.dissolved";
}

/// An alert in the outbox: one event of one match for one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Outbox sequence number (global, increasing; the event stream's `id`).
    pub seq: u64,
    /// Stable event id for de-duplication by receivers.
    pub event_id: String,
    /// One of [`event`].
    pub event: String,
    /// The match.
    pub match_id: u64,
    /// Recipient network.
    pub network: String,
    /// Organisations that joined with this event.
    pub new_orgs: Vec<String>,
    /// When (unix seconds).
    pub at: i64,
    /// For `match.escalated`: the deadline that passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Deadline>,
    /// For `match.dissolved`: the organisations of the network whose signals left.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_orgs: Vec<String>,
}

/// The two follow-up deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Deadline {
    /// To acknowledge a new or reopened match.
    Acknowledge,
    /// To reach a decision: consent given or refused, or the match closed.
    Decision,
}

impl Deadline {
    /// Byte used in the deadline index.
    pub fn code(self) -> u8 {
        match self {
            Deadline::Acknowledge => b'a',
            Deadline::Decision => b'd',
        }
    }

    /// Inverse of [`Deadline::code`].
    pub fn from_code(b: u8) -> Option<Deadline> {
        match b {
            b'a' => Some(Deadline::Acknowledge),
            b'd' => Some(Deadline::Decision),
            _ => None,
        }
    }
}

/// Stage of a network's follow-up of a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Formed or reopened, not yet acknowledged.
    New,
    /// The coordinator has picked it up.
    Acknowledged,
    /// One of the organisations is asking the client for consent.
    ConsentAsked,
    /// The client consented.
    ConsentGiven,
    /// The client refused.
    ConsentRefused,
    /// A case meeting is planned.
    MeetingPlanned,
    /// Closed with a reason.
    Closed,
}

/// Why a match was closed (a fixed list: the index holds *that*, never *what*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// Care is in place.
    CareInPlace,
    /// The client refused consent.
    ConsentRefused,
    /// On closer look there is no concern.
    NoConcern,
    /// The client moved out of the region.
    MovedOutOfRegion,
    /// Handed over to Veilig Thuis.
    HandedToVeiligThuis,
    /// Handed over to another network or the municipality's own case management.
    HandedOver,
    /// The signals that made the match left it (set by the index, not by a coordinator).
    Withdrawn,
}

impl CloseReason {
    /// Every reason, in the order of the documentation.
    pub const ALL: [CloseReason; 7] = [
        CloseReason::CareInPlace,
        CloseReason::ConsentRefused,
        CloseReason::NoConcern,
        CloseReason::MovedOutOfRegion,
        CloseReason::HandedToVeiligThuis,
        CloseReason::HandedOver,
        CloseReason::Withdrawn,
    ];
}

/// One recorded step of a follow-up: who did what when (no free text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// `formed`, `reopened`, `acknowledge`, `choose_lead`, `ask_consent`,
    /// `consent_given`, `consent_refused`, `plan_meeting`, `close`, `escalated`.
    pub action: String,
    /// Stage after the step.
    pub stage: Stage,
    /// Subject of the coordinator (`index` for the index itself).
    pub by: String,
    /// On behalf of (from the token), if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
    /// When (unix seconds).
    pub at: i64,
    /// `choose_lead`: the organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation: Option<String>,
    /// `plan_meeting`: the date (`YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// `close`: the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<CloseReason>,
    /// `escalated`: the deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Deadline>,
}

/// One network's follow-up of a match (each network's coordinator follows up its own
/// part of a match that spans networks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowUp {
    /// Stage.
    pub stage: Stage,
    /// True from formation, a join or a reopening until the coordinator acknowledges
    /// (the "unacknowledged" filter of the match list).
    pub unacknowledged: bool,
    /// Lead organisation ("regievoerder").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead: Option<String>,
    /// Planned case meeting (`YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meeting_on: Option<String>,
    /// Closing reason while closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_reason: Option<CloseReason>,
    /// Start of the current round (formed or reopened), unix seconds.
    pub opened_at: i64,
    /// When the current round was first acknowledged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<i64>,
    /// When the current round reached a decision (consent given/refused or closed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<i64>,
    /// Deadline to acknowledge (unix seconds), while not yet acknowledged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledge_due: Option<i64>,
    /// Deadline to decide (unix seconds), while undecided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_due: Option<i64>,
    /// Deadlines of the current round that have passed (and were escalated).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overdue: Vec<Deadline>,
    /// Every step, oldest first.
    pub history: Vec<Step>,
}

impl FollowUp {
    /// Whether a deadline of the current round has passed unmet.
    pub fn is_overdue(&self) -> bool {
        !self.overdue.is_empty()
    }
}

/// What a partner sees about one of its own signals, set only by coordinator actions
/// taken while the signal was part of the match (the no-oracle rule: a signal on which
/// no coordinator has acted looks exactly like one that never matched).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Feedback {
    /// A coordinator has picked up a match this signal is part of.
    PickedUp {
        /// When (unix seconds).
        at: i64,
    },
    /// The coordinator closed it.
    Closed {
        /// The reason.
        reason: CloseReason,
        /// When (unix seconds).
        at: i64,
    },
}

fn put_str(w: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    let n = b.len().min(u16::MAX as usize);
    w.extend_from_slice(&(n as u16).to_be_bytes());
    w.extend_from_slice(&b[..n]);
}

fn put_opt_str(w: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            w.push(1);
            put_str(w, s);
        }
        None => w.push(0),
    }
}

fn put_keys(w: &mut Vec<u8>, keys: &[StoredKey]) {
    w.push(keys.len() as u8);
    for k in keys {
        w.push(k.kind);
        w.extend_from_slice(&k.p2);
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    fn arr32(&mut self) -> Option<[u8; 32]> {
        self.take(32)?.try_into().ok()
    }
    fn str(&mut self) -> Option<String> {
        let n = u16::from_be_bytes(self.take(2)?.try_into().ok()?);
        String::from_utf8(self.take(usize::from(n))?.to_vec()).ok()
    }
    fn opt_str(&mut self) -> Option<Option<String>> {
        Some(if self.u8()? == 1 {
            Some(self.str()?)
        } else {
            None
        })
    }
    fn keys(&mut self) -> Option<Vec<StoredKey>> {
        let n = self.u8()?;
        let mut out = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            let kind = self.u8()?;
            out.push(StoredKey {
                kind,
                p2: self.arr32()?,
            });
        }
        Some(out)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_record_round_trips_and_rejects_corruption() {
        let rec = SignalRecord {
            id: 7,
            public_id: "sig_x".into(),
            org: "o".into(),
            network: "n".into(),
            reference: "R-1".into(),
            category: Some("overlast".into()),
            contact: Contact {
                name: "Team".into(),
                phone: None,
                email: Some("a@b.nl".into()),
            },
            key_id: "dev".into(),
            submitted_at: 1,
            renewed_at: Some(2),
            valid_until: 3,
            state: SignalState::Withdrawn {
                reason: WithdrawReason::Unjustified,
                at: 4,
            },
            entity: 5,
            content_hash: [6; 32],
            person: vec![
                StoredKey {
                    kind: 0,
                    p2: [1; 32],
                },
                StoredKey {
                    kind: 2,
                    p2: [2; 32],
                },
            ],
            household: vec![StoredKey {
                kind: 10,
                p2: [3; 32],
            }],
            family: vec![vec![StoredKey {
                kind: 0,
                p2: [4; 32],
            }]],
            epoch: 3,
        };
        let bytes = rec.encode();
        assert_eq!(bytes[0], 2);
        assert_eq!(SignalRecord::epoch_of(&bytes), Some(3));
        assert_eq!(SignalRecord::decode(&bytes), Some(rec.clone()));
        assert_eq!(SignalRecord::decode(&bytes[..bytes.len() - 1]), None);
        let mut wrong_version = bytes.clone();
        wrong_version[0] = 9;
        assert_eq!(SignalRecord::decode(&wrong_version), None);
    }

    #[test]
    fn a_version_1_record_decodes_as_epoch_0() {
        let rec = SignalRecord {
            id: 9,
            public_id: "sig_y".into(),
            org: "o".into(),
            network: "n".into(),
            reference: "R-2".into(),
            category: None,
            contact: Contact {
                name: "T".into(),
                phone: None,
                email: None,
            },
            key_id: "dev".into(),
            submitted_at: 1,
            renewed_at: None,
            valid_until: 3,
            state: SignalState::Active,
            entity: 9,
            content_hash: [6; 32],
            person: vec![StoredKey {
                kind: 0,
                p2: [1; 32],
            }],
            household: vec![],
            family: vec![],
            epoch: 0,
        };
        // Version 1 is version 2 without the epoch field.
        let v2 = rec.encode();
        let mut v1 = vec![1u8];
        v1.extend_from_slice(&v2[5..]);
        assert_eq!(SignalRecord::epoch_of(&v1), Some(0));
        assert_eq!(SignalRecord::decode(&v1), Some(rec.clone()));
        assert_eq!(SignalRecord::decode(&v2), Some(rec));
    }
}
