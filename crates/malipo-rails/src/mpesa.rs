//! M-Pesa through Safaricom's Daraja API: collections by STK Push (Lipa na
//! M-Pesa Online), customer-initiated paybill payments (C2B validation and
//! confirmation), payouts by B2C, and the status queries that find lost
//! callbacks.
//!
//! # Money at the edge
//!
//! Daraja moves whole shillings. Malipo's amounts are KES cents; an amount
//! with cents is refused here, never rounded (a customer is never asked for
//! more, nor a payout shortened). Daraja's amounts come back as JSON numbers
//! (sometimes `1.00`) and are read back to cents exactly.
//!
//! # Outcomes
//!
//! Every result code Daraja documents for STK Push and B2C maps to a
//! Malipo outcome in [`stk_outcome`] and [`b2c_outcome`]. A code not in
//! those tables is *unknown*: the payment stays pending and is polled (and
//! logged), never taken for a success or a failure.
//!
//! # Callbacks are not signed
//!
//! Daraja does not sign its callbacks. A collection's callback is read
//! here, but Malipo applies it only after an STK Push Query agrees
//! (`confirm_by_query` in [`Capabilities`]).
//!
//! # Tokens
//!
//! An OAuth token (`/oauth/v1/generate`) is kept until a minute before it
//! expires; a stale-token answer (Daraja's 404 `404.001.03`, or a 401)
//! drops it and the call is made once more with a new one.
//!
//! # Callback URLs
//!
//! Daraja refuses URLs that contain "mpesa" (or "M-Pesa", "safaricom"):
//! its callbacks come to `/v1/inbound/daraja`, which Malipo reads as the
//! `mpesa` rail ([`crate::inbound_rail`]).
//!
//! # No idempotency for STK Push
//!
//! Daraja takes no idempotency key for STK Push: a prompt retried after a
//! time-out is a second prompt. Malipo retries (a lost request is more
//! common than a slow one); the first prompt's callback, if it comes, names
//! a transaction Malipo never recorded and is kept, flagged, for the
//! operator to reconcile, never applied to another payment.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use malipo_core::{Currency, Direction, Money};
use serde_json::{Value, json};

use crate::connector::{self, ConnectorOptions};
use crate::{
    Capabilities, CollectionRequest, CustomerPayment, Destination, FailureCode, Method,
    PayoutRequest, Rail, RailError, RailStatus, StartOutcome, StatusReport,
};

pub const ID: &str = "mpesa";
const SANDBOX_URL: &str = "https://sandbox.safaricom.co.ke";
const PRODUCTION_URL: &str = "https://api.safaricom.co.ke";
/// A token is renewed this long before Daraja says it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);
/// Daraja's limits on what the customer sees on the prompt.
const ACCOUNT_REFERENCE_MAX: usize = 12;
const TRANSACTION_DESC_MAX: usize = 13;
/// Daraja's answer to an STK Push Query while the customer has not yet
/// answered: an HTTP 500 with this error code.
const STILL_PROCESSING: &str = "500.001.1001";

/// A merchant's (or the platform's) Daraja app and short codes: the
/// settings and credentials of `config::SPECS`' `mpesa`, already checked.
#[derive(Debug, Clone)]
pub struct MpesaConfig {
    pub base_url: String,
    pub shortcode: String,
    pub transaction_type: String,
    /// STK PartyB: the till for buy-goods, else the short code.
    pub party_b: String,
    pub b2c_shortcode: String,
    pub initiator_name: String,
    pub consumer_key: String,
    pub consumer_secret: String,
    pub passkey: String,
    pub security_credential: String,
}

impl MpesaConfig {
    /// From a stored configuration's settings and opened credentials.
    pub fn from_maps(
        settings: &BTreeMap<String, String>,
        credentials: &BTreeMap<String, String>,
    ) -> Result<Self, String> {
        let setting = |name: &str| settings.get(name).cloned().unwrap_or_default();
        let credential = |name: &str| credentials.get(name).cloned().unwrap_or_default();
        let base_url = connector::base_url(settings, SANDBOX_URL, PRODUCTION_URL);
        let shortcode = setting("shortcode");
        if shortcode.is_empty() {
            return Err("settings.shortcode is missing".to_owned());
        }
        let transaction_type = settings
            .get("transaction_type")
            .cloned()
            .unwrap_or_else(|| "CustomerPayBillOnline".to_owned());
        let party_b = settings
            .get("till_number")
            .cloned()
            .unwrap_or_else(|| shortcode.clone());
        Ok(Self {
            base_url,
            b2c_shortcode: settings
                .get("b2c_shortcode")
                .cloned()
                .unwrap_or_else(|| shortcode.clone()),
            shortcode,
            transaction_type,
            party_b,
            initiator_name: setting("initiator_name"),
            consumer_key: credential("consumer_key"),
            consumer_secret: credential("consumer_secret"),
            passkey: credential("passkey"),
            security_credential: credential("security_credential"),
        })
    }
}

pub struct Mpesa {
    config: MpesaConfig,
    capabilities: Capabilities,
    http: reqwest::Client,
    token: Mutex<Option<(String, Instant)>>,
    /// Where Daraja posts B2C results and queue time-outs.
    result_url: String,
}

/// What a Daraja call came back with.
enum Answer {
    Ok(Value),
    /// A 4xx/5xx with Daraja's `errorCode` and `errorMessage`.
    Refused {
        status: u16,
        code: String,
        message: String,
    },
}

impl Mpesa {
    /// `result_url`: where Daraja should post B2C results (Malipo's
    /// `/v1/inbound/mpesa`).
    pub fn new(config: MpesaConfig, options: &ConnectorOptions, result_url: String) -> Self {
        let http = connector::http_client(options);
        Self {
            config,
            capabilities: capabilities(options.poll_after_ms),
            http,
            token: Mutex::new(None),
            result_url,
        }
    }

    fn unavailable(reason: impl std::fmt::Display) -> RailError {
        RailError::Unavailable {
            rail: ID,
            reason: reason.to_string(),
        }
    }

    async fn fetch_token(&self) -> Result<String, RailError> {
        let url = format!(
            "{}/oauth/v1/generate?grant_type=client_credentials",
            self.config.base_url
        );
        let response = self
            .http
            .get(&url)
            .basic_auth(
                &self.config.consumer_key,
                Some(&self.config.consumer_secret),
            )
            .send()
            .await
            .map_err(Self::unavailable)?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let token = body["access_token"].as_str().unwrap_or_default().to_owned();
        if !status.is_success() || token.is_empty() {
            return Err(Self::unavailable(format!(
                "Daraja refused the app's credentials ({status}): {}",
                error_text(&body)
            )));
        }
        // `expires_in` is a string ("3599") on Daraja; a number is taken too.
        let seconds = match &body["expires_in"] {
            Value::String(text) => text.parse().unwrap_or(3_599),
            other => other.as_u64().unwrap_or(3_599),
        };
        let lifetime = Duration::from_secs(seconds).saturating_sub(TOKEN_MARGIN);
        *self.token.lock().expect("the token lock") =
            Some((token.clone(), Instant::now() + lifetime));
        Ok(token)
    }

    async fn token(&self) -> Result<String, RailError> {
        let cached = self
            .token
            .lock()
            .expect("the token lock")
            .as_ref()
            .filter(|(_, until)| *until > Instant::now())
            .map(|(token, _)| token.clone());
        match cached {
            Some(token) => Ok(token),
            None => self.fetch_token().await,
        }
    }

    /// POSTs `body` to `path` with a token; on a 401 once more with a new
    /// token. Network errors and time-outs are [`RailError::Unavailable`].
    async fn post(&self, path: &str, body: &Value) -> Result<Answer, RailError> {
        for attempt in 0..2 {
            let token = self.token().await?;
            let response = self
                .http
                .post(format!("{}{path}", self.config.base_url))
                .bearer_auth(&token)
                .json(body)
                .send()
                .await
                .map_err(Self::unavailable)?;
            let status = response.status().as_u16();
            let answer: Value = response.json().await.unwrap_or(Value::Null);
            // Daraja answers a stale token with 404 `404.001.03` ("Invalid
            // Access Token"), not 401.
            let stale_token = status == 401
                || answer["errorCode"]
                    .as_str()
                    .is_some_and(|code| code.starts_with("404.001"));
            if stale_token && attempt == 0 {
                *self.token.lock().expect("the token lock") = None;
                continue;
            }
            if (200..300).contains(&status) {
                return Ok(Answer::Ok(answer));
            }
            return Ok(Answer::Refused {
                status,
                code: answer["errorCode"].as_str().unwrap_or_default().to_owned(),
                message: error_text(&answer),
            });
        }
        Err(Self::unavailable("Daraja refused a fresh token"))
    }

    /// The STK Password and its Timestamp: base64(shortcode + passkey +
    /// timestamp), the timestamp in Nairobi time as Daraja expects.
    fn password(&self) -> (String, String) {
        let timestamp = nairobi_timestamp();
        let password = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}{}{timestamp}",
            self.config.shortcode, self.config.passkey
        ));
        (password, timestamp)
    }

    async fn stk_query(&self, checkout_request_id: &str) -> Result<StatusReport, RailError> {
        let (password, timestamp) = self.password();
        let answer = self
            .post(
                "/mpesa/stkpushquery/v1/query",
                &json!({
                    "BusinessShortCode": self.config.shortcode,
                    "Password": password,
                    "Timestamp": timestamp,
                    "CheckoutRequestID": checkout_request_id,
                }),
            )
            .await?;
        let status = match answer {
            Answer::Ok(body) => {
                let code = number_or_string(&body["ResultCode"]);
                match code {
                    Some(code) => stk_outcome(code, &error_text_result(&body)),
                    None => RailStatus::Pending,
                }
            }
            // Daraja's 500.001.1001 also says "Wrong credentials" or
            // "Unable to lock subscriber": only "being processed" is pending.
            Answer::Refused { code, message, .. }
                if code == STILL_PROCESSING && message.to_lowercase().contains("processed") =>
            {
                RailStatus::Pending
            }
            Answer::Refused {
                status, message, ..
            } if status >= 500 => return Err(Self::unavailable(message)),
            Answer::Refused { message, .. } => {
                return Err(Self::unavailable(format!(
                    "STK Push Query refused: {message}"
                )));
            }
        };
        Ok(StatusReport {
            rail_transaction_id: checkout_request_id.to_owned(),
            reference: None,
            status,
            amount: None,
        })
    }

    /// Asks for a B2C payout's status: Daraja answers later, at the result
    /// URL; the original ConversationID rides in `Occasion` so the result
    /// names the payout it is about.
    async fn b2c_status_query(&self, conversation_id: &str) -> Result<StatusReport, RailError> {
        let answer = self
            .post(
                "/mpesa/transactionstatus/v1/query",
                &json!({
                    "Initiator": self.config.initiator_name,
                    "SecurityCredential": self.config.security_credential,
                    "CommandID": "TransactionStatusQuery",
                    "OriginalConversationID": conversation_id,
                    "TransactionID": "",
                    "PartyA": self.config.b2c_shortcode,
                    "IdentifierType": "4",
                    "ResultURL": self.result_url,
                    "QueueTimeOutURL": self.result_url,
                    "Remarks": "status",
                    "Occasion": conversation_id,
                }),
            )
            .await?;
        if let Answer::Refused { message, .. } = answer {
            return Err(Self::unavailable(format!(
                "Transaction Status refused: {message}"
            )));
        }
        Ok(StatusReport {
            rail_transaction_id: conversation_id.to_owned(),
            reference: None,
            status: RailStatus::Pending,
            amount: None,
        })
    }
}

fn capabilities(poll_after_ms: i64) -> Capabilities {
    Capabilities {
        id: ID,
        name: "M-Pesa (Safaricom Daraja)",
        countries: vec!["KE"],
        currencies: vec![Currency::parse("KES").expect("KES is a currency")],
        methods: vec![Method::MobileMoney],
        directions: vec![Direction::Collection, Direction::Payout],
        amount_min_minor: 100,
        amount_max_minor: 25_000_000,
        poll_after_ms,
        signed_callbacks: false,
        payout_query_confirms: false,
    }
}

/// KES cents as whole shillings; cents are refused.
fn whole_shillings(amount: Money) -> Result<i64, String> {
    if amount.currency.code() != "KES" {
        return Err(format!("M-Pesa moves KES, not {}", amount.currency.code()));
    }
    if amount.amount_minor % 100 != 0 {
        return Err("M-Pesa moves whole shillings: the amount must have no cents".to_owned());
    }
    Ok(amount.amount_minor / 100)
}

/// A Daraja amount (a JSON number or string of shillings, maybe `1.00`)
/// as KES cents, exactly.
fn shillings_to_money(value: &Value) -> Option<Money> {
    let text = match value {
        Value::Number(number) => number.to_string(),
        Value::String(text) => text.clone(),
        _ => return None,
    };
    let kes = Currency::parse("KES").ok()?;
    Money::parse_major(text.trim(), kes).ok().or_else(|| {
        // `1.0` from a float: at most two decimals are meaningful.
        let (whole, fraction) = text.split_once('.')?;
        let cents: String = fraction.chars().chain("00".chars()).take(2).collect();
        let rest = fraction.get(2..).unwrap_or("");
        if !rest.bytes().all(|b| b == b'0') {
            return None;
        }
        Some(Money::new(
            whole.parse::<i64>().ok()? * 100 + cents.parse::<i64>().ok()?,
            kes,
        ))
    })
}

/// `+254712345678` → `254712345678`.
fn msisdn(phone: &str) -> String {
    phone.trim_start_matches('+').to_owned()
}

fn number_or_string(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

fn error_text(body: &Value) -> String {
    body["errorMessage"]
        .as_str()
        .or_else(|| body["ResponseDescription"].as_str())
        .unwrap_or("no message")
        .to_owned()
}

fn error_text_result(body: &Value) -> String {
    body["ResultDesc"].as_str().unwrap_or("").to_owned()
}

/// YYYYMMDDHHMMSS in East Africa Time (UTC+3, no daylight saving).
fn nairobi_timestamp() -> String {
    let now = time::OffsetDateTime::now_utc().to_offset(time::macros::offset!(+3));
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

/// What an STK Push result code means. Daraja's documented codes; any
/// other is unknown: the payment stays pending and is polled.
pub fn stk_outcome(code: i64, description: &str) -> RailStatus {
    let failed = |failure, message: &str| RailStatus::Failed {
        failure,
        message: format!("M-Pesa {code}: {message}"),
    };
    match code {
        0 => RailStatus::Succeeded,
        1 => failed(
            FailureCode::InsufficientFunds,
            "the balance is insufficient",
        ),
        1032 => failed(FailureCode::Declined, "the customer cancelled the prompt"),
        2001 => failed(FailureCode::Declined, "the customer entered a wrong PIN"),
        1037 => failed(FailureCode::Timeout, "the customer could not be reached"),
        1019 => failed(FailureCode::Timeout, "the transaction expired"),
        1001 => failed(
            FailureCode::RailError,
            "another transaction is in progress for this customer",
        ),
        1025 | 9999 => failed(FailureCode::RailError, "the prompt could not be sent"),
        17 | 26 => failed(FailureCode::RailError, "M-Pesa was busy"),
        _ => {
            tracing::warn!(
                code,
                description,
                "an STK result code Daraja does not document: left pending and polled"
            );
            RailStatus::Pending
        }
    }
}

/// What a B2C result code means; unknown codes stay pending.
pub fn b2c_outcome(code: i64, description: &str) -> RailStatus {
    let failed = |failure, message: &str| RailStatus::Failed {
        failure,
        message: format!("M-Pesa {code}: {message}"),
    };
    match code {
        0 => RailStatus::Succeeded,
        1 => failed(
            FailureCode::RailError,
            "the short code's utility account has too little money",
        ),
        2040 | 2 | 8 => failed(
            FailureCode::InvalidAccount,
            "the receiver cannot take this payment (not a registered M-Pesa customer, or over a limit)",
        ),
        2001 | 8006 | 15 | 20 | 21 => failed(
            FailureCode::RailError,
            "the initiator's credentials or permissions are wrong",
        ),
        11 | 2028 | 17 | 26 => failed(FailureCode::RailError, "M-Pesa refused the payout"),
        _ => {
            tracing::warn!(
                code,
                description,
                "a B2C result code Daraja does not document: left pending and polled"
            );
            RailStatus::Pending
        }
    }
}

/// `Item: [{"Name": …, "Value": …}]` (metadata) or `[{"Key": …, "Value": …}]`
/// (B2C result parameters) as a map; an item without a value is left out.
fn items(list: &Value, key: &str) -> BTreeMap<String, Value> {
    let list = match list {
        Value::Array(items) => items.clone(),
        // One item comes as an object, not a list.
        Value::Object(_) => vec![list.clone()],
        _ => Vec::new(),
    };
    list.iter()
        .filter_map(|item| {
            Some((
                item[key].as_str()?.to_owned(),
                item.get("Value")
                    .cloned()
                    .filter(|value| !value.is_null())?,
            ))
        })
        .collect()
}

fn invalid(reason: impl Into<String>) -> RailError {
    RailError::InvalidCallback(reason.into())
}

/// Reads a callback's body: an STK callback, a B2C result or queue
/// time-out, or a Transaction Status result (naming the payout in
/// `Occasion`).
pub fn parse_result(body: &[u8]) -> Result<StatusReport, RailError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|error| invalid(format!("not JSON: {error}")))?;
    let stk = &value["Body"]["stkCallback"];
    if stk.is_object() {
        let checkout = stk["CheckoutRequestID"]
            .as_str()
            .ok_or_else(|| invalid("stkCallback without CheckoutRequestID"))?;
        let code = number_or_string(&stk["ResultCode"])
            .ok_or_else(|| invalid("stkCallback without ResultCode"))?;
        // A failed STK callback has no CallbackMetadata at all.
        let metadata = items(&stk["CallbackMetadata"]["Item"], "Name");
        return Ok(StatusReport {
            rail_transaction_id: checkout.to_owned(),
            reference: None,
            status: stk_outcome(code, stk["ResultDesc"].as_str().unwrap_or("")),
            amount: metadata.get("Amount").and_then(shillings_to_money),
        });
    }
    let result = &value["Result"];
    if result.is_object() {
        let code = number_or_string(&result["ResultCode"])
            .ok_or_else(|| invalid("Result without ResultCode"))?;
        let description = result["ResultDesc"].as_str().unwrap_or("");
        let parameters = items(&result["ResultParameters"]["ResultParameter"], "Key");
        let references = items(&result["ReferenceData"]["ReferenceItem"], "Key");
        // A status query's result names the payout it asked about in
        // Occasion; a B2C result is about its own ConversationID.
        let (conversation, status) = match references.get("Occasion").and_then(Value::as_str) {
            Some(original) if original.starts_with("AG_") => {
                let status = match parameters.get("TransactionStatus").and_then(Value::as_str) {
                    Some("Completed") if code == 0 => RailStatus::Succeeded,
                    Some("Failed" | "Cancelled" | "Declined" | "Reversed") => RailStatus::Failed {
                        failure: FailureCode::RailError,
                        message: format!("M-Pesa status query: {description}"),
                    },
                    _ => RailStatus::Pending,
                };
                (original.to_owned(), status)
            }
            // `ResultType` 1: the request timed out in M-Pesa's queue (the
            // QueueTimeOutURL's notice) and was never processed.
            _ if number_or_string(&result["ResultType"]) == Some(1) => (
                result["ConversationID"]
                    .as_str()
                    .ok_or_else(|| invalid("Result without ConversationID"))?
                    .to_owned(),
                RailStatus::Failed {
                    failure: FailureCode::Timeout,
                    message: format!("M-Pesa timed the request out in its queue: {description}"),
                },
            ),
            _ => (
                result["ConversationID"]
                    .as_str()
                    .ok_or_else(|| invalid("Result without ConversationID"))?
                    .to_owned(),
                b2c_outcome(code, description),
            ),
        };
        let amount = parameters
            .get("TransactionAmount")
            .or_else(|| parameters.get("Amount"))
            .and_then(shillings_to_money);
        return Ok(StatusReport {
            rail_transaction_id: conversation,
            reference: result["OriginatorConversationID"]
                .as_str()
                .filter(|id| id.starts_with("po_") || id.starts_with("re_"))
                .map(str::to_owned),
            status,
            amount,
        });
    }
    Err(invalid("neither an STK callback nor a B2C result"))
}

/// A C2B validation or confirmation: a customer paid the short code with
/// an account number (BillRefNumber). `None` for other callbacks.
pub fn parse_c2b(body: &[u8]) -> Result<Option<CustomerPayment>, RailError> {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Ok(None);
    };
    let (Some(id), Some(account)) = (value["TransID"].as_str(), value["BillRefNumber"].as_str())
    else {
        return Ok(None);
    };
    let amount = shillings_to_money(&value["TransAmount"])
        .ok_or_else(|| invalid("C2B without a readable TransAmount"))?;
    // MSISDN is masked (2547*****126) or hashed on newer Daraja: kept only
    // when it is a whole number.
    let phone = value["MSISDN"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| value["MSISDN"].as_u64().map(|n| n.to_string()))
        .filter(|digits| digits.len() >= 9 && digits.bytes().all(|b| b.is_ascii_digit()))
        .map(|digits| format!("+{digits}"));
    let name: Vec<&str> = ["FirstName", "MiddleName", "LastName"]
        .iter()
        .filter_map(|key| value[*key].as_str())
        .filter(|part| !part.is_empty())
        .collect();
    Ok(Some(CustomerPayment {
        rail_transaction_id: id.to_owned(),
        account_reference: account.trim().to_owned(),
        amount,
        phone,
        payer_name: Some(name.join(" ")).filter(|name| !name.is_empty()),
    }))
}

#[async_trait::async_trait]
impl Rail for Mpesa {
    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    async fn start_collection(
        &self,
        request: &CollectionRequest,
    ) -> Result<StartOutcome, RailError> {
        let amount = match whole_shillings(request.amount) {
            Ok(amount) => amount,
            Err(message) => {
                return Ok(StartOutcome::Rejected {
                    failure: FailureCode::RailError,
                    message,
                });
            }
        };
        let (password, timestamp) = self.password();
        let phone = msisdn(&request.phone);
        // What the customer sees on the prompt: the payment's id, short.
        let account: String = request
            .reference
            .rsplit('_')
            .next()
            .unwrap_or(&request.reference)
            .chars()
            .rev()
            .take(ACCOUNT_REFERENCE_MAX)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let description: String = if request.description.trim().is_empty() {
            "Payment".to_owned()
        } else {
            request
                .description
                .chars()
                .take(TRANSACTION_DESC_MAX)
                .collect()
        };
        let answer = self
            .post(
                "/mpesa/stkpush/v1/processrequest",
                &json!({
                    "BusinessShortCode": self.config.shortcode,
                    "Password": password,
                    "Timestamp": timestamp,
                    "TransactionType": self.config.transaction_type,
                    "Amount": amount,
                    "PartyA": phone,
                    "PartyB": self.config.party_b,
                    "PhoneNumber": phone,
                    "CallBackURL": request.callback_url,
                    "AccountReference": account,
                    "TransactionDesc": description,
                }),
            )
            .await?;
        match answer {
            Answer::Ok(body) => match body["CheckoutRequestID"].as_str() {
                Some(id) if number_or_string(&body["ResponseCode"]) == Some(0) => {
                    Ok(StartOutcome::Accepted {
                        rail_transaction_id: id.to_owned(),
                    })
                }
                _ => Ok(StartOutcome::Rejected {
                    failure: FailureCode::RailError,
                    message: format!("M-Pesa: {}", error_text(&body)),
                }),
            },
            Answer::Refused {
                status, message, ..
            } if status >= 500 => Err(Self::unavailable(message)),
            Answer::Refused { code, message, .. } => Ok(StartOutcome::Rejected {
                failure: if message.to_lowercase().contains("phone")
                    || message.to_lowercase().contains("party")
                {
                    FailureCode::InvalidAccount
                } else {
                    FailureCode::RailError
                },
                message: format!("M-Pesa refused the prompt ({code}): {message}"),
            }),
        }
    }

    async fn start_payout(&self, request: &PayoutRequest) -> Result<StartOutcome, RailError> {
        let Destination::Wallet { phone } = &request.destination else {
            return Err(RailError::Unsupported {
                rail: ID,
                what: "payouts to bank accounts".to_owned(),
            });
        };
        let amount = match whole_shillings(request.amount) {
            Ok(amount) => amount,
            Err(message) => {
                return Ok(StartOutcome::Rejected {
                    failure: FailureCode::RailError,
                    message,
                });
            }
        };
        let remarks: String = if request.description.trim().is_empty() {
            "Payout".to_owned()
        } else {
            request.description.chars().take(100).collect()
        };
        // OriginatorConversationID is the payout's own id: a retry after a
        // time-out is the same request to Daraja.
        let answer = self
            .post(
                "/mpesa/b2c/v3/paymentrequest",
                &json!({
                    "OriginatorConversationID": request.reference,
                    "InitiatorName": self.config.initiator_name,
                    "SecurityCredential": self.config.security_credential,
                    "CommandID": "BusinessPayment",
                    "Amount": amount,
                    "PartyA": self.config.b2c_shortcode,
                    "PartyB": msisdn(phone),
                    "Remarks": remarks,
                    "QueueTimeOutURL": request.callback_url,
                    "ResultURL": request.callback_url,
                    "Occassion": request.reference,
                }),
            )
            .await?;
        match answer {
            Answer::Ok(body) => match body["ConversationID"].as_str() {
                Some(id) if number_or_string(&body["ResponseCode"]) == Some(0) => {
                    Ok(StartOutcome::Accepted {
                        rail_transaction_id: id.to_owned(),
                    })
                }
                _ => Ok(StartOutcome::Rejected {
                    failure: FailureCode::RailError,
                    message: format!("M-Pesa: {}", error_text(&body)),
                }),
            },
            Answer::Refused {
                status, message, ..
            } if status >= 500 => Err(Self::unavailable(message)),
            Answer::Refused { code, message, .. } => Ok(StartOutcome::Rejected {
                failure: FailureCode::RailError,
                message: format!("M-Pesa refused the payout ({code}): {message}"),
            }),
        }
    }

    async fn query_status(&self, rail_transaction_id: &str) -> Result<StatusReport, RailError> {
        if rail_transaction_id.starts_with("AG_") {
            self.b2c_status_query(rail_transaction_id).await
        } else {
            self.stk_query(rail_transaction_id).await
        }
    }

    fn parse_callback(
        &self,
        _headers: &[(String, String)],
        body: &[u8],
    ) -> Result<StatusReport, RailError> {
        parse_result(body)
    }

    async fn lookup_account_name(&self, _phone: &str) -> Result<String, RailError> {
        Err(RailError::Unsupported {
            rail: ID,
            what: "looking up a wallet's name (Daraja has no such API)".to_owned(),
        })
    }

    fn parse_customer_payment(
        &self,
        _headers: &[(String, String)],
        body: &[u8],
    ) -> Result<Option<CustomerPayment>, RailError> {
        parse_c2b(body)
    }

    /// Registers `…/v1/inbound/mpesa/validate` and `…/v1/inbound/mpesa`
    /// for the short code's C2B payments. `ResponseType` `Cancelled`: when
    /// Malipo cannot be reached to validate, Daraja cancels the payment
    /// rather than take money for a number nobody checked.
    async fn register_customer_payment_urls(&self) -> Result<(), RailError> {
        let answer = self
            .post(
                "/mpesa/c2b/v1/registerurl",
                &json!({
                    "ShortCode": self.config.shortcode,
                    "ResponseType": "Cancelled",
                    "ConfirmationURL": self.result_url,
                    "ValidationURL": format!("{}/validate", self.result_url),
                }),
            )
            .await?;
        match answer {
            Answer::Ok(body) if number_or_string(&body["ResponseCode"]) == Some(0) => Ok(()),
            Answer::Ok(body) => Err(Self::unavailable(error_text(&body))),
            Answer::Refused { message, .. } => Err(Self::unavailable(format!(
                "Daraja refused the C2B URLs: {message}"
            ))),
        }
    }

    /// Daraja's C2B validation answer: `0` accepts; `C2B00012` refuses an
    /// invalid account number.
    fn validation_answer(&self, refusal: Option<&str>) -> (u16, String) {
        let body = match refusal {
            None => json!({"ResultCode": "0", "ResultDesc": "Accepted"}),
            Some(_) => json!({"ResultCode": "C2B00012", "ResultDesc": "Rejected"}),
        };
        (200, body.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_cross_the_edge_exactly() {
        let kes = Currency::parse("KES").unwrap();
        assert_eq!(whole_shillings(Money::new(150_000, kes)), Ok(1_500));
        assert!(whole_shillings(Money::new(150_050, kes)).is_err());
        assert_eq!(shillings_to_money(&json!(1.00)), Some(Money::new(100, kes)));
        assert_eq!(
            shillings_to_money(&json!(1500)),
            Some(Money::new(150_000, kes))
        );
        assert_eq!(
            shillings_to_money(&json!("10.50")),
            Some(Money::new(1_050, kes))
        );
        assert_eq!(shillings_to_money(&json!(null)), None);
    }

    #[test]
    fn every_documented_stk_code_maps_and_an_unknown_one_stays_pending() {
        assert_eq!(stk_outcome(0, ""), RailStatus::Succeeded);
        for (code, failure) in [
            (1, FailureCode::InsufficientFunds),
            (1032, FailureCode::Declined),
            (2001, FailureCode::Declined),
            (1037, FailureCode::Timeout),
            (1019, FailureCode::Timeout),
            (1001, FailureCode::RailError),
            (1025, FailureCode::RailError),
            (9999, FailureCode::RailError),
        ] {
            assert!(
                matches!(stk_outcome(code, ""), RailStatus::Failed { failure: f, .. } if f == failure),
                "{code}"
            );
        }
        assert_eq!(
            stk_outcome(4999, "still under processing"),
            RailStatus::Pending
        );
        assert_eq!(stk_outcome(5999, "new"), RailStatus::Pending);
        assert_eq!(b2c_outcome(7777, "new"), RailStatus::Pending);
    }

    #[test]
    fn callbacks_are_read_with_their_quirks() {
        let success = br#"{"Body":{"stkCallback":{"MerchantRequestID":"1","CheckoutRequestID":"ws_CO_1",
            "ResultCode":0,"ResultDesc":"ok","CallbackMetadata":{"Item":[{"Name":"Amount","Value":1.00},
            {"Name":"MpesaReceiptNumber","Value":"RLA0R69NXM"},{"Name":"Balance"},
            {"Name":"PhoneNumber","Value":254712345678}]}}}}"#;
        let report = parse_result(success).unwrap();
        assert_eq!(report.rail_transaction_id, "ws_CO_1");
        assert_eq!(report.status, RailStatus::Succeeded);
        assert_eq!(report.amount.unwrap().amount_minor, 100);
        let declined =
            br#"{"Body":{"stkCallback":{"CheckoutRequestID":"ws_CO_2","ResultCode":1032,"ResultDesc":"cancelled"}}}"#;
        let report = parse_result(declined).unwrap();
        assert!(matches!(
            report.status,
            RailStatus::Failed {
                failure: FailureCode::Declined,
                ..
            }
        ));
        assert_eq!(report.amount, None);
        let c2b = br#"{"TransactionType":"Pay Bill","TransID":"RKTQDM7W6S","TransAmount":"10.00",
            "BusinessShortCode":"600638","BillRefNumber":"482913574","MSISDN":"2547*****126",
            "FirstName":"John","MiddleName":"","LastName":"Doe"}"#;
        let payment = parse_c2b(c2b).unwrap().unwrap();
        assert_eq!(payment.account_reference, "482913574");
        assert_eq!(payment.amount.amount_minor, 1_000);
        assert_eq!(payment.phone, None, "a masked number is not kept");
        assert_eq!(payment.payer_name.as_deref(), Some("John Doe"));
        assert!(parse_c2b(success).unwrap().is_none());
        assert!(parse_result(b"{}").is_err());
    }
}
