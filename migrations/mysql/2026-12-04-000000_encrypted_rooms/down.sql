ALTER TABLE rooms DROP COLUMN key_salt;
ALTER TABLE rooms DROP COLUMN encryption;
