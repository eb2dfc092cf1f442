-- Organizations, projects (groups) and programmatic API keys.
-- Timestamps are milliseconds since the epoch (UTC) on every backend.

CREATE TABLE meta (
    key   TEXT COLLATE "C" PRIMARY KEY,
    value TEXT COLLATE "C" NOT NULL
);

CREATE TABLE orgs (
    id                   TEXT COLLATE "C" PRIMARY KEY,
    name                 TEXT COLLATE "C" NOT NULL,
    skip_default_alerts  BOOLEAN NOT NULL DEFAULT FALSE,
    created_at           BIGINT NOT NULL
);

CREATE TABLE groups (
    id                         TEXT COLLATE "C" PRIMARY KEY,
    org_id                     TEXT COLLATE "C" NOT NULL REFERENCES orgs(id),
    name                       TEXT COLLATE "C" NOT NULL,
    with_default_alerts        BOOLEAN NOT NULL DEFAULT TRUE,
    region_usage_restrictions  TEXT COLLATE "C",
    tags                       TEXT COLLATE "C" NOT NULL DEFAULT '[]',
    created_at                 BIGINT NOT NULL
);
CREATE UNIQUE INDEX groups_org_name ON groups(org_id, name);

CREATE TABLE api_keys (
    id                  TEXT COLLATE "C" PRIMARY KEY,
    org_id              TEXT COLLATE "C" NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    public_key          TEXT COLLATE "C" NOT NULL UNIQUE,
    description         TEXT COLLATE "C" NOT NULL,
    private_key_masked  TEXT COLLATE "C" NOT NULL,
    ha1_md5_sealed      BYTEA NOT NULL,
    ha1_sha256_sealed   BYTEA NOT NULL,
    org_roles           TEXT COLLATE "C" NOT NULL,
    created_at          BIGINT NOT NULL
);
CREATE INDEX api_keys_org ON api_keys(org_id, id);

CREATE TABLE api_key_groups (
    api_key_id  TEXT COLLATE "C" NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
    group_id    TEXT COLLATE "C" NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    roles       TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (api_key_id, group_id)
);
CREATE INDEX api_key_groups_group ON api_key_groups(group_id, api_key_id);
