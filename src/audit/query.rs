//! Reading the access log: filters, pages, the NEN 7513 views (per user, per day; per
//! person is [`super::subject`]) and the anomaly hints. Everything here reads the store
//! lazily in key order, so a long period costs time, not memory.

use super::{Action, Entry, ObjectType, Outcome, Scope, Sealed, entry_key, seq_of_index_key};
use crate::store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What a query selects (all given conditions must hold).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Token subject.
    pub actor: Option<String>,
    /// Token organisation.
    pub org: Option<String>,
    /// An object id the entry names (`object_id` or `related`).
    pub object: Option<String>,
    /// Action.
    pub action: Option<Action>,
    /// Outcome.
    pub outcome: Option<Outcome>,
    /// The object's network.
    pub network: Option<String>,
    /// From (unix ms, inclusive).
    pub from_ms: Option<i64>,
    /// Until (unix ms, exclusive).
    pub to_ms: Option<i64>,
}

impl Filter {
    /// Whether `e` passes (time is checked by the sequence range, and again here).
    pub fn matches(&self, e: &Entry) -> bool {
        self.actor.as_ref().is_none_or(|a| &e.actor == a)
            && self.org.as_ref().is_none_or(|o| e.org.as_ref() == Some(o))
            && self
                .object
                .as_ref()
                .is_none_or(|o| e.objects().contains(&o.as_str()))
            && self.action.is_none_or(|a| e.action == a)
            && self.outcome.is_none_or(|o| e.outcome == o)
            && self
                .network
                .as_ref()
                .is_none_or(|n| e.network.as_ref() == Some(n))
            && self.from_ms.is_none_or(|f| e.at_ms >= f)
            && self.to_ms.is_none_or(|t| e.at_ms < t)
    }
}

/// Reading direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Oldest first.
    #[default]
    Asc,
    /// Newest first.
    Desc,
}

/// A page of entries.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// The entries, in the requested order.
    pub entries: Vec<Entry>,
    /// Where the next page starts (the last sequence looked at); `None` at the end.
    pub next_cursor: Option<u64>,
}

/// Reads the entry with sequence `seq`.
pub fn entry_at(store: &Store, seq: u64) -> Result<Option<Sealed>, StoreError> {
    Ok(crate::index::engine::KvRead::get(store, &entry_key(seq))?.map(|line| Sealed { line }))
}

/// The sequence numbers `[lo, hi)` of the entries from `from_ms` (inclusive) to
/// `to_ms` (exclusive): a binary search, since times never decrease along the chain.
pub fn seq_range(
    store: &Store,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
) -> Result<(u64, u64), StoreError> {
    let last = super::head(store)?.seq;
    let first = match store.range(entry_key(0), entry_key(u64::MAX), false).next() {
        Some(r) => super::seq_of_entry_key(&r?.0).unwrap_or(1),
        None => return Ok((1, 1)),
    };
    let lo = match from_ms {
        Some(t) => first_at_or_after(store, first, last + 1, t)?,
        None => first,
    };
    let hi = match to_ms {
        Some(t) => first_at_or_after(store, first, last + 1, t)?,
        None => last + 1,
    };
    Ok((lo, hi.max(lo)))
}

/// The first sequence in `[lo, hi)` whose time is at least `t` (`hi` if none).
fn first_at_or_after(store: &Store, mut lo: u64, mut hi: u64, t: i64) -> Result<u64, StoreError> {
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        // A missing entry (the verifier reports it) is read as the next one present.
        let at = match store.range(entry_key(mid), entry_key(hi), false).next() {
            Some(r) => Sealed { line: r?.1 }.at_ms().unwrap_or(i64::MAX),
            None => i64::MAX,
        };
        if at < t {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}

/// A candidate of a query: its sequence, and its stored line when the scan read it.
type Candidate = Result<(u64, Option<Vec<u8>>), StoreError>;

/// The entries a query looks at, in order: all entries of the range (read with their
/// lines), or (with an object or actor filter) those of the per-object or per-actor
/// index (whose lines are read one by one).
fn candidates(
    store: &Store,
    filter: &Filter,
    lo: u64,
    hi: u64,
    order: Order,
) -> Box<dyn Iterator<Item = Candidate>> {
    let rev = order == Order::Desc;
    let indexed = match (&filter.object, &filter.actor) {
        (Some(o), _) => Some(super::object_prefix(o)),
        (None, Some(a)) => Some(super::actor_prefix(a)),
        (None, None) => None,
    };
    match indexed {
        Some(prefix) => {
            let at = |seq: u64| {
                let mut k = prefix.clone();
                k.extend_from_slice(&seq.to_be_bytes());
                k
            };
            Box::new(
                store
                    .range(at(lo), at(hi), rev)
                    .map(|r| r.map(|(k, _)| (seq_of_index_key(&k).unwrap_or(0), None))),
            )
        }
        None => Box::new(
            store
                .range(entry_key(lo), entry_key(hi), rev)
                .map(|r| r.map(|(k, v)| (super::seq_of_entry_key(&k).unwrap_or(0), Some(v)))),
        ),
    }
}

/// Calls `f` with every entry in scope that passes the filter, in order, looking at no
/// more than `max_scan` entries after `cursor`; returns where it stopped (`None`: at the
/// end). `f` returns `false` to stop early (after that entry).
pub fn scan(
    store: &Store,
    scope: &Scope,
    filter: &Filter,
    order: Order,
    cursor: Option<u64>,
    max_scan: usize,
    mut f: impl FnMut(Entry) -> bool,
) -> Result<Option<u64>, StoreError> {
    let (mut lo, mut hi) = seq_range(store, filter.from_ms, filter.to_ms)?;
    match (cursor, order) {
        (Some(c), Order::Asc) => lo = lo.max(c.saturating_add(1)),
        (Some(c), Order::Desc) => hi = hi.min(c),
        (None, _) => {}
    }
    if lo >= hi {
        return Ok(None);
    }
    let mut scanned = 0usize;
    let mut iter = candidates(store, filter, lo, hi, order);
    for c in iter.by_ref() {
        let (seq, line) = c?;
        scanned += 1;
        let sealed = match line {
            Some(line) => Some(Sealed { line }),
            None => entry_at(store, seq)?,
        };
        if let Some(e) = sealed.and_then(|s| s.entry()) {
            if scope.sees(&e) && filter.matches(&e) && !f(e) {
                return Ok(Some(seq));
            }
        }
        if scanned >= max_scan {
            return Ok(Some(seq));
        }
    }
    Ok(None)
}

/// A page of at most `limit` entries.
pub fn page(
    store: &Store,
    scope: &Scope,
    filter: &Filter,
    order: Order,
    cursor: Option<u64>,
    limit: usize,
    max_scan: usize,
) -> Result<Page, StoreError> {
    let mut entries = Vec::with_capacity(limit.min(1024));
    let mut stopped = scan(store, scope, filter, order, cursor, max_scan, |e| {
        entries.push(e);
        entries.len() < limit
    })?;
    // A page that ended exactly at the last entry has no next page.
    if let (Some(s), Some(last)) = (stopped, entries.last()) {
        if s == last.seq && is_last(store, filter, order, s)? {
            stopped = None;
        }
    }
    Ok(Page {
        entries,
        next_cursor: stopped,
    })
}

fn is_last(store: &Store, filter: &Filter, order: Order, seq: u64) -> Result<bool, StoreError> {
    let (lo, hi) = seq_range(store, filter.from_ms, filter.to_ms)?;
    let (lo, hi) = match order {
        Order::Asc => (seq + 1, hi),
        Order::Desc => (lo, seq),
    };
    if lo >= hi {
        return Ok(true);
    }
    Ok(candidates(store, filter, lo, hi, order).next().is_none())
}

/// One actor in the per-user view.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserRow {
    /// Token subject.
    pub actor: String,
    /// Organisations it acted for.
    pub organisations: Vec<String>,
    /// Roles it acted in.
    pub roles: Vec<String>,
    /// Entries.
    pub entries: u64,
    /// Entries per action.
    pub by_action: BTreeMap<String, u64>,
    /// Entries per outcome.
    pub by_outcome: BTreeMap<String, u64>,
    /// Distinct objects named.
    pub objects: u64,
    /// First entry (unix ms).
    pub first_ms: i64,
    /// Last entry (unix ms).
    pub last_ms: i64,
}

/// One day in the per-day view.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DayRow {
    /// Dutch local date.
    pub day: String,
    /// Entries.
    pub entries: u64,
    /// Distinct actors.
    pub actors: u64,
    /// Entries per action.
    pub by_action: BTreeMap<String, u64>,
    /// Entries per outcome.
    pub by_outcome: BTreeMap<String, u64>,
}

/// The per-user view: every actor with entries in the filter, with counts.
pub fn per_user(store: &Store, scope: &Scope, filter: &Filter) -> Result<Vec<UserRow>, StoreError> {
    struct Acc {
        row: UserRow,
        orgs: BTreeSet<String>,
        roles: BTreeSet<String>,
        objects: BTreeSet<String>,
    }
    let mut by: BTreeMap<String, Acc> = BTreeMap::new();
    scan(store, scope, filter, Order::Asc, None, usize::MAX, |e| {
        let a = by.entry(e.actor.clone()).or_insert_with(|| Acc {
            row: UserRow {
                actor: e.actor.clone(),
                organisations: vec![],
                roles: vec![],
                entries: 0,
                by_action: BTreeMap::new(),
                by_outcome: BTreeMap::new(),
                objects: 0,
                first_ms: e.at_ms,
                last_ms: e.at_ms,
            },
            orgs: BTreeSet::new(),
            roles: BTreeSet::new(),
            objects: BTreeSet::new(),
        });
        a.row.entries += 1;
        *a.row.by_action.entry(e.action.name().into()).or_default() += 1;
        *a.row.by_outcome.entry(e.outcome.name().into()).or_default() += 1;
        a.row.last_ms = e.at_ms;
        a.orgs.extend(e.org.clone());
        a.roles.extend(e.role.clone());
        a.objects
            .extend(e.objects().into_iter().map(str::to_string));
        true
    })?;
    Ok(by
        .into_values()
        .map(|mut a| {
            a.row.organisations = a.orgs.into_iter().collect();
            a.row.roles = a.roles.into_iter().collect();
            a.row.objects = a.objects.len() as u64;
            a.row
        })
        .collect())
}

/// The per-day view: every Dutch local day with entries in the filter, with counts.
pub fn per_day(store: &Store, scope: &Scope, filter: &Filter) -> Result<Vec<DayRow>, StoreError> {
    let mut by: BTreeMap<i64, (DayRow, BTreeSet<String>)> = BTreeMap::new();
    scan(store, scope, filter, Order::Asc, None, usize::MAX, |e| {
        let day = crate::calendar::local_day(e.at_ms.div_euclid(1000));
        let (row, actors) = by.entry(day).or_insert_with(|| {
            (
                DayRow {
                    day: crate::pseudonym::Date::from_days_since_epoch(day).to_string(),
                    entries: 0,
                    actors: 0,
                    by_action: BTreeMap::new(),
                    by_outcome: BTreeMap::new(),
                },
                BTreeSet::new(),
            )
        });
        row.entries += 1;
        *row.by_action.entry(e.action.name().into()).or_default() += 1;
        *row.by_outcome.entry(e.outcome.name().into()).or_default() += 1;
        actors.insert(e.actor);
        true
    })?;
    Ok(by
        .into_values()
        .map(|(mut row, actors)| {
            row.actors = actors.len() as u64;
            row
        })
        .collect())
}

/// The thresholds of the anomaly hints.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnomalyParams {
    /// A user is listed when it read more than `factor` times its network's median of
    /// distinct matches read per user…
    pub factor: f64,
    /// …and at least this many.
    pub min_matches: u64,
    /// Office hours, local time: from this hour (inclusive)…
    pub office_start_hour: u32,
    /// …to this hour (exclusive), on working days.
    pub office_end_hour: u32,
    /// An actor or client address is listed with at least this many refused requests.
    pub min_refused: u64,
}

/// A user who read many more matches than the usual user of its network.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MatchReads {
    /// Token subject.
    pub actor: String,
    /// Organisation.
    pub organisation: Option<String>,
    /// The network.
    pub network: String,
    /// Distinct matches it was shown in the period.
    pub matches_read: u64,
    /// The median of that over the network's users who read any.
    pub network_median: f64,
    /// Users of the network who read any.
    pub network_users: u64,
}

/// A user with accesses outside office hours.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AfterHours {
    /// Token subject.
    pub actor: String,
    /// Organisation.
    pub organisation: Option<String>,
    /// Successful accesses outside office hours (evenings, nights, weekends, holidays).
    pub outside_office_hours: u64,
    /// All its successful accesses in the period.
    pub total: u64,
}

/// An actor (or, without a usable token, a client address) with many refused requests.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Refused {
    /// Token subject, or `-` without a usable token.
    pub actor: String,
    /// The client address, for requests without a usable token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// Organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation: Option<String>,
    /// Refused requests (outcome `denied`).
    pub refused: u64,
    /// Of which without a usable token (`login_refused`).
    pub login_refused: u64,
}

/// The anomaly hints: plain counts for the privacy officer to look into, no verdicts.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Anomalies {
    /// Users who read far more matches than their network's usual.
    pub many_match_reads: Vec<MatchReads>,
    /// Users with accesses outside office hours.
    pub outside_office_hours: Vec<AfterHours>,
    /// Actors and client addresses with repeated refused requests.
    pub repeated_refusals: Vec<Refused>,
}

fn median(v: &mut [u64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_unstable();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2] as f64
    } else {
        (v[n / 2 - 1] + v[n / 2]) as f64 / 2.0
    }
}

/// Whether unix ms `ms` is inside office hours (local time, working days of `cal`).
pub fn in_office_hours(ms: i64, p: &AnomalyParams, cal: &crate::calendar::Calendar) -> bool {
    let t = ms.div_euclid(1000);
    let day = crate::calendar::local_day(t);
    let hour = (t - crate::calendar::local_midnight(day)).div_euclid(3600);
    cal.is_working_day(day)
        && hour >= i64::from(p.office_start_hour)
        && hour < i64::from(p.office_end_hour)
}

/// The anomaly hints over the entries of the filter.
pub fn anomalies(
    store: &Store,
    scope: &Scope,
    filter: &Filter,
    p: &AnomalyParams,
    cal: &crate::calendar::Calendar,
) -> Result<Anomalies, StoreError> {
    // (network, actor) → distinct matches shown; actor → organisation.
    let mut reads: HashMap<(String, String), BTreeSet<String>> = HashMap::new();
    let mut orgs: HashMap<String, Option<String>> = HashMap::new();
    let mut hours: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    // (actor, client without a token) → (refused, of which login refused, organisation).
    type RefusedBy = BTreeMap<(String, Option<String>), (u64, u64, Option<String>)>;
    let mut refused: RefusedBy = BTreeMap::new();
    scan(store, scope, filter, Order::Asc, None, usize::MAX, |e| {
        orgs.entry(e.actor.clone()).or_insert_with(|| e.org.clone());
        if e.outcome == Outcome::Success && e.actor != "-" && e.role.is_some() {
            let h = hours.entry(e.actor.clone()).or_default();
            h.1 += 1;
            if !in_office_hours(e.at_ms, p, cal) {
                h.0 += 1;
            }
            let shows_matches = matches!(e.action, Action::Read | Action::Search)
                && matches!(
                    e.object_type,
                    Some(ObjectType::Match) | Some(ObjectType::Events)
                );
            if let (true, Some(n)) = (shows_matches, &e.network) {
                let set = reads.entry((n.clone(), e.actor.clone())).or_default();
                set.extend(
                    e.objects()
                        .into_iter()
                        .filter(|o| o.starts_with("m_"))
                        .map(str::to_string),
                );
            }
        }
        if e.outcome == Outcome::Denied {
            let client = (e.actor == "-").then(|| e.client.clone());
            let r = refused.entry((e.actor.clone(), client)).or_default();
            r.0 += 1;
            if e.action == Action::LoginRefused {
                r.1 += 1;
            }
            if r.2.is_none() {
                r.2 = e.org.clone();
            }
        }
        true
    })?;
    let mut per_network: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
    for ((n, a), set) in reads {
        per_network
            .entry(n)
            .or_default()
            .push((a, set.len() as u64));
    }
    let mut out = Anomalies::default();
    for (network, users) in per_network {
        let mut counts: Vec<u64> = users.iter().map(|(_, c)| *c).collect();
        let med = median(&mut counts);
        for (actor, c) in users {
            if c >= p.min_matches && (c as f64) > p.factor * med {
                out.many_match_reads.push(MatchReads {
                    organisation: orgs.get(&actor).cloned().flatten(),
                    actor,
                    network: network.clone(),
                    matches_read: c,
                    network_median: med,
                    network_users: counts.len() as u64,
                });
            }
        }
    }
    out.many_match_reads.sort_by(|a, b| {
        b.matches_read
            .cmp(&a.matches_read)
            .then(a.actor.cmp(&b.actor))
    });
    for (actor, (outside, total)) in hours {
        if outside > 0 {
            out.outside_office_hours.push(AfterHours {
                organisation: orgs.get(&actor).cloned().flatten(),
                actor,
                outside_office_hours: outside,
                total,
            });
        }
    }
    out.outside_office_hours.sort_by(|a, b| {
        b.outside_office_hours
            .cmp(&a.outside_office_hours)
            .then(a.actor.cmp(&b.actor))
    });
    for ((actor, client), (n, login, org)) in refused {
        if n >= p.min_refused {
            out.repeated_refusals.push(Refused {
                actor,
                client,
                organisation: org,
                refused: n,
                login_refused: login,
            });
        }
    }
    out.repeated_refusals
        .sort_by(|a, b| b.refused.cmp(&a.refused).then(a.actor.cmp(&b.actor)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3, 1, 2]), 2.0);
        assert_eq!(median(&mut [4, 1, 2, 3]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }

    #[test]
    fn office_hours_are_local_working_hours() {
        let p = AnomalyParams {
            factor: 3.0,
            min_matches: 10,
            office_start_hour: 7,
            office_end_hour: 19,
            min_refused: 5,
        };
        let cal = crate::calendar::Calendar::new(&["2026-12-25".into()]);
        // Tuesday 2026-12-01 08:00 local (07:00 UTC, winter time).
        let tue = crate::calendar::local_midnight(
            crate::pseudonym::Date::new(2026, 12, 1)
                .unwrap()
                .days_since_epoch(),
        );
        assert!(in_office_hours((tue + 8 * 3600) * 1000, &p, &cal));
        assert!(!in_office_hours((tue + 6 * 3600 + 3599) * 1000, &p, &cal));
        assert!(!in_office_hours((tue + 19 * 3600) * 1000, &p, &cal));
        // Saturday and a holiday.
        assert!(!in_office_hours(
            (tue + 4 * 86_400 + 10 * 3600) * 1000,
            &p,
            &cal
        ));
        let xmas = crate::calendar::local_midnight(
            crate::pseudonym::Date::new(2026, 12, 25)
                .unwrap()
                .days_since_epoch(),
        );
        assert!(!in_office_hours((xmas + 10 * 3600) * 1000, &p, &cal));
    }
}
