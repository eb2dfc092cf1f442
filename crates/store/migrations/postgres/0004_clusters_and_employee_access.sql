-- Clusters and MongoDB employee access (CONTRACT §10), and support operators (ours).

-- A cluster is a record (Tessera hosts no databases). `body` is a JSON object: the other
-- top-level fields the client sent, kept as text exactly as the SQLite schema keeps it. The
-- grant is stored with its expiry; whether it is active is computed against the current
-- time, so no job has to remove it.
CREATE TABLE clusters (
    id                     TEXT COLLATE "C" PRIMARY KEY,  -- 24 hex
    -- No cascade: a project with clusters cannot be deleted (checked in delete_group, after
    -- locking the project's row).
    group_id               TEXT COLLATE "C" NOT NULL REFERENCES groups(id),
    name                   TEXT COLLATE "C" NOT NULL,
    created_at             BIGINT NOT NULL,               -- epoch milliseconds, UTC
    state_name             TEXT COLLATE "C" NOT NULL,
    body                   TEXT COLLATE "C" NOT NULL DEFAULT '{}',
    grant_type             TEXT COLLATE "C",              -- NULL: no grant
    grant_expires_at       BIGINT,                        -- set together with grant_type
    grant_expiry_recorded  BOOLEAN NOT NULL DEFAULT FALSE, -- true once the EXPIRED event is written
    CHECK ((grant_type IS NULL) = (grant_expires_at IS NULL))
);
-- Cluster names are unique within a project.
CREATE UNIQUE INDEX clusters_group_name ON clusters(group_id, name);
-- Grants whose expiry is not yet recorded, by expiry (the periodic pass).
CREATE INDEX clusters_grant_expiry ON clusters(grant_expires_at)
    WHERE grant_expires_at IS NOT NULL AND NOT grant_expiry_recorded;

-- Support operators: the platform's staff act through these credentials, which only the
-- `tessera` CLI creates. Only a keyed hash of the secret is stored.
CREATE TABLE operators (
    id           TEXT COLLATE "C" PRIMARY KEY,            -- 24 hex
    name         TEXT COLLATE "C" NOT NULL UNIQUE,
    secret_hash  BYTEA NOT NULL,                          -- HMAC-SHA-256 under a server key
    masked       TEXT COLLATE "C" NOT NULL,
    created_at   BIGINT NOT NULL
);
