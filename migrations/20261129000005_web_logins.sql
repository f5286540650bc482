-- Browser sign-ins: the SHA-256 of a random cookie secret, bound to the token that signed in.
CREATE TABLE web_logins (
    id          TEXT PRIMARY KEY,
    token_id    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);

CREATE INDEX web_logins_token ON web_logins (token_id);
