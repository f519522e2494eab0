//! The kinds of match key (spec §5, the match-key ladder).

use std::fmt;
use std::str::FromStr;

/// One rung of the match-key ladder. The `code` is part of the derivation input
/// and of the wire format, so it never changes within spec version 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyKind {
    /// `bsn` — burgerservicenummer.
    Bsn,
    /// `vnr` — V-nummer (vreemdelingennummer), for people without a BSN.
    VNumber,
    /// `nd` — first given name | family-name part | birth date.
    NameDate,
    /// `pd` — phonetic first given name | phonetic family-name part | birth date.
    PhoneticDate,
    /// `fs` — first given name | first 3 letters of the family-name part | birth date.
    FamilyStart,
    /// `fe` — first given name | last 3 letters of the family-name part | birth date.
    FamilyEnd,
    /// `gs` — first 3 letters of the first given name | family-name part | birth date.
    GivenStart,
    /// `ge` — last 3 letters of the first given name | family-name part | birth date.
    GivenEnd,
    /// `in` — first initial | phonetic family-name part | birth date.
    InitialDate,
    /// `ai` — all initials (two or more) | phonetic family-name part | birth date.
    AllInitials,
    /// `adr` — postcode | house number | addition (household key).
    Address,
    /// `id` — first initial | birth date. Links only together with a shared household
    /// key (a usage name or a second family-name error at the same address).
    ///
    /// Appended after `adr` because the index stores kinds by [`KeyKind::index`].
    InitialBirthDate,
    /// `py` — phonetic first given name | phonetic family-name part | birth year.
    /// Links only together with a shared household key (a wrong day or month).
    PhoneticYear,
    /// `pm` — phonetic first given name | phonetic family-name part | birth month and
    /// day. Links only together with a shared household key (a wrong year).
    PhoneticMonthDay,
}

/// How much a shared key of a kind proves on its own (spec §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strength {
    /// One shared key links two records as the same person.
    Alone,
    /// Links only together with a second shared key of another kind
    /// (a person key of this strength or a household key).
    WithAnother,
    /// Links only together with a shared household key; never counts as the second
    /// key for a [`Strength::WithAnother`] key (every such key implies it).
    WithHousehold,
    /// A household key: links persons into a household, never persons to each other,
    /// but counts as the second key for a [`Strength::WithAnother`] key.
    Household,
}

impl KeyKind {
    /// Every kind, in the order of [`KeyKind::index`] (the ladder order of spec §5.1,
    /// with kinds added later at the end).
    pub const ALL: [KeyKind; 14] = [
        KeyKind::Bsn,
        KeyKind::VNumber,
        KeyKind::NameDate,
        KeyKind::PhoneticDate,
        KeyKind::FamilyStart,
        KeyKind::FamilyEnd,
        KeyKind::GivenStart,
        KeyKind::GivenEnd,
        KeyKind::InitialDate,
        KeyKind::AllInitials,
        KeyKind::Address,
        KeyKind::InitialBirthDate,
        KeyKind::PhoneticYear,
        KeyKind::PhoneticMonthDay,
    ];

    /// The wire and derivation code of the kind.
    pub fn code(self) -> &'static str {
        match self {
            KeyKind::Bsn => "bsn",
            KeyKind::VNumber => "vnr",
            KeyKind::NameDate => "nd",
            KeyKind::PhoneticDate => "pd",
            KeyKind::FamilyStart => "fs",
            KeyKind::FamilyEnd => "fe",
            KeyKind::GivenStart => "gs",
            KeyKind::GivenEnd => "ge",
            KeyKind::InitialDate => "in",
            KeyKind::AllInitials => "ai",
            KeyKind::Address => "adr",
            KeyKind::InitialBirthDate => "id",
            KeyKind::PhoneticYear => "py",
            KeyKind::PhoneticMonthDay => "pm",
        }
    }

    /// What a shared key of this kind proves on its own.
    pub fn strength(self) -> Strength {
        match self {
            KeyKind::Bsn | KeyKind::VNumber | KeyKind::NameDate | KeyKind::PhoneticDate => {
                Strength::Alone
            }
            KeyKind::FamilyStart
            | KeyKind::FamilyEnd
            | KeyKind::GivenStart
            | KeyKind::GivenEnd
            | KeyKind::InitialDate
            | KeyKind::AllInitials => Strength::WithAnother,
            KeyKind::Address => Strength::Household,
            KeyKind::InitialBirthDate | KeyKind::PhoneticYear | KeyKind::PhoneticMonthDay => {
                Strength::WithHousehold
            }
        }
    }

    /// Whether the kind identifies a person (as opposed to a household).
    pub fn is_person(self) -> bool {
        self.strength() != Strength::Household
    }

    /// A dense index 0..14, for per-kind tables; stored by the index, so a kind keeps
    /// its index for good.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An unknown key-kind code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown key kind")]
pub struct UnknownKind;

impl FromStr for KeyKind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyKind::ALL
            .into_iter()
            .find(|k| k.code() == s)
            .ok_or(UnknownKind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_stable_and_codes_unique() {
        for (i, k) in KeyKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i, "{k}");
            assert_eq!(k.code().parse::<KeyKind>(), Ok(*k));
        }
        // The index stores kinds by number: these must never move.
        assert_eq!(KeyKind::Bsn.index(), 0);
        assert_eq!(KeyKind::Address.index(), 10);
        assert_eq!(KeyKind::InitialBirthDate.index(), 11);
        assert_eq!(KeyKind::PhoneticMonthDay.index(), 13);
        assert!("fingerprint".parse::<KeyKind>().is_err());
    }

    #[test]
    fn strengths() {
        use KeyKind::*;
        for k in [Bsn, VNumber, NameDate, PhoneticDate] {
            assert_eq!(k.strength(), Strength::Alone, "{k}");
        }
        for k in [
            FamilyStart,
            FamilyEnd,
            GivenStart,
            GivenEnd,
            InitialDate,
            AllInitials,
        ] {
            assert_eq!(k.strength(), Strength::WithAnother, "{k}");
        }
        for k in [InitialBirthDate, PhoneticYear, PhoneticMonthDay] {
            assert_eq!(k.strength(), Strength::WithHousehold, "{k}");
        }
        assert!(InitialBirthDate.is_person());
        assert!(!Address.is_person());
    }
}
