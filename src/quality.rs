//! Matching quality of the match-key ladder, measured on partner exports whose truth
//! is known (`samenloop quality`).
//!
//! ```text
//! every record ── pseudonymise (normalise + derive, spec v1) ──► person and household keys
//! keys → records index ──► candidate pairs: records of different exports sharing a key
//! candidate ── same_person (spec §5.2) ──► predicted link
//! predicted links vs truth ──► recall per BSN class, precision, misses and false links
//! ```
//!
//! Pairs are *record* pairs across exports: a person known to three partners gives
//! three true pairs. Recall is split by whether both records, exactly one or neither
//! carries a valid BSN; when only one does, the BSN key cannot be shared and the link
//! rests on names, birth date and address. Precision is over all predicted pairs.
//! The decision per pair is direct (one shared key set); the index links transitively
//! too, which the `entity` figures show.
//!
//! Nothing here depends on which domain key is used (up to HMAC collisions, which do
//! not occur in practice): the keys are compared for equality only.

use crate::pseudonym::{
    Date, DomainKey, FieldError, KeyKind, Pseudonym, Strength, pseudonymise, same_person,
};
use crate::synth::population::{Kin, relation};
use crate::synth::{Noise, NoiseSet, PROFILES, PartnerExport, Relation};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::Instant;

/// The floors the ladder must meet.
pub const PRECISION_FLOOR: f64 = 0.999;
/// Recall floor for pairs where at least one record has a BSN.
pub const RECALL_FLOOR_BSN: f64 = 0.99;
/// Recall floor for pairs where neither record has a BSN.
pub const RECALL_FLOOR_NO_BSN: f64 = 0.95;

/// How to evaluate.
pub struct Options {
    /// Any domain key; the figures do not depend on it.
    pub key: DomainKey,
    /// Processing date (birth dates after it are rejected).
    pub today: Date,
    /// Worker threads for pseudonymisation (at least 1).
    pub threads: usize,
    /// How many example misses and false links to include (synthetic data only).
    pub examples: usize,
}

/// BSN status of a record pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BsnClass {
    /// Both records carry a valid BSN.
    Both,
    /// Exactly one does.
    One,
    /// Neither does.
    Neither,
}

impl BsnClass {
    const ALL: [BsnClass; 3] = [BsnClass::Both, BsnClass::One, BsnClass::Neither];

    fn of(a: bool, b: bool) -> BsnClass {
        match (a, b) {
            (true, true) => BsnClass::Both,
            (false, false) => BsnClass::Neither,
            _ => BsnClass::One,
        }
    }

    /// Label for reports.
    pub fn label(self) -> &'static str {
        match self {
            BsnClass::Both => "both have a BSN",
            BsnClass::One => "one has a BSN",
            BsnClass::Neither => "neither has a BSN",
        }
    }

    fn floor(self) -> f64 {
        match self {
            BsnClass::Both | BsnClass::One => RECALL_FLOOR_BSN,
            BsnClass::Neither => RECALL_FLOOR_NO_BSN,
        }
    }
}

/// Recall within one BSN class.
#[derive(Debug, Clone, Serialize)]
pub struct ClassRecall {
    /// The class.
    pub class: BsnClass,
    /// True cross-export pairs of the same person.
    pub true_pairs: u64,
    /// Of those, linked by the rule.
    pub linked: u64,
    /// `linked / true_pairs` (1 when there are none).
    pub recall: f64,
}

/// Recall between two exports.
#[derive(Debug, Clone, Serialize)]
pub struct PairRecall {
    /// First export.
    pub a: String,
    /// Second export.
    pub b: String,
    /// True pairs between them.
    pub true_pairs: u64,
    /// Of those, linked.
    pub linked: u64,
    /// `linked / true_pairs`.
    pub recall: f64,
}

/// A labelled count.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Count {
    /// What is counted.
    pub label: String,
    /// How many.
    pub count: u64,
    /// As a share of the total it is a part of.
    pub share: f64,
}

/// One export's numbers.
#[derive(Debug, Clone, Serialize)]
pub struct ExportSummary {
    /// File stem.
    pub name: String,
    /// What kind of partner it stands for.
    pub description: String,
    /// Records.
    pub records: u64,
    /// Records that could not be normalised.
    pub rejected: u64,
    /// Records carrying a valid BSN.
    pub with_bsn: u64,
}

/// A floor and whether it holds.
#[derive(Debug, Clone, Serialize)]
pub struct Floor {
    /// What is measured.
    pub name: String,
    /// The measured value.
    pub value: f64,
    /// The floor.
    pub floor: f64,
    /// Whether `value >= floor`.
    pub ok: bool,
}

/// Figures for the transitive closure of the predicted links (how the index groups
/// signals into person entities).
#[derive(Debug, Clone, Serialize)]
pub struct EntityFigures {
    /// True pairs whose records end up in one entity.
    pub recall: f64,
    /// Cross-export record pairs within one entity that are the same person.
    pub precision: f64,
    /// Cross-export record pairs within entities.
    pub pairs: u64,
    /// Records in the largest entity.
    pub largest: u64,
    /// True pairs whose records end up in one entity, per BSN class.
    pub recall_by_class: Vec<ClassRecall>,
}

/// A missed or falsely linked pair, with both records (synthetic data only).
#[derive(Debug, Clone, Serialize)]
pub struct PairExample {
    /// How the two persons are related.
    pub relation: String,
    /// Key kinds the two records share (`adr` for the address).
    pub shared: String,
    /// Export and noise of the first record.
    pub a_export: String,
    /// Noise of the first record.
    pub a_noise: String,
    /// First record's fields.
    pub a: crate::pseudonym::SubjectFields,
    /// Export of the second record.
    pub b_export: String,
    /// Noise of the second record.
    pub b_noise: String,
    /// Second record's fields.
    pub b: crate::pseudonym::SubjectFields,
}

/// Time spent per phase, in seconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    /// Normalising and deriving keys.
    pub pseudonymise: f64,
    /// Indexing keys and forming candidate pairs.
    pub index: f64,
    /// Deciding candidates and comparing with the truth.
    pub decide: f64,
}

/// The evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Persons in the population, when known.
    pub persons: Option<u64>,
    /// Per export.
    pub exports: Vec<ExportSummary>,
    /// Records in all exports.
    pub records: u64,
    /// Records that could not be normalised (should be 0 for synthetic data).
    pub rejected: u64,
    /// Rejections by `field: code`.
    pub rejects: Vec<Count>,
    /// Average number of person keys per accepted record.
    pub person_keys_per_record: f64,
    /// Average number of household (address) keys per accepted record.
    pub household_keys_per_record: f64,
    /// Average number of parent (family) keys per accepted record.
    pub family_keys_per_record: f64,
    /// Average number of person keys of each kind per accepted record.
    pub person_keys_by_kind: Vec<Count>,
    /// Candidate pairs (different exports, at least one shared key).
    pub candidate_pairs: u64,
    /// Recall per BSN class.
    pub recall: Vec<ClassRecall>,
    /// Recall over all true pairs.
    pub recall_all: f64,
    /// Recall over the pairs where at least one record has a BSN.
    pub recall_with_bsn: f64,
    /// Recall per pair of exports.
    pub recall_by_export_pair: Vec<PairRecall>,
    /// Predicted links (candidate pairs the rule links).
    pub predicted_links: u64,
    /// Predicted links between different persons.
    pub false_links: u64,
    /// `1 - false_links / predicted_links`.
    pub precision: f64,
    /// What decided the true links: bsn, v_number, name_key (a key that links alone),
    /// weak_plus_address, two_weak_keys, household_rung_plus_address (a key that
    /// links only with a household key, `id`, `py` or `pm`, and the address).
    pub true_links_by_rule: Vec<Count>,
    /// Missed true pairs by BSN class.
    pub misses_by_class: Vec<Count>,
    /// Missed true pairs per noise kind present on either record (a miss counts
    /// under each kind it shows; `share` is of all misses).
    pub misses_by_noise: Vec<Count>,
    /// Missed true pairs by the exact combination of noise on the two records.
    pub misses_by_combination: Vec<Count>,
    /// Missed true pairs by the key kinds the two records still share.
    pub misses_by_shared_keys: Vec<Count>,
    /// Share of the pairs showing each noise kind that were missed
    /// (`count` = pairs showing the kind, `share` = their miss rate).
    pub miss_rate_by_noise: Vec<Count>,
    /// False links by how the two persons are related.
    pub false_links_by_relation: Vec<Count>,
    /// False links per noise kind present on either record.
    pub false_links_by_noise: Vec<Count>,
    /// False links by the key kinds the two records share.
    pub false_links_by_shared_keys: Vec<Count>,
    /// Share of records showing each noise kind.
    pub noise_in_records: Vec<Count>,
    /// Transitive closure of the predicted links.
    pub entity: EntityFigures,
    /// The floors.
    pub floors: Vec<Floor>,
    /// Whether every floor holds.
    pub passed: bool,
    /// Example misses (synthetic data only; empty unless asked for).
    pub example_misses: Vec<PairExample>,
    /// Example false links (synthetic data only; empty unless asked for).
    pub example_false_links: Vec<PairExample>,
    /// Time per phase.
    pub timings: Timings,
}

/// One record after pseudonymisation.
struct Rec {
    /// (export, record index) in the input.
    at: (u16, usize),
    export: u16,
    person: u32,
    noise: NoiseSet,
    /// Whether the record carries a valid BSN (for a rejected record: any BSN text).
    has_bsn: bool,
    /// The record could not be normalised: it has no keys and all its pairs are missed.
    rejected: bool,
    person_keys: Vec<Pseudonym>,
    household_keys: Vec<Pseudonym>,
}

/// Evaluates the ladder on `exports`; `kin` gives the family facts of each person.
pub fn evaluate(
    exports: &[PartnerExport],
    kin: &HashMap<u32, Kin>,
    persons: Option<u64>,
    opts: &Options,
) -> Report {
    let t0 = Instant::now();
    let flat: Vec<(u16, usize)> = exports
        .iter()
        .enumerate()
        .flat_map(|(e, x)| (0..x.records.len()).map(move |i| (e as u16, i)))
        .collect();
    let results = pseudonymise_all(exports, &flat, opts);

    let mut recs: Vec<Rec> = Vec::with_capacity(flat.len());
    let mut reject_counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut export_summaries: Vec<ExportSummary> = exports
        .iter()
        .map(|e| ExportSummary {
            name: e.name.clone(),
            description: PROFILES[e.profile % PROFILES.len()].description.to_string(),
            records: e.records.len() as u64,
            rejected: 0,
            with_bsn: 0,
        })
        .collect();
    let mut kind_counts = [0u64; KeyKind::ALL.len()];
    let (mut n_person, mut n_household, mut n_family) = (0u64, 0u64, 0u64);
    for (&(e, i), result) in flat.iter().zip(results) {
        let truth = exports[e as usize].truth[i];
        match result {
            Ok(keys) => {
                let has_bsn = keys.person.iter().any(|p| p.kind == KeyKind::Bsn);
                if has_bsn {
                    export_summaries[e as usize].with_bsn += 1;
                }
                for p in &keys.person {
                    kind_counts[p.kind.index()] += 1;
                }
                n_person += keys.person.len() as u64;
                n_household += keys.household.len() as u64;
                n_family += keys.family.iter().map(|f| f.len() as u64).sum::<u64>();
                recs.push(Rec {
                    at: (e, i),
                    export: e,
                    person: truth.person,
                    noise: truth.noise,
                    has_bsn,
                    rejected: false,
                    person_keys: keys.person,
                    household_keys: keys.household,
                });
            }
            Err(errors) => {
                export_summaries[e as usize].rejected += 1;
                recs.push(Rec {
                    at: (e, i),
                    export: e,
                    person: truth.person,
                    noise: truth.noise,
                    has_bsn: !exports[e as usize].records[i].person.bsn.trim().is_empty(),
                    rejected: true,
                    person_keys: Vec::new(),
                    household_keys: Vec::new(),
                });
                for fe in errors {
                    *reject_counts
                        .entry(format!("{}: {}", fe.field, fe.reason.code()))
                        .or_default() += 1;
                }
            }
        }
    }
    let t_pseudo = t0.elapsed().as_secs_f64();

    // Index: (key fingerprint, record) sorted; runs of equal keys give candidates.
    let t1 = Instant::now();
    let mut entries: Vec<(u64, u32)> = Vec::with_capacity((n_person + n_household) as usize);
    for (r, rec) in recs.iter().enumerate() {
        // A key that links only with a household key adds no candidate the household
        // key does not (and, like the index, is not looked up on its own).
        for p in rec
            .person_keys
            .iter()
            .chain(&rec.household_keys)
            .filter(|p| p.kind.strength() != Strength::WithHousehold)
        {
            entries.push((fingerprint(p), r as u32));
        }
    }
    entries.sort_unstable();
    let mut candidates: Vec<u64> = Vec::new();
    let mut start = 0;
    while start < entries.len() {
        let mut end = start + 1;
        while end < entries.len() && entries[end].0 == entries[start].0 {
            end += 1;
        }
        let run = &entries[start..end];
        for (x, &(_, a)) in run.iter().enumerate() {
            for &(_, b) in &run[x + 1..] {
                if recs[a as usize].export != recs[b as usize].export {
                    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
                    candidates.push((u64::from(lo) << 32) | u64::from(hi));
                }
            }
        }
        start = end;
    }
    drop(entries);
    candidates.sort_unstable();
    candidates.dedup();
    let t_index = t1.elapsed().as_secs_f64();

    // Decide candidates.
    let t2 = Instant::now();
    let kin_of = |id: u32| kin.get(&id);
    let mut links: Vec<(u32, u32)> = Vec::new();
    let mut false_links = 0u64;
    let mut false_by_relation: BTreeMap<Relation, u64> = BTreeMap::new();
    let mut false_by_noise: BTreeMap<Noise, u64> = BTreeMap::new();
    let mut false_by_shared: BTreeMap<String, u64> = BTreeMap::new();
    let mut true_by_rule: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut example_false = Vec::new();
    for &c in &candidates {
        let (a, b) = ((c >> 32) as usize, (c & 0xffff_ffff) as usize);
        let (ra, rb) = (&recs[a], &recs[b]);
        if !same_person(
            &ra.person_keys,
            &ra.household_keys,
            &rb.person_keys,
            &rb.household_keys,
        ) {
            continue;
        }
        links.push((a as u32, b as u32));
        if ra.person == rb.person {
            *true_by_rule.entry(rule(ra, rb)).or_default() += 1;
        } else {
            false_links += 1;
            let rel = relation(ra.person, rb.person, kin_of);
            *false_by_relation.entry(rel).or_default() += 1;
            for n in ra.noise.union(rb.noise).iter() {
                *false_by_noise.entry(n).or_default() += 1;
            }
            *false_by_shared.entry(shared_kinds(ra, rb)).or_default() += 1;
            if example_false.len() < opts.examples {
                example_false.push(example(exports, ra, rb, rel));
            }
        }
    }
    let predicted = links.len() as u64;
    let linked: std::collections::HashSet<u64> = links
        .iter()
        .map(|&(a, b)| (u64::from(a) << 32) | u64::from(b))
        .collect();

    // True pairs: records of one person in different exports.
    let mut by_person: Vec<(u32, u32)> = recs
        .iter()
        .enumerate()
        .map(|(r, rec)| (rec.person, r as u32))
        .collect();
    by_person.sort_unstable();
    let roots = entity_roots(recs.len(), &links);
    let mut class_true = [0u64; 3];
    let mut class_linked = [0u64; 3];
    let mut class_entity = [0u64; 3];
    let mut pair_counts: BTreeMap<(u16, u16), (u64, u64)> = BTreeMap::new();
    let mut misses_by_noise: BTreeMap<Noise, u64> = BTreeMap::new();
    let mut pairs_by_noise: BTreeMap<Noise, u64> = BTreeMap::new();
    let mut misses_by_combo: BTreeMap<String, u64> = BTreeMap::new();
    let mut misses_by_shared: BTreeMap<String, u64> = BTreeMap::new();
    let mut example_misses = Vec::new();
    let mut start = 0;
    while start < by_person.len() {
        let mut end = start + 1;
        while end < by_person.len() && by_person[end].0 == by_person[start].0 {
            end += 1;
        }
        let group = &by_person[start..end];
        for (x, &(_, a)) in group.iter().enumerate() {
            for &(_, b) in &group[x + 1..] {
                let (ra, rb) = (&recs[a as usize], &recs[b as usize]);
                if ra.export == rb.export {
                    continue;
                }
                let class = BsnClass::of(ra.has_bsn, rb.has_bsn) as usize;
                class_true[class] += 1;
                if roots[a as usize] == roots[b as usize] {
                    class_entity[class] += 1;
                }
                let ep = pair_counts
                    .entry((ra.export.min(rb.export), ra.export.max(rb.export)))
                    .or_default();
                ep.0 += 1;
                let noise = ra.noise.union(rb.noise);
                for n in noise.iter() {
                    *pairs_by_noise.entry(n).or_default() += 1;
                }
                let (lo, hi) = if a < b { (a, b) } else { (b, a) };
                if linked.contains(&((u64::from(lo) << 32) | u64::from(hi))) {
                    class_linked[class] += 1;
                    ep.1 += 1;
                    continue;
                }
                for n in noise.iter() {
                    *misses_by_noise.entry(n).or_default() += 1;
                }
                let combo = combination(ra.noise, rb.noise);
                *misses_by_combo.entry(combo).or_default() += 1;
                *misses_by_shared.entry(shared_kinds(ra, rb)).or_default() += 1;
                if example_misses.len() < opts.examples {
                    example_misses.push(example(exports, ra, rb, Relation::Same));
                }
            }
        }
        start = end;
    }
    let ratio = |n: u64, d: u64| if d == 0 { 1.0 } else { n as f64 / d as f64 };
    let by_class = |linked: &[u64; 3]| -> Vec<ClassRecall> {
        BsnClass::ALL
            .iter()
            .map(|&c| ClassRecall {
                class: c,
                true_pairs: class_true[c as usize],
                linked: linked[c as usize],
                recall: ratio(linked[c as usize], class_true[c as usize]),
            })
            .collect()
    };
    let entity = entity_figures(
        &recs,
        &roots,
        class_true.iter().sum::<u64>(),
        by_class(&class_entity),
    );
    let t_decide = t2.elapsed().as_secs_f64();

    let total_true: u64 = class_true.iter().sum::<u64>();
    let total_linked: u64 = class_linked.iter().sum();
    let total_misses = total_true - total_linked;
    let recall = by_class(&class_linked);
    let precision = 1.0
        - if predicted == 0 {
            0.0
        } else {
            ratio(false_links, predicted)
        };
    let mut floors = vec![Floor {
        name: "precision".into(),
        value: precision,
        floor: PRECISION_FLOOR,
        ok: precision >= PRECISION_FLOOR,
    }];
    for r in &recall {
        floors.push(Floor {
            name: format!("recall, {}", r.class.label()),
            value: r.recall,
            floor: r.class.floor(),
            ok: r.recall >= r.class.floor(),
        });
    }
    let accepted = recs.iter().filter(|r| !r.rejected).count() as u64;
    let records = flat.len() as u64;
    let per_record = |n: u64| ratio(n, accepted.max(1));
    let mut noise_records: BTreeMap<Noise, u64> = BTreeMap::new();
    for r in &recs {
        for n in r.noise.iter() {
            *noise_records.entry(n).or_default() += 1;
        }
    }
    let noise_counts = |m: &BTreeMap<Noise, u64>, total: u64| -> Vec<Count> {
        let mut v: Vec<Count> = m
            .iter()
            .map(|(n, &c)| Count {
                label: n.name().to_string(),
                count: c,
                share: ratio(c, total.max(1)),
            })
            .collect();
        v.sort_by(|a, b| b.count.cmp(&a.count).then(a.label.cmp(&b.label)));
        v
    };
    let mut miss_rate: Vec<Count> = pairs_by_noise
        .iter()
        .map(|(n, &pairs)| Count {
            label: n.name().to_string(),
            count: pairs,
            share: ratio(misses_by_noise.get(n).copied().unwrap_or(0), pairs),
        })
        .collect();
    miss_rate.sort_by(|a, b| b.share.total_cmp(&a.share).then(a.label.cmp(&b.label)));
    let misses_by_class: Vec<Count> = BsnClass::ALL
        .iter()
        .map(|&c| {
            let m = class_true[c as usize] - class_linked[c as usize];
            Count {
                label: c.label().to_string(),
                count: m,
                share: ratio(m, total_misses.max(1)),
            }
        })
        .collect();
    let passed = floors.iter().all(|f| f.ok);
    let with_bsn_true = class_true[0] + class_true[1];
    Report {
        persons,
        exports: export_summaries,
        records,
        rejected: records - accepted,
        rejects: counts(&reject_counts, records - accepted, 20),
        person_keys_per_record: per_record(n_person),
        household_keys_per_record: per_record(n_household),
        family_keys_per_record: per_record(n_family),
        person_keys_by_kind: KeyKind::ALL
            .iter()
            .filter(|k| k.is_person())
            .map(|k| Count {
                label: k.code().to_string(),
                count: kind_counts[k.index()],
                share: per_record(kind_counts[k.index()]),
            })
            .collect(),
        candidate_pairs: candidates.len() as u64,
        recall,
        recall_all: ratio(total_linked, total_true),
        recall_with_bsn: ratio(class_linked[0] + class_linked[1], with_bsn_true),
        recall_by_export_pair: pair_counts
            .iter()
            .map(|(&(a, b), &(t, l))| PairRecall {
                a: exports[a as usize].name.clone(),
                b: exports[b as usize].name.clone(),
                true_pairs: t,
                linked: l,
                recall: ratio(l, t),
            })
            .collect(),
        predicted_links: predicted,
        false_links,
        precision,
        true_links_by_rule: counts(
            &true_by_rule
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            total_linked,
            10,
        ),
        misses_by_class,
        misses_by_noise: noise_counts(&misses_by_noise, total_misses),
        misses_by_combination: counts(&misses_by_combo, total_misses, 25),
        misses_by_shared_keys: counts(&misses_by_shared, total_misses, 15),
        miss_rate_by_noise: miss_rate,
        false_links_by_relation: false_by_relation
            .iter()
            .map(|(r, &c)| Count {
                label: r.name().to_string(),
                count: c,
                share: ratio(c, false_links.max(1)),
            })
            .collect(),
        false_links_by_noise: noise_counts(&false_by_noise, false_links),
        false_links_by_shared_keys: counts(&false_by_shared, false_links, 15),
        noise_in_records: noise_counts(&noise_records, accepted),
        entity,
        floors,
        passed,
        example_misses,
        example_false_links: example_false,
        timings: Timings {
            pseudonymise: t_pseudo,
            index: t_index,
            decide: t_decide,
        },
    }
}

/// Normalises and derives every record, on `opts.threads` threads, in input order.
fn pseudonymise_all(
    exports: &[PartnerExport],
    flat: &[(u16, usize)],
    opts: &Options,
) -> Vec<Result<crate::pseudonym::SubjectKeys, Vec<FieldError>>> {
    let threads = opts.threads.max(1);
    let chunk = flat.len().div_ceil(threads).max(1);
    let run = |part: &[(u16, usize)]| {
        part.iter()
            .map(|&(e, i)| pseudonymise(&opts.key, &exports[e as usize].records[i], opts.today))
            .collect::<Vec<_>>()
    };
    if threads == 1 || flat.len() < 1000 {
        return run(flat);
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = flat
            .chunks(chunk)
            .map(|part| s.spawn(move || run(part)))
            .collect();
        let mut out = Vec::with_capacity(flat.len());
        for (h, part) in handles.into_iter().zip(flat.chunks(chunk)) {
            match h.join() {
                Ok(v) => out.extend(v),
                // A worker cannot panic on valid input; redo its part here if it did.
                Err(_) => out.extend(run(part)),
            }
        }
        out
    })
}

/// 64 bits of a pseudonym, with its kind mixed in: equal keys give equal fingerprints,
/// and different keys collide with probability 2^-64 (a collision would only add a
/// candidate, which the rule then judges on the full keys).
fn fingerprint(p: &Pseudonym) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&p.bytes[..8]);
    u64::from_le_bytes(b) ^ ((p.kind.index() as u64) << 56)
}

/// Which kinds of key two records share, e.g. "in+ai+adr"; "none" if nothing.
fn shared_kinds(a: &Rec, b: &Rec) -> String {
    if a.rejected || b.rejected {
        return "a record was rejected".to_string();
    }
    let mut kinds: Vec<&str> = Vec::new();
    for k in KeyKind::ALL {
        let (ak, bk): (&[Pseudonym], &[Pseudonym]) = if k.is_person() {
            (&a.person_keys, &b.person_keys)
        } else {
            (&a.household_keys, &b.household_keys)
        };
        if ak.iter().any(|p| p.kind == k && bk.contains(p)) {
            kinds.push(k.code());
        }
    }
    if kinds.is_empty() {
        "none".to_string()
    } else {
        kinds.join("+")
    }
}

/// What decided a true link.
fn rule(a: &Rec, b: &Rec) -> &'static str {
    let shares = |k: KeyKind| {
        a.person_keys
            .iter()
            .any(|p| p.kind == k && b.person_keys.contains(p))
    };
    if shares(KeyKind::Bsn) {
        "bsn"
    } else if shares(KeyKind::VNumber) {
        "v_number"
    } else if KeyKind::ALL
        .iter()
        .any(|&k| k.strength() == Strength::Alone && shares(k))
    {
        "name_key"
    } else if !KeyKind::ALL
        .iter()
        .any(|&k| k.strength() == Strength::WithAnother && shares(k))
    {
        "household_rung_plus_address"
    } else if a
        .household_keys
        .iter()
        .any(|h| b.household_keys.contains(h))
    {
        "weak_plus_address"
    } else {
        "two_weak_keys"
    }
}

/// The noise of a pair as "x+y | z" (first record | second record), sorted so that
/// the same combination in either order counts once; "no noise" when there is none.
fn combination(a: NoiseSet, b: NoiseSet) -> String {
    let fmt = |s: NoiseSet| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.iter().map(Noise::name).collect::<Vec<_>>().join("+")
        }
    };
    if a.is_empty() && b.is_empty() {
        return "no noise".to_string();
    }
    let (x, y) = if a <= b { (a, b) } else { (b, a) };
    format!("{} | {}", fmt(x), fmt(y))
}

fn counts(m: &BTreeMap<String, u64>, total: u64, top: usize) -> Vec<Count> {
    let mut v: Vec<Count> = m
        .iter()
        .map(|(k, &c)| Count {
            label: k.clone(),
            count: c,
            share: if total == 0 {
                0.0
            } else {
                c as f64 / total as f64
            },
        })
        .collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then(a.label.cmp(&b.label)));
    v.truncate(top);
    v
}

fn example(exports: &[PartnerExport], ra: &Rec, rb: &Rec, rel: Relation) -> PairExample {
    let field = |at: (u16, usize)| {
        exports[at.0 as usize]
            .records
            .get(at.1)
            .cloned()
            .unwrap_or_default()
    };
    PairExample {
        relation: rel.name().to_string(),
        shared: shared_kinds(ra, rb),
        a_export: exports[ra.export as usize].name.clone(),
        a_noise: ra.noise.to_string(),
        a: field(ra.at),
        b_export: exports[rb.export as usize].name.clone(),
        b_noise: rb.noise.to_string(),
        b: field(rb.at),
    }
}

/// Union–find over the predicted links: the entity (root record) of every record.
fn entity_roots(n: usize, links: &[(u32, u32)]) -> Vec<u32> {
    let mut parent: Vec<u32> = (0..n as u32).collect();
    fn find(parent: &mut [u32], mut x: u32) -> u32 {
        while parent[x as usize] != x {
            let up = parent[parent[x as usize] as usize];
            parent[x as usize] = up;
            x = up;
        }
        x
    }
    for &(a, b) in links {
        let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
        if ra != rb {
            parent[ra.max(rb) as usize] = ra.min(rb);
        }
    }
    (0..n as u32).map(|r| find(&mut parent, r)).collect()
}

/// Pair counts per entity.
fn entity_figures(
    recs: &[Rec],
    roots: &[u32],
    total_true: u64,
    recall_by_class: Vec<ClassRecall>,
) -> EntityFigures {
    // (entity, export) counts and (entity, person, export) counts.
    let mut by_entity: Vec<(u32, u16)> = Vec::with_capacity(recs.len());
    let mut by_person: Vec<(u32, u32, u16)> = Vec::with_capacity(recs.len());
    for (rec, &root) in recs.iter().zip(roots) {
        by_entity.push((root, rec.export));
        by_person.push((root, rec.person, rec.export));
    }
    by_entity.sort_unstable();
    by_person.sort_unstable();
    let (pairs, largest) = cross_pairs(by_entity.iter().map(|&(e, x)| ((e, 0), x)));
    let (true_pairs, _) = cross_pairs(by_person.iter().map(|&(e, p, x)| ((e, p), x)));
    EntityFigures {
        recall: if total_true == 0 {
            1.0
        } else {
            true_pairs as f64 / total_true as f64
        },
        precision: if pairs == 0 {
            1.0
        } else {
            true_pairs as f64 / pairs as f64
        },
        pairs,
        largest,
        recall_by_class,
    }
}

/// For items sorted by group then export: the number of pairs within a group from
/// different exports, and the largest group.
fn cross_pairs(items: impl Iterator<Item = ((u32, u32), u16)>) -> (u64, u64) {
    let mut total = 0u64;
    let mut largest = 0u64;
    let mut group: Option<(u32, u32)> = None;
    let (mut n, mut sum_sq, mut run_export, mut run) = (0u64, 0u64, u16::MAX, 0u64);
    let close = |n: u64, sum_sq: u64, total: &mut u64, largest: &mut u64| {
        *total += (n * n - sum_sq) / 2;
        *largest = (*largest).max(n);
    };
    for (g, x) in items {
        if group != Some(g) {
            if group.is_some() {
                sum_sq += run * run;
                close(n, sum_sq, &mut total, &mut largest);
            }
            group = Some(g);
            (n, sum_sq, run_export, run) = (0, 0, x, 0);
        }
        if x != run_export {
            sum_sq += run * run;
            run_export = x;
            run = 0;
        }
        run += 1;
        n += 1;
    }
    if group.is_some() {
        sum_sq += run * run;
        close(n, sum_sq, &mut total, &mut largest);
    }
    (total, largest)
}

fn pct(x: f64) -> String {
    format!("{:.3}%", x * 100.0)
}

impl Report {
    /// The report as text for people.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "samenloop matching quality (match-key ladder, spec v1)");
        if let Some(p) = self.persons {
            let _ = writeln!(s, "population: {p} synthetic persons");
        }
        let _ = writeln!(s, "\nexports:");
        for e in &self.exports {
            let _ = writeln!(
                s,
                "  {:<10} {:>8} records  {:>5.1}% with BSN  {} rejected  ({})",
                e.name,
                e.records,
                100.0 * e.with_bsn as f64 / (e.records.max(1)) as f64,
                e.rejected,
                e.description
            );
        }
        let _ = writeln!(
            s,
            "  records: {}, rejected: {}",
            self.records, self.rejected
        );
        for r in &self.rejects {
            let _ = writeln!(s, "    rejected {:>7}  {}", r.count, r.label);
        }
        let _ = writeln!(
            s,
            "\nkeys per record: {:.2} person, {:.2} household, {:.2} family (parents)",
            self.person_keys_per_record,
            self.household_keys_per_record,
            self.family_keys_per_record
        );
        let by_kind: Vec<String> = self
            .person_keys_by_kind
            .iter()
            .map(|c| format!("{} {:.2}", c.label, c.share))
            .collect();
        let _ = writeln!(s, "  by kind: {}", by_kind.join(", "));
        let _ = writeln!(
            s,
            "candidate pairs (share a key, different exports): {}",
            self.candidate_pairs
        );

        let _ = writeln!(
            s,
            "\nrecall (true cross-export pairs of one person linked):"
        );
        for r in &self.recall {
            let _ = writeln!(
                s,
                "  {:<20} {:>9} / {:>9}  {:>9}  (floor {})",
                r.class.label(),
                r.linked,
                r.true_pairs,
                pct(r.recall),
                pct(r.class.floor())
            );
        }
        let _ = writeln!(
            s,
            "  {:<20} {:>31}\n  {:<20} {:>31}",
            "at least one BSN",
            pct(self.recall_with_bsn),
            "all pairs",
            pct(self.recall_all)
        );
        let _ = writeln!(s, "  by pair of exports:");
        for p in &self.recall_by_export_pair {
            let _ = writeln!(
                s,
                "    {} ~ {}  {:>9} / {:>9}  {:>9}",
                p.a,
                p.b,
                p.linked,
                p.true_pairs,
                pct(p.recall)
            );
        }
        let _ = writeln!(
            s,
            "precision: {} false of {} predicted links = {}  (floor {})",
            self.false_links,
            self.predicted_links,
            pct(self.precision),
            pct(PRECISION_FLOOR)
        );
        section(&mut s, "true links decided by", &self.true_links_by_rule);
        section(&mut s, "misses by BSN class", &self.misses_by_class);
        section(
            &mut s,
            "misses by noise on either record (share of misses)",
            &self.misses_by_noise,
        );
        let _ = writeln!(s, "\nmiss rate of pairs showing each noise:");
        for c in &self.miss_rate_by_noise {
            let _ = writeln!(
                s,
                "  {:<18} {:>9} pairs  {:>8} missed",
                c.label,
                c.count,
                pct(c.share)
            );
        }
        section(
            &mut s,
            "misses by noise combination (record | record)",
            &self.misses_by_combination,
        );
        section(
            &mut s,
            "misses by key kinds still shared",
            &self.misses_by_shared_keys,
        );
        section(
            &mut s,
            "false links by relation",
            &self.false_links_by_relation,
        );
        section(
            &mut s,
            "false links by noise on either record",
            &self.false_links_by_noise,
        );
        section(
            &mut s,
            "false links by shared key kinds",
            &self.false_links_by_shared_keys,
        );
        section(
            &mut s,
            "noise in records (share of records)",
            &self.noise_in_records,
        );
        let _ = writeln!(
            s,
            "\nentities (transitive closure of links): recall {}, precision {} over {} pairs, largest {} records",
            pct(self.entity.recall),
            pct(self.entity.precision),
            self.entity.pairs,
            self.entity.largest
        );
        for r in &self.entity.recall_by_class {
            let _ = writeln!(
                s,
                "  {:<20} {:>9} / {:>9}  {:>9}",
                r.class.label(),
                r.linked,
                r.true_pairs,
                pct(r.recall)
            );
        }
        let _ = writeln!(s, "\nfloors:");
        for f in &self.floors {
            let _ = writeln!(
                s,
                "  {:<4} {:<30} {:>9} >= {}",
                if f.ok { "ok" } else { "FAIL" },
                f.name,
                pct(f.value),
                pct(f.floor)
            );
        }
        let _ = writeln!(
            s,
            "time: pseudonymise {:.2} s, index {:.2} s, decide {:.2} s",
            self.timings.pseudonymise, self.timings.index, self.timings.decide
        );
        for (title, list) in [
            ("example misses", &self.example_misses),
            ("example false links", &self.example_false_links),
        ] {
            if list.is_empty() {
                continue;
            }
            let _ = writeln!(s, "\n{title} (synthetic records):");
            for x in list {
                let _ = writeln!(s, "  {} | shared {}", x.relation, x.shared);
                for (e, n, r) in [
                    (&x.a_export, &x.a_noise, &x.a),
                    (&x.b_export, &x.b_noise, &x.b),
                ] {
                    let p = &r.person;
                    let _ = writeln!(
                        s,
                        "    {e} [{n}] bsn={} given={:?} init={:?} prefix={:?} family={:?} full={:?} born={} addr={} {} {}",
                        p.bsn,
                        p.given_names,
                        p.initials,
                        p.prefix,
                        p.family_name,
                        p.full_name,
                        p.birth_date,
                        r.postcode,
                        r.house_number,
                        r.house_number_addition
                    );
                }
            }
        }
        s
    }
}

fn section(s: &mut String, title: &str, list: &[Count]) {
    let _ = writeln!(s, "\n{title}:");
    if list.is_empty() {
        let _ = writeln!(s, "  (none)");
    }
    for c in list {
        let _ = writeln!(s, "  {:>9}  {:>8}  {}", c.count, pct(c.share), c.label);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_pairs_counts_pairs_of_different_exports() {
        // Group 1: exports 0,0,1 → 2 pairs; group 2: 0,1,2 → 3 pairs.
        let items = vec![
            ((1, 0), 0u16),
            ((1, 0), 0),
            ((1, 0), 1),
            ((2, 0), 0),
            ((2, 0), 1),
            ((2, 0), 2),
        ];
        assert_eq!(cross_pairs(items.into_iter()), (5, 3));
        assert_eq!(cross_pairs(std::iter::empty()), (0, 0));
    }

    fn record(
        reference: &str,
        bsn: &str,
        given: &str,
        family: &str,
        born: &str,
        pc: &str,
    ) -> crate::pseudonym::SubjectFields {
        crate::pseudonym::SubjectFields {
            reference: reference.into(),
            person: crate::pseudonym::PersonFields {
                bsn: bsn.into(),
                given_names: given.into(),
                family_name: family.into(),
                birth_date: born.into(),
                ..Default::default()
            },
            postcode: pc.into(),
            house_number: "1".into(),
            ..Default::default()
        }
    }

    fn export(name: &str, records: Vec<(crate::pseudonym::SubjectFields, u32)>) -> PartnerExport {
        PartnerExport {
            name: name.into(),
            profile: 0,
            truth: records
                .iter()
                .map(|(_, p)| crate::synth::RecordTruth {
                    person: *p,
                    noise: NoiseSet::EMPTY,
                })
                .collect(),
            records: records.into_iter().map(|(r, _)| r).collect(),
            csv: String::new(),
            mapping: String::new(),
        }
    }

    #[test]
    fn accounting_of_links_misses_false_links_and_rejects() {
        let a = export(
            "a",
            vec![
                (
                    record("a1", "111222333", "Jan", "de Vries", "1980-01-01", "1234AB"),
                    1,
                ),
                // Person 2 with an impossible date: rejected, so its pair is missed.
                (
                    record("a2", "123456782", "Piet", "Bos", "1980-02-30", "1234AC"),
                    2,
                ),
            ],
        );
        let b = export(
            "b",
            vec![
                (
                    record("b1", "111222333", "Jan", "Vries", "01-01-1980", "1234 AB"),
                    1,
                ),
                (
                    record("b2", "123456782", "Piet", "Bos", "1980-02-03", "1234AC"),
                    2,
                ),
                // Person 3: a namesake born the same day, without BSN, elsewhere.
                (
                    record("b3", "", "Jan", "de Vries", "1980-01-01", "9999ZZ"),
                    3,
                ),
            ],
        );
        let kin: HashMap<u32, Kin> = (1..=3)
            .map(|p| {
                (
                    p,
                    Kin {
                        household: p,
                        ..Default::default()
                    },
                )
            })
            .collect();
        let opts = Options {
            key: DomainKey::new(crate::pseudonym::KeyId::parse("t").unwrap(), [1; 32]),
            today: crate::synth::REFERENCE_DATE,
            threads: 1,
            examples: 5,
        };
        let r = evaluate(&[a, b], &kin, Some(3), &opts);
        assert_eq!((r.records, r.rejected), (5, 1));
        assert_eq!(r.rejects[0].label, "birth_date: date_impossible");
        let both = &r.recall[BsnClass::Both as usize];
        assert_eq!((both.true_pairs, both.linked), (2, 1));
        assert_eq!(r.recall[BsnClass::One as usize].true_pairs, 0);
        assert_eq!((r.predicted_links, r.false_links), (2, 1));
        assert!((r.precision - 0.5).abs() < 1e-12);
        assert_eq!(r.false_links_by_relation[0].label, "unrelated");
        assert_eq!(r.misses_by_shared_keys[0].label, "a record was rejected");
        assert_eq!(r.example_false_links.len(), 1);
        assert!(!r.passed);
        assert_eq!(r.entity.pairs, 2);
        assert_eq!(r.entity.largest, 3);
    }

    #[test]
    fn combinations_are_order_free() {
        let mut a = NoiseSet::EMPTY;
        a.insert(Noise::Moved);
        let mut b = NoiseSet::EMPTY;
        b.insert(Noise::TypoGiven);
        assert_eq!(combination(a, b), combination(b, a));
        assert_eq!(combination(NoiseSet::EMPTY, NoiseSet::EMPTY), "no noise");
    }
}
