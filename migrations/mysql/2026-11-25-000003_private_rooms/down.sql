DROP TABLE room_invites;
ALTER TABLE rooms DROP COLUMN private;
