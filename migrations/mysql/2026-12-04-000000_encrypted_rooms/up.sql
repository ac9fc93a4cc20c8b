-- An end-to-end encrypted room: how its members get the key ('link' or
-- 'passphrase'; NULL for a plain room) and the salt for passphrase keys.
-- The key itself never reaches the server.
ALTER TABLE rooms ADD COLUMN encryption VARCHAR(16) NULL;
ALTER TABLE rooms ADD COLUMN key_salt VARCHAR(64) NULL;
