//! Money out: payouts and refunds. Creating one holds its amount (and fee)
//! in the ledger in the same transaction; the rail's answer posts or voids
//! the hold in the same transaction as the status change.

use malipo_core::{Currency, MerchantId, Mode, Money, PaymentId, Timestamp, TransferId};
use malipo_ledger::{HoldOutcome, LedgerError, NewTransfer};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::events::{NewEvent, ObjectViews};
use crate::jobs::{NewJob, enqueue_in};
use crate::ledger::{post_transfers_in, settle_pending_in};
use crate::sql::Sql;
use crate::{Backend, Page, PageRequest, Store, StoreError, Tenant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayoutKind {
    Payout,
    Refund,
}

impl PayoutKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PayoutKind::Payout => "payout",
            PayoutKind::Refund => "refund",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayoutStatus {
    Pending,
    Succeeded,
    Failed,
}

impl PayoutStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PayoutStatus::Pending => "pending",
            PayoutStatus::Succeeded => "succeeded",
            PayoutStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            PayoutStatus::Pending,
            PayoutStatus::Succeeded,
            PayoutStatus::Failed,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayoutDestination {
    Wallet {
        phone: String,
        /// The holder's name as the merchant knows it, to confirm against
        /// the wallet's registered name before any money moves (kept in
        /// the `account_name` column).
        name: Option<String>,
    },
    Bank {
        bank_code: String,
        account_number: String,
        account_name: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutRecord {
    /// `po_…` or `re_…`.
    pub id: String,
    pub kind: PayoutKind,
    pub merchant_id: MerchantId,
    pub mode: Mode,
    pub status: PayoutStatus,
    pub amount: Money,
    pub fee_minor: i64,
    pub destination: PayoutDestination,
    pub rail: String,
    pub rail_transaction_id: Option<String>,
    pub payment_id: Option<PaymentId>,
    pub merchant_reference: Option<String>,
    /// The create request's `Idempotency-Key`, unique per merchant, mode and kind.
    pub idempotency_key: Option<String>,
    pub request_fingerprint: String,
    pub description: String,
    pub metadata: String,
    pub hold_transfer_id: Option<TransferId>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub completed_at: Option<Timestamp>,
    /// Why the platform sent it (`settlement:stl_…`, `reference_payment:rpay_…`);
    /// its final state then queues a [`PAYOUT_FOLLOW_UP_JOB`].
    pub purpose: Option<String>,
}

/// Follows up a payout with a purpose once it is final.
pub const PAYOUT_FOLLOW_UP_JOB: &str = "payout.follow_up";

impl PayoutRecord {
    pub fn tenant(&self) -> Tenant {
        Tenant {
            merchant_id: self.merchant_id,
            mode: self.mode,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum CreatePayoutOutcome {
    Created(Box<PayoutRecord>),
    Existing(Box<PayoutRecord>),
    ReferenceConflict(Box<PayoutRecord>),
    /// The hold would overdraw the merchant's available balance.
    InsufficientBalance,
    /// A refund larger than what is left to refund of its payment.
    RefundTooLarge {
        refundable_minor: i64,
    },
    /// The ledger refused the hold for another reason.
    Refused(LedgerError),
}

const COLUMNS: &str = "id, kind, merchant_id, mode, status, amount_minor, currency, fee_minor, destination_kind, \
     phone, bank_code, account_number, account_name, rail, rail_transaction_id, payment_id, merchant_reference, \
     request_fingerprint, description, metadata, hold_transfer_id, failure_code, failure_message, created_at_ms, \
     updated_at_ms, completed_at_ms, idempotency_key, purpose";

fn from_row(row: &AnyRow) -> Result<PayoutRecord, StoreError> {
    let bad = |column, reason: String| StoreError::corrupt("payouts", column, reason);
    let kind: String = row.try_get("kind")?;
    let merchant_id: String = row.try_get("merchant_id")?;
    let mode: String = row.try_get("mode")?;
    let status: String = row.try_get("status")?;
    let currency: String = row.try_get("currency")?;
    let destination_kind: String = row.try_get("destination_kind")?;
    let payment_id: Option<String> = row.try_get("payment_id")?;
    let hold: String = row.try_get("hold_transfer_id")?;
    let completed_at: Option<i64> = row.try_get("completed_at_ms")?;
    let text = |column: &'static str| -> Result<String, StoreError> {
        Ok(row
            .try_get::<Option<String>, _>(column)?
            .unwrap_or_default())
    };
    Ok(PayoutRecord {
        id: row.try_get("id")?,
        kind: match kind.as_str() {
            "payout" => PayoutKind::Payout,
            "refund" => PayoutKind::Refund,
            other => return Err(bad("kind", other.to_owned())),
        },
        merchant_id: MerchantId::parse(&merchant_id)
            .map_err(|e| bad("merchant_id", e.to_string()))?,
        mode: Mode::parse(&mode).ok_or_else(|| bad("mode", mode.clone()))?,
        status: PayoutStatus::parse(&status).ok_or_else(|| bad("status", status.clone()))?,
        amount: Money::new(
            row.try_get("amount_minor")?,
            Currency::parse(&currency).map_err(|e| bad("currency", e.to_string()))?,
        ),
        fee_minor: row.try_get("fee_minor")?,
        destination: match destination_kind.as_str() {
            "wallet" => PayoutDestination::Wallet {
                phone: text("phone")?,
                name: row.try_get("account_name")?,
            },
            _ => PayoutDestination::Bank {
                bank_code: text("bank_code")?,
                account_number: text("account_number")?,
                account_name: text("account_name")?,
            },
        },
        rail: row.try_get("rail")?,
        rail_transaction_id: row.try_get("rail_transaction_id")?,
        payment_id: payment_id
            .map(|id| PaymentId::parse(&id))
            .transpose()
            .map_err(|e| bad("payment_id", e.to_string()))?,
        merchant_reference: row.try_get("merchant_reference")?,
        idempotency_key: row.try_get("idempotency_key")?,
        request_fingerprint: row.try_get("request_fingerprint")?,
        description: row.try_get("description")?,
        metadata: row.try_get("metadata")?,
        hold_transfer_id: Some(
            TransferId::parse(&hold).map_err(|e| bad("hold_transfer_id", e.to_string()))?,
        ),
        failure_code: row.try_get("failure_code")?,
        failure_message: row.try_get("failure_message")?,
        created_at: Timestamp::from_unix_ms(row.try_get("created_at_ms")?),
        updated_at: Timestamp::from_unix_ms(row.try_get("updated_at_ms")?),
        completed_at: completed_at.map(Timestamp::from_unix_ms),
        purpose: row.try_get("purpose")?,
    })
}

type Transaction = sqlx::Transaction<'static, sqlx::Any>;

/// The payout or refund this one repeats: the same idempotency key (the
/// same request, retried) or, failing that, the same merchant reference.
async fn find_by_reference_in(
    transaction: &mut Transaction,
    payout: &PayoutRecord,
) -> Result<Option<PayoutRecord>, StoreError> {
    for (column, value) in [
        ("idempotency_key", &payout.idempotency_key),
        ("merchant_reference", &payout.merchant_reference),
    ] {
        let Some(value) = value else { continue };
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM payouts WHERE merchant_id = $1 AND mode = $2 AND kind = $3 AND {column} = $4"
        )))
        .bind(payout.merchant_id.to_string())
        .bind(payout.mode.as_str())
        .bind(payout.kind.as_str())
        .bind(value.clone())
        .fetch_optional(&mut **transaction)
        .await?;
        if let Some(row) = row {
            return Ok(Some(from_row(&row)?));
        }
    }
    Ok(None)
}

/// Posts a payout's hold and inserts it: the created payout (with its hold),
/// `None` if another with its reference exists, or why the ledger refused.
pub(crate) async fn insert_payout_in(
    transaction: &mut Transaction,
    backend: Backend,
    payout: &PayoutRecord,
    hold: &NewTransfer,
) -> Result<Result<Option<PayoutRecord>, CreatePayoutOutcome>, StoreError> {
    let now = payout.created_at;
    let posted = post_transfers_in(&mut *transaction, backend, std::slice::from_ref(hold), now)
        .await?
        .pop()
        .expect("one result per transfer");
    let hold_id = match posted {
        Ok(posted) => posted.id,
        Err(LedgerError::WouldGoNegative { .. }) => {
            return Ok(Err(CreatePayoutOutcome::InsufficientBalance));
        }
        Err(error) => return Ok(Err(CreatePayoutOutcome::Refused(error))),
    };
    let (destination_kind, phone, bank_code, account_number, account_name) =
        match &payout.destination {
            PayoutDestination::Wallet { phone, name } => {
                ("wallet", Some(phone.clone()), None, None, name.clone())
            }
            PayoutDestination::Bank {
                bank_code,
                account_number,
                account_name,
            } => (
                "bank",
                None,
                Some(bank_code.clone()),
                Some(account_number.clone()),
                Some(account_name.clone()),
            ),
        };
    let inserted = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO payouts ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
             $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28) \
             ON CONFLICT DO NOTHING"
        )))
        .bind(payout.id.clone())
        .bind(payout.kind.as_str())
        .bind(payout.merchant_id.to_string())
        .bind(payout.mode.as_str())
        .bind(payout.status.as_str())
        .bind(payout.amount.amount_minor)
        .bind(payout.amount.currency.code())
        .bind(payout.fee_minor)
        .bind(destination_kind)
        .bind(phone)
        .bind(bank_code)
        .bind(account_number)
        .bind(account_name)
        .bind(payout.rail.clone())
        .bind(payout.rail_transaction_id.clone())
        .bind(payout.payment_id.map(|id| id.to_string()))
        .bind(payout.merchant_reference.clone())
        .bind(payout.request_fingerprint.clone())
        .bind(payout.description.clone())
        .bind(payout.metadata.clone())
        .bind(hold_id.to_string())
        .bind(payout.failure_code.clone())
        .bind(payout.failure_message.clone())
        .bind(now.unix_ms())
        .bind(now.unix_ms())
        .bind(None::<i64>)
        .bind(payout.idempotency_key.clone())
        .bind(payout.purpose.clone())
        .execute(&mut **transaction)
        .await?
        .rows_affected();
    if inserted == 0 {
        return Ok(Ok(None));
    }
    let mut created = payout.clone();
    created.hold_transfer_id = Some(hold_id);
    Ok(Ok(Some(created)))
}

impl Store {
    /// Records a payout or refund with its hold and first jobs, or says why not.
    pub async fn create_payout(
        &self,
        payout: &PayoutRecord,
        hold: &NewTransfer,
        jobs: &[NewJob],
        views: &dyn ObjectViews,
    ) -> Result<CreatePayoutOutcome, StoreError> {
        let now = payout.created_at;
        let mut transaction = self.begin_write().await?;
        if let Some(existing) = find_by_reference_in(&mut transaction, payout).await? {
            return Ok(
                if existing.request_fingerprint == payout.request_fingerprint {
                    CreatePayoutOutcome::Existing(Box::new(existing))
                } else {
                    CreatePayoutOutcome::ReferenceConflict(Box::new(existing))
                },
            );
        }
        if let (PayoutKind::Refund, Some(payment_id)) = (payout.kind, payout.payment_id) {
            let reserved = sqlx::query(
                "UPDATE payments SET refunded_minor = refunded_minor + $1, updated_at_ms = $2 \
                 WHERE id = $3 AND status = 'succeeded' AND refunded_minor + $1 <= amount_minor",
            )
            .bind(payout.amount.amount_minor)
            .bind(now.unix_ms())
            .bind(payment_id.to_string())
            .execute(&mut *transaction)
            .await?
            .rows_affected();
            if reserved == 0 {
                let row = sqlx::query("SELECT amount_minor - refunded_minor AS refundable FROM payments WHERE id = $1")
                    .bind(payment_id.to_string())
                    .fetch_one(&mut *transaction)
                    .await?;
                return Ok(CreatePayoutOutcome::RefundTooLarge {
                    refundable_minor: row.try_get("refundable")?,
                });
            }
        }
        let inserted =
            match insert_payout_in(&mut transaction, self.backend(), payout, hold).await? {
                Ok(inserted) => inserted,
                Err(refused) => return Ok(refused),
            };
        let Some(created) = inserted else {
            // A concurrent create with the same reference won; ours rolls back.
            drop(transaction);
            let mut transaction = self.begin_write().await?;
            let existing = find_by_reference_in(&mut transaction, payout)
                .await?
                .expect("the winner committed");
            return Ok(
                if existing.request_fingerprint == payout.request_fingerprint {
                    CreatePayoutOutcome::Existing(Box::new(existing))
                } else {
                    CreatePayoutOutcome::ReferenceConflict(Box::new(existing))
                },
            );
        };
        enqueue_in(&mut transaction, self.backend(), jobs, now).await?;
        let event = NewEvent::for_payout(views, &created, now);
        self.commit_with_events(transaction, std::slice::from_ref(&event))
            .await?;
        Ok(CreatePayoutOutcome::Created(Box::new(created)))
    }

    /// Records the rail's id for a pending payout that has none yet.
    pub async fn attach_payout_rail_transaction(
        &self,
        id: &str,
        rail_transaction_id: &str,
        jobs: &[NewJob],
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        let attached = sqlx::query(
            "UPDATE payouts SET rail_transaction_id = $1, updated_at_ms = $2 \
             WHERE id = $3 AND status = 'pending' AND rail_transaction_id IS NULL",
        )
        .bind(rail_transaction_id)
        .bind(now.unix_ms())
        .bind(id)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if attached == 1 {
            enqueue_in(&mut transaction, self.backend(), jobs, now).await?;
        }
        transaction.commit().await?;
        Ok(attached == 1)
    }

    /// Settles a pending payout or refund: posts its hold on success, voids
    /// it on failure (and frees a failed refund's amount for another
    /// refund). False if it was no longer pending.
    pub async fn complete_payout(
        &self,
        id: &str,
        failure: Option<(String, String)>,
        now: Timestamp,
        views: &dyn ObjectViews,
    ) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        let status = if failure.is_some() {
            PayoutStatus::Failed
        } else {
            PayoutStatus::Succeeded
        };
        let (code, message) = failure.clone().unzip();
        let changed = sqlx::query(
            "UPDATE payouts SET status = $1, failure_code = $2, failure_message = $3, updated_at_ms = $4, \
             completed_at_ms = $4 WHERE id = $5 AND status = 'pending'",
        )
        .bind(status.as_str())
        .bind(code)
        .bind(message)
        .bind(now.unix_ms())
        .bind(id)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if changed == 0 {
            return Ok(false);
        }
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM payouts WHERE id = $1"
        )))
        .bind(id)
        .fetch_one(&mut *transaction)
        .await?;
        let payout = from_row(&row)?;
        let hold = payout.hold_transfer_id.expect("every payout has its hold");
        let outcome = if failure.is_some() {
            HoldOutcome::Void
        } else {
            HoldOutcome::Post
        };
        if let Err(error) =
            settle_pending_in(&mut transaction, self.backend(), hold, outcome, now).await?
        {
            return Err(StoreError::corrupt("payouts", "hold_transfer_id", error));
        }
        if let (true, Some(payment_id)) = (failure.is_some(), payout.payment_id) {
            sqlx::query("UPDATE payments SET refunded_minor = refunded_minor - $1, updated_at_ms = $2 WHERE id = $3")
                .bind(payout.amount.amount_minor)
                .bind(now.unix_ms())
                .bind(payment_id.to_string())
                .execute(&mut *transaction)
                .await?;
        }
        if payout.purpose.is_some() {
            let job = NewJob::new(PAYOUT_FOLLOW_UP_JOB, &payout.id, now).urgent();
            enqueue_in(&mut transaction, self.backend(), &[job], now).await?;
        }
        let event = NewEvent::for_payout(views, &payout, now);
        self.commit_with_events(transaction, std::slice::from_ref(&event))
            .await?;
        Ok(true)
    }

    /// For workers: a payout or refund by id.
    pub async fn find_payout(&self, id: &str) -> Result<Option<PayoutRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM payouts WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn find_payout_by_rail_transaction(
        &self,
        rail: &str,
        rail_transaction_id: &str,
    ) -> Result<Option<PayoutRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM payouts WHERE rail = $1 AND rail_transaction_id = $2"
        )))
        .bind(rail)
        .bind(rail_transaction_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub fn payouts(&self, tenant: Tenant, kind: PayoutKind) -> TenantPayouts<'_> {
        TenantPayouts {
            store: self,
            tenant,
            kind,
        }
    }
}

/// One merchant's payouts (or refunds), in one mode.
pub struct TenantPayouts<'a> {
    store: &'a Store,
    tenant: Tenant,
    kind: PayoutKind,
}

impl TenantPayouts<'_> {
    pub async fn find(&self, id: &str) -> Result<Option<PayoutRecord>, StoreError> {
        Ok(self
            .store
            .find_payout(id)
            .await?
            .filter(|p| p.tenant() == self.tenant && p.kind == self.kind))
    }

    /// Newest first, optionally by status or (refunds) by payment.
    pub async fn list(
        &self,
        status: Option<PayoutStatus>,
        payment_id: Option<PaymentId>,
        page: &PageRequest,
    ) -> Result<Page<PayoutRecord>, StoreError> {
        let mut sql = Sql::new(
            self.store.backend(),
            &format!("SELECT {COLUMNS} FROM payouts WHERE merchant_id = "),
        );
        sql.bind(self.tenant.merchant_id.to_string())
            .push(" AND mode = ")
            .bind(self.tenant.mode.as_str())
            .push(" AND kind = ")
            .bind(self.kind.as_str());
        if let Some(status) = status {
            sql.push(" AND status = ").bind(status.as_str());
        }
        if let Some(payment_id) = payment_id {
            sql.push(" AND payment_id = ").bind(payment_id.to_string());
        }
        if let Some(after) = &page.starting_after {
            sql.push(" AND id < ").bind(after.clone());
        }
        sql.push(" ORDER BY id DESC LIMIT ")
            .bind(i64::from(page.limit) + 1);
        let rows = sql.query().fetch_all(&self.store.pool).await?;
        let payouts = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(payouts, page.limit))
    }
}
