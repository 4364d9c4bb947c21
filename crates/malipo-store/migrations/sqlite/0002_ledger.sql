-- The double-entry ledger, fee schedules, exchange rates and the audit log.

CREATE TABLE ledger_accounts (
    id TEXT PRIMARY KEY,
    owner_kind TEXT NOT NULL CHECK (owner_kind IN ('platform', 'merchant', 'entity', 'customer')),
    owner_id TEXT NOT NULL,
    merchant_id TEXT REFERENCES merchants (id),
    mode TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    currency TEXT NOT NULL,
    kind TEXT NOT NULL,
    qualifier TEXT NOT NULL DEFAULT '',
    must_not_go_negative BIGINT NOT NULL,
    -- Cached from the entries; `malipo ledger check` recomputes them.
    posted_minor BIGINT NOT NULL DEFAULT 0,
    pending_debits_minor BIGINT NOT NULL DEFAULT 0,
    pending_credits_minor BIGINT NOT NULL DEFAULT 0,
    created_at_ms BIGINT NOT NULL,
    UNIQUE (owner_kind, owner_id, mode, currency, kind, qualifier),
    CHECK (must_not_go_negative = 0 OR posted_minor - pending_debits_minor >= 0)
);
CREATE INDEX ledger_accounts_by_merchant ON ledger_accounts (merchant_id, mode);

CREATE TABLE ledger_transfers (
    id TEXT PRIMARY KEY,
    transfer_key TEXT NOT NULL UNIQUE,
    mode TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    merchant_id TEXT REFERENCES merchants (id),
    description TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('posted', 'pending', 'voided')),
    reverses_transfer_id TEXT UNIQUE REFERENCES ledger_transfers (id),
    fx_rate_id TEXT,
    fx_rate TEXT,
    content_hash TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    settled_at_ms BIGINT
) WITHOUT ROWID;
CREATE INDEX ledger_transfers_by_merchant ON ledger_transfers (merchant_id, mode, id);

CREATE TABLE ledger_entries (
    transfer_id TEXT NOT NULL REFERENCES ledger_transfers (id),
    position BIGINT NOT NULL,
    account_id TEXT NOT NULL REFERENCES ledger_accounts (id),
    currency TEXT NOT NULL,
    amount_minor BIGINT NOT NULL CHECK (amount_minor <> 0),
    PRIMARY KEY (transfer_id, position)
) WITHOUT ROWID;
CREATE INDEX ledger_entries_by_account ON ledger_entries (account_id, transfer_id);

CREATE TABLE fee_schedules (
    id TEXT PRIMARY KEY,
    -- platform: owner_id ''; merchant: mer_…; entity: the entity's id.
    level TEXT NOT NULL CHECK (level IN ('platform', 'merchant', 'entity')),
    owner_id TEXT NOT NULL,
    -- '' means any.
    rail TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('', 'collection', 'payout')),
    currency TEXT NOT NULL,
    percent_bps BIGINT NOT NULL,
    fixed_minor BIGINT NOT NULL,
    min_minor BIGINT,
    max_minor BIGINT,
    payer TEXT NOT NULL CHECK (payer IN ('customer', 'merchant')),
    created_at_ms BIGINT NOT NULL,
    UNIQUE (level, owner_id, rail, direction, currency)
);

CREATE TABLE fx_rates (
    id TEXT PRIMARY KEY,
    base_currency TEXT NOT NULL,
    quote_currency TEXT NOT NULL,
    rate TEXT NOT NULL,
    source TEXT NOT NULL,
    as_of_ms BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX fx_rates_by_pair ON fx_rates (base_currency, quote_currency, as_of_ms);

CREATE TABLE audit_events (
    sequence BIGINT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    merchant_id TEXT,
    mode TEXT,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    details TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    previous_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_events_by_merchant ON audit_events (merchant_id, mode, sequence);
