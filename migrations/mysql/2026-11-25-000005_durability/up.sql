-- A room's epoch names one unbroken run of its message ids. It changes
-- whenever Parlor cannot prove that no id it handed out was lost (a crash,
-- a restored backup), and clients then reload instead of trusting ids.
-- `last_id` is the highest id ever given out, so deleting the newest
-- message never frees its id for reuse.
ALTER TABLE rooms ADD COLUMN epoch VARCHAR(32) NOT NULL DEFAULT '';
ALTER TABLE rooms ADD COLUMN last_id BIGINT NOT NULL DEFAULT 0;

-- Whether the process that last used this database stopped cleanly.
CREATE TABLE IF NOT EXISTS server_state (
    id SMALLINT NOT NULL PRIMARY KEY,
    running SMALLINT NOT NULL,
    started_at BIGINT NOT NULL,
    stopped_at BIGINT
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Writes the database refused on their own (not for being down), kept
-- aside so the rest of the log goes on; admins see and count them.
CREATE TABLE IF NOT EXISTS dead_letters (
    id VARCHAR(32) NOT NULL PRIMARY KEY,
    at BIGINT NOT NULL,
    room VARCHAR(64) NOT NULL,
    message_id BIGINT,
    what MEDIUMTEXT NOT NULL,
    error TEXT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- A resend is recognised by its nonce, also long after the room's memory.
-- (The prefix: MySQL indexes TEXT columns only by a prefix; nonces are at
-- most 64 bytes.)
CREATE INDEX messages_by_nonce ON messages (room, nonce(64));
