-- An invite-only room: only invited accounts (and admins) may join it.
ALTER TABLE rooms ADD COLUMN private SMALLINT NOT NULL DEFAULT 0;

CREATE TABLE IF NOT EXISTS room_invites (
    room VARCHAR(64) NOT NULL,
    user_key VARCHAR(128) NOT NULL,
    invited_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (room, user_key)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
