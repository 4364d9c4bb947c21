//! The time zones merchants' calendars run in. Every zone of the markets
//! Malipo serves keeps one UTC offset all year (no daylight saving), so a
//! table of offsets is exact and needs no time-zone database.

use time::{Date, OffsetDateTime, UtcOffset};

use crate::Timestamp;

/// IANA names and their offsets in hours.
const ZONES: &[(&str, i8)] = &[
    ("UTC", 0),
    ("Africa/Abidjan", 0),
    ("Africa/Accra", 0),
    ("Africa/Dakar", 0),
    ("Africa/Douala", 1),
    ("Africa/Lagos", 1),
    ("Africa/Kinshasa", 1),
    ("Africa/Blantyre", 2),
    ("Africa/Harare", 2),
    ("Africa/Johannesburg", 2),
    ("Africa/Kigali", 2),
    ("Africa/Lubumbashi", 2),
    ("Africa/Lusaka", 2),
    ("Africa/Maputo", 2),
    ("Africa/Addis_Ababa", 3),
    ("Africa/Dar_es_Salaam", 3),
    ("Africa/Kampala", 3),
    ("Africa/Nairobi", 3),
];

/// A merchant's time zone: the IANA name it was given by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeZone {
    name: &'static str,
    offset: UtcOffset,
}

impl TimeZone {
    pub const UTC: TimeZone = TimeZone {
        name: "UTC",
        offset: UtcOffset::UTC,
    };

    /// The zone by IANA name (exact spelling), if Malipo knows it.
    pub fn parse(name: &str) -> Option<Self> {
        let (name, hours) = ZONES.iter().find(|(zone, _)| *zone == name)?;
        Some(Self {
            name,
            offset: UtcOffset::from_hms(*hours, 0, 0).ok()?,
        })
    }

    /// Every name [`TimeZone::parse`] accepts.
    pub fn names() -> impl Iterator<Item = &'static str> {
        ZONES.iter().map(|(name, _)| *name)
    }

    pub const fn name(self) -> &'static str {
        self.name
    }

    /// The calendar date in this zone at `at`.
    pub fn date_at(self, at: Timestamp) -> Date {
        let utc = OffsetDateTime::from_unix_timestamp_nanos(i128::from(at.unix_ms()) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        utc.to_offset(self.offset).date()
    }

    /// The moment it is `hour`:00 on `date` in this zone.
    pub fn at_hour(self, date: Date, hour: u8) -> Timestamp {
        let local = date
            .with_hms(hour.min(23), 0, 0)
            .expect("an hour below 24 is valid")
            .assume_offset(self.offset);
        Timestamp::from_offset_date_time(local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_follow_the_zone() {
        // 2026-01-31 22:30 UTC is already 1 February in Nairobi (UTC+3).
        let at = Timestamp::from_unix_ms(1_769_898_600_000);
        assert_eq!(TimeZone::UTC.date_at(at).to_string(), "2026-01-31");
        let nairobi = TimeZone::parse("Africa/Nairobi").unwrap();
        assert_eq!(nairobi.date_at(at).to_string(), "2026-02-01");
        assert_eq!(nairobi.name(), "Africa/Nairobi");
        assert!(TimeZone::parse("africa/nairobi").is_none());
        assert!(TimeZone::parse("Europe/London").is_none());
        assert!(TimeZone::names().all(|name| TimeZone::parse(name).is_some()));
    }
}
