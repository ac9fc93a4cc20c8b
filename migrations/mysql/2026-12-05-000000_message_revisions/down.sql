DROP TABLE IF EXISTS reactions;
DROP TABLE IF EXISTS message_edits;
ALTER TABLE messages DROP COLUMN reply_to;
ALTER TABLE messages DROP COLUMN owner;
