//! `malipo bench plans`: a worker pass over many plans whose installments
//! fall due at the same moment, while the API is probed at a fixed rate.
//!
//! The plans are made the way merchants make them: checkouts at a till
//! (the `pos_standard` product, one customer each), whose deposits the
//! simulator approves. Then the server's clock jumps a week ahead, to
//! just after the first installments' collection time, and every plan's
//! installment is due at once. The bench waits until all are collected,
//! while probing `GET /v1/plans/{id}` at a fixed rate (latency measured
//! from when each request was due: a stalled API counts).

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use futures_util::StreamExt;
use malipo_core::{
    Clock, Currency, MasterKey, Money, Phone, PlanId, SystemClock, TimeZone, Timestamp,
};
use malipo_payments::bnpl::{CreateCheckout, ProductSnapshot};
use malipo_plans::{Frequency, PlanTerms};
use malipo_store::Tenant;
use tokio::sync::oneshot;

use malipo::Config;
use malipo::app::Application;

#[derive(Debug, Args)]
pub struct PlansBenchArgs {
    /// Plans, each with an installment due at the same moment.
    #[arg(long, default_value_t = 100_000)]
    plans: usize,
    /// API requests per second during the pass.
    #[arg(long, default_value_t = 50)]
    probe_rate: u64,
    /// Checkouts created at once while setting up.
    #[arg(long, default_value_t = 128)]
    concurrency: usize,
}

/// The real clock plus an offset the bench moves: the server's workers see
/// time jump, and keep running (leases and backoffs still expire).
#[derive(Debug, Default)]
struct ShiftedClock {
    offset_ms: AtomicI64,
}

impl Clock for ShiftedClock {
    fn now(&self) -> Timestamp {
        SystemClock
            .now()
            .plus_ms(self.offset_ms.load(Ordering::SeqCst))
    }
}

const DAY_MS: i64 = 24 * 3_600_000;

/// A customer number per plan, none ending in a simulator trigger.
fn phone(index: usize) -> String {
    format!("+26097{:03}{:04}", index / 9_000, 1_000 + index % 9_000)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

pub async fn run(database_url: Option<String>, args: PlansBenchArgs) -> anyhow::Result<()> {
    if args.plans == 0 || args.probe_rate == 0 || args.concurrency == 0 {
        bail!("--plans, --probe-rate and --concurrency must be at least 1");
    }
    if args.plans > 9_000_000 {
        bail!("--plans may be at most 9,000,000 (one customer number each)");
    }
    let (url, scratch) = crate::bench::database_url_or_scratch(database_url)?;
    let config = Config {
        listen: "127.0.0.1:0".to_owned(),
        database_url: url,
        master_key: Some(MasterKey::generate_base64()),
        ..Config::default()
    };
    let clock = Arc::new(ShiftedClock::default());
    let mut application = Application::build(&config, clock.clone())
        .await
        .context("build the server")?;
    let sandbox = application
        .sandbox
        .take()
        .context("the bench needs a fresh database (it makes the sandbox merchant)")?;
    let store = application.store().clone();
    let payments = application.payments().clone();
    let base_url = format!("http://{}", application.local_addr());
    let tenant = Tenant {
        merchant_id: sandbox.merchant_id,
        mode: malipo_core::Mode::Test,
    };
    println!(
        "malipo bench plans on {}: {} plans, API probed at {}/s",
        store.backend().name(),
        args.plans,
        args.probe_rate
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until_stopped(async {
        let _ = stopped.await;
    }));

    // Set-up: the checkouts, each completed by its deposit.
    let product = ProductSnapshot {
        id: "pos_standard".to_owned(),
        name: "Pay in 4".to_owned(),
        terms: PlanTerms::pos_standard(Frequency::Weekly),
        funding: "upfront".to_owned(),
        late_fee_minor: 0,
        grace_days: 3,
        retry_attempts: 3,
        retry_interval_hours: 24,
        default_after_days: 90,
    };
    let started = Instant::now();
    let created: Vec<_> = futures_util::stream::iter(0..args.plans)
        .map(|index| {
            let payments = payments.clone();
            let product = product.clone();
            async move {
                let request = CreateCheckout {
                    amount: Money::new(100_000, Currency::ZMW),
                    phone: Some(Phone::parse(&phone(index)).expect("a valid Zambian number")),
                    products: vec![product],
                    apply_inflation: false,
                    time_zone: TimeZone::parse("Africa/Lusaka").expect("a known zone"),
                    merchant_reference: None,
                    description: String::new(),
                    metadata: "{}".to_owned(),
                    items: "[]".to_owned(),
                    success_url: None,
                    cancel_url: None,
                    test_clock: None,
                    expires_in_ms: Some(600_000),
                };
                payments.create_checkout(tenant, request).await
            }
        })
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    let failed = created.iter().filter(|c| c.is_err()).count();
    if failed > 0 {
        bail!("{failed} checkouts could not be created");
    }
    let plan_ids = loop {
        let counts = store.plan_status_counts(tenant).await?;
        let active = counts.get("active").copied().unwrap_or(0);
        if active as usize >= args.plans {
            break store.plan_ids(tenant, 1_000).await?;
        }
        if started.elapsed() > Duration::from_secs(3_600) {
            bail!(
                "only {active} of {} plans completed their checkout in an hour",
                args.plans
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!(
        "  set-up: {} checkouts completed (deposit collected, plan funded) in {:.1} s",
        args.plans,
        started.elapsed().as_secs_f64()
    );

    // The pass: a week and a day later every first installment is due.
    let paid_before = store.installment_status_counts(tenant).await?;
    let paid_before = paid_before.get("paid").copied().unwrap_or(0);
    clock.offset_ms.store(8 * DAY_MS, Ordering::SeqCst);
    payments.wake.notify_one();
    let pass_started = Instant::now();
    let probe = Arc::new(Probe::default());
    let prober = tokio::spawn(probe_api(
        probe.clone(),
        base_url,
        sandbox.key.reveal(),
        plan_ids,
        args.probe_rate,
    ));
    let mut last_report = Instant::now();
    loop {
        let counts = store.installment_status_counts(tenant).await?;
        let paid = counts.get("paid").copied().unwrap_or(0) - paid_before;
        if paid as usize >= args.plans {
            break;
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            println!(
                "    {:>6.1} s: {paid} collected, {} in flight",
                pass_started.elapsed().as_secs_f64(),
                counts.get("processing").copied().unwrap_or(0)
            );
            last_report = Instant::now();
        }
        if pass_started.elapsed() > Duration::from_secs(3_600) {
            bail!(
                "only {paid} of {} installments collected in an hour",
                args.plans
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pass = pass_started.elapsed().as_secs_f64();
    probe.stop.store(true, Ordering::SeqCst);
    let _ = prober.await;
    println!(
        "  pass: {} installments collected in {pass:.1} s ({:.0}/s)",
        args.plans,
        args.plans as f64 / pass
    );
    let mut all = probe
        .latencies
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    report(
        "  API during the pass",
        &mut all,
        probe.errors.load(Ordering::SeqCst),
    );
    let report = store.check_ledger().await?;
    println!(
        "  ledger check: {} ({} transfers)",
        if report.is_clean() {
            "clean"
        } else {
            "PROBLEMS"
        },
        report.transfers_checked
    );
    let _ = stop.send(());
    let _ = server.await;
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

#[derive(Default)]
struct Probe {
    stop: AtomicBool,
    latencies: Mutex<Vec<f64>>,
    errors: AtomicUsize,
}

/// Probes the API at a fixed rate until told to stop, printing latency
/// percentiles every ten seconds.
async fn probe_api(
    probe: Arc<Probe>,
    base_url: String,
    key: String,
    plans: Vec<PlanId>,
    rate: u64,
) {
    let client = reqwest::Client::new();
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = Instant::now();
    let mut window: Vec<f64> = Vec::new();
    let mut window_started = Instant::now();
    let mut index: u32 = 0;
    while !probe.stop.load(Ordering::SeqCst) {
        let due = started + interval * index;
        tokio::time::sleep_until(due.into()).await;
        let plan = plans[index as usize % plans.len()];
        index += 1;
        let response = client
            .get(format!("{base_url}/v1/plans/{plan}"))
            .bearer_auth(&key)
            .send()
            .await;
        let ms = due.elapsed().as_secs_f64() * 1_000.0;
        match response {
            Ok(response) if response.status().is_success() => {
                probe
                    .latencies
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(ms);
                window.push(ms);
            }
            _ => {
                probe.errors.fetch_add(1, Ordering::SeqCst);
            }
        }
        if window_started.elapsed() >= Duration::from_secs(10) {
            report(
                "    API, last 10 s",
                &mut window,
                probe.errors.load(Ordering::SeqCst),
            );
            window.clear();
            window_started = Instant::now();
        }
    }
}

fn report(label: &str, latencies: &mut [f64], errors: usize) {
    latencies.sort_by(f64::total_cmp);
    println!(
        "{label}: {} requests, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {errors} errors",
        latencies.len(),
        percentile(latencies, 50.0),
        percentile(latencies, 99.0),
        latencies.last().copied().unwrap_or(f64::NAN),
    );
}
