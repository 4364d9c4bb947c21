//! Which mobile-money operator a phone number belongs to, and which of
//! Malipo's rails reaches it: the prefix tables of the seven served
//! countries, in one place. A payment that names no rail goes to the rail
//! of its number's operator (when the merchant has that rail configured).
//!
//! Prefixes are the first digits of the national number (after the
//! country's calling code), from the regulators' numbering plans. Numbers
//! moved between networks keep their prefix: a ported number is routed by
//! its prefix, as the operators themselves do for push prompts.
//!
//! | Country | Operator | Wallet | Rail | National prefixes |
//! |---|---|---|---|---|
//! | Kenya (254) | Safaricom | M-Pesa | `mpesa` | 70, 71, 72, 740–743, 745, 746, 748, 757–759, 768, 769, 79, 110–115 |
//! | Kenya | Airtel | Airtel Money | `airtel_money` | 73, 750–756, 762, 78, 100–102 |
//! | Tanzania (255) | Vodacom | M-Pesa (Vodacom) | none yet | 74, 75, 76 |
//! | Tanzania | Airtel | Airtel Money | `airtel_money` | 68, 69, 78 |
//! | Tanzania | Tigo (Yas) | Mixx by Yas | none yet | 65, 67, 71, 77 |
//! | Tanzania | Halotel | HaloPesa | none yet | 61, 62 |
//! | Uganda (256) | MTN | MTN MoMo | `mtn_momo` | 76, 77, 78, 39 |
//! | Uganda | Airtel | Airtel Money | `airtel_money` | 70, 74, 75, 20 |
//! | Zambia (260) | MTN | MTN MoMo | `mtn_momo` | 96, 76 |
//! | Zambia | Airtel | Airtel Money | `airtel_money` | 97, 77 |
//! | Zambia | Zamtel | Zamtel Kwacha | none yet | 95, 75 |
//! | Rwanda (250) | MTN | MTN MoMo | `mtn_momo` | 78, 79 |
//! | Rwanda | Airtel | Airtel Money | `airtel_money` | 72, 73 |
//! | Malawi (265) | Airtel | Airtel Money | `airtel_money` | 99, 98 |
//! | Malawi | TNM | TNM Mpamba | none yet | 88, 89 |
//! | Ghana (233) | MTN | MTN MoMo | `mtn_momo` | 24, 25, 53, 54, 55, 59 |
//! | Ghana | Telecel | Telecel Cash | none yet | 20, 50 |
//! | Ghana | AirtelTigo | AT Money | none yet | 26, 27, 56, 57 |

use malipo_core::Phone;

/// A mobile network and its wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operator {
    /// ISO 3166 alpha-2.
    pub country: &'static str,
    pub name: &'static str,
    pub wallet: &'static str,
    /// The Malipo rail that reaches this wallet, if there is one.
    pub rail: Option<&'static str>,
    prefixes: &'static [&'static str],
}

const fn operator(
    country: &'static str,
    name: &'static str,
    wallet: &'static str,
    rail: Option<&'static str>,
    prefixes: &'static [&'static str],
) -> Operator {
    Operator {
        country,
        name,
        wallet,
        rail,
        prefixes,
    }
}

const MPESA: Option<&str> = Some("mpesa");
const AIRTEL: Option<&str> = Some("airtel_money");
const MTN: Option<&str> = Some("mtn_momo");

/// Every operator of the served countries.
pub const OPERATORS: &[Operator] = &[
    operator(
        "KE",
        "Safaricom",
        "M-Pesa",
        MPESA,
        &[
            "70", "71", "72", "740", "741", "742", "743", "745", "746", "748", "757", "758", "759",
            "768", "769", "79", "110", "111", "112", "113", "114", "115",
        ],
    ),
    operator(
        "KE",
        "Airtel",
        "Airtel Money",
        AIRTEL,
        &[
            "73", "750", "751", "752", "753", "754", "755", "756", "762", "78", "100", "101", "102",
        ],
    ),
    operator(
        "TZ",
        "Vodacom",
        "M-Pesa (Vodacom)",
        None,
        &["74", "75", "76"],
    ),
    operator("TZ", "Airtel", "Airtel Money", AIRTEL, &["68", "69", "78"]),
    operator(
        "TZ",
        "Tigo (Yas)",
        "Mixx by Yas",
        None,
        &["65", "67", "71", "77"],
    ),
    operator("TZ", "Halotel", "HaloPesa", None, &["61", "62"]),
    operator("UG", "MTN", "MTN MoMo", MTN, &["76", "77", "78", "39"]),
    operator(
        "UG",
        "Airtel",
        "Airtel Money",
        AIRTEL,
        &["70", "74", "75", "20"],
    ),
    operator("ZM", "MTN", "MTN MoMo", MTN, &["96", "76"]),
    operator("ZM", "Airtel", "Airtel Money", AIRTEL, &["97", "77"]),
    operator("ZM", "Zamtel", "Zamtel Kwacha", None, &["95", "75"]),
    operator("RW", "MTN", "MTN MoMo", MTN, &["78", "79"]),
    operator("RW", "Airtel", "Airtel Money", AIRTEL, &["72", "73"]),
    operator("MW", "Airtel", "Airtel Money", AIRTEL, &["99", "98"]),
    operator("MW", "TNM", "TNM Mpamba", None, &["88", "89"]),
    operator(
        "GH",
        "MTN",
        "MTN MoMo",
        MTN,
        &["24", "25", "53", "54", "55", "59"],
    ),
    operator("GH", "Telecel", "Telecel Cash", None, &["20", "50"]),
    operator(
        "GH",
        "AirtelTigo",
        "AT Money",
        None,
        &["26", "27", "56", "57"],
    ),
];

/// The operator of a number: the longest prefix of its country that
/// matches. `None` for a number of no known network.
pub fn operator_of(phone: &Phone) -> Option<&'static Operator> {
    let national = phone
        .as_str()
        .strip_prefix('+')?
        .strip_prefix(phone.country.calling_code)?;
    OPERATORS
        .iter()
        .filter(|operator| operator.country == phone.country.code)
        .flat_map(|operator| {
            operator
                .prefixes
                .iter()
                .filter(|prefix| national.starts_with(**prefix))
                .map(move |prefix| (prefix.len(), operator))
        })
        .max_by_key(|(length, _)| *length)
        .map(|(_, operator)| operator)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rail_of(number: &str) -> Option<&'static str> {
        operator_of(&Phone::parse(number).unwrap()).and_then(|operator| operator.rail)
    }

    fn name_of(number: &str) -> &'static str {
        operator_of(&Phone::parse(number).unwrap()).map_or("none", |operator| operator.name)
    }

    #[test]
    fn each_country_routes_by_prefix() {
        assert_eq!(rail_of("+254712345678"), Some("mpesa"));
        assert_eq!(rail_of("+254110345678"), Some("mpesa"));
        assert_eq!(rail_of("+254733123456"), Some("airtel_money"));
        assert_eq!(rail_of("+254751123456"), Some("airtel_money"));
        assert_eq!(
            rail_of("+254757123456"),
            Some("mpesa"),
            "757 is Safaricom's, 75x else Airtel's"
        );
        assert_eq!(name_of("+255754123456"), "Vodacom");
        assert_eq!(
            rail_of("+255754123456"),
            None,
            "Vodacom M-Pesa has no connector"
        );
        assert_eq!(rail_of("+255684123456"), Some("airtel_money"));
        assert_eq!(rail_of("+256772123456"), Some("mtn_momo"));
        assert_eq!(rail_of("+256702123456"), Some("airtel_money"));
        assert_eq!(rail_of("+260961234567"), Some("mtn_momo"));
        assert_eq!(rail_of("+260971234567"), Some("airtel_money"));
        assert_eq!(name_of("+260951234567"), "Zamtel");
        assert_eq!(rail_of("+250781234567"), Some("mtn_momo"));
        assert_eq!(rail_of("+250721234567"), Some("airtel_money"));
        assert_eq!(rail_of("+265991234567"), Some("airtel_money"));
        assert_eq!(name_of("+265881234567"), "TNM");
        assert_eq!(rail_of("+233241234567"), Some("mtn_momo"));
        assert_eq!(name_of("+233201234567"), "Telecel");
        assert_eq!(name_of("+233571234567"), "AirtelTigo");
    }

    #[test]
    fn no_prefix_is_claimed_twice_in_a_country() {
        for (index, first) in OPERATORS.iter().enumerate() {
            for second in &OPERATORS[index + 1..] {
                if first.country != second.country {
                    continue;
                }
                for a in first.prefixes {
                    for b in second.prefixes {
                        assert_ne!(a, b, "{} and {} both claim {a}", first.name, second.name);
                    }
                }
            }
        }
    }
}
