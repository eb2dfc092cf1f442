-- Service accounts, their secrets (keyed hashes only), access lists, project assignments,
-- and revoked access tokens.

CREATE TABLE service_accounts (
    id           TEXT PRIMARY KEY NOT NULL,  -- the 24 hex digits of the clientId
    org_id       TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL,
    org_roles    TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX service_accounts_org ON service_accounts(org_id, id);

CREATE TABLE sa_secrets (
    id            TEXT PRIMARY KEY NOT NULL,
    account_id    TEXT NOT NULL REFERENCES service_accounts(id) ON DELETE CASCADE,
    secret_hash   BLOB NOT NULL,               -- HMAC-SHA-256 under a server key
    masked        TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    last_used_at  INTEGER
);
CREATE INDEX sa_secrets_account ON sa_secrets(account_id, id);

CREATE TABLE sa_access_list (
    account_id         TEXT NOT NULL REFERENCES service_accounts(id) ON DELETE CASCADE,
    entry              TEXT NOT NULL,          -- canonical CIDR (a single address is /32 or /128)
    is_cidr            INTEGER NOT NULL,       -- 1 when given as cidrBlock, 0 as ipAddress
    created_at         INTEGER NOT NULL,
    last_used_at       INTEGER,
    last_used_address  TEXT,
    request_count      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, entry)
);

CREATE TABLE sa_groups (
    account_id  TEXT NOT NULL REFERENCES service_accounts(id) ON DELETE CASCADE,
    group_id    TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    roles       TEXT NOT NULL,
    PRIMARY KEY (account_id, group_id)
);
CREATE INDEX sa_groups_group ON sa_groups(group_id, account_id);

CREATE TABLE revoked_tokens (
    jti         TEXT PRIMARY KEY NOT NULL,
    account_id  TEXT NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX revoked_tokens_expiry ON revoked_tokens(expires_at);
