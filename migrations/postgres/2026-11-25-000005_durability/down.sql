DROP INDEX messages_by_nonce;
DROP TABLE dead_letters;
DROP TABLE server_state;
ALTER TABLE rooms DROP COLUMN last_id;
ALTER TABLE rooms DROP COLUMN epoch;
