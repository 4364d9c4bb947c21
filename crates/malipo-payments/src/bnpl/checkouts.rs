//! Checkouts: the schedule shown, the credit rules, the deposit collected
//! through the rail, and the plan created when it succeeds.

use malipo_core::{
    CheckoutId, Direction, Money, PaymentStatus, Phone, PlanId, TestClockId, TimeZone, Timestamp,
};
use malipo_ledger::{AccountKind, AccountSpec, NewEntry, NewTransfer};
use malipo_plans::quote;
use malipo_store::{
    CheckoutRecord, CreateCheckoutOutcome, CreatePaymentOutcome, FeeContext, InstallmentRecord,
    NewJob, PaymentRecord, PlanEffects, PlanRecord, PlanState, PlanWriteError, StoreError, Tenant,
};

use super::objects::{ScheduleOut, plan_event};
use super::plans::zone_of;
use super::rules::{self, parse_date};
use super::{CHECKOUT_EXPIRE_JOB, COLLECTION_HOUR, CreditRules, ProductSnapshot, Purpose, decline};
use crate::Payments;
use crate::collections::{CreatePayment, FeeMode, PaymentError, sha256_hex};

/// How long a till checkout waits for the customer's approval (Tupane: 90 s).
pub const TILL_EXPIRY_MS: i64 = 90_000;
/// How long an online checkout's page stays open for the customer.
pub const ONLINE_EXPIRY_MS: i64 = 30 * 60 * 1_000;

#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error("no such checkout")]
    NotFound,
    #[error("{param}: {message}")]
    Invalid {
        param: &'static str,
        message: String,
    },
    #[error("the checkout is {0}, which does not allow this")]
    WrongState(String),
    #[error("merchant_reference is already used by {0} with other parameters")]
    ReferenceConflict(CheckoutId),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the ledger refused the transfer: {0}")]
    Ledger(malipo_ledger::LedgerError),
}

impl From<PlanWriteError> for CheckoutError {
    fn from(error: PlanWriteError) -> Self {
        match error {
            PlanWriteError::NotFound => CheckoutError::NotFound,
            PlanWriteError::Refused(error) => CheckoutError::Ledger(error),
            PlanWriteError::Store(error) => CheckoutError::Store(error),
        }
    }
}

/// A checked create request.
#[derive(Debug, Clone)]
pub struct CreateCheckout {
    pub amount: Money,
    /// At a till: the customer's phone, and the deposit prompt goes at once.
    /// Without: an online checkout, on its hosted page.
    pub phone: Option<Phone>,
    /// The products offered; the first is the till's (and the page's default).
    pub products: Vec<ProductSnapshot>,
    pub apply_inflation: bool,
    pub time_zone: TimeZone,
    pub merchant_reference: Option<String>,
    pub description: String,
    /// JSON object, echoed in every event of the checkout and its plan.
    pub metadata: String,
    /// JSON array.
    pub items: String,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
    pub test_clock: Option<TestClockId>,
    pub expires_in_ms: Option<i64>,
}

/// The customer's choice on the hosted page.
#[derive(Debug, Clone)]
pub struct CheckoutChoice {
    pub plan_product: String,
    pub phone: Phone,
    pub apply_inflation: bool,
}

fn fingerprint(request: &CreateCheckout) -> String {
    let products: Vec<&str> = request.products.iter().map(|p| p.id.as_str()).collect();
    let text = format!(
        "{}|{}|{}|{}|{}|{}|{}|{}",
        request.amount.amount_minor,
        request.amount.currency,
        request
            .phone
            .as_ref()
            .map(Phone::as_str)
            .unwrap_or_default(),
        products.join(","),
        request.apply_inflation,
        request.description,
        request.metadata,
        request.items,
    );
    sha256_hex(&text)
}

/// The schedule of `product` for a checkout's price, from `start`.
pub(crate) fn schedule_for(
    product: &ProductSnapshot,
    amount: Money,
    apply_inflation: bool,
    start: time::Date,
) -> Result<ScheduleOut, CheckoutError> {
    let mut terms = product.terms;
    if !apply_inflation {
        terms.inflation = None;
    }
    let schedule = quote(&terms, amount, start).map_err(|error| CheckoutError::Invalid {
        param: "amount",
        message: format!("the plan product {} cannot finance it: {error}", product.id),
    })?;
    Ok(ScheduleOut::from(&schedule))
}

fn decline_for_payment(payment: &PaymentRecord) -> (&'static str, String) {
    let message = payment
        .failure_message
        .clone()
        .unwrap_or_else(|| format!("the deposit payment {}", payment.status));
    let code = match (payment.status, payment.failure_code.as_deref()) {
        (PaymentStatus::Cancelled, _) => decline::CANCELLED_BY_CUSTOMER,
        (_, Some("declined")) => decline::CUSTOMER_DECLINED,
        (_, Some("insufficient_funds")) => decline::INSUFFICIENT_FUNDS,
        _ => decline::DEPOSIT_FAILED,
    };
    (code, message)
}

impl Payments {
    /// Now for a new checkout: its test clock's time, if it has one.
    async fn checkout_now(
        &self,
        tenant: Tenant,
        clock: Option<TestClockId>,
    ) -> Result<Timestamp, CheckoutError> {
        let Some(id) = clock else {
            return Ok(self.clock.now());
        };
        match self.store.find_test_clock(id).await? {
            Some(clock) if clock.merchant_id == tenant.merchant_id && !tenant.mode.is_live() => {
                Ok(clock.frozen_time)
            }
            _ => Err(CheckoutError::Invalid {
                param: "test_clock",
                message: format!("no test clock {id} in test mode"),
            }),
        }
    }

    /// The merchant's credit rules (the defaults until it sets its own).
    async fn merchant_rules(&self, tenant: Tenant) -> Result<CreditRules, StoreError> {
        Ok(self
            .store
            .credit_rules(tenant)
            .await?
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default())
    }

    /// Applies the operator's credit rules, then the merchant's; `Some`
    /// says why not.
    async fn credit_decision(
        &self,
        tenant: Tenant,
        merchant: &CreditRules,
        phone: &Phone,
        schedule: &ScheduleOut,
        currency: malipo_core::Currency,
    ) -> Result<Option<(&'static str, String)>, StoreError> {
        let platform = &self.config.platform_credit_rules;
        for (rules, whose) in [(platform, None), (merchant, Some(tenant.merchant_id))] {
            if let Some(decline) = self
                .rules_decision(rules, whose, tenant, phone, schedule, currency)
                .await?
            {
                return Ok(Some(decline));
            }
        }
        Ok(None)
    }

    /// Whose open plans "one open plan per customer" counts, if the
    /// operator's or the merchant's rules ask for it: every merchant's
    /// (`Some(None)`) or this merchant's.
    fn one_open_plan_scope(
        &self,
        tenant: Tenant,
        merchant: &CreditRules,
    ) -> Option<Option<malipo_core::MerchantId>> {
        if self.config.platform_credit_rules.active_plan_scope == "platform" {
            return Some(None);
        }
        match merchant.active_plan_scope.as_str() {
            "platform" => Some(None),
            "merchant" => Some(Some(tenant.merchant_id)),
            _ => None,
        }
    }

    /// One set of rules: the platform's (`whose` is `None`: limits count
    /// every merchant's plans) or a merchant's.
    async fn rules_decision(
        &self,
        rules: &CreditRules,
        whose: Option<malipo_core::MerchantId>,
        tenant: Tenant,
        phone: &Phone,
        schedule: &ScheduleOut,
        currency: malipo_core::Currency,
    ) -> Result<Option<(&'static str, String)>, StoreError> {
        if rules.blocked_phones.iter().any(|p| p == phone.as_str()) {
            return Ok(Some((
                decline::CUSTOMER_BLOCKED,
                "this customer may not open plans".to_owned(),
            )));
        }
        if let Some(max) = rules.max_financed_per_plan.get(currency.code())
            && schedule.financed > *max
        {
            return Ok(Some((
                decline::PLAN_LIMIT_EXCEEDED,
                format!(
                    "the financed amount {} is above the limit of {max} per plan",
                    schedule.financed
                ),
            )));
        }
        let limit = rules.max_financed_per_customer.get(currency.code());
        if rules.active_plan_scope == "none" && limit.is_none() {
            return Ok(None);
        }
        // A merchant's `platform` scope counts every merchant's plans too.
        let scope = match rules.active_plan_scope.as_str() {
            "platform" => None,
            _ => whose,
        };
        let exposure = self
            .store
            .customer_exposure(tenant.mode, phone.as_str(), scope, currency)
            .await?;
        if rules.active_plan_scope != "none" && exposure.open_plans > 0 {
            return Ok(Some((
                decline::ACTIVE_PLAN_EXISTS,
                "the customer already has an active plan or a checkout awaiting approval"
                    .to_owned(),
            )));
        }
        if let Some(max) = limit
            && exposure.financed_minor + schedule.financed > *max
        {
            return Ok(Some((
                decline::CUSTOMER_LIMIT_EXCEEDED,
                format!(
                    "the customer's open plans would finance {} with this one, above the limit of {max}",
                    exposure.financed_minor + schedule.financed
                ),
            )));
        }
        Ok(None)
    }

    /// Creates a checkout. At a till (a phone given) it answers with the
    /// schedule at once and pushes the deposit prompt; online it waits on
    /// its hosted page. Returns the checkout and whether it is new.
    pub async fn create_checkout(
        &self,
        tenant: Tenant,
        request: CreateCheckout,
    ) -> Result<(CheckoutRecord, bool), CheckoutError> {
        let real_now = self.clock.now();
        let now = self.checkout_now(tenant, request.test_clock).await?;
        let start = request.time_zone.date_at(now);
        let id = CheckoutId::generate();
        let till = request.phone.is_some();
        let mut checkout = CheckoutRecord {
            id,
            merchant_id: tenant.merchant_id,
            mode: tenant.mode,
            status: "open".to_owned(),
            channel: if till { "till" } else { "online" }.to_owned(),
            customer_phone: request.phone.as_ref().map(ToString::to_string),
            amount: request.amount,
            plan_products: serde_json::to_string(&request.products).expect("products serialize"),
            plan_product: None,
            product: None,
            apply_inflation: request.apply_inflation,
            time_zone: request.time_zone.name().to_owned(),
            start_date: Some(start.to_string()),
            schedule: None,
            merchant_reference: request.merchant_reference.clone(),
            request_fingerprint: fingerprint(&request),
            description: request.description.clone(),
            metadata: request.metadata.clone(),
            items: request.items.clone(),
            success_url: request.success_url.clone(),
            cancel_url: request.cancel_url.clone(),
            deposit_payment_id: None,
            plan_id: None,
            decline_code: None,
            decline_message: None,
            test_clock_id: request.test_clock,
            expires_at: real_now.plus_ms(request.expires_in_ms.unwrap_or(if till {
                TILL_EXPIRY_MS
            } else {
                ONLINE_EXPIRY_MS
            })),
            created_at: real_now,
            updated_at: real_now,
            completed_at: None,
        };
        // Every offered product must finance this price.
        let mut schedules = Vec::with_capacity(request.products.len());
        for product in &request.products {
            schedules.push(schedule_for(
                product,
                request.amount,
                request.apply_inflation,
                start,
            )?);
        }
        let mut events = Vec::new();
        let mut one_open_plan = None;
        if let Some(phone) = &request.phone {
            let product = &request.products[0];
            let schedule = &schedules[0];
            checkout.status = "pending_approval".to_owned();
            checkout.plan_product = Some(product.id.clone());
            checkout.product = Some(serde_json::to_string(product).expect("a product serializes"));
            checkout.schedule =
                Some(serde_json::to_string(schedule).expect("a schedule serializes"));
            let merchant_rules = self.merchant_rules(tenant).await?;
            one_open_plan = self.one_open_plan_scope(tenant, &merchant_rules);
            if let Some((code, message)) = self
                .credit_decision(
                    tenant,
                    &merchant_rules,
                    phone,
                    schedule,
                    request.amount.currency,
                )
                .await?
            {
                checkout.status = "declined".to_owned();
                checkout.decline_code = Some(code.to_owned());
                checkout.decline_message = Some(message);
                checkout.completed_at = Some(real_now);
                events.push(self.views.checkout_event(&checkout, real_now));
            }
        }
        let jobs = if checkout.status == "declined" {
            Vec::new()
        } else {
            vec![NewJob::new(CHECKOUT_EXPIRE_JOB, id, checkout.expires_at)]
        };
        if checkout.status != "pending_approval" {
            one_open_plan = None;
        }
        let mut outcome = self
            .store
            .create_checkout(&checkout, &jobs, &events, one_open_plan)
            .await?;
        if outcome == CreateCheckoutOutcome::ActivePlanExists {
            // Another checkout of this customer got in between the rules
            // and the insert: this one is declined, as the rules say.
            checkout.status = "declined".to_owned();
            checkout.decline_code = Some(decline::ACTIVE_PLAN_EXISTS.to_owned());
            checkout.decline_message = Some(
                "the customer already has an active plan or a checkout awaiting approval"
                    .to_owned(),
            );
            checkout.completed_at = Some(real_now);
            let events = [self.views.checkout_event(&checkout, real_now)];
            outcome = self
                .store
                .create_checkout(&checkout, &[], &events, None)
                .await?;
        }
        match outcome {
            CreateCheckoutOutcome::Created(_) => {}
            CreateCheckoutOutcome::Existing(existing) => return Ok((existing, false)),
            CreateCheckoutOutcome::ReferenceConflict(existing) => {
                return Err(CheckoutError::ReferenceConflict(existing.id));
            }
            // Not asked for on a declined checkout: nothing was stored.
            CreateCheckoutOutcome::ActivePlanExists => return Ok((checkout, true)),
        }
        tracing::info!(checkout_id = %id, status = %checkout.status, "checkout created");
        if checkout.status == "pending_approval" {
            checkout = self.start_deposit(checkout).await?;
        }
        Ok((checkout, true))
    }

    /// The products an online checkout offers, each with its schedule.
    pub fn checkout_options(
        &self,
        checkout: &CheckoutRecord,
        apply_inflation: bool,
    ) -> Vec<(ProductSnapshot, Option<ScheduleOut>)> {
        let products: Vec<ProductSnapshot> =
            serde_json::from_str(&checkout.plan_products).unwrap_or_default();
        let start = checkout
            .start_date
            .as_deref()
            .and_then(parse_date)
            .unwrap_or_else(|| zone_of(&checkout.time_zone).date_at(checkout.created_at));
        products
            .into_iter()
            .map(|product| {
                let schedule = schedule_for(&product, checkout.amount, apply_inflation, start).ok();
                (product, schedule)
            })
            .collect()
    }

    /// The customer chose a plan on the hosted page and gave their phone:
    /// check the rules and push the deposit prompt.
    pub async fn choose_checkout_plan(
        &self,
        id: CheckoutId,
        choice: CheckoutChoice,
    ) -> Result<CheckoutRecord, CheckoutError> {
        let mut checkout = self.load_checkout(id).await?;
        let now = self.clock.now();
        if checkout.status != "open" || now > checkout.expires_at {
            return Err(CheckoutError::WrongState(checkout.status));
        }
        if choice.phone.country.currency != checkout.amount.currency {
            return Err(CheckoutError::Invalid {
                param: "phone",
                message: format!(
                    "a {} number cannot pay in {}",
                    choice.phone.country.code, checkout.amount.currency
                ),
            });
        }
        let options = self.checkout_options(&checkout, choice.apply_inflation);
        let Some((product, Some(schedule))) = options
            .into_iter()
            .find(|(product, _)| product.id == choice.plan_product)
        else {
            return Err(CheckoutError::Invalid {
                param: "plan_product",
                message: "choose one of the plans offered".to_owned(),
            });
        };
        checkout.customer_phone = Some(choice.phone.to_string());
        checkout.apply_inflation = choice.apply_inflation;
        checkout.plan_product = Some(product.id.clone());
        checkout.product = Some(serde_json::to_string(&product).expect("a product serializes"));
        checkout.schedule = Some(serde_json::to_string(&schedule).expect("a schedule serializes"));
        checkout.updated_at = now;
        let mut effects = PlanEffects::default();
        let merchant_rules = self.merchant_rules(checkout.tenant()).await?;
        if let Some((code, message)) = self
            .credit_decision(
                checkout.tenant(),
                &merchant_rules,
                &choice.phone,
                &schedule,
                checkout.amount.currency,
            )
            .await?
        {
            checkout.status = "declined".to_owned();
            checkout.decline_code = Some(code.to_owned());
            checkout.decline_message = Some(message);
            checkout.completed_at = Some(now);
            effects
                .events
                .push(self.views.checkout_event(&checkout, now));
        } else {
            checkout.status = "pending_approval".to_owned();
            checkout.expires_at = now.plus_ms(self.config.push_expiry_ms);
            effects
                .jobs
                .push(NewJob::new(CHECKOUT_EXPIRE_JOB, id, checkout.expires_at));
        }
        let Some(saved) = self
            .store
            .save_checkout(&checkout, &["open"], None, &effects)
            .await?
        else {
            return Err(CheckoutError::WrongState(self.checkout_status(id).await?));
        };
        if saved.status == "pending_approval" {
            return self.start_deposit(saved).await;
        }
        Ok(saved)
    }

    /// The customer left the hosted page without choosing.
    pub async fn cancel_open_checkout(
        &self,
        id: CheckoutId,
    ) -> Result<CheckoutRecord, CheckoutError> {
        let mut checkout = self.load_checkout(id).await?;
        let now = self.clock.now();
        checkout.status = "declined".to_owned();
        checkout.decline_code = Some(decline::CANCELLED_BY_CUSTOMER.to_owned());
        checkout.decline_message = Some("the customer cancelled on the checkout page".to_owned());
        checkout.updated_at = now;
        checkout.completed_at = Some(now);
        let effects = PlanEffects {
            events: vec![self.views.checkout_event(&checkout, now)],
            ..PlanEffects::default()
        };
        match self
            .store
            .save_checkout(&checkout, &["open"], None, &effects)
            .await?
        {
            Some(saved) => Ok(saved),
            None => Err(CheckoutError::WrongState(self.checkout_status(id).await?)),
        }
    }

    async fn load_checkout(&self, id: CheckoutId) -> Result<CheckoutRecord, CheckoutError> {
        self.store
            .find_checkout_by_id(id)
            .await?
            .ok_or(CheckoutError::NotFound)
    }

    async fn checkout_status(&self, id: CheckoutId) -> Result<String, CheckoutError> {
        Ok(self.load_checkout(id).await?.status)
    }

    /// Pushes the deposit prompt (or, with no deposit, completes at once).
    async fn start_deposit(
        &self,
        checkout: CheckoutRecord,
    ) -> Result<CheckoutRecord, CheckoutError> {
        let schedule: ScheduleOut = checkout
            .schedule
            .as_deref()
            .and_then(|text| serde_json::from_str(text).ok())
            .ok_or_else(|| StoreError::Corrupt {
                table: "checkouts",
                column: "schedule",
                reason: "does not parse".to_owned(),
            })?;
        let phone = checkout
            .customer_phone
            .as_deref()
            .and_then(|phone| Phone::parse(phone).ok());
        if schedule.deposit == 0 {
            return self.complete_checkout(checkout.id, None).await;
        }
        let now = self.clock.now();
        let request = CreatePayment {
            amount: Money::new(schedule.deposit, checkout.amount.currency),
            phone,
            rail: None,
            merchant_reference: Some(format!("{}:deposit", checkout.id)),
            idempotency_key: None,
            description: format!("Deposit for checkout {}", checkout.id),
            metadata: checkout.metadata.clone(),
            redirect_url: None,
            expires_in_ms: Some((checkout.expires_at.unix_ms() - now.unix_ms()).max(1_000)),
            purpose: Some(Purpose::Deposit(checkout.id).to_text()),
            fees: FeeMode::MerchantPays,
        };
        let payment = match self
            .create_payment(checkout.tenant(), request, |_| String::new())
            .await
        {
            Ok(
                CreatePaymentOutcome::Created(payment)
                | CreatePaymentOutcome::Existing(payment)
                | CreatePaymentOutcome::ReferenceConflict(payment),
            ) => payment,
            Err(PaymentError::Store(error)) => return Err(error.into()),
            Err(error) => {
                let code = match error {
                    PaymentError::RailUnavailable(_) => decline::RAIL_UNAVAILABLE,
                    _ => decline::DEPOSIT_FAILED,
                };
                return self
                    .decline_checkout(checkout.id, code, &error.to_string())
                    .await;
            }
        };
        let mut updated = checkout.clone();
        updated.deposit_payment_id = Some(payment.id);
        updated.updated_at = now;
        match self
            .store
            .save_checkout(
                &updated,
                &["pending_approval"],
                None,
                &PlanEffects::default(),
            )
            .await?
        {
            Some(saved) => Ok(saved),
            // The deposit ended already (a fast rail): show what it became.
            None => self.load_checkout(checkout.id).await,
        }
    }

    async fn decline_checkout(
        &self,
        id: CheckoutId,
        code: &str,
        message: &str,
    ) -> Result<CheckoutRecord, CheckoutError> {
        let mut checkout = self.load_checkout(id).await?;
        let now = self.clock.now();
        checkout.status = if code == "expired" {
            "expired"
        } else {
            "declined"
        }
        .to_owned();
        if checkout.status == "declined" {
            checkout.decline_code = Some(code.to_owned());
            checkout.decline_message = Some(message.to_owned());
        }
        checkout.updated_at = now;
        checkout.completed_at = Some(now);
        let effects = PlanEffects {
            events: vec![self.views.checkout_event(&checkout, now)],
            ..PlanEffects::default()
        };
        self.store
            .save_checkout(&checkout, &["open", "pending_approval"], None, &effects)
            .await?;
        self.load_checkout(id).await
    }

    /// The deposit payment ended: complete, decline or expire the checkout.
    pub(crate) async fn apply_deposit_outcome(
        &self,
        payment: &PaymentRecord,
        id: CheckoutId,
    ) -> Result<(), CheckoutError> {
        match payment.status {
            PaymentStatus::Succeeded => {
                self.complete_checkout(id, Some(payment)).await?;
            }
            PaymentStatus::Expired => {
                self.decline_checkout(id, "expired", "").await?;
            }
            _ => {
                let (code, message) = decline_for_payment(payment);
                self.decline_checkout(id, code, &message).await?;
            }
        }
        Ok(())
    }

    /// A checkout's expiry: one still open, or whose deposit never reached
    /// the rail (a crash between the two writes), expires. One with a
    /// deposit in flight is left to the deposit's own expiry.
    pub(crate) async fn expire_checkout(&self, id: CheckoutId) -> Result<(), CheckoutError> {
        let Some(checkout) = self.store.find_checkout_by_id(id).await? else {
            return Ok(());
        };
        let deposit = self
            .store
            .payments(checkout.tenant())
            .find_by_reference(&format!("{id}:deposit"))
            .await?;
        let expire = match checkout.status.as_str() {
            "open" => true,
            "pending_approval" => deposit.is_none(),
            _ => false,
        };
        if expire {
            self.decline_checkout(id, "expired", "").await?;
        }
        Ok(())
    }

    /// The deposit succeeded (or there was none): create the plan and its
    /// installments, fund an upfront plan, and complete the checkout, in one
    /// transaction.
    async fn complete_checkout(
        &self,
        id: CheckoutId,
        deposit: Option<&PaymentRecord>,
    ) -> Result<CheckoutRecord, CheckoutError> {
        let mut checkout = self.load_checkout(id).await?;
        if checkout.status != "pending_approval" {
            if let Some(payment) = deposit {
                tracing::error!(checkout_id = %id, payment_id = %payment.id, status = %checkout.status,
                    "a deposit succeeded for a checkout no longer pending; the merchant holds it");
            }
            return Ok(checkout);
        }
        let corrupt = |column: &'static str| StoreError::Corrupt {
            table: "checkouts",
            column,
            reason: "does not parse".to_owned(),
        };
        let product: ProductSnapshot = checkout
            .product
            .as_deref()
            .and_then(|text| serde_json::from_str(text).ok())
            .ok_or_else(|| corrupt("product"))?;
        let schedule: ScheduleOut = checkout
            .schedule
            .as_deref()
            .and_then(|text| serde_json::from_str(text).ok())
            .ok_or_else(|| corrupt("schedule"))?;
        let phone = checkout
            .customer_phone
            .clone()
            .ok_or_else(|| corrupt("customer_phone"))?;
        let rail = match deposit.and_then(|p| p.rail.clone()) {
            Some(rail) => rail,
            None => self
                .chosen_rail(
                    checkout.merchant_id,
                    checkout.mode,
                    None,
                    Phone::parse(&phone).ok().as_ref(),
                )
                .await
                .map_err(|_| corrupt("customer_phone"))?
                .capabilities()
                .id
                .to_owned(),
        };
        let zone = zone_of(&checkout.time_zone);
        let real_now = self.clock.now();
        let now = match checkout.test_clock_id {
            Some(clock) => self
                .store
                .find_test_clock(clock)
                .await?
                .map_or(real_now, |clock| clock.frozen_time),
            None => real_now,
        };
        let plan_id = PlanId::generate();
        let installments: Vec<InstallmentRecord> = schedule
            .installments
            .iter()
            .map(|i| {
                let due = parse_date(&i.due_date).unwrap_or(time::Date::MIN);
                InstallmentRecord {
                    plan_id,
                    number: i64::from(i.number),
                    due_date: i.due_date.clone(),
                    due_at: zone.at_hour(due, COLLECTION_HOUR),
                    amount_minor: i.amount,
                    principal_minor: i.principal,
                    interest_minor: i.interest,
                    fee_minor: i.fee,
                    inflation_minor: i.inflation,
                    late_fee_minor: 0,
                    paid_minor: 0,
                    status: if i.amount == 0 { "paid" } else { "scheduled" }.to_owned(),
                    attempts: 0,
                    next_attempt_at: None,
                    failure_code: None,
                    overdue_at: None,
                    paid_at: None,
                }
            })
            .collect();
        let mut plan = PlanRecord {
            id: plan_id,
            merchant_id: checkout.merchant_id,
            mode: checkout.mode,
            checkout_id: id,
            status: "active".to_owned(),
            customer_phone: phone,
            currency: checkout.amount.currency,
            rail: rail.clone(),
            funding: product.funding.clone(),
            plan_product: product.id.clone(),
            product: serde_json::to_string(&product).expect("a product serializes"),
            time_zone: checkout.time_zone.clone(),
            start_date: checkout.start_date.clone().unwrap_or_default(),
            amount_minor: schedule.amount,
            deposit_minor: schedule.deposit,
            financed_minor: schedule.financed,
            total_payable_minor: schedule.total_payable,
            paid_minor: 0,
            late_fees_minor: 0,
            overpaid_minor: 0,
            overdue_since: None,
            metadata: checkout.metadata.clone(),
            test_clock_id: checkout.test_clock_id,
            next_tick_at: None,
            created_at: now,
            updated_at: now,
            completed_at: None,
        };
        let mut state = PlanState {
            plan: plan.clone(),
            installments: installments.clone(),
            payments: Vec::new(),
        };
        if installments.iter().all(|i| i.status == "paid") {
            plan.status = "completed".to_owned();
            plan.completed_at = Some(now);
        } else {
            plan.next_tick_at = rules::next_tick(&state, &product, zone, now);
        }
        state.plan = plan.clone();

        let mut effects = PlanEffects::default();
        if product.is_upfront() && schedule.financed > 0 {
            effects.transfers.push(
                self.funding_transfer(&checkout, &rail, schedule.financed, real_now)
                    .await?,
            );
        }
        checkout.status = "completed".to_owned();
        checkout.plan_id = Some(plan_id);
        checkout.deposit_payment_id = deposit.map(|p| p.id).or(checkout.deposit_payment_id);
        checkout.updated_at = real_now;
        checkout.completed_at = Some(real_now);
        effects
            .events
            .push(self.views.checkout_event(&checkout, real_now));
        effects.events.push(plan_event(&state, "created", now));
        if plan.status == "completed" {
            effects.events.push(plan_event(&state, "completed", now));
        }
        effects.jobs.extend(Self::tick_job(&plan));
        let saved = self
            .store
            .save_checkout(
                &checkout,
                &["pending_approval"],
                Some((&plan, &installments)),
                &effects,
            )
            .await?;
        match saved {
            Some(saved) => {
                tracing::info!(checkout_id = %id, plan_id = %plan_id, "checkout completed");
                Ok(saved)
            }
            None => self.load_checkout(id).await,
        }
    }

    /// An upfront plan pays the merchant the financed amount, less its
    /// collection fee, from the platform's receivable.
    async fn funding_transfer(
        &self,
        checkout: &CheckoutRecord,
        rail: &str,
        financed: i64,
        now: Timestamp,
    ) -> Result<NewTransfer, CheckoutError> {
        let currency = checkout.amount.currency;
        let context = FeeContext {
            merchant_id: checkout.merchant_id,
            entity_id: None,
            rail,
            direction: Direction::Collection,
            currency,
        };
        let fee = match self.store.resolve_fee_schedule(&context).await? {
            Some(record) => record
                .schedule
                .compute(Money::new(financed, currency))
                .map(|fees| fees.fee.amount_minor)
                .unwrap_or(0)
                .clamp(0, financed),
            None => 0,
        };
        let accounts = self.plan_accounts(checkout.mode, currency).await?;
        let ids = self
            .store
            .ensure_accounts(
                &[
                    AccountSpec::merchant(
                        checkout.merchant_id,
                        checkout.mode,
                        currency,
                        AccountKind::Available,
                    ),
                    AccountSpec::platform(checkout.mode, currency, AccountKind::Fees, ""),
                ],
                now,
            )
            .await?;
        let mut entries = vec![
            NewEntry {
                account_id: accounts.receivable,
                amount: Money::new(-financed, currency),
            },
            NewEntry {
                account_id: ids[0],
                amount: Money::new(financed - fee, currency),
            },
        ];
        if fee > 0 {
            entries.push(NewEntry {
                account_id: ids[1],
                amount: Money::new(fee, currency),
            });
        }
        entries.retain(|entry| entry.amount.amount_minor != 0);
        Ok(NewTransfer::posted(
            format!("checkout:{}:funded", checkout.id),
            format!("checkout {}: plan funded upfront", checkout.id),
            entries,
        ))
    }
}
