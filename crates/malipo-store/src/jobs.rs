//! The job queue. Jobs are written in the transaction of the change that
//! needs them (an outbox); workers lease due jobs, so several nodes share
//! the queue and no job runs twice at once. A job must be idempotent: a
//! lease can run out while its worker is still busy, or the worker can die
//! after the work but before `finish_job`.

use malipo_core::{JobId, Timestamp};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::sql::{Sql, Value};
use crate::{Backend, Store, StoreError};

type Transaction = sqlx::Transaction<'static, sqlx::Any>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub kind: &'static str,
    /// The object the job is about (`pay_…`), for logs and look-ups.
    pub subject_id: String,
    /// JSON with anything else the job needs.
    pub payload: String,
    pub run_at: Timestamp,
    /// Leased before every job that is not: a customer's prompt or a
    /// rail's callback, which someone is waiting for, must not queue
    /// behind a backlog of status polls.
    pub urgent: bool,
}

impl NewJob {
    pub fn new(kind: &'static str, subject_id: impl ToString, run_at: Timestamp) -> Self {
        Self {
            kind,
            subject_id: subject_id.to_string(),
            payload: "{}".to_owned(),
            run_at,
            urgent: false,
        }
    }

    pub fn urgent(mut self) -> Self {
        self.urgent = true;
        self
    }
}

#[derive(Debug, Clone)]
pub struct JobRecord {
    pub id: JobId,
    pub kind: String,
    pub subject_id: String,
    pub payload: String,
    pub run_at: Timestamp,
    /// Including the run now leased.
    pub attempts: i64,
    pub last_error: Option<String>,
}

fn from_row(row: &AnyRow) -> Result<JobRecord, StoreError> {
    let id: String = row.try_get("id")?;
    Ok(JobRecord {
        id: JobId::parse(&id).map_err(|e| StoreError::corrupt("jobs", "id", e))?,
        kind: row.try_get("kind")?,
        subject_id: row.try_get("subject_id")?,
        payload: row.try_get("payload")?,
        run_at: Timestamp::from_unix_ms(row.try_get("run_at_ms")?),
        attempts: row.try_get("attempts")?,
        last_error: row.try_get("last_error")?,
    })
}

pub(crate) async fn enqueue_in(
    transaction: &mut Transaction,
    backend: Backend,
    jobs: &[NewJob],
    now: Timestamp,
) -> Result<(), StoreError> {
    if jobs.is_empty() {
        return Ok(());
    }
    let mut sql = Sql::new(
        backend,
        "INSERT INTO jobs (id, kind, subject_id, payload, run_at_ms, created_at_ms, priority) VALUES ",
    );
    sql.bind_rows(jobs.iter().map(|job| {
        [
            Value::from(JobId::generate().to_string()),
            Value::from(job.kind),
            Value::from(job.subject_id.clone()),
            Value::from(job.payload.clone()),
            Value::from(job.run_at.unix_ms()),
            Value::from(now.unix_ms()),
            Value::from(if job.urgent { 0 } else { 1 }),
        ]
    }));
    sql.query().execute(&mut **transaction).await?;
    Ok(())
}

/// Releases leased jobs to run again at their times, with why, in one
/// statement per chunk.
pub(crate) async fn reschedule_in(
    transaction: &mut Transaction,
    backend: Backend,
    jobs: &[(JobId, Timestamp, String)],
) -> Result<(), StoreError> {
    for chunk in jobs.chunks(crate::sql::PLACEHOLDERS_MAX / 3) {
        let mut sql = Sql::new(
            backend,
            "UPDATE jobs SET run_at_ms = v.column2, locked_until_ms = NULL, last_error = v.column3 \
             FROM (VALUES ",
        );
        sql.bind_rows(chunk.iter().map(|(id, run_at, error)| {
            [
                Value::from(id.to_string()),
                Value::from(run_at.unix_ms()),
                Value::from(error.as_str()),
            ]
        }));
        sql.push(") AS v WHERE jobs.id = v.column1");
        sql.query().execute(&mut **transaction).await?;
    }
    Ok(())
}

impl Store {
    pub async fn enqueue_jobs(&self, jobs: &[NewJob], now: Timestamp) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        enqueue_in(&mut transaction, self.backend(), jobs, now).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Leases up to `limit` due jobs until `now + lease_ms`.
    pub async fn claim_jobs(
        &self,
        now: Timestamp,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<JobRecord>, StoreError> {
        let skip_locked = match self.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let mut sql = Sql::new(self.backend(), "UPDATE jobs SET locked_until_ms = ");
        sql.bind(now.unix_ms() + lease_ms)
            .push(", attempts = attempts + 1 WHERE id IN (SELECT id FROM jobs WHERE run_at_ms <= ")
            .bind(now.unix_ms())
            .push(" AND (locked_until_ms IS NULL OR locked_until_ms < ")
            .bind(now.unix_ms())
            .push(") ORDER BY priority, run_at_ms LIMIT ")
            .bind(i64::from(limit))
            .push(skip_locked)
            .push(") RETURNING id, kind, subject_id, payload, run_at_ms, attempts, last_error");
        let rows = sql.query().fetch_all(&self.writes).await?;
        let mut jobs = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
        jobs.sort_by_key(|job| job.run_at);
        Ok(jobs)
    }

    /// When the next job falls due, if any (workers sleep until then).
    pub async fn next_job_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let row = sqlx::query("SELECT MIN(run_at_ms) AS due FROM jobs")
            .fetch_one(&self.pool)
            .await?;
        let due: Option<i64> = row.try_get("due")?;
        Ok(due.map(Timestamp::from_unix_ms))
    }
}
