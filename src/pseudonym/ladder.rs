//! From raw record fields to normalised fields to match keys (spec §3 and §5).

use super::address::{self, Address};
use super::date::{self, Date};
use super::derive::{DomainKey, Pseudonym};
use super::error::{FieldError, Reason};
use super::kind::{KeyKind, Strength};
use super::name::{self, GivenNames};
use super::number;
use super::phonetic;
use serde::{Deserialize, Serialize};

/// The identifying fields of one person as a partner exports them; empty means absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PersonFields {
    /// Burgerservicenummer.
    pub bsn: String,
    /// V-nummer, for people without a BSN.
    pub v_number: String,
    /// Given names (voornamen), or initials when that is all the record has.
    pub given_names: String,
    /// Initials (voorletters), e.g. "M.J.".
    pub initials: String,
    /// Tussenvoegsel(s) in a column of their own; validated, then not used in keys.
    pub prefix: String,
    /// Family name (achternaam), possibly with tussenvoegsels and double names.
    pub family_name: String,
    /// Full name in one field, used only when `family_name` is empty.
    pub full_name: String,
    /// Birth date in any accepted format.
    pub birth_date: String,
}

impl PersonFields {
    /// Whether every field is empty (no such person in the record).
    pub fn is_empty(&self) -> bool {
        [
            &self.bsn,
            &self.v_number,
            &self.given_names,
            &self.initials,
            &self.prefix,
            &self.family_name,
            &self.full_name,
            &self.birth_date,
        ]
        .iter()
        .all(|f| f.trim().is_empty())
    }
}

/// One input record: the subject of a signal, its address and its parents or guardians.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SubjectFields {
    /// The partner's own reference for the record (not personal data).
    pub reference: String,
    /// The person the signal is about.
    pub person: PersonFields,
    /// Postcode of the household address.
    pub postcode: String,
    /// House number, possibly with its addition.
    pub house_number: String,
    /// House-number addition (huisletter/toevoeging) in a column of its own.
    pub house_number_addition: String,
    /// Parents or guardians (for family keys), at most [`MAX_PARENTS`].
    pub parents: Vec<PersonFields>,
}

/// Most parents or guardians per subject.
pub const MAX_PARENTS: usize = 4;

/// A person after normalisation (spec §3), before derivation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NormalisedPerson {
    /// Nine-digit BSN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bsn: Option<String>,
    /// Ten-digit V-nummer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v_number: Option<String>,
    /// First given name in full.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    /// Initials of all given names.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub initials: String,
    /// Core parts of the family name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub family_name_parts: Vec<String>,
    /// Birth date `YYYY-MM-DD`.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_date")]
    pub birth_date: Option<Date>,
}

fn ser_date<S: serde::Serializer>(d: &Option<Date>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&d.to_string()),
        None => s.serialize_none(),
    }
}

/// Normalises one person's fields. `field_prefix` ("" or "parent1.") names the fields in errors.
pub fn normalise_person(
    f: &PersonFields,
    field_prefix: &str,
    today: Date,
) -> Result<NormalisedPerson, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut out = NormalisedPerson::default();
    let mut err = |field: &str, reason: Reason| {
        errors.push(FieldError::new(format!("{field_prefix}{field}"), reason))
    };

    if !f.bsn.trim().is_empty() {
        match number::bsn(&f.bsn) {
            Ok(v) => out.bsn = Some(v),
            Err(r) => err("bsn", r),
        }
    }
    if !f.v_number.trim().is_empty() {
        match number::v_number(&f.v_number) {
            Ok(v) => out.v_number = Some(v),
            Err(r) => err("v_number", r),
        }
    }
    if !f.prefix.trim().is_empty() {
        if let Err(r) = name::family_name(&f.prefix) {
            err("prefix", r);
        }
    }
    let (given_text, family_text, given_field, family_field): (
        std::borrow::Cow<'_, str>,
        std::borrow::Cow<'_, str>,
        &str,
        &str,
    ) = if f.family_name.trim().is_empty() && !f.full_name.trim().is_empty() {
        match name::split_full_name(&f.full_name) {
            Ok((g, fam)) => (g.into(), fam.into(), "full_name", "full_name"),
            Err(r) => {
                err("full_name", r);
                ("".into(), "".into(), "full_name", "full_name")
            }
        }
    } else {
        (
            f.given_names.as_str().into(),
            f.family_name.as_str().into(),
            "given_names",
            "family_name",
        )
    };
    match name::given_names(&given_text, &f.initials) {
        Ok(GivenNames { first, initials }) => {
            out.given_name = first;
            out.initials = initials;
        }
        Err((name::GivenField::Initials, r)) => err("initials", r),
        Err((name::GivenField::GivenNames, r)) => err(given_field, r),
    }
    match name::family_name(&family_text) {
        Ok(parts) => out.family_name_parts = parts,
        Err(r) => err(family_field, r),
    }
    if !f.birth_date.trim().is_empty() {
        match date::birth_date(&f.birth_date, today) {
            Ok(d) => out.birth_date = Some(d),
            Err(r) => err("birth_date", r),
        }
    }
    if errors.is_empty() && !has_person_key(&out) {
        errors.push(FieldError::new(
            format!("{field_prefix}person"),
            Reason::InsufficientIdentifiers,
        ));
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Whether [`person_key_values`] gives at least one key, without forming them.
fn has_person_key(p: &NormalisedPerson) -> bool {
    p.bsn.is_some()
        || p.v_number.is_some()
        || (p.birth_date.is_some()
            && !p.family_name_parts.is_empty()
            && (p.given_name.is_some() || !p.initials.is_empty()))
}

/// `YYYY-MM-DD` without going through `fmt` (hot path).
fn date_text(d: Date) -> String {
    let mut s = String::with_capacity(10);
    for (v, width) in [
        (u32::from(d.year), 4u32),
        (u32::from(d.month), 2),
        (u32::from(d.day), 2),
    ] {
        if !s.is_empty() {
            s.push('-');
        }
        for p in (0..width).rev() {
            s.push(char::from(b'0' + ((v / 10u32.pow(p)) % 10) as u8));
        }
    }
    s
}

fn join3(a: &str, b: &str, c: &str) -> String {
    let mut s = String::with_capacity(a.len() + b.len() + c.len() + 2);
    s.push_str(a);
    s.push('|');
    s.push_str(b);
    s.push('|');
    s.push_str(c);
    s
}

fn prefix3(s: &str) -> &str {
    &s[..s.len().min(3)]
}

fn suffix3(s: &str) -> &str {
    &s[s.len().saturating_sub(3)..]
}

/// The match-key ladder (spec §5.1): each key kind with the value it is derived from.
pub fn person_key_values(p: &NormalisedPerson) -> Vec<(KeyKind, String)> {
    let mut keys = Vec::with_capacity(16);
    if let Some(bsn) = &p.bsn {
        keys.push((KeyKind::Bsn, bsn.clone()));
    }
    if let Some(v) = &p.v_number {
        keys.push((KeyKind::VNumber, v.clone()));
    }
    let Some(date) = p.birth_date else {
        return keys;
    };
    let d = date_text(date);
    let initial = p
        .initials
        .get(..1)
        .or_else(|| p.given_name.as_deref().and_then(|g| g.get(..1)));
    let pg = p.given_name.as_deref().map(phonetic::encode);
    for f in &p.family_name_parts {
        let pf = phonetic::encode(f);
        if let (Some(g), Some(pg)) = (p.given_name.as_deref(), pg.as_deref()) {
            keys.push((KeyKind::NameDate, join3(g, f, &d)));
            keys.push((KeyKind::PhoneticDate, join3(pg, &pf, &d)));
            if f.len() >= 4 {
                keys.push((KeyKind::FamilyStart, join3(g, prefix3(f), &d)));
                keys.push((KeyKind::FamilyEnd, join3(g, suffix3(f), &d)));
            }
            if g.len() >= 4 {
                keys.push((KeyKind::GivenStart, join3(prefix3(g), f, &d)));
                keys.push((KeyKind::GivenEnd, join3(suffix3(g), f, &d)));
            }
        }
        if let Some(i) = initial {
            keys.push((KeyKind::InitialDate, join3(i, &pf, &d)));
        }
        if p.initials.len() >= 2 {
            keys.push((KeyKind::AllInitials, join3(&p.initials, &pf, &d)));
        }
        if let Some(pg) = pg.as_deref() {
            keys.push((KeyKind::PhoneticYear, join3(pg, &pf, &d[..4])));
            keys.push((KeyKind::PhoneticMonthDay, join3(pg, &pf, &d[5..])));
        }
    }
    if let Some(i) = initial {
        let mut v = String::with_capacity(i.len() + 1 + d.len());
        v.push_str(i);
        v.push('|');
        v.push_str(&d);
        keys.push((KeyKind::InitialBirthDate, v));
    }
    // At most 36 keys: a linear scan beats hashing clones; the first occurrence stays.
    let mut unique: Vec<(KeyKind, String)> = Vec::with_capacity(keys.len());
    for k in keys {
        if !unique.contains(&k) {
            unique.push(k);
        }
    }
    unique
}

/// The family keys of a parent or guardian (spec §5.4): its person keys without those
/// that link only with a household key, since a parent's keys are compared without one.
pub fn family_key_values(p: &NormalisedPerson) -> Vec<(KeyKind, String)> {
    let mut keys = person_key_values(p);
    keys.retain(|(k, _)| k.strength() != Strength::WithHousehold);
    keys
}

/// Normalises the address of a subject, if it has one.
pub fn normalise_address(s: &SubjectFields) -> Result<Option<Address>, Vec<FieldError>> {
    let (pc, hn, add) = (
        s.postcode.trim(),
        s.house_number.trim(),
        s.house_number_addition.trim(),
    );
    if pc.is_empty() && hn.is_empty() && add.is_empty() {
        return Ok(None);
    }
    let mut errors = Vec::new();
    if pc.is_empty() {
        errors.push(FieldError::new("postcode", Reason::AddressIncomplete));
    }
    if hn.is_empty() {
        errors.push(FieldError::new("house_number", Reason::AddressIncomplete));
    }
    let postcode = if pc.is_empty() {
        None
    } else {
        address::postcode(pc)
            .map_err(|r| errors.push(FieldError::new("postcode", r)))
            .ok()
    };
    let number = if hn.is_empty() {
        None
    } else {
        address::house_number(hn, add)
            .map_err(|r| {
                let field = if matches!(r, Reason::AdditionFormat | Reason::AdditionLength)
                    && !add.is_empty()
                {
                    "house_number_addition"
                } else {
                    "house_number"
                };
                errors.push(FieldError::new(field, r))
            })
            .ok()
    };
    match (postcode, number) {
        (Some(postcode), Some((number, addition))) if errors.is_empty() => Ok(Some(Address {
            postcode,
            number,
            addition,
        })),
        _ => Err(errors),
    }
}

/// Checks a partner reference (spec §7.2).
pub fn check_reference(reference: &str) -> Result<(), Reason> {
    let b = reference.as_bytes();
    if b.is_empty() || b.len() > 100 || !b.iter().all(|c| (0x21..=0x7e).contains(c)) {
        return Err(Reason::ReferenceFormat);
    }
    if number::bsn(reference).is_ok() && b.iter().all(u8::is_ascii_digit) {
        return Err(Reason::ReferenceLooksLikeBsn);
    }
    Ok(())
}

/// A subject after normalisation: what the keys are derived from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NormalisedSubject {
    /// The partner reference.
    pub reference: String,
    /// The person.
    pub person: NormalisedPerson,
    /// The address, if any.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_address"
    )]
    pub address: Option<Address>,
    /// Parents and guardians.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<NormalisedPerson>,
}

fn ser_address<S: serde::Serializer>(a: &Option<Address>, s: S) -> Result<S::Ok, S::Error> {
    match a {
        Some(a) => s.serialize_str(&a.key_value()),
        None => s.serialize_none(),
    }
}

/// Normalises a whole subject; all field errors are collected, not just the first.
pub fn normalise_subject(
    s: &SubjectFields,
    today: Date,
) -> Result<NormalisedSubject, Vec<FieldError>> {
    let mut errors = Vec::new();
    if let Err(r) = check_reference(s.reference.trim()) {
        errors.push(FieldError::new("reference", r));
    }
    let person = normalise_person(&s.person, "", today)
        .map_err(|e| errors.extend(e))
        .ok();
    let address = normalise_address(s)
        .map_err(|e| errors.extend(e))
        .ok()
        .flatten();
    let mut parents = Vec::new();
    for (i, p) in s.parents.iter().enumerate() {
        if p.is_empty() {
            continue;
        }
        if i >= MAX_PARENTS {
            errors.push(FieldError::new(format!("parent{}", i + 1), Reason::TooLong));
            continue;
        }
        match normalise_person(p, &format!("parent{}.", i + 1), today) {
            Ok(n) => parents.push(n),
            Err(e) => errors.extend(e),
        }
    }
    match person {
        Some(person) if errors.is_empty() => Ok(NormalisedSubject {
            reference: s.reference.trim().to_string(),
            person,
            address,
            parents,
        }),
        _ => Err(errors),
    }
}

/// The derived key set of one subject, ready for the wire (spec §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectKeys {
    /// The partner reference.
    pub reference: String,
    /// Id of the domain key that derived the pseudonyms.
    pub key_id: String,
    /// Person keys of the subject.
    pub person: Vec<Pseudonym>,
    /// Household keys (address).
    pub household: Vec<Pseudonym>,
    /// Person keys of each parent or guardian (family keys).
    pub family: Vec<Vec<Pseudonym>>,
}

/// Derives the key set of a normalised subject.
pub fn derive_subject(key: &DomainKey, s: &NormalisedSubject) -> SubjectKeys {
    let derive_all = |values: Vec<(KeyKind, String)>| -> Vec<Pseudonym> {
        values.iter().map(|(k, v)| key.derive(*k, v)).collect()
    };
    SubjectKeys {
        reference: s.reference.clone(),
        key_id: key.id().to_string(),
        person: derive_all(person_key_values(&s.person)),
        household: s
            .address
            .iter()
            .map(|a| key.derive(KeyKind::Address, &a.key_value()))
            .collect(),
        family: s
            .parents
            .iter()
            .map(|p| derive_all(family_key_values(p)))
            .collect(),
    }
}

/// Normalises and derives in one step.
pub fn pseudonymise(
    key: &DomainKey,
    s: &SubjectFields,
    today: Date,
) -> Result<SubjectKeys, Vec<FieldError>> {
    normalise_subject(s, today).map(|n| derive_subject(key, &n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pseudonym::KeyId;

    fn person(given: &str, family: &str, born: &str) -> PersonFields {
        PersonFields {
            given_names: given.into(),
            family_name: family.into(),
            birth_date: born.into(),
            ..Default::default()
        }
    }

    #[test]
    fn family_keys_leave_out_household_only_keys() {
        let key = DomainKey::new(KeyId::parse("t").unwrap(), [3; 32]);
        let today = Date::new(2026, 1, 1).unwrap();
        let s = SubjectFields {
            reference: "R-1".into(),
            person: person("Marieke", "de Vries", "1985-03-07"),
            parents: vec![person("Anna", "de Vries", "1960-01-31")],
            ..Default::default()
        };
        let k = pseudonymise(&key, &s, today).unwrap();
        let has = |keys: &[Pseudonym]| keys.iter().any(|p| p.kind == KeyKind::InitialBirthDate);
        assert!(has(&k.person));
        assert!(!has(&k.family[0]));
        let n = normalise_subject(&s, today).unwrap();
        let all = person_key_values(&n.parents[0]);
        let family = family_key_values(&n.parents[0]);
        assert_eq!(family.len() + 3, all.len());
        assert_eq!(
            all.last(),
            Some(&(KeyKind::InitialBirthDate, "a|1960-01-31".to_string()))
        );
    }
}
