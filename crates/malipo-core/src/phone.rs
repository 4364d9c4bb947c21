//! Phone numbers: E.164, checked against the countries Malipo serves.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("a phone number is digits in international format, e.g. +254712345678")]
    Malformed,
    #[error("+{0} is not a country Malipo serves")]
    UnknownCountry(String),
    #[error("a {country} number has {digits} digits after +{calling_code}")]
    WrongLength {
        country: &'static str,
        calling_code: &'static str,
        digits: usize,
    },
}

/// A country Malipo serves: its calling code, national number length and currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Country {
    /// ISO 3166 alpha-2.
    pub code: &'static str,
    pub calling_code: &'static str,
    pub national_digits: usize,
    pub currency: crate::Currency,
}

use crate::Currency;

pub const COUNTRIES: &[Country] = &[
    Country {
        code: "KE",
        calling_code: "254",
        national_digits: 9,
        currency: Currency::KES,
    },
    Country {
        code: "TZ",
        calling_code: "255",
        national_digits: 9,
        currency: Currency::TZS,
    },
    Country {
        code: "UG",
        calling_code: "256",
        national_digits: 9,
        currency: Currency::UGX,
    },
    Country {
        code: "RW",
        calling_code: "250",
        national_digits: 9,
        currency: Currency::RWF,
    },
    Country {
        code: "ZM",
        calling_code: "260",
        national_digits: 9,
        currency: Currency::ZMW,
    },
    Country {
        code: "MW",
        calling_code: "265",
        national_digits: 9,
        currency: Currency::MWK,
    },
    Country {
        code: "GH",
        calling_code: "233",
        national_digits: 9,
        currency: Currency::GHS,
    },
    Country {
        code: "NG",
        calling_code: "234",
        national_digits: 10,
        currency: Currency::NGN,
    },
    Country {
        code: "CI",
        calling_code: "225",
        national_digits: 10,
        currency: Currency::XOF,
    },
    Country {
        code: "SN",
        calling_code: "221",
        national_digits: 9,
        currency: Currency::XOF,
    },
    Country {
        code: "CM",
        calling_code: "237",
        national_digits: 9,
        currency: Currency::XAF,
    },
    Country {
        code: "ZA",
        calling_code: "27",
        national_digits: 9,
        currency: Currency::ZAR,
    },
    Country {
        code: "ET",
        calling_code: "251",
        national_digits: 9,
        currency: Currency::ETB,
    },
];

impl Country {
    pub fn by_code(code: &str) -> Option<Country> {
        COUNTRIES
            .iter()
            .copied()
            .find(|c| c.code.eq_ignore_ascii_case(code))
    }
}

/// A valid number of a served country, kept as `+<digits>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Phone {
    e164: String,
    pub country: Country,
}

impl Phone {
    /// Accepts `+254712345678` and, as the seeds' APIs send them,
    /// `254712345678`; spaces and dashes are ignored.
    pub fn parse(text: &str) -> Result<Phone, PhoneError> {
        let compact: String = text.chars().filter(|c| *c != ' ' && *c != '-').collect();
        let digits = compact.strip_prefix('+').unwrap_or(&compact);
        if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PhoneError::Malformed);
        }
        let country = COUNTRIES
            .iter()
            .copied()
            .find(|c| digits.starts_with(c.calling_code))
            .ok_or_else(|| PhoneError::UnknownCountry(digits.chars().take(3).collect()))?;
        let national = &digits[country.calling_code.len()..];
        if national.len() != country.national_digits || national.starts_with('0') {
            return Err(PhoneError::WrongLength {
                country: country.code,
                calling_code: country.calling_code,
                digits: country.national_digits,
            });
        }
        Ok(Phone {
            e164: format!("+{digits}"),
            country,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.e164
    }

    /// `+2547…5678` for logs and lists.
    pub fn masked(&self) -> String {
        let keep_end = &self.e164[self.e164.len() - 4..];
        format!("{}…{keep_end}", &self.e164[..5])
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.e164)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_served_countries_only() {
        let phone = Phone::parse("+254 712-345-678").unwrap();
        assert_eq!(phone.as_str(), "+254712345678");
        assert_eq!(phone.country.code, "KE");
        assert_eq!(
            Phone::parse("260977123456").unwrap().country.currency,
            Currency::ZMW
        );
        assert_eq!(
            Phone::parse("+2547123"),
            Err(PhoneError::WrongLength {
                country: "KE",
                calling_code: "254",
                digits: 9
            })
        );
        assert!(matches!(
            Phone::parse("+1 202 555 0100"),
            Err(PhoneError::UnknownCountry(_))
        ));
        assert_eq!(
            Phone::parse("0712345678").unwrap_err(),
            PhoneError::UnknownCountry("071".into())
        );
        assert_eq!(Phone::parse("+25471234567x"), Err(PhoneError::Malformed));
        assert_eq!(
            Phone::parse("+2540712345678").unwrap_err(),
            PhoneError::WrongLength {
                country: "KE",
                calling_code: "254",
                digits: 9
            }
        );
        assert_eq!(phone.masked(), "+2547…5678");
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Any text, and text that looks like a number: never a panic, and
            /// a parsed phone re-parses to itself.
            #[test]
            fn any_text_parses_or_errs_and_a_phone_reparses_to_itself(
                text in prop_oneof![any::<String>(), "\\+?(2[0-9]{2})?[0-9 -]{0,16}"],
            ) {
                if let Ok(phone) = Phone::parse(&text) {
                    prop_assert_eq!(Phone::parse(phone.as_str()), Ok(phone.clone()));
                    prop_assert!(phone.as_str().starts_with('+'));
                    prop_assert!(phone.as_str()[1..].bytes().all(|b| b.is_ascii_digit()));
                    let _ = phone.masked();
                }
            }
        }
    }
}
