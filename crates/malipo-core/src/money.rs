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

#[cfg(test)]
mod tests {
    use super::*;

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
}
