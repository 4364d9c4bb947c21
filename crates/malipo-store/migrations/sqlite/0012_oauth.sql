-- OAuth 2 client credentials: a merchant's API clients (the secret kept only
-- as its SHA-256) and the keys that sign their access tokens (sealed under
-- the master key; a retired key still verifies the tokens it signed until
-- they expire).
CREATE TABLE oauth_clients (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    mode TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    -- Space-separated, as API keys' scopes.
    scopes TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    revoked_at_ms BIGINT,
    last_used_at_ms BIGINT
);
CREATE INDEX oauth_clients_by_tenant ON oauth_clients (merchant_id, mode, id);

CREATE TABLE oauth_signing_keys (
    kid TEXT PRIMARY KEY,
    sealed_secret TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    retired_at_ms BIGINT
);
