-- MySQL commits each CREATE TABLE by itself: IF NOT EXISTS lets a migration
-- that failed half-way run again.
-- Registered people. `name_key` is the name in lower case: names are unique
-- regardless of case, so "Alice" and "alice" cannot both exist.
CREATE TABLE IF NOT EXISTS users (
    name_key VARCHAR(128) NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    is_admin SMALLINT NOT NULL DEFAULT 0,
    banned_at BIGINT,
    created_at BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Logins. Only a SHA-256 of the session token is kept, so a copy of this
-- table does not let anyone in. Logging out sets `revoked_at`.
CREATE TABLE IF NOT EXISTS sessions (
    id_hash VARCHAR(64) NOT NULL PRIMARY KEY,
    user_key VARCHAR(128) NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    INDEX sessions_by_user (user_key)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
