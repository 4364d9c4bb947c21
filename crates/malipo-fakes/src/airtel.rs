//! A fake of the Airtel Money Open API (developers.airtel.africa): the
//! OAuth2 token, Collections (USSD push, transaction enquiry, refund and
//! the callback Airtel posts to the URL registered in the application's
//! settings), Disbursements (v1 and v2, with their enquiry), the KYC user
//! enquiry, the balance enquiry and the RSA encryption-keys API used for
//! message signing and PIN encryption. It is a real HTTP server:
//! [`AirtelFake::spawn`] binds a port on 127.0.0.1.
//!
//! # What answers what
//!
//! Every product call needs `Authorization: Bearer <token>` and the
//! application's `X-Country` and `X-Currency` headers. Airtel's bodies are
//! an envelope `{"data": …, "status": {"response_code", "code", "success",
//! "result_code", "message"}}` (`status` fields in the order the platform
//! sends them); `status.code` is an HTTP-like *string*.
//!
//! | Endpoint | Answer |
//! |---|---|
//! | `POST /auth/oauth2/token` (JSON `{"client_id","client_secret","grant_type":"client_credentials"}`) | `200 {"access_token","expires_in":"180","token_type":"bearer"}` |
//! | `POST /merchant/v2/payments/` (also `/merchant/v1/payments/`) | `200 {"data":{"transaction":{"id","status":"Success."}},"status":{"response_code":"DP00800001006","code":"200","success":true,"result_code":"ESB000010","message":"Success."}}` — the push was *sent*, nothing more |
//! | `GET /standard/v1/payments/{id}` | `200 {"data":{"transaction":{"airtel_money_id","id","message","status"}},"status":{…}}`, `status` one of `TIP`, `TS`, `TF` |
//! | `POST /standard/v1/payments/refund` (also `v2`), `{"transaction":{"airtel_money_id"}}` | `200 {"data":{"transaction":{"airtel_money_id","status":"SUCCESS"}},"status":{…}}` |
//! | `POST /standard/v1/disbursements/`, `POST /standard/v2/disbursements/` | `200 {"data":{"transaction":{"reference_id","airtel_money_id","id"}},"status":{"response_code":"DP00900001001",…}}` (v2 adds `"status":"TS"` to the transaction) |
//! | `GET /standard/v1/disbursements/{id}`, `GET /standard/v2/disbursements/{id}?transactionType=B2C` | like the payment enquiry, `DP009…` codes |
//! | `GET /standard/v1/users/{msisdn}` | `{"data":{"first_name","grade","is_barred","is_pin_set","last_name","msisdn","reg_status","registration":{"status"}},"status":{…}}` |
//! | `GET /standard/v1/users/balance` | `{"data":{"balance","currency","account_status"},"status":{…}}` |
//! | `GET /v1/rsa/encryption-keys` | `{"data":{"key_id","key","valid_upto"},"status":{"response_code":"DP02010001001",…}}` |
//!
//! Callbacks: when a collection reaches `TS` or `TF`, the fake `POST`s
//! `{"transaction":{"id","message","status_code","airtel_money_id"}}` to
//! the callback URL registered for the application (Airtel takes none per
//! request: [`AirtelFakeConfig::callback_url`],
//! [`AirtelFake::set_callback_url`] or `/__fake/callback-url`). With
//! callback authentication enabled ([`AirtelFake::set_callback_private_key`],
//! as enabling it in the portal shows a private key) the body gains
//! `"hash"`: base64 of HMAC-SHA256, keyed with that private key, of the
//! `transaction` object exactly as it appears in the body (compact JSON, in
//! the order `id, message, status_code, airtel_money_id`). Airtel documents
//! callbacks for collections only, so disbursements send none: their
//! outcome is in the answer to the POST, or the enquiry. With no URL
//! registered, no callback is sent (nor recorded).
//!
//! # Triggers
//!
//! The outcome comes from the subscriber's (collection) or payee's
//! (disbursement) number, by [`Trigger::of`]. With `d` the configured
//! `callback_delay`:
//!
//! | Ends in | Trigger | Collection (enquiry `status`, `status.response_code`) | Callback | Disbursement (answer to the POST) |
//! |---|---|---|---|---|
//! | `0001` | Declined | `TF` `DP00800001008` (refused) after `d` | one, `TF` | `TF` `DP00900001013` (refused) |
//! | `0002` | InsufficientFunds | `TF` `DP00800001007` (not enough balance) after `d` | one, `TF` | `TF` `DP00900001007` (not enough funds) |
//! | `0003` | NoAnswer | `TIP` until `3d`, then `TF` `DP00800001024` (timed out) | one, `TF`, at `3d` | `TA` `DP00900001014` (timed out: enquire); the enquiry shows `TA` until `3d`, then `TF` `DP00900001005` |
//! | `0004` | CallbackLost | `TS` after `d` | none | `TS` |
//! | `0005` | CallbackTwice | `TS` after `d` | two, identical | `TS` |
//! | `0006` | SlowCallback | `TS` after `d` | one, at `10d` | `TS` |
//! | `0007` | FirstRequestHangs | the first POST for the number is held `hang_for` before its answer (the transaction exists from the start: a retry with the same `transaction.id` is a duplicate, the enquiry finds it); `TS` after `d` | one | `TS` (the first POST held likewise) |
//! | `0008` | InvalidAccount | refused at once: `{"status":{"response_code":"DP00800001005","code":"400","success":false,"message":"Msisdn Not Found"}}`, nothing recorded; the KYC enquiry fails | none | `TF` `DP00900001012` (mobile number incorrect) |
//! | `0009` | UnknownCode | `TF` [`UNDOCUMENTED_COLLECTION_CODE`] after `d` | one, `TF` | `TF` [`UNDOCUMENTED_DISBURSEMENT_CODE`] |
//! | other | Succeeds | `TS` after `d` | one, `TS` | `TS` `DP00900001001` |
//!
//! A disbursement also fails with `DP00900001007` when the wallet's balance
//! (10,000,000 at start; collections add to it, disbursements and refunds
//! take from it) is short.
//!
//! # Response codes
//!
//! Collections (`DP008…`), as Airtel documents them: `DP00800001000`
//! ambiguous (enquire), `…001` success, `…002` incorrect PIN, `…003`
//! exceeds the wallet's limit, `…004` invalid amount (below the minimum),
//! `…005` "transaction ID is invalid" (user didn't enter the PIN), `…006`
//! in process, `…007` not enough balance, `…008` refused, `…009` do not
//! honor, `…010` not permitted to payee (barred or not registered),
//! `…024` timed out, `…025` transaction not found, `…026` forbidden
//! (x-signature and payload did not match), `…029` expired.
//! Disbursements (`DP009…`): `DP00900001000` ambiguous, `…001` success,
//! `…003` daily limit, `…004` amount out of range, `…005` failed, `…006`
//! in process, `…007` not enough funds, `…009` initiatee invalid, `…010`
//! payer not allowed, `…011` similar transaction exists, `…012` mobile
//! number incorrect, `…013` refused, `…014` timed out (enquire), `…015`
//! not found, `…016` forbidden, `…017` duplicate transaction id.
//! Result codes: `ESB000010` success, `ESB000001`/`…004`/`…008`/`…014`
//! ambiguous or validation, `ESB000011` failed, `ESB000033` MSISDN length,
//! `ESB000034` country, `ESB000035` currency, `ESB000041` external
//! transaction id already exists, `ESB000045` no transaction found; and the
//! gateway's `ROUTER003` missing header or body, `ROUTER006` invalid
//! country, `ROUTER007` not authorised for the country, `ROUTER112` invalid
//! currency, `ROUTER115` incorrect PIN, `ROUTER116` incorrect encrypted PIN,
//! `ROUTER119` missing currency. Transaction statuses: `TS` success, `TF`
//! failed, `TA` ambiguous, `TIP` in progress (and `TE` expired, which the
//! fake never produces: callbacks only ever say `TS` or `TF`).
//!
//! # Quirks reproduced
//!
//! - `expires_in` is a JSON **string** (`"180"`), as documented; tokens
//!   live three minutes and look like the platform's (32 letters and
//!   digits), and one token serves every product.
//! - The enquiry's `status` block describes the *enquiry*: it says
//!   `"success":true`, `"message":"SUCCESS"`, `result_code` `ESB000010` even
//!   for a failed transaction, and `response_code` is `DP00800001006` ("in
//!   process") for a `TS` as for a `TIP`, as in Airtel's own enquiry sample
//!   and in answers recorded from production. Only
//!   `data.transaction.status` tells the outcome; for a `TF`,
//!   `response_code` carries the documented reason and
//!   `data.transaction.message` its text.
//! - `airtel_money_id` (`MP230107.1738.J04514`-shaped) appears once the
//!   transaction is final, on a `TF` too (as recorded from production; the
//!   docs say "only for TS"); a `TIP` has neither it nor `message`.
//! - Business refusals (duplicate `transaction.id`, MSISDN not found,
//!   unknown transaction, refused refund, field validation) are HTTP `200`
//!   with `"success":false` and an HTTP-like `status.code` (`"400"`,
//!   `"404"`): the HTTP status alone does not tell. The gateway's
//!   `ROUTER…` refusals (headers, PIN) are real HTTP `400`s (`403` for
//!   `ROUTER007`).
//! - MSISDNs are national numbers: for `KE`, nine digits, no `0`, no
//!   `254`; anything else is `ESB000033` ("Invalid MSISDN Length"). A JSON
//!   number is taken for a string (the platform is lenient there, and
//!   clients send both); amounts likewise (number, or a numeric string).
//! - The KYC answer's `msisdn` is a JSON **number**.
//! - The refund's answer says `"status":"SUCCESS"` in `data.transaction`,
//!   not `TS`.
//!
//! Choices where the documentation is silent: an unknown or expired
//! bearer token is `401 {"error_description":"Invalid access token",
//! "error":"invalid_token"}` (the style of the token endpoint's own errors);
//! wrong client credentials are `400 {"error_description":"Invalid client
//! authentication","error":"invalid_client"}` (as production has been seen
//! to answer); a duplicate `transaction.id` is `status.code` `"400"` with
//! `ESB000041` (and `DP00900001017` for a disbursement); the KYC enquiry of
//! an unknown number is `status.code` `"404"` with `DP02200000000`.
//!
//! # PINs and message signing
//!
//! The disbursement `pin` is, on the real platform, the wallet PIN
//! RSA-encrypted (PKCS#1 v1.5) with the public key of the encryption-keys
//! API, in base64. The fake cannot decrypt: it takes any non-empty base64
//! `pin` for good; a plain four-digit PIN is checked against
//! [`AirtelFakeConfig::disbursement_pin`] (`ROUTER115 Incorrect Pin` if it
//! differs); anything else is `ROUTER116 Incorrect Encrypted Pin`. Likewise
//! the `x-signature` / `x-key` headers of message signing are accepted
//! unchecked when both are base64, and refused (`403`, `DP00800001026`,
//! or `DP00900001016` on a disbursement: "Forbidden: X-signature and
//! payload did not match.") when only one is sent or either is not base64.
//! The key the
//! encryption-keys API serves is a real 1024-bit RSA public key (as
//! Airtel's are), so a client can encrypt with it; its private half was
//! thrown away.
//!
//! # Controls
//!
//! [`AirtelFake::set_callback_url`], [`AirtelFake::set_callback_private_key`],
//! [`AirtelFake::expire_tokens`], [`AirtelFake::tokens_issued`],
//! [`AirtelFake::requests`], [`AirtelFake::callbacks_sent`], and over HTTP
//! `POST /__fake/expire-tokens`, `GET /__fake/requests`,
//! `GET /__fake/callbacks`, `GET`/`POST /__fake/callback-url` (`{"url":
//! "…"}`, or `null` to forget it) and `POST /__fake/callback-auth`
//! (`{"private_key": "…"}`, or `null` for unauthenticated callbacks). These
//! need no token and are never recorded as requests.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::Sha256;
use uuid::Uuid;

use crate::triggers::Trigger;

/// The response code the fake gives a collection from a
/// [`Trigger::UnknownCode`] number: one Airtel documents nowhere.
pub const UNDOCUMENTED_COLLECTION_CODE: &str = "DP00800009999";

/// The response code the fake gives a disbursement to a
/// [`Trigger::UnknownCode`] number: one Airtel documents nowhere.
pub const UNDOCUMENTED_DISBURSEMENT_CODE: &str = "DP00900009999";

/// The merchant's name, as the success callback's message shows it.
const MERCHANT_NAME: &str = "MALIPO FAKE MERCHANT";

/// What the application's wallet holds at start (in currency units).
const OPENING_BALANCE: i128 = 10_000_000;

/// The RSA public key the encryption-keys API serves (base64 DER, X.509
/// SubjectPublicKeyInfo, 1024 bits, like Airtel's). Its private half was
/// never kept: the fake does not decrypt.
const ENCRYPTION_PUBLIC_KEY: &str = "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDO78POu036pMzN0zsmr6aVbdxArwPSgXKOhSz9rYpTSeNoWA48AFi/lXcNRXM7LoL/7laKsqSnyWNZbRdcIiZwQpylqJgxmHkBoclRbYvj4OslhtbDh/KT/0MzP9zhOj9W3SFzLwO4Mpup9Tb0BViiKM7qr62dPurIxiIBtdmNxQIDAQAB";

/// Airtel Money's countries: ISO code, currency, length of a national
/// MSISDN, dialling code.
const COUNTRIES: [(&str, &str, usize, &str); 14] = [
    ("KE", "KES", 9, "254"),
    ("UG", "UGX", 9, "256"),
    ("TZ", "TZS", 9, "255"),
    ("RW", "RWF", 9, "250"),
    ("ZM", "ZMW", 9, "260"),
    ("MW", "MWK", 9, "265"),
    ("MG", "MGA", 9, "261"),
    ("CD", "CDF", 9, "243"),
    ("CG", "XAF", 9, "242"),
    ("GA", "XAF", 8, "241"),
    ("NE", "XOF", 8, "227"),
    ("TD", "XAF", 8, "235"),
    ("SC", "SCR", 7, "248"),
    ("NG", "NGN", 10, "234"),
];

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct AirtelFakeConfig {
    /// The application's client id (a UUID on the real portal).
    pub client_id: String,
    /// The application's client secret.
    pub client_secret: String,
    /// The only `X-Country` the application may use (`KE`).
    pub country: String,
    /// The only `X-Currency` the application may use (`KES`).
    pub currency: String,
    /// The wallet PIN disbursements must carry (four digits) when sent in
    /// the clear; an encrypted (base64) PIN is taken as given.
    pub disbursement_pin: String,
    /// The callback URL registered in the application's settings, if any.
    pub callback_url: Option<String>,
    /// How long after the push the customer answers (and the callback is
    /// sent); the other timings are multiples of it.
    pub callback_delay: Duration,
    /// The `expires_in` of access tokens: 180 seconds on the platform.
    pub token_lifetime: Duration,
    /// How long the first request for a `…0007` number is held.
    pub hang_for: Duration,
}

impl Default for AirtelFakeConfig {
    fn default() -> Self {
        AirtelFakeConfig {
            client_id: "5e7b2c1a-9d4f-4c3e-8a21-6f0b9d3e7a10".into(),
            client_secret: "d8c4a2f1-3b6e-4f70-9c15-2e8a7b4d6f03".into(),
            country: "KE".into(),
            currency: "KES".into(),
            disbursement_pin: "1234".into(),
            callback_url: None,
            callback_delay: Duration::from_millis(200),
            token_lifetime: Duration::from_secs(180),
            hang_for: Duration::from_secs(30),
        }
    }
}

/// A request the fake received (every one but `/__fake/…`), as it came.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReceivedRequest {
    pub method: String,
    /// The path with its query string, if any.
    pub path: String,
    /// Names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl ReceivedRequest {
    /// The first value of a header (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Null` if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// A callback the fake sent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SentCallback {
    pub url: String,
    pub method: String,
    pub body: String,
    /// The receiver's status, or `None` when it could not be reached.
    pub status: Option<u16>,
}

impl SentCallback {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// The fake: cheap to clone, every clone the same server state.
#[derive(Clone)]
pub struct AirtelFake {
    inner: Arc<Inner>,
}

struct Inner {
    config: AirtelFakeConfig,
    http: reqwest::Client,
    state: Mutex<FakeState>,
}

struct FakeState {
    /// Access tokens and when they expire.
    tokens: HashMap<String, Instant>,
    tokens_issued: usize,
    collections: HashMap<String, Transaction>,
    disbursements: HashMap<String, Transaction>,
    /// A collection's `airtel_money_id` → its `transaction.id`.
    airtel_ids: HashMap<String, String>,
    hung_numbers: HashSet<String>,
    requests: Vec<ReceivedRequest>,
    callbacks: Vec<SentCallback>,
    callback_url: Option<String>,
    callback_key: Option<String>,
    /// The wallet's balance, in millionths of the currency unit.
    balance: i128,
    serial: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Collection,
    Disbursement,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxnStatus {
    InProgress,
    Ambiguous,
    Success,
    Failed,
}

impl TxnStatus {
    fn code(self) -> &'static str {
        match self {
            TxnStatus::InProgress => "TIP",
            TxnStatus::Ambiguous => "TA",
            TxnStatus::Success => "TS",
            TxnStatus::Failed => "TF",
        }
    }
}

#[derive(Clone)]
struct Transaction {
    id: String,
    /// Millionths of the currency unit.
    amount: i128,
    status: TxnStatus,
    /// The reason of a `TF` (or the code of a `TA`).
    reason_code: Option<String>,
    message: Option<String>,
    airtel_money_id: Option<String>,
    reference_id: Option<String>,
    refunded: bool,
}

/// What happens to a transaction.
enum Outcome {
    Succeed,
    Fail(&'static str),
}

/// The documented text of a response code (the fake's own for the
/// undocumented ones).
fn reason_text(code: &str) -> &'static str {
    match code {
        "DP00800001007" => "User wallet does not have enough money to cover the payable amount.",
        "DP00800001008" => "The transaction was refused.",
        "DP00800001024" => "The transaction was timed out.",
        "DP00900001001" => "Transaction is successful.",
        "DP00900001005" => "Transaction failed.",
        "DP00900001007" => "Not enough funds in account to complete the transaction.",
        "DP00900001012" => "Mobile number entered is incorrect.",
        "DP00900001013" => "The transaction was refused.",
        "DP00900001014" => {
            "Transaction Timed Out. The transaction may be processed or failed due to time out. To know the exact status please do the transaction enquiry."
        }
        _ => "Transaction could not be completed.",
    }
}

// ---------------------------------------------------------------------------
// Bodies, in the platform's field order.

/// The `status` block of every answer.
#[derive(Serialize)]
struct StatusBlock<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    response_code: Option<&'a str>,
    code: &'a str,
    success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    result_code: Option<&'a str>,
    message: &'a str,
}

#[derive(Serialize)]
struct Envelope<'a, D: Serialize> {
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<D>,
    status: StatusBlock<'a>,
}

#[derive(Serialize)]
struct TransactionData<T: Serialize> {
    transaction: T,
}

/// A transaction as the enquiries (and the v2 disbursement) show it.
#[derive(Serialize)]
struct TransactionView<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    airtel_money_id: Option<&'a str>,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reference_id: Option<&'a str>,
    status: &'a str,
}

/// A transaction as the v1 disbursement's answer shows it.
#[derive(Serialize)]
struct V1DisbursementView<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    reference_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    airtel_money_id: Option<&'a str>,
    id: &'a str,
}

/// The callback's `transaction` object: the order is part of the hash.
#[derive(Serialize, Clone)]
struct CallbackTransaction {
    id: String,
    message: String,
    status_code: String,
    airtel_money_id: String,
}

#[derive(Serialize)]
struct CallbackBody<'a> {
    transaction: &'a CallbackTransaction,
    #[serde(skip_serializing_if = "Option::is_none")]
    hash: Option<String>,
}

fn answer<D: Serialize>(http: StatusCode, data: Option<D>, status: StatusBlock<'_>) -> Response {
    (http, axum::Json(Envelope { data, status })).into_response()
}

/// A refusal on its way to becoming the answer, boxed: a `Response` is
/// too large to carry in every `Result`.
struct Refusal(Box<Response>);

impl From<Response> for Refusal {
    fn from(response: Response) -> Self {
        Refusal(Box::new(response))
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        *self.0
    }
}

/// A gateway (`ROUTER…`) refusal: a real HTTP error.
fn router_error(http: StatusCode, result_code: &str, message: &str) -> Response {
    let code = http.as_u16().to_string();
    answer::<()>(
        http,
        None,
        StatusBlock {
            response_code: None,
            code: &code,
            success: false,
            result_code: Some(result_code),
            message,
        },
    )
}

/// A business (`ESB…`) refusal: HTTP 200, `success:false`, and the
/// HTTP-like code in the body.
fn esb_error(
    code: &str,
    result_code: Option<&str>,
    response_code: Option<&str>,
    message: &str,
) -> Response {
    answer::<()>(
        StatusCode::OK,
        None,
        StatusBlock {
            response_code,
            code,
            success: false,
            result_code,
            message,
        },
    )
}

fn field_validation(message: &str) -> Response {
    esb_error("400", Some("ESB000008"), None, message)
}

fn missing_params(message: &str) -> Response {
    router_error(StatusCode::BAD_REQUEST, "ROUTER003", message)
}

/// The token endpoint's (OAuth2) error body.
fn oauth_error(http: StatusCode, error: &str, description: &str) -> Response {
    #[derive(Serialize)]
    struct OAuthError<'a> {
        error_description: &'a str,
        error: &'a str,
    }
    (
        http,
        axum::Json(OAuthError {
            error_description: description,
            error,
        }),
    )
        .into_response()
}

fn unauthorized_bearer() -> Response {
    oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "Invalid access token",
    )
}

fn route_not_found() -> Response {
    answer::<()>(
        StatusCode::NOT_FOUND,
        None,
        StatusBlock {
            response_code: None,
            code: "404",
            success: false,
            result_code: None,
            message: "Resource not found",
        },
    )
}

// ---------------------------------------------------------------------------
// Small helpers.

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

fn country(code: &str) -> Option<(&'static str, &'static str, usize, &'static str)> {
    COUNTRIES.iter().copied().find(|(iso, ..)| *iso == code)
}

/// A string field, or a number taken as its text (the platform coerces).
fn text_field(object: &Map<String, Value>, name: &str) -> Option<String> {
    match object.get(name)? {
        Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

fn object_field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Map<String, Value>> {
    object.get(name)?.as_object()
}

/// A positive amount, a JSON number or a numeric string, in millionths;
/// at most two decimals.
fn amount_field(object: &Map<String, Value>) -> Option<i128> {
    let text = match object.get("amount")? {
        Value::Number(number) => number.to_string(),
        Value::String(text) => text.trim().to_owned(),
        _ => return None,
    };
    parse_amount(&text)
}

fn parse_amount(text: &str) -> Option<i128> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let fraction = fraction.trim_end_matches('0');
    if whole.is_empty()
        || whole.len() > 15
        || !whole.chars().all(|c| c.is_ascii_digit())
        || !fraction.chars().all(|c| c.is_ascii_digit())
        || fraction.len() > 2
    {
        return None;
    }
    let mut micros: i128 = whole.parse::<i128>().ok()? * 1_000_000;
    let mut scale = 100_000;
    for c in fraction.chars() {
        micros += i128::from(c as u8 - b'0') * scale;
        scale /= 10;
    }
    (micros > 0).then_some(micros)
}

/// `1,000` or `1,000.50`, as the callback's message writes amounts.
fn format_amount(micros: i128) -> String {
    let whole = (micros / 1_000_000).to_string();
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let cents = (micros % 1_000_000) / 10_000;
    if cents == 0 {
        grouped
    } else {
        format!("{grouped}.{cents:02}")
    }
}

/// `12345.00`, as the balance enquiry writes amounts.
fn format_balance(micros: i128) -> String {
    format!(
        "{}.{:02}",
        micros / 1_000_000,
        (micros % 1_000_000).abs() / 10_000
    )
}

/// A stable number for a phone number, to pick its subscriber's name.
fn fingerprint(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn is_base64(text: &str) -> bool {
    !text.is_empty()
        && base64::engine::general_purpose::STANDARD
            .decode(text)
            .is_ok_and(|bytes| !bytes.is_empty())
}

/// An access token shaped like the platform's: 32 letters and digits.
fn new_token() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = Vec::with_capacity(48);
    for _ in 0..4 {
        let id = Uuid::now_v7();
        // The last ten bytes of a v7 are random.
        bytes.extend_from_slice(&id.as_bytes()[6..]);
    }
    bytes
        .iter()
        .take(32)
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// `HMAC-SHA256(key, message)`, in base64.
fn callback_hash(key: &str, message: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(message.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

// ---------------------------------------------------------------------------
// The fake.

impl AirtelFake {
    pub fn new(config: AirtelFakeConfig) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("an HTTP client builds");
        let state = FakeState {
            tokens: HashMap::new(),
            tokens_issued: 0,
            collections: HashMap::new(),
            disbursements: HashMap::new(),
            airtel_ids: HashMap::new(),
            hung_numbers: HashSet::new(),
            requests: Vec::new(),
            callbacks: Vec::new(),
            callback_url: config.callback_url.clone().filter(|url| !url.is_empty()),
            callback_key: None,
            balance: OPENING_BALANCE * 1_000_000,
            // Different at every start, so ids from two runs rarely meet.
            serial: u64::from(Uuid::now_v7().as_bytes()[15]) * 300,
        };
        AirtelFake {
            inner: Arc::new(Inner {
                config,
                http,
                state: Mutex::new(state),
            }),
        }
    }

    fn config(&self) -> &AirtelFakeConfig {
        &self.inner.config
    }

    fn state(&self) -> MutexGuard<'_, FakeState> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The fake's routes, recording every request but `/__fake/…`.
    pub fn router(&self) -> Router {
        let payment = post(
            |State(fake): State<AirtelFake>, headers: HeaderMap, body: Bytes| async move {
                fake.create_payment(&headers, &body).await
            },
        );
        let refund = post(
            |State(fake): State<AirtelFake>, headers: HeaderMap, body: Bytes| async move {
                fake.refund(&headers, &body)
            },
        );
        let disburse_v1 = post(
            |State(fake): State<AirtelFake>, headers: HeaderMap, body: Bytes| async move {
                fake.disburse(&headers, &body, false).await
            },
        );
        let disburse_v2 = post(
            |State(fake): State<AirtelFake>, headers: HeaderMap, body: Bytes| async move {
                fake.disburse(&headers, &body, true).await
            },
        );
        let disbursement_enquiry = get(
            |State(fake): State<AirtelFake>, Path(id): Path<String>, headers: HeaderMap| async move {
                fake.enquiry(Kind::Disbursement, &headers, &id)
            },
        );
        Router::new()
            .route("/auth/oauth2/token", post(issue_token))
            .route("/merchant/v1/payments/", payment.clone())
            .route("/merchant/v1/payments", payment.clone())
            .route("/merchant/v2/payments/", payment.clone())
            .route("/merchant/v2/payments", payment)
            .route(
                "/standard/v1/payments/{id}",
                get(
                    |State(fake): State<AirtelFake>, Path(id): Path<String>, headers: HeaderMap| async move {
                        fake.enquiry(Kind::Collection, &headers, &id)
                    },
                ),
            )
            .route("/standard/v1/payments/refund", refund.clone())
            .route("/standard/v2/payments/refund", refund)
            .route("/standard/v1/disbursements/", disburse_v1.clone())
            .route("/standard/v1/disbursements", disburse_v1)
            .route("/standard/v2/disbursements/", disburse_v2.clone())
            .route("/standard/v2/disbursements", disburse_v2)
            .route(
                "/standard/v1/disbursements/{id}",
                disbursement_enquiry.clone(),
            )
            .route("/standard/v2/disbursements/{id}", disbursement_enquiry)
            .route(
                "/standard/v1/users/balance",
                get(|State(fake): State<AirtelFake>, headers: HeaderMap| async move {
                    fake.balance(&headers)
                }),
            )
            .route(
                "/standard/v1/users/{msisdn}",
                get(
                    |State(fake): State<AirtelFake>, Path(msisdn): Path<String>, headers: HeaderMap| async move {
                        fake.user_enquiry(&headers, &msisdn)
                    },
                ),
            )
            .route(
                "/v1/rsa/encryption-keys",
                get(|State(fake): State<AirtelFake>, headers: HeaderMap| async move {
                    fake.encryption_keys(&headers)
                }),
            )
            .route("/__fake/expire-tokens", post(fake_expire_tokens))
            .route("/__fake/requests", get(fake_requests))
            .route("/__fake/callbacks", get(fake_callbacks))
            .route(
                "/__fake/callback-url",
                get(fake_callback_url)
                    .post(fake_set_callback_url)
                    .put(fake_set_callback_url),
            )
            .route("/__fake/callback-auth", post(fake_callback_auth))
            .fallback(|| async { route_not_found() })
            .method_not_allowed_fallback(|| async { route_not_found() })
            .layer(middleware::from_fn_with_state(self.clone(), record))
            .with_state(self.clone())
    }

    /// Binds 127.0.0.1 on a free port, serves there in a task, and returns
    /// the base URL (`http://127.0.0.1:PORT`).
    pub async fn spawn(&self) -> std::io::Result<String> {
        crate::serving::spawn(self.router(), "Airtel Money").await
    }

    /// Serves on `listener` until the task is dropped.
    pub async fn serve(&self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
    }

    /// Registers the callback URL, as in the application's settings on
    /// Airtel's portal (an empty string forgets it).
    pub fn set_callback_url(&self, url: &str) {
        let url = url.trim();
        self.state().callback_url = (!url.is_empty()).then(|| url.to_owned());
    }

    /// Turns callback authentication on with this private key (callbacks
    /// then carry `hash`), or off with `None` (the portal's default).
    pub fn set_callback_private_key(&self, key: Option<&str>) {
        self.state().callback_key = key.filter(|key| !key.is_empty()).map(str::to_owned);
    }

    /// Expires every access token issued so far (new ones are valid).
    pub fn expire_tokens(&self) {
        self.expire_all_tokens();
    }

    fn expire_all_tokens(&self) -> usize {
        let now = Instant::now();
        let mut state = self.state();
        for expires_at in state.tokens.values_mut() {
            *expires_at = now;
        }
        state.tokens.len()
    }

    /// How many access tokens were issued.
    pub fn tokens_issued(&self) -> usize {
        self.state().tokens_issued
    }

    /// Every request received but `/__fake/…`, oldest first.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.state().requests.clone()
    }

    /// Every callback sent, oldest first.
    pub fn callbacks_sent(&self) -> Vec<SentCallback> {
        self.state().callbacks.clone()
    }

    // -- tokens and the gateway ---------------------------------------------

    fn issue_token(&self, body: &[u8]) -> Response {
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(body) else {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The request body must be a JSON object",
            );
        };
        let text = |name: &str| body.get(name).and_then(Value::as_str).unwrap_or_default();
        let (client_id, client_secret, grant_type) =
            (text("client_id"), text("client_secret"), text("grant_type"));
        if client_id.is_empty() || client_secret.is_empty() || grant_type.is_empty() {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing client_id, client_secret or grant_type",
            );
        }
        if grant_type != "client_credentials" {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Unsupported grant type",
            );
        }
        if client_id != self.config().client_id || client_secret != self.config().client_secret {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_client",
                "Invalid client authentication",
            );
        }
        let lifetime = self.config().token_lifetime;
        let token = new_token();
        {
            let mut state = self.state();
            state
                .tokens
                .insert(token.clone(), Instant::now() + lifetime);
            state.tokens_issued += 1;
        }
        #[derive(Serialize)]
        struct TokenBody {
            access_token: String,
            expires_in: String,
            token_type: &'static str,
        }
        axum::Json(TokenBody {
            access_token: token,
            expires_in: lifetime.as_secs().to_string(),
            token_type: "bearer",
        })
        .into_response()
    }

    fn check_bearer(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let token = header(headers, "authorization")
            .and_then(|value| {
                let (scheme, token) = value.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or_else(unauthorized_bearer)?;
        match self.state().tokens.get(token) {
            Some(expires_at) if *expires_at > Instant::now() => Ok(()),
            _ => Err(unauthorized_bearer().into()),
        }
    }

    /// `X-Country` and `X-Currency`: the application's, and nothing else.
    fn check_locale(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let Some(country_code) = header(headers, "x-country").filter(|c| !c.is_empty()) else {
            return Err(missing_params("Mandatory request header missing: X-Country").into());
        };
        if !country_code.eq_ignore_ascii_case(&self.config().country) {
            return Err(if country(&country_code.to_ascii_uppercase()).is_some() {
                router_error(
                    StatusCode::FORBIDDEN,
                    "ROUTER007",
                    "User Not authorized for provided country",
                )
            } else {
                router_error(StatusCode::BAD_REQUEST, "ROUTER006", "Invalid Country")
            }
            .into());
        }
        let Some(currency) = header(headers, "x-currency").filter(|c| !c.is_empty()) else {
            return Err(router_error(
                StatusCode::BAD_REQUEST,
                "ROUTER119",
                "Invalid/Missing Currency",
            )
            .into());
        };
        if !currency.eq_ignore_ascii_case(&self.config().currency) {
            return Err(
                router_error(StatusCode::BAD_REQUEST, "ROUTER112", "Invalid Currency").into(),
            );
        }
        Ok(())
    }

    /// Message signing's headers, when sent: both, and base64.
    fn check_signature(&self, headers: &HeaderMap, forbidden_code: &str) -> Result<(), Refusal> {
        let signature = header(headers, "x-signature");
        let key = header(headers, "x-key");
        match (signature, key) {
            (None, None) => Ok(()),
            (Some(signature), Some(key)) if is_base64(signature) && is_base64(key) => Ok(()),
            _ => Err(answer::<()>(
                StatusCode::FORBIDDEN,
                None,
                StatusBlock {
                    response_code: Some(forbidden_code),
                    code: "403",
                    success: false,
                    result_code: None,
                    message: "Forbidden: X-signature and payload did not match.",
                },
            )
            .into()),
        }
    }

    /// What every product call passes: token, then country and currency.
    fn gate(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        self.check_bearer(headers)?;
        self.check_locale(headers)
    }

    /// A national MSISDN of the application's country, digits only.
    fn check_msisdn(&self, msisdn: &str) -> Result<String, Refusal> {
        if msisdn.is_empty() || !msisdn.chars().all(|c| c.is_ascii_digit()) {
            return Err(field_validation("Field validation: msisdn must be digits only.").into());
        }
        let length = country(&self.config().country.to_ascii_uppercase()).map(|(_, _, n, _)| n);
        let good = match length {
            Some(length) => msisdn.len() == length && !msisdn.starts_with('0'),
            None => (6..=12).contains(&msisdn.len()),
        };
        if good {
            Ok(msisdn.to_owned())
        } else {
            let message = format!(
                "Invalid MSISDN Length. MSISDN Length should be {}",
                length.map_or_else(|| "6 to 12".to_owned(), |n| n.to_string())
            );
            Err(esb_error("400", Some("ESB000033"), None, &message).into())
        }
    }

    /// A body's optional `country` and `currency`, which must match the
    /// headers when given.
    fn check_body_locale(&self, object: &Map<String, Value>) -> Result<(), Refusal> {
        if let Some(given) = text_field(object, "country")
            && !given.eq_ignore_ascii_case(&self.config().country)
        {
            return Err(esb_error("400", Some("ESB000034"), None, "Invalid Country Name").into());
        }
        if let Some(given) = text_field(object, "currency")
            && !given.eq_ignore_ascii_case(&self.config().currency)
        {
            return Err(esb_error("400", Some("ESB000035"), None, "Invalid Currency Code").into());
        }
        Ok(())
    }

    fn next_ids(&self, state: &mut FakeState) -> (String, String) {
        state.serial += 1;
        let serial = state.serial;
        let now = time::OffsetDateTime::now_utc();
        const LETTERS: &[u8] = b"CJLMPR";
        let letter = LETTERS[(serial % LETTERS.len() as u64) as usize] as char;
        let airtel_money_id = format!(
            "MP{:02}{:02}{:02}.{:02}{:02}.{}{:05}",
            now.year() % 100,
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            letter,
            serial % 100_000
        );
        let reference_id = (1_800_000_000 + serial).to_string();
        (airtel_money_id, reference_id)
    }

    // -- collections --------------------------------------------------------

    async fn create_payment(&self, headers: &HeaderMap, body: &[u8]) -> Response {
        if let Err(refusal) = self.gate(headers) {
            return refusal.into_response();
        }
        if let Err(refusal) = self.check_signature(headers, "DP00800001026") {
            return refusal.into_response();
        }
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(body) else {
            return missing_params("The request body must be a JSON object.");
        };
        let (Some(subscriber), Some(transaction)) = (
            object_field(&body, "subscriber"),
            object_field(&body, "transaction"),
        ) else {
            return missing_params("Mandatory body parameter missing: subscriber or transaction.");
        };
        if text_field(&body, "reference").is_none() {
            return field_validation("Field validation: reference is mandatory.");
        }
        let Some(id) = text_field(transaction, "id") else {
            return field_validation("Field validation: transaction.id is mandatory.");
        };
        let Some(amount) = amount_field(transaction) else {
            return field_validation(
                "Field validation: transaction.amount must be a positive amount.",
            );
        };
        let Some(msisdn) = text_field(subscriber, "msisdn") else {
            return field_validation("Field validation: subscriber.msisdn is mandatory.");
        };
        for object in [subscriber, transaction] {
            if let Err(refusal) = self.check_body_locale(object) {
                return refusal.into_response();
            }
        }
        let msisdn = match self.check_msisdn(&msisdn) {
            Ok(msisdn) => msisdn,
            Err(refusal) => return refusal.into_response(),
        };
        let trigger = Trigger::of(&msisdn);
        let hang = {
            let mut state = self.state();
            if state.collections.contains_key(&id) {
                return esb_error(
                    "400",
                    Some("ESB000041"),
                    None,
                    "Transaction with External Transaction ID already exists. Please try again with correct request.",
                );
            }
            if trigger == Trigger::InvalidAccount {
                return esb_error("400", None, Some("DP00800001005"), "Msisdn Not Found");
            }
            state.collections.insert(
                id.clone(),
                Transaction {
                    id: id.clone(),
                    amount,
                    status: TxnStatus::InProgress,
                    reason_code: None,
                    message: None,
                    airtel_money_id: None,
                    reference_id: None,
                    refunded: false,
                },
            );
            trigger == Trigger::FirstRequestHangs && state.hung_numbers.insert(digits(&msisdn))
        };
        self.run_collection(id.clone(), trigger);
        if hang {
            tokio::time::sleep(self.config().hang_for).await;
        }
        answer(
            StatusCode::OK,
            Some(TransactionData {
                transaction: json_transaction_sent(&id),
            }),
            StatusBlock {
                response_code: Some("DP00800001006"),
                code: "200",
                success: true,
                result_code: Some("ESB000010"),
                message: "Success.",
            },
        )
    }

    /// Plays a collection's trigger out in the background.
    fn run_collection(&self, id: String, trigger: Trigger) {
        let fake = self.clone();
        let delay = self.config().callback_delay;
        tokio::spawn(async move {
            let (wait, outcome, callbacks, callback_after) = match trigger {
                Trigger::Declined => (1, Outcome::Fail("DP00800001008"), 1, 0),
                Trigger::InsufficientFunds => (1, Outcome::Fail("DP00800001007"), 1, 0),
                Trigger::NoAnswer => (3, Outcome::Fail("DP00800001024"), 1, 0),
                Trigger::UnknownCode => (1, Outcome::Fail(UNDOCUMENTED_COLLECTION_CODE), 1, 0),
                Trigger::CallbackLost => (1, Outcome::Succeed, 0, 0),
                Trigger::CallbackTwice => (1, Outcome::Succeed, 2, 0),
                Trigger::SlowCallback => (1, Outcome::Succeed, 1, 9),
                Trigger::Succeeds | Trigger::FirstRequestHangs | Trigger::InvalidAccount => {
                    (1, Outcome::Succeed, 1, 0)
                }
            };
            tokio::time::sleep(delay * wait).await;
            let Some(callback) = fake.finish_collection(&id, outcome) else {
                return;
            };
            if callback_after > 0 {
                tokio::time::sleep(delay * callback_after).await;
            }
            for _ in 0..callbacks {
                fake.send_callback(&callback).await;
            }
        });
    }

    /// Settles a collection; the callback's transaction object.
    fn finish_collection(&self, id: &str, outcome: Outcome) -> Option<CallbackTransaction> {
        let currency = self.config().currency.clone();
        let mut state = self.state();
        let (airtel_money_id, _) = self.next_ids(&mut state);
        let transaction = state.collections.get_mut(id)?;
        transaction.airtel_money_id = Some(airtel_money_id.clone());
        let amount = transaction.amount;
        let message = match outcome {
            Outcome::Succeed => {
                transaction.status = TxnStatus::Success;
                transaction.message =
                    Some("Your transaction has been successfully processed".into());
                format!(
                    "Paid {currency} {} to {MERCHANT_NAME} Charge {currency} 0, Trans ID {airtel_money_id}.",
                    format_amount(amount)
                )
            }
            Outcome::Fail(code) => {
                transaction.status = TxnStatus::Failed;
                transaction.reason_code = Some(code.to_owned());
                transaction.message = Some(reason_text(code).to_owned());
                reason_text(code).to_owned()
            }
        };
        let status_code = transaction.status.code().to_owned();
        if transaction.status == TxnStatus::Success {
            state.balance += amount;
        }
        state
            .airtel_ids
            .insert(airtel_money_id.clone(), id.to_owned());
        Some(CallbackTransaction {
            id: id.to_owned(),
            message,
            status_code,
            airtel_money_id,
        })
    }

    async fn send_callback(&self, transaction: &CallbackTransaction) {
        let (url, key) = {
            let state = self.state();
            (state.callback_url.clone(), state.callback_key.clone())
        };
        let Some(url) = url else {
            tracing::debug!(id = %transaction.id, "no callback URL registered: none sent");
            return;
        };
        let hash = key.map(|key| {
            let signed = serde_json::to_string(transaction).expect("a callback serializes");
            callback_hash(&key, &signed)
        });
        let body = serde_json::to_string(&CallbackBody { transaction, hash })
            .expect("a callback serializes");
        let status = self
            .inner
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .map(|answer| answer.status().as_u16())
            .ok();
        tracing::debug!(url, ?status, "Airtel Money fake sent a callback");
        self.state().callbacks.push(SentCallback {
            url,
            method: "POST".into(),
            body,
            status,
        });
    }

    fn enquiry(&self, kind: Kind, headers: &HeaderMap, id: &str) -> Response {
        if let Err(refusal) = self.gate(headers) {
            return refusal.into_response();
        }
        let state = self.state();
        let found = match kind {
            Kind::Collection => state.collections.get(id),
            Kind::Disbursement => state.disbursements.get(id),
        };
        let Some(transaction) = found else {
            let not_found = match kind {
                Kind::Collection => "DP00800001025",
                Kind::Disbursement => "DP00900001015",
            };
            return esb_error(
                "404",
                Some("ESB000045"),
                Some(not_found),
                "No Transaction Found With Provided Transaction Id.",
            );
        };
        let response_code = match (kind, transaction.status) {
            (_, TxnStatus::Failed) => transaction
                .reason_code
                .as_deref()
                .unwrap_or("DP00800001005"),
            (Kind::Collection, TxnStatus::Ambiguous) => "DP00800001000",
            // A successful collection's enquiry says "in process", as the
            // platform does.
            (Kind::Collection, _) => "DP00800001006",
            (Kind::Disbursement, TxnStatus::Success) => "DP00900001001",
            (Kind::Disbursement, TxnStatus::InProgress) => "DP00900001006",
            (Kind::Disbursement, TxnStatus::Ambiguous) => "DP00900001000",
        };
        answer(
            StatusCode::OK,
            Some(TransactionData {
                transaction: TransactionView {
                    airtel_money_id: transaction.airtel_money_id.as_deref(),
                    id: &transaction.id,
                    message: transaction.message.as_deref(),
                    reference_id: None,
                    status: transaction.status.code(),
                },
            }),
            StatusBlock {
                response_code: Some(response_code),
                code: "200",
                success: true,
                result_code: Some("ESB000010"),
                message: "SUCCESS",
            },
        )
    }

    fn refund(&self, headers: &HeaderMap, body: &[u8]) -> Response {
        if let Err(refusal) = self.gate(headers) {
            return refusal.into_response();
        }
        if let Err(refusal) = self.check_signature(headers, "DP00800001026") {
            return refusal.into_response();
        }
        let airtel_money_id = serde_json::from_slice::<Value>(body).ok().and_then(|body| {
            let transaction = object_field(body.as_object()?, "transaction")?;
            text_field(transaction, "airtel_money_id")
        });
        let Some(airtel_money_id) = airtel_money_id else {
            return missing_params(
                "Mandatory body parameter missing: transaction.airtel_money_id.",
            );
        };
        let mut state = self.state();
        let id = state.airtel_ids.get(&airtel_money_id).cloned();
        let Some(transaction) = id.and_then(|id| state.collections.get_mut(&id)) else {
            return esb_error(
                "404",
                Some("ESB000045"),
                Some("DP00800001025"),
                "No Transaction Found With Provided Transaction Id.",
            );
        };
        if transaction.status != TxnStatus::Success || transaction.refunded {
            let message = if transaction.refunded {
                "Transaction has already been refunded."
            } else {
                "Only a successful transaction can be refunded."
            };
            return esb_error("400", Some("ESB000011"), None, message);
        }
        transaction.refunded = true;
        let amount = transaction.amount;
        state.balance -= amount;
        #[derive(Serialize)]
        struct RefundView<'a> {
            airtel_money_id: &'a str,
            status: &'a str,
        }
        answer(
            StatusCode::OK,
            Some(TransactionData {
                transaction: RefundView {
                    airtel_money_id: &airtel_money_id,
                    status: "SUCCESS",
                },
            }),
            StatusBlock {
                response_code: Some("DP00800001006"),
                code: "200",
                success: true,
                result_code: Some("ESB000010"),
                message: "SUCCESS",
            },
        )
    }

    // -- disbursements ------------------------------------------------------

    fn check_pin(&self, pin: &str) -> Result<(), Refusal> {
        let pin = pin.trim();
        if pin.len() == 4 && pin.bytes().all(|b| b.is_ascii_digit()) {
            if pin == self.config().disbursement_pin {
                Ok(())
            } else {
                Err(router_error(StatusCode::BAD_REQUEST, "ROUTER115", "Incorrect Pin").into())
            }
        } else if is_base64(pin) {
            // An RSA-encrypted PIN: the fake cannot decrypt it.
            Ok(())
        } else {
            Err(router_error(
                StatusCode::BAD_REQUEST,
                "ROUTER116",
                "Incorrect Encrypted Pin",
            )
            .into())
        }
    }

    async fn disburse(&self, headers: &HeaderMap, body: &[u8], v2: bool) -> Response {
        if let Err(refusal) = self.gate(headers) {
            return refusal.into_response();
        }
        if let Err(refusal) = self.check_signature(headers, "DP00900001016") {
            return refusal.into_response();
        }
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(body) else {
            return missing_params("The request body must be a JSON object.");
        };
        let (Some(payee), Some(transaction)) = (
            object_field(&body, "payee"),
            object_field(&body, "transaction"),
        ) else {
            return missing_params("Mandatory body parameter missing: payee or transaction.");
        };
        let Some(pin) = text_field(&body, "pin") else {
            return missing_params("Mandatory body parameter missing: pin.");
        };
        if let Err(refusal) = self.check_pin(&pin) {
            return refusal.into_response();
        }
        if text_field(&body, "reference").is_none() {
            return field_validation("Field validation: reference is mandatory.");
        }
        let Some(id) = text_field(transaction, "id") else {
            return field_validation("Field validation: transaction.id is mandatory.");
        };
        let Some(amount) = amount_field(transaction) else {
            return field_validation(
                "Field validation: transaction.amount must be a positive amount.",
            );
        };
        if let Some(kind) = text_field(transaction, "type")
            && kind != "B2C"
            && kind != "B2B"
        {
            return field_validation("Field validation: transaction.type must be B2C or B2B.");
        }
        let Some(msisdn) = text_field(payee, "msisdn") else {
            return field_validation("Field validation: payee.msisdn is mandatory.");
        };
        if let Err(refusal) = self.check_body_locale(payee) {
            return refusal.into_response();
        }
        let msisdn = match self.check_msisdn(&msisdn) {
            Ok(msisdn) => msisdn,
            Err(refusal) => return refusal.into_response(),
        };
        let trigger = Trigger::of(&msisdn);
        let (record, hang) = {
            let mut state = self.state();
            if state.disbursements.contains_key(&id) {
                return esb_error(
                    "400",
                    Some("ESB000041"),
                    Some("DP00900001017"),
                    "Duplicate Transaction Id. To know the status of the actual transaction, please do transaction enquiry.",
                );
            }
            let (status, code) = match trigger {
                Trigger::Declined => (TxnStatus::Failed, "DP00900001013"),
                Trigger::InsufficientFunds => (TxnStatus::Failed, "DP00900001007"),
                Trigger::InvalidAccount => (TxnStatus::Failed, "DP00900001012"),
                Trigger::UnknownCode => (TxnStatus::Failed, UNDOCUMENTED_DISBURSEMENT_CODE),
                Trigger::NoAnswer => (TxnStatus::Ambiguous, "DP00900001014"),
                _ if state.balance < amount => (TxnStatus::Failed, "DP00900001007"),
                _ => (TxnStatus::Success, "DP00900001001"),
            };
            let (airtel_money_id, reference_id) = self.next_ids(&mut state);
            let success = status == TxnStatus::Success;
            if success {
                state.balance -= amount;
            }
            let record = Transaction {
                id: id.clone(),
                amount,
                status,
                reason_code: Some(code.to_owned()),
                message: Some(reason_text(code).to_owned()),
                airtel_money_id: success.then_some(airtel_money_id),
                reference_id: success.then_some(reference_id),
                refunded: false,
            };
            state.disbursements.insert(id.clone(), record.clone());
            let hang =
                trigger == Trigger::FirstRequestHangs && state.hung_numbers.insert(digits(&msisdn));
            (record, hang)
        };
        if record.status == TxnStatus::Ambiguous {
            self.settle_ambiguous_disbursement(id.clone());
        }
        if hang {
            tokio::time::sleep(self.config().hang_for).await;
        }
        let code = record.reason_code.as_deref().unwrap_or("DP00900001001");
        let status = match record.status {
            TxnStatus::Success => StatusBlock {
                response_code: Some(code),
                code: "200",
                success: true,
                result_code: Some("ESB000010"),
                message: "SUCCESS",
            },
            TxnStatus::Ambiguous | TxnStatus::InProgress => StatusBlock {
                response_code: Some(code),
                code: "200",
                success: false,
                result_code: Some("ESB000001"),
                message: reason_text(code),
            },
            TxnStatus::Failed => StatusBlock {
                response_code: Some(code),
                code: "200",
                success: false,
                result_code: Some("ESB000011"),
                message: reason_text(code),
            },
        };
        if v2 {
            answer(
                StatusCode::OK,
                Some(TransactionData {
                    transaction: TransactionView {
                        airtel_money_id: record.airtel_money_id.as_deref(),
                        id: &record.id,
                        message: None,
                        reference_id: record.reference_id.as_deref(),
                        status: record.status.code(),
                    },
                }),
                status,
            )
        } else {
            answer(
                StatusCode::OK,
                Some(TransactionData {
                    transaction: V1DisbursementView {
                        reference_id: record.reference_id.as_deref(),
                        airtel_money_id: record.airtel_money_id.as_deref(),
                        id: &record.id,
                    },
                }),
                status,
            )
        }
    }

    /// An ambiguous (timed out) disbursement fails after `3d`.
    fn settle_ambiguous_disbursement(&self, id: String) {
        let fake = self.clone();
        let wait = self.config().callback_delay * 3;
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let mut state = fake.state();
            if let Some(transaction) = state.disbursements.get_mut(&id)
                && transaction.status == TxnStatus::Ambiguous
            {
                transaction.status = TxnStatus::Failed;
                transaction.reason_code = Some("DP00900001005".into());
                transaction.message = Some(reason_text("DP00900001005").into());
            }
        });
    }

    // -- accounts -----------------------------------------------------------

    fn user_enquiry(&self, headers: &HeaderMap, msisdn: &str) -> Response {
        if let Err(refusal) = self.gate(headers) {
            return refusal.into_response();
        }
        let msisdn = match self.check_msisdn(msisdn.trim()) {
            Ok(msisdn) => msisdn,
            Err(refusal) => return refusal.into_response(),
        };
        if Trigger::of(&msisdn) == Trigger::InvalidAccount {
            return esb_error(
                "404",
                Some("ESB000011"),
                Some("DP02200000000"),
                "User enquiry is failed.",
            );
        }
        const FIRST: [&str; 10] = [
            "Wanjiku", "Otieno", "Akinyi", "Kiprop", "Njeri", "Mutua", "Achieng", "Kamau",
            "Chebet", "Omondi",
        ];
        const LAST: [&str; 10] = [
            "Mwangi",
            "Odhiambo",
            "Kariuki",
            "Wafula",
            "Njoroge",
            "Kipchumba",
            "Atieno",
            "Mutiso",
            "Wekesa",
            "Onyango",
        ];
        let hash = fingerprint(&msisdn);
        #[derive(Serialize)]
        struct Registration {
            status: &'static str,
        }
        #[derive(Serialize)]
        struct User {
            first_name: &'static str,
            grade: &'static str,
            is_barred: bool,
            is_pin_set: bool,
            last_name: &'static str,
            msisdn: u64,
            reg_status: &'static str,
            registration: Registration,
        }
        answer(
            StatusCode::OK,
            Some(User {
                first_name: FIRST[(hash % 10) as usize],
                grade: "SUBS",
                is_barred: false,
                is_pin_set: true,
                last_name: LAST[((hash / 10) % 10) as usize],
                msisdn: msisdn.parse().unwrap_or_default(),
                reg_status: "SUBS",
                registration: Registration { status: "SUBS" },
            }),
            StatusBlock {
                response_code: Some("DP02200000001"),
                code: "200",
                success: true,
                result_code: Some("ESB000010"),
                message: "SUCCESS",
            },
        )
    }

    fn balance(&self, headers: &HeaderMap) -> Response {
        if let Err(refusal) = self.gate(headers) {
            return refusal.into_response();
        }
        #[derive(Serialize)]
        struct Balance {
            balance: String,
            currency: String,
            account_status: &'static str,
        }
        let balance = self.state().balance;
        answer(
            StatusCode::OK,
            Some(Balance {
                balance: format_balance(balance),
                currency: self.config().currency.clone(),
                account_status: "ACTIVE",
            }),
            StatusBlock {
                response_code: Some("DP02100000001"),
                code: "200",
                success: true,
                result_code: Some("ESB000010"),
                message: "SUCCESS",
            },
        )
    }

    fn encryption_keys(&self, headers: &HeaderMap) -> Response {
        if let Err(refusal) = self.gate(headers) {
            return refusal.into_response();
        }
        #[derive(Serialize)]
        struct Key {
            key_id: u32,
            key: &'static str,
            valid_upto: String,
        }
        let valid_upto = (time::OffsetDateTime::now_utc() + time::Duration::days(30))
            .format(time::macros::format_description!(
                "[day]-[month]-[year] [hour]:[minute]:[second]"
            ))
            .unwrap_or_default();
        answer(
            StatusCode::OK,
            Some(Key {
                key_id: 100,
                key: ENCRYPTION_PUBLIC_KEY,
                valid_upto,
            }),
            StatusBlock {
                response_code: Some("DP02010001001"),
                code: "200",
                success: true,
                result_code: Some("ESB000010"),
                message: "Success",
            },
        )
    }
}

/// The collection's answer: the push was sent.
fn json_transaction_sent(id: &str) -> TransactionView<'_> {
    TransactionView {
        airtel_money_id: None,
        id,
        message: None,
        reference_id: None,
        status: "Success.",
    }
}

// ---------------------------------------------------------------------------
// Routing.

/// Records a request as it arrived, then passes it on.
async fn record(State(fake): State<AirtelFake>, request: Request, next: Next) -> Response {
    if request.uri().path().starts_with("/__fake/") {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 4 << 20).await else {
        return router_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "ROUTER003",
            "Request body too large",
        );
    };
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| parts.uri.path().to_owned());
    fake.state().requests.push(ReceivedRequest {
        method: parts.method.as_str().to_owned(),
        path,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    });
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

async fn issue_token(State(fake): State<AirtelFake>, body: Bytes) -> Response {
    fake.issue_token(&body)
}

async fn fake_expire_tokens(State(fake): State<AirtelFake>) -> Response {
    axum::Json(json!({"expired": fake.expire_all_tokens()})).into_response()
}

async fn fake_requests(State(fake): State<AirtelFake>) -> Response {
    axum::Json(fake.requests()).into_response()
}

async fn fake_callbacks(State(fake): State<AirtelFake>) -> Response {
    axum::Json(fake.callbacks_sent()).into_response()
}

async fn fake_callback_url(State(fake): State<AirtelFake>) -> Response {
    axum::Json(json!({"url": fake.state().callback_url})).into_response()
}

async fn fake_set_callback_url(State(fake): State<AirtelFake>, body: Bytes) -> Response {
    match serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|body| body.get("url").cloned())
    {
        Some(Value::String(url)) => fake.set_callback_url(&url),
        Some(Value::Null) => fake.set_callback_url(""),
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": "send {\"url\": \"http://…\"} or {\"url\": null}"})),
            )
                .into_response();
        }
    }
    fake_callback_url(State(fake)).await
}

async fn fake_callback_auth(State(fake): State<AirtelFake>, body: Bytes) -> Response {
    match serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|body| body.get("private_key").cloned())
    {
        Some(Value::String(key)) => fake.set_callback_private_key(Some(&key)),
        Some(Value::Null) => fake.set_callback_private_key(None),
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(
                    json!({"error": "send {\"private_key\": \"…\"} or {\"private_key\": null}"}),
                ),
            )
                .into_response();
        }
    }
    let authenticated = fake.state().callback_key.is_some();
    axum::Json(json!({"authenticated": authenticated})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> reqwest::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::new()
    }

    fn quick() -> AirtelFakeConfig {
        AirtelFakeConfig {
            callback_delay: Duration::from_millis(40),
            hang_for: Duration::from_millis(600),
            ..AirtelFakeConfig::default()
        }
    }

    /// A fresh transaction id.
    fn new_id() -> String {
        Uuid::now_v7().simple().to_string()
    }

    /// A running fake and a client for it.
    struct Env {
        fake: AirtelFake,
        base: String,
        http: reqwest::Client,
    }

    impl Env {
        async fn start(config: AirtelFakeConfig) -> Env {
            let fake = AirtelFake::new(config);
            let base = fake.spawn().await.expect("the fake binds");
            Env {
                fake,
                base,
                http: client(),
            }
        }

        async fn token_response(&self, body: Value) -> reqwest::Response {
            self.http
                .post(format!("{}/auth/oauth2/token", self.base))
                .header("Accept", "*/*")
                .json(&body)
                .send()
                .await
                .unwrap()
        }

        async fn token(&self) -> String {
            let config = self.fake.config();
            let answer = self
                .token_response(json!({
                    "client_id": config.client_id,
                    "client_secret": config.client_secret,
                    "grant_type": "client_credentials",
                }))
                .await;
            assert_eq!(answer.status(), 200);
            let body: Value = answer.json().await.unwrap();
            body["access_token"].as_str().unwrap().to_owned()
        }

        fn authed(
            &self,
            method: reqwest::Method,
            path: &str,
            token: &str,
        ) -> reqwest::RequestBuilder {
            self.http
                .request(method, format!("{}{path}", self.base))
                .bearer_auth(token)
                .header("Accept", "*/*")
                .header("X-Country", "KE")
                .header("X-Currency", "KES")
        }

        /// POSTs a USSD push; its id, HTTP status and body.
        async fn push(&self, token: &str, msisdn: &str) -> (String, u16, Value) {
            let id = new_id();
            let (status, body) = self
                .push_with(token, &payment_body(&id, msisdn, json!(1000)))
                .await;
            (id, status, body)
        }

        async fn push_with(&self, token: &str, body: &Value) -> (u16, Value) {
            let answer = self
                .authed(reqwest::Method::POST, "/merchant/v2/payments/", token)
                .json(body)
                .send()
                .await
                .unwrap();
            let status = answer.status().as_u16();
            (status, answer.json().await.unwrap_or(Value::Null))
        }

        async fn get(&self, token: &str, path: &str) -> (u16, Value) {
            let answer = self
                .authed(reqwest::Method::GET, path, token)
                .send()
                .await
                .unwrap();
            let status = answer.status().as_u16();
            (status, answer.json().await.unwrap_or(Value::Null))
        }

        async fn post(&self, token: &str, path: &str, body: &Value) -> (u16, Value) {
            let answer = self
                .authed(reqwest::Method::POST, path, token)
                .json(body)
                .send()
                .await
                .unwrap();
            let status = answer.status().as_u16();
            (status, answer.json().await.unwrap_or(Value::Null))
        }

        async fn enquiry(&self, token: &str, id: &str) -> Value {
            let (status, body) = self
                .get(token, &format!("/standard/v1/payments/{id}"))
                .await;
            assert_eq!(status, 200, "{body}");
            body
        }

        /// Polls until the collection is no longer TIP.
        async fn settled(&self, token: &str, id: &str) -> Value {
            for _ in 0..300 {
                let body = self.enquiry(token, id).await;
                if body["data"]["transaction"]["status"] != "TIP" {
                    return body;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("{id} stayed TIP");
        }
    }

    fn payment_body(id: &str, msisdn: &str, amount: Value) -> Value {
        json!({
            "reference": "Order 17",
            "subscriber": {"country": "KE", "currency": "KES", "msisdn": msisdn},
            "transaction": {"amount": amount, "country": "KE", "currency": "KES", "id": id},
        })
    }

    fn disbursement_body(id: &str, msisdn: &str, pin: &str) -> Value {
        json!({
            "payee": {"msisdn": msisdn, "wallet_type": "NORMAL"},
            "reference": "Payout 9",
            "pin": pin,
            "transaction": {"amount": 500, "id": id, "type": "B2C"},
        })
    }

    use crate::serving::receiver::Received;

    async fn receiver() -> (String, Received) {
        crate::serving::receiver::spawn("/airtel/callback").await
    }

    async fn wait_for_callbacks(fake: &AirtelFake, count: usize) -> Vec<SentCallback> {
        for _ in 0..300 {
            let sent = fake.callbacks_sent();
            if sent.len() >= count {
                return sent;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("fewer than {count} callbacks were sent");
    }

    fn airtel_money_id_shaped(id: &str) -> bool {
        // MP230107.1738.J04514
        let parts: Vec<&str> = id.split('.').collect();
        parts.len() == 3
            && parts[0].len() == 8
            && parts[0].starts_with("MP")
            && parts[0][2..].chars().all(|c| c.is_ascii_digit())
            && parts[1].len() == 4
            && parts[1].chars().all(|c| c.is_ascii_digit())
            && parts[2].len() == 6
            && parts[2].starts_with(|c: char| c.is_ascii_uppercase())
    }

    #[tokio::test]
    async fn a_token_is_issued_for_the_application_only() {
        let env = Env::start(quick()).await;
        let config = env.fake.config().clone();
        let answer = env
            .token_response(json!({
                "client_id": config.client_id,
                "client_secret": config.client_secret,
                "grant_type": "client_credentials",
            }))
            .await;
        assert_eq!(answer.status(), 200);
        let text = answer.text().await.unwrap();
        let body: Value = serde_json::from_str(&text).unwrap();
        let token = body["access_token"].as_str().unwrap();
        assert_eq!(token.len(), 32);
        assert!(token.chars().all(|c| c.is_ascii_alphanumeric()));
        assert!(
            text.ends_with(r#","expires_in":"180","token_type":"bearer"}"#),
            "expires_in is a string: {text}"
        );
        assert_eq!(env.fake.tokens_issued(), 1);

        let wrong = env
            .token_response(json!({
                "client_id": config.client_id,
                "client_secret": "not-the-secret",
                "grant_type": "client_credentials",
            }))
            .await;
        assert_eq!(wrong.status(), 400);
        assert_eq!(
            wrong.text().await.unwrap(),
            r#"{"error_description":"Invalid client authentication","error":"invalid_client"}"#
        );
        let grant = env
            .token_response(json!({
                "client_id": config.client_id,
                "client_secret": config.client_secret,
                "grant_type": "password",
            }))
            .await;
        assert_eq!(grant.status(), 400);
        assert_eq!(
            grant.json::<Value>().await.unwrap()["error"],
            "unsupported_grant_type"
        );
        // A form body is not what the platform takes.
        let form = env
            .http
            .post(format!("{}/auth/oauth2/token", env.base))
            .form(&[
                ("client_id", config.client_id.as_str()),
                ("client_secret", config.client_secret.as_str()),
                ("grant_type", "client_credentials"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(form.status(), 400);
        assert_eq!(env.fake.tokens_issued(), 1);
    }

    #[tokio::test]
    async fn a_push_succeeds_with_a_callback_and_an_enquiry() {
        let env = Env::start(quick()).await;
        let (callback, received) = receiver().await;
        env.fake.set_callback_url(&callback);
        let token = env.token().await;
        let id = new_id();
        let answer = env
            .authed(reqwest::Method::POST, "/merchant/v2/payments/", &token)
            .json(&payment_body(&id, "712345678", json!(1000)))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(
            answer.text().await.unwrap(),
            format!(
                r#"{{"data":{{"transaction":{{"id":"{id}","status":"Success."}}}},"status":{{"response_code":"DP00800001006","code":"200","success":true,"result_code":"ESB000010","message":"Success."}}}}"#
            )
        );

        let pending = env.enquiry(&token, &id).await;
        assert_eq!(
            pending["data"]["transaction"],
            json!({"id": id, "status": "TIP"}),
            "a TIP has neither airtel_money_id nor message"
        );
        assert_eq!(pending["status"]["response_code"], "DP00800001006");

        let done = env.settled(&token, &id).await;
        let transaction = &done["data"]["transaction"];
        assert_eq!(transaction["status"], "TS");
        assert_eq!(transaction["id"], id.as_str());
        assert_eq!(
            transaction["message"],
            "Your transaction has been successfully processed"
        );
        let airtel_money_id = transaction["airtel_money_id"].as_str().unwrap();
        assert!(airtel_money_id_shaped(airtel_money_id), "{airtel_money_id}");
        assert_eq!(
            done["status"],
            json!({"response_code": "DP00800001006", "code": "200", "success": true, "result_code": "ESB000010", "message": "SUCCESS"}),
            "a TS's enquiry still says DP00800001006, as the platform does"
        );

        let sent = wait_for_callbacks(&env.fake, 1).await;
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].method, "POST");
        assert_eq!(sent[0].url, callback);
        assert_eq!(sent[0].status, Some(200));
        assert_eq!(
            sent[0].body,
            format!(
                r#"{{"transaction":{{"id":"{id}","message":"Paid KES 1,000 to MALIPO FAKE MERCHANT Charge KES 0, Trans ID {airtel_money_id}.","status_code":"TS","airtel_money_id":"{airtel_money_id}"}}}}"#
            )
        );
        let received = received.lock().unwrap().clone();
        assert_eq!(received.len(), 1);
        let (method, headers, body) = &received[0];
        assert_eq!(method, "POST");
        assert_eq!(body, &sent[0].body);
        assert_eq!(headers["content-type"], "application/json");
        assert!(
            sent[0].json().get("hash").is_none(),
            "unauthenticated by default"
        );

        // The fake recorded what it was sent.
        let requests = env.fake.requests();
        let post = requests
            .iter()
            .find(|r| r.method == "POST" && r.path == "/merchant/v2/payments/")
            .unwrap();
        assert_eq!(post.header("X-Country"), Some("KE"));
        assert_eq!(post.json()["transaction"]["id"], id.as_str());

        // v1 of the push is still served.
        let (status, body) = env
            .post(
                &token,
                "/merchant/v1/payments/",
                &payment_body(&new_id(), "712345678", json!(50)),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(body["status"]["success"], true);
    }

    #[tokio::test]
    async fn each_failure_has_its_code_and_a_tf_callback() {
        let env = Env::start(AirtelFakeConfig {
            callback_delay: Duration::from_millis(100),
            ..quick()
        })
        .await;
        let (callback, _received) = receiver().await;
        env.fake.set_callback_url(&callback);
        let token = env.token().await;
        let cases = [
            ("712340001", "DP00800001008", "The transaction was refused."),
            (
                "712340002",
                "DP00800001007",
                "User wallet does not have enough money to cover the payable amount.",
            ),
            (
                "712340003",
                "DP00800001024",
                "The transaction was timed out.",
            ),
            (
                "712340009",
                UNDOCUMENTED_COLLECTION_CODE,
                "Transaction could not be completed.",
            ),
        ];
        let mut ids = Vec::new();
        for (msisdn, _, _) in cases {
            let (id, status, body) = env.push(&token, msisdn).await;
            assert_eq!(status, 200);
            assert_eq!(body["status"]["success"], true, "every push is sent");
            ids.push(id);
        }
        // The unanswered prompt is still TIP when the refusal has failed.
        env.settled(&token, &ids[0]).await;
        let waiting = env.enquiry(&token, &ids[2]).await;
        assert_eq!(waiting["data"]["transaction"]["status"], "TIP");

        for ((msisdn, code, message), id) in cases.iter().zip(&ids) {
            let done = env.settled(&token, id).await;
            let transaction = &done["data"]["transaction"];
            assert_eq!(transaction["status"], "TF", "{msisdn}");
            assert_eq!(transaction["message"], *message, "{msisdn}");
            assert!(transaction["airtel_money_id"].is_string(), "{msisdn}");
            assert_eq!(done["status"]["response_code"], *code, "{msisdn}");
            assert_eq!(
                done["status"]["success"], true,
                "the enquiry itself succeeded: {msisdn}"
            );
        }
        let sent = wait_for_callbacks(&env.fake, 4).await;
        for ((msisdn, _, message), id) in cases.iter().zip(&ids) {
            let callback = sent
                .iter()
                .map(SentCallback::json)
                .find(|body| body["transaction"]["id"] == id.as_str())
                .unwrap_or_else(|| panic!("no callback for {msisdn}"));
            assert_eq!(callback["transaction"]["status_code"], "TF");
            assert_eq!(callback["transaction"]["message"], *message);
        }
    }

    #[tokio::test]
    async fn callbacks_can_be_lost_doubled_or_slow() {
        let env = Env::start(AirtelFakeConfig {
            callback_delay: Duration::from_millis(50),
            ..quick()
        })
        .await;
        let (callback, _received) = receiver().await;
        env.fake.set_callback_url(&callback);
        let token = env.token().await;
        let (lost, _, _) = env.push(&token, "712340004").await;
        let (twice, _, _) = env.push(&token, "712340005").await;
        let (slow, _, _) = env.push(&token, "712340006").await;
        for id in [&lost, &twice, &slow] {
            let done = env.settled(&token, id).await;
            assert_eq!(done["data"]["transaction"]["status"], "TS");
        }
        // Settled, but the slow one's callback is not there yet.
        let early = wait_for_callbacks(&env.fake, 2).await;
        let ids_of = |sent: &[SentCallback]| -> Vec<String> {
            sent.iter()
                .map(|c| c.json()["transaction"]["id"].as_str().unwrap().to_owned())
                .collect()
        };
        assert!(!ids_of(&early).contains(&slow));
        let sent = wait_for_callbacks(&env.fake, 3).await;
        let ids = ids_of(&sent);
        assert_eq!(ids.iter().filter(|id| **id == twice).count(), 2);
        assert_eq!(ids.iter().filter(|id| **id == slow).count(), 1);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let all = ids_of(&env.fake.callbacks_sent());
        assert!(!all.contains(&lost), "the lost callback is never sent");
        assert_eq!(all.len(), 3);
        let doubled: Vec<String> = env
            .fake
            .callbacks_sent()
            .into_iter()
            .filter(|c| c.json()["transaction"]["id"] == twice.as_str())
            .map(|c| c.body)
            .collect();
        assert_eq!(doubled[0], doubled[1], "the same body twice");
    }

    #[tokio::test]
    async fn an_unknown_account_is_refused_at_once() {
        let env = Env::start(quick()).await;
        let (callback, _received) = receiver().await;
        env.fake.set_callback_url(&callback);
        let token = env.token().await;
        let id = new_id();
        let answer = env
            .authed(reqwest::Method::POST, "/merchant/v2/payments/", &token)
            .json(&payment_body(&id, "712340008", json!(1000)))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "a business refusal is HTTP 200");
        assert_eq!(
            answer.text().await.unwrap(),
            r#"{"status":{"response_code":"DP00800001005","code":"400","success":false,"message":"Msisdn Not Found"}}"#
        );
        // Nothing was recorded: the enquiry does not find it.
        let (status, body) = env
            .get(&token, &format!("/standard/v1/payments/{id}"))
            .await;
        assert_eq!(status, 200);
        assert_eq!(
            body,
            json!({"status": {"response_code": "DP00800001025", "code": "404", "success": false, "result_code": "ESB000045", "message": "No Transaction Found With Provided Transaction Id."}})
        );
        // And the KYC enquiry does not know the number.
        let (status, user) = env.get(&token, "/standard/v1/users/712340008").await;
        assert_eq!(status, 200);
        assert_eq!(user["status"]["code"], "404");
        assert_eq!(user["status"]["success"], false);
        assert_eq!(user["status"]["response_code"], "DP02200000000");
        assert!(user.get("data").is_none());
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(env.fake.callbacks_sent().is_empty());
    }

    #[tokio::test]
    async fn a_reused_transaction_id_is_a_duplicate() {
        let env = Env::start(quick()).await;
        let token = env.token().await;
        let (id, status, _) = env.push(&token, "712345678").await;
        assert_eq!(status, 200);
        let (status, again) = env
            .push_with(&token, &payment_body(&id, "712345679", json!(20)))
            .await;
        assert_eq!(status, 200);
        assert_eq!(
            again,
            json!({"status": {"code": "400", "success": false, "result_code": "ESB000041", "message": "Transaction with External Transaction ID already exists. Please try again with correct request."}})
        );
        // The first one goes on.
        let done = env.settled(&token, &id).await;
        assert_eq!(done["data"]["transaction"]["status"], "TS");

        // Likewise for a disbursement.
        let payout = new_id();
        let body = disbursement_body(&payout, "712345678", "1234");
        let (_, first) = env.post(&token, "/standard/v1/disbursements/", &body).await;
        assert_eq!(first["status"]["success"], true);
        let (status, second) = env.post(&token, "/standard/v1/disbursements/", &body).await;
        assert_eq!(status, 200);
        assert_eq!(second["status"]["response_code"], "DP00900001017");
        assert_eq!(second["status"]["result_code"], "ESB000041");
        assert_eq!(second["status"]["success"], false);
    }

    #[tokio::test]
    async fn tokens_expire_and_bad_ones_are_refused() {
        let env = Env::start(quick()).await;
        let token = env.token().await;
        let (status, _) = env.get(&token, "/standard/v1/users/balance").await;
        assert_eq!(status, 200);

        env.fake.expire_tokens();
        let (status, body) = env.get(&token, "/standard/v1/users/balance").await;
        assert_eq!(status, 401);
        assert_eq!(
            body,
            json!({"error_description": "Invalid access token", "error": "invalid_token"})
        );
        let fresh = env.token().await;
        let (status, _) = env.get(&fresh, "/standard/v1/users/balance").await;
        assert_eq!(status, 200);
        assert_eq!(env.fake.tokens_issued(), 2);

        // Over HTTP too.
        let expired: Value = env
            .http
            .post(format!("{}/__fake/expire-tokens", env.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(expired, json!({"expired": 2}));
        let (status, _) = env.get(&fresh, "/standard/v1/users/balance").await;
        assert_eq!(status, 401);

        // A token lives token_lifetime.
        let short = Env::start(AirtelFakeConfig {
            token_lifetime: Duration::from_millis(1500),
            ..quick()
        })
        .await;
        let token = short.token().await;
        let (status, _) = short.get(&token, "/standard/v1/users/balance").await;
        assert_eq!(status, 200);
        tokio::time::sleep(Duration::from_millis(1600)).await;
        let (status, _) = short.get(&token, "/standard/v1/users/balance").await;
        assert_eq!(status, 401);

        // No token at all.
        let none = env
            .http
            .get(format!("{}/standard/v1/users/balance", env.base))
            .header("X-Country", "KE")
            .header("X-Currency", "KES")
            .send()
            .await
            .unwrap();
        assert_eq!(none.status(), 401);
    }

    #[tokio::test]
    async fn country_currency_and_msisdn_are_the_applications() {
        let env = Env::start(quick()).await;
        let token = env.token().await;
        let body = payment_body(&new_id(), "712345678", json!(1000));
        let send = |country: Option<&'static str>, currency: Option<&'static str>| {
            let mut request = env
                .http
                .post(format!("{}/merchant/v2/payments/", env.base))
                .bearer_auth(&token)
                .json(&body);
            if let Some(country) = country {
                request = request.header("X-Country", country);
            }
            if let Some(currency) = currency {
                request = request.header("X-Currency", currency);
            }
            request.send()
        };
        for (country, currency, status, result_code) in [
            (None, Some("KES"), 400, "ROUTER003"),
            (Some("XX"), Some("KES"), 400, "ROUTER006"),
            (Some("UG"), Some("UGX"), 403, "ROUTER007"),
            (Some("KE"), None, 400, "ROUTER119"),
            (Some("KE"), Some("UGX"), 400, "ROUTER112"),
        ] {
            let answer = send(country, currency).await.unwrap();
            assert_eq!(answer.status(), status, "{country:?} {currency:?}");
            let answer: Value = answer.json().await.unwrap();
            assert_eq!(answer["status"]["result_code"], result_code);
            assert_eq!(answer["status"]["success"], false);
            assert_eq!(answer["status"]["code"], status.to_string());
        }

        let mut body_currency = payment_body(&new_id(), "712345678", json!(1000));
        body_currency["transaction"]["currency"] = json!("UGX");
        let (_, answer) = env.push_with(&token, &body_currency).await;
        assert_eq!(answer["status"]["result_code"], "ESB000035");
        for msisdn in ["254712345678", "0712345678", "71234567"] {
            let (status, answer) = env
                .push_with(&token, &payment_body(&new_id(), msisdn, json!(1000)))
                .await;
            assert_eq!(status, 200, "{msisdn}");
            assert_eq!(answer["status"]["result_code"], "ESB000033", "{msisdn}");
            assert_eq!(
                answer["status"]["message"],
                "Invalid MSISDN Length. MSISDN Length should be 9"
            );
        }
        let (_, plus) = env
            .push_with(&token, &payment_body(&new_id(), "+712345678", json!(1000)))
            .await;
        assert_eq!(plus["status"]["result_code"], "ESB000008");
        // A number for the MSISDN and a string for the amount are taken.
        let mut lenient = payment_body(&new_id(), "x", json!("250.50"));
        lenient["subscriber"]["msisdn"] = json!(712345678);
        let (_, answer) = env.push_with(&token, &lenient).await;
        assert_eq!(answer["status"]["success"], true, "{answer}");
        for amount in [json!(0), json!(-5), json!("ten"), json!(1.234)] {
            let (_, answer) = env
                .push_with(
                    &token,
                    &payment_body(&new_id(), "712345678", amount.clone()),
                )
                .await;
            assert_eq!(answer["status"]["result_code"], "ESB000008", "{amount}");
        }
    }

    #[tokio::test]
    async fn a_successful_payment_is_refunded_once() {
        let env = Env::start(quick()).await;
        let token = env.token().await;
        let (id, _, _) = env.push(&token, "712345678").await;
        let done = env.settled(&token, &id).await;
        let airtel_money_id = done["data"]["transaction"]["airtel_money_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (_, before) = env.get(&token, "/standard/v1/users/balance").await;
        assert_eq!(before["data"]["balance"], "10001000.00");

        let refund = json!({"transaction": {"airtel_money_id": airtel_money_id}});
        let (status, body) = env
            .post(&token, "/standard/v1/payments/refund", &refund)
            .await;
        assert_eq!(status, 200);
        assert_eq!(
            body,
            json!({
                "data": {"transaction": {"airtel_money_id": airtel_money_id, "status": "SUCCESS"}},
                "status": {"response_code": "DP00800001006", "code": "200", "success": true, "result_code": "ESB000010", "message": "SUCCESS"},
            })
        );
        let (_, after) = env.get(&token, "/standard/v1/users/balance").await;
        assert_eq!(after["data"]["balance"], "10000000.00");

        let (_, again) = env
            .post(&token, "/standard/v2/payments/refund", &refund)
            .await;
        assert_eq!(again["status"]["success"], false);
        assert_eq!(again["status"]["result_code"], "ESB000011");

        let unknown = json!({"transaction": {"airtel_money_id": "MP000000.0000.X00000"}});
        let (_, body) = env
            .post(&token, "/standard/v1/payments/refund", &unknown)
            .await;
        assert_eq!(body["status"]["result_code"], "ESB000045");
        assert_eq!(body["status"]["code"], "404");

        // A failed payment cannot be refunded.
        let (failed, _, _) = env.push(&token, "712340002").await;
        let done = env.settled(&token, &failed).await;
        let failed_id = done["data"]["transaction"]["airtel_money_id"].clone();
        let (_, body) = env
            .post(
                &token,
                "/standard/v1/payments/refund",
                &json!({"transaction": {"airtel_money_id": failed_id}}),
            )
            .await;
        assert_eq!(body["status"]["success"], false);
        assert_eq!(body["status"]["result_code"], "ESB000011");
    }

    #[tokio::test]
    async fn disbursements_succeed_or_fail_at_once() {
        let env = Env::start(quick()).await;
        let token = env.token().await;
        let id = new_id();
        let answer = env
            .authed(reqwest::Method::POST, "/standard/v1/disbursements/", &token)
            .json(&disbursement_body(&id, "712345678", "1234"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        let text = answer.text().await.unwrap();
        let body: Value = serde_json::from_str(&text).unwrap();
        let transaction = &body["data"]["transaction"];
        assert!(
            text.starts_with(r#"{"data":{"transaction":{"reference_id":""#),
            "{text}"
        );
        assert_eq!(transaction["id"], id.as_str());
        assert!(airtel_money_id_shaped(
            transaction["airtel_money_id"].as_str().unwrap()
        ));
        assert!(transaction.get("status").is_none(), "v1 has no status");
        assert_eq!(
            body["status"],
            json!({"response_code": "DP00900001001", "code": "200", "success": true, "result_code": "ESB000010", "message": "SUCCESS"})
        );
        let (_, enquiry) = env
            .get(&token, &format!("/standard/v1/disbursements/{id}"))
            .await;
        assert_eq!(enquiry["data"]["transaction"]["status"], "TS");
        assert_eq!(enquiry["status"]["response_code"], "DP00900001001");

        // v2, with an encrypted PIN (base64): taken as given.
        let encrypted = base64::engine::general_purpose::STANDARD.encode([7u8; 128]);
        let v2 = new_id();
        let (status, body) = env
            .post(
                &token,
                "/standard/v2/disbursements/",
                &disbursement_body(&v2, "712345670", &encrypted),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(body["data"]["transaction"]["status"], "TS");
        assert!(body["data"]["transaction"]["reference_id"].is_string());
        let (_, enquiry) = env
            .get(
                &token,
                &format!("/standard/v2/disbursements/{v2}?transactionType=B2C"),
            )
            .await;
        assert_eq!(enquiry["data"]["transaction"]["status"], "TS");

        for (msisdn, code) in [
            ("712340001", "DP00900001013"),
            ("712340002", "DP00900001007"),
            ("712340008", "DP00900001012"),
            ("712340009", UNDOCUMENTED_DISBURSEMENT_CODE),
        ] {
            let id = new_id();
            let (status, body) = env
                .post(
                    &token,
                    "/standard/v2/disbursements/",
                    &disbursement_body(&id, msisdn, "1234"),
                )
                .await;
            assert_eq!(status, 200, "{msisdn}");
            assert_eq!(body["data"]["transaction"]["status"], "TF", "{msisdn}");
            assert_eq!(body["status"]["response_code"], code, "{msisdn}");
            assert_eq!(body["status"]["success"], false, "{msisdn}");
            let (_, enquiry) = env
                .get(&token, &format!("/standard/v1/disbursements/{id}"))
                .await;
            assert_eq!(enquiry["data"]["transaction"]["status"], "TF");
            assert_eq!(enquiry["status"]["response_code"], code);
        }

        // The balance went down by the two payouts.
        let (_, balance) = env.get(&token, "/standard/v1/users/balance").await;
        assert_eq!(
            balance["data"],
            json!({"balance": "9999000.00", "currency": "KES", "account_status": "ACTIVE"})
        );
        // No callbacks for disbursements.
        assert!(env.fake.callbacks_sent().is_empty());
    }

    #[tokio::test]
    async fn disbursement_pins_are_checked_as_far_as_the_fake_can() {
        let env = Env::start(quick()).await;
        let token = env.token().await;
        for (pin, status, result_code) in [
            ("9999", 400, "ROUTER115"),
            ("not base64!", 400, "ROUTER116"),
        ] {
            let (code, body) = env
                .post(
                    &token,
                    "/standard/v1/disbursements/",
                    &disbursement_body(&new_id(), "712345678", pin),
                )
                .await;
            assert_eq!(code, status, "{pin}");
            assert_eq!(body["status"]["result_code"], result_code, "{pin}");
        }
        let mut no_pin = disbursement_body(&new_id(), "712345678", "1234");
        no_pin.as_object_mut().unwrap().remove("pin");
        let (code, body) = env
            .post(&token, "/standard/v1/disbursements/", &no_pin)
            .await;
        assert_eq!(code, 400);
        assert_eq!(body["status"]["result_code"], "ROUTER003");
    }

    #[tokio::test]
    async fn a_timed_out_disbursement_is_ambiguous_then_fails() {
        let env = Env::start(quick()).await;
        let token = env.token().await;
        let id = new_id();
        let (_, body) = env
            .post(
                &token,
                "/standard/v2/disbursements/",
                &disbursement_body(&id, "712340003", "1234"),
            )
            .await;
        assert_eq!(body["data"]["transaction"]["status"], "TA");
        assert_eq!(body["status"]["response_code"], "DP00900001014");
        let (_, enquiry) = env
            .get(&token, &format!("/standard/v1/disbursements/{id}"))
            .await;
        assert_eq!(enquiry["data"]["transaction"]["status"], "TA");
        assert_eq!(enquiry["status"]["response_code"], "DP00900001000");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (_, enquiry) = env
            .get(&token, &format!("/standard/v1/disbursements/{id}"))
            .await;
        assert_eq!(enquiry["data"]["transaction"]["status"], "TF");
        assert_eq!(enquiry["status"]["response_code"], "DP00900001005");
        let (_, unknown) = env
            .get(&token, &format!("/standard/v1/disbursements/{}", new_id()))
            .await;
        assert_eq!(unknown["status"]["response_code"], "DP00900001015");
    }

    #[tokio::test]
    async fn the_user_enquiry_names_the_subscriber() {
        let env = Env::start(quick()).await;
        let token = env.token().await;
        let (status, body) = env.get(&token, "/standard/v1/users/712345678").await;
        assert_eq!(status, 200);
        let data = &body["data"];
        assert!(data["first_name"].is_string() && data["last_name"].is_string());
        assert_eq!(data["msisdn"], json!(712345678), "a JSON number");
        assert_eq!(data["is_barred"], false);
        assert_eq!(data["is_pin_set"], true);
        assert_eq!(data["grade"], "SUBS");
        assert_eq!(data["registration"], json!({"status": "SUBS"}));
        assert_eq!(body["status"]["response_code"], "DP02200000001");
        let (_, again) = env.get(&token, "/standard/v1/users/712345678").await;
        assert_eq!(body, again, "the same number, the same person");
        let (_, prefixed) = env.get(&token, "/standard/v1/users/254712345678").await;
        assert_eq!(prefixed["status"]["result_code"], "ESB000033");
    }

    #[tokio::test]
    async fn the_first_request_for_a_slow_number_hangs_but_lands() {
        let env = Env::start(quick()).await;
        let token = env.token().await;
        let id = new_id();
        let body = payment_body(&id, "712340007", json!(1000));
        let impatient = env
            .authed(reqwest::Method::POST, "/merchant/v2/payments/", &token)
            .timeout(Duration::from_millis(150))
            .json(&body)
            .send()
            .await;
        assert!(impatient.unwrap_err().is_timeout());
        // It landed: a retry is a duplicate, and the enquiry finds it.
        let (_, retry) = env.push_with(&token, &body).await;
        assert_eq!(retry["status"]["result_code"], "ESB000041");
        let done = env.settled(&token, &id).await;
        assert_eq!(done["data"]["transaction"]["status"], "TS");
        // A new push for the same number is answered at once.
        let started = Instant::now();
        let (_, status, _) = env.push(&token, "712340007").await;
        assert_eq!(status, 200);
        assert!(started.elapsed() < Duration::from_millis(500));
    }

    #[tokio::test]
    async fn authenticated_callbacks_carry_an_hmac_of_the_transaction() {
        let env = Env::start(quick()).await;
        let (callback, received) = receiver().await;
        env.fake.set_callback_url(&callback);
        env.fake
            .set_callback_private_key(Some("callback-private-key"));
        let token = env.token().await;
        let (id, _, _) = env.push(&token, "712345678").await;
        let sent = wait_for_callbacks(&env.fake, 1).await;
        let body = &sent[0].body;
        let value = sent[0].json();
        assert_eq!(value["transaction"]["id"], id.as_str());
        // The hash is over the transaction object exactly as sent.
        let start = body.find(r#""transaction":"#).unwrap() + r#""transaction":"#.len();
        let end = body.find(r#","hash":"#).unwrap();
        let signed = &body[start..end];
        let airtel_money_id = value["transaction"]["airtel_money_id"].as_str().unwrap();
        let message = value["transaction"]["message"].as_str().unwrap();
        assert_eq!(
            signed,
            format!(
                r#"{{"id":"{id}","message":"{message}","status_code":"TS","airtel_money_id":"{airtel_money_id}"}}"#
            ),
            "compact, in the documented order"
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(b"callback-private-key").unwrap();
        mac.update(signed.as_bytes());
        let expected =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(value["hash"], expected);
        assert_eq!(received.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn message_signing_headers_and_the_encryption_key() {
        let env = Env::start(quick()).await;
        let token = env.token().await;
        let (status, keys) = env.get(&token, "/v1/rsa/encryption-keys").await;
        assert_eq!(status, 200);
        assert_eq!(keys["data"]["key"], ENCRYPTION_PUBLIC_KEY);
        assert_eq!(keys["status"]["response_code"], "DP02010001001");
        let der = base64::engine::general_purpose::STANDARD
            .decode(ENCRYPTION_PUBLIC_KEY)
            .unwrap();
        assert_eq!(der.len(), 162, "a 1024-bit RSA SubjectPublicKeyInfo");

        let body = payment_body(&new_id(), "712345678", json!(1000));
        let signed = env
            .authed(reqwest::Method::POST, "/merchant/v2/payments/", &token)
            .header("x-signature", "MGspQUJDRA==")
            .header("x-key", "RFZaQ0VGRw==")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(signed.status(), 200);
        let half = env
            .authed(reqwest::Method::POST, "/merchant/v2/payments/", &token)
            .header("x-signature", "MGspQUJDRA==")
            .json(&payment_body(&new_id(), "712345678", json!(1000)))
            .send()
            .await
            .unwrap();
        assert_eq!(half.status(), 403);
        let half: Value = half.json().await.unwrap();
        assert_eq!(half["status"]["response_code"], "DP00800001026");
    }

    #[tokio::test]
    async fn the_controls_answer_over_http() {
        let env = Env::start(quick()).await;
        let (callback, _received) = receiver().await;
        let url: Value = env
            .http
            .post(format!("{}/__fake/callback-url", env.base))
            .json(&json!({"url": callback}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(url, json!({"url": callback}));
        let token = env.token().await;
        let (id, _, _) = env.push(&token, "712345678").await;
        env.settled(&token, &id).await;
        wait_for_callbacks(&env.fake, 1).await;

        let requests: Vec<ReceivedRequest> = env
            .http
            .get(format!("{}/__fake/requests", env.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(requests, env.fake.requests());
        assert!(requests.iter().all(|r| !r.path.starts_with("/__fake")));
        assert_eq!(requests[0].path, "/auth/oauth2/token");

        let callbacks: Vec<SentCallback> = env
            .http
            .get(format!("{}/__fake/callbacks", env.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(callbacks, env.fake.callbacks_sent());
        assert_eq!(callbacks.len(), 1);

        let auth: Value = env
            .http
            .post(format!("{}/__fake/callback-auth", env.base))
            .json(&json!({"private_key": "k"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(auth, json!({"authenticated": true}));
        let cleared: Value = env
            .http
            .post(format!("{}/__fake/callback-url", env.base))
            .json(&json!({"url": null}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(cleared, json!({"url": null}));
        // With no URL registered, nothing is sent.
        let (id, _, _) = env.push(&token, "712345678").await;
        env.settled(&token, &id).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(env.fake.callbacks_sent().len(), 1);

        let unknown = env
            .http
            .get(format!("{}/standard/v9/nothing", env.base))
            .send()
            .await
            .unwrap();
        assert_eq!(unknown.status(), 404);
    }

    #[test]
    fn amounts_parse_and_format() {
        assert_eq!(parse_amount("1000"), Some(1_000_000_000));
        assert_eq!(parse_amount("10.5"), Some(10_500_000));
        assert_eq!(parse_amount("10.50"), Some(10_500_000));
        assert_eq!(parse_amount("10.0"), Some(10_000_000));
        assert_eq!(parse_amount("0"), None);
        assert_eq!(parse_amount("-1"), None);
        assert_eq!(parse_amount("1.234"), None);
        assert_eq!(parse_amount("1e3"), None);
        assert_eq!(format_amount(1_000_000_000), "1,000");
        assert_eq!(format_amount(1_234_567_500_000), "1,234,567.50");
        assert_eq!(format_amount(5_000_000), "5");
        assert_eq!(format_balance(10_001_000_000_000), "10001000.00");
    }
}
