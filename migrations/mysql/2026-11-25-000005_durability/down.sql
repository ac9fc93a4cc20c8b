DROP INDEX messages_by_nonce ON messages;
DROP TABLE IF EXISTS dead_letters;
DROP TABLE IF EXISTS server_state;
ALTER TABLE rooms DROP COLUMN last_id;
ALTER TABLE rooms DROP COLUMN epoch;
