-- Clusters and MongoDB employee access (CONTRACT §10), and support operators (ours).

-- A cluster is a record (Tessera hosts no databases). `body` is a JSON object: the other
-- top-level fields the client sent. The grant is stored with its expiry; whether it is
-- active is computed against the current time, so no job has to remove it.
CREATE TABLE clusters (
    id                     TEXT PRIMARY KEY NOT NULL,  -- 24 hex
    -- No cascade: a project with clusters cannot be deleted (checked in delete_group).
    group_id               TEXT NOT NULL REFERENCES groups(id),
    name                   TEXT NOT NULL,
    created_at             INTEGER NOT NULL,           -- epoch milliseconds, UTC
    state_name             TEXT NOT NULL,
    body                   TEXT NOT NULL DEFAULT '{}',
    grant_type             TEXT,                       -- NULL: no grant
    grant_expires_at       INTEGER,                    -- set together with grant_type
    grant_expiry_recorded  INTEGER NOT NULL DEFAULT 0, -- 1 once the EXPIRED event is written
    CHECK ((grant_type IS NULL) = (grant_expires_at IS NULL))
);
-- Cluster names are unique within a project.
CREATE UNIQUE INDEX clusters_group_name ON clusters(group_id, name);
-- Grants whose expiry is not yet recorded, by expiry (the periodic pass).
CREATE INDEX clusters_grant_expiry ON clusters(grant_expires_at)
    WHERE grant_expires_at IS NOT NULL AND grant_expiry_recorded = 0;

-- Support operators: the platform's staff act through these credentials, which only the
-- `tessera` CLI creates. Only a keyed hash of the secret is stored.
CREATE TABLE operators (
    id           TEXT PRIMARY KEY NOT NULL,  -- 24 hex
    name         TEXT NOT NULL UNIQUE,
    secret_hash  BLOB NOT NULL,              -- HMAC-SHA-256 under a server key
    masked       TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);
