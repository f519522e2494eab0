//! The networks, organisations and excluded addresses in force.
//!
//! The configuration file gives the starting point. The operator changes it at runtime
//! through the admin API (`/v1/admin/organisations`, `/v1/admin/networks`,
//! `/v1/admin/excluded-addresses`, see `spec/openapi.yaml`) or `samenloop admin`; each
//! change is stored in the index tree, in the same transaction as its access-log entry,
//! and the server swaps its [`Directory`] (and the matching [`Policy`] derived from it)
//! at once, without a restart. Stored changes outlive a restart and take precedence over
//! the file:
//!
//! | key | value |
//! |---|---|
//! | `Go` organisation id | [`Organisation`] JSON: added or changed through the API |
//! | `Gn` network id | [`NetworkSettings`] JSON: the network's changeable settings |
//! | `E` P2 | [`Excluded`] JSON: an institutional address that never links a household |
//! | `Gk` domain key id | [`DomainKeyId`] JSON: a key id accepted or retired through the API |
//!
//! Networks themselves (and their webhooks, which hold secrets in files) come only from
//! the file: adding one needs a restart.

use crate::config::{Config, NetworkConfig, OrganisationConfig};
use crate::index::IndexKey;
use crate::index::engine::{EngineError, KvRead, Policy};
use crate::pseudonym::{KeyKind, Pseudonym};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Key prefix of stored organisations.
pub const ORG_PREFIX: &[u8] = b"Go";
/// Key prefix of stored network settings.
pub const NETWORK_PREFIX: &[u8] = b"Gn";
/// Key prefix of stored domain key ids.
pub const KEY_ID_PREFIX: &[u8] = b"Gk";
/// Key prefix of excluded addresses (followed by the 32-byte P2).
pub const EXCLUDED_PREFIX: u8 = b'E';

/// A member organisation as it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organisation {
    /// Stable id, as in the `org` token claim.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Networks it may submit to.
    pub networks: Vec<String>,
    /// A suspended organisation can no longer submit or renew; it can still read and
    /// withdraw its signals, which stay until withdrawn or expired.
    pub suspended: bool,
    /// When it was last changed through the API (unix seconds; none: as in the file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_at: Option<i64>,
}

/// The settings of a network the operator may change at runtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSettings {
    /// Display name.
    pub name: String,
    /// How partners reach the coordinator.
    pub coordinator_contact: String,
    /// The fixed category list.
    pub categories: Vec<String>,
    /// Distinct organisations needed for a match.
    pub match_threshold: usize,
    /// Longest validity of a signal, days.
    pub max_validity_days: u32,
    /// Working days to acknowledge a new match.
    pub acknowledge_within_days: u32,
    /// Working days to reach a decision.
    pub decide_within_days: u32,
    /// Days a closed match is kept before it is erased (older stored settings lack it:
    /// then the file's value stays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_match_days: Option<u32>,
    /// When it was last changed through the API (unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_at: Option<i64>,
}

impl NetworkSettings {
    /// The settings of a configured network.
    pub fn of(n: &NetworkConfig) -> NetworkSettings {
        NetworkSettings {
            name: n.name.clone(),
            coordinator_contact: n.coordinator_contact.clone(),
            categories: n.categories.clone(),
            match_threshold: n.match_threshold,
            max_validity_days: n.max_validity_days,
            acknowledge_within_days: n.acknowledge_within_days,
            decide_within_days: n.decide_within_days,
            closed_match_days: Some(n.closed_match_days),
            changed_at: None,
        }
    }

    /// Writes these settings into a network's configuration.
    pub fn apply(&self, n: &mut NetworkConfig) {
        n.name = self.name.clone();
        n.coordinator_contact = self.coordinator_contact.clone();
        n.categories = self.categories.clone();
        n.match_threshold = self.match_threshold;
        n.max_validity_days = self.max_validity_days;
        n.acknowledge_within_days = self.acknowledge_within_days;
        n.decide_within_days = self.decide_within_days;
        if let Some(d) = self.closed_match_days {
            n.closed_match_days = d;
        }
    }
}

/// An excluded (institutional) address entered through the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Excluded {
    /// Opaque id (`exa_` and 16 hex digits), for removing it.
    pub id: String,
    /// What the address is, e.g. "Opvang Noord" (an institution, never a person).
    pub label: String,
    /// The domain key id its pseudonym was computed with.
    pub key_id: String,
    /// When it was added (unix seconds).
    pub added_at: i64,
    /// Who added it (token subject).
    pub added_by: String,
}

/// Whether key sets under a domain key id are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyIdState {
    /// Key sets under it are accepted.
    Accepted,
    /// Retired: refused; its signals expire (or, re-keyed, lose their old keys).
    Retired,
}

/// A domain key id and its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainKeyId {
    /// The key id.
    pub key_id: String,
    /// Accepted or retired.
    pub state: KeyIdState,
    /// When it was added through the API (none: from the configuration file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_at: Option<i64>,
    /// When it was retired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<i64>,
}

/// The networks, organisations and excluded addresses in force, with the policy
/// derived from them.
#[derive(Debug, Clone)]
pub struct Directory {
    /// Networks (the file's, with stored settings applied).
    pub networks: Vec<NetworkConfig>,
    /// Which networks have stored settings (changed through the API).
    pub changed_networks: HashSet<String>,
    /// Organisations (the file's, with stored ones added or replacing them).
    pub organisations: Vec<Organisation>,
    /// Excluded addresses entered through the API, with their P2.
    pub excluded: Vec<([u8; 32], Excluded)>,
    /// Domain key ids, oldest first: the file's (in its order), then those added
    /// through the API. The last accepted one is the newest.
    pub key_ids: Vec<DomainKeyId>,
    /// The matching rules in force.
    pub policy: std::sync::Arc<Policy>,
}

/// The key of a stored organisation.
pub fn org_key(id: &str) -> Vec<u8> {
    [ORG_PREFIX, id.as_bytes()].concat()
}

/// The key of a network's stored settings.
pub fn network_key(id: &str) -> Vec<u8> {
    [NETWORK_PREFIX, id.as_bytes()].concat()
}

/// The key of a stored domain key id.
pub fn key_id_key(id: &str) -> Vec<u8> {
    [KEY_ID_PREFIX, id.as_bytes()].concat()
}

/// The key of an excluded address.
pub fn excluded_key(p2: &[u8; 32]) -> Vec<u8> {
    let mut k = Vec::with_capacity(33);
    k.push(EXCLUDED_PREFIX);
    k.extend_from_slice(p2);
    k
}

fn decode<T: serde::de::DeserializeOwned>(k: &[u8], v: &[u8]) -> Result<T, EngineError> {
    serde_json::from_slice(v).map_err(|_| EngineError::Corrupt(k[0] as char))
}

impl Directory {
    /// The file's directory with the stored changes applied; excluded addresses of the
    /// file are re-keyed with `index_key`.
    pub fn load(cfg: &Config, kv: &dyn KvRead, index_key: &IndexKey) -> Result<Directory, String> {
        let mut networks = cfg.networks.clone();
        let mut changed_networks = HashSet::new();
        for (k, v) in kv.scan_prefix(NETWORK_PREFIX).map_err(|e| e.to_string())? {
            let id = String::from_utf8_lossy(&k[NETWORK_PREFIX.len()..]).into_owned();
            let s: NetworkSettings = decode(&k, &v).map_err(|e| e.to_string())?;
            // Settings of a network no longer in the file have nothing to apply to.
            if let Some(n) = networks.iter_mut().find(|n| n.id == id) {
                s.apply(n);
                changed_networks.insert(id);
            }
        }
        let mut organisations: Vec<Organisation> = cfg
            .organisations
            .iter()
            .map(|o: &OrganisationConfig| Organisation {
                id: o.id.clone(),
                name: o.name.clone(),
                networks: o.networks.clone(),
                suspended: false,
                changed_at: None,
            })
            .collect();
        for (k, v) in kv.scan_prefix(ORG_PREFIX).map_err(|e| e.to_string())? {
            let mut o: Organisation = decode(&k, &v).map_err(|e| e.to_string())?;
            o.networks.retain(|n| networks.iter().any(|x| &x.id == n));
            match organisations.iter_mut().find(|x| x.id == o.id) {
                Some(x) => *x = o,
                None => organisations.push(o),
            }
        }
        let mut excluded = Vec::new();
        for (k, v) in kv
            .scan_prefix(&[EXCLUDED_PREFIX])
            .map_err(|e| e.to_string())?
        {
            let Ok(p2) = <[u8; 32]>::try_from(&k[1..]) else {
                return Err("corrupt excluded-address key".into());
            };
            excluded.push((p2, decode::<Excluded>(&k, &v).map_err(|e| e.to_string())?));
        }
        let mut key_ids: Vec<DomainKeyId> = cfg
            .domain
            .accepted_key_ids
            .iter()
            .map(|k| DomainKeyId {
                key_id: k.clone(),
                state: KeyIdState::Accepted,
                added_at: None,
                retired_at: None,
            })
            .collect();
        let mut added = Vec::new();
        for (k, v) in kv.scan_prefix(KEY_ID_PREFIX).map_err(|e| e.to_string())? {
            let d: DomainKeyId = decode(&k, &v).map_err(|e| e.to_string())?;
            match key_ids.iter_mut().find(|x| x.key_id == d.key_id) {
                Some(x) => *x = d,
                None => added.push(d),
            }
        }
        added.sort_by(|a, b| (a.added_at, &a.key_id).cmp(&(b.added_at, &b.key_id)));
        key_ids.extend(added);
        let mut policy = policy(cfg, &networks, &excluded, index_key)?;
        policy.current_key_id = key_ids
            .iter()
            .rev()
            .find(|k| k.state == KeyIdState::Accepted)
            .map(|k| k.key_id.clone());
        Ok(Directory {
            networks,
            changed_networks,
            organisations,
            excluded,
            key_ids,
            policy: std::sync::Arc::new(policy),
        })
    }

    /// The network with this id.
    pub fn network(&self, id: &str) -> Option<&NetworkConfig> {
        self.networks.iter().find(|n| n.id == id)
    }

    /// The organisation with this id.
    pub fn organisation(&self, id: &str) -> Option<&Organisation> {
        self.organisations.iter().find(|o| o.id == id)
    }

    /// Whether key sets under this domain key id are accepted.
    pub fn accepts(&self, key_id: &str) -> bool {
        self.key_ids
            .iter()
            .any(|k| k.key_id == key_id && k.state == KeyIdState::Accepted)
    }

    /// Whether `org` is a member of `network` and not suspended.
    pub fn may_submit(&self, org: &str, network: &str) -> bool {
        self.organisation(org)
            .is_some_and(|o| !o.suspended && o.networks.iter().any(|n| n == network))
    }
}

/// The P2 of an address pseudonym in wire form (`adr:…`), or why it is not one.
pub fn address_p2(wire: &str, index_key: &IndexKey) -> Option<[u8; 32]> {
    Pseudonym::from_wire(wire)
        .filter(|p| p.kind == KeyKind::Address)
        .map(|p| index_key.rekey(&p).p2)
}

/// The matching rules of a directory.
pub fn policy(
    cfg: &Config,
    networks: &[NetworkConfig],
    excluded: &[([u8; 32], Excluded)],
    index_key: &IndexKey,
) -> Result<Policy, String> {
    let mut set = HashSet::new();
    for (i, k) in cfg.domain.excluded_address_keys.iter().enumerate() {
        set.insert(
            address_p2(k, index_key)
                .ok_or_else(|| format!("domain.excluded_address_keys[{i}]: not an adr: key"))?,
        );
    }
    set.extend(excluded.iter().map(|(p2, _)| *p2));
    Ok(Policy {
        thresholds: networks
            .iter()
            .map(|n| (n.id.clone(), n.match_threshold))
            .collect(),
        max_postings_per_key: cfg.limits.max_postings_per_key,
        max_component_signals: cfg.limits.max_component_signals,
        excluded_addresses: crate::index::engine::ExcludedAddresses::new(set),
        webhook_networks: networks
            .iter()
            .filter(|n| n.webhook.is_some())
            .map(|n| n.id.clone())
            .collect(),
        deadlines: networks
            .iter()
            .map(|n| {
                (
                    n.id.clone(),
                    (n.acknowledge_within_days, n.decide_within_days),
                )
            })
            .collect(),
        calendar: crate::calendar::Calendar::new(&cfg.alerts.holidays),
        current_key_id: cfg.domain.accepted_key_ids.last().cloned(),
    })
}
