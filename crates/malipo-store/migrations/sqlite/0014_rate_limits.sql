-- A merchant's own API rate limit (requests per second per credential), set
-- by the operator; NULL: the configured default.
ALTER TABLE merchants ADD COLUMN rate_limit_per_second BIGINT;
