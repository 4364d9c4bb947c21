//! Operator commands over the money core: the ledger, fees, exchange rates
//! and the audit log. Each change is recorded in the audit log as `cli`.

use anyhow::{Context, bail};
use clap::Subcommand;
use malipo_core::{
    Clock, Currency, Direction, FeePayer, FeeSchedule, MerchantId, Mode, Money, Rate, Timestamp,
};
use malipo_ledger::{AccountKind, AccountSpec, NewEntry, NewTransfer, PostOutcome};
use malipo_store::{FeeLevel, FeeTarget, NewAuditEvent, Store, Tenant};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const ACTOR: &str = "cli";

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Verify every ledger invariant over the whole database: each transfer's
    /// entries sum to zero per currency, posted entries sum to zero overall,
    /// no never-negative account is negative, cached balances equal the
    /// balances recomputed from entries. Exits 1 with a report if not.
    Check,
    /// Credit a merchant's available balance (debit it, with a negative
    /// amount) against the platform's external account, with a reason.
    Adjust {
        /// The merchant, `mer_…`.
        #[arg(long)]
        merchant: String,
        #[arg(long, value_enum, default_value = "test")]
        mode: crate::ModeArg,
        /// ISO 4217 code, e.g. KES.
        #[arg(long)]
        currency: String,
        /// In major units, e.g. 100.00 or -5.50.
        #[arg(long, allow_hyphen_values = true)]
        amount: String,
        /// Why; kept in the audit log.
        #[arg(long)]
        reason: String,
        /// Makes the command safe to repeat: the same key posts once.
        #[arg(long)]
        key: Option<String>,
    },
    /// Post the transfer that undoes a posted transfer.
    Reverse {
        /// The transfer, `tr_…`.
        transfer_id: String,
        /// Why; kept in the audit log.
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum FeesCommand {
    /// Set the fee schedule for a level (platform or one merchant), optionally
    /// for one rail and direction. Replaces the schedule it matches exactly.
    Set {
        /// Without it, the platform-wide schedule.
        #[arg(long)]
        merchant: Option<String>,
        #[arg(long)]
        currency: String,
        /// Percentage in basis points: 50 = 0.5 %.
        #[arg(long, default_value_t = 0)]
        bps: u32,
        /// Fixed part in major units.
        #[arg(long, default_value = "0")]
        fixed: String,
        /// Smallest fee, major units.
        #[arg(long)]
        min: Option<String>,
        /// Largest fee, major units.
        #[arg(long)]
        max: Option<String>,
        /// `customer` (added on top) or `merchant` (deducted).
        #[arg(long)]
        payer: String,
        /// Only for this rail (e.g. mpesa).
        #[arg(long)]
        rail: Option<String>,
        /// Only for `collection` or `payout`.
        #[arg(long)]
        direction: Option<String>,
    },
    /// List fee schedules (all, or those that apply to one merchant).
    List {
        #[arg(long)]
        merchant: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum FxCommand {
    /// Record an exchange rate: 1 BASE = RATE QUOTE.
    Set {
        /// e.g. USD
        base: String,
        /// e.g. UGX
        quote: String,
        /// Exact decimal, e.g. 3712.45
        rate: String,
        /// Where the rate comes from, e.g. "Bank of Uganda mid".
        #[arg(long)]
        source: String,
        /// When the rate was quoted (RFC 3339); default now.
        #[arg(long)]
        as_of: Option<String>,
    },
    /// List recorded rates, newest first.
    List,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain and report any record that was edited, deleted
    /// or reordered. Exits 1 if the chain is broken; prints the head hash
    /// (note it elsewhere to detect a truncated tail later).
    Verify,
}

pub(crate) fn merchant(text: &str) -> anyhow::Result<MerchantId> {
    MerchantId::parse(text).with_context(|| format!("`{text}` is not a merchant id (mer_…)"))
}

fn currency(text: &str) -> anyhow::Result<Currency> {
    Currency::parse(text).map_err(anyhow::Error::from)
}

fn major(text: &str, currency: Currency) -> anyhow::Result<i64> {
    Ok(Money::parse_major(text, currency)?.amount_minor)
}

pub async fn ledger(
    store: &Store,
    clock: &dyn Clock,
    command: LedgerCommand,
) -> anyhow::Result<()> {
    match command {
        LedgerCommand::Check => {
            let report = store.check_ledger().await?;
            println!(
                "checked {} transfers and {} accounts",
                report.transfers_checked, report.accounts_checked
            );
            if !report.is_clean() {
                for problem in &report.problems {
                    println!("PROBLEM: {problem}");
                }
                bail!("the ledger has {} problem(s)", report.problems.len());
            }
            println!("ledger OK");
        }
        LedgerCommand::Adjust {
            merchant: merchant_text,
            mode,
            currency: code,
            amount,
            reason,
            key,
        } => {
            let merchant_id = merchant(&merchant_text)?;
            if store.merchants().find(merchant_id).await?.is_none() {
                bail!("no merchant {merchant_id}");
            }
            if reason.trim().is_empty() {
                bail!("--reason must say why");
            }
            let currency = currency(&code)?;
            let amount = Money::new(major(&amount, currency)?, currency);
            if amount.amount_minor == 0 {
                bail!("--amount must not be zero");
            }
            let mode = Mode::from(mode);
            let now = clock.now();
            let accounts = store
                .ensure_accounts(
                    &[
                        AccountSpec::merchant(merchant_id, mode, currency, AccountKind::Available),
                        AccountSpec::platform(mode, currency, AccountKind::External, "adjustments"),
                    ],
                    now,
                )
                .await?;
            let key = key.unwrap_or_else(|| format!("adjustment:{}", uuid_like()));
            let transfer = NewTransfer::posted(
                key,
                format!("manual adjustment: {reason}"),
                vec![
                    NewEntry {
                        account_id: accounts[0],
                        amount,
                    },
                    NewEntry {
                        account_id: accounts[1],
                        amount: amount.checked_neg()?,
                    },
                ],
            );
            let details = serde_json::json!({
                "amount": amount.amount_minor, "currency": currency.code(), "reason": reason,
            });
            let audit = NewAuditEvent::new(ACTOR, "ledger.adjustment", "")
                .for_tenant(Tenant { merchant_id, mode })
                .with_details(details.to_string());
            let posted = store
                .post_transfer_audited(&transfer, &audit, now)
                .await?
                .map_err(|error| anyhow::anyhow!("the ledger refused the adjustment: {error}"))?;
            let note = if posted.outcome == PostOutcome::AlreadyPosted {
                " (already posted)"
            } else {
                ""
            };
            println!("{}{note}", posted.id);
        }
        LedgerCommand::Reverse {
            transfer_id,
            reason,
        } => {
            let id = malipo_core::TransferId::parse(&transfer_id)
                .with_context(|| format!("`{transfer_id}` is not a transfer id (tr_…)"))?;
            let now = clock.now();
            let posted = store
                .reverse_transfer(id, now)
                .await?
                .map_err(|error| anyhow::anyhow!("cannot reverse {id}: {error}"))?;
            if posted.outcome == PostOutcome::Posted {
                let details = serde_json::json!({ "reverses": id.to_string(), "reason": reason });
                let audit = NewAuditEvent::new(ACTOR, "ledger.reversal", posted.id)
                    .with_details(details.to_string());
                store.append_audit(&audit, now).await?;
            }
            println!("{}", posted.id);
        }
    }
    Ok(())
}

/// A unique suffix for keys the operator did not name.
fn uuid_like() -> String {
    malipo_core::TransferId::generate().body()
}

pub async fn fees(store: &Store, clock: &dyn Clock, command: FeesCommand) -> anyhow::Result<()> {
    match command {
        FeesCommand::Set {
            merchant: merchant_text,
            currency: code,
            bps,
            fixed,
            min,
            max,
            payer,
            rail,
            direction,
        } => {
            let currency = currency(&code)?;
            let level = match merchant_text {
                Some(text) => FeeLevel::Merchant(merchant(&text)?),
                None => FeeLevel::Platform,
            };
            let payer = FeePayer::parse(&payer).context("--payer is `customer` or `merchant`")?;
            let direction = direction
                .map(|text| {
                    Direction::parse(&text).context("--direction is `collection` or `payout`")
                })
                .transpose()?;
            let schedule = FeeSchedule::new(
                bps,
                major(&fixed, currency)?,
                min.map(|text| major(&text, currency)).transpose()?,
                max.map(|text| major(&text, currency)).transpose()?,
                payer,
            )?;
            let target = FeeTarget {
                level,
                rail,
                direction,
                currency,
            };
            let record = store
                .set_fee_schedule(target, schedule, ACTOR, clock.now())
                .await?;
            println!("{}", record.id);
        }
        FeesCommand::List {
            merchant: merchant_text,
        } => {
            let merchant_id = merchant_text.as_deref().map(merchant).transpose()?;
            for record in store.list_fee_schedules(merchant_id).await? {
                let level = match &record.level {
                    FeeLevel::Platform => "platform".to_owned(),
                    FeeLevel::Merchant(id) => id.to_string(),
                    FeeLevel::Entity(id) => format!("entity {id}"),
                };
                let s = record.schedule;
                println!(
                    "{}\t{level}\t{}\trail={}\tdirection={}\t{} bps + {} (min {:?}, max {:?})\tpaid by {}",
                    record.id,
                    record.currency,
                    record.rail.as_deref().unwrap_or("any"),
                    record.direction.map_or("any", Direction::as_str),
                    s.percent_bps,
                    Money::new(s.fixed_minor, record.currency).format_major(),
                    s.min_minor
                        .map(|m| Money::new(m, record.currency).format_major()),
                    s.max_minor
                        .map(|m| Money::new(m, record.currency).format_major()),
                    s.payer.as_str(),
                );
            }
        }
    }
    Ok(())
}

pub async fn fx(store: &Store, clock: &dyn Clock, command: FxCommand) -> anyhow::Result<()> {
    match command {
        FxCommand::Set {
            base,
            quote,
            rate,
            source,
            as_of,
        } => {
            let rate = Rate::parse(currency(&base)?, currency(&quote)?, &rate)?;
            if source.trim().is_empty() {
                bail!("--source must name where the rate comes from");
            }
            let now = clock.now();
            let as_of = match as_of {
                Some(text) => Timestamp::from_offset_date_time(
                    OffsetDateTime::parse(&text, &Rfc3339)
                        .with_context(|| format!("--as-of `{text}` is not RFC 3339"))?,
                ),
                None => now,
            };
            let record = store
                .set_fx_rate(&rate, source.trim(), as_of, ACTOR, now)
                .await?;
            println!("{}", record.id);
        }
        FxCommand::List => {
            let mut page = malipo_store::PageRequest {
                limit: 100,
                starting_after: None,
            };
            loop {
                let rates = store.list_fx_rates(&page).await?;
                for record in &rates.rows {
                    println!(
                        "{}\t{}\tas of {}\t{}",
                        record.id, record.rate, record.as_of, record.source
                    );
                }
                match (rates.has_more, rates.rows.last()) {
                    (true, Some(last)) => page.starting_after = Some(last.id.to_string()),
                    _ => break,
                }
            }
        }
    }
    Ok(())
}

pub async fn audit(store: &Store, command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Verify => {
            let report = store.verify_audit_chain().await?;
            println!(
                "checked {} audit records; head hash {}",
                report.records_checked, report.head_hash
            );
            if !report.problems.is_empty() {
                for problem in &report.problems {
                    println!("PROBLEM: {problem}");
                }
                bail!(
                    "the audit chain is broken in {} place(s)",
                    report.problems.len()
                );
            }
            println!("audit chain OK");
        }
    }
    Ok(())
}
