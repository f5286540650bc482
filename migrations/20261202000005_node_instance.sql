-- Which gateway process wrote a node's heartbeat (`host:pid:random`), so that a second
-- gateway started with the same node id sees the first one and refuses to run beside it.
ALTER TABLE nodes ADD COLUMN instance TEXT NOT NULL DEFAULT '';
