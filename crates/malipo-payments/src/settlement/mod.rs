//! Settlement on Malipo's ledger, payouts and events (the Finova seed).
//!
//! - A customer pays a **reference number** from their wallet (C2B): the
//!   rail's callback is stored raw, then applied once per rail transaction
//!   id. An open reference takes it: the fee first, what is paid beyond
//!   its total held as an **overpayment**, of the rest a **reserve** held
//!   for the entity's days, and the remainder to the entity's **available**
//!   balance. A number no open reference has lands in **suspense**, listed
//!   for the merchant to assign.
//! - Each entity is **settled** on its schedule (daily, weekly on Mondays,
//!   monthly on the 1st, at 00:00 in the operator's settlement time zone)
//!   or on demand: a batch takes every entry of its available balance not
//!   yet settled, if they reach its minimum (else they roll over), and is
//!   paid out through its rail. A failed batch keeps its money apart until
//!   it is retried, and is never paid twice.
//! - **Chargebacks** take from the reserve, then the available balance;
//!   the rest is the entity's debt, recovered by its next batch.
//!
//! An entity may follow a sandbox **test clock**: its schedule and reserve
//! releases then run on the clock's time, moved by an advance.

pub mod objects;

use malipo_core::{
    Currency, EntityId, InboundId, Mode, Money, PaymentReferenceId, PayoutId, Phone,
    ReferencePaymentId, SettlementId, TimeZone, Timestamp,
};
use malipo_ledger::{AccountKind, AccountSpec, NewEntry, NewTransfer};
use malipo_rails::{CustomerPayment, Method};
use malipo_store::{
    AssignError, ChargebackOutcome, ComputeOutcome, CustomerPaymentIn, CustomerPaymentOutcome,
    EntityAccounts, EntityBalances, EntityRecord, InboundAccounts, NewChargeback, NewJob,
    PayoutDestination, PayoutKind, PayoutRecord, SettlementMethod, SettlementRecord, StoreError,
    Tenant,
};

use crate::Payments;
use crate::payouts::PAYOUT_START_JOB;

/// The platform's ledger qualifiers for settlement's accounts.
const UNMATCHED: &str = "unmatched";
const CHARGEBACKS: &str = "chargebacks";
/// The entity accounts' qualifiers.
const SETTLING: &str = "settling";
const OVERPAYMENTS: &str = "overpayments";

#[derive(Debug, thiserror::Error)]
pub enum SettlementError {
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error("{param}: {message}")]
    Invalid {
        param: &'static str,
        message: String,
    },
    #[error("{0}")]
    Conflict(String),
    #[error("the entity is not approved for live settlement")]
    EntityNotApproved,
    #[error("{0}")]
    RailUnavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The first cut-off strictly after `after` for a schedule: every day at
/// 00:00, Mondays at 00:00, the 1st of the month at 00:00 (in `zone`);
/// none for `manual`.
pub fn next_cut(schedule: &str, zone: TimeZone, after: Timestamp) -> Option<Timestamp> {
    let today = zone.date_at(after);
    let date = match schedule {
        "daily" => today.next_day()?,
        "weekly" => {
            let mut day = today.next_day()?;
            while day.weekday() != time::Weekday::Monday {
                day = day.next_day()?;
            }
            day
        }
        "monthly" => {
            let (year, month) = match today.month() {
                time::Month::December => (today.year() + 1, time::Month::January),
                month => (today.year(), month.next()),
            };
            time::Date::from_calendar_date(year, month, 1).ok()?
        }
        _ => return None,
    };
    Some(zone.at_hour(date, 0))
}

/// A hold moving `amount` from `source` to the rail's clearing account: a
/// platform payout's money, posted when the rail pays, voided if it fails.
fn pending_hold(
    key: String,
    description: String,
    source: malipo_core::AccountId,
    clearing: malipo_core::AccountId,
    amount: Money,
) -> NewTransfer {
    NewTransfer {
        pending: true,
        ..NewTransfer::posted(
            key,
            description,
            vec![
                NewEntry {
                    account_id: source,
                    amount: Money::new(-amount.amount_minor, amount.currency),
                },
                NewEntry {
                    account_id: clearing,
                    amount,
                },
            ],
        )
    }
}

/// The mode a rail's customer payments are in: the simulator is the sandbox.
fn rail_mode(rail: &str) -> Mode {
    if rail == crate::rails::SIMULATOR {
        Mode::Test
    } else {
        Mode::Live
    }
}

impl Payments {
    /// The schedule's next cut-off after `after`, in the operator's zone.
    pub fn next_settlement_at(&self, schedule: &str, after: Timestamp) -> Option<Timestamp> {
        next_cut(schedule, self.config.settlement_time_zone, after)
    }

    /// Queues the entity's next wake-up (its scheduled batch), unless it
    /// follows a test clock (whose advance wakes it).
    pub async fn schedule_entity(&self, entity: &EntityRecord) -> Result<(), StoreError> {
        if let (Some(at), None) = (entity.next_settlement_at, entity.test_clock_id) {
            let mut job = NewJob::new(malipo_store::ENTITY_TICK_JOB, entity.id, at);
            job.payload = serde_json::json!({"at": at.unix_ms()}).to_string();
            self.store.enqueue_jobs(&[job], self.clock.now()).await?;
            self.wake.notify_one();
        }
        Ok(())
    }

    pub(crate) async fn entity_accounts(
        &self,
        entity: &EntityRecord,
    ) -> Result<EntityAccounts, StoreError> {
        let id = entity.id.to_string();
        let spec = |kind, qualifier| {
            AccountSpec::entity(
                &id,
                entity.tenant.merchant_id,
                entity.tenant.mode,
                entity.currency,
                kind,
                qualifier,
            )
        };
        let ids = self
            .store
            .ensure_accounts(
                &[
                    spec(AccountKind::Available, ""),
                    spec(AccountKind::Reserve, ""),
                    spec(AccountKind::Pending, SETTLING),
                    spec(AccountKind::Suspense, OVERPAYMENTS),
                    spec(AccountKind::Debt, ""),
                ],
                self.clock.now(),
            )
            .await?;
        Ok(EntityAccounts {
            available: ids[0],
            reserve: ids[1],
            settling: ids[2],
            overpayments: ids[3],
            debt: ids[4],
        })
    }

    async fn inbound_accounts(
        &self,
        mode: Mode,
        currency: Currency,
        rail: &str,
    ) -> Result<InboundAccounts, StoreError> {
        let ids = self
            .store
            .ensure_accounts(
                &[
                    AccountSpec::platform(mode, currency, AccountKind::RailClearing, rail),
                    AccountSpec::platform(mode, currency, AccountKind::Fees, ""),
                    AccountSpec::platform(mode, currency, AccountKind::Suspense, UNMATCHED),
                ],
                self.clock.now(),
            )
            .await?;
        Ok(InboundAccounts {
            clearing: ids[0],
            fees: ids[1],
            unmatched: ids[2],
        })
    }

    /// Whether a rail should let a customer pay this number (its C2B
    /// validation): `Some(reason)` refuses.
    pub async fn validate_customer_payment(
        &self,
        rail: &str,
        payment: &CustomerPayment,
    ) -> Result<Option<&'static str>, StoreError> {
        let reference = self
            .store
            .find_reference_by_number(&payment.account_reference, rail_mode(rail))
            .await?;
        Ok(match reference {
            None => Some("unknown reference number"),
            Some(reference) if reference.status == "closed" => Some("the reference is closed"),
            Some(reference) if reference.currency != payment.amount.currency => {
                Some("the reference is in another currency")
            }
            Some(_) => None,
        })
    }

    /// Applies a customer payment a rail reported (once per rail transaction).
    pub(crate) async fn apply_customer_payment(
        &self,
        rail: &str,
        inbound_id: InboundId,
        payment: CustomerPayment,
    ) -> Result<CustomerPaymentOutcome, StoreError> {
        let mode = rail_mode(rail);
        let reference = self
            .store
            .find_reference_by_number(&payment.account_reference, mode)
            .await?;
        let platform = self
            .inbound_accounts(mode, payment.amount.currency, rail)
            .await?;
        let mut target = None;
        let owner = reference.as_ref().map(|r| r.tenant.merchant_id);
        if let Some(reference) = reference.filter(|r| r.status != "closed")
            && let Some(entity) = self.store.find_entity_any(reference.entity_id).await?
        {
            target = Some((reference.id, self.entity_accounts(&entity).await?));
        }
        let input = CustomerPaymentIn {
            rail: rail.to_owned(),
            rail_transaction_id: payment.rail_transaction_id,
            mode,
            number: payment.account_reference,
            amount: payment.amount,
            phone: payment.phone,
            payer_name: payment.payer_name,
            inbound_id,
        };
        let outcome = self
            .store
            .record_customer_payment(
                &input,
                target,
                owner,
                platform,
                self.views.as_ref(),
                self.clock.now(),
            )
            .await?;
        match &outcome {
            CustomerPaymentOutcome::Matched { payment, reference } => {
                tracing::info!(id = %payment.id, reference = %reference.id, amount_minor = payment.amount.amount_minor, "reference paid");
            }
            CustomerPaymentOutcome::Unmatched(payment) => {
                tracing::warn!(id = %payment.id, number = %payment.number, "customer payment matched no open reference; held in suspense");
            }
            CustomerPaymentOutcome::Duplicate => {}
        }
        Ok(outcome)
    }

    /// Assigns an unmatched payment to one of the merchant's references.
    pub async fn assign_reference_payment(
        &self,
        tenant: Tenant,
        id: ReferencePaymentId,
        reference_id: PaymentReferenceId,
    ) -> Result<
        (
            malipo_store::ReferencePaymentRecord,
            malipo_store::PaymentReferenceRecord,
        ),
        SettlementError,
    > {
        let reference = self
            .store
            .find_payment_reference(tenant, reference_id)
            .await?
            .ok_or(SettlementError::NotFound("payment reference"))?;
        let entity = self
            .store
            .find_entity_any(reference.entity_id)
            .await?
            .ok_or(SettlementError::NotFound("entity"))?;
        let payment = self
            .store
            .find_reference_payment(tenant, id, true)
            .await?
            .ok_or(SettlementError::NotFound("reference payment"))?;
        let accounts = self.entity_accounts(&entity).await?;
        let platform = self
            .inbound_accounts(tenant.mode, payment.amount.currency, &payment.rail)
            .await?;
        self.store
            .assign_reference_payment(
                tenant,
                id,
                reference_id,
                accounts,
                platform,
                self.views.as_ref(),
                self.clock.now(),
            )
            .await?
            .map_err(|error| match error {
                AssignError::NotFound => SettlementError::NotFound("reference payment"),
                AssignError::ReferenceNotFound => SettlementError::NotFound("payment reference"),
                AssignError::NotUnmatched => {
                    SettlementError::Conflict("the payment is not unmatched".to_owned())
                }
                AssignError::ReferenceClosed => {
                    SettlementError::Conflict("the reference is closed".to_owned())
                }
                AssignError::CurrencyMismatch => SettlementError::Invalid {
                    param: "payment_reference",
                    message: "the reference is in another currency than the payment".to_owned(),
                },
            })
    }

    /// The entity's balances and reserve holds.
    pub async fn entity_balances(
        &self,
        entity: &EntityRecord,
    ) -> Result<EntityBalances, StoreError> {
        let accounts = self.entity_accounts(entity).await?;
        self.store.entity_balances(entity.id, &accounts).await
    }

    /// A worker's wake-up of an entity: reserve releases and its batch.
    pub(crate) async fn tick_entity(&self, id: EntityId) -> Result<(), StoreError> {
        let Some(entity) = self.store.find_entity_any(id).await? else {
            return Ok(());
        };
        let accounts = self.entity_accounts(&entity).await?;
        let zone = self.config.settlement_time_zone;
        let next =
            move |entity: &EntityRecord, at: Timestamp| next_cut(&entity.payout_schedule, zone, at);
        let computed = self
            .store
            .tick_entity(id, &accounts, &next, self.views.as_ref(), self.clock.now())
            .await?;
        if computed.is_some() {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// The merchant asks for a batch now.
    pub async fn settle_now(
        &self,
        tenant: Tenant,
        id: EntityId,
    ) -> Result<ComputeOutcome, SettlementError> {
        let entity = self
            .store
            .find_entity(tenant, id)
            .await?
            .ok_or(SettlementError::NotFound("entity"))?;
        if tenant.mode.is_live() && entity.kyc_status != "approved" {
            return Err(SettlementError::EntityNotApproved);
        }
        let accounts = self.entity_accounts(&entity).await?;
        let outcome = self
            .store
            .settle_entity_now(tenant, id, &accounts, self.views.as_ref(), self.clock.now())
            .await?;
        if matches!(outcome, ComputeOutcome::Computed(_)) {
            self.wake.notify_one();
        }
        Ok(outcome)
    }

    /// Sends a batch's payout, from `computed` or (a retry) `failed`. The
    /// entity's current settlement method is used: a retry after the
    /// merchant corrected a wrong account goes to the corrected one.
    pub(crate) async fn submit_settlement(
        &self,
        id: SettlementId,
        from: &str,
    ) -> Result<Option<SettlementRecord>, SettlementError> {
        let settlement = self
            .store
            .find_settlement(None, id)
            .await?
            .ok_or(SettlementError::NotFound("settlement"))?;
        if settlement.status != from {
            return Ok(None);
        }
        let entity = self
            .store
            .find_entity_any(settlement.entity_id)
            .await?
            .ok_or(SettlementError::NotFound("entity"))?;
        if entity.tenant.mode.is_live() && entity.kyc_status != "approved" {
            return Err(SettlementError::EntityNotApproved);
        }
        let (destination, requested_rail, phone, method) = match &entity.method {
            SettlementMethod::MobileMoney { phone, rail } => (
                PayoutDestination::Wallet {
                    phone: phone.clone(),
                    name: None,
                },
                rail.clone(),
                Phone::parse(phone).ok(),
                Method::MobileMoney,
            ),
            SettlementMethod::Bank {
                bank_name,
                account_number,
                account_name,
                swift,
                ..
            } => (
                PayoutDestination::Bank {
                    bank_code: swift.clone().unwrap_or_else(|| bank_name.clone()),
                    account_number: account_number.clone(),
                    account_name: account_name.clone(),
                },
                None,
                None,
                Method::Bank,
            ),
        };
        let chosen = self
            .chosen_rail(
                entity.tenant.merchant_id,
                entity.tenant.mode,
                requested_rail.as_deref(),
                phone.as_ref(),
            )
            .await
            .map_err(SettlementError::RailUnavailable)?;
        let rail = chosen.capabilities().id;
        let supported = chosen.capabilities().supports(
            malipo_core::Direction::Payout,
            settlement.amount.currency,
            method,
        );
        if !supported {
            return Err(SettlementError::RailUnavailable(format!(
                "the {rail} rail cannot pay out {} this way",
                settlement.amount.currency
            )));
        }
        let accounts = self.entity_accounts(&entity).await?;
        let clearing = self
            .store
            .ensure_accounts(
                &[AccountSpec::platform(
                    entity.tenant.mode,
                    settlement.amount.currency,
                    AccountKind::RailClearing,
                    rail,
                )],
                self.clock.now(),
            )
            .await?[0];
        let payout_id = PayoutId::generate().to_string();
        let payout = PayoutRecord {
            description: format!("settlement {id} to {}", entity.name),
            metadata:
                serde_json::json!({"settlement": id.to_string(), "entity": entity.id.to_string()})
                    .to_string(),
            purpose: Some(format!("settlement:{id}")),
            ..self.new_outgoing(
                entity.tenant,
                payout_id.clone(),
                PayoutKind::Payout,
                settlement.amount,
                0,
                destination,
                rail,
                format!("settlement:{id}:{}", settlement.attempts + 1),
            )
        };
        let now = payout.created_at;
        let hold = pending_hold(
            format!("payout:{payout_id}:hold"),
            format!("payout {payout_id} of settlement {id}"),
            accounts.settling,
            clearing,
            settlement.amount,
        );
        let jobs = [NewJob::new(PAYOUT_START_JOB, &payout_id, now).urgent()];
        let submitted = self
            .store
            .submit_settlement(id, from, &payout, &hold, &jobs, self.views.as_ref())
            .await?;
        if submitted.is_some() {
            self.wake.notify_one();
        }
        Ok(submitted)
    }

    /// `POST /v1/settlements/{id}/retry`: re-submits a failed batch.
    pub async fn retry_settlement(
        &self,
        tenant: Tenant,
        id: SettlementId,
    ) -> Result<SettlementRecord, SettlementError> {
        let settlement = self
            .store
            .find_settlement(Some(tenant), id)
            .await?
            .ok_or(SettlementError::NotFound("settlement"))?;
        if settlement.status != "failed" {
            return Err(SettlementError::Conflict(format!(
                "the settlement is {}; only a failed one is retried",
                settlement.status
            )));
        }
        self.submit_settlement(id, "failed").await?.ok_or_else(|| {
            SettlementError::Conflict("the settlement was retried already".to_owned())
        })
    }

    /// A platform payout reached its end: tell what it was for.
    pub(crate) async fn follow_up_payout(&self, id: &str) -> Result<(), StoreError> {
        let Some(payout) = self.store.find_payout(id).await? else {
            return Ok(());
        };
        if let Some(settlement) = payout
            .purpose
            .as_deref()
            .and_then(|purpose| purpose.strip_prefix("settlement:"))
            && SettlementId::parse(settlement).is_ok()
        {
            self.store
                .finish_settlement(&payout, self.views.as_ref(), self.clock.now())
                .await?;
        }
        if payout
            .purpose
            .as_deref()
            .is_some_and(|purpose| purpose.starts_with("reference_payment:"))
        {
            self.store
                .finish_reference_refund(&payout, self.clock.now())
                .await?;
        }
        Ok(())
    }

    /// `POST /v1/reference-payments/{id}/refund`: an unmatched payment
    /// back to the wallet it came from, whole; a matched one's overpayment.
    pub async fn refund_reference_payment(
        &self,
        tenant: Tenant,
        id: ReferencePaymentId,
    ) -> Result<malipo_store::ReferencePaymentRecord, SettlementError> {
        let payment = self
            .store
            .find_reference_payment(tenant, id, true)
            .await?
            .ok_or(SettlementError::NotFound("reference payment"))?;
        if payment.refund_payout_id.is_some() {
            return Err(SettlementError::Conflict(
                "a refund of this payment is under way or done".to_owned(),
            ));
        }
        let currency = payment.amount.currency;
        let (amount, source) = match payment.status.as_str() {
            "unmatched" => {
                let platform = self
                    .inbound_accounts(tenant.mode, currency, &payment.rail)
                    .await?;
                (payment.amount.amount_minor, platform.unmatched)
            }
            "matched" if payment.overpaid_minor > 0 => {
                let entity_id = payment
                    .entity_id
                    .ok_or(SettlementError::NotFound("entity"))?;
                let entity = self
                    .store
                    .find_entity_any(entity_id)
                    .await?
                    .ok_or(SettlementError::NotFound("entity"))?;
                let accounts = self.entity_accounts(&entity).await?;
                (payment.overpaid_minor, accounts.overpayments)
            }
            _ => {
                return Err(SettlementError::Conflict(format!(
                    "the payment is {} with nothing overpaid: there is nothing to refund",
                    payment.status
                )));
            }
        };
        let Some(phone) = payment.phone.clone() else {
            return Err(SettlementError::Conflict(
                "the rail did not say which wallet paid: refund it by hand".to_owned(),
            ));
        };
        let rail: &'static str = self
            .rails
            .get(&payment.rail)
            .map(|rail| rail.capabilities().id)
            .ok_or_else(|| {
                SettlementError::RailUnavailable(format!(
                    "the rail {} is not configured",
                    payment.rail
                ))
            })?;
        let clearing = self
            .store
            .ensure_accounts(
                &[AccountSpec::platform(
                    tenant.mode,
                    currency,
                    AccountKind::RailClearing,
                    rail,
                )],
                self.clock.now(),
            )
            .await?[0];
        let refund_id = malipo_core::RefundId::generate().to_string();
        let amount = Money::new(amount, currency);
        let refund = PayoutRecord {
            description: format!("refund of {id} ({})", payment.rail_transaction_id),
            metadata: serde_json::json!({"reference_payment": id.to_string()}).to_string(),
            purpose: Some(format!("reference_payment:{id}")),
            ..self.new_outgoing(
                tenant,
                refund_id.clone(),
                PayoutKind::Refund,
                amount,
                0,
                PayoutDestination::Wallet { phone, name: None },
                rail,
                format!("reference_payment:{id}"),
            )
        };
        let now = refund.created_at;
        let hold = pending_hold(
            format!("refund:{refund_id}:hold"),
            format!("refund {refund_id} of {id}"),
            source,
            clearing,
            amount,
        );
        let jobs = [NewJob::new(PAYOUT_START_JOB, &refund_id, now).urgent()];
        let started = self
            .store
            .start_reference_refund(tenant, &payment, &refund, &hold, &jobs, self.views.as_ref())
            .await?
            .ok_or_else(|| {
                SettlementError::Conflict("the payment changed; look at it again".to_owned())
            })?;
        self.wake.notify_one();
        Ok(started)
    }

    /// `POST /v1/chargebacks`.
    pub async fn record_chargeback(
        &self,
        chargeback: NewChargeback,
    ) -> Result<ChargebackOutcome, SettlementError> {
        let entity = self
            .store
            .find_entity(chargeback.tenant, chargeback.entity_id)
            .await?
            .ok_or(SettlementError::NotFound("entity"))?;
        let accounts = self.entity_accounts(&entity).await?;
        let external = self
            .store
            .ensure_accounts(
                &[AccountSpec::platform(
                    entity.tenant.mode,
                    entity.currency,
                    AccountKind::External,
                    CHARGEBACKS,
                )],
                self.clock.now(),
            )
            .await?[0];
        Ok(self
            .store
            .record_chargeback(&chargeback, &accounts, external, self.clock.now())
            .await?)
    }

    /// The entity's available-balance entries in a period (its statement).
    pub async fn entity_statement(
        &self,
        entity: &EntityRecord,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<malipo_store::SettlementLine>, StoreError> {
        let accounts = self.entity_accounts(entity).await?;
        self.store
            .entity_statement(accounts.available, from, to)
            .await
    }
}

/// Runs settlement's jobs; `None` for a kind that is not settlement's.
pub(crate) async fn run_job(
    payments: &Payments,
    kind: &str,
    subject: &str,
) -> Option<Result<(), String>> {
    let result = match kind {
        malipo_store::ENTITY_TICK_JOB => match EntityId::parse(subject) {
            Ok(id) => payments.tick_entity(id).await.map_err(|e| e.to_string()),
            Err(_) => Ok(()),
        },
        malipo_store::SETTLEMENT_SUBMIT_JOB => match SettlementId::parse(subject) {
            Ok(id) => match payments.submit_settlement(id, "computed").await {
                Ok(_) => Ok(()),
                // Not approved or no rail: the batch stays computed and the
                // job retries with backoff until the operator fixes it.
                Err(error) => Err(error.to_string()),
            },
            Err(_) => Ok(()),
        },
        malipo_store::PAYOUT_FOLLOW_UP_JOB => payments
            .follow_up_payout(subject)
            .await
            .map_err(|e| e.to_string()),
        _ => return None,
    };
    Some(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        let parsed =
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .unwrap();
        Timestamp::from_unix_ms((parsed.unix_timestamp_nanos() / 1_000_000) as i64)
    }

    #[test]
    fn cut_offs_are_local_midnights() {
        let zone = TimeZone::parse("Africa/Dar_es_Salaam").unwrap();
        // Tuesday 2026-11-24 10:00 EAT.
        let now = at("2026-11-24T07:00:00Z");
        assert_eq!(
            next_cut("daily", zone, now),
            Some(at("2026-11-24T21:00:00Z"))
        );
        assert_eq!(
            next_cut("weekly", zone, now),
            Some(at("2026-11-29T21:00:00Z"))
        );
        assert_eq!(
            next_cut("monthly", zone, now),
            Some(at("2026-11-30T21:00:00Z"))
        );
        assert_eq!(next_cut("manual", zone, now), None);
        // Exactly at a cut-off, the next one is the following.
        let midnight = at("2026-11-24T21:00:00Z");
        assert_eq!(
            next_cut("daily", zone, midnight),
            Some(at("2026-11-25T21:00:00Z"))
        );
        assert_eq!(
            next_cut("monthly", zone, at("2026-12-15T00:00:00Z")),
            Some(at("2026-12-31T21:00:00Z"))
        );
    }
}
