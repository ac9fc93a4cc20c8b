-- Who is kept out of a room, and until when (Unix ms): by a kick for its
-- cooldown, by a room ban for longer. A person is kept out by their name key
-- ('name:<key>') and, for a guest, by its browser's guest id ('guest:<id>')
-- and its address ('addr:<ip>'), whatever name it comes back under.
-- name_key and user_name say whose each row is, to lift them together: two
-- people kept out from one address have a row each, with its own end.
CREATE TABLE IF NOT EXISTS room_bans (
    room VARCHAR(64) NOT NULL,
    target VARCHAR(200) NOT NULL,
    name_key VARCHAR(200) NOT NULL,
    user_name TEXT NOT NULL,
    until BIGINT NOT NULL,
    PRIMARY KEY (room, target, name_key)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
