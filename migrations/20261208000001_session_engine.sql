-- The Docker engine that holds a session's exec, by its configured name: every reap, kill and
-- sweep of the session goes to that engine, from whichever gateway does it. Rows written before
-- gateways had several engines ran on their one engine, named `local`.
ALTER TABLE sessions ADD COLUMN engine TEXT NOT NULL DEFAULT 'local';
