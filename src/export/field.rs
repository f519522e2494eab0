//! The canonical field names of an input row (the FIELD side of a column mapping).

use crate::pseudonym::ladder::MAX_PARENTS;
use crate::pseudonym::{PersonFields, SubjectFields};
use std::fmt;

/// One field of a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PersonField {
    /// `bsn`
    Bsn,
    /// `v_number`
    VNumber,
    /// `given_names`
    GivenNames,
    /// `initials`
    Initials,
    /// `prefix`
    Prefix,
    /// `family_name`
    FamilyName,
    /// `full_name`
    FullName,
    /// `birth_date`
    BirthDate,
}

impl PersonField {
    /// Every person field, in the order of [`PersonFields`].
    pub const ALL: [PersonField; 8] = [
        PersonField::Bsn,
        PersonField::VNumber,
        PersonField::GivenNames,
        PersonField::Initials,
        PersonField::Prefix,
        PersonField::FamilyName,
        PersonField::FullName,
        PersonField::BirthDate,
    ];

    /// The canonical name.
    pub fn name(self) -> &'static str {
        match self {
            PersonField::Bsn => "bsn",
            PersonField::VNumber => "v_number",
            PersonField::GivenNames => "given_names",
            PersonField::Initials => "initials",
            PersonField::Prefix => "prefix",
            PersonField::FamilyName => "family_name",
            PersonField::FullName => "full_name",
            PersonField::BirthDate => "birth_date",
        }
    }

    fn slot(self, p: &mut PersonFields) -> &mut String {
        match self {
            PersonField::Bsn => &mut p.bsn,
            PersonField::VNumber => &mut p.v_number,
            PersonField::GivenNames => &mut p.given_names,
            PersonField::Initials => &mut p.initials,
            PersonField::Prefix => &mut p.prefix,
            PersonField::FamilyName => &mut p.family_name,
            PersonField::FullName => &mut p.full_name,
            PersonField::BirthDate => &mut p.birth_date,
        }
    }
}

/// A canonical input field: where a column's value goes in [`SubjectFields`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// `reference` — the partner's own record reference.
    Reference,
    /// A field of the subject person (`bsn`, `given_names`, ...).
    Person(PersonField),
    /// `postcode`
    Postcode,
    /// `house_number`
    HouseNumber,
    /// `house_number_addition`
    HouseNumberAddition,
    /// A field of parent or guardian `n` (1-based, `parentN.bsn`, ...).
    Parent(u8, PersonField),
}

impl Field {
    /// Parses a canonical field name (exactly; names are lowercase).
    pub fn parse(name: &str) -> Option<Field> {
        match name {
            "reference" => return Some(Field::Reference),
            "postcode" => return Some(Field::Postcode),
            "house_number" => return Some(Field::HouseNumber),
            "house_number_addition" => return Some(Field::HouseNumberAddition),
            _ => {}
        }
        let person = |s: &str| PersonField::ALL.into_iter().find(|f| f.name() == s);
        if let Some(rest) = name.strip_prefix("parent") {
            let (n, field) = rest.split_once('.')?;
            let n: u8 = match n.as_bytes() {
                [d @ b'1'..=b'9'] => d - b'0',
                _ => return None,
            };
            if usize::from(n) > MAX_PARENTS {
                return None;
            }
            return person(field).map(|f| Field::Parent(n, f));
        }
        person(name).map(Field::Person)
    }

    /// Every canonical field, subject fields first, then parent1..parent4.
    pub fn all() -> Vec<Field> {
        let mut v = vec![Field::Reference];
        v.extend(PersonField::ALL.map(Field::Person));
        v.extend([
            Field::Postcode,
            Field::HouseNumber,
            Field::HouseNumberAddition,
        ]);
        for n in 1..=MAX_PARENTS as u8 {
            v.extend(PersonField::ALL.map(|f| Field::Parent(n, f)));
        }
        v
    }

    /// The value slot of this field in `s`; parent slots are created as needed.
    pub fn slot(self, s: &mut SubjectFields) -> &mut String {
        match self {
            Field::Reference => &mut s.reference,
            Field::Person(f) => f.slot(&mut s.person),
            Field::Postcode => &mut s.postcode,
            Field::HouseNumber => &mut s.house_number,
            Field::HouseNumberAddition => &mut s.house_number_addition,
            Field::Parent(n, f) => {
                let i = usize::from(n.max(1)) - 1;
                if s.parents.len() <= i {
                    s.parents.resize_with(i + 1, PersonFields::default);
                }
                f.slot(&mut s.parents[i])
            }
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Reference => f.write_str("reference"),
            Field::Person(p) => f.write_str(p.name()),
            Field::Postcode => f.write_str("postcode"),
            Field::HouseNumber => f.write_str("house_number"),
            Field::HouseNumberAddition => f.write_str("house_number_addition"),
            Field::Parent(n, p) => write!(f, "parent{n}.{}", p.name()),
        }
    }
}

/// Empties every value of `s` but keeps the allocations (and the parent slots).
pub fn clear_subject(s: &mut SubjectFields) {
    s.reference.clear();
    clear_person(&mut s.person);
    s.postcode.clear();
    s.house_number.clear();
    s.house_number_addition.clear();
    for p in &mut s.parents {
        clear_person(p);
    }
}

fn clear_person(p: &mut PersonFields) {
    for f in PersonField::ALL {
        f.slot(p).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let all = Field::all();
        assert_eq!(all.len(), 12 + 4 * 8);
        for f in all {
            assert_eq!(Field::parse(&f.to_string()), Some(f), "{f}");
        }
        for bad in [
            "",
            "Reference",
            "parent0.bsn",
            "parent5.bsn",
            "parent1",
            "parent1.reference",
            "parent12.bsn",
            "name",
        ] {
            assert_eq!(Field::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn slots_fill_parents_in_order() {
        let mut s = SubjectFields::default();
        Field::Parent(2, PersonField::Bsn)
            .slot(&mut s)
            .push_str("xy");
        assert_eq!(s.parents.len(), 2);
        assert!(s.parents[0].is_empty());
        assert_eq!(s.parents[1].bsn, "xy");
        clear_subject(&mut s);
        assert!(s.parents[1].is_empty());
    }
}
