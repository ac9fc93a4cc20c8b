-- Whose a message is, so that its author (and only they) may edit or delete
-- it: 'u:<account name key>' or 'g:<guest id>'; NULL for bots and older rows.
-- reply_to: the id of the message of the same room it answers.
ALTER TABLE messages ADD COLUMN owner VARCHAR(200) NULL;
ALTER TABLE messages ADD COLUMN reply_to BIGINT NULL;

-- The current text of edited messages. Apart from `messages` so that an
-- edit is kept even when it is written before the message's own row (in a
-- cluster another node may write that row a moment later).
CREATE TABLE IF NOT EXISTS message_edits (
    room VARCHAR(64) NOT NULL,
    message_id BIGINT NOT NULL,
    body MEDIUMTEXT NOT NULL,
    edited_at BIGINT NOT NULL,
    PRIMARY KEY (room, message_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- One row per person and emoji on a message.
CREATE TABLE IF NOT EXISTS reactions (
    room VARCHAR(64) NOT NULL,
    message_id BIGINT NOT NULL,
    emoji VARCHAR(64) NOT NULL,
    owner VARCHAR(200) NOT NULL,
    user_name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (room, message_id, emoji, owner)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
