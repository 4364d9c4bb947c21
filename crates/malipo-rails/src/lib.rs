//! Rails: the mobile-money operators and banks money moves over.
//!
//! Each rail implements [`Rail`] and declares what it can do in its
//! [`Capabilities`]; a call it cannot serve is an explicit
//! [`RailError::Unsupported`]. Rails are called only by workers, never
//! inside a database transaction: they do network IO and may be slow.
//!
//! Amounts cross this boundary as [`Money`] (minor units); a connector
//! converts to its operator's format itself, at its edge.

pub mod airtel;
pub mod config;
pub mod connector;
pub mod mpesa;
pub mod mtn;
pub mod routing;
pub mod simulator;

use std::collections::BTreeMap;

use malipo_core::{Currency, Direction, Money};
use serde::{Deserialize, Serialize};

/// How a customer pays or is paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    MobileMoney,
    Bank,
}

#[derive(Debug, Clone)]
pub struct Capabilities {
    /// The rail's id in the API: `simulator`, `mpesa`, …
    pub id: &'static str,
    pub name: &'static str,
    /// ISO 3166 alpha-2 codes.
    pub countries: Vec<&'static str>,
    pub currencies: Vec<Currency>,
    pub methods: Vec<Method>,
    pub directions: Vec<Direction>,
    /// Smallest and largest amount per transaction, in minor units.
    pub amount_min_minor: i64,
    pub amount_max_minor: i64,
    /// A payment still pending this long after it started is polled with
    /// [`Rail::query_status`] (its callback may have been lost).
    pub poll_after_ms: i64,
    /// Whether the rail signs its callbacks. An unsigned callback (M-Pesa,
    /// MTN MoMo) is applied only once a status query agrees.
    pub signed_callbacks: bool,
    /// Whether a payout's status query answers at once (MTN MoMo, Airtel
    /// Money), so that an unsigned payout callback is confirmed by it too.
    /// M-Pesa's B2C status comes back later, by callback: its results are
    /// applied as received.
    pub payout_query_confirms: bool,
}

impl Capabilities {
    pub fn supports(&self, direction: Direction, currency: Currency, method: Method) -> bool {
        self.directions.contains(&direction)
            && self.currencies.contains(&currency)
            && self.methods.contains(&method)
    }
}

/// Why a transaction failed, in Malipo's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureCode {
    /// The customer declined or cancelled the prompt.
    Declined,
    InsufficientFunds,
    /// The customer did not answer in time.
    Timeout,
    /// The wallet or account does not exist or cannot receive.
    InvalidAccount,
    /// The OTP was wrong.
    InvalidOtp,
    /// The rail failed in a way it could not explain.
    RailError,
}

impl FailureCode {
    pub const fn as_str(self) -> &'static str {
        match self {
            FailureCode::Declined => "declined",
            FailureCode::InsufficientFunds => "insufficient_funds",
            FailureCode::Timeout => "timeout",
            FailureCode::InvalidAccount => "invalid_account",
            FailureCode::InvalidOtp => "invalid_otp",
            FailureCode::RailError => "rail_error",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            FailureCode::Declined,
            FailureCode::InsufficientFunds,
            FailureCode::Timeout,
            FailureCode::InvalidAccount,
            FailureCode::InvalidOtp,
            FailureCode::RailError,
        ]
        .into_iter()
        .find(|code| code.as_str() == text)
    }
}

/// A push prompt to a customer's wallet.
#[derive(Debug, Clone)]
pub struct CollectionRequest {
    /// Malipo's id for the transaction (`pay_…`), sent to the rail as its
    /// reference so callbacks can name it.
    pub reference: String,
    /// What the customer is asked to pay (fees on top included).
    pub amount: Money,
    /// E.164, with the `+`.
    pub phone: String,
    pub description: String,
    /// Fields the rail asked for earlier (`customer.name`, …).
    pub fields: BTreeMap<String, String>,
    /// The OTP the customer entered, when the rail asked for one.
    pub otp: Option<String>,
    /// Where the rail should send its callback.
    pub callback_url: String,
    /// A debit under the customer's standing authorization (a plan's
    /// installment), with no prompt to approve; otherwise the customer
    /// approves a push prompt.
    pub recurring: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Wallet {
        phone: String,
    },
    Bank {
        bank_code: String,
        account_number: String,
        account_name: String,
    },
}

/// Money out, to a wallet or a bank account.
#[derive(Debug, Clone)]
pub struct PayoutRequest {
    /// `po_…` or `re_…`.
    pub reference: String,
    pub amount: Money,
    pub destination: Destination,
    pub description: String,
    pub callback_url: String,
    /// For a refund: the payment it gives back, on this rail. A rail with
    /// a refund API may use it (Airtel reverses a whole transaction); the
    /// others pay the wallet out.
    pub refund_of: Option<RefundOf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundOf {
    /// The payment's transaction on the rail.
    pub rail_transaction_id: String,
    /// Whether the refund gives back all the customer paid.
    pub whole: bool,
}

/// What a field the rail asks for must look like.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldSpec {
    pub label: String,
    /// A regular-expression-free rule a person can read: e.g. "8 to 20 digits".
    pub rule: String,
}

/// The rail's first answer to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartOutcome {
    /// The rail took it; the outcome comes later by callback or query.
    Accepted { rail_transaction_id: String },
    /// The customer must supply an OTP (`CollectionRequest::otp`).
    NeedsOtp,
    /// The rail needs more about the customer before it can proceed.
    NeedsFields {
        fields: BTreeMap<String, FieldSpec>,
        /// Per field, what was wrong with a value already given.
        errors: BTreeMap<String, Vec<String>>,
    },
    /// The rail refused at once.
    Rejected {
        failure: FailureCode,
        message: String,
    },
}

/// A transaction's state as the rail reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RailStatus {
    Pending,
    Succeeded,
    Failed {
        failure: FailureCode,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    pub rail_transaction_id: String,
    /// Malipo's reference, when the rail echoes it.
    pub reference: Option<String>,
    pub status: RailStatus,
    /// The amount the rail says moved, when it says.
    pub amount: Option<Money>,
}

/// A payment the customer started from their own wallet (M-Pesa C2B, a
/// paybill, TIPS) to an account number: for Malipo, a reference number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerPayment {
    pub rail_transaction_id: String,
    /// The account number the customer entered.
    pub account_reference: String,
    pub amount: Money,
    /// E.164 when the rail gives it.
    pub phone: Option<String>,
    pub payer_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RailError {
    #[error("the {rail} rail does not support {what}")]
    Unsupported { rail: &'static str, what: String },
    /// Timeouts, connection errors, 5xx: the outcome is unknown; retry or poll.
    #[error("the {rail} rail is unavailable: {reason}")]
    Unavailable { rail: &'static str, reason: String },
    #[error("callback refused: {0}")]
    InvalidCallback(String),
}

/// What a rail can do. Every method that talks to the rail may be slow and
/// fail with [`RailError::Unavailable`]; callers retry or poll, they never
/// guess an outcome.
#[async_trait::async_trait]
pub trait Rail: Send + Sync + 'static {
    fn capabilities(&self) -> &Capabilities;

    /// Sends a push prompt to the customer.
    async fn start_collection(
        &self,
        request: &CollectionRequest,
    ) -> Result<StartOutcome, RailError>;

    /// Sends money out.
    async fn start_payout(&self, request: &PayoutRequest) -> Result<StartOutcome, RailError>;

    /// Asks the rail where a transaction stands (for lost callbacks).
    async fn query_status(&self, rail_transaction_id: &str) -> Result<StatusReport, RailError>;

    /// Verifies and reads a callback the rail sent, as received.
    fn parse_callback(
        &self,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<StatusReport, RailError>;

    /// The registered name of a wallet's holder, to confirm before a payout.
    async fn lookup_account_name(&self, phone: &str) -> Result<String, RailError>;

    /// Reads a callback that reports a customer-initiated payment (C2B):
    /// `Ok(None)` when the callback is of another kind.
    fn parse_customer_payment(
        &self,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<Option<CustomerPayment>, RailError> {
        let _ = (headers, body);
        Ok(None)
    }

    /// Tells the rail where to send customer-initiated payments (M-Pesa
    /// C2B's register URL): Malipo's validation and confirmation URLs.
    async fn register_customer_payment_urls(&self) -> Result<(), RailError> {
        Err(RailError::Unsupported {
            rail: self.capabilities().id,
            what: "customer-initiated payments".to_owned(),
        })
    }

    /// The answer to a validation request the rail sends before the
    /// customer pays (M-Pesa C2B validation): accept, or refuse with a
    /// reason. Returns the HTTP status and JSON body the rail expects.
    fn validation_answer(&self, refusal: Option<&str>) -> (u16, String) {
        let body = match refusal {
            None => serde_json::json!({"accepted": true}),
            Some(reason) => serde_json::json!({"accepted": false, "reason": reason}),
        };
        (200, body.to_string())
    }
}

/// The path segment a rail's callbacks come to, `/v1/inbound/{segment}`:
/// the rail's id, but for M-Pesa, whose Daraja refuses callback URLs that
/// contain "mpesa".
pub fn callback_segment(rail: &str) -> &str {
    if rail == mpesa::ID { "daraja" } else { rail }
}

/// The rail a callback path segment names (the inverse of
/// [`callback_segment`]).
pub fn inbound_rail(segment: &str) -> &str {
    if segment == "daraja" {
        mpesa::ID
    } else {
        segment
    }
}

/// Installs ring as the process's one TLS crypto provider, which every
/// HTTP client needs before it is built (the build has no OpenSSL, aws-lc or
/// cmake). Calling it again does nothing. `malipo_webhooks` has the same
/// one-liner: the two crates sit side by side, and the rails' own tests
/// build clients without the rest of the application.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
