-- Command rule hits: each command that matched a rule (notify, review, block, kill), what became
-- of it (`outcome`: notified, blocked, pending, approved, denied, timed_out, cancelled, killed,
-- ended), and who decided a review. `at` is Unix milliseconds, `offset_ms` milliseconds from the
-- session's start (its asciicast's clock). A pending review is settled by exactly one
-- `UPDATE … WHERE outcome = 'pending'`, whichever gateway or admin gets there first.
CREATE TABLE rule_hits (
    id              TEXT PRIMARY KEY,
    session_id      TEXT NOT NULL,
    at              BIGINT NOT NULL,
    offset_ms       BIGINT NOT NULL,
    rule            TEXT NOT NULL,
    action          TEXT NOT NULL,
    command         TEXT NOT NULL,
    outcome         TEXT NOT NULL,
    decided_by      TEXT,
    decided_at      BIGINT,
    user_name       TEXT NOT NULL,
    container_name  TEXT NOT NULL,
    node_id         TEXT NOT NULL
);
CREATE INDEX rule_hits_recent ON rule_hits (id);
CREATE INDEX rule_hits_session ON rule_hits (session_id, id);
CREATE INDEX rule_hits_outcome ON rule_hits (outcome, id);
