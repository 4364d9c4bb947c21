-- Real rails' configurations, per merchant or platform-wide (owner
-- 'platform'): settings in clear, credentials sealed under the master key
-- (base64 of nonce || ciphertext || tag) with only their names in clear.
CREATE TABLE rail_configs (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    rail TEXT NOT NULL,
    settings TEXT NOT NULL,
    credentials_sealed TEXT NOT NULL,
    credential_names TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    UNIQUE (owner, rail)
);
