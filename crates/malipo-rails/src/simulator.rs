//! The built-in sandbox rail: a mobile-money operator that lives in memory.
//!
//! It answers like a real operator: a request is accepted at once, the
//! simulated customer "answers" after [`SimulatorConfig::callback_delay_ms`],
//! and a signed callback (header [`SIGNATURE_HEADER`], see [`sign`]) is
//! POSTed as JSON to the request's `callback_url`. [`Rail::query_status`]
//! answers too, as a real rail's status API would after a lost callback.
//!
//! # No state per transaction
//!
//! The transaction id carries what a status query needs (direction,
//! outcome, when the customer answers, amount), sealed with an HMAC under
//! the signing secret. So memory stays flat however many transactions are
//! pending (a sandbox runs for months), and any node sharing the secret can
//! answer for a transaction another node started. Only recent references
//! are remembered, for de-duplication (see [`RECENT_LIMIT`]).
//!
//! # Triggers
//!
//! The outcome is chosen by the **last four digits** of the customer's phone
//! number (for payouts: of the wallet phone, or of the bank account number).
//!
//! | Ends in | Collection                                           | Payout                          |
//! |---------|------------------------------------------------------|---------------------------------|
//! | `0001`  | accepted, then fails `declined`                      | same                            |
//! | `0002`  | accepted, then fails `insufficient_funds`            | same                            |
//! | `0003`  | accepted, never answers: no callback, stays pending  | same                            |
//! | `0004`  | asks for an OTP; `123456` succeeds, any other OTP is rejected `invalid_otp` | succeeds |
//! | `0005`  | asks for `customer.name` (1 to 100 characters) and `customer.id_number` (8 to 20 digits), then succeeds | succeeds |
//! | `0006`  | succeeds, but the callback is lost: only a status query tells | same                   |
//! | `0007`  | succeeds, and the same callback arrives twice        | same                            |
//! | `0008`  | succeeds                                             | accepted, then fails `invalid_account`; account-name lookup fails |
//! | `0009`  | the first call for a reference times out (unavailable); a retry succeeds | same        |
//! | `0010`  | a prompt the customer approves succeeds; a recurring debit (a plan's installment) fails `insufficient_funds`: the wallet was emptied after the deposit | succeeds |
//! | other   | accepted, then succeeds                              | same                            |
//!
//! A second request with a reference the simulator accepted in the last
//! [`RECENT_FOR`] gets the same transaction id back and no second callback:
//! real rails de-duplicate on the merchant reference.
//!
//! # Callbacks
//!
//! ```json
//! {"transaction_id": "SIM…", "reference": "pay_…", "status": "succeeded",
//!  "failure_code": null, "message": "…", "amount": 10000, "currency": "KES"}
//! ```
//!
//! A customer-initiated payment to an account number (C2B, see
//! [`Simulator::send_customer_payment`]) is signed the same way and posted
//! first to the validation URL, then to the confirmation URL:
//!
//! ```json
//! {"type": "customer_payment", "transaction_id": "SIMC…", "account_reference": "482913574",
//!  "amount": 151500, "currency": "TZS", "phone": "+255712345678", "payer_name": "Juma"}
//! ```
//!
//! `status` is `succeeded` or `failed`; `failure_code` is a
//! [`FailureCode`] name when it failed. The signature header is
//! `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`; a callback
//! more than five minutes old (or ahead) is refused.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use malipo_core::{Currency, Direction, Money};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{
    Capabilities, CollectionRequest, CustomerPayment, Destination, FailureCode, FieldSpec, Method,
    PayoutRequest, Rail, RailError, RailStatus, StartOutcome, StatusReport,
};

/// Name of the HTTP header that carries a callback's signature.
pub const SIGNATURE_HEADER: &str = "x-simulator-signature";

/// How far a callback's timestamp may be from now before it is refused as a replay.
const SIGNATURE_TOLERANCE_SECONDS: u64 = 300;

/// A callback send that takes longer than this is abandoned (and logged).
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a reference is remembered for de-duplication (a start retried
/// after a timeout or a crash comes back within minutes)…
pub const RECENT_FOR: Duration = Duration::from_secs(30 * 60);
/// …and how many at most: the oldest go first. About 64 bytes each.
pub const RECENT_LIMIT: usize = 100_000;

/// Idle connections kept open to one callback host.
const CALLBACK_IDLE_CONNECTIONS: usize = 16;

const NAME_FIELD: &str = "customer.name";
const ID_NUMBER_FIELD: &str = "customer.id_number";

#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// Delay before the simulated customer answers and the callback is sent.
    pub callback_delay_ms: u64,
    /// How long after a start Malipo should poll a pending transaction.
    pub poll_after_ms: i64,
    /// Key of the HMAC-SHA256 that signs callbacks.
    pub signing_secret: Vec<u8>,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            callback_delay_ms: 150,
            poll_after_ms: 3_000,
            signing_secret: b"malipo-simulator-signing-secret".to_vec(),
        }
    }
}

/// The sandbox rail. Cheap to clone: clones share their transactions.
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

struct Inner {
    config: SimulatorConfig,
    capabilities: Capabilities,
    http: reqwest::Client,
    recent: Mutex<Recent>,
}

/// Recently seen references, keyed by a digest of the reference.
#[derive(Default)]
struct Recent {
    by_reference: HashMap<[u8; 8], Seen>,
    /// Oldest first, for forgetting.
    order: VecDeque<([u8; 8], Instant)>,
}

#[derive(Clone, Copy)]
enum Seen {
    /// A `0009` request that had its one failure.
    FlakyFailed,
    Accepted(Ticket),
}

impl Recent {
    fn get(&self, key: &[u8; 8]) -> Option<Seen> {
        self.by_reference.get(key).copied()
    }

    fn remember(&mut self, key: [u8; 8], seen: Seen, now: Instant) {
        while self.order.len() >= RECENT_LIMIT
            || self
                .order
                .front()
                .is_some_and(|(_, at)| now.duration_since(*at) > RECENT_FOR)
        {
            let Some((old, _)) = self.order.pop_front() else {
                break;
            };
            self.by_reference.remove(&old);
        }
        if self.by_reference.insert(key, seen).is_none() {
            self.order.push_back((key, now));
        }
    }
}

/// Everything a status query needs, sealed into the transaction id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ticket {
    direction: Direction,
    trigger: Trigger,
    /// When the simulated customer answers (Unix milliseconds).
    answers_at_ms: u64,
    amount: Money,
    /// Part of a digest of the reference: two references never share an id.
    reference_digest: [u8; 6],
}

/// Bytes of a ticket before its MAC, and of the MAC.
const TICKET_LEN: usize = 24;
const TICKET_MAC_LEN: usize = 8;

impl Ticket {
    /// Where it stands at `now_ms`: pending until the customer answers, then
    /// the trigger's outcome (a customer who never answers stays pending).
    fn status_at(&self, now_ms: u64) -> RailStatus {
        if now_ms < self.answers_at_ms {
            return RailStatus::Pending;
        }
        self.trigger
            .completion(self.direction)
            .map_or(RailStatus::Pending, |(status, _)| status)
    }

    /// `SIM` + base32 of the ticket and its HMAC.
    fn seal(&self, secret: &[u8]) -> String {
        let mut bytes = Vec::with_capacity(TICKET_LEN + TICKET_MAC_LEN);
        let direction = match self.direction {
            Direction::Collection => 0,
            Direction::Payout => 0x80,
        };
        bytes.push(direction | self.trigger.index());
        bytes.extend_from_slice(&self.answers_at_ms.to_be_bytes());
        bytes.extend_from_slice(&self.amount.amount_minor.to_be_bytes());
        let currency = Currency::ALL
            .iter()
            .position(|c| *c == self.amount.currency)
            .unwrap_or_default();
        bytes.push(currency as u8);
        bytes.extend_from_slice(&self.reference_digest);
        let mac = id_mac(secret, &bytes);
        bytes.extend_from_slice(&mac);
        format!("SIM{}", base32::encode(&bytes))
    }

    /// The ticket of an id this simulator (or one sharing its secret) issued.
    fn open(id: &str, secret: &[u8]) -> Option<Self> {
        let bytes = base32::decode(id.strip_prefix("SIM")?)?;
        if bytes.len() != TICKET_LEN + TICKET_MAC_LEN {
            return None;
        }
        let (ticket, mac) = bytes.split_at(TICKET_LEN);
        if !bool::from(id_mac(secret, ticket).as_slice().ct_eq(mac)) {
            return None;
        }
        let direction = if ticket[0] & 0x80 == 0 {
            Direction::Collection
        } else {
            Direction::Payout
        };
        let trigger = *Trigger::ALL.get(usize::from(ticket[0] & 0x7f))?;
        let answers_at_ms = u64::from_be_bytes(ticket[1..9].try_into().ok()?);
        let amount_minor = i64::from_be_bytes(ticket[9..17].try_into().ok()?);
        let currency = *Currency::ALL.get(usize::from(ticket[17]))?;
        Some(Self {
            direction,
            trigger,
            answers_at_ms,
            amount: Money::new(amount_minor, currency),
            reference_digest: ticket[18..24].try_into().ok()?,
        })
    }
}

fn id_mac(secret: &[u8], ticket: &[u8]) -> [u8; TICKET_MAC_LEN] {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(b"malipo-simulator-transaction-id.");
    mac.update(ticket);
    let digest = mac.finalize().into_bytes();
    let mut out = [0; TICKET_MAC_LEN];
    out.copy_from_slice(&digest[..TICKET_MAC_LEN]);
    out
}

fn reference_key(reference: &str) -> [u8; 8] {
    let digest = Sha256::digest(reference.as_bytes());
    let mut key = [0; 8];
    key.copy_from_slice(&digest[..8]);
    key
}

/// A simulated customer's answer, waiting for its moment.
struct Answer {
    id: String,
    reference: String,
    amount: Money,
    status: RailStatus,
    callbacks: usize,
    callback_url: String,
}

/// The behaviour a number's last four digits select (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Decline,
    InsufficientFunds,
    NoAnswer,
    OtpRequired,
    MissingData,
    CallbackLost,
    DuplicateCallback,
    PayoutFails,
    Flaky,
    Success,
    /// Resolved before a ticket is made (see `start_collection`): never
    /// sealed into a transaction id, so it has no index.
    EmptyAfterApproval,
}

impl Trigger {
    /// In the order of their index in a transaction id: never reorder.
    const ALL: [Trigger; 10] = [
        Trigger::Success,
        Trigger::Decline,
        Trigger::InsufficientFunds,
        Trigger::NoAnswer,
        Trigger::OtpRequired,
        Trigger::MissingData,
        Trigger::CallbackLost,
        Trigger::DuplicateCallback,
        Trigger::PayoutFails,
        Trigger::Flaky,
    ];

    fn index(self) -> u8 {
        Self::ALL
            .iter()
            .position(|t| *t == self)
            .unwrap_or_default() as u8
    }

    fn for_number(number: &str) -> Self {
        match last_four_digits(number).as_deref() {
            Some("0001") => Trigger::Decline,
            Some("0002") => Trigger::InsufficientFunds,
            Some("0003") => Trigger::NoAnswer,
            Some("0004") => Trigger::OtpRequired,
            Some("0005") => Trigger::MissingData,
            Some("0006") => Trigger::CallbackLost,
            Some("0007") => Trigger::DuplicateCallback,
            Some("0008") => Trigger::PayoutFails,
            Some("0009") => Trigger::Flaky,
            Some("0010") => Trigger::EmptyAfterApproval,
            _ => Trigger::Success,
        }
    }

    /// How an accepted transaction ends: its final status and how many
    /// times its callback is sent, or `None` when the customer never answers.
    fn completion(self, direction: Direction) -> Option<(RailStatus, usize)> {
        let failed = |failure: FailureCode, message: &str| RailStatus::Failed {
            failure,
            message: message.to_owned(),
        };
        match (self, direction) {
            (Trigger::NoAnswer, _) => None,
            (Trigger::Decline, Direction::Collection) => Some((
                failed(FailureCode::Declined, "The customer cancelled the prompt"),
                1,
            )),
            (Trigger::Decline, Direction::Payout) => Some((
                failed(
                    FailureCode::Declined,
                    "The receiving wallet refused the payment",
                ),
                1,
            )),
            (Trigger::InsufficientFunds, Direction::Collection) => Some((
                failed(
                    FailureCode::InsufficientFunds,
                    "The customer's balance is too low",
                ),
                1,
            )),
            (Trigger::InsufficientFunds, Direction::Payout) => Some((
                failed(
                    FailureCode::InsufficientFunds,
                    "The merchant's float at the rail is too low",
                ),
                1,
            )),
            (Trigger::PayoutFails, Direction::Payout) => Some((
                failed(
                    FailureCode::InvalidAccount,
                    "The receiving account does not exist",
                ),
                1,
            )),
            (Trigger::CallbackLost, _) => Some((RailStatus::Succeeded, 0)),
            (Trigger::DuplicateCallback, _) => Some((RailStatus::Succeeded, 2)),
            _ => Some((RailStatus::Succeeded, 1)),
        }
    }
}

/// The last four ASCII digits of a phone or account number, ignoring any
/// `+`, spaces or letters; `None` when it has fewer than four.
fn last_four_digits(number: &str) -> Option<String> {
    let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    let start = digits.len().checked_sub(4)?;
    Some(digits[start..].iter().collect())
}

impl Simulator {
    pub const ID: &'static str = "simulator";
    /// The OTP the simulated customer "receives" (trigger `0004`).
    pub const OTP: &'static str = "123456";

    pub fn new(config: SimulatorConfig) -> Self {
        let capabilities = Capabilities {
            id: Self::ID,
            name: "Malipo simulator",
            countries: vec![
                "KE", "TZ", "UG", "RW", "ZM", "MW", "GH", "NG", "CI", "SN", "CM", "ZA", "ET",
            ],
            currencies: Currency::ALL.to_vec(),
            methods: vec![Method::MobileMoney, Method::Bank],
            directions: vec![Direction::Collection, Direction::Payout],
            amount_min_minor: 1,
            amount_max_minor: 1_000_000_000_000,
            poll_after_ms: config.poll_after_ms,
            signed_callbacks: true,
            payout_query_confirms: true,
        };
        // reqwest needs the process's TLS provider even for plain http.
        crate::install_tls_provider();
        // A burst of callbacks opens many connections; keeping them all
        // idle for reqwest's default 90 s held ~40 KB each on both ends.
        let http = reqwest::Client::builder()
            .timeout(CALLBACK_TIMEOUT)
            .pool_max_idle_per_host(CALLBACK_IDLE_CONNECTIONS)
            .pool_idle_timeout(Duration::from_secs(15))
            .build()
            .unwrap_or_default();
        Self {
            inner: Arc::new(Inner {
                config,
                capabilities,
                http,
                recent: Mutex::new(Recent::default()),
            }),
        }
    }

    /// The recent references, even if a thread panicked while holding them:
    /// nothing that can panic runs between the updates of one change.
    fn recent(&self) -> MutexGuard<'_, Recent> {
        self.inner
            .recent
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The part of a start every request shares, once the request itself
    /// has been validated: de-duplication, the flaky trigger, recording,
    /// and scheduling the answer.
    fn accept(
        &self,
        direction: Direction,
        trigger: Trigger,
        reference: &str,
        amount: Money,
        callback_url: &str,
        gate: impl FnOnce() -> Option<StartOutcome>,
    ) -> Result<StartOutcome, RailError> {
        let secret = &self.inner.config.signing_secret;
        let key = reference_key(reference);
        let ticket = {
            let mut recent = self.recent();
            let seen = recent.get(&key);
            if let Some(Seen::Accepted(ticket)) = seen {
                return Ok(StartOutcome::Accepted {
                    rail_transaction_id: ticket.seal(secret),
                });
            }
            if trigger == Trigger::Flaky && seen.is_none() {
                recent.remember(key, Seen::FlakyFailed, Instant::now());
                return Err(unavailable(
                    "timed out waiting for the operator (simulated)",
                ));
            }
            // OTP and missing-field answers record nothing: the caller asks again.
            if let Some(outcome) = gate() {
                return Ok(outcome);
            }
            // Outside a runtime nothing can wait: the customer answers at once.
            let delay_ms = if tokio::runtime::Handle::try_current().is_ok() {
                self.inner.config.callback_delay_ms
            } else {
                0
            };
            let mut reference_digest = [0; 6];
            reference_digest.copy_from_slice(&key[..6]);
            let ticket = Ticket {
                direction,
                trigger,
                answers_at_ms: unix_now_ms().saturating_add(delay_ms),
                amount,
                reference_digest,
            };
            recent.remember(key, Seen::Accepted(ticket), Instant::now());
            ticket
        };
        let rail_transaction_id = ticket.seal(secret);
        if let Some((status, callbacks)) = trigger.completion(direction) {
            self.schedule_answer(Answer {
                id: rail_transaction_id.clone(),
                reference: reference.to_owned(),
                amount,
                status,
                callbacks,
                callback_url: callback_url.to_owned(),
            });
        }
        Ok(StartOutcome::Accepted {
            rail_transaction_id,
        })
    }

    /// After the delay, the customer answers: the callback goes out
    /// `callbacks` times (0 when it is "lost").
    fn schedule_answer(&self, answer: Answer) {
        if answer.callbacks == 0 {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(transaction_id = %answer.id, "simulator started outside a tokio runtime; no callback sent");
            return;
        };
        let simulator = self.clone();
        let delay = Duration::from_millis(self.inner.config.callback_delay_ms);
        runtime.spawn(async move {
            tokio::time::sleep(delay).await;
            let body =
                CallbackBody::new(&answer.id, &answer.reference, answer.amount, &answer.status);
            let Ok(body) = serde_json::to_vec(&body) else {
                return;
            };
            // Signed once: a duplicate is the very same request, as when an
            // operator retries a callback it thinks was lost.
            let signature = sign(&simulator.inner.config.signing_secret, unix_now(), &body);
            for _ in 0..answer.callbacks {
                simulator
                    .send_callback(&answer.id, &answer.callback_url, &body, &signature)
                    .await;
            }
        });
    }

    /// One POST; a failure is logged, never retried (that is what polling is for).
    async fn send_callback(&self, id: &str, url: &str, body: &[u8], signature: &str) {
        let result = self
            .inner
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .body(body.to_vec())
            .send()
            .await
            .and_then(reqwest::Response::error_for_status);
        if let Err(error) = result {
            tracing::warn!(transaction_id = %id, callback_url = %url, %error, "simulator callback not delivered");
        }
    }

    /// A customer pays `payment.account_reference` from their wallet, as
    /// with M-Pesa's C2B: the simulator first asks `validation_url` (when
    /// given: M-Pesa validates only where Safaricom enabled it) whether to
    /// accept (a refusal ends it there, nothing is paid), then POSTs the
    /// signed confirmation to `confirmation_url`. Sending the same
    /// `rail_transaction_id` again is how a rail's duplicate looks.
    pub async fn send_customer_payment(
        &self,
        payment: &CustomerPayment,
        validation_url: Option<&str>,
        confirmation_url: &str,
    ) -> Result<CustomerPaymentSent, RailError> {
        self.check_amount(payment.amount)?;
        let body = serde_json::to_vec(&CustomerPaymentBody::from(payment))
            .expect("a customer payment serializes");
        let post = |url: &str| {
            let signature = sign(&self.inner.config.signing_secret, unix_now(), &body);
            self.inner
                .http
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(SIGNATURE_HEADER, signature)
                .body(body.clone())
                .send()
        };
        if let Some(validation_url) = validation_url {
            let answer: ValidationAnswer = post(validation_url)
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|error| unavailable(&format!("validation request failed: {error}")))?
                .json()
                .await
                .map_err(|error| unavailable(&format!("validation answer unreadable: {error}")))?;
            if !answer.accepted {
                return Ok(CustomerPaymentSent::Refused {
                    reason: answer.reason.unwrap_or_default(),
                });
            }
        }
        post(confirmation_url)
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|error| unavailable(&format!("confirmation not delivered: {error}")))?;
        Ok(CustomerPaymentSent::Confirmed)
    }

    /// Checks a callback's signature header against its body.
    fn verify_signature(&self, headers: &[(String, String)], body: &[u8]) -> Result<(), RailError> {
        let signature = headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(SIGNATURE_HEADER))
            .map(|(_, value)| value.as_str())
            .ok_or_else(|| invalid(format!("missing {SIGNATURE_HEADER} header")))?;
        verify(
            &self.inner.config.signing_secret,
            signature,
            body,
            unix_now(),
        )
    }

    fn check_amount(&self, amount: Money) -> Result<(), RailError> {
        let caps = &self.inner.capabilities;
        if (caps.amount_min_minor..=caps.amount_max_minor).contains(&amount.amount_minor) {
            Ok(())
        } else {
            Err(RailError::Unsupported {
                rail: Self::ID,
                what: format!(
                    "an amount of {} minor units (limits: {} to {})",
                    amount.amount_minor, caps.amount_min_minor, caps.amount_max_minor
                ),
            })
        }
    }
}

fn unavailable(reason: &str) -> RailError {
    RailError::Unavailable {
        rail: Simulator::ID,
        reason: reason.to_owned(),
    }
}

fn rejected(failure: FailureCode, message: impl Into<String>) -> StartOutcome {
    StartOutcome::Rejected {
        failure,
        message: message.into(),
    }
}

/// What any operator refuses at once, before looking at the customer.
fn check_common(reference: &str, callback_url: &str) -> Option<StartOutcome> {
    if reference.trim().is_empty() {
        return Some(rejected(FailureCode::RailError, "a reference is required"));
    }
    if !(callback_url.starts_with("http://") || callback_url.starts_with("https://")) {
        return Some(rejected(
            FailureCode::RailError,
            "the callback URL must be an http(s) URL",
        ));
    }
    None
}

/// E.164: a `+` and 8 to 15 digits.
fn check_phone(phone: &str) -> Option<StartOutcome> {
    let digits = phone.strip_prefix('+').unwrap_or_default();
    let valid = (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    (!valid).then(|| {
        rejected(
            FailureCode::InvalidAccount,
            format!("`{phone}` is not an E.164 phone number"),
        )
    })
}

fn check_bank_account(bank_code: &str, account_number: &str) -> Option<StartOutcome> {
    if bank_code.trim().is_empty() {
        return Some(rejected(
            FailureCode::InvalidAccount,
            "a bank code is required",
        ));
    }
    let valid = (4..=34).contains(&account_number.len())
        && account_number.bytes().all(|b| b.is_ascii_alphanumeric());
    (!valid).then(|| {
        rejected(
            FailureCode::InvalidAccount,
            "an account number is 4 to 34 letters or digits",
        )
    })
}

/// The OTP step of trigger `0004`.
fn otp_gate(otp: Option<&str>) -> Option<StartOutcome> {
    match otp {
        None => Some(StartOutcome::NeedsOtp),
        Some(Simulator::OTP) => None,
        Some(_) => Some(rejected(FailureCode::InvalidOtp, "The OTP is wrong")),
    }
}

/// The know-your-customer step of trigger `0005`: both fields are always
/// listed, errors only for values given but invalid (a missing one is just missing).
fn fields_gate(fields: &BTreeMap<String, String>) -> Option<StartOutcome> {
    let mut errors = BTreeMap::new();
    let mut complete = true;
    let checks: [(&str, FieldCheck); 2] =
        [(NAME_FIELD, check_name), (ID_NUMBER_FIELD, check_id_number)];
    for (field, check) in checks {
        match fields.get(field) {
            None => complete = false,
            Some(value) => {
                if let Some(message) = check(value) {
                    errors.insert(field.to_owned(), vec![message.to_owned()]);
                    complete = false;
                }
            }
        }
    }
    if complete {
        return None;
    }
    let spec = |label: &str, rule: &str| FieldSpec {
        label: label.to_owned(),
        rule: rule.to_owned(),
    };
    let fields = BTreeMap::from([
        (
            NAME_FIELD.to_owned(),
            spec("Customer's full name", "1 to 100 characters"),
        ),
        (
            ID_NUMBER_FIELD.to_owned(),
            spec("Customer's national ID number", "8 to 20 digits"),
        ),
    ]);
    Some(StartOutcome::NeedsFields { fields, errors })
}

/// What is wrong with a field's value, if anything.
type FieldCheck = fn(&str) -> Option<&'static str>;

fn check_name(value: &str) -> Option<&'static str> {
    let name = value.trim();
    if name.is_empty() {
        Some("must not be empty")
    } else if name.chars().count() > 100 {
        Some("must be at most 100 characters")
    } else {
        None
    }
}

fn check_id_number(value: &str) -> Option<&'static str> {
    let valid = (8..=20).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit());
    (!valid).then_some("must be 8 to 20 digits")
}

#[async_trait::async_trait]
impl Rail for Simulator {
    fn capabilities(&self) -> &Capabilities {
        &self.inner.capabilities
    }

    async fn start_collection(
        &self,
        request: &CollectionRequest,
    ) -> Result<StartOutcome, RailError> {
        self.check_amount(request.amount)?;
        if let Some(refusal) = check_common(&request.reference, &request.callback_url)
            .or_else(|| check_phone(&request.phone))
        {
            return Ok(refusal);
        }
        let trigger = match Trigger::for_number(&request.phone) {
            Trigger::EmptyAfterApproval if request.recurring => Trigger::InsufficientFunds,
            Trigger::EmptyAfterApproval => Trigger::Success,
            trigger => trigger,
        };
        let gate = || match trigger {
            Trigger::OtpRequired => otp_gate(request.otp.as_deref()),
            Trigger::MissingData => fields_gate(&request.fields),
            _ => None,
        };
        self.accept(
            Direction::Collection,
            trigger,
            &request.reference,
            request.amount,
            &request.callback_url,
            gate,
        )
    }

    async fn start_payout(&self, request: &PayoutRequest) -> Result<StartOutcome, RailError> {
        self.check_amount(request.amount)?;
        let (number, refusal) = match &request.destination {
            Destination::Wallet { phone } => (phone, check_phone(phone)),
            Destination::Bank {
                bank_code,
                account_number,
                ..
            } => (
                account_number,
                check_bank_account(bank_code, account_number),
            ),
        };
        if let Some(refusal) = check_common(&request.reference, &request.callback_url).or(refusal) {
            return Ok(refusal);
        }
        // Payouts have no OTP or customer fields: those triggers simply succeed.
        let trigger = match Trigger::for_number(number) {
            Trigger::EmptyAfterApproval => Trigger::Success,
            trigger => trigger,
        };
        self.accept(
            Direction::Payout,
            trigger,
            &request.reference,
            request.amount,
            &request.callback_url,
            || None,
        )
    }

    async fn query_status(&self, rail_transaction_id: &str) -> Result<StatusReport, RailError> {
        let ticket = Ticket::open(rail_transaction_id, &self.inner.config.signing_secret)
            .ok_or_else(|| unavailable("unknown transaction"))?;
        // Like most operators' status APIs, it does not echo the reference.
        Ok(StatusReport {
            rail_transaction_id: rail_transaction_id.to_owned(),
            reference: None,
            status: ticket.status_at(unix_now_ms()),
            amount: Some(ticket.amount),
        })
    }

    fn parse_callback(
        &self,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<StatusReport, RailError> {
        self.verify_signature(headers, body)?;
        let callback: CallbackBody = serde_json::from_slice(body)
            .map_err(|error| invalid(format!("malformed body: {error}")))?;
        callback.into_report()
    }

    fn parse_customer_payment(
        &self,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<Option<CustomerPayment>, RailError> {
        let is_customer_payment = serde_json::from_slice::<serde_json::Value>(body)
            .is_ok_and(|value| value["type"] == CUSTOMER_PAYMENT_TYPE);
        if !is_customer_payment {
            return Ok(None);
        }
        self.verify_signature(headers, body)?;
        let payment: CustomerPaymentBody = serde_json::from_slice(body)
            .map_err(|error| invalid(format!("malformed body: {error}")))?;
        let currency = Currency::parse(&payment.currency)
            .map_err(|error| invalid(format!("currency: {error}")))?;
        if payment.amount <= 0 || payment.transaction_id.is_empty() {
            return Err(invalid(
                "a customer payment needs an amount and a transaction id",
            ));
        }
        Ok(Some(CustomerPayment {
            rail_transaction_id: payment.transaction_id,
            account_reference: payment.account_reference,
            amount: Money::new(payment.amount, currency),
            phone: payment.phone,
            payer_name: payment.payer_name,
        }))
    }

    async fn lookup_account_name(&self, phone: &str) -> Result<String, RailError> {
        match last_four_digits(phone) {
            Some(last_four) if Trigger::for_number(phone) != Trigger::PayoutFails => {
                Ok(format!("Simulated Customer {last_four}"))
            }
            _ => Err(unavailable("no such account")),
        }
    }
}

/// How a sandbox customer payment ended at the simulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerPaymentSent {
    /// Validation refused it: the customer was told, nothing moved.
    Refused { reason: String },
    /// Paid: the confirmation was delivered.
    Confirmed,
}

/// A customer-initiated payment as the simulator sends it, to validation
/// and then to confirmation: `{"type": "customer_payment", ...}`.
#[derive(Debug, Serialize, Deserialize)]
struct CustomerPaymentBody {
    #[serde(rename = "type")]
    kind: String,
    transaction_id: String,
    account_reference: String,
    amount: i64,
    currency: String,
    phone: Option<String>,
    payer_name: Option<String>,
}

const CUSTOMER_PAYMENT_TYPE: &str = "customer_payment";

impl From<&CustomerPayment> for CustomerPaymentBody {
    fn from(payment: &CustomerPayment) -> Self {
        Self {
            kind: CUSTOMER_PAYMENT_TYPE.to_owned(),
            transaction_id: payment.rail_transaction_id.clone(),
            account_reference: payment.account_reference.clone(),
            amount: payment.amount.amount_minor,
            currency: payment.amount.currency.code().to_owned(),
            phone: payment.phone.clone(),
            payer_name: payment.payer_name.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct ValidationAnswer {
    accepted: bool,
    reason: Option<String>,
}

/// The JSON the simulator POSTs, and reads back in [`Rail::parse_callback`].
#[derive(Debug, Serialize, Deserialize)]
struct CallbackBody {
    transaction_id: String,
    reference: Option<String>,
    status: String,
    #[serde(default)]
    failure_code: Option<String>,
    #[serde(default)]
    message: String,
    amount: i64,
    currency: String,
}

impl CallbackBody {
    fn new(id: &str, reference: &str, amount: Money, status: &RailStatus) -> Self {
        let (status, failure_code, message) = match status {
            RailStatus::Succeeded => ("succeeded", None, "The transaction completed"),
            RailStatus::Failed { failure, message } => (
                "failed",
                Some(failure.as_str().to_owned()),
                message.as_str(),
            ),
            // Never called for a pending transaction; reported faithfully if it were.
            RailStatus::Pending => ("pending", None, "The transaction is pending"),
        };
        Self {
            transaction_id: id.to_owned(),
            reference: Some(reference.to_owned()),
            status: status.to_owned(),
            failure_code,
            message: message.to_owned(),
            amount: amount.amount_minor,
            currency: amount.currency.code().to_owned(),
        }
    }

    fn into_report(self) -> Result<StatusReport, RailError> {
        let status = match self.status.as_str() {
            "succeeded" => RailStatus::Succeeded,
            "failed" => RailStatus::Failed {
                // A code this version does not know is still a failure.
                failure: self
                    .failure_code
                    .as_deref()
                    .and_then(FailureCode::parse)
                    .unwrap_or(FailureCode::RailError),
                message: self.message,
            },
            other => return Err(invalid(format!("unknown status `{other}`"))),
        };
        let currency =
            Currency::parse(&self.currency).map_err(|error| invalid(error.to_string()))?;
        Ok(StatusReport {
            rail_transaction_id: self.transaction_id,
            reference: self.reference,
            status,
            amount: Some(Money::new(self.amount, currency)),
        })
    }
}

fn invalid(reason: impl Into<String>) -> RailError {
    RailError::InvalidCallback(reason.into())
}

/// Signature header value for a callback body:
/// `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "{t}.{body}")>`.
pub fn sign(secret: &[u8], unix_seconds: i64, body: &[u8]) -> String {
    format!(
        "t={unix_seconds},v1={}",
        to_hex(&mac(secret, unix_seconds, body))
    )
}

fn mac(secret: &[u8], unix_seconds: i64, body: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(format!("{unix_seconds}.").as_bytes());
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// Checks a signature header against the body, in constant time, then its
/// age: a correctly signed but old callback is a replay.
fn verify(secret: &[u8], header: &str, body: &[u8], now: i64) -> Result<(), RailError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            // Several v1 values are allowed, so a secret can be rotated.
            Some(("v1", value)) => signatures.extend(from_hex(value)),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or_else(|| invalid("signature header has no valid timestamp"))?;
    if signatures.is_empty() {
        return Err(invalid("signature header has no v1 signature"));
    }
    let expected = mac(secret, timestamp, body);
    if !signatures
        .iter()
        .any(|given| bool::from(expected.as_slice().ct_eq(given.as_slice())))
    {
        return Err(invalid("signature does not match"));
    }
    if now.abs_diff(timestamp) > SIGNATURE_TOLERANCE_SECONDS {
        return Err(invalid("signature timestamp is too far from now"));
    }
    Ok(())
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// Crockford's base32 (no padding, uppercase, no I L O U): ids that read
/// like an operator's.
mod base32 {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

    pub fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
        let (mut buffer, mut bits) = (0u32, 0u32);
        for byte in bytes {
            buffer = ((buffer << 8) | u32::from(*byte)) & 0xffff;
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
            }
        }
        if bits > 0 {
            out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
        }
        out
    }

    /// `None` for a character outside the alphabet, or leftover bits that
    /// are not zero (so each byte string has exactly one encoding).
    pub fn decode(text: &str) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(text.len() * 5 / 8);
        let (mut buffer, mut bits) = (0u32, 0u32);
        for c in text.bytes() {
            let value = ALPHABET.iter().position(|a| *a == c)? as u32;
            buffer = ((buffer << 5) | value) & 0xffff;
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                out.push((buffer >> bits) as u8);
            }
        }
        // Five or more leftover bits would be a whole character too many.
        (bits < 5 && buffer & ((1 << bits) - 1) == 0).then_some(out)
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Lowercase or uppercase hex; `None` for anything else.
fn from_hex(text: &str) -> Option<Vec<u8>> {
    let nibble = |byte: u8| char::from(byte).to_digit(16).map(|digit| digit as u8);
    text.as_bytes()
        .chunks(2)
        .map(|pair| match *pair {
            [high, low] => Some(nibble(high)? << 4 | nibble(low)?),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_come_from_the_last_four_digits() {
        assert_eq!(Trigger::for_number("+254700000001"), Trigger::Decline);
        assert_eq!(Trigger::for_number("+255 700 000 009"), Trigger::Flaky);
        assert_eq!(Trigger::for_number("12340008"), Trigger::PayoutFails);
        assert_eq!(Trigger::for_number("+254700001234"), Trigger::Success);
        assert_eq!(Trigger::for_number("001"), Trigger::Success);
        assert_eq!(Trigger::for_number(""), Trigger::Success);
    }

    #[test]
    fn signatures_verify_and_hex_round_trips() {
        let header = sign(b"secret", 1_700_000_000, b"{}");
        assert!(header.starts_with("t=1700000000,v1="));
        assert_eq!(header.len(), "t=1700000000,v1=".len() + 64);
        assert_eq!(verify(b"secret", &header, b"{}", 1_700_000_100), Ok(()));
        assert!(verify(b"secret", &header, b"{}", 1_700_000_301).is_err());
        assert!(verify(b"other", &header, b"{}", 1_700_000_000).is_err());
        assert_eq!(from_hex("00ff7A"), Some(vec![0, 255, 122]));
        assert_eq!(from_hex("0"), None);
        assert_eq!(from_hex("zz"), None);
        assert_eq!(from_hex("+f"), None);
        assert_eq!(from_hex("é0"), None);
    }

    fn ticket(reference: &str, trigger: Trigger, answers_at_ms: u64) -> Ticket {
        let mut reference_digest = [0; 6];
        reference_digest.copy_from_slice(&reference_key(reference)[..6]);
        Ticket {
            direction: Direction::Payout,
            trigger,
            answers_at_ms,
            amount: Money::new(123_456, Currency::UGX),
            reference_digest,
        }
    }

    #[test]
    fn ids_carry_a_sealed_ticket_and_differ_by_reference() {
        let a = ticket("pay_1", Trigger::Decline, 1_700_000_000_000);
        let id = a.seal(b"secret");
        assert_eq!(id.len(), 3 + 52, "{id}");
        assert!(
            id[3..]
                .bytes()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        );
        assert_eq!(Ticket::open(&id, b"secret"), Some(a));
        assert_eq!(Ticket::open(&id, b"other secret"), None);
        let other = ticket("pay_2", Trigger::Decline, 1_700_000_000_000);
        assert_ne!(other.seal(b"secret"), id);
        // Any changed character breaks the seal.
        let mut forged = id.clone().into_bytes();
        forged[10] = if forged[10] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        assert_eq!(Ticket::open(&forged, b"secret"), None);
        assert_eq!(Ticket::open("SIMNOSUCHTHING00000", b"secret"), None);
        assert_eq!(a.status_at(1_699_999_999_999), RailStatus::Pending);
        assert!(matches!(
            a.status_at(1_700_000_000_000),
            RailStatus::Failed {
                failure: FailureCode::Declined,
                ..
            }
        ));
        let silent = ticket("p", Trigger::NoAnswer, 0);
        assert_eq!(silent.status_at(u64::MAX), RailStatus::Pending);
    }

    #[test]
    fn recent_references_are_forgotten_oldest_first() {
        let mut recent = Recent::default();
        let start = Instant::now();
        recent.remember([1; 8], Seen::FlakyFailed, start);
        recent.remember([2; 8], Seen::FlakyFailed, start + RECENT_FOR / 2);
        assert!(recent.get(&[1; 8]).is_some());
        let later = start + RECENT_FOR + Duration::from_secs(1);
        recent.remember([3; 8], Seen::FlakyFailed, later);
        assert!(recent.get(&[1; 8]).is_none());
        assert!(recent.get(&[2; 8]).is_some() && recent.get(&[3; 8]).is_some());
        assert_eq!(recent.order.len(), 2);
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        /// One for every case: building its HTTP client is slow.
        static SIMULATOR: std::sync::LazyLock<Simulator> =
            std::sync::LazyLock::new(|| Simulator::new(SimulatorConfig::default()));

        fn header_name() -> impl Strategy<Value = String> {
            prop_oneof![
                Just(SIGNATURE_HEADER.to_owned()),
                Just(SIGNATURE_HEADER.to_uppercase()),
                any::<String>(),
            ]
        }

        fn header_value() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<String>(),
                "t=-?[0-9]{1,20}(,v1=[0-9a-fA-F]{0,66})*",
                "[tv1=,0-9a-f ]{0,80}",
            ]
        }

        proptest! {
            /// Arbitrary headers and body: never a panic, and without the
            /// signing secret nothing verifies.
            #[test]
            fn arbitrary_callbacks_never_panic_and_never_verify(
                headers in proptest::collection::vec((header_name(), header_value()), 0..4),
                body in prop_oneof![
                    any::<Vec<u8>>(),
                    any::<String>().prop_map(String::into_bytes),
                ],
            ) {
                prop_assert!(SIMULATOR.parse_callback(&headers, &body).is_err());
            }

            /// A signature made with another secret, or over another body,
            /// never verifies; the real one over the same body does.
            #[test]
            fn forged_signatures_never_verify(
                secret in proptest::collection::vec(any::<u8>(), 0..40),
                other_secret in proptest::collection::vec(any::<u8>(), 0..40),
                body in any::<Vec<u8>>(),
                other_body in any::<Vec<u8>>(),
                now in 0i64..4_000_000_000,
            ) {
                let header = sign(&secret, now, &body);
                prop_assert_eq!(verify(&secret, &header, &body, now), Ok(()));
                // HMAC pads a short key with zero bytes, so `[0]` and `[]`
                // are one key: secrets differ only beyond that padding.
                let unpadded = |key: &[u8]| {
                    key.iter().rposition(|b| *b != 0).map_or(0, |last| last + 1)
                };
                if other_secret[..unpadded(&other_secret)] != secret[..unpadded(&secret)] {
                    prop_assert!(verify(&other_secret, &header, &body, now).is_err());
                }
                if other_body != body {
                    prop_assert!(verify(&secret, &header, &other_body, now).is_err());
                }
            }

            #[test]
            fn base32_round_trips(bytes in any::<Vec<u8>>(), text in any::<String>()) {
                prop_assert_eq!(base32::decode(&base32::encode(&bytes)), Some(bytes));
                if let Some(decoded) = base32::decode(&text) {
                    prop_assert_eq!(base32::encode(&decoded), text.clone());
                }
                // Never panics, whatever an id claims to be.
                let _ = Ticket::open(&format!("SIM{text}"), b"secret");
            }

            #[test]
            fn hex_round_trips(bytes in any::<Vec<u8>>(), text in any::<String>()) {
                prop_assert_eq!(from_hex(&to_hex(&bytes)), Some(bytes));
                let _ = from_hex(&text);
            }
        }
    }
}
