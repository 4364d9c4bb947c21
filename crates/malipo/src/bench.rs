//! `malipo bench`: measurements anyone can rerun on their own machine.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use malipo_core::{Clock, Currency, Mode, Money, SystemClock};
use malipo_ledger::{AccountKind, AccountSpec, NewEntry, NewTransfer};
use malipo_store::{ConnectOptions, LedgerWriter, Store};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Ledger posting throughput: batched posting (many transfers per
    /// commit), and group commit (many concurrent callers posting one
    /// transfer each through the ledger writer).
    Ledger(LedgerBenchArgs),
    /// Webhook delivery throughput, and the time from an event's commit to
    /// its first attempt, against a healthy local receiver.
    Webhooks(crate::bench_webhooks::WebhookBenchArgs),
    /// The end-to-end benchmark's load client, against a running server
    /// (`bench/e2e.sh` starts one): payment creation at fixed rates and at
    /// saturation, the sandbox round trip to a webhook, and memory.
    Http(crate::bench_http::HttpBenchArgs),
    /// A worker pass over many plans whose installments fall due at once
    /// (100,000 by default), with the API probed at a fixed rate meanwhile.
    Plans(crate::bench_plans::PlansBenchArgs),
}

#[derive(Debug, Args)]
pub struct LedgerBenchArgs {
    /// Transfers to post in each phase (two entries each).
    #[arg(long, default_value_t = 200_000)]
    transfers: usize,
    /// Transfers per commit in the batched phase.
    #[arg(long, default_value_t = 4_000)]
    batch: usize,
    /// Merchant accounts the transfers are spread over.
    #[arg(long, default_value_t = 1_000)]
    accounts: usize,
    /// Concurrent callers in the group-commit phase.
    #[arg(long, default_value_t = 2_048)]
    concurrency: usize,
}

pub async fn run(database_url: Option<String>, command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Ledger(args) => ledger(database_url, args).await,
        BenchCommand::Webhooks(args) => crate::bench_webhooks::run(database_url, args).await,
        BenchCommand::Http(args) => crate::bench_http::run(database_url, args).await,
        BenchCommand::Plans(args) => crate::bench_plans::run(database_url, args).await,
    }
}

/// The database to bench on: the one given, or a scratch SQLite file in a
/// directory of its own (removed by the bench when done).
pub(crate) fn database_url_or_scratch(
    database_url: Option<String>,
) -> anyhow::Result<(String, std::path::PathBuf)> {
    let scratch = std::env::temp_dir().join(format!("malipo-bench-{}", std::process::id()));
    let url = match database_url {
        Some(url) => url,
        None => {
            std::fs::create_dir_all(&scratch)?;
            format!("sqlite:{}", scratch.join("bench.db").display())
        }
    };
    Ok((url, scratch))
}

async fn ledger(database_url: Option<String>, args: LedgerBenchArgs) -> anyhow::Result<()> {
    if args.transfers == 0 || args.batch == 0 || args.accounts == 0 || args.concurrency == 0 {
        bail!("--transfers, --batch, --accounts and --concurrency must be at least 1");
    }
    let (url, scratch) = crate::bench::database_url_or_scratch(database_url)?;
    let store = Store::connect(&url, &ConnectOptions::default())
        .await
        .context("connect")?;
    store.migrate().await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    println!(
        "malipo bench ledger on {} ({} transfers per phase, 2 entries each)",
        store.backend().name(),
        args.transfers
    );

    let (source, targets) = prepare_accounts(&store, clock.as_ref(), args.accounts).await?;
    let targets = Arc::new(targets);
    let transfer = move |phase: &str, index: usize| {
        NewTransfer::posted(
            // Real keys derive from time-ordered ids (`payment:pay_…:capture`).
            format!("bench:{phase}:{}:{index:010}", std::process::id()),
            "bench",
            vec![
                NewEntry {
                    account_id: source,
                    amount: Money::new(-(index as i64 % 997 + 1), Currency::KES),
                },
                NewEntry {
                    account_id: targets[index % targets.len()],
                    amount: Money::new(index as i64 % 997 + 1, Currency::KES),
                },
            ],
        )
    };

    let started = Instant::now();
    for chunk_start in (0..args.transfers).step_by(args.batch) {
        let end = (chunk_start + args.batch).min(args.transfers);
        let batch: Vec<NewTransfer> = (chunk_start..end).map(|i| transfer("batched", i)).collect();
        let results = store.post_transfers(&batch, clock.now()).await?;
        if let Some(error) = results.into_iter().find_map(Result::err) {
            bail!("a bench transfer was refused: {error}");
        }
    }
    let batched = started.elapsed();
    report(
        "batched",
        args.transfers,
        batched,
        &format!("{} per commit", args.batch),
    );

    let writer = LedgerWriter::spawn(store.clone(), clock.clone());
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut callers = Vec::with_capacity(args.concurrency);
    for _ in 0..args.concurrency {
        let (writer, next) = (writer.clone(), next.clone());
        let transfer = transfer.clone();
        let total = args.transfers;
        callers.push(tokio::spawn(async move {
            loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if index >= total {
                    return Ok::<(), anyhow::Error>(());
                }
                writer.post(transfer("grouped", index)).await??;
            }
        }));
    }
    for caller in callers {
        caller.await??;
    }
    let grouped = started.elapsed();
    report(
        "group commit",
        args.transfers,
        grouped,
        &format!("{} concurrent callers", args.concurrency),
    );

    let started = Instant::now();
    let check = store.check_ledger().await?;
    println!(
        "ledger check: {} ({} transfers, {} accounts, {:.1} s)",
        if check.is_clean() { "OK" } else { "PROBLEMS" },
        check.transfers_checked,
        check.accounts_checked,
        started.elapsed().as_secs_f64()
    );
    store.close().await;
    let _ = std::fs::remove_dir_all(&scratch);
    if !check.is_clean() {
        bail!("ledger check failed: {:?}", check.problems);
    }
    Ok(())
}

fn report(phase: &str, transfers: usize, elapsed: std::time::Duration, note: &str) {
    let seconds = elapsed.as_secs_f64();
    println!(
        "{phase:>13}: {:>9.0} entries/s  ({:.0} transfers/s, {seconds:.2} s, {note})",
        (transfers * 2) as f64 / seconds,
        transfers as f64 / seconds,
    );
}

async fn prepare_accounts(
    store: &Store,
    clock: &dyn Clock,
    count: usize,
) -> anyhow::Result<(malipo_core::AccountId, Vec<malipo_core::AccountId>)> {
    let merchant = store
        .merchants()
        .create("Bench merchant", "bench", clock.now())
        .await?;
    let mut specs = vec![AccountSpec::platform(
        Mode::Test,
        Currency::KES,
        AccountKind::External,
        "bench",
    )];
    for index in 0..count {
        let mut spec = AccountSpec::merchant(
            merchant.id,
            Mode::Test,
            Currency::KES,
            AccountKind::Available,
        );
        // One account per index: the qualifier tells them apart.
        spec.qualifier = format!("bench-{index}");
        specs.push(spec);
    }
    let ids = store.ensure_accounts(&specs, clock.now()).await?;
    Ok((ids[0], ids[1..].to_vec()))
}
