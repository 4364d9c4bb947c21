//! Exchange rates as exact decimals, and conversion between currencies.
//!
//! A [`Rate`] says "1 unit of `base` = `rate` units of `quote`". It is held
//! as an integer mantissa and a decimal scale (`3712.45` is `371245 × 10⁻²`),
//! so no float ever touches money.
//!
//! Rate text is a plain positive decimal: digits with at most one decimal
//! point, at most 12 decimals and at most 18 significant digits (leading
//! zeros and trailing zeros after the point do not count); no sign, no
//! exponent. The canonical text drops those zeros, so equal rates compare
//! equal.
//!
//! Conversion rule (the documented one):
//!
//! - [`Rate::convert`], base → quote:
//!   `quote_minor = amount_minor × mantissa × 10^exp(quote) / (10^scale × 10^exp(base))`
//! - [`Rate::convert_inverse`], quote → base:
//!   `base_minor = amount_minor × 10^scale × 10^exp(base) / (mantissa × 10^exp(quote))`
//! - The exact quotient is rounded to the nearest minor unit, and an exact
//!   half rounds away from zero: half-up for positive amounts (37 124.5 UGX
//!   becomes 37 125) and symmetrically for negative ones (−37 124.5 becomes
//!   −37 125), so refunds mirror payments.
//! - The arithmetic is exact in `i128` and checked: a result outside the
//!   `i64` amount range is [`FxError::Overflow`], never a wrap or a panic.

use std::fmt;

use crate::money::{Currency, Money};

const MAX_DECIMALS: usize = 12;
const MAX_DIGITS: usize = 18;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FxError {
    #[error("a rate needs two different currencies, got {0} to {0}")]
    SameCurrency(Currency),
    #[error("`{text}` is not a rate: {reason}")]
    Malformed { text: String, reason: &'static str },
    #[error("rate `{0}` must be greater than zero")]
    NotPositive(String),
    #[error("rate `{0}` has more than {MAX_DECIMALS} decimals")]
    TooManyDecimals(String),
    #[error("rate `{0}` has more than {MAX_DIGITS} significant digits")]
    TooManyDigits(String),
    #[error("expected an amount in {expected}, got one in {got}")]
    WrongCurrency { expected: Currency, got: Currency },
    #[error("converted amount overflows")]
    Overflow,
}

/// 1 `base` = `mantissa × 10^-scale` `quote`.
///
/// Invariants, set by [`Rate::parse`]: `0 < mantissa < 10^18`,
/// `scale <= 12`, and no trailing zero in the mantissa when `scale > 0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rate {
    pub base: Currency,
    pub quote: Currency,
    mantissa: u64,
    scale: u32,
}

impl Rate {
    pub fn parse(base: Currency, quote: Currency, text: &str) -> Result<Rate, FxError> {
        if base == quote {
            return Err(FxError::SameCurrency(base));
        }
        let (mantissa, scale) = parse_decimal(text)?;
        Ok(Rate {
            base,
            quote,
            mantissa,
            scale,
        })
    }

    /// Canonical text: "3712.45", "129", "0.000269".
    pub fn as_text(&self) -> String {
        let digits = self.mantissa.to_string();
        let scale = self.scale as usize;
        if scale == 0 {
            return digits;
        }
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (whole, fraction) = padded.split_at(padded.len() - scale);
        format!("{whole}.{fraction}")
    }

    /// `amount` in `base` to `quote`, by the rule in the [module docs](self).
    pub fn convert(&self, amount: Money) -> Result<Money, FxError> {
        expect_currency(amount, self.base)?;
        let numerator = [i128::from(self.mantissa), pow10(self.quote.exponent())];
        let denominator = [pow10(self.scale), pow10(self.base.exponent())];
        let minor =
            rescale(amount.amount_minor, numerator, denominator).ok_or(FxError::Overflow)?;
        Ok(Money::new(minor, self.quote))
    }

    /// `amount` in `quote` back to `base`, by the rule in the [module docs](self).
    pub fn convert_inverse(&self, amount: Money) -> Result<Money, FxError> {
        expect_currency(amount, self.quote)?;
        let numerator = [pow10(self.scale), pow10(self.base.exponent())];
        let denominator = [i128::from(self.mantissa), pow10(self.quote.exponent())];
        let minor =
            rescale(amount.amount_minor, numerator, denominator).ok_or(FxError::Overflow)?;
        Ok(Money::new(minor, self.base))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "1 {} = {} {}", self.base, self.as_text(), self.quote)
    }
}

/// Splits validated decimal text into a canonical `(mantissa, scale)`.
fn parse_decimal(text: &str) -> Result<(u64, u32), FxError> {
    let malformed = |reason| FxError::Malformed {
        text: text.to_owned(),
        reason,
    };
    if text.starts_with('-') {
        return Err(FxError::NotPositive(text.to_owned()));
    }
    let (whole, fraction) = match text.split_once('.') {
        Some((_, "")) => return Err(malformed("expected digits after the decimal point")),
        Some(parts) => parts,
        None => (text, ""),
    };
    let is_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !is_digits(whole) || !is_digits(fraction) {
        return Err(malformed("expected digits with an optional decimal point"));
    }
    if fraction.len() > MAX_DECIMALS {
        return Err(FxError::TooManyDecimals(text.to_owned()));
    }
    // Canonical form: zeros that do not change the value are dropped, so
    // "1.50" and "01.5" are the same rate as "1.5".
    let fraction = fraction.trim_end_matches('0');
    let digits = format!("{whole}{fraction}");
    let significant = digits.trim_start_matches('0');
    if significant.is_empty() {
        return Err(FxError::NotPositive(text.to_owned()));
    }
    if significant.len() > MAX_DIGITS {
        return Err(FxError::TooManyDigits(text.to_owned()));
    }
    // At most 18 ASCII digits always fit a u64; the error arm is unreachable.
    let mantissa = significant
        .parse()
        .map_err(|_| malformed("expected digits with an optional decimal point"))?;
    let scale =
        u32::try_from(fraction.len()).map_err(|_| FxError::TooManyDecimals(text.to_owned()))?;
    Ok((mantissa, scale))
}

fn expect_currency(amount: Money, expected: Currency) -> Result<(), FxError> {
    if amount.currency == expected {
        Ok(())
    } else {
        Err(FxError::WrongCurrency {
            expected,
            got: amount.currency,
        })
    }
}

/// `10^exponent`. Exponents here are a rate scale (<= 12) or a currency
/// exponent (<= 3), far below the 10^38 limit of `i128`.
fn pow10(exponent: u32) -> i128 {
    10_i128.pow(exponent)
}

/// `amount × Π numerator / Π denominator`, rounded to the nearest integer
/// with halves away from zero. `None` when a product or the result leaves
/// its range.
fn rescale(amount_minor: i64, numerator: [i128; 2], denominator: [i128; 2]) -> Option<i64> {
    let num = numerator
        .iter()
        .try_fold(i128::from(amount_minor), |acc, &factor| {
            acc.checked_mul(factor)
        })?;
    let den = denominator
        .iter()
        .try_fold(1_i128, |acc, &factor| acc.checked_mul(factor))?;
    round_half_away_from_zero(num, den)
}

/// `num / den` for `den > 0`. Rounds the magnitude half-up, as
/// `floor((2·|num| + den) / (2·den))`, so both signs round away from zero.
fn round_half_away_from_zero(num: i128, den: i128) -> Option<i64> {
    let den = den.unsigned_abs();
    let magnitude = num
        .unsigned_abs()
        .checked_mul(2)?
        .checked_add(den)?
        .checked_div(den.checked_mul(2)?)?;
    let magnitude = i128::try_from(magnitude).ok()?;
    i64::try_from(if num < 0 { -magnitude } else { magnitude }).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rate(base: Currency, quote: Currency, text: &str) -> Rate {
        Rate::parse(base, quote, text).unwrap()
    }

    #[test]
    fn usd_to_ugx_rounds_the_half_up() {
        let usd_ugx = rate(Currency::USD, Currency::UGX, "3712.45");
        // 10.00 USD = 37 124.5 UGX exactly.
        assert_eq!(
            usd_ugx.convert(Money::new(1_000, Currency::USD)),
            Ok(Money::new(37_125, Currency::UGX))
        );
        assert_eq!(
            usd_ugx.convert(Money::new(-1_000, Currency::USD)),
            Ok(Money::new(-37_125, Currency::UGX))
        );
        // 37 125 UGX = 10.000013… USD.
        assert_eq!(
            usd_ugx.convert_inverse(Money::new(37_125, Currency::UGX)),
            Ok(Money::new(1_000, Currency::USD))
        );
    }

    #[test]
    fn kes_to_usd() {
        let kes_usd = rate(Currency::KES, Currency::USD, "0.0077");
        assert_eq!(
            kes_usd.convert(Money::new(100_000, Currency::KES)),
            Ok(Money::new(770, Currency::USD))
        );
        assert_eq!(
            kes_usd.convert_inverse(Money::new(770, Currency::USD)),
            Ok(Money::new(100_000, Currency::KES))
        );
    }

    #[test]
    fn three_decimal_currencies() {
        let usd_tnd = rate(Currency::USD, Currency::TND, "3.105");
        assert_eq!(
            usd_tnd.convert(Money::new(100, Currency::USD)),
            Ok(Money::new(3_105, Currency::TND))
        );
        assert_eq!(
            usd_tnd.convert_inverse(Money::new(3_105, Currency::TND)),
            Ok(Money::new(100, Currency::USD))
        );
        // 0.001 TND at 500 UGX is half a shilling: away from zero both ways.
        let tnd_ugx = rate(Currency::TND, Currency::UGX, "500");
        assert_eq!(
            tnd_ugx.convert(Money::new(1, Currency::TND)),
            Ok(Money::new(1, Currency::UGX))
        );
        assert_eq!(
            tnd_ugx.convert(Money::new(-1, Currency::TND)),
            Ok(Money::new(-1, Currency::UGX))
        );
    }

    #[test]
    fn amounts_in_the_wrong_currency_are_refused() {
        let usd_ugx = rate(Currency::USD, Currency::UGX, "3712.45");
        let wrong = FxError::WrongCurrency {
            expected: Currency::USD,
            got: Currency::KES,
        };
        assert_eq!(usd_ugx.convert(Money::new(1, Currency::KES)), Err(wrong));
        assert!(usd_ugx.convert(Money::new(1, Currency::UGX)).is_err());
        assert!(
            usd_ugx
                .convert_inverse(Money::new(1, Currency::USD))
                .is_err()
        );
    }

    #[test]
    fn results_beyond_the_amount_range_overflow() {
        let big = rate(Currency::UGX, Currency::TND, "999999999999999999");
        assert_eq!(
            big.convert(Money::new(i64::MAX, Currency::UGX)),
            Err(FxError::Overflow)
        );
        assert_eq!(
            big.convert(Money::new(10, Currency::UGX)),
            Err(FxError::Overflow)
        );
        let tiny = rate(Currency::UGX, Currency::TND, "0.000000000001");
        assert_eq!(
            tiny.convert_inverse(Money::new(i64::MIN, Currency::TND)),
            Err(FxError::Overflow)
        );
    }

    #[test]
    fn parse_rejects_what_is_not_a_positive_decimal() {
        let parse = |text| Rate::parse(Currency::USD, Currency::KES, text);
        assert_eq!(parse("0"), Err(FxError::NotPositive("0".into())));
        assert_eq!(parse("0.000"), Err(FxError::NotPositive("0.000".into())));
        assert_eq!(parse("-1"), Err(FxError::NotPositive("-1".into())));
        for bad in ["abc", "1.2.3", "", "1e5", ".5", "1.", "+1", " 1", "1,5"] {
            assert!(
                matches!(parse(bad), Err(FxError::Malformed { .. })),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse("0.0000000000001"),
            Err(FxError::TooManyDecimals("0.0000000000001".into()))
        );
        assert!(parse("0.000000000001").is_ok());
        assert!(matches!(
            parse("1234567890123456789"),
            Err(FxError::TooManyDigits(_))
        ));
        assert!(matches!(
            parse("1234567.890123456789"),
            Err(FxError::TooManyDigits(_))
        ));
        assert!(parse("123456789012345678").is_ok());
        assert_eq!(
            Rate::parse(Currency::USD, Currency::USD, "1"),
            Err(FxError::SameCurrency(Currency::USD))
        );
    }

    #[test]
    fn canonical_text_trims_zeros() {
        let text = |input| rate(Currency::USD, Currency::KES, input).as_text();
        assert_eq!(text("3712.45"), "3712.45");
        assert_eq!(text("129"), "129");
        assert_eq!(text("0.000269"), "0.000269");
        assert_eq!(text("0129.500"), "129.5");
        assert_eq!(text("1.000000000000"), "1");
        assert_eq!(text("1000"), "1000");
        assert_eq!(
            rate(Currency::USD, Currency::KES, "1.50"),
            rate(Currency::USD, Currency::KES, "1.5")
        );
        assert_eq!(
            rate(Currency::USD, Currency::KES, "129.5").to_string(),
            "1 USD = 129.5 KES"
        );
    }

    fn currency_pair() -> impl Strategy<Value = (Currency, Currency)> {
        let count = Currency::ALL.len();
        (0..count, 1..count)
            .prop_map(move |(i, offset)| (Currency::ALL[i], Currency::ALL[(i + offset) % count]))
    }

    /// Any parseable rate, written out independently of `as_text`.
    fn any_rate() -> impl Strategy<Value = Rate> {
        let mantissa = prop_oneof![1..10_000_u64, 1..10_u64.pow(18)];
        (currency_pair(), mantissa, 0..=12_u32).prop_map(|((base, quote), mantissa, scale)| {
            let unit = 10_u64.pow(scale);
            let text = match scale {
                0 => mantissa.to_string(),
                _ => format!(
                    "{}.{:0width$}",
                    mantissa / unit,
                    mantissa % unit,
                    width = scale as usize
                ),
            };
            rate(base, quote, &text)
        })
    }

    /// Checks `result` against the exact `num / den`: within half a minor
    /// unit, an exact half rounded away from zero, and `Overflow` only when
    /// the value really is beyond the amount range.
    fn check_rounding(
        result: Result<Money, FxError>,
        num: i128,
        den: i128,
    ) -> Result<(), TestCaseError> {
        match result {
            Ok(money) => {
                let error = 2 * i128::from(money.amount_minor) * den - 2 * num;
                prop_assert!(error.abs() <= den, "{money:?} vs {num}/{den}");
                if error.abs() == den {
                    prop_assert_eq!(error.signum(), num.signum());
                }
            }
            Err(error) => {
                prop_assert_eq!(error, FxError::Overflow);
                prop_assert!(num.abs() >= i128::from(i64::MAX) * den);
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn convert_never_panics(rate in any_rate(), amount in any::<i64>()) {
            for result in [
                rate.convert(Money::new(amount, rate.base)),
                rate.convert_inverse(Money::new(amount, rate.quote)),
            ] {
                prop_assert!(matches!(result, Ok(_) | Err(FxError::Overflow)), "{result:?}");
            }
        }

        #[test]
        fn zero_converts_to_zero(rate in any_rate()) {
            prop_assert_eq!(rate.convert(Money::new(0, rate.base)), Ok(Money::new(0, rate.quote)));
            prop_assert_eq!(rate.convert_inverse(Money::new(0, rate.quote)), Ok(Money::new(0, rate.base)));
        }

        #[test]
        fn conversion_is_within_half_a_minor_unit(
            rate in any_rate(),
            amount in -1_000_000_000_000_000_i64..=1_000_000_000_000_000,
        ) {
            let mantissa = i128::from(rate.mantissa);
            let amount_wide = i128::from(amount);
            let scale = pow10(rate.scale);
            let (base_exp, quote_exp) = (pow10(rate.base.exponent()), pow10(rate.quote.exponent()));
            check_rounding(
                rate.convert(Money::new(amount, rate.base)),
                amount_wide * mantissa * quote_exp,
                scale * base_exp,
            )?;
            check_rounding(
                rate.convert_inverse(Money::new(amount, rate.quote)),
                amount_wide * scale * base_exp,
                mantissa * quote_exp,
            )?;
        }

        #[test]
        fn text_round_trips(rate in any_rate()) {
            prop_assert_eq!(Rate::parse(rate.base, rate.quote, &rate.as_text()), Ok(rate.clone()));
        }

        #[test]
        fn parse_keeps_the_exact_value(whole in 0..1_000_000_u64, fraction in "[0-9]{0,12}") {
            let text = if fraction.is_empty() { whole.to_string() } else { format!("{whole}.{fraction}") };
            let parsed = Rate::parse(Currency::KES, Currency::USD, &text);
            let written = u128::from(whole) * 10_u128.pow(fraction.len() as u32)
                + fraction.parse::<u128>().unwrap_or(0);
            match parsed {
                // mantissa / 10^scale == written / 10^len(fraction)
                Ok(rate) => prop_assert_eq!(
                    u128::from(rate.mantissa) * 10_u128.pow(fraction.len() as u32),
                    written * 10_u128.pow(rate.scale)
                ),
                Err(error) => {
                    prop_assert_eq!(written, 0);
                    prop_assert_eq!(error, FxError::NotPositive(text));
                }
            }
        }
    }
}
