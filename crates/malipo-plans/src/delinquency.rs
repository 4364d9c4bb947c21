//! How late a plan is, in the buckets collections and reports use.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DelinquencyBucket {
    #[serde(rename = "current")]
    Current,
    #[serde(rename = "1_7")]
    Days1To7,
    #[serde(rename = "8_30")]
    Days8To30,
    #[serde(rename = "31_60")]
    Days31To60,
    #[serde(rename = "60_plus")]
    Over60,
}

impl DelinquencyBucket {
    pub const ALL: &'static [DelinquencyBucket] = &[
        DelinquencyBucket::Current,
        DelinquencyBucket::Days1To7,
        DelinquencyBucket::Days8To30,
        DelinquencyBucket::Days31To60,
        DelinquencyBucket::Over60,
    ];

    /// `days` past the oldest unpaid due date; 0 or less is current.
    pub const fn for_days_overdue(days: i64) -> Self {
        match days {
            i64::MIN..=0 => DelinquencyBucket::Current,
            1..=7 => DelinquencyBucket::Days1To7,
            8..=30 => DelinquencyBucket::Days8To30,
            31..=60 => DelinquencyBucket::Days31To60,
            _ => DelinquencyBucket::Over60,
        }
    }

    /// The days past due the bucket holds, inclusive; `None` for current.
    pub const fn days(self) -> Option<(i64, i64)> {
        match self {
            DelinquencyBucket::Current => None,
            DelinquencyBucket::Days1To7 => Some((1, 7)),
            DelinquencyBucket::Days8To30 => Some((8, 30)),
            DelinquencyBucket::Days31To60 => Some((31, 60)),
            DelinquencyBucket::Over60 => Some((61, i64::MAX)),
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            DelinquencyBucket::Current => "current",
            DelinquencyBucket::Days1To7 => "1_7",
            DelinquencyBucket::Days8To30 => "8_30",
            DelinquencyBucket::Days31To60 => "31_60",
            DelinquencyBucket::Over60 => "60_plus",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|b| b.as_str() == text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_by_days_overdue() {
        let cases = [
            (i64::MIN, "current"),
            (-3, "current"),
            (0, "current"),
            (1, "1_7"),
            (7, "1_7"),
            (8, "8_30"),
            (30, "8_30"),
            (31, "31_60"),
            (60, "31_60"),
            (61, "60_plus"),
            (i64::MAX, "60_plus"),
        ];
        for (days, name) in cases {
            let bucket = DelinquencyBucket::for_days_overdue(days);
            assert_eq!(bucket.as_str(), name, "{days}");
            assert_eq!(DelinquencyBucket::parse(name), Some(bucket));
        }
    }
}
