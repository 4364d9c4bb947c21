//! Fees, exchange rates and the audit log, through the API and the CLI.

use malipo_core::{Currency, Direction, FeePayer, FeeSchedule, Mode, Money, Rate, Timestamp};
use malipo_ledger::{AccountKind, AccountSpec, FxNote, NewEntry, NewTransfer};
use malipo_store::{FeeLevel, FeeTarget};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::binary::{command, run, stdout, work_directory};
use crate::harness::{TestDatabase, expect_error, spawn_app};

const NOW: Timestamp = Timestamp::from_unix_ms(1_800_000_000_000);

fn target(
    level: FeeLevel,
    currency: Currency,
    rail: Option<&str>,
    direction: Option<Direction>,
) -> FeeTarget {
    FeeTarget {
        level,
        rail: rail.map(str::to_owned),
        direction,
        currency,
    }
}

#[tokio::test]
async fn fee_quotes_use_the_most_specific_schedule() {
    let app = spawn_app().await;
    let store = &app.store;
    let schedule = |bps, fixed, payer| FeeSchedule::new(bps, fixed, None, None, payer).unwrap();
    store
        .set_fee_schedule(
            target(FeeLevel::Platform, Currency::KES, None, None),
            schedule(100, 0, FeePayer::Merchant),
            "test",
            NOW,
        )
        .await
        .unwrap();
    // Finova: 0.5 % on top, paid by the customer.
    store
        .set_fee_schedule(
            target(
                FeeLevel::Merchant(app.merchant_id),
                Currency::TZS,
                None,
                None,
            ),
            schedule(50, 0, FeePayer::Customer),
            "test",
            NOW,
        )
        .await
        .unwrap();
    store
        .set_fee_schedule(
            target(
                FeeLevel::Platform,
                Currency::KES,
                Some("mpesa"),
                Some(Direction::Collection),
            ),
            schedule(0, 1_000, FeePayer::Customer),
            "test",
            NOW,
        )
        .await
        .unwrap();
    let other = app.create_merchant("Other").await;
    store
        .set_fee_schedule(
            target(FeeLevel::Merchant(other), Currency::KES, None, None),
            schedule(999, 0, FeePayer::Merchant),
            "test",
            NOW,
        )
        .await
        .unwrap();

    let quote = async |body: Value| {
        app.post_json("/v1/fee-quotes", &body)
            .await
            .json::<Value>()
            .await
            .unwrap()
    };
    let finova =
        quote(json!({"amount": 50_000_000, "currency": "TZS", "direction": "collection"})).await;
    assert_eq!(finova["fee"], 250_000);
    assert_eq!(finova["expected_total"], 50_250_000);
    assert_eq!(finova["merchant_net"], 50_000_000);
    assert_eq!(finova["payer"], "customer");

    let platform = quote(json!({"amount": 10_050, "currency": "KES", "direction": "payout"})).await;
    assert_eq!(
        platform["fee"], 101,
        "1 % of 100.50 is 1.005, rounded half-up"
    );
    assert_eq!(platform["merchant_net"], 9_949);
    assert_eq!(platform["expected_total"], 10_050);

    let by_rail = quote(
        json!({"amount": 10_000, "currency": "KES", "direction": "collection", "rail": "mpesa"}),
    )
    .await;
    assert_eq!(by_rail["fee"], 1_000);
    assert_eq!(by_rail["expected_total"], 11_000);

    let none = quote(json!({"amount": 5_000, "currency": "UGX", "direction": "collection"})).await;
    assert_eq!(none["fee"], 0);
    assert_eq!(none["fee_schedule"], Value::Null);

    let bad = expect_error(
        app.post_json(
            "/v1/fee-quotes",
            &json!({"amount": -1, "currency": "KES", "direction": "payout"}),
        )
        .await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_eq!(bad["error"]["param"], "amount");
    let bad = expect_error(
        app.post_json(
            "/v1/fee-quotes",
            &json!({"amount": 1, "currency": "XYZ", "direction": "payout"}),
        )
        .await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_eq!(bad["error"]["param"], "currency");
    let bad = expect_error(
        app.post_json(
            "/v1/fee-quotes",
            &json!({"amount": 1, "currency": "KES", "direction": "sideways"}),
        )
        .await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_eq!(bad["error"]["param"], "direction");

    let listed: Value = app.get("/v1/fee-schedules").await.json().await.unwrap();
    let levels: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["level"].as_str().unwrap())
        .collect();
    assert_eq!(
        levels.len(),
        3,
        "the platform's two and this merchant's one, not the other merchant's: {listed}"
    );
}

#[tokio::test]
async fn fx_quotes_name_the_rate_they_used() {
    let app = spawn_app().await;
    let rate = Rate::parse(Currency::USD, Currency::UGX, "3712.45").unwrap();
    let recorded = app
        .store
        .set_fx_rate(&rate, "Bank of Uganda mid", NOW, "test", NOW)
        .await
        .unwrap();

    // DusuPay: a collection priced in USD, paid in UGX.
    let quote: Value = app
        .post_json(
            "/v1/fx-quotes",
            &json!({"amount": 1_000, "from_currency": "USD", "to_currency": "UGX"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        quote["to_amount"], 37_125,
        "37,124.5 rounds half away from zero"
    );
    assert_eq!(quote["fx_rate"]["id"], recorded.id.to_string());
    assert_eq!(quote["fx_rate"]["rate"], "3712.45");
    assert_eq!(quote["fx_rate"]["source"], "Bank of Uganda mid");

    let inverse: Value = app
        .post_json(
            "/v1/fx-quotes",
            &json!({"amount": 37_124, "from_currency": "UGX", "to_currency": "USD"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(inverse["to_amount"], 1_000);

    let missing = app
        .post_json(
            "/v1/fx-quotes",
            &json!({"amount": 1, "from_currency": "KES", "to_currency": "TZS"}),
        )
        .await;
    expect_error(missing, 422, "FX_RATE_UNAVAILABLE").await;
    let rates: Value = app.get("/v1/fx-rates").await.json().await.unwrap();
    assert_eq!(rates["data"][0]["rate"], "3712.45");

    // A conversion in the ledger records its rate.
    let ids = app
        .store
        .ensure_accounts(
            &[
                AccountSpec::merchant(
                    app.merchant_id,
                    Mode::Test,
                    Currency::USD,
                    AccountKind::Receivable,
                ),
                AccountSpec::platform(Mode::Test, Currency::USD, AccountKind::FxPosition, ""),
                AccountSpec::merchant(
                    app.merchant_id,
                    Mode::Test,
                    Currency::UGX,
                    AccountKind::Available,
                ),
                AccountSpec::platform(Mode::Test, Currency::UGX, AccountKind::FxPosition, ""),
            ],
            NOW,
        )
        .await
        .unwrap();
    let mut conversion = NewTransfer::posted(
        "convert-1",
        "USD 10.00 collected as UGX",
        vec![
            NewEntry {
                account_id: ids[0],
                amount: Money::new(-1_000, Currency::USD),
            },
            NewEntry {
                account_id: ids[1],
                amount: Money::new(1_000, Currency::USD),
            },
            NewEntry {
                account_id: ids[3],
                amount: Money::new(-37_125, Currency::UGX),
            },
            NewEntry {
                account_id: ids[2],
                amount: Money::new(37_125, Currency::UGX),
            },
        ],
    );
    conversion.fx = Some(FxNote {
        rate_id: recorded.id,
        rate: rate.as_text(),
    });
    let posted = app
        .store
        .post_transfers(&[conversion], NOW)
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    let shown: Value = app
        .get(&format!("/v1/ledger/transfers/{}", posted.id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["fx_rate"]["rate"], "3712.45");
    assert_eq!(shown["fx_rate"]["id"], recorded.id.to_string());
}

#[tokio::test]
async fn the_audit_log_records_key_changes_for_the_merchant() {
    let app = spawn_app().await;
    let created: Value = app
        .post_json("/v1/api-keys", &json!({"name": "audited"}))
        .await
        .json()
        .await
        .unwrap();
    let key_id = created["id"].as_str().unwrap();
    app.post_json(&format!("/v1/api-keys/{key_id}/revoke"), &json!({}))
        .await;
    let events: Value = app.get("/v1/audit-events").await.json().await.unwrap();
    let actions: Vec<(&str, &str)> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["target"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(actions[0], ("api_key.revoked", key_id));
    assert_eq!(actions[1], ("api_key.created", key_id));
    assert!(
        events["data"][1]["actor"]
            .as_str()
            .unwrap()
            .starts_with("api_key:key_")
    );
    assert_eq!(events["data"][1]["details"]["name"], "audited");
    assert!(
        !events
            .to_string()
            .contains(created["secret"].as_str().unwrap()),
        "no secret in the audit log"
    );

    let other = app.create_merchant("Other").await;
    let other_key = app.create_key(other, Mode::Test, &[]).await;
    let theirs: Value = app
        .request(Method::GET, "/v1/audit-events", &other_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        theirs["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["target"] != key_id)
    );
}

async fn execute(url: &str, sql: &str) {
    let mut connection = sqlx::AnyConnection::connect(url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut connection)
        .await
        .unwrap();
}

fn verify(directory: &std::path::Path, url: &str) -> (bool, String) {
    let output = command(directory, url)
        .args(["audit", "verify"])
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[tokio::test]
async fn audit_verify_detects_edits_deletions_and_reordering() {
    let database = TestDatabase::create().await;
    let directory = work_directory();
    let url = database.url.clone();
    let merchant = stdout(&run(
        &directory,
        &url,
        &["merchants", "create", "--name", "Shule"],
    ))
    .trim()
    .to_owned();
    run(
        &directory,
        &url,
        &["keys", "create", "--merchant", &merchant],
    );
    run(
        &directory,
        &url,
        &[
            "fees",
            "set",
            "--currency",
            "TZS",
            "--bps",
            "50",
            "--payer",
            "customer",
        ],
    );
    run(
        &directory,
        &url,
        &["fx", "set", "USD", "TZS", "2650.5", "--source", "BoT"],
    );
    let (ok, report) = verify(&directory, &url);
    assert!(ok, "{report}");
    assert!(report.contains("checked 4 audit records"), "{report}");

    execute(
        &url,
        "UPDATE audit_events SET details = '{\"bps\": 1}' WHERE sequence = 3",
    )
    .await;
    let (ok, report) = verify(&directory, &url);
    assert!(!ok);
    assert!(
        report.contains("record 3") && report.contains("altered"),
        "{report}"
    );

    execute(&url, "DELETE FROM audit_events WHERE sequence = 3").await;
    let (ok, report) = verify(&directory, &url);
    assert!(!ok);
    assert!(report.contains("missing"), "{report}");

    execute(&url, "DELETE FROM audit_events").await;
    run(
        &directory,
        &url,
        &["fx", "set", "USD", "KES", "129.5", "--source", "CBK"],
    );
    run(
        &directory,
        &url,
        &["fx", "set", "USD", "UGX", "3700", "--source", "BoU"],
    );
    assert!(verify(&directory, &url).0);
    execute(&url, "UPDATE audit_events SET sequence = -1 WHERE sequence = 1; UPDATE audit_events SET sequence = 1 WHERE sequence = 2; UPDATE audit_events SET sequence = 2 WHERE sequence = -1").await;
    let (ok, report) = verify(&directory, &url);
    assert!(!ok);
    assert!(report.contains("does not follow"), "{report}");
    let _ = std::fs::remove_dir_all(directory);
}

#[tokio::test]
async fn the_ledger_cli_adjusts_and_checks() {
    let database = TestDatabase::create().await;
    let directory = work_directory();
    let url = database.url.clone();
    let merchant = stdout(&run(
        &directory,
        &url,
        &["merchants", "create", "--name", "Duka"],
    ))
    .trim()
    .to_owned();
    let adjust = |amount: &str, key: &str| {
        command(&directory, &url)
            .args([
                "ledger",
                "adjust",
                "--merchant",
                &merchant,
                "--currency",
                "KES",
                "--amount",
                amount,
                "--reason",
                "opening balance",
                "--key",
                key,
            ])
            .output()
            .unwrap()
    };
    let first = adjust("100.50", "open-1");
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let transfer = stdout(&first).trim().to_owned();
    assert!(transfer.starts_with("tr_"));
    assert!(stdout(&adjust("100.50", "open-1")).contains("already posted"));
    let overdraw = adjust("-200.00", "take-1");
    assert!(!overdraw.status.success());
    assert!(String::from_utf8_lossy(&overdraw.stderr).contains("may not go negative"));
    let too_precise = adjust("1.005", "open-2");
    assert!(!too_precise.status.success());

    let check = stdout(&run(&directory, &url, &["ledger", "check"]));
    assert!(check.contains("ledger OK"), "{check}");
    let reversal = stdout(&run(
        &directory,
        &url,
        &["ledger", "reverse", &transfer, "--reason", "typo"],
    ));
    assert!(reversal.trim().starts_with("tr_"));
    assert!(stdout(&run(&directory, &url, &["ledger", "check"])).contains("ledger OK"));

    execute(
        &url,
        "UPDATE ledger_accounts SET posted_minor = 5 WHERE kind = 'external'",
    )
    .await;
    let broken = command(&directory, &url)
        .args(["ledger", "check"])
        .output()
        .unwrap();
    assert!(!broken.status.success());
    assert!(stdout(&broken).contains("PROBLEM"));
    let _ = std::fs::remove_dir_all(directory);
}

#[test]
fn the_ledger_bench_runs_and_checks_what_it_posted() {
    let directory = work_directory();
    let output = command(&directory, "unused.db")
        .args([
            "bench",
            "ledger",
            "--transfers",
            "600",
            "--batch",
            "100",
            "--accounts",
            "10",
            "--concurrency",
            "16",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = stdout(&output);
    assert!(
        text.contains("batched:") && text.contains("group commit:"),
        "{text}"
    );
    assert!(text.contains("ledger check: OK"), "{text}");
    assert!(
        !directory.join("unused.db").exists(),
        "the bench uses its own scratch database"
    );
    let _ = std::fs::remove_dir_all(directory);
}
