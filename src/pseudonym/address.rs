//! Dutch addresses for household keys (spec §3.9).

use super::error::Reason;

/// A normalised address: postcode `1234AB`, house number, addition in capitals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// Postcode, four digits and two capitals without space.
    pub postcode: String,
    /// House number 1–99999.
    pub number: u32,
    /// Addition (huisletter + toevoeging), capitals and digits, possibly empty.
    pub addition: String,
}

/// Normalises a postcode: spaces removed, letters in capitals, `[1-9][0-9]{3}[A-Z]{2}`,
/// the never-issued letter pairs SA, SD and SS refused.
pub fn postcode(input: &str) -> Result<String, Reason> {
    if input.len() > 20 {
        return Err(Reason::TooLong);
    }
    let s: String = input
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    let b = s.as_bytes();
    let ok = b.len() == 6
        && (b'1'..=b'9').contains(&b[0])
        && b[1..4].iter().all(u8::is_ascii_digit)
        && b[4..6].iter().all(u8::is_ascii_uppercase)
        && !matches!(&s[4..6], "SA" | "SD" | "SS");
    if ok {
        Ok(s)
    } else {
        Err(Reason::PostcodeFormat)
    }
}

/// Normalises a house number and addition. The number field may carry the addition
/// itself ("12-A", "12 bis", "12A"); a separate addition field is appended to it.
pub fn house_number(number: &str, addition: &str) -> Result<(u32, String), Reason> {
    if number.len() > 20 {
        return Err(Reason::TooLong);
    }
    if addition.len() > 20 {
        return Err(Reason::AdditionLength);
    }
    let n = number.trim();
    let digits = n.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(Reason::HouseNumberFormat);
    }
    let value: u32 = n[..digits].parse().map_err(|_| Reason::HouseNumberRange)?;
    if !(1..=99_999).contains(&value) {
        return Err(Reason::HouseNumberRange);
    }
    let mut add = String::new();
    for c in n[digits..].chars().chain(addition.chars()) {
        match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' => add.push(c.to_ascii_uppercase()),
            ' ' | '-' | '/' | '.' | '_' => {}
            _ => return Err(Reason::AdditionFormat),
        }
    }
    if add.len() > 6 {
        return Err(Reason::AdditionLength);
    }
    Ok((value, add))
}

impl Address {
    /// The value the household key is derived from: `1234AB|12|A`.
    pub fn key_value(&self) -> String {
        format!("{}|{}|{}", self.postcode, self.number, self.addition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postcodes() {
        assert_eq!(postcode("1234 ab"), Ok("1234AB".into()));
        assert_eq!(postcode(" 1234AB "), Ok("1234AB".into()));
        assert_eq!(postcode("0123AB"), Err(Reason::PostcodeFormat));
        assert_eq!(postcode("1234 SS"), Err(Reason::PostcodeFormat));
        assert_eq!(postcode("1234A"), Err(Reason::PostcodeFormat));
        assert_eq!(postcode("1234 ÄB"), Err(Reason::PostcodeFormat));
    }

    #[test]
    fn house_numbers() {
        assert_eq!(house_number("12", ""), Ok((12, "".into())));
        assert_eq!(house_number("12-A", ""), Ok((12, "A".into())));
        assert_eq!(house_number("12 a", ""), Ok((12, "A".into())));
        assert_eq!(house_number("12A", ""), Ok((12, "A".into())));
        assert_eq!(house_number("12", "bis"), Ok((12, "BIS".into())));
        assert_eq!(house_number("12 bis", ""), Ok((12, "BIS".into())));
        assert_eq!(house_number("012", "-1"), Ok((12, "1".into())));
        assert_eq!(house_number("12/2", ""), Ok((12, "2".into())));
        assert_eq!(house_number("A12", ""), Err(Reason::HouseNumberFormat));
        assert_eq!(house_number("0", ""), Err(Reason::HouseNumberRange));
        assert_eq!(house_number("100000", ""), Err(Reason::HouseNumberRange));
        assert_eq!(house_number("12", "abcdefg"), Err(Reason::AdditionLength));
        assert_eq!(house_number("12", "a+b"), Err(Reason::AdditionFormat));
    }
}
