//! A faithful local fake of Safaricom's M-Pesa **Daraja** API: a real HTTP
//! server (axum) with Daraja's paths, auth, PascalCase bodies, error
//! envelopes, result codes and callbacks — quirks included — so that
//! Malipo's M-Pesa connector, and Safaricom's own published clients (see
//! `compat/mpesa-node/`), can be tested on a machine that cannot reach
//! Safaricom. Start one with [`MpesaFake::spawn`] (tests) or
//! [`MpesaFake::serve`] (`malipo fake-rail mpesa`).
//!
//! What it answers was checked against Daraja's published documentation
//! (the "Daraja 3.0" API pages: M-Pesa Express Simulate/Query, Customer To
//! Business Register URL, Business To Customer, Transaction Status) and
//! against responses people captured from the real sandbox. Where the
//! documentation and the wire disagree, the fake follows the wire, and says
//! so below.
//!
//! # Endpoints
//!
//! | Method and path | What it does |
//! |---|---|
//! | `GET /oauth/v1/generate?grant_type=client_credentials` | HTTP Basic `consumer_key:consumer_secret` → `{"access_token","expires_in":"3599"}` |
//! | `POST /mpesa/stkpush/v1/processrequest` | M-Pesa Express (STK push): acknowledge, then post `Body.stkCallback` to `CallBackURL` |
//! | `POST /mpesa/stkpushquery/v1/query` | M-Pesa Express query |
//! | `POST /mpesa/c2b/v1/registerurl` (and `v2`) | register the validation and confirmation URLs of a short code |
//! | `POST /mpesa/c2b/v1/simulate` (and `v2`) | the sandbox's simulated customer payment: validation, then confirmation |
//! | `POST /mpesa/b2c/v1/paymentrequest` (and `v3`) | B2C payout: acknowledge, then post `Result` to `ResultURL` (or `QueueTimeOutURL`) |
//! | `POST /mpesa/transactionstatus/v1/query` | transaction status: acknowledge, then post `Result` to `ResultURL` |
//! | anything else | `404 {"errorCode":"404.003.01","errorMessage":"Resource not found"}`; a known path with another method: `405 {"errorCode":"405.001"}` |
//!
//! Every `/mpesa/…` call needs `Authorization: Bearer <token>` from the
//! OAuth endpoint. Callbacks are plain unsigned JSON `POST`s, as Daraja's
//! are (a receiver can only trust them by their source or by querying).
//!
//! Controls for a fake run from the CLI (none of them recorded as
//! requests): `POST /__fake/expire-tokens`, `GET /__fake/requests`,
//! `GET /__fake/callbacks`, `GET /__fake/tokens` (`{"tokens_issued":n}`),
//! `POST /__fake/customer-pays` (`{"msisdn","amount","bill_ref_number"}` →
//! the [`C2bOutcome`] as JSON), `POST /__fake/pending-query-style`
//! (`{"style":"500"}` or `{"style":"4999"}`, see below) and
//! `POST /__fake/reset` (forgets the recorded requests and callbacks).
//!
//! # Triggers (the last four digits of the phone number, [`Trigger::of`])
//!
//! For an STK push the phone is `PhoneNumber` (the one prompted); for a B2C
//! payout it is `PartyB`; for a C2B payment the paying `Msisdn`. `d` is
//! [`MpesaFakeConfig::callback_delay`].
//!
//! | Ends in | STK push (callback `ResultCode`, a JSON number) | B2C payout (result `ResultCode`) |
//! |---|---|---|
//! | other | `0` after `d` | `0` after `d` |
//! | `0001` Declined | `1032` "Request cancelled by user" | `8` "Declined due to limit rule: would exceed the maximum balance." (a payee can't cancel a payout; this is the payee-side refusal) |
//! | `0002` InsufficientFunds | `1` "The balance is insufficient for the transaction." | `1` (the business's utility account) |
//! | `0003` NoAnswer | `1037` "DS timeout user cannot be reached", after `3d` | nothing to `ResultURL`: a timeout notice to `QueueTimeOutURL` after `3d`; the payout was not made |
//! | `0004` CallbackLost | succeeds, no callback: only a query tells | succeeds, no result posted: only a transaction status query tells |
//! | `0005` CallbackTwice | the same callback twice, `d` apart | the same result twice |
//! | `0006` SlowCallback | succeeds at `d` (a query says so), callback at `10d` | result at `10d` |
//! | `0007` FirstRequestHangs | the first request for a `PhoneNumber`+`AccountReference` is accepted and processed at once (its callback arrives before its answer), but the HTTP answer waits [`MpesaFakeConfig::hang_for`]; later requests are answered at once and are new, separate pushes (Daraja has no idempotency key for STK: a retry charges again) | the first request for a `PartyB`+`Amount` likewise; a v3 retry with the same `OriginatorConversationID` is refused as a duplicate, a retry without one is a second payout |
//! | `0008` InvalidAccount | refused at once: `400 {"errorCode":"400.002.02","errorMessage":"Bad Request - Invalid PhoneNumber"}` | `2040` "Credit Party customer type (Unregistered or Registered Customer) can't be supported by the service." |
//! | `0009` UnknownCode | `5999` "The service request has failed due to an unknown error." (a code Daraja documents nowhere) | `5999` likewise |
//!
//! C2B payments honour only the delivery triggers (`0004` no confirmation,
//! `0005` two confirmations, `0006` confirmation after `10d`); a customer
//! paying is otherwise always successful on M-Pesa's side.
//!
//! Request-dependent results come first: B2C with the wrong `InitiatorName`
//! or `SecurityCredential` → `2001` "The initiator information is invalid."
//! (in the result, not the acknowledgement, as Daraja does); B2C under KES 10
//! → `2`, over 250,000 → `3`; an STK push to a pay bill whose `PartyB` is
//! not its `BusinessShortCode` → `2028`; an STK prompt longer than 182
//! characters (a very long `AccountReference`) → `1025`.
//!
//! # Quirks reproduced
//!
//! - **Error envelope** `{"requestId","errorCode","errorMessage"}`; the HTTP
//!   status is the error code's first part (`400.002.02` → 400,
//!   `500.001.1001` → 500, `404.001.03` → **404**). In particular an
//!   invalid, unknown or expired token is `404 {"errorCode":"404.001.03",
//!   "errorMessage":"Invalid Access Token"}` — not 401: Daraja's error table
//!   lists it under HTTP 404 and the sandbox answers 404. A missing or
//!   non-Bearer `Authorization` header: `404.001.04` "Invalid Authentication
//!   Header".
//! - **OAuth**: `expires_in` is a *string* (`"3599"`); wrong credentials →
//!   `400 {"errorCode":"400.008.01","errorMessage":"Invalid Authentication
//!   passed"}`; a `grant_type` other than `client_credentials` → `400.008.02`
//!   "Invalid grant type passed". Every call issues a new token, valid for
//!   [`MpesaFakeConfig::token_lifetime`].
//! - **A body that is not a JSON object** → `400.002.05` "Invalid Request
//!   Payload". Numeric fields (`Amount`, `PartyA`, `PhoneNumber`, short
//!   codes) are accepted as JSON numbers or strings, as Daraja does.
//! - **STK push validation** (`400.002.02 "Bad Request - Invalid X"`):
//!   `BusinessShortCode` (5–7 digits), `Timestamp` (`YYYYMMDDHHmmss`, a real
//!   date; its distance from now is not checked — mpesa-node sends UTC
//!   instead of Nairobi time and Daraja takes it), `TransactionType`
//!   (`CustomerPayBillOnline` | `CustomerBuyGoodsOnline`), `Amount` (a whole
//!   number of shillings, 1–250,000: `1.5` is refused, `"1"`, `1` and `1.0`
//!   are taken), `PartyA` and `PhoneNumber` (`2547…`/`2541…`, 12 digits),
//!   `PartyB`, `CallBackURL` (http(s)), `AccountReference` (present; longer
//!   than the documented 12 characters is *accepted*, as the sandbox does),
//!   and `TransactionDesc`: missing or empty → "Bad Request - Invalid
//!   Remarks" (Daraja's name for it; longer than the documented 13 is
//!   accepted). Then M-Pesa's own checks, as HTTP **500**: a
//!   `BusinessShortCode` other than the configured one →
//!   `500.001.1001` "Merchant does not exist"; a `Password` that is not
//!   `base64(BusinessShortCode + passkey + Timestamp)` → `500.001.1001`
//!   "Wrong credentials" (not a 400: that is what Daraja answers); a second
//!   push to a phone whose prompt is still open → `500.001.1001` "Unable to
//!   lock subscriber, a transaction is already in process for the current
//!   subscriber".
//! - **STK acknowledgement**: `{"MerchantRequestID","CheckoutRequestID":
//!   "ws_CO_…","ResponseCode":"0","ResponseDescription":"Success. Request
//!   accepted for processing","CustomerMessage":…}` — codes as strings.
//! - **STK callback**: `ResultCode` is a JSON *number*; on success
//!   `CallbackMetadata.Item` holds `Amount` (a JSON number written `1.0`, as
//!   the docs' `1.00`: parse it as a decimal), `MpesaReceiptNumber`,
//!   `Balance` *with no `Value`*, `TransactionDate` (a JSON number
//!   `YYYYMMDDHHmmss`, Nairobi time) and `PhoneNumber` (a JSON number); on
//!   failure there is **no `CallbackMetadata`** at all.
//! - **STK query while the prompt is open**: HTTP 500
//!   `{"errorCode":"500.001.1001","errorMessage":"The transaction is being
//!   processed"}` — the long-standing answer — or, with
//!   [`PendingQueryStyle::ResultCode4999`], HTTP 200 with `"ResultCode":
//!   "4999","ResultDesc":"The transaction is still under processing"` (what
//!   the sandbox has been seen answering since 2025). A connector must treat
//!   both as "pending". Once decided: HTTP 200 `{"ResponseCode":"0",
//!   "ResponseDescription":"The service request has been accepted
//!   successsfully"` (sic, three s) `,…,"ResultCode":"0","ResultDesc":…}` —
//!   `ResultCode` a *string* here, unlike the callback. An unknown
//!   `CheckoutRequestID` → `400.002.02` "Bad Request - Invalid
//!   CheckoutRequestID".
//! - **C2B register**: `ResponseType` must be exactly `Completed` or
//!   `Cancelled` (sentence case); URLs containing `M-Pesa`, `mpesa`,
//!   `Safaricom`, `exe`, `exec`, `cmd`, `SQL` or `query` in any case are
//!   refused ("Bad Request - Invalid ConfirmationURL"/"ValidationURL") as
//!   Daraja's URL rules say; re-registering overwrites (the sandbox allows
//!   it). The answer spells **`OriginatorCoversationID`** (sic) and says
//!   `"ResponseDescription":"success"`.
//! - **C2B payment** ([`MpesaFake::customer_pays`], or the simulate
//!   endpoint, which acknowledges with `OriginatorCoversationID` too and
//!   pays after `d`): no URLs registered → completed silently. A registered
//!   `ValidationURL` gets the validation request (Daraja calls it only with
//!   External Validation enabled; the fake treats a registered URL as
//!   enabled) and has 8 seconds: `{"ResultCode":"0"}` (string or number)
//!   accepts, any other `ResultCode` (`C2B00011` invalid MSISDN,
//!   `C2B00012` invalid account number, `C2B00013` invalid amount,
//!   `C2B00014` invalid KYC details, `C2B00015` invalid short code,
//!   `C2B00016` other) rejects — no confirmation follows. No usable answer
//!   (unreachable, timeout, not 2xx, no JSON `ResultCode`): the registered
//!   `ResponseType` decides — `Completed` confirms anyway, `Cancelled`
//!   cancels. A `ThirdPartyTransID` in the validation answer comes back in
//!   the confirmation. Both bodies: `TransactionType` `"Pay Bill"` or
//!   `"Buy Goods"`, `TransAmount` a string `"10.00"`, `MSISDN` **masked**
//!   as in Daraja's current docs (`"25470****149"`: five digits, four stars,
//!   the last three — a connector can never learn the payer's number from
//!   C2B), `FirstName` `"John"`, `MiddleName` `""`, `LastName` `"Doe"`,
//!   `OrgAccountBalance` `""` in the validation and the new balance
//!   (`"100010.00"`) in the confirmation.
//! - **B2C**: `InitiatorName`, `SecurityCredential`, `CommandID`
//!   (`BusinessPayment` | `SalaryPayment` | `PromotionPayment`), `Amount`,
//!   `PartyA` (any 5–7 digit short code), `PartyB` (an MSISDN), `Remarks`
//!   (2–100 characters), `QueueTimeOutURL`, `ResultURL`; `Occassion`
//!   (Daraja's spelling) or `Occasion` optional. `v3` requires
//!   `OriginatorConversationID`; on either version a repeated one →
//!   `500 {"errorCode":"500.002.1001","errorMessage":"Duplicate
//!   OriginatorConversationID."}`. Acknowledgement: `{"ConversationID":
//!   "AG_YYYYMMDD_…","OriginatorConversationID","ResponseCode":"0",
//!   "ResponseDescription":"Accept the service request successfully."}`.
//!   The result: `{"Result":{"ResultType":0,"ResultCode":0,…,
//!   "ResultParameters":{"ResultParameter":[{"Key","Value"}…]},
//!   "ReferenceData":{"ReferenceItem":{"Key":"QueueTimeoutURL","Value":
//!   <Safaricom's internal URL>}}}}` — `ReferenceItem` an *object*, not an
//!   array; on failure no `ResultParameters`. The `SecurityCredential` is
//!   accepted when it equals [`MpesaFakeConfig::security_credential`] or is
//!   any base64 RSA-2048/4096 ciphertext (256 or 512 bytes): a client that
//!   encrypts the initiator password under Safaricom's certificate itself,
//!   as mpesa-node does, sends a new ciphertext each time, and the fake
//!   has no Safaricom private key to decrypt it. The queue-timeout notice
//!   (shape undocumented by Daraja; the fake's choice): `{"Result":
//!   {"ResultType":1,"ResultCode":1,"ResultDesc":"The service request has
//!   timed out.",…}}`.
//! - **Transaction status**: `Initiator`, `SecurityCredential`, `CommandID`
//!   `TransactionStatusQuery`, `TransactionID` (a receipt) or
//!   `OriginalConversationID` (the docs' name; `OriginatorConversationID`
//!   taken too) of a B2C payout, `PartyA`, `IdentifierType` (1, 2, 4 or 11),
//!   `ResultURL`, `QueueTimeOutURL`. The result after `d`: found →
//!   `ResultCode` 0 with `ReceiptNo`, `TransactionStatus` `"Completed"`,
//!   `Amount` (a string), `DebitPartyName`, `CreditPartyName`,
//!   `InitiatedTime`/`FinalisedTime` (strings `YYYYMMDDHHmmss`), …; not
//!   found (unknown, failed or timed-out transactions have no receipt) →
//!   `2033` "The transaction receipt number cannot be found by the
//!   specified OriginatorConversationID or ConversationID."; wrong initiator
//!   → `2001`. Receipts of STK pushes, C2B payments and B2C payouts are all
//!   found.
//!
//! Times are Nairobi time (UTC+3). Ids look like Daraja's:
//! `CheckoutRequestID` `ws_CO_<DDMMYYYYHHmmssSSS><last 9 digits of the
//! phone>`, `ConversationID` `AG_<YYYYMMDD>_<20 hex>`, receipts ten
//! upper-case characters starting with the year's letter (2024 `S`,
//! 2025 `T`, 2026 `U`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Serialize;
use serde_json::{Map, Value, json};
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::triggers::Trigger;

/// Daraja sandbox's Lipa na M-Pesa Online short code.
pub const SANDBOX_SHORTCODE: &str = "174379";
/// Daraja sandbox's public passkey for [`SANDBOX_SHORTCODE`].
pub const SANDBOX_PASSKEY: &str =
    "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919";
/// Daraja sandbox's test initiator (API operator).
pub const SANDBOX_INITIATOR: &str = "testapi";
/// The default consumer key (any fixed string: real sandbox keys are per app).
pub const TEST_CONSUMER_KEY: &str = "malipo-fake-consumer-key";
/// The default consumer secret.
pub const TEST_CONSUMER_SECRET: &str = "malipo-fake-consumer-secret";

/// The result code the fake uses for [`Trigger::UnknownCode`]: in no Daraja
/// table (4999 is not used: the sandbox answers 4999 to a query while a push
/// is still pending).
pub const UNKNOWN_RESULT_CODE: i64 = 5999;
const UNKNOWN_RESULT_DESC: &str = "The service request has failed due to an unknown error.";

const INTERNAL_B2C_QUEUE_URL: &str =
    "https://internalsandbox.safaricom.co.ke/mpesa/b2cresults/v1/submit";
const MAX_AMOUNT: u64 = 250_000;
const B2C_MIN_AMOUNT: u64 = 10;
const MAX_PROMPT_CHARS: usize = 182;
const VALIDATION_TIMEOUT: Duration = Duration::from_secs(8);
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(30);
const FORBIDDEN_URL_WORDS: [&str; 8] = [
    "m-pesa",
    "mpesa",
    "safaricom",
    "exec",
    "exe",
    "cmd",
    "sql",
    "query",
];
const MERCHANT_NAME: &str = "Malipo Test Merchant";
const CUSTOMER_NAME: &str = "John Doe";

/// The fake's settings.
#[derive(Debug, Clone)]
pub struct MpesaFakeConfig {
    pub consumer_key: String,
    pub consumer_secret: String,
    /// The pay bill (`BusinessShortCode`), e.g. "174379".
    pub shortcode: String,
    pub passkey: String,
    pub initiator_name: String,
    /// The initiator's password as Daraja wants it: encrypted under
    /// Safaricom's certificate, in base64.
    pub security_credential: String,
    /// How long after a request its callback comes (default 200 ms).
    pub callback_delay: Duration,
    /// How long a token lives (default 3599 s: `expires_in`).
    pub token_lifetime: Duration,
    /// How long a [`Trigger::FirstRequestHangs`] request hangs (default 30 s).
    pub hang_for: Duration,
}

impl Default for MpesaFakeConfig {
    /// Daraja sandbox's well-known values.
    fn default() -> Self {
        Self {
            consumer_key: TEST_CONSUMER_KEY.to_owned(),
            consumer_secret: TEST_CONSUMER_SECRET.to_owned(),
            shortcode: SANDBOX_SHORTCODE.to_owned(),
            passkey: SANDBOX_PASSKEY.to_owned(),
            initiator_name: SANDBOX_INITIATOR.to_owned(),
            security_credential: sandbox_security_credential(),
            callback_delay: Duration::from_millis(200),
            token_lifetime: Duration::from_secs(3599),
            hang_for: Duration::from_secs(30),
        }
    }
}

/// A fixed 256-byte value in base64: the shape of an initiator password
/// encrypted under Safaricom's RSA-2048 certificate, which is what the
/// Daraja portal hands out as a "security credential".
fn sandbox_security_credential() -> String {
    let mut x: u32 = 0x4d50_4553;
    let bytes: Vec<u8> = (0..256)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect();
    BASE64.encode(bytes)
}

/// An API request the fake received (the `/__fake` controls excepted).
#[derive(Debug, Clone, Serialize)]
pub struct ReceivedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    /// The body as JSON; `null` when empty or not JSON.
    pub body: Value,
}

impl ReceivedRequest {
    /// A header's value, its name in any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What a callback was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackKind {
    Stk,
    C2bValidation,
    C2bConfirmation,
    B2cResult,
    B2cQueueTimeout,
    TransactionStatusResult,
}

/// A callback the fake posted, and how it was answered.
#[derive(Debug, Clone, Serialize)]
pub struct SentCallback {
    pub kind: CallbackKind,
    pub url: String,
    pub body: Value,
    /// The HTTP status answered; `None` when the request failed.
    pub status: Option<u16>,
    /// The answer's body, when it was JSON.
    pub response: Option<Value>,
    /// Why the request failed (connection refused, timeout, …).
    pub error: Option<String>,
}

impl SentCallback {
    /// Answered with a 2xx.
    pub fn delivered(&self) -> bool {
        matches!(self.status, Some(s) if (200..300).contains(&s))
    }
}

/// What became of a customer's C2B payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum C2bOutcome {
    /// The money moved. `validated`: a validation URL accepted it (false
    /// when none is registered or it could not be reached and the
    /// `ResponseType` was `Completed`). `confirmation_delivered`: a
    /// confirmation was answered with a 2xx.
    Completed {
        trans_id: String,
        validated: bool,
        confirmation_delivered: bool,
    },
    /// The validation URL refused it: no money moved, no confirmation.
    Rejected {
        trans_id: String,
        result_code: String,
        result_desc: String,
    },
    /// The validation URL could not be reached and the `ResponseType` was
    /// `Cancelled`.
    Cancelled { trans_id: String },
}

impl C2bOutcome {
    pub fn trans_id(&self) -> &str {
        match self {
            C2bOutcome::Completed { trans_id, .. }
            | C2bOutcome::Rejected { trans_id, .. }
            | C2bOutcome::Cancelled { trans_id } => trans_id,
        }
    }
}

/// How an STK query is answered while the customer's prompt is still open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PendingQueryStyle {
    /// HTTP 500 `{"errorCode":"500.001.1001","errorMessage":"The transaction
    /// is being processed"}` (the long-standing answer; the default).
    #[default]
    Http500,
    /// HTTP 200 with `"ResultCode":"4999","ResultDesc":"The transaction is
    /// still under processing"` (seen from the sandbox since 2025).
    ResultCode4999,
}

/// The fake. Cheap to clone: every clone is the same server state.
#[derive(Clone)]
pub struct MpesaFake {
    inner: Arc<Inner>,
}

struct Inner {
    config: MpesaFakeConfig,
    http: reqwest::Client,
    seq: AtomicU64,
    tokens_issued: AtomicUsize,
    books: Mutex<Books>,
}

#[derive(Default)]
struct Books {
    tokens: HashMap<String, Instant>,
    requests: Vec<ReceivedRequest>,
    callbacks: Vec<SentCallback>,
    stk: HashMap<String, Stk>,
    hung: HashSet<String>,
    c2b_urls: HashMap<String, C2bUrls>,
    b2c_originator_ids: HashSet<String>,
    b2c_receipts: HashMap<String, String>,
    receipts: HashMap<String, Receipt>,
    pending_style: PendingQueryStyle,
    /// The pay bill's utility account (C2B and STK credit it).
    org_balance_cents: u64,
    /// The B2C utility account (payouts debit it).
    b2c_utility_cents: u64,
}

struct Stk {
    merchant_request_id: String,
    phone: String,
    decided_at: Instant,
    result_code: i64,
    result_desc: &'static str,
}

#[derive(Clone)]
struct C2bUrls {
    response_type: String,
    confirmation_url: String,
    validation_url: String,
}

#[derive(Clone)]
struct Receipt {
    receipt: String,
    amount: u64,
    reason_type: &'static str,
    debit_party: String,
    credit_party: String,
    debit_account_type: &'static str,
    charges: Option<&'static str>,
    conversation_id: String,
    originator_conversation_id: String,
    initiated: String,
    finalised: String,
}

struct B2cRequest {
    originator_conversation_id: String,
    conversation_id: String,
    initiator: String,
    credential: String,
    command: String,
    amount: u64,
    party_a: String,
    party_b: String,
    queue_url: String,
    result_url: String,
}

struct StatusRequest {
    originator_conversation_id: String,
    conversation_id: String,
    initiator: String,
    credential: String,
    receipt: Option<String>,
    original: Option<String>,
    result_url: String,
    occasion: Option<String>,
}

enum Verdict {
    Accept(Value),
    Reject(String, String),
    NoAnswer,
}

type Obj = Map<String, Value>;
/// An answer refusing a request (boxed: a `Response` is large).
type Refused = Box<Response>;

impl MpesaFake {
    pub fn new(config: MpesaFakeConfig) -> Self {
        // reqwest is built without a TLS provider in this workspace.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .build()
            .expect("an HTTP client for the fake's callbacks");
        let books = Books {
            org_balance_cents: 10_000_000,
            b2c_utility_cents: 100_000_000,
            ..Books::default()
        };
        Self {
            inner: Arc::new(Inner {
                config,
                http,
                seq: AtomicU64::new(0),
                tokens_issued: AtomicUsize::new(0),
                books: Mutex::new(books),
            }),
        }
    }

    /// The fake's routes: Daraja's, and the `/__fake` controls.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/oauth/v1/generate", get(oauth))
            .route("/mpesa/stkpush/v1/processrequest", post(stk_push))
            .route("/mpesa/stkpushquery/v1/query", post(stk_query))
            .route("/mpesa/c2b/v1/registerurl", post(c2b_register))
            .route("/mpesa/c2b/v2/registerurl", post(c2b_register))
            .route("/mpesa/c2b/v1/simulate", post(c2b_simulate))
            .route("/mpesa/c2b/v2/simulate", post(c2b_simulate))
            .route("/mpesa/b2c/v1/paymentrequest", post(b2c_v1))
            .route("/mpesa/b2c/v3/paymentrequest", post(b2c_v3))
            .route(
                "/mpesa/transactionstatus/v1/query",
                post(transaction_status),
            )
            .route("/__fake/expire-tokens", post(fake_expire_tokens))
            .route("/__fake/requests", get(fake_requests))
            .route("/__fake/callbacks", get(fake_callbacks))
            .route("/__fake/tokens", get(fake_tokens))
            .route("/__fake/customer-pays", post(fake_customer_pays))
            .route("/__fake/pending-query-style", post(fake_pending_style))
            .route("/__fake/reset", post(fake_reset))
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
            .layer(middleware::from_fn_with_state(self.clone(), record))
            .with_state(self.clone())
    }

    /// Binds 127.0.0.1:0, serves in a tokio task; returns the base URL
    /// "http://127.0.0.1:PORT".
    pub async fn spawn(&self) -> std::io::Result<String> {
        crate::serving::spawn(self.router(), "M-Pesa").await
    }

    /// Serves on a given listener until the future ends (for the CLI).
    pub async fn serve(&self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
    }

    /// Every issued token becomes invalid.
    pub fn expire_tokens(&self) {
        self.books().tokens.clear();
    }

    pub fn tokens_issued(&self) -> usize {
        self.inner.tokens_issued.load(Ordering::SeqCst)
    }

    /// Every API request received, oldest first.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.books().requests.clone()
    }

    /// Every callback posted, in the order they were answered.
    pub fn callbacks_sent(&self) -> Vec<SentCallback> {
        self.books().callbacks.clone()
    }

    /// Forgets the recorded requests and callbacks (not tokens or
    /// transactions).
    pub fn clear_logs(&self) {
        let mut books = self.books();
        books.requests.clear();
        books.callbacks.clear();
    }

    /// How STK queries are answered while a prompt is open.
    pub fn set_pending_query_style(&self, style: PendingQueryStyle) {
        self.books().pending_style = style;
    }

    /// Daraja's sandbox C2B simulate, also callable directly: a customer
    /// pays `amount` (whole KES) to the configured short code with account
    /// `bill_ref_number`; runs validation (if a ValidationURL is registered)
    /// then confirmation, as Daraja does, and returns what happened. It
    /// returns once the confirmation was answered.
    pub async fn customer_pays(
        &self,
        msisdn: &str,
        amount: u64,
        bill_ref_number: &str,
    ) -> C2bOutcome {
        let shortcode = self.cfg().shortcode.clone();
        self.c2b_payment(
            &shortcode,
            "CustomerPayBillOnline",
            msisdn,
            amount,
            bill_ref_number,
        )
        .await
    }

    fn cfg(&self) -> &MpesaFakeConfig {
        &self.inner.config
    }

    fn books(&self) -> MutexGuard<'_, Books> {
        self.inner
            .books
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn next_seq(&self) -> u64 {
        self.inner.seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn random(&self) -> u64 {
        let entropy = uuid::Uuid::now_v7().as_u128() as u64;
        entropy ^ self.next_seq().wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    /// Like Daraja's `requestId`, `MerchantRequestID` and generated
    /// `OriginatorConversationID`s: "1c5b-4ba8-815c-ac45c57a3db01469899".
    fn request_id(&self) -> String {
        let a = self.random();
        let b = self.random();
        format!(
            "{:04x}-{:04x}-{:04x}-{:012x}{}",
            a & 0xffff,
            (a >> 16) & 0xffff,
            (a >> 32) & 0xffff,
            b & 0xffff_ffff_ffff,
            self.next_seq()
        )
    }

    fn conversation_id(&self) -> String {
        let a = self.random();
        let b = self.random();
        format!(
            "AG_{}_{:08x}{:012x}",
            date8(eat_now()),
            a & 0xffff_ffff,
            b & 0xffff_ffff_ffff
        )
    }

    fn receipt_number(&self) -> String {
        const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let year = i64::from(eat_now().year());
        let mut out = String::with_capacity(10);
        out.push((b'A' + (year - 2006).rem_euclid(26) as u8) as char);
        let mut r = self.random();
        for _ in 0..9 {
            out.push(CHARS[(r % 36) as usize] as char);
            r /= 36;
        }
        out
    }

    fn token(&self) -> String {
        const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut out = String::with_capacity(28);
        let mut r = self.random();
        for i in 0..28 {
            if i % 10 == 0 {
                r = self.random();
            }
            out.push(CHARS[(r % 62) as usize] as char);
            r /= 62;
        }
        out
    }

    fn error(&self, status: StatusCode, code: &str, message: &str) -> Response {
        (
            status,
            Json(json!({
                "requestId": self.request_id(),
                "errorCode": code,
                "errorMessage": message,
            })),
        )
            .into_response()
    }

    fn bad_request(&self, what: &str) -> Response {
        self.error(
            StatusCode::BAD_REQUEST,
            "400.002.02",
            &format!("Bad Request - Invalid {what}"),
        )
    }

    fn mpesa_refusal(&self, message: &str) -> Response {
        self.error(StatusCode::INTERNAL_SERVER_ERROR, "500.001.1001", message)
    }

    fn check_bearer(&self, headers: &HeaderMap) -> Result<(), Refused> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| strip_scheme(v, "Bearer"));
        let Some(token) = token else {
            return Err(Box::new(self.error(
                StatusCode::NOT_FOUND,
                "404.001.04",
                "Invalid Authentication Header",
            )));
        };
        let valid = self
            .books()
            .tokens
            .get(token)
            .is_some_and(|expires| Instant::now() < *expires);
        if valid {
            Ok(())
        } else {
            Err(Box::new(self.error(
                StatusCode::NOT_FOUND,
                "404.001.03",
                "Invalid Access Token",
            )))
        }
    }

    /// The bearer check and the body as a JSON object.
    fn authorized_body(&self, headers: &HeaderMap, body: &Bytes) -> Result<Obj, Refused> {
        self.check_bearer(headers)?;
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(object)) => Ok(object),
            _ => Err(Box::new(self.error(
                StatusCode::BAD_REQUEST,
                "400.002.05",
                "Invalid Request Payload",
            ))),
        }
    }

    fn record_request(&self, parts: &axum::http::request::Parts, body: &Bytes) {
        let request = ReceivedRequest {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: serde_json::from_slice(body).unwrap_or(Value::Null),
        };
        self.books().requests.push(request);
    }

    async fn post_callback(
        &self,
        kind: CallbackKind,
        url: &str,
        body: &Value,
        timeout: Duration,
    ) -> SentCallback {
        let sent = match self
            .inner
            .http
            .post(url)
            .timeout(timeout)
            .json(body)
            .send()
            .await
        {
            Ok(answer) => {
                let status = answer.status().as_u16();
                let text = answer.text().await.unwrap_or_default();
                SentCallback {
                    kind,
                    url: url.to_owned(),
                    body: body.clone(),
                    status: Some(status),
                    response: serde_json::from_str(&text).ok(),
                    error: None,
                }
            }
            Err(error) => SentCallback {
                kind,
                url: url.to_owned(),
                body: body.clone(),
                status: None,
                response: None,
                error: Some(error.to_string()),
            },
        };
        self.books().callbacks.push(sent.clone());
        sent
    }

    /// Posts `copies` copies of a callback, the first after `after`, the
    /// others `callback_delay` apart, in a task of its own.
    fn schedule(
        &self,
        kind: CallbackKind,
        url: String,
        body: Value,
        after: Duration,
        copies: usize,
    ) {
        if copies == 0 {
            return;
        }
        let fake = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            for copy in 0..copies {
                if copy > 0 {
                    tokio::time::sleep(fake.cfg().callback_delay).await;
                }
                fake.post_callback(kind, &url, &body, CALLBACK_TIMEOUT)
                    .await;
            }
        });
    }

    /// When a callback goes and how many times, by trigger: `None` when lost.
    fn delivery(&self, trigger: Trigger, decided_after: Duration) -> (Duration, usize) {
        match trigger {
            Trigger::CallbackLost => (decided_after, 0),
            Trigger::CallbackTwice => (decided_after, 2),
            Trigger::SlowCallback => (self.cfg().callback_delay * 10, 1),
            _ => (decided_after, 1),
        }
    }

    fn check_password(
        &self,
        shortcode: &str,
        timestamp: &str,
        password: Option<&str>,
    ) -> Result<(), Refused> {
        let cfg = self.cfg();
        if shortcode != cfg.shortcode {
            return Err(Box::new(self.mpesa_refusal("Merchant does not exist")));
        }
        let expected = BASE64.encode(format!("{shortcode}{}{timestamp}", cfg.passkey));
        if password != Some(expected.as_str()) {
            return Err(Box::new(self.mpesa_refusal("Wrong credentials")));
        }
        Ok(())
    }

    fn initiator_ok(&self, initiator: &str, credential: &str) -> bool {
        let cfg = self.cfg();
        initiator == cfg.initiator_name
            && (credential == cfg.security_credential
                || BASE64
                    .decode(credential)
                    .is_ok_and(|bytes| bytes.len() == 256 || bytes.len() == 512))
    }

    async fn c2b_payment(
        &self,
        shortcode: &str,
        command: &str,
        msisdn: &str,
        amount: u64,
        bill_ref: &str,
    ) -> C2bOutcome {
        let trigger = Trigger::of(msisdn);
        let trans_id = self.receipt_number();
        let trans_time = stamp(eat_now());
        let urls = self.books().c2b_urls.get(shortcode).cloned();
        let transaction_type = if command == "CustomerBuyGoodsOnline" {
            "Buy Goods"
        } else {
            "Pay Bill"
        };
        let mut body = json!({
            "TransactionType": transaction_type,
            "TransID": trans_id,
            "TransTime": trans_time,
            "TransAmount": format!("{amount}.00"),
            "BusinessShortCode": shortcode,
            "BillRefNumber": bill_ref,
            "InvoiceNumber": "",
            "OrgAccountBalance": "",
            "ThirdPartyTransID": "",
            "MSISDN": mask_msisdn(msisdn),
            "FirstName": "John",
            "MiddleName": "",
            "LastName": "Doe",
        });
        let mut validated = false;
        if let Some(urls) = urls.as_ref().filter(|u| !u.validation_url.is_empty()) {
            let sent = self
                .post_callback(
                    CallbackKind::C2bValidation,
                    &urls.validation_url,
                    &body,
                    VALIDATION_TIMEOUT,
                )
                .await;
            match verdict(&sent) {
                Verdict::Accept(third_party) => {
                    validated = true;
                    body["ThirdPartyTransID"] = third_party;
                }
                Verdict::Reject(result_code, result_desc) => {
                    return C2bOutcome::Rejected {
                        trans_id,
                        result_code,
                        result_desc,
                    };
                }
                Verdict::NoAnswer if urls.response_type == "Cancelled" => {
                    return C2bOutcome::Cancelled { trans_id };
                }
                Verdict::NoAnswer => {}
            }
        }
        let balance = {
            let mut books = self.books();
            books.org_balance_cents += amount * 100;
            books.receipts.insert(
                trans_id.clone(),
                Receipt {
                    receipt: trans_id.clone(),
                    amount,
                    reason_type: if transaction_type == "Pay Bill" {
                        "Pay Bill"
                    } else {
                        "Pay Merchant"
                    },
                    debit_party: format!("{} - {CUSTOMER_NAME}", mask_msisdn(msisdn)),
                    credit_party: format!("{shortcode} - {MERCHANT_NAME}"),
                    debit_account_type: "Customer Account",
                    charges: None,
                    conversation_id: self.conversation_id(),
                    originator_conversation_id: self.request_id(),
                    initiated: trans_time.clone(),
                    finalised: trans_time.clone(),
                },
            );
            books.org_balance_cents
        };
        body["OrgAccountBalance"] = json!(cents(balance));
        let Some(urls) = urls else {
            return C2bOutcome::Completed {
                trans_id,
                validated,
                confirmation_delivered: false,
            };
        };
        let copies = match trigger {
            Trigger::CallbackLost => 0,
            Trigger::CallbackTwice => 2,
            _ => 1,
        };
        if trigger == Trigger::SlowCallback {
            tokio::time::sleep(self.cfg().callback_delay * 10).await;
        }
        let mut delivered = false;
        for copy in 0..copies {
            if copy > 0 {
                tokio::time::sleep(self.cfg().callback_delay).await;
            }
            let sent = self
                .post_callback(
                    CallbackKind::C2bConfirmation,
                    &urls.confirmation_url,
                    &body,
                    CALLBACK_TIMEOUT,
                )
                .await;
            delivered |= sent.delivered();
        }
        C2bOutcome::Completed {
            trans_id,
            validated,
            confirmation_delivered: delivered,
        }
    }

    fn b2c_result(&self, request: B2cRequest, trigger: Trigger) {
        let delay = self.cfg().callback_delay;
        let failure = if !self.initiator_ok(&request.initiator, &request.credential) {
            Some((2001, "The initiator information is invalid."))
        } else if request.amount < B2C_MIN_AMOUNT {
            Some((
                2,
                "Declined due to limit rule: less than the minimum transaction amount.",
            ))
        } else if request.amount > MAX_AMOUNT {
            Some((
                3,
                "Declined due to limit rule: greater than the maximum transaction amount.",
            ))
        } else {
            match trigger {
                Trigger::InsufficientFunds => {
                    Some((1, "The balance is insufficient for the transaction."))
                }
                Trigger::Declined => Some((
                    8,
                    "Declined due to limit rule: would exceed the maximum balance.",
                )),
                Trigger::InvalidAccount => Some((
                    2040,
                    "Credit Party customer type (Unregistered or Registered Customer) can't be supported by the service.",
                )),
                Trigger::UnknownCode => Some((UNKNOWN_RESULT_CODE, UNKNOWN_RESULT_DESC)),
                _ => None,
            }
        };
        let reference =
            json!({"ReferenceItem": {"Key": "QueueTimeoutURL", "Value": INTERNAL_B2C_QUEUE_URL}});
        if failure.is_none() && trigger == Trigger::NoAnswer {
            let body = json!({"Result": {
                "ResultType": 1,
                "ResultCode": 1,
                "ResultDesc": "The service request has timed out.",
                "OriginatorConversationID": request.originator_conversation_id,
                "ConversationID": request.conversation_id,
                "TransactionID": format!("{}0000000", &self.receipt_number()[..3]),
                "ReferenceData": reference,
            }});
            self.schedule(
                CallbackKind::B2cQueueTimeout,
                request.queue_url,
                body,
                delay * 3,
                1,
            );
            return;
        }
        let receipt = self.receipt_number();
        let (failure, utility) = {
            let mut books = self.books();
            let failure = match failure {
                None if request.amount * 100 > books.b2c_utility_cents => {
                    Some((1, "The balance is insufficient for the transaction."))
                }
                other => other,
            };
            if failure.is_none() {
                books.b2c_utility_cents -= request.amount * 100;
                let now = stamp(eat_now());
                books
                    .b2c_receipts
                    .insert(request.originator_conversation_id.clone(), receipt.clone());
                books.receipts.insert(
                    receipt.clone(),
                    Receipt {
                        receipt: receipt.clone(),
                        amount: request.amount,
                        reason_type: match request.command.as_str() {
                            "SalaryPayment" => "Salary Payment via API",
                            "PromotionPayment" => "Promotion Payment via API",
                            _ => "Business Payment to Customer via API",
                        },
                        debit_party: format!("{} - {MERCHANT_NAME}", request.party_a),
                        credit_party: format!("{} - {CUSTOMER_NAME}", request.party_b),
                        debit_account_type: "Utility Account",
                        charges: Some("Fee For B2C Payment|KES|22.40"),
                        conversation_id: request.conversation_id.clone(),
                        originator_conversation_id: request.originator_conversation_id.clone(),
                        initiated: now.clone(),
                        finalised: now,
                    },
                );
            }
            (failure, books.b2c_utility_cents)
        };
        let body = match failure {
            Some((code, desc)) => json!({"Result": {
                "ResultType": 0,
                "ResultCode": code,
                "ResultDesc": desc,
                "OriginatorConversationID": request.originator_conversation_id,
                "ConversationID": request.conversation_id,
                "TransactionID": receipt,
                "ReferenceData": reference,
            }}),
            None => json!({"Result": {
                "ResultType": 0,
                "ResultCode": 0,
                "ResultDesc": "The service request is processed successfully.",
                "OriginatorConversationID": request.originator_conversation_id,
                "ConversationID": request.conversation_id,
                "TransactionID": receipt,
                "ResultParameters": {"ResultParameter": [
                    {"Key": "TransactionAmount", "Value": request.amount},
                    {"Key": "TransactionReceipt", "Value": receipt},
                    {"Key": "ReceiverPartyPublicName", "Value": format!("{} - {CUSTOMER_NAME}", request.party_b)},
                    {"Key": "TransactionCompletedDateTime", "Value": completed_time(eat_now())},
                    {"Key": "B2CUtilityAccountAvailableFunds", "Value": utility as f64 / 100.0},
                    {"Key": "B2CWorkingAccountAvailableFunds", "Value": 900_000.0},
                    {"Key": "B2CRecipientIsRegisteredCustomer", "Value": "Y"},
                    {"Key": "B2CChargesPaidAccountAvailableFunds", "Value": -4510.0},
                ]},
                "ReferenceData": reference,
            }}),
        };
        let (after, copies) = if failure.is_some() {
            (delay, 1)
        } else {
            self.delivery(trigger, delay)
        };
        self.schedule(
            CallbackKind::B2cResult,
            request.result_url,
            body,
            after,
            copies,
        );
    }

    fn status_result(&self, request: &StatusRequest) -> Value {
        let found = {
            let books = self.books();
            request
                .receipt
                .as_ref()
                .and_then(|r| books.receipts.get(r))
                .or_else(|| {
                    request
                        .original
                        .as_ref()
                        .and_then(|o| books.b2c_receipts.get(o))
                        .and_then(|r| books.receipts.get(r))
                })
                .cloned()
        };
        let occasion = match &request.occasion {
            Some(value) => json!({"Key": "Occasion", "Value": value}),
            None => json!({"Key": "Occasion"}),
        };
        let mut result = json!({
            "ConversationID": request.conversation_id,
            "OriginatorConversationID": request.originator_conversation_id,
            "ReferenceData": {"ReferenceItem": occasion},
            "ResultType": 0,
            "TransactionID": format!("{}0000000", &self.receipt_number()[..3]),
        });
        let (code, desc) = if !self.initiator_ok(&request.initiator, &request.credential) {
            (2001, "The initiator information is invalid.")
        } else if let Some(found) = found {
            let charges = match found.charges {
                Some(charges) => json!({"Key": "DebitPartyCharges", "Value": charges}),
                None => json!({"Key": "DebitPartyCharges"}),
            };
            result["ResultParameters"] = json!({"ResultParameter": [
                {"Key": "DebitPartyName", "Value": found.debit_party},
                {"Key": "CreditPartyName", "Value": found.credit_party},
                {"Key": "OriginatorConversationID", "Value": found.originator_conversation_id},
                {"Key": "InitiatedTime", "Value": found.initiated},
                {"Key": "DebitAccountType", "Value": found.debit_account_type},
                charges,
                {"Key": "TransactionReason"},
                {"Key": "ReasonType", "Value": found.reason_type},
                {"Key": "TransactionStatus", "Value": "Completed"},
                {"Key": "FinalisedTime", "Value": found.finalised},
                {"Key": "Amount", "Value": found.amount.to_string()},
                {"Key": "ConversationID", "Value": found.conversation_id},
                {"Key": "ReceiptNo", "Value": found.receipt},
            ]});
            (0, "The service request is processed successfully.")
        } else {
            (
                2033,
                "The transaction receipt number cannot be found by the specified OriginatorConversationID or ConversationID.",
            )
        };
        result["ResultCode"] = json!(code);
        result["ResultDesc"] = json!(desc);
        json!({ "Result": result })
    }
}

async fn record(State(fake): State<MpesaFake>, request: Request, next: Next) -> Response {
    if request.uri().path().starts_with("/__fake/") {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 4 << 20)
        .await
        .unwrap_or_default();
    fake.record_request(&parts, &bytes);
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

async fn not_found(State(fake): State<MpesaFake>) -> Response {
    fake.error(StatusCode::NOT_FOUND, "404.003.01", "Resource not found")
}

async fn method_not_allowed(State(fake): State<MpesaFake>) -> Response {
    fake.error(
        StatusCode::METHOD_NOT_ALLOWED,
        "405.001",
        "Method Not Allowed",
    )
}

async fn oauth(
    State(fake): State<MpesaFake>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if query.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return fake.error(
            StatusCode::BAD_REQUEST,
            "400.008.02",
            "Invalid grant type passed",
        );
    }
    let cfg = fake.cfg();
    let expected = format!("{}:{}", cfg.consumer_key, cfg.consumer_secret);
    let authenticated = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| strip_scheme(v, "Basic"))
        .and_then(|encoded| BASE64.decode(encoded).ok())
        .is_some_and(|decoded| decoded == expected.as_bytes());
    if !authenticated {
        return fake.error(
            StatusCode::BAD_REQUEST,
            "400.008.01",
            "Invalid Authentication passed",
        );
    }
    let token = fake.token();
    fake.books()
        .tokens
        .insert(token.clone(), Instant::now() + cfg.token_lifetime);
    fake.inner.tokens_issued.fetch_add(1, Ordering::SeqCst);
    Json(json!({
        "access_token": token,
        "expires_in": cfg.token_lifetime.as_secs().to_string(),
    }))
    .into_response()
}

async fn stk_push(State(fake): State<MpesaFake>, headers: HeaderMap, body: Bytes) -> Response {
    let o = match fake.authorized_body(&headers, &body) {
        Ok(o) => o,
        Err(refusal) => return *refusal,
    };
    let Some(shortcode) = text(&o, "BusinessShortCode").filter(|s| is_shortcode(s)) else {
        return fake.bad_request("BusinessShortCode");
    };
    let password = text(&o, "Password");
    let Some(timestamp) = text(&o, "Timestamp").filter(|t| is_timestamp(t)) else {
        return fake.bad_request("Timestamp");
    };
    let Some(kind) = text(&o, "TransactionType")
        .filter(|t| t == "CustomerPayBillOnline" || t == "CustomerBuyGoodsOnline")
    else {
        return fake.bad_request("TransactionType");
    };
    let Some(amount) = whole_amount(o.get("Amount")).filter(|a| *a <= MAX_AMOUNT) else {
        return fake.bad_request("Amount");
    };
    if !text(&o, "PartyA").is_some_and(|p| is_msisdn(&p)) {
        return fake.bad_request("PartyA");
    }
    let Some(party_b) = text(&o, "PartyB").filter(|p| is_shortcode(p)) else {
        return fake.bad_request("PartyB");
    };
    let Some(phone) = text(&o, "PhoneNumber").filter(|p| is_msisdn(p)) else {
        return fake.bad_request("PhoneNumber");
    };
    let Some(callback_url) = text(&o, "CallBackURL").filter(|u| is_url(u)) else {
        return fake.bad_request("CallBackURL");
    };
    let Some(account_reference) = text(&o, "AccountReference") else {
        return fake.bad_request("AccountReference");
    };
    if text(&o, "TransactionDesc").is_none() {
        return fake.bad_request("Remarks");
    }
    if let Err(refusal) = fake.check_password(&shortcode, &timestamp, password.as_deref()) {
        return *refusal;
    }
    let trigger = Trigger::of(&phone);
    if trigger == Trigger::InvalidAccount {
        return fake.bad_request("PhoneNumber");
    }

    let delay = fake.cfg().callback_delay;
    let prompt = format!(
        "Do you want to pay Ksh {amount} to {MERCHANT_NAME} account no. {account_reference}? Enter M-PESA PIN:"
    );
    let (result_code, result_desc, decided_after) =
        if kind == "CustomerPayBillOnline" && party_b != shortcode {
            (
                2028,
                "The request is not permitted according to product assignment.",
                delay,
            )
        } else if prompt.chars().count() > MAX_PROMPT_CHARS {
            (
                1025,
                "An error occurred while sending a push request.",
                delay,
            )
        } else {
            match trigger {
                Trigger::Declined => (1032, "Request cancelled by user", delay),
                Trigger::InsufficientFunds => {
                    (1, "The balance is insufficient for the transaction.", delay)
                }
                Trigger::NoAnswer => (1037, "DS timeout user cannot be reached", delay * 3),
                Trigger::UnknownCode => (UNKNOWN_RESULT_CODE, UNKNOWN_RESULT_DESC, delay),
                _ => (0, "The service request is processed successfully.", delay),
            }
        };

    let now = Instant::now();
    let merchant_request_id = fake.request_id();
    let when = eat_now();
    let (checkout_request_id, hang) = {
        let mut books = fake.books();
        if books
            .stk
            .values()
            .any(|s| s.phone == phone && now < s.decided_at)
        {
            drop(books);
            return fake.mpesa_refusal(
                "Unable to lock subscriber, a transaction is already in process for the current subscriber",
            );
        }
        let mut checkout_request_id = format!(
            "ws_CO_{}{}",
            checkout_stamp(when),
            &phone[phone.len() - 9..]
        );
        if books.stk.contains_key(&checkout_request_id) {
            checkout_request_id.push_str(&fake.next_seq().to_string());
        }
        books.stk.insert(
            checkout_request_id.clone(),
            Stk {
                merchant_request_id: merchant_request_id.clone(),
                phone: phone.clone(),
                decided_at: now + decided_after,
                result_code,
                result_desc,
            },
        );
        let hang = trigger == Trigger::FirstRequestHangs
            && books
                .hung
                .insert(format!("stk:{phone}:{account_reference}"));
        (checkout_request_id, hang)
    };

    let mut callback = json!({"Body": {"stkCallback": {
        "MerchantRequestID": merchant_request_id,
        "CheckoutRequestID": checkout_request_id,
        "ResultCode": result_code,
        "ResultDesc": result_desc,
    }}});
    let (after, copies) = if result_code == 0 {
        let receipt = fake.receipt_number();
        let date = stamp(when);
        {
            let mut books = fake.books();
            books.org_balance_cents += amount * 100;
            books.receipts.insert(
                receipt.clone(),
                Receipt {
                    receipt: receipt.clone(),
                    amount,
                    reason_type: "Pay Bill Online",
                    debit_party: format!("{phone} - {CUSTOMER_NAME}"),
                    credit_party: format!("{shortcode} - {MERCHANT_NAME}"),
                    debit_account_type: "Customer Account",
                    charges: None,
                    conversation_id: fake.conversation_id(),
                    originator_conversation_id: merchant_request_id.clone(),
                    initiated: date.clone(),
                    finalised: date.clone(),
                },
            );
        }
        callback["Body"]["stkCallback"]["CallbackMetadata"] = json!({"Item": [
            {"Name": "Amount", "Value": amount as f64},
            {"Name": "MpesaReceiptNumber", "Value": receipt},
            {"Name": "Balance"},
            {"Name": "TransactionDate", "Value": date.parse::<u64>().unwrap_or_default()},
            {"Name": "PhoneNumber", "Value": phone.parse::<u64>().unwrap_or_default()},
        ]});
        fake.delivery(trigger, decided_after)
    } else {
        (decided_after, 1)
    };
    fake.schedule(CallbackKind::Stk, callback_url, callback, after, copies);

    let answer = Json(json!({
        "MerchantRequestID": merchant_request_id,
        "CheckoutRequestID": checkout_request_id,
        "ResponseCode": "0",
        "ResponseDescription": "Success. Request accepted for processing",
        "CustomerMessage": "Success. Request accepted for processing",
    }));
    if hang {
        tokio::time::sleep(fake.cfg().hang_for).await;
    }
    answer.into_response()
}

async fn stk_query(State(fake): State<MpesaFake>, headers: HeaderMap, body: Bytes) -> Response {
    let o = match fake.authorized_body(&headers, &body) {
        Ok(o) => o,
        Err(refusal) => return *refusal,
    };
    let Some(shortcode) = text(&o, "BusinessShortCode").filter(|s| is_shortcode(s)) else {
        return fake.bad_request("BusinessShortCode");
    };
    let Some(timestamp) = text(&o, "Timestamp").filter(|t| is_timestamp(t)) else {
        return fake.bad_request("Timestamp");
    };
    let Some(checkout_request_id) = text(&o, "CheckoutRequestID") else {
        return fake.bad_request("CheckoutRequestID");
    };
    if let Err(refusal) =
        fake.check_password(&shortcode, &timestamp, text(&o, "Password").as_deref())
    {
        return *refusal;
    }
    let found = {
        let books = fake.books();
        books.stk.get(&checkout_request_id).map(|s| {
            (
                s.merchant_request_id.clone(),
                Instant::now() < s.decided_at,
                s.result_code,
                s.result_desc,
                books.pending_style,
            )
        })
    };
    let Some((merchant_request_id, pending, result_code, result_desc, style)) = found else {
        return fake.bad_request("CheckoutRequestID");
    };
    let (result_code, result_desc) = match (pending, style) {
        (true, PendingQueryStyle::Http500) => {
            return fake.mpesa_refusal("The transaction is being processed");
        }
        (true, PendingQueryStyle::ResultCode4999) => (
            "4999".to_owned(),
            "The transaction is still under processing",
        ),
        (false, _) => (result_code.to_string(), result_desc),
    };
    Json(json!({
        "ResponseCode": "0",
        "ResponseDescription": "The service request has been accepted successsfully",
        "MerchantRequestID": merchant_request_id,
        "CheckoutRequestID": checkout_request_id,
        "ResultCode": result_code,
        "ResultDesc": result_desc,
    }))
    .into_response()
}

async fn c2b_register(State(fake): State<MpesaFake>, headers: HeaderMap, body: Bytes) -> Response {
    let o = match fake.authorized_body(&headers, &body) {
        Ok(o) => o,
        Err(refusal) => return *refusal,
    };
    let Some(shortcode) = text(&o, "ShortCode").filter(|s| is_shortcode(s)) else {
        return fake.bad_request("ShortCode");
    };
    let Some(response_type) =
        text(&o, "ResponseType").filter(|t| t == "Completed" || t == "Cancelled")
    else {
        return fake.bad_request("ResponseType");
    };
    let Some(confirmation_url) = text(&o, "ConfirmationURL").filter(|u| is_registrable_url(u))
    else {
        return fake.bad_request("ConfirmationURL");
    };
    let Some(validation_url) = text(&o, "ValidationURL").filter(|u| is_registrable_url(u)) else {
        return fake.bad_request("ValidationURL");
    };
    fake.books().c2b_urls.insert(
        shortcode,
        C2bUrls {
            response_type,
            confirmation_url,
            validation_url,
        },
    );
    Json(json!({
        "OriginatorCoversationID": fake.request_id(),
        "ResponseCode": "0",
        "ResponseDescription": "success",
    }))
    .into_response()
}

async fn c2b_simulate(State(fake): State<MpesaFake>, headers: HeaderMap, body: Bytes) -> Response {
    let o = match fake.authorized_body(&headers, &body) {
        Ok(o) => o,
        Err(refusal) => return *refusal,
    };
    let Some(shortcode) = text(&o, "ShortCode").filter(|s| is_shortcode(s)) else {
        return fake.bad_request("ShortCode");
    };
    let Some(command) = text(&o, "CommandID")
        .filter(|c| c == "CustomerPayBillOnline" || c == "CustomerBuyGoodsOnline")
    else {
        return fake.bad_request("CommandID");
    };
    let Some(amount) = whole_amount(o.get("Amount")).filter(|a| *a <= MAX_AMOUNT) else {
        return fake.bad_request("Amount");
    };
    let Some(msisdn) = text(&o, "Msisdn").filter(|m| is_msisdn(m)) else {
        return fake.bad_request("Msisdn");
    };
    let bill_ref = text(&o, "BillRefNumber").unwrap_or_default();
    let payer = fake.clone();
    tokio::spawn(async move {
        tokio::time::sleep(payer.cfg().callback_delay).await;
        payer
            .c2b_payment(&shortcode, &command, &msisdn, amount, &bill_ref)
            .await;
    });
    Json(json!({
        "OriginatorCoversationID": fake.request_id(),
        "ResponseCode": "0",
        "ResponseDescription": "Accept the service request successfully.",
    }))
    .into_response()
}

async fn b2c_v1(state: State<MpesaFake>, headers: HeaderMap, body: Bytes) -> Response {
    b2c(state, headers, body, false).await
}

async fn b2c_v3(state: State<MpesaFake>, headers: HeaderMap, body: Bytes) -> Response {
    b2c(state, headers, body, true).await
}

async fn b2c(State(fake): State<MpesaFake>, headers: HeaderMap, body: Bytes, v3: bool) -> Response {
    let o = match fake.authorized_body(&headers, &body) {
        Ok(o) => o,
        Err(refusal) => return *refusal,
    };
    let originator = text(&o, "OriginatorConversationID");
    if v3 && originator.is_none() {
        return fake.bad_request("OriginatorConversationID");
    }
    let Some(initiator) = text(&o, "InitiatorName") else {
        return fake.bad_request("InitiatorName");
    };
    let Some(credential) = text(&o, "SecurityCredential") else {
        return fake.bad_request("SecurityCredential");
    };
    let Some(command) = text(&o, "CommandID").filter(|c| {
        matches!(
            c.as_str(),
            "BusinessPayment" | "SalaryPayment" | "PromotionPayment"
        )
    }) else {
        return fake.bad_request("CommandID");
    };
    let Some(amount) = whole_amount(o.get("Amount")) else {
        return fake.bad_request("Amount");
    };
    let Some(party_a) = text(&o, "PartyA").filter(|p| is_shortcode(p)) else {
        return fake.bad_request("PartyA");
    };
    let Some(party_b) = text(&o, "PartyB").filter(|p| is_msisdn(p)) else {
        return fake.bad_request("PartyB");
    };
    if !text(&o, "Remarks").is_some_and(|r| (2..=100).contains(&r.chars().count())) {
        return fake.bad_request("Remarks");
    }
    let Some(queue_url) = text(&o, "QueueTimeOutURL").filter(|u| is_url(u)) else {
        return fake.bad_request("QueueTimeOutURL");
    };
    let Some(result_url) = text(&o, "ResultURL").filter(|u| is_url(u)) else {
        return fake.bad_request("ResultURL");
    };
    let originator = originator.unwrap_or_else(|| fake.request_id());
    let trigger = Trigger::of(&party_b);
    let hang = {
        let mut books = fake.books();
        if !books.b2c_originator_ids.insert(originator.clone()) {
            drop(books);
            return fake.error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "500.002.1001",
                "Duplicate OriginatorConversationID.",
            );
        }
        trigger == Trigger::FirstRequestHangs
            && books.hung.insert(format!("b2c:{party_b}:{amount}"))
    };
    let conversation_id = fake.conversation_id();
    let request = B2cRequest {
        originator_conversation_id: originator.clone(),
        conversation_id: conversation_id.clone(),
        initiator,
        credential,
        command,
        amount,
        party_a,
        party_b,
        queue_url,
        result_url,
    };
    fake.b2c_result(request, trigger);
    let answer = Json(json!({
        "ConversationID": conversation_id,
        "OriginatorConversationID": originator,
        "ResponseCode": "0",
        "ResponseDescription": "Accept the service request successfully.",
    }));
    if hang {
        tokio::time::sleep(fake.cfg().hang_for).await;
    }
    answer.into_response()
}

async fn transaction_status(
    State(fake): State<MpesaFake>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let o = match fake.authorized_body(&headers, &body) {
        Ok(o) => o,
        Err(refusal) => return *refusal,
    };
    let Some(initiator) = text(&o, "Initiator") else {
        return fake.bad_request("Initiator");
    };
    let Some(credential) = text(&o, "SecurityCredential") else {
        return fake.bad_request("SecurityCredential");
    };
    if text(&o, "CommandID").as_deref() != Some("TransactionStatusQuery") {
        return fake.bad_request("CommandID");
    }
    let receipt = text(&o, "TransactionID");
    let original =
        text(&o, "OriginalConversationID").or_else(|| text(&o, "OriginatorConversationID"));
    if receipt.is_none() && original.is_none() {
        return fake.bad_request("TransactionID");
    }
    if !text(&o, "PartyA").is_some_and(|p| is_shortcode(&p) || is_msisdn(&p)) {
        return fake.bad_request("PartyA");
    }
    if !text(&o, "IdentifierType").is_some_and(|t| matches!(t.as_str(), "1" | "2" | "4" | "11")) {
        return fake.bad_request("IdentifierType");
    }
    let Some(result_url) = text(&o, "ResultURL").filter(|u| is_url(u)) else {
        return fake.bad_request("ResultURL");
    };
    if !text(&o, "QueueTimeOutURL").is_some_and(|u| is_url(&u)) {
        return fake.bad_request("QueueTimeOutURL");
    }
    let request = StatusRequest {
        originator_conversation_id: fake.request_id(),
        conversation_id: fake.conversation_id(),
        initiator,
        credential,
        receipt,
        original,
        result_url,
        occasion: text(&o, "Occasion"),
    };
    let answer = json!({
        "OriginatorConversationID": request.originator_conversation_id,
        "ConversationID": request.conversation_id,
        "ResponseCode": "0",
        "ResponseDescription": "Accept the service request successfully.",
    });
    let worker = fake.clone();
    tokio::spawn(async move {
        tokio::time::sleep(worker.cfg().callback_delay).await;
        let result = worker.status_result(&request);
        worker
            .post_callback(
                CallbackKind::TransactionStatusResult,
                &request.result_url,
                &result,
                CALLBACK_TIMEOUT,
            )
            .await;
    });
    Json(answer).into_response()
}

async fn fake_expire_tokens(State(fake): State<MpesaFake>) -> Json<Value> {
    fake.expire_tokens();
    Json(json!({"expired": true}))
}

async fn fake_requests(State(fake): State<MpesaFake>) -> Json<Vec<ReceivedRequest>> {
    Json(fake.requests())
}

async fn fake_callbacks(State(fake): State<MpesaFake>) -> Json<Vec<SentCallback>> {
    Json(fake.callbacks_sent())
}

async fn fake_tokens(State(fake): State<MpesaFake>) -> Json<Value> {
    Json(json!({"tokens_issued": fake.tokens_issued()}))
}

async fn fake_reset(State(fake): State<MpesaFake>) -> Json<Value> {
    fake.clear_logs();
    Json(json!({"reset": true}))
}

async fn fake_customer_pays(State(fake): State<MpesaFake>, body: Bytes) -> Response {
    let o = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(o)) => o,
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                "expected {\"msisdn\",\"amount\",\"bill_ref_number\"}",
            )
                .into_response();
        }
    };
    let (Some(msisdn), Some(amount)) = (text(&o, "msisdn"), whole_amount(o.get("amount"))) else {
        return (
            StatusCode::BAD_REQUEST,
            "msisdn and a whole amount are required",
        )
            .into_response();
    };
    let bill_ref = text(&o, "bill_ref_number").unwrap_or_default();
    Json(fake.customer_pays(&msisdn, amount, &bill_ref).await).into_response()
}

async fn fake_pending_style(State(fake): State<MpesaFake>, body: Bytes) -> Response {
    let style = serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
        v.get("style")
            .map(|s| s.to_string().trim_matches('"').to_owned())
    });
    let style = match style.as_deref() {
        Some("500") => PendingQueryStyle::Http500,
        Some("4999") => PendingQueryStyle::ResultCode4999,
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                "expected {\"style\":\"500\"} or {\"style\":\"4999\"}",
            )
                .into_response();
        }
    };
    fake.set_pending_query_style(style);
    let style = if style == PendingQueryStyle::Http500 {
        "500"
    } else {
        "4999"
    };
    Json(json!({ "style": style })).into_response()
}

fn verdict(sent: &SentCallback) -> Verdict {
    let Some(answer) = sent.response.as_ref().filter(|_| sent.delivered()) else {
        return Verdict::NoAnswer;
    };
    let code = match answer.get("ResultCode") {
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Verdict::NoAnswer,
    };
    if code == "0" {
        Verdict::Accept(
            answer
                .get("ThirdPartyTransID")
                .cloned()
                .unwrap_or_else(|| json!("")),
        )
    } else {
        let desc = answer
            .get("ResultDesc")
            .and_then(Value::as_str)
            .unwrap_or("Rejected")
            .to_owned();
        Verdict::Reject(code, desc)
    }
}

fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (given, rest) = value.trim().split_once(' ')?;
    let rest = rest.trim();
    (given.eq_ignore_ascii_case(scheme) && !rest.is_empty()).then_some(rest)
}

/// A field as text: a non-empty string (trimmed) or a number.
fn text(o: &Obj, key: &str) -> Option<String> {
    match o.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A whole number of shillings, at least 1, as a JSON number or string.
fn whole_amount(value: Option<&Value>) -> Option<u64> {
    let amount = match value? {
        Value::Number(n) => match n.as_u64() {
            Some(whole) => whole,
            None => whole_f64(n.as_f64()?)?,
        },
        Value::String(s) => {
            let s = s.trim();
            match s.parse::<u64>() {
                Ok(whole) => whole,
                Err(_) => whole_f64(s.parse::<f64>().ok()?)?,
            }
        }
        _ => return None,
    };
    (amount >= 1).then_some(amount)
}

fn whole_f64(f: f64) -> Option<u64> {
    (f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f < 1e15).then_some(f as u64)
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_msisdn(s: &str) -> bool {
    s.len() == 12 && is_digits(s) && (s.starts_with("2547") || s.starts_with("2541"))
}

fn is_shortcode(s: &str) -> bool {
    (5..=7).contains(&s.len()) && is_digits(s)
}

fn is_url(s: &str) -> bool {
    reqwest::Url::parse(s)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
}

fn is_registrable_url(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    is_url(s) && !FORBIDDEN_URL_WORDS.iter().any(|word| lower.contains(word))
}

fn is_timestamp(s: &str) -> bool {
    s.len() == 14
        && is_digits(s)
        && PrimitiveDateTime::parse(
            s,
            format_description!("[year][month][day][hour][minute][second]"),
        )
        .is_ok()
}

fn mask_msisdn(msisdn: &str) -> String {
    let digits: String = msisdn.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 9 {
        return "*".repeat(digits.len());
    }
    format!("{}****{}", &digits[..5], &digits[digits.len() - 3..])
}

fn cents(amount: u64) -> String {
    format!("{}.{:02}", amount / 100, amount % 100)
}

fn eat_now() -> OffsetDateTime {
    OffsetDateTime::now_utc().to_offset(UtcOffset::from_hms(3, 0, 0).expect("UTC+3 is an offset"))
}

/// `YYYYMMDDHHmmss`.
fn stamp(t: OffsetDateTime) -> String {
    t.format(format_description!(
        "[year][month][day][hour][minute][second]"
    ))
    .unwrap_or_default()
}

fn date8(t: OffsetDateTime) -> String {
    t.format(format_description!("[year][month][day]"))
        .unwrap_or_default()
}

/// `DDMMYYYYHHmmssSSS`, as in `ws_CO_…`.
fn checkout_stamp(t: OffsetDateTime) -> String {
    t.format(format_description!(
        "[day][month][year][hour][minute][second][subsecond digits:3]"
    ))
    .unwrap_or_default()
}

/// `DD.MM.YYYY HH:mm:ss`, as in B2C's `TransactionCompletedDateTime`.
fn completed_time(t: OffsetDateTime) -> String {
    t.format(format_description!(
        "[day].[month].[year] [hour]:[minute]:[second]"
    ))
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Uri;
    use tokio::sync::mpsc;

    const WAIT: Duration = Duration::from_secs(5);

    fn quick() -> MpesaFakeConfig {
        MpesaFakeConfig {
            callback_delay: Duration::from_millis(60),
            hang_for: Duration::from_millis(600),
            ..MpesaFakeConfig::default()
        }
    }

    /// A local server standing for the merchant: records every callback;
    /// a path ending in `/validate-accept` accepts a C2B validation (with a
    /// ThirdPartyTransID), `/validate-reject` rejects it.
    struct Hooks {
        base: String,
        rx: mpsc::UnboundedReceiver<(String, Value)>,
    }

    impl Hooks {
        async fn start() -> Self {
            let (tx, rx) = mpsc::unbounded_channel();
            let app = Router::new().route(
                "/{*path}",
                post(move |uri: Uri, Json(body): Json<Value>| {
                    let tx = tx.clone();
                    async move {
                        let path = uri.path().to_owned();
                        let answer = if path.ends_with("/validate-reject") {
                            json!({"ResultCode": "C2B00012", "ResultDesc": "Rejected"})
                        } else if path.ends_with("/validate-accept") {
                            json!({"ResultCode": "0", "ResultDesc": "Accepted", "ThirdPartyTransID": "tp-42"})
                        } else {
                            json!({"ResultCode": 0, "ResultDesc": "Success"})
                        };
                        let _ = tx.send((path, body));
                        Json(answer)
                    }
                }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            Self { base, rx }
        }

        fn url(&self, path: &str) -> String {
            format!("{}{path}", self.base)
        }

        async fn next(&mut self) -> (String, Value) {
            tokio::time::timeout(WAIT, self.rx.recv())
                .await
                .expect("a callback in time")
                .expect("the hooks server runs")
        }

        async fn nothing_for(&mut self, wait: Duration) {
            if let Ok(Some((path, body))) = tokio::time::timeout(wait, self.rx.recv()).await {
                panic!("no callback expected, got {path}: {body}");
            }
        }
    }

    struct Client {
        http: reqwest::Client,
        base: String,
        cfg: MpesaFakeConfig,
    }

    async fn start(cfg: MpesaFakeConfig) -> (MpesaFake, Client) {
        let fake = MpesaFake::new(cfg.clone());
        let base = fake.spawn().await.unwrap();
        let client = Client {
            http: reqwest::Client::new(),
            base,
            cfg,
        };
        (fake, client)
    }

    impl Client {
        async fn oauth(&self, key: &str, secret: &str) -> (u16, Value) {
            let answer = self
                .http
                .get(format!(
                    "{}/oauth/v1/generate?grant_type=client_credentials",
                    self.base
                ))
                .basic_auth(key, Some(secret))
                .send()
                .await
                .unwrap();
            (answer.status().as_u16(), answer.json().await.unwrap())
        }

        async fn token(&self) -> String {
            let (status, body) = self
                .oauth(&self.cfg.consumer_key, &self.cfg.consumer_secret)
                .await;
            assert_eq!(status, 200, "{body}");
            body["access_token"].as_str().unwrap().to_owned()
        }

        async fn post(&self, token: &str, path: &str, body: &Value) -> (u16, Value) {
            let answer = self
                .http
                .post(format!("{}{path}", self.base))
                .bearer_auth(token)
                .json(body)
                .send()
                .await
                .unwrap();
            (answer.status().as_u16(), answer.json().await.unwrap())
        }

        fn password(&self, timestamp: &str) -> String {
            BASE64.encode(format!(
                "{}{}{timestamp}",
                self.cfg.shortcode, self.cfg.passkey
            ))
        }

        fn stk(&self, phone: &str, amount: Value, callback: &str) -> Value {
            let timestamp = stamp(eat_now());
            json!({
                "BusinessShortCode": self.cfg.shortcode,
                "Password": self.password(&timestamp),
                "Timestamp": timestamp,
                "TransactionType": "CustomerPayBillOnline",
                "Amount": amount,
                "PartyA": phone,
                "PartyB": self.cfg.shortcode,
                "PhoneNumber": phone,
                "CallBackURL": callback,
                "AccountReference": "INV-001",
                "TransactionDesc": "Order 1",
            })
        }

        fn stk_query(&self, checkout: &str) -> Value {
            let timestamp = stamp(eat_now());
            json!({
                "BusinessShortCode": self.cfg.shortcode,
                "Password": self.password(&timestamp),
                "Timestamp": timestamp,
                "CheckoutRequestID": checkout,
            })
        }

        fn b2c(&self, phone: &str, amount: u64, hooks: &Hooks) -> Value {
            json!({
                "OriginatorConversationID": format!("malipo-{}", uuid::Uuid::now_v7()),
                "InitiatorName": self.cfg.initiator_name,
                "SecurityCredential": self.cfg.security_credential,
                "CommandID": "BusinessPayment",
                "Amount": amount,
                "PartyA": self.cfg.shortcode,
                "PartyB": phone,
                "Remarks": "Payout",
                "QueueTimeOutURL": hooks.url("/b2c/timeout"),
                "ResultURL": hooks.url("/b2c/result"),
                "Occassion": "",
            })
        }
    }

    /// The callbacks sent, once there are `n` (each is recorded when its
    /// answer arrives, a moment after the hooks server saw it).
    async fn callbacks_after(fake: &MpesaFake, n: usize) -> Vec<SentCallback> {
        for _ in 0..100 {
            let sent = fake.callbacks_sent();
            if sent.len() >= n {
                return sent;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        fake.callbacks_sent()
    }

    fn item<'a>(callback: &'a Value, name: &str) -> Option<&'a Value> {
        callback["Body"]["stkCallback"]["CallbackMetadata"]["Item"]
            .as_array()?
            .iter()
            .find(|i| i["Name"] == name)
    }

    fn parameter<'a>(result: &'a Value, key: &str) -> Option<&'a Value> {
        result["Result"]["ResultParameters"]["ResultParameter"]
            .as_array()?
            .iter()
            .find(|p| p["Key"] == key)
            .and_then(|p| p.get("Value"))
    }

    #[tokio::test]
    async fn a_token_for_the_right_credentials_and_daraja_errors_for_wrong_ones() {
        let (fake, client) = start(quick()).await;
        let (status, body) = client.oauth(TEST_CONSUMER_KEY, TEST_CONSUMER_SECRET).await;
        assert_eq!(status, 200);
        assert_eq!(body["expires_in"], json!("3599"), "expires_in is a string");
        assert!(body["access_token"].as_str().is_some_and(|t| t.len() == 28));

        let (status, body) = client.oauth(TEST_CONSUMER_KEY, "wrong").await;
        assert_eq!(status, 400);
        assert_eq!(body["errorCode"], "400.008.01");
        assert_eq!(body["errorMessage"], "Invalid Authentication passed");
        assert!(body["requestId"].is_string());

        let answer = client
            .http
            .get(format!(
                "{}/oauth/v1/generate?grant_type=password",
                client.base
            ))
            .basic_auth(TEST_CONSUMER_KEY, Some(TEST_CONSUMER_SECRET))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 400);
        assert_eq!(
            answer.json::<Value>().await.unwrap()["errorCode"],
            "400.008.02"
        );
        assert_eq!(fake.tokens_issued(), 1);

        // No header at all, and an unknown token.
        let answer = client
            .http
            .post(format!("{}/mpesa/stkpush/v1/processrequest", client.base))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 404);
        assert_eq!(
            answer.json::<Value>().await.unwrap()["errorCode"],
            "404.001.04"
        );
        let (status, body) = client
            .post("nonsense", "/mpesa/stkpush/v1/processrequest", &json!({}))
            .await;
        assert_eq!(
            (status, body["errorCode"].as_str()),
            (404, Some("404.001.03"))
        );
    }

    #[tokio::test]
    async fn an_stk_push_succeeds_with_numbers_in_its_callback() {
        let (fake, client) = start(quick()).await;
        let mut hooks = Hooks::start().await;
        let token = client.token().await;
        let push = client.stk("254712345678", json!("1"), &hooks.url("/hooks/stk"));
        let (status, answer) = client
            .post(&token, "/mpesa/stkpush/v1/processrequest", &push)
            .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["ResponseCode"], "0");
        assert_eq!(
            answer["ResponseDescription"],
            "Success. Request accepted for processing"
        );
        assert_eq!(
            answer["CustomerMessage"],
            "Success. Request accepted for processing"
        );
        let checkout = answer["CheckoutRequestID"].as_str().unwrap();
        assert!(
            checkout.starts_with("ws_CO_") && checkout.ends_with("712345678"),
            "{checkout}"
        );

        let (path, callback) = hooks.next().await;
        assert_eq!(path, "/hooks/stk");
        let stk = &callback["Body"]["stkCallback"];
        assert_eq!(stk["ResultCode"], json!(0));
        assert!(stk["ResultCode"].is_number());
        assert_eq!(
            stk["ResultDesc"],
            "The service request is processed successfully."
        );
        assert_eq!(stk["CheckoutRequestID"], answer["CheckoutRequestID"]);
        assert_eq!(stk["MerchantRequestID"], answer["MerchantRequestID"]);
        let amount = item(&callback, "Amount").unwrap();
        assert!(amount["Value"].is_number() && amount["Value"].as_f64() == Some(1.0));
        let phone = item(&callback, "PhoneNumber").unwrap();
        assert_eq!(phone["Value"], json!(254712345678_u64));
        let date = item(&callback, "TransactionDate").unwrap()["Value"]
            .as_u64()
            .unwrap();
        assert_eq!(date.to_string().len(), 14);
        let receipt = item(&callback, "MpesaReceiptNumber").unwrap()["Value"]
            .as_str()
            .unwrap();
        assert_eq!(receipt.len(), 10);
        assert!(item(&callback, "Balance").unwrap().get("Value").is_none());

        let recorded = fake.requests();
        let push_request = recorded
            .iter()
            .find(|r| r.path == "/mpesa/stkpush/v1/processrequest")
            .unwrap();
        assert_eq!(push_request.body["Password"], push["Password"]);
        assert_eq!(push_request.body["Amount"], json!("1"));
        assert!(
            push_request
                .header("authorization")
                .unwrap()
                .starts_with("Bearer ")
        );
        let sent = callbacks_after(&fake, 1).await;
        assert_eq!(sent.len(), 1);
        assert!(sent[0].delivered() && sent[0].kind == CallbackKind::Stk);
    }

    #[tokio::test]
    async fn a_declined_push_calls_back_without_metadata() {
        let (_fake, client) = start(quick()).await;
        let mut hooks = Hooks::start().await;
        let token = client.token().await;
        let push = client.stk("254712340001", json!(10), &hooks.url("/hooks/stk"));
        let (status, _) = client
            .post(&token, "/mpesa/stkpush/v1/processrequest", &push)
            .await;
        assert_eq!(status, 200);
        let (_, callback) = hooks.next().await;
        let stk = &callback["Body"]["stkCallback"];
        assert_eq!(stk["ResultCode"], json!(1032));
        assert_eq!(stk["ResultDesc"], "Request cancelled by user");
        assert!(stk.get("CallbackMetadata").is_none());

        let push = client.stk("254712340002", json!(10), &hooks.url("/hooks/stk"));
        client
            .post(&token, "/mpesa/stkpush/v1/processrequest", &push)
            .await;
        let (_, callback) = hooks.next().await;
        assert_eq!(callback["Body"]["stkCallback"]["ResultCode"], json!(1));
    }

    #[tokio::test]
    async fn a_query_while_the_prompt_is_open_is_a_500_then_the_result_with_a_string_code() {
        let (fake, client) = start(MpesaFakeConfig {
            callback_delay: Duration::from_millis(800),
            ..quick()
        })
        .await;
        let mut hooks = Hooks::start().await;
        let token = client.token().await;
        let push = client.stk("254712345670", json!(5), &hooks.url("/hooks/stk"));
        let (_, answer) = client
            .post(&token, "/mpesa/stkpush/v1/processrequest", &push)
            .await;
        let checkout = answer["CheckoutRequestID"].as_str().unwrap().to_owned();

        let (status, pending) = client
            .post(
                &token,
                "/mpesa/stkpushquery/v1/query",
                &client.stk_query(&checkout),
            )
            .await;
        assert_eq!(status, 500, "{pending}");
        assert_eq!(pending["errorCode"], "500.001.1001");
        assert_eq!(
            pending["errorMessage"],
            "The transaction is being processed"
        );

        fake.set_pending_query_style(PendingQueryStyle::ResultCode4999);
        let (status, pending) = client
            .post(
                &token,
                "/mpesa/stkpushquery/v1/query",
                &client.stk_query(&checkout),
            )
            .await;
        assert_eq!((status, &pending["ResultCode"]), (200, &json!("4999")));

        // The same phone again while its prompt is open: M-Pesa can't lock it.
        let again = client.stk("254712345670", json!(5), &hooks.url("/hooks/stk"));
        let (status, refused) = client
            .post(&token, "/mpesa/stkpush/v1/processrequest", &again)
            .await;
        assert_eq!(status, 500);
        assert!(
            refused["errorMessage"]
                .as_str()
                .unwrap()
                .starts_with("Unable to lock subscriber")
        );

        hooks.next().await;
        let (status, done) = client
            .post(
                &token,
                "/mpesa/stkpushquery/v1/query",
                &client.stk_query(&checkout),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(done["ResponseCode"], "0");
        assert_eq!(
            done["ResponseDescription"],
            "The service request has been accepted successsfully"
        );
        assert_eq!(done["ResultCode"], json!("0"), "a string in the query");
        assert_eq!(done["CheckoutRequestID"], json!(checkout));

        let (status, unknown) = client
            .post(
                &token,
                "/mpesa/stkpushquery/v1/query",
                &client.stk_query("ws_CO_nope"),
            )
            .await;
        assert_eq!(
            (status, unknown["errorCode"].as_str()),
            (400, Some("400.002.02"))
        );
    }

    #[tokio::test]
    async fn an_expired_token_is_refused_and_a_fresh_one_works() {
        let (fake, client) = start(quick()).await;
        let hooks = Hooks::start().await;
        let token = client.token().await;
        fake.expire_tokens();
        let push = client.stk("254712345678", json!(1), &hooks.url("/hooks/stk"));
        let (status, body) = client
            .post(&token, "/mpesa/stkpush/v1/processrequest", &push)
            .await;
        assert_eq!(status, 404);
        assert_eq!(body["errorCode"], "404.001.03");
        assert_eq!(body["errorMessage"], "Invalid Access Token");

        let fresh = client.token().await;
        let (status, _) = client
            .post(&fresh, "/mpesa/stkpush/v1/processrequest", &push)
            .await;
        assert_eq!(status, 200);
        assert_eq!(fake.tokens_issued(), 2);

        // And tokens die of age.
        let (_fake, short_lived) = start(MpesaFakeConfig {
            token_lifetime: Duration::from_millis(50),
            ..quick()
        })
        .await;
        let token = short_lived.token().await;
        tokio::time::sleep(Duration::from_millis(80)).await;
        let (status, _) = short_lived
            .post(&token, "/mpesa/stkpush/v1/processrequest", &push)
            .await;
        assert_eq!(status, 404);
    }

    #[tokio::test]
    async fn a_callback_twice_a_lost_one_and_a_slow_one() {
        let (fake, client) = start(quick()).await;
        let mut hooks = Hooks::start().await;
        let token = client.token().await;

        let push = client.stk("254712340005", json!(3), &hooks.url("/hooks/stk"));
        client
            .post(&token, "/mpesa/stkpush/v1/processrequest", &push)
            .await;
        let (_, first) = hooks.next().await;
        let (_, second) = hooks.next().await;
        assert_eq!(first, second);

        let push = client.stk("254712340004", json!(3), &hooks.url("/hooks/stk"));
        let (_, answer) = client
            .post(&token, "/mpesa/stkpush/v1/processrequest", &push)
            .await;
        hooks.nothing_for(Duration::from_millis(400)).await;
        let checkout = answer["CheckoutRequestID"].as_str().unwrap();
        let (status, done) = client
            .post(
                &token,
                "/mpesa/stkpushquery/v1/query",
                &client.stk_query(checkout),
            )
            .await;
        assert_eq!(
            (status, &done["ResultCode"]),
            (200, &json!("0")),
            "only the query tells"
        );
        assert_eq!(callbacks_after(&fake, 2).await.len(), 2);

        let push = client.stk("254712340006", json!(3), &hooks.url("/hooks/stk"));
        let started = Instant::now();
        let (_, answer) = client
            .post(&token, "/mpesa/stkpush/v1/processrequest", &push)
            .await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        let checkout = answer["CheckoutRequestID"].as_str().unwrap();
        let (_, done) = client
            .post(
                &token,
                "/mpesa/stkpushquery/v1/query",
                &client.stk_query(checkout),
            )
            .await;
        assert_eq!(
            done["ResultCode"],
            json!("0"),
            "decided before the slow callback"
        );
        hooks.next().await;
        assert!(started.elapsed() >= Duration::from_millis(600));
    }

    #[tokio::test]
    async fn a_bad_password_a_bad_phone_and_a_decimal_amount_are_refused() {
        let (_fake, client) = start(quick()).await;
        let hooks = Hooks::start().await;
        let token = client.token().await;
        let mut push = client.stk("254712345678", json!(1), &hooks.url("/hooks/stk"));
        push["Password"] = json!(BASE64.encode("174379wrongpasskey20240101120000"));
        let (status, body) = client
            .post(&token, "/mpesa/stkpush/v1/processrequest", &push)
            .await;
        assert_eq!(status, 500);
        assert_eq!(body["errorCode"], "500.001.1001");
        assert_eq!(body["errorMessage"], "Wrong credentials");

        let push = client.stk("0712345678", json!(1), &hooks.url("/hooks/stk"));
        let (status, body) = client
            .post(&token, "/mpesa/stkpush/v1/processrequest", &push)
            .await;
        assert_eq!(
            (status, body["errorCode"].as_str()),
            (400, Some("400.002.02"))
        );
        assert_eq!(body["errorMessage"], "Bad Request - Invalid PartyA");

        let push = client.stk("254712345678", json!(1.5), &hooks.url("/hooks/stk"));
        let (status, body) = client
            .post(&token, "/mpesa/stkpush/v1/processrequest", &push)
            .await;
        assert_eq!(
            (status, body["errorMessage"].as_str()),
            (400, Some("Bad Request - Invalid Amount"))
        );

        let push = client.stk("254712340008", json!(1), &hooks.url("/hooks/stk"));
        let (status, body) = client
            .post(&token, "/mpesa/stkpush/v1/processrequest", &push)
            .await;
        assert_eq!(
            (status, body["errorMessage"].as_str()),
            (400, Some("Bad Request - Invalid PhoneNumber"))
        );

        let mut push = client.stk("254712345678", json!(1), &hooks.url("/hooks/stk"));
        push.as_object_mut().unwrap().remove("CallBackURL");
        let (status, body) = client
            .post(&token, "/mpesa/stkpush/v1/processrequest", &push)
            .await;
        assert_eq!(
            (status, body["errorMessage"].as_str()),
            (400, Some("Bad Request - Invalid CallBackURL"))
        );

        let mut push = client.stk("254712345678", json!(1), &hooks.url("/hooks/stk"));
        push["TransactionDesc"] = json!("");
        let (_, body) = client
            .post(&token, "/mpesa/stkpush/v1/processrequest", &push)
            .await;
        assert_eq!(body["errorMessage"], "Bad Request - Invalid Remarks");

        let answer = client
            .http
            .post(format!("{}/mpesa/stkpush/v1/processrequest", client.base))
            .bearer_auth(&token)
            .body("not json")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 400);
        assert_eq!(
            answer.json::<Value>().await.unwrap()["errorCode"],
            "400.002.05"
        );
    }

    #[tokio::test]
    async fn the_first_request_hangs_and_a_retry_is_answered() {
        let (_fake, client) = start(quick()).await;
        let mut hooks = Hooks::start().await;
        let token = client.token().await;
        let push = client.stk("254712340007", json!(2), &hooks.url("/hooks/stk"));
        let timed_out = client
            .http
            .post(format!("{}/mpesa/stkpush/v1/processrequest", client.base))
            .bearer_auth(&token)
            .timeout(Duration::from_millis(200))
            .json(&push)
            .send()
            .await;
        assert!(timed_out.is_err_and(|e| e.is_timeout()));
        let (_, first) = hooks.next().await;
        assert_eq!(
            first["Body"]["stkCallback"]["ResultCode"],
            json!(0),
            "processed all the same"
        );

        let retry = client.stk("254712340007", json!(2), &hooks.url("/hooks/stk"));
        let started = Instant::now();
        let (status, answer) = client
            .post(&token, "/mpesa/stkpush/v1/processrequest", &retry)
            .await;
        assert_eq!(status, 200);
        assert!(started.elapsed() < Duration::from_millis(500));
        let (_, second) = hooks.next().await;
        assert_eq!(
            second["Body"]["stkCallback"]["CheckoutRequestID"],
            answer["CheckoutRequestID"]
        );
        assert_ne!(
            first["Body"]["stkCallback"]["CheckoutRequestID"],
            answer["CheckoutRequestID"]
        );
    }

    #[tokio::test]
    async fn c2b_validation_rejects_or_accepts_then_confirms() {
        let (fake, client) = start(quick()).await;
        let mut hooks = Hooks::start().await;
        let token = client.token().await;

        let register = json!({
            "ShortCode": client.cfg.shortcode,
            "ResponseType": "Completed",
            "ConfirmationURL": hooks.url("/c2b/confirm"),
            "ValidationURL": hooks.url("/c2b/validate-reject"),
        });
        let (status, answer) = client
            .post(&token, "/mpesa/c2b/v1/registerurl", &register)
            .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["ResponseCode"], "0");
        assert!(
            answer["OriginatorCoversationID"].is_string(),
            "Daraja's spelling"
        );

        let simulate = json!({
            "ShortCode": client.cfg.shortcode,
            "CommandID": "CustomerPayBillOnline",
            "Amount": 10,
            "Msisdn": 254708374149_u64,
            "BillRefNumber": "ACC-1",
        });
        let (status, answer) = client
            .post(&token, "/mpesa/c2b/v1/simulate", &simulate)
            .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(
            answer["ResponseDescription"],
            "Accept the service request successfully."
        );
        let (path, validation) = hooks.next().await;
        assert_eq!(path, "/c2b/validate-reject");
        assert_eq!(validation["TransactionType"], "Pay Bill");
        assert_eq!(validation["TransAmount"], "10.00");
        assert_eq!(validation["BillRefNumber"], "ACC-1");
        assert_eq!(validation["MSISDN"], "25470****149");
        assert_eq!(validation["OrgAccountBalance"], "");
        hooks.nothing_for(Duration::from_millis(300)).await;

        let outcome = fake.customer_pays("254708374149", 10, "ACC-2").await;
        assert!(
            matches!(&outcome, C2bOutcome::Rejected { result_code, .. } if result_code == "C2B00012"),
            "{outcome:?}"
        );
        hooks.next().await;

        let register = json!({
            "ShortCode": client.cfg.shortcode,
            "ResponseType": "Completed",
            "ConfirmationURL": hooks.url("/c2b/confirm"),
            "ValidationURL": hooks.url("/c2b/validate-accept"),
        });
        client
            .post(&token, "/mpesa/c2b/v2/registerurl", &register)
            .await;
        let outcome = fake.customer_pays("254708374149", 250, "ACC-3").await;
        let C2bOutcome::Completed {
            trans_id,
            validated: true,
            confirmation_delivered: true,
        } = &outcome
        else {
            panic!("{outcome:?}");
        };
        let (_, validation) = hooks.next().await;
        let (path, confirmation) = hooks.next().await;
        assert_eq!(path, "/c2b/confirm");
        assert_eq!(validation["TransID"], json!(trans_id));
        assert_eq!(confirmation["TransID"], json!(trans_id));
        assert_eq!(confirmation["TransAmount"], "250.00");
        assert_eq!(confirmation["ThirdPartyTransID"], "tp-42");
        assert!(
            confirmation["OrgAccountBalance"]
                .as_str()
                .unwrap()
                .ends_with(".00")
        );

        // An unreachable validation URL: the ResponseType decides.
        let register = json!({
            "ShortCode": client.cfg.shortcode,
            "ResponseType": "Cancelled",
            "ConfirmationURL": hooks.url("/c2b/confirm"),
            "ValidationURL": "http://127.0.0.1:9/c2b/validate",
        });
        client
            .post(&token, "/mpesa/c2b/v1/registerurl", &register)
            .await;
        let outcome = fake.customer_pays("254708374149", 10, "ACC-4").await;
        assert!(
            matches!(outcome, C2bOutcome::Cancelled { .. }),
            "{outcome:?}"
        );

        // Daraja's URL rules.
        let register = json!({
            "ShortCode": client.cfg.shortcode,
            "ResponseType": "Completed",
            "ConfirmationURL": hooks.url("/mpesa/confirm"),
            "ValidationURL": hooks.url("/c2b/validate-accept"),
        });
        let (status, body) = client
            .post(&token, "/mpesa/c2b/v1/registerurl", &register)
            .await;
        assert_eq!(
            (status, body["errorMessage"].as_str()),
            (400, Some("Bad Request - Invalid ConfirmationURL"))
        );
        let register = json!({
            "ShortCode": client.cfg.shortcode,
            "ResponseType": "completed",
            "ConfirmationURL": hooks.url("/c2b/confirm"),
            "ValidationURL": hooks.url("/c2b/validate-accept"),
        });
        let (status, _) = client
            .post(&token, "/mpesa/c2b/v1/registerurl", &register)
            .await;
        assert_eq!(status, 400);
    }

    #[tokio::test]
    async fn a_b2c_payout_succeeds_and_a_transaction_status_finds_it() {
        let (_fake, client) = start(quick()).await;
        let mut hooks = Hooks::start().await;
        let token = client.token().await;
        let payout = client.b2c("254712345678", 100, &hooks);
        let (status, answer) = client
            .post(&token, "/mpesa/b2c/v3/paymentrequest", &payout)
            .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["ResponseCode"], "0");
        assert_eq!(
            answer["ResponseDescription"],
            "Accept the service request successfully."
        );
        assert_eq!(
            answer["OriginatorConversationID"],
            payout["OriginatorConversationID"]
        );
        assert!(
            answer["ConversationID"]
                .as_str()
                .unwrap()
                .starts_with("AG_")
        );

        let (path, result) = hooks.next().await;
        assert_eq!(path, "/b2c/result");
        assert_eq!(result["Result"]["ResultCode"], json!(0));
        assert_eq!(result["Result"]["ResultType"], json!(0));
        assert_eq!(result["Result"]["ConversationID"], answer["ConversationID"]);
        assert_eq!(parameter(&result, "TransactionAmount"), Some(&json!(100)));
        assert_eq!(
            parameter(&result, "B2CRecipientIsRegisteredCustomer"),
            Some(&json!("Y"))
        );
        assert!(
            parameter(&result, "ReceiverPartyPublicName")
                .unwrap()
                .as_str()
                .unwrap()
                .starts_with("254712345678 - ")
        );
        assert!(result["Result"]["ReferenceData"]["ReferenceItem"].is_object());
        let receipt = parameter(&result, "TransactionReceipt")
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(result["Result"]["TransactionID"], json!(receipt));

        let (status, duplicate) = client
            .post(&token, "/mpesa/b2c/v3/paymentrequest", &payout)
            .await;
        assert_eq!(
            (status, duplicate["errorCode"].as_str()),
            (500, Some("500.002.1001"))
        );

        for by in [
            json!({"TransactionID": receipt}),
            json!({"OriginalConversationID": payout["OriginatorConversationID"]}),
        ] {
            let mut query = json!({
                "Initiator": client.cfg.initiator_name,
                "SecurityCredential": client.cfg.security_credential,
                "CommandID": "TransactionStatusQuery",
                "PartyA": client.cfg.shortcode,
                "IdentifierType": "4",
                "ResultURL": hooks.url("/status/result"),
                "QueueTimeOutURL": hooks.url("/status/timeout"),
                "Remarks": "Status",
                "Occasion": "check",
            });
            query
                .as_object_mut()
                .unwrap()
                .extend(by.as_object().unwrap().clone());
            let (status, ack) = client
                .post(&token, "/mpesa/transactionstatus/v1/query", &query)
                .await;
            assert_eq!((status, &ack["ResponseCode"]), (200, &json!("0")));
            let (path, status_result) = hooks.next().await;
            assert_eq!(path, "/status/result");
            assert_eq!(status_result["Result"]["ResultCode"], json!(0));
            assert_eq!(
                parameter(&status_result, "ReceiptNo"),
                Some(&json!(receipt))
            );
            assert_eq!(
                parameter(&status_result, "TransactionStatus"),
                Some(&json!("Completed"))
            );
            assert_eq!(parameter(&status_result, "Amount"), Some(&json!("100")));
        }
    }

    #[tokio::test]
    async fn b2c_failures_come_through_the_result_url_and_a_timeout_through_the_queue_url() {
        let (_fake, client) = start(quick()).await;
        let mut hooks = Hooks::start().await;
        let token = client.token().await;

        let payout = client.b2c("254712340008", 100, &hooks);
        let (status, _) = client
            .post(&token, "/mpesa/b2c/v1/paymentrequest", &payout)
            .await;
        assert_eq!(status, 200);
        let (path, result) = hooks.next().await;
        assert_eq!(path, "/b2c/result");
        assert_eq!(result["Result"]["ResultCode"], json!(2040));
        assert!(result["Result"].get("ResultParameters").is_none());

        let mut payout = client.b2c("254712345678", 100, &hooks);
        payout["SecurityCredential"] = json!("not-the-credential");
        let (status, _) = client
            .post(&token, "/mpesa/b2c/v3/paymentrequest", &payout)
            .await;
        assert_eq!(
            status, 200,
            "accepted: the initiator is checked by M-Pesa afterwards"
        );
        let (_, result) = hooks.next().await;
        assert_eq!(result["Result"]["ResultCode"], json!(2001));
        assert_eq!(
            result["Result"]["ResultDesc"],
            "The initiator information is invalid."
        );

        let payout = client.b2c("254712340003", 100, &hooks);
        client
            .post(&token, "/mpesa/b2c/v3/paymentrequest", &payout)
            .await;
        let (path, timeout) = hooks.next().await;
        assert_eq!(path, "/b2c/timeout");
        assert_eq!(
            timeout["Result"]["OriginatorConversationID"],
            payout["OriginatorConversationID"]
        );

        let payout = client.b2c("254712345678", 5, &hooks);
        client
            .post(&token, "/mpesa/b2c/v3/paymentrequest", &payout)
            .await;
        let (_, result) = hooks.next().await;
        assert_eq!(result["Result"]["ResultCode"], json!(2));

        let mut payout = client.b2c("254712345678", 100, &hooks);
        payout
            .as_object_mut()
            .unwrap()
            .remove("OriginatorConversationID");
        let (status, body) = client
            .post(&token, "/mpesa/b2c/v3/paymentrequest", &payout)
            .await;
        assert_eq!(
            (status, body["errorMessage"].as_str()),
            (400, Some("Bad Request - Invalid OriginatorConversationID"))
        );
    }

    #[tokio::test]
    async fn unknown_paths_and_the_http_controls() {
        let (fake, client) = start(quick()).await;
        let answer = client
            .http
            .get(format!("{}/mpesa/nothing/here", client.base))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 404);
        assert_eq!(
            answer.json::<Value>().await.unwrap()["errorCode"],
            "404.003.01"
        );
        let answer = client
            .http
            .get(format!("{}/mpesa/stkpush/v1/processrequest", client.base))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 405);

        let token = client.token().await;
        let control = |path: &str| format!("{}/__fake/{path}", client.base);
        let tokens: Value = client
            .http
            .get(control("tokens"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(tokens["tokens_issued"], json!(1));
        client
            .http
            .post(control("expire-tokens"))
            .send()
            .await
            .unwrap();
        let (status, _) = client
            .post(&token, "/mpesa/c2b/v1/registerurl", &json!({}))
            .await;
        assert_eq!(status, 404);
        let requests: Value = client
            .http
            .get(control("requests"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(requests.as_array().unwrap().len(), 4, "{requests}");
        assert_eq!(requests[3]["path"], "/mpesa/c2b/v1/registerurl");

        let outcome: Value = client
            .http
            .post(control("customer-pays"))
            .json(&json!({"msisdn": "254708374149", "amount": 10, "bill_ref_number": "X"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(outcome["outcome"], "completed");
        let callbacks: Value = client
            .http
            .get(control("callbacks"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(callbacks, json!([]), "nothing registered: nothing posted");
        client.http.post(control("reset")).send().await.unwrap();
        assert!(fake.requests().is_empty());
    }

    /// Serves a fake for `compat/mpesa-node/run.sh` (or a person) when
    /// `MALIPO_MPESA_FAKE_ADDR` is set (e.g. `127.0.0.1:18080`), for
    /// `MALIPO_MPESA_FAKE_SECS` seconds (default 120):
    /// `MALIPO_MPESA_FAKE_ADDR=127.0.0.1:18080 cargo test -p malipo-fakes
    /// -- --ignored serve_for_compat --nocapture`.
    #[tokio::test]
    #[ignore = "serves a fake for a compatibility run; set MALIPO_MPESA_FAKE_ADDR"]
    async fn serve_for_compat() {
        let Ok(addr) = std::env::var("MALIPO_MPESA_FAKE_ADDR") else {
            return;
        };
        let secs = std::env::var("MALIPO_MPESA_FAKE_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(120);
        let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
        println!("M-Pesa fake at http://{}", listener.local_addr().unwrap());
        let fake = MpesaFake::new(MpesaFakeConfig::default());
        let _ = tokio::time::timeout(Duration::from_secs(secs), fake.serve(listener)).await;
    }
}
