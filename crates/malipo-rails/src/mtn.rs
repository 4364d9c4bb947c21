//! MTN MoMo through the MoMo Open API: collections by `requesttopay`,
//! payouts by disbursement `transfer` after an account-holder check, the
//! payee's name for confirmation, and status queries.
//!
//! # Idempotency
//!
//! Every request carries an `X-Reference-Id` (a UUID) that MTN keeps: a
//! second request with it is refused 409 `RESOURCE_ALREADY_EXIST`. Malipo
//! derives it from its own id for the transaction (`pay_…`, `po_…`), so a
//! request retried after a time-out is the same transaction, never a
//! second debit; the 409 then means "already taken". The same derivation
//! names the transaction when a callback (which carries only `externalId`,
//! Malipo's id) comes back.
//!
//! # Sandbox credentials
//!
//! [`provision_sandbox_user`] (the CLI's `malipo rails provision-mtn-sandbox`)
//! creates an API user and key on MTN's sandbox.
//!
//! # Callbacks are not signed
//!
//! MTN's callbacks carry no signature: Malipo applies one only after a
//! status `GET` agrees (`signed_callbacks: false`).
//!
//! # Money at the edge
//!
//! Amounts go as strings of major units in the currency's own exponent
//! (`"1500"` UGX, `"10.50"` GHS). MTN's sandbox takes only EUR: with
//! `target_environment` `sandbox`, amounts are sent as EUR, unchanged.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use malipo_core::{Currency, Direction, Money};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::connector::{self, ConnectorOptions};
use crate::{
    Capabilities, CollectionRequest, Destination, FailureCode, Method, PayoutRequest, Rail,
    RailError, RailStatus, StartOutcome, StatusReport,
};

pub const ID: &str = "mtn_momo";
const SANDBOX_URL: &str = "https://sandbox.momodeveloper.mtn.com";
const PRODUCTION_URL: &str = "https://proxy.momoapi.mtn.com";
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Product {
    Collection,
    Disbursement,
}

impl Product {
    fn path(self) -> &'static str {
        match self {
            Product::Collection => "collection",
            Product::Disbursement => "disbursement",
        }
    }
}

#[derive(Debug, Clone)]
pub struct MtnConfig {
    pub base_url: String,
    pub target_environment: String,
    pub api_user: String,
    pub api_key: String,
    pub collection_subscription_key: String,
    pub disbursement_subscription_key: String,
}

impl MtnConfig {
    pub fn from_maps(
        settings: &BTreeMap<String, String>,
        credentials: &BTreeMap<String, String>,
    ) -> Result<Self, String> {
        let setting = |name: &str| settings.get(name).cloned().unwrap_or_default();
        let credential = |name: &str| credentials.get(name).cloned().unwrap_or_default();
        let base_url = connector::base_url(settings, SANDBOX_URL, PRODUCTION_URL);
        let target_environment = setting("target_environment");
        if target_environment.is_empty() {
            return Err("settings.target_environment is missing".to_owned());
        }
        Ok(Self {
            base_url,
            target_environment,
            api_user: credential("api_user"),
            api_key: credential("api_key"),
            collection_subscription_key: credential("collection_subscription_key"),
            disbursement_subscription_key: credential("disbursement_subscription_key"),
        })
    }

    /// The countries (and their currencies) the target environment serves.
    fn markets(&self) -> Vec<(&'static str, &'static str)> {
        match self.target_environment.as_str() {
            "mtnuganda" => vec![("UG", "UGX")],
            "mtnghana" => vec![("GH", "GHS")],
            "mtnrwanda" => vec![("RW", "RWF")],
            "mtnzambia" => vec![("ZM", "ZMW")],
            "sandbox" => vec![("UG", "UGX"), ("GH", "GHS"), ("RW", "RWF"), ("ZM", "ZMW")],
            _ => Vec::new(),
        }
    }
}

pub struct Mtn {
    config: MtnConfig,
    capabilities: Capabilities,
    http: reqwest::Client,
    tokens: Mutex<BTreeMap<&'static str, (String, Instant)>>,
}

enum Answer {
    Ok(Value),
    Refused {
        status: u16,
        code: String,
        message: String,
    },
}

/// The `X-Reference-Id` of Malipo's transaction `reference` for `product`:
/// a UUID (version 4 layout) from SHA-256, the same on every retry.
pub fn reference_id(product: &str, reference: &str) -> String {
    let digest = Sha256::digest(format!("malipo:{product}:{reference}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid_v4_layout(bytes)
}

/// MTN's sandbox only: creates an API user (a fresh UUID) whose callbacks
/// go to `callback_host`, and its API key, as `POST /v1_0/apiuser` and
/// `POST /v1_0/apiuser/{id}/apikey` do. Returns `(api_user, api_key)`,
/// the credentials a `mtn_momo` configuration takes. (In production, MTN's
/// partner portal issues them.)
pub async fn provision_sandbox_user(
    base_url: &str,
    subscription_key: &str,
    callback_host: &str,
) -> Result<(String, String), RailError> {
    crate::install_tls_provider();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client with rustls builds");
    let base_url = base_url.trim_end_matches('/');
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    let user = uuid_v4_layout(bytes);
    let created = http
        .post(format!("{base_url}/v1_0/apiuser"))
        .header("X-Reference-Id", &user)
        .header("Ocp-Apim-Subscription-Key", subscription_key)
        .json(&json!({"providerCallbackHost": callback_host}))
        .send()
        .await
        .map_err(Mtn::unavailable)?;
    if created.status().as_u16() != 201 {
        let status = created.status();
        let body: Value = created.json().await.unwrap_or(Value::Null);
        return Err(Mtn::unavailable(format!(
            "MTN refused the API user ({status}): {}",
            message_of(&body)
        )));
    }
    let key = http
        .post(format!("{base_url}/v1_0/apiuser/{user}/apikey"))
        .header("Ocp-Apim-Subscription-Key", subscription_key)
        .header(reqwest::header::CONTENT_LENGTH, "0")
        .send()
        .await
        .map_err(Mtn::unavailable)?;
    let status = key.status();
    let body: Value = key.json().await.unwrap_or(Value::Null);
    match body["apiKey"].as_str() {
        Some(api_key) if status.is_success() => Ok((user, api_key.to_owned())),
        _ => Err(Mtn::unavailable(format!(
            "MTN refused the API key ({status}): {}",
            message_of(&body)
        ))),
    }
}

/// Sixteen bytes as a UUID, with version 4's version and variant bits.
fn uuid_v4_layout(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

impl Mtn {
    pub fn new(config: MtnConfig, options: &ConnectorOptions) -> Self {
        let http = connector::http_client(options);
        let markets = config.markets();
        let capabilities = Capabilities {
            id: ID,
            name: "MTN MoMo",
            countries: markets.iter().map(|(country, _)| *country).collect(),
            currencies: markets
                .iter()
                .filter_map(|(_, currency)| Currency::parse(currency).ok())
                .collect(),
            methods: vec![Method::MobileMoney],
            directions: vec![Direction::Collection, Direction::Payout],
            amount_min_minor: 1,
            amount_max_minor: 500_000_000,
            poll_after_ms: options.poll_after_ms,
            signed_callbacks: false,
            payout_query_confirms: true,
        };
        Self {
            config,
            capabilities,
            http,
            tokens: Mutex::new(BTreeMap::new()),
        }
    }

    fn unavailable(reason: impl std::fmt::Display) -> RailError {
        RailError::Unavailable {
            rail: ID,
            reason: reason.to_string(),
        }
    }

    fn subscription_key(&self, product: Product) -> &str {
        match product {
            Product::Collection => &self.config.collection_subscription_key,
            Product::Disbursement => &self.config.disbursement_subscription_key,
        }
    }

    async fn token(&self, product: Product) -> Result<String, RailError> {
        if let Some((token, until)) = self
            .tokens
            .lock()
            .expect("the token lock")
            .get(product.path())
            && *until > Instant::now()
        {
            return Ok(token.clone());
        }
        let response = self
            .http
            .post(format!(
                "{}/{}/token/",
                self.config.base_url,
                product.path()
            ))
            .basic_auth(&self.config.api_user, Some(&self.config.api_key))
            .header("Ocp-Apim-Subscription-Key", self.subscription_key(product))
            .header(reqwest::header::CONTENT_LENGTH, "0")
            .send()
            .await
            .map_err(Self::unavailable)?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let token = body["access_token"].as_str().unwrap_or_default().to_owned();
        if !status.is_success() || token.is_empty() {
            return Err(Self::unavailable(format!(
                "MTN refused the API user ({status}): {}",
                message_of(&body)
            )));
        }
        let seconds = body["expires_in"]
            .as_u64()
            .or_else(|| body["expires_in"].as_str().and_then(|s| s.parse().ok()))
            .unwrap_or(3_600);
        let until = Instant::now() + Duration::from_secs(seconds).saturating_sub(TOKEN_MARGIN);
        self.tokens
            .lock()
            .expect("the token lock")
            .insert(product.path(), (token.clone(), until));
        Ok(token)
    }

    /// A call to `product`'s API with its token, subscription key and
    /// target environment; on a 401 once more with a new token.
    async fn call(
        &self,
        product: Product,
        method: reqwest::Method,
        path: &str,
        reference_id: Option<&str>,
        callback_url: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Answer, RailError> {
        for attempt in 0..2 {
            let token = self.token(product).await?;
            let mut request = self
                .http
                .request(
                    method.clone(),
                    format!("{}/{}{path}", self.config.base_url, product.path()),
                )
                .bearer_auth(&token)
                .header("Ocp-Apim-Subscription-Key", self.subscription_key(product))
                .header("X-Target-Environment", &self.config.target_environment);
            if let Some(id) = reference_id {
                request = request.header("X-Reference-Id", id);
            }
            if let Some(url) = callback_url {
                request = request.header("X-Callback-Url", url);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.map_err(Self::unavailable)?;
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if status == 401 && attempt == 0 {
                self.tokens
                    .lock()
                    .expect("the token lock")
                    .remove(product.path());
                continue;
            }
            if (200..300).contains(&status) {
                return Ok(Answer::Ok(value));
            }
            return Ok(Answer::Refused {
                status,
                code: value["code"].as_str().unwrap_or_default().to_owned(),
                message: message_of(&value),
            });
        }
        Err(Self::unavailable("MTN refused a fresh token"))
    }

    /// The currency as MTN should see it: EUR in the sandbox.
    fn currency_code(&self, amount: Money) -> String {
        if self.config.target_environment == "sandbox" {
            "EUR".to_owned()
        } else {
            amount.currency.code().to_owned()
        }
    }

    /// Starts a `requesttopay` or a `transfer`.
    async fn start(
        &self,
        product: Product,
        reference: &str,
        amount: Money,
        phone: &str,
        note: &str,
        callback_url: &str,
    ) -> Result<StartOutcome, RailError> {
        let id = reference_id(product.path(), reference);
        let party = json!({"partyIdType": "MSISDN", "partyId": phone.trim_start_matches('+')});
        let mut body = json!({
            "amount": amount.format_major(),
            "currency": self.currency_code(amount),
            "externalId": reference,
            "payerMessage": note,
            "payeeNote": note,
        });
        let path = match product {
            Product::Collection => {
                body["payer"] = party;
                "/v1_0/requesttopay"
            }
            Product::Disbursement => {
                body["payee"] = party;
                "/v1_0/transfer"
            }
        };
        let callback = Some(callback_url).filter(|url| url.starts_with("http"));
        match self
            .call(
                product,
                reqwest::Method::POST,
                path,
                Some(&id),
                callback,
                Some(&body),
            )
            .await?
        {
            Answer::Ok(_) => Ok(StartOutcome::Accepted {
                rail_transaction_id: id,
            }),
            // The same X-Reference-Id: a retry of a request MTN already took.
            Answer::Refused { status: 409, .. } => Ok(StartOutcome::Accepted {
                rail_transaction_id: id,
            }),
            Answer::Refused {
                status, message, ..
            } if status >= 500 => Err(Self::unavailable(message)),
            Answer::Refused { code, message, .. } => Ok(StartOutcome::Rejected {
                failure: failure_of(&code).unwrap_or(FailureCode::RailError),
                message: format!("MTN refused it ({code}): {message}"),
            }),
        }
    }

    async fn holder_is_active(&self, msisdn: &str) -> Result<bool, RailError> {
        match self
            .call(
                Product::Disbursement,
                reqwest::Method::GET,
                &format!("/v1_0/accountholder/msisdn/{msisdn}/active"),
                None,
                None,
                None,
            )
            .await?
        {
            Answer::Ok(body) => Ok(body["result"] == true),
            Answer::Refused { status: 404, .. } => Ok(false),
            Answer::Refused { message, .. } => Err(Self::unavailable(message)),
        }
    }
}

/// A payer message or payee note as MTN takes it: at most 160 characters,
/// without `'` or `&` (which MTN refuses).
fn note(text: &str) -> String {
    text.chars()
        .filter(|c| *c != '\'' && *c != '&')
        .take(160)
        .collect()
}

fn message_of(body: &Value) -> String {
    body["message"]
        .as_str()
        .or_else(|| body["error"].as_str())
        .unwrap_or("no message")
        .to_owned()
}

/// What a documented MTN reason code means.
fn failure_of(code: &str) -> Option<FailureCode> {
    Some(match code {
        "APPROVAL_REJECTED" | "TRANSACTION_CANCELED" => FailureCode::Declined,
        "NOT_ENOUGH_FUNDS" => FailureCode::InsufficientFunds,
        "EXPIRED" => FailureCode::Timeout,
        "PAYER_NOT_FOUND" | "PAYEE_NOT_FOUND" | "PAYEE_NOT_ALLOWED_TO_RECEIVE" => {
            FailureCode::InvalidAccount
        }
        "PAYER_LIMIT_REACHED"
        | "NOT_ALLOWED"
        | "NOT_ALLOWED_TARGET_ENVIRONMENT"
        | "INVALID_CALLBACK_URL_HOST"
        | "INVALID_CURRENCY"
        | "SERVICE_UNAVAILABLE"
        | "INTERNAL_PROCESSING_ERROR"
        | "COULD_NOT_PERFORM_TRANSACTION"
        | "PAYEE_LIMIT_REACHED"
        | "LOW_BALANCE_OR_PAYEE_LIMIT_REACHED_OR_NOT_ALLOWED" => FailureCode::RailError,
        _ => return None,
    })
}

/// A transaction's body (a status `GET`, or a callback, which is the same
/// shape) as Malipo's status. An unknown reason stays pending.
pub fn status_of(body: &Value) -> RailStatus {
    match body["status"].as_str() {
        Some("SUCCESSFUL") => RailStatus::Succeeded,
        Some("FAILED" | "REJECTED" | "TIMEOUT") => {
            // `reason` is a string, or `{code, message}` in older versions.
            let code = body["reason"]
                .as_str()
                .or_else(|| body["reason"]["code"].as_str())
                .unwrap_or(if body["status"] == "TIMEOUT" {
                    "EXPIRED"
                } else {
                    ""
                });
            match failure_of(code) {
                Some(failure) => RailStatus::Failed {
                    failure,
                    message: format!("MTN: {code}"),
                },
                None => {
                    tracing::warn!(
                        code,
                        "an MTN reason code the API does not document: left pending and polled"
                    );
                    RailStatus::Pending
                }
            }
        }
        _ => RailStatus::Pending,
    }
}

/// Reads an MTN callback: the transaction as `GET` shows it, unsigned. It
/// names Malipo's id (`externalId`), from which the reference id follows.
pub fn parse_callback_body(body: &[u8]) -> Result<StatusReport, RailError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| RailError::InvalidCallback(format!("not JSON: {error}")))?;
    let external = value["externalId"]
        .as_str()
        .ok_or_else(|| RailError::InvalidCallback("no externalId".to_owned()))?;
    let product = if external.starts_with("po_") || external.starts_with("re_") {
        Product::Disbursement
    } else {
        Product::Collection
    };
    Ok(StatusReport {
        rail_transaction_id: reference_id(product.path(), external),
        reference: Some(external.to_owned()),
        status: status_of(&value),
        amount: None,
    })
}

#[async_trait::async_trait]
impl Rail for Mtn {
    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    async fn start_collection(
        &self,
        request: &CollectionRequest,
    ) -> Result<StartOutcome, RailError> {
        let note = note(&request.description);
        self.start(
            Product::Collection,
            &request.reference,
            request.amount,
            &request.phone,
            &note,
            &request.callback_url,
        )
        .await
    }

    async fn start_payout(&self, request: &PayoutRequest) -> Result<StartOutcome, RailError> {
        let Destination::Wallet { phone } = &request.destination else {
            return Err(RailError::Unsupported {
                rail: ID,
                what: "payouts to bank accounts".to_owned(),
            });
        };
        // A payout only to a wallet that exists and is active.
        if !self.holder_is_active(phone.trim_start_matches('+')).await? {
            return Ok(StartOutcome::Rejected {
                failure: FailureCode::InvalidAccount,
                message: "MTN: the wallet is not an active MoMo account".to_owned(),
            });
        }
        let note = note(&request.description);
        self.start(
            Product::Disbursement,
            &request.reference,
            request.amount,
            phone,
            &note,
            &request.callback_url,
        )
        .await
    }

    async fn query_status(&self, rail_transaction_id: &str) -> Result<StatusReport, RailError> {
        for (product, path) in [
            (Product::Collection, "/v1_0/requesttopay/"),
            (Product::Disbursement, "/v1_0/transfer/"),
        ] {
            match self
                .call(
                    product,
                    reqwest::Method::GET,
                    &format!("{path}{rail_transaction_id}"),
                    None,
                    None,
                    None,
                )
                .await?
            {
                Answer::Ok(body) => {
                    return Ok(StatusReport {
                        rail_transaction_id: rail_transaction_id.to_owned(),
                        reference: body["externalId"].as_str().map(str::to_owned),
                        status: status_of(&body),
                        amount: None,
                    });
                }
                Answer::Refused { status: 404, .. } => continue,
                Answer::Refused { message, .. } => return Err(Self::unavailable(message)),
            }
        }
        Err(Self::unavailable(format!(
            "MTN knows no transaction {rail_transaction_id}"
        )))
    }

    fn parse_callback(
        &self,
        _headers: &[(String, String)],
        body: &[u8],
    ) -> Result<StatusReport, RailError> {
        parse_callback_body(body)
    }

    async fn lookup_account_name(&self, phone: &str) -> Result<String, RailError> {
        let msisdn = phone.trim_start_matches('+');
        match self
            .call(
                Product::Collection,
                reqwest::Method::GET,
                &format!("/v1_0/accountholder/msisdn/{msisdn}/basicuserinfo"),
                None,
                None,
                None,
            )
            .await?
        {
            Answer::Ok(body) => {
                let name = body["name"].as_str().map(str::to_owned).unwrap_or_else(|| {
                    format!(
                        "{} {}",
                        body["given_name"].as_str().unwrap_or(""),
                        body["family_name"].as_str().unwrap_or("")
                    )
                    .trim()
                    .to_owned()
                });
                Ok(name)
            }
            Answer::Refused { status: 404, .. } => Err(RailError::Unavailable {
                rail: ID,
                reason: "no MoMo account for this number".to_owned(),
            }),
            Answer::Refused { message, .. } => Err(Self::unavailable(message)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_ids_are_uuids_and_stable() {
        let id = reference_id("collection", "pay_01abc");
        assert_eq!(id, reference_id("collection", "pay_01abc"));
        assert_ne!(id, reference_id("disbursement", "pay_01abc"));
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4", "version 4 layout");
    }

    #[test]
    fn statuses_and_reasons_map_and_unknown_ones_stay_pending() {
        assert_eq!(
            status_of(&json!({"status": "SUCCESSFUL"})),
            RailStatus::Succeeded
        );
        assert_eq!(
            status_of(&json!({"status": "PENDING"})),
            RailStatus::Pending
        );
        for (reason, failure) in [
            ("APPROVAL_REJECTED", FailureCode::Declined),
            ("NOT_ENOUGH_FUNDS", FailureCode::InsufficientFunds),
            ("EXPIRED", FailureCode::Timeout),
            ("PAYER_NOT_FOUND", FailureCode::InvalidAccount),
            ("INTERNAL_PROCESSING_ERROR", FailureCode::RailError),
        ] {
            assert!(matches!(
                status_of(&json!({"status": "FAILED", "reason": reason})),
                RailStatus::Failed { failure: f, .. } if f == failure
            ));
            assert!(matches!(
                status_of(&json!({"status": "FAILED", "reason": {"code": reason, "message": "m"}})),
                RailStatus::Failed { failure: f, .. } if f == failure
            ));
        }
        assert_eq!(
            status_of(&json!({"status": "FAILED", "reason": "SOMETHING_NEW"})),
            RailStatus::Pending
        );
    }

    #[test]
    fn a_callback_names_its_transaction_by_the_external_id() {
        let report =
            parse_callback_body(br#"{"externalId": "po_1", "status": "SUCCESSFUL"}"#).unwrap();
        assert_eq!(
            report.rail_transaction_id,
            reference_id("disbursement", "po_1")
        );
        assert!(parse_callback_body(b"{}").is_err());
    }
}
