-- Buy now, pay later: a merchant's plan products (the terms its checkouts
-- offer). The terms are one JSON document (deposit, length, frequency,
-- interest, fee, inflation), read and checked by malipo-plans; the columns
-- are what queries and the ledger need.
CREATE TABLE plan_products (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    mode TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    name TEXT NOT NULL,
    -- Fixed amounts in the terms are in this currency; null when there are none.
    currency TEXT,
    terms TEXT NOT NULL,
    funding TEXT NOT NULL CHECK (funding IN ('upfront', 'as_collected')),
    late_fee_minor BIGINT NOT NULL CHECK (late_fee_minor >= 0),
    grace_days BIGINT NOT NULL CHECK (grace_days >= 0),
    retry_attempts BIGINT NOT NULL CHECK (retry_attempts >= 0),
    retry_interval_hours BIGINT NOT NULL CHECK (retry_interval_hours > 0),
    default_after_days BIGINT NOT NULL CHECK (default_after_days > 0),
    metadata TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX plan_products_by_tenant ON plan_products (merchant_id, mode, id);
