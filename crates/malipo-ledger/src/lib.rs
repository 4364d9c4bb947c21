//! The ledger's rules, without IO.
//!
//! Every movement of money is a transfer of two or more entries whose amounts
//! sum to zero per currency. A positive amount credits an account (its
//! balance goes up), a negative one debits it. Transfers are append-only;
//! a correction is a reversing transfer.
//!
//! A transfer is either posted at once or held as *pending*: a pending
//! debit already counts against what an account may spend, and is later
//! posted or voided whole. Accounts flagged `must_not_go_negative` refuse any
//! transfer that would take their spendable balance (posted minus pending
//! debits) below zero.
//!
//! [`Book`] applies transfers to account states in memory. The store loads
//! the states a batch touches, applies the batch here, and writes back the
//! result in the same database transaction: one set of rules for every
//! backend, and the same code the property tests exercise.

mod account;
mod book;
mod transfer;

pub use account::{AccountKind, AccountSpec, AccountState, OwnerKind};
pub use book::{Book, HoldOutcome, PostOutcome};
pub use transfer::{FxNote, NewEntry, NewTransfer, TRANSFER_KEY_LENGTH_MAX};

use malipo_core::{AccountId, Currency, TransferId};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("a transfer needs at least two entries")]
    TooFewEntries,
    #[error("entry {index} has a zero amount")]
    ZeroAmount { index: usize },
    #[error("the entries in {currency} do not sum to zero")]
    Unbalanced { currency: Currency },
    #[error("the transfer key must be 1 to {TRANSFER_KEY_LENGTH_MAX} characters")]
    BadKey,
    #[error("no ledger account {0}")]
    UnknownAccount(AccountId),
    #[error("account {account} holds {expected}, not {got}")]
    CurrencyMismatch {
        account: AccountId,
        expected: Currency,
        got: Currency,
    },
    #[error("account {account} may not go negative")]
    WouldGoNegative { account: AccountId },
    #[error("amount overflow")]
    Overflow,
    #[error("transfer key `{key}` was already used for a different transfer")]
    KeyConflict { key: String },
    #[error("transfer {0} is not pending")]
    NotPending(TransferId),
    #[error("transfer {0} is pending; post or void it instead of reversing it")]
    ReversePending(TransferId),
    #[error("no transfer {0}")]
    UnknownTransfer(TransferId),
    #[error("a transfer cannot mix test and live accounts")]
    MixedModes,
    #[error("a transfer may touch the accounts of one merchant at most")]
    SeveralMerchants,
}
