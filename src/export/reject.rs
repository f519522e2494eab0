//! Why an input row was rejected, and the reject report.
//!
//! A reject names the row (its line), the fields and the reason codes, never a value:
//! the report is written to files and terminals, and the values are personal data.

use crate::pseudonym::FieldError;
use crate::pseudonym::wire::push_json_string;
use std::borrow::Cow;
use std::fmt::Write as _;

/// The pseudo-field of problems that concern the whole row rather than one field.
pub const ROW: &str = "row";

/// Row-level reason codes added by the file reader (besides the codes of
/// [`crate::pseudonym::Reason`]).
pub mod code {
    /// The row has more or fewer fields than the header.
    pub const CSV_FIELD_COUNT: &str = "csv_field_count";
    /// The row (or a mapped field of it) is not valid UTF-8.
    pub const NOT_UTF8: &str = "not_utf8";
    /// The row is not well-formed CSV (RFC 4180 quoting).
    pub const MALFORMED_CSV: &str = "malformed_csv";
    /// A field is longer than [`super::super::MAX_FIELD_BYTES`].
    pub const TOO_LONG: &str = "too_long";
    /// A JSON Lines line is not one JSON object.
    pub const MALFORMED_JSON: &str = "malformed_json";
    /// A mapped JSON member is not a string, null or integer.
    pub const WRONG_TYPE: &str = "wrong_type";
    /// An earlier row of the same file has the same reference.
    pub const DUPLICATE_REFERENCE: &str = "duplicate_reference";
}

/// One problem with a row: a field name, a stable code and an explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// Canonical field name (`birth_date`, `parent1.bsn`) or [`ROW`].
    pub field: Cow<'static, str>,
    /// Stable reason code.
    pub code: &'static str,
    /// Short explanation; never holds an input value.
    pub message: Cow<'static, str>,
}

impl RowError {
    /// A problem with a fixed message.
    pub fn new(
        field: impl Into<Cow<'static, str>>,
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> RowError {
        RowError {
            field: field.into(),
            code,
            message: message.into(),
        }
    }
}

impl From<FieldError> for RowError {
    fn from(e: FieldError) -> RowError {
        RowError {
            field: Cow::Owned(e.field),
            code: e.reason.code(),
            message: Cow::Borrowed(e.reason.message()),
        }
    }
}

/// Appends one reject-report line (JSON, no newline) to `out`.
///
/// `reference` must be a reference that passed `check_reference`, or `None`.
pub fn write_reject_json(
    out: &mut String,
    line: u64,
    reference: Option<&str>,
    errors: &[RowError],
) {
    let _ = write!(out, "{{\"line\":{line}");
    if let Some(r) = reference {
        out.push_str(",\"reference\":");
        push_json_string(out, r);
    }
    out.push_str(",\"errors\":[");
    for (i, e) in errors.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"field\":");
        push_json_string(out, &e.field);
        out.push_str(",\"code\":");
        push_json_string(out, e.code);
        out.push_str(",\"message\":");
        push_json_string(out, &e.message);
        out.push('}');
    }
    out.push_str("]}");
}

/// The one-line human form: `line 17: birth_date: no such day in the calendar (date_impossible)`.
pub fn describe(line: u64, errors: &[RowError]) -> String {
    let mut s = format!("line {line}: ");
    for (i, e) in errors.iter().enumerate() {
        if i > 0 {
            s.push_str("; ");
        }
        let _ = write!(s, "{}: {} ({})", e.field, e.message, e.code);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pseudonym::Reason;

    #[test]
    fn json_and_text_forms() {
        let errors = vec![
            RowError::from(FieldError {
                field: "birth_date".into(),
                reason: Reason::DateImpossible,
            }),
            RowError::new(ROW, code::CSV_FIELD_COUNT, "x \"y\""),
        ];
        let mut s = String::new();
        write_reject_json(&mut s, 17, Some("D-1"), &errors);
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["line"], 17);
        assert_eq!(v["reference"], "D-1");
        assert_eq!(v["errors"][0]["code"], "date_impossible");
        assert_eq!(v["errors"][1]["message"], "x \"y\"");
        let mut s = String::new();
        write_reject_json(&mut s, 2, None, &errors[..1]);
        assert!(!s.contains("reference"));
        assert_eq!(
            describe(17, &errors[..1]),
            "line 17: birth_date: no such day in the calendar (date_impossible)"
        );
    }
}
