//! Turning terms, a total and a start date into an exact schedule.

use malipo_core::{Currency, Money};
use serde::{Deserialize, Serialize};
use time::Date;

use crate::calendar::{add_months, days_between, due_date};
use crate::terms::BASIS_POINTS_ONE;
use crate::{Deposit, Frequency, Interest, Length, PlanTerms, TermsError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    pub currency: Currency,
    /// The price.
    pub total_minor: i64,
    pub deposit_minor: i64,
    /// total − deposit.
    pub financed_minor: i64,
    pub interest_minor: i64,
    pub fee_minor: i64,
    pub inflation_minor: i64,
    /// total + interest + fee + inflation = deposit + Σ installment amounts.
    pub total_payable_minor: i64,
    pub installments: Vec<ScheduledInstallment>,
}

impl Schedule {
    pub fn total(&self) -> Money {
        Money::new(self.total_minor, self.currency)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledInstallment {
    /// 1-based.
    pub number: u32,
    #[serde(with = "iso_date")]
    pub due_date: Date,
    /// principal + interest + fee + inflation.
    pub amount_minor: i64,
    pub principal_minor: i64,
    pub interest_minor: i64,
    pub fee_minor: i64,
    pub inflation_minor: i64,
}

/// The schedule `terms` give for `total` starting on `start`. Errs, never
/// panics, on invalid terms or arithmetic that would overflow.
pub fn quote(terms: &PlanTerms, total: Money, start: Date) -> Result<Schedule, TermsError> {
    let total_minor = total.amount_minor;
    terms.validate(total_minor)?;

    let deposit_minor = match terms.deposit {
        Deposit::Percent { basis_points } => ratio_half_up(
            i128::from(total_minor) * i128::from(basis_points),
            i128::from(BASIS_POINTS_ONE),
        )
        .ok_or(TermsError::Overflow {
            field: "deposit.basis_points",
        })?,
        Deposit::Amount { amount_minor } => amount_minor,
    };
    // Validation bounds the deposit to 0..=total, so this cannot underflow.
    let financed_minor = total_minor - deposit_minor;

    let mut schedule = Schedule {
        currency: total.currency,
        total_minor,
        deposit_minor,
        financed_minor,
        interest_minor: 0,
        fee_minor: 0,
        inflation_minor: 0,
        total_payable_minor: total_minor,
        installments: Vec::new(),
    };
    // Paid in full up front: no plan, so nothing to charge interest or a fee on.
    if financed_minor == 0 {
        return Ok(schedule);
    }

    let count = installment_count(terms.length, terms.frequency, start)?;
    let due_dates = (0..count)
        .map(|k| {
            terms
                .first_due_after_periods
                .checked_add(k)
                .and_then(|periods| due_date(start, terms.frequency, periods))
        })
        .collect::<Option<Vec<Date>>>()
        .ok_or(TermsError::DateOutOfRange {
            field: "first_due_after_periods",
        })?;

    let principal = i128::from(financed_minor);
    let n = i128::from(count);
    let interest_overflow = TermsError::Overflow {
        field: "interest.basis_points",
    };
    let interest_minor = match terms.interest {
        Interest::None => 0,
        Interest::FlatPerPeriod { basis_points } => principal
            .checked_mul(i128::from(basis_points))
            .and_then(|x| x.checked_mul(n))
            .and_then(|x| ratio_half_up(x, i128::from(BASIS_POINTS_ONE)))
            .ok_or(interest_overflow)?,
        Interest::Total { basis_points } => principal
            .checked_mul(i128::from(basis_points))
            .and_then(|x| ratio_half_up(x, i128::from(BASIS_POINTS_ONE)))
            .ok_or(interest_overflow)?,
    };

    let inflation_minor = match terms.inflation {
        None => 0,
        Some(inflation) => {
            // Due dates are never before the start, so plan_days >= 0.
            let last = due_dates.last().copied().unwrap_or(start);
            let plan_days = days_between(start, last);
            principal
                .checked_mul(i128::from(inflation.annual_basis_points))
                .and_then(|x| x.checked_mul(i128::from(plan_days)))
                .and_then(|x| ratio_half_up(x, i128::from(BASIS_POINTS_ONE) * 365))
                .ok_or(TermsError::Overflow {
                    field: "inflation.annual_basis_points",
                })?
        }
    };

    let total_payable_minor = total_minor
        .checked_add(interest_minor)
        .ok_or(interest_overflow)?
        .checked_add(terms.fee_minor)
        .ok_or(TermsError::Overflow { field: "fee_minor" })?
        .checked_add(inflation_minor)
        .ok_or(TermsError::Overflow {
            field: "inflation.annual_basis_points",
        })?;

    let installments = (0..count)
        .zip(due_dates)
        .map(|(k, due_date)| {
            let principal_minor = share(financed_minor, count, k);
            let interest_minor = share(interest_minor, count, k);
            let fee_minor = share(terms.fee_minor, count, k);
            let inflation_minor = share(inflation_minor, count, k);
            ScheduledInstallment {
                number: k + 1,
                due_date,
                // Each part is at most its component, and the components sum
                // to at most total_payable (checked above): no overflow.
                amount_minor: principal_minor + interest_minor + fee_minor + inflation_minor,
                principal_minor,
                interest_minor,
                fee_minor,
                inflation_minor,
            }
        })
        .collect();

    schedule.interest_minor = interest_minor;
    schedule.fee_minor = terms.fee_minor;
    schedule.inflation_minor = inflation_minor;
    schedule.total_payable_minor = total_payable_minor;
    schedule.installments = installments;
    Ok(schedule)
}

/// The number of installments a length gives; see [`Length`].
fn installment_count(length: Length, frequency: Frequency, start: Date) -> Result<u32, TermsError> {
    let months = match length {
        Length::Installments { count } => return Ok(count),
        Length::Months { months } => months,
    };
    let days = || {
        add_months(start, months)
            .map(|end| days_between(start, end))
            .ok_or(TermsError::DateOutOfRange {
                field: "length.months",
            })
    };
    let count = match frequency {
        Frequency::Monthly => i64::from(months),
        Frequency::Yearly => i64::from(months / 12).max(1),
        Frequency::Daily => days()?,
        Frequency::Weekly => (days()? / 7).max(1),
        Frequency::Biweekly => (days()? / 14).max(1),
    };
    // At most 120 months of days (~3653): always fits.
    u32::try_from(count).map_err(|_| TermsError::Overflow {
        field: "length.months",
    })
}

/// Installment `k`'s part of `component` split over `count`: the floor each,
/// plus one minor unit for each of the first `component % count` installments.
fn share(component: i64, count: u32, k: u32) -> i64 {
    let count = i64::from(count);
    let base = component / count;
    if i64::from(k) < component % count {
        base + 1
    } else {
        base
    }
}

/// numerator / denominator rounded half-up, for numerator >= 0 and an even
/// denominator; `None` if it does not fit an i64.
fn ratio_half_up(numerator: i128, denominator: i128) -> Option<i64> {
    let rounded = numerator.checked_add(denominator / 2)? / denominator;
    i64::try_from(rounded).ok()
}

/// Dates as `YYYY-MM-DD`, without enabling time's own serde (its format is a
/// workspace-wide feature choice, not this crate's).
mod iso_date {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _, ser::Error as _};
    use time::Date;
    use time::format_description::FormatItem;
    use time::macros::format_description;

    pub(super) const FORMAT: &[FormatItem<'static>] = format_description!("[year]-[month]-[day]");

    pub fn serialize<S: Serializer>(date: &Date, serializer: S) -> Result<S::Ok, S::Error> {
        let text = date.format(FORMAT).map_err(S::Error::custom)?;
        serializer.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Date, D::Error> {
        let text = String::deserialize(deserializer)?;
        Date::parse(&text, FORMAT).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Inflation;
    use time::macros::date;

    fn kes(minor: i64) -> Money {
        Money::new(minor, Currency::KES)
    }

    /// No deposit, `count` installments: isolates the split and the charges.
    fn plain(count: u32, frequency: Frequency) -> PlanTerms {
        PlanTerms {
            deposit: Deposit::Amount { amount_minor: 0 },
            length: Length::Installments { count },
            ..PlanTerms::pos_standard(frequency)
        }
    }

    fn amounts(schedule: &Schedule) -> Vec<i64> {
        schedule
            .installments
            .iter()
            .map(|i| i.amount_minor)
            .collect()
    }

    fn dates(schedule: &Schedule) -> Vec<Date> {
        schedule.installments.iter().map(|i| i.due_date).collect()
    }

    #[test]
    fn pos_standard_weekly_quarters_the_price() {
        let terms = PlanTerms::pos_standard(Frequency::Weekly);
        let schedule = quote(&terms, kes(100_000), date!(2026 - 01 - 31)).unwrap();
        assert_eq!(schedule.deposit_minor, 25_000);
        assert_eq!(schedule.financed_minor, 75_000);
        assert_eq!(schedule.total_payable_minor, 100_000);
        assert_eq!(amounts(&schedule), [25_000; 3]);
        assert_eq!(
            dates(&schedule),
            [
                date!(2026 - 02 - 07),
                date!(2026 - 02 - 14),
                date!(2026 - 02 - 21)
            ]
        );
        assert_eq!(
            schedule
                .installments
                .iter()
                .map(|i| i.number)
                .collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert_eq!(schedule.total(), kes(100_000));
    }

    #[test]
    fn monthly_dates_clamp_and_stay_anchored() {
        let terms = PlanTerms::pos_standard(Frequency::Monthly);
        let schedule = quote(&terms, kes(100_000), date!(2026 - 01 - 31)).unwrap();
        assert_eq!(
            dates(&schedule),
            [
                date!(2026 - 02 - 28),
                date!(2026 - 03 - 31),
                date!(2026 - 04 - 30)
            ]
        );
        let leap = quote(&terms, kes(100_000), date!(2028 - 01 - 31)).unwrap();
        assert_eq!(leap.installments[0].due_date, date!(2028 - 02 - 29));
    }

    #[test]
    fn first_due_on_the_start_date() {
        let terms = PlanTerms {
            first_due_after_periods: 0,
            ..PlanTerms::pos_standard(Frequency::Biweekly)
        };
        let schedule = quote(&terms, kes(100_000), date!(2026 - 01 - 31)).unwrap();
        assert_eq!(
            dates(&schedule),
            [
                date!(2026 - 01 - 31),
                date!(2026 - 02 - 14),
                date!(2026 - 02 - 28)
            ]
        );
    }

    #[test]
    fn the_remainder_goes_to_the_earliest_installments() {
        let schedule = quote(
            &plain(3, Frequency::Weekly),
            kes(100),
            date!(2026 - 01 - 31),
        )
        .unwrap();
        assert_eq!(amounts(&schedule), [34, 33, 33]);
    }

    #[test]
    fn zero_decimal_currencies_split_whole_units() {
        let ugx = |minor| Money::new(minor, Currency::UGX);
        let terms = PlanTerms::pos_standard(Frequency::Weekly);
        // 25 % of 100001 is 25000.25: rounds to 25000, leaving 75001 to split.
        let schedule = quote(&terms, ugx(100_001), date!(2026 - 01 - 31)).unwrap();
        assert_eq!(schedule.currency, Currency::UGX);
        assert_eq!(schedule.deposit_minor, 25_000);
        assert_eq!(amounts(&schedule), [25_001, 25_000, 25_000]);
        // 25 % of 10 is 2.5: half-up to 3.
        let small = quote(&terms, ugx(10), date!(2026 - 01 - 31)).unwrap();
        assert_eq!(small.deposit_minor, 3);
        assert_eq!(amounts(&small), [3, 2, 2]);
    }

    #[test]
    fn a_full_deposit_leaves_no_installments() {
        let terms = PlanTerms {
            deposit: Deposit::Percent {
                basis_points: 10_000,
            },
            interest: Interest::Total {
                basis_points: 1_000,
            },
            fee_minor: 500,
            ..PlanTerms::pos_standard(Frequency::Weekly)
        };
        let schedule = quote(&terms, kes(100_000), date!(2026 - 01 - 31)).unwrap();
        assert_eq!(schedule.deposit_minor, 100_000);
        assert_eq!(schedule.financed_minor, 0);
        assert_eq!((schedule.interest_minor, schedule.fee_minor), (0, 0));
        assert_eq!(schedule.total_payable_minor, 100_000);
        assert!(schedule.installments.is_empty());
    }

    #[test]
    fn total_interest_is_charged_once() {
        // 99999 × 12.5 % = 12499.875 → 12500, then 3125 an installment.
        let terms = PlanTerms {
            interest: Interest::Total {
                basis_points: 1_250,
            },
            ..plain(4, Frequency::Monthly)
        };
        let schedule = quote(&terms, kes(99_999), date!(2026 - 01 - 31)).unwrap();
        assert_eq!(schedule.interest_minor, 12_500);
        assert_eq!(schedule.total_payable_minor, 112_499);
        let principal: Vec<_> = schedule
            .installments
            .iter()
            .map(|i| i.principal_minor)
            .collect();
        assert_eq!(principal, [25_000, 25_000, 25_000, 24_999]);
        assert!(
            schedule
                .installments
                .iter()
                .all(|i| i.interest_minor == 3_125)
        );
        assert_eq!(amounts(&schedule), [28_125, 28_125, 28_125, 28_124]);
        // Exactly half a minor unit rounds up: 1 × 50 % = 0.5 → 1.
        let half = PlanTerms {
            interest: Interest::Total {
                basis_points: 5_000,
            },
            ..plain(1, Frequency::Monthly)
        };
        let schedule = quote(&half, kes(1), date!(2026 - 01 - 31)).unwrap();
        assert_eq!(schedule.interest_minor, 1);
    }

    #[test]
    fn flat_interest_is_charged_per_period() {
        // 33333 × 1.5 % × 3 = 1499.985 → 1500, then 500 an installment.
        let terms = PlanTerms {
            interest: Interest::FlatPerPeriod { basis_points: 150 },
            ..plain(3, Frequency::Weekly)
        };
        let schedule = quote(&terms, kes(33_333), date!(2026 - 01 - 31)).unwrap();
        assert_eq!(schedule.interest_minor, 1_500);
        assert_eq!(schedule.total_payable_minor, 34_833);
        assert_eq!(amounts(&schedule), [11_611; 3]);
    }

    #[test]
    fn inflation_is_pro_rata_to_the_last_due_date_and_the_fee_is_split() {
        // Financed 150000; 31 Jan → 30 Apr is 89 days;
        // 150000 × 8 % × 89 / 365 = 2926.03 → 2926 = 976 + 975 + 975.
        // Fee 1000 = 334 + 333 + 333.
        let terms = PlanTerms {
            fee_minor: 1_000,
            inflation: Some(Inflation {
                annual_basis_points: 800,
            }),
            ..PlanTerms::pos_standard(Frequency::Monthly)
        };
        let schedule = quote(&terms, kes(200_000), date!(2026 - 01 - 31)).unwrap();
        assert_eq!(schedule.deposit_minor, 50_000);
        assert_eq!(schedule.inflation_minor, 2_926);
        assert_eq!(schedule.fee_minor, 1_000);
        assert_eq!(schedule.total_payable_minor, 203_926);
        let parts: Vec<_> = schedule
            .installments
            .iter()
            .map(|i| (i.principal_minor, i.inflation_minor, i.fee_minor))
            .collect();
        assert_eq!(
            parts,
            [(50_000, 976, 334), (50_000, 975, 333), (50_000, 975, 333)]
        );
        assert_eq!(amounts(&schedule), [51_310, 51_308, 51_308]);
    }

    #[test]
    fn months_become_an_installment_count_by_frequency() {
        // 31 Jan 2026 + 3 months = 30 Apr 2026: 89 days.
        let start = date!(2026 - 01 - 31);
        let count = |months, frequency| {
            let terms = PlanTerms {
                length: Length::Months { months },
                ..PlanTerms::pos_standard(frequency)
            };
            quote(&terms, kes(1_000_000), start)
                .unwrap()
                .installments
                .len()
        };
        assert_eq!(count(3, Frequency::Monthly), 3);
        assert_eq!(count(3, Frequency::Daily), 89);
        assert_eq!(count(3, Frequency::Weekly), 12);
        assert_eq!(count(3, Frequency::Biweekly), 6);
        assert_eq!(count(3, Frequency::Yearly), 1);
        assert_eq!(count(24, Frequency::Yearly), 2);
        assert_eq!(count(1, Frequency::Biweekly), 2);
    }

    #[test]
    fn each_error_names_its_field() {
        let start = date!(2026 - 01 - 31);
        let base = PlanTerms::pos_standard(Frequency::Weekly);
        let field = |terms: PlanTerms, total: i64, start: Date| {
            let error = quote(&terms, kes(total), start).unwrap_err();
            assert!(error.to_string().starts_with(error.field()), "{error}");
            error.field()
        };
        let cases = [
            (base, 0, start, "total"),
            (base, -5, start, "total"),
            (
                PlanTerms {
                    deposit: Deposit::Percent {
                        basis_points: 10_001,
                    },
                    ..base
                },
                100,
                start,
                "deposit.basis_points",
            ),
            (
                PlanTerms {
                    deposit: Deposit::Amount { amount_minor: -1 },
                    ..base
                },
                100,
                start,
                "deposit.amount_minor",
            ),
            (
                PlanTerms {
                    deposit: Deposit::Amount { amount_minor: 101 },
                    ..base
                },
                100,
                start,
                "deposit.amount_minor",
            ),
            (plain(0, Frequency::Weekly), 100, start, "length.count"),
            (plain(1_001, Frequency::Weekly), 100, start, "length.count"),
            (
                PlanTerms {
                    length: Length::Months { months: 0 },
                    ..base
                },
                100,
                start,
                "length.months",
            ),
            (
                PlanTerms {
                    length: Length::Months { months: 121 },
                    ..base
                },
                100,
                start,
                "length.months",
            ),
            (
                PlanTerms {
                    interest: Interest::FlatPerPeriod {
                        basis_points: 100_001,
                    },
                    ..base
                },
                100,
                start,
                "interest.basis_points",
            ),
            (
                PlanTerms {
                    fee_minor: -1,
                    ..base
                },
                100,
                start,
                "fee_minor",
            ),
            (base, 100, Date::MAX, "first_due_after_periods"),
            (
                PlanTerms {
                    length: Length::Months { months: 1 },
                    ..base
                },
                100,
                Date::MAX,
                "length.months",
            ),
            (
                PlanTerms {
                    interest: Interest::Total {
                        basis_points: 100_000,
                    },
                    ..plain(1, Frequency::Weekly)
                },
                i64::MAX,
                start,
                "interest.basis_points",
            ),
            (
                PlanTerms {
                    fee_minor: 2,
                    ..plain(1, Frequency::Weekly)
                },
                i64::MAX - 1,
                start,
                "fee_minor",
            ),
            (
                PlanTerms {
                    inflation: Some(Inflation {
                        annual_basis_points: u32::MAX,
                    }),
                    ..plain(1, Frequency::Yearly)
                },
                i64::MAX,
                start,
                "inflation.annual_basis_points",
            ),
        ];
        for (terms, total, start, expected) in cases {
            assert_eq!(field(terms, total, start), expected, "{terms:?}");
        }
    }

    #[test]
    fn due_dates_are_written_as_iso_dates() {
        use serde::de::IntoDeserializer;
        use serde::de::value::{Error, StrDeserializer};
        let text: StrDeserializer<'_, Error> = "2028-02-29".into_deserializer();
        assert_eq!(iso_date::deserialize(text), Ok(date!(2028 - 02 - 29)));
        let bad: StrDeserializer<'_, Error> = "2027-02-29".into_deserializer();
        assert!(iso_date::deserialize(bad).is_err());
        assert_eq!(
            date!(2026 - 02 - 07).format(iso_date::FORMAT).unwrap(),
            "2026-02-07"
        );
    }
}
