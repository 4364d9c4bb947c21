//! A plan's rules as changes of its state in memory: what is due, late
//! or lost at a given time, and how a payment is applied. Called inside
//! `Store::update_plan`, so they read and change one consistent state.

use malipo_core::{PaymentId, TimeZone, Timestamp};
use malipo_plans::{DelinquencyBucket, allocate_payment, calendar::days_between};
use malipo_store::{InstallmentRecord, PlanPaymentRecord, PlanRecord, PlanState};
use time::{Date, Duration};

use super::ProductSnapshot;

/// How often a plan with a collection in flight is looked at again, in
/// case the collection was lost to a crash before it reached the rail.
const IN_FLIGHT_RECHECK_MS: i64 = 10 * 60 * 1_000;
const HOUR_MS: i64 = 3_600_000;

/// Something that happened to a plan, for the events to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Happening {
    InstallmentOverdue(i64),
    /// Number, failure code.
    InstallmentFailed(i64, String),
    /// Installments a payment paid off (or, if none, the one it paid part of).
    PaymentApplied {
        payment_id: PaymentId,
        amount_minor: i64,
        paid_off: Vec<i64>,
        partly: Option<i64>,
    },
    PlanDelinquent,
    PlanReinstated,
    PlanCompleted,
    /// The principal written off.
    PlanDefaulted(i64),
}

/// What a tick decided.
#[derive(Debug, Default)]
pub(crate) struct TickOutcome {
    pub happenings: Vec<Happening>,
    /// Installments to collect now: (number, attempt). Those already in
    /// flight are listed again, to make sure their payment exists.
    pub collect: Vec<(i64, i64)>,
}

pub(crate) fn parse_date(text: &str) -> Option<Date> {
    Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()
}

fn is_open(plan: &PlanRecord) -> bool {
    matches!(plan.status.as_str(), "active" | "delinquent")
}

fn unpaid(installment: &InstallmentRecord) -> bool {
    installment.outstanding_minor() > 0
        && !matches!(installment.status.as_str(), "written_off" | "cancelled")
}

/// When an unpaid installment becomes overdue: the start of the day after
/// its grace days, local.
fn overdue_at(
    installment: &InstallmentRecord,
    product: &ProductSnapshot,
    zone: TimeZone,
) -> Timestamp {
    let due = parse_date(&installment.due_date).unwrap_or(Date::MIN);
    let day = due
        .checked_add(Duration::days(product.grace_days + 1))
        .unwrap_or(Date::MAX);
    zone.at_hour(day, 0)
}

fn default_at(plan: &PlanRecord, product: &ProductSnapshot, zone: TimeZone) -> Option<Timestamp> {
    let since = parse_date(plan.overdue_since.as_deref()?)?;
    let day = since
        .checked_add(Duration::days(product.default_after_days))
        .unwrap_or(Date::MAX);
    Some(zone.at_hour(day, 0))
}

/// When the installment's next automatic attempt may start, if it has one.
fn next_attempt(installment: &InstallmentRecord, product: &ProductSnapshot) -> Option<Timestamp> {
    if !unpaid(installment)
        || installment.status == "processing"
        || installment.attempts >= product.retry_attempts
    {
        return None;
    }
    Some(installment.next_attempt_at.unwrap_or(installment.due_at))
}

/// How many days the plan is past due (0 when current), at `today`.
pub(crate) fn days_overdue(plan: &PlanRecord, today: Date) -> i64 {
    plan.overdue_since
        .as_deref()
        .and_then(parse_date)
        .map_or(0, |since| days_between(since, today).max(0))
}

pub(crate) fn bucket(plan: &PlanRecord, today: Date) -> DelinquencyBucket {
    DelinquencyBucket::for_days_overdue(days_overdue(plan, today))
}

/// Principal repaid so far, from the payments applied.
fn principal_repaid(state: &PlanState) -> i64 {
    state.payments.iter().map(|p| p.principal_minor).sum()
}

/// The principal still owed: what a default writes off.
pub(crate) fn principal_outstanding(state: &PlanState, new: &[PlanPaymentRecord]) -> i64 {
    let repaid: i64 = principal_repaid(state) + new.iter().map(|p| p.principal_minor).sum::<i64>();
    (state.plan.financed_minor - repaid).max(0)
}

/// Sets the plan's delinquency from its overdue installments.
fn refresh_delinquency(state: &mut PlanState, happenings: &mut Vec<Happening>) {
    let oldest = state
        .installments
        .iter()
        .filter(|i| unpaid(i) && i.overdue_at.is_some())
        .map(|i| i.due_date.clone())
        .min();
    state.plan.overdue_since = oldest.clone();
    match (state.plan.status.as_str(), oldest) {
        ("active", Some(_)) => {
            state.plan.status = "delinquent".to_owned();
            happenings.push(Happening::PlanDelinquent);
        }
        ("delinquent", None) => {
            state.plan.status = "active".to_owned();
            happenings.push(Happening::PlanReinstated);
        }
        _ => {}
    }
}

/// When the plan next needs the worker, from its state.
pub(crate) fn next_tick(
    state: &PlanState,
    product: &ProductSnapshot,
    zone: TimeZone,
    now: Timestamp,
) -> Option<Timestamp> {
    if !is_open(&state.plan) {
        return None;
    }
    let mut next: Option<Timestamp> = None;
    let mut consider = |at: Timestamp| next = Some(next.map_or(at, |n| n.min(at)));
    for installment in state.installments.iter().filter(|i| unpaid(i)) {
        if installment.status == "processing" {
            consider(now.plus_ms(IN_FLIGHT_RECHECK_MS));
            continue;
        }
        if let Some(at) = next_attempt(installment, product) {
            consider(at);
        }
        if installment.overdue_at.is_none() {
            consider(overdue_at(installment, product, zone));
        }
    }
    if let Some(at) = default_at(&state.plan, product, zone) {
        consider(at);
    }
    next
}

/// What is due at `now`: overdue marks, late fees, delinquency, default,
/// and the next automatic collection (one at a time per plan, oldest first).
pub(crate) fn tick(
    state: &mut PlanState,
    product: &ProductSnapshot,
    zone: TimeZone,
    now: Timestamp,
) -> TickOutcome {
    let mut outcome = TickOutcome::default();
    if !is_open(&state.plan) {
        return outcome;
    }
    let mut late_fees = 0;
    for installment in state.installments.iter_mut() {
        if !unpaid(installment)
            || installment.status == "processing"
            || installment.overdue_at.is_some()
            || now < overdue_at(installment, product, zone)
        {
            continue;
        }
        installment.status = "overdue".to_owned();
        installment.overdue_at = Some(now);
        if product.late_fee_minor > 0 && installment.late_fee_minor == 0 {
            installment.late_fee_minor = product.late_fee_minor;
            late_fees += product.late_fee_minor;
        }
        outcome
            .happenings
            .push(Happening::InstallmentOverdue(installment.number));
    }
    state.plan.late_fees_minor += late_fees;
    refresh_delinquency(state, &mut outcome.happenings);

    let in_flight = state.installments.iter().any(|i| i.status == "processing");
    if state.plan.status == "delinquent"
        && !in_flight
        && default_at(&state.plan, product, zone).is_some_and(|at| now >= at)
    {
        let written_off = principal_outstanding(state, &[]);
        for installment in state.installments.iter_mut().filter(|i| unpaid(i)) {
            installment.status = "written_off".to_owned();
            installment.next_attempt_at = None;
        }
        state.plan.status = "defaulted".to_owned();
        state.plan.completed_at = Some(now);
        state.plan.next_tick_at = None;
        outcome
            .happenings
            .push(Happening::PlanDefaulted(written_off));
        return outcome;
    }

    for installment in &state.installments {
        if installment.status == "processing" {
            outcome
                .collect
                .push((installment.number, installment.attempts));
        }
    }
    if !in_flight
        && let Some(installment) = state
            .installments
            .iter_mut()
            .find(|i| next_attempt(i, product).is_some_and(|at| at <= now))
    {
        installment.status = "processing".to_owned();
        installment.attempts += 1;
        installment.next_attempt_at = None;
        outcome
            .collect
            .push((installment.number, installment.attempts));
    }
    state.plan.next_tick_at = next_tick(state, product, zone, now);
    outcome
}

/// The status of an installment no longer in flight.
fn settled_status(installment: &InstallmentRecord) -> &'static str {
    if !unpaid(installment) {
        "paid"
    } else if installment.overdue_at.is_some() {
        "overdue"
    } else if installment.attempts > 0 {
        "failed"
    } else {
        "scheduled"
    }
}

/// An automatic collection of installment `number` (attempt `attempt`)
/// failed with `code`: retry later, or wait for the customer.
pub(crate) fn collection_failed(
    state: &mut PlanState,
    product: &ProductSnapshot,
    zone: TimeZone,
    number: i64,
    attempt: i64,
    code: &str,
    now: Timestamp,
) -> Vec<Happening> {
    let mut happenings = Vec::new();
    let Some(installment) = state
        .installments
        .iter_mut()
        .find(|i| i.number == number && i.attempts == attempt && i.status == "processing")
    else {
        return happenings;
    };
    installment.failure_code = Some(code.to_owned());
    installment.status = settled_status(installment).to_owned();
    if installment.status == "paid" {
        // Paid meanwhile by another payment.
        return happenings;
    }
    installment.next_attempt_at = (installment.attempts < product.retry_attempts)
        .then(|| now.plus_ms(product.retry_interval_hours * HOUR_MS));
    happenings.push(Happening::InstallmentFailed(number, code.to_owned()));
    state.plan.next_tick_at = next_tick(state, product, zone, now);
    happenings
}

/// Applies a collected payment to the oldest installments first. Returns
/// the record of what it paid (for the history and the ledger) and what
/// happened, or `None` if it had been applied already.
pub(crate) fn apply_payment(
    state: &mut PlanState,
    product: &ProductSnapshot,
    zone: TimeZone,
    payment_id: PaymentId,
    amount_minor: i64,
    in_flight: Option<(i64, i64)>,
    now: Timestamp,
) -> Option<(PlanPaymentRecord, Vec<Happening>)> {
    if state.payments.iter().any(|p| p.payment_id == payment_id) {
        return None;
    }
    let mut happenings = Vec::new();
    let outstanding: Vec<i64> = state
        .installments
        .iter()
        .map(|i| if unpaid(i) { i.outstanding_minor() } else { 0 })
        .collect();
    let allocation = allocate_payment(&outstanding, amount_minor);
    let mut principal = 0;
    let mut parts = Vec::new();
    let mut paid_off = Vec::new();
    let mut partly = None;
    for (installment, applied) in state
        .installments
        .iter_mut()
        .zip(allocation.per_installment)
    {
        if applied == 0 {
            continue;
        }
        // Interest, fees and late fees are paid before principal.
        let charges =
            installment.amount_minor - installment.principal_minor + installment.late_fee_minor;
        let principal_paid = |paid: i64| (paid - charges).clamp(0, installment.principal_minor);
        let before = principal_paid(installment.paid_minor);
        installment.paid_minor += applied;
        principal += principal_paid(installment.paid_minor) - before;
        parts.push((installment.number, applied));
        if installment.outstanding_minor() == 0 {
            installment.status = "paid".to_owned();
            installment.paid_at = Some(now);
            installment.next_attempt_at = None;
            paid_off.push(installment.number);
        } else {
            partly = Some(installment.number);
        }
    }
    // The collection in flight is over, whatever it paid.
    if let Some((number, attempt)) = in_flight
        && let Some(installment) = state
            .installments
            .iter_mut()
            .find(|i| i.number == number && i.attempts == attempt && i.status == "processing")
    {
        installment.status = settled_status(installment).to_owned();
    }
    let applied: i64 = parts.iter().map(|(_, amount)| amount).sum();
    state.plan.paid_minor += applied;
    state.plan.overpaid_minor += allocation.unapplied_minor.max(0);
    happenings.push(Happening::PaymentApplied {
        payment_id,
        amount_minor,
        paid_off,
        partly,
    });
    refresh_delinquency(state, &mut happenings);
    if state.installments.iter().all(|i| !unpaid(i)) && state.plan.status != "defaulted" {
        state.plan.status = "completed".to_owned();
        state.plan.completed_at = Some(now);
        state.plan.overdue_since = None;
        happenings.retain(|h| *h != Happening::PlanReinstated);
        happenings.push(Happening::PlanCompleted);
    }
    state.plan.next_tick_at = next_tick(state, product, zone, now);
    let record = PlanPaymentRecord {
        payment_id,
        plan_id: state.plan.id,
        amount_minor,
        principal_minor: principal,
        allocation: serde_json::to_string(&parts).expect("pairs of integers serialize"),
        applied_at: now,
    };
    Some((record, happenings))
}

/// The merchant cancels an open plan with nothing in flight: nothing more
/// is collected. Returns the principal still owed, or `None` if it cannot.
pub(crate) fn cancel(state: &mut PlanState, now: Timestamp) -> Option<i64> {
    if !is_open(&state.plan) || state.installments.iter().any(|i| i.status == "processing") {
        return None;
    }
    let outstanding = principal_outstanding(state, &[]);
    for installment in state.installments.iter_mut().filter(|i| unpaid(i)) {
        installment.status = "cancelled".to_owned();
        installment.next_attempt_at = None;
    }
    state.plan.status = "cancelled".to_owned();
    state.plan.overdue_since = None;
    state.plan.next_tick_at = None;
    state.plan.completed_at = Some(now);
    state.plan.updated_at = now;
    Some(outstanding)
}

/// What the customer still owes, late fees included.
pub(crate) fn remaining(state: &PlanState) -> i64 {
    state
        .installments
        .iter()
        .filter(|i| unpaid(i))
        .map(InstallmentRecord::outstanding_minor)
        .sum()
}

/// The next installment to pay: the oldest unpaid one.
pub(crate) fn next_due(state: &PlanState) -> Option<&InstallmentRecord> {
    state.installments.iter().find(|i| unpaid(i))
}
