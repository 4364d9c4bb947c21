-- Collections, the job queue the workers lease from, and rails' callbacks.

CREATE TABLE payments (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    mode TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    status TEXT NOT NULL,
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    currency TEXT NOT NULL,
    fee_minor BIGINT NOT NULL,
    fee_payer TEXT NOT NULL,
    customer_total_minor BIGINT NOT NULL,
    merchant_net_minor BIGINT NOT NULL,
    customer_phone TEXT,
    rail TEXT,
    rail_transaction_id TEXT,
    merchant_reference TEXT,
    -- What the create request asked for: a retry with the same reference
    -- must ask for the same thing.
    request_fingerprint TEXT NOT NULL,
    description TEXT NOT NULL,
    metadata TEXT NOT NULL,
    redirect_url TEXT,
    next_action TEXT,
    -- Fields the customer or merchant supplied for the rail (JSON object).
    fields TEXT NOT NULL,
    failure_code TEXT,
    failure_message TEXT,
    refunded_minor BIGINT NOT NULL DEFAULT 0,
    expires_at_ms BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    completed_at_ms BIGINT,
    UNIQUE (merchant_id, mode, merchant_reference),
    UNIQUE (rail, rail_transaction_id)
);
CREATE INDEX payments_by_tenant ON payments (merchant_id, mode, id);

CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    run_at_ms BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    locked_until_ms BIGINT,
    last_error TEXT,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX jobs_by_due ON jobs (run_at_ms);

CREATE TABLE inbound_callbacks (
    id TEXT PRIMARY KEY,
    rail TEXT NOT NULL,
    headers TEXT NOT NULL,
    body BLOB NOT NULL,
    received_at_ms BIGINT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('received', 'applied', 'duplicate', 'flagged')),
    rail_transaction_id TEXT,
    reason TEXT,
    processed_at_ms BIGINT
);
CREATE INDEX inbound_callbacks_by_transaction ON inbound_callbacks (rail, rail_transaction_id);
