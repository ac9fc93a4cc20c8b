-- Registered people. `name_key` is the name in lower case: names are unique
-- regardless of case, so "Alice" and "alice" cannot both exist.
CREATE TABLE users (
    name_key TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    is_admin SMALLINT NOT NULL DEFAULT 0,
    banned_at BIGINT,
    created_at BIGINT NOT NULL
);

-- Logins. Only a SHA-256 of the session token is kept, so a copy of this
-- table does not let anyone in. Logging out sets `revoked_at`.
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY NOT NULL,
    user_key TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX sessions_by_user ON sessions (user_key);
