-- Who may not send in a room until when (Unix ms), so a restart keeps mutes.
CREATE TABLE mutes (
    room VARCHAR(64) NOT NULL,
    user_key VARCHAR(128) NOT NULL,
    until BIGINT NOT NULL,
    PRIMARY KEY (room, user_key)
);
