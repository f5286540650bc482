-- Who did what to which session: replays, downloads, kills (and later, live watches).
CREATE TABLE audit_log (
    id          TEXT PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    role        TEXT NOT NULL,
    action      TEXT NOT NULL,
    session_id  TEXT,
    source_addr TEXT NOT NULL,
    detail      TEXT
);

CREATE INDEX audit_log_session ON audit_log (session_id, at);
