-- Money out: payouts to wallets and banks, and refunds of payments. Both
-- hold their amount in the ledger at creation and post or void the hold
-- when the rail answers.

ALTER TABLE merchants ADD COLUMN payouts_approved_at_ms BIGINT;

CREATE TABLE payouts (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('payout', 'refund')),
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    mode TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    status TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    currency TEXT NOT NULL,
    fee_minor BIGINT NOT NULL,
    destination_kind TEXT NOT NULL CHECK (destination_kind IN ('wallet', 'bank')),
    phone TEXT,
    bank_code TEXT,
    account_number TEXT,
    account_name TEXT,
    rail TEXT NOT NULL,
    rail_transaction_id TEXT,
    payment_id TEXT REFERENCES payments (id),
    merchant_reference TEXT,
    request_fingerprint TEXT NOT NULL,
    description TEXT NOT NULL,
    metadata TEXT NOT NULL,
    hold_transfer_id TEXT NOT NULL,
    failure_code TEXT,
    failure_message TEXT,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    completed_at_ms BIGINT,
    UNIQUE (merchant_id, mode, kind, merchant_reference),
    UNIQUE (rail, rail_transaction_id)
);
CREATE INDEX payouts_by_tenant ON payouts (merchant_id, mode, kind, id);
CREATE INDEX payouts_by_payment ON payouts (payment_id);
