-- Buy now, pay later: checkouts, the plans they create, their
-- installments, the payments applied to them, merchants' credit rules and
-- sandbox test clocks.

-- What a payment is for, when something waits on its outcome:
-- `checkout:co_…` (a deposit), `installment:plan_…` (an automatic
-- collection) or `plan_payment:plan_…` (an early or extra payment). When
-- such a payment ends, its outcome is applied by a follow-up job queued in
-- the same transaction.
ALTER TABLE payments ADD COLUMN purpose TEXT;

CREATE TABLE test_clocks (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    mode TEXT NOT NULL CHECK (mode = 'test'),
    name TEXT NOT NULL,
    frozen_time_ms BIGINT NOT NULL,
    -- Where an advance is going; equal to frozen_time_ms when ready.
    target_time_ms BIGINT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ready', 'advancing')),
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX test_clocks_by_tenant ON test_clocks (merchant_id, mode, id);

CREATE TABLE credit_rules (
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    mode TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    -- JSON: scope of the one-active-plan rule, limits per currency, blocklist.
    rules TEXT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, mode)
);

CREATE TABLE checkouts (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    mode TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    status TEXT NOT NULL CHECK (status IN ('open', 'pending_approval', 'completed', 'declined', 'expired')),
    channel TEXT NOT NULL CHECK (channel IN ('till', 'online')),
    customer_phone TEXT,
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    currency TEXT NOT NULL,
    -- The products offered (JSON array of ids) and the one chosen.
    plan_products TEXT NOT NULL,
    plan_product TEXT,
    -- The chosen product as the plan will keep it (terms and policies, JSON).
    product TEXT,
    apply_inflation BIGINT NOT NULL,
    time_zone TEXT NOT NULL,
    start_date TEXT,
    -- The exact schedule shown to the customer (JSON), once a product is chosen.
    schedule TEXT,
    merchant_reference TEXT,
    request_fingerprint TEXT NOT NULL,
    description TEXT NOT NULL,
    metadata TEXT NOT NULL,
    items TEXT NOT NULL,
    success_url TEXT,
    cancel_url TEXT,
    deposit_payment_id TEXT,
    plan_id TEXT,
    decline_code TEXT,
    decline_message TEXT,
    test_clock_id TEXT REFERENCES test_clocks (id),
    expires_at_ms BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    completed_at_ms BIGINT,
    UNIQUE (merchant_id, mode, merchant_reference)
);
CREATE INDEX checkouts_by_tenant ON checkouts (merchant_id, mode, id);
CREATE INDEX checkouts_by_customer ON checkouts (customer_phone, mode, status);

CREATE TABLE plans (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    mode TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    checkout_id TEXT NOT NULL UNIQUE REFERENCES checkouts (id),
    status TEXT NOT NULL CHECK (status IN ('active', 'delinquent', 'completed', 'defaulted', 'cancelled')),
    customer_phone TEXT NOT NULL,
    currency TEXT NOT NULL,
    rail TEXT NOT NULL,
    funding TEXT NOT NULL CHECK (funding IN ('upfront', 'as_collected')),
    plan_product TEXT NOT NULL,
    product TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    start_date TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    deposit_minor BIGINT NOT NULL,
    financed_minor BIGINT NOT NULL,
    -- Deposit and installments, before late fees.
    total_payable_minor BIGINT NOT NULL,
    -- Applied to installments so far (the deposit not included).
    paid_minor BIGINT NOT NULL DEFAULT 0,
    late_fees_minor BIGINT NOT NULL DEFAULT 0,
    -- Received beyond everything owed, kept for a refund.
    overpaid_minor BIGINT NOT NULL DEFAULT 0,
    -- The due date of the oldest overdue installment, while there is one.
    overdue_since TEXT,
    metadata TEXT NOT NULL,
    test_clock_id TEXT REFERENCES test_clocks (id),
    -- When the plan next needs the worker (in its clock's time).
    next_tick_at_ms BIGINT,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    completed_at_ms BIGINT
);
CREATE INDEX plans_by_tenant ON plans (merchant_id, mode, id);
CREATE INDEX plans_by_customer ON plans (customer_phone, mode, status);
CREATE INDEX plans_by_clock ON plans (test_clock_id, next_tick_at_ms);

CREATE TABLE installments (
    plan_id TEXT NOT NULL REFERENCES plans (id),
    number BIGINT NOT NULL,
    due_date TEXT NOT NULL,
    -- When collection starts: the due date at the collection hour, local.
    due_at_ms BIGINT NOT NULL,
    amount_minor BIGINT NOT NULL,
    principal_minor BIGINT NOT NULL,
    interest_minor BIGINT NOT NULL,
    fee_minor BIGINT NOT NULL,
    inflation_minor BIGINT NOT NULL,
    late_fee_minor BIGINT NOT NULL DEFAULT 0,
    paid_minor BIGINT NOT NULL DEFAULT 0,
    status TEXT NOT NULL CHECK (status IN ('scheduled', 'processing', 'paid', 'failed', 'overdue', 'written_off', 'cancelled')),
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at_ms BIGINT,
    failure_code TEXT,
    -- When it went past its grace days unpaid (it stays late once it was).
    overdue_at_ms BIGINT,
    paid_at_ms BIGINT,
    PRIMARY KEY (plan_id, number)
);

-- Payments applied to a plan (installment collections and early or extra
-- payments), with what each paid off: the plan's payment history, and
-- what makes applying a payment happen once.
CREATE TABLE plan_payments (
    payment_id TEXT PRIMARY KEY,
    plan_id TEXT NOT NULL REFERENCES plans (id),
    amount_minor BIGINT NOT NULL,
    principal_minor BIGINT NOT NULL,
    -- JSON array of [installment number, amount].
    allocation TEXT NOT NULL,
    applied_at_ms BIGINT NOT NULL
);
CREATE INDEX plan_payments_by_plan ON plan_payments (plan_id, applied_at_ms);

CREATE INDEX payments_by_purpose ON payments (purpose);
