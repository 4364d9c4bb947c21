//! Settlement: customer payments to reference numbers, credited to their
//! entity (less the fee, a reserve held for some days, and any excess kept
//! as an overpayment); payments no reference takes, held in suspense until
//! the merchant assigns them; chargebacks; and batches paying out an
//! entity's available balance.
//!
//! Every money change is a ledger transfer in the transaction of the state
//! change that causes it. An entity's available account is settled entry by
//! entry: each entry lands in at most one batch (`settlement_lines`' key),
//! and its balance always equals the entries not yet settled.

use malipo_core::{
    AccountId, ChargebackId, Currency, EntityId, InboundId, MerchantId, Mode, Money,
    PaymentReferenceId, ReferencePaymentId, ReserveHoldId, SettlementId, TestClockId, Timestamp,
};
use malipo_ledger::{NewEntry, NewTransfer};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::entities::EntityRecord;
use crate::events::{NewEvent, ObjectViews};
use crate::jobs::{NewJob, enqueue_in};
use crate::ledger::post_transfers_in;
use crate::payment_references::PaymentReferenceRecord;
use crate::payouts::{CreatePayoutOutcome, PayoutRecord, PayoutStatus, insert_payout_in};
use crate::sql::Sql;
use crate::{Backend, Page, PageRequest, Store, StoreError, Tenant};

type Transaction = sqlx::Transaction<'static, sqlx::Any>;

/// Wakes an entity: releases its due reserve and computes its scheduled
/// batch. Payload `{"at": ms}`; a tick with nothing due does nothing.
pub const ENTITY_TICK_JOB: &str = "entity.tick";
/// Submits a computed batch as a payout.
pub const SETTLEMENT_SUBMIT_JOB: &str = "settlement.submit";

const DAY_MS: i64 = 86_400_000;

fn bad(table: &'static str, column: &'static str, reason: impl ToString) -> StoreError {
    StoreError::corrupt(table, column, reason)
}

fn lock_suffix(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    }
}

// ------------------------------------------------------------------ accounts

/// A settlement entity's ledger accounts in its currency.
#[derive(Debug, Clone, Copy)]
pub struct EntityAccounts {
    /// What the next batch pays out.
    pub available: AccountId,
    /// Held from credits until their release date.
    pub reserve: AccountId,
    /// Batches on their way to the entity (a failed one waits here for its retry).
    pub settling: AccountId,
    /// Paid beyond what references asked.
    pub overpayments: AccountId,
    /// What the entity owes (negative): chargebacks beyond its balances.
    pub debt: AccountId,
}

/// The platform's accounts a customer payment touches.
#[derive(Debug, Clone, Copy)]
pub struct InboundAccounts {
    /// What the rail owes us: debited by every payment it reports.
    pub clearing: AccountId,
    pub fees: AccountId,
    /// Payments no reference took.
    pub unmatched: AccountId,
}

// --------------------------------------------------------- reference payments

/// A customer-initiated payment as the rail reported it.
#[derive(Debug, Clone)]
pub struct CustomerPaymentIn {
    pub rail: String,
    pub rail_transaction_id: String,
    pub mode: Mode,
    pub number: String,
    pub amount: Money,
    pub phone: Option<String>,
    pub payer_name: Option<String>,
    pub inbound_id: InboundId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferencePaymentRecord {
    pub id: ReferencePaymentId,
    pub rail: String,
    pub rail_transaction_id: String,
    pub mode: Mode,
    /// `None` while nobody owns it (a number no reference had).
    pub merchant_id: Option<MerchantId>,
    pub number: String,
    pub payment_reference_id: Option<PaymentReferenceId>,
    pub entity_id: Option<EntityId>,
    /// `matched`, `unmatched`, `refunding` or `refunded`.
    pub status: String,
    pub amount: Money,
    pub fee_minor: i64,
    pub reserved_minor: i64,
    pub overpaid_minor: i64,
    pub phone: Option<String>,
    pub payer_name: Option<String>,
    pub inbound_id: InboundId,
    pub refund_payout_id: Option<String>,
    pub received_at: Timestamp,
    pub updated_at: Timestamp,
}

const RPAY_COLUMNS: &str = "id, rail, rail_transaction_id, mode, merchant_id, number, payment_reference_id, \
     entity_id, status, amount_minor, currency, fee_minor, reserved_minor, overpaid_minor, phone, payer_name, \
     inbound_id, refund_payout_id, received_at_ms, updated_at_ms";

fn rpay_from_row(row: &AnyRow) -> Result<ReferencePaymentRecord, StoreError> {
    let bad = |column, reason: String| bad("reference_payments", column, reason);
    let text = |column: &str| -> Result<Option<String>, StoreError> { Ok(row.try_get(column)?) };
    let id: String = row.try_get("id")?;
    let mode: String = row.try_get("mode")?;
    let currency: String = row.try_get("currency")?;
    let inbound: String = row.try_get("inbound_id")?;
    Ok(ReferencePaymentRecord {
        id: ReferencePaymentId::parse(&id).map_err(|e| bad("id", e.to_string()))?,
        rail: row.try_get("rail")?,
        rail_transaction_id: row.try_get("rail_transaction_id")?,
        mode: Mode::parse(&mode).ok_or_else(|| bad("mode", mode.clone()))?,
        merchant_id: text("merchant_id")?
            .map(|id| MerchantId::parse(&id))
            .transpose()
            .map_err(|e| bad("merchant_id", e.to_string()))?,
        number: row.try_get("number")?,
        payment_reference_id: text("payment_reference_id")?
            .map(|id| PaymentReferenceId::parse(&id))
            .transpose()
            .map_err(|e| bad("payment_reference_id", e.to_string()))?,
        entity_id: text("entity_id")?
            .map(|id| EntityId::parse(&id))
            .transpose()
            .map_err(|e| bad("entity_id", e.to_string()))?,
        status: row.try_get("status")?,
        amount: Money::new(
            row.try_get("amount_minor")?,
            Currency::parse(&currency).map_err(|e| bad("currency", e.to_string()))?,
        ),
        fee_minor: row.try_get("fee_minor")?,
        reserved_minor: row.try_get("reserved_minor")?,
        overpaid_minor: row.try_get("overpaid_minor")?,
        phone: text("phone")?,
        payer_name: text("payer_name")?,
        inbound_id: InboundId::parse(&inbound).map_err(|e| bad("inbound_id", e.to_string()))?,
        refund_payout_id: text("refund_payout_id")?,
        received_at: Timestamp::from_unix_ms(row.try_get("received_at_ms")?),
        updated_at: Timestamp::from_unix_ms(row.try_get("updated_at_ms")?),
    })
}

/// How one payment to a reference divides: the fee first (until the
/// reference's fee is covered), anything beyond what the reference still
/// asks held as an overpayment, and of the entity's part a reserve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentSplit {
    pub fee: i64,
    pub overpaid: i64,
    pub reserve: i64,
    pub available: i64,
}

pub fn split_payment(
    amount_minor: i64,
    reference: &PaymentReferenceRecord,
    reserve_bps: i64,
) -> PaymentSplit {
    let fee_due = (reference.fee_minor - reference.fee_paid_minor).max(0);
    let owed = (reference.expected_total_minor - reference.paid_minor).max(0);
    let overpaid = (amount_minor - owed).max(0);
    let fee = fee_due.min(amount_minor - overpaid);
    let to_entity = amount_minor - overpaid - fee;
    // Rounded down: the reserve never takes more than its percentage.
    let reserve = i64::try_from(i128::from(to_entity) * i128::from(reserve_bps) / 10_000)
        .unwrap_or(to_entity);
    PaymentSplit {
        fee,
        overpaid,
        reserve,
        available: to_entity - reserve,
    }
}

/// What happened to a customer payment.
#[derive(Debug, Clone)]
pub enum CustomerPaymentOutcome {
    /// Credited to the reference's entity.
    Matched {
        payment: ReferencePaymentRecord,
        reference: Box<PaymentReferenceRecord>,
    },
    /// No open reference has the number: held in suspense.
    Unmatched(ReferencePaymentRecord),
    /// The rail reported this transaction before: nothing applied again.
    Duplicate,
}

#[derive(Debug, Clone, Default)]
pub struct ReferencePaymentFilter {
    pub payment_reference_id: Option<PaymentReferenceId>,
    pub status: Option<String>,
    /// Also finds a payment nobody owns yet: the customer's receipt is the
    /// merchant's claim to it.
    pub rail_transaction_id: Option<String>,
}

/// Why an assignment did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignError {
    NotFound,
    NotUnmatched,
    ReferenceNotFound,
    ReferenceClosed,
    CurrencyMismatch,
}

// --------------------------------------------------------------- settlements

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementRecord {
    pub id: SettlementId,
    pub tenant: Tenant,
    pub entity_id: EntityId,
    pub amount: Money,
    /// `computed`, `submitted`, `paid` or `failed`.
    pub status: String,
    /// `schedule` or `manual`.
    pub triggered_by: String,
    pub transfer_id: String,
    pub payout_id: Option<String>,
    pub attempts: i64,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub period_start: Option<Timestamp>,
    pub period_end: Timestamp,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub paid_at: Option<Timestamp>,
}

const STL_COLUMNS: &str = "id, merchant_id, mode, entity_id, currency, amount_minor, status, triggered_by, \
     transfer_id, payout_id, attempts, failure_code, failure_message, period_start_ms, period_end_ms, \
     created_at_ms, updated_at_ms, paid_at_ms";

fn settlement_from_row(row: &AnyRow) -> Result<SettlementRecord, StoreError> {
    const TABLE: &str = "settlements";
    let bad = |column, reason: String| bad(TABLE, column, reason);
    let id: String = row.try_get("id")?;
    let entity: String = row.try_get("entity_id")?;
    let currency: String = row.try_get("currency")?;
    let optional_time = |column: &str| -> Result<Option<Timestamp>, StoreError> {
        Ok(row
            .try_get::<Option<i64>, _>(column)?
            .map(Timestamp::from_unix_ms))
    };
    Ok(SettlementRecord {
        id: SettlementId::parse(&id).map_err(|e| bad("id", e.to_string()))?,
        tenant: crate::tenant_of(row, TABLE)?,
        entity_id: EntityId::parse(&entity).map_err(|e| bad("entity_id", e.to_string()))?,
        amount: Money::new(
            row.try_get("amount_minor")?,
            Currency::parse(&currency).map_err(|e| bad("currency", e.to_string()))?,
        ),
        status: row.try_get("status")?,
        triggered_by: row.try_get("triggered_by")?,
        transfer_id: row.try_get("transfer_id")?,
        payout_id: row.try_get("payout_id")?,
        attempts: row.try_get("attempts")?,
        failure_code: row.try_get("failure_code")?,
        failure_message: row.try_get("failure_message")?,
        period_start: optional_time("period_start_ms")?,
        period_end: Timestamp::from_unix_ms(row.try_get("period_end_ms")?),
        created_at: Timestamp::from_unix_ms(row.try_get("created_at_ms")?),
        updated_at: Timestamp::from_unix_ms(row.try_get("updated_at_ms")?),
        paid_at: optional_time("paid_at_ms")?,
    })
}

/// One ledger entry of an entity's available account, and the batch that
/// settled it (if one has).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementLine {
    pub settlement_id: Option<SettlementId>,
    pub transfer_id: String,
    pub position: i64,
    pub amount_minor: i64,
    pub description: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Default)]
pub struct SettlementFilter {
    pub entity_id: Option<EntityId>,
    pub status: Option<String>,
}

/// What computing a batch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComputeOutcome {
    Computed(Box<SettlementRecord>),
    /// Less than the entity's minimum (or nothing) is available: it rolls
    /// over to the next batch.
    BelowMinimum {
        available_minor: i64,
    },
    /// Live mode and the entity is not approved.
    NotApproved,
    NotFound,
}

/// An entity's balances, as `GET /v1/reserves/balance` shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityBalances {
    pub available_minor: i64,
    pub reserved_minor: i64,
    pub settling_minor: i64,
    pub overpaid_minor: i64,
    /// What the entity owes, as a positive number.
    pub debt_minor: i64,
    /// Held amounts not yet released and when each is released, soonest first.
    pub holds: Vec<(i64, Timestamp)>,
}

// ---------------------------------------------------------------- chargebacks

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargebackRecord {
    pub id: ChargebackId,
    pub tenant: Tenant,
    pub entity_id: EntityId,
    pub amount: Money,
    pub from_reserve_minor: i64,
    pub from_available_minor: i64,
    pub to_debt_minor: i64,
    pub reason: String,
    pub reference_payment_id: Option<ReferencePaymentId>,
    pub idempotency_key: Option<String>,
    pub transfer_id: String,
    pub metadata: String,
    pub created_at: Timestamp,
}

const CB_COLUMNS: &str = "id, merchant_id, mode, entity_id, currency, amount_minor, from_reserve_minor, \
     from_available_minor, to_debt_minor, reason, reference_payment_id, idempotency_key, transfer_id, metadata, \
     created_at_ms";

fn chargeback_from_row(row: &AnyRow) -> Result<ChargebackRecord, StoreError> {
    const TABLE: &str = "chargebacks";
    let bad = |column, reason: String| bad(TABLE, column, reason);
    let id: String = row.try_get("id")?;
    let entity: String = row.try_get("entity_id")?;
    let currency: String = row.try_get("currency")?;
    Ok(ChargebackRecord {
        id: ChargebackId::parse(&id).map_err(|e| bad("id", e.to_string()))?,
        tenant: crate::tenant_of(row, TABLE)?,
        entity_id: EntityId::parse(&entity).map_err(|e| bad("entity_id", e.to_string()))?,
        amount: Money::new(
            row.try_get("amount_minor")?,
            Currency::parse(&currency).map_err(|e| bad("currency", e.to_string()))?,
        ),
        from_reserve_minor: row.try_get("from_reserve_minor")?,
        from_available_minor: row.try_get("from_available_minor")?,
        to_debt_minor: row.try_get("to_debt_minor")?,
        reason: row.try_get("reason")?,
        reference_payment_id: row
            .try_get::<Option<String>, _>("reference_payment_id")?
            .map(|id| ReferencePaymentId::parse(&id))
            .transpose()
            .map_err(|e| bad("reference_payment_id", e.to_string()))?,
        idempotency_key: row.try_get("idempotency_key")?,
        transfer_id: row.try_get("transfer_id")?,
        metadata: row.try_get("metadata")?,
        created_at: Timestamp::from_unix_ms(row.try_get("created_at_ms")?),
    })
}

/// A chargeback to record.
#[derive(Debug, Clone)]
pub struct NewChargeback {
    pub tenant: Tenant,
    pub entity_id: EntityId,
    pub amount_minor: i64,
    pub reason: String,
    pub reference_payment_id: Option<ReferencePaymentId>,
    pub idempotency_key: Option<String>,
    pub metadata: String,
}

#[derive(Debug, Clone)]
pub enum ChargebackOutcome {
    Created(ChargebackRecord),
    /// The same Idempotency-Key recorded this one before.
    Existing(ChargebackRecord),
    EntityNotFound,
}

// ------------------------------------------------------------------- helpers

async fn balance_in(transaction: &mut Transaction, account: AccountId) -> Result<i64, StoreError> {
    let row = sqlx::query(
        "SELECT posted_minor - pending_debits_minor AS balance FROM ledger_accounts WHERE id = $1",
    )
    .bind(account.to_string())
    .fetch_optional(&mut **transaction)
    .await?;
    Ok(match row {
        Some(row) => row.try_get("balance")?,
        None => 0,
    })
}

/// Posts one transfer that must go through: a refusal here means the
/// books disagree with the rows that caused it.
async fn post_in(
    transaction: &mut Transaction,
    backend: Backend,
    transfer: NewTransfer,
    now: Timestamp,
) -> Result<String, StoreError> {
    let posted = post_transfers_in(transaction, backend, std::slice::from_ref(&transfer), now)
        .await?
        .pop()
        .expect("one result per transfer")
        .map_err(|error| bad("ledger_transfers", "entries", error))?;
    Ok(posted.id.to_string())
}

fn entries(currency: Currency, legs: &[(AccountId, i64)]) -> Vec<NewEntry> {
    legs.iter()
        .filter(|(_, amount)| *amount != 0)
        .map(|(account_id, amount)| NewEntry {
            account_id: *account_id,
            amount: Money::new(*amount, currency),
        })
        .collect()
}

async fn lock_entity_in(
    transaction: &mut Transaction,
    backend: Backend,
    id: EntityId,
) -> Result<Option<EntityRecord>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM entities WHERE id = $1{}",
        crate::entities::COLUMNS,
        lock_suffix(backend)
    )))
    .bind(id.to_string())
    .fetch_optional(&mut **transaction)
    .await?;
    row.as_ref().map(crate::entities::from_row).transpose()
}

/// The entity's own time: its test clock's, or `now`.
async fn entity_time_in(
    transaction: &mut Transaction,
    entity: &EntityRecord,
    now: Timestamp,
) -> Result<Timestamp, StoreError> {
    let Some(clock) = entity.test_clock_id else {
        return Ok(now);
    };
    let row = sqlx::query("SELECT frozen_time_ms FROM test_clocks WHERE id = $1")
        .bind(clock.to_string())
        .fetch_optional(&mut **transaction)
        .await?;
    Ok(match row {
        Some(row) => Timestamp::from_unix_ms(row.try_get("frozen_time_ms")?),
        None => now,
    })
}

fn tick_job(entity: &EntityRecord, at: Timestamp) -> Option<NewJob> {
    if entity.test_clock_id.is_some() {
        return None;
    }
    let mut job = NewJob::new(ENTITY_TICK_JOB, entity.id, at);
    job.payload = serde_json::json!({"at": at.unix_ms()}).to_string();
    Some(job)
}

fn reference_event(
    views: &dyn ObjectViews,
    reference: &PaymentReferenceRecord,
    payment: &ReferencePaymentRecord,
    at: Timestamp,
) -> NewEvent {
    let kind = if payment.overpaid_minor > 0 {
        "payment_reference.overpaid"
    } else if reference.status == "paid" {
        "payment_reference.paid"
    } else {
        "payment_reference.partially_paid"
    };
    NewEvent::new(
        reference.tenant,
        kind,
        reference.id,
        views.payment_reference(reference, Some(payment)),
        at,
    )
}

/// Credits `payment` to its reference (locked, and not closed) from
/// `source`: the fee, the overpayment, the reserve (with its hold) and the
/// rest to the entity's available balance. `None` if the reference is
/// closed or gone; nothing is written then.
#[allow(clippy::too_many_arguments)]
async fn apply_to_reference_in(
    transaction: &mut Transaction,
    backend: Backend,
    payment: &mut ReferencePaymentRecord,
    reference_id: PaymentReferenceId,
    source: AccountId,
    transfer_key: String,
    fees: AccountId,
    accounts: &EntityAccounts,
    now: Timestamp,
) -> Result<Option<(PaymentReferenceRecord, Vec<NewJob>)>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM payment_references WHERE id = $1{}",
        crate::payment_references::COLUMNS,
        lock_suffix(backend)
    )))
    .bind(reference_id.to_string())
    .fetch_optional(&mut **transaction)
    .await?;
    let Some(mut reference) = row
        .as_ref()
        .map(crate::payment_references::from_row)
        .transpose()?
    else {
        return Ok(None);
    };
    if reference.status == "closed"
        || reference.tenant.mode != payment.mode
        || reference.currency != payment.amount.currency
    {
        return Ok(None);
    }
    let Some(entity) = lock_entity_in(transaction, backend, reference.entity_id).await? else {
        return Ok(None);
    };
    let entity_now = entity_time_in(transaction, &entity, now).await?;
    let amount = payment.amount.amount_minor;
    let split = split_payment(amount, &reference, entity.reserve_bps);
    let transfer = NewTransfer::posted(
        transfer_key,
        format!("payment {} to reference {}", payment.id, reference.number),
        entries(
            reference.currency,
            &[
                (source, -amount),
                (fees, split.fee),
                (accounts.overpayments, split.overpaid),
                (accounts.reserve, split.reserve),
                (accounts.available, split.available),
            ],
        ),
    );
    post_in(transaction, backend, transfer, now).await?;
    reference.paid_minor += amount;
    reference.fee_paid_minor += split.fee;
    reference.overpaid_minor += split.overpaid;
    reference.status = if reference.paid_minor >= reference.expected_total_minor {
        "paid"
    } else {
        "partially_paid"
    }
    .to_owned();
    reference.updated_at = now;
    sqlx::query(
        "UPDATE payment_references SET paid_minor = $1, fee_paid_minor = $2, overpaid_minor = $3, status = $4, \
         updated_at_ms = $5 WHERE id = $6",
    )
    .bind(reference.paid_minor)
    .bind(reference.fee_paid_minor)
    .bind(reference.overpaid_minor)
    .bind(reference.status.clone())
    .bind(now.unix_ms())
    .bind(reference.id.to_string())
    .execute(&mut **transaction)
    .await?;
    let mut jobs = Vec::new();
    if split.reserve > 0 {
        let release_at = entity_now.plus_ms(entity.reserve_days * DAY_MS);
        sqlx::query(
            "INSERT INTO reserve_holds (id, entity_id, currency, amount_minor, remaining_minor, source_id, \
             release_at_ms, created_at_ms) VALUES ($1, $2, $3, $4, $4, $5, $6, $7)",
        )
        .bind(ReserveHoldId::generate().to_string())
        .bind(entity.id.to_string())
        .bind(reference.currency.code())
        .bind(split.reserve)
        .bind(payment.id.to_string())
        .bind(release_at.unix_ms())
        .bind(now.unix_ms())
        .execute(&mut **transaction)
        .await?;
        jobs.extend(tick_job(&entity, release_at));
    }
    payment.status = "matched".to_owned();
    payment.merchant_id = Some(reference.tenant.merchant_id);
    payment.payment_reference_id = Some(reference.id);
    payment.entity_id = Some(entity.id);
    payment.fee_minor = split.fee;
    payment.reserved_minor = split.reserve;
    payment.overpaid_minor = split.overpaid;
    payment.updated_at = now;
    Ok(Some((reference, jobs)))
}

async fn write_rpay_in(
    transaction: &mut Transaction,
    payment: &ReferencePaymentRecord,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE reference_payments SET merchant_id = $1, payment_reference_id = $2, entity_id = $3, status = $4, \
         fee_minor = $5, reserved_minor = $6, overpaid_minor = $7, refund_payout_id = $8, updated_at_ms = $9 \
         WHERE id = $10",
    )
    .bind(payment.merchant_id.map(|id| id.to_string()))
    .bind(payment.payment_reference_id.map(|id| id.to_string()))
    .bind(payment.entity_id.map(|id| id.to_string()))
    .bind(payment.status.clone())
    .bind(payment.fee_minor)
    .bind(payment.reserved_minor)
    .bind(payment.overpaid_minor)
    .bind(payment.refund_payout_id.clone())
    .bind(payment.updated_at.unix_ms())
    .bind(payment.id.to_string())
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

impl Store {
    /// The reference a customer's number names: the one not closed, or else
    /// the latest closed one (whose merchant is told of the payment).
    pub async fn find_reference_by_number(
        &self,
        number: &str,
        mode: Mode,
    ) -> Result<Option<PaymentReferenceRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM payment_references WHERE number = $1 AND mode = $2 \
             ORDER BY CASE WHEN status = 'closed' THEN 1 ELSE 0 END, id DESC LIMIT 1",
            crate::payment_references::COLUMNS
        )))
        .bind(number)
        .bind(mode.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref()
            .map(crate::payment_references::from_row)
            .transpose()
    }

    /// Records a customer payment once per rail transaction and credits it:
    /// to `reference` (with its entity's `accounts`) if that is still open,
    /// else to suspense, attributed to `owner` (a closed reference's
    /// merchant) if known.
    pub async fn record_customer_payment(
        &self,
        input: &CustomerPaymentIn,
        target: Option<(PaymentReferenceId, EntityAccounts)>,
        owner: Option<MerchantId>,
        platform: InboundAccounts,
        views: &dyn ObjectViews,
        now: Timestamp,
    ) -> Result<CustomerPaymentOutcome, StoreError> {
        let mut transaction = self.begin_write().await?;
        let mut payment = ReferencePaymentRecord {
            id: ReferencePaymentId::generate(),
            rail: input.rail.clone(),
            rail_transaction_id: input.rail_transaction_id.clone(),
            mode: input.mode,
            merchant_id: owner,
            number: input.number.clone(),
            payment_reference_id: None,
            entity_id: None,
            status: "unmatched".to_owned(),
            amount: input.amount,
            fee_minor: 0,
            reserved_minor: 0,
            overpaid_minor: 0,
            phone: input.phone.clone(),
            payer_name: input.payer_name.clone(),
            inbound_id: input.inbound_id,
            refund_payout_id: None,
            received_at: now,
            updated_at: now,
        };
        let inserted = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO reference_payments ({RPAY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL, $7, $8, $9, \
             0, 0, 0, $10, $11, $12, NULL, $13, $13) ON CONFLICT (rail, rail_transaction_id) DO NOTHING RETURNING id"
        )))
        .bind(payment.id.to_string())
        .bind(payment.rail.clone())
        .bind(payment.rail_transaction_id.clone())
        .bind(payment.mode.as_str())
        .bind(owner.map(|id| id.to_string()))
        .bind(payment.number.clone())
        .bind(payment.status.clone())
        .bind(payment.amount.amount_minor)
        .bind(payment.amount.currency.code())
        .bind(payment.phone.clone())
        .bind(payment.payer_name.clone())
        .bind(payment.inbound_id.to_string())
        .bind(now.unix_ms())
        .fetch_optional(&mut *transaction)
        .await?;
        if inserted.is_none() {
            return Ok(CustomerPaymentOutcome::Duplicate);
        }
        let key = format!("reference_payment:{}", payment.id);
        if let Some((reference_id, accounts)) = target
            && let Some((reference, jobs)) = apply_to_reference_in(
                &mut transaction,
                self.backend(),
                &mut payment,
                reference_id,
                platform.clearing,
                key,
                platform.fees,
                &accounts,
                now,
            )
            .await?
        {
            write_rpay_in(&mut transaction, &payment).await?;
            enqueue_in(&mut transaction, self.backend(), &jobs, now).await?;
            let event = reference_event(views, &reference, &payment, now);
            self.commit_with_events(transaction, &[event]).await?;
            return Ok(CustomerPaymentOutcome::Matched {
                payment,
                reference: Box::new(reference),
            });
        }
        let amount = payment.amount;
        let transfer = NewTransfer::posted(
            format!("reference_payment:{}", payment.id),
            format!(
                "unmatched payment {} to number {}",
                payment.id, payment.number
            ),
            entries(
                amount.currency,
                &[
                    (platform.clearing, -amount.amount_minor),
                    (platform.unmatched, amount.amount_minor),
                ],
            ),
        );
        post_in(&mut transaction, self.backend(), transfer, now).await?;
        let events: Vec<NewEvent> = owner
            .map(|merchant_id| {
                NewEvent::new(
                    Tenant {
                        merchant_id,
                        mode: payment.mode,
                    },
                    "payment.unmatched",
                    payment.id,
                    views.reference_payment(&payment),
                    now,
                )
            })
            .into_iter()
            .collect();
        self.commit_with_events(transaction, &events).await?;
        Ok(CustomerPaymentOutcome::Unmatched(payment))
    }

    /// A reference payment the tenant owns, or (with `claimable`) one
    /// nobody owns yet in the tenant's mode.
    pub async fn find_reference_payment(
        &self,
        tenant: Tenant,
        id: ReferencePaymentId,
        claimable: bool,
    ) -> Result<Option<ReferencePaymentRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RPAY_COLUMNS} FROM reference_payments WHERE id = $1 AND mode = $2 \
             AND (merchant_id = $3 OR ($4 = 1 AND merchant_id IS NULL))"
        )))
        .bind(id.to_string())
        .bind(tenant.mode.as_str())
        .bind(tenant.merchant_id.to_string())
        .bind(i64::from(claimable))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(rpay_from_row).transpose()
    }

    /// Newest first: the tenant's, and with `rail_transaction_id` also the
    /// one nobody owns with that id.
    pub async fn list_reference_payments(
        &self,
        tenant: Tenant,
        filter: &ReferencePaymentFilter,
        page: &PageRequest,
    ) -> Result<Page<ReferencePaymentRecord>, StoreError> {
        let mut sql = Sql::new(
            self.backend(),
            &format!("SELECT {RPAY_COLUMNS} FROM reference_payments WHERE mode = "),
        );
        sql.bind(tenant.mode.as_str());
        match &filter.rail_transaction_id {
            Some(transaction) => {
                sql.push(" AND rail_transaction_id = ")
                    .bind(transaction.clone())
                    .push(" AND (merchant_id IS NULL OR merchant_id = ")
                    .bind(tenant.merchant_id.to_string())
                    .push(")");
            }
            None => {
                sql.push(" AND merchant_id = ")
                    .bind(tenant.merchant_id.to_string());
            }
        }
        if let Some(reference) = filter.payment_reference_id {
            sql.push(" AND payment_reference_id = ")
                .bind(reference.to_string());
        }
        if let Some(status) = &filter.status {
            sql.push(" AND status = ").bind(status.clone());
        }
        if let Some(after) = &page.starting_after {
            sql.push(" AND id < ").bind(after.clone());
        }
        sql.push(" ORDER BY id DESC LIMIT ")
            .bind(i64::from(page.limit) + 1);
        let rows = sql.query().fetch_all(&self.pool).await?;
        let records = rows
            .iter()
            .map(rpay_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(records, page.limit))
    }

    /// Moves an unmatched payment out of suspense onto one of the tenant's
    /// open references, as if it had been paid to it.
    #[allow(clippy::too_many_arguments)]
    pub async fn assign_reference_payment(
        &self,
        tenant: Tenant,
        id: ReferencePaymentId,
        reference_id: PaymentReferenceId,
        accounts: EntityAccounts,
        platform: InboundAccounts,
        views: &dyn ObjectViews,
        now: Timestamp,
    ) -> Result<Result<(ReferencePaymentRecord, PaymentReferenceRecord), AssignError>, StoreError>
    {
        let mut transaction = self.begin_write().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RPAY_COLUMNS} FROM reference_payments WHERE id = $1 AND mode = $2 \
             AND (merchant_id = $3 OR merchant_id IS NULL){}",
            lock_suffix(self.backend())
        )))
        .bind(id.to_string())
        .bind(tenant.mode.as_str())
        .bind(tenant.merchant_id.to_string())
        .fetch_optional(&mut *transaction)
        .await?;
        let Some(mut payment) = row.as_ref().map(rpay_from_row).transpose()? else {
            return Ok(Err(AssignError::NotFound));
        };
        if payment.status != "unmatched" {
            return Ok(Err(AssignError::NotUnmatched));
        }
        let owned = sqlx::query(
            "SELECT status, currency FROM payment_references WHERE id = $1 AND merchant_id = $2 AND mode = $3",
        )
        .bind(reference_id.to_string())
        .bind(tenant.merchant_id.to_string())
        .bind(tenant.mode.as_str())
        .fetch_optional(&mut *transaction)
        .await?;
        let Some(owned) = owned else {
            return Ok(Err(AssignError::ReferenceNotFound));
        };
        let currency: String = owned.try_get("currency")?;
        if currency != payment.amount.currency.code() {
            return Ok(Err(AssignError::CurrencyMismatch));
        }
        let key = format!("reference_payment:{}:assigned", payment.id);
        let Some((reference, jobs)) = apply_to_reference_in(
            &mut transaction,
            self.backend(),
            &mut payment,
            reference_id,
            platform.unmatched,
            key,
            platform.fees,
            &accounts,
            now,
        )
        .await?
        else {
            return Ok(Err(AssignError::ReferenceClosed));
        };
        write_rpay_in(&mut transaction, &payment).await?;
        enqueue_in(&mut transaction, self.backend(), &jobs, now).await?;
        let event = reference_event(views, &reference, &payment, now);
        self.commit_with_events(transaction, &[event]).await?;
        Ok(Ok((payment, reference)))
    }

    // ------------------------------------------------------------ entities

    /// An entity by id, whoever's (workers).
    pub async fn find_entity_any(&self, id: EntityId) -> Result<Option<EntityRecord>, StoreError> {
        self.find_row(
            "entities",
            crate::entities::COLUMNS,
            &id.to_string(),
            None,
            crate::entities::from_row,
        )
        .await
    }

    /// An entity's balances in its accounts, and its holds not yet released.
    pub async fn entity_balances(
        &self,
        entity: EntityId,
        accounts: &EntityAccounts,
    ) -> Result<EntityBalances, StoreError> {
        let mut transaction = self.pool.begin().await?;
        let mut balances = [0_i64; 5];
        for (slot, account) in balances.iter_mut().zip([
            accounts.available,
            accounts.reserve,
            accounts.settling,
            accounts.overpayments,
            accounts.debt,
        ]) {
            *slot = balance_in(&mut transaction, account).await?;
        }
        let [
            available_minor,
            reserved_minor,
            settling_minor,
            overpaid_minor,
            debt,
        ] = balances;
        let debt_minor = -debt;
        let rows = sqlx::query(
            "SELECT remaining_minor, release_at_ms FROM reserve_holds WHERE entity_id = $1 \
             AND released_at_ms IS NULL AND remaining_minor > 0 ORDER BY release_at_ms LIMIT 100",
        )
        .bind(entity.to_string())
        .fetch_all(&mut *transaction)
        .await?;
        let holds = rows
            .iter()
            .map(|row| {
                Ok((
                    row.try_get("remaining_minor")?,
                    Timestamp::from_unix_ms(row.try_get("release_at_ms")?),
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(EntityBalances {
            available_minor,
            reserved_minor,
            settling_minor,
            overpaid_minor,
            debt_minor,
            holds,
        })
    }

    /// Wakes an entity at `now` (real time; its test clock's time if it
    /// has one): releases the reserve due, and computes its batch if its
    /// schedule says so, moving its next batch time on with `next_cut`.
    pub async fn tick_entity(
        &self,
        id: EntityId,
        accounts: &EntityAccounts,
        next_cut: &(dyn Fn(&EntityRecord, Timestamp) -> Option<Timestamp> + Sync),
        views: &dyn ObjectViews,
        now: Timestamp,
    ) -> Result<Option<SettlementRecord>, StoreError> {
        let mut transaction = self.begin_write().await?;
        let Some(mut entity) = lock_entity_in(&mut transaction, self.backend(), id).await? else {
            return Ok(None);
        };
        let at = entity_time_in(&mut transaction, &entity, now).await?;
        release_reserve_in(&mut transaction, self.backend(), &entity, accounts, at, now).await?;
        let mut events = Vec::new();
        let mut jobs = Vec::new();
        let mut computed = None;
        if entity.next_settlement_at.is_some_and(|due| due <= at) {
            if let ComputeOutcome::Computed(settlement) = compute_in(
                &mut transaction,
                self.backend(),
                &entity,
                accounts,
                "schedule",
                at,
                now,
            )
            .await?
            {
                events.push(NewEvent::new(
                    settlement.tenant,
                    "settlement.computed",
                    settlement.id,
                    views.settlement(&settlement),
                    now,
                ));
                jobs.push(NewJob::new(SETTLEMENT_SUBMIT_JOB, settlement.id, now).urgent());
                computed = Some(*settlement);
            }
            entity.next_settlement_at = next_cut(&entity, at);
            sqlx::query("UPDATE entities SET next_settlement_at_ms = $1 WHERE id = $2")
                .bind(entity.next_settlement_at.map(Timestamp::unix_ms))
                .bind(entity.id.to_string())
                .execute(&mut *transaction)
                .await?;
            if let Some(next) = entity.next_settlement_at {
                jobs.extend(tick_job(&entity, next));
            }
        }
        enqueue_in(&mut transaction, self.backend(), &jobs, now).await?;
        self.commit_with_events(transaction, &events).await?;
        Ok(computed)
    }

    /// Computes a batch for the entity now (the merchant asked).
    pub async fn settle_entity_now(
        &self,
        tenant: Tenant,
        id: EntityId,
        accounts: &EntityAccounts,
        views: &dyn ObjectViews,
        now: Timestamp,
    ) -> Result<ComputeOutcome, StoreError> {
        let mut transaction = self.begin_write().await?;
        let entity = match lock_entity_in(&mut transaction, self.backend(), id).await? {
            Some(entity) if entity.tenant == tenant => entity,
            _ => return Ok(ComputeOutcome::NotFound),
        };
        let at = entity_time_in(&mut transaction, &entity, now).await?;
        release_reserve_in(&mut transaction, self.backend(), &entity, accounts, at, now).await?;
        let outcome = compute_in(
            &mut transaction,
            self.backend(),
            &entity,
            accounts,
            "manual",
            at,
            now,
        )
        .await?;
        let mut events = Vec::new();
        if let ComputeOutcome::Computed(settlement) = &outcome {
            events.push(NewEvent::new(
                tenant,
                "settlement.computed",
                settlement.id,
                views.settlement(settlement),
                now,
            ));
            let job = NewJob::new(SETTLEMENT_SUBMIT_JOB, settlement.id, now).urgent();
            enqueue_in(&mut transaction, self.backend(), &[job], now).await?;
        }
        self.commit_with_events(transaction, &events).await?;
        Ok(outcome)
    }

    /// Sends a batch's payout: from `computed` (its first attempt) or
    /// `failed` (a retry). The guard on the status and the payout's hold on
    /// the entity's settling money, in one transaction, mean a batch never
    /// has two payouts in flight and is never paid twice. `None`: the
    /// batch was not in `from`.
    pub async fn submit_settlement(
        &self,
        id: SettlementId,
        from: &str,
        payout: &PayoutRecord,
        hold: &NewTransfer,
        jobs: &[NewJob],
        views: &dyn ObjectViews,
    ) -> Result<Option<SettlementRecord>, StoreError> {
        let now = payout.created_at;
        let mut transaction = self.begin_write().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE settlements SET status = 'submitted', payout_id = $1, attempts = attempts + 1, \
             failure_code = NULL, failure_message = NULL, updated_at_ms = $2 WHERE id = $3 AND status = $4 \
             RETURNING {STL_COLUMNS}"
        )))
        .bind(payout.id.clone())
        .bind(now.unix_ms())
        .bind(id.to_string())
        .bind(from)
        .fetch_optional(&mut *transaction)
        .await?;
        let Some(settlement) = row.as_ref().map(settlement_from_row).transpose()? else {
            return Ok(None);
        };
        match insert_payout_in(&mut transaction, self.backend(), payout, hold).await? {
            Ok(Some(_)) => {}
            Ok(None) => return Err(bad("payouts", "id", "a settlement payout id collided")),
            Err(CreatePayoutOutcome::InsufficientBalance) => {
                return Err(bad(
                    "settlements",
                    "amount_minor",
                    "the entity's settling balance does not cover the batch",
                ));
            }
            Err(other) => return Err(bad("payouts", "hold_transfer_id", format!("{other:?}"))),
        }
        enqueue_in(&mut transaction, self.backend(), jobs, now).await?;
        let payout_event = NewEvent::new(
            payout.tenant(),
            "payout.pending",
            &payout.id,
            views.payout(payout),
            now,
        );
        let event = NewEvent::new(
            settlement.tenant,
            "settlement.submitted",
            settlement.id,
            views.settlement(&settlement),
            now,
        );
        self.commit_with_events(transaction, &[payout_event, event])
            .await?;
        Ok(Some(settlement))
    }

    /// Starts refunding a reference payment to the wallet it came from: an
    /// unmatched one whole (it becomes the tenant's, `refunding`), or a
    /// matched one's overpayment. The payout's hold on the money and the
    /// payment's change are one transaction, guarded on the payment having
    /// no refund under way: it is never refunded twice. `None`: it changed.
    pub async fn start_reference_refund(
        &self,
        tenant: Tenant,
        payment: &ReferencePaymentRecord,
        refund: &PayoutRecord,
        hold: &NewTransfer,
        jobs: &[NewJob],
        views: &dyn ObjectViews,
    ) -> Result<Option<ReferencePaymentRecord>, StoreError> {
        let now = refund.created_at;
        let mut transaction = self.begin_write().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE reference_payments SET merchant_id = $1, refund_payout_id = $2, updated_at_ms = $3, \
             status = CASE WHEN status = 'unmatched' THEN 'refunding' ELSE status END \
             WHERE id = $4 AND mode = $5 AND status = $6 AND refund_payout_id IS NULL \
             AND (merchant_id = $1 OR merchant_id IS NULL) RETURNING {RPAY_COLUMNS}"
        )))
        .bind(tenant.merchant_id.to_string())
        .bind(refund.id.clone())
        .bind(now.unix_ms())
        .bind(payment.id.to_string())
        .bind(tenant.mode.as_str())
        .bind(payment.status.clone())
        .fetch_optional(&mut *transaction)
        .await?;
        let Some(updated) = row.as_ref().map(rpay_from_row).transpose()? else {
            return Ok(None);
        };
        match insert_payout_in(&mut transaction, self.backend(), refund, hold).await? {
            Ok(Some(_)) => {}
            Ok(None) => return Err(bad("payouts", "id", "a refund id collided")),
            Err(CreatePayoutOutcome::InsufficientBalance) => return Ok(None),
            Err(other) => return Err(bad("payouts", "hold_transfer_id", format!("{other:?}"))),
        }
        enqueue_in(&mut transaction, self.backend(), jobs, now).await?;
        let event = NewEvent::new(
            tenant,
            "refund.pending",
            &refund.id,
            views.payout(refund),
            now,
        );
        self.commit_with_events(transaction, &[event]).await?;
        Ok(Some(updated))
    }

    /// Follows a reference payment's refund to its end: `refunded`, or (it
    /// failed, the money back where it was) as before, refundable again.
    pub async fn finish_reference_refund(
        &self,
        payout: &PayoutRecord,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let query = match payout.status {
            PayoutStatus::Pending => return Ok(()),
            PayoutStatus::Succeeded => {
                "UPDATE reference_payments SET updated_at_ms = $1, \
                 status = CASE WHEN status = 'refunding' THEN 'refunded' ELSE status END \
                 WHERE refund_payout_id = $2"
            }
            PayoutStatus::Failed => {
                "UPDATE reference_payments SET updated_at_ms = $1, refund_payout_id = NULL, \
                 status = CASE WHEN status = 'refunding' THEN 'unmatched' ELSE status END \
                 WHERE refund_payout_id = $2"
            }
        };
        sqlx::query(query)
            .bind(now.unix_ms())
            .bind(payout.id.clone())
            .execute(&self.writes)
            .await?;
        Ok(())
    }

    /// Follows a batch's payout to its end: `paid`, or `failed` (its money
    /// back in the entity's settling account, waiting for a retry).
    pub async fn finish_settlement(
        &self,
        payout: &PayoutRecord,
        views: &dyn ObjectViews,
        now: Timestamp,
    ) -> Result<Option<SettlementRecord>, StoreError> {
        let (status, paid_at) = match payout.status {
            PayoutStatus::Succeeded => ("paid", Some(now.unix_ms())),
            PayoutStatus::Failed => ("failed", None),
            PayoutStatus::Pending => return Ok(None),
        };
        let mut transaction = self.begin_write().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE settlements SET status = $1, failure_code = $2, failure_message = $3, paid_at_ms = $4, \
             updated_at_ms = $5 WHERE payout_id = $6 AND status = 'submitted' RETURNING {STL_COLUMNS}"
        )))
        .bind(status)
        .bind(payout.failure_code.clone())
        .bind(payout.failure_message.clone())
        .bind(paid_at)
        .bind(now.unix_ms())
        .bind(payout.id.clone())
        .fetch_optional(&mut *transaction)
        .await?;
        let Some(settlement) = row.as_ref().map(settlement_from_row).transpose()? else {
            return Ok(None);
        };
        let event = NewEvent::new(
            settlement.tenant,
            format!("settlement.{status}"),
            settlement.id,
            views.settlement(&settlement),
            now,
        );
        self.commit_with_events(transaction, &[event]).await?;
        Ok(Some(settlement))
    }

    pub async fn find_settlement(
        &self,
        tenant: Option<Tenant>,
        id: SettlementId,
    ) -> Result<Option<SettlementRecord>, StoreError> {
        self.find_row(
            "settlements",
            STL_COLUMNS,
            &id.to_string(),
            tenant,
            settlement_from_row,
        )
        .await
    }

    /// Newest first.
    pub async fn list_settlements(
        &self,
        tenant: Tenant,
        filter: &SettlementFilter,
        page: &PageRequest,
    ) -> Result<Page<SettlementRecord>, StoreError> {
        let conditions = |sql: &mut Sql| {
            if let Some(entity) = filter.entity_id {
                sql.push(" AND entity_id = ").bind(entity.to_string());
            }
            if let Some(status) = &filter.status {
                sql.push(" AND status = ").bind(status.clone());
            }
        };
        self.tenant_page_where(
            tenant,
            "settlements",
            STL_COLUMNS,
            page,
            conditions,
            settlement_from_row,
        )
        .await
    }

    /// The entries a batch settled, oldest first.
    pub async fn settlement_lines(
        &self,
        id: SettlementId,
    ) -> Result<Vec<SettlementLine>, StoreError> {
        let rows = sqlx::query(
            "SELECT settlement_id, transfer_id, position, amount_minor, description, created_at_ms \
             FROM settlement_lines WHERE settlement_id = $1 ORDER BY created_at_ms, transfer_id, position",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(line_from_row).collect()
    }

    /// Every entry of an entity's available account in `[from, to)`, with
    /// the batch that settled it (or, for a batch's own debit, that batch):
    /// the entity's statement for a period.
    pub async fn entity_statement(
        &self,
        available: AccountId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<SettlementLine>, StoreError> {
        let rows = sqlx::query(
            "SELECT COALESCE(l.settlement_id, s.id) AS settlement_id, e.transfer_id, e.position, e.amount_minor, \
             t.description, t.created_at_ms FROM ledger_entries e JOIN ledger_transfers t ON t.id = e.transfer_id \
             LEFT JOIN settlement_lines l ON l.transfer_id = e.transfer_id AND l.position = e.position \
             LEFT JOIN settlements s ON s.transfer_id = e.transfer_id \
             WHERE e.account_id = $1 AND t.state = 'posted' AND t.created_at_ms >= $2 AND t.created_at_ms < $3 \
             ORDER BY t.created_at_ms, e.transfer_id, e.position LIMIT 100000",
        )
        .bind(available.to_string())
        .bind(from.unix_ms())
        .bind(to.unix_ms())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(line_from_row).collect()
    }

    // --------------------------------------------------------- chargebacks

    /// Records a chargeback: from the entity's reserve first (its oldest
    /// holds), then its available balance, the rest carried as its debt.
    pub async fn record_chargeback(
        &self,
        chargeback: &NewChargeback,
        accounts: &EntityAccounts,
        external: AccountId,
        now: Timestamp,
    ) -> Result<ChargebackOutcome, StoreError> {
        let mut transaction = self.begin_write().await?;
        if let Some(key) = &chargeback.idempotency_key {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {CB_COLUMNS} FROM chargebacks WHERE merchant_id = $1 AND mode = $2 AND idempotency_key = $3"
            )))
            .bind(chargeback.tenant.merchant_id.to_string())
            .bind(chargeback.tenant.mode.as_str())
            .bind(key.clone())
            .fetch_optional(&mut *transaction)
            .await?;
            if let Some(row) = row {
                return Ok(ChargebackOutcome::Existing(chargeback_from_row(&row)?));
            }
        }
        let entity =
            match lock_entity_in(&mut transaction, self.backend(), chargeback.entity_id).await? {
                Some(entity) if entity.tenant == chargeback.tenant => entity,
                _ => return Ok(ChargebackOutcome::EntityNotFound),
            };
        let amount = chargeback.amount_minor;
        let reserve = balance_in(&mut transaction, accounts.reserve).await?;
        let available = balance_in(&mut transaction, accounts.available).await?;
        let from_reserve = amount.min(reserve.max(0));
        let from_available = (amount - from_reserve).min(available.max(0));
        let to_debt = amount - from_reserve - from_available;
        let id = ChargebackId::generate();
        let transfer = NewTransfer::posted(
            format!("chargeback:{id}"),
            format!("chargeback {id}: {}", chargeback.reason),
            entries(
                entity.currency,
                &[
                    (accounts.reserve, -from_reserve),
                    (accounts.available, -from_available),
                    (accounts.debt, -to_debt),
                    (external, amount),
                ],
            ),
        );
        let transfer_id = post_in(&mut transaction, self.backend(), transfer, now).await?;
        consume_holds_in(&mut transaction, entity.id, from_reserve).await?;
        let record = ChargebackRecord {
            id,
            tenant: chargeback.tenant,
            entity_id: entity.id,
            amount: Money::new(amount, entity.currency),
            from_reserve_minor: from_reserve,
            from_available_minor: from_available,
            to_debt_minor: to_debt,
            reason: chargeback.reason.clone(),
            reference_payment_id: chargeback.reference_payment_id,
            idempotency_key: chargeback.idempotency_key.clone(),
            transfer_id,
            metadata: chargeback.metadata.clone(),
            created_at: now,
        };
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO chargebacks ({CB_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
             $13, $14, $15)"
        )))
        .bind(record.id.to_string())
        .bind(record.tenant.merchant_id.to_string())
        .bind(record.tenant.mode.as_str())
        .bind(record.entity_id.to_string())
        .bind(record.amount.currency.code())
        .bind(amount)
        .bind(from_reserve)
        .bind(from_available)
        .bind(to_debt)
        .bind(record.reason.clone())
        .bind(record.reference_payment_id.map(|id| id.to_string()))
        .bind(record.idempotency_key.clone())
        .bind(record.transfer_id.clone())
        .bind(record.metadata.clone())
        .bind(now.unix_ms())
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(ChargebackOutcome::Created(record))
    }

    pub async fn find_chargeback(
        &self,
        tenant: Tenant,
        id: ChargebackId,
    ) -> Result<Option<ChargebackRecord>, StoreError> {
        self.find_row(
            "chargebacks",
            CB_COLUMNS,
            &id.to_string(),
            Some(tenant),
            chargeback_from_row,
        )
        .await
    }

    /// Newest first, optionally one entity's.
    pub async fn list_chargebacks(
        &self,
        tenant: Tenant,
        entity: Option<EntityId>,
        page: &PageRequest,
    ) -> Result<Page<ChargebackRecord>, StoreError> {
        let conditions = |sql: &mut Sql| {
            if let Some(entity) = entity {
                sql.push(" AND entity_id = ").bind(entity.to_string());
            }
        };
        self.tenant_page_where(
            tenant,
            "chargebacks",
            CB_COLUMNS,
            page,
            conditions,
            chargeback_from_row,
        )
        .await
    }

    // --------------------------------------------------------- test clocks

    /// The earliest time an entity on the clock needs the worker: its next
    /// batch or the next release of its reserve.
    pub async fn test_clock_next_entity_tick(
        &self,
        id: TestClockId,
    ) -> Result<Option<Timestamp>, StoreError> {
        let row = sqlx::query(
            "SELECT MIN(t) AS next FROM (\
               SELECT next_settlement_at_ms AS t FROM entities WHERE test_clock_id = $1 \
               UNION ALL SELECT h.release_at_ms AS t FROM reserve_holds h JOIN entities e ON e.id = h.entity_id \
               WHERE e.test_clock_id = $1 AND h.released_at_ms IS NULL AND h.remaining_minor > 0) due",
        )
        .bind(id.to_string())
        .fetch_one(&self.pool)
        .await?;
        let next: Option<i64> = row.try_get("next")?;
        Ok(next.map(Timestamp::from_unix_ms))
    }

    /// Entities on the clock with something due by `at`.
    pub async fn test_clock_due_entities(
        &self,
        id: TestClockId,
        at: Timestamp,
    ) -> Result<Vec<EntityId>, StoreError> {
        let rows = sqlx::query(
            "SELECT id FROM entities e WHERE test_clock_id = $1 AND (next_settlement_at_ms <= $2 \
             OR EXISTS (SELECT 1 FROM reserve_holds h WHERE h.entity_id = e.id AND h.released_at_ms IS NULL \
             AND h.remaining_minor > 0 AND h.release_at_ms <= $2)) ORDER BY id",
        )
        .bind(id.to_string())
        .bind(at.unix_ms())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("id")?;
                EntityId::parse(&id).map_err(|e| bad("entities", "id", e))
            })
            .collect()
    }

    /// Batches of the clock's entities still on their way.
    pub async fn test_clock_settlements_in_flight(
        &self,
        id: TestClockId,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM settlements s JOIN entities e ON e.id = s.entity_id \
             WHERE e.test_clock_id = $1 AND s.status IN ('computed', 'submitted')",
        )
        .bind(id.to_string())
        .fetch_one(&self.pool)
        .await?;
        let n: i64 = row.try_get("n")?;
        Ok(n > 0)
    }
}

fn line_from_row(row: &AnyRow) -> Result<SettlementLine, StoreError> {
    Ok(SettlementLine {
        settlement_id: row
            .try_get::<Option<String>, _>("settlement_id")?
            .map(|id| SettlementId::parse(&id))
            .transpose()
            .map_err(|e| bad("settlement_lines", "settlement_id", e))?,
        transfer_id: row.try_get("transfer_id")?,
        position: row.try_get("position")?,
        amount_minor: row.try_get("amount_minor")?,
        description: row.try_get("description")?,
        created_at: Timestamp::from_unix_ms(row.try_get("created_at_ms")?),
    })
}

/// Releases the entity's holds due by `at`: reserve to available.
async fn release_reserve_in(
    transaction: &mut Transaction,
    backend: Backend,
    entity: &EntityRecord,
    accounts: &EntityAccounts,
    at: Timestamp,
    now: Timestamp,
) -> Result<(), StoreError> {
    let rows = sqlx::query(
        "SELECT id, remaining_minor FROM reserve_holds WHERE entity_id = $1 AND released_at_ms IS NULL \
         AND release_at_ms <= $2 ORDER BY release_at_ms, id",
    )
    .bind(entity.id.to_string())
    .bind(at.unix_ms())
    .fetch_all(&mut **transaction)
    .await?;
    for row in rows {
        let id: String = row.try_get("id")?;
        let remaining: i64 = row.try_get("remaining_minor")?;
        if remaining > 0 {
            let transfer = NewTransfer::posted(
                format!("reserve_release:{id}"),
                format!("reserve {id} released"),
                entries(
                    entity.currency,
                    &[
                        (accounts.reserve, -remaining),
                        (accounts.available, remaining),
                    ],
                ),
            );
            post_in(transaction, backend, transfer, now).await?;
        }
        sqlx::query(
            "UPDATE reserve_holds SET remaining_minor = 0, released_at_ms = $1 WHERE id = $2",
        )
        .bind(at.unix_ms())
        .bind(id)
        .execute(&mut **transaction)
        .await?;
    }
    Ok(())
}

/// Takes `amount` from the entity's holds, oldest first, as a chargeback
/// took it from the reserve: what is released later is what is left.
async fn consume_holds_in(
    transaction: &mut Transaction,
    entity: EntityId,
    mut amount: i64,
) -> Result<(), StoreError> {
    if amount <= 0 {
        return Ok(());
    }
    let rows = sqlx::query(
        "SELECT id, remaining_minor FROM reserve_holds WHERE entity_id = $1 AND released_at_ms IS NULL \
         AND remaining_minor > 0 ORDER BY release_at_ms, id",
    )
    .bind(entity.to_string())
    .fetch_all(&mut **transaction)
    .await?;
    for row in rows {
        if amount == 0 {
            break;
        }
        let id: String = row.try_get("id")?;
        let remaining: i64 = row.try_get("remaining_minor")?;
        let taken = remaining.min(amount);
        amount -= taken;
        sqlx::query(
            "UPDATE reserve_holds SET remaining_minor = remaining_minor - $1 WHERE id = $2",
        )
        .bind(taken)
        .bind(id)
        .execute(&mut **transaction)
        .await?;
    }
    Ok(())
}

/// Computes a batch for a locked entity at its time `at`: recovers its
/// debt from its available balance, then settles every entry of that
/// account not yet settled, if they come to at least its minimum.
async fn compute_in(
    transaction: &mut Transaction,
    backend: Backend,
    entity: &EntityRecord,
    accounts: &EntityAccounts,
    triggered_by: &str,
    at: Timestamp,
    now: Timestamp,
) -> Result<ComputeOutcome, StoreError> {
    if entity.tenant.mode.is_live() && entity.kyc_status != "approved" {
        return Ok(ComputeOutcome::NotApproved);
    }
    let id = SettlementId::generate();
    let owed = -balance_in(transaction, accounts.debt).await?;
    let available = balance_in(transaction, accounts.available).await?;
    let recovered = owed.min(available);
    if recovered > 0 {
        let transfer = NewTransfer::posted(
            format!("debt_recovery:{id}"),
            format!("debt recovered from entity {}", entity.id),
            entries(
                entity.currency,
                &[(accounts.available, -recovered), (accounts.debt, recovered)],
            ),
        );
        post_in(transaction, backend, transfer, now).await?;
    }
    let rows = sqlx::query(
        "SELECT e.transfer_id, e.position, e.amount_minor, t.description, t.created_at_ms \
         FROM ledger_entries e JOIN ledger_transfers t ON t.id = e.transfer_id \
         WHERE e.account_id = $1 AND t.state = 'posted' \
         AND NOT EXISTS (SELECT 1 FROM settlement_lines l WHERE l.transfer_id = e.transfer_id AND l.position = e.position) \
         AND NOT EXISTS (SELECT 1 FROM settlements s WHERE s.transfer_id = e.transfer_id) \
         ORDER BY t.created_at_ms, e.transfer_id, e.position",
    )
    .bind(accounts.available.to_string())
    .fetch_all(&mut **transaction)
    .await?;
    let lines = rows
        .iter()
        .map(|row| {
            Ok(SettlementLine {
                settlement_id: Some(id),
                transfer_id: row.try_get("transfer_id")?,
                position: row.try_get("position")?,
                amount_minor: row.try_get("amount_minor")?,
                description: row.try_get("description")?,
                created_at: Timestamp::from_unix_ms(row.try_get("created_at_ms")?),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let amount: i64 = lines.iter().map(|line| line.amount_minor).sum();
    if amount <= 0 || amount < entity.payout_min_minor {
        return Ok(ComputeOutcome::BelowMinimum {
            available_minor: amount.max(0),
        });
    }
    let transfer = NewTransfer::posted(
        format!("settlement:{id}"),
        format!("settlement {id}"),
        entries(
            entity.currency,
            &[(accounts.available, -amount), (accounts.settling, amount)],
        ),
    );
    let transfer_id = post_in(transaction, backend, transfer, now).await?;
    let previous =
        sqlx::query("SELECT MAX(period_end_ms) AS previous FROM settlements WHERE entity_id = $1")
            .bind(entity.id.to_string())
            .fetch_one(&mut **transaction)
            .await?;
    let period_start: Option<i64> = previous.try_get("previous")?;
    let settlement = SettlementRecord {
        id,
        tenant: entity.tenant,
        entity_id: entity.id,
        amount: Money::new(amount, entity.currency),
        status: "computed".to_owned(),
        triggered_by: triggered_by.to_owned(),
        transfer_id: transfer_id.clone(),
        payout_id: None,
        attempts: 0,
        failure_code: None,
        failure_message: None,
        period_start: period_start.map(Timestamp::from_unix_ms),
        period_end: at,
        created_at: now,
        updated_at: now,
        paid_at: None,
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO settlements ({STL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, 0, NULL, NULL, \
         $10, $11, $12, $12, NULL)"
    )))
    .bind(id.to_string())
    .bind(entity.tenant.merchant_id.to_string())
    .bind(entity.tenant.mode.as_str())
    .bind(entity.id.to_string())
    .bind(entity.currency.code())
    .bind(amount)
    .bind("computed")
    .bind(triggered_by)
    .bind(transfer_id)
    .bind(period_start)
    .bind(at.unix_ms())
    .bind(now.unix_ms())
    .execute(&mut **transaction)
    .await?;
    for chunk in lines.chunks(1_000) {
        let mut sql = Sql::new(
            backend,
            "INSERT INTO settlement_lines (settlement_id, transfer_id, position, amount_minor, description, \
             created_at_ms) VALUES ",
        );
        sql.bind_rows(chunk.iter().map(|line| {
            vec![
                id.to_string().into(),
                line.transfer_id.clone().into(),
                line.position.into(),
                line.amount_minor.into(),
                line.description.clone().into(),
                line.created_at.unix_ms().into(),
            ]
        }));
        sql.query().execute(&mut **transaction).await?;
    }
    Ok(ComputeOutcome::Computed(Box::new(settlement)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use malipo_core::FeePayer;

    fn reference(expected: i64, fee: i64, paid: i64, fee_paid: i64) -> PaymentReferenceRecord {
        PaymentReferenceRecord {
            id: PaymentReferenceId::generate(),
            tenant: Tenant {
                merchant_id: MerchantId::generate(),
                mode: Mode::Test,
            },
            entity_id: EntityId::generate(),
            number: "123456780".to_owned(),
            name: "n".to_owned(),
            memo: String::new(),
            currency: Currency::TZS,
            merchant_amount_minor: expected - fee,
            fee_minor: fee,
            fee_payer: FeePayer::Customer,
            expected_total_minor: expected,
            paid_minor: paid,
            fee_paid_minor: fee_paid,
            overpaid_minor: 0,
            status: "open".to_owned(),
            idempotency_key: None,
            metadata: "{}".to_owned(),
            created_at: Timestamp::from_unix_ms(0),
            updated_at: Timestamp::from_unix_ms(0),
            closed_at: None,
        }
    }

    #[test]
    fn the_fee_comes_first_then_the_reserve_then_the_rest() {
        let split = split_payment(101_000, &reference(101_000, 1_000, 0, 0), 1_000);
        assert_eq!(
            split,
            PaymentSplit {
                fee: 1_000,
                overpaid: 0,
                reserve: 10_000,
                available: 90_000
            }
        );
    }

    #[test]
    fn a_second_part_pays_no_fee_twice_and_the_excess_is_held() {
        let split = split_payment(60_000, &reference(101_000, 1_000, 51_000, 1_000), 0);
        assert_eq!(split.fee, 0);
        assert_eq!(split.overpaid, 10_000);
        assert_eq!(split.available, 50_000);
        let tiny = split_payment(500, &reference(101_000, 1_000, 0, 0), 0);
        assert_eq!((tiny.fee, tiny.available), (500, 0));
    }

    #[test]
    fn a_paid_reference_takes_everything_as_overpayment() {
        let split = split_payment(5_000, &reference(101_000, 1_000, 101_000, 1_000), 2_500);
        assert_eq!(
            split,
            PaymentSplit {
                fee: 0,
                overpaid: 5_000,
                reserve: 0,
                available: 0
            }
        );
    }
}
