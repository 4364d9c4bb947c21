//! Fees: what a payment costs and who pays it.
//!
//! This is the product's documented pricing rule; change it only together
//! with the docs. Everything is integer minor units, never floats, widened to
//! `i128` where a product could exceed `i64`; a result that does not fit an
//! `i64` amount is an error, never a wrap or a panic.
//!
//! For an `amount >= 0` (a negative amount is refused) and a [`FeeSchedule`]:
//!
//! 1. **Percentage part** = `amount × percent_bps / 10_000`, rounded half-up
//!    to the minor unit: exactly half a minor unit rounds up.
//! 2. **Fee** = percentage part + `fixed_minor`, then raised to `min_minor`
//!    if below it and lowered to `max_minor` if above it.
//! 3. **Who pays**:
//!    - [`FeePayer::Customer`]: the fee is added on top. The customer pays
//!      `amount + fee`; the merchant receives `amount`.
//!    - [`FeePayer::Merchant`]: the fee is deducted. It is first capped at
//!      `amount`, so a merchant never nets a negative amount (even when
//!      `min_minor` exceeds the amount); the customer pays `amount` and the
//!      merchant receives `amount − fee`.
//!
//! In every case `expected_total = merchant_net + fee`.
//!
//! Example: 500 000.00 TZS at 50 bps, customer pays: the fee is 2 500.00 TZS
//! and the customer pays 502 500.00 TZS.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::money::{Money, MoneyError};

/// Basis points in 100%.
const BPS_PER_WHOLE: u32 = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeeError {
    /// A schedule field, or the amount, is out of range; `field` names it.
    #[error("{field} {reason}")]
    Invalid { field: &'static str, reason: String },
    /// The customer's total does not fit an amount.
    #[error(transparent)]
    Money(#[from] MoneyError),
}

impl FeeError {
    fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

/// Who bears the fee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeePayer {
    /// The fee is added on top of the amount.
    Customer,
    /// The fee is deducted from the amount.
    Merchant,
}

impl FeePayer {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Merchant => "merchant",
        }
    }

    /// Accepts exactly the names [`as_str`](Self::as_str) and serde produce.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "customer" => Some(Self::Customer),
            "merchant" => Some(Self::Merchant),
            _ => None,
        }
    }
}

impl fmt::Display for FeePayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A merchant's pricing. Amounts are minor units of the payment's currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeSchedule {
    pub percent_bps: u32,
    pub fixed_minor: i64,
    pub min_minor: Option<i64>,
    pub max_minor: Option<i64>,
    pub payer: FeePayer,
}

/// The outcome of pricing one payment; all amounts share its currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeBreakdown {
    /// What the merchant asked for.
    pub amount: Money,
    pub fee: Money,
    pub payer: FeePayer,
    /// What the customer pays.
    pub expected_total: Money,
    /// What the merchant receives.
    pub merchant_net: Money,
}

impl FeeSchedule {
    pub fn new(
        percent_bps: u32,
        fixed_minor: i64,
        min_minor: Option<i64>,
        max_minor: Option<i64>,
        payer: FeePayer,
    ) -> Result<Self, FeeError> {
        let schedule = Self {
            percent_bps,
            fixed_minor,
            min_minor,
            max_minor,
            payer,
        };
        schedule.validate()?;
        Ok(schedule)
    }

    /// The invariants [`new`](Self::new) enforces. The fields are public, so
    /// [`compute`](Self::compute) re-checks rather than trust how the value
    /// was built.
    pub fn validate(&self) -> Result<(), FeeError> {
        if self.percent_bps > BPS_PER_WHOLE {
            return Err(FeeError::invalid(
                "percent_bps",
                format!("must be at most {BPS_PER_WHOLE} (100%)"),
            ));
        }
        non_negative("fixed_minor", self.fixed_minor)?;
        if let Some(min) = self.min_minor {
            non_negative("min_minor", min)?;
        }
        if let Some(max) = self.max_minor {
            non_negative("max_minor", max)?;
        }
        match (self.min_minor, self.max_minor) {
            (Some(min), Some(max)) if min > max => Err(FeeError::invalid(
                "min_minor",
                format!("must not exceed max_minor ({min} > {max})"),
            )),
            _ => Ok(()),
        }
    }

    /// Prices `amount` by the rule in the [module docs](self).
    pub fn compute(&self, amount: Money) -> Result<FeeBreakdown, FeeError> {
        self.validate()?;
        non_negative("amount", amount.amount_minor)?;
        let fee_minor = match self.payer {
            FeePayer::Customer => self.fee_minor(amount.amount_minor),
            FeePayer::Merchant => self
                .fee_minor(amount.amount_minor)
                .min(i128::from(amount.amount_minor)),
        };
        let fee_minor = i64::try_from(fee_minor).map_err(|_| MoneyError::Overflow)?;
        let fee = Money::new(fee_minor, amount.currency);
        let (expected_total, merchant_net) = match self.payer {
            FeePayer::Customer => (amount.checked_add(fee)?, amount),
            FeePayer::Merchant => (amount, amount.checked_sub(fee)?),
        };
        Ok(FeeBreakdown {
            amount,
            fee,
            payer: self.payer,
            expected_total,
            merchant_net,
        })
    }

    /// The fee before the merchant-pays cap. Kept in `i128` so that a
    /// `max_minor` can still bring an oversized percentage-plus-fixed back
    /// into range instead of failing on an intermediate.
    fn fee_minor(&self, amount_minor: i64) -> i128 {
        let raw = percentage_part(amount_minor, self.percent_bps) + i128::from(self.fixed_minor);
        let raised = self.min_minor.map_or(raw, |min| raw.max(i128::from(min)));
        self.max_minor
            .map_or(raised, |max| raised.min(i128::from(max)))
    }
}

fn non_negative(field: &'static str, value: i64) -> Result<(), FeeError> {
    if value < 0 {
        Err(FeeError::invalid(
            field,
            format!("must not be negative (got {value})"),
        ))
    } else {
        Ok(())
    }
}

/// `amount × bps / 10_000` rounded half-up, for `amount >= 0`, computed
/// exactly as `floor((2·amount·bps + 10_000) / 20_000)`. With `amount < 2^63`
/// and `bps < 2^32` the operands stay below 2^97, so `i128` cannot overflow.
fn percentage_part(amount_minor: i64, bps: u32) -> i128 {
    let whole = i128::from(BPS_PER_WHOLE);
    (2 * i128::from(amount_minor) * i128::from(bps) + whole) / (2 * whole)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;
    use proptest::prelude::*;

    fn schedule(
        bps: u32,
        fixed: i64,
        min: Option<i64>,
        max: Option<i64>,
        payer: FeePayer,
    ) -> FeeSchedule {
        FeeSchedule::new(bps, fixed, min, max, payer).unwrap()
    }

    fn fee_of(schedule: &FeeSchedule, amount_minor: i64) -> i64 {
        schedule
            .compute(Money::new(amount_minor, Currency::KES))
            .unwrap()
            .fee
            .amount_minor
    }

    #[test]
    fn documented_example_customer_pays_on_top() {
        let tzs = |minor| Money::new(minor, Currency::TZS);
        let breakdown = schedule(50, 0, None, None, FeePayer::Customer)
            .compute(tzs(50_000_000))
            .unwrap();
        assert_eq!(
            breakdown,
            FeeBreakdown {
                amount: tzs(50_000_000),
                fee: tzs(250_000),
                payer: FeePayer::Customer,
                expected_total: tzs(50_250_000),
                merchant_net: tzs(50_000_000),
            }
        );
    }

    #[test]
    fn merchant_pays_by_deduction() {
        let breakdown = schedule(50, 0, None, None, FeePayer::Merchant)
            .compute(Money::new(50_000_000, Currency::TZS))
            .unwrap();
        assert_eq!(breakdown.fee.amount_minor, 250_000);
        assert_eq!(breakdown.expected_total.amount_minor, 50_000_000);
        assert_eq!(breakdown.merchant_net.amount_minor, 49_750_000);
    }

    #[test]
    fn percentage_rounds_half_up() {
        let half = schedule(5_000, 0, None, None, FeePayer::Customer);
        assert_eq!(fee_of(&half, 1), 1); // 0.5 -> 1
        assert_eq!(fee_of(&half, 3), 2); // 1.5 -> 2
        let just_under = schedule(4_999, 0, None, None, FeePayer::Customer);
        assert_eq!(fee_of(&just_under, 1), 0); // 0.4999 -> 0
        assert_eq!(
            fee_of(&schedule(0, 30, None, None, FeePayer::Customer), 0),
            30
        );
    }

    #[test]
    fn fixed_part_then_min_and_max_bounds() {
        let bounded = schedule(100, 10, Some(50), Some(500), FeePayer::Customer);
        assert_eq!(fee_of(&bounded, 1_000), 50); // 10 + 10, raised to the minimum
        assert_eq!(fee_of(&bounded, 20_000), 210); // 200 + 10, within bounds
        assert_eq!(fee_of(&bounded, 1_000_000), 500); // 10_010, lowered to the maximum
    }

    #[test]
    fn merchant_fee_is_capped_at_the_amount() {
        let breakdown = schedule(0, 0, Some(100), None, FeePayer::Merchant)
            .compute(Money::new(30, Currency::KES))
            .unwrap();
        assert_eq!(breakdown.fee.amount_minor, 30);
        assert_eq!(breakdown.merchant_net.amount_minor, 0);
    }

    #[test]
    fn invalid_schedules_name_the_field() {
        let field_of = |result: Result<FeeSchedule, FeeError>| match result {
            Err(FeeError::Invalid { field, .. }) => field,
            other => panic!("expected an invalid field, got {other:?}"),
        };
        let customer = FeePayer::Customer;
        let too_much = FeeSchedule::new(10_001, 0, None, None, customer).unwrap_err();
        assert_eq!(
            too_much.to_string(),
            "percent_bps must be at most 10000 (100%)"
        );
        assert_eq!(
            field_of(FeeSchedule::new(0, -1, None, None, customer)),
            "fixed_minor"
        );
        assert_eq!(
            field_of(FeeSchedule::new(0, 0, Some(-1), None, customer)),
            "min_minor"
        );
        assert_eq!(
            field_of(FeeSchedule::new(0, 0, None, Some(-1), customer)),
            "max_minor"
        );
        assert_eq!(
            field_of(FeeSchedule::new(0, 0, Some(2), Some(1), customer)),
            "min_minor"
        );
        assert!(FeeSchedule::new(10_000, 0, Some(1), Some(1), customer).is_ok());
    }

    #[test]
    fn negative_amounts_are_refused() {
        let result =
            schedule(50, 0, None, None, FeePayer::Customer).compute(Money::new(-1, Currency::KES));
        assert!(matches!(
            result,
            Err(FeeError::Invalid {
                field: "amount",
                ..
            })
        ));
    }

    #[test]
    fn a_total_beyond_the_amount_range_is_an_error() {
        let result = schedule(0, 1, None, None, FeePayer::Customer)
            .compute(Money::new(i64::MAX, Currency::KES));
        assert_eq!(result, Err(FeeError::Money(MoneyError::Overflow)));
    }

    #[test]
    fn payer_names_round_trip() {
        for payer in [FeePayer::Customer, FeePayer::Merchant] {
            assert_eq!(FeePayer::parse(payer.as_str()), Some(payer));
            assert_eq!(payer.to_string(), payer.as_str());
        }
        assert_eq!(FeePayer::parse("Customer"), None);
        assert_eq!(FeePayer::parse(""), None);
    }

    /// Mostly realistic values, sometimes anywhere up to `i64::MAX`.
    fn minor_units() -> impl Strategy<Value = i64> {
        prop_oneof![3 => 0..1_000_000_000i64, 1 => 0..=i64::MAX]
    }

    fn valid_schedule() -> impl Strategy<Value = FeeSchedule> {
        let payer = prop_oneof![Just(FeePayer::Customer), Just(FeePayer::Merchant)];
        let bound = || proptest::option::of(minor_units());
        (0..=BPS_PER_WHOLE, minor_units(), bound(), bound(), payer).prop_map(
            |(bps, fixed, min, max, payer)| {
                let (min, max) = match (min, max) {
                    (Some(a), Some(b)) => (Some(a.min(b)), Some(a.max(b))),
                    other => other,
                };
                schedule(bps, fixed, min, max, payer)
            },
        )
    }

    proptest! {
        #[test]
        fn breakdown_invariants_hold(schedule in valid_schedule(), amount in minor_units()) {
            let result = schedule.compute(Money::new(amount, Currency::KES));
            let Ok(breakdown) = result else {
                // Only the customer's total can leave the amount range.
                prop_assert_eq!(result, Err(FeeError::Money(MoneyError::Overflow)));
                prop_assert_eq!(schedule.payer, FeePayer::Customer);
                let total = i128::from(amount) + schedule.fee_minor(amount);
                prop_assert!(total > i128::from(i64::MAX));
                return Ok(());
            };
            let fee = breakdown.fee.amount_minor;
            prop_assert!(fee >= 0);
            prop_assert!(breakdown.merchant_net.amount_minor >= 0);
            prop_assert_eq!(
                i128::from(breakdown.expected_total.amount_minor),
                i128::from(breakdown.merchant_net.amount_minor) + i128::from(fee)
            );
            let capped_at_amount = schedule.payer == FeePayer::Merchant && fee == amount;
            if let Some(min) = schedule.min_minor {
                prop_assert!(fee >= min || capped_at_amount);
            }
            if let Some(max) = schedule.max_minor {
                prop_assert!(fee <= max);
            }
        }

        #[test]
        fn percentage_part_is_within_half_a_minor_unit(amount in 0..=i64::MAX, bps in 0..=BPS_PER_WHOLE) {
            let part = percentage_part(amount, bps);
            let whole = i128::from(BPS_PER_WHOLE);
            // |part − amount·bps/10_000| <= 1/2, scaled by 2·10_000 to stay in integers.
            let error = 2 * whole * part - 2 * i128::from(amount) * i128::from(bps);
            prop_assert!(error.abs() <= whole);
            // An exact half rounds up, never down.
            prop_assert!(error > -whole);
        }

        #[test]
        fn any_schedule_and_amount_never_panics(
            bps in any::<u32>(),
            fixed in any::<i64>(),
            min in any::<Option<i64>>(),
            max in any::<Option<i64>>(),
            merchant_pays in any::<bool>(),
            amount in any::<i64>(),
        ) {
            let payer = if merchant_pays { FeePayer::Merchant } else { FeePayer::Customer };
            let schedule = FeeSchedule { percent_bps: bps, fixed_minor: fixed, min_minor: min, max_minor: max, payer };
            let _ = schedule.compute(Money::new(amount, Currency::UGX));
        }
    }
}
