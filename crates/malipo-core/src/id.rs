//! Prefixed, sortable ids: `key_01jbz8v6q2m3t4w5x6y7z8a9b0`.
//!
//! The body is a UUIDv7 in lowercase Crockford base32 (26 characters), so
//! ids sort by creation time as plain strings, read well, and carry no
//! characters that need escaping. One macro makes every id type, so each
//! resource's id is its own type and cannot be passed for another's.

use std::fmt;

use uuid::Uuid;

const CROCKFORD: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const BODY_LEN: usize = 26;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdParseError {
    #[error("expected an id starting with `{expected_prefix}_`")]
    WrongPrefix { expected_prefix: &'static str },
    #[error("the id body must be 26 characters of lowercase base32")]
    MalformedBody,
}

/// Encodes 128 bits as 26 Crockford base32 characters (the first carries 3 bits).
pub fn encode_base32(value: u128) -> String {
    let mut out = [0u8; BODY_LEN];
    for (index, slot) in out.iter_mut().enumerate() {
        let shift = 5 * (BODY_LEN - 1 - index);
        *slot = CROCKFORD[((value >> shift) & 0x1f) as usize];
    }
    String::from_utf8(out.to_vec()).expect("the alphabet is ASCII")
}

pub fn decode_base32(body: &str) -> Result<u128, IdParseError> {
    if body.len() != BODY_LEN {
        return Err(IdParseError::MalformedBody);
    }
    let mut value: u128 = 0;
    for (index, byte) in body.bytes().enumerate() {
        let digit = CROCKFORD
            .iter()
            .position(|&c| c == byte)
            .ok_or(IdParseError::MalformedBody)? as u128;
        // The first character holds only the top 3 bits of 128.
        if index == 0 && digit > 7 {
            return Err(IdParseError::MalformedBody);
        }
        value = (value << 5) | digit;
    }
    Ok(value)
}

macro_rules! prefixed_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Uuid);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new time-ordered id.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub fn uuid(&self) -> Uuid {
                self.0
            }

            /// The part after the prefix.
            pub fn body(&self) -> String {
                encode_base32(self.0.as_u128())
            }

            pub fn parse(text: &str) -> Result<Self, IdParseError> {
                let body = text
                    .strip_prefix(concat!($prefix, "_"))
                    .ok_or(IdParseError::WrongPrefix { expected_prefix: $prefix })?;
                Self::parse_body(body)
            }

            pub fn parse_body(body: &str) -> Result<Self, IdParseError> {
                decode_base32(body).map(|value| Self(Uuid::from_u128(value)))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}_{}", $prefix, self.body())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdParseError;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::parse(text)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Self::parse(&text).map_err(serde::de::Error::custom)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some(concat!("^", $prefix, "_[0-7][0-9a-hjkmnp-tv-z]{25}$")))
                    .into()
            }
        }
        impl utoipa::ToSchema for $name {}
    };
}

prefixed_id!(
    /// A merchant: the tenant every query is scoped by.
    MerchantId, "mer"
);
prefixed_id!(
    /// An API key. Its body is the `<keyid>` part of `sk_test_<keyid>.<secret>`.
    ApiKeyId, "key"
);
prefixed_id!(
    /// A request, when the client sends no `X-Request-Id` of its own.
    RequestId, "req"
);
prefixed_id!(
    /// A ledger account.
    AccountId, "acct"
);
prefixed_id!(
    /// A ledger transfer: two or more entries summing to zero per currency.
    TransferId, "tr"
);
prefixed_id!(
    /// A record in the hash-chained audit log.
    AuditEventId, "aud"
);
prefixed_id!(
    /// An exchange rate as set by the operator.
    FxRateId, "fx"
);
prefixed_id!(
    /// A fee schedule.
    FeeScheduleId, "fee"
);
prefixed_id!(
    /// A payment: a collection from a customer's wallet.
    PaymentId, "pay"
);
prefixed_id!(
    /// A payout: money out to a wallet or bank account.
    PayoutId, "po"
);
prefixed_id!(
    /// A refund of a payment, paid back through the rail.
    RefundId, "re"
);
prefixed_id!(
    /// A background job.
    JobId, "job"
);
prefixed_id!(
    /// A callback received from a rail, kept as it arrived.
    InboundId, "inb"
);
prefixed_id!(
    /// Something that happened to a merchant's object (`payment.succeeded`).
    EventId, "evt"
);
prefixed_id!(
    /// A merchant's URL that receives events.
    WebhookEndpointId, "we"
);
prefixed_id!(
    /// One signing secret of a webhook endpoint (not shown to merchants).
    WebhookSecretId, "whs"
);
prefixed_id!(
    /// One HTTP attempt to deliver an event, in the delivery log.
    WebhookAttemptId, "wha"
);
prefixed_id!(
    /// A merchant's buy-now-pay-later product: the terms its checkouts offer.
    PlanProductId, "pp"
);
prefixed_id!(
    /// A buy-now-pay-later checkout: at a till, or on a hosted page.
    CheckoutId, "co"
);
prefixed_id!(
    /// An installment plan a completed checkout created.
    PlanId, "plan"
);
prefixed_id!(
    /// A sandbox clock that plans attached to it follow instead of real time.
    TestClockId, "clock"
);
prefixed_id!(
    /// A settlement entity: who a merchant's collections are paid out to.
    EntityId, "ent"
);
prefixed_id!(
    /// A payment reference ("Lipa number") for one invoice.
    PaymentReferenceId, "pref"
);
prefixed_id!(
    /// A dashboard user of a merchant.
    UserId, "usr"
);
prefixed_id!(
    /// An OAuth client (its `client_id`).
    OAuthClientId, "cli"
);
prefixed_id!(
    /// A customer-initiated payment to a reference number, as a rail reported it.
    ReferencePaymentId, "rpay"
);
prefixed_id!(
    /// A settlement batch: one payout of an entity's balance.
    SettlementId, "stl"
);
prefixed_id!(
    /// A chargeback or refund debit recorded against an entity.
    ChargebackId, "cb"
);
prefixed_id!(
    /// Part of a credit held in an entity's reserve until its release date.
    ReserveHoldId, "rsv"
);
prefixed_id!(
    /// A rail's configuration (settings and sealed credentials), one
    /// merchant's or the platform's.
    RailConfigId, "rc"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_other_prefixes() {
        let id = MerchantId::generate();
        let text = id.to_string();
        assert!(text.starts_with("mer_"));
        assert_eq!(text.len(), 4 + BODY_LEN);
        assert_eq!(MerchantId::parse(&text), Ok(id));
        assert_eq!(
            ApiKeyId::parse(&text),
            Err(IdParseError::WrongPrefix {
                expected_prefix: "key"
            })
        );
        assert_eq!(
            MerchantId::parse("mer_short"),
            Err(IdParseError::MalformedBody)
        );
        assert_eq!(
            MerchantId::parse("mer_8zzzzzzzzzzzzzzzzzzzzzzzzz"),
            Err(IdParseError::MalformedBody)
        );
    }

    #[test]
    fn string_order_is_creation_order() {
        let ids: Vec<ApiKeyId> = (0..1_000).map(|_| ApiKeyId::generate()).collect();
        let mut as_strings: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let original = as_strings.clone();
        as_strings.sort();
        assert_eq!(as_strings, original);
    }

    #[test]
    fn base32_covers_extremes() {
        for value in [0u128, 1, u128::MAX, u128::MAX / 3] {
            assert_eq!(decode_base32(&encode_base32(value)), Ok(value));
        }
    }
}
