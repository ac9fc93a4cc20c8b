ALTER TABLE rooms DROP COLUMN closed_at;
DROP TABLE bot_tokens;
DROP TABLE audit_log;
