//! Due dates on the merchant's local calendar. No time zones here.
//!
//! Every due date is computed from the start date (anchored), never from the
//! previous due date: chaining would let one clamp (31 Jan → 28 Feb) drag every
//! later date to the 28th.

use time::{Date, Month};

use crate::Frequency;

/// `date` plus `months` calendar months, the day clamped to the target month's
/// last day: 31 Jan + 1 = 28 Feb (29 in a leap year), 29 Feb + 12 = 28 Feb.
/// `None` past the calendar's end.
pub fn add_months(date: Date, months: u32) -> Option<Date> {
    let index = i64::from(date.year()) * 12 + i64::from(u8::from(date.month()) - 1);
    let target = index.checked_add(i64::from(months))?;
    let year = i32::try_from(target.div_euclid(12)).ok()?;
    let month = Month::try_from(u8::try_from(target.rem_euclid(12) + 1).ok()?).ok()?;
    let day = date.day().min(month.length(year));
    Date::from_calendar_date(year, month, day).ok()
}

/// `start` advanced by `periods` periods of `frequency`. `None` past the
/// calendar's end.
pub fn due_date(start: Date, frequency: Frequency, periods: u32) -> Option<Date> {
    match frequency {
        Frequency::Daily => add_days(start, i64::from(periods)),
        Frequency::Weekly => add_days(start, i64::from(periods) * 7),
        Frequency::Biweekly => add_days(start, i64::from(periods) * 14),
        Frequency::Monthly => add_months(start, periods),
        Frequency::Yearly => add_months(start, periods.checked_mul(12)?),
    }
}

/// Whole days from `from` to `to` (negative if `to` is earlier).
pub fn days_between(from: Date, to: Date) -> i64 {
    i64::from(to.to_julian_day()) - i64::from(from.to_julian_day())
}

fn add_days(date: Date, days: i64) -> Option<Date> {
    let julian = i64::from(date.to_julian_day()).checked_add(days)?;
    Date::from_julian_day(i32::try_from(julian).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn months_clamp_to_the_last_day_and_stay_anchored() {
        assert_eq!(
            add_months(date!(2026 - 01 - 31), 1),
            Some(date!(2026 - 02 - 28))
        );
        assert_eq!(
            add_months(date!(2026 - 01 - 31), 2),
            Some(date!(2026 - 03 - 31))
        );
        assert_eq!(
            add_months(date!(2028 - 01 - 31), 1),
            Some(date!(2028 - 02 - 29))
        );
        assert_eq!(
            add_months(date!(2028 - 02 - 29), 12),
            Some(date!(2029 - 02 - 28))
        );
        assert_eq!(
            add_months(date!(2026 - 11 - 30), 3),
            Some(date!(2027 - 02 - 28))
        );
        assert_eq!(
            add_months(date!(2026 - 05 - 15), 0),
            Some(date!(2026 - 05 - 15))
        );
        assert_eq!(add_months(Date::MAX, 1), None);
        assert_eq!(add_months(date!(2026 - 01 - 01), u32::MAX), None);
    }

    #[test]
    fn periods_per_frequency() {
        let start = date!(2026 - 01 - 31);
        assert_eq!(
            due_date(start, Frequency::Daily, 1),
            Some(date!(2026 - 02 - 01))
        );
        assert_eq!(
            due_date(start, Frequency::Weekly, 2),
            Some(date!(2026 - 02 - 14))
        );
        assert_eq!(
            due_date(start, Frequency::Biweekly, 2),
            Some(date!(2026 - 02 - 28))
        );
        assert_eq!(
            due_date(start, Frequency::Monthly, 3),
            Some(date!(2026 - 04 - 30))
        );
        assert_eq!(
            due_date(start, Frequency::Yearly, 2),
            Some(date!(2028 - 01 - 31))
        );
        assert_eq!(due_date(start, Frequency::Weekly, 0), Some(start));
        assert_eq!(due_date(Date::MAX, Frequency::Daily, 1), None);
        assert_eq!(due_date(start, Frequency::Yearly, u32::MAX), None);
    }
}
