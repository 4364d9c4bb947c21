use malipo_core::{Currency, MerchantId, Mode};

use crate::LedgerError;

/// Who an account's money belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OwnerKind {
    Platform,
    Merchant,
    Entity,
    Customer,
}

impl OwnerKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            OwnerKind::Platform => "platform",
            OwnerKind::Merchant => "merchant",
            OwnerKind::Entity => "entity",
            OwnerKind::Customer => "customer",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            OwnerKind::Platform,
            OwnerKind::Merchant,
            OwnerKind::Entity,
            OwnerKind::Customer,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
    }
}

/// What an account holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccountKind {
    /// Money its owner may spend or be paid out.
    Available,
    /// Collected but not yet available (e.g. awaiting a settlement delay).
    Pending,
    /// Held back against chargebacks and refunds.
    Reserve,
    /// Owed to the owner by someone else.
    Receivable,
    /// Fee revenue.
    Fees,
    /// Money in flight with a rail (M-Pesa, MTN…): what the rail owes us.
    RailClearing,
    /// Money whose owner is not known yet.
    Suspense,
    /// The platform's position in a currency from conversions.
    FxPosition,
    /// The outside world: the counterpart of money entering or leaving the
    /// books by an operator's adjustment.
    External,
    /// Earned on credit: plan interest, plan fees and late fees.
    Income,
    /// Receivables given up as lost (a defaulted plan's unpaid principal).
    WriteOff,
    /// What the owner owes, as a negative balance: a chargeback beyond an
    /// entity's reserve and available balance, recovered from its next
    /// settlement.
    Debt,
}

impl AccountKind {
    pub const ALL: [AccountKind; 12] = [
        AccountKind::Available,
        AccountKind::Pending,
        AccountKind::Reserve,
        AccountKind::Receivable,
        AccountKind::Fees,
        AccountKind::RailClearing,
        AccountKind::Suspense,
        AccountKind::FxPosition,
        AccountKind::External,
        AccountKind::Income,
        AccountKind::WriteOff,
        AccountKind::Debt,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            AccountKind::Available => "available",
            AccountKind::Pending => "pending",
            AccountKind::Reserve => "reserve",
            AccountKind::Receivable => "receivable",
            AccountKind::Fees => "fees",
            AccountKind::RailClearing => "rail_clearing",
            AccountKind::Suspense => "suspense",
            AccountKind::FxPosition => "fx_position",
            AccountKind::External => "external",
            AccountKind::Income => "income",
            AccountKind::WriteOff => "write_off",
            AccountKind::Debt => "debt",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// What identifies an account: one per owner, mode, currency, kind and
/// qualifier (e.g. the rail of a clearing account).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccountSpec {
    pub owner_kind: OwnerKind,
    pub owner_id: String,
    /// The merchant whose data this account is (its own, or one of its
    /// entities'); `None` for the platform's.
    pub merchant_id: Option<MerchantId>,
    pub mode: Mode,
    pub currency: Currency,
    pub kind: AccountKind,
    pub qualifier: String,
}

impl AccountSpec {
    pub fn merchant(
        merchant_id: MerchantId,
        mode: Mode,
        currency: Currency,
        kind: AccountKind,
    ) -> Self {
        Self {
            owner_kind: OwnerKind::Merchant,
            owner_id: merchant_id.to_string(),
            merchant_id: Some(merchant_id),
            mode,
            currency,
            kind,
            qualifier: String::new(),
        }
    }

    /// One of a settlement entity's accounts (`qualifier` tells apart
    /// two of a kind, e.g. `settling` from other pending money).
    pub fn entity(
        entity_id: &str,
        merchant_id: MerchantId,
        mode: Mode,
        currency: Currency,
        kind: AccountKind,
        qualifier: &str,
    ) -> Self {
        Self {
            owner_kind: OwnerKind::Entity,
            owner_id: entity_id.to_owned(),
            merchant_id: Some(merchant_id),
            mode,
            currency,
            kind,
            qualifier: qualifier.to_owned(),
        }
    }

    pub fn platform(mode: Mode, currency: Currency, kind: AccountKind, qualifier: &str) -> Self {
        Self {
            owner_kind: OwnerKind::Platform,
            owner_id: "platform".to_owned(),
            merchant_id: None,
            mode,
            currency,
            kind,
            qualifier: qualifier.to_owned(),
        }
    }

    /// Money owed to merchants and entities can never be overdrawn; the
    /// platform's own and the rails' positions may be negative.
    pub fn must_not_go_negative(&self) -> bool {
        matches!(self.owner_kind, OwnerKind::Merchant | OwnerKind::Entity)
            && matches!(
                self.kind,
                AccountKind::Available | AccountKind::Pending | AccountKind::Reserve
            )
    }
}

/// An account's balances as the ledger tracks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountState {
    pub currency: Currency,
    pub must_not_go_negative: bool,
    /// Sum of the entries of posted transfers.
    pub posted_minor: i64,
    /// Sum of the debits of pending transfers, as a positive number.
    pub pending_debits_minor: i64,
    /// Sum of the credits of pending transfers.
    pub pending_credits_minor: i64,
}

impl AccountState {
    pub fn new(currency: Currency, must_not_go_negative: bool) -> Self {
        Self {
            currency,
            must_not_go_negative,
            posted_minor: 0,
            pending_debits_minor: 0,
            pending_credits_minor: 0,
        }
    }

    /// What may still be spent: posted balance less pending debits.
    pub fn spendable_minor(&self) -> Result<i64, LedgerError> {
        self.posted_minor
            .checked_sub(self.pending_debits_minor)
            .ok_or(LedgerError::Overflow)
    }

    pub(crate) fn respects_its_flag(&self) -> Result<bool, LedgerError> {
        Ok(!self.must_not_go_negative || self.spendable_minor()? >= 0)
    }
}
