//! Birth dates (spec §3.6).

use super::error::Reason;
use std::fmt;

/// A calendar date in the proleptic Gregorian calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    /// Year, four digits.
    pub year: u16,
    /// Month 1–12.
    pub month: u8,
    /// Day 1–31.
    pub day: u8,
}

/// Earliest birth year accepted.
pub const MIN_BIRTH_YEAR: u16 = 1890;

impl Date {
    /// A date, if it exists in the calendar.
    pub fn new(year: u16, month: u8, day: u8) -> Option<Date> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(Date { year, month, day })
    }

    /// Parses `YYYY-MM-DD` exactly (used for `--today` and configuration, not for partner data).
    pub fn parse_iso(s: &str) -> Option<Date> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u16>().ok();
        Date::new(num(0..4)?, num(5..7)? as u8, num(8..10)? as u8)
    }

    /// Today's date in UTC from the system clock.
    pub fn today_utc() -> Date {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Date::from_days_since_epoch((secs / 86_400) as i64)
    }

    /// The date `days` days after 1970-01-01 (Howard Hinnant's civil-from-days).
    pub fn from_days_since_epoch(days: i64) -> Date {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as u16;
        Date { year, month, day }
    }

    /// Days since 1970-01-01.
    pub fn days_since_epoch(self) -> i64 {
        let (y, m, d) = (
            i64::from(self.year),
            i64::from(self.month),
            i64::from(self.day),
        );
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let mp = if m > 2 { m - 3 } else { m + 9 };
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

fn is_leap(y: u16) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: u16, m: u8) -> u8 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Month names and abbreviations accepted in dates, Dutch and English (spec §3.6).
const MONTHS: &[(&str, u8)] = &[
    ("jan", 1),
    ("januari", 1),
    ("january", 1),
    ("feb", 2),
    ("febr", 2),
    ("februari", 2),
    ("february", 2),
    ("mrt", 3),
    ("maa", 3),
    ("mar", 3),
    ("maart", 3),
    ("march", 3),
    ("apr", 4),
    ("april", 4),
    ("mei", 5),
    ("may", 5),
    ("jun", 6),
    ("juni", 6),
    ("june", 6),
    ("jul", 7),
    ("juli", 7),
    ("july", 7),
    ("aug", 8),
    ("augustus", 8),
    ("august", 8),
    ("sep", 9),
    ("sept", 9),
    ("september", 9),
    ("okt", 10),
    ("oct", 10),
    ("oktober", 10),
    ("october", 10),
    ("nov", 11),
    ("november", 11),
    ("dec", 12),
    ("december", 12),
];

/// One token of a date: a run of digits or a run of letters.
#[derive(Debug, PartialEq)]
enum Tok<'a> {
    Num(&'a str),
    Word(String),
}

fn tokenize(s: &str) -> Result<Vec<Tok<'_>>, Reason> {
    let mut toks = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() {
            let j = i + b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
            toks.push(Tok::Num(&s[i..j]));
            i = j;
        } else if c.is_ascii_alphabetic() {
            let j = i + b[i..]
                .iter()
                .take_while(|c| c.is_ascii_alphabetic())
                .count();
            toks.push(Tok::Word(s[i..j].to_ascii_lowercase()));
            i = j;
        } else if matches!(c, b'-' | b'/' | b'.' | b' ') {
            i += 1;
        } else {
            return Err(Reason::DateFormat);
        }
    }
    Ok(toks)
}

/// Parses a birth date in one of the accepted formats and checks it against `today`.
///
/// Year-first forms (`1985-03-07`, `1985/3/7`, `19850307`, ISO date-times) and
/// day-first forms (`07-03-1985`, `7/3/1985`, `07.03.1985`, `7 maart 1985`,
/// `07-mrt-1985`) are accepted. Month-first (American) order is never assumed.
pub fn birth_date(input: &str, today: Date) -> Result<Date, Reason> {
    let s = input.trim();
    if s.len() > 40 {
        return Err(Reason::TooLong);
    }
    // ISO date-time: keep the date before a 'T' or before a space followed by a time.
    let b = s.as_bytes();
    let s = match b.get(10) {
        Some(b'T' | b't') => &s[..10],
        Some(b' ') if s[11..].contains(':') => &s[..10],
        _ => s,
    };
    let toks = tokenize(s)?;
    let (y, m, d): (&str, u8, &str) = match toks.as_slice() {
        [Tok::Num(all)] if all.len() == 8 => {
            let (y, rest) = all.split_at(4);
            let (m, d) = rest.split_at(2);
            (y, m.parse().map_err(|_| Reason::DateFormat)?, d)
        }
        [Tok::Num(a), Tok::Num(b), Tok::Num(c)] if a.len() == 4 => (a, small(b)?, c),
        [Tok::Num(a), Tok::Num(b), Tok::Num(c)] if a.len() <= 2 && b.len() <= 2 => {
            if c.len() == 2 {
                return Err(Reason::DateTwoDigitYear);
            }
            (c, small(b)?, a)
        }
        [Tok::Num(a), Tok::Word(w), Tok::Num(c)] if a.len() <= 2 => {
            let m = MONTHS
                .iter()
                .find(|(n, _)| n == w)
                .map(|(_, m)| *m)
                .ok_or(Reason::DateFormat)?;
            if c.len() == 2 {
                return Err(Reason::DateTwoDigitYear);
            }
            (c, m, a)
        }
        _ => return Err(Reason::DateFormat),
    };
    if y.len() != 4 || d.len() > 2 || d.is_empty() {
        return Err(Reason::DateFormat);
    }
    let year: u16 = y.parse().map_err(|_| Reason::DateFormat)?;
    let day: u8 = d.parse().map_err(|_| Reason::DateFormat)?;
    if m == 0 || day == 0 {
        return Err(Reason::DateIncomplete);
    }
    let date = Date::new(year, m, day).ok_or(Reason::DateImpossible)?;
    if year < MIN_BIRTH_YEAR || date > today {
        return Err(Reason::DateOutOfRange);
    }
    Ok(date)
}

fn small(s: &str) -> Result<u8, Reason> {
    if s.is_empty() || s.len() > 2 {
        return Err(Reason::DateFormat);
    }
    s.parse().map_err(|_| Reason::DateFormat)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> Date {
        Date::new(2026, 1, 1).unwrap()
    }

    #[test]
    fn accepted_formats() {
        let want = Date::new(1985, 3, 7).unwrap();
        for s in [
            "1985-03-07",
            "1985-3-7",
            "1985/03/07",
            "19850307",
            "07-03-1985",
            "7-3-1985",
            "07/03/1985",
            "07.03.1985",
            "7 3 1985",
            "7 maart 1985",
            "07-mrt-1985",
            "7 Mar 1985",
            "1985-03-07T00:00:00",
            "1985-03-07 00:00:00",
            "  1985-03-07 ",
        ] {
            assert_eq!(birth_date(s, today()), Ok(want), "{s}");
        }
    }

    #[test]
    fn rejections() {
        assert_eq!(
            birth_date("07-03-85", today()),
            Err(Reason::DateTwoDigitYear)
        );
        assert_eq!(
            birth_date("1985-00-00", today()),
            Err(Reason::DateIncomplete)
        );
        assert_eq!(
            birth_date("00-03-1985", today()),
            Err(Reason::DateIncomplete)
        );
        assert_eq!(
            birth_date("1985-02-30", today()),
            Err(Reason::DateImpossible)
        );
        assert_eq!(
            birth_date("03/27/1985", today()),
            Err(Reason::DateImpossible)
        );
        assert_eq!(
            birth_date("1985-13-01", today()),
            Err(Reason::DateImpossible)
        );
        assert_eq!(
            birth_date("1889-12-31", today()),
            Err(Reason::DateOutOfRange)
        );
        assert_eq!(
            birth_date("2026-01-02", today()),
            Err(Reason::DateOutOfRange)
        );
        assert_eq!(birth_date("gisteren", today()), Err(Reason::DateFormat));
        assert_eq!(birth_date("1985-03-07x", today()), Err(Reason::DateFormat));
        assert_eq!(birth_date("07031985", today()), Err(Reason::DateImpossible));
        assert_eq!(
            birth_date("2000-02-29", today()),
            Ok(Date::new(2000, 2, 29).unwrap())
        );
        assert_eq!(
            birth_date("1900-02-29", today()),
            Err(Reason::DateImpossible)
        );
    }

    #[test]
    fn epoch_days_round_trip() {
        for days in [-30_000i64, -1, 0, 1, 10_957, 20_000, 60_000] {
            assert_eq!(Date::from_days_since_epoch(days).days_since_epoch(), days);
        }
        assert_eq!(Date::from_days_since_epoch(0).to_string(), "1970-01-01");
    }
}
