-- Federated authentication (OIDC identity providers). An organization's federation settings
-- are made on first need; the organization is its federation's only connected org (ours).
-- The IdP's and the connected org config's settings are JSON documents (`body`); the ids
-- other rows name are columns, so lookups and the rules below are the database's.
CREATE TABLE federation_settings (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL UNIQUE REFERENCES orgs(id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL
);
CREATE TABLE identity_providers (
    id             TEXT PRIMARY KEY,
    federation_id  TEXT NOT NULL REFERENCES federation_settings(id) ON DELETE CASCADE,
    legacy_id      TEXT NOT NULL UNIQUE,   -- `oktaIdpId`, 20 hex digits
    protocol       TEXT NOT NULL,          -- OIDC
    idp_type       TEXT NOT NULL,          -- WORKFORCE | WORKLOAD
    body           TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX identity_providers_federation ON identity_providers (federation_id);
-- An IdP in use is never deleted (the store checks it under the federation's row lock).
CREATE TABLE connected_org_configs (
    org_id                TEXT PRIMARY KEY REFERENCES orgs(id) ON DELETE CASCADE,
    federation_id         TEXT NOT NULL REFERENCES federation_settings(id) ON DELETE CASCADE,
    identity_provider_id  TEXT REFERENCES identity_providers(id) ON DELETE SET NULL,
    body                  TEXT NOT NULL
);
CREATE INDEX connected_org_configs_federation ON connected_org_configs (federation_id);
CREATE INDEX connected_org_configs_provider ON connected_org_configs (identity_provider_id);
CREATE TABLE role_mappings (
    id                   TEXT PRIMARY KEY,
    org_id               TEXT NOT NULL REFERENCES connected_org_configs(org_id) ON DELETE CASCADE,
    external_group_name  TEXT NOT NULL,
    assignments          TEXT NOT NULL,
    UNIQUE (org_id, external_group_name)
);
