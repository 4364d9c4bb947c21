//! What the operator configures for each real rail: its settings (shown
//! back) and its credentials (sealed at rest, never shown back), per
//! merchant or platform-wide. The simulator needs none: test mode always
//! uses it, and live mode never does.
//!
//! Values are strings, as the operators issue them; each field has a rule
//! checked here, so a bad configuration is refused with the field's name
//! when it is entered, not when the first payment fails.

use std::collections::BTreeMap;

/// What a field's value must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Any text of 1 to 4096 characters.
    Text,
    /// An absolute `http` or `https` URL.
    Url,
    /// `min` to `max` ASCII digits.
    Digits { min: usize, max: usize },
    /// One of these exact values.
    OneOf(&'static [&'static str]),
    /// A UUID, `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
    Uuid,
}

impl Rule {
    fn check(self, value: &str) -> Result<(), String> {
        let ok = match self {
            Rule::Text => true,
            Rule::Url => {
                let rest = value
                    .strip_prefix("https://")
                    .or_else(|| value.strip_prefix("http://"));
                rest.is_some_and(|rest| {
                    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
                    !host.is_empty() && !host.contains('@') && !value.contains(char::is_whitespace)
                })
            }
            Rule::Digits { min, max } => {
                (min..=max).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit())
            }
            Rule::OneOf(values) => values.contains(&value),
            Rule::Uuid => {
                let groups: Vec<&str> = value.split('-').collect();
                groups.iter().map(|group| group.len()).eq([8, 4, 4, 4, 12])
                    && groups
                        .iter()
                        .all(|group| group.bytes().all(|b| b.is_ascii_hexdigit()))
            }
        };
        if ok { Ok(()) } else { Err(self.describe()) }
    }

    /// The rule in words, for errors and for `GET /operator/rails`.
    pub fn describe(self) -> String {
        match self {
            Rule::Text => "text, 1 to 4096 characters".to_owned(),
            Rule::Url => "an absolute http or https URL".to_owned(),
            Rule::Digits { min, max } if min == max => format!("{min} digits"),
            Rule::Digits { min, max } => format!("{min} to {max} digits"),
            Rule::OneOf(values) => format!("one of {}", values.join(", ")),
            Rule::Uuid => "a UUID".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct ConfigField {
    pub name: &'static str,
    pub required: bool,
    pub rule: Rule,
    pub description: &'static str,
}

const fn field(
    name: &'static str,
    required: bool,
    rule: Rule,
    description: &'static str,
) -> ConfigField {
    ConfigField {
        name,
        required,
        rule,
        description,
    }
}

/// One rail's configuration: which settings and credentials it takes.
#[derive(Debug, Clone, Copy)]
pub struct RailConfigSpec {
    pub rail: &'static str,
    pub name: &'static str,
    pub settings: &'static [ConfigField],
    pub credentials: &'static [ConfigField],
}

const ENVIRONMENT: ConfigField = field(
    "environment",
    true,
    Rule::OneOf(&["sandbox", "production"]),
    "The operator's sandbox or production: picks the default base URL.",
);
const BASE_URL: ConfigField = field(
    "base_url",
    false,
    Rule::Url,
    "Overrides the environment's base URL (a proxy, or a local fake).",
);

/// Every rail the operator can configure, in the order they are listed.
pub const SPECS: &[RailConfigSpec] = &[
    RailConfigSpec {
        rail: "mpesa",
        name: "M-Pesa (Safaricom Daraja)",
        settings: &[
            ENVIRONMENT,
            BASE_URL,
            field(
                "shortcode",
                true,
                Rule::Digits { min: 5, max: 7 },
                "The paybill or till's business short code (STK BusinessShortCode, C2B ShortCode).",
            ),
            field(
                "transaction_type",
                false,
                Rule::OneOf(&["CustomerPayBillOnline", "CustomerBuyGoodsOnline"]),
                "STK Push TransactionType; default CustomerPayBillOnline.",
            ),
            field(
                "till_number",
                false,
                Rule::Digits { min: 5, max: 7 },
                "STK PartyB for CustomerBuyGoodsOnline, when it differs from the short code.",
            ),
            field(
                "b2c_shortcode",
                false,
                Rule::Digits { min: 5, max: 7 },
                "The short code B2C payouts are sent from; default the short code.",
            ),
            field(
                "initiator_name",
                false,
                Rule::Text,
                "The API operator's user name for B2C and status queries.",
            ),
        ],
        credentials: &[
            field(
                "consumer_key",
                true,
                Rule::Text,
                "The Daraja app's consumer key.",
            ),
            field(
                "consumer_secret",
                true,
                Rule::Text,
                "The Daraja app's consumer secret.",
            ),
            field(
                "passkey",
                true,
                Rule::Text,
                "The Lipa na M-Pesa Online passkey.",
            ),
            field(
                "security_credential",
                false,
                Rule::Text,
                "The initiator's password, encrypted with Safaricom's certificate (B2C, status queries).",
            ),
        ],
    },
    RailConfigSpec {
        rail: "mtn_momo",
        name: "MTN MoMo Open API",
        settings: &[
            ENVIRONMENT,
            BASE_URL,
            field(
                "target_environment",
                true,
                Rule::OneOf(&[
                    "sandbox",
                    "mtnuganda",
                    "mtnghana",
                    "mtnrwanda",
                    "mtnzambia",
                    "mtncameroon",
                    "mtnivorycoast",
                    "mtnbenin",
                    "mtncongo",
                    "mtnswaziland",
                    "mtnguineaconakry",
                    "mtnsouthafrica",
                    "mtnliberia",
                ]),
                "The X-Target-Environment header: the country's MTN.",
            ),
        ],
        credentials: &[
            field(
                "api_user",
                true,
                Rule::Uuid,
                "The API user (X-Reference-Id it was created with).",
            ),
            field("api_key", true, Rule::Text, "The API user's key."),
            field(
                "collection_subscription_key",
                true,
                Rule::Text,
                "Ocp-Apim-Subscription-Key of the Collection product.",
            ),
            field(
                "disbursement_subscription_key",
                false,
                Rule::Text,
                "Ocp-Apim-Subscription-Key of the Disbursement product (payouts).",
            ),
        ],
    },
    RailConfigSpec {
        rail: "airtel_money",
        name: "Airtel Money Open API",
        settings: &[
            ENVIRONMENT,
            BASE_URL,
            field(
                "country",
                true,
                Rule::OneOf(&[
                    "KE", "UG", "TZ", "RW", "ZM", "MW", "CD", "CG", "GA", "MG", "NE", "NG", "SC",
                    "TD",
                ]),
                "The X-Country header, ISO 3166 alpha-2.",
            ),
            field(
                "currency",
                true,
                Rule::OneOf(&[
                    "KES", "UGX", "TZS", "RWF", "ZMW", "MWK", "CDF", "USD", "XAF", "MGA", "XOF",
                    "NGN", "SCR",
                ]),
                "The X-Currency header, ISO 4217.",
            ),
        ],
        credentials: &[
            field("client_id", true, Rule::Text, "The Airtel app's client id."),
            field(
                "client_secret",
                true,
                Rule::Text,
                "The Airtel app's client secret.",
            ),
            field(
                "disbursement_pin",
                false,
                Rule::Digits { min: 4, max: 4 },
                "The wallet PIN disbursements are authorised with.",
            ),
            field(
                "rsa_public_key",
                false,
                Rule::Text,
                "Airtel's RSA public key (PEM) the PIN is encrypted with.",
            ),
        ],
    },
];

/// The spec of a configurable rail.
pub fn spec(rail: &str) -> Option<&'static RailConfigSpec> {
    SPECS.iter().find(|spec| spec.rail == rail)
}

/// A field that is wrong: `field` is its path (`settings.shortcode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub field: String,
    pub message: String,
}

const VALUE_LENGTH_MAX: usize = 4096;

impl RailConfigSpec {
    /// Checks a whole configuration: every given field known and valid,
    /// every required field given.
    pub fn validate(
        &self,
        settings: &BTreeMap<String, String>,
        credentials: &BTreeMap<String, String>,
    ) -> Result<(), ConfigProblem> {
        check_group("settings", self.settings, settings)?;
        check_group("credentials", self.credentials, credentials)
    }
}

fn check_group(
    group: &str,
    fields: &[ConfigField],
    values: &BTreeMap<String, String>,
) -> Result<(), ConfigProblem> {
    for (name, value) in values {
        let path = format!("{group}.{name}");
        let Some(field) = fields.iter().find(|field| field.name == name) else {
            let known: Vec<&str> = fields.iter().map(|field| field.name).collect();
            return Err(ConfigProblem {
                message: format!(
                    "`{path}` is not a setting of this rail; it takes {}.",
                    known.join(", ")
                ),
                field: path,
            });
        };
        if value.is_empty() || value.chars().count() > VALUE_LENGTH_MAX {
            return Err(ConfigProblem {
                message: format!("`{path}` must be 1 to {VALUE_LENGTH_MAX} characters."),
                field: path,
            });
        }
        if let Err(rule) = field.rule.check(value) {
            return Err(ConfigProblem {
                message: format!("`{path}` must be {rule}."),
                field: path,
            });
        }
    }
    if let Some(missing) = fields
        .iter()
        .find(|field| field.required && !values.contains_key(field.name))
    {
        let path = format!("{group}.{}", missing.name);
        return Err(ConfigProblem {
            message: format!("`{path}` is required: {}", missing.description),
            field: path,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_complete_mpesa_configuration_passes() {
        let spec = spec("mpesa").unwrap();
        spec.validate(
            &map(&[("environment", "sandbox"), ("shortcode", "174379")]),
            &map(&[
                ("consumer_key", "k"),
                ("consumer_secret", "s"),
                ("passkey", "p"),
            ]),
        )
        .unwrap();
    }

    #[test]
    fn problems_name_the_field() {
        let spec = spec("mpesa").unwrap();
        let credentials = map(&[
            ("consumer_key", "k"),
            ("consumer_secret", "s"),
            ("passkey", "p"),
        ]);
        let problem = |settings: &[(&str, &str)]| {
            spec.validate(&map(settings), &credentials)
                .unwrap_err()
                .field
        };
        assert_eq!(problem(&[("environment", "sandbox")]), "settings.shortcode");
        assert_eq!(
            problem(&[("environment", "sandbox"), ("shortcode", "17a379")]),
            "settings.shortcode"
        );
        assert_eq!(
            problem(&[("environment", "live"), ("shortcode", "174379")]),
            "settings.environment"
        );
        assert_eq!(
            problem(&[
                ("environment", "sandbox"),
                ("shortcode", "174379"),
                ("colour", "red")
            ]),
            "settings.colour"
        );
        assert_eq!(
            problem(&[
                ("environment", "sandbox"),
                ("shortcode", "174379"),
                ("base_url", "ftp://x")
            ]),
            "settings.base_url"
        );
        let missing = spec
            .validate(
                &map(&[("environment", "sandbox"), ("shortcode", "174379")]),
                &map(&[("consumer_key", "k"), ("consumer_secret", "s")]),
            )
            .unwrap_err();
        assert_eq!(missing.field, "credentials.passkey");
    }

    #[test]
    fn uuids_and_urls() {
        assert!(
            Rule::Uuid
                .check("c72025f5-5cd1-4630-99e4-8ba4722fad56")
                .is_ok()
        );
        assert!(
            Rule::Uuid
                .check("c72025f5-5cd1-4630-99e4-8ba4722fad5")
                .is_err()
        );
        assert!(Rule::Url.check("http://127.0.0.1:9000/mpesa").is_ok());
        assert!(Rule::Url.check("https://user@evil/").is_err());
        assert!(Rule::Url.check("https://").is_err());
    }

    #[test]
    fn every_spec_has_unique_field_names() {
        for spec in SPECS {
            let mut names: Vec<&str> = spec
                .settings
                .iter()
                .chain(spec.credentials)
                .map(|field| field.name)
                .collect();
            let count = names.len();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), count, "{}", spec.rail);
        }
    }
}
