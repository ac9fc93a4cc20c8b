-- An invite-only room: only invited accounts (and admins) may join it.
ALTER TABLE rooms ADD COLUMN private SMALLINT NOT NULL DEFAULT 0;

CREATE TABLE room_invites (
    room TEXT NOT NULL,
    user_key TEXT NOT NULL,
    invited_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (room, user_key)
);
