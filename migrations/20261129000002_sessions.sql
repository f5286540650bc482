-- One row per session. Portable SQL: the same file runs on SQLite and PostgreSQL.
-- Times are unix milliseconds; numbers are BIGINT; the command is a JSON array.
CREATE TABLE sessions (
    id                  TEXT PRIMARY KEY,
    user_name           TEXT NOT NULL,
    role                TEXT NOT NULL,
    token_id            TEXT,
    source_addr         TEXT NOT NULL,
    client_kind         TEXT NOT NULL,
    container_id        TEXT NOT NULL,
    container_name      TEXT NOT NULL,
    container_image     TEXT NOT NULL,
    command             TEXT NOT NULL,
    tty                 BIGINT NOT NULL,
    node_id             TEXT NOT NULL,
    exec_id             TEXT NOT NULL,
    started_at          BIGINT NOT NULL,
    ended_at            BIGINT,
    status              TEXT NOT NULL,
    exit_code           BIGINT,
    close_reason        TEXT,
    close_detail        TEXT,
    initial_cols        BIGINT,
    initial_rows        BIGINT,
    last_cols           BIGINT,
    last_rows           BIGINT,
    bytes_in            BIGINT NOT NULL DEFAULT 0,
    bytes_out           BIGINT NOT NULL DEFAULT 0,
    recording_location  TEXT,
    recording_size      BIGINT,
    recording_sha256    TEXT,
    recording_error     TEXT
);

CREATE INDEX sessions_started_at ON sessions (started_at);
CREATE INDEX sessions_user_name ON sessions (user_name, started_at);
CREATE INDEX sessions_status ON sessions (status, node_id);
