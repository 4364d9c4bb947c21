//! Several `malipo serve` processes on one database (PostgreSQL in CI's
//! second run; SQLite in WAL mode in the first): jobs run once, idempotency
//! is decided by the database, and a killed node's job leases are taken over.
//!
//! The simulator rail keeps no state per transaction (its ids carry their
//! outcome), so any node answers a status query for a payment another node
//! started; its callbacks go to the starting node's `public_url`.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::{Connection, Row};
use tokio::task::JoinSet;

use crate::binary::{run, work_directory};
use crate::harness::{TestDatabase, http_client};
use crate::process::ServerProcess;

/// Settings every node gets: a quick simulator, a small pool (three nodes
/// share the test PostgreSQL server with the rest of the suite).
const NODE_ENV: &[(&str, &str)] = &[
    ("MALIPO_SIMULATOR_CALLBACK_DELAY_MS", "20"),
    ("MALIPO_SIMULATOR_POLL_AFTER_MS", "300"),
    ("MALIPO_DATABASE_MAX_CONNECTIONS", "6"),
    ("MALIPO_WEBHOOK_TIMEOUT_MS", "2000"),
];

/// The job lease of `PaymentsConfig::job_lease_ms` (30 s, not configurable).
const JOB_LEASE: Duration = Duration::from_secs(30);

const FINAL: &[&str] = &["succeeded", "failed", "cancelled", "expired"];

/// One `malipo serve` process with the nodes' settings.
fn start_node(directory: &Path, database_url: &str) -> ServerProcess {
    ServerProcess::start(directory, database_url, NODE_ENV)
}

/// Three nodes on one fresh database in one work directory: the first
/// creates `malipo.key` and prints the sandbox key, the others read the file.
struct Cluster {
    database: TestDatabase,
    directory: std::path::PathBuf,
    nodes: Vec<ServerProcess>,
    key: String,
    client: reqwest::Client,
}

impl Cluster {
    async fn start() -> Cluster {
        let database = TestDatabase::create().await;
        let directory = work_directory();
        let first = start_node(&directory, &database.url);
        let key = first
            .printed_key(Duration::from_secs(5))
            .expect("the first node prints the key");
        let mut nodes = vec![first];
        for _ in 1..3 {
            let node = start_node(&directory, &database.url);
            assert_eq!(
                node.printed_key(Duration::from_millis(100)),
                None,
                "only the first start prints a key"
            );
            nodes.push(node);
        }
        Cluster {
            database,
            directory,
            nodes,
            key,
            client: http_client(),
        }
    }

    /// The node for the `index`th request: round robin over the live ones.
    fn url(&self, index: usize, path: &str) -> String {
        format!("{}{path}", self.nodes[index % self.nodes.len()].base_url)
    }

    async fn get(&self, index: usize, path: &str) -> Value {
        let response = self
            .client
            .get(self.url(index, path))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    async fn post(&self, index: usize, path: &str, body: &Value) -> Value {
        let response = self
            .client
            .post(self.url(index, path))
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 201, "POST {path}: {body}");
        body
    }

    /// Creates payments at once, request `i` on node `i % 3` (or all on
    /// `only`); returns them in order.
    async fn create_payments(&self, bodies: Vec<Value>, only: Option<usize>) -> Vec<Value> {
        let mut tasks = JoinSet::new();
        for (index, body) in bodies.into_iter().enumerate() {
            let url = self.url(only.unwrap_or(index), "/v1/payments");
            let request = self.client.post(url).bearer_auth(&self.key).json(&body);
            tasks.spawn(async move {
                let response = request.send().await.unwrap();
                let status = response.status();
                let body: Value = response.json().await.unwrap();
                assert_eq!(status, 201, "{body}");
                (index, body)
            });
        }
        let mut created = tasks.join_all().await;
        created.sort_by_key(|(index, _)| *index);
        created.into_iter().map(|(_, body)| body).collect()
    }

    /// Waits until every object (`/v1/payments/…`, `/v1/payouts/…`) is final.
    async fn wait_final(&self, paths: &[String], limit: Duration) -> Vec<Value> {
        self.wait_final_timed(paths, limit)
            .await
            .into_iter()
            .map(|(object, _)| object)
            .collect()
    }

    /// Like `wait_final`, with when each object was first seen final.
    async fn wait_final_timed(&self, paths: &[String], limit: Duration) -> Vec<(Value, Instant)> {
        let started = Instant::now();
        let mut done: HashMap<String, (Value, Instant)> = HashMap::new();
        let mut round = 0;
        loop {
            let pending: Vec<&String> = paths.iter().filter(|p| !done.contains_key(*p)).collect();
            let mut waiting = Vec::new();
            for path in pending {
                round += 1;
                let object = self.get(round, path).await;
                if FINAL.contains(&object["status"].as_str().unwrap()) {
                    done.insert(path.clone(), (object, Instant::now()));
                } else {
                    waiting.push(object);
                }
            }
            if done.len() == paths.len() {
                return paths.iter().map(|p| done[p].clone()).collect();
            }
            assert!(
                started.elapsed() < limit,
                "{} of {} objects are not final after {limit:?}: {waiting:?}",
                waiting.len(),
                paths.len(),
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn available(&self) -> i64 {
        let balances = self.get(0, "/v1/balances").await;
        balances["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["currency"] == "KES")
            .map_or(0, |b| b["available"].as_i64().unwrap())
    }

    /// The events of one object, by type.
    async fn event_counts(&self, index: usize, object_id: &str) -> HashMap<String, usize> {
        let events = self
            .get(
                index,
                &format!("/v1/events?object_id={object_id}&limit=100"),
            )
            .await;
        assert_eq!(events["has_more"], false);
        let mut counts = HashMap::new();
        for event in events["data"].as_array().unwrap() {
            assert_eq!(event["data"]["object"]["id"], object_id, "{event}");
            *counts
                .entry(event["type"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
        counts
    }

    /// Every payment id of the merchant's test mode.
    async fn all_payment_ids(&self) -> Vec<String> {
        self.all_ids("/v1/payments").await
    }

    /// Every event id of the merchant's test mode.
    async fn all_event_ids(&self) -> Vec<String> {
        self.all_ids("/v1/events").await
    }

    /// Every id of a list, page by page.
    async fn all_ids(&self, list: &str) -> Vec<String> {
        let mut ids = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let path = match &after {
                Some(last) => format!("{list}?limit=100&starting_after={last}"),
                None => format!("{list}?limit=100"),
            };
            let page = self.get(ids.len(), &path).await;
            let data = page["data"].as_array().unwrap();
            ids.extend(data.iter().map(|e| e["id"].as_str().unwrap().to_owned()));
            if page["has_more"] != true {
                return ids;
            }
            after = ids.last().cloned();
        }
    }

    /// `malipo ledger check` as an operator runs it, on the same database.
    fn ledger_check(&self) {
        let output = run(&self.directory, &self.database.url, &["ledger", "check"]);
        assert!(output.status.success());
    }

    /// Every payment of the list ends with exactly one terminal event (its
    /// status), whatever the node that created, started or completed it.
    async fn assert_one_terminal_event_each(&self, payments: &[Value]) {
        for (index, payment) in payments.iter().enumerate() {
            let id = payment["id"].as_str().unwrap();
            let counts = self.event_counts(index, id).await;
            let status = payment["status"].as_str().unwrap();
            for terminal in ["succeeded", "failed", "expired", "cancelled"] {
                let kind = format!("payment.{terminal}");
                let expected = usize::from(terminal == status);
                assert_eq!(
                    counts.get(&kind).copied().unwrap_or(0),
                    expected,
                    "{id} ({status}) has {counts:?}"
                );
            }
        }
    }

    /// The live nodes' log lines that mention `needle`.
    fn logs_about(&self, needle: &str) -> Vec<String> {
        self.nodes
            .iter()
            .flat_map(ServerProcess::stderr_lines)
            .filter(|line| line.contains(needle))
            .collect()
    }

    /// How many of the live nodes' log lines mention `needle`.
    fn log_lines(&self, needle: &str) -> usize {
        self.logs_about(needle).len()
    }

    fn stop(self) {
        for node in self.nodes {
            node.terminate();
        }
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

fn payment(amount: i64, phone: &str) -> Value {
    json!({"amount": amount, "currency": "KES", "customer": {"phone": phone}})
}

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// Sums `merchant_net` of the succeeded payments.
fn net_of_succeeded(payments: &[Value]) -> i64 {
    payments
        .iter()
        .filter(|p| p["status"] == "succeeded")
        .map(|p| p["merchant_net"].as_i64().unwrap())
        .sum()
}

/// 60 payments (with declines, lost and doubled callbacks), then payouts
/// and refunds, spread over three nodes: every outcome is applied once, in
/// the ledger, the events and the webhooks.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_run_each_job_once() {
    let cluster = Cluster::start().await;
    let (receiver, receiver_url) = crate::webhooks::spawn_receiver().await;
    cluster
        .post(
            1,
            "/v1/webhook-endpoints",
            &json!({"url": format!("{receiver_url}/ok"),
                    "enabled_events": ["payment.*", "payout.*", "refund.*"]}),
        )
        .await;

    // Last four digits: 0001 declines, 0007 calls back twice, 0009 times
    // out on its first start (per simulator, so per node: the retries may
    // fail on each node once); the rest succeed. 0006 (a lost callback) is
    // left out: see `lost_callbacks_are_found_by_polling_on_any_node`.
    let phone = |index: usize| match index % 10 {
        1 => "+254700000001",
        7 => "+254700000007",
        9 => "+254700000009",
        _ => "+254712345678",
    };
    let count = 60;
    let bodies = (0..count)
        .map(|i| payment(1_000 + 10 * i64::try_from(i).unwrap(), phone(i)))
        .collect();
    let created = cluster.create_payments(bodies, None).await;
    let paths: Vec<String> = created
        .iter()
        .map(|p| format!("/v1/payments/{}", p["id"].as_str().unwrap()))
        .collect();
    let payments = cluster.wait_final(&paths, Duration::from_secs(30)).await;
    for (index, payment) in payments.iter().enumerate() {
        let expected = if index % 10 == 1 {
            "failed"
        } else {
            "succeeded"
        };
        assert_eq!(payment["status"], expected, "{payment}");
    }
    cluster.assert_one_terminal_event_each(&payments).await;
    let collected = net_of_succeeded(&payments);
    assert_eq!(cluster.available().await, collected);

    // Money out, spread the same way: five payouts and three refunds.
    let mut out_paths = Vec::new();
    for index in 0..5 {
        let payout = cluster
            .post(
                index,
                "/v1/payouts",
                &json!({"amount": 500, "currency": "KES",
                        "destination": {"type": "wallet", "phone": "+254712345678"}}),
            )
            .await;
        out_paths.push(format!("/v1/payouts/{}", payout["id"].as_str().unwrap()));
    }
    for index in 0..3 {
        let paid = &payments[index * 10];
        let refund = cluster
            .post(
                index,
                "/v1/refunds",
                &json!({"payment": paid["id"], "amount": 300}),
            )
            .await;
        out_paths.push(format!("/v1/refunds/{}", refund["id"].as_str().unwrap()));
    }
    let outs = cluster
        .wait_final(&out_paths, Duration::from_secs(30))
        .await;
    let mut debited = 0;
    for out in &outs {
        assert_eq!(out["status"], "succeeded", "{out}");
        debited += out["total_debited"].as_i64().unwrap();
        let id = out["id"].as_str().unwrap();
        let counts = cluster.event_counts(0, id).await;
        let object = out["object"].as_str().unwrap();
        assert_eq!(
            counts.get(&format!("{object}.succeeded")),
            Some(&1),
            "{id}: {counts:?}"
        );
    }
    assert_eq!(cluster.available().await, collected - debited);
    cluster.ledger_check();

    // The webhook receiver got every event once, whichever node delivered it.
    let events: HashSet<String> = cluster.all_event_ids().await.into_iter().collect();
    assert!(
        events.len() >= 2 * count + 2 * outs.len(),
        "{}",
        events.len()
    );
    let started = Instant::now();
    loop {
        let received: HashSet<String> = receiver
            .on("/ok")
            .iter()
            .map(|r| r.header("webhook-id").to_owned())
            .collect();
        if received == events {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{} of {} events delivered; unknown ids: {:?}",
            received.intersection(&events).count(),
            events.len(),
            received.difference(&events).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        receiver.on("/ok").len(),
        events.len(),
        "no event was delivered twice"
    );
    cluster.stop();
}

/// The same request with one Idempotency-Key, sent to three nodes at once:
/// one payment; every answer is that payment or a 409 while it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_idempotency_key_makes_one_payment_across_nodes() {
    let cluster = Cluster::start().await;
    let body = payment(2_500, "+254712345678");
    let send = |index: usize, key: String| {
        cluster
            .client
            .post(cluster.url(index, "/v1/payments"))
            .bearer_auth(&cluster.key)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let keys = 4;
    let mut conflicts = 0;
    for round in 0..keys {
        let key = format!("order-{round}-{}", uuid::Uuid::now_v7().simple());
        let mut tasks = JoinSet::new();
        for index in 0..15 {
            let request = send(index, key.clone());
            tasks.spawn(async move {
                let response = request.await.unwrap();
                let status = response.status();
                let text = response.text().await.unwrap();
                (status, text)
            });
        }
        let answers = tasks.join_all().await;
        let created: Vec<&String> = answers
            .iter()
            .filter(|(status, _)| *status == StatusCode::CREATED)
            .map(|(_, text)| text)
            .collect();
        assert!(!created.is_empty(), "someone made the payment: {answers:?}");
        assert!(
            created.iter().all(|text| *text == created[0]),
            "every 201 is the same payment, byte for byte: {created:?}"
        );
        for (status, text) in &answers {
            if *status != StatusCode::CREATED {
                assert_eq!(*status, StatusCode::CONFLICT, "{text}");
                let error: Value = serde_json::from_str(text).unwrap();
                assert_eq!(error["error"]["code"], "IDEMPOTENCY_KEY_IN_USE", "{text}");
                conflicts += 1;
            }
        }
        let first: Value = serde_json::from_str(created[0]).unwrap();
        // Later, on every node: the same payment, replayed.
        for index in 0..3 {
            let response = send(index, key.clone()).await.unwrap();
            assert_eq!(response.status(), 201);
            assert_eq!(
                response.headers()["idempotent-replayed"],
                "true",
                "node {index}"
            );
            assert_eq!(response.text().await.unwrap(), *created[0]);
        }
        let id = first["id"].as_str().unwrap();
        assert!(id.starts_with("pay_"), "{first}");
    }
    let listed = cluster.get(0, "/v1/payments?limit=100").await;
    assert_eq!(
        listed["data"].as_array().unwrap().len(),
        keys,
        "one payment per key: {listed}"
    );
    eprintln!(
        "idempotency across nodes: {conflicts} of {} answers were 409",
        keys * 15
    );
    cluster.stop();
}

/// The ids of payments whose start job is leased now by a claim made at or
/// before `claimed_by_ms` (a lease ends `job_lease_ms` after its claim).
async fn leased_starts(database_url: &str, claimed_by_ms: i64) -> HashSet<String> {
    sqlx::any::install_default_drivers();
    let mut connection = sqlx::AnyConnection::connect(database_url).await.unwrap();
    let rows = sqlx::query(
        "SELECT subject_id FROM jobs WHERE kind = 'payment.start' \
         AND locked_until_ms > $1 AND locked_until_ms <= $2",
    )
    .bind(now_ms())
    .bind(claimed_by_ms + i64::try_from(JOB_LEASE.as_millis()).unwrap())
    .fetch_all(&mut connection)
    .await
    .unwrap();
    rows.iter()
        .map(|row| row.try_get::<String, _>("subject_id").unwrap())
        .collect()
}

/// Longer than the job lease, so a taken-over start runs before the
/// payment expires.
const EXPIRES_IN_SECONDS: u64 = 40;

/// A node killed (SIGKILL) while it holds start jobs: once the leases run
/// out (`job_lease_ms`, 30 s) the other nodes start those payments and
/// they succeed. Payments the killed node's simulator had already accepted,
/// whose callback died with it, are found by another node's status poll
/// (the simulator's ids carry their own state): every payment succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_nodes_leases_are_taken_over() {
    let mut cluster = Cluster::start().await;
    let burst = 150;
    let mut orphaned = HashSet::new();
    let mut killed_at = Instant::now();
    for _attempt in 0..3 {
        let victim = cluster.nodes.len() - 1;
        let bodies: Vec<Value> = (0..burst)
            .map(|_| {
                let mut body = payment(1_000, "+254712345678");
                body["expires_in_seconds"] = json!(EXPIRES_IN_SECONDS);
                body
            })
            .collect();
        // The victim's worker is woken by its own creates; the others look
        // for jobs every 250 ms, so the victim leases most of the burst. It
        // is killed once two thirds are answered: some creates are still in
        // flight (committed or not), and its worker is busy.
        let mut requests = JoinSet::new();
        for body in bodies {
            let request = cluster
                .client
                .post(cluster.url(victim, "/v1/payments"))
                .bearer_auth(&cluster.key)
                .json(&body)
                .send();
            requests.spawn(async move { request.await.map(|r| r.status()) });
        }
        let mut answered = 0;
        while answered < burst * 2 / 3 {
            let status = requests.join_next().await.unwrap().unwrap().unwrap();
            assert_eq!(status, 201);
            answered += 1;
        }
        cluster.nodes[victim].kill();
        killed_at = Instant::now();
        let killed_ms = now_ms();
        // The rest either were answered or lost their connection.
        let _ = requests.join_all().await;
        // Let the live nodes finish what they leased (a round takes
        // milliseconds, more under load), then see what is still held by a
        // claim from before the kill: the dead node's leases.
        tokio::time::sleep(Duration::from_secs(4)).await;
        orphaned = leased_starts(&cluster.database.url, killed_ms).await;
        cluster.nodes.pop();
        cluster
            .nodes
            .push(start_node(&cluster.directory, &cluster.database.url));
        if !orphaned.is_empty() {
            break;
        }
    }
    // Urgent starts are leased and run within milliseconds, so a kill does
    // not always catch one held; lease takeover itself is proven in
    // `webhooks::a_crashed_workers_lease…` and `crash.rs`. The rest of this
    // test (every payment final, one terminal event each, balance and ledger
    // right) holds either way.
    if orphaned.is_empty() {
        eprintln!("three kills never caught a node holding a start job's lease");
    }
    // Whatever was committed, answered or not.
    let paths: Vec<String> = cluster
        .all_payment_ids()
        .await
        .iter()
        .map(|id| format!("/v1/payments/{id}"))
        .collect();
    assert!(paths.len() >= burst * 2 / 3, "{}", paths.len());
    let timed = cluster
        .wait_final_timed(&paths, Duration::from_secs(EXPIRES_IN_SECONDS + 10))
        .await;
    let mut after_lease = 0;
    for (payment, final_at) in &timed {
        let id = payment["id"].as_str().unwrap();
        let status = payment["status"].as_str().unwrap();
        if orphaned.contains(id) {
            assert_eq!(
                status,
                "succeeded",
                "a taken-over start: {payment}; logs: {:?}",
                cluster.logs_about(id)
            );
            if final_at.duration_since(killed_at) >= JOB_LEASE - Duration::from_secs(2) {
                after_lease += 1;
            }
        } else {
            assert_eq!(status, "succeeded", "{payment}");
        }
    }
    let took = killed_at.elapsed();
    assert!(
        orphaned.is_empty() || after_lease > 0,
        "no start held by the dead node waited for its lease: {:?}",
        timed
            .iter()
            .filter(|(p, _)| orphaned.contains(p["id"].as_str().unwrap()))
            .map(|(p, at)| (p["id"].clone(), at.duration_since(killed_at)))
            .collect::<Vec<_>>()
    );
    let payments: Vec<Value> = timed.into_iter().map(|(payment, _)| payment).collect();
    cluster.assert_one_terminal_event_each(&payments).await;
    assert_eq!(cluster.available().await, net_of_succeeded(&payments));
    cluster.ledger_check();
    eprintln!(
        "killed node: {} payments, {} starts leased by it, {after_lease} of them run after the lease, \
         all succeeded after {took:?}",
        payments.len(),
        orphaned.len()
    );
    cluster.stop();
}

/// A payment whose callback is lost (0006) is completed only by a status
/// query, and any node may lease its poll job: the simulator's transaction
/// ids carry their own state, so every node can answer for any of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lost_callbacks_are_found_by_polling_on_any_node() {
    let cluster = Cluster::start().await;
    let bodies = (0..12).map(|_| payment(1_000, "+254700000006")).collect();
    let created = cluster.create_payments(bodies, None).await;
    let paths: Vec<String> = created
        .iter()
        .map(|p| format!("/v1/payments/{}", p["id"].as_str().unwrap()))
        .collect();
    let payments = cluster.wait_final(&paths, Duration::from_secs(20)).await;
    for payment in &payments {
        assert_eq!(payment["status"], "succeeded", "{payment}");
    }
    assert_eq!(
        cluster.log_lines("status query failed; will poll again"),
        0,
        "every node can answer a status query"
    );
    cluster.stop();
}
