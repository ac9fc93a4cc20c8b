-- MySQL commits each CREATE TABLE by itself: IF NOT EXISTS lets a migration
-- that failed half-way run again.
-- Times are Unix milliseconds (UTC): one representation on every backend.
-- utf8mb4 stores every display name and text; the binary collation compares
-- names exactly, as the other backends do.
CREATE TABLE IF NOT EXISTS rooms (
    name VARCHAR(64) NOT NULL PRIMARY KEY,
    created_at BIGINT NOT NULL,
    created_by TEXT
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Ids count up per room. InnoDB clusters rows on the (room, id) primary key,
-- the order keyset history queries walk. MEDIUMTEXT leaves room for message
-- limits above TEXT's 64 KiB.
CREATE TABLE IF NOT EXISTS messages (
    room VARCHAR(64) NOT NULL,
    id BIGINT NOT NULL,
    author TEXT NOT NULL,
    body MEDIUMTEXT NOT NULL,
    created_at BIGINT NOT NULL,
    nonce TEXT,
    PRIMARY KEY (room, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
