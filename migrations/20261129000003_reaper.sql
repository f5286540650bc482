-- The reaper's outcome on each session, and gateway node heartbeats for the sweeper.
ALTER TABLE sessions ADD COLUMN reap_status TEXT;
ALTER TABLE sessions ADD COLUMN reap_killed BIGINT;
ALTER TABLE sessions ADD COLUMN reap_detail TEXT;

CREATE TABLE nodes (
    id            TEXT PRIMARY KEY,
    heartbeat_at  BIGINT NOT NULL
);
