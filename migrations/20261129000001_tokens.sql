-- Access tokens. Portable SQL: the same file runs on SQLite and PostgreSQL.
-- Times are unix milliseconds (BIGINT); lists are JSON text.
CREATE TABLE tokens (
    id            TEXT PRIMARY KEY,
    user_name     TEXT NOT NULL,
    role          TEXT NOT NULL,
    allow         TEXT NOT NULL,
    secret_hash   TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    created_by    TEXT,
    revoked_at    BIGINT,
    last_used_at  BIGINT
);

CREATE INDEX tokens_user_name ON tokens (user_name);
