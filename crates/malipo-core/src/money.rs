//! Money: an integer count of a currency's minor unit. Never a float.
//!
//! The one table of currencies and their exponents lives here.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("unknown currency `{0}`: use an ISO 4217 code such as KES, TZS, UGX or ZMW")]
    UnknownCurrency(String),
    #[error("cannot combine {left} with {right}")]
    CurrencyMismatch { left: Currency, right: Currency },
    #[error("amount overflow")]
    Overflow,
    #[error("`{text}` is not an amount in {currency}: {reason}")]
    Malformed {
        text: String,
        currency: Currency,
        reason: &'static str,
    },
}

macro_rules! currencies {
    ($($code:ident => $exponent:literal, $name:literal;)*) => {
        /// An ISO 4217 currency Malipo can hold.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum Currency { $($code,)* }

        impl Currency {
            pub const ALL: &'static [Currency] = &[$(Currency::$code,)*];

            pub const fn code(self) -> &'static str {
                match self { $(Currency::$code => stringify!($code),)* }
            }

            /// Digits after the decimal point: 2 for KES (cents), 0 for UGX.
            pub const fn exponent(self) -> u32 {
                match self { $(Currency::$code => $exponent,)* }
            }

            pub const fn name(self) -> &'static str {
                match self { $(Currency::$code => $name,)* }
            }
        }
    };
}

currencies! {
    KES => 2, "Kenyan shilling";
    TZS => 2, "Tanzanian shilling";
    UGX => 0, "Ugandan shilling";
    RWF => 0, "Rwandan franc";
    ZMW => 2, "Zambian kwacha";
    MWK => 2, "Malawian kwacha";
    GHS => 2, "Ghanaian cedi";
    NGN => 2, "Nigerian naira";
    XOF => 0, "West African CFA franc";
    XAF => 0, "Central African CFA franc";
    ZAR => 2, "South African rand";
    ETB => 2, "Ethiopian birr";
    USD => 2, "US dollar";
    EUR => 2, "Euro";
    GBP => 2, "Pound sterling";
    TND => 3, "Tunisian dinar";
    LYD => 3, "Libyan dinar";
}

impl Currency {
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        Self::ALL
            .iter()
            .copied()
            .find(|currency| currency.code().eq_ignore_ascii_case(code))
            .ok_or_else(|| MoneyError::UnknownCurrency(code.to_owned()))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An amount in minor units of one currency. Arithmetic is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    pub amount_minor: i64,
    pub currency: Currency,
}

impl Money {
    pub const fn new(amount_minor: i64, currency: Currency) -> Self {
        Self {
            amount_minor,
            currency,
        }
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let amount_minor = self
            .amount_minor
            .checked_add(other.amount_minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount_minor, self.currency))
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let amount_minor = self
            .amount_minor
            .checked_sub(other.amount_minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount_minor, self.currency))
    }

    /// Parses a major-unit string ("100.00", "5000", "-1.5") into minor
    /// units. More decimals than the currency has is an error, never a rounding.
    pub fn parse_major(text: &str, currency: Currency) -> Result<Money, MoneyError> {
        let malformed = |reason| MoneyError::Malformed {
            text: text.to_owned(),
            currency,
            reason,
        };
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, fraction) = match digits.split_once('.') {
            Some((whole, fraction)) => (whole, fraction),
            None => (digits, ""),
        };
        let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
            return Err(malformed("expected digits with an optional decimal point"));
        }
        if digits.contains('.') && fraction.is_empty() {
            return Err(malformed("expected digits after the decimal point"));
        }
        let exponent = currency.exponent() as usize;
        if fraction.len() > exponent {
            return Err(malformed(if exponent == 0 {
                "this currency has no minor unit"
            } else {
                "more decimals than the currency has"
            }));
        }
        let mut minor: i64 = 0;
        for byte in whole.bytes().chain(fraction.bytes()) {
            minor = minor
                .checked_mul(10)
                .and_then(|m| m.checked_add(i64::from(byte - b'0')))
                .ok_or(MoneyError::Overflow)?;
        }
        for _ in fraction.len()..exponent {
            minor = minor.checked_mul(10).ok_or(MoneyError::Overflow)?;
        }
        Ok(Money::new(if negative { -minor } else { minor }, currency))
    }

    /// Formats in major units with exactly the currency's decimals: "100.00", "5000".
    pub fn format_major(self) -> String {
        let exponent = self.currency.exponent();
        let magnitude = self.amount_minor.unsigned_abs();
        let sign = if self.amount_minor < 0 { "-" } else { "" };
        if exponent == 0 {
            return format!("{sign}{magnitude}");
        }
        let scale = 10u64.pow(exponent);
        format!(
            "{sign}{}.{:0width$}",
            magnitude / scale,
            magnitude % scale,
            width = exponent as usize
        )
    }

    pub fn checked_neg(self) -> Result<Money, MoneyError> {
        let amount_minor = self
            .amount_minor
            .checked_neg()
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount_minor, self.currency))
    }

    fn same_currency(self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.format_major(), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_major_units_exactly() {
        let kes = |text| Money::parse_major(text, Currency::KES).map(|m| m.amount_minor);
        assert_eq!(kes("100.00"), Ok(10_000));
        assert_eq!(kes("100"), Ok(10_000));
        assert_eq!(kes("0.5"), Ok(50));
        assert_eq!(kes("-1.25"), Ok(-125));
        for bad in [
            "", ".", "1.", ".5", "1.234", "1,000", "1e3", " 1", "+1", "--1", "1.2.3",
        ] {
            assert!(kes(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Money::parse_major("5000", Currency::UGX)
                .unwrap()
                .amount_minor,
            5_000
        );
        assert!(Money::parse_major("5000.0", Currency::UGX).is_err());
        assert_eq!(
            Money::parse_major("1.234", Currency::TND)
                .unwrap()
                .amount_minor,
            1_234
        );
        assert_eq!(
            Money::parse_major("99999999999999999999", Currency::KES),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            Money::parse_major("92233720368547758.07", Currency::KES)
                .unwrap()
                .amount_minor,
            i64::MAX
        );
        assert_eq!(
            Money::parse_major("92233720368547758.08", Currency::KES),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn formats_with_the_currency_decimals() {
        assert_eq!(
            Money::new(50_250_000, Currency::TZS).format_major(),
            "502500.00"
        );
        assert_eq!(Money::new(5_000, Currency::UGX).format_major(), "5000");
        assert_eq!(Money::new(-5, Currency::KES).format_major(), "-0.05");
        assert_eq!(Money::new(1, Currency::TND).format_major(), "0.001");
        assert_eq!(
            Money::new(i64::MIN, Currency::KES).format_major(),
            "-92233720368547758.08"
        );
    }

    proptest! {
        #[test]
        fn major_strings_round_trip(amount in any::<i64>(), index in 0usize..Currency::ALL.len()) {
            let currency = Currency::ALL[index];
            let money = Money::new(amount, currency);
            let text = money.format_major();
            if amount == i64::MIN {
                // Its magnitude does not fit a positive i64: refused, not wrapped.
                prop_assert_eq!(Money::parse_major(&text, currency), Err(MoneyError::Overflow));
            } else {
                prop_assert_eq!(Money::parse_major(&text, currency), Ok(money));
            }
        }

        #[test]
        fn arithmetic_overflow_is_an_error_never_a_wrap(a in any::<i64>(), b in any::<i64>()) {
            let sum = Money::new(a, Currency::KES).checked_add(Money::new(b, Currency::KES));
            match a.checked_add(b) {
                Some(expected) => prop_assert_eq!(sum, Ok(Money::new(expected, Currency::KES))),
                None => prop_assert_eq!(sum, Err(MoneyError::Overflow)),
            }
        }
    }

    #[test]
    fn zero_decimal_currencies_are_marked() {
        for code in ["UGX", "RWF", "XOF", "XAF"] {
            assert_eq!(Currency::parse(code).unwrap().exponent(), 0, "{code}");
        }
        assert_eq!(Currency::parse("kes").unwrap().exponent(), 2);
        assert!(Currency::parse("XYZ").is_err());
    }

    #[test]
    fn arithmetic_is_checked() {
        let a = Money::new(i64::MAX, Currency::KES);
        assert_eq!(
            a.checked_add(Money::new(1, Currency::KES)),
            Err(MoneyError::Overflow)
        );
        assert!(a.checked_add(Money::new(1, Currency::UGX)).is_err());
        assert_eq!(
            Money::new(150, Currency::KES).checked_sub(Money::new(50, Currency::KES)),
            Ok(Money::new(100, Currency::KES))
        );
    }

    proptest! {
        /// Any text, and text that looks like an amount: never a panic, and
        /// whatever parses formats back to text that parses to the same money.
        #[test]
        fn any_text_parses_or_errs_and_what_parses_round_trips(
            text in prop_oneof![any::<String>(), "-?[0-9]{0,21}(\\.[0-9]{0,4})?"],
            index in 0usize..Currency::ALL.len(),
        ) {
            let currency = Currency::ALL[index];
            if let Ok(money) = Money::parse_major(&text, currency) {
                prop_assert_eq!(money.currency, currency);
                prop_assert_eq!(Money::parse_major(&money.format_major(), currency), Ok(money));
            }
        }

        #[test]
        fn any_currency_code_parses_or_errs(code in any::<String>()) {
            if let Ok(currency) = Currency::parse(&code) {
                prop_assert!(currency.code().eq_ignore_ascii_case(&code));
            }
        }
    }
}
