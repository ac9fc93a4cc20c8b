-- Who may not send in a room until when (Unix ms), so a restart keeps mutes.
CREATE TABLE mutes (
    room TEXT NOT NULL,
    user_key TEXT NOT NULL,
    until BIGINT NOT NULL,
    PRIMARY KEY (room, user_key)
);
