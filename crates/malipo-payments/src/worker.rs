//! The worker: leases due jobs and runs them. Several nodes may run one
//! each against the same database; the lease keeps a job to one at a time.
//! Every job is idempotent, because a job can run again after a crash.

use std::time::Duration;

use futures_util::StreamExt;
use malipo_core::{InboundId, PaymentId, PaymentStatus};
use malipo_rails::{
    CollectionRequest, Destination, FailureCode, PayoutRequest, RailError, StartOutcome,
    StatusReport,
};
use malipo_store::{
    InboundState, JobRecord, NewJob, PROCESS_INBOUND_JOB, PaymentRecord, PaymentUpdate,
    PayoutDestination, PayoutStatus,
};
use tokio::sync::watch;

use crate::Payments;
use crate::collections::{EXPIRE_JOB, NextAction, POLL_JOB, PaymentError, START_JOB};
use crate::payouts::{PAYOUT_POLL_JOB, PAYOUT_START_JOB};

/// Jobs leased per round.
const CLAIM_BATCH_MAX: u32 = 256;
/// Jobs of a round running at once (see `run_due_jobs`).
const JOBS_IN_FLIGHT_MAX: usize = 8;
/// The longest the worker sleeps when idle: jobs queued by another node
/// are seen within this.
const IDLE_WAIT_MS: u64 = 250;
/// Backoff between attempts of a failing job: 1 s, 2 s, 4 s … at most 5 min.
const RETRY_BACKOFF_MS_MAX: i64 = 300_000;

/// Runs jobs until `stopped` turns true.
pub async fn run(payments: Payments, mut stopped: watch::Receiver<bool>) {
    loop {
        // Checked every round: a queue that is never empty must not keep
        // the worker (and graceful shutdown) going for ever.
        if *stopped.borrow() {
            return;
        }
        let ran = match run_due_jobs(&payments).await {
            Ok(ran) => ran,
            Err(error) => {
                tracing::warn!(error = %error, "could not lease jobs");
                0
            }
        };
        if ran > 0 {
            continue;
        }
        tokio::select! {
            _ = payments.wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(IDLE_WAIT_MS)) => {}
            _ = stopped.changed() => return,
        }
    }
}

/// Runs the jobs due now; returns how many. Tests call this to drive the
/// queue by hand.
pub async fn run_due_jobs(payments: &Payments) -> Result<usize, malipo_store::StoreError> {
    let now = payments.clock.now();
    let jobs = payments
        .store
        .claim_jobs(now, payments.config.job_lease_ms, CLAIM_BATCH_MAX)
        .await?;
    let count = jobs.len();
    // A round's jobs run side by side: each is a rail call or a few
    // statements, idempotent and guarded by its object's state, so their
    // order within a round does not matter (several nodes already run jobs
    // at once). Run one after another, a backlog of polls kept a callback
    // waiting for seconds. More than 8 at once took CPU from the API under
    // load (saturation ~13 % lower at 32) for little faster draining.
    let outcomes: Vec<_> = futures_util::stream::iter(jobs)
        .map(|job| async move {
            let mut own = Round::default();
            let result = run_job(payments, &job, &mut own).await;
            (job, own, result)
        })
        .buffer_unordered(JOBS_IN_FLIGHT_MAX)
        .collect()
        .await;
    let mut round = Round::default();
    for (job, own, result) in outcomes {
        round.acknowledgements.extend(own.acknowledgements);
        match result {
            Ok(()) => round.finished.push(job.id),
            Err(JobFailure::Retry(reason)) => {
                let backoff = (1_000i64 << job.attempts.clamp(0, 20)).min(RETRY_BACKOFF_MS_MAX);
                tracing::warn!(job_id = %job.id, kind = %job.kind, subject = %job.subject_id, attempts = job.attempts, reason = %reason, "job will retry");
                round
                    .later
                    .push((job.id, payments.clock.now().plus_ms(backoff), reason));
            }
            Err(JobFailure::Later(run_at)) => {
                round.later.push((job.id, run_at, "not yet".to_owned()));
            }
        }
    }
    // One transaction for the round: the rails' acknowledgements, the
    // removal of the jobs that ran and the rescheduling of those to run
    // again (one commit, not one per job). A job that ran but was not
    // removed only runs again, and every job is idempotent.
    payments
        .store
        .finish_round(
            &round.acknowledgements,
            &round.finished,
            &round.later,
            payments.clock.now(),
        )
        .await?;
    Ok(count)
}

/// What a round of jobs writes together at its end.
#[derive(Default)]
struct Round {
    /// Payments the rail accepted: its id, and the poll that follows.
    acknowledgements: Vec<(PaymentId, String, NewJob)>,
    finished: Vec<malipo_core::JobId>,
    /// Jobs to run again: when, and why.
    later: Vec<(malipo_core::JobId, malipo_core::Timestamp, String)>,
}

enum JobFailure {
    /// Failed; try again after a backoff.
    Retry(String),
    /// Not done yet; run again at this time.
    Later(malipo_core::Timestamp),
}

impl From<PaymentError> for JobFailure {
    fn from(error: PaymentError) -> Self {
        JobFailure::Retry(error.to_string())
    }
}

impl From<malipo_store::StoreError> for JobFailure {
    fn from(error: malipo_store::StoreError) -> Self {
        JobFailure::Retry(error.to_string())
    }
}

async fn run_job(
    payments: &Payments,
    job: &JobRecord,
    round: &mut Round,
) -> Result<(), JobFailure> {
    match job.kind.as_str() {
        START_JOB => start_collection(payments, job, round).await,
        POLL_JOB => poll_collection(payments, job).await,
        EXPIRE_JOB => expire_collection(payments, job).await,
        PROCESS_INBOUND_JOB => process_inbound(payments, job).await,
        PAYOUT_START_JOB => start_payout(payments, job).await,
        PAYOUT_POLL_JOB => poll_payout(payments, job).await,
        other
            if let Some(result) =
                crate::settlement::run_job(payments, other, &job.subject_id).await =>
        {
            result.map_err(JobFailure::Retry)
        }
        other => match crate::bnpl::run_job(payments, other, &job.subject_id, &job.payload).await {
            Some(Ok(None)) => Ok(()),
            Some(Ok(Some(at))) => Err(JobFailure::Later(at)),
            Some(Err(reason)) => Err(JobFailure::Retry(reason)),
            None => {
                tracing::error!(job_id = %job.id, kind = other, "unknown job kind; dropping it");
                Ok(())
            }
        },
    }
}

async fn load_payment(
    payments: &Payments,
    job: &JobRecord,
) -> Result<Option<PaymentRecord>, JobFailure> {
    let Ok(id) = PaymentId::parse(&job.subject_id) else {
        tracing::error!(job_id = %job.id, subject = %job.subject_id, "job names no payment");
        return Ok(None);
    };
    Ok(payments.store.find_payment(id).await?)
}

async fn start_collection(
    payments: &Payments,
    job: &JobRecord,
    round: &mut Round,
) -> Result<(), JobFailure> {
    let Some(payment) = load_payment(payments, job).await? else {
        return Ok(());
    };
    if payment.status != PaymentStatus::Pending || payment.rail_transaction_id.is_some() {
        return Ok(());
    }
    let rail_id = payment.rail.clone().unwrap_or_default();
    let Some(rail) = payments
        .rail_of(payment.merchant_id, payment.mode, &rail_id)
        .await?
    else {
        return Err(JobFailure::Retry(format!(
            "rail {rail_id} is not configured"
        )));
    };
    let otp = serde_json::from_str::<serde_json::Value>(&job.payload)
        .ok()
        .and_then(|payload| payload["otp"].as_str().map(str::to_owned));
    let request = CollectionRequest {
        reference: payment.id.to_string(),
        amount: malipo_core::Money::new(payment.customer_total_minor, payment.amount.currency),
        phone: payment.customer_phone.clone().unwrap_or_default(),
        description: payment.description.clone(),
        fields: serde_json::from_str(&payment.fields).unwrap_or_default(),
        otp,
        callback_url: format!(
            "{}/v1/inbound/{}",
            payments.config.public_url,
            malipo_rails::callback_segment(&rail_id)
        ),
        recurring: matches!(
            crate::bnpl::Purpose::of(&payment),
            Some(crate::bnpl::Purpose::Installment(_))
        ),
    };
    let outcome = match rail.start_collection(&request).await {
        Ok(outcome) => outcome,
        Err(RailError::Unavailable { reason, .. }) => return Err(JobFailure::Retry(reason)),
        Err(error) => StartOutcome::Rejected {
            failure: malipo_rails::FailureCode::RailError,
            message: error.to_string(),
        },
    };
    let now = payments.clock.now();
    match outcome {
        StartOutcome::Accepted {
            rail_transaction_id,
        } => {
            let poll_at = now.plus_ms(rail.capabilities().poll_after_ms);
            let poll = NewJob::new(POLL_JOB, payment.id, poll_at);
            round
                .acknowledgements
                .push((payment.id, rail_transaction_id, poll));
        }
        StartOutcome::NeedsOtp => requires_action(payments, &payment, &NextAction::Otp).await?,
        StartOutcome::NeedsFields { fields, errors } => {
            requires_action(
                payments,
                &payment,
                &NextAction::ProvideFields { fields, errors },
            )
            .await?
        }
        StartOutcome::Rejected { failure, message } => {
            let update = Payments::failure_update(failure, &message);
            payments
                .store
                .update_payment(
                    payments.views.as_ref(),
                    payment.id,
                    PaymentStatus::Failed,
                    &update,
                    &[],
                    &[],
                    now,
                )
                .await?;
        }
    }
    Ok(())
}

async fn requires_action(
    payments: &Payments,
    payment: &PaymentRecord,
    action: &NextAction,
) -> Result<(), JobFailure> {
    let update = PaymentUpdate {
        next_action: Some(Some(Payments::next_action_json(action))),
        ..PaymentUpdate::default()
    };
    let now = payments.clock.now();
    payments
        .store
        .update_payment(
            payments.views.as_ref(),
            payment.id,
            PaymentStatus::RequiresAction,
            &update,
            &[],
            &[],
            now,
        )
        .await?;
    Ok(())
}

/// The callback may have been lost: ask the rail.
async fn poll_collection(payments: &Payments, job: &JobRecord) -> Result<(), JobFailure> {
    let Some(payment) = load_payment(payments, job).await? else {
        return Ok(());
    };
    if payment.status != PaymentStatus::Pending {
        return Ok(());
    }
    let (Some(rail_id), Some(transaction_id)) = (
        payment.rail.as_deref(),
        payment.rail_transaction_id.as_deref(),
    ) else {
        return Ok(());
    };
    let Some(rail) = payments
        .rail_of(payment.merchant_id, payment.mode, rail_id)
        .await?
    else {
        return Ok(());
    };
    let next_poll = payments.clock.now().plus_ms(poll_backoff_ms(
        rail.capabilities().poll_after_ms,
        job.attempts,
    ));
    match rail.query_status(transaction_id).await {
        Ok(report) => {
            if !payments
                .apply_rail_outcome(&payment, &report.status)
                .await?
                && next_poll < payment.expires_at
            {
                return Err(JobFailure::Later(next_poll));
            }
            Ok(())
        }
        Err(error) if next_poll < payment.expires_at => {
            tracing::info!(payment_id = %payment.id, error = %error, "status query failed; will poll again");
            Err(JobFailure::Later(next_poll))
        }
        Err(_) => Ok(()),
    }
}

async fn expire_collection(payments: &Payments, job: &JobRecord) -> Result<(), JobFailure> {
    let Some(payment) = load_payment(payments, job).await? else {
        return Ok(());
    };
    if payment.status.is_final() {
        return Ok(());
    }
    let now = payments.clock.now();
    if now < payment.expires_at {
        return Err(JobFailure::Later(payment.expires_at));
    }
    let update = Payments::failure_update(
        malipo_rails::FailureCode::Timeout,
        "The customer did not approve in time.",
    );
    payments
        .store
        .update_payment(
            payments.views.as_ref(),
            payment.id,
            PaymentStatus::Expired,
            &update,
            &[],
            &[],
            now,
        )
        .await?;
    Ok(())
}

/// A stored callback: verify it, find its transaction, check it agrees,
/// apply it once. Anything that does not fit is kept and flagged.
async fn process_inbound(payments: &Payments, job: &JobRecord) -> Result<(), JobFailure> {
    let Ok(id) = InboundId::parse(&job.subject_id) else {
        return Ok(());
    };
    let Some(inbound) = payments.store.find_inbound(id).await? else {
        return Ok(());
    };
    if inbound.state != InboundState::Received.as_str() {
        return Ok(());
    }
    let now = payments.clock.now();
    let flag = |reason: String, transaction: Option<String>| async move {
        tracing::warn!(inbound_id = %id, reason = %reason, "callback flagged");
        payments
            .store
            .mark_inbound(
                id,
                InboundState::Flagged,
                transaction.as_deref(),
                Some(&reason),
                now,
            )
            .await
    };
    let Some(rail) = payments.callback_reader(&inbound.rail) else {
        flag(format!("no rail `{}`", inbound.rail), None).await?;
        return Ok(());
    };
    let headers: Vec<(String, String)> = serde_json::from_str(&inbound.headers).unwrap_or_default();
    match rail.parse_customer_payment(&headers, &inbound.body) {
        Ok(None) => {}
        Ok(Some(payment)) => {
            let transaction = payment.rail_transaction_id.clone();
            let outcome = payments
                .apply_customer_payment(&inbound.rail, id, payment)
                .await?;
            let state = match outcome {
                malipo_store::CustomerPaymentOutcome::Duplicate => InboundState::Duplicate,
                _ => InboundState::Applied,
            };
            payments
                .store
                .mark_inbound(id, state, Some(&transaction), None, now)
                .await?;
            return Ok(());
        }
        Err(error) => {
            flag(format!("does not verify: {error}"), None).await?;
            return Ok(());
        }
    }
    let report: StatusReport = match rail.parse_callback(&headers, &inbound.body) {
        Ok(report) => report,
        Err(error) => {
            flag(format!("does not verify: {error}"), None).await?;
            return Ok(());
        }
    };
    let transaction = Some(report.rail_transaction_id.clone());
    let Some(payment) = payments
        .store
        .find_payment_by_rail_transaction(&inbound.rail, &report.rail_transaction_id)
        .await?
    else {
        if let Some(payout) = payments
            .store
            .find_payout_by_rail_transaction(&inbound.rail, &report.rail_transaction_id)
            .await?
        {
            if report
                .reference
                .as_deref()
                .is_some_and(|reference| reference != payout.id)
                || report.amount.is_some_and(|amount| amount != payout.amount)
            {
                flag(format!("disagrees with {}", payout.id), transaction).await?;
                return Ok(());
            }
            let status = if rail.capabilities().signed_callbacks
                || !rail.capabilities().payout_query_confirms
            {
                report.status.clone()
            } else {
                match confirm_by_query(
                    payments,
                    job,
                    payout.merchant_id,
                    payout.mode,
                    &inbound.rail,
                    &report,
                )
                .await?
                {
                    Confirmed::Status(status) => status,
                    Confirmed::Flag(reason) => {
                        flag(reason, transaction).await?;
                        return Ok(());
                    }
                }
            };
            let applied = payments.apply_payout_outcome(&payout, &status).await?;
            let state = if applied {
                InboundState::Applied
            } else {
                InboundState::Duplicate
            };
            payments
                .store
                .mark_inbound(id, state, transaction.as_deref(), None, now)
                .await?;
            return Ok(());
        }
        // The rail may answer before its acknowledgement is recorded: if the
        // callback names one of ours still waiting for it, try again shortly.
        if awaits_acknowledgement(payments, report.reference.as_deref()).await?
            && job.attempts < ACKNOWLEDGEMENT_WAITS_MAX
        {
            return Err(JobFailure::Later(now.plus_ms(ACKNOWLEDGEMENT_WAIT_MS)));
        }
        flag("names an unknown transaction".to_owned(), transaction).await?;
        return Ok(());
    };
    if report
        .reference
        .as_deref()
        .is_some_and(|reference| reference != payment.id.to_string())
    {
        flag(
            format!(
                "names {} but the transaction is {}",
                report.reference.unwrap_or_default(),
                payment.id
            ),
            transaction,
        )
        .await?;
        return Ok(());
    }
    if let Some(amount) = report.amount
        && (amount.currency != payment.amount.currency
            || amount.amount_minor != payment.customer_total_minor)
    {
        flag(
            format!(
                "says {amount} but {} expects {} {}",
                payment.id, payment.customer_total_minor, payment.amount.currency
            ),
            transaction,
        )
        .await?;
        return Ok(());
    }
    // An unsigned callback only says where to look: the rail's own status
    // query decides.
    let status = if rail.capabilities().signed_callbacks {
        report.status.clone()
    } else {
        match confirm_by_query(
            payments,
            job,
            payment.merchant_id,
            payment.mode,
            &inbound.rail,
            &report,
        )
        .await?
        {
            Confirmed::Status(status) => status,
            Confirmed::Flag(reason) => {
                flag(reason, transaction).await?;
                return Ok(());
            }
        }
    };
    let applied = payments.apply_rail_outcome(&payment, &status).await?;
    let state = if applied {
        InboundState::Applied
    } else {
        InboundState::Duplicate
    };
    payments
        .store
        .mark_inbound(id, state, transaction.as_deref(), None, now)
        .await?;
    Ok(())
}

/// What the rail's own status query says of an unsigned callback.
enum Confirmed {
    /// Final: apply this (the query's word, whatever the callback said).
    Status(malipo_rails::RailStatus),
    /// Never confirmed: keep the callback, flagged, for the operator.
    Flag(String),
}

/// Asks the rail where the callback's transaction stands. Not final yet on
/// the rail's side, or the query failed: the callback is tried again
/// shortly (`JobFailure::Later`), then flagged; the transaction's own
/// polling goes on regardless.
async fn confirm_by_query(
    payments: &Payments,
    job: &JobRecord,
    merchant: malipo_core::MerchantId,
    mode: malipo_core::Mode,
    rail: &str,
    report: &StatusReport,
) -> Result<Confirmed, JobFailure> {
    let Some(connector) = payments.rail_of(merchant, mode, rail).await? else {
        return Ok(Confirmed::Flag(
            "cannot be confirmed: the rail is no longer configured".to_owned(),
        ));
    };
    match connector.query_status(&report.rail_transaction_id).await {
        Ok(confirmed) if confirmed.status != malipo_rails::RailStatus::Pending => {
            if confirmed.status != report.status {
                tracing::warn!(
                    transaction = %report.rail_transaction_id,
                    "a callback disagreed with the rail's status query, which is applied"
                );
            }
            Ok(Confirmed::Status(confirmed.status))
        }
        _ if job.attempts < ACKNOWLEDGEMENT_WAITS_MAX => Err(JobFailure::Later(
            payments.clock.now().plus_ms(ACKNOWLEDGEMENT_WAIT_MS),
        )),
        _ => Ok(Confirmed::Flag(
            "the rail's status query never confirmed it".to_owned(),
        )),
    }
}

/// The longest wait between two status queries of one transaction.
const POLL_INTERVAL_MAX_MS: i64 = 60_000;

/// The wait before the next status query: the rail's interval, doubling
/// with each query already made, at most a minute. Many pending payments
/// (customers who never answer) then cost a trickle of queries, not a flood.
fn poll_backoff_ms(poll_after_ms: i64, queries_made: i64) -> i64 {
    let doublings = queries_made.saturating_sub(1).clamp(0, 16) as u32;
    poll_after_ms
        .saturating_mul(1 << doublings)
        .min(POLL_INTERVAL_MAX_MS.max(poll_after_ms))
}

/// Polls of a payout give up after this many; the operator sees it pending.
const PAYOUT_POLLS_MAX: i64 = 200;

async fn start_payout(payments: &Payments, job: &JobRecord) -> Result<(), JobFailure> {
    let Some(payout) = payments.store.find_payout(&job.subject_id).await? else {
        return Ok(());
    };
    if payout.status != PayoutStatus::Pending || payout.rail_transaction_id.is_some() {
        return Ok(());
    }
    let Some(rail) = payments
        .rail_of(payout.merchant_id, payout.mode, &payout.rail)
        .await?
    else {
        return Err(JobFailure::Retry(format!(
            "rail {} is not configured",
            payout.rail
        )));
    };
    let destination = match &payout.destination {
        PayoutDestination::Wallet { phone, .. } => Destination::Wallet {
            phone: phone.clone(),
        },
        PayoutDestination::Bank {
            bank_code,
            account_number,
            account_name,
        } => Destination::Bank {
            bank_code: bank_code.clone(),
            account_number: account_number.clone(),
            account_name: account_name.clone(),
        },
    };
    // A refund over the rail the payment came by may use its refund API.
    let refund_of = match payout.payment_id {
        Some(payment_id) => payments
            .store
            .find_payment(payment_id)
            .await?
            .filter(|payment| payment.rail.as_deref() == Some(payout.rail.as_str()))
            .and_then(|payment| {
                Some(malipo_rails::RefundOf {
                    rail_transaction_id: payment.rail_transaction_id?,
                    whole: payout.amount.amount_minor == payment.customer_total_minor,
                })
            }),
        None => None,
    };
    let request = PayoutRequest {
        reference: payout.id.clone(),
        amount: payout.amount,
        destination,
        description: payout.description.clone(),
        callback_url: format!(
            "{}/v1/inbound/{}",
            payments.config.public_url,
            malipo_rails::callback_segment(&payout.rail)
        ),
        refund_of,
    };
    let now = payments.clock.now();
    // The holder's name, when the merchant gave one: confirmed against the
    // wallet's registered name before any money moves.
    if let PayoutDestination::Wallet {
        phone,
        name: Some(expected),
    } = &payout.destination
    {
        let refusal = match rail.lookup_account_name(phone).await {
            Ok(registered) if names_agree(expected, &registered) => None,
            Ok(registered) => Some(format!(
                "the wallet is registered to {registered}, not {expected}"
            )),
            // The rail cannot tell (M-Pesa): its own result names the
            // receiver afterwards.
            Err(RailError::Unsupported { .. }) => None,
            Err(error) => Some(format!(
                "the wallet's holder could not be confirmed: {error}"
            )),
        };
        if let Some(message) = refusal {
            payments
                .store
                .complete_payout(
                    &payout.id,
                    Some(("name_mismatch".to_owned(), message)),
                    now,
                    payments.views.as_ref(),
                )
                .await?;
            return Ok(());
        }
    }
    let failure = match rail.start_payout(&request).await {
        Ok(StartOutcome::Accepted {
            rail_transaction_id,
        }) => {
            let poll = NewJob::new(
                PAYOUT_POLL_JOB,
                &payout.id,
                now.plus_ms(rail.capabilities().poll_after_ms),
            );
            payments
                .store
                .attach_payout_rail_transaction(&payout.id, &rail_transaction_id, &[poll], now)
                .await?;
            return Ok(());
        }
        Err(RailError::Unavailable { reason, .. }) => return Err(JobFailure::Retry(reason)),
        Ok(StartOutcome::Rejected { failure, message }) => (failure.as_str().to_owned(), message),
        Ok(StartOutcome::NeedsOtp | StartOutcome::NeedsFields { .. }) => (
            FailureCode::RailError.as_str().to_owned(),
            "the rail asked for a step a payout cannot take".to_owned(),
        ),
        Err(error) => (
            FailureCode::RailError.as_str().to_owned(),
            error.to_string(),
        ),
    };
    payments
        .store
        .complete_payout(&payout.id, Some(failure), now, payments.views.as_ref())
        .await?;
    Ok(())
}

async fn poll_payout(payments: &Payments, job: &JobRecord) -> Result<(), JobFailure> {
    let Some(payout) = payments.store.find_payout(&job.subject_id).await? else {
        return Ok(());
    };
    if payout.status != PayoutStatus::Pending || job.attempts > PAYOUT_POLLS_MAX {
        return Ok(());
    }
    let (Some(rail), Some(transaction_id)) = (
        payments
            .rail_of(payout.merchant_id, payout.mode, &payout.rail)
            .await?,
        payout.rail_transaction_id.as_deref(),
    ) else {
        return Ok(());
    };
    let next_poll = payments.clock.now().plus_ms(poll_backoff_ms(
        rail.capabilities().poll_after_ms,
        job.attempts,
    ));
    match rail.query_status(transaction_id).await {
        Ok(report)
            if payments
                .apply_payout_outcome(&payout, &report.status)
                .await? =>
        {
            Ok(())
        }
        _ => Err(JobFailure::Later(next_poll)),
    }
}

/// Whether every word of the name the merchant gave is in the wallet's
/// registered name, case and accents aside ("Amina Juma" agrees with
/// "AMINA JUMA HASSAN").
fn names_agree(expected: &str, registered: &str) -> bool {
    let words = |text: &str| -> Vec<String> {
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|word| !word.is_empty())
            .map(|word| {
                word.chars()
                    .flat_map(char::to_lowercase)
                    .map(|c| match c {
                        'á' | 'à' | 'â' | 'ä' | 'ã' => 'a',
                        'é' | 'è' | 'ê' | 'ë' => 'e',
                        'í' | 'ì' | 'î' | 'ï' => 'i',
                        'ó' | 'ò' | 'ô' | 'ö' | 'õ' => 'o',
                        'ú' | 'ù' | 'û' | 'ü' => 'u',
                        other => other,
                    })
                    .collect()
            })
            .collect()
    };
    let registered = words(registered);
    let expected = words(expected);
    !expected.is_empty() && expected.iter().all(|word| registered.contains(word))
}

/// How often, and how far apart, a callback that arrived before its
/// transaction's acknowledgement is tried again.
const ACKNOWLEDGEMENT_WAITS_MAX: i64 = 20;
const ACKNOWLEDGEMENT_WAIT_MS: i64 = 250;

async fn awaits_acknowledgement(
    payments: &Payments,
    reference: Option<&str>,
) -> Result<bool, JobFailure> {
    let Some(reference) = reference else {
        return Ok(false);
    };
    if let Ok(id) = PaymentId::parse(reference) {
        let payment = payments.store.find_payment(id).await?;
        return Ok(payment.is_some_and(|p| p.rail_transaction_id.is_none() && !p.status.is_final()));
    }
    let payout = payments.store.find_payout(reference).await?;
    Ok(
        payout
            .is_some_and(|p| p.rail_transaction_id.is_none() && p.status == PayoutStatus::Pending),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_agree_word_by_word_whatever_the_case_and_accents() {
        assert!(names_agree("Amina Juma", "AMINA JUMA HASSAN"));
        assert!(names_agree("josé  mwangi", "Jose Mwangi"));
        assert!(!names_agree("Amina Juma", "Amina Hassan"));
        assert!(!names_agree("", "Amina"));
    }

    #[test]
    fn polling_backs_off_to_a_minute() {
        let waits: Vec<i64> = (1..=8).map(|n| poll_backoff_ms(3_000, n)).collect();
        assert_eq!(
            waits,
            [3_000, 6_000, 12_000, 24_000, 48_000, 60_000, 60_000, 60_000]
        );
        assert_eq!(
            poll_backoff_ms(90_000, 3),
            90_000,
            "never below the rail's own"
        );
    }
}
