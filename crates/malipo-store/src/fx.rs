//! Exchange rates as the operator sets them, each with its source and time.
//! Conversions name the rate they used (its id and text).

use malipo_core::{Currency, FxRateId, Rate, Timestamp};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::sql::Sql;
use crate::{NewAuditEvent, Page, PageRequest, Store, StoreError};

#[derive(Debug, Clone)]
pub struct FxRateRecord {
    pub id: FxRateId,
    pub rate: Rate,
    pub source: String,
    pub as_of: Timestamp,
    pub created_at: Timestamp,
}

const COLUMNS: &str = "id, base_currency, quote_currency, rate, source, as_of_ms, created_at_ms";

fn from_row(row: &AnyRow) -> Result<FxRateRecord, StoreError> {
    let bad = |column, reason: String| StoreError::corrupt("fx_rates", column, reason);
    let id: String = row.try_get("id")?;
    let base: String = row.try_get("base_currency")?;
    let quote: String = row.try_get("quote_currency")?;
    let rate: String = row.try_get("rate")?;
    let base = Currency::parse(&base).map_err(|e| bad("base_currency", e.to_string()))?;
    let quote = Currency::parse(&quote).map_err(|e| bad("quote_currency", e.to_string()))?;
    Ok(FxRateRecord {
        id: FxRateId::parse(&id).map_err(|e| bad("id", e.to_string()))?,
        rate: Rate::parse(base, quote, &rate).map_err(|e| bad("rate", e.to_string()))?,
        source: row.try_get("source")?,
        as_of: Timestamp::from_unix_ms(row.try_get("as_of_ms")?),
        created_at: Timestamp::from_unix_ms(row.try_get("created_at_ms")?),
    })
}

impl Store {
    /// Records a rate (rates are never edited: a new one supersedes).
    pub async fn set_fx_rate(
        &self,
        rate: &Rate,
        source: &str,
        as_of: Timestamp,
        actor: &str,
        now: Timestamp,
    ) -> Result<FxRateRecord, StoreError> {
        let record = FxRateRecord {
            id: FxRateId::generate(),
            rate: rate.clone(),
            source: source.to_owned(),
            as_of,
            created_at: now,
        };
        let mut transaction = self.begin_write().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO fx_rates ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        )))
        .bind(record.id.to_string())
        .bind(rate.base.code())
        .bind(rate.quote.code())
        .bind(rate.as_text())
        .bind(source)
        .bind(as_of.unix_ms())
        .bind(now.unix_ms())
        .execute(&mut *transaction)
        .await?;
        let details = serde_json::json!({
            "base": rate.base.code(), "quote": rate.quote.code(), "rate": rate.as_text(),
            "source": source, "as_of": as_of.to_rfc3339(),
        });
        let audit =
            NewAuditEvent::new(actor, "fx_rate.set", record.id).with_details(details.to_string());
        crate::audit::append_in(&mut transaction, self.backend(), &audit, now).await?;
        transaction.commit().await?;
        Ok(record)
    }

    /// The newest rate for converting `base` into `quote`.
    pub async fn latest_fx_rate(
        &self,
        base: Currency,
        quote: Currency,
    ) -> Result<Option<FxRateRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM fx_rates WHERE base_currency = $1 AND quote_currency = $2 \
             ORDER BY as_of_ms DESC, id DESC LIMIT 1"
        )))
        .bind(base.code())
        .bind(quote.code())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn find_fx_rate(&self, id: FxRateId) -> Result<Option<FxRateRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM fx_rates WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Every rate recorded, newest first.
    pub async fn list_fx_rates(
        &self,
        page: &PageRequest,
    ) -> Result<Page<FxRateRecord>, StoreError> {
        let mut sql = Sql::new(self.backend(), &format!("SELECT {COLUMNS} FROM fx_rates"));
        if let Some(after) = &page.starting_after {
            sql.push(" WHERE id < ").bind(after.clone());
        }
        sql.push(" ORDER BY id DESC LIMIT ")
            .bind(i64::from(page.limit) + 1);
        let rows = sql.query().fetch_all(&self.pool).await?;
        let records = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(records, page.limit))
    }
}
