-- Every admin action: who did what to what, and when.
CREATE TABLE audit_log (
    id VARCHAR(32) PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX audit_log_by_time ON audit_log (at);

-- Tokens that let a bot post with POST /store_message under its name. Only a
-- SHA-256 of each token is kept.
CREATE TABLE bot_tokens (
    token_hash VARCHAR(64) PRIMARY KEY,
    bot_name TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

-- A closed room takes no new members until it is reopened.
ALTER TABLE rooms ADD COLUMN closed_at BIGINT;
