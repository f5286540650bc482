-- Share links: one finished session's replay for an outside auditor, until the link expires or
-- is revoked. Portable SQL (SQLite and PostgreSQL); times are unix milliseconds. Only the
-- SHA-256 of a link's secret is stored.
CREATE TABLE share_links (
    id               TEXT PRIMARY KEY,
    secret_hash      TEXT NOT NULL,
    session_id       TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    created_by_token TEXT,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    until_ms         BIGINT,
    revoked_at       BIGINT,
    revoked_by       TEXT
);

CREATE INDEX share_links_session ON share_links (session_id, created_at);
