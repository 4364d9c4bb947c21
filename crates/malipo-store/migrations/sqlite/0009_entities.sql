-- Settlement entities: who a merchant's collections are paid out to (a
-- school, a vendor, a branch), how, on what schedule, and whether the
-- operator has approved them (KYC).
CREATE TABLE entities (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    mode TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    name TEXT NOT NULL,
    currency TEXT NOT NULL,
    settlement_method TEXT NOT NULL CHECK (settlement_method IN ('mobile_money', 'bank')),
    -- mobile_money
    phone TEXT,
    rail TEXT,
    -- bank
    bank_name TEXT,
    account_number TEXT,
    account_name TEXT,
    branch TEXT,
    swift TEXT,
    payout_schedule TEXT NOT NULL CHECK (payout_schedule IN ('daily', 'weekly', 'monthly', 'manual')),
    payout_min_minor BIGINT NOT NULL CHECK (payout_min_minor >= 0),
    -- Held from each credit for reserve_days (basis points of the credit).
    reserve_bps BIGINT NOT NULL CHECK (reserve_bps >= 0 AND reserve_bps <= 10000),
    reserve_days BIGINT NOT NULL CHECK (reserve_days >= 0),
    kyc_status TEXT NOT NULL CHECK (kyc_status IN ('pending', 'approved', 'rejected')),
    kyc_reason TEXT,
    metadata TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX entities_by_tenant ON entities (merchant_id, mode, id);
