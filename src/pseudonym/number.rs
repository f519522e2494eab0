//! Official numbers: BSN and V-nummer (spec §3.7, §3.8).

use super::error::Reason;

/// Longest raw official-number field accepted, in bytes.
const MAX_NUMBER_BYTES: usize = 40;

fn digits_only(input: &str, not_digits: Reason) -> Result<String, Reason> {
    if input.len() > MAX_NUMBER_BYTES {
        return Err(Reason::TooLong);
    }
    let mut out = String::with_capacity(10);
    for c in input.trim().chars() {
        match c {
            '0'..='9' => out.push(c),
            ' ' | '.' | '-' => {}
            _ => return Err(not_digits),
        }
    }
    Ok(out)
}

/// Whether nine digits pass the 11-proef for BSNs.
pub fn passes_11_proef(d: &[u8; 9]) -> bool {
    let sum: i32 = (0..8)
        .map(|i| (9 - i as i32) * i32::from(d[i]))
        .sum::<i32>()
        - i32::from(d[8]);
    sum % 11 == 0 && d.iter().any(|&x| x != 0)
}

/// Normalises a BSN to 9 digits: separators removed, up to two lost leading zeros
/// restored, 11-proef checked.
///
/// A spreadsheet that reads a BSN as a number drops its leading zeros; BSNs starting
/// with `00` exist, so 7 digits are padded too. Shorter inputs are rejected: a 6-digit
/// string is more likely some other number than a BSN that lost three zeros, and one
/// in eleven of them would pass the 11-proef by chance.
pub fn bsn(input: &str) -> Result<String, Reason> {
    let s = digits_only(input, Reason::BsnNotDigits)?;
    let s = match s.len() {
        9 => s,
        8 => format!("0{s}"),
        7 => format!("00{s}"),
        _ => return Err(Reason::BsnLength),
    };
    let mut d = [0u8; 9];
    for (slot, b) in d.iter_mut().zip(s.bytes()) {
        *slot = b - b'0';
    }
    if !passes_11_proef(&d) {
        return Err(Reason::BsnChecksum);
    }
    Ok(s)
}

/// Normalises a V-nummer (vreemdelingennummer) to its 10 digits.
pub fn v_number(input: &str) -> Result<String, Reason> {
    let s = digits_only(input, Reason::VNumberFormat)?;
    if s.len() != 10 || s.bytes().all(|b| b == b'0') {
        return Err(Reason::VNumberFormat);
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bsn_rules() {
        assert_eq!(bsn("111222333"), Ok("111222333".into()));
        assert_eq!(bsn("1112.22.333"), Ok("111222333".into()));
        assert_eq!(bsn(" 111 222 333 "), Ok("111222333".into()));
        assert_eq!(bsn("111222334"), Err(Reason::BsnChecksum));
        assert_eq!(bsn("000000000"), Err(Reason::BsnChecksum));
        assert_eq!(bsn("12345"), Err(Reason::BsnLength));
        assert_eq!(bsn("11122233a"), Err(Reason::BsnNotDigits));
        // 8 digits: the lost leading zero is restored before the check.
        assert_eq!(bsn("12345672"), Ok("012345672".into()));
        assert_eq!(bsn("012345672"), Ok("012345672".into()));
        // 7 digits: two lost leading zeros.
        assert_eq!(bsn("1234560"), Ok("001234560".into()));
        assert_eq!(bsn("12.34.560"), Ok("001234560".into()));
        assert_eq!(bsn("001234560"), Ok("001234560".into()));
        assert_eq!(bsn("1234561"), Err(Reason::BsnChecksum));
        // 6 digits are not padded.
        assert_eq!(bsn("123456"), Err(Reason::BsnLength));
        assert_eq!(bsn("1234567890"), Err(Reason::BsnLength));
    }

    #[test]
    fn v_number_rules() {
        assert_eq!(v_number("12345-67890"), Ok("1234567890".into()));
        assert_eq!(v_number("123456789"), Err(Reason::VNumberFormat));
        assert_eq!(v_number("0000000000"), Err(Reason::VNumberFormat));
        assert_eq!(v_number("12345678ab"), Err(Reason::VNumberFormat));
    }
}
