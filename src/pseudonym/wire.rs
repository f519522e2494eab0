//! The wire encoding of a key set, one JSON object per subject (spec §7).

use super::derive::{KeyId, Pseudonym};
use super::kind::KeyKind;
use super::ladder::{SubjectKeys, check_reference};
use serde::Deserialize;

/// Most person keys in one key set (the ladder gives at most 2 + 9×3).
pub const MAX_PERSON_KEYS: usize = 64;
/// Most household keys in one key set.
pub const MAX_HOUSEHOLD_KEYS: usize = 4;
/// Most parents/guardians (family entries) in one key set.
pub const MAX_FAMILY_ENTRIES: usize = 4;

/// Why a wire key set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Not JSON of the key-set shape (unknown fields, wrong types).
    #[error("not a key set: {0}")]
    Shape(String),
    /// The reference is malformed or looks like a BSN.
    #[error("reference: {0}")]
    Reference(&'static str),
    /// The key id does not fit the key-id pattern.
    #[error("key_id is not a valid key id")]
    KeyId,
    /// A key is not `kind:base64url` of 32 bytes with a known kind.
    #[error("{field}[{index}] is not a valid key (kind:base64url of 32 bytes)")]
    Key {
        /// `person`, `household` or `family[i]`.
        field: String,
        /// Position in the list.
        index: usize,
    },
    /// A key of the wrong kind for its list (a household key among person keys, or the reverse).
    #[error("{field}[{index}] has a kind that does not belong in {field}")]
    KindMisplaced {
        /// The list.
        field: String,
        /// Position in the list.
        index: usize,
    },
    /// A list is empty where it must not be, too long, or holds duplicates.
    #[error("{0}")]
    Count(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeySet {
    reference: String,
    key_id: String,
    person: Vec<String>,
    #[serde(default)]
    household: Vec<String>,
    #[serde(default)]
    family: Vec<Vec<String>>,
}

fn parse_list(
    field: &str,
    raw: &[String],
    person: bool,
    max: usize,
) -> Result<Vec<Pseudonym>, WireError> {
    if raw.len() > max {
        return Err(WireError::Count(format!(
            "{field} holds more than {max} keys"
        )));
    }
    let mut out = Vec::with_capacity(raw.len());
    for (index, s) in raw.iter().enumerate() {
        let p = Pseudonym::from_wire(s).ok_or_else(|| WireError::Key {
            field: field.to_string(),
            index,
        })?;
        if p.kind.is_person() != person {
            return Err(WireError::KindMisplaced {
                field: field.to_string(),
                index,
            });
        }
        if out.contains(&p) {
            return Err(WireError::Count(format!(
                "{field} holds the same key twice"
            )));
        }
        out.push(p);
    }
    Ok(out)
}

impl SubjectKeys {
    /// Parses and validates one key set from its JSON form.
    pub fn from_json(text: &str) -> Result<SubjectKeys, WireError> {
        let raw: RawKeySet =
            serde_json::from_str(text).map_err(|e| WireError::Shape(describe_json_error(&e)))?;
        Self::from_raw(raw)
    }

    /// Validates an already parsed JSON value.
    pub fn from_value(v: serde_json::Value) -> Result<SubjectKeys, WireError> {
        let raw: RawKeySet =
            serde_json::from_value(v).map_err(|e| WireError::Shape(describe_json_error(&e)))?;
        Self::from_raw(raw)
    }

    fn from_raw(raw: RawKeySet) -> Result<SubjectKeys, WireError> {
        check_reference(&raw.reference).map_err(|r| WireError::Reference(r.message()))?;
        KeyId::parse(&raw.key_id).ok_or(WireError::KeyId)?;
        let person = parse_list("person", &raw.person, true, MAX_PERSON_KEYS)?;
        if person.is_empty() {
            return Err(WireError::Count("person must hold at least one key".into()));
        }
        let household = parse_list("household", &raw.household, false, MAX_HOUSEHOLD_KEYS)?;
        if raw.family.len() > MAX_FAMILY_ENTRIES {
            return Err(WireError::Count(format!(
                "family holds more than {MAX_FAMILY_ENTRIES} entries"
            )));
        }
        let mut family = Vec::with_capacity(raw.family.len());
        for (i, f) in raw.family.iter().enumerate() {
            let keys = parse_list(&format!("family[{i}]"), f, true, MAX_PERSON_KEYS)?;
            if keys.is_empty() {
                return Err(WireError::Count(format!(
                    "family[{i}] must hold at least one key"
                )));
            }
            family.push(keys);
        }
        Ok(SubjectKeys {
            reference: raw.reference,
            key_id: raw.key_id,
            person,
            household,
            family,
        })
    }

    /// Appends the JSON form (one line, no trailing newline) to `out`.
    pub fn write_json(&self, out: &mut String) {
        out.push_str("{\"reference\":");
        push_json_string(out, &self.reference);
        out.push_str(",\"key_id\":");
        push_json_string(out, &self.key_id);
        out.push_str(",\"person\":");
        push_list(out, &self.person);
        if !self.household.is_empty() {
            out.push_str(",\"household\":");
            push_list(out, &self.household);
        }
        if !self.family.is_empty() {
            out.push_str(",\"family\":[");
            for (i, f) in self.family.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_list(out, f);
            }
            out.push(']');
        }
        out.push('}');
    }

    /// The JSON form as a new string.
    pub fn to_json(&self) -> String {
        let mut s = String::with_capacity(64 + 48 * (self.person.len() + self.household.len()));
        self.write_json(&mut s);
        s
    }

    /// Every kind present among the person keys.
    pub fn person_kinds(&self) -> impl Iterator<Item = KeyKind> + '_ {
        self.person.iter().map(|p| p.kind)
    }
}

fn push_list(out: &mut String, keys: &[Pseudonym]) {
    out.push('[');
    for (i, k) in keys.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        k.write_wire(out);
        out.push('"');
    }
    out.push(']');
}

/// Appends `s` as a JSON string literal.
pub fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A description of a JSON error that never contains input text: serde's own messages
/// quote values (`invalid type: integer `111222333``) and unknown member names, either
/// of which may be personal data.
pub fn describe_json_error(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let what = if full.starts_with("missing field `") {
        // Our own member name, not input.
        full.split(" at line ")
            .next()
            .unwrap_or("missing member")
            .to_string()
    } else if full.starts_with("unknown field") {
        "unknown member".to_string()
    } else if full.starts_with("invalid type") {
        "a member has the wrong type".to_string()
    } else if full.starts_with("invalid value") {
        "a member has an invalid value".to_string()
    } else if full.starts_with("invalid length") {
        "a list has the wrong length".to_string()
    } else if full.starts_with("recursion limit") {
        "nested too deeply".to_string()
    } else {
        match e.classify() {
            serde_json::error::Category::Eof => "unexpected end of input".to_string(),
            serde_json::error::Category::Syntax => "not valid JSON".to_string(),
            _ => "not of the expected shape".to_string(),
        }
    };
    format!("{what} at line {} column {}", e.line(), e.column())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pseudonym::derive::DomainKey;

    fn sample() -> SubjectKeys {
        let key = DomainKey::new(KeyId::parse("k").unwrap(), [1; 32]);
        SubjectKeys {
            reference: "D-1 \"x\"".replace(' ', "_"),
            key_id: "k".into(),
            person: vec![
                key.derive(KeyKind::Bsn, "111222333"),
                key.derive(KeyKind::NameDate, "a|b|c"),
            ],
            household: vec![key.derive(KeyKind::Address, "1234AB|1|")],
            family: vec![vec![key.derive(KeyKind::Bsn, "012345672")]],
        }
    }

    #[test]
    fn round_trip() {
        let s = sample();
        let json = s.to_json();
        assert_eq!(SubjectKeys::from_json(&json).unwrap(), s);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(SubjectKeys::from_value(v).unwrap(), s);
    }

    #[test]
    fn rejects() {
        let s = sample();
        let adr = s.household[0].to_wire();
        let bsn = s.person[0].to_wire();
        let cases = [
            r#"{"reference":"a","key_id":"k","person":[]}"#.to_string(),
            r#"{"reference":"a","key_id":"k","person":["bsn:short"]}"#.to_string(),
            format!(r#"{{"reference":"a","key_id":"k","person":["{adr}"]}}"#),
            format!(r#"{{"reference":"a","key_id":"k","person":["{bsn}"],"household":["{bsn}"]}}"#),
            format!(r#"{{"reference":"a","key_id":"k","person":["{bsn}","{bsn}"]}}"#),
            format!(r#"{{"reference":"a","key_id":"K","person":["{bsn}"]}}"#),
            format!(r#"{{"reference":"111222333","key_id":"k","person":["{bsn}"]}}"#),
            format!(r#"{{"reference":"a b","key_id":"k","person":["{bsn}"]}}"#),
            format!(r#"{{"reference":"a","key_id":"k","person":["{bsn}"],"note":"free text"}}"#),
            format!(r#"{{"reference":"a","key_id":"k","person":["{bsn}"],"family":[[]]}}"#),
            format!(r#"{{"reference":1,"key_id":"k","person":["{bsn}"]}}"#),
        ];
        // Error texts never repeat input values or member names.
        let leaky = [
            format!(r#"{{"reference":111222333,"key_id":"k","person":["{bsn}"]}}"#),
            format!(r#"{{"reference":"a","key_id":"k","person":["{bsn}"],"Jansen":1}}"#),
            r#"{"reference":"a","key_id":["Marieke"],"person":[]}"#.to_string(),
        ];
        for c in leaky {
            let msg = SubjectKeys::from_json(&c).unwrap_err().to_string();
            for secret in ["111222333", "Jansen", "Marieke"] {
                assert!(!msg.contains(secret), "{msg}");
            }
        }
        for c in cases {
            assert!(SubjectKeys::from_json(&c).is_err(), "{c}");
        }
    }
}
