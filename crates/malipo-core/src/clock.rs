//! Time comes from a [`Clock`], never from the system directly, so tests
//! (and, later, sandbox test clocks) can move it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde::{Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A point in time with millisecond precision, stored as Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_unix_ms(unix_ms: i64) -> Self {
        Self(unix_ms)
    }

    pub const fn unix_ms(self) -> i64 {
        self.0
    }

    pub fn from_offset_date_time(at: OffsetDateTime) -> Self {
        let unix_ms = at.unix_timestamp_nanos() / 1_000_000;
        Self(i64::try_from(unix_ms).expect("timestamps fit in i64 milliseconds"))
    }

    pub fn to_offset_date_time(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .expect("a stored timestamp is within the representable range")
    }

    /// This time plus `duration_ms`; saturates rather than overflowing.
    pub fn plus_ms(self, duration_ms: i64) -> Self {
        Self(self.0.saturating_add(duration_ms))
    }

    pub fn to_rfc3339(self) -> String {
        self.to_offset_date_time()
            .format(&Rfc3339)
            .expect("RFC 3339 formatting of a valid time cannot fail")
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// API responses carry times as RFC 3339 strings in UTC.
impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::DateTime,
            )))
            .into()
    }
}
impl utoipa::ToSchema for Timestamp {}

pub trait Clock: Send + Sync + fmt::Debug + 'static {
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_offset_date_time(OffsetDateTime::now_utc())
    }
}

/// A clock that only moves when told to. Cloning shares the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    unix_ms: Arc<AtomicI64>,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self {
            unix_ms: Arc::new(AtomicI64::new(start.unix_ms())),
        }
    }

    pub fn advance_ms(&self, duration_ms: i64) {
        assert!(duration_ms >= 0, "a clock never moves backwards");
        self.unix_ms.fetch_add(duration_ms, Ordering::SeqCst);
    }

    pub fn set(&self, at: Timestamp) {
        self.unix_ms.store(at.unix_ms(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.unix_ms.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_with_milliseconds() {
        let at = Timestamp::from_unix_ms(1_764_000_000_123);
        assert_eq!(at.to_rfc3339(), "2025-11-24T16:00:00.123Z");
        assert_eq!(
            Timestamp::from_offset_date_time(at.to_offset_date_time()),
            at
        );
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(Timestamp::from_unix_ms(1_000));
        let shared = clock.clone();
        assert_eq!(clock.now().unix_ms(), 1_000);
        shared.advance_ms(500);
        assert_eq!(clock.now().unix_ms(), 1_500);
    }
}
