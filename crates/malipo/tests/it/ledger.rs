//! The ledger over a real database: idempotent posting, holds, reversals,
//! never-negative accounts under concurrency, the check command, and the
//! merchant's API view.

use std::sync::Arc;

use malipo_core::{AccountId, Currency, Mode, Money, SystemClock, Timestamp};
use malipo_ledger::{
    AccountKind, AccountSpec, HoldOutcome, LedgerError, NewEntry, NewTransfer, PostOutcome,
};
use malipo_store::{LedgerWriter, NewAuditEvent, Store, Tenant};
use reqwest::Method;
use serde_json::Value;

use crate::harness::{TestApp, expect_error, spawn_app};

const NOW: Timestamp = Timestamp::from_unix_ms(1_800_000_000_000);

fn kes(amount: i64) -> Money {
    Money::new(amount, Currency::KES)
}

fn transfer(key: &str, from: AccountId, to: AccountId, amount: i64) -> NewTransfer {
    NewTransfer::posted(
        key,
        "test transfer",
        vec![
            NewEntry {
                account_id: from,
                amount: kes(-amount),
            },
            NewEntry {
                account_id: to,
                amount: kes(amount),
            },
        ],
    )
}

/// The platform's external account and two of the merchant's accounts
/// (available, reserve), all KES in test mode.
async fn accounts(app: &TestApp) -> (AccountId, AccountId, AccountId) {
    let ids = app
        .store
        .ensure_accounts(
            &[
                AccountSpec::platform(Mode::Test, Currency::KES, AccountKind::External, "tests"),
                AccountSpec::merchant(
                    app.merchant_id,
                    Mode::Test,
                    Currency::KES,
                    AccountKind::Available,
                ),
                AccountSpec::merchant(
                    app.merchant_id,
                    Mode::Test,
                    Currency::KES,
                    AccountKind::Reserve,
                ),
            ],
            NOW,
        )
        .await
        .unwrap();
    (ids[0], ids[1], ids[2])
}

async fn spendable(store: &Store, id: AccountId) -> i64 {
    store
        .find_account(id)
        .await
        .unwrap()
        .unwrap()
        .state
        .spendable_minor()
        .unwrap()
}

async fn assert_ledger_clean(store: &Store) {
    let report = store.check_ledger().await.unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
}

#[tokio::test]
async fn accounts_are_made_once_per_spec() {
    let app = spawn_app().await;
    let first = accounts(&app).await;
    let second = accounts(&app).await;
    assert_eq!(first, second);
    let account = app.store.find_account(first.1).await.unwrap().unwrap();
    assert!(
        account.state.must_not_go_negative,
        "a merchant's available balance may not go negative"
    );
    let platform = app.store.find_account(first.0).await.unwrap().unwrap();
    assert!(!platform.state.must_not_go_negative);
}

#[tokio::test]
async fn posting_is_idempotent_and_a_key_cannot_be_reused() {
    let app = spawn_app().await;
    let (external, available, _) = accounts(&app).await;
    let fund = transfer("fund-1", external, available, 10_000);
    let first = app
        .store
        .post_transfers(std::slice::from_ref(&fund), NOW)
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    assert_eq!(first.outcome, PostOutcome::Posted);
    let again = app
        .store
        .post_transfers(std::slice::from_ref(&fund), NOW)
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    assert_eq!(again.outcome, PostOutcome::AlreadyPosted);
    assert_eq!(again.id, first.id);
    // Twice in one batch: posted once.
    let twice = app
        .store
        .post_transfers(&[fund.clone(), fund.clone()], NOW)
        .await
        .unwrap();
    assert!(
        twice
            .iter()
            .all(|r| r.as_ref().unwrap().outcome == PostOutcome::AlreadyPosted)
    );
    assert_eq!(spendable(&app.store, available).await, 10_000);

    let different = transfer("fund-1", external, available, 10_001);
    let refused = app
        .store
        .post_transfers(&[different], NOW)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        refused,
        Err(LedgerError::KeyConflict {
            key: "fund-1".into()
        })
    );
    assert_eq!(spendable(&app.store, available).await, 10_000);
    assert_ledger_clean(&app.store).await;
}

#[tokio::test]
async fn a_refused_transfer_leaves_the_rest_of_its_batch_posted() {
    let app = spawn_app().await;
    let (external, available, reserve) = accounts(&app).await;
    let batch = vec![
        transfer("b-1", external, available, 500),
        transfer("b-2", available, reserve, 800), // only 500 there
        transfer("b-3", available, reserve, 200),
        NewTransfer::posted(
            "b-4",
            "unbalanced",
            vec![NewEntry {
                account_id: available,
                amount: kes(5),
            }],
        ),
        transfer("b-5", external, AccountId::generate(), 1),
    ];
    let results = app.store.post_transfers(&batch, NOW).await.unwrap();
    assert!(results[0].is_ok());
    assert_eq!(
        results[1],
        Err(LedgerError::WouldGoNegative { account: available })
    );
    assert!(results[2].is_ok());
    assert_eq!(results[3], Err(LedgerError::TooFewEntries));
    assert!(matches!(results[4], Err(LedgerError::UnknownAccount(_))));
    assert_eq!(spendable(&app.store, available).await, 300);
    assert_eq!(spendable(&app.store, reserve).await, 200);
    assert!(
        app.store
            .find_transfer(results[0].as_ref().unwrap().id)
            .await
            .unwrap()
            .is_some()
    );
    assert_ledger_clean(&app.store).await;
}

#[tokio::test]
async fn a_hold_counts_at_once_and_is_later_posted_or_voided_whole() {
    let app = spawn_app().await;
    let (external, available, reserve) = accounts(&app).await;
    app.store
        .post_transfers(&[transfer("fund", external, available, 1_000)], NOW)
        .await
        .unwrap();

    let mut hold = transfer("hold-1", available, external, 700);
    hold.pending = true;
    let held = app
        .store
        .post_transfers(&[hold], NOW)
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    assert_eq!(spendable(&app.store, available).await, 300);
    let over = app
        .store
        .post_transfers(&[transfer("over", available, reserve, 301)], NOW)
        .await
        .unwrap();
    assert_eq!(
        over[0],
        Err(LedgerError::WouldGoNegative { account: available })
    );
    assert_ledger_clean(&app.store).await;

    app.store
        .settle_pending_transfer(held.id, HoldOutcome::Void, NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(spendable(&app.store, available).await, 1_000);
    let twice = app
        .store
        .settle_pending_transfer(held.id, HoldOutcome::Post, NOW)
        .await
        .unwrap();
    assert_eq!(
        twice,
        Err(LedgerError::NotPending(held.id)),
        "a voided hold cannot be posted"
    );

    let mut hold = transfer("hold-2", available, external, 400);
    hold.pending = true;
    let held = app
        .store
        .post_transfers(&[hold], NOW)
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    app.store
        .settle_pending_transfer(held.id, HoldOutcome::Post, NOW)
        .await
        .unwrap()
        .unwrap();
    let account = app.store.find_account(available).await.unwrap().unwrap();
    assert_eq!(account.state.posted_minor, 600);
    assert_eq!(account.state.pending_debits_minor, 0);
    let record = app.store.find_transfer(held.id).await.unwrap().unwrap();
    assert_eq!(record.state, malipo_store::TransferState::Posted);
    assert!(record.settled_at.is_some());
    assert_ledger_clean(&app.store).await;
}

#[tokio::test]
async fn a_reversal_undoes_a_transfer_once() {
    let app = spawn_app().await;
    let (external, available, _) = accounts(&app).await;
    let posted = app
        .store
        .post_transfers(&[transfer("pay", external, available, 250)], NOW)
        .await
        .unwrap();
    let id = posted[0].as_ref().unwrap().id;
    let reversal = app.store.reverse_transfer(id, NOW).await.unwrap().unwrap();
    assert_eq!(reversal.outcome, PostOutcome::Posted);
    assert_eq!(spendable(&app.store, available).await, 0);
    let again = app.store.reverse_transfer(id, NOW).await.unwrap().unwrap();
    assert_eq!(again.outcome, PostOutcome::AlreadyPosted);
    assert_eq!(again.id, reversal.id);
    let record = app.store.find_transfer(reversal.id).await.unwrap().unwrap();
    assert_eq!(record.reverses, Some(id));
    assert_eq!(record.entries[1].amount, kes(-250));
    assert_ledger_clean(&app.store).await;
}

/// 32 tasks try to move 10 at a time out of an account holding 1,000: exactly
/// 100 moves may succeed, whatever the interleaving.
async fn race_to_overdraw(app: &TestApp, through_writer: bool) {
    let (external, available, reserve) = accounts(app).await;
    app.store
        .post_transfers(&[transfer("fund", external, available, 1_000)], NOW)
        .await
        .unwrap();
    let writer = LedgerWriter::spawn(app.store.clone(), Arc::new(SystemClock));
    let mut tasks = Vec::new();
    for task in 0..32 {
        let (store, writer) = (app.store.clone(), writer.clone());
        tasks.push(tokio::spawn(async move {
            let mut accepted = 0;
            for attempt in 0..10 {
                let move_out = transfer(&format!("race-{task}-{attempt}"), available, reserve, 10);
                let result = if through_writer {
                    writer.post(move_out).await.unwrap()
                } else {
                    store
                        .post_transfers(&[move_out], NOW)
                        .await
                        .unwrap()
                        .remove(0)
                };
                match result {
                    Ok(_) => accepted += 1,
                    Err(LedgerError::WouldGoNegative { .. }) => {}
                    Err(other) => panic!("unexpected refusal: {other}"),
                }
            }
            accepted
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        accepted += task.await.unwrap();
    }
    assert_eq!(
        accepted, 100,
        "exactly the funds there were, and not one more"
    );
    assert_eq!(spendable(&app.store, available).await, 0);
    assert_eq!(spendable(&app.store, reserve).await, 1_000);
    assert_ledger_clean(&app.store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_transactions_never_overdraw() {
    let app = spawn_app().await;
    race_to_overdraw(&app, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_callers_of_the_group_commit_writer_never_overdraw() {
    let app = spawn_app().await;
    race_to_overdraw(&app, true).await;
}

#[tokio::test]
async fn the_check_finds_a_cached_balance_or_an_entry_tampered_with() {
    let app = spawn_app().await;
    let (external, available, _) = accounts(&app).await;
    let posted = app
        .store
        .post_transfers(&[transfer("t", external, available, 900)], NOW)
        .await
        .unwrap();
    let id = posted[0].as_ref().unwrap().id;
    assert_ledger_clean(&app.store).await;

    let url = app.database_url();
    let mut connection = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::query("UPDATE ledger_accounts SET posted_minor = posted_minor + 1 WHERE id = $1")
        .bind(available.to_string())
        .execute(&mut connection)
        .await
        .unwrap();
    let report = app.store.check_ledger().await.unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains(&available.to_string()) && p.contains("cached")),
        "{:?}",
        report.problems
    );

    sqlx::query("UPDATE ledger_accounts SET posted_minor = posted_minor - 1 WHERE id = $1")
        .bind(available.to_string())
        .execute(&mut connection)
        .await
        .unwrap();
    sqlx::query("UPDATE ledger_entries SET amount_minor = 899 WHERE transfer_id = $1 AND amount_minor = 900")
        .bind(id.to_string())
        .execute(&mut connection)
        .await
        .unwrap();
    let report = app.store.check_ledger().await.unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains(&id.to_string()) && p.contains("sum to zero")),
        "{:?}",
        report.problems
    );
}

async fn fund_through_an_adjustment(app: &TestApp, amount: i64, key: &str) -> String {
    let (external, available, _) = accounts(app).await;
    let adjustment = NewTransfer::posted(
        key,
        "manual adjustment: opening balance",
        vec![
            NewEntry {
                account_id: available,
                amount: kes(amount),
            },
            NewEntry {
                account_id: external,
                amount: kes(-amount),
            },
        ],
    );
    let audit = NewAuditEvent::new("test", "ledger.adjustment", "").for_tenant(Tenant {
        merchant_id: app.merchant_id,
        mode: Mode::Test,
    });
    let posted = app
        .store
        .post_transfer_audited(&adjustment, &audit, NOW)
        .await
        .unwrap()
        .unwrap();
    posted.id.to_string()
}

#[tokio::test]
async fn merchants_see_balances_and_their_own_transfers() {
    let app = spawn_app().await;
    let empty: Value = app.get("/v1/balances").await.json().await.unwrap();
    assert_eq!(empty["object"], "balance");
    assert_eq!(empty["data"], serde_json::json!([]));

    // Keys that differ only where the first has `_`: the object filter
    // must not read it as a wildcard.
    let first = fund_through_an_adjustment(&app, 150_000, "adjustment:adj_a1:opening").await;
    let second = fund_through_an_adjustment(&app, 2_500, "adjustment:adjxa1:opening").await;
    let balances: Value = app.get("/v1/balances").await.json().await.unwrap();
    assert_eq!(
        balances["data"],
        serde_json::json!([{"currency": "KES", "available": 152_500, "pending": 0, "reserved": 0}])
    );

    let transfers: Value = app.get("/v1/ledger/transfers").await.json().await.unwrap();
    let ids: Vec<&str> = transfers["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![second.as_str(), first.as_str()], "newest first");
    let entries = &transfers["data"][0]["entries"];
    assert_eq!(entries.as_array().unwrap().len(), 2);
    let sum: i64 = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["amount"].as_i64().unwrap())
        .sum();
    assert_eq!(sum, 0);

    let page: Value = app
        .get("/v1/ledger/transfers?limit=1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["has_more"], true);
    let after: Value = app
        .get(&format!(
            "/v1/ledger/transfers?limit=1&starting_after={second}"
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after["data"][0]["id"], first.as_str());
    let usd: Value = app
        .get("/v1/ledger/transfers?currency=USD")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(usd["data"], serde_json::json!([]));
    let future: Value = app
        .get("/v1/ledger/transfers?created_gte=2099-01-01T00:00:00Z")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(future["data"], serde_json::json!([]));
    let past: Value = app
        .get("/v1/ledger/transfers?created_lt=2099-01-01T00:00:00Z")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(past["data"].as_array().unwrap().len(), 2);
    let account = transfers["data"][0]["entries"][0]["account"]
        .as_str()
        .unwrap();
    let by_account: Value = app
        .get(&format!("/v1/ledger/transfers?account={account}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_account["data"].as_array().unwrap().len(), 2);
    let body = expect_error(
        app.get("/v1/ledger/transfers?created_gte=yesterday").await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_eq!(body["error"]["param"], "created_gte");
    let by_object: Value = app
        .get("/v1/ledger/transfers?object_id=adj_a1")
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = by_object["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![first.as_str()], "the object's transfers only");
    let body = expect_error(
        app.get("/v1/ledger/transfers?object_id=50%25").await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_eq!(body["error"]["param"], "object_id");

    let one: Value = app
        .get(&format!("/v1/ledger/transfers/{first}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["state"], "posted");
    let accounts: Value = app.get("/v1/ledger/accounts").await.json().await.unwrap();
    let kinds: Vec<&str> = accounts["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"available") && kinds.contains(&"reserve"),
        "{kinds:?}"
    );

    // Another merchant and the live mode see none of it.
    let other = app.create_merchant("Other").await;
    let other_key = app.create_key(other, Mode::Test, &[]).await;
    let peek = app
        .request(
            Method::GET,
            &format!("/v1/ledger/transfers/{first}"),
            &other_key,
        )
        .send()
        .await
        .unwrap();
    expect_error(peek, 404, "NOT_FOUND").await;
    let theirs: Value = app
        .request(Method::GET, "/v1/ledger/transfers", &other_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["data"], serde_json::json!([]));
    let live_key = app.create_key(app.merchant_id, Mode::Live, &[]).await;
    let live: Value = app
        .request(Method::GET, "/v1/balances", &live_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(live["data"], serde_json::json!([]));

    // Scopes hold.
    let narrow = app
        .create_key(app.merchant_id, Mode::Test, &["balances:read"])
        .await;
    assert_eq!(
        app.request(Method::GET, "/v1/balances", &narrow)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let denied = app
        .request(Method::GET, "/v1/ledger/transfers", &narrow)
        .send()
        .await
        .unwrap();
    expect_error(denied, 403, "INSUFFICIENT_SCOPE").await;
}
