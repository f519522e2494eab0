//! Why an input field could not be normalised.
//!
//! Every rejection has a stable machine-readable `code` (listed in
//! `spec/pseudonymisation.md` §9 and exercised by `spec/vectors/`) and a short
//! English explanation. Neither ever contains the rejected value itself: the
//! reports are written to logs and reject files, and the value is personal data.

use std::fmt;

/// One reason a field was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The field is longer than the limit for its kind.
    TooLong,
    /// A name contains a digit.
    DigitInName,
    /// A character outside the supported Latin repertoire.
    UnsupportedCharacter,
    /// A name with no letters left after normalisation.
    EmptyName,
    /// A family name field holds a comma followed by something other than tussenvoegsels.
    CommaInFamilyName,
    /// A full name without a given name or initials.
    FullNameWithoutGivenName,
    /// A date in none of the accepted formats.
    DateFormat,
    /// A date with a two-digit year.
    DateTwoDigitYear,
    /// A date with an unknown (00) day or month.
    DateIncomplete,
    /// A date that does not exist (30 February, month 13).
    DateImpossible,
    /// A birth date before 1890 or after the processing date.
    DateOutOfRange,
    /// A BSN with characters other than digits and separators.
    BsnNotDigits,
    /// A BSN that is not 8 or 9 digits long.
    BsnLength,
    /// A BSN that fails the 11-proef.
    BsnChecksum,
    /// A V-nummer that is not 10 digits.
    VNumberFormat,
    /// A postcode not of the form 1234AB.
    PostcodeFormat,
    /// A house number that does not start with digits.
    HouseNumberFormat,
    /// A house number of 0 or above 99999.
    HouseNumberRange,
    /// A house-number addition with characters other than letters and digits.
    AdditionFormat,
    /// A house-number addition longer than 6 characters.
    AdditionLength,
    /// A postcode without a house number or the other way round.
    AddressIncomplete,
    /// A person with too few fields to form any key that may match on its own.
    InsufficientIdentifiers,
    /// A reference that is empty, too long or holds characters outside printable ASCII.
    ReferenceFormat,
    /// A reference that is itself a valid BSN.
    ReferenceLooksLikeBsn,
}

impl Reason {
    /// The stable code of this reason, as used in reject files and test vectors.
    pub fn code(self) -> &'static str {
        match self {
            Reason::TooLong => "too_long",
            Reason::DigitInName => "digit_in_name",
            Reason::UnsupportedCharacter => "unsupported_character",
            Reason::EmptyName => "empty_name",
            Reason::CommaInFamilyName => "comma_in_family_name",
            Reason::FullNameWithoutGivenName => "full_name_without_given_name",
            Reason::DateFormat => "date_format",
            Reason::DateTwoDigitYear => "date_two_digit_year",
            Reason::DateIncomplete => "date_incomplete",
            Reason::DateImpossible => "date_impossible",
            Reason::DateOutOfRange => "date_out_of_range",
            Reason::BsnNotDigits => "bsn_not_digits",
            Reason::BsnLength => "bsn_length",
            Reason::BsnChecksum => "bsn_checksum",
            Reason::VNumberFormat => "v_number_format",
            Reason::PostcodeFormat => "postcode_format",
            Reason::HouseNumberFormat => "house_number_format",
            Reason::HouseNumberRange => "house_number_range",
            Reason::AdditionFormat => "addition_format",
            Reason::AdditionLength => "addition_length",
            Reason::AddressIncomplete => "address_incomplete",
            Reason::InsufficientIdentifiers => "insufficient_identifiers",
            Reason::ReferenceFormat => "reference_format",
            Reason::ReferenceLooksLikeBsn => "reference_looks_like_bsn",
        }
    }

    /// A one-line explanation for people reading a reject report.
    pub fn message(self) -> &'static str {
        match self {
            Reason::TooLong => "longer than allowed for this field",
            Reason::DigitInName => "a name may not contain digits",
            Reason::UnsupportedCharacter => {
                "contains a character outside the supported Latin letters"
            }
            Reason::EmptyName => "no letters left after normalisation",
            Reason::CommaInFamilyName => {
                "family name holds a comma not followed by tussenvoegsels only (a full name in the wrong column?)"
            }
            Reason::FullNameWithoutGivenName => "full name has no given name or initials",
            Reason::DateFormat => {
                "not a date in an accepted format (e.g. 1985-03-07, 07-03-1985, 19850307, 7 mrt 1985)"
            }
            Reason::DateTwoDigitYear => "two-digit years are ambiguous; use four digits",
            Reason::DateIncomplete => "day or month is unknown (00)",
            Reason::DateImpossible => "no such day in the calendar",
            Reason::DateOutOfRange => "birth date before 1890 or after the processing date",
            Reason::BsnNotDigits => {
                "a BSN holds only digits (spaces, dots and hyphens are ignored)"
            }
            Reason::BsnLength => "a BSN has 9 digits (7 or 8 when leading zeros were lost)",
            Reason::BsnChecksum => "fails the 11-proef",
            Reason::VNumberFormat => "a V-nummer has 10 digits",
            Reason::PostcodeFormat => "not a Dutch postcode (1234 AB)",
            Reason::HouseNumberFormat => "a house number starts with digits",
            Reason::HouseNumberRange => "house number must be 1 to 99999",
            Reason::AdditionFormat => "a house-number addition holds letters and digits only",
            Reason::AdditionLength => "a house-number addition has at most 6 letters and digits",
            Reason::AddressIncomplete => "an address needs both postcode and house number",
            Reason::InsufficientIdentifiers => {
                "needs a BSN, a V-nummer, or family name with given name or initials and birth date"
            }
            Reason::ReferenceFormat => {
                "a reference is 1 to 100 printable ASCII characters without spaces"
            }
            Reason::ReferenceLooksLikeBsn => {
                "the reference is a valid BSN; references must not be personal data"
            }
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// A rejected field of an input record: which field and why. Never holds the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The canonical field name, e.g. `birth_date` or `parent1.bsn`.
    pub field: String,
    /// Why it was rejected.
    pub reason: Reason,
}

impl FieldError {
    pub(crate) fn new(field: impl Into<String>, reason: Reason) -> Self {
        FieldError {
            field: field.into(),
            reason,
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} ({})",
            self.field,
            self.reason.message(),
            self.reason.code()
        )
    }
}

impl std::error::Error for FieldError {}
