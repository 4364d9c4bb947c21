//! What a key may do: `family:access`, e.g. `payments:write`.
//!
//! `write` implies `read` within a family. `*` grants every scope and is
//! what a key gets when none are named.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScopeFamily {
    Account,
    ApiKeys,
    Payments,
    Payouts,
    Refunds,
    Checkouts,
    Plans,
    PaymentReferences,
    Entities,
    Settlements,
    Balances,
    Ledger,
    Events,
    Webhooks,
    Fees,
    FxRates,
    Audit,
}

impl ScopeFamily {
    pub const ALL: [ScopeFamily; 17] = [
        ScopeFamily::Account,
        ScopeFamily::ApiKeys,
        ScopeFamily::Payments,
        ScopeFamily::Payouts,
        ScopeFamily::Refunds,
        ScopeFamily::Checkouts,
        ScopeFamily::Plans,
        ScopeFamily::PaymentReferences,
        ScopeFamily::Entities,
        ScopeFamily::Settlements,
        ScopeFamily::Balances,
        ScopeFamily::Ledger,
        ScopeFamily::Events,
        ScopeFamily::Webhooks,
        ScopeFamily::Fees,
        ScopeFamily::FxRates,
        ScopeFamily::Audit,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ScopeFamily::Account => "account",
            ScopeFamily::ApiKeys => "api_keys",
            ScopeFamily::Payments => "payments",
            ScopeFamily::Payouts => "payouts",
            ScopeFamily::Refunds => "refunds",
            ScopeFamily::Checkouts => "checkouts",
            ScopeFamily::Plans => "plans",
            ScopeFamily::PaymentReferences => "payment_references",
            ScopeFamily::Entities => "entities",
            ScopeFamily::Settlements => "settlements",
            ScopeFamily::Balances => "balances",
            ScopeFamily::Ledger => "ledger",
            ScopeFamily::Events => "events",
            ScopeFamily::Webhooks => "webhooks",
            ScopeFamily::Fees => "fees",
            ScopeFamily::FxRates => "fx_rates",
            ScopeFamily::Audit => "audit",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|family| family.as_str() == text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Access {
    Read,
    Write,
}

impl Access {
    pub const fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    pub family: ScopeFamily,
    pub access: Access,
}

impl Scope {
    pub const fn read(family: ScopeFamily) -> Self {
        Self {
            family,
            access: Access::Read,
        }
    }

    pub const fn write(family: ScopeFamily) -> Self {
        Self {
            family,
            access: Access::Write,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.family.as_str(), self.access.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown scope `{scope}`: expected `*` or `<family>:read|write` with family one of {families}"
)]
pub struct ScopeParseError {
    pub scope: String,
    families: String,
}

impl ScopeParseError {
    fn new(scope: &str) -> Self {
        let families: Vec<&str> = ScopeFamily::ALL.iter().map(|f| f.as_str()).collect();
        Self {
            scope: scope.to_owned(),
            families: families.join(", "),
        }
    }
}

/// The scopes a key holds. Sorted and de-duplicated, so it has one text form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scopes {
    All,
    Only(Vec<Scope>),
}

impl Scopes {
    pub fn parse_list<'a>(
        items: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, ScopeParseError> {
        let mut scopes = Vec::new();
        for item in items {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            if item == "*" {
                return Ok(Scopes::All);
            }
            let (family, access) = item
                .split_once(':')
                .ok_or_else(|| ScopeParseError::new(item))?;
            let family = ScopeFamily::parse(family).ok_or_else(|| ScopeParseError::new(item))?;
            let access = match access {
                "read" => Access::Read,
                "write" => Access::Write,
                _ => return Err(ScopeParseError::new(item)),
            };
            scopes.push(Scope { family, access });
        }
        if scopes.is_empty() {
            return Err(ScopeParseError::new(""));
        }
        scopes.sort();
        scopes.dedup();
        Ok(Scopes::Only(scopes))
    }

    /// Parses the stored form: space-separated.
    pub fn parse_stored(text: &str) -> Result<Self, ScopeParseError> {
        Self::parse_list(text.split(' '))
    }

    pub fn to_stored(&self) -> String {
        self.to_strings().join(" ")
    }

    pub fn to_strings(&self) -> Vec<String> {
        match self {
            Scopes::All => vec!["*".to_owned()],
            Scopes::Only(scopes) => scopes.iter().map(ToString::to_string).collect(),
        }
    }

    pub fn allows(&self, wanted: Scope) -> bool {
        match self {
            Scopes::All => true,
            Scopes::Only(scopes) => scopes.iter().any(|held| {
                held.family == wanted.family
                    && (held.access == wanted.access || held.access == Access::Write)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_implies_read_in_the_same_family_only() {
        let scopes = Scopes::parse_list(["payments:write", "events:read"]).unwrap();
        assert!(scopes.allows(Scope::read(ScopeFamily::Payments)));
        assert!(scopes.allows(Scope::write(ScopeFamily::Payments)));
        assert!(scopes.allows(Scope::read(ScopeFamily::Events)));
        assert!(!scopes.allows(Scope::write(ScopeFamily::Events)));
        assert!(!scopes.allows(Scope::read(ScopeFamily::Payouts)));
    }

    #[test]
    fn stored_form_round_trips_and_is_canonical() {
        let scopes = Scopes::parse_list(["events:read", "api_keys:write", "events:read"]).unwrap();
        assert_eq!(scopes.to_stored(), "api_keys:write events:read");
        assert_eq!(Scopes::parse_stored(&scopes.to_stored()).unwrap(), scopes);
        assert_eq!(Scopes::parse_stored("*").unwrap(), Scopes::All);
    }

    #[test]
    fn rejects_unknown_scopes_by_name() {
        let error = Scopes::parse_list(["payments:delete"]).unwrap_err();
        assert_eq!(error.scope, "payments:delete");
        assert!(Scopes::parse_list(["nope:read"]).is_err());
        assert!(Scopes::parse_list(Vec::<&str>::new()).is_err());
    }
}
