//! Collections: a push prompt to a customer's wallet, and what follows.

use std::collections::BTreeMap;

use malipo_core::{
    Currency, Direction, FeePayer, FeeSchedule, Money, PaymentId, PaymentStatus, Phone, Timestamp,
};
use malipo_ledger::{AccountKind, AccountSpec, NewEntry, NewTransfer};
use malipo_rails::{FailureCode, FieldSpec, RailStatus};
use malipo_store::{
    CreatePaymentOutcome, FeeContext, NewJob, PaymentRecord, PaymentUpdate, StoreError, Tenant,
    UpdateOutcome,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::Payments;

pub(crate) const START_JOB: &str = "payment.start";
pub(crate) const POLL_JOB: &str = "payment.poll";
pub(crate) const EXPIRE_JOB: &str = "payment.expire";

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("no such payment")]
    NotFound,
    #[error("{param}: {message}")]
    Invalid {
        param: &'static str,
        message: String,
    },
    #[error("the payment is {0}, which does not allow this")]
    WrongState(PaymentStatus),
    #[error("merchant_reference is already used by {0} with other parameters")]
    ReferenceConflict(PaymentId),
    #[error("{0}")]
    RailUnavailable(String),
    #[error("live payouts need the operator's approval of this merchant")]
    NotApproved,
    #[error("the ledger refused the transfer: {0}")]
    Ledger(malipo_ledger::LedgerError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Write(malipo_store::WriteError),
}

/// A checked create request.
#[derive(Debug, Clone)]
pub struct CreatePayment {
    pub amount: Money,
    /// Without one, the customer gives it on the hosted page.
    pub phone: Option<Phone>,
    pub rail: Option<String>,
    pub merchant_reference: Option<String>,
    /// The request's `Idempotency-Key`: kept on the payment, so a retry
    /// after a crash finds it.
    pub idempotency_key: Option<String>,
    pub description: String,
    /// A JSON object, already bounded in size.
    pub metadata: String,
    pub redirect_url: Option<String>,
    pub expires_in_ms: Option<i64>,
    /// What waits on the outcome (`checkout:co_…`, …); see `bnpl`.
    pub purpose: Option<String>,
    pub fees: FeeMode,
}

/// Which fee a collection carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FeeMode {
    /// The merchant's fee schedule, as it says who pays.
    #[default]
    Schedule,
    /// The schedule's fee, always deducted from the merchant: the customer
    /// pays exactly the amount (a plan's deposit and installments).
    MerchantPays,
    /// None: the platform carries the plan (an upfront plan's installments).
    None,
}

#[derive(Debug, Clone, Default)]
pub struct ConfirmPayment {
    pub otp: Option<String>,
    pub fields: BTreeMap<String, String>,
}

/// What a payment in `requires_action` waits for, as the API shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NextAction {
    /// The rail needs more about the customer: send them to `confirm`.
    ProvideFields {
        fields: BTreeMap<String, FieldSpec>,
        errors: BTreeMap<String, Vec<String>>,
    },
    /// The customer received an OTP: send it to `confirm`.
    Otp,
    /// Send the customer to the hosted page, which asks for their number.
    Redirect { url: String },
}

fn fingerprint(request: &CreatePayment) -> String {
    let text = format!(
        "{}|{}|{}|{}|{}|{}",
        request.amount.amount_minor,
        request.amount.currency,
        request
            .phone
            .as_ref()
            .map(Phone::as_str)
            .unwrap_or_default(),
        request.rail.as_deref().unwrap_or_default(),
        request.description,
        request.metadata,
    );
    sha256_hex(&text)
}

/// A request's fingerprint: the SHA-256 of its parameters, in hex.
pub(crate) fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn no_fee() -> FeeSchedule {
    FeeSchedule {
        percent_bps: 0,
        fixed_minor: 0,
        min_minor: None,
        max_minor: None,
        payer: FeePayer::Merchant,
    }
}

impl Payments {
    /// Records a payment. With a phone number the push goes out at once;
    /// without, it waits in `requires_action` for the hosted page, whose URL
    /// `hosted_url` makes from the payment's id.
    pub async fn create_payment(
        &self,
        tenant: Tenant,
        request: CreatePayment,
        hosted_url: impl Fn(PaymentId) -> String,
    ) -> Result<CreatePaymentOutcome, PaymentError> {
        let chosen = self
            .chosen_rail(
                tenant.merchant_id,
                tenant.mode,
                request.rail.as_deref(),
                request.phone.as_ref(),
            )
            .await
            .map_err(PaymentError::RailUnavailable)?;
        let capabilities = chosen.capabilities();
        let rail = capabilities.id;
        if !capabilities.currencies.contains(&request.amount.currency) {
            return Err(PaymentError::Invalid {
                param: "currency",
                message: format!(
                    "the {rail} rail does not collect {}",
                    request.amount.currency
                ),
            });
        }
        let amount_minor = request.amount.amount_minor;
        if amount_minor < capabilities.amount_min_minor
            || amount_minor > capabilities.amount_max_minor
        {
            return Err(PaymentError::Invalid {
                param: "amount",
                message: format!(
                    "must be between {} and {} for the {rail} rail",
                    capabilities.amount_min_minor, capabilities.amount_max_minor
                ),
            });
        }
        let context = FeeContext {
            merchant_id: tenant.merchant_id,
            entity_id: None,
            rail,
            direction: Direction::Collection,
            currency: request.amount.currency,
        };
        let mut schedule = match request.fees {
            FeeMode::None => no_fee(),
            FeeMode::Schedule | FeeMode::MerchantPays => self
                .store
                .resolve_fee_schedule(&context)
                .await?
                .map_or_else(no_fee, |r| r.schedule),
        };
        if request.fees == FeeMode::MerchantPays {
            schedule.payer = FeePayer::Merchant;
        }
        let fees = schedule
            .compute(request.amount)
            .map_err(|error| PaymentError::Invalid {
                param: "amount",
                message: error.to_string(),
            })?;
        let now = self.clock.now();
        let expires_at = now.plus_ms(request.expires_in_ms.unwrap_or(self.config.push_expiry_ms));
        let id = PaymentId::generate();
        let (status, next_action) = match &request.phone {
            Some(_) => (PaymentStatus::Pending, None),
            None => (
                PaymentStatus::RequiresAction,
                Some(Self::next_action_json(&NextAction::Redirect {
                    url: hosted_url(id),
                })),
            ),
        };
        let payment = PaymentRecord {
            id,
            merchant_id: tenant.merchant_id,
            mode: tenant.mode,
            status,
            amount: request.amount,
            fee_minor: fees.fee.amount_minor,
            fee_payer: fees.payer,
            customer_total_minor: fees.expected_total.amount_minor,
            merchant_net_minor: fees.merchant_net.amount_minor,
            customer_phone: request.phone.as_ref().map(ToString::to_string),
            rail: Some(rail.to_owned()),
            rail_transaction_id: None,
            merchant_reference: request.merchant_reference.clone(),
            idempotency_key: request.idempotency_key.clone(),
            request_fingerprint: fingerprint(&request),
            description: request.description.clone(),
            metadata: request.metadata.clone(),
            redirect_url: request.redirect_url.clone(),
            next_action,
            fields: "{}".to_owned(),
            failure_code: None,
            failure_message: None,
            refunded_minor: 0,
            purpose: request.purpose.clone(),
            expires_at,
            created_at: now,
            updated_at: now,
            completed_at: None,
        };
        let mut jobs = vec![NewJob::new(EXPIRE_JOB, payment.id, expires_at)];
        if payment.status == PaymentStatus::Pending {
            jobs.push(NewJob::new(START_JOB, payment.id, now).urgent());
        }
        let payment_id = payment.id;
        let outcome = self
            .creates
            .submit((payment, jobs))
            .await
            .map_err(PaymentError::Write)?;
        if matches!(outcome, CreatePaymentOutcome::Created(_)) {
            self.wake.notify_one();
            tracing::info!(%payment_id, rail, amount_minor, "payment created");
        }
        Ok(outcome)
    }

    /// Submits an OTP or missing fields for a payment in `requires_action`,
    /// and sends it back to the rail.
    pub async fn confirm_payment(
        &self,
        tenant: Tenant,
        id: PaymentId,
        confirm: ConfirmPayment,
    ) -> Result<PaymentRecord, PaymentError> {
        let payment = self
            .store
            .payments(tenant)
            .find(id)
            .await?
            .ok_or(PaymentError::NotFound)?;
        if payment.status != PaymentStatus::RequiresAction {
            return Err(PaymentError::WrongState(payment.status));
        }
        let mut fields: BTreeMap<String, String> =
            serde_json::from_str(&payment.fields).unwrap_or_default();
        fields.extend(confirm.fields);
        let payload = serde_json::json!({ "otp": confirm.otp }).to_string();
        let now = self.clock.now();
        let update = PaymentUpdate {
            next_action: Some(None),
            fields: Some(serde_json::to_string(&fields).expect("a map of strings serializes")),
            ..PaymentUpdate::default()
        };
        let job = NewJob {
            payload,
            ..NewJob::new(START_JOB, id, now).urgent()
        };
        match self
            .store
            .update_payment(
                self.views.as_ref(),
                id,
                PaymentStatus::Pending,
                &update,
                &[],
                &[job],
                now,
            )
            .await?
        {
            UpdateOutcome::Updated(payment) => {
                self.wake.notify_one();
                Ok(*payment)
            }
            UpdateOutcome::Stale => Err(PaymentError::WrongState(self.current_status(id).await?)),
            UpdateOutcome::Refused(error) => unreachable!("confirming posts no transfer: {error}"),
        }
    }

    /// The customer gave their number on the hosted page: send the push.
    pub async fn provide_phone(
        &self,
        id: PaymentId,
        phone: &Phone,
    ) -> Result<PaymentRecord, PaymentError> {
        let payment = self
            .store
            .find_payment(id)
            .await?
            .ok_or(PaymentError::NotFound)?;
        let is_redirect = payment
            .next_action
            .as_deref()
            .and_then(|action| serde_json::from_str::<serde_json::Value>(action).ok())
            .is_some_and(|action| action["type"] == "redirect");
        if payment.status != PaymentStatus::RequiresAction || !is_redirect {
            return Err(PaymentError::WrongState(payment.status));
        }
        if phone.country.currency != payment.amount.currency {
            return Err(PaymentError::Invalid {
                param: "phone",
                message: format!(
                    "a {} number cannot pay in {}",
                    phone.country.code, payment.amount.currency
                ),
            });
        }
        let now = self.clock.now();
        let update = PaymentUpdate {
            next_action: Some(None),
            customer_phone: Some(phone.to_string()),
            ..PaymentUpdate::default()
        };
        let job = NewJob::new(START_JOB, id, now).urgent();
        match self
            .store
            .update_payment(
                self.views.as_ref(),
                id,
                PaymentStatus::Pending,
                &update,
                &[],
                &[job],
                now,
            )
            .await?
        {
            UpdateOutcome::Updated(payment) => {
                self.wake.notify_one();
                Ok(*payment)
            }
            UpdateOutcome::Stale => Err(PaymentError::WrongState(self.current_status(id).await?)),
            UpdateOutcome::Refused(error) => Err(PaymentError::Ledger(error)),
        }
    }

    pub async fn cancel_payment(
        &self,
        tenant: Tenant,
        id: PaymentId,
    ) -> Result<PaymentRecord, PaymentError> {
        let payment = self
            .store
            .payments(tenant)
            .find(id)
            .await?
            .ok_or(PaymentError::NotFound)?;
        let update = PaymentUpdate {
            next_action: Some(None),
            completed: true,
            ..PaymentUpdate::default()
        };
        match self
            .store
            .update_payment(
                self.views.as_ref(),
                payment.id,
                PaymentStatus::Cancelled,
                &update,
                &[],
                &[],
                self.clock.now(),
            )
            .await?
        {
            UpdateOutcome::Updated(payment) => Ok(*payment),
            UpdateOutcome::Stale => Err(PaymentError::WrongState(self.current_status(id).await?)),
            UpdateOutcome::Refused(error) => unreachable!("cancelling posts no transfer: {error}"),
        }
    }

    async fn current_status(&self, id: PaymentId) -> Result<PaymentStatus, PaymentError> {
        Ok(self
            .store
            .find_payment(id)
            .await?
            .ok_or(PaymentError::NotFound)?
            .status)
    }

    /// Applies a final outcome the rail reported (by callback or by status
    /// query). Returns false when the payment had already left `pending`.
    pub(crate) async fn apply_rail_outcome(
        &self,
        payment: &PaymentRecord,
        status: &RailStatus,
    ) -> Result<bool, PaymentError> {
        let now = self.clock.now();
        let (next, update, transfers) = match status {
            RailStatus::Pending => return Ok(false),
            RailStatus::Succeeded => {
                let transfer = self.collection_transfer(payment, now).await?;
                let update = PaymentUpdate {
                    completed: true,
                    ..PaymentUpdate::default()
                };
                (PaymentStatus::Succeeded, update, vec![transfer])
            }
            RailStatus::Failed { failure, message } => {
                let update = PaymentUpdate {
                    failure: Some((failure.as_str().to_owned(), message.clone())),
                    completed: true,
                    ..PaymentUpdate::default()
                };
                (PaymentStatus::Failed, update, Vec::new())
            }
        };
        match self
            .store
            .update_payment(
                self.views.as_ref(),
                payment.id,
                next,
                &update,
                &transfers,
                &[],
                now,
            )
            .await?
        {
            UpdateOutcome::Updated(updated) => {
                tracing::info!(payment_id = %payment.id, status = %updated.status, "payment completed");
                Ok(true)
            }
            UpdateOutcome::Stale => Ok(false),
            // A collection only credits merchants and debits the rail's
            // clearing account, so this is a bug; the job retries and logs it.
            UpdateOutcome::Refused(error) => Err(PaymentError::Ledger(error)),
        }
    }

    /// Customer's money in: the rail owes the platform the customer total;
    /// the merchant is credited its net and the platform its fee.
    async fn collection_transfer(
        &self,
        payment: &PaymentRecord,
        now: Timestamp,
    ) -> Result<NewTransfer, PaymentError> {
        let currency: Currency = payment.amount.currency;
        let rail = payment.rail.as_deref().unwrap_or_default();
        let credited = self.plan_collection_account(payment).await?;
        let accounts = self
            .store
            .ensure_accounts(
                &[
                    AccountSpec::platform(payment.mode, currency, AccountKind::RailClearing, rail),
                    AccountSpec::merchant(
                        payment.merchant_id,
                        payment.mode,
                        currency,
                        AccountKind::Available,
                    ),
                    AccountSpec::platform(payment.mode, currency, AccountKind::Fees, ""),
                ],
                now,
            )
            .await?;
        let mut entries = vec![
            NewEntry {
                account_id: accounts[0],
                amount: Money::new(-payment.customer_total_minor, currency),
            },
            NewEntry {
                // An upfront plan's collection goes to the platform, which
                // carries the plan; any other to the merchant.
                account_id: credited.unwrap_or(accounts[1]),
                amount: Money::new(payment.merchant_net_minor, currency),
            },
        ];
        if payment.fee_minor > 0 {
            entries.push(NewEntry {
                account_id: accounts[2],
                amount: Money::new(payment.fee_minor, currency),
            });
        }
        Ok(NewTransfer::posted(
            format!("payment:{}:collected", payment.id),
            format!("collection {}", payment.id),
            entries,
        ))
    }

    pub(crate) fn next_action_json(action: &NextAction) -> String {
        serde_json::to_string(action).expect("a next action serializes")
    }

    pub(crate) fn failure_update(failure: FailureCode, message: &str) -> PaymentUpdate {
        PaymentUpdate {
            failure: Some((failure.as_str().to_owned(), message.to_owned())),
            next_action: Some(None),
            completed: true,
            ..PaymentUpdate::default()
        }
    }
}
