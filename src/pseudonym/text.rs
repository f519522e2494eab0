//! Folding of free-form name text to the a–z repertoire (spec §3.1).

use super::error::Reason;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Longest accepted raw value of any name field, in bytes (spec §3).
pub const MAX_FIELD_BYTES: usize = 200;

/// One unit of folded name text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// A letter a–z.
    Letter(u8),
    /// A word separator (white space, full stop, apostrophe).
    Space,
    /// A hyphen or dash.
    Hyphen,
    /// A comma.
    Comma,
}

/// Folds `input` into units: NFKD, marks removed, lowercased, ligatures expanded.
///
/// Digits and any character outside the table are rejected.
pub(crate) fn fold(input: &str) -> Result<Vec<Unit>, Reason> {
    if input.len() > MAX_FIELD_BYTES {
        return Err(Reason::TooLong);
    }
    let mut out = Vec::with_capacity(input.len());
    if input.is_ascii() {
        for b in input.bytes() {
            push_char(&mut out, b as char)?;
        }
    } else {
        for c in input.nfkd() {
            if is_combining_mark(c) {
                continue;
            }
            for lc in c.to_lowercase() {
                match lc {
                    'æ' => push_str(&mut out, "ae"),
                    'œ' => push_str(&mut out, "oe"),
                    'ø' => out.push(Unit::Letter(b'o')),
                    'ß' => push_str(&mut out, "ss"),
                    'ł' => out.push(Unit::Letter(b'l')),
                    'đ' | 'ð' => out.push(Unit::Letter(b'd')),
                    'þ' => push_str(&mut out, "th"),
                    'ı' => out.push(Unit::Letter(b'i')),
                    'ŋ' => out.push(Unit::Letter(b'n')),
                    '\u{2018}' | '\u{2019}' | '\u{201B}' | '\u{02BC}' | '\u{02BB}' | '\u{00B4}' => {
                        out.push(Unit::Space)
                    }
                    '\u{2010}'..='\u{2015}' | '\u{2212}' => out.push(Unit::Hyphen),
                    c if c.is_whitespace() => out.push(Unit::Space),
                    c if c.is_ascii() => push_char(&mut out, c)?,
                    _ => return Err(Reason::UnsupportedCharacter),
                }
            }
        }
    }
    Ok(out)
}

fn push_str(out: &mut Vec<Unit>, s: &str) {
    out.extend(s.bytes().map(Unit::Letter));
}

fn push_char(out: &mut Vec<Unit>, c: char) -> Result<(), Reason> {
    match c {
        'a'..='z' => out.push(Unit::Letter(c as u8)),
        'A'..='Z' => out.push(Unit::Letter(c.to_ascii_lowercase() as u8)),
        ' ' | '\t' | '.' | '\'' | '`' => out.push(Unit::Space),
        '-' => out.push(Unit::Hyphen),
        ',' => out.push(Unit::Comma),
        '0'..='9' => return Err(Reason::DigitInName),
        _ => return Err(Reason::UnsupportedCharacter),
    }
    Ok(())
}

/// Splits folded units into words (a–z strings); hyphens and commas also separate words.
pub(crate) fn words(units: &[Unit]) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    for u in units {
        match u {
            Unit::Letter(b) => cur.push(*b as char),
            _ => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// Splits folded units at every unit equal to `sep`, keeping the pieces (possibly empty).
pub(crate) fn split_at(units: &[Unit], sep: Unit) -> Vec<&[Unit]> {
    units.split(|u| *u == sep).collect()
}
