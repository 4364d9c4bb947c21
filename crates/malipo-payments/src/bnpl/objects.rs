//! Checkouts, plans, installments and test clocks as the API shows them
//! and as their events keep them.

use malipo_core::{CheckoutId, PaymentId, PlanId, TestClockId, TimeZone, Timestamp};
use malipo_store::{
    CheckoutRecord, InstallmentRecord, NewEvent, PlanPaymentRecord, PlanState, TestClockRecord,
};
use serde::{Deserialize, Serialize};

use super::rules;
use crate::objects::Views;

fn json_or_null(text: Option<&str>) -> serde_json::Value {
    text.and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or(serde_json::Value::Null)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CheckoutOut {
    pub id: CheckoutId,
    #[schema(example = "checkout")]
    pub object: &'static str,
    pub livemode: bool,
    /// `open` (online, waiting for the customer to choose), `pending_approval`
    /// (the deposit prompt is with the customer), `completed`, `declined`, `expired`.
    pub status: String,
    /// `till` (the merchant gave the customer's phone) or `online` (hosted page).
    pub channel: String,
    pub customer_phone: Option<String>,
    pub amount: i64,
    pub currency: String,
    /// The plan products offered.
    pub plan_products: Vec<String>,
    /// The plan product chosen.
    pub plan_product: Option<String>,
    pub apply_inflation: bool,
    pub time_zone: String,
    pub start_date: Option<String>,
    /// The exact schedule (deposit and each installment with its due date),
    /// once a plan product is chosen.
    #[schema(value_type = Option<Object>)]
    pub schedule: serde_json::Value,
    /// The hosted page for online checkouts.
    pub checkout_url: Option<String>,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
    pub deposit_payment: Option<PaymentId>,
    /// The plan a completed checkout created (Tupane's `loan_id`).
    pub plan: Option<PlanId>,
    /// Why it was declined: `ACTIVE_PLAN_EXISTS`, `CUSTOMER_BLOCKED`,
    /// `PLAN_LIMIT_EXCEEDED`, `CUSTOMER_LIMIT_EXCEEDED`, `CUSTOMER_DECLINED`,
    /// `INSUFFICIENT_FUNDS`, `DEPOSIT_FAILED`, `CANCELLED_BY_CUSTOMER`, `RAIL_UNAVAILABLE`.
    pub decline_code: Option<String>,
    pub decline_message: Option<String>,
    pub merchant_reference: Option<String>,
    pub description: String,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    #[schema(value_type = Vec<Object>)]
    pub items: serde_json::Value,
    pub test_clock: Option<TestClockId>,
    pub expires_at: Timestamp,
    pub created: Timestamp,
    pub updated: Timestamp,
    pub completed: Option<Timestamp>,
}

impl Views {
    pub fn checkout_out(&self, checkout: &CheckoutRecord) -> CheckoutOut {
        CheckoutOut {
            id: checkout.id,
            object: "checkout",
            livemode: checkout.mode.is_live(),
            status: checkout.status.clone(),
            channel: checkout.channel.clone(),
            customer_phone: checkout.customer_phone.clone(),
            amount: checkout.amount.amount_minor,
            currency: checkout.amount.currency.code().to_owned(),
            plan_products: serde_json::from_str::<Vec<super::ProductSnapshot>>(
                &checkout.plan_products,
            )
            .unwrap_or_default()
            .into_iter()
            .map(|product| product.id)
            .collect(),
            plan_product: checkout.plan_product.clone(),
            apply_inflation: checkout.apply_inflation,
            time_zone: checkout.time_zone.clone(),
            start_date: checkout.start_date.clone(),
            schedule: json_or_null(checkout.schedule.as_deref()),
            checkout_url: (checkout.channel == "online").then(|| self.checkout_url(checkout.id)),
            success_url: checkout.success_url.clone(),
            cancel_url: checkout.cancel_url.clone(),
            deposit_payment: checkout.deposit_payment_id,
            plan: checkout.plan_id,
            decline_code: checkout.decline_code.clone(),
            decline_message: checkout.decline_message.clone(),
            merchant_reference: checkout.merchant_reference.clone(),
            description: checkout.description.clone(),
            metadata: serde_json::from_str(&checkout.metadata).unwrap_or_default(),
            items: serde_json::from_str(&checkout.items).unwrap_or_default(),
            test_clock: checkout.test_clock_id,
            expires_at: checkout.expires_at,
            created: checkout.created_at,
            updated: checkout.updated_at,
            completed: checkout.completed_at,
        }
    }

    pub(crate) fn checkout_event(&self, checkout: &CheckoutRecord, at: Timestamp) -> NewEvent {
        NewEvent::new(
            checkout.tenant(),
            format!("checkout.{}", checkout.status),
            checkout.id,
            serde_json::to_string(&self.checkout_out(checkout)).expect("a checkout serializes"),
            at,
        )
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InstallmentOut {
    pub number: i64,
    #[schema(example = "2026-02-07")]
    pub due_date: String,
    /// principal + interest + fee + inflation.
    pub amount: i64,
    pub principal: i64,
    pub interest: i64,
    pub fee: i64,
    pub inflation: i64,
    pub late_fee: i64,
    pub amount_paid: i64,
    /// amount + late fee − amount paid.
    pub amount_due: i64,
    /// `scheduled`, `processing`, `paid`, `failed`, `overdue`, `written_off`
    /// (the plan defaulted), `cancelled` (the plan was cancelled).
    pub status: String,
    /// Automatic collection attempts so far.
    pub attempts: i64,
    pub next_attempt_at: Option<Timestamp>,
    pub failure_code: Option<String>,
    pub overdue_at: Option<Timestamp>,
    pub paid_at: Option<Timestamp>,
}

impl From<&InstallmentRecord> for InstallmentOut {
    fn from(i: &InstallmentRecord) -> Self {
        Self {
            number: i.number,
            due_date: i.due_date.clone(),
            amount: i.amount_minor,
            principal: i.principal_minor,
            interest: i.interest_minor,
            fee: i.fee_minor,
            inflation: i.inflation_minor,
            late_fee: i.late_fee_minor,
            amount_paid: i.paid_minor,
            amount_due: if i.status == "written_off" {
                0
            } else {
                i.outstanding_minor()
            },
            status: i.status.clone(),
            attempts: i.attempts,
            next_attempt_at: i.next_attempt_at,
            failure_code: i.failure_code.clone(),
            overdue_at: i.overdue_at,
            paid_at: i.paid_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PlanPaymentOut {
    pub payment: PaymentId,
    pub amount: i64,
    /// What repaid principal; the rest paid interest and fees first.
    pub principal: i64,
    /// `[[installment number, amount], …]`.
    #[schema(value_type = Vec<Vec<i64>>)]
    pub allocation: serde_json::Value,
    pub applied_at: Timestamp,
}

impl From<&PlanPaymentRecord> for PlanPaymentOut {
    fn from(p: &PlanPaymentRecord) -> Self {
        Self {
            payment: p.payment_id,
            amount: p.amount_minor,
            principal: p.principal_minor,
            allocation: serde_json::from_str(&p.allocation).unwrap_or_default(),
            applied_at: p.applied_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NextPaymentOut {
    pub amount: i64,
    pub due_date: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PlanOut {
    pub id: PlanId,
    #[schema(example = "plan")]
    pub object: &'static str,
    pub livemode: bool,
    /// `active`, `delinquent`, `completed`, `defaulted`, `cancelled`.
    pub status: String,
    pub checkout: CheckoutId,
    pub customer_phone: String,
    pub currency: String,
    /// `upfront` (the merchant was paid the financed amount at checkout) or
    /// `as_collected` (the merchant is paid as installments are collected).
    pub funding: String,
    pub plan_product: String,
    pub time_zone: String,
    pub start_date: String,
    /// The price.
    pub amount: i64,
    pub deposit: i64,
    pub financed: i64,
    /// Deposit and installments, before late fees.
    pub total_payable: i64,
    /// Deposit plus everything applied to installments.
    pub amount_paid: i64,
    /// Still owed, late fees included.
    pub amount_remaining: i64,
    pub late_fees: i64,
    /// Received beyond everything owed, kept for a refund.
    pub amount_overpaid: i64,
    pub next_payment: Option<NextPaymentOut>,
    /// Days past the oldest unpaid due date (0 when current).
    pub days_overdue: i64,
    /// `current`, `1_7`, `8_30`, `31_60`, `60_plus`.
    pub delinquency: String,
    pub installments: Vec<InstallmentOut>,
    /// Payments applied, oldest first.
    pub payments: Vec<PlanPaymentOut>,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    pub test_clock: Option<TestClockId>,
    pub created: Timestamp,
    pub updated: Timestamp,
    pub completed: Option<Timestamp>,
}

/// The plan's own calendar date at `now` (its clock's time for a test clock).
fn today(state: &PlanState, now: Timestamp) -> time::Date {
    let zone = TimeZone::parse(&state.plan.time_zone).unwrap_or(TimeZone::UTC);
    zone.date_at(now)
}

fn next_payment(state: &PlanState) -> Option<NextPaymentOut> {
    rules::next_due(state).map(|i| NextPaymentOut {
        amount: i.outstanding_minor(),
        due_date: i.due_date.clone(),
    })
}

pub fn plan_out(state: &PlanState, now: Timestamp) -> PlanOut {
    let plan = &state.plan;
    let today = today(state, now);
    PlanOut {
        id: plan.id,
        object: "plan",
        livemode: plan.mode.is_live(),
        status: plan.status.clone(),
        checkout: plan.checkout_id,
        customer_phone: plan.customer_phone.clone(),
        currency: plan.currency.code().to_owned(),
        funding: plan.funding.clone(),
        plan_product: plan.plan_product.clone(),
        time_zone: plan.time_zone.clone(),
        start_date: plan.start_date.clone(),
        amount: plan.amount_minor,
        deposit: plan.deposit_minor,
        financed: plan.financed_minor,
        total_payable: plan.total_payable_minor,
        amount_paid: plan.deposit_minor + plan.paid_minor,
        amount_remaining: rules::remaining(state),
        late_fees: plan.late_fees_minor,
        amount_overpaid: plan.overpaid_minor,
        next_payment: next_payment(state),
        days_overdue: rules::days_overdue(plan, today),
        delinquency: rules::bucket(plan, today).as_str().to_owned(),
        installments: state
            .installments
            .iter()
            .map(InstallmentOut::from)
            .collect(),
        payments: state.payments.iter().map(PlanPaymentOut::from).collect(),
        metadata: serde_json::from_str(&plan.metadata).unwrap_or_default(),
        test_clock: plan.test_clock_id,
        created: plan.created_at,
        updated: plan.updated_at,
        completed: plan.completed_at,
    }
}

pub(crate) fn plan_event(state: &PlanState, kind: &str, now: Timestamp) -> NewEvent {
    NewEvent::new(
        state.plan.tenant(),
        format!("plan.{kind}"),
        state.plan.id,
        serde_json::to_string(&plan_out(state, now)).expect("a plan serializes"),
        now,
    )
}

/// An installment event: the installment, and where the plan stands
/// (Nunua Sasa's payment confirmation: amount paid, total paid, next
/// payment and its date, completion).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InstallmentEventOut {
    #[schema(example = "installment")]
    pub object: &'static str,
    pub plan: PlanId,
    pub plan_status: String,
    #[serde(flatten)]
    pub installment: InstallmentOut,
    /// The payment this event is about, if any.
    pub payment: Option<PaymentId>,
    /// What that payment paid.
    pub payment_amount: Option<i64>,
    /// Deposit plus everything applied to installments.
    pub total_paid: i64,
    pub amount_remaining: i64,
    pub next_payment: Option<NextPaymentOut>,
    /// Whether the plan is paid in full.
    pub plan_completed: bool,
    pub customer_phone: String,
    pub currency: String,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
}

pub(crate) fn installment_event(
    state: &PlanState,
    number: i64,
    kind: &str,
    payment: Option<(PaymentId, i64)>,
    now: Timestamp,
) -> Option<NewEvent> {
    let installment = state.installments.iter().find(|i| i.number == number)?;
    let out = InstallmentEventOut {
        object: "installment",
        plan: state.plan.id,
        plan_status: state.plan.status.clone(),
        installment: InstallmentOut::from(installment),
        payment: payment.map(|(id, _)| id),
        payment_amount: payment.map(|(_, amount)| amount),
        total_paid: state.plan.deposit_minor + state.plan.paid_minor,
        amount_remaining: rules::remaining(state),
        next_payment: next_payment(state),
        plan_completed: state.plan.status == "completed",
        customer_phone: state.plan.customer_phone.clone(),
        currency: state.plan.currency.code().to_owned(),
        metadata: serde_json::from_str(&state.plan.metadata).unwrap_or_default(),
    };
    Some(NewEvent::new(
        state.plan.tenant(),
        format!("installment.{kind}"),
        format!("{}#{}", state.plan.id, number),
        serde_json::to_string(&out).expect("an installment serializes"),
        now,
    ))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TestClockOut {
    pub id: TestClockId,
    #[schema(example = "test_clock")]
    pub object: &'static str,
    pub livemode: bool,
    pub name: String,
    /// The clock's time: what plans attached to it take as now.
    pub frozen_time: Timestamp,
    /// Where an advance is going (equal to `frozen_time` when ready).
    pub target_time: Timestamp,
    /// `ready` or `advancing`.
    pub status: String,
    pub created: Timestamp,
}

impl From<&TestClockRecord> for TestClockOut {
    fn from(clock: &TestClockRecord) -> Self {
        Self {
            id: clock.id,
            object: "test_clock",
            livemode: false,
            name: clock.name.clone(),
            frozen_time: clock.frozen_time,
            target_time: clock.target_time,
            status: clock.status.clone(),
            created: clock.created_at,
        }
    }
}

pub(crate) fn test_clock_event(clock: &TestClockRecord, at: Timestamp) -> NewEvent {
    NewEvent::new(
        malipo_store::Tenant {
            merchant_id: clock.merchant_id,
            mode: malipo_core::Mode::Test,
        },
        format!("test_clock.{}", clock.status),
        clock.id,
        serde_json::to_string(&TestClockOut::from(clock)).expect("a test clock serializes"),
        at,
    )
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScheduledInstallmentOut {
    pub number: u32,
    #[schema(example = "2026-02-07")]
    pub due_date: String,
    /// principal + interest + fee + inflation, minor units.
    pub amount: i64,
    pub principal: i64,
    pub interest: i64,
    pub fee: i64,
    pub inflation: i64,
}

/// An exact schedule: `deposit` + Σ `installments[].amount` = `total_payable`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScheduleOut {
    pub currency: String,
    /// The price.
    pub amount: i64,
    pub deposit: i64,
    /// `amount` − `deposit`.
    pub financed: i64,
    pub interest: i64,
    pub fee: i64,
    pub inflation: i64,
    pub total_payable: i64,
    pub installments: Vec<ScheduledInstallmentOut>,
}

impl From<&malipo_plans::Schedule> for ScheduleOut {
    fn from(schedule: &malipo_plans::Schedule) -> Self {
        Self {
            currency: schedule.currency.code().to_owned(),
            amount: schedule.total_minor,
            deposit: schedule.deposit_minor,
            financed: schedule.financed_minor,
            interest: schedule.interest_minor,
            fee: schedule.fee_minor,
            inflation: schedule.inflation_minor,
            total_payable: schedule.total_payable_minor,
            installments: schedule
                .installments
                .iter()
                .map(|i| ScheduledInstallmentOut {
                    number: i.number,
                    due_date: i.due_date.to_string(),
                    amount: i.amount_minor,
                    principal: i.principal_minor,
                    interest: i.interest_minor,
                    fee: i.fee_minor,
                    inflation: i.inflation_minor,
                })
                .collect(),
        }
    }
}
