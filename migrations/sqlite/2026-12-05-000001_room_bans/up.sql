-- Who is kept out of a room, and until when (Unix ms): by a kick for its
-- cooldown, by a room ban for longer. A person is kept out by their name key
-- ('name:<key>') and, for a guest, by its browser's guest id ('guest:<id>')
-- and its address ('addr:<ip>'), whatever name it comes back under.
-- name_key and user_name say whose each row is, to lift them together: two
-- people kept out from one address have a row each, with its own end.
CREATE TABLE room_bans (
    room TEXT NOT NULL,
    target TEXT NOT NULL,
    name_key TEXT NOT NULL,
    user_name TEXT NOT NULL,
    until BIGINT NOT NULL,
    PRIMARY KEY (room, target, name_key)
) WITHOUT ROWID;
