//! Pseudonymisation, spec version 1 (`spec/pseudonymisation.md`).
//!
//! A partner turns each person and household in its own records into a set of
//! match keys: normalise the fields ([`ladder::normalise_subject`]), form the
//! match-key ladder ([`ladder::person_key_values`]) and derive each key with the
//! region's domain key ([`DomainKey::derive`]). Only the keys leave the partner.

pub mod address;
pub mod date;
pub mod derive;
pub mod error;
pub mod keyfile;
pub mod kind;
pub mod ladder;
pub mod link;
pub mod name;
pub mod number;
pub mod phonetic;
mod text;
pub mod wire;

pub use date::Date;
pub use derive::{DomainKey, KeyId, Pseudonym};
pub use error::{FieldError, Reason};
pub use kind::{KeyKind, Strength};
pub use ladder::{
    NormalisedPerson, NormalisedSubject, PersonFields, SubjectFields, SubjectKeys, derive_subject,
    normalise_subject, pseudonymise,
};
pub use link::same_person;
