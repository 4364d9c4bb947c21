-- Events (what happened, written in the transaction of the change) and
-- their delivery to merchants' webhook endpoints.

CREATE TABLE events (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    mode TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    -- `payment.succeeded`; `category` is the part before the dot, so that
    -- an endpoint can subscribe to `payment.*`.
    type TEXT NOT NULL,
    category TEXT NOT NULL,
    object_id TEXT NOT NULL,
    -- The object as it was when the event happened (JSON).
    data TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX events_by_tenant ON events (merchant_id, mode, id);
CREATE INDEX events_by_object ON events (object_id, id);

CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    mode TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    url TEXT NOT NULL,
    description TEXT NOT NULL,
    -- NULL while enabled.
    disabled_at_ms BIGINT,
    disabled_reason TEXT,
    -- Set by the first failure after a success; cleared by a success.
    failing_since_ms BIGINT,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_by_tenant ON webhook_endpoints (merchant_id, mode, id);

-- What an endpoint receives: `*`, a type, or `category.*`.
CREATE TABLE webhook_endpoint_types (
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_type TEXT NOT NULL,
    PRIMARY KEY (endpoint_id, event_type)
);

-- Signing secrets, sealed under the master key. A rotated-out secret keeps
-- signing until `expires_at_ms`.
CREATE TABLE webhook_secrets (
    id TEXT PRIMARY KEY,
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    sealed_secret TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT
);
CREATE INDEX webhook_secrets_by_endpoint ON webhook_secrets (endpoint_id);

-- One row per event and endpoint: the delivery queue workers lease from.
CREATE TABLE webhook_deliveries (
    event_id TEXT NOT NULL REFERENCES events (id),
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    -- Attempts in the current schedule (a redelivery starts a new one).
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at_ms BIGINT,
    locked_until_ms BIGINT,
    event_created_at_ms BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (event_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at_ms) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, status, event_created_at_ms);

-- The delivery log: one row per HTTP attempt.
CREATE TABLE webhook_attempts (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    attempt BIGINT NOT NULL,
    attempted_at_ms BIGINT NOT NULL,
    latency_ms BIGINT NOT NULL,
    status_code BIGINT,
    response_body TEXT,
    error TEXT,
    outcome TEXT NOT NULL CHECK (outcome IN ('succeeded', 'failed')),
    -- When the next try is due; NULL if this was the last one.
    next_attempt_at_ms BIGINT
);
CREATE INDEX webhook_attempts_by_event ON webhook_attempts (event_id, id);
CREATE INDEX webhook_attempts_by_endpoint ON webhook_attempts (endpoint_id, id);
