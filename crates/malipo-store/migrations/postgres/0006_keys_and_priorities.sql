-- The request's Idempotency-Key on the object it created, unique per
-- merchant and mode: a retry that takes over an abandoned idempotency claim
-- (its process died after the commit, before the response was stored)
-- finds the object instead of making a second one.
ALTER TABLE payments ADD COLUMN idempotency_key TEXT;
CREATE UNIQUE INDEX payments_by_idempotency_key ON payments (merchant_id, mode, idempotency_key);
ALTER TABLE payouts ADD COLUMN idempotency_key TEXT;
CREATE UNIQUE INDEX payouts_by_idempotency_key ON payouts (merchant_id, mode, kind, idempotency_key);

-- Urgent jobs first: a rail's callback or a first push must not queue behind
-- thousands of status polls that fell due earlier. 0 is urgent.
ALTER TABLE jobs ADD COLUMN priority BIGINT NOT NULL DEFAULT 1;
CREATE INDEX jobs_by_priority ON jobs (priority, run_at_ms);
