-- What a token may shape of an exec, its expiry, and what shaped each session's exec.
-- Lists are JSON text; booleans are 0/1 (portable between SQLite and PostgreSQL).
ALTER TABLE tokens ADD COLUMN exec_users TEXT NOT NULL DEFAULT '[]';
ALTER TABLE tokens ADD COLUMN env_allow TEXT;
ALTER TABLE tokens ADD COLUMN allow_privileged BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN expires_at BIGINT;

-- The exec user the client asked for (NULL: none) and the one the exec ran as (the asked one,
-- or the container's configured user, '' meaning the image default root), the working
-- directory asked for, and the environment the client added (JSON object, secret values
-- redacted).
ALTER TABLE sessions ADD COLUMN exec_user TEXT;
ALTER TABLE sessions ADD COLUMN exec_user_effective TEXT;
ALTER TABLE sessions ADD COLUMN workdir TEXT;
ALTER TABLE sessions ADD COLUMN exec_env TEXT;
