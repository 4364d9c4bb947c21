//! Buy now, pay later, on Malipo's payments, ledger and events.
//!
//! A **checkout** (at a till, or on a hosted page) shows the schedule and
//! collects the deposit through the rail; when the deposit succeeds it
//! creates a **plan** of installments. The worker collects each
//! installment on its due date (a recurring debit), retries per the
//! product's policy, marks late installments overdue and plans delinquent,
//! and defaults a plan after the product's days. Early and extra payments
//! are applied to the oldest installments first.
//!
//! Each change is one transaction with its ledger transfers and events
//! (see `Store::update_plan`). A plan follows its **test clock** when it
//! has one: the clock's time instead of real time, moved by an advance.
//!
//! The ledger, for an `upfront` plan: at completion the platform's
//! receivable is debited the financed amount and the merchant credited it
//! less the collection fee. Installments are collected into the platform's
//! `suspense` account and applied from there: principal to the receivable,
//! the rest (interest, plan fee, inflation, late fees) to `income`. At
//! default the unpaid principal is written off. For `as_collected`
//! (layaway) every collection credits the merchant like any payment.

mod checkouts;
mod clocks;
pub mod objects;
mod plans;
mod rules;

pub use checkouts::{CheckoutChoice, CheckoutError, CreateCheckout};
pub use clocks::TestClockError;
pub use plans::PlanPaymentError;

use malipo_plans::PlanTerms;
use serde::{Deserialize, Serialize};

pub(crate) const CHECKOUT_EXPIRE_JOB: &str = "checkout.expire";
pub(crate) const PLAN_TICK_JOB: &str = "plan.tick";
pub(crate) const TEST_CLOCK_ADVANCE_JOB: &str = "test_clock.advance";

/// The hour (local) at which an installment's automatic collection starts
/// on its due date: a debit at midnight would surprise customers.
pub const COLLECTION_HOUR: u8 = 8;

/// The ledger qualifier of the platform's BNPL accounts.
pub(crate) const LEDGER_QUALIFIER: &str = "bnpl";

/// A plan product as a checkout fixes it and its plan keeps it: the terms
/// and every policy, so a later change of the product changes no plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductSnapshot {
    /// `pos_standard` or `pp_…`.
    pub id: String,
    pub name: String,
    pub terms: PlanTerms,
    /// `upfront` or `as_collected`.
    pub funding: String,
    pub late_fee_minor: i64,
    pub grace_days: i64,
    pub retry_attempts: i64,
    pub retry_interval_hours: i64,
    pub default_after_days: i64,
}

impl ProductSnapshot {
    pub fn is_upfront(&self) -> bool {
        self.funding == "upfront"
    }
}

/// A merchant's credit rules for checkouts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditRules {
    /// Where "one active plan per customer" looks: `merchant` (this
    /// merchant's plans), `platform` (every merchant's) or `none`.
    pub active_plan_scope: String,
    /// Per currency code, minor units.
    pub max_financed_per_plan: std::collections::BTreeMap<String, i64>,
    /// Open plans' financed amounts together, per currency code.
    pub max_financed_per_customer: std::collections::BTreeMap<String, i64>,
    /// E.164 numbers that may not open plans.
    pub blocked_phones: Vec<String>,
}

impl Default for CreditRules {
    fn default() -> Self {
        Self {
            active_plan_scope: "merchant".to_owned(),
            max_financed_per_plan: Default::default(),
            max_financed_per_customer: Default::default(),
            blocked_phones: Vec::new(),
        }
    }
}

/// Why a checkout was declined: stable codes a till can branch on.
pub mod decline {
    pub const ACTIVE_PLAN_EXISTS: &str = "ACTIVE_PLAN_EXISTS";
    pub const CUSTOMER_BLOCKED: &str = "CUSTOMER_BLOCKED";
    pub const PLAN_LIMIT_EXCEEDED: &str = "PLAN_LIMIT_EXCEEDED";
    pub const CUSTOMER_LIMIT_EXCEEDED: &str = "CUSTOMER_LIMIT_EXCEEDED";
    pub const CUSTOMER_DECLINED: &str = "CUSTOMER_DECLINED";
    pub const INSUFFICIENT_FUNDS: &str = "INSUFFICIENT_FUNDS";
    pub const DEPOSIT_FAILED: &str = "DEPOSIT_FAILED";
    pub const CANCELLED_BY_CUSTOMER: &str = "CANCELLED_BY_CUSTOMER";
    pub const RAIL_UNAVAILABLE: &str = "RAIL_UNAVAILABLE";
}

/// What a payment with a purpose is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    Deposit(malipo_core::CheckoutId),
    /// An automatic collection of an installment.
    Installment(malipo_core::PlanId),
    /// An early or extra payment the customer approves.
    PlanPayment(malipo_core::PlanId),
}

impl Purpose {
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let (kind, id) = text.split_once(':')?;
        match kind {
            "checkout" => malipo_core::CheckoutId::parse(id)
                .ok()
                .map(Purpose::Deposit),
            "installment" => malipo_core::PlanId::parse(id)
                .ok()
                .map(Purpose::Installment),
            "plan_payment" => malipo_core::PlanId::parse(id)
                .ok()
                .map(Purpose::PlanPayment),
            _ => None,
        }
    }

    /// What `payment` is for, if anything waits on it.
    pub(crate) fn of(payment: &malipo_store::PaymentRecord) -> Option<Self> {
        payment.purpose.as_deref().and_then(Self::parse)
    }

    pub(crate) fn to_text(self) -> String {
        match self {
            Purpose::Deposit(id) => format!("checkout:{id}"),
            Purpose::Installment(id) => format!("installment:{id}"),
            Purpose::PlanPayment(id) => format!("plan_payment:{id}"),
        }
    }

    pub(crate) fn plan(self) -> Option<malipo_core::PlanId> {
        match self {
            Purpose::Deposit(_) => None,
            Purpose::Installment(id) | Purpose::PlanPayment(id) => Some(id),
        }
    }
}

/// Runs a BNPL job, if `kind` is one: `Ok(Some(at))` to run it again at
/// `at`, `Err` to retry after a backoff. `None`: not a BNPL job.
pub(crate) async fn run_job(
    payments: &crate::Payments,
    kind: &str,
    subject: &str,
    payload: &str,
) -> Option<Result<Option<malipo_core::Timestamp>, String>> {
    let result = match kind {
        malipo_store::PAYMENT_FOLLOW_UP_JOB => follow_up(payments, subject).await,
        CHECKOUT_EXPIRE_JOB => match malipo_core::CheckoutId::parse(subject) {
            Ok(id) => payments
                .expire_checkout(id)
                .await
                .map(|()| None)
                .map_err(|e| e.to_string()),
            Err(_) => Ok(None),
        },
        PLAN_TICK_JOB => match malipo_core::PlanId::parse(subject) {
            Ok(id) => {
                let at = serde_json::from_str::<serde_json::Value>(payload)
                    .ok()
                    .and_then(|payload| payload["at"].as_i64())
                    .map(malipo_core::Timestamp::from_unix_ms);
                payments
                    .tick_plan(id, at)
                    .await
                    .map(|()| None)
                    .map_err(|e| e.to_string())
            }
            Err(_) => Ok(None),
        },
        TEST_CLOCK_ADVANCE_JOB => match malipo_core::TestClockId::parse(subject) {
            Ok(id) => payments
                .run_test_clock_advance(id)
                .await
                .map_err(|e| e.to_string()),
            Err(_) => Ok(None),
        },
        _ => return None,
    };
    Some(result)
}

/// A payment with a purpose ended: apply its outcome to what waits on it.
async fn follow_up(
    payments: &crate::Payments,
    subject: &str,
) -> Result<Option<malipo_core::Timestamp>, String> {
    let Ok(id) = malipo_core::PaymentId::parse(subject) else {
        return Ok(None);
    };
    let Some(payment) = payments
        .store
        .find_payment(id)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    match Purpose::of(&payment) {
        Some(Purpose::Deposit(checkout)) => payments
            .apply_deposit_outcome(&payment, checkout)
            .await
            .map_err(|e| e.to_string())?,
        Some(purpose) => payments
            .apply_plan_payment(&payment, purpose)
            .await
            .map_err(|e| e.to_string())?,
        None => {}
    }
    Ok(None)
}
