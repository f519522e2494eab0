//! A synthetic Dutch population and noisy partner exports of it, for measuring
//! matching quality (`samenloop synth`, `samenloop quality`).
//!
//! Everything is made up and deterministic: the same seed gives the same population
//! and the same exports on every platform, with every build (the PRNG is written
//! here, [`rng`]). The population depends only on the seed and the number of
//! persons; each partner's export only on those, the partner's number and the noise
//! rates, so adding a partner changes no other export.
//!
//! ```text
//! population (households, families, twins, names, BSNs)     population.rs, names.rs
//!     │ each partner samples persons (designed overlap)
//!     ▼
//! partner exports: own columns, formats and noise           partner.rs, noise.rs
//!     │ records (SubjectFields) + CSV + mapping TOML; truth kept apart
//!     ▼
//! files: partner-a.csv, partner-a.mapping.toml, ..., truth.csv   files.rs
//! ```

pub mod files;
pub mod names;
pub mod noise;
pub mod partner;
pub mod population;
pub mod rng;

pub use noise::{Noise, NoiseRates, NoiseSet};
pub use partner::{PROFILES, PartnerExport, Profile, RecordTruth};
pub use population::{Kin, Population, Relation};

use crate::pseudonym::Date;

/// The fixed reference date of synthetic data: births are on or before it, and
/// evaluations use it as the processing date, so results never depend on the clock.
pub const REFERENCE_DATE: Date = Date {
    year: 2026,
    month: 1,
    day: 1,
};

/// Most partners (file stems partner-a .. partner-z).
pub const MAX_PARTNERS: usize = 26;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Config {
    /// Persons in the population (whole households: a few more may be made).
    pub persons: usize,
    /// The seed.
    pub seed: u64,
    /// Number of partner exports (2..=26).
    pub partners: usize,
    /// Reference date (every birth on or before it).
    pub today: Date,
    /// Noise rates shared by all partners.
    pub noise: NoiseRates,
}

impl Config {
    /// A configuration with the default reference date and noise rates.
    pub fn new(persons: usize, seed: u64, partners: usize) -> Config {
        Config {
            persons,
            seed,
            partners,
            today: REFERENCE_DATE,
            noise: NoiseRates::default(),
        }
    }
}

/// A generated population with its partner exports.
#[derive(Debug, Clone)]
pub struct Synthetic {
    /// The population (the truth).
    pub population: Population,
    /// One export per partner.
    pub exports: Vec<PartnerExport>,
}

/// Why nothing was generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Fewer than 2 or more than 26 partners.
    #[error("the number of partners must be 2 to {MAX_PARTNERS}")]
    Partners,
    /// No persons.
    #[error("the number of persons must be at least 1")]
    Persons,
}

/// Generates the population and the partner exports.
pub fn generate(config: &Config) -> Result<Synthetic, ConfigError> {
    if !(2..=MAX_PARTNERS).contains(&config.partners) {
        return Err(ConfigError::Partners);
    }
    if config.persons == 0 {
        return Err(ConfigError::Persons);
    }
    let population = population::generate(config.seed, config.persons, config.today);
    let exports = (0..config.partners)
        .map(|k| partner::export(&population, k, config.seed, &config.noise))
        .collect();
    Ok(Synthetic {
        population,
        exports,
    })
}

#[cfg(test)]
mod tests {
    use super::partner::PROFILES;
    use super::*;
    use crate::pseudonym::name::is_tussenvoegsel;
    use crate::pseudonym::{FieldError, Reason, normalise_subject, number};
    use std::collections::{HashMap, HashSet};

    fn small(seed: u64) -> (Config, Synthetic) {
        let config = Config::new(30_000, seed, 5);
        let syn = generate(&config).unwrap();
        (config, syn)
    }

    #[test]
    fn same_seed_same_output_other_seed_other_output() {
        let a = generate(&Config::new(3_000, 7, 3)).unwrap();
        let b = generate(&Config::new(3_000, 7, 3)).unwrap();
        let c = generate(&Config::new(3_000, 8, 3)).unwrap();
        for (x, y) in a.exports.iter().zip(&b.exports) {
            assert_eq!(x.csv, y.csv);
            assert_eq!(x.mapping, y.mapping);
            assert_eq!(x.truth, y.truth);
        }
        assert_ne!(a.exports[0].csv, c.exports[0].csv);
        // Adding a partner changes neither the population nor the other exports.
        let d = generate(&Config::new(3_000, 7, 4)).unwrap();
        assert_eq!(d.population.persons.len(), a.population.persons.len());
        for (x, y) in a.exports.iter().zip(&d.exports) {
            assert_eq!(x.csv, y.csv);
        }
        // A fixed fingerprint of seed 1: if this changes, every published figure changes.
        let e = generate(&Config::new(1_000, 1, 2)).unwrap();
        let line = e.exports[0]
            .csv
            .lines()
            .nth(1)
            .unwrap_or_default()
            .to_string();
        assert!(line.starts_with("GGZ-"), "{line}");
    }

    #[test]
    fn config_is_checked() {
        assert_eq!(
            generate(&Config::new(10, 1, 1)).unwrap_err(),
            ConfigError::Partners
        );
        assert_eq!(
            generate(&Config::new(10, 1, 27)).unwrap_err(),
            ConfigError::Partners
        );
        assert_eq!(
            generate(&Config::new(0, 1, 2)).unwrap_err(),
            ConfigError::Persons
        );
    }

    #[test]
    fn bsns_are_valid_and_unique_v_numbers_for_some_without() {
        let (_, syn) = small(1);
        let pop = &syn.population;
        let mut seen = HashSet::new();
        let mut without = 0;
        let mut with_v = 0;
        for p in &pop.persons {
            match &p.bsn {
                Some(b) => {
                    assert_eq!(number::bsn(b).as_deref(), Ok(b.as_str()), "{b}");
                    assert!(seen.insert(b.clone()), "duplicate BSN");
                    assert!(p.v_number.is_none());
                }
                None => {
                    without += 1;
                    if let Some(v) = &p.v_number {
                        assert_eq!(number::v_number(v).as_deref(), Ok(v.as_str()));
                        with_v += 1;
                    }
                }
            }
        }
        let share = without as f64 / pop.persons.len() as f64;
        assert!((0.01..0.06).contains(&share), "{share} without BSN");
        assert!(
            with_v > 0 && with_v < without,
            "some with, some without V-nummer"
        );
    }

    #[test]
    fn twins_exist_at_a_realistic_rate() {
        let (_, syn) = small(2);
        let pop = &syn.population;
        // Births: distinct (first parent, birth date) among children.
        let mut births = HashSet::new();
        let mut twin_pairs = 0;
        for p in &pop.persons {
            if let Some(&parent) = p.parents.first() {
                births.insert((parent, p.birth_date));
                if p.twin.is_some_and(|t| t > p.id) {
                    twin_pairs += 1;
                }
            }
        }
        let rate = twin_pairs as f64 / births.len() as f64;
        assert!(twin_pairs > 20, "{twin_pairs} twin pairs");
        assert!((0.008..0.03).contains(&rate), "twin births {rate}");
        // Some twins share their initial, most do not.
        let same_initial = pop
            .persons
            .iter()
            .filter_map(|p| Some((p, &pop.persons[p.twin? as usize])))
            .filter(|(p, q)| p.given_names[0].chars().next() == q.given_names[0].chars().next())
            .count();
        assert!(
            same_initial > 0 && same_initial < twin_pairs,
            "{same_initial}"
        );
    }

    #[test]
    fn households_families_and_names_look_dutch() {
        let (_, syn) = small(3);
        let pop = &syn.population;
        let per_household = pop.persons.len() as f64 / pop.households.len() as f64;
        assert!((1.9..2.4).contains(&per_household), "{per_household}");
        let with_prefix = pop
            .persons
            .iter()
            .filter(|p| !p.family.prefix.is_empty())
            .count() as f64
            / pop.persons.len() as f64;
        assert!(
            (0.15..0.40).contains(&with_prefix),
            "{with_prefix} with tussenvoegsel"
        );
        let several_given = pop
            .persons
            .iter()
            .filter(|p| p.given_names.len() > 1)
            .count() as f64
            / pop.persons.len() as f64;
        assert!((0.3..0.8).contains(&several_given), "{several_given}");
        let double_usage = pop
            .persons
            .iter()
            .filter(|p| p.usage_parts().len() == 2)
            .count();
        assert!(double_usage > 100);
        let non_ascii = pop
            .persons
            .iter()
            .filter(|p| !p.family.core.is_ascii() || p.given_names.iter().any(|g| !g.is_ascii()))
            .count();
        assert!(non_ascii > 300, "{non_ascii} with diacritics");
        for h in &pop.households {
            let pc = crate::pseudonym::address::postcode(&h.address.postcode);
            assert_eq!(pc.as_deref(), Ok(h.address.postcode.as_str()));
        }
    }

    #[test]
    fn exports_overlap_as_designed() {
        let (_, syn) = small(4);
        let n = syn.population.persons.len() as f64;
        let sets: Vec<HashSet<u32>> = syn
            .exports
            .iter()
            .map(|e| e.truth.iter().map(|t| t.person).collect())
            .collect();
        for (e, s) in syn.exports.iter().zip(&sets) {
            assert_eq!(
                s.len(),
                e.records.len(),
                "one record per person per partner"
            );
            let share = s.len() as f64 / n;
            assert!((0.2..0.45).contains(&share), "{}: {share}", e.name);
        }
        let both = sets[0].intersection(&sets[1]).count() as f64 / n;
        assert!(both > 0.08, "overlap {both}");
    }

    /// Observed rate of `noise` among records where `eligible` holds.
    fn rate(
        syn: &Synthetic,
        export: Option<usize>,
        noise: Noise,
        eligible: impl Fn(&population::Person) -> bool,
    ) -> f64 {
        let (mut n, mut hit) = (0u32, 0u32);
        for (i, e) in syn.exports.iter().enumerate() {
            if export.is_some_and(|x| x != i) {
                continue;
            }
            for t in &e.truth {
                if eligible(&syn.population.persons[t.person as usize]) {
                    n += 1;
                    hit += u32::from(t.noise.contains(noise));
                }
            }
        }
        f64::from(hit) / f64::from(n.max(1))
    }

    #[test]
    fn noise_appears_at_the_configured_rates() {
        let (config, syn) = small(5);
        let r = &config.noise;
        let all = |_: &population::Person| true;
        let near = |got: f64, want: f64, what: &str| {
            let tol = (want * 0.25).max(0.002);
            assert!((got - want).abs() <= tol, "{what}: {got:.4} vs {want:.4}");
        };
        near(
            rate(&syn, None, Noise::TypoGiven, all),
            r.typo_given * 0.95,
            "typo_given",
        );
        near(
            rate(&syn, None, Noise::TypoFamily, all),
            r.typo_family,
            "typo_family",
        );
        near(
            rate(&syn, None, Noise::DateError, all),
            r.date_error,
            "date_error",
        );
        near(
            rate(&syn, None, Noise::NoAddress, all),
            r.no_address,
            "no_address",
        );
        near(
            rate(&syn, None, Noise::Moved, all),
            r.moved * (1.0 - r.no_address),
            "moved",
        );
        for (k, e) in syn.exports.iter().enumerate() {
            let p = &PROFILES[e.profile];
            near(
                rate(&syn, Some(k), Noise::MissingBsn, |q| q.bsn.is_some()),
                p.missing_bsn,
                "missing_bsn",
            );
            near(
                rate(&syn, Some(k), Noise::InitialsOnly, all),
                p.initials_only,
                "initials_only",
            );
        }
        // Labels match the fields: a record labelled missing_bsn has no BSN, and a
        // record of a person with a BSN without that label has one.
        for e in &syn.exports {
            for (rec, t) in e.records.iter().zip(&e.truth) {
                let person = &syn.population.persons[t.person as usize];
                let has = !rec.person.bsn.is_empty();
                assert_eq!(
                    has,
                    person.bsn.is_some() && !t.noise.contains(Noise::MissingBsn)
                );
                if t.noise.contains(Noise::NoAddress) {
                    assert!(rec.postcode.is_empty());
                }
                if t.noise.contains(Noise::BsnZerosLost) {
                    assert!(rec.person.bsn.len() < 9 && !rec.person.bsn.starts_with('0'));
                }
            }
        }
    }

    /// Rejections that spec v1 makes of realistic records: a full name whose
    /// given-name part consists of words of table T only, one of them longer than a
    /// letter ("MIDSE, Les": the given name "Lies" with a typo; spec §3.5 cannot tell
    /// it from "Vries, de"), and a BSN that lost three or more leading zeros in a
    /// spreadsheet (6 digits or fewer are not padded, spec §3.7). Anything else is a
    /// generator bug.
    fn known_spec_defect(rec: &crate::pseudonym::SubjectFields, errors: &[FieldError]) -> bool {
        errors.iter().all(|e| match (e.field.as_str(), e.reason) {
            ("full_name", Reason::FullNameWithoutGivenName) => {
                let given = rec.person.full_name.split(',').nth(1).unwrap_or("");
                let words: Vec<String> = given
                    .split(['.', ' ', '-'])
                    .filter(|w| !w.is_empty())
                    .map(|w| noise::strip_diacritics(w).to_lowercase())
                    .collect();
                words.iter().all(|w| is_tussenvoegsel(w)) && words.iter().any(|w| w.len() > 1)
            }
            ("bsn", Reason::BsnLength) => rec.person.bsn.len() < 7,
            _ => false,
        })
    }

    #[test]
    fn every_record_normalises_apart_from_known_spec_defects() {
        let (config, syn) = small(6);
        let mut known: HashMap<String, usize> = HashMap::new();
        let mut records = 0;
        for e in &syn.exports {
            for rec in &e.records {
                records += 1;
                if let Err(errors) = normalise_subject(rec, config.today) {
                    assert!(
                        known_spec_defect(rec, &errors),
                        "{}: {:?} rejected: {errors:?}",
                        e.name,
                        rec
                    );
                    *known
                        .entry(errors[0].reason.code().to_string())
                        .or_default() += 1;
                }
            }
        }
        let rejected: usize = known.values().sum();
        assert!(rejected * 100 < records, "{known:?} of {records}");
    }

    #[test]
    fn written_files_read_back_identically() {
        let config = Config::new(2_000, 9, 3);
        let syn = generate(&config).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let paths = files::write_dir(&syn, &config, dir.path()).unwrap();
        assert_eq!(paths.len(), 3 * 2 + 1);
        let back = files::read_dir(dir.path()).unwrap();
        assert_eq!(back.exports.len(), 3);
        for (x, y) in syn.exports.iter().zip(&back.exports) {
            assert_eq!(x.name, y.name);
            assert_eq!(x.records, y.records);
            assert_eq!(x.truth, y.truth);
        }
        let kin = syn.population.kin();
        for (id, k) in &back.kin {
            assert_eq!(&kin[*id as usize], k);
        }
        // The truth never appears in an export: no person id column, no truth text.
        for e in &syn.exports {
            let header = e.csv.lines().next().unwrap_or_default().to_lowercase();
            assert!(
                !header.contains("person") && !header.contains("truth"),
                "{header}"
            );
        }
        let truth = std::fs::read_to_string(dir.path().join(files::TRUTH_FILE)).unwrap();
        assert!(truth.starts_with("# SYNTHETIC TRUTH, FOR EVALUATION ONLY"));
    }
}
