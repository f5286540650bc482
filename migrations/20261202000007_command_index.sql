-- The command index: each session's commands as the user saw them, and its output as
-- searchable lines, written while the session runs. Times are milliseconds from the session's
-- start (its asciicast's clock). The substring indexes are made by the gateway after the
-- migrations, one kind per backend (SQLite FTS5 with the trigram tokenizer, PostgreSQL pg_trgm).
CREATE TABLE session_commands (
    session_id  TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    at_ms       BIGINT NOT NULL,
    text        TEXT NOT NULL,
    flags       TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
);

CREATE TABLE session_output (
    session_id  TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    at_ms       BIGINT NOT NULL,
    text        TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
);
