-- Retention and legal hold. A session on hold (hold_reason set) is never deleted by the
-- retention sweeper: its DELETE re-checks `hold_reason IS NULL`, so a hold that lands while a
-- sweep runs wins. `held_by` is the user who placed the hold, `held_at` unix milliseconds.
-- `container_address` is the Compose address (`project.service.N`) the container had when the
-- session began (NULL: none, or a row written before it was recorded), so per-container
-- retention rules match it as token patterns do. Expired candidates are read by end time.
ALTER TABLE sessions ADD COLUMN hold_reason TEXT;
ALTER TABLE sessions ADD COLUMN held_by TEXT;
ALTER TABLE sessions ADD COLUMN held_at BIGINT;
ALTER TABLE sessions ADD COLUMN container_address TEXT;
CREATE INDEX sessions_ended_at ON sessions (ended_at);
-- Set by a retention sweep when it starts deleting an expired session's objects; a hold is
-- refused while it is recent (the sweep got there first), so a held session never lacks its
-- recording.
ALTER TABLE sessions ADD COLUMN expiring_at BIGINT;
