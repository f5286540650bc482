-- Signed manifests: one per stored recording, chained per gateway node. `seq` counts a node's
-- manifests from 1; `sha256` is the SHA-256 of the manifest's bytes exactly as stored beside the
-- recording (`<id>.manifest.json`, signed in `<id>.manifest.json.minisig`), and
-- `previous_sha256` that of the node's manifest before it (NULL for the first). Rows outlive
-- their session: retention deletes the recording and the session row but keeps the manifest,
-- setting `expired_at`, so a node's chain stays whole. No uniqueness on (node_id, seq): a fork
-- (two manifests claiming one place) must be recordable to be reported.
CREATE TABLE manifests (
    session_id       TEXT PRIMARY KEY,
    node_id          TEXT NOT NULL,
    seq              BIGINT NOT NULL,
    sha256           TEXT NOT NULL,
    previous_sha256  TEXT,
    location         TEXT NOT NULL,
    signed_at        BIGINT NOT NULL,
    expired_at       BIGINT
);
CREATE INDEX manifests_chain ON manifests (node_id, seq);
CREATE INDEX manifests_signed ON manifests (node_id, signed_at);
