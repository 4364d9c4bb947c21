-- A merchant the operator suspended: none of its credentials works meanwhile.
ALTER TABLE merchants ADD COLUMN suspended_at_ms BIGINT;
ALTER TABLE merchants ADD COLUMN suspended_reason TEXT;
