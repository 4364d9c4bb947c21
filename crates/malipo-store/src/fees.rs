//! Fee schedules at platform, merchant and entity level, optionally per
//! rail, direction and currency. The most specific schedule wins.

use malipo_core::{
    Currency, Direction, FeePayer, FeeSchedule, FeeScheduleId, MerchantId, Timestamp,
};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::sql::Sql;
use crate::{NewAuditEvent, Store, StoreError};

/// Where a schedule applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeeLevel {
    Platform,
    Merchant(MerchantId),
    Entity(String),
}

impl FeeLevel {
    fn as_parts(&self) -> (&'static str, String) {
        match self {
            FeeLevel::Platform => ("platform", String::new()),
            FeeLevel::Merchant(id) => ("merchant", id.to_string()),
            FeeLevel::Entity(id) => ("entity", id.clone()),
        }
    }

    /// Entity beats merchant beats platform.
    fn rank(&self) -> u8 {
        match self {
            FeeLevel::Platform => 0,
            FeeLevel::Merchant(_) => 1,
            FeeLevel::Entity(_) => 2,
        }
    }
}

/// What a schedule applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeTarget {
    pub level: FeeLevel,
    /// `None`: any rail.
    pub rail: Option<String>,
    /// `None`: both directions.
    pub direction: Option<Direction>,
    pub currency: Currency,
}

#[derive(Debug, Clone)]
pub struct FeeScheduleRecord {
    pub id: FeeScheduleId,
    pub level: FeeLevel,
    /// `None`: any rail.
    pub rail: Option<String>,
    /// `None`: both directions.
    pub direction: Option<Direction>,
    pub currency: Currency,
    pub schedule: FeeSchedule,
    pub created_at: Timestamp,
}

impl FeeScheduleRecord {
    /// Level first, then rail, then direction: the most specific wins.
    fn specificity(&self) -> (u8, bool, bool) {
        (
            self.level.rank(),
            self.rail.is_some(),
            self.direction.is_some(),
        )
    }
}

/// What a fee is looked up for.
#[derive(Debug, Clone)]
pub struct FeeContext<'a> {
    pub merchant_id: MerchantId,
    pub entity_id: Option<&'a str>,
    pub rail: &'a str,
    pub direction: Direction,
    pub currency: Currency,
}

const COLUMNS: &str = "id, level, owner_id, rail, direction, currency, percent_bps, fixed_minor, min_minor, max_minor, payer, created_at_ms";

fn from_row(row: &AnyRow) -> Result<FeeScheduleRecord, StoreError> {
    let bad = |column, reason: String| StoreError::corrupt("fee_schedules", column, reason);
    let id: String = row.try_get("id")?;
    let level: String = row.try_get("level")?;
    let owner_id: String = row.try_get("owner_id")?;
    let rail: String = row.try_get("rail")?;
    let direction: String = row.try_get("direction")?;
    let currency: String = row.try_get("currency")?;
    let payer: String = row.try_get("payer")?;
    let percent_bps: i64 = row.try_get("percent_bps")?;
    let schedule = FeeSchedule::new(
        u32::try_from(percent_bps).map_err(|e| bad("percent_bps", e.to_string()))?,
        row.try_get("fixed_minor")?,
        row.try_get("min_minor")?,
        row.try_get("max_minor")?,
        FeePayer::parse(&payer).ok_or_else(|| bad("payer", payer.clone()))?,
    )
    .map_err(|e| bad("percent_bps", e.to_string()))?;
    Ok(FeeScheduleRecord {
        id: FeeScheduleId::parse(&id).map_err(|e| bad("id", e.to_string()))?,
        level: match level.as_str() {
            "platform" => FeeLevel::Platform,
            "merchant" => FeeLevel::Merchant(
                MerchantId::parse(&owner_id).map_err(|e| bad("owner_id", e.to_string()))?,
            ),
            "entity" => FeeLevel::Entity(owner_id),
            other => return Err(bad("level", other.to_owned())),
        },
        rail: (!rail.is_empty()).then_some(rail),
        direction: match direction.as_str() {
            "" => None,
            text => Some(Direction::parse(text).ok_or_else(|| bad("direction", text.to_owned()))?),
        },
        currency: Currency::parse(&currency).map_err(|e| bad("currency", e.to_string()))?,
        schedule,
        created_at: Timestamp::from_unix_ms(row.try_get("created_at_ms")?),
    })
}

impl Store {
    /// Sets (or replaces) the schedule for its level, rail, direction and
    /// currency, and records the change in the audit log.
    pub async fn set_fee_schedule(
        &self,
        target: FeeTarget,
        schedule: FeeSchedule,
        actor: &str,
        now: Timestamp,
    ) -> Result<FeeScheduleRecord, StoreError> {
        let FeeTarget {
            level,
            rail,
            direction,
            currency,
        } = target;
        let rail = rail.as_deref();
        let (level_name, owner_id) = level.as_parts();
        let rail_text = rail.unwrap_or_default().to_owned();
        let direction_text = direction.map_or("", Direction::as_str);
        let mut transaction = self.begin_write().await?;
        sqlx::query(
            "DELETE FROM fee_schedules WHERE level = $1 AND owner_id = $2 AND rail = $3 AND direction = $4 AND currency = $5",
        )
        .bind(level_name)
        .bind(owner_id.clone())
        .bind(rail_text.clone())
        .bind(direction_text)
        .bind(currency.code())
        .execute(&mut *transaction)
        .await?;
        let record = FeeScheduleRecord {
            id: FeeScheduleId::generate(),
            level: level.clone(),
            rail: rail.map(str::to_owned),
            direction,
            currency,
            schedule,
            created_at: now,
        };
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO fee_schedules ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        )))
        .bind(record.id.to_string())
        .bind(level_name)
        .bind(owner_id)
        .bind(rail_text)
        .bind(direction_text)
        .bind(currency.code())
        .bind(i64::from(schedule.percent_bps))
        .bind(schedule.fixed_minor)
        .bind(schedule.min_minor)
        .bind(schedule.max_minor)
        .bind(schedule.payer.as_str())
        .bind(now.unix_ms())
        .execute(&mut *transaction)
        .await?;
        let details = serde_json::json!({
            "level": level_name,
            "rail": rail,
            "direction": direction.map(Direction::as_str),
            "currency": currency.code(),
            "percent_bps": schedule.percent_bps,
            "fixed_minor": schedule.fixed_minor,
            "min_minor": schedule.min_minor,
            "max_minor": schedule.max_minor,
            "payer": schedule.payer.as_str(),
        });
        let mut audit = NewAuditEvent::new(actor, "fee_schedule.set", record.id)
            .with_details(details.to_string());
        if let FeeLevel::Merchant(merchant_id) = level {
            audit.merchant_id = Some(merchant_id);
        }
        crate::audit::append_in(&mut transaction, self.backend(), &audit, now).await?;
        transaction.commit().await?;
        Ok(record)
    }

    /// All schedules, or those that apply to one merchant (its own and the
    /// platform's).
    pub async fn list_fee_schedules(
        &self,
        merchant: Option<MerchantId>,
    ) -> Result<Vec<FeeScheduleRecord>, StoreError> {
        let mut sql = Sql::new(
            self.backend(),
            &format!("SELECT {COLUMNS} FROM fee_schedules"),
        );
        if let Some(merchant_id) = merchant {
            sql.push(" WHERE level = 'platform' OR (level = 'merchant' AND owner_id = ")
                .bind(merchant_id.to_string())
                .push(")");
        }
        sql.push(" ORDER BY level, owner_id, currency, rail, direction");
        let rows = sql.query().fetch_all(&self.pool).await?;
        rows.iter().map(from_row).collect()
    }

    /// The schedule that applies: the most specific match, if any.
    pub async fn resolve_fee_schedule(
        &self,
        context: &FeeContext<'_>,
    ) -> Result<Option<FeeScheduleRecord>, StoreError> {
        let mut sql = Sql::new(
            self.backend(),
            &format!("SELECT {COLUMNS} FROM fee_schedules WHERE currency = "),
        );
        sql.bind(context.currency.code())
            .push(" AND rail IN ('', ")
            .bind(context.rail)
            .push(") AND direction IN ('', ")
            .bind(context.direction.as_str())
            .push(") AND (level = 'platform' OR (level = 'merchant' AND owner_id = ")
            .bind(context.merchant_id.to_string())
            .push(")");
        if let Some(entity_id) = context.entity_id {
            sql.push(" OR (level = 'entity' AND owner_id = ")
                .bind(entity_id)
                .push(")");
        }
        sql.push(")");
        let rows = sql.query().fetch_all(&self.pool).await?;
        let candidates = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(candidates
            .into_iter()
            .max_by_key(FeeScheduleRecord::specificity))
    }
}
