//! Money out: payouts to wallets and banks, and refunds of payments.

use malipo_core::{Direction, Mode, Money, PaymentId, PaymentStatus, PayoutId, Phone, RefundId};
use malipo_ledger::{AccountKind, AccountSpec, NewEntry, NewTransfer};
use malipo_rails::{Method, RailStatus};
use malipo_store::{
    CreatePayoutOutcome, FeeContext, NewJob, PayoutDestination, PayoutKind, PayoutRecord,
    PayoutStatus, Tenant,
};
use sha2::{Digest, Sha256};

use crate::{PaymentError, Payments};

pub(crate) const PAYOUT_START_JOB: &str = "payout.start";
pub(crate) const PAYOUT_POLL_JOB: &str = "payout.poll";

/// A checked payout request.
#[derive(Debug, Clone)]
pub struct CreatePayout {
    pub amount: Money,
    pub destination: PayoutDestination,
    pub rail: Option<String>,
    pub merchant_reference: Option<String>,
    /// The request's `Idempotency-Key`, kept on the payout.
    pub idempotency_key: Option<String>,
    pub description: String,
    pub metadata: String,
}

impl Payments {
    pub async fn create_payout(
        &self,
        tenant: Tenant,
        request: CreatePayout,
    ) -> Result<CreatePayoutOutcome, PaymentError> {
        if tenant.mode == Mode::Live
            && !self
                .store
                .merchants()
                .payouts_approved(tenant.merchant_id)
                .await?
        {
            return Err(PaymentError::NotApproved);
        }
        let (phone, method) = match &request.destination {
            PayoutDestination::Wallet { phone, .. } => {
                (Phone::parse(phone).ok(), Method::MobileMoney)
            }
            PayoutDestination::Bank { .. } => (None, Method::Bank),
        };
        let chosen = self
            .chosen_rail(
                tenant.merchant_id,
                tenant.mode,
                request.rail.as_deref(),
                phone.as_ref(),
            )
            .await
            .map_err(PaymentError::RailUnavailable)?;
        let capabilities = chosen.capabilities();
        let rail = capabilities.id;
        if !capabilities.supports(Direction::Payout, request.amount.currency, method) {
            return Err(PaymentError::Invalid {
                param: "destination",
                message: format!(
                    "the {rail} rail cannot pay out {} this way",
                    request.amount.currency
                ),
            });
        }
        let context = FeeContext {
            merchant_id: tenant.merchant_id,
            entity_id: None,
            rail,
            direction: Direction::Payout,
            currency: request.amount.currency,
        };
        // A payout's fee is always the merchant's, on top of the amount sent.
        let fee_minor = match self.store.resolve_fee_schedule(&context).await? {
            Some(record) => {
                record
                    .schedule
                    .compute(request.amount)
                    .map_err(|error| PaymentError::Invalid {
                        param: "amount",
                        message: error.to_string(),
                    })?
                    .fee
                    .amount_minor
            }
            None => 0,
        };
        let fingerprint = fingerprint(&format!(
            "{}|{}|{:?}|{}|{}|{}",
            request.amount.amount_minor,
            request.amount.currency,
            request.destination,
            request.rail.as_deref().unwrap_or_default(),
            request.description,
            request.metadata
        ));
        let id = PayoutId::generate().to_string();
        let payout = self.new_outgoing(
            tenant,
            id,
            PayoutKind::Payout,
            request.amount,
            fee_minor,
            request.destination,
            rail,
            fingerprint,
        );
        let payout = PayoutRecord {
            merchant_reference: request.merchant_reference,
            idempotency_key: request.idempotency_key,
            description: request.description,
            metadata: request.metadata,
            ..payout
        };
        self.record_outgoing(payout).await
    }

    /// Refunds all (`amount: None`) or part of a succeeded payment to the
    /// wallet it came from.
    pub async fn create_refund(
        &self,
        tenant: Tenant,
        payment_id: PaymentId,
        amount_minor: Option<i64>,
        reason: String,
        idempotency_key: Option<String>,
    ) -> Result<CreatePayoutOutcome, PaymentError> {
        let payment = self
            .store
            .payments(tenant)
            .find(payment_id)
            .await?
            .ok_or(PaymentError::NotFound)?;
        if payment.status != PaymentStatus::Succeeded {
            return Err(PaymentError::WrongState(payment.status));
        }
        let refundable = payment.amount.amount_minor - payment.refunded_minor;
        let amount_minor = amount_minor.unwrap_or(refundable);
        if amount_minor <= 0 {
            return Err(PaymentError::Invalid {
                param: "amount",
                message: "nothing is left to refund".to_owned(),
            });
        }
        let destination = PayoutDestination::Wallet {
            phone: payment.customer_phone.clone().unwrap_or_default(),
            name: None,
        };
        // Back over the rail the payment came by (the merchant's connector
        // in live mode).
        let rail = payment.rail.clone().unwrap_or_default();
        let rail: &'static str = self
            .rail_of(tenant.merchant_id, tenant.mode, &rail)
            .await?
            .map(|r| r.capabilities().id)
            .ok_or_else(|| {
                PaymentError::RailUnavailable(format!("the rail {rail} is not configured"))
            })?;
        let id = RefundId::generate().to_string();
        let fingerprint = fingerprint(&format!("{payment_id}|{amount_minor}|{reason}"));
        let refund = self.new_outgoing(
            tenant,
            id,
            PayoutKind::Refund,
            Money::new(amount_minor, payment.amount.currency),
            0,
            destination,
            rail,
            fingerprint,
        );
        let refund = PayoutRecord {
            payment_id: Some(payment_id),
            idempotency_key,
            description: reason,
            ..refund
        };
        self.record_outgoing(refund).await
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new_outgoing(
        &self,
        tenant: Tenant,
        id: String,
        kind: PayoutKind,
        amount: Money,
        fee_minor: i64,
        destination: PayoutDestination,
        rail: &str,
        request_fingerprint: String,
    ) -> PayoutRecord {
        let now = self.clock.now();
        PayoutRecord {
            id,
            kind,
            merchant_id: tenant.merchant_id,
            mode: tenant.mode,
            status: PayoutStatus::Pending,
            amount,
            fee_minor,
            destination,
            rail: rail.to_owned(),
            rail_transaction_id: None,
            payment_id: None,
            merchant_reference: None,
            idempotency_key: None,
            request_fingerprint,
            description: String::new(),
            metadata: "{}".to_owned(),
            hold_transfer_id: None,
            failure_code: None,
            failure_message: None,
            created_at: now,
            updated_at: now,
            completed_at: None,
            purpose: None,
        }
    }

    /// Holds the money and queues the rail call, in one transaction.
    async fn record_outgoing(
        &self,
        outgoing: PayoutRecord,
    ) -> Result<CreatePayoutOutcome, PaymentError> {
        let currency = outgoing.amount.currency;
        let accounts = self
            .store
            .ensure_accounts(
                &[
                    AccountSpec::merchant(
                        outgoing.merchant_id,
                        outgoing.mode,
                        currency,
                        AccountKind::Available,
                    ),
                    AccountSpec::platform(
                        outgoing.mode,
                        currency,
                        AccountKind::RailClearing,
                        &outgoing.rail,
                    ),
                    AccountSpec::platform(outgoing.mode, currency, AccountKind::Fees, ""),
                ],
                outgoing.created_at,
            )
            .await?;
        let total = outgoing
            .amount
            .amount_minor
            .checked_add(outgoing.fee_minor)
            .ok_or(PaymentError::Invalid {
                param: "amount",
                message: "too large".to_owned(),
            })?;
        let mut entries = vec![
            NewEntry {
                account_id: accounts[0],
                amount: Money::new(-total, currency),
            },
            NewEntry {
                account_id: accounts[1],
                amount: outgoing.amount,
            },
        ];
        if outgoing.fee_minor > 0 {
            entries.push(NewEntry {
                account_id: accounts[2],
                amount: Money::new(outgoing.fee_minor, currency),
            });
        }
        let hold = NewTransfer {
            pending: true,
            ..NewTransfer::posted(
                format!("{}:{}:hold", outgoing.kind.as_str(), outgoing.id),
                format!("{} {}", outgoing.kind.as_str(), outgoing.id),
                entries,
            )
        };
        let jobs = [NewJob::new(PAYOUT_START_JOB, &outgoing.id, outgoing.created_at).urgent()];
        let outcome = self
            .store
            .create_payout(&outgoing, &hold, &jobs, self.views.as_ref())
            .await?;
        if matches!(outcome, CreatePayoutOutcome::Created(_)) {
            self.wake.notify_one();
            tracing::info!(id = %outgoing.id, kind = outgoing.kind.as_str(), amount_minor = outgoing.amount.amount_minor, "money out requested");
        }
        Ok(outcome)
    }

    /// Applies the rail's final answer about a payout or refund.
    pub(crate) async fn apply_payout_outcome(
        &self,
        payout: &PayoutRecord,
        status: &RailStatus,
    ) -> Result<bool, PaymentError> {
        let failure = match status {
            RailStatus::Pending => return Ok(false),
            RailStatus::Succeeded => None,
            RailStatus::Failed { failure, message } => {
                Some((failure.as_str().to_owned(), message.clone()))
            }
        };
        Ok(self
            .store
            .complete_payout(&payout.id, failure, self.clock.now(), self.views.as_ref())
            .await?)
    }
}

fn fingerprint(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
