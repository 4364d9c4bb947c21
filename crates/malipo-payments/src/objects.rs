//! The objects as the API shows them. Events keep these same JSON
//! snapshots, so a webhook carries exactly what a `GET` returned then.

use hmac::{Hmac, Mac};
use malipo_core::{MasterKey, PaymentId, PaymentStatus, Timestamp};
use malipo_store::{ObjectViews, PaymentRecord, PayoutDestination, PayoutRecord};
use serde::Serialize;
use sha2::Sha256;

use crate::settlement::objects::{PaymentReferenceOut, ReferencePaymentOut, SettlementOut};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CustomerOut {
    pub phone: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PaymentOut {
    pub id: PaymentId,
    #[schema(example = "payment")]
    pub object: &'static str,
    pub livemode: bool,
    pub status: PaymentStatus,
    /// What the merchant asked for, minor units.
    pub amount: i64,
    pub currency: String,
    pub fee: i64,
    /// `customer` (fee added on top) or `merchant` (deducted).
    pub fee_payer: String,
    /// What the customer is asked to pay.
    pub customer_total: i64,
    /// What the merchant receives on success.
    pub merchant_net: i64,
    pub customer: CustomerOut,
    pub rail: Option<String>,
    /// The rail's own id, once it accepted the request.
    pub rail_transaction_id: Option<String>,
    pub merchant_reference: Option<String>,
    pub description: String,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    pub redirect_url: Option<String>,
    /// The hosted payment page, for payments created without a phone
    /// number or with a `redirect_url`.
    pub payment_url: Option<String>,
    /// When `status` is `requires_action`: `{"type": "redirect", "url"}`, `{"type": "otp"}` or
    /// `{"type": "provide_fields", "fields": {…}, "errors": {…}}`.
    #[schema(value_type = Option<Object>)]
    pub next_action: Option<serde_json::Value>,
    /// `declined`, `insufficient_funds`, `timeout`, `invalid_account`,
    /// `invalid_otp`, `rail_error`.
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub amount_refunded: i64,
    pub expires_at: Timestamp,
    pub created: Timestamp,
    pub updated: Timestamp,
    pub completed: Option<Timestamp>,
}

impl From<PaymentRecord> for PaymentOut {
    fn from(payment: PaymentRecord) -> Self {
        Self {
            payment_url: None,
            id: payment.id,
            object: "payment",
            livemode: payment.mode.is_live(),
            status: payment.status,
            amount: payment.amount.amount_minor,
            currency: payment.amount.currency.code().to_owned(),
            fee: payment.fee_minor,
            fee_payer: payment.fee_payer.as_str().to_owned(),
            customer_total: payment.customer_total_minor,
            merchant_net: payment.merchant_net_minor,
            customer: CustomerOut {
                phone: payment.customer_phone,
            },
            rail: payment.rail,
            rail_transaction_id: payment.rail_transaction_id,
            merchant_reference: payment.merchant_reference,
            description: payment.description,
            metadata: serde_json::from_str(&payment.metadata).unwrap_or_default(),
            redirect_url: payment.redirect_url,
            next_action: payment
                .next_action
                .and_then(|text| serde_json::from_str(&text).ok()),
            failure_code: payment.failure_code,
            failure_message: payment.failure_message,
            amount_refunded: payment.refunded_minor,
            expires_at: payment.expires_at,
            created: payment.created_at,
            updated: payment.updated_at,
            completed: payment.completed_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DestinationOut {
    Wallet {
        phone: String,
        /// The holder's name to confirm, when the payout asked.
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    Bank {
        bank_code: String,
        account_number: String,
        account_name: String,
    },
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PayoutOut {
    /// `po_…` for payouts, `re_…` for refunds.
    pub id: String,
    /// `payout` or `refund`.
    pub object: &'static str,
    pub livemode: bool,
    /// `pending`, `succeeded`, `failed`.
    pub status: String,
    pub amount: i64,
    pub currency: String,
    pub fee: i64,
    /// What left the available balance: amount plus fee.
    pub total_debited: i64,
    pub destination: DestinationOut,
    pub rail: String,
    pub rail_transaction_id: Option<String>,
    /// For refunds: the payment refunded.
    pub payment: Option<PaymentId>,
    pub merchant_reference: Option<String>,
    pub description: String,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub created: Timestamp,
    pub updated: Timestamp,
    pub completed: Option<Timestamp>,
}

impl From<PayoutRecord> for PayoutOut {
    fn from(payout: PayoutRecord) -> Self {
        Self {
            object: payout.kind.as_str(),
            livemode: payout.mode.is_live(),
            status: payout.status.as_str().to_owned(),
            amount: payout.amount.amount_minor,
            currency: payout.amount.currency.code().to_owned(),
            fee: payout.fee_minor,
            total_debited: payout.amount.amount_minor.saturating_add(payout.fee_minor),
            destination: match payout.destination {
                PayoutDestination::Wallet { phone, name } => DestinationOut::Wallet { phone, name },
                PayoutDestination::Bank {
                    bank_code,
                    account_number,
                    account_name,
                } => DestinationOut::Bank {
                    bank_code,
                    account_number,
                    account_name,
                },
            },
            rail: payout.rail,
            rail_transaction_id: payout.rail_transaction_id,
            payment: payout.payment_id,
            merchant_reference: payout.merchant_reference,
            description: payout.description,
            metadata: serde_json::from_str(&payout.metadata).unwrap_or_default(),
            failure_code: payout.failure_code,
            failure_message: payout.failure_message,
            created: payout.created_at,
            updated: payout.updated_at,
            completed: payout.completed_at,
            id: payout.id,
        }
    }
}

/// Hex characters of the hosted page token's MAC.
const HOSTED_MAC_HEX_CHARS: usize = 32;

/// Renders objects: for API responses and for the events that keep them.
#[derive(Clone)]
pub struct Views {
    public_url: String,
    hosted_key: [u8; 32],
}

impl Views {
    pub fn new(public_url: &str, master_key: &MasterKey) -> Self {
        Self {
            public_url: public_url.to_owned(),
            hosted_key: master_key.derive("hosted payment pages"),
        }
    }

    /// The hosted checkout page's address.
    pub fn checkout_url(&self, id: malipo_core::CheckoutId) -> String {
        format!(
            "{}/checkout/{}",
            self.public_url,
            self.token(&id.to_string())
        )
    }

    /// A hosted page's token, `{id}.{mac}`: the id and its MAC under a key
    /// derived from the master key, so a token needs nothing stored. Ids
    /// carry their kind (`pay_`, `co_`), so one page's token opens no other.
    fn token(&self, id: &str) -> String {
        format!("{id}.{}", self.mac(id))
    }

    /// The id in a hosted page's token, if its MAC is right (compared in
    /// constant time).
    pub fn token_id<'t>(&self, token: &'t str) -> Option<&'t str> {
        let (id, mac) = token.split_once('.')?;
        let expected = self.mac(id);
        let equal: bool = subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), mac.as_bytes()).into();
        equal.then_some(id)
    }

    fn mac(&self, id: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.hosted_key).expect("any key length works");
        mac.update(id.as_bytes());
        let digest = mac.finalize().into_bytes();
        digest
            .iter()
            .take(HOSTED_MAC_HEX_CHARS / 2)
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The hosted payment page's address for a payment.
    pub fn payment_url(&self, id: PaymentId) -> String {
        format!("{}/pay/{}", self.public_url, self.token(&id.to_string()))
    }

    /// A payment, with its hosted page's address when it has one.
    pub fn payment_out(&self, payment: PaymentRecord) -> PaymentOut {
        let payment_url = (payment.customer_phone.is_none() || payment.redirect_url.is_some())
            .then(|| self.payment_url(payment.id));
        PaymentOut {
            payment_url,
            ..PaymentOut::from(payment)
        }
    }
}

impl ObjectViews for Views {
    fn payment(&self, payment: &PaymentRecord) -> String {
        serde_json::to_string(&self.payment_out(payment.clone())).expect("a payment serializes")
    }

    fn payout(&self, payout: &PayoutRecord) -> String {
        serde_json::to_string(&PayoutOut::from(payout.clone())).expect("a payout serializes")
    }

    fn payment_reference(
        &self,
        reference: &malipo_store::PaymentReferenceRecord,
        payment: Option<&malipo_store::ReferencePaymentRecord>,
    ) -> String {
        serde_json::to_string(&PaymentReferenceOut::new(reference, payment))
            .expect("a reference serializes")
    }

    fn reference_payment(&self, payment: &malipo_store::ReferencePaymentRecord) -> String {
        serde_json::to_string(&ReferencePaymentOut::from(payment)).expect("a payment serializes")
    }

    fn settlement(&self, settlement: &malipo_store::SettlementRecord) -> String {
        serde_json::to_string(&SettlementOut::from(settlement)).expect("a settlement serializes")
    }
}
