-- Times are Unix milliseconds (UTC): one representation on every backend.
CREATE TABLE rooms (
    name VARCHAR(64) PRIMARY KEY,
    created_at BIGINT NOT NULL,
    created_by TEXT
);

-- Ids count up per room. The (room, id) primary key is the index that
-- keyset history queries walk, newest first.
CREATE TABLE messages (
    room VARCHAR(64) NOT NULL,
    id BIGINT NOT NULL,
    author TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    nonce TEXT,
    PRIMARY KEY (room, id)
);
