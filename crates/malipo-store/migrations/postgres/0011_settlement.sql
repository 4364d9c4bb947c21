-- Settlement: money paid to reference numbers, held per entity, reserved,
-- charged back and paid out in batches on each entity's schedule.

-- An entity may follow a sandbox test clock; `next_settlement_at_ms` is its
-- next scheduled batch (none for `manual`).
ALTER TABLE entities ADD COLUMN test_clock_id TEXT REFERENCES test_clocks (id);
ALTER TABLE entities ADD COLUMN next_settlement_at_ms BIGINT;

-- What a reference's payments have covered of its fee, and paid beyond it.
ALTER TABLE payment_references ADD COLUMN fee_paid_minor BIGINT NOT NULL DEFAULT 0;
ALTER TABLE payment_references ADD COLUMN overpaid_minor BIGINT NOT NULL DEFAULT 0;

-- Why a payout exists beyond the merchant asking (`settlement:stl_…`,
-- `reference_payment:rpay_…`): its final state is followed up by a job.
ALTER TABLE payouts ADD COLUMN purpose TEXT;

-- Customer-initiated payments (C2B, paybill, TIPS) to a reference number,
-- one per rail transaction: a second callback for it is a duplicate.
CREATE TABLE reference_payments (
    id TEXT PRIMARY KEY,
    rail TEXT NOT NULL,
    rail_transaction_id TEXT NOT NULL,
    mode TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    -- NULL while nobody owns it: a number no reference ever had.
    merchant_id TEXT REFERENCES merchants (id),
    -- The number as the customer entered it.
    number TEXT NOT NULL,
    payment_reference_id TEXT REFERENCES payment_references (id),
    entity_id TEXT REFERENCES entities (id),
    status TEXT NOT NULL CHECK (status IN ('matched', 'unmatched', 'refunding', 'refunded')),
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    currency TEXT NOT NULL,
    fee_minor BIGINT NOT NULL DEFAULT 0,
    reserved_minor BIGINT NOT NULL DEFAULT 0,
    overpaid_minor BIGINT NOT NULL DEFAULT 0,
    phone TEXT,
    payer_name TEXT,
    inbound_id TEXT NOT NULL,
    refund_payout_id TEXT,
    received_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    UNIQUE (rail, rail_transaction_id)
);
CREATE INDEX reference_payments_by_tenant ON reference_payments (merchant_id, mode, id);
CREATE INDEX reference_payments_by_reference ON reference_payments (payment_reference_id);

-- Part of a credit held in an entity's reserve until `release_at_ms`; a
-- chargeback takes from the oldest holds first (`remaining_minor`).
CREATE TABLE reserve_holds (
    id TEXT PRIMARY KEY,
    entity_id TEXT NOT NULL REFERENCES entities (id),
    currency TEXT NOT NULL,
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    remaining_minor BIGINT NOT NULL CHECK (remaining_minor >= 0),
    source_id TEXT NOT NULL,
    release_at_ms BIGINT NOT NULL,
    released_at_ms BIGINT,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX reserve_holds_due ON reserve_holds (entity_id, released_at_ms, release_at_ms);

-- A batch paying out an entity's available balance.
CREATE TABLE settlements (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    mode TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    entity_id TEXT NOT NULL REFERENCES entities (id),
    currency TEXT NOT NULL,
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    status TEXT NOT NULL CHECK (status IN ('computed', 'submitted', 'paid', 'failed')),
    -- `schedule` or `manual`.
    triggered_by TEXT NOT NULL,
    -- The transfer moving the amount out of the entity's available balance.
    transfer_id TEXT NOT NULL,
    -- The payout of the latest attempt.
    payout_id TEXT,
    attempts BIGINT NOT NULL DEFAULT 0,
    failure_code TEXT,
    failure_message TEXT,
    period_start_ms BIGINT,
    period_end_ms BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    paid_at_ms BIGINT
);
CREATE INDEX settlements_by_tenant ON settlements (merchant_id, mode, id);
CREATE INDEX settlements_by_entity ON settlements (entity_id, id);

-- The ledger entries a batch settles: each entry of an entity's available
-- account is settled at most once (the primary key).
CREATE TABLE settlement_lines (
    settlement_id TEXT NOT NULL REFERENCES settlements (id),
    transfer_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    amount_minor BIGINT NOT NULL,
    description TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (transfer_id, position)
);
CREATE INDEX settlement_lines_by_settlement ON settlement_lines (settlement_id, created_at_ms);

-- Chargebacks and refund debits against an entity: from its reserve first,
-- then its available balance, the rest carried as its debt.
CREATE TABLE chargebacks (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    mode TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    entity_id TEXT NOT NULL REFERENCES entities (id),
    currency TEXT NOT NULL,
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    from_reserve_minor BIGINT NOT NULL,
    from_available_minor BIGINT NOT NULL,
    to_debt_minor BIGINT NOT NULL,
    reason TEXT NOT NULL,
    reference_payment_id TEXT,
    idempotency_key TEXT,
    transfer_id TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    UNIQUE (merchant_id, mode, idempotency_key)
);
CREATE INDEX chargebacks_by_tenant ON chargebacks (merchant_id, mode, id);
