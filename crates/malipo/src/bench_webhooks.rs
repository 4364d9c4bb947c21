//! `malipo bench webhooks`: delivery throughput and the time from an
//! event's commit to its first attempt, against a healthy receiver (an
//! HTTP server in this process, answering 204) on loopback.
//!
//! Events are committed in batches at an offered rate (open loop), each
//! with one delivery to the receiver; the delivery worker is the one
//! `malipo serve` runs. Latency is measured from the commit returning to
//! the receiver reading the request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use clap::Args;
use malipo_core::{Clock, MasterKey, Mode, SystemClock, WebhookEndpointId};
use malipo_store::{ConnectOptions, NewEvent, Store, Tenant, WebhookEndpointRecord};
use malipo_webhooks::{Webhooks, WebhooksConfig, signature};
use tokio::sync::watch;

#[derive(Debug, Args)]
pub struct WebhookBenchArgs {
    /// Events to deliver.
    #[arg(long, default_value_t = 60_000)]
    events: usize,
    /// Events committed per second (the offered load).
    #[arg(long, default_value_t = 6_000)]
    rate: usize,
    /// Events per commit.
    #[arg(long, default_value_t = 200)]
    batch: usize,
    /// Attempts in flight at once.
    #[arg(long, default_value_t = 512)]
    concurrency: usize,
}

type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

pub async fn run(database_url: Option<String>, args: WebhookBenchArgs) -> anyhow::Result<()> {
    if args.events == 0 || args.rate == 0 || args.batch == 0 || args.concurrency == 0 {
        bail!("--events, --rate, --batch and --concurrency must be at least 1");
    }
    let (url, scratch) = crate::bench::database_url_or_scratch(database_url)?;
    let store = Store::connect(&url, &ConnectOptions::default())
        .await
        .context("connect")?;
    store.migrate().await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);

    let arrivals: Arrivals = Arc::new(Mutex::new(HashMap::with_capacity(args.events)));
    let receiver_url = spawn_receiver(arrivals.clone()).await?;

    let master_key = MasterKey::from_base64(&MasterKey::generate_base64())?;
    let webhooks = Webhooks::new(
        store.clone(),
        clock.clone(),
        master_key,
        WebhooksConfig {
            concurrency: args.concurrency,
            ..WebhooksConfig::default()
        },
    );
    let merchant = store
        .merchants()
        .create("Bench merchant", "bench", clock.now())
        .await?;
    let tenant = Tenant {
        merchant_id: merchant.id,
        mode: Mode::Test,
    };
    let now = clock.now();
    let endpoint = WebhookEndpointRecord {
        id: WebhookEndpointId::generate(),
        merchant_id: merchant.id,
        mode: Mode::Test,
        url: receiver_url,
        description: "bench receiver".to_owned(),
        event_types: vec!["*".to_owned()],
        disabled_at: None,
        disabled_reason: None,
        failing_since: None,
        created_at: now,
        updated_at: now,
    };
    store
        .webhook_endpoints(tenant)
        .create(
            &endpoint,
            &webhooks.seal_secret(&signature::generate_secret()),
        )
        .await?;

    let (stop, stopped) = watch::channel(false);
    let worker = tokio::spawn(malipo_webhooks::delivery::run(webhooks.clone(), stopped));
    println!(
        "malipo bench webhooks on {}: {} events offered at {}/s, {} per commit, {} in flight at most",
        store.backend().name(),
        args.events,
        args.rate,
        args.batch,
        args.concurrency
    );

    let data = r#"{"id":"pay_bench","object":"payment","status":"succeeded","amount":1000,"currency":"KES"}"#;
    let mut committed: HashMap<String, Instant> = HashMap::with_capacity(args.events);
    let started = Instant::now();
    let batch_interval = Duration::from_secs_f64(args.batch as f64 / args.rate as f64);
    let mut next_batch = Instant::now();
    let mut made = 0;
    while made < args.events {
        let count = args.batch.min(args.events - made);
        let events: Vec<NewEvent> = (0..count)
            .map(|_| {
                NewEvent::new(
                    tenant,
                    "payment.succeeded",
                    "pay_bench",
                    data.to_owned(),
                    clock.now(),
                )
            })
            .collect();
        store.record_events(&events).await?;
        let at = Instant::now();
        for event in &events {
            committed.insert(event.id.to_string(), at);
        }
        made += count;
        next_batch += batch_interval;
        if let Some(wait) = next_batch.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
    }
    let offered = started.elapsed();

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let received = arrivals.lock().expect("not poisoned").len();
        if received >= args.events {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "only {received} of {} events arrived within 2 minutes",
                args.events
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let arrivals = arrivals.lock().expect("not poisoned").clone();
    let last = arrivals.values().max().copied().unwrap_or(started);
    let total = last.duration_since(started);
    let mut latencies: Vec<f64> = committed
        .iter()
        .filter_map(|(id, at)| {
            arrivals
                .get(id)
                .map(|arrived| arrived.saturating_duration_since(*at).as_secs_f64() * 1_000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let percentile = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    println!(
        "delivered {} events in {:.2} s: {:.0} deliveries/s (offered over {:.2} s)",
        arrivals.len(),
        total.as_secs_f64(),
        arrivals.len() as f64 / total.as_secs_f64(),
        offered.as_secs_f64(),
    );
    println!(
        "commit → first attempt: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        percentile(0.50),
        percentile(0.99),
        percentile(1.0),
    );
    let _ = stop.send(true);
    let _ = worker.await;
    store.close().await;
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

/// A receiver that notes when each `webhook-id` first arrived.
async fn spawn_receiver(arrivals: Arrivals) -> anyhow::Result<String> {
    let app = Router::new().route(
        "/hooks",
        post(move |headers: HeaderMap| {
            let arrivals = arrivals.clone();
            async move {
                let at = Instant::now();
                if let Some(id) = headers.get("webhook-id").and_then(|v| v.to_str().ok()) {
                    arrivals
                        .lock()
                        .expect("not poisoned")
                        .entry(id.to_owned())
                        .or_insert(at);
                }
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hooks", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}
