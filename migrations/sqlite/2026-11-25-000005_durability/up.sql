-- A room's epoch names one unbroken run of its message ids. It changes
-- whenever Parlor cannot prove that no id it handed out was lost (a crash,
-- a restored backup), and clients then reload instead of trusting ids.
-- `last_id` is the highest id ever given out, so deleting the newest
-- message never frees its id for reuse.
ALTER TABLE rooms ADD COLUMN epoch TEXT NOT NULL DEFAULT '';
ALTER TABLE rooms ADD COLUMN last_id BIGINT NOT NULL DEFAULT 0;

-- Whether the process that last used this database stopped cleanly.
CREATE TABLE server_state (
    id SMALLINT PRIMARY KEY NOT NULL,
    running SMALLINT NOT NULL,
    started_at BIGINT NOT NULL,
    stopped_at BIGINT
);

-- Writes the database refused on their own (not for being down), kept
-- aside so the rest of the log goes on; admins see and count them.
CREATE TABLE dead_letters (
    id TEXT PRIMARY KEY NOT NULL,
    at BIGINT NOT NULL,
    room TEXT NOT NULL,
    message_id BIGINT,
    what TEXT NOT NULL,
    error TEXT NOT NULL
);

-- A resend is recognised by its nonce, also long after the room's memory.
CREATE INDEX messages_by_nonce ON messages (room, nonce);
