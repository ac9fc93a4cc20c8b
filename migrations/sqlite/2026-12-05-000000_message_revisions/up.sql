-- Whose a message is, so that its author (and only they) may edit or delete
-- it: 'u:<account name key>' or 'g:<guest id>'; NULL for bots and older rows.
-- reply_to: the id of the message of the same room it answers.
ALTER TABLE messages ADD COLUMN owner TEXT NULL;
ALTER TABLE messages ADD COLUMN reply_to BIGINT NULL;

-- The current text of edited messages. Apart from `messages` so that an
-- edit is kept even when it is written before the message's own row (in a
-- cluster another node may write that row a moment later).
CREATE TABLE message_edits (
    room TEXT NOT NULL,
    message_id BIGINT NOT NULL,
    body TEXT NOT NULL,
    edited_at BIGINT NOT NULL,
    PRIMARY KEY (room, message_id)
) WITHOUT ROWID;

-- One row per person and emoji on a message.
CREATE TABLE reactions (
    room TEXT NOT NULL,
    message_id BIGINT NOT NULL,
    emoji TEXT NOT NULL,
    owner TEXT NOT NULL,
    user_name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (room, message_id, emoji, owner)
) WITHOUT ROWID;
