//! Payment references, the payments made to them, settlement batches and
//! chargebacks as the API shows them (and events keep them).

use malipo_core::{
    ChargebackId, EntityId, PaymentReferenceId, ReferencePaymentId, SettlementId, Timestamp,
};
use malipo_store::{
    ChargebackRecord, PaymentReferenceRecord, ReferencePaymentRecord, SettlementLine,
    SettlementRecord,
};
use serde::Serialize;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PaymentReferenceOut {
    pub id: PaymentReferenceId,
    #[schema(example = "payment_reference")]
    pub object: &'static str,
    pub livemode: bool,
    /// What the customer types: digits, the last a check digit.
    #[schema(example = "482913574")]
    pub number: String,
    pub entity: EntityId,
    pub name: String,
    pub memo: String,
    pub currency: String,
    pub merchant_amount: i64,
    pub fee: i64,
    /// `customer` (the fee is added to what the customer pays) or `merchant`.
    pub fee_payer: String,
    /// What the customer is asked to pay.
    pub expected_total: i64,
    /// Everything paid to it so far.
    pub amount_paid: i64,
    /// What is still to pay (0 once paid).
    pub amount_remaining: i64,
    /// Paid beyond `expected_total`: held on the entity, refundable.
    pub amount_overpaid: i64,
    /// `open`, `partially_paid`, `paid` or `closed`.
    pub status: String,
    /// In `payment_reference.*` events: the payment that changed it.
    pub payment: Option<ReferencePaymentOut>,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    pub created: Timestamp,
    pub updated: Timestamp,
    pub closed: Option<Timestamp>,
}

impl PaymentReferenceOut {
    pub fn new(r: &PaymentReferenceRecord, payment: Option<&ReferencePaymentRecord>) -> Self {
        Self {
            id: r.id,
            object: "payment_reference",
            livemode: r.tenant.mode.is_live(),
            number: r.number.clone(),
            entity: r.entity_id,
            name: r.name.clone(),
            memo: r.memo.clone(),
            currency: r.currency.code().to_owned(),
            merchant_amount: r.merchant_amount_minor,
            fee: r.fee_minor,
            fee_payer: r.fee_payer.as_str().to_owned(),
            expected_total: r.expected_total_minor,
            amount_paid: r.paid_minor,
            amount_remaining: (r.expected_total_minor - r.paid_minor).max(0),
            amount_overpaid: r.overpaid_minor,
            status: r.status.clone(),
            payment: payment.map(ReferencePaymentOut::from),
            metadata: serde_json::from_str(&r.metadata).unwrap_or_default(),
            created: r.created_at,
            updated: r.updated_at,
            closed: r.closed_at,
        }
    }
}

impl From<PaymentReferenceRecord> for PaymentReferenceOut {
    fn from(r: PaymentReferenceRecord) -> Self {
        Self::new(&r, None)
    }
}

/// A payment a customer made from their wallet to a reference number.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReferencePaymentOut {
    pub id: ReferencePaymentId,
    #[schema(example = "reference_payment")]
    pub object: &'static str,
    pub livemode: bool,
    /// `matched` (credited to its reference's entity), `unmatched` (held
    /// in suspense: assign it or refund it), `refunding`, `refunded`.
    pub status: String,
    pub amount: i64,
    pub currency: String,
    /// The number the customer entered.
    pub number: String,
    pub payment_reference: Option<PaymentReferenceId>,
    pub entity: Option<EntityId>,
    /// Of `amount`: the platform's fee, what the entity's reserve holds,
    /// and what was paid beyond the reference's total.
    pub fee: i64,
    pub reserved: i64,
    pub overpaid: i64,
    pub rail: String,
    /// The rail's receipt (e.g. an M-Pesa code): unique per rail.
    pub rail_transaction_id: String,
    pub phone: Option<String>,
    pub payer_name: Option<String>,
    pub refund_payout: Option<String>,
    pub received: Timestamp,
    pub updated: Timestamp,
}

impl From<&ReferencePaymentRecord> for ReferencePaymentOut {
    fn from(p: &ReferencePaymentRecord) -> Self {
        Self {
            id: p.id,
            object: "reference_payment",
            livemode: p.mode.is_live(),
            status: p.status.clone(),
            amount: p.amount.amount_minor,
            currency: p.amount.currency.code().to_owned(),
            number: p.number.clone(),
            payment_reference: p.payment_reference_id,
            entity: p.entity_id,
            fee: p.fee_minor,
            reserved: p.reserved_minor,
            overpaid: p.overpaid_minor,
            rail: p.rail.clone(),
            rail_transaction_id: p.rail_transaction_id.clone(),
            phone: p.phone.clone(),
            payer_name: p.payer_name.clone(),
            refund_payout: p.refund_payout_id.clone(),
            received: p.received_at,
            updated: p.updated_at,
        }
    }
}

/// A batch paying out an entity's available balance.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SettlementOut {
    pub id: SettlementId,
    #[schema(example = "settlement")]
    pub object: &'static str,
    pub livemode: bool,
    pub entity: EntityId,
    pub amount: i64,
    pub currency: String,
    /// `computed`, `submitted`, `paid` or `failed` (retry it).
    pub status: String,
    /// `schedule` or `manual`.
    pub triggered_by: String,
    /// The payout of the latest attempt.
    pub payout: Option<String>,
    pub attempts: i64,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    /// The previous batch's end (none for the first).
    pub period_start: Option<Timestamp>,
    pub period_end: Timestamp,
    /// The ledger transfer that took the amount from the available balance.
    pub transfer: String,
    pub created: Timestamp,
    pub updated: Timestamp,
    pub paid: Option<Timestamp>,
}

impl From<&SettlementRecord> for SettlementOut {
    fn from(s: &SettlementRecord) -> Self {
        Self {
            id: s.id,
            object: "settlement",
            livemode: s.tenant.mode.is_live(),
            entity: s.entity_id,
            amount: s.amount.amount_minor,
            currency: s.amount.currency.code().to_owned(),
            status: s.status.clone(),
            triggered_by: s.triggered_by.clone(),
            payout: s.payout_id.clone(),
            attempts: s.attempts,
            failure_code: s.failure_code.clone(),
            failure_message: s.failure_message.clone(),
            period_start: s.period_start,
            period_end: s.period_end,
            transfer: s.transfer_id.clone(),
            created: s.created_at,
            updated: s.updated_at,
            paid: s.paid_at,
        }
    }
}

/// A ledger entry of the entity's available balance.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SettlementLineOut {
    #[schema(example = "settlement_line")]
    pub object: &'static str,
    /// The batch that settled it, if one has.
    pub settlement: Option<SettlementId>,
    pub transfer: String,
    pub position: i64,
    /// Positive: a credit (a payment, a reserve release); negative: a
    /// debit (a chargeback, a debt recovered).
    pub amount: i64,
    pub description: String,
    pub created: Timestamp,
}

impl From<&SettlementLine> for SettlementLineOut {
    fn from(l: &SettlementLine) -> Self {
        Self {
            object: "settlement_line",
            settlement: l.settlement_id,
            transfer: l.transfer_id.clone(),
            position: l.position,
            amount: l.amount_minor,
            description: l.description.clone(),
            created: l.created_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChargebackOut {
    pub id: ChargebackId,
    #[schema(example = "chargeback")]
    pub object: &'static str,
    pub livemode: bool,
    pub entity: EntityId,
    pub amount: i64,
    pub currency: String,
    /// Where it was taken from: the reserve first, then the available
    /// balance; the rest is the entity's debt, recovered from its next batch.
    pub from_reserve: i64,
    pub from_available: i64,
    pub to_debt: i64,
    pub reason: String,
    pub reference_payment: Option<ReferencePaymentId>,
    pub transfer: String,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    pub created: Timestamp,
}

impl From<&ChargebackRecord> for ChargebackOut {
    fn from(c: &ChargebackRecord) -> Self {
        Self {
            id: c.id,
            object: "chargeback",
            livemode: c.tenant.mode.is_live(),
            entity: c.entity_id,
            amount: c.amount.amount_minor,
            currency: c.amount.currency.code().to_owned(),
            from_reserve: c.from_reserve_minor,
            from_available: c.from_available_minor,
            to_debt: c.to_debt_minor,
            reason: c.reason.clone(),
            reference_payment: c.reference_payment_id,
            transfer: c.transfer_id.clone(),
            metadata: serde_json::from_str(&c.metadata).unwrap_or_default(),
            created: c.created_at,
        }
    }
}

/// Minor units with their release time.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReserveHoldOut {
    pub amount: i64,
    pub release_at: Timestamp,
}

/// An entity's balances.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReserveBalanceOut {
    #[schema(example = "reserve_balance")]
    pub object: &'static str,
    pub livemode: bool,
    pub entity: EntityId,
    pub currency: String,
    /// Held in reserve.
    pub reserved: i64,
    /// What the next batch would pay out (before any debt is recovered).
    pub available: i64,
    /// In batches on their way (or failed, waiting for a retry).
    pub settling: i64,
    /// Paid beyond references' totals.
    pub overpaid: i64,
    /// What the entity owes from chargebacks beyond its balances.
    pub debt: i64,
    /// The reserve's holds, soonest release first (at most 100).
    pub releases: Vec<ReserveHoldOut>,
}
