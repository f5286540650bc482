-- The command index: each session's commands as the user saw them, and its output as
-- searchable lines, written while the session runs. Times are milliseconds from the session's
-- start (its asciicast's clock); `abs_ms` is the session's start plus that offset, the order
-- search answers in (newest first), with indexes to read the newest rows first, of everyone or
-- of one user (`user_name`, the session's). The substring indexes are made by the gateway after the
-- migrations, one kind per backend (SQLite FTS5 with the trigram tokenizer, PostgreSQL pg_trgm).
CREATE TABLE session_commands (
    session_id  TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    at_ms       BIGINT NOT NULL,
    abs_ms      BIGINT NOT NULL,
    user_name   TEXT NOT NULL,
    text        TEXT NOT NULL,
    flags       TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
);
CREATE INDEX session_commands_recent ON session_commands (abs_ms, session_id, seq);
CREATE INDEX session_commands_user_recent ON session_commands (user_name, abs_ms, session_id, seq);

CREATE TABLE session_output (
    session_id  TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    at_ms       BIGINT NOT NULL,
    abs_ms      BIGINT NOT NULL,
    user_name   TEXT NOT NULL,
    text        TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
);
CREATE INDEX session_output_recent ON session_output (abs_ms, session_id, seq);
CREATE INDEX session_output_user_recent ON session_output (user_name, abs_ms, session_id, seq);
