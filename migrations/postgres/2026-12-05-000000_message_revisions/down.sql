DROP TABLE reactions;
DROP TABLE message_edits;
ALTER TABLE messages DROP COLUMN reply_to;
ALTER TABLE messages DROP COLUMN owner;
