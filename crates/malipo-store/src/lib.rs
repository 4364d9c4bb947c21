//! Storage: the only crate that contains SQL.
//!
//! One schema, two backends: SQLite (embedded, the zero-config default) and
//! PostgreSQL (production, several nodes). Queries go through `sqlx::Any` so
//! there is one SQL text per query; the few dialect differences live in
//! [`Backend`] and the per-backend migration folders.
//!
//! Every finder over merchant data takes a [`Tenant`]: forgetting the
//! merchant and mode is a compile error, not a data leak.

mod api_keys;
mod audit;
mod batcher;
mod bnpl;
mod check;
mod connect;
mod entities;
mod error;
mod events;
mod fees;
mod fx;
mod idempotency;
mod inbound;
mod jobs;
mod ledger;
mod ledger_writer;
mod merchants;
mod migrations;
mod oauth;
mod payment_references;
mod payments;
mod payouts;
mod plans;
mod rail_configs;
mod secrets;
mod settlement;
mod sql;
mod users;
mod webhooks;

pub use api_keys::{ApiKeyRecord, ApiKeys, AuthKey, LAST_USED_RESOLUTION_MS, NewApiKey};
pub use audit::{AuditEventRecord, AuditVerification, NewAuditEvent, TenantAudit};
pub use batcher::{Batcher, WriteError};
pub use bnpl::{
    CheckoutRecord, CreateCheckoutOutcome, CustomerExposure, InstallmentRecord, PlanEffects,
    PlanFilter, PlanPaymentRecord, PlanRecord, PlanState, PlanWriteError, TestClockRecord,
};
pub use check::LedgerReport;
pub use connect::{Backend, ConnectOptions, Store};
pub use entities::{EntityRecord, SettlementMethod};
pub use error::StoreError;
pub use events::{EventFilter, EventRecord, NewEvent, ObjectViews, TenantEvents};
pub use fees::{FeeContext, FeeLevel, FeeScheduleRecord, FeeTarget};
pub use fx::FxRateRecord;
pub use idempotency::{Claim, IdempotencyRecords, StoredResponse};
pub use inbound::{InboundRecord, InboundState, PROCESS_INBOUND_JOB};
pub use jobs::{JobRecord, NewJob};
pub use ledger::{
    AccountRecord, CurrencyBalance, PostResult, PostedTransfer, TenantLedger, TransferFilter,
    TransferRecord, TransferState,
};
pub use ledger_writer::{BATCH_TRANSFERS_MAX, LedgerWriter};
pub use merchants::{MerchantRecord, MerchantStatus, Merchants};
pub use oauth::{NewOAuthClient, OAuthClientAuth, OAuthClientRecord, SigningKeyRecord};
pub use payment_references::{CreateReferenceOutcome, PaymentReferenceRecord, ReferenceFilter};
pub use payments::{
    CreatePaymentOutcome, PAYMENT_FOLLOW_UP_JOB, PaymentFilter, PaymentRecord, PaymentStatRow,
    PaymentUpdate, TenantPayments, UpdateOutcome,
};
pub use payouts::{
    CreatePayoutOutcome, PAYOUT_FOLLOW_UP_JOB, PayoutDestination, PayoutKind, PayoutRecord,
    PayoutStatus, TenantPayouts,
};
pub use plans::{PlanProductRecord, TenantPlanProducts};
pub use rail_configs::{RailConfigRecord, SaveRailConfig};
pub use secrets::ResealReport;
pub use settlement::{
    AssignError, ChargebackOutcome, ChargebackRecord, ComputeOutcome, CustomerPaymentIn,
    CustomerPaymentOutcome, ENTITY_TICK_JOB, EntityAccounts, EntityBalances, InboundAccounts,
    NewChargeback, PaymentSplit, ReferencePaymentFilter, ReferencePaymentRecord,
    SETTLEMENT_SUBMIT_JOB, SettlementFilter, SettlementLine, SettlementRecord, split_payment,
};
pub use users::{SessionRecord, SessionStage, TeamChange, UserRecord};
pub use webhooks::{
    AttemptOutcome, AttemptsOf, DeliveryClaim, DeliveryTarget, EndpointUpdate, TenantWebhooks,
    WebhookAttemptRecord, WebhookEndpointRecord,
};

use malipo_core::{MerchantId, Mode};

/// Whose data a query may touch: one merchant, in one mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tenant {
    pub merchant_id: MerchantId,
    pub mode: Mode,
}

/// A page request: newest first, `limit` rows after the `starting_after` id.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub limit: u32,
    pub starting_after: Option<String>,
}

/// A page of rows and whether more follow.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub rows: Vec<T>,
    pub has_more: bool,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows fetched.
    fn from_overfetch(mut rows: Vec<T>, limit: u32) -> Self {
        let has_more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        Self { rows, has_more }
    }
}

/// The `merchant_id` and `mode` columns of a row of `table`.
pub(crate) fn tenant_of(
    row: &sqlx::any::AnyRow,
    table: &'static str,
) -> Result<Tenant, StoreError> {
    use sqlx::Row;
    let merchant: String = row.try_get("merchant_id")?;
    let mode: String = row.try_get("mode")?;
    Ok(Tenant {
        merchant_id: MerchantId::parse(&merchant)
            .map_err(|e| StoreError::corrupt(table, "merchant_id", e))?,
        mode: Mode::parse(&mode).ok_or_else(|| StoreError::corrupt(table, "mode", &mode))?,
    })
}

impl Store {
    /// One row of `table` by id: the tenant's, or (`None`, for workers and
    /// hosted pages) whoever's.
    pub(crate) async fn find_row<T>(
        &self,
        table: &str,
        columns: &str,
        id: &str,
        tenant: Option<Tenant>,
        from_row: impl Fn(&sqlx::any::AnyRow) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let mut sql = sql::Sql::new(
            self.backend(),
            &format!("SELECT {columns} FROM {table} WHERE id = "),
        );
        sql.bind(id);
        if let Some(tenant) = tenant {
            sql.push(" AND merchant_id = ")
                .bind(tenant.merchant_id.to_string())
                .push(" AND mode = ")
                .bind(tenant.mode.as_str());
        }
        let row = sql.query().fetch_optional(&self.pool).await?;
        row.as_ref().map(from_row).transpose()
    }

    /// One page of a tenant's rows of `table`, newest first (ids sort by
    /// creation), each turned by `from_row`.
    pub(crate) async fn tenant_page<T>(
        &self,
        tenant: Tenant,
        table: &str,
        columns: &str,
        page: &PageRequest,
        from_row: impl Fn(&sqlx::any::AnyRow) -> Result<T, StoreError>,
    ) -> Result<Page<T>, StoreError> {
        self.tenant_page_where(tenant, table, columns, page, |_| {}, from_row)
            .await
    }

    /// [`Store::tenant_page`] with more conditions, which `filter` appends
    /// (each starting ` AND `).
    pub(crate) async fn tenant_page_where<T>(
        &self,
        tenant: Tenant,
        table: &str,
        columns: &str,
        page: &PageRequest,
        filter: impl FnOnce(&mut sql::Sql),
        from_row: impl Fn(&sqlx::any::AnyRow) -> Result<T, StoreError>,
    ) -> Result<Page<T>, StoreError> {
        let mut sql = sql::Sql::new(
            self.backend(),
            &format!("SELECT {columns} FROM {table} WHERE merchant_id = "),
        );
        sql.bind(tenant.merchant_id.to_string())
            .push(" AND mode = ")
            .bind(tenant.mode.as_str());
        filter(&mut sql);
        if let Some(after) = &page.starting_after {
            sql.push(" AND id < ").bind(after.clone());
        }
        sql.push(" ORDER BY id DESC LIMIT ")
            .bind(i64::from(page.limit) + 1);
        let rows = sql.query().fetch_all(&self.pool).await?;
        let records = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(records, page.limit))
    }
}
