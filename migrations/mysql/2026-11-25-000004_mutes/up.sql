-- Who may not send in a room until when (Unix ms), so a restart keeps mutes.
CREATE TABLE IF NOT EXISTS mutes (
    room VARCHAR(64) NOT NULL,
    user_key VARCHAR(128) NOT NULL,
    until BIGINT NOT NULL,
    PRIMARY KEY (room, user_key)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
