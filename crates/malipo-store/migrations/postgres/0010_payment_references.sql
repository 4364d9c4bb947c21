-- Payment references ("Lipa numbers"): one per invoice, bound to a
-- settlement entity, for the customer to pay the merchant amount (plus the
-- fee when the customer pays it).
CREATE TABLE payment_references (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    mode TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    entity_id TEXT NOT NULL REFERENCES entities (id),
    number TEXT NOT NULL,
    name TEXT NOT NULL,
    memo TEXT NOT NULL,
    currency TEXT NOT NULL,
    merchant_amount_minor BIGINT NOT NULL CHECK (merchant_amount_minor > 0),
    fee_minor BIGINT NOT NULL,
    fee_payer TEXT NOT NULL,
    expected_total_minor BIGINT NOT NULL,
    paid_minor BIGINT NOT NULL DEFAULT 0,
    status TEXT NOT NULL CHECK (status IN ('open', 'partially_paid', 'paid', 'closed')),
    -- The create request's Idempotency-Key: a retry finds this reference.
    idempotency_key TEXT,
    metadata TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    closed_at_ms BIGINT
);
-- A number is unique among references not closed (a closed one's number
-- may come back).
CREATE UNIQUE INDEX payment_references_live_number ON payment_references (number)
    WHERE status <> 'closed';
CREATE UNIQUE INDEX payment_references_by_key ON payment_references (merchant_id, mode, idempotency_key);
CREATE INDEX payment_references_by_tenant ON payment_references (merchant_id, mode, id);
