//! Working days for follow-up deadlines, in Dutch local time.
//!
//! A deadline of `n` working days after a moment ends at local midnight (Europe/Amsterdam)
//! at the end of the `n`-th working day after that moment's local day. Saturdays,
//! Sundays and the configured holidays are not working days. Local time follows the EU
//! rule (CET, UTC+1; CEST, UTC+2 from 01:00 UTC on the last Sunday of March until
//! 01:00 UTC on the last Sunday of October), so no time-zone database is needed.

use crate::pseudonym::Date;
use std::collections::HashSet;

/// The working-day calendar of the index.
#[derive(Debug, Clone, Default)]
pub struct Calendar {
    holidays: HashSet<i64>,
}

const DAY: i64 = 86_400;

/// Days since the epoch of the last Sunday of `month` (3 or 10) of `year`.
fn last_sunday(year: u16, month: u8) -> i64 {
    let last = Date::new(year, month, 31)
        .map(Date::days_since_epoch)
        .unwrap_or(0);
    last - (weekday(last) + 1) % 7
}

/// 0 = Monday … 6 = Sunday (1970-01-01 was a Thursday).
pub fn weekday(day: i64) -> i64 {
    (day + 3).rem_euclid(7)
}

/// Offset of Dutch local time from UTC at unix time `t`, seconds.
pub fn local_offset(t: i64) -> i64 {
    let year = Date::from_days_since_epoch(t.div_euclid(DAY)).year;
    let start = last_sunday(year, 3) * DAY + 3600;
    let end = last_sunday(year, 10) * DAY + 3600;
    if (start..end).contains(&t) {
        7200
    } else {
        3600
    }
}

/// The local (Dutch) day of unix time `t`, as days since the epoch.
pub fn local_day(t: i64) -> i64 {
    (t + local_offset(t)).div_euclid(DAY)
}

/// Unix time of local midnight at the start of local day `day`.
pub fn local_midnight(day: i64) -> i64 {
    // Transitions happen at 02:00/03:00 local time, never at midnight, so the offset an
    // hour before midnight UTC of that day is the one in force at local midnight.
    day * DAY - local_offset(day * DAY - 3600)
}

impl Calendar {
    /// A calendar with these holidays (`YYYY-MM-DD`; invalid entries are ignored, the
    /// configuration has checked them).
    pub fn new(holidays: &[String]) -> Calendar {
        Calendar {
            holidays: holidays
                .iter()
                .filter_map(|h| Date::parse_iso(h))
                .map(Date::days_since_epoch)
                .collect(),
        }
    }

    /// Whether local day `day` is a working day.
    pub fn is_working_day(&self, day: i64) -> bool {
        weekday(day) < 5 && !self.holidays.contains(&day)
    }

    /// The end of the `n`-th working day after the local day of `t` (unix seconds).
    pub fn add_working_days(&self, t: i64, n: u32) -> i64 {
        let mut day = local_day(t);
        let mut left = n;
        while left > 0 {
            day += 1;
            if self.is_working_day(day) {
                left -= 1;
            }
        }
        local_midnight(day + 1)
    }

    /// Working days between two moments (whole local days after `from`'s day, up to and
    /// including `to`'s day), for reporting.
    pub fn working_days_between(&self, from: i64, to: i64) -> u32 {
        let (a, b) = (local_day(from), local_day(to));
        (a + 1..=b).filter(|d| self.is_working_day(*d)).count() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(date: &str, h: i64) -> i64 {
        Date::parse_iso(date).unwrap().days_since_epoch() * DAY + h * 3600
    }

    #[test]
    fn dutch_summer_time_follows_the_eu_rule() {
        // 2026: summer time from 29 March 01:00 UTC to 25 October 01:00 UTC.
        assert_eq!(local_offset(at("2026-03-29", 0)), 3600);
        assert_eq!(local_offset(at("2026-03-29", 1)), 7200);
        assert_eq!(local_offset(at("2026-10-25", 0)), 7200);
        assert_eq!(local_offset(at("2026-10-25", 1)), 3600);
        assert_eq!(local_offset(at("2026-12-01", 12)), 3600);
        // 23:30 UTC on 30 June is already 1 July in Amsterdam.
        assert_eq!(
            local_day(at("2026-06-30", 23)),
            Date::parse_iso("2026-07-01").unwrap().days_since_epoch()
        );
        assert_eq!(
            local_midnight(local_day(at("2026-07-01", 12))),
            at("2026-06-30", 22)
        );
    }

    #[test]
    fn working_days_skip_weekends_and_holidays() {
        let cal = Calendar::new(&["2026-12-25".into(), "2026-12-28".into()]);
        // Friday 4 December 2026, 15:00 UTC + 5 working days = end of Friday 11 December.
        assert_eq!(weekday(local_day(at("2026-12-04", 15))), 4);
        assert_eq!(
            cal.add_working_days(at("2026-12-04", 15), 5),
            at("2026-12-11", 23)
        );
        // Saturday counts from the next working day.
        assert_eq!(
            cal.add_working_days(at("2026-12-05", 10), 1),
            at("2026-12-07", 23)
        );
        // Thursday 24 December + 2: Friday 25 and Monday 28 are holidays, so Tue 29 and Wed 30.
        assert_eq!(
            cal.add_working_days(at("2026-12-24", 10), 2),
            at("2026-12-30", 23)
        );
        assert_eq!(
            cal.working_days_between(at("2026-12-24", 10), at("2026-12-30", 10)),
            2
        );
        assert!(!cal.is_working_day(Date::parse_iso("2026-12-25").unwrap().days_since_epoch()));
    }
}
