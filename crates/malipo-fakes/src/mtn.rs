//! A fake of the MTN MoMo Open API (momodeveloper.mtn.com): the sandbox
//! provisioning API, the Collection and Disbursement products' tokens,
//! request-to-pay, transfers, status queries, account holders and
//! balances, with the callbacks the wallet platform sends. It is a real
//! HTTP server: [`MtnFake::spawn`] binds a port on 127.0.0.1.
//!
//! # What answers what
//!
//! Every request first passes the API gateway (Azure API Management), as
//! on the real platform: an unknown route is `404
//! {"statusCode":404,"message":"Resource not found"}`; a missing or wrong
//! `Ocp-Apim-Subscription-Key` (header, or `subscription-key` query
//! parameter) is `401 {"statusCode":401,"message":"Access denied due to
//! invalid subscription key. …"}` (APIM's "missing subscription key"
//! wording when it is absent). Each product has its own key; the
//! provisioning API takes either.
//!
//! | Endpoint | Answer |
//! |---|---|
//! | `POST /v1_0/apiuser` (`X-Reference-Id`: UUID v4, body `{"providerCallbackHost"}`) | `201`, empty; reused id `409 RESOURCE_ALREADY_EXIST` |
//! | `GET /v1_0/apiuser/{id}` | `{"providerCallbackHost","targetEnvironment":"sandbox"}`; unknown `404 RESOURCE_NOT_FOUND` |
//! | `POST /v1_0/apiuser/{id}/apikey` | `201 {"apiKey"}` (the newest key is the valid one) |
//! | `POST /{collection,disbursement}/token/` (Basic `apiUser:apiKey`) | `200 {"access_token","token_type":"access_token","expires_in"}`; bad credentials `401 {"error":"login_failed"}` |
//! | `POST /collection/v1_0/requesttopay`, `POST /disbursement/v1_0/transfer` | `202`, empty body |
//! | `GET /collection/v1_0/requesttopay/{ref}`, `GET /disbursement/v1_0/transfer/{ref}` | `200` with the transaction (`status` `PENDING`, `SUCCESSFUL` or `FAILED` with a `reason` string); unknown `404 RESOURCE_NOT_FOUND` |
//! | `GET /{product}/v1_0/accountholder/{msisdn,email,party_code}/{id}/active` | `{"result": bool}` |
//! | `GET /{product}/v1_0/accountholder/msisdn/{msisdn}/basicuserinfo` | `{"sub","name","given_name","family_name","birthdate","locale","gender","status"}` |
//! | `GET /{product}/v1_0/account/balance` | `{"availableBalance","currency"}` |
//!
//! The provisioning API exists only when the target environment is
//! `sandbox`, as on the real platform (production users are made in the
//! partner portal: give them as [`MtnFakeConfig::preset_users`]).
//!
//! # Triggers
//!
//! The outcome comes from the payer's (collection) or payee's (transfer)
//! number, by [`Trigger::of`]. With `d` the configured `callback_delay`:
//!
//! | Ends in | Trigger | Status (and `reason`) | Callback |
//! |---|---|---|---|
//! | `0001` | Declined | `FAILED` `APPROVAL_REJECTED` after `d` | one |
//! | `0002` | InsufficientFunds | `FAILED` `NOT_ENOUGH_FUNDS` after `d` | one |
//! | `0003` | NoAnswer | `PENDING` until `3d`, then `FAILED` `EXPIRED` | one |
//! | `0004` | CallbackLost | `SUCCESSFUL` after `d` | none |
//! | `0005` | CallbackTwice | `SUCCESSFUL` after `d` | two, identical |
//! | `0006` | SlowCallback | `SUCCESSFUL` after `d` | one, at `10d` |
//! | `0007` | FirstRequestHangs | the first POST for the number is held `hang_for` before its `202` (the transaction exists from the start); later ones answer at once; `SUCCESSFUL` after `d` | one |
//! | `0008` | InvalidAccount | `FAILED` `PAYER_NOT_FOUND` (collection) / `PAYEE_NOT_FOUND` (transfer); account holder inactive, `basicuserinfo` `404` | one |
//! | `0009` | UnknownCode | `FAILED` [`UNDOCUMENTED_REASON`] | one |
//! | other | Succeeds | `SUCCESSFUL` after `d` | one |
//!
//! # Quirks reproduced
//!
//! - Amounts are JSON **strings** (`"100"`), in requests and answers; a
//!   JSON number is refused (`400`). Answers echo the string as sent.
//! - The sandbox takes only `EUR`; another environment takes its country's
//!   currency (`mtnuganda` UGX, `mtnghana` GHS, …). Anything else is `500
//!   {"message":"Currency not supported.","code":"INVALID_CURRENCY"}` — a
//!   client error reported as a server error, as observed on the sandbox
//!   (the community page's "400 invalid currency" is not what the gateway
//!   answers). Error bodies put `message` before `code`, as observed.
//! - A wrong `X-Target-Environment` is `500 NOT_ALLOWED_TARGET_ENVIRONMENT`.
//! - `X-Reference-Id` must be a UUID version 4 (`400` otherwise) and is the
//!   transaction's only handle; reusing one is `409 {"message":"Duplicated
//!   reference id. Creation of resource failed.","code":
//!   "RESOURCE_ALREADY_EXIST"}`, which is how a retry learns the first
//!   attempt landed.
//! - `payerMessage` and `payeeNote` longer than 160 characters, or holding
//!   an apostrophe or `&`, are refused (`400`), as the developer community
//!   documents.
//! - An `X-Callback-Url` whose host differs from the API user's
//!   `providerCallbackHost` is `500 INVALID_CALLBACK_URL_HOST` (preset users
//!   have no registered host and are not checked).
//! - `reason` is a plain string (`"reason":"APPROVAL_REJECTED"`), as the
//!   platform answers and its own SDKs read it, not the `{code,message}`
//!   object of the published OpenAPI schema.
//! - The callback is a `PUT` of the same JSON as the status query, with no
//!   signature of any kind: a receiver must confirm by querying. The
//!   platform sends it once and never retries.
//! - Every accepted POST answers `202` with an empty body, even one that is
//!   bound to fail.
//! - Tokens are per product: a Collection token is refused on Disbursement.
//!   They look like the platform's (a JWT-shaped string whose header says
//!   `"alg":"R256"`). An unknown or expired bearer token is `401
//!   {"statusCode":401,"message":"Unauthorized. Access token is missing or
//!   invalid."}`: MTN documents no body for it (only the status), so
//!   connectors must key on the status alone.
//!
//! Choices where the documentation is silent: validation failures are
//! `400 {"message": <what is wrong>, "code":"BAD_REQUEST"}`; wrong API
//! credentials on the token endpoint are `401` as documented (the sandbox
//! has been seen answering `500` with the same `{"error":"login_failed"}`).
//!
//! Balances: the collection account starts at 0 and gains each successful
//! collection; the disbursement account starts at 10,000,000 and pays each
//! successful transfer (one beyond it fails `NOT_ENOUGH_FUNDS`).
//!
//! # Published clients
//!
//! `compat/mtnmomo/run.sh [BASE_URL]` drives the operator's published
//! clients — PyPI `mtnmomo` and npm `mtn-momo` — against the fake (one it
//! starts from `examples/serve_mtn.rs` when no URL is given), changed in
//! nothing but their base URL. Their subscription-key checks want 32 hex
//! digits, which the default keys are.
//!
//! # Controls
//!
//! [`MtnFake::expire_tokens`], [`MtnFake::tokens_issued`],
//! [`MtnFake::requests`] and [`MtnFake::callbacks_sent`], and over HTTP
//! `POST /__fake/expire-tokens`, `GET /__fake/requests`,
//! `GET /__fake/callbacks` (no key needed; never recorded as requests).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::triggers::Trigger;

/// The failure reason the fake gives the [`Trigger::UnknownCode`] numbers:
/// a code MTN documents nowhere.
pub const UNDOCUMENTED_REASON: &str = "SOMETHING_NEW";

/// What the disbursement account holds at start, in the environment's
/// currency: transfers draw on it, and fail with `NOT_ENOUGH_FUNDS` past it.
const DISBURSEMENT_FLOAT: i128 = 10_000_000;

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct MtnFakeConfig {
    /// The Collection product's `Ocp-Apim-Subscription-Key`.
    pub collection_subscription_key: String,
    /// The Disbursement product's `Ocp-Apim-Subscription-Key`.
    pub disbursement_subscription_key: String,
    /// `X-Target-Environment`: `sandbox` (only `EUR`), or a production
    /// environment such as `mtnuganda` (its country's currency).
    pub target_environment: String,
    /// How long after the request the outcome is known (and the callback
    /// sent); the other timings are multiples of it.
    pub callback_delay: Duration,
    /// The `expires_in` of access tokens.
    pub token_lifetime: Duration,
    /// How long the first request for a `…0007` number is held.
    pub hang_for: Duration,
    /// API users (UUID, API key) that exist without provisioning.
    pub preset_users: Vec<(String, String)>,
}

impl Default for MtnFakeConfig {
    fn default() -> Self {
        MtnFakeConfig {
            // 32 hex digits, the shape of a real subscription key.
            collection_subscription_key: "c011ec71000040008000000000000001".into(),
            disbursement_subscription_key: "d15b0001000040008000000000000002".into(),
            target_environment: "sandbox".into(),
            callback_delay: Duration::from_millis(200),
            token_lifetime: Duration::from_secs(3600),
            hang_for: Duration::from_secs(30),
            preset_users: Vec::new(),
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
pub struct MtnFake {
    inner: Arc<Inner>,
}

struct Inner {
    config: MtnFakeConfig,
    http: reqwest::Client,
    state: Mutex<FakeState>,
}

#[derive(Default)]
struct FakeState {
    users: HashMap<String, ApiUser>,
    tokens: HashMap<String, AccessToken>,
    tokens_issued: usize,
    transactions: HashMap<(Product, String), Transaction>,
    hung_numbers: HashSet<String>,
    requests: Vec<ReceivedRequest>,
    callbacks: Vec<SentCallback>,
    /// Balances in millionths of the currency unit.
    collection_balance: i128,
    disbursement_balance: i128,
    financial_ids: u64,
}

struct ApiUser {
    /// `None` for preset users, which are not held to a host.
    callback_host: Option<String>,
    api_key: Option<String>,
}

struct AccessToken {
    product: Product,
    user: String,
    expires_at: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Product {
    Collection,
    Disbursement,
}

impl Product {
    fn segment(self) -> &'static str {
        match self {
            Product::Collection => "collection",
            Product::Disbursement => "disbursement",
        }
    }

    /// The resource a transaction is created and read under.
    fn transactions(self) -> &'static str {
        match self {
            Product::Collection => "requesttopay",
            Product::Disbursement => "transfer",
        }
    }

    /// The body's field naming the customer.
    fn party_field(self) -> &'static str {
        match self {
            Product::Collection => "payer",
            Product::Disbursement => "payee",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
struct Party {
    #[serde(rename = "partyIdType")]
    party_id_type: String,
    #[serde(rename = "partyId")]
    party_id: String,
}

#[derive(Clone)]
struct Transaction {
    product: Product,
    amount: String,
    currency: String,
    external_id: Option<String>,
    party: Party,
    payer_message: Option<String>,
    payee_note: Option<String>,
    status: &'static str,
    reason: Option<String>,
    financial_transaction_id: Option<String>,
    callback_url: Option<String>,
}

/// A transaction as the status query (and the callback) shows it, in the
/// platform's field order.
#[derive(Serialize)]
struct TransactionView<'a> {
    #[serde(
        rename = "financialTransactionId",
        skip_serializing_if = "Option::is_none"
    )]
    financial_transaction_id: Option<&'a str>,
    #[serde(rename = "externalId", skip_serializing_if = "Option::is_none")]
    external_id: Option<&'a str>,
    amount: &'a str,
    currency: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    payer: Option<&'a Party>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payee: Option<&'a Party>,
    #[serde(rename = "payerMessage", skip_serializing_if = "Option::is_none")]
    payer_message: Option<&'a str>,
    #[serde(rename = "payeeNote", skip_serializing_if = "Option::is_none")]
    payee_note: Option<&'a str>,
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

impl Transaction {
    fn view(&self) -> TransactionView<'_> {
        let party = Some(&self.party);
        let (payer, payee) = match self.product {
            Product::Collection => (party, None),
            Product::Disbursement => (None, party),
        };
        TransactionView {
            financial_transaction_id: self.financial_transaction_id.as_deref(),
            external_id: self.external_id.as_deref(),
            amount: &self.amount,
            currency: &self.currency,
            payer,
            payee,
            payer_message: self.payer_message.as_deref(),
            payee_note: self.payee_note.as_deref(),
            status: self.status,
            reason: self.reason.as_deref(),
        }
    }

    fn json(&self) -> String {
        serde_json::to_string(&self.view()).expect("a transaction serializes")
    }
}

/// What happens to a transaction once accepted.
enum Outcome {
    Succeed,
    Fail(String),
}

// ---------------------------------------------------------------------------
// Answers.

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

/// The wallet platform's error body: `message` first, then `code`.
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    #[derive(Serialize)]
    struct ErrorBody<'a> {
        message: &'a str,
        code: &'a str,
    }
    (status, axum::Json(ErrorBody { message, code })).into_response()
}

fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
}

fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "RESOURCE_NOT_FOUND",
        "Requested resource was not found.",
    )
}

fn already_exists() -> Response {
    error(
        StatusCode::CONFLICT,
        "RESOURCE_ALREADY_EXIST",
        "Duplicated reference id. Creation of resource failed.",
    )
}

/// The gateway's (Azure API Management's) error body.
fn gateway(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"statusCode": status.as_u16(), "message": message})),
    )
        .into_response()
}

fn route_not_found() -> Response {
    gateway(StatusCode::NOT_FOUND, "Resource not found")
}

fn unauthorized_bearer() -> Response {
    gateway(
        StatusCode::UNAUTHORIZED,
        "Unauthorized. Access token is missing or invalid.",
    )
}

fn login_failed() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({"error": "login_failed"})),
    )
        .into_response()
}

// ---------------------------------------------------------------------------
// Small helpers.

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// A UUID version 4, in its canonical lower-case form.
fn uuid_v4(text: &str) -> Option<String> {
    let id = Uuid::parse_str(text.trim()).ok()?;
    (id.get_version_num() == 4).then(|| id.hyphenated().to_string())
}

/// A fresh UUID version 4 (the workspace's `uuid` makes v7s; their bytes
/// are unique, and re-stamped they are a valid v4).
fn new_uuid_v4() -> Uuid {
    uuid::Builder::from_random_bytes(*Uuid::now_v7().as_bytes()).into_uuid()
}

/// A user id in canonical form when it is a UUID, as given otherwise.
fn user_key(text: &str) -> String {
    Uuid::parse_str(text.trim())
        .map(|id| id.hyphenated().to_string())
        .unwrap_or_else(|_| text.trim().to_ascii_lowercase())
}

fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

/// An MSISDN as the platform takes it: digits only, no `+`.
fn valid_msisdn(text: &str) -> bool {
    (6..=15).contains(&text.len()) && text.chars().all(|c| c.is_ascii_digit())
}

/// The currency each target environment takes.
fn currency_of(environment: &str) -> Option<&'static str> {
    Some(match environment {
        "sandbox" => "EUR",
        "mtnuganda" => "UGX",
        "mtnghana" => "GHS",
        "mtnivorycoast" => "XOF",
        "mtnzambia" => "ZMW",
        "mtncameroon" => "XAF",
        "mtnbenin" => "XOF",
        "mtncongo" => "XAF",
        "mtnswaziland" | "mtneswatini" => "SZL",
        "mtnguineaconakry" => "GNF",
        "mtnsouthafrica" => "ZAR",
        "mtnliberia" => "LRD",
        "mtnrwanda" => "RWF",
        "mtnsouthsudan" => "SSP",
        _ => return None,
    })
}

/// A positive decimal amount in millionths (`"100"`, `"100.5"`).
fn parse_amount(text: &str) -> Option<i128> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty()
        || whole.len() > 15
        || !whole.chars().all(|c| c.is_ascii_digit())
        || !fraction.chars().all(|c| c.is_ascii_digit())
        || (text.contains('.') && fraction.is_empty())
    {
        return None;
    }
    let mut micros: i128 = whole.parse::<i128>().ok()? * 1_000_000;
    let mut scale = 100_000;
    for c in fraction.chars().take(6) {
        micros += i128::from(c as u8 - b'0') * scale;
        scale /= 10;
    }
    (micros > 0).then_some(micros)
}

fn format_amount(micros: i128) -> String {
    let whole = micros / 1_000_000;
    let fraction = (micros % 1_000_000).abs();
    if fraction == 0 {
        whole.to_string()
    } else {
        let text = format!("{whole}.{fraction:06}");
        text.trim_end_matches('0').to_string()
    }
}

/// A stable number for a phone number, to pick its account holder's name.
fn fingerprint(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn base64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The host of a callback URL or of a `providerCallbackHost` (which should
/// be a bare host, but is often given as a URL).
fn host_of(text: &str) -> Option<String> {
    let text = text.trim();
    let url = if text.contains("://") {
        reqwest::Url::parse(text).ok()?
    } else {
        reqwest::Url::parse(&format!("http://{text}")).ok()?
    };
    url.host_str().map(|h| h.to_ascii_lowercase())
}

// ---------------------------------------------------------------------------
// The fake.

impl MtnFake {
    pub fn new(config: MtnFakeConfig) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("an HTTP client builds");
        let mut state = FakeState {
            disbursement_balance: DISBURSEMENT_FLOAT * 1_000_000,
            // Ten digits, like the platform's financial transaction ids.
            financial_ids: 1_000_000_000 + u64::from(Uuid::now_v7().as_bytes()[15]) * 1_000_000,
            ..FakeState::default()
        };
        for (user, key) in &config.preset_users {
            state.users.insert(
                user_key(user),
                ApiUser {
                    callback_host: None,
                    api_key: Some(key.clone()),
                },
            );
        }
        MtnFake {
            inner: Arc::new(Inner {
                config,
                http,
                state: Mutex::new(state),
            }),
        }
    }

    fn config(&self) -> &MtnFakeConfig {
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
        let mut router = Router::new()
            .route("/v1_0/apiuser", post(create_user))
            .route("/v1_0/apiuser/{id}", get(read_user))
            .route("/v1_0/apiuser/{id}/apikey", post(create_api_key))
            .route("/__fake/expire-tokens", post(fake_expire_tokens))
            .route("/__fake/requests", get(fake_requests))
            .route("/__fake/callbacks", get(fake_callbacks));
        for product in [Product::Collection, Product::Disbursement] {
            router = product_routes(router, product);
        }
        router
            .fallback(|| async { route_not_found() })
            .method_not_allowed_fallback(|| async { route_not_found() })
            .layer(middleware::from_fn_with_state(self.clone(), record))
            .with_state(self.clone())
    }

    /// Binds 127.0.0.1 on a free port, serves there in a task, and returns
    /// the base URL (`http://127.0.0.1:PORT`).
    pub async fn spawn(&self) -> std::io::Result<String> {
        crate::serving::spawn(self.router(), "MTN MoMo").await
    }

    /// Serves on `listener` until the task is dropped.
    pub async fn serve(&self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
    }

    /// Expires every access token issued so far (new ones are valid).
    pub fn expire_tokens(&self) {
        self.expire_all_tokens();
    }

    fn expire_all_tokens(&self) -> usize {
        let now = Instant::now();
        let mut state = self.state();
        for token in state.tokens.values_mut() {
            token.expires_at = now;
        }
        state.tokens.len()
    }

    /// How many access tokens were issued, of both products.
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

    // -- the gateway and authentication ------------------------------------

    /// The subscription key, checked as APIM does: any of `products`' keys.
    fn check_subscription(
        &self,
        headers: &HeaderMap,
        uri: &Uri,
        products: &[Product],
    ) -> Result<(), Refusal> {
        let from_query = uri.query().and_then(|query| {
            query.split('&').find_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                name.eq_ignore_ascii_case("subscription-key")
                    .then_some(value)
            })
        });
        let Some(key) = header(headers, "ocp-apim-subscription-key").or(from_query) else {
            return Err(gateway(
                StatusCode::UNAUTHORIZED,
                "Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API.",
            ).into());
        };
        let valid = products.iter().any(|product| match product {
            Product::Collection => key == self.config().collection_subscription_key,
            Product::Disbursement => key == self.config().disbursement_subscription_key,
        });
        if valid {
            Ok(())
        } else {
            Err(gateway(
                StatusCode::UNAUTHORIZED,
                "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription.",
            ).into())
        }
    }

    /// The bearer token of `product`; the API user it was issued to.
    fn check_bearer(&self, headers: &HeaderMap, product: Product) -> Result<String, Refusal> {
        let token = header(headers, "authorization")
            .and_then(|value| {
                let (scheme, token) = value.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or_else(unauthorized_bearer)?;
        let state = self.state();
        match state.tokens.get(token) {
            Some(found) if found.product == product && found.expires_at > Instant::now() => {
                Ok(found.user.clone())
            }
            _ => Err(unauthorized_bearer().into()),
        }
    }

    fn check_environment(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        match header(headers, "x-target-environment") {
            None | Some("") => Err(bad_request("X-Target-Environment is required.").into()),
            Some(environment) if environment == self.config().target_environment => Ok(()),
            Some(_) => Err(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "NOT_ALLOWED_TARGET_ENVIRONMENT",
                "Access to target environment is forbidden.",
            )
            .into()),
        }
    }

    /// What every product call passes: key, token, target environment.
    fn gate(&self, headers: &HeaderMap, uri: &Uri, product: Product) -> Result<String, Refusal> {
        self.check_subscription(headers, uri, &[product])?;
        let user = self.check_bearer(headers, product)?;
        self.check_environment(headers)?;
        Ok(user)
    }

    // -- provisioning (sandbox only) ---------------------------------------

    fn provisioning_exists(&self) -> bool {
        self.config().target_environment == "sandbox"
    }

    fn create_user(&self, headers: &HeaderMap, uri: &Uri, body: &[u8]) -> Response {
        if !self.provisioning_exists() {
            return route_not_found();
        }
        if let Err(answer) =
            self.check_subscription(headers, uri, &[Product::Collection, Product::Disbursement])
        {
            return answer.into_response();
        }
        let Some(id) = header(headers, "x-reference-id").and_then(uuid_v4) else {
            return bad_request("X-Reference-Id must be a UUID version 4.");
        };
        let host = serde_json::from_slice::<Value>(body).ok().and_then(|body| {
            body.get("providerCallbackHost")?
                .as_str()
                .map(str::to_owned)
        });
        let Some(host) = host.filter(|host| !host.trim().is_empty()) else {
            return bad_request("providerCallbackHost is required.");
        };
        let mut state = self.state();
        if state.users.contains_key(&id) {
            return already_exists();
        }
        state.users.insert(
            id,
            ApiUser {
                callback_host: Some(host),
                api_key: None,
            },
        );
        StatusCode::CREATED.into_response()
    }

    fn read_user(&self, headers: &HeaderMap, uri: &Uri, id: &str) -> Response {
        if !self.provisioning_exists() {
            return route_not_found();
        }
        if let Err(answer) =
            self.check_subscription(headers, uri, &[Product::Collection, Product::Disbursement])
        {
            return answer.into_response();
        }
        let state = self.state();
        match state.users.get(&user_key(id)) {
            Some(user) => axum::Json(json!({
                "providerCallbackHost": user.callback_host,
                "targetEnvironment": "sandbox",
            }))
            .into_response(),
            None => not_found(),
        }
    }

    fn create_api_key(&self, headers: &HeaderMap, uri: &Uri, id: &str) -> Response {
        if !self.provisioning_exists() {
            return route_not_found();
        }
        if let Err(answer) =
            self.check_subscription(headers, uri, &[Product::Collection, Product::Disbursement])
        {
            return answer.into_response();
        }
        let mut state = self.state();
        let Some(user) = state.users.get_mut(&user_key(id)) else {
            return not_found();
        };
        let key = new_uuid_v4().simple().to_string();
        user.api_key = Some(key.clone());
        (StatusCode::CREATED, axum::Json(json!({"apiKey": key}))).into_response()
    }

    // -- tokens --------------------------------------------------------------

    fn issue_token(&self, product: Product, headers: &HeaderMap, uri: &Uri) -> Response {
        if let Err(answer) = self.check_subscription(headers, uri, &[product]) {
            return answer.into_response();
        }
        let credentials = header(headers, "authorization")
            .and_then(|value| {
                let (scheme, encoded) = value.split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("basic")
                    .then_some(encoded.trim())
            })
            .and_then(|encoded| {
                base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .ok()
            })
            .and_then(|decoded| String::from_utf8(decoded).ok());
        let Some((user, key)) = credentials
            .as_deref()
            .and_then(|text| text.split_once(':'))
            .map(|(user, key)| (user_key(user), key.to_owned()))
        else {
            return login_failed();
        };
        let lifetime = self.config().token_lifetime;
        let mut state = self.state();
        let known = state
            .users
            .get(&user)
            .is_some_and(|found| found.api_key.as_deref() == Some(key.as_str()));
        if !known {
            return login_failed();
        }
        let expires = time::OffsetDateTime::now_utc()
            + time::Duration::try_from(lifetime).unwrap_or(time::Duration::HOUR);
        let expires = expires
            .format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]"
            ))
            .unwrap_or_default();
        let header_part = base64url(br#"{"typ":"JWT","alg":"R256"}"#);
        let claims = json!({
            "clientId": user,
            "expires": expires,
            "sessionId": new_uuid_v4().hyphenated().to_string(),
        });
        let claims_part = base64url(claims.to_string().as_bytes());
        let mut signature = Vec::with_capacity(64);
        for _ in 0..4 {
            signature.extend_from_slice(new_uuid_v4().as_bytes());
        }
        let token = format!("{header_part}.{claims_part}.{}", base64url(&signature));
        state.tokens.insert(
            token.clone(),
            AccessToken {
                product,
                user,
                expires_at: Instant::now() + lifetime,
            },
        );
        state.tokens_issued += 1;
        axum::Json(json!({
            "access_token": token,
            "token_type": "access_token",
            "expires_in": lifetime.as_secs(),
        }))
        .into_response()
    }

    // -- transactions ----------------------------------------------------------

    async fn create_transaction(
        &self,
        product: Product,
        headers: HeaderMap,
        uri: Uri,
        body: Bytes,
    ) -> Response {
        let user = match self.gate(&headers, &uri, product) {
            Ok(user) => user,
            Err(answer) => return answer.into_response(),
        };
        let Some(reference) = header(&headers, "x-reference-id").and_then(uuid_v4) else {
            return bad_request("X-Reference-Id must be a UUID version 4.");
        };
        let callback_url = match header(&headers, "x-callback-url").filter(|url| !url.is_empty()) {
            None => None,
            Some(url) => {
                let Some(host) = reqwest::Url::parse(url)
                    .ok()
                    .filter(|parsed| matches!(parsed.scheme(), "http" | "https"))
                    .and_then(|parsed| parsed.host_str().map(str::to_ascii_lowercase))
                else {
                    return bad_request("X-Callback-Url is not a valid URL.");
                };
                let registered = self
                    .state()
                    .users
                    .get(&user)
                    .and_then(|found| found.callback_host.clone());
                if let Some(registered) = registered
                    && host_of(&registered).as_deref() != Some(host.as_str())
                {
                    return error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "INVALID_CALLBACK_URL_HOST",
                        "Callback URL with different host name than configured for API User.",
                    );
                }
                Some(url.to_owned())
            }
        };
        let transaction = match self.parse_transaction(product, &body, callback_url) {
            Ok(transaction) => transaction,
            Err(answer) => return answer.into_response(),
        };
        let number = digits(&transaction.party.party_id);
        let trigger = Trigger::of(&transaction.party.party_id);
        let hang = {
            let mut state = self.state();
            if state
                .transactions
                .contains_key(&(product, reference.clone()))
            {
                return already_exists();
            }
            state
                .transactions
                .insert((product, reference.clone()), transaction);
            trigger == Trigger::FirstRequestHangs && state.hung_numbers.insert(number)
        };
        self.run(product, reference, trigger);
        if hang {
            tokio::time::sleep(self.config().hang_for).await;
        }
        StatusCode::ACCEPTED.into_response()
    }

    /// The body of a request-to-pay or a transfer, checked.
    fn parse_transaction(
        &self,
        product: Product,
        body: &[u8],
        callback_url: Option<String>,
    ) -> Result<Transaction, Refusal> {
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(body) else {
            return Err(bad_request("The request body is not a JSON object.").into());
        };
        let text = |name: &str| -> Result<Option<String>, Refusal> {
            match body.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(text)) => Ok(Some(text.clone())),
                Some(_) => Err(bad_request(&format!("{name} must be a string.")).into()),
            }
        };
        let amount = text("amount")?.ok_or_else(|| bad_request("amount is required."))?;
        if parse_amount(&amount).is_none() {
            return Err(bad_request("amount must be a positive number.").into());
        }
        let currency = text("currency")?.ok_or_else(|| bad_request("currency is required."))?;
        let external_id = text("externalId")?;
        let payer_message = text("payerMessage")?;
        let payee_note = text("payeeNote")?;
        for (name, value) in [("payerMessage", &payer_message), ("payeeNote", &payee_note)] {
            if let Some(value) = value {
                if value.chars().count() > 160 {
                    return Err(
                        bad_request(&format!("{name} is longer than 160 characters.")).into(),
                    );
                }
                if value.contains(['\'', '&']) {
                    return Err(bad_request(&format!(
                        "{name} has a character that is not allowed."
                    ))
                    .into());
                }
            }
        }
        let field = product.party_field();
        let party = body
            .get(field)
            .and_then(Value::as_object)
            .ok_or_else(|| bad_request(&format!("{field} is required.")))?;
        let party_id_type = party
            .get("partyIdType")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let party_id = party
            .get("partyId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let valid_party = match party_id_type.as_str() {
            "MSISDN" => valid_msisdn(&party_id),
            "EMAIL" => party_id.contains('@'),
            "PARTY_CODE" => Uuid::parse_str(&party_id).is_ok(),
            "ALIAS" => !party_id.is_empty(),
            _ => false,
        };
        if !valid_party {
            return Err(bad_request(&format!(
                "{field} is not a valid party (partyIdType MSISDN, EMAIL, PARTY_CODE or ALIAS, and its partyId)."
            )).into());
        }
        let accepted = match currency_of(&self.config().target_environment) {
            Some(only) => currency == only,
            None => currency.len() == 3 && currency.chars().all(|c| c.is_ascii_uppercase()),
        };
        if !accepted {
            return Err(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INVALID_CURRENCY",
                "Currency not supported.",
            )
            .into());
        }
        Ok(Transaction {
            product,
            amount,
            currency,
            external_id,
            party: Party {
                party_id_type,
                party_id,
            },
            payer_message,
            payee_note,
            status: "PENDING",
            reason: None,
            financial_transaction_id: None,
            callback_url,
        })
    }

    /// Plays a transaction's trigger out in the background.
    fn run(&self, product: Product, reference: String, trigger: Trigger) {
        let fake = self.clone();
        let delay = self.config().callback_delay;
        let not_found = match product {
            Product::Collection => "PAYER_NOT_FOUND",
            Product::Disbursement => "PAYEE_NOT_FOUND",
        };
        tokio::spawn(async move {
            let key = (product, reference);
            let (wait, outcome, callbacks, callback_after) = match trigger {
                Trigger::Declined => (1, Outcome::Fail("APPROVAL_REJECTED".into()), 1, 0),
                Trigger::InsufficientFunds => (1, Outcome::Fail("NOT_ENOUGH_FUNDS".into()), 1, 0),
                Trigger::NoAnswer => (3, Outcome::Fail("EXPIRED".into()), 1, 0),
                Trigger::InvalidAccount => (1, Outcome::Fail(not_found.into()), 1, 0),
                Trigger::UnknownCode => (1, Outcome::Fail(UNDOCUMENTED_REASON.into()), 1, 0),
                Trigger::CallbackLost => (1, Outcome::Succeed, 0, 0),
                Trigger::CallbackTwice => (1, Outcome::Succeed, 2, 0),
                Trigger::SlowCallback => (1, Outcome::Succeed, 1, 9),
                Trigger::Succeeds | Trigger::FirstRequestHangs => (1, Outcome::Succeed, 1, 0),
            };
            tokio::time::sleep(delay * wait).await;
            let Some((url, body)) = fake.finish(&key, outcome) else {
                return;
            };
            if callback_after > 0 {
                tokio::time::sleep(delay * callback_after).await;
            }
            if let Some(url) = url {
                for _ in 0..callbacks {
                    fake.send_callback(&url, body.clone()).await;
                }
            }
        });
    }

    /// Settles a transaction; its callback URL and JSON.
    fn finish(
        &self,
        key: &(Product, String),
        outcome: Outcome,
    ) -> Option<(Option<String>, String)> {
        let mut state = self.state();
        let FakeState {
            transactions,
            collection_balance,
            disbursement_balance,
            financial_ids,
            ..
        } = &mut *state;
        let transaction = transactions.get_mut(key)?;
        let amount = parse_amount(&transaction.amount).unwrap_or(0);
        let outcome = match outcome {
            Outcome::Succeed
                if transaction.product == Product::Disbursement
                    && *disbursement_balance < amount =>
            {
                Outcome::Fail("NOT_ENOUGH_FUNDS".into())
            }
            other => other,
        };
        match outcome {
            Outcome::Succeed => {
                *financial_ids += 1;
                transaction.status = "SUCCESSFUL";
                transaction.financial_transaction_id = Some(financial_ids.to_string());
                match transaction.product {
                    Product::Collection => *collection_balance += amount,
                    Product::Disbursement => *disbursement_balance -= amount,
                }
            }
            Outcome::Fail(reason) => {
                transaction.status = "FAILED";
                transaction.reason = Some(reason);
            }
        }
        Some((transaction.callback_url.clone(), transaction.json()))
    }

    async fn send_callback(&self, url: &str, body: String) {
        let status = self
            .inner
            .http
            .put(url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .map(|answer| answer.status().as_u16())
            .ok();
        tracing::debug!(url, ?status, "MTN MoMo fake sent a callback");
        self.state().callbacks.push(SentCallback {
            url: url.to_owned(),
            method: "PUT".into(),
            body,
            status,
        });
    }

    fn read_transaction(
        &self,
        product: Product,
        headers: &HeaderMap,
        uri: &Uri,
        reference: &str,
    ) -> Response {
        if let Err(answer) = self.gate(headers, uri, product) {
            return answer.into_response();
        }
        let Ok(reference) = Uuid::parse_str(reference.trim()) else {
            return bad_request("The reference id is not a UUID.");
        };
        let state = self.state();
        match state
            .transactions
            .get(&(product, reference.hyphenated().to_string()))
        {
            Some(transaction) => axum::Json(transaction.view()).into_response(),
            None => not_found(),
        }
    }

    // -- accounts --------------------------------------------------------------

    fn account_active(
        &self,
        product: Product,
        headers: &HeaderMap,
        uri: &Uri,
        id_type: &str,
        id: &str,
    ) -> Response {
        if let Err(answer) = self.gate(headers, uri, product) {
            return answer.into_response();
        }
        let active = match id_type.to_ascii_lowercase().as_str() {
            "msisdn" if valid_msisdn(id) => Trigger::of(id) != Trigger::InvalidAccount,
            "email" if id.contains('@') => true,
            "party_code" if Uuid::parse_str(id).is_ok() => true,
            _ => return bad_request("The account holder id type or id is not valid."),
        };
        axum::Json(json!({"result": active})).into_response()
    }

    fn basic_user_info(
        &self,
        product: Product,
        headers: &HeaderMap,
        uri: &Uri,
        id_type: &str,
        msisdn: &str,
    ) -> Response {
        if let Err(answer) = self.gate(headers, uri, product) {
            return answer.into_response();
        }
        if !id_type.eq_ignore_ascii_case("msisdn") {
            return route_not_found();
        }
        if !valid_msisdn(msisdn) {
            return bad_request("The MSISDN is not valid.");
        }
        if Trigger::of(msisdn) == Trigger::InvalidAccount {
            return not_found();
        }
        const GIVEN: [(&str, &str); 10] = [
            ("Amina", "FEMALE"),
            ("Brian", "MALE"),
            ("Grace", "FEMALE"),
            ("Kwame", "MALE"),
            ("Esther", "FEMALE"),
            ("Joseph", "MALE"),
            ("Fatou", "FEMALE"),
            ("Samuel", "MALE"),
            ("Aline", "FEMALE"),
            ("Moses", "MALE"),
        ];
        const FAMILY: [&str; 10] = [
            "Nakato", "Okello", "Mensah", "Banda", "Mukasa", "Asante", "Diallo", "Uwase", "Tembo",
            "Kouassi",
        ];
        let hash = fingerprint(msisdn);
        let (given, gender) = GIVEN[(hash % 10) as usize];
        let family = FAMILY[((hash / 10) % 10) as usize];
        let birthdate = format!(
            "{}-{:02}-{:02}",
            1960 + (hash / 100) % 45,
            1 + (hash / 10_000) % 12,
            1 + (hash / 1_000_000) % 28
        );
        let locale = if self.config().target_environment == "sandbox" {
            "sv_SE"
        } else {
            "en"
        };
        axum::Json(json!({
            "sub": "0",
            "name": format!("{given} {family}"),
            "given_name": given,
            "family_name": family,
            "birthdate": birthdate,
            "locale": locale,
            "gender": gender,
            "status": "ACTIVE",
        }))
        .into_response()
    }

    fn balance(&self, product: Product, headers: &HeaderMap, uri: &Uri) -> Response {
        if let Err(answer) = self.gate(headers, uri, product) {
            return answer.into_response();
        }
        let state = self.state();
        let micros = match product {
            Product::Collection => state.collection_balance,
            Product::Disbursement => state.disbursement_balance,
        };
        axum::Json(json!({
            "availableBalance": format_amount(micros),
            "currency": currency_of(&self.config().target_environment).unwrap_or("EUR"),
        }))
        .into_response()
    }
}

// ---------------------------------------------------------------------------
// Routing.

/// Records a request as it arrived, then passes it on.
async fn record(State(fake): State<MtnFake>, request: Request, next: Next) -> Response {
    if request.uri().path().starts_with("/__fake/") {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 4 << 20).await else {
        return gateway(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large");
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

async fn create_user(
    State(fake): State<MtnFake>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    fake.create_user(&headers, &uri, &body)
}

async fn read_user(
    State(fake): State<MtnFake>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    fake.read_user(&headers, &uri, &id)
}

async fn create_api_key(
    State(fake): State<MtnFake>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    fake.create_api_key(&headers, &uri, &id)
}

async fn fake_expire_tokens(State(fake): State<MtnFake>) -> Response {
    axum::Json(json!({"expired": fake.expire_all_tokens()})).into_response()
}

async fn fake_requests(State(fake): State<MtnFake>) -> Response {
    axum::Json(fake.requests()).into_response()
}

async fn fake_callbacks(State(fake): State<MtnFake>) -> Response {
    axum::Json(fake.callbacks_sent()).into_response()
}

/// One product's routes: token, transactions, account holders, balance.
fn product_routes(router: Router<MtnFake>, product: Product) -> Router<MtnFake> {
    let segment = product.segment();
    let transactions = product.transactions();
    let token = post(
        move |State(fake): State<MtnFake>, headers: HeaderMap, uri: Uri| async move {
            fake.issue_token(product, &headers, &uri)
        },
    );
    router
        .route(&format!("/{segment}/token/"), token.clone())
        .route(&format!("/{segment}/token"), token)
        .route(
            &format!("/{segment}/v1_0/{transactions}"),
            post(
                move |State(fake): State<MtnFake>, headers: HeaderMap, uri: Uri, body: Bytes| async move {
                    fake.create_transaction(product, headers, uri, body).await
                },
            ),
        )
        .route(
            &format!("/{segment}/v1_0/{transactions}/{{reference}}"),
            get(
                move |State(fake): State<MtnFake>,
                      Path(reference): Path<String>,
                      headers: HeaderMap,
                      uri: Uri| async move {
                    fake.read_transaction(product, &headers, &uri, &reference)
                },
            ),
        )
        .route(
            &format!("/{segment}/v1_0/accountholder/{{id_type}}/{{id}}/active"),
            get(
                move |State(fake): State<MtnFake>,
                      Path((id_type, id)): Path<(String, String)>,
                      headers: HeaderMap,
                      uri: Uri| async move {
                    fake.account_active(product, &headers, &uri, &id_type, &id)
                },
            ),
        )
        .route(
            &format!("/{segment}/v1_0/accountholder/{{id_type}}/{{id}}/basicuserinfo"),
            get(
                move |State(fake): State<MtnFake>,
                      Path((id_type, id)): Path<(String, String)>,
                      headers: HeaderMap,
                      uri: Uri| async move {
                    fake.basic_user_info(product, &headers, &uri, &id_type, &id)
                },
            ),
        )
        .route(
            &format!("/{segment}/v1_0/account/balance"),
            get(
                move |State(fake): State<MtnFake>, headers: HeaderMap, uri: Uri| async move {
                    fake.balance(product, &headers, &uri)
                },
            ),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "127.0.0.1";

    /// A fresh X-Reference-Id.
    fn new_reference() -> String {
        new_uuid_v4().hyphenated().to_string()
    }

    fn client() -> reqwest::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::new()
    }

    fn quick() -> MtnFakeConfig {
        MtnFakeConfig {
            callback_delay: Duration::from_millis(40),
            hang_for: Duration::from_millis(600),
            ..MtnFakeConfig::default()
        }
    }

    /// A running fake with a provisioned API user.
    struct Env {
        fake: MtnFake,
        base: String,
        http: reqwest::Client,
        user: String,
        key: String,
    }

    impl Env {
        async fn start(config: MtnFakeConfig) -> Env {
            let fake = MtnFake::new(config);
            let base = fake.spawn().await.expect("the fake binds");
            let http = client();
            let user = new_reference();
            let created = http
                .post(format!("{base}/v1_0/apiuser"))
                .header("X-Reference-Id", &user)
                .header(
                    "Ocp-Apim-Subscription-Key",
                    &fake.config().collection_subscription_key,
                )
                .json(&json!({"providerCallbackHost": HOST}))
                .send()
                .await
                .unwrap();
            assert_eq!(created.status(), 201);
            let key: Value = http
                .post(format!("{base}/v1_0/apiuser/{user}/apikey"))
                .header(
                    "Ocp-Apim-Subscription-Key",
                    &fake.config().collection_subscription_key,
                )
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let key = key["apiKey"].as_str().unwrap().to_owned();
            Env {
                fake,
                base,
                http,
                user,
                key,
            }
        }

        fn subscription_key(&self, product: Product) -> String {
            match product {
                Product::Collection => self.fake.config().collection_subscription_key.clone(),
                Product::Disbursement => self.fake.config().disbursement_subscription_key.clone(),
            }
        }

        async fn token_response(&self, product: Product) -> reqwest::Response {
            self.http
                .post(format!("{}/{}/token/", self.base, product.segment()))
                .basic_auth(&self.user, Some(&self.key))
                .header("Ocp-Apim-Subscription-Key", self.subscription_key(product))
                .send()
                .await
                .unwrap()
        }

        async fn token(&self, product: Product) -> String {
            let answer = self.token_response(product).await;
            assert_eq!(answer.status(), 200);
            let body: Value = answer.json().await.unwrap();
            body["access_token"].as_str().unwrap().to_owned()
        }

        fn authed(
            &self,
            method: reqwest::Method,
            product: Product,
            path: &str,
            token: &str,
        ) -> reqwest::RequestBuilder {
            self.http
                .request(method, format!("{}{path}", self.base))
                .bearer_auth(token)
                .header(
                    "X-Target-Environment",
                    &self.fake.config().target_environment,
                )
                .header("Ocp-Apim-Subscription-Key", self.subscription_key(product))
        }

        /// POSTs a request-to-pay (or a transfer); the reference and answer.
        async fn initiate(
            &self,
            product: Product,
            token: &str,
            number: &str,
            callback: Option<&str>,
        ) -> (String, reqwest::Response) {
            let reference = new_reference();
            let answer = self
                .initiate_with(
                    product,
                    token,
                    &reference,
                    &body(product, number, "EUR"),
                    callback,
                )
                .await;
            (reference, answer)
        }

        async fn initiate_with(
            &self,
            product: Product,
            token: &str,
            reference: &str,
            body: &Value,
            callback: Option<&str>,
        ) -> reqwest::Response {
            let path = format!("/{}/v1_0/{}", product.segment(), product.transactions());
            let mut request = self
                .authed(reqwest::Method::POST, product, &path, token)
                .header("X-Reference-Id", reference)
                .json(body);
            if let Some(callback) = callback {
                request = request.header("X-Callback-Url", callback);
            }
            request.send().await.unwrap()
        }

        async fn status(&self, product: Product, token: &str, reference: &str) -> (u16, Value) {
            let path = format!(
                "/{}/v1_0/{}/{reference}",
                product.segment(),
                product.transactions()
            );
            let answer = self
                .authed(reqwest::Method::GET, product, &path, token)
                .send()
                .await
                .unwrap();
            let status = answer.status().as_u16();
            (status, answer.json().await.unwrap_or(Value::Null))
        }

        /// Polls until the status is no longer PENDING.
        async fn settled(&self, product: Product, token: &str, reference: &str) -> Value {
            for _ in 0..200 {
                let (status, body) = self.status(product, token, reference).await;
                assert_eq!(status, 200, "{body}");
                if body["status"] != "PENDING" {
                    return body;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("{reference} stayed PENDING");
        }
    }

    fn body(product: Product, number: &str, currency: &str) -> Value {
        json!({
            "amount": "100",
            "currency": currency,
            "externalId": "order-17",
            product.party_field(): {"partyIdType": "MSISDN", "partyId": number},
            "payerMessage": "Order 17",
            "payeeNote": "Thank you",
        })
    }

    use crate::serving::receiver::Received;

    async fn receiver() -> (String, Received) {
        crate::serving::receiver::spawn("/momo/callback").await
    }

    async fn wait_for_callbacks(fake: &MtnFake, count: usize) -> Vec<SentCallback> {
        for _ in 0..300 {
            let sent = fake.callbacks_sent();
            if sent.len() >= count {
                return sent;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("fewer than {count} callbacks were sent");
    }

    #[tokio::test]
    async fn provisioning_then_a_token() {
        let env = Env::start(quick()).await;
        assert_eq!(env.key.len(), 32);
        assert!(env.key.chars().all(|c| c.is_ascii_hexdigit()));

        // The user reads back with its host and the sandbox.
        let user: Value = env
            .http
            .get(format!("{}/v1_0/apiuser/{}", env.base, env.user))
            .header(
                "Ocp-Apim-Subscription-Key",
                env.subscription_key(Product::Disbursement),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            user,
            json!({"providerCallbackHost": HOST, "targetEnvironment": "sandbox"})
        );

        // The same X-Reference-Id again is a conflict.
        let again = env
            .http
            .post(format!("{}/v1_0/apiuser", env.base))
            .header("X-Reference-Id", &env.user)
            .header(
                "Ocp-Apim-Subscription-Key",
                env.subscription_key(Product::Collection),
            )
            .json(&json!({"providerCallbackHost": HOST}))
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 409);
        assert_eq!(
            again.text().await.unwrap(),
            r#"{"message":"Duplicated reference id. Creation of resource failed.","code":"RESOURCE_ALREADY_EXIST"}"#
        );

        // An unknown user, and an id that is not a UUID v4.
        let unknown = env
            .http
            .post(format!(
                "{}/v1_0/apiuser/{}/apikey",
                env.base,
                new_reference()
            ))
            .header(
                "Ocp-Apim-Subscription-Key",
                env.subscription_key(Product::Collection),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(unknown.status(), 404);
        let not_v4 = env
            .http
            .post(format!("{}/v1_0/apiuser", env.base))
            .header("X-Reference-Id", Uuid::now_v7().to_string())
            .header(
                "Ocp-Apim-Subscription-Key",
                env.subscription_key(Product::Collection),
            )
            .json(&json!({"providerCallbackHost": HOST}))
            .send()
            .await
            .unwrap();
        assert_eq!(not_v4.status(), 400);

        let answer = env.token_response(Product::Collection).await;
        assert_eq!(answer.status(), 200);
        let token: Value = answer.json().await.unwrap();
        assert_eq!(token["token_type"], "access_token");
        assert_eq!(token["expires_in"], 3600);
        assert_eq!(
            token["access_token"].as_str().unwrap().split('.').count(),
            3
        );
        assert_eq!(env.fake.tokens_issued(), 1);

        // Wrong credentials.
        let wrong = env
            .http
            .post(format!("{}/collection/token/", env.base))
            .basic_auth(&env.user, Some("not-the-key"))
            .header(
                "Ocp-Apim-Subscription-Key",
                env.subscription_key(Product::Collection),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401);
        assert_eq!(
            wrong.json::<Value>().await.unwrap(),
            json!({"error": "login_failed"})
        );
        assert_eq!(env.fake.tokens_issued(), 1);
    }

    #[tokio::test]
    async fn the_gateway_refuses_a_wrong_or_missing_subscription_key() {
        let env = Env::start(quick()).await;
        let wrong = env
            .http
            .post(format!("{}/collection/token/", env.base))
            .basic_auth(&env.user, Some(&env.key))
            .header(
                "Ocp-Apim-Subscription-Key",
                "0123456789abcdef0123456789abcdef",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401);
        assert_eq!(
            wrong.json::<Value>().await.unwrap(),
            json!({"statusCode": 401, "message": "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription."})
        );

        // The other product's key is no key for this one.
        let other = env
            .http
            .post(format!("{}/collection/token/", env.base))
            .basic_auth(&env.user, Some(&env.key))
            .header(
                "Ocp-Apim-Subscription-Key",
                env.subscription_key(Product::Disbursement),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(other.status(), 401);

        let missing = env
            .http
            .post(format!("{}/collection/token/", env.base))
            .basic_auth(&env.user, Some(&env.key))
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 401);
        let missing: Value = missing.json().await.unwrap();
        assert_eq!(missing["statusCode"], 401);
        assert!(
            missing["message"]
                .as_str()
                .unwrap()
                .starts_with("Access denied due to missing subscription key")
        );

        // A route the gateway does not know.
        let unknown = env
            .http
            .get(format!("{}/collection/v9/nothing", env.base))
            .send()
            .await
            .unwrap();
        assert_eq!(unknown.status(), 404);
        assert_eq!(
            unknown.json::<Value>().await.unwrap(),
            json!({"statusCode": 404, "message": "Resource not found"})
        );
    }

    #[tokio::test]
    async fn a_request_to_pay_succeeds_with_an_unsigned_put_callback_matching_the_status() {
        let env = Env::start(quick()).await;
        let token = env.token(Product::Collection).await;
        let (callback, received) = receiver().await;
        let (reference, answer) = env
            .initiate(Product::Collection, &token, "256772123456", Some(&callback))
            .await;
        assert_eq!(answer.status(), 202);
        assert_eq!(answer.text().await.unwrap(), "");

        let (status, pending) = env.status(Product::Collection, &token, &reference).await;
        assert_eq!(status, 200);
        assert_eq!(pending["status"], "PENDING");
        assert!(pending.get("financialTransactionId").is_none());

        let done = env.settled(Product::Collection, &token, &reference).await;
        assert_eq!(done["status"], "SUCCESSFUL");
        assert_eq!(done["amount"], "100", "amounts stay strings");
        assert_eq!(done["currency"], "EUR");
        assert_eq!(done["externalId"], "order-17");
        assert_eq!(
            done["payer"],
            json!({"partyIdType": "MSISDN", "partyId": "256772123456"})
        );
        assert_eq!(done["payerMessage"], "Order 17");
        assert_eq!(done["payeeNote"], "Thank you");
        assert!(done.get("reason").is_none());
        let id = done["financialTransactionId"].as_str().unwrap();
        assert!(id.len() >= 10 && id.chars().all(|c| c.is_ascii_digit()));

        let sent = wait_for_callbacks(&env.fake, 1).await;
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].method, "PUT");
        assert_eq!(sent[0].url, callback);
        assert_eq!(sent[0].status, Some(200));
        assert_eq!(sent[0].json(), done);

        let received = received.lock().unwrap().clone();
        assert_eq!(received.len(), 1);
        let (method, headers, body) = &received[0];
        assert_eq!(method, "PUT");
        assert_eq!(serde_json::from_str::<Value>(body).unwrap(), done);
        for name in headers.keys() {
            let name = name.as_str();
            assert!(
                !name.contains("signature") && name != "authorization",
                "the callback is unsigned, yet carries {name}"
            );
        }

        // The fake recorded what it was sent.
        let requests = env.fake.requests();
        let post = requests
            .iter()
            .find(|r| r.method == "POST" && r.path == "/collection/v1_0/requesttopay")
            .unwrap();
        assert_eq!(post.header("X-Reference-Id"), Some(reference.as_str()));
        assert_eq!(
            serde_json::from_str::<Value>(&post.body).unwrap()["amount"],
            "100"
        );
    }

    #[tokio::test]
    async fn each_failure_has_its_reason() {
        let env = Env::start(MtnFakeConfig {
            callback_delay: Duration::from_millis(100),
            ..quick()
        })
        .await;
        let token = env.token(Product::Collection).await;
        let (callback, received) = receiver().await;
        let cases = [
            ("256772120001", "APPROVAL_REJECTED"),
            ("256772120002", "NOT_ENOUGH_FUNDS"),
            ("256772120003", "EXPIRED"),
            ("256772120008", "PAYER_NOT_FOUND"),
            ("256772120009", UNDOCUMENTED_REASON),
        ];
        let mut references = Vec::new();
        for (number, _) in cases {
            let (reference, answer) = env
                .initiate(Product::Collection, &token, number, Some(&callback))
                .await;
            assert_eq!(
                answer.status(),
                202,
                "every POST is accepted, even a doomed one"
            );
            references.push(reference);
        }
        // The unanswered prompt is still pending when the others have failed.
        env.settled(Product::Collection, &token, &references[0])
            .await;
        let (_, waiting) = env
            .status(Product::Collection, &token, &references[2])
            .await;
        assert_eq!(waiting["status"], "PENDING");

        for ((number, reason), reference) in cases.iter().zip(&references) {
            let done = env.settled(Product::Collection, &token, reference).await;
            assert_eq!(done["status"], "FAILED", "{number}");
            assert_eq!(
                done["reason"], *reason,
                "{number}: reason is a plain string"
            );
            assert!(done.get("financialTransactionId").is_none());
        }
        let sent = wait_for_callbacks(&env.fake, cases.len()).await;
        assert_eq!(sent.len(), cases.len());
        assert_eq!(received.lock().unwrap().len(), cases.len());
    }

    #[tokio::test]
    async fn callbacks_lost_doubled_and_slow() {
        let env = Env::start(quick()).await;
        let token = env.token(Product::Collection).await;
        let (callback, _received) = receiver().await;
        let (lost, _) = env
            .initiate(Product::Collection, &token, "256772120004", Some(&callback))
            .await;
        let (twice, _) = env
            .initiate(Product::Collection, &token, "256772120005", Some(&callback))
            .await;
        let (slow, _) = env
            .initiate(Product::Collection, &token, "256772120006", Some(&callback))
            .await;
        for reference in [&lost, &twice, &slow] {
            let done = env.settled(Product::Collection, &token, reference).await;
            assert_eq!(done["status"], "SUCCESSFUL");
        }
        // The slow one is settled well before its callback comes (at 10×).
        let sent = wait_for_callbacks(&env.fake, 2).await;
        assert!(
            sent.iter()
                .all(|c| c.json()["payer"]["partyId"] == "256772120005")
        );
        assert_eq!(sent[0], sent[1], "the same callback twice");
        let sent = wait_for_callbacks(&env.fake, 3).await;
        assert_eq!(sent[2].json()["payer"]["partyId"], "256772120006");
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(
            env.fake.callbacks_sent().len(),
            3,
            "the lost one never comes"
        );
    }

    #[tokio::test]
    async fn a_reused_reference_is_a_conflict() {
        let env = Env::start(quick()).await;
        let token = env.token(Product::Collection).await;
        let reference = new_reference();
        let request = body(Product::Collection, "256772123456", "EUR");
        let first = env
            .initiate_with(Product::Collection, &token, &reference, &request, None)
            .await;
        assert_eq!(first.status(), 202);
        let second = env
            .initiate_with(Product::Collection, &token, &reference, &request, None)
            .await;
        assert_eq!(second.status(), 409);
        assert_eq!(
            second.json::<Value>().await.unwrap(),
            json!({"message": "Duplicated reference id. Creation of resource failed.", "code": "RESOURCE_ALREADY_EXIST"})
        );
        // Not a UUID v4, and an unknown reference.
        let not_v4 = env
            .initiate_with(Product::Collection, &token, "order-17", &request, None)
            .await;
        assert_eq!(not_v4.status(), 400);
        let (status, unknown) = env
            .status(Product::Collection, &token, &new_reference())
            .await;
        assert_eq!(status, 404);
        assert_eq!(
            unknown,
            json!({"message": "Requested resource was not found.", "code": "RESOURCE_NOT_FOUND"})
        );
        // A collection's reference is no transfer's.
        let disbursement = env.token(Product::Disbursement).await;
        let (status, _) = env
            .status(Product::Disbursement, &disbursement, &reference)
            .await;
        assert_eq!(status, 404);
    }

    #[tokio::test]
    async fn tokens_expire_and_belong_to_one_product() {
        let env = Env::start(quick()).await;
        let collection = env.token(Product::Collection).await;
        let balance = "/collection/v1_0/account/balance";
        let ok = env
            .authed(
                reqwest::Method::GET,
                Product::Collection,
                balance,
                &collection,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);

        // A collection token on a disbursement endpoint.
        let crossed = env
            .authed(
                reqwest::Method::GET,
                Product::Disbursement,
                "/disbursement/v1_0/account/balance",
                &collection,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(crossed.status(), 401);

        env.fake.expire_tokens();
        let expired = env
            .authed(
                reqwest::Method::GET,
                Product::Collection,
                balance,
                &collection,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(expired.status(), 401);
        assert_eq!(expired.json::<Value>().await.unwrap()["statusCode"], 401);

        let fresh = env.token(Product::Collection).await;
        assert_ne!(fresh, collection);
        let ok = env
            .authed(reqwest::Method::GET, Product::Collection, balance, &fresh)
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
        assert_eq!(env.fake.tokens_issued(), 2);

        // Over HTTP too, and by the clock.
        let expired: Value = env
            .http
            .post(format!("{}/__fake/expire-tokens", env.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(expired["expired"], 2);
        let short = Env::start(MtnFakeConfig {
            token_lifetime: Duration::from_millis(50),
            ..quick()
        })
        .await;
        let token = short.token(Product::Collection).await;
        tokio::time::sleep(Duration::from_millis(80)).await;
        let late = short
            .authed(reqwest::Method::GET, Product::Collection, balance, &token)
            .send()
            .await
            .unwrap();
        assert_eq!(late.status(), 401);

        // No token at all.
        let none = env
            .http
            .get(format!("{}{balance}", env.base))
            .header("X-Target-Environment", "sandbox")
            .header(
                "Ocp-Apim-Subscription-Key",
                env.subscription_key(Product::Collection),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(none.status(), 401);
    }

    #[tokio::test]
    async fn account_holders_are_active_and_named_unless_invalid() {
        let env = Env::start(quick()).await;
        for product in [Product::Collection, Product::Disbursement] {
            let token = env.token(product).await;
            let segment = product.segment();
            let get = |path: String| {
                env.authed(reqwest::Method::GET, product, &path, &token)
                    .send()
            };
            let active: Value = get(format!(
                "/{segment}/v1_0/accountholder/msisdn/256772123456/active"
            ))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
            assert_eq!(active, json!({"result": true}));
            let upper: Value = get(format!(
                "/{segment}/v1_0/accountholder/MSISDN/256772123456/active"
            ))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
            assert_eq!(upper, json!({"result": true}));
            let inactive: Value = get(format!(
                "/{segment}/v1_0/accountholder/msisdn/256772120008/active"
            ))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
            assert_eq!(inactive, json!({"result": false}));

            let info = get(format!(
                "/{segment}/v1_0/accountholder/msisdn/256772123456/basicuserinfo"
            ))
            .await
            .unwrap();
            assert_eq!(info.status(), 200);
            let info: Value = info.json().await.unwrap();
            for field in [
                "sub",
                "name",
                "given_name",
                "family_name",
                "birthdate",
                "locale",
                "gender",
                "status",
            ] {
                assert!(info[field].is_string(), "{field} in {info}");
            }
            assert_eq!(
                info["name"],
                format!(
                    "{} {}",
                    info["given_name"].as_str().unwrap(),
                    info["family_name"].as_str().unwrap()
                )
            );
            let again: Value = get(format!(
                "/{segment}/v1_0/accountholder/msisdn/256772123456/basicuserinfo"
            ))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
            assert_eq!(info, again, "the same number, the same person");
            let missing = get(format!(
                "/{segment}/v1_0/accountholder/msisdn/256772120008/basicuserinfo"
            ))
            .await
            .unwrap();
            assert_eq!(missing.status(), 404);
            let bad = get(format!(
                "/{segment}/v1_0/accountholder/phone/256772123456/active"
            ))
            .await
            .unwrap();
            assert_eq!(bad.status(), 400);
        }
    }

    #[tokio::test]
    async fn transfers_succeed_or_find_no_payee() {
        let env = Env::start(quick()).await;
        let token = env.token(Product::Disbursement).await;
        let (callback, received) = receiver().await;
        let (paid, answer) = env
            .initiate(
                Product::Disbursement,
                &token,
                "256772123456",
                Some(&callback),
            )
            .await;
        assert_eq!(answer.status(), 202);
        let (nobody, answer) = env
            .initiate(
                Product::Disbursement,
                &token,
                "256772120008",
                Some(&callback),
            )
            .await;
        assert_eq!(answer.status(), 202);

        let done = env.settled(Product::Disbursement, &token, &paid).await;
        assert_eq!(done["status"], "SUCCESSFUL");
        assert_eq!(
            done["payee"],
            json!({"partyIdType": "MSISDN", "partyId": "256772123456"})
        );
        assert!(done.get("payer").is_none());
        assert!(done["financialTransactionId"].is_string());
        let failed = env.settled(Product::Disbursement, &token, &nobody).await;
        assert_eq!(failed["status"], "FAILED");
        assert_eq!(failed["reason"], "PAYEE_NOT_FOUND");

        wait_for_callbacks(&env.fake, 2).await;
        let received = received.lock().unwrap().clone();
        assert!(received.iter().all(|(method, _, _)| method == "PUT"));

        // The float went down by the amount paid.
        let balance: Value = env
            .authed(
                reqwest::Method::GET,
                Product::Disbursement,
                "/disbursement/v1_0/account/balance",
                &token,
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            balance,
            json!({"availableBalance": "9999900", "currency": "EUR"})
        );

        // A collection token cannot pay out.
        let collection = env.token(Product::Collection).await;
        let refused = env
            .initiate_with(
                Product::Disbursement,
                &collection,
                &new_reference(),
                &body(Product::Disbursement, "256772123456", "EUR"),
                None,
            )
            .await;
        assert_eq!(refused.status(), 401);
    }

    #[tokio::test]
    async fn the_sandbox_takes_only_euros_and_its_own_environment() {
        let env = Env::start(quick()).await;
        let token = env.token(Product::Collection).await;
        let ugx = env
            .initiate_with(
                Product::Collection,
                &token,
                &new_reference(),
                &body(Product::Collection, "256772123456", "UGX"),
                None,
            )
            .await;
        assert_eq!(ugx.status(), 500);
        assert_eq!(
            ugx.text().await.unwrap(),
            r#"{"message":"Currency not supported.","code":"INVALID_CURRENCY"}"#
        );

        let elsewhere = env
            .http
            .post(format!("{}/collection/v1_0/requesttopay", env.base))
            .bearer_auth(&token)
            .header("X-Target-Environment", "mtnuganda")
            .header("X-Reference-Id", new_reference())
            .header(
                "Ocp-Apim-Subscription-Key",
                env.subscription_key(Product::Collection),
            )
            .json(&body(Product::Collection, "256772123456", "EUR"))
            .send()
            .await
            .unwrap();
        assert_eq!(elsewhere.status(), 500);
        assert_eq!(
            elsewhere.json::<Value>().await.unwrap()["code"],
            "NOT_ALLOWED_TARGET_ENVIRONMENT"
        );
    }

    #[tokio::test]
    async fn a_production_environment_takes_its_currency_and_has_no_provisioning() {
        let user = new_reference();
        let fake = MtnFake::new(MtnFakeConfig {
            target_environment: "mtnuganda".into(),
            preset_users: vec![(user.clone(), "preset-key".into())],
            ..quick()
        });
        let base = fake.spawn().await.unwrap();
        let http = client();
        let key = fake.config().collection_subscription_key.clone();
        let provisioning = http
            .post(format!("{base}/v1_0/apiuser"))
            .header("X-Reference-Id", new_reference())
            .header("Ocp-Apim-Subscription-Key", &key)
            .json(&json!({"providerCallbackHost": HOST}))
            .send()
            .await
            .unwrap();
        assert_eq!(provisioning.status(), 404);

        let token: Value = http
            .post(format!("{base}/collection/token/"))
            .basic_auth(&user, Some("preset-key"))
            .header("Ocp-Apim-Subscription-Key", &key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = token["access_token"].as_str().unwrap();
        for (currency, status) in [("UGX", 202), ("EUR", 500)] {
            let answer = http
                .post(format!("{base}/collection/v1_0/requesttopay"))
                .bearer_auth(token)
                .header("X-Target-Environment", "mtnuganda")
                .header("X-Reference-Id", new_reference())
                .header("Ocp-Apim-Subscription-Key", &key)
                .json(&body(Product::Collection, "256772123456", currency))
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), status, "{currency}");
        }
    }

    #[tokio::test]
    async fn bodies_are_checked_as_the_platform_does() {
        let env = Env::start(quick()).await;
        let token = env.token(Product::Collection).await;
        let mut number_amount = body(Product::Collection, "256772123456", "EUR");
        number_amount["amount"] = json!(100);
        let mut apostrophe = body(Product::Collection, "256772123456", "EUR");
        apostrophe["payerMessage"] = json!("Mama's shop");
        let mut long_note = body(Product::Collection, "256772123456", "EUR");
        long_note["payeeNote"] = json!("x".repeat(161));
        let plus = body(Product::Collection, "+256772123456", "EUR");
        for (case, request) in [
            ("a number amount", number_amount),
            ("an apostrophe", apostrophe),
            ("a long note", long_note),
            ("a + in the MSISDN", plus),
        ] {
            let answer = env
                .initiate_with(
                    Product::Collection,
                    &token,
                    &new_reference(),
                    &request,
                    None,
                )
                .await;
            assert_eq!(answer.status(), 400, "{case}");
            assert_eq!(answer.json::<Value>().await.unwrap()["code"], "BAD_REQUEST");
        }
        // A callback to a host the API user did not register.
        let (_, answer) = env
            .initiate(
                Product::Collection,
                &token,
                "256772123456",
                Some("http://example.org/callback"),
            )
            .await;
        assert_eq!(answer.status(), 500);
        assert_eq!(
            answer.json::<Value>().await.unwrap()["code"],
            "INVALID_CALLBACK_URL_HOST"
        );
    }

    #[tokio::test]
    async fn the_first_request_for_a_slow_number_hangs_but_lands() {
        let env = Env::start(quick()).await;
        let token = env.token(Product::Collection).await;
        let reference = new_reference();
        let request = body(Product::Collection, "256772120007", "EUR");
        let impatient = env
            .authed(
                reqwest::Method::POST,
                Product::Collection,
                "/collection/v1_0/requesttopay",
                &token,
            )
            .header("X-Reference-Id", &reference)
            .timeout(Duration::from_millis(150))
            .json(&request)
            .send()
            .await;
        assert!(impatient.unwrap_err().is_timeout());

        // The request landed: a retry with its reference is a conflict, and
        // the status query finds it.
        let retry = env
            .initiate_with(Product::Collection, &token, &reference, &request, None)
            .await;
        assert_eq!(retry.status(), 409);
        let done = env.settled(Product::Collection, &token, &reference).await;
        assert_eq!(done["status"], "SUCCESSFUL");

        // A new request for the same number is answered at once.
        let started = Instant::now();
        let (_, answer) = env
            .initiate(Product::Collection, &token, "256772120007", None)
            .await;
        assert_eq!(answer.status(), 202);
        assert!(started.elapsed() < Duration::from_millis(500));
    }

    #[tokio::test]
    async fn the_controls_answer_over_http() {
        let env = Env::start(quick()).await;
        let token = env.token(Product::Collection).await;
        let (callback, _received) = receiver().await;
        let (reference, _) = env
            .initiate(Product::Collection, &token, "256772123456", Some(&callback))
            .await;
        env.settled(Product::Collection, &token, &reference).await;
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
        assert_eq!(requests[0].path, "/v1_0/apiuser");

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

        // The collection balance grew by the payment.
        let balance: Value = env
            .authed(
                reqwest::Method::GET,
                Product::Collection,
                "/collection/v1_0/account/balance",
                &token,
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            balance,
            json!({"availableBalance": "100", "currency": "EUR"})
        );
    }

    #[test]
    fn amounts_parse_and_format() {
        assert_eq!(parse_amount("100"), Some(100_000_000));
        assert_eq!(parse_amount("100.5"), Some(100_500_000));
        assert_eq!(parse_amount("0"), None);
        assert_eq!(parse_amount("-1"), None);
        assert_eq!(parse_amount("1."), None);
        assert_eq!(parse_amount("1e3"), None);
        assert_eq!(format_amount(100_500_000), "100.5");
        assert_eq!(format_amount(9_999_900_000_000), "9999900");
    }
}
