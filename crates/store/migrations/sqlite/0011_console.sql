-- The browser console (ours): sessions, sign-ins in progress and TOTP second factors.
-- A session or sign-in is found by the keyed hash of its cookie's random id, never by the id
-- itself. `roles` is what the person held when the session began (JSON strings such as
-- "org:<id>:ORG_OWNER"); a session that lost one of them ends at its next request. `flash` is a
-- sealed one-time message for the next page (a new secret, shown once), cleared when read.
-- A sign-in in progress (`console_logins`: between password and code, or an OIDC round trip)
-- is sealed whole (it holds the PKCE verifier and the nonce) and taken once.
CREATE TABLE console_sessions (
    id_hash     TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES cloud_users(id) ON DELETE CASCADE,
    csrf        TEXT NOT NULL,
    via         TEXT NOT NULL,
    roles       TEXT NOT NULL,
    flash       BLOB,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX console_sessions_user ON console_sessions (user_id);
CREATE TABLE console_logins (
    id_hash     TEXT PRIMARY KEY,
    body        BLOB NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE TABLE user_totp (
    user_id        TEXT PRIMARY KEY REFERENCES cloud_users(id) ON DELETE CASCADE,
    secret_sealed  BLOB NOT NULL,
    enrolled_at    INTEGER,
    last_step      INTEGER NOT NULL DEFAULT 0
);
