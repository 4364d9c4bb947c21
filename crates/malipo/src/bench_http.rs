//! `malipo bench http`: the end-to-end benchmark's load client, driving a
//! running `malipo serve` over HTTP (`bench/e2e.sh` starts one and runs
//! this against it).
//!
//! Latency at a fixed rate is measured from when each request was *due*,
//! not from when it was sent: a server that stalls makes the requests that
//! queue behind the stall count as slow (no coordinated omission).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use clap::Args;
use futures_util::StreamExt;
use malipo_core::PaymentId;
use malipo_store::{ConnectOptions, Store};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

#[derive(Debug, Args)]
pub struct HttpBenchArgs {
    /// The running server.
    #[arg(long, default_value = "http://127.0.0.1:8199")]
    url: String,
    /// A test key of the merchant to load.
    #[arg(long, env = "MALIPO_API_KEY", hide_env_values = true)]
    key: String,
    /// Fixed rates to measure, payments per second.
    #[arg(long, value_delimiter = ',', default_value = "1000,2500,5000")]
    rates: Vec<u64>,
    /// Seconds per fixed rate and for the saturation run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Requests in flight at most (connections).
    #[arg(long, default_value_t = 256)]
    connections: usize,
    /// Payments left pending for the memory measurement.
    #[arg(long, default_value_t = 100_000)]
    pending: usize,
    /// Connections held open for the memory measurement.
    #[arg(long, default_value_t = 1_000)]
    idle_connections: usize,
    /// The server's process id, to read its memory from /proc.
    #[arg(long)]
    pid: Option<u32>,
}

/// Payments acknowledged (201) to the client, checked in the database at the end.
type Acknowledged = Arc<Mutex<Vec<String>>>;

pub async fn run(database_url: Option<String>, args: HttpBenchArgs) -> anyhow::Result<()> {
    malipo_webhooks::install_tls_provider();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(usize::MAX)
        .timeout(Duration::from_secs(30))
        .build()?;
    let acknowledged: Acknowledged = Arc::default();
    let bench = Bench {
        client,
        url: args.url.trim_end_matches('/').to_owned(),
        key: args.key.clone(),
        acknowledged: acknowledged.clone(),
    };
    bench.check_key().await?;

    // The round trip first, on a quiet server; again after the load, with
    // tens of thousands of payments pending behind it.
    let report_trip = |when: &str, trip: &[f64]| {
        println!(
            "sandbox end to end (created → simulator approves → webhook received), {when}, {} payments: p50 {:.0} ms, p99 {:.0} ms",
            trip.len(),
            percentile(trip, 0.50),
            percentile(trip, 0.99)
        );
    };
    report_trip("quiet server", &bench.end_to_end(100, 5).await?);
    println!();
    println!("| phase | offered | achieved | p50 | p99 | p99.9 | errors |");
    println!("|---|---|---|---|---|---|---|");
    for &rate in &args.rates {
        let result = bench
            .fixed_rate(rate, args.seconds, args.connections, NO_ANSWER)
            .await;
        result.print(&format!("fixed rate {rate}/s"), &rate.to_string());
    }
    let saturated = bench
        .saturate(args.seconds, args.connections, NO_ANSWER)
        .await;
    saturated.print(
        &format!("saturation, {} in flight", args.connections),
        "max",
    );

    println!();
    report_trip("after the load", &bench.end_to_end(100, 5).await?);
    let rss = |pid: Option<u32>| pid.and_then(read_memory);
    if let Some((rss_kb, peak_kb)) = rss(args.pid) {
        println!(
            "server memory after the load: RSS {} MB, peak {} MB",
            rss_kb / 1024,
            peak_kb / 1024
        );
    }
    let created = bench.create_pending(args.pending, args.connections).await?;
    let held = bench.hold_connections(args.idle_connections).await;
    if let Some((rss_kb, peak_kb)) = rss(args.pid) {
        println!(
            "with {created} more payments pending and {held} connections open, just after their burst: RSS {} MB (peak {} MB)",
            rss_kb / 1024,
            peak_kb / 1024
        );
    }
    // The server hands freed memory back every few seconds (its upkeep):
    // what it holds once settled is what the open connections and the
    // pending payments cost.
    tokio::time::sleep(SETTLE).await;
    if let Some((rss_kb, _)) = rss(args.pid) {
        println!(
            "the same, settled {} s later (connections still open): RSS {} MB",
            SETTLE.as_secs(),
            rss_kb / 1024
        );
    }

    let ids = acknowledged.lock().expect("not poisoned").clone();
    match database_url {
        Some(url) => verify(&url, &ids).await?,
        None => println!("(no --database-url: acknowledged payments not checked in the database)"),
    }
    Ok(())
}

/// Longer than the server's memory trim interval (5 s).
const SETTLE: Duration = Duration::from_secs(6);

/// The simulated customer never answers: the payment stays pending, so the
/// load measures creation and the worker's push, not callbacks.
const NO_ANSWER: &str = "+254712340003";
const SUCCEEDS: &str = "+254712345678";

#[derive(Clone)]
struct Bench {
    client: reqwest::Client,
    url: String,
    key: String,
    acknowledged: Acknowledged,
}

struct PhaseResult {
    latencies_ms: Vec<f64>,
    errors: usize,
    elapsed: Duration,
}

impl PhaseResult {
    fn print(&self, phase: &str, offered: &str) {
        let achieved = self.latencies_ms.len() as f64 / self.elapsed.as_secs_f64();
        println!(
            "| {phase} | {offered} | {achieved:.0}/s | {:.1} ms | {:.1} ms | {:.1} ms | {} |",
            percentile(&self.latencies_ms, 0.50),
            percentile(&self.latencies_ms, 0.99),
            percentile(&self.latencies_ms, 0.999),
            self.errors
        );
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

impl Bench {
    async fn check_key(&self) -> anyhow::Result<()> {
        let response = self
            .client
            .get(format!("{}/v1/account", self.url))
            .bearer_auth(&self.key)
            .send()
            .await
            .with_context(|| format!("is malipo serving at {}?", self.url))?;
        if !response.status().is_success() {
            bail!("the key was refused: {}", response.status());
        }
        Ok(())
    }

    /// One payment; its id if the server acknowledged it.
    async fn create(&self, phone: &str) -> Option<String> {
        let response = self
            .client
            .post(format!("{}/v1/payments", self.url))
            .bearer_auth(&self.key)
            .json(
                &json!({"amount": 1_000, "currency": "KES", "customer": {"phone": phone},
                          "expires_in_seconds": 86_400}),
            )
            .send()
            .await
            .ok()?;
        if response.status() != StatusCode::CREATED {
            return None;
        }
        let body: Value = response.json().await.ok()?;
        let id = body["id"].as_str()?.to_owned();
        self.acknowledged
            .lock()
            .expect("not poisoned")
            .push(id.clone());
        Some(id)
    }

    /// Open loop: a request falls due every 1/rate s, whatever the server does.
    async fn fixed_rate(
        &self,
        rate: u64,
        seconds: u64,
        connections: usize,
        phone: &'static str,
    ) -> PhaseResult {
        let total = rate * seconds;
        let slots = Arc::new(Semaphore::new(connections));
        let latencies = Arc::new(Mutex::new(Vec::with_capacity(total as usize)));
        let errors = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(total as usize);
        for index in 0..total {
            let due = started + Duration::from_secs_f64(index as f64 / rate as f64);
            tokio::time::sleep_until(due.into()).await;
            let (bench, slots, latencies, errors) = (
                self.clone(),
                slots.clone(),
                latencies.clone(),
                errors.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let _slot = slots.acquire().await.expect("never closed");
                match bench.create(phone).await {
                    Some(_) => latencies
                        .lock()
                        .expect("not poisoned")
                        .push(due.elapsed().as_secs_f64() * 1_000.0),
                    None => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
        let elapsed = started.elapsed();
        let mut latencies = std::mem::take(&mut *latencies.lock().expect("not poisoned"));
        latencies.sort_by(f64::total_cmp);
        PhaseResult {
            latencies_ms: latencies,
            errors: errors.load(Ordering::Relaxed),
            elapsed,
        }
    }

    /// Closed loop: `connections` clients, each sending as soon as it has
    /// its answer. Measures throughput at saturation.
    async fn saturate(&self, seconds: u64, connections: usize, phone: &'static str) -> PhaseResult {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let started = Instant::now();
        let mut workers = Vec::with_capacity(connections);
        for _ in 0..connections {
            let bench = self.clone();
            workers.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0;
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    match bench.create(phone).await {
                        Some(_) => latencies.push(sent.elapsed().as_secs_f64() * 1_000.0),
                        None => errors += 1,
                    }
                }
                (latencies, errors)
            }));
        }
        let mut latencies = Vec::new();
        let mut errors = 0;
        for worker in workers {
            if let Ok((mut l, e)) = worker.await {
                latencies.append(&mut l);
                errors += e;
            }
        }
        let elapsed = started.elapsed();
        latencies.sort_by(f64::total_cmp);
        PhaseResult {
            latencies_ms: latencies,
            errors,
            elapsed,
        }
    }

    /// Payments the simulator approves, timed from the create request to the
    /// `payment.succeeded` webhook at a receiver in this process.
    async fn end_to_end(&self, rate: u64, seconds: u64) -> anyhow::Result<Vec<f64>> {
        let arrivals: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
        let sink = arrivals.clone();
        let app = Router::new().route(
            "/hooks",
            post(move |body: Bytes| {
                let sink = sink.clone();
                async move {
                    let at = Instant::now();
                    if let Ok(event) = serde_json::from_slice::<Value>(&body)
                        && let Some(id) = event["data"]["object"]["id"].as_str()
                    {
                        sink.lock()
                            .expect("not poisoned")
                            .entry(id.to_owned())
                            .or_insert(at);
                    }
                    StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let hook_url = format!("http://{}/hooks", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        let endpoint: Value = self
            .client
            .post(format!("{}/v1/webhook-endpoints", self.url))
            .bearer_auth(&self.key)
            .json(&json!({"url": hook_url, "enabled_events": ["payment.succeeded"]}))
            .send()
            .await?
            .json()
            .await?;
        let endpoint_id = endpoint["id"]
            .as_str()
            .context("endpoint created")?
            .to_owned();

        let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
        let started = Instant::now();
        let mut tasks = Vec::new();
        for index in 0..rate * seconds {
            let due = started + Duration::from_secs_f64(index as f64 / rate as f64);
            tokio::time::sleep_until(due.into()).await;
            let (bench, sent) = (self.clone(), sent.clone());
            tasks.push(tokio::spawn(async move {
                if let Some(id) = bench.create(SUCCEEDS).await {
                    sent.lock().expect("not poisoned").insert(id, due);
                }
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
        let sent = sent.lock().expect("not poisoned").clone();
        let deadline = Instant::now() + Duration::from_secs(30);
        while arrivals.lock().expect("not poisoned").len() < sent.len() && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self
            .client
            .delete(format!("{}/v1/webhook-endpoints/{endpoint_id}", self.url))
            .bearer_auth(&self.key)
            .send()
            .await;
        let arrivals = arrivals.lock().expect("not poisoned").clone();
        let mut trips: Vec<f64> = sent
            .iter()
            .filter_map(|(id, due)| {
                arrivals
                    .get(id)
                    .map(|at| at.saturating_duration_since(*due).as_secs_f64() * 1_000.0)
            })
            .collect();
        if trips.len() < sent.len() {
            println!(
                "warning: {} of {} end-to-end payments' webhooks did not arrive in 30 s",
                sent.len() - trips.len(),
                sent.len()
            );
        }
        trips.sort_by(f64::total_cmp);
        Ok(trips)
    }

    /// Creates `count` payments that stay pending.
    async fn create_pending(&self, count: usize, connections: usize) -> anyhow::Result<usize> {
        let next = Arc::new(AtomicUsize::new(0));
        let created = Arc::new(AtomicUsize::new(0));
        let mut workers = Vec::new();
        for _ in 0..connections {
            let (bench, next, created) = (self.clone(), next.clone(), created.clone());
            workers.push(tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < count {
                    if bench.create(NO_ANSWER).await.is_some() {
                        created.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        for worker in workers {
            let _ = worker.await;
        }
        Ok(created.load(Ordering::Relaxed))
    }

    /// Opens `count` connections at once (one request each) and keeps them
    /// idle in the client's pool; returns how many answered.
    async fn hold_connections(&self, count: usize) -> usize {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(usize::MAX)
            .pool_idle_timeout(Duration::from_secs(120))
            .build()
            .expect("a plain client builds");
        let mut tasks = Vec::with_capacity(count);
        for _ in 0..count {
            let (client, url, key) = (client.clone(), self.url.clone(), self.key.clone());
            tasks.push(tokio::spawn(async move {
                client
                    .get(format!("{url}/v1/account"))
                    .bearer_auth(key)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }));
        }
        let mut answered = 0;
        for task in tasks {
            if task.await.unwrap_or(false) {
                answered += 1;
            }
        }
        // Keep the pool (and its open connections) alive while memory is read.
        std::mem::forget(client);
        tokio::time::sleep(Duration::from_millis(500)).await;
        answered
    }
}

/// (RSS, peak RSS) in KiB, from /proc.
fn read_memory(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find(|line| line.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Look-ups in flight while verifying.
const VERIFY_IN_FLIGHT: usize = 16;

/// Every payment the client saw acknowledged is in the database.
async fn verify(database_url: &str, ids: &[String]) -> anyhow::Result<()> {
    let store = Store::connect(database_url, &ConnectOptions::default())
        .await
        .context("connect to verify")?;
    let parsed = ids
        .iter()
        .map(|id| PaymentId::parse(id))
        .collect::<Result<Vec<_>, _>>()?;
    // Side by side: one at a time, 200,000 look-ups took minutes.
    let found: Vec<_> = futures_util::stream::iter(parsed)
        .map(|id| {
            let store = &store;
            async move { store.find_payment(id).await.map(|p| p.is_some()) }
        })
        .buffer_unordered(VERIFY_IN_FLIGHT)
        .collect()
        .await;
    let mut missing = 0;
    for found in found {
        if !found? {
            missing += 1;
        }
    }
    store.close().await;
    if missing > 0 {
        bail!(
            "{missing} of {} acknowledged payments are missing",
            ids.len()
        );
    }
    println!(
        "all {} acknowledged payments are in the database",
        ids.len()
    );
    Ok(())
}
