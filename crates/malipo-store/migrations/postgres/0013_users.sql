-- Dashboard users: a merchant's people, with a role, an argon2id password
-- hash, a second factor (TOTP, its secret sealed under the master key; SMS
-- to a confirmed phone), and a lockout after repeated failures.
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    email TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('owner', 'developer', 'viewer')),
    password_hash TEXT NOT NULL,
    must_change_password BIGINT NOT NULL,
    totp_secret_sealed TEXT,
    totp_enabled BIGINT NOT NULL,
    totp_last_step BIGINT,
    sms_phone TEXT,
    sms_enabled BIGINT NOT NULL,
    failed_attempts BIGINT NOT NULL,
    locked_until_ms BIGINT,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX users_by_merchant ON users (merchant_id, id);

-- Sessions, by the SHA-256 of their cookie; a stage says which step of the
-- login the session is at (only `active` reaches the dashboard).
CREATE TABLE user_sessions (
    id_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    csrf_token TEXT NOT NULL,
    stage TEXT NOT NULL CHECK (stage IN ('change_password', 'enrol_second_factor', 'second_factor', 'active')),
    sms_code_hash TEXT,
    sms_code_expires_at_ms BIGINT,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    revoked_at_ms BIGINT
);
CREATE INDEX user_sessions_by_user ON user_sessions (user_id);

-- What the sandbox's notification rail "sent" (SMS codes), for developers
-- to read instead of a phone.
CREATE TABLE sandbox_messages (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    recipient TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX sandbox_messages_by_merchant ON sandbox_messages (merchant_id, created_at_ms);
