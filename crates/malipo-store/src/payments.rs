//! Payments (collections). Every change of state is one conditional
//! `UPDATE … WHERE status IN (…)` in a transaction with the ledger
//! transfers and jobs it causes: a change that lost a race changes nothing.

use malipo_core::{
    Currency, FeePayer, MerchantId, Mode, Money, PaymentId, PaymentStatus, Timestamp,
};
use malipo_ledger::{LedgerError, NewTransfer};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::events::{NewEvent, ObjectViews};
use crate::jobs::{NewJob, enqueue_in, reschedule_in};
use crate::ledger::post_transfers_in;
use std::collections::HashSet;

use crate::sql::{PLACEHOLDERS_MAX, Sql, Value};
use crate::{Page, PageRequest, Store, StoreError, Tenant};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRecord {
    pub id: PaymentId,
    pub merchant_id: MerchantId,
    pub mode: Mode,
    pub status: PaymentStatus,
    pub amount: Money,
    pub fee_minor: i64,
    pub fee_payer: FeePayer,
    pub customer_total_minor: i64,
    pub merchant_net_minor: i64,
    pub customer_phone: Option<String>,
    pub rail: Option<String>,
    pub rail_transaction_id: Option<String>,
    pub merchant_reference: Option<String>,
    /// The create request's `Idempotency-Key`, unique per merchant and mode.
    pub idempotency_key: Option<String>,
    pub request_fingerprint: String,
    pub description: String,
    /// A JSON object.
    pub metadata: String,
    pub redirect_url: Option<String>,
    /// JSON, when `status` is `requires_action`.
    pub next_action: Option<String>,
    /// A JSON object of fields supplied for the rail.
    pub fields: String,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub refunded_minor: i64,
    /// What waits on this payment's outcome (`checkout:co_…`,
    /// `installment:plan_…`, `plan_payment:plan_…`); see
    /// [`PAYMENT_FOLLOW_UP_JOB`].
    pub purpose: Option<String>,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub completed_at: Option<Timestamp>,
}

impl PaymentRecord {
    pub fn tenant(&self) -> Tenant {
        Tenant {
            merchant_id: self.merchant_id,
            mode: self.mode,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreatePaymentOutcome {
    Created(PaymentRecord),
    /// The same merchant reference with the same request: the payment it made.
    Existing(PaymentRecord),
    /// The same merchant reference with a different request.
    ReferenceConflict(PaymentRecord),
}

/// What a change of state sets besides the status. `None` leaves a column.
#[derive(Debug, Clone, Default)]
pub struct PaymentUpdate {
    pub next_action: Option<Option<String>>,
    pub rail: Option<String>,
    pub rail_transaction_id: Option<String>,
    pub customer_phone: Option<String>,
    pub fields: Option<String>,
    pub failure: Option<(String, String)>,
    pub completed: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum UpdateOutcome {
    Updated(Box<PaymentRecord>),
    /// The payment was not in a state the change may start from.
    Stale,
    /// The ledger refused a transfer; nothing was changed.
    Refused(LedgerError),
}

#[derive(Debug, Clone, Default)]
pub struct PaymentFilter {
    pub status: Option<PaymentStatus>,
    pub rail: Option<String>,
    pub merchant_reference: Option<String>,
    pub customer_phone: Option<String>,
    pub created_gte: Option<Timestamp>,
    pub created_lt: Option<Timestamp>,
}

const COLUMNS: &str = "id, merchant_id, mode, status, amount_minor, currency, fee_minor, fee_payer, \
     customer_total_minor, merchant_net_minor, customer_phone, rail, rail_transaction_id, merchant_reference, \
     request_fingerprint, description, metadata, redirect_url, next_action, fields, failure_code, failure_message, \
     refunded_minor, expires_at_ms, created_at_ms, updated_at_ms, completed_at_ms, idempotency_key, purpose";

const PAYMENT_COLUMNS_COUNT: usize = 29;

/// Queued, in the same transaction, when a payment with a purpose reaches
/// a final state: the job applies the outcome to what waits on it.
pub const PAYMENT_FOLLOW_UP_JOB: &str = "payment.follow_up";

fn payment_values(payment: &PaymentRecord) -> [Value; PAYMENT_COLUMNS_COUNT] {
    [
        Value::from(payment.id.to_string()),
        Value::from(payment.merchant_id.to_string()),
        Value::from(payment.mode.as_str()),
        Value::from(payment.status.as_str()),
        Value::from(payment.amount.amount_minor),
        Value::from(payment.amount.currency.code()),
        Value::from(payment.fee_minor),
        Value::from(payment.fee_payer.as_str()),
        Value::from(payment.customer_total_minor),
        Value::from(payment.merchant_net_minor),
        Value::from(payment.customer_phone.clone()),
        Value::from(payment.rail.clone()),
        Value::from(payment.rail_transaction_id.clone()),
        Value::from(payment.merchant_reference.clone()),
        Value::from(payment.request_fingerprint.clone()),
        Value::from(payment.description.clone()),
        Value::from(payment.metadata.clone()),
        Value::from(payment.redirect_url.clone()),
        Value::from(payment.next_action.clone()),
        Value::from(payment.fields.clone()),
        Value::from(payment.failure_code.clone()),
        Value::from(payment.failure_message.clone()),
        Value::from(payment.refunded_minor),
        Value::from(payment.expires_at.unix_ms()),
        Value::from(payment.created_at.unix_ms()),
        Value::from(payment.updated_at.unix_ms()),
        Value::from(payment.completed_at.map(Timestamp::unix_ms)),
        Value::from(payment.idempotency_key.clone()),
        Value::from(payment.purpose.clone()),
    ]
}

fn from_row(row: &AnyRow) -> Result<PaymentRecord, StoreError> {
    let bad = |column, reason: String| StoreError::corrupt("payments", column, reason);
    let id: String = row.try_get("id")?;
    let merchant_id: String = row.try_get("merchant_id")?;
    let mode: String = row.try_get("mode")?;
    let status: String = row.try_get("status")?;
    let currency: String = row.try_get("currency")?;
    let fee_payer: String = row.try_get("fee_payer")?;
    let completed_at: Option<i64> = row.try_get("completed_at_ms")?;
    Ok(PaymentRecord {
        id: PaymentId::parse(&id).map_err(|e| bad("id", e.to_string()))?,
        merchant_id: MerchantId::parse(&merchant_id)
            .map_err(|e| bad("merchant_id", e.to_string()))?,
        mode: Mode::parse(&mode).ok_or_else(|| bad("mode", mode.clone()))?,
        status: PaymentStatus::parse(&status).ok_or_else(|| bad("status", status.clone()))?,
        amount: Money::new(
            row.try_get("amount_minor")?,
            Currency::parse(&currency).map_err(|e| bad("currency", e.to_string()))?,
        ),
        fee_minor: row.try_get("fee_minor")?,
        fee_payer: FeePayer::parse(&fee_payer)
            .ok_or_else(|| bad("fee_payer", fee_payer.clone()))?,
        customer_total_minor: row.try_get("customer_total_minor")?,
        merchant_net_minor: row.try_get("merchant_net_minor")?,
        customer_phone: row.try_get("customer_phone")?,
        rail: row.try_get("rail")?,
        rail_transaction_id: row.try_get("rail_transaction_id")?,
        merchant_reference: row.try_get("merchant_reference")?,
        idempotency_key: row.try_get("idempotency_key")?,
        request_fingerprint: row.try_get("request_fingerprint")?,
        description: row.try_get("description")?,
        metadata: row.try_get("metadata")?,
        redirect_url: row.try_get("redirect_url")?,
        next_action: row.try_get("next_action")?,
        fields: row.try_get("fields")?,
        failure_code: row.try_get("failure_code")?,
        failure_message: row.try_get("failure_message")?,
        refunded_minor: row.try_get("refunded_minor")?,
        purpose: row.try_get("purpose")?,
        expires_at: Timestamp::from_unix_ms(row.try_get("expires_at_ms")?),
        created_at: Timestamp::from_unix_ms(row.try_get("created_at_ms")?),
        updated_at: Timestamp::from_unix_ms(row.try_get("updated_at_ms")?),
        completed_at: completed_at.map(Timestamp::from_unix_ms),
    })
}

impl Store {
    /// Inserts many payments and their jobs in one transaction (one commit):
    /// the write path behind group commit. Each payment whose merchant
    /// reference is taken gets the payment that holds it instead.
    pub async fn create_payments(
        &self,
        payments: Vec<(PaymentRecord, Vec<NewJob>)>,
        views: &dyn ObjectViews,
    ) -> Result<Vec<CreatePaymentOutcome>, StoreError> {
        let Some(now) = payments.iter().map(|(p, _)| p.created_at).max() else {
            return Ok(Vec::new());
        };
        let mut transaction = self.begin_write().await?;
        let mut inserted: HashSet<String> = HashSet::with_capacity(payments.len());
        for chunk in payments.chunks(PLACEHOLDERS_MAX / PAYMENT_COLUMNS_COUNT) {
            let mut sql = Sql::new(
                self.backend(),
                &format!("INSERT INTO payments ({COLUMNS}) VALUES "),
            );
            sql.bind_rows(chunk.iter().map(|(payment, _)| payment_values(payment)));
            // Any conflict: the merchant reference or the idempotency key.
            sql.push(" ON CONFLICT DO NOTHING RETURNING id");
            for row in sql.query().fetch_all(&mut *transaction).await? {
                inserted.insert(row.try_get("id")?);
            }
        }
        let mut outcomes = Vec::with_capacity(payments.len());
        let mut jobs = Vec::new();
        let mut events = Vec::with_capacity(inserted.len());
        for (payment, payment_jobs) in payments {
            if inserted.contains(&payment.id.to_string()) {
                jobs.extend(payment_jobs);
                events.push(NewEvent::for_payment(views, &payment, payment.created_at));
                outcomes.push(CreatePaymentOutcome::Created(payment));
                continue;
            }
            // Read in this transaction: asking the pool for a second
            // connection while holding one can starve it under load. The
            // same idempotency key is the same request, retried; else it
            // is the merchant reference that is taken.
            let mut existing = None;
            for (column, value) in [
                ("idempotency_key", &payment.idempotency_key),
                ("merchant_reference", &payment.merchant_reference),
            ] {
                let Some(value) = value else { continue };
                let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM payments WHERE merchant_id = $1 AND mode = $2 AND {column} = $3"
                )))
                .bind(payment.merchant_id.to_string())
                .bind(payment.mode.as_str())
                .bind(value.clone())
                .fetch_optional(&mut *transaction)
                .await?;
                if let Some(row) = row {
                    existing = Some(from_row(&row)?);
                    break;
                }
            }
            let existing = existing.ok_or_else(|| {
                StoreError::corrupt("payments", "id", "an insert conflicted with no payment")
            })?;
            outcomes.push(
                if existing.request_fingerprint == payment.request_fingerprint {
                    CreatePaymentOutcome::Existing(existing)
                } else {
                    CreatePaymentOutcome::ReferenceConflict(existing)
                },
            );
        }
        enqueue_in(&mut transaction, self.backend(), &jobs, now).await?;
        self.commit_with_events(transaction, &events).await?;
        Ok(outcomes)
    }

    /// Moves a payment to `status` if it is in one of the states that may
    /// lead there, posting `transfers`, queueing `jobs` and recording the
    /// `payment.<status>` event with it.
    #[allow(clippy::too_many_arguments)]
    pub async fn update_payment(
        &self,
        views: &dyn ObjectViews,
        id: PaymentId,
        status: PaymentStatus,
        update: &PaymentUpdate,
        transfers: &[NewTransfer],
        jobs: &[NewJob],
        now: Timestamp,
    ) -> Result<UpdateOutcome, StoreError> {
        let mut sql = Sql::new(self.backend(), "UPDATE payments SET status = ");
        sql.bind(status.as_str())
            .push(", updated_at_ms = ")
            .bind(now.unix_ms());
        if let Some(next_action) = &update.next_action {
            sql.push(", next_action = ").bind(next_action.clone());
        }
        if let Some(rail) = &update.rail {
            sql.push(", rail = ").bind(rail.clone());
        }
        if let Some(rail_transaction_id) = &update.rail_transaction_id {
            sql.push(", rail_transaction_id = ")
                .bind(rail_transaction_id.clone());
        }
        if let Some(phone) = &update.customer_phone {
            sql.push(", customer_phone = ").bind(phone.clone());
        }
        if let Some(fields) = &update.fields {
            sql.push(", fields = ").bind(fields.clone());
        }
        if let Some((code, message)) = &update.failure {
            sql.push(", failure_code = ")
                .bind(code.clone())
                .push(", failure_message = ")
                .bind(message.clone());
        }
        if update.completed {
            sql.push(", completed_at_ms = ").bind(now.unix_ms());
        }
        sql.push(" WHERE id = ")
            .bind(id.to_string())
            .push(" AND status IN ");
        sql.bind_list(
            PaymentStatus::predecessors(status)
                .into_iter()
                .map(PaymentStatus::as_str),
        );
        sql.push(&format!(" RETURNING {COLUMNS}"));

        let mut transaction = self.begin_write().await?;
        let Some(row) = sql.query().fetch_optional(&mut *transaction).await? else {
            return Ok(UpdateOutcome::Stale);
        };
        let payment = from_row(&row)?;
        let results = post_transfers_in(&mut transaction, self.backend(), transfers, now).await?;
        if let Some(error) = results.into_iter().find_map(Result::err) {
            return Ok(UpdateOutcome::Refused(error));
        }
        enqueue_in(&mut transaction, self.backend(), jobs, now).await?;
        if payment.status.is_final() && payment.purpose.is_some() {
            // Only a change out of a non-final state gets here, so once.
            let follow_up = NewJob::new(PAYMENT_FOLLOW_UP_JOB, payment.id, now).urgent();
            enqueue_in(&mut transaction, self.backend(), &[follow_up], now).await?;
        }
        let event = NewEvent::for_payment(views, &payment, now);
        self.commit_with_events(transaction, std::slice::from_ref(&event))
            .await?;
        Ok(UpdateOutcome::Updated(Box::new(payment)))
    }

    /// Writes a worker's round in one transaction: many rails'
    /// acknowledgements (each rail's id on its pending payment, once, with
    /// the poll that follows), the removal of the jobs that finished, and
    /// the rescheduling of those to run again.
    pub async fn finish_round(
        &self,
        acknowledgements: &[(PaymentId, String, NewJob)],
        finished_jobs: &[malipo_core::JobId],
        later_jobs: &[(malipo_core::JobId, Timestamp, String)],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        let mut follow_ups = Vec::with_capacity(acknowledgements.len());
        for (id, rail_transaction_id, follow_up) in acknowledgements {
            let attached = sqlx::query(
                "UPDATE payments SET rail_transaction_id = $1, updated_at_ms = $2 \
                 WHERE id = $3 AND status = 'pending' AND rail_transaction_id IS NULL",
            )
            .bind(rail_transaction_id.clone())
            .bind(now.unix_ms())
            .bind(id.to_string())
            .execute(&mut *transaction)
            .await?
            .rows_affected();
            if attached == 1 {
                follow_ups.push(follow_up.clone());
            }
        }
        enqueue_in(&mut transaction, self.backend(), &follow_ups, now).await?;
        for chunk in finished_jobs.chunks(PLACEHOLDERS_MAX) {
            let mut sql = Sql::new(self.backend(), "DELETE FROM jobs WHERE id IN ");
            sql.bind_list(chunk.iter().map(ToString::to_string));
            sql.query().execute(&mut *transaction).await?;
        }
        reschedule_in(&mut transaction, self.backend(), later_jobs).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// For workers: a payment by id, whoever it belongs to.
    pub async fn find_payment(&self, id: PaymentId) -> Result<Option<PaymentRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM payments WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn find_payment_by_rail_transaction(
        &self,
        rail: &str,
        rail_transaction_id: &str,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM payments WHERE rail = $1 AND rail_transaction_id = $2"
        )))
        .bind(rail)
        .bind(rail_transaction_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub fn payments(&self, tenant: Tenant) -> TenantPayments<'_> {
        TenantPayments {
            store: self,
            tenant,
        }
    }
}

/// One merchant's payments, in one mode.
pub struct TenantPayments<'a> {
    store: &'a Store,
    tenant: Tenant,
}

impl TenantPayments<'_> {
    pub async fn find(&self, id: PaymentId) -> Result<Option<PaymentRecord>, StoreError> {
        Ok(self
            .store
            .find_payment(id)
            .await?
            .filter(|p| p.tenant() == self.tenant))
    }

    pub async fn find_by_reference(
        &self,
        reference: &str,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM payments WHERE merchant_id = $1 AND mode = $2 AND merchant_reference = $3"
        )))
        .bind(self.tenant.merchant_id.to_string())
        .bind(self.tenant.mode.as_str())
        .bind(reference)
        .fetch_optional(&self.store.pool)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Newest first.
    pub async fn list(
        &self,
        filter: &PaymentFilter,
        page: &PageRequest,
    ) -> Result<Page<PaymentRecord>, StoreError> {
        let mut sql = Sql::new(
            self.store.backend(),
            &format!("SELECT {COLUMNS} FROM payments WHERE merchant_id = "),
        );
        sql.bind(self.tenant.merchant_id.to_string())
            .push(" AND mode = ")
            .bind(self.tenant.mode.as_str());
        if let Some(status) = filter.status {
            sql.push(" AND status = ").bind(status.as_str());
        }
        if let Some(rail) = &filter.rail {
            sql.push(" AND rail = ").bind(rail.clone());
        }
        if let Some(reference) = &filter.merchant_reference {
            sql.push(" AND merchant_reference = ")
                .bind(reference.clone());
        }
        if let Some(phone) = &filter.customer_phone {
            sql.push(" AND customer_phone = ").bind(phone.clone());
        }
        if let Some(at) = filter.created_gte {
            sql.push(" AND created_at_ms >= ").bind(at.unix_ms());
        }
        if let Some(at) = filter.created_lt {
            sql.push(" AND created_at_ms < ").bind(at.unix_ms());
        }
        if let Some(after) = &page.starting_after {
            sql.push(" AND id < ").bind(after.clone());
        }
        sql.push(" ORDER BY id DESC LIMIT ")
            .bind(i64::from(page.limit) + 1);
        let rows = sql.query().fetch_all(&self.store.pool).await?;
        let payments = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(payments, page.limit))
    }
}

/// Payments of one day, status, currency and rail: a row of
/// [`Store::payment_stats`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentStatRow {
    /// Days since 1970-01-01, UTC.
    pub day: i64,
    pub status: String,
    pub currency: String,
    /// Empty when no rail was chosen.
    pub rail: String,
    pub count: i64,
    pub amount_minor: i64,
}

impl Store {
    /// A tenant's payments created since `since`, counted and summed per
    /// UTC day, status, currency and rail.
    pub async fn payment_stats(
        &self,
        tenant: Tenant,
        since: Timestamp,
    ) -> Result<Vec<PaymentStatRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT created_at_ms / 86400000 AS day, status, currency, COALESCE(rail, '') AS rail, \
             COUNT(*) AS n, CAST(SUM(amount_minor) AS BIGINT) AS total FROM payments \
             WHERE merchant_id = $1 AND mode = $2 AND created_at_ms >= $3 \
             GROUP BY created_at_ms / 86400000, status, currency, COALESCE(rail, '') \
             ORDER BY day, status, currency, rail",
        )
        .bind(tenant.merchant_id.to_string())
        .bind(tenant.mode.as_str())
        .bind(since.unix_ms())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PaymentStatRow {
                    day: row.try_get("day")?,
                    status: row.try_get("status")?,
                    currency: row.try_get("currency")?,
                    rail: row.try_get("rail")?,
                    count: row.try_get("n")?,
                    amount_minor: row.try_get("total")?,
                })
            })
            .collect()
    }
}
