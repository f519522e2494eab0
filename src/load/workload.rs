//! The synthetic workload: persons, households and the stream of signals about them.
//!
//! Key sets are generated directly in the wire format of spec §7 (`kind:base64url` of
//! 32 bytes), without a domain key: each simulated person has a stable set of random
//! pseudonyms drawn from a keyed BLAKE3 of (run seed, person number, key kind), so
//! two signals about the same person share keys exactly as two partners' exports of
//! one real person would. Nothing here is, or is derived from, personal data.
//!
//! A share of the signals (`match_share`) is about a person or household an *other*
//! organisation has already signalled in this run, so matches form:
//!
//! - 60 %: the same person again, as another partner sees them: without BSN (22 %),
//!   with initials only (8.5 %), or with a typo that changes the full-name keys (3 %);
//!   8 % have moved (a new address);
//! - 25 %: another member of the same household (same address key);
//! - 15 %: a child of the signalled person (family keys = the parent's person keys).
//!
//! The rest are fresh persons; 1 % have no address, 15 % are children with one or
//! two parents who are not signalled themselves.

use crate::pseudonym::wire::push_json_string;
use crate::pseudonym::{KeyKind, Pseudonym, SubjectKeys};
use crate::synth::rng::{Rng, Weighted};

/// A network the workload submits to.
#[derive(Debug, Clone)]
pub struct Network {
    /// Network id.
    pub id: String,
    /// Its category list.
    pub categories: Vec<String>,
}

/// A submitting organisation.
#[derive(Debug, Clone)]
pub struct Organisation {
    /// Organisation id (the token's `org`).
    pub id: String,
    /// Indexes into the network list.
    pub networks: Vec<usize>,
}

/// What kind of signal was generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalKind {
    /// A person nobody signalled before.
    Fresh,
    /// A person another organisation signalled before.
    SamePerson,
    /// A new person at an address another organisation signalled before.
    Household,
    /// A child of a person another organisation signalled before.
    Family,
}

/// One generated signal: who submits it and the JSON body of `POST /v1/signals`
/// (an item of a batch).
#[derive(Debug, Clone)]
pub struct Planned {
    /// Index of the submitting organisation.
    pub org: usize,
    /// Index of the network.
    pub network: usize,
    /// The `SubmitSignal` JSON object.
    pub body: String,
    /// How it relates to earlier signals.
    pub kind: SignalKind,
    /// Its number in the run (1, 2, ...): the reference is `ld{run:x}-{seq}`.
    pub seq: u64,
    /// The reference (idempotency key) of the signal.
    pub reference: String,
    /// For a matching signal: the `seq` of the earlier signal it was drawn from.
    pub partner: Option<u64>,
    /// The person keys are the person's full set, without noise.
    pub exact: bool,
}

const NO_ADDRESS: u32 = u32::MAX;

/// One signal sent earlier in this run, to draw matching signals from.
#[derive(Debug, Clone, Copy)]
struct Past {
    person: u32,
    address: u32,
    org: u16,
    seq: u64,
}

/// How a partner's view of a person differs from the full record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Noise {
    None,
    NoBsn,
    InitialsOnly,
    Typo,
}

/// The workload generator. Deterministic for a given seed and call sequence.
pub struct Workload {
    material: [u8; 32],
    run: u64,
    key_id: String,
    networks: Vec<Network>,
    organisations: Vec<Organisation>,
    org_weights: Weighted,
    match_share: f64,
    rng: Rng,
    history: Vec<Past>,
    next_person: u32,
    next_address: u32,
    seq: u64,
    tag_contacts: bool,
}

impl std::fmt::Debug for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workload")
            .field("signals", &self.seq)
            .finish_non_exhaustive()
    }
}

impl Workload {
    /// A workload for `seed`; `run` tells runs on one database apart (it becomes part
    /// of the references and the key material, so a second run adds new persons).
    /// Organisations submit with Zipf-like weights in list order (the first ones,
    /// such as the police and housing corporations, submit most).
    pub fn new(
        seed: u64,
        run: u64,
        key_id: &str,
        networks: Vec<Network>,
        organisations: Vec<Organisation>,
        match_share: f64,
    ) -> Workload {
        let mut h = blake3::Hasher::new_derive_key("samenloop load v1 key material");
        h.update(&seed.to_le_bytes());
        h.update(&run.to_le_bytes());
        let org_weights = Weighted::zipf(organisations.len(), 0.6, 0.0);
        Workload {
            material: *h.finalize().as_bytes(),
            run,
            key_id: key_id.to_string(),
            networks,
            organisations,
            org_weights,
            match_share: match_share.clamp(0.0, 1.0),
            rng: Rng::new(seed, run),
            history: Vec::new(),
            next_person: 0,
            next_address: 0,
            seq: 0,
            tag_contacts: false,
        }
    }

    /// Name every signal's contact after its number (`Signal {seq}`), so that a
    /// coordinator's match list tells which signals a match holds (the crash harness).
    pub fn tag_contacts(&mut self, on: bool) {
        self.tag_contacts = on;
    }

    /// The contact name of signal `seq` when contacts are tagged.
    pub fn contact_tag(seq: u64) -> String {
        format!("Signal {seq}")
    }

    /// The signal number in a contact name written by [`Workload::contact_tag`].
    pub fn parse_contact_tag(name: &str) -> Option<u64> {
        name.strip_prefix("Signal ")?.parse().ok()
    }

    /// The networks.
    pub fn networks(&self) -> &[Network] {
        &self.networks
    }

    /// The organisations.
    pub fn organisations(&self) -> &[Organisation] {
        &self.organisations
    }

    /// Signals generated so far.
    pub fn generated(&self) -> u64 {
        self.seq
    }

    /// Draws a submitting organisation by weight.
    pub fn pick_org(&mut self) -> usize {
        self.org_weights.sample(&mut self.rng)
    }

    fn pick_other_org(&mut self, not: usize) -> usize {
        for _ in 0..16 {
            let o = self.pick_org();
            if o != not {
                return o;
            }
        }
        (not + 1) % self.organisations.len().max(1)
    }

    fn pseudonym(&self, tag: u8, kind: KeyKind, n: u64) -> Pseudonym {
        let mut input = [0u8; 10];
        input[0] = tag;
        input[1] = kind as u8;
        input[2..].copy_from_slice(&n.to_le_bytes());
        Pseudonym {
            kind,
            bytes: *blake3::keyed_hash(&self.material, &input).as_bytes(),
        }
    }

    /// The person keys of person `p` as one partner sees them.
    fn person_keys(&self, p: u32, noise: Noise) -> Vec<Pseudonym> {
        let traits = blake3::keyed_hash(&self.material, &[&[9u8][..], &p.to_le_bytes()].concat());
        let t = traits.as_bytes();
        // 78 % have a BSN on record (the quality noise model: 21.8 % missing); a few of
        // the others a V-nummer; half have two or more given names (the `ai` key).
        let has_bsn = t[0] < 200 && noise != Noise::NoBsn;
        let has_vnr = t[0] >= 200 && t[1] < 26;
        let has_ai = t[2] < 128;
        let n = u64::from(p);
        let mut keys = Vec::with_capacity(10);
        if has_bsn {
            keys.push(self.pseudonym(1, KeyKind::Bsn, n));
        }
        if has_vnr {
            keys.push(self.pseudonym(1, KeyKind::VNumber, n));
        }
        if noise == Noise::InitialsOnly {
            keys.push(self.pseudonym(1, KeyKind::InitialDate, n));
            if has_ai {
                keys.push(self.pseudonym(1, KeyKind::AllInitials, n));
            }
            return keys;
        }
        for kind in [
            KeyKind::NameDate,
            KeyKind::PhoneticDate,
            KeyKind::FamilyStart,
            KeyKind::FamilyEnd,
            KeyKind::GivenStart,
            KeyKind::GivenEnd,
            KeyKind::InitialDate,
        ] {
            // A typo near the end of the family name changes the full-name keys and
            // `fe`; `fs`, `gs`, `ge` and `in` still carry the match.
            let typo = noise == Noise::Typo
                && matches!(
                    kind,
                    KeyKind::NameDate | KeyKind::PhoneticDate | KeyKind::FamilyEnd
                );
            keys.push(if typo {
                self.pseudonym(3, kind, self.seq)
            } else {
                self.pseudonym(1, kind, n)
            });
        }
        if has_ai {
            keys.push(self.pseudonym(1, KeyKind::AllInitials, n));
        }
        keys
    }

    fn new_person(&mut self) -> u32 {
        let p = self.next_person;
        self.next_person = self.next_person.wrapping_add(1);
        p
    }

    fn new_address(&mut self) -> u32 {
        let a = self.next_address;
        self.next_address = self.next_address.wrapping_add(1) % NO_ADDRESS;
        a
    }

    fn noise(&mut self) -> Noise {
        let r = self.rng.unit();
        if r < 0.22 {
            Noise::NoBsn
        } else if r < 0.305 {
            Noise::InitialsOnly
        } else if r < 0.335 {
            Noise::Typo
        } else {
            Noise::None
        }
    }

    /// A past signal of another organisation than `org`, if any (a few tries).
    fn past_of_other(&mut self, org: usize) -> Option<Past> {
        for _ in 0..8 {
            let past = *self.rng.pick(&self.history)?;
            if usize::from(past.org) != org {
                return Some(past);
            }
        }
        None
    }

    /// The next signal; `org` fixes the submitter (a batch is one organisation's).
    pub fn next(&mut self, org: Option<usize>) -> Planned {
        let org = org.unwrap_or_else(|| self.pick_org());
        let wants_match = self.match_share > 0.0 && self.rng.chance(self.match_share);
        let past = if wants_match {
            self.past_of_other(org)
        } else {
            None
        };
        let (kind, person, address, noise, parents) = match past {
            None => {
                let person = self.new_person();
                let address = if self.rng.chance(0.01) {
                    NO_ADDRESS
                } else {
                    self.new_address()
                };
                let parents = if self.rng.chance(0.15) {
                    let n = if self.rng.chance(0.6) { 2 } else { 1 };
                    (0..n).map(|_| self.new_person()).collect()
                } else {
                    Vec::new()
                };
                (SignalKind::Fresh, person, address, Noise::None, parents)
            }
            Some(past) => {
                let r = self.rng.unit();
                if r < 0.25 && past.address != NO_ADDRESS {
                    let person = self.new_person();
                    (
                        SignalKind::Household,
                        person,
                        past.address,
                        Noise::None,
                        Vec::new(),
                    )
                } else if r < 0.40 {
                    let person = self.new_person();
                    (
                        SignalKind::Family,
                        person,
                        past.address,
                        Noise::None,
                        vec![past.person],
                    )
                } else {
                    let address = if past.address == NO_ADDRESS || self.rng.chance(0.08) {
                        self.new_address()
                    } else {
                        past.address
                    };
                    let noise = self.noise();
                    (
                        SignalKind::SamePerson,
                        past.person,
                        address,
                        noise,
                        Vec::new(),
                    )
                }
            }
        };
        let org_u16 = u16::try_from(org).unwrap_or(u16::MAX);
        self.history.push(Past {
            person,
            address,
            org: org_u16,
            seq: self.seq + 1,
        });
        let network = {
            let nets = &self.organisations[org].networks;
            nets[self.rng.index(nets.len())]
        };
        let tag = self.tag_contacts.then(|| Self::contact_tag(self.seq + 1));
        let body = self.body(
            org,
            network,
            person,
            address,
            noise,
            &parents,
            tag.as_deref(),
        );
        Planned {
            org,
            network,
            body,
            kind,
            seq: self.seq,
            reference: self.reference(self.seq),
            partner: past.map(|p| p.seq),
            exact: noise == Noise::None,
        }
    }

    fn reference(&self, seq: u64) -> String {
        format!("ld{:x}-{}", self.run, seq)
    }

    /// A pair of signals for a time-to-alert probe: a fresh person signalled by one
    /// organisation, then by another with the contact name `probe_name`, so that the
    /// coordinator of the second signal's network can recognise the match it forms.
    pub fn probe_pair(&mut self, probe_name: &str) -> (Planned, Planned) {
        let a = self.pick_org();
        let b = self.pick_other_org(a);
        let person = self.new_person();
        let address = self.new_address();
        let mut plan = |org: usize, name: Option<&str>| {
            let nets = &self.organisations[org].networks;
            let network = nets[self.rng.index(nets.len())];
            let body = self.body(org, network, person, address, Noise::None, &[], name);
            Planned {
                org,
                network,
                body,
                kind: SignalKind::Fresh,
                seq: self.seq,
                reference: self.reference(self.seq),
                partner: None,
                exact: true,
            }
        };
        let first = plan(a, None);
        let mut second = plan(b, Some(probe_name));
        second.kind = SignalKind::SamePerson;
        second.partner = Some(first.seq);
        (first, second)
    }

    #[allow(clippy::too_many_arguments)]
    fn body(
        &mut self,
        org: usize,
        network: usize,
        person: u32,
        address: u32,
        noise: Noise,
        parents: &[u32],
        contact_name: Option<&str>,
    ) -> String {
        self.seq += 1;
        let keys = SubjectKeys {
            reference: self.reference(self.seq),
            key_id: self.key_id.clone(),
            person: self.person_keys(person, noise),
            household: if address == NO_ADDRESS {
                Vec::new()
            } else {
                vec![self.pseudonym(2, KeyKind::Address, u64::from(address))]
            },
            family: parents
                .iter()
                .map(|p| self.person_keys(*p, Noise::None))
                .collect(),
        };
        let net = &self.networks[network];
        let mut out = String::with_capacity(900);
        out.push_str("{\"network\":");
        push_json_string(&mut out, &net.id);
        out.push_str(",\"subject\":");
        keys.write_json(&mut out);
        out.push_str(",\"contact\":{\"name\":");
        match contact_name {
            Some(n) => push_json_string(&mut out, n),
            None => {
                out.push_str("\"Team ");
                out.push_str(&self.organisations[org].id.replace('"', ""));
                out.push('"');
            }
        }
        out.push_str(",\"phone\":\"010 123 4567\"}");
        if !net.categories.is_empty() && self.rng.chance(0.8) {
            out.push_str(",\"category\":");
            let c = self.rng.index(net.categories.len());
            push_json_string(&mut out, &net.categories[c]);
        }
        out.push('}');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload(share: f64) -> Workload {
        let nets = vec![
            Network {
                id: "a".into(),
                categories: vec!["x".into()],
            },
            Network {
                id: "b".into(),
                categories: vec![],
            },
        ];
        let orgs = (0..5)
            .map(|i| Organisation {
                id: format!("o{i}"),
                networks: vec![i % 2],
            })
            .collect();
        Workload::new(7, 0, "dev-2026", nets, orgs, share)
    }

    #[test]
    fn bodies_are_valid_submissions() {
        let mut w = workload(0.5);
        for _ in 0..500 {
            let p = w.next(None);
            let v: serde_json::Value = serde_json::from_str(&p.body).unwrap();
            SubjectKeys::from_value(v["subject"].clone()).unwrap();
            assert_eq!(v["network"], w.networks()[p.network].id);
        }
    }

    #[test]
    fn deterministic_for_a_seed_and_different_per_run() {
        let a: Vec<String> = {
            let mut w = workload(0.3);
            (0..50).map(|_| w.next(None).body).collect()
        };
        let b: Vec<String> = {
            let mut w = workload(0.3);
            (0..50).map(|_| w.next(None).body).collect()
        };
        assert_eq!(a, b);
        let nets = workload(0.3).networks().to_vec();
        let orgs = workload(0.3).organisations().to_vec();
        let mut other = Workload::new(7, 1, "dev-2026", nets, orgs, 0.3);
        assert_ne!(a[0], other.next(None).body);
    }

    #[test]
    fn matching_signals_share_keys_with_an_earlier_signal_of_another_org() {
        let mut w = workload(1.0);
        let first = w.next(Some(0));
        assert_eq!(first.kind, SignalKind::Fresh);
        let keys = |p: &Planned| {
            let v: serde_json::Value = serde_json::from_str(&p.body).unwrap();
            let mut all: Vec<String> = Vec::new();
            for list in ["person", "household"] {
                for k in v["subject"][list].as_array().into_iter().flatten() {
                    all.push(k.as_str().unwrap().to_string());
                }
            }
            for f in v["subject"]["family"].as_array().into_iter().flatten() {
                for k in f.as_array().unwrap() {
                    all.push(k.as_str().unwrap().to_string());
                }
            }
            all
        };
        let k1 = keys(&first);
        let second = w.next(Some(1));
        assert_ne!(second.kind, SignalKind::Fresh);
        assert!(keys(&second).iter().any(|k| k1.contains(k)));
    }

    #[test]
    fn tagged_contacts_name_the_signal_and_matching_signals_their_partner() {
        let mut w = workload(1.0);
        w.tag_contacts(true);
        let first = w.next(Some(0));
        let second = w.next(Some(1));
        assert_eq!((first.seq, second.seq), (1, 2));
        assert_eq!(first.partner, None);
        assert_eq!(second.partner, Some(1));
        for p in [&first, &second] {
            let v: serde_json::Value = serde_json::from_str(&p.body).unwrap();
            let name = v["contact"]["name"].as_str().unwrap();
            assert_eq!(Workload::parse_contact_tag(name), Some(p.seq));
            assert_eq!(v["subject"]["reference"], p.reference.as_str());
        }
        assert_eq!(Workload::parse_contact_tag("Team politie"), None);
    }

    #[test]
    fn no_match_share_means_only_fresh_persons() {
        let mut w = workload(0.0);
        assert!((0..200).all(|_| w.next(None).kind == SignalKind::Fresh));
    }
}
