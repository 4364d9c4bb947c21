//! Plans: automatic collection of installments, what their outcomes do,
//! and early or extra payments.

use malipo_core::{AccountId, Currency, Money, PaymentStatus, Phone, PlanId, TimeZone, Timestamp};
use malipo_ledger::{AccountKind, AccountSpec, NewEntry, NewTransfer};
use malipo_store::{
    CreatePaymentOutcome, NewJob, PaymentRecord, PlanEffects, PlanRecord, PlanState,
    PlanWriteError, StoreError, Tenant,
};

use super::objects::{installment_event, plan_event};
use super::rules::{self, Happening};
use super::{LEDGER_QUALIFIER, PLAN_TICK_JOB, ProductSnapshot, Purpose};
use crate::Payments;
use crate::collections::{CreatePayment, FeeMode, PaymentError};

#[derive(Debug, thiserror::Error)]
pub enum PlanPaymentError {
    #[error("no such plan")]
    NotFound,
    #[error("{param}: {message}")]
    Invalid {
        param: &'static str,
        message: String,
    },
    #[error("the plan is {0}: it takes no payments")]
    Closed(String),
    #[error("a collection of this plan is with the rail; try again when it has ended")]
    CollectionInFlight,
    #[error("the merchant's available balance cannot return the unpaid principal")]
    InsufficientBalance,
    #[error(transparent)]
    Payment(#[from] PaymentError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The platform's BNPL accounts in one currency and mode.
pub(crate) struct PlanAccounts {
    pub suspense: AccountId,
    pub receivable: AccountId,
    pub income: AccountId,
    pub write_off: AccountId,
}

pub(crate) fn product_of(plan: &PlanRecord) -> Option<ProductSnapshot> {
    serde_json::from_str(&plan.product).ok()
}

pub(crate) fn zone_of(name: &str) -> TimeZone {
    TimeZone::parse(name).unwrap_or(TimeZone::UTC)
}

/// The reference of an automatic collection: one payment per attempt, so
/// starting the same attempt twice finds the first payment.
fn attempt_reference(plan: PlanId, number: i64, attempt: i64) -> String {
    format!("{plan}:{number}:{attempt}")
}

fn parse_attempt_reference(reference: &str) -> Option<(i64, i64)> {
    let mut parts = reference.rsplitn(3, ':');
    let attempt = parts.next()?.parse().ok()?;
    let number = parts.next()?.parse().ok()?;
    Some((number, attempt))
}

/// What applying a plan's rules needs besides its rows: the plan as last
/// read, its product, its time zone and time, and the ledger accounts.
pub(crate) struct PlanContext {
    pub plan: PlanRecord,
    pub product: ProductSnapshot,
    pub zone: TimeZone,
    pub now: Timestamp,
    pub accounts: PlanAccounts,
}

impl Payments {
    /// A plan's context, or `None` if there is no such plan (or its stored
    /// product no longer parses, which is logged).
    pub(crate) async fn plan_context(&self, id: PlanId) -> Result<Option<PlanContext>, StoreError> {
        let Some(plan) = self.store.find_plan_by_id(id).await? else {
            return Ok(None);
        };
        let Some(product) = product_of(&plan) else {
            tracing::error!(plan = %id, "stored plan product does not parse");
            return Ok(None);
        };
        let zone = zone_of(&plan.time_zone);
        let now = self.plan_now(&plan).await?;
        let accounts = self.plan_accounts(plan.mode, plan.currency).await?;
        Ok(Some(PlanContext {
            plan,
            product,
            zone,
            now,
            accounts,
        }))
    }

    /// Now, as a plan sees it: its test clock's time if it has one.
    pub(crate) async fn plan_now(&self, plan: &PlanRecord) -> Result<Timestamp, StoreError> {
        match plan.test_clock_id {
            Some(clock) => Ok(self
                .store
                .find_test_clock(clock)
                .await?
                .map_or_else(|| self.clock.now(), |clock| clock.frozen_time)),
            None => Ok(self.clock.now()),
        }
    }

    pub(crate) async fn plan_accounts(
        &self,
        mode: malipo_core::Mode,
        currency: Currency,
    ) -> Result<PlanAccounts, StoreError> {
        let spec = |kind| AccountSpec::platform(mode, currency, kind, LEDGER_QUALIFIER);
        let ids = self
            .store
            .ensure_accounts(
                &[
                    spec(AccountKind::Suspense),
                    spec(AccountKind::Receivable),
                    spec(AccountKind::Income),
                    spec(AccountKind::WriteOff),
                ],
                self.clock.now(),
            )
            .await?;
        Ok(PlanAccounts {
            suspense: ids[0],
            receivable: ids[1],
            income: ids[2],
            write_off: ids[3],
        })
    }

    /// A plan with its installments and payments, for the API.
    pub async fn plan_state(
        &self,
        tenant: Tenant,
        id: PlanId,
    ) -> Result<Option<(PlanState, Timestamp)>, StoreError> {
        let Some(state) = self.store.plan_snapshot(tenant, id).await? else {
            return Ok(None);
        };
        let now = self.plan_now(&state.plan).await?;
        Ok(Some((state, now)))
    }

    /// The job that wakes a plan at `at`, unless it follows a test clock
    /// (whose advance wakes it). The job carries `at`: a job whose time is
    /// no longer the plan's is stale and does nothing.
    pub(crate) fn tick_job(plan: &PlanRecord) -> Option<NewJob> {
        let at = plan.next_tick_at?;
        if plan.test_clock_id.is_some() {
            return None;
        }
        Some(NewJob {
            payload: serde_json::json!({ "at": at.unix_ms() }).to_string(),
            ..NewJob::new(PLAN_TICK_JOB, plan.id, at)
        })
    }

    /// Turns what happened into events and ledger transfers.
    fn effects_of(
        &self,
        state: &PlanState,
        happenings: &[Happening],
        accounts: &PlanAccounts,
        before_tick: Option<Timestamp>,
        now: Timestamp,
    ) -> PlanEffects {
        let mut effects = PlanEffects::default();
        let upfront = state.plan.funding == "upfront";
        let currency = state.plan.currency;
        for happening in happenings {
            match happening {
                Happening::InstallmentOverdue(number) => {
                    effects
                        .events
                        .extend(installment_event(state, *number, "overdue", None, now));
                }
                Happening::InstallmentFailed(number, _) => {
                    effects
                        .events
                        .extend(installment_event(state, *number, "failed", None, now));
                }
                Happening::PaymentApplied {
                    payment_id,
                    amount_minor,
                    paid_off,
                    partly,
                } => {
                    let payment = Some((*payment_id, *amount_minor));
                    for number in paid_off {
                        effects
                            .events
                            .extend(installment_event(state, *number, "paid", payment, now));
                    }
                    if paid_off.is_empty()
                        && let Some(number) = partly
                    {
                        effects.events.extend(installment_event(
                            state,
                            *number,
                            "partially_paid",
                            payment,
                            now,
                        ));
                    }
                }
                Happening::PlanDelinquent => {
                    effects.events.push(plan_event(state, "delinquent", now))
                }
                Happening::PlanReinstated => {
                    effects.events.push(plan_event(state, "reinstated", now))
                }
                Happening::PlanCompleted => {
                    effects.events.push(plan_event(state, "completed", now))
                }
                Happening::PlanDefaulted(principal) => {
                    effects.events.push(plan_event(state, "defaulted", now));
                    if upfront && *principal > 0 {
                        effects.transfers.push(NewTransfer::posted(
                            format!("plan:{}:written_off", state.plan.id),
                            format!("plan {} defaulted: principal written off", state.plan.id),
                            vec![
                                NewEntry {
                                    account_id: accounts.write_off,
                                    amount: Money::new(-principal, currency),
                                },
                                NewEntry {
                                    account_id: accounts.receivable,
                                    amount: Money::new(*principal, currency),
                                },
                            ],
                        ));
                    }
                }
            }
        }
        if state.plan.next_tick_at != before_tick
            && let Some(job) = Self::tick_job(&state.plan)
        {
            effects.jobs.push(job);
        }
        effects
    }

    /// Runs a plan's rules at its time: marks what is late, defaults what is
    /// lost, and starts the collection that is due. `expected` is the tick
    /// time the caller was woken for; if the plan has moved on, nothing runs.
    pub(crate) async fn tick_plan(
        &self,
        id: PlanId,
        expected: Option<Timestamp>,
    ) -> Result<(), PlanWriteError> {
        let Some(PlanContext {
            plan,
            product,
            zone,
            now,
            accounts,
        }) = self.plan_context(id).await?
        else {
            return Ok(());
        };
        if expected.is_some_and(|at| plan.next_tick_at != Some(at)) {
            return Ok(());
        }
        let changed = self
            .store
            .update_plan(id, |state| {
                if expected.is_some_and(|at| state.plan.next_tick_at != Some(at)) {
                    return None;
                }
                let before = state.plan.next_tick_at;
                let outcome = rules::tick(state, &product, zone, now);
                state.plan.updated_at = now;
                if outcome.happenings.is_empty()
                    && outcome.collect.is_empty()
                    && state.plan.next_tick_at == before
                    && expected.is_none()
                {
                    return None;
                }
                let mut effects =
                    self.effects_of(state, &outcome.happenings, &accounts, before, now);
                if expected.is_some() && state.plan.next_tick_at == before {
                    // Woken for this time and still due then (a collection
                    // in flight): look again later rather than spin.
                    state.plan.next_tick_at = Some(now.plus_ms(60_000));
                    effects.jobs.extend(Self::tick_job(&state.plan));
                }
                Some((effects, outcome.collect))
            })
            .await?;
        let Some((state, collect)) = changed else {
            return Ok(());
        };
        for (number, attempt) in collect {
            self.start_installment_collection(&state, &product, number, attempt)
                .await?;
        }
        Ok(())
    }

    /// Creates (or finds) the payment of one collection attempt.
    async fn start_installment_collection(
        &self,
        state: &PlanState,
        product: &ProductSnapshot,
        number: i64,
        attempt: i64,
    ) -> Result<(), PlanWriteError> {
        let Some(installment) = state.installments.iter().find(|i| i.number == number) else {
            return Ok(());
        };
        let plan = &state.plan;
        let phone = Phone::parse(&plan.customer_phone).map_err(|error| StoreError::Corrupt {
            table: "plans",
            column: "customer_phone",
            reason: error.to_string(),
        })?;
        let amount = installment.outstanding_minor();
        if amount <= 0 {
            return Ok(());
        }
        let request = CreatePayment {
            amount: Money::new(amount, plan.currency),
            phone: Some(phone),
            rail: Some(plan.rail.clone()),
            merchant_reference: Some(attempt_reference(plan.id, number, attempt)),
            idempotency_key: None,
            description: format!("Installment {number} of plan {}", plan.id),
            metadata: plan.metadata.clone(),
            redirect_url: None,
            expires_in_ms: None,
            purpose: Some(Purpose::Installment(plan.id).to_text()),
            fees: if product.is_upfront() {
                FeeMode::None
            } else {
                FeeMode::MerchantPays
            },
        };
        match self
            .create_payment(plan.tenant(), request, |_| String::new())
            .await
        {
            Ok(_) => Ok(()),
            Err(PaymentError::Store(error)) => Err(error.into()),
            Err(error) => {
                // The rail refuses it outright (amount limits, rail gone):
                // this attempt failed.
                tracing::warn!(plan = %plan.id, number, %error, "installment collection refused");
                self.installment_attempt_failed(plan.id, number, attempt, "rail_error")
                    .await
            }
        }
    }

    async fn installment_attempt_failed(
        &self,
        id: PlanId,
        number: i64,
        attempt: i64,
        code: &str,
    ) -> Result<(), PlanWriteError> {
        let Some(PlanContext {
            product,
            zone,
            now,
            accounts,
            ..
        }) = self.plan_context(id).await?
        else {
            return Ok(());
        };
        self.store
            .update_plan(id, |state| {
                let before = state.plan.next_tick_at;
                let happenings =
                    rules::collection_failed(state, &product, zone, number, attempt, code, now);
                if happenings.is_empty() {
                    return None;
                }
                state.plan.updated_at = now;
                Some((
                    self.effects_of(state, &happenings, &accounts, before, now),
                    (),
                ))
            })
            .await?;
        Ok(())
    }

    /// A payment for a plan ended: apply it (succeeded) or record the
    /// failed attempt.
    pub(crate) async fn apply_plan_payment(
        &self,
        payment: &PaymentRecord,
        purpose: Purpose,
    ) -> Result<(), PlanWriteError> {
        let Some(id) = purpose.plan() else {
            return Ok(());
        };
        let automatic = matches!(purpose, Purpose::Installment(_));
        let attempt = payment
            .merchant_reference
            .as_deref()
            .filter(|_| automatic)
            .and_then(parse_attempt_reference);
        if payment.status != PaymentStatus::Succeeded {
            return match attempt {
                Some((number, attempt)) => {
                    let code = payment
                        .failure_code
                        .clone()
                        .unwrap_or_else(|| payment.status.as_str().to_owned());
                    self.installment_attempt_failed(id, number, attempt, &code)
                        .await
                }
                None => Ok(()),
            };
        }
        let Some(PlanContext {
            plan,
            product,
            zone,
            now,
            accounts,
        }) = self.plan_context(id).await?
        else {
            return Ok(());
        };
        let currency = plan.currency;
        self.store
            .update_plan(id, |state| {
                let before = state.plan.next_tick_at;
                let overpaid_before = state.plan.overpaid_minor;
                let (record, happenings) = rules::apply_payment(
                    state,
                    &product,
                    zone,
                    payment.id,
                    payment.amount.amount_minor,
                    attempt,
                    now,
                )?;
                state.plan.updated_at = now;
                let mut effects = self.effects_of(state, &happenings, &accounts, before, now);
                // What paid installments; any excess stays in suspense.
                let applied = record.amount_minor - (state.plan.overpaid_minor - overpaid_before);
                if state.plan.funding == "upfront" && applied > 0 {
                    // Collected into suspense; applied now: principal repays
                    // the receivable, the rest is income.
                    let mut entries = vec![
                        NewEntry {
                            account_id: accounts.suspense,
                            amount: Money::new(-applied, currency),
                        },
                        NewEntry {
                            account_id: accounts.receivable,
                            amount: Money::new(record.principal_minor, currency),
                        },
                    ];
                    if applied > record.principal_minor {
                        entries.push(NewEntry {
                            account_id: accounts.income,
                            amount: Money::new(applied - record.principal_minor, currency),
                        });
                    }
                    entries.retain(|entry| entry.amount.amount_minor != 0);
                    effects.transfers.push(NewTransfer::posted(
                        format!("payment:{}:applied", payment.id),
                        format!("payment {} applied to plan {}", payment.id, state.plan.id),
                        entries,
                    ));
                }
                effects.applied_payments.push(record);
                Some((effects, ()))
            })
            .await?;
        Ok(())
    }

    /// Asks the customer to pay `amount` now (early, extra, or what is
    /// late): a prompt to their phone, applied to the oldest installments
    /// first when it succeeds. Paying the remaining balance completes it.
    pub async fn pay_plan(
        &self,
        tenant: Tenant,
        id: PlanId,
        amount: Option<i64>,
        phone: Option<Phone>,
        idempotency_key: Option<String>,
    ) -> Result<CreatePaymentOutcome, PlanPaymentError> {
        let (state, _) = self
            .plan_state(tenant, id)
            .await?
            .ok_or(PlanPaymentError::NotFound)?;
        let plan = &state.plan;
        if !matches!(plan.status.as_str(), "active" | "delinquent") {
            return Err(PlanPaymentError::Closed(plan.status.clone()));
        }
        let remaining = rules::remaining(&state);
        let amount = amount.unwrap_or(remaining);
        if amount <= 0 || amount > remaining {
            return Err(PlanPaymentError::Invalid {
                param: "amount",
                message: format!("must be 1 to {remaining}, what the plan still owes"),
            });
        }
        let phone = match phone {
            Some(phone) => phone,
            None => Phone::parse(&plan.customer_phone).map_err(|error| StoreError::Corrupt {
                table: "plans",
                column: "customer_phone",
                reason: error.to_string(),
            })?,
        };
        if phone.country.currency != plan.currency {
            return Err(PlanPaymentError::Invalid {
                param: "phone",
                message: format!(
                    "a {} number cannot pay in {}",
                    phone.country.code, plan.currency
                ),
            });
        }
        let upfront = plan.funding == "upfront";
        let request = CreatePayment {
            amount: Money::new(amount, plan.currency),
            phone: Some(phone),
            rail: Some(plan.rail.clone()),
            merchant_reference: None,
            idempotency_key,
            description: format!("Payment to plan {}", plan.id),
            metadata: plan.metadata.clone(),
            redirect_url: None,
            expires_in_ms: None,
            purpose: Some(Purpose::PlanPayment(plan.id).to_text()),
            fees: if upfront {
                FeeMode::None
            } else {
                FeeMode::MerchantPays
            },
        };
        Ok(self
            .create_payment(tenant, request, |_| String::new())
            .await?)
    }

    /// The merchant cancels a plan (goods returned, a sale undone): nothing
    /// more is collected. For an upfront plan the merchant returns the
    /// principal still unpaid from its available balance to the platform's
    /// receivable; refunding what the customer paid is a refund of its own.
    pub async fn cancel_plan(
        &self,
        tenant: Tenant,
        id: PlanId,
    ) -> Result<(PlanState, Timestamp), PlanPaymentError> {
        let plan = self
            .store
            .find_plan(tenant, id)
            .await?
            .ok_or(PlanPaymentError::NotFound)?;
        let now = self.plan_now(&plan).await?;
        let accounts = self.plan_accounts(plan.mode, plan.currency).await?;
        let available = self
            .store
            .ensure_accounts(
                &[AccountSpec::merchant(
                    plan.merchant_id,
                    plan.mode,
                    plan.currency,
                    AccountKind::Available,
                )],
                self.clock.now(),
            )
            .await?[0];
        let currency = plan.currency;
        let changed = self
            .store
            .update_plan(id, |state| {
                let outstanding = rules::cancel(state, now)?;
                let mut effects = PlanEffects::default();
                if state.plan.funding == "upfront" && outstanding > 0 {
                    effects.transfers.push(NewTransfer::posted(
                        format!("plan:{}:cancelled", state.plan.id),
                        format!(
                            "plan {} cancelled: the merchant returns the unpaid principal",
                            state.plan.id
                        ),
                        vec![
                            NewEntry {
                                account_id: available,
                                amount: Money::new(-outstanding, currency),
                            },
                            NewEntry {
                                account_id: accounts.receivable,
                                amount: Money::new(outstanding, currency),
                            },
                        ],
                    ));
                }
                effects.events.push(plan_event(state, "cancelled", now));
                Some((effects, ()))
            })
            .await;
        match changed {
            Ok(Some((state, ()))) => Ok((state, now)),
            Ok(None) => {
                let (state, _) = self
                    .plan_state(tenant, id)
                    .await?
                    .ok_or(PlanPaymentError::NotFound)?;
                if matches!(state.plan.status.as_str(), "active" | "delinquent") {
                    Err(PlanPaymentError::CollectionInFlight)
                } else {
                    Err(PlanPaymentError::Closed(state.plan.status))
                }
            }
            Err(PlanWriteError::Refused(_)) => Err(PlanPaymentError::InsufficientBalance),
            Err(PlanWriteError::NotFound) => Err(PlanPaymentError::NotFound),
            Err(PlanWriteError::Store(error)) => Err(error.into()),
        }
    }

    /// Where a collected plan payment is credited: the platform's BNPL
    /// suspense for an upfront plan (applied to the plan from there), or
    /// `None` for the merchant, as any collection.
    pub(crate) async fn plan_collection_account(
        &self,
        payment: &PaymentRecord,
    ) -> Result<Option<AccountId>, StoreError> {
        let Some(plan_id) = Purpose::of(payment).and_then(Purpose::plan) else {
            return Ok(None);
        };
        let Some(plan) = self.store.find_plan_by_id(plan_id).await? else {
            return Ok(None);
        };
        if plan.funding != "upfront" {
            return Ok(None);
        }
        Ok(Some(
            self.plan_accounts(plan.mode, plan.currency).await?.suspense,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempt_references_round_trip() {
        let plan = PlanId::generate();
        let reference = attempt_reference(plan, 3, 2);
        assert_eq!(parse_attempt_reference(&reference), Some((3, 2)));
        assert_eq!(parse_attempt_reference("nonsense"), None);
    }
}
