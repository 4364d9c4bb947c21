//! Buy now, pay later: checkouts, plans, installments, the payments
//! applied to plans, merchants' credit rules and sandbox test clocks.
//!
//! A plan changes through [`Store::update_plan`]: the plan and its
//! installments are read under a lock, changed in memory by the caller's
//! rules, and written back with the ledger transfers, jobs and events the
//! change causes, in one transaction.

use malipo_core::{
    CheckoutId, Currency, MerchantId, Mode, Money, PaymentId, PlanId, TestClockId, Timestamp,
};
use malipo_ledger::{LedgerError, NewTransfer};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::events::NewEvent;
use crate::jobs::{NewJob, enqueue_in};
use crate::ledger::post_transfers_in;
use crate::sql::{Sql, Value};
use crate::{Backend, Page, PageRequest, Store, StoreError, Tenant};

type Transaction = sqlx::Transaction<'static, sqlx::Any>;

fn bad(table: &'static str, column: &'static str, reason: impl ToString) -> StoreError {
    StoreError::corrupt(table, column, reason)
}

fn merchant(row: &AnyRow, table: &'static str) -> Result<(MerchantId, Mode), StoreError> {
    let merchant_id: String = row.try_get("merchant_id")?;
    let mode: String = row.try_get("mode")?;
    Ok((
        MerchantId::parse(&merchant_id).map_err(|e| bad(table, "merchant_id", e))?,
        Mode::parse(&mode).ok_or_else(|| bad(table, "mode", &mode))?,
    ))
}

fn opt_ms(row: &AnyRow, column: &str) -> Result<Option<Timestamp>, StoreError> {
    let value: Option<i64> = row.try_get(column)?;
    Ok(value.map(Timestamp::from_unix_ms))
}

fn ms(row: &AnyRow, column: &str) -> Result<Timestamp, StoreError> {
    Ok(Timestamp::from_unix_ms(row.try_get(column)?))
}

// ---------------------------------------------------------------- test clocks

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestClockRecord {
    pub id: TestClockId,
    pub merchant_id: MerchantId,
    pub name: String,
    pub frozen_time: Timestamp,
    pub target_time: Timestamp,
    /// `ready` or `advancing`.
    pub status: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

const CLOCK_COLUMNS: &str = "id, merchant_id, mode, name, frozen_time_ms, target_time_ms, status, created_at_ms, updated_at_ms";

fn clock_from_row(row: &AnyRow) -> Result<TestClockRecord, StoreError> {
    let id: String = row.try_get("id")?;
    let (merchant_id, _) = merchant(row, "test_clocks")?;
    Ok(TestClockRecord {
        id: TestClockId::parse(&id).map_err(|e| bad("test_clocks", "id", e))?,
        merchant_id,
        name: row.try_get("name")?,
        frozen_time: ms(row, "frozen_time_ms")?,
        target_time: ms(row, "target_time_ms")?,
        status: row.try_get("status")?,
        created_at: ms(row, "created_at_ms")?,
        updated_at: ms(row, "updated_at_ms")?,
    })
}

// ------------------------------------------------------------------ checkouts

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutRecord {
    pub id: CheckoutId,
    pub merchant_id: MerchantId,
    pub mode: Mode,
    /// `open`, `pending_approval`, `completed`, `declined`, `expired`.
    pub status: String,
    /// `till` or `online`.
    pub channel: String,
    pub customer_phone: Option<String>,
    pub amount: Money,
    /// JSON array of the product ids offered.
    pub plan_products: String,
    pub plan_product: Option<String>,
    /// The chosen product (terms and policies) as JSON.
    pub product: Option<String>,
    pub apply_inflation: bool,
    pub time_zone: String,
    pub start_date: Option<String>,
    /// The schedule (JSON), once a product is chosen.
    pub schedule: Option<String>,
    pub merchant_reference: Option<String>,
    pub request_fingerprint: String,
    pub description: String,
    pub metadata: String,
    pub items: String,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
    pub deposit_payment_id: Option<PaymentId>,
    pub plan_id: Option<PlanId>,
    pub decline_code: Option<String>,
    pub decline_message: Option<String>,
    pub test_clock_id: Option<TestClockId>,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub completed_at: Option<Timestamp>,
}

impl CheckoutRecord {
    pub fn tenant(&self) -> Tenant {
        Tenant {
            merchant_id: self.merchant_id,
            mode: self.mode,
        }
    }
}

const CHECKOUT_COLUMNS: &str = "id, merchant_id, mode, status, channel, customer_phone, amount_minor, currency, \
     plan_products, plan_product, product, apply_inflation, time_zone, start_date, schedule, merchant_reference, \
     request_fingerprint, description, metadata, items, success_url, cancel_url, deposit_payment_id, plan_id, \
     decline_code, decline_message, test_clock_id, expires_at_ms, created_at_ms, updated_at_ms, completed_at_ms";

fn checkout_values(c: &CheckoutRecord) -> Vec<Value> {
    vec![
        Value::from(c.id.to_string()),
        Value::from(c.merchant_id.to_string()),
        Value::from(c.mode.as_str()),
        Value::from(c.status.clone()),
        Value::from(c.channel.clone()),
        Value::from(c.customer_phone.clone()),
        Value::from(c.amount.amount_minor),
        Value::from(c.amount.currency.code()),
        Value::from(c.plan_products.clone()),
        Value::from(c.plan_product.clone()),
        Value::from(c.product.clone()),
        Value::from(i64::from(c.apply_inflation)),
        Value::from(c.time_zone.clone()),
        Value::from(c.start_date.clone()),
        Value::from(c.schedule.clone()),
        Value::from(c.merchant_reference.clone()),
        Value::from(c.request_fingerprint.clone()),
        Value::from(c.description.clone()),
        Value::from(c.metadata.clone()),
        Value::from(c.items.clone()),
        Value::from(c.success_url.clone()),
        Value::from(c.cancel_url.clone()),
        Value::from(c.deposit_payment_id.map(|id| id.to_string())),
        Value::from(c.plan_id.map(|id| id.to_string())),
        Value::from(c.decline_code.clone()),
        Value::from(c.decline_message.clone()),
        Value::from(c.test_clock_id.map(|id| id.to_string())),
        Value::from(c.expires_at.unix_ms()),
        Value::from(c.created_at.unix_ms()),
        Value::from(c.updated_at.unix_ms()),
        Value::from(c.completed_at.map(Timestamp::unix_ms)),
    ]
}

fn checkout_from_row(row: &AnyRow) -> Result<CheckoutRecord, StoreError> {
    const T: &str = "checkouts";
    let id: String = row.try_get("id")?;
    let (merchant_id, mode) = merchant(row, T)?;
    let currency: String = row.try_get("currency")?;
    let deposit: Option<String> = row.try_get("deposit_payment_id")?;
    let plan: Option<String> = row.try_get("plan_id")?;
    let clock: Option<String> = row.try_get("test_clock_id")?;
    let apply_inflation: i64 = row.try_get("apply_inflation")?;
    Ok(CheckoutRecord {
        id: CheckoutId::parse(&id).map_err(|e| bad(T, "id", e))?,
        merchant_id,
        mode,
        status: row.try_get("status")?,
        channel: row.try_get("channel")?,
        customer_phone: row.try_get("customer_phone")?,
        amount: Money::new(
            row.try_get("amount_minor")?,
            Currency::parse(&currency).map_err(|e| bad(T, "currency", e))?,
        ),
        plan_products: row.try_get("plan_products")?,
        plan_product: row.try_get("plan_product")?,
        product: row.try_get("product")?,
        apply_inflation: apply_inflation != 0,
        time_zone: row.try_get("time_zone")?,
        start_date: row.try_get("start_date")?,
        schedule: row.try_get("schedule")?,
        merchant_reference: row.try_get("merchant_reference")?,
        request_fingerprint: row.try_get("request_fingerprint")?,
        description: row.try_get("description")?,
        metadata: row.try_get("metadata")?,
        items: row.try_get("items")?,
        success_url: row.try_get("success_url")?,
        cancel_url: row.try_get("cancel_url")?,
        deposit_payment_id: deposit
            .map(|id| PaymentId::parse(&id).map_err(|e| bad(T, "deposit_payment_id", e)))
            .transpose()?,
        plan_id: plan
            .map(|id| PlanId::parse(&id).map_err(|e| bad(T, "plan_id", e)))
            .transpose()?,
        decline_code: row.try_get("decline_code")?,
        decline_message: row.try_get("decline_message")?,
        test_clock_id: clock
            .map(|id| TestClockId::parse(&id).map_err(|e| bad(T, "test_clock_id", e)))
            .transpose()?,
        expires_at: ms(row, "expires_at_ms")?,
        created_at: ms(row, "created_at_ms")?,
        updated_at: ms(row, "updated_at_ms")?,
        completed_at: opt_ms(row, "completed_at_ms")?,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateCheckoutOutcome {
    Created(CheckoutRecord),
    /// The same merchant reference with the same request.
    Existing(CheckoutRecord),
    /// The same merchant reference with a different request.
    ReferenceConflict(CheckoutRecord),
    /// Another open plan or pending checkout of the customer came first.
    ActivePlanExists,
}

// ---------------------------------------------------------------------- plans

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRecord {
    pub id: PlanId,
    pub merchant_id: MerchantId,
    pub mode: Mode,
    pub checkout_id: CheckoutId,
    /// `active`, `delinquent`, `completed`, `defaulted`, `cancelled`.
    pub status: String,
    pub customer_phone: String,
    pub currency: Currency,
    pub rail: String,
    /// `upfront` or `as_collected`.
    pub funding: String,
    pub plan_product: String,
    /// Terms and policies (JSON), as the checkout fixed them.
    pub product: String,
    pub time_zone: String,
    pub start_date: String,
    pub amount_minor: i64,
    pub deposit_minor: i64,
    pub financed_minor: i64,
    pub total_payable_minor: i64,
    pub paid_minor: i64,
    pub late_fees_minor: i64,
    pub overpaid_minor: i64,
    pub overdue_since: Option<String>,
    pub metadata: String,
    pub test_clock_id: Option<TestClockId>,
    pub next_tick_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub completed_at: Option<Timestamp>,
}

impl PlanRecord {
    pub fn tenant(&self) -> Tenant {
        Tenant {
            merchant_id: self.merchant_id,
            mode: self.mode,
        }
    }
}

const PLAN_COLUMNS: &str = "id, merchant_id, mode, checkout_id, status, customer_phone, currency, rail, funding, \
     plan_product, product, time_zone, start_date, amount_minor, deposit_minor, financed_minor, total_payable_minor, \
     paid_minor, late_fees_minor, overpaid_minor, overdue_since, metadata, test_clock_id, next_tick_at_ms, \
     created_at_ms, updated_at_ms, completed_at_ms";

fn plan_values(p: &PlanRecord) -> Vec<Value> {
    vec![
        Value::from(p.id.to_string()),
        Value::from(p.merchant_id.to_string()),
        Value::from(p.mode.as_str()),
        Value::from(p.checkout_id.to_string()),
        Value::from(p.status.clone()),
        Value::from(p.customer_phone.clone()),
        Value::from(p.currency.code()),
        Value::from(p.rail.clone()),
        Value::from(p.funding.clone()),
        Value::from(p.plan_product.clone()),
        Value::from(p.product.clone()),
        Value::from(p.time_zone.clone()),
        Value::from(p.start_date.clone()),
        Value::from(p.amount_minor),
        Value::from(p.deposit_minor),
        Value::from(p.financed_minor),
        Value::from(p.total_payable_minor),
        Value::from(p.paid_minor),
        Value::from(p.late_fees_minor),
        Value::from(p.overpaid_minor),
        Value::from(p.overdue_since.clone()),
        Value::from(p.metadata.clone()),
        Value::from(p.test_clock_id.map(|id| id.to_string())),
        Value::from(p.next_tick_at.map(Timestamp::unix_ms)),
        Value::from(p.created_at.unix_ms()),
        Value::from(p.updated_at.unix_ms()),
        Value::from(p.completed_at.map(Timestamp::unix_ms)),
    ]
}

fn plan_from_row(row: &AnyRow) -> Result<PlanRecord, StoreError> {
    const T: &str = "plans";
    let id: String = row.try_get("id")?;
    let (merchant_id, mode) = merchant(row, T)?;
    let checkout: String = row.try_get("checkout_id")?;
    let currency: String = row.try_get("currency")?;
    let clock: Option<String> = row.try_get("test_clock_id")?;
    Ok(PlanRecord {
        id: PlanId::parse(&id).map_err(|e| bad(T, "id", e))?,
        merchant_id,
        mode,
        checkout_id: CheckoutId::parse(&checkout).map_err(|e| bad(T, "checkout_id", e))?,
        status: row.try_get("status")?,
        customer_phone: row.try_get("customer_phone")?,
        currency: Currency::parse(&currency).map_err(|e| bad(T, "currency", e))?,
        rail: row.try_get("rail")?,
        funding: row.try_get("funding")?,
        plan_product: row.try_get("plan_product")?,
        product: row.try_get("product")?,
        time_zone: row.try_get("time_zone")?,
        start_date: row.try_get("start_date")?,
        amount_minor: row.try_get("amount_minor")?,
        deposit_minor: row.try_get("deposit_minor")?,
        financed_minor: row.try_get("financed_minor")?,
        total_payable_minor: row.try_get("total_payable_minor")?,
        paid_minor: row.try_get("paid_minor")?,
        late_fees_minor: row.try_get("late_fees_minor")?,
        overpaid_minor: row.try_get("overpaid_minor")?,
        overdue_since: row.try_get("overdue_since")?,
        metadata: row.try_get("metadata")?,
        test_clock_id: clock
            .map(|id| TestClockId::parse(&id).map_err(|e| bad(T, "test_clock_id", e)))
            .transpose()?,
        next_tick_at: opt_ms(row, "next_tick_at_ms")?,
        created_at: ms(row, "created_at_ms")?,
        updated_at: ms(row, "updated_at_ms")?,
        completed_at: opt_ms(row, "completed_at_ms")?,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallmentRecord {
    pub plan_id: PlanId,
    pub number: i64,
    /// `YYYY-MM-DD` in the plan's time zone.
    pub due_date: String,
    /// When automatic collection starts.
    pub due_at: Timestamp,
    pub amount_minor: i64,
    pub principal_minor: i64,
    pub interest_minor: i64,
    pub fee_minor: i64,
    pub inflation_minor: i64,
    pub late_fee_minor: i64,
    pub paid_minor: i64,
    /// `scheduled`, `processing`, `paid`, `failed`, `overdue`,
    /// `written_off`, `cancelled`.
    pub status: String,
    /// Automatic collection attempts; attempt `n` of installment `k` is the
    /// payment with merchant reference `plan_…:k:n`.
    pub attempts: i64,
    pub next_attempt_at: Option<Timestamp>,
    pub failure_code: Option<String>,
    /// When it went past its grace days unpaid.
    pub overdue_at: Option<Timestamp>,
    pub paid_at: Option<Timestamp>,
}

impl InstallmentRecord {
    /// What is still owed on it, late fee included.
    pub fn outstanding_minor(&self) -> i64 {
        (self.amount_minor + self.late_fee_minor - self.paid_minor).max(0)
    }
}

const INSTALLMENT_COLUMNS: &str = "plan_id, number, due_date, due_at_ms, amount_minor, principal_minor, \
     interest_minor, fee_minor, inflation_minor, late_fee_minor, paid_minor, status, attempts, \
     next_attempt_at_ms, failure_code, overdue_at_ms, paid_at_ms";

fn installment_values(i: &InstallmentRecord) -> Vec<Value> {
    vec![
        Value::from(i.plan_id.to_string()),
        Value::from(i.number),
        Value::from(i.due_date.clone()),
        Value::from(i.due_at.unix_ms()),
        Value::from(i.amount_minor),
        Value::from(i.principal_minor),
        Value::from(i.interest_minor),
        Value::from(i.fee_minor),
        Value::from(i.inflation_minor),
        Value::from(i.late_fee_minor),
        Value::from(i.paid_minor),
        Value::from(i.status.clone()),
        Value::from(i.attempts),
        Value::from(i.next_attempt_at.map(Timestamp::unix_ms)),
        Value::from(i.failure_code.clone()),
        Value::from(i.overdue_at.map(Timestamp::unix_ms)),
        Value::from(i.paid_at.map(Timestamp::unix_ms)),
    ]
}

fn installment_from_row(row: &AnyRow) -> Result<InstallmentRecord, StoreError> {
    const T: &str = "installments";
    let plan: String = row.try_get("plan_id")?;
    Ok(InstallmentRecord {
        plan_id: PlanId::parse(&plan).map_err(|e| bad(T, "plan_id", e))?,
        number: row.try_get("number")?,
        due_date: row.try_get("due_date")?,
        due_at: ms(row, "due_at_ms")?,
        amount_minor: row.try_get("amount_minor")?,
        principal_minor: row.try_get("principal_minor")?,
        interest_minor: row.try_get("interest_minor")?,
        fee_minor: row.try_get("fee_minor")?,
        inflation_minor: row.try_get("inflation_minor")?,
        late_fee_minor: row.try_get("late_fee_minor")?,
        paid_minor: row.try_get("paid_minor")?,
        status: row.try_get("status")?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: opt_ms(row, "next_attempt_at_ms")?,
        failure_code: row.try_get("failure_code")?,
        overdue_at: opt_ms(row, "overdue_at_ms")?,
        paid_at: opt_ms(row, "paid_at_ms")?,
    })
}

/// A payment applied to a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanPaymentRecord {
    pub payment_id: PaymentId,
    pub plan_id: PlanId,
    pub amount_minor: i64,
    /// The part that repaid principal (the rest was interest and fees).
    pub principal_minor: i64,
    /// `[[installment number, amount], …]`.
    pub allocation: String,
    pub applied_at: Timestamp,
}

const PLAN_PAYMENT_COLUMNS: &str =
    "payment_id, plan_id, amount_minor, principal_minor, allocation, applied_at_ms";

fn plan_payment_from_row(row: &AnyRow) -> Result<PlanPaymentRecord, StoreError> {
    const T: &str = "plan_payments";
    let payment: String = row.try_get("payment_id")?;
    let plan: String = row.try_get("plan_id")?;
    Ok(PlanPaymentRecord {
        payment_id: PaymentId::parse(&payment).map_err(|e| bad(T, "payment_id", e))?,
        plan_id: PlanId::parse(&plan).map_err(|e| bad(T, "plan_id", e))?,
        amount_minor: row.try_get("amount_minor")?,
        principal_minor: row.try_get("principal_minor")?,
        allocation: row.try_get("allocation")?,
        applied_at: ms(row, "applied_at_ms")?,
    })
}

/// A plan with everything its rules read: what [`Store::update_plan`]
/// hands its caller to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanState {
    pub plan: PlanRecord,
    /// In schedule order.
    pub installments: Vec<InstallmentRecord>,
    /// Oldest first.
    pub payments: Vec<PlanPaymentRecord>,
}

/// What a change of a plan causes besides the change itself.
#[derive(Debug, Default)]
pub struct PlanEffects {
    pub applied_payments: Vec<PlanPaymentRecord>,
    pub transfers: Vec<NewTransfer>,
    pub jobs: Vec<NewJob>,
    pub events: Vec<NewEvent>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanWriteError {
    #[error("no such plan")]
    NotFound,
    #[error("the ledger refused the transfer: {0}")]
    Refused(LedgerError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for PlanWriteError {
    fn from(error: sqlx::Error) -> Self {
        PlanWriteError::Store(StoreError::Database(error))
    }
}

/// Filters for a merchant's plan list.
#[derive(Debug, Clone, Default)]
pub struct PlanFilter {
    pub status: Option<String>,
    pub customer_phone: Option<String>,
    /// Plans whose oldest overdue installment fell due in this range of
    /// dates (`YYYY-MM-DD`, inclusive).
    pub overdue_since: Option<(String, String)>,
    /// Only plans with nothing overdue.
    pub current: bool,
    pub test_clock_id: Option<TestClockId>,
}

/// A customer's current credit with merchants: what the credit rules count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerExposure {
    /// Active or delinquent plans, and checkouts waiting for approval.
    pub open_plans: i64,
    /// Financed amounts of those plans, in `currency`.
    pub financed_minor: i64,
}

const EXPOSURE_SQL: &str = "SELECT \
       (SELECT COUNT(*) FROM plans WHERE customer_phone = $1 AND mode = $2 \
          AND status IN ('active', 'delinquent') AND (CAST($3 AS TEXT) IS NULL OR merchant_id = $3)) \
     + (SELECT COUNT(*) FROM checkouts WHERE customer_phone = $1 AND mode = $2 \
          AND status = 'pending_approval' AND (CAST($3 AS TEXT) IS NULL OR merchant_id = $3)) \
          AS open_plans, \
       (SELECT CAST(COALESCE(SUM(financed_minor), 0) AS BIGINT) FROM plans \
          WHERE customer_phone = $1 AND mode = $2 AND status IN ('active', 'delinquent') \
          AND currency = $4 AND (CAST($3 AS TEXT) IS NULL OR merchant_id = $3)) AS financed";

/// A customer's open plans and pending checkouts (see
/// [`Store::customer_exposure`]), to run on a pool or in a transaction.
fn exposure_query(
    mode: Mode,
    phone: &str,
    merchant_id: Option<MerchantId>,
    currency: Currency,
) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
    sqlx::query(EXPOSURE_SQL)
        .bind(phone.to_owned())
        .bind(mode.as_str())
        .bind(merchant_id.map(|id| id.to_string()))
        .bind(currency.code())
}

/// A plan's installments (in schedule order) and applied payments (oldest
/// first), read in the caller's transaction.
async fn plan_rows_in(
    transaction: &mut Transaction,
    id: PlanId,
) -> Result<(Vec<InstallmentRecord>, Vec<PlanPaymentRecord>), StoreError> {
    let installments = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {INSTALLMENT_COLUMNS} FROM installments WHERE plan_id = $1 ORDER BY number"
    )))
    .bind(id.to_string())
    .fetch_all(&mut **transaction)
    .await?
    .iter()
    .map(installment_from_row)
    .collect::<Result<Vec<_>, _>>()?;
    let payments = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {PLAN_PAYMENT_COLUMNS} FROM plan_payments WHERE plan_id = $1 \
         ORDER BY applied_at_ms, payment_id"
    )))
    .bind(id.to_string())
    .fetch_all(&mut **transaction)
    .await?
    .iter()
    .map(plan_payment_from_row)
    .collect::<Result<Vec<_>, _>>()?;
    Ok((installments, payments))
}

async fn lock_plan(
    transaction: &mut Transaction,
    backend: Backend,
    id: PlanId,
) -> Result<Option<PlanRecord>, StoreError> {
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {PLAN_COLUMNS} FROM plans WHERE id = $1{lock}"
    )))
    .bind(id.to_string())
    .fetch_optional(&mut **transaction)
    .await?;
    row.as_ref().map(plan_from_row).transpose()
}

async fn insert_rows(
    transaction: &mut Transaction,
    backend: Backend,
    table: &str,
    columns: &str,
    rows: Vec<Vec<Value>>,
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let width = rows[0].len();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<Value>> = rows
            .by_ref()
            .take(crate::sql::PLACEHOLDERS_MAX / width)
            .collect();
        let mut sql = Sql::new(backend, &format!("INSERT INTO {table} ({columns}) VALUES "));
        sql.bind_rows(chunk);
        sql.query().execute(&mut **transaction).await?;
    }
    Ok(())
}

/// Writes a plan's mutable columns.
async fn save_plan(
    transaction: &mut Transaction,
    backend: Backend,
    plan: &PlanRecord,
) -> Result<(), StoreError> {
    let mut sql = Sql::new(backend, "UPDATE plans SET status = ");
    sql.bind(plan.status.clone())
        .push(", paid_minor = ")
        .bind(plan.paid_minor)
        .push(", late_fees_minor = ")
        .bind(plan.late_fees_minor)
        .push(", overpaid_minor = ")
        .bind(plan.overpaid_minor)
        .push(", overdue_since = ")
        .bind(plan.overdue_since.clone())
        .push(", next_tick_at_ms = ")
        .bind(plan.next_tick_at.map(Timestamp::unix_ms))
        .push(", updated_at_ms = ")
        .bind(plan.updated_at.unix_ms())
        .push(", completed_at_ms = ")
        .bind(plan.completed_at.map(Timestamp::unix_ms))
        .push(" WHERE id = ")
        .bind(plan.id.to_string());
    sql.query().execute(&mut **transaction).await?;
    Ok(())
}

async fn save_installment(
    transaction: &mut Transaction,
    backend: Backend,
    installment: &InstallmentRecord,
) -> Result<(), StoreError> {
    let mut sql = Sql::new(backend, "UPDATE installments SET late_fee_minor = ");
    sql.bind(installment.late_fee_minor)
        .push(", paid_minor = ")
        .bind(installment.paid_minor)
        .push(", status = ")
        .bind(installment.status.clone())
        .push(", attempts = ")
        .bind(installment.attempts)
        .push(", next_attempt_at_ms = ")
        .bind(installment.next_attempt_at.map(Timestamp::unix_ms))
        .push(", failure_code = ")
        .bind(installment.failure_code.clone())
        .push(", overdue_at_ms = ")
        .bind(installment.overdue_at.map(Timestamp::unix_ms))
        .push(", paid_at_ms = ")
        .bind(installment.paid_at.map(Timestamp::unix_ms))
        .push(" WHERE plan_id = ")
        .bind(installment.plan_id.to_string())
        .push(" AND number = ")
        .bind(installment.number);
    sql.query().execute(&mut **transaction).await?;
    Ok(())
}

impl Store {
    // ------------------------------------------------------------ test clocks

    pub async fn create_test_clock(&self, clock: &TestClockRecord) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO test_clocks ({CLOCK_COLUMNS}) VALUES ($1, $2, 'test', $3, $4, $5, $6, $7, $8)"
        )))
        .bind(clock.id.to_string())
        .bind(clock.merchant_id.to_string())
        .bind(clock.name.clone())
        .bind(clock.frozen_time.unix_ms())
        .bind(clock.target_time.unix_ms())
        .bind(clock.status.clone())
        .bind(clock.created_at.unix_ms())
        .bind(clock.updated_at.unix_ms())
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// A test clock by id, whoever it belongs to (for workers).
    pub async fn find_test_clock(
        &self,
        id: TestClockId,
    ) -> Result<Option<TestClockRecord>, StoreError> {
        self.find_row(
            "test_clocks",
            CLOCK_COLUMNS,
            &id.to_string(),
            None,
            clock_from_row,
        )
        .await
    }

    pub async fn list_test_clocks(
        &self,
        tenant: Tenant,
        page: &PageRequest,
    ) -> Result<Page<TestClockRecord>, StoreError> {
        self.tenant_page(tenant, "test_clocks", CLOCK_COLUMNS, page, clock_from_row)
            .await
    }

    /// Starts an advance to `target` if the clock is ready, queueing `job`
    /// and `event` with it. Returns the clock, or `None` if it was busy.
    pub async fn start_test_clock_advance(
        &self,
        id: TestClockId,
        target: Timestamp,
        job: &NewJob,
        event: impl FnOnce(&TestClockRecord) -> NewEvent,
        now: Timestamp,
    ) -> Result<Option<TestClockRecord>, StoreError> {
        let mut transaction = self.begin_write().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE test_clocks SET status = 'advancing', target_time_ms = $1, updated_at_ms = $2 \
             WHERE id = $3 AND status = 'ready' AND frozen_time_ms <= $1 RETURNING {CLOCK_COLUMNS}"
        )))
        .bind(target.unix_ms())
        .bind(now.unix_ms())
        .bind(id.to_string())
        .fetch_optional(&mut *transaction)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let clock = clock_from_row(&row)?;
        enqueue_in(
            &mut transaction,
            self.backend(),
            std::slice::from_ref(job),
            now,
        )
        .await?;
        let event = event(&clock);
        self.commit_with_events(transaction, &[event]).await?;
        Ok(Some(clock))
    }

    /// Moves an advancing clock's time forward (never back).
    pub async fn set_test_clock_time(
        &self,
        id: TestClockId,
        frozen_time: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        sqlx::query(
            "UPDATE test_clocks SET frozen_time_ms = $1, updated_at_ms = $2 \
             WHERE id = $3 AND frozen_time_ms < $1",
        )
        .bind(frozen_time.unix_ms())
        .bind(now.unix_ms())
        .bind(id.to_string())
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Ends an advance: the clock stands at its target and is ready.
    pub async fn finish_test_clock_advance(
        &self,
        id: TestClockId,
        event: impl FnOnce(&TestClockRecord) -> NewEvent,
        now: Timestamp,
    ) -> Result<Option<TestClockRecord>, StoreError> {
        let mut transaction = self.begin_write().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE test_clocks SET status = 'ready', frozen_time_ms = target_time_ms, updated_at_ms = $1 \
             WHERE id = $2 AND status = 'advancing' RETURNING {CLOCK_COLUMNS}"
        )))
        .bind(now.unix_ms())
        .bind(id.to_string())
        .fetch_optional(&mut *transaction)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let clock = clock_from_row(&row)?;
        let event = event(&clock);
        self.commit_with_events(transaction, &[event]).await?;
        Ok(Some(clock))
    }

    /// Whether anything on the clock waits for a rail: an installment being
    /// collected, a payment not yet applied, or a checkout awaiting approval.
    pub async fn test_clock_busy(&self, id: TestClockId) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM installments i JOIN plans p ON p.id = i.plan_id \
                     WHERE p.test_clock_id = $1 AND i.status = 'processing') \
                  + (SELECT COUNT(*) FROM checkouts WHERE test_clock_id = $1 AND status = 'pending_approval') \
                  + (SELECT COUNT(*) FROM payments pay \
                     WHERE pay.purpose IN (SELECT 'plan_payment:' || id FROM plans WHERE test_clock_id = $1) \
                     AND (pay.status IN ('pending', 'requires_action') \
                          OR EXISTS (SELECT 1 FROM jobs j WHERE j.kind = $2 AND j.subject_id = pay.id))) AS busy",
        )
        .bind(id.to_string())
        .bind(crate::PAYMENT_FOLLOW_UP_JOB)
        .fetch_one(&self.pool)
        .await?;
        let busy: i64 = row.try_get("busy")?;
        Ok(busy > 0)
    }

    /// The earliest time a plan on the clock needs the worker.
    pub async fn test_clock_next_tick(
        &self,
        id: TestClockId,
    ) -> Result<Option<Timestamp>, StoreError> {
        let row = sqlx::query(
            "SELECT MIN(next_tick_at_ms) AS next FROM plans WHERE test_clock_id = $1 \
             AND status IN ('active', 'delinquent')",
        )
        .bind(id.to_string())
        .fetch_one(&self.pool)
        .await?;
        let next: Option<i64> = row.try_get("next")?;
        Ok(next.map(Timestamp::from_unix_ms))
    }

    /// Plans on the clock due by `at`.
    pub async fn test_clock_due_plans(
        &self,
        id: TestClockId,
        at: Timestamp,
    ) -> Result<Vec<PlanId>, StoreError> {
        let rows = sqlx::query(
            "SELECT id FROM plans WHERE test_clock_id = $1 AND status IN ('active', 'delinquent') \
             AND next_tick_at_ms <= $2 ORDER BY next_tick_at_ms",
        )
        .bind(id.to_string())
        .bind(at.unix_ms())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("id")?;
                PlanId::parse(&id).map_err(|e| bad("plans", "id", e))
            })
            .collect()
    }

    // ----------------------------------------------------------- credit rules

    pub async fn credit_rules(&self, tenant: Tenant) -> Result<Option<String>, StoreError> {
        let row =
            sqlx::query("SELECT rules FROM credit_rules WHERE merchant_id = $1 AND mode = $2")
                .bind(tenant.merchant_id.to_string())
                .bind(tenant.mode.as_str())
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|row| row.try_get("rules")).transpose()?)
    }

    pub async fn put_credit_rules(
        &self,
        tenant: Tenant,
        rules: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO credit_rules (merchant_id, mode, rules, updated_at_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (merchant_id, mode) DO UPDATE SET rules = excluded.rules, updated_at_ms = excluded.updated_at_ms",
        )
        .bind(tenant.merchant_id.to_string())
        .bind(tenant.mode.as_str())
        .bind(rules)
        .bind(now.unix_ms())
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// A customer's open plans and pending checkouts, with one merchant
    /// (`Some`) or with every merchant, in one mode, and the financed
    /// amount of those plans in `currency`.
    pub async fn customer_exposure(
        &self,
        mode: Mode,
        phone: &str,
        merchant_id: Option<MerchantId>,
        currency: Currency,
    ) -> Result<CustomerExposure, StoreError> {
        let row = exposure_query(mode, phone, merchant_id, currency)
            .fetch_one(&self.pool)
            .await?;
        Ok(CustomerExposure {
            open_plans: row.try_get("open_plans")?,
            financed_minor: row.try_get("financed")?,
        })
    }

    // -------------------------------------------------------------- checkouts

    /// Stores a new checkout with its jobs and events. A merchant
    /// reference already used gets the checkout that holds it.
    ///
    /// `one_open_plan` (`Some(scope)`: per merchant, or `None` inside for
    /// every merchant) checks again, in the insert's transaction and under
    /// a per-customer lock, that a checkout awaiting approval has no other
    /// open plan or pending checkout beside it: two checkouts at once for
    /// one customer cannot both pass.
    pub async fn create_checkout(
        &self,
        checkout: &CheckoutRecord,
        jobs: &[NewJob],
        events: &[NewEvent],
        one_open_plan: Option<Option<MerchantId>>,
    ) -> Result<CreateCheckoutOutcome, StoreError> {
        let mut transaction = self.begin_write().await?;
        if let (Some(scope), Some(phone), "pending_approval") = (
            one_open_plan,
            checkout.customer_phone.as_deref(),
            checkout.status.as_str(),
        ) {
            if self.backend() == Backend::Postgres {
                // SQLite's write lock already serializes this transaction.
                sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                    .bind(format!("bnpl customer {phone}"))
                    .execute(&mut *transaction)
                    .await?;
            }
            let row = exposure_query(checkout.mode, phone, scope, checkout.amount.currency)
                .fetch_one(&mut *transaction)
                .await?;
            let open: i64 = row.try_get("open_plans")?;
            if open > 0 {
                return Ok(CreateCheckoutOutcome::ActivePlanExists);
            }
        }
        let mut sql = Sql::new(
            self.backend(),
            &format!("INSERT INTO checkouts ({CHECKOUT_COLUMNS}) VALUES "),
        );
        sql.bind_rows([checkout_values(checkout)]);
        sql.push(" ON CONFLICT DO NOTHING RETURNING id");
        if sql
            .query()
            .fetch_optional(&mut *transaction)
            .await?
            .is_none()
        {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {CHECKOUT_COLUMNS} FROM checkouts WHERE merchant_id = $1 AND mode = $2 \
                 AND merchant_reference = $3"
            )))
            .bind(checkout.merchant_id.to_string())
            .bind(checkout.mode.as_str())
            .bind(checkout.merchant_reference.clone())
            .fetch_optional(&mut *transaction)
            .await?
            .ok_or_else(|| bad("checkouts", "id", "an insert conflicted with no checkout"))?;
            let existing = checkout_from_row(&row)?;
            return Ok(
                if existing.request_fingerprint == checkout.request_fingerprint {
                    CreateCheckoutOutcome::Existing(existing)
                } else {
                    CreateCheckoutOutcome::ReferenceConflict(existing)
                },
            );
        }
        enqueue_in(&mut transaction, self.backend(), jobs, checkout.created_at).await?;
        self.commit_with_events(transaction, events).await?;
        Ok(CreateCheckoutOutcome::Created(checkout.clone()))
    }

    pub async fn find_checkout(
        &self,
        tenant: Tenant,
        id: CheckoutId,
    ) -> Result<Option<CheckoutRecord>, StoreError> {
        self.find_row(
            "checkouts",
            CHECKOUT_COLUMNS,
            &id.to_string(),
            Some(tenant),
            checkout_from_row,
        )
        .await
    }

    /// A checkout by id, whoever it belongs to (for workers and the hosted page).
    pub async fn find_checkout_by_id(
        &self,
        id: CheckoutId,
    ) -> Result<Option<CheckoutRecord>, StoreError> {
        self.find_row(
            "checkouts",
            CHECKOUT_COLUMNS,
            &id.to_string(),
            None,
            checkout_from_row,
        )
        .await
    }

    pub async fn list_checkouts(
        &self,
        tenant: Tenant,
        status: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<CheckoutRecord>, StoreError> {
        let filter = |sql: &mut Sql| {
            if let Some(status) = status {
                sql.push(" AND status = ").bind(status);
            }
        };
        self.tenant_page_where(
            tenant,
            "checkouts",
            CHECKOUT_COLUMNS,
            page,
            filter,
            checkout_from_row,
        )
        .await
    }

    /// Writes `checkout` if its stored status is one of `from`, with a new
    /// plan and its installments, transfers, jobs and events, in one
    /// transaction. `Ok(None)`: it had left those states; nothing written.
    pub async fn save_checkout(
        &self,
        checkout: &CheckoutRecord,
        from: &[&str],
        new_plan: Option<(&PlanRecord, &[InstallmentRecord])>,
        effects: &PlanEffects,
    ) -> Result<Option<CheckoutRecord>, PlanWriteError> {
        let mut transaction = self.begin_write().await?;
        let mut sql = Sql::new(self.backend(), "UPDATE checkouts SET status = ");
        sql.bind(checkout.status.clone())
            .push(", customer_phone = ")
            .bind(checkout.customer_phone.clone())
            .push(", plan_product = ")
            .bind(checkout.plan_product.clone())
            .push(", product = ")
            .bind(checkout.product.clone())
            .push(", apply_inflation = ")
            .bind(i64::from(checkout.apply_inflation))
            .push(", start_date = ")
            .bind(checkout.start_date.clone())
            .push(", schedule = ")
            .bind(checkout.schedule.clone())
            .push(", deposit_payment_id = ")
            .bind(checkout.deposit_payment_id.map(|id| id.to_string()))
            .push(", plan_id = ")
            .bind(checkout.plan_id.map(|id| id.to_string()))
            .push(", decline_code = ")
            .bind(checkout.decline_code.clone())
            .push(", decline_message = ")
            .bind(checkout.decline_message.clone())
            .push(", expires_at_ms = ")
            .bind(checkout.expires_at.unix_ms())
            .push(", updated_at_ms = ")
            .bind(checkout.updated_at.unix_ms())
            .push(", completed_at_ms = ")
            .bind(checkout.completed_at.map(Timestamp::unix_ms))
            .push(" WHERE id = ")
            .bind(checkout.id.to_string())
            .push(" AND status IN ");
        sql.bind_list(from.iter().copied());
        if sql
            .query()
            .execute(&mut *transaction)
            .await?
            .rows_affected()
            == 0
        {
            return Ok(None);
        }
        if let Some((plan, installments)) = new_plan {
            insert_rows(
                &mut transaction,
                self.backend(),
                "plans",
                PLAN_COLUMNS,
                vec![plan_values(plan)],
            )
            .await?;
            insert_rows(
                &mut transaction,
                self.backend(),
                "installments",
                INSTALLMENT_COLUMNS,
                installments.iter().map(installment_values).collect(),
            )
            .await?;
        }
        self.finish_plan_write(transaction, effects, checkout.updated_at)
            .await?;
        Ok(Some(checkout.clone()))
    }

    async fn finish_plan_write(
        &self,
        mut transaction: Transaction,
        effects: &PlanEffects,
        now: Timestamp,
    ) -> Result<(), PlanWriteError> {
        let results =
            post_transfers_in(&mut transaction, self.backend(), &effects.transfers, now).await?;
        if let Some(error) = results.into_iter().find_map(Result::err) {
            return Err(PlanWriteError::Refused(error));
        }
        insert_rows(
            &mut transaction,
            self.backend(),
            "plan_payments",
            PLAN_PAYMENT_COLUMNS,
            effects
                .applied_payments
                .iter()
                .map(|p| {
                    vec![
                        Value::from(p.payment_id.to_string()),
                        Value::from(p.plan_id.to_string()),
                        Value::from(p.amount_minor),
                        Value::from(p.principal_minor),
                        Value::from(p.allocation.clone()),
                        Value::from(p.applied_at.unix_ms()),
                    ]
                })
                .collect(),
        )
        .await?;
        enqueue_in(&mut transaction, self.backend(), &effects.jobs, now).await?;
        self.commit_with_events(transaction, &effects.events)
            .await?;
        Ok(())
    }

    // ------------------------------------------------------------------ plans

    pub async fn find_plan(
        &self,
        tenant: Tenant,
        id: PlanId,
    ) -> Result<Option<PlanRecord>, StoreError> {
        self.find_row(
            "plans",
            PLAN_COLUMNS,
            &id.to_string(),
            Some(tenant),
            plan_from_row,
        )
        .await
    }

    /// A plan by id, whoever it belongs to (for workers).
    pub async fn find_plan_by_id(&self, id: PlanId) -> Result<Option<PlanRecord>, StoreError> {
        self.find_row("plans", PLAN_COLUMNS, &id.to_string(), None, plan_from_row)
            .await
    }

    /// A tenant's plan with its installments and payments, read as of one
    /// moment: a change committing between the reads would otherwise show
    /// an installment paid on a plan still delinquent.
    pub async fn plan_snapshot(
        &self,
        tenant: Tenant,
        id: PlanId,
    ) -> Result<Option<PlanState>, StoreError> {
        let mut transaction = self.pool.begin().await?;
        if self.backend() == Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                .execute(&mut *transaction)
                .await?;
        }
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PLAN_COLUMNS} FROM plans WHERE id = $1 AND merchant_id = $2 AND mode = $3"
        )))
        .bind(id.to_string())
        .bind(tenant.merchant_id.to_string())
        .bind(tenant.mode.as_str())
        .fetch_optional(&mut *transaction)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let plan = plan_from_row(&row)?;
        let (installments, payments) = plan_rows_in(&mut transaction, id).await?;
        transaction.commit().await?;
        Ok(Some(PlanState {
            plan,
            installments,
            payments,
        }))
    }

    pub async fn list_plans(
        &self,
        tenant: Tenant,
        filter: &PlanFilter,
        page: &PageRequest,
    ) -> Result<Page<PlanRecord>, StoreError> {
        let conditions = |sql: &mut Sql| {
            if let Some(status) = &filter.status {
                sql.push(" AND status = ").bind(status.clone());
            }
            if let Some(phone) = &filter.customer_phone {
                sql.push(" AND customer_phone = ").bind(phone.clone());
            }
            if let Some((from, to)) = &filter.overdue_since {
                sql.push(" AND overdue_since >= ")
                    .bind(from.clone())
                    .push(" AND overdue_since <= ")
                    .bind(to.clone());
            }
            if filter.current {
                sql.push(" AND overdue_since IS NULL");
            }
            if let Some(clock) = filter.test_clock_id {
                sql.push(" AND test_clock_id = ").bind(clock.to_string());
            }
        };
        self.tenant_page_where(
            tenant,
            "plans",
            PLAN_COLUMNS,
            page,
            conditions,
            plan_from_row,
        )
        .await
    }

    /// Changes a plan: reads it and its installments and payments under a
    /// lock, lets `change` apply the rules to them, and writes back what
    /// changed with the effects `change` returns, in one transaction.
    /// `change` returns `None` to write nothing.
    pub async fn update_plan<T>(
        &self,
        id: PlanId,
        change: impl FnOnce(&mut PlanState) -> Option<(PlanEffects, T)>,
    ) -> Result<Option<(PlanState, T)>, PlanWriteError> {
        let mut transaction = self.begin_write().await?;
        let plan = lock_plan(&mut transaction, self.backend(), id)
            .await?
            .ok_or(PlanWriteError::NotFound)?;
        let (installments, payments) = plan_rows_in(&mut transaction, id).await?;
        let before = PlanState {
            plan,
            installments,
            payments,
        };
        let mut state = before.clone();
        let Some((effects, value)) = change(&mut state) else {
            return Ok(None);
        };
        if state.plan != before.plan {
            save_plan(&mut transaction, self.backend(), &state.plan).await?;
        }
        for (new, old) in state.installments.iter().zip(&before.installments) {
            if new != old {
                save_installment(&mut transaction, self.backend(), new).await?;
            }
        }
        let now = state.plan.updated_at;
        self.finish_plan_write(transaction, &effects, now).await?;
        state.payments.extend(effects.applied_payments);
        Ok(Some((state, value)))
    }
}

impl Store {
    /// A tenant's plans by status (for the benchmark and operators).
    pub async fn plan_status_counts(
        &self,
        tenant: Tenant,
    ) -> Result<std::collections::BTreeMap<String, i64>, StoreError> {
        self.status_counts(
            "SELECT status, COUNT(*) AS n FROM plans WHERE merchant_id = $1 AND mode = $2 GROUP BY status",
            tenant,
        )
        .await
    }

    /// A tenant's installments by status.
    pub async fn installment_status_counts(
        &self,
        tenant: Tenant,
    ) -> Result<std::collections::BTreeMap<String, i64>, StoreError> {
        self.status_counts(
            "SELECT i.status, COUNT(*) AS n FROM installments i JOIN plans p ON p.id = i.plan_id \
             WHERE p.merchant_id = $1 AND p.mode = $2 GROUP BY i.status",
            tenant,
        )
        .await
    }

    async fn status_counts(
        &self,
        query: &'static str,
        tenant: Tenant,
    ) -> Result<std::collections::BTreeMap<String, i64>, StoreError> {
        let rows = sqlx::query(query)
            .bind(tenant.merchant_id.to_string())
            .bind(tenant.mode.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("status")?, row.try_get("n")?)))
            .collect()
    }

    /// Up to `limit` of a tenant's plan ids, newest first.
    pub async fn plan_ids(&self, tenant: Tenant, limit: i64) -> Result<Vec<PlanId>, StoreError> {
        let rows = sqlx::query(
            "SELECT id FROM plans WHERE merchant_id = $1 AND mode = $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(tenant.merchant_id.to_string())
        .bind(tenant.mode.as_str())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("id")?;
                PlanId::parse(&id).map_err(|e| bad("plans", "id", e))
            })
            .collect()
    }
}
