-- Times are Unix milliseconds (UTC): one representation on every backend.
CREATE TABLE rooms (
    name TEXT PRIMARY KEY NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT
);

-- Ids count up per room. The (room, id) primary key is the clustered index
-- that keyset history queries walk, newest first.
CREATE TABLE messages (
    room TEXT NOT NULL,
    id BIGINT NOT NULL,
    author TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    nonce TEXT,
    PRIMARY KEY (room, id)
) WITHOUT ROWID;
