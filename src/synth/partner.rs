//! Partner exports: which persons each partner knows, and how its system writes them.
//!
//! Each partner has a [`Profile`]: its column headers (and so its mapping file), its
//! date notation, how it writes tussenvoegsels, given names and house-number
//! additions, and its own rates of missing BSNs, initials-only names and usage names.

use super::names::FamilyName;
use super::noise::{Noise, NoiseRates, NoiseSet, date_error, strip_diacritics, typo};
use super::population::{Address, NameUsage, Person, Population};
use super::rng::Rng;
use crate::export::Field;
use crate::pseudonym::{Date, SubjectFields};

/// How a partner writes birth dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateFormat {
    /// `1985-03-07`
    Iso,
    /// `07-03-1985`
    DashDmy,
    /// `07/03/1985`
    SlashDmy,
    /// `19850307`
    Compact,
    /// `7 mrt 1985`
    DutchMonth,
}

impl DateFormat {
    /// Writes `d` in this notation.
    pub fn write(self, d: Date) -> String {
        const MONTHS: [&str; 12] = [
            "jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec",
        ];
        let (y, m, day) = (d.year, d.month, d.day);
        match self {
            DateFormat::Iso => format!("{y:04}-{m:02}-{day:02}"),
            DateFormat::DashDmy => format!("{day:02}-{m:02}-{y:04}"),
            DateFormat::SlashDmy => format!("{day:02}/{m:02}/{y:04}"),
            DateFormat::Compact => format!("{y:04}{m:02}{day:02}"),
            DateFormat::DutchMonth => {
                let name = MONTHS
                    .get(usize::from(m).saturating_sub(1))
                    .unwrap_or(&"jan");
                format!("{day} {name} {y:04}")
            }
        }
    }

    /// An example, for descriptions.
    pub fn example(self) -> &'static str {
        match self {
            DateFormat::Iso => "1985-03-07",
            DateFormat::DashDmy => "07-03-1985",
            DateFormat::SlashDmy => "07/03/1985",
            DateFormat::Compact => "19850307",
            DateFormat::DutchMonth => "7 mrt 1985",
        }
    }
}

/// How a partner writes the family name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyStyle {
    /// "de Vries" in one column.
    Inline,
    /// "de" in a prefix column, "Vries" in the family-name column.
    SeparatePrefix,
    /// "Vries, de".
    Trailing,
    /// Family and given names in one column: "de Vries, Jan Peter".
    FullName,
}

/// How a partner writes given names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GivenStyle {
    /// All given names in one column.
    All,
    /// Only the first given name.
    FirstOnly,
    /// An initials column (always filled) and the first given name.
    InitialsAndFirst,
    /// An initials column (always filled) and all given names.
    InitialsAndAll,
}

/// How a partner writes the house-number addition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdditionStyle {
    /// In a column of its own.
    Separate,
    /// With the number: "12-A", "12A", "12 bis".
    Inline,
}

/// How a partner writes BSNs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BsnStyle {
    /// Nine digits.
    Plain,
    /// As a number: a spreadsheet drops the leading zeros ("012345672" → "12345672").
    Number,
    /// With dots: "0123.45.672".
    Dotted,
}

/// A partner's system: formats, columns and partner-specific noise rates.
#[derive(Debug, Clone)]
pub struct Profile {
    /// What kind of organisation it stands for.
    pub description: &'static str,
    /// Prefix of its record references.
    pub reference_prefix: &'static str,
    /// Base probability that a person is in its export (before involvement and age factors).
    pub share: f64,
    /// Factor on `share` for persons under 18.
    pub minor_factor: f64,
    /// Factor on `share` for adults.
    pub adult_factor: f64,
    /// CSV delimiter.
    pub delimiter: u8,
    /// Date notation.
    pub date_format: DateFormat,
    /// Family-name notation.
    pub family_style: FamilyStyle,
    /// Given-name notation.
    pub given_style: GivenStyle,
    /// House-number addition notation.
    pub addition_style: AdditionStyle,
    /// Family names in capitals.
    pub upper_family: bool,
    /// The system cannot store diacritics.
    pub ascii_only: bool,
    /// Postcodes written "1234 AB" (else "1234AB").
    pub postcode_space: bool,
    /// BSN notation.
    pub bsn_style: BsnStyle,
    /// Share of records of people with a BSN that lack it.
    pub missing_bsn: f64,
    /// Share of records with initials only.
    pub initials_only: f64,
    /// Share of records of people with a usage name that show it instead of the birth name.
    pub usage_name: f64,
    /// (canonical field, column header), in column order; an empty field is a column
    /// the mapping does not use.
    pub columns: &'static [(&'static str, &'static str)],
}

impl Profile {
    /// Whether the export carries parent columns.
    pub fn has_parents(&self) -> bool {
        self.columns.iter().any(|(f, _)| f.starts_with("parent"))
    }
}

/// The partner profiles; partner k uses profile k mod 5.
pub const PROFILES: [Profile; 5] = [
    Profile {
        description: "mental-health care (GGZ)",
        reference_prefix: "GGZ-",
        share: 0.40,
        minor_factor: 0.5,
        adult_factor: 1.15,
        delimiter: b';',
        date_format: DateFormat::DashDmy,
        family_style: FamilyStyle::SeparatePrefix,
        given_style: GivenStyle::All,
        addition_style: AdditionStyle::Separate,
        upper_family: false,
        ascii_only: false,
        postcode_space: true,
        bsn_style: BsnStyle::Plain,
        missing_bsn: 0.02,
        initials_only: 0.03,
        usage_name: 0.5,
        columns: &[
            ("reference", "Clientnummer"),
            ("bsn", "BSN"),
            ("given_names", "Voornamen"),
            ("prefix", "Tussenvoegsel"),
            ("family_name", "Achternaam"),
            ("birth_date", "Geboortedatum"),
            ("postcode", "Postcode"),
            ("house_number", "Huisnummer"),
            ("house_number_addition", "Toevoeging"),
        ],
    },
    Profile {
        description: "housing corporation",
        reference_prefix: "REL",
        share: 0.35,
        minor_factor: 0.2,
        adult_factor: 1.25,
        delimiter: b',',
        date_format: DateFormat::SlashDmy,
        family_style: FamilyStyle::Trailing,
        given_style: GivenStyle::InitialsAndFirst,
        addition_style: AdditionStyle::Inline,
        upper_family: false,
        ascii_only: true,
        postcode_space: false,
        bsn_style: BsnStyle::Number,
        missing_bsn: 0.70,
        initials_only: 0.25,
        usage_name: 0.9,
        columns: &[
            ("reference", "Relatienummer"),
            ("initials", "Voorletters"),
            ("given_names", "Voornaam"),
            ("family_name", "Achternaam"),
            ("birth_date", "Geb.datum"),
            ("bsn", "BSN"),
            ("postcode", "Postcode"),
            ("house_number", "Huisnr"),
            ("", "Contractsoort"),
        ],
    },
    Profile {
        description: "youth care (with parents)",
        reference_prefix: "JZ/",
        share: 0.30,
        minor_factor: 2.6,
        adult_factor: 0.45,
        delimiter: b',',
        date_format: DateFormat::Compact,
        family_style: FamilyStyle::Inline,
        given_style: GivenStyle::All,
        addition_style: AdditionStyle::Separate,
        upper_family: false,
        ascii_only: false,
        postcode_space: false,
        bsn_style: BsnStyle::Dotted,
        missing_bsn: 0.03,
        initials_only: 0.02,
        usage_name: 0.5,
        columns: &[
            ("reference", "dossiernummer"),
            ("bsn", "bsn"),
            ("given_names", "voornamen"),
            ("family_name", "achternaam"),
            ("birth_date", "geboortedatum"),
            ("postcode", "postcode"),
            ("house_number", "huisnummer"),
            ("house_number_addition", "huisnummer_toevoeging"),
            ("parent1.bsn", "bsn_ouder1"),
            ("parent1.given_names", "voornamen_ouder1"),
            ("parent1.family_name", "achternaam_ouder1"),
            ("parent1.birth_date", "geboortedatum_ouder1"),
            ("parent2.bsn", "bsn_ouder2"),
            ("parent2.given_names", "voornamen_ouder2"),
            ("parent2.family_name", "achternaam_ouder2"),
            ("parent2.birth_date", "geboortedatum_ouder2"),
        ],
    },
    Profile {
        description: "police",
        reference_prefix: "PL0900-",
        share: 0.35,
        minor_factor: 0.6,
        adult_factor: 1.1,
        delimiter: b';',
        date_format: DateFormat::DutchMonth,
        family_style: FamilyStyle::FullName,
        given_style: GivenStyle::All,
        addition_style: AdditionStyle::Separate,
        upper_family: true,
        ascii_only: false,
        postcode_space: true,
        bsn_style: BsnStyle::Plain,
        missing_bsn: 0.10,
        initials_only: 0.03,
        usage_name: 0.2,
        columns: &[
            ("reference", "Registratienummer"),
            ("full_name", "Naam"),
            ("birth_date", "Geboortedatum"),
            ("bsn", "BSN"),
            ("v_number", "V-nummer"),
            ("postcode", "Postcode"),
            ("house_number", "Huisnummer"),
            ("house_number_addition", "Huisletter"),
        ],
    },
    Profile {
        description: "debt counselling",
        reference_prefix: "SHV-",
        share: 0.32,
        minor_factor: 0.1,
        adult_factor: 1.3,
        delimiter: b'\t',
        date_format: DateFormat::Iso,
        family_style: FamilyStyle::SeparatePrefix,
        given_style: GivenStyle::InitialsAndAll,
        addition_style: AdditionStyle::Separate,
        upper_family: false,
        ascii_only: false,
        postcode_space: false,
        bsn_style: BsnStyle::Plain,
        missing_bsn: 0.08,
        initials_only: 0.05,
        usage_name: 0.7,
        columns: &[
            ("reference", "client_ref"),
            ("bsn", "bsn_nr"),
            ("v_number", "vnummer"),
            ("initials", "initials"),
            ("given_names", "first_names"),
            ("prefix", "surname_prefix"),
            ("family_name", "surname"),
            ("birth_date", "date_of_birth"),
            ("postcode", "zip_code"),
            ("house_number", "house_no"),
            ("house_number_addition", "house_no_suffix"),
        ],
    },
];

/// Where the truth of one exported record is kept (never in the export's columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordTruth {
    /// The person the record is about.
    pub person: u32,
    /// The noise the record shows.
    pub noise: NoiseSet,
}

/// One partner's export, in memory.
#[derive(Debug, Clone)]
pub struct PartnerExport {
    /// File stem: `partner-a`.
    pub name: String,
    /// Index into [`PROFILES`].
    pub profile: usize,
    /// The records as the mapping would read them from the CSV.
    pub records: Vec<SubjectFields>,
    /// The truth of each record, in the same order.
    pub truth: Vec<RecordTruth>,
    /// The CSV text (header row first).
    pub csv: String,
    /// The mapping file (TOML with a `[columns]` table).
    pub mapping: String,
}

/// One record's column values, in the profile's column order.
struct Row {
    cells: Vec<String>,
    noise: NoiseSet,
}

/// Values of one person as a partner writes them.
#[derive(Default)]
struct Written {
    bsn: String,
    v_number: String,
    given_names: String,
    initials: String,
    prefix: String,
    family_name: String,
    full_name: String,
    birth_date: String,
}

/// The partner's file stem for partner number `k` (0-based): partner-a, partner-b, ...
pub fn partner_name(k: usize) -> String {
    format!("partner-{}", char::from(b'a' + (k % 26) as u8))
}

/// Builds the export of partner `k`.
pub fn export(pop: &Population, k: usize, seed: u64, rates: &NoiseRates) -> PartnerExport {
    let profile_index = k % PROFILES.len();
    let profile = &PROFILES[profile_index];
    let mut rng = Rng::new(seed, 0x5041_0000 + k as u64);
    // Later partners of the same profile see a slightly different share.
    let share = profile.share * (1.0 - 0.05 * (k / PROFILES.len()) as f64);
    let mut chosen: Vec<u32> = Vec::new();
    for p in &pop.persons {
        let hh = &pop.households[p.household as usize];
        let age_factor = if p.age(pop.today) < 18 {
            profile.minor_factor
        } else {
            profile.adult_factor
        };
        let prob = (share * hh.involvement * age_factor).min(0.95);
        if rng.chance(prob) {
            chosen.push(p.id);
        }
    }
    rng.shuffle(&mut chosen);
    let mut number = 100_000 + rng.below(800_000);
    let mut records = Vec::with_capacity(chosen.len());
    let mut truth = Vec::with_capacity(chosen.len());
    let mut csv = String::with_capacity(chosen.len() * 120);
    write_csv_row(
        &mut csv,
        profile.columns.iter().map(|(_, h)| *h),
        profile.delimiter,
    );
    for id in chosen {
        number += 1 + rng.below(3);
        let reference = format!("{}{number}", profile.reference_prefix);
        let person = &pop.persons[id as usize];
        let row = row(&mut rng, pop, person, profile, rates, &reference);
        write_csv_row(
            &mut csv,
            row.cells.iter().map(String::as_str),
            profile.delimiter,
        );
        records.push(subject(profile, &row.cells));
        truth.push(RecordTruth {
            person: id,
            noise: row.noise,
        });
    }
    let name = partner_name(k);
    let mapping = mapping_toml(&name, profile);
    PartnerExport {
        name,
        profile: profile_index,
        records,
        truth,
        csv,
        mapping,
    }
}

/// The fields a mapping reads from one row.
pub fn subject(profile: &Profile, cells: &[String]) -> SubjectFields {
    let mut s = SubjectFields::default();
    for ((field, _), value) in profile.columns.iter().zip(cells) {
        if value.is_empty() {
            continue;
        }
        if let Some(f) = Field::parse(field) {
            *f.slot(&mut s) = value.clone();
        }
    }
    s
}

fn row(
    rng: &mut Rng,
    pop: &Population,
    p: &Person,
    profile: &Profile,
    rates: &NoiseRates,
    reference: &str,
) -> Row {
    let mut noise = NoiseSet::EMPTY;
    let w = written(rng, p, profile, rates, &mut noise, true, pop.today);
    // Address.
    let hh = &pop.households[p.household as usize];
    let address: Option<&Address> = if rng.chance(rates.no_address) {
        noise.insert(Noise::NoAddress);
        None
    } else if rng.chance(rates.moved) {
        noise.insert(Noise::Moved);
        Some(&hh.previous)
    } else {
        Some(&hh.address)
    };
    let (postcode, house_number, addition) = match address {
        None => (String::new(), String::new(), String::new()),
        Some(a) => {
            let pc = if profile.postcode_space {
                format!("{} {}", &a.postcode[..4], &a.postcode[4..])
            } else if rng.chance(0.1) {
                a.postcode.to_lowercase()
            } else {
                a.postcode.clone()
            };
            match profile.addition_style {
                AdditionStyle::Separate => (pc, a.number.to_string(), a.addition.clone()),
                AdditionStyle::Inline if a.addition.is_empty() => {
                    (pc, a.number.to_string(), String::new())
                }
                AdditionStyle::Inline => {
                    // "12A" and "12bis" are common; "12" + "3" is written "12-3" or "12 3".
                    let digit = a.addition.starts_with(|c: char| c.is_ascii_digit());
                    let seps: &[&str] = if digit { &["-", " "] } else { &["-", "", " "] };
                    let sep = seps[rng.index(seps.len())];
                    (
                        pc,
                        format!("{}{sep}{}", a.number, a.addition),
                        String::new(),
                    )
                }
            }
        }
    };
    // Parents (family keys), with the same kinds of noise but not labelled.
    let mut parents: Vec<Written> = Vec::new();
    if profile.has_parents() && p.age(pop.today) < 18 {
        for &parent in p.parents.iter().take(2) {
            let mut ignored = NoiseSet::EMPTY;
            let q = &pop.persons[parent as usize];
            parents.push(written(
                rng,
                q,
                profile,
                rates,
                &mut ignored,
                false,
                pop.today,
            ));
        }
    }
    let cells = profile
        .columns
        .iter()
        .map(|(field, _)| match *field {
            "reference" => reference.to_string(),
            "postcode" => postcode.clone(),
            "house_number" => house_number.clone(),
            "house_number_addition" => addition.clone(),
            "" => ["zelfstandig", "onzelfstandig", "garage"][rng.index(3)].to_string(),
            f => match f.strip_prefix("parent") {
                Some(rest) => {
                    let (n, pf) = rest.split_once('.').unwrap_or(("1", rest));
                    let n: usize = n.parse().unwrap_or(1);
                    parents
                        .get(n.saturating_sub(1))
                        .map(|w| person_value(w, pf))
                        .unwrap_or_default()
                }
                None => person_value(&w, f),
            },
        })
        .collect();
    Row { cells, noise }
}

fn person_value(w: &Written, field: &str) -> String {
    match field {
        "bsn" => w.bsn.clone(),
        "v_number" => w.v_number.clone(),
        "given_names" => w.given_names.clone(),
        "initials" => w.initials.clone(),
        "prefix" => w.prefix.clone(),
        "family_name" => w.family_name.clone(),
        "full_name" => w.full_name.clone(),
        "birth_date" => w.birth_date.clone(),
        _ => String::new(),
    }
}

/// Initials as written: "J.P.".
fn initials_of(names: &[&str]) -> String {
    names
        .iter()
        .flat_map(|n| n.split('-'))
        .filter_map(|n| n.chars().next())
        .map(|c| format!("{}.", c.to_uppercase()))
        .collect()
}

/// The person's identifying fields as this partner writes them, with noise.
fn written(
    rng: &mut Rng,
    p: &Person,
    profile: &Profile,
    rates: &NoiseRates,
    noise: &mut NoiseSet,
    subject: bool,
    today: Date,
) -> Written {
    let mut w = Written::default();
    // Official numbers.
    if let Some(bsn) = &p.bsn {
        if rng.chance(profile.missing_bsn) {
            noise.insert(Noise::MissingBsn);
        } else {
            w.bsn = match profile.bsn_style {
                BsnStyle::Plain => bsn.clone(),
                BsnStyle::Number if bsn.starts_with('0') => {
                    noise.insert(Noise::BsnZerosLost);
                    bsn.trim_start_matches('0').to_string()
                }
                BsnStyle::Number => bsn.clone(),
                BsnStyle::Dotted => format!("{}.{}.{}", &bsn[..4], &bsn[4..6], &bsn[6..]),
            };
        }
    }
    if subject {
        if let Some(v) = &p.v_number {
            if profile.columns.iter().any(|(f, _)| *f == "v_number") {
                w.v_number = v.clone();
            }
        }
    }
    // Given names.
    let official = &p.given_names;
    let initials_only = rng.chance(profile.initials_only);
    let mut names: Vec<String> = official.iter().map(|s| s.to_string()).collect();
    if initials_only {
        noise.insert(Noise::InitialsOnly);
    } else {
        if let Some(call) = p.call_name {
            if rng.chance(rates.call_name) {
                names = vec![call.to_string()];
                noise.insert(Noise::CallName);
            }
        }
        if rng.chance(rates.typo_given) {
            names[0] = typo(rng, &names[0]);
            noise.insert(Noise::TypoGiven);
        }
    }
    let initials = initials_of(official);
    match profile.given_style {
        GivenStyle::All => {
            w.given_names = if initials_only {
                initials
            } else {
                names.join(" ")
            };
        }
        GivenStyle::FirstOnly => {
            if initials_only {
                w.given_names = initials;
            } else {
                if names.len() > 1 {
                    noise.insert(Noise::FirstGivenOnly);
                }
                w.given_names = names[0].clone();
            }
        }
        GivenStyle::InitialsAndFirst | GivenStyle::InitialsAndAll => {
            w.initials = initials;
            if !initials_only {
                if profile.given_style == GivenStyle::InitialsAndFirst {
                    w.given_names = names[0].clone();
                } else {
                    w.given_names = names.join(" ");
                }
            }
        }
    }
    // Family name.
    let use_usage = p.usage != NameUsage::Own && rng.chance(profile.usage_name);
    let mut parts: Vec<FamilyName> = if use_usage {
        noise.insert(if p.usage == NameUsage::PartnerOnly {
            Noise::UsagePartner
        } else {
            Noise::UsageDouble
        });
        p.usage_parts()
    } else {
        vec![p.family.clone()]
    };
    if parts.len() == 2 && rng.chance(rates.swapped_double) {
        parts.reverse();
        noise.insert(Noise::SwappedDouble);
    }
    if parts.iter().any(|f| !f.prefix.is_empty()) && rng.chance(rates.dropped_prefix) {
        for f in &mut parts {
            f.prefix.clear();
        }
        noise.insert(Noise::DroppedPrefix);
    }
    if rng.chance(rates.typo_family) {
        let i = rng.index(parts.len());
        parts[i].core = typo(rng, &parts[i].core);
        noise.insert(Noise::TypoFamily);
    }
    // Diacritics and case.
    let has_diacritics = !w.given_names.is_ascii()
        || parts
            .iter()
            .any(|f| !f.core.is_ascii() || !f.prefix.is_ascii());
    let strip = has_diacritics && (profile.ascii_only || rng.chance(rates.diacritics));
    if strip {
        w.given_names = strip_diacritics(&w.given_names);
        w.initials = strip_diacritics(&w.initials);
        for f in &mut parts {
            f.core = strip_diacritics(&f.core);
        }
        noise.insert(Noise::Diacritics);
    }
    let upper = rng.chance(rates.upper_case);
    if upper {
        w.given_names = w.given_names.to_uppercase();
        noise.insert(Noise::UpperCase);
    }
    let joined = |parts: &[FamilyName]| -> String {
        parts
            .iter()
            .map(FamilyName::inline)
            .collect::<Vec<_>>()
            .join("-")
    };
    let mut family = match profile.family_style {
        FamilyStyle::Inline | FamilyStyle::FullName => joined(&parts),
        FamilyStyle::SeparatePrefix => {
            w.prefix = parts[0].prefix.clone();
            let mut rest = vec![FamilyName {
                prefix: String::new(),
                core: parts[0].core.clone(),
            }];
            rest.extend(parts[1..].iter().cloned());
            joined(&rest)
        }
        FamilyStyle::Trailing => {
            let mut rest = vec![FamilyName {
                prefix: String::new(),
                core: parts[0].core.clone(),
            }];
            rest.extend(parts[1..].iter().cloned());
            if parts[0].prefix.is_empty() {
                joined(&rest)
            } else {
                format!("{}, {}", joined(&rest), parts[0].prefix)
            }
        }
    };
    if upper || profile.upper_family {
        family = family.to_uppercase();
        w.prefix = w.prefix.to_uppercase();
    }
    if profile.family_style == FamilyStyle::FullName {
        w.full_name = format!("{family}, {}", w.given_names);
        w.given_names.clear();
    } else {
        w.family_name = family;
    }
    // Birth date.
    let mut birth = p.birth_date;
    if rng.chance(rates.date_error) {
        birth = date_error(rng, birth, today);
        noise.insert(Noise::DateError);
    }
    w.birth_date = profile.date_format.write(birth);
    w
}

/// Appends one CSV row (RFC 4180 quoting where needed) and a line break.
pub fn write_csv_row<'a>(out: &mut String, cells: impl Iterator<Item = &'a str>, delimiter: u8) {
    let d = char::from(delimiter);
    for (i, cell) in cells.enumerate() {
        if i > 0 {
            out.push(d);
        }
        let quote = cell.contains(d)
            || cell.contains('"')
            || cell.contains('\n')
            || cell.contains('\r')
            || cell.starts_with(' ')
            || cell.ends_with(' ');
        if quote {
            out.push('"');
            out.push_str(&cell.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(cell);
        }
    }
    out.push('\n');
}

/// The mapping file of a profile.
pub fn mapping_toml(name: &str, profile: &Profile) -> String {
    let mut s = format!(
        "# Column mapping of {name}.csv (synthetic export of a {}), for\n\
         # `samenloop pseudonymise --input {name}.csv --mapping {name}.mapping.toml`.\n\
         # Dates are written like {}.\n[columns]\n",
        profile.description,
        profile.date_format.example()
    );
    for (field, header) in profile.columns {
        if field.is_empty() {
            continue;
        }
        let key = if field.contains('.') {
            format!("\"{field}\"")
        } else {
            field.to_string()
        };
        s.push_str(&format!("{key} = \"{}\"\n", toml_escape(header)));
    }
    s
}

fn toml_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}
