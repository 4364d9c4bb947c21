use std::collections::BTreeMap;

use malipo_core::{AccountId, Currency, FxRateId, Money, TransferId};
use sha2::{Digest, Sha256};

use crate::LedgerError;

pub const TRANSFER_KEY_LENGTH_MAX: usize = 255;

/// One leg of a transfer: positive credits the account, negative debits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewEntry {
    pub account_id: AccountId,
    pub amount: Money,
}

/// The rate a conversion used, kept on the transfer that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FxNote {
    pub rate_id: FxRateId,
    pub rate: String,
}

/// A transfer to post. `key` makes posting idempotent: the same key with
/// the same content posts once; with other content it is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTransfer {
    pub key: String,
    pub description: String,
    pub entries: Vec<NewEntry>,
    /// Held, to be posted or voided later, rather than posted now.
    pub pending: bool,
    pub reverses: Option<TransferId>,
    pub fx: Option<FxNote>,
}

impl NewTransfer {
    pub fn posted(
        key: impl Into<String>,
        description: impl Into<String>,
        entries: Vec<NewEntry>,
    ) -> Self {
        Self {
            key: key.into(),
            description: description.into(),
            entries,
            pending: false,
            reverses: None,
            fx: None,
        }
    }

    /// Checks the transfer's own shape: enough entries, none zero, and the
    /// entries of each currency summing to zero.
    pub fn validate(&self) -> Result<(), LedgerError> {
        if self.key.is_empty() || self.key.len() > TRANSFER_KEY_LENGTH_MAX {
            return Err(LedgerError::BadKey);
        }
        if self.entries.len() < 2 {
            return Err(LedgerError::TooFewEntries);
        }
        let mut sums: BTreeMap<Currency, i128> = BTreeMap::new();
        for (index, entry) in self.entries.iter().enumerate() {
            if entry.amount.amount_minor == 0 {
                return Err(LedgerError::ZeroAmount { index });
            }
            *sums.entry(entry.amount.currency).or_default() +=
                i128::from(entry.amount.amount_minor);
        }
        match sums.into_iter().find(|(_, sum)| *sum != 0) {
            Some((currency, _)) => Err(LedgerError::Unbalanced { currency }),
            None => Ok(()),
        }
    }

    /// A fingerprint of everything but the key, to tell a retry from a
    /// different transfer reusing the key.
    pub fn content_hash(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.description.as_bytes());
        hasher.update([0, u8::from(self.pending)]);
        if let Some(reverses) = self.reverses {
            hasher.update(reverses.to_string());
        }
        hasher.update([0]);
        if let Some(fx) = &self.fx {
            hasher.update(format!("{}:{}", fx.rate_id, fx.rate));
        }
        for entry in &self.entries {
            hasher.update(format!(
                "\n{}:{}:{}",
                entry.account_id, entry.amount.currency, entry.amount.amount_minor
            ));
        }
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The transfer that undoes this one: every entry negated.
    pub fn reversal(
        &self,
        original: TransferId,
        key: impl Into<String>,
    ) -> Result<NewTransfer, LedgerError> {
        let entries = self
            .entries
            .iter()
            .map(|entry| {
                Ok(NewEntry {
                    account_id: entry.account_id,
                    amount: entry
                        .amount
                        .checked_neg()
                        .map_err(|_| LedgerError::Overflow)?,
                })
            })
            .collect::<Result<Vec<_>, LedgerError>>()?;
        Ok(NewTransfer {
            key: key.into(),
            description: format!("reversal of {original}"),
            entries,
            pending: false,
            reverses: Some(original),
            fx: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(amount: i64, currency: Currency) -> NewEntry {
        NewEntry {
            account_id: AccountId::generate(),
            amount: Money::new(amount, currency),
        }
    }

    #[test]
    fn balanced_per_currency_or_refused() {
        let ok = NewTransfer::posted(
            "k",
            "d",
            vec![entry(100, Currency::KES), entry(-100, Currency::KES)],
        );
        assert_eq!(ok.validate(), Ok(()));
        let two_currencies = NewTransfer::posted(
            "k",
            "fx",
            vec![
                entry(100, Currency::USD),
                entry(-100, Currency::USD),
                entry(-371_245, Currency::UGX),
                entry(371_245, Currency::UGX),
            ],
        );
        assert_eq!(two_currencies.validate(), Ok(()));
        let unbalanced = NewTransfer::posted(
            "k",
            "d",
            vec![entry(100, Currency::KES), entry(-100, Currency::UGX)],
        );
        assert_eq!(
            unbalanced.validate(),
            Err(LedgerError::Unbalanced {
                currency: Currency::KES
            })
        );
        let one = NewTransfer::posted("k", "d", vec![entry(0, Currency::KES)]);
        assert_eq!(one.validate(), Err(LedgerError::TooFewEntries));
        let zero = NewTransfer::posted(
            "k",
            "d",
            vec![entry(0, Currency::KES), entry(0, Currency::KES)],
        );
        assert_eq!(zero.validate(), Err(LedgerError::ZeroAmount { index: 0 }));
        let no_key = NewTransfer::posted(
            "",
            "d",
            vec![entry(1, Currency::KES), entry(-1, Currency::KES)],
        );
        assert_eq!(no_key.validate(), Err(LedgerError::BadKey));
        // Sums are taken wide: extremes that would overflow i64 still balance.
        let wide = NewTransfer::posted(
            "k",
            "d",
            vec![
                entry(i64::MAX, Currency::KES),
                entry(i64::MAX, Currency::KES),
                entry(-i64::MAX, Currency::KES),
                entry(-i64::MAX, Currency::KES),
            ],
        );
        assert_eq!(wide.validate(), Ok(()));
    }
}
