-- Federated authentication (OIDC identity providers). An organization's federation settings
-- are made on first need; the organization is its federation's only connected org (ours).
-- The IdP's and the connected org config's settings are JSON documents (`body`); the ids
-- other rows name are columns, so lookups and the rules below are the database's.
CREATE TABLE federation_settings (
    id          TEXT COLLATE "C" PRIMARY KEY,
    org_id      TEXT COLLATE "C" NOT NULL UNIQUE REFERENCES orgs(id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL
);
CREATE TABLE identity_providers (
    id             TEXT COLLATE "C" PRIMARY KEY,
    federation_id  TEXT COLLATE "C" NOT NULL REFERENCES federation_settings(id) ON DELETE CASCADE,
    legacy_id      TEXT COLLATE "C" NOT NULL UNIQUE,   -- `oktaIdpId`, 20 hex digits
    protocol       TEXT COLLATE "C" NOT NULL,          -- OIDC
    idp_type       TEXT COLLATE "C" NOT NULL,          -- WORKFORCE | WORKLOAD
    body           TEXT COLLATE "C" NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX identity_providers_federation ON identity_providers (federation_id);
-- An IdP in use is never deleted (the store checks it under the federation's row lock).
CREATE TABLE connected_org_configs (
    org_id                TEXT COLLATE "C" PRIMARY KEY REFERENCES orgs(id) ON DELETE CASCADE,
    federation_id         TEXT COLLATE "C" NOT NULL REFERENCES federation_settings(id) ON DELETE CASCADE,
    identity_provider_id  TEXT COLLATE "C" REFERENCES identity_providers(id) ON DELETE SET NULL,
    body                  TEXT COLLATE "C" NOT NULL
);
CREATE INDEX connected_org_configs_federation ON connected_org_configs (federation_id);
CREATE INDEX connected_org_configs_provider ON connected_org_configs (identity_provider_id);
CREATE TABLE role_mappings (
    id                   TEXT COLLATE "C" PRIMARY KEY,
    org_id               TEXT COLLATE "C" NOT NULL REFERENCES connected_org_configs(org_id) ON DELETE CASCADE,
    external_group_name  TEXT COLLATE "C" NOT NULL,
    assignments          TEXT COLLATE "C" NOT NULL,
    UNIQUE (org_id, external_group_name)
);
