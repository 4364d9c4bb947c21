//! The audit log's hash chain: each record's hash covers its own fields and
//! the previous record's hash, so editing, deleting or reordering any record
//! breaks every hash after it.

use sha2::{Digest, Sha256};

/// The hash before the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The fields of a record that its hash covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFields<'a> {
    pub sequence: i64,
    pub id: &'a str,
    pub merchant_id: Option<&'a str>,
    pub mode: Option<&'a str>,
    pub actor: &'a str,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub details: &'a str,
    pub created_at_ms: i64,
}

/// SHA-256 over the previous hash and each field, length-prefixed so no
/// two different records encode alike.
pub fn chain_hash(previous_hash: &str, fields: &AuditFields<'_>) -> String {
    let mut hasher = Sha256::new();
    let mut field = |value: Option<&str>| match value {
        Some(text) => {
            hasher.update((text.len() as u64).to_be_bytes());
            hasher.update(text.as_bytes());
        }
        None => hasher.update(u64::MAX.to_be_bytes()),
    };
    field(Some(previous_hash));
    field(Some(&fields.sequence.to_string()));
    field(Some(fields.id));
    field(fields.merchant_id);
    field(fields.mode);
    field(Some(fields.actor));
    field(Some(fields.action));
    field(fields.target);
    field(Some(fields.details));
    field(Some(&fields.created_at_ms.to_string()));
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> AuditFields<'static> {
        AuditFields {
            sequence: 1,
            id: "aud_1",
            merchant_id: Some("mer_1"),
            mode: Some("test"),
            actor: "cli",
            action: "api_key.created",
            target: Some("key_1"),
            details: "{}",
            created_at_ms: 1,
        }
    }

    #[test]
    fn every_field_and_the_previous_hash_count() {
        let base = chain_hash(GENESIS_HASH, &fields());
        assert_eq!(base.len(), 64);
        assert_ne!(chain_hash(&base, &fields()), base);
        let changes: Vec<AuditFields<'static>> = vec![
            AuditFields {
                sequence: 2,
                ..fields()
            },
            AuditFields {
                merchant_id: None,
                ..fields()
            },
            AuditFields {
                target: Some(""),
                ..fields()
            },
            AuditFields {
                target: None,
                ..fields()
            },
            AuditFields {
                details: "{ }",
                ..fields()
            },
            AuditFields {
                actor: "clj",
                ..fields()
            },
        ];
        for changed in changes {
            assert_ne!(chain_hash(GENESIS_HASH, &changed), base, "{changed:?}");
        }
    }
}
