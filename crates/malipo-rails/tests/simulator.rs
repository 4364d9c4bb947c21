//! The sandbox rail against a real local HTTP receiver.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use malipo_core::{Currency, Direction, Money};
use malipo_rails::simulator::{SIGNATURE_HEADER, Simulator, SimulatorConfig, sign};
use malipo_rails::{
    CollectionRequest, Destination, FailureCode, Method, PayoutRequest, Rail, RailError,
    RailStatus, StartOutcome, StatusReport,
};

const SECRET: &[u8] = b"test-signing-secret";

/// One callback as the receiver saw it.
#[derive(Debug, Clone, PartialEq)]
struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

type Inbox = Arc<Mutex<Vec<Received>>>;

/// A merchant-side endpoint on 127.0.0.1 that records every callback.
struct Receiver {
    url: String,
    inbox: Inbox,
}

impl Receiver {
    async fn start() -> Self {
        let inbox = Inbox::default();
        let app = Router::new()
            .route("/callback", post(record))
            .with_state(inbox.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/callback", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, inbox }
    }

    fn received(&self) -> Vec<Received> {
        self.inbox.lock().unwrap().clone()
    }

    /// Waits (polling) until `count` callbacks arrived; fails after 3 s.
    async fn wait_for(&self, count: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "expected {count} callbacks, got {}",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn record(State(inbox): State<Inbox>, headers: HeaderMap, body: Bytes) {
    let headers = headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                value.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    inbox.lock().unwrap().push(Received {
        headers,
        body: body.to_vec(),
    });
}

fn simulator() -> Simulator {
    Simulator::new(SimulatorConfig {
        callback_delay_ms: 20,
        poll_after_ms: 3_000,
        signing_secret: SECRET.to_vec(),
    })
}

fn kes(amount_minor: i64) -> Money {
    Money::new(amount_minor, Currency::KES)
}

fn collection(receiver: &Receiver, reference: &str, phone: &str) -> CollectionRequest {
    CollectionRequest {
        reference: reference.to_owned(),
        amount: kes(10_000),
        phone: phone.to_owned(),
        description: "Order 42".to_owned(),
        fields: BTreeMap::new(),
        otp: None,
        callback_url: receiver.url.clone(),
        recurring: false,
    }
}

fn payout(receiver: &Receiver, reference: &str, destination: Destination) -> PayoutRequest {
    PayoutRequest {
        reference: reference.to_owned(),
        amount: kes(2_500),
        destination,
        description: "Refund".to_owned(),
        callback_url: receiver.url.clone(),
        refund_of: None,
    }
}

fn wallet(phone: &str) -> Destination {
    Destination::Wallet {
        phone: phone.to_owned(),
    }
}

fn accepted_id(outcome: StartOutcome) -> String {
    match outcome {
        StartOutcome::Accepted {
            rail_transaction_id,
        } => rail_transaction_id,
        other => panic!("expected Accepted, got {other:?}"),
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Waits (polling) until the rail reports the transaction is no longer pending.
async fn wait_for_final(rail: &Simulator, id: &str) -> StatusReport {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let report = rail.query_status(id).await.unwrap();
        if report.status != RailStatus::Pending {
            return report;
        }
        assert!(Instant::now() < deadline, "{id} still pending");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Starts a collection, waits for its one callback and returns what
/// `parse_callback` made of it (after checking the query agrees).
async fn collect_and_parse(phone: &str) -> StatusReport {
    let receiver = Receiver::start().await;
    let rail = simulator();
    let id = accepted_id(
        rail.start_collection(&collection(&receiver, "pay_1", phone))
            .await
            .unwrap(),
    );
    let callbacks = receiver.wait_for(1).await;
    let report = rail
        .parse_callback(&callbacks[0].headers, &callbacks[0].body)
        .unwrap();
    assert_eq!(report.rail_transaction_id, id);
    assert_eq!(rail.query_status(&id).await.unwrap().status, report.status);
    report
}

#[tokio::test]
async fn a_collection_succeeds_with_a_signed_callback() {
    let receiver = Receiver::start().await;
    let rail = simulator();
    let id = accepted_id(
        rail.start_collection(&collection(&receiver, "pay_ok", "+254700001234"))
            .await
            .unwrap(),
    );
    assert!(id.starts_with("SIM") && id.len() == 55, "{id}");
    // Pending until the simulated customer answers.
    assert_eq!(
        rail.query_status(&id).await.unwrap().status,
        RailStatus::Pending
    );

    let callbacks = receiver.wait_for(1).await;
    let callback = &callbacks[0];
    let header = |name: &str| {
        callback
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header("content-type"), Some("application/json"));
    assert!(header(SIGNATURE_HEADER).unwrap().starts_with("t="));
    let json: serde_json::Value = serde_json::from_slice(&callback.body).unwrap();
    assert_eq!(json["status"], "succeeded");
    assert_eq!(json["failure_code"], serde_json::Value::Null);

    let report = rail
        .parse_callback(&callback.headers, &callback.body)
        .unwrap();
    let expected = StatusReport {
        rail_transaction_id: id.clone(),
        reference: Some("pay_ok".to_owned()),
        status: RailStatus::Succeeded,
        amount: Some(kes(10_000)),
    };
    assert_eq!(report, expected);
    // A status query answers from the id alone: it does not echo the reference.
    let queried = StatusReport {
        reference: None,
        ..expected
    };
    assert_eq!(rail.query_status(&id).await.unwrap(), queried);
    // So does another simulator with the same signing secret (another node).
    assert_eq!(simulator().query_status(&id).await.unwrap(), queried);
}

#[tokio::test]
async fn declines_and_insufficient_funds_fail_with_their_codes() {
    let report = collect_and_parse("+254700000001").await;
    assert_eq!(
        report.status,
        RailStatus::Failed {
            failure: FailureCode::Declined,
            message: "The customer cancelled the prompt".to_owned()
        }
    );
    let report = collect_and_parse("+254700000002").await;
    assert!(matches!(
        report.status,
        RailStatus::Failed {
            failure: FailureCode::InsufficientFunds,
            ..
        }
    ));
}

#[tokio::test]
async fn an_unanswered_prompt_stays_pending_without_callback() {
    let receiver = Receiver::start().await;
    let rail = simulator();
    let id = accepted_id(
        rail.start_collection(&collection(&receiver, "pay_1", "+254700000003"))
            .await
            .unwrap(),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(receiver.received().is_empty());
    assert_eq!(
        rail.query_status(&id).await.unwrap().status,
        RailStatus::Pending
    );
}

#[tokio::test]
async fn the_otp_flow() {
    let receiver = Receiver::start().await;
    let rail = simulator();
    let mut request = collection(&receiver, "pay_otp", "+254700000004");
    assert_eq!(
        rail.start_collection(&request).await.unwrap(),
        StartOutcome::NeedsOtp
    );
    request.otp = Some("000000".to_owned());
    assert!(matches!(
        rail.start_collection(&request).await.unwrap(),
        StartOutcome::Rejected {
            failure: FailureCode::InvalidOtp,
            ..
        }
    ));
    request.otp = Some(Simulator::OTP.to_owned());
    let id = accepted_id(rail.start_collection(&request).await.unwrap());
    let callbacks = receiver.wait_for(1).await;
    let report = rail
        .parse_callback(&callbacks[0].headers, &callbacks[0].body)
        .unwrap();
    assert_eq!(
        (report.rail_transaction_id, report.status),
        (id, RailStatus::Succeeded)
    );
}

#[tokio::test]
async fn missing_data_lists_both_fields_and_errors_only_for_bad_values() {
    let receiver = Receiver::start().await;
    let rail = simulator();
    let mut request = collection(&receiver, "pay_kyc", "+254700000005");
    let needs = |outcome: StartOutcome| match outcome {
        StartOutcome::NeedsFields { fields, errors } => {
            assert_eq!(
                fields.keys().collect::<Vec<_>>(),
                ["customer.id_number", "customer.name"]
            );
            errors
        }
        other => panic!("expected NeedsFields, got {other:?}"),
    };

    // Nothing given: both asked for, no errors.
    assert!(needs(rail.start_collection(&request).await.unwrap()).is_empty());

    // A valid name, an id that is not digits: only the id is wrong.
    request
        .fields
        .insert("customer.name".to_owned(), "Amina Otieno".to_owned());
    request
        .fields
        .insert("customer.id_number".to_owned(), "12AB5678".to_owned());
    let errors = needs(rail.start_collection(&request).await.unwrap());
    assert_eq!(errors.keys().collect::<Vec<_>>(), ["customer.id_number"]);

    // A blank name, a missing id: only the name is wrong.
    request
        .fields
        .insert("customer.name".to_owned(), "   ".to_owned());
    request.fields.remove("customer.id_number");
    let errors = needs(rail.start_collection(&request).await.unwrap());
    assert_eq!(errors.keys().collect::<Vec<_>>(), ["customer.name"]);

    // Too long a name, too short an id.
    request
        .fields
        .insert("customer.name".to_owned(), "x".repeat(101));
    request
        .fields
        .insert("customer.id_number".to_owned(), "1234567".to_owned());
    assert_eq!(
        needs(rail.start_collection(&request).await.unwrap()).len(),
        2
    );
    assert!(receiver.received().is_empty());

    request
        .fields
        .insert("customer.name".to_owned(), "Amina Otieno".to_owned());
    request
        .fields
        .insert("customer.id_number".to_owned(), "12345678".to_owned());
    let id = accepted_id(rail.start_collection(&request).await.unwrap());
    assert_eq!(
        wait_for_final(&rail, &id).await.status,
        RailStatus::Succeeded
    );
    receiver.wait_for(1).await;
}

#[tokio::test]
async fn a_lost_callback_is_only_seen_by_querying() {
    let receiver = Receiver::start().await;
    let rail = simulator();
    let id = accepted_id(
        rail.start_collection(&collection(&receiver, "pay_1", "+254700000006"))
            .await
            .unwrap(),
    );
    assert_eq!(
        wait_for_final(&rail, &id).await.status,
        RailStatus::Succeeded
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn a_duplicated_callback_arrives_twice_identical() {
    let receiver = Receiver::start().await;
    let rail = simulator();
    accepted_id(
        rail.start_collection(&collection(&receiver, "pay_1", "+254700000007"))
            .await
            .unwrap(),
    );
    let callbacks = receiver.wait_for(2).await;
    let signature = |received: &Received| {
        received
            .headers
            .iter()
            .find(|(name, _)| name == SIGNATURE_HEADER)
            .map(|(_, value)| value.clone())
    };
    assert_eq!(callbacks[0].body, callbacks[1].body);
    assert_eq!(signature(&callbacks[0]), signature(&callbacks[1]));
    assert!(signature(&callbacks[0]).is_some());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(receiver.received().len(), 2);
}

#[tokio::test]
async fn a_payout_to_a_0008_account_fails_invalid_account() {
    let receiver = Receiver::start().await;
    let rail = simulator();
    for (reference, destination) in [
        ("po_wallet", wallet("+254700000008")),
        (
            "po_bank",
            Destination::Bank {
                bank_code: "01".to_owned(),
                account_number: "12340008".to_owned(),
                account_name: "A".to_owned(),
            },
        ),
    ] {
        let id = accepted_id(
            rail.start_payout(&payout(&receiver, reference, destination))
                .await
                .unwrap(),
        );
        let report = wait_for_final(&rail, &id).await;
        assert!(matches!(
            report.status,
            RailStatus::Failed {
                failure: FailureCode::InvalidAccount,
                ..
            }
        ));
        assert_eq!(report.amount, Some(kes(2_500)));
    }
    let callbacks = receiver.wait_for(2).await;
    for callback in &callbacks {
        let report = rail
            .parse_callback(&callback.headers, &callback.body)
            .unwrap();
        assert!(matches!(
            report.status,
            RailStatus::Failed {
                failure: FailureCode::InvalidAccount,
                ..
            }
        ));
    }

    // A collection from the same number succeeds.
    let report = collect_and_parse("+254700000008").await;
    assert_eq!(report.status, RailStatus::Succeeded);

    // Account-name lookups.
    assert_eq!(
        rail.lookup_account_name("+254700001234").await.unwrap(),
        "Simulated Customer 1234"
    );
    assert!(matches!(
        rail.lookup_account_name("+254700000008").await,
        Err(RailError::Unavailable { .. })
    ));
}

#[tokio::test]
async fn payouts_follow_the_bank_account_triggers() {
    let receiver = Receiver::start().await;
    let rail = simulator();
    let bank = |account: &str| Destination::Bank {
        bank_code: "01".to_owned(),
        account_number: account.to_owned(),
        account_name: "Amina Otieno".to_owned(),
    };
    let ok = accepted_id(
        rail.start_payout(&payout(&receiver, "po_ok", bank("1234567890")))
            .await
            .unwrap(),
    );
    let declined = accepted_id(
        rail.start_payout(&payout(&receiver, "po_no", bank("9876540001")))
            .await
            .unwrap(),
    );
    assert_eq!(
        wait_for_final(&rail, &ok).await.status,
        RailStatus::Succeeded
    );
    assert!(matches!(
        wait_for_final(&rail, &declined).await.status,
        RailStatus::Failed {
            failure: FailureCode::Declined,
            ..
        }
    ));
    receiver.wait_for(2).await;
}

#[tokio::test]
async fn a_flaky_rail_fails_the_first_call_only() {
    let receiver = Receiver::start().await;
    let rail = simulator();
    let request = collection(&receiver, "pay_flaky", "+254700000009");
    assert!(matches!(
        rail.start_collection(&request).await,
        Err(RailError::Unavailable {
            rail: "simulator",
            ..
        })
    ));
    let id = accepted_id(rail.start_collection(&request).await.unwrap());
    assert_eq!(
        wait_for_final(&rail, &id).await.status,
        RailStatus::Succeeded
    );

    let request = payout(&receiver, "po_flaky", wallet("+254700000009"));
    assert!(matches!(
        rail.start_payout(&request).await,
        Err(RailError::Unavailable { .. })
    ));
    let id = accepted_id(rail.start_payout(&request).await.unwrap());
    assert_eq!(
        wait_for_final(&rail, &id).await.status,
        RailStatus::Succeeded
    );
    receiver.wait_for(2).await;
}

#[tokio::test]
async fn the_same_reference_twice_is_one_transaction() {
    let receiver = Receiver::start().await;
    let rail = simulator();
    let request = collection(&receiver, "pay_once", "+254700001234");
    let first = accepted_id(rail.start_collection(&request).await.unwrap());
    let second = accepted_id(rail.start_collection(&request).await.unwrap());
    assert_eq!(first, second);
    receiver.wait_for(1).await;
    // A retry after completion still names the same transaction.
    assert_eq!(
        accepted_id(rail.start_collection(&request).await.unwrap()),
        first
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(receiver.received().len(), 1);

    // Another reference is another transaction.
    let other = accepted_id(
        rail.start_collection(&collection(&receiver, "pay_twice", "+254700001234"))
            .await
            .unwrap(),
    );
    assert_ne!(other, first);
}

#[tokio::test]
async fn invalid_requests_are_refused_at_once() {
    let receiver = Receiver::start().await;
    let rail = simulator();
    let mut request = collection(&receiver, "pay_1", "0700001234");
    assert!(matches!(
        rail.start_collection(&request).await.unwrap(),
        StartOutcome::Rejected {
            failure: FailureCode::InvalidAccount,
            ..
        }
    ));
    request.phone = "+254700001234".to_owned();
    request.amount = kes(0);
    assert!(matches!(
        rail.start_collection(&request).await,
        Err(RailError::Unsupported { .. })
    ));
    let bank = Destination::Bank {
        bank_code: String::new(),
        account_number: "123".to_owned(),
        account_name: String::new(),
    };
    assert!(matches!(
        rail.start_payout(&payout(&receiver, "po_1", bank))
            .await
            .unwrap(),
        StartOutcome::Rejected {
            failure: FailureCode::InvalidAccount,
            ..
        }
    ));
    assert!(matches!(
        rail.query_status("SIMNOSUCHTHING00000").await,
        Err(RailError::Unavailable { .. })
    ));
}

#[test]
fn capabilities() {
    let rail = simulator();
    let caps = rail.capabilities();
    assert_eq!((caps.id, caps.name), ("simulator", "Malipo simulator"));
    assert_eq!(caps.currencies, Currency::ALL);
    assert!(caps.countries.contains(&"KE") && caps.countries.len() == 13);
    assert!(caps.supports(Direction::Payout, Currency::UGX, Method::Bank));
    assert!(caps.supports(Direction::Collection, Currency::KES, Method::MobileMoney));
    assert_eq!(
        (
            caps.amount_min_minor,
            caps.amount_max_minor,
            caps.poll_after_ms
        ),
        (1, 1_000_000_000_000, 3_000)
    );
}

/// A body and headers signed as the simulator would sign them.
fn signed(secret: &[u8], at: i64, body: &[u8]) -> Vec<(String, String)> {
    vec![("X-Simulator-Signature".to_owned(), sign(secret, at, body))]
}

const BODY: &str = r#"{"transaction_id":"SIMABC","reference":"pay_1","status":"failed","failure_code":"something_new","message":"odd","amount":500,"currency":"UGX"}"#;

#[test]
fn parse_callback_reads_a_valid_callback_with_any_header_case() {
    let rail = simulator();
    let report = rail
        .parse_callback(
            &signed(SECRET, unix_now(), BODY.as_bytes()),
            BODY.as_bytes(),
        )
        .unwrap();
    assert_eq!(report.reference.as_deref(), Some("pay_1"));
    assert_eq!(report.amount, Some(Money::new(500, Currency::UGX)));
    // An unknown failure code is still a failure.
    assert_eq!(
        report.status,
        RailStatus::Failed {
            failure: FailureCode::RailError,
            message: "odd".to_owned()
        }
    );
}

#[test]
fn parse_callback_refuses_what_it_cannot_trust() {
    let rail = simulator();
    let body = BODY.as_bytes();
    let now = unix_now();
    let refused = |headers: &[(String, String)], body: &[u8]| {
        assert!(
            matches!(
                rail.parse_callback(headers, body),
                Err(RailError::InvalidCallback(_))
            ),
            "{headers:?}"
        );
    };

    let tampered = BODY.replace("500", "50000");
    refused(&signed(SECRET, now, body), tampered.as_bytes());
    refused(&signed(b"wrong secret", now, body), body);
    refused(&[], body);
    refused(
        &[("content-type".to_owned(), "application/json".to_owned())],
        body,
    );
    refused(&signed(SECRET, now - 301, body), body);
    refused(&signed(SECRET, now + 301, body), body);
    refused(&signed(SECRET, i64::MIN, body), body);

    for bad in [
        "",
        "t=",
        "v1=",
        "t=abc,v1=00",
        "garbage",
        "t=1,v1=zz",
        "=,=,",
        "t=1=2,v1=é",
        ",,,,",
    ] {
        refused(&[(SIGNATURE_HEADER.to_owned(), bad.to_owned())], body);
    }

    // Correctly signed, but not a callback.
    for junk in [&b""[..], b"\xff\xfe\x00garbage", b"null", b"[]", b"{}"] {
        refused(&signed(SECRET, now, junk), junk);
    }
    let unknown_currency = BODY.replace("UGX", "XYZ");
    refused(
        &signed(SECRET, now, unknown_currency.as_bytes()),
        unknown_currency.as_bytes(),
    );
    let unknown_status = BODY.replace("\"failed\"", "\"maybe\"");
    refused(
        &signed(SECRET, now, unknown_status.as_bytes()),
        unknown_status.as_bytes(),
    );

    // Pseudo-random bytes, as body and as header: refused, never a panic.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for round in 0..500 {
        let bytes: Vec<u8> = (0..round % 97)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        refused(&[(SIGNATURE_HEADER.to_owned(), text)], &bytes);
        refused(&signed(SECRET, now, &bytes), &bytes);
    }
}
