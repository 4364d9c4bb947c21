//! Sandbox test clocks: plans and settlement entities attached to one take
//! its time as now, and an advance walks it forward through every moment a
//! plan or an entity (a batch, a reserve release) needs the worker,
//! waiting at each for the rail's answers, so collections, retries,
//! delinquency and default happen as real time would make them, in seconds.

use malipo_core::{MerchantId, TestClockId, Timestamp};
use malipo_store::{NewJob, StoreError, Tenant, TestClockRecord};

use super::TEST_CLOCK_ADVANCE_JOB;
use super::objects::test_clock_event;
use crate::Payments;

/// How often an advance looks again while a collection is with the rail.
const BUSY_RECHECK_MS: i64 = 100;
/// Steps one run of the advance job takes before yielding to other jobs.
const STEPS_PER_RUN: usize = 200;
/// The furthest one advance may go: ten years.
const ADVANCE_MAX_MS: i64 = 10 * 366 * 24 * 3_600_000;

#[derive(Debug, thiserror::Error)]
pub enum TestClockError {
    #[error("no such test clock")]
    NotFound,
    #[error("{param}: {message}")]
    Invalid {
        param: &'static str,
        message: String,
    },
    #[error("test clocks exist only in test mode")]
    LiveMode,
    #[error("the test clock is advancing; wait until it is ready")]
    Advancing,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Payments {
    pub async fn create_test_clock(
        &self,
        tenant: Tenant,
        name: String,
        frozen_time: Option<Timestamp>,
    ) -> Result<TestClockRecord, TestClockError> {
        if tenant.mode.is_live() {
            return Err(TestClockError::LiveMode);
        }
        let now = self.clock.now();
        let frozen_time = frozen_time.unwrap_or(now);
        let clock = TestClockRecord {
            id: TestClockId::generate(),
            merchant_id: tenant.merchant_id,
            name,
            frozen_time,
            target_time: frozen_time,
            status: "ready".to_owned(),
            created_at: now,
            updated_at: now,
        };
        self.store.create_test_clock(&clock).await?;
        Ok(clock)
    }

    pub async fn find_test_clock(
        &self,
        tenant: Tenant,
        id: TestClockId,
    ) -> Result<TestClockRecord, TestClockError> {
        let owned = |merchant: MerchantId| !tenant.mode.is_live() && merchant == tenant.merchant_id;
        match self.store.find_test_clock(id).await? {
            Some(clock) if owned(clock.merchant_id) => Ok(clock),
            _ => Err(TestClockError::NotFound),
        }
    }

    /// Starts moving the clock to `to`; the worker does the walk.
    pub async fn advance_test_clock(
        &self,
        tenant: Tenant,
        id: TestClockId,
        to: Timestamp,
    ) -> Result<TestClockRecord, TestClockError> {
        let clock = self.find_test_clock(tenant, id).await?;
        if clock.status != "ready" {
            return Err(TestClockError::Advancing);
        }
        if to <= clock.frozen_time || to.unix_ms() - clock.frozen_time.unix_ms() > ADVANCE_MAX_MS {
            return Err(TestClockError::Invalid {
                param: "frozen_time",
                message: "must be after the clock's time, and at most ten years after".to_owned(),
            });
        }
        let now = self.clock.now();
        let job = NewJob::new(TEST_CLOCK_ADVANCE_JOB, id, now).urgent();
        let started = self
            .store
            .start_test_clock_advance(id, to, &job, |clock| test_clock_event(clock, now), now)
            .await?
            .ok_or(TestClockError::Advancing)?;
        self.wake.notify_one();
        Ok(started)
    }

    /// One run of an advance: steps the clock to each time a plan on it
    /// is due, ticks those plans, and waits while their collections are
    /// with the rail. Returns when to run again, or `None` when done.
    pub(crate) async fn run_test_clock_advance(
        &self,
        id: TestClockId,
    ) -> Result<Option<Timestamp>, StoreError> {
        let mut last_step = None;
        for _ in 0..STEPS_PER_RUN {
            let Some(clock) = self.store.find_test_clock(id).await? else {
                return Ok(None);
            };
            if clock.status != "advancing" {
                return Ok(None);
            }
            if self.store.test_clock_busy(id).await?
                || self.store.test_clock_settlements_in_flight(id).await?
            {
                return Ok(Some(self.clock.now().plus_ms(BUSY_RECHECK_MS)));
            }
            let next_plan = self.store.test_clock_next_tick(id).await?;
            let next_entity = self.store.test_clock_next_entity_tick(id).await?;
            let next = match (next_plan, next_entity) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            match next {
                Some(next) if next <= clock.target_time && last_step != Some(next) => {
                    // A plan still due at the same time after its tick, with
                    // nothing in flight, would hold the clock for ever: the
                    // `last_step` guard moves on to the target instead.
                    last_step = Some(next);
                    let at = next.max(clock.frozen_time);
                    self.store
                        .set_test_clock_time(id, at, self.clock.now())
                        .await?;
                    for plan in self.store.test_clock_due_plans(id, at).await? {
                        if let Err(error) = self.tick_plan(plan, None).await {
                            tracing::warn!(plan = %plan, %error, "test clock: plan tick failed");
                            return Ok(Some(self.clock.now().plus_ms(1_000)));
                        }
                    }
                    for entity in self.store.test_clock_due_entities(id, at).await? {
                        if let Err(error) = self.tick_entity(entity).await {
                            tracing::warn!(entity = %entity, %error, "test clock: entity tick failed");
                            return Ok(Some(self.clock.now().plus_ms(1_000)));
                        }
                    }
                }
                _ => {
                    let now = self.clock.now();
                    self.store
                        .finish_test_clock_advance(id, |clock| test_clock_event(clock, now), now)
                        .await?;
                    return Ok(None);
                }
            }
        }
        Ok(Some(self.clock.now()))
    }
}
