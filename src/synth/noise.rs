//! The noise model: what goes wrong between a person and a partner's record of them.
//!
//! Every deviation a record shows is labelled with a [`Noise`] so that the quality
//! report can say which kinds of noise the misses and false links come with. The
//! rates are per record and documented on [`NoiseRates`]; partner-specific rates
//! (missing BSN, initials only, usage name) sit in the partner profiles.

use super::rng::Rng;
use crate::pseudonym::Date;
use serde::Serialize;
use std::fmt;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// One kind of deviation of a record from the person's registered data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Noise {
    /// One typo (substitution, insertion, deletion, adjacent transposition) in the first given name.
    TypoGiven,
    /// One typo in the family name.
    TypoFamily,
    /// The birth date is wrong (day and month swapped, or one of day, month, year off by one).
    DateError,
    /// The person has a BSN but the record does not.
    MissingBsn,
    /// Only initials instead of given names.
    InitialsOnly,
    /// The call name (roepnaam, "Kees") instead of the official first name ("Cornelis").
    CallName,
    /// Only the first of several given names.
    FirstGivenOnly,
    /// The usage name as a double name ("de Vries-Jansen") instead of the birth name.
    UsageDouble,
    /// The partner's family name only, instead of the birth name.
    UsagePartner,
    /// A double family name in the other order ("Jansen-de Vries" for "de Vries-Jansen").
    SwappedDouble,
    /// The tussenvoegsel left out ("Vries" for "de Vries").
    DroppedPrefix,
    /// Diacritics left out ("Daniel" for "Daniël").
    Diacritics,
    /// The name in capitals.
    UpperCase,
    /// An old address: the person moved and this partner does not know it yet.
    Moved,
    /// No address at all.
    NoAddress,
    /// The BSN lost its leading zeros (a spreadsheet read it as a number).
    BsnZerosLost,
}

impl Noise {
    /// Every kind, in report order.
    pub const ALL: [Noise; 16] = [
        Noise::TypoGiven,
        Noise::TypoFamily,
        Noise::DateError,
        Noise::MissingBsn,
        Noise::InitialsOnly,
        Noise::CallName,
        Noise::FirstGivenOnly,
        Noise::UsageDouble,
        Noise::UsagePartner,
        Noise::SwappedDouble,
        Noise::DroppedPrefix,
        Noise::Diacritics,
        Noise::UpperCase,
        Noise::Moved,
        Noise::NoAddress,
        Noise::BsnZerosLost,
    ];

    /// The label used in reports and in truth.csv.
    pub fn name(self) -> &'static str {
        match self {
            Noise::TypoGiven => "typo_given",
            Noise::TypoFamily => "typo_family",
            Noise::DateError => "date_error",
            Noise::MissingBsn => "missing_bsn",
            Noise::InitialsOnly => "initials_only",
            Noise::CallName => "call_name",
            Noise::FirstGivenOnly => "first_given_only",
            Noise::UsageDouble => "usage_double",
            Noise::UsagePartner => "usage_partner",
            Noise::SwappedDouble => "swapped_double",
            Noise::DroppedPrefix => "dropped_prefix",
            Noise::Diacritics => "diacritics",
            Noise::UpperCase => "upper_case",
            Noise::Moved => "moved",
            Noise::NoAddress => "no_address",
            Noise::BsnZerosLost => "bsn_zeros_lost",
        }
    }

    /// Parses a label.
    pub fn parse(s: &str) -> Option<Noise> {
        Noise::ALL.into_iter().find(|n| n.name() == s)
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// The set of noise kinds one record shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct NoiseSet(u32);

impl NoiseSet {
    /// The empty set.
    pub const EMPTY: NoiseSet = NoiseSet(0);

    /// Adds a kind.
    pub fn insert(&mut self, n: Noise) {
        self.0 |= n.bit();
    }

    /// Whether the set holds `n`.
    pub fn contains(self, n: Noise) -> bool {
        self.0 & n.bit() != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The union of two sets.
    pub fn union(self, other: NoiseSet) -> NoiseSet {
        NoiseSet(self.0 | other.0)
    }

    /// The kinds in the set, in report order.
    pub fn iter(self) -> impl Iterator<Item = Noise> {
        Noise::ALL.into_iter().filter(move |n| self.contains(*n))
    }

    /// Parses the `a;b;c` form written by [`fmt::Display`]; unknown labels are errors.
    pub fn parse(s: &str) -> Result<NoiseSet, String> {
        let mut set = NoiseSet::EMPTY;
        for label in s.split(';').map(str::trim).filter(|l| !l.is_empty()) {
            set.insert(Noise::parse(label).ok_or_else(|| format!("unknown noise \"{label}\""))?);
        }
        Ok(set)
    }
}

impl fmt::Display for NoiseSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, n) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            f.write_str(n.name())?;
        }
        Ok(())
    }
}

/// Per-record noise rates that are the same for every partner.
///
/// Each is the probability that one record shows the deviation, among the records
/// where it can occur (a dropped tussenvoegsel needs a name with one). The
/// defaults are chosen to be realistic for Dutch administrative data, on the
/// pessimistic side; they are not measured on real exports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NoiseRates {
    /// A typo in the first given name: 1.5% of records.
    pub typo_given: f64,
    /// A typo in the family name: 1.5% of records.
    pub typo_family: f64,
    /// A wrong birth date: 0.5% of records.
    pub date_error: f64,
    /// The call name instead of the official first name: 10% of the records of
    /// people whose official first name has a common call name (Cornelis → Kees).
    pub call_name: f64,
    /// A double family name in the other order: 20% of records written with a double name.
    pub swapped_double: f64,
    /// The tussenvoegsel left out: 5% of records of names with one.
    pub dropped_prefix: f64,
    /// Diacritics left out: 20% of records of names with them (partners whose
    /// systems cannot store them drop them always).
    pub diacritics: f64,
    /// Names in capitals: 3% of records (one partner writes family names in capitals always).
    pub upper_case: f64,
    /// An old address: 4% of records.
    pub moved: f64,
    /// No address: 1% of records.
    pub no_address: f64,
}

impl Default for NoiseRates {
    fn default() -> Self {
        NoiseRates {
            typo_given: 0.015,
            typo_family: 0.015,
            date_error: 0.005,
            call_name: 0.10,
            swapped_double: 0.20,
            dropped_prefix: 0.05,
            diacritics: 0.20,
            upper_case: 0.03,
            moved: 0.04,
            no_address: 0.01,
        }
    }
}

impl NoiseRates {
    /// No noise at all (formats still differ between partners).
    pub fn none() -> NoiseRates {
        NoiseRates {
            typo_given: 0.0,
            typo_family: 0.0,
            date_error: 0.0,
            call_name: 0.0,
            swapped_double: 0.0,
            dropped_prefix: 0.0,
            diacritics: 0.0,
            upper_case: 0.0,
            moved: 0.0,
            no_address: 0.0,
        }
    }
}

/// The base letter of a character without diacritics, as the spec's folding sees it.
pub fn strip_diacritics(s: &str) -> String {
    if s.is_ascii() {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    for c in s.nfkd() {
        if is_combining_mark(c) {
            continue;
        }
        match c {
            'ı' => out.push('i'),
            'ł' => out.push('l'),
            'Ł' => out.push('L'),
            'đ' => out.push('d'),
            'Đ' => out.push('D'),
            'ø' => out.push('o'),
            'Ø' => out.push('O'),
            'ß' => out.push_str("ss"),
            c => out.push(c),
        }
    }
    out
}

/// One typo in `name`: a substitution, insertion, deletion or transposition of
/// adjacent letters, at a uniformly chosen letter position. The result always
/// differs from `name` after folding (case and diacritics ignored).
pub fn typo(rng: &mut Rng, name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let letters: Vec<usize> = (0..chars.len())
        .filter(|&i| chars[i].is_alphabetic())
        .collect();
    if letters.is_empty() {
        return name.to_string();
    }
    let base = |c: char| -> char {
        strip_diacritics(&c.to_lowercase().collect::<String>())
            .chars()
            .next()
            .unwrap_or(c)
    };
    let random_letter = |rng: &mut Rng, not: char| -> char {
        loop {
            let c = char::from(b'a' + rng.below(26) as u8);
            if c != not {
                return c;
            }
        }
    };
    let same_case = |like: char, c: char| {
        if like.is_uppercase() {
            c.to_ascii_uppercase()
        } else {
            c
        }
    };
    for _ in 0..20 {
        let mut out = chars.clone();
        let pos = letters[rng.index(letters.len())];
        match rng.below(4) {
            0 => {
                let c = random_letter(rng, base(chars[pos]));
                out[pos] = same_case(chars[pos], c);
            }
            1 => {
                // Insert a lowercase letter after a letter (never before the first).
                let c = random_letter(rng, base(chars[pos]));
                out.insert(pos + 1, c);
            }
            2 => {
                // Deletion: keep at least two letters in the word.
                let word_len = word_letters(&chars, pos);
                if word_len < 3 {
                    continue;
                }
                out.remove(pos);
                if pos == 0 && chars[0].is_uppercase() {
                    if let Some(first) = out.first_mut() {
                        *first = first.to_uppercase().next().unwrap_or(*first);
                    }
                }
            }
            _ => {
                let next = pos + 1;
                if next >= chars.len()
                    || !chars[next].is_alphabetic()
                    || base(chars[pos]) == base(chars[next])
                {
                    continue;
                }
                let (a, b) = (chars[pos], chars[next]);
                // Keep the capital at the start of the word.
                if a.is_uppercase() {
                    out[pos] = b.to_uppercase().next().unwrap_or(b);
                    out[next] = a.to_lowercase().next().unwrap_or(a);
                } else {
                    out[pos] = b;
                    out[next] = a;
                }
            }
        }
        let result: String = out.into_iter().collect();
        if fold_cmp(&result) != fold_cmp(name) {
            return result;
        }
    }
    // Fall back to a substitution of the first letter's successor position.
    let mut out = chars;
    let pos = letters[letters.len() / 2];
    out[pos] = if base(out[pos]) == 'x' { 'q' } else { 'x' };
    out.into_iter().collect()
}

/// Number of letters in the word that holds position `pos`.
fn word_letters(chars: &[char], pos: usize) -> usize {
    let start = (0..pos)
        .rev()
        .find(|&i| !chars[i].is_alphabetic())
        .map_or(0, |i| i + 1);
    chars[start..]
        .iter()
        .take_while(|c| c.is_alphabetic())
        .count()
}

fn fold_cmp(s: &str) -> String {
    strip_diacritics(s).to_lowercase()
}

/// A plausible wrong birth date: day and month swapped (when both are at most 12 and
/// differ), or day, month or year off by one. Never after `today`, always a real date.
pub fn date_error(rng: &mut Rng, d: Date, today: Date) -> Date {
    for _ in 0..20 {
        let candidate = match rng.below(4) {
            0 if d.day <= 12 && d.day != d.month => Date::new(d.year, d.day, d.month),
            0 | 1 => {
                let day = if rng.chance(0.5) {
                    d.day + 1
                } else {
                    d.day.saturating_sub(1)
                };
                Date::new(d.year, d.month, day)
            }
            2 => {
                let month = if rng.chance(0.5) {
                    d.month + 1
                } else {
                    d.month.saturating_sub(1)
                };
                Date::new(d.year, month, d.day)
            }
            _ => {
                let year = if rng.chance(0.5) {
                    d.year + 1
                } else {
                    d.year - 1
                };
                Date::new(year, d.month, d.day)
            }
        };
        if let Some(c) = candidate {
            if c != d && c <= today {
                return c;
            }
        }
    }
    let back = Date::from_days_since_epoch(d.days_since_epoch() - 1);
    if back != d { back } else { d }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_always_change_the_folded_name() {
        let mut rng = Rng::new(11, 0);
        for name in [
            "Jansen",
            "Bos",
            "Daniël",
            "van den Berg",
            "Yılmaz",
            "Jan-Willem",
            "Li",
            "Ab",
        ] {
            for _ in 0..200 {
                let t = typo(&mut rng, name);
                assert_ne!(fold_cmp(&t), fold_cmp(name), "{name} -> {t}");
                let diff = t.chars().count() as i64 - name.chars().count() as i64;
                assert!(diff.abs() <= 1, "{name} -> {t}");
            }
        }
    }

    #[test]
    fn diacritics_are_stripped() {
        assert_eq!(strip_diacritics("Daniël Çelik"), "Daniel Celik");
        assert_eq!(strip_diacritics("Yılmaz Łukasz"), "Yilmaz Lukasz");
        assert_eq!(strip_diacritics("Nguyễn Đặng"), "Nguyen Dang");
    }

    #[test]
    fn date_errors_stay_valid_and_differ() {
        let mut rng = Rng::new(5, 0);
        let today = Date::new(2026, 1, 1).unwrap();
        for d in [
            Date::new(1985, 3, 7).unwrap(),
            Date::new(2000, 2, 29).unwrap(),
            Date::new(2025, 12, 31).unwrap(),
            Date::new(1990, 12, 31).unwrap(),
        ] {
            for _ in 0..100 {
                let e = date_error(&mut rng, d, today);
                assert_ne!(e, d);
                assert!(e <= today);
            }
        }
    }

    #[test]
    fn noise_sets_round_trip() {
        let mut s = NoiseSet::EMPTY;
        s.insert(Noise::Moved);
        s.insert(Noise::TypoGiven);
        assert_eq!(s.to_string(), "typo_given;moved");
        assert_eq!(NoiseSet::parse("typo_given;moved"), Ok(s));
        assert_eq!(NoiseSet::parse(""), Ok(NoiseSet::EMPTY));
        assert!(NoiseSet::parse("x").is_err());
    }
}
