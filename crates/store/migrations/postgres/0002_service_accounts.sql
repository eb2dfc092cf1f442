-- Service accounts, their secrets (keyed hashes only), access lists, project assignments,
-- and revoked access tokens.

CREATE TABLE service_accounts (
    id           TEXT COLLATE "C" PRIMARY KEY,  -- the 24 hex digits of the clientId
    org_id       TEXT COLLATE "C" NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name         TEXT COLLATE "C" NOT NULL,
    description  TEXT COLLATE "C" NOT NULL,
    org_roles    TEXT COLLATE "C" NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX service_accounts_org ON service_accounts(org_id, id);

CREATE TABLE sa_secrets (
    id            TEXT COLLATE "C" PRIMARY KEY,
    account_id    TEXT COLLATE "C" NOT NULL REFERENCES service_accounts(id) ON DELETE CASCADE,
    secret_hash   BYTEA NOT NULL,               -- HMAC-SHA-256 under a server key
    masked        TEXT COLLATE "C" NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    last_used_at  BIGINT
);
CREATE INDEX sa_secrets_account ON sa_secrets(account_id, id);

CREATE TABLE sa_access_list (
    account_id         TEXT COLLATE "C" NOT NULL REFERENCES service_accounts(id) ON DELETE CASCADE,
    entry              TEXT COLLATE "C" NOT NULL,          -- canonical CIDR (a single address is /32 or /128)
    is_cidr            BOOLEAN NOT NULL,       -- true when given as cidrBlock, false as ipAddress
    created_at         BIGINT NOT NULL,
    last_used_at       BIGINT,
    last_used_address  TEXT COLLATE "C",
    request_count      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, entry)
);

CREATE TABLE sa_groups (
    account_id  TEXT COLLATE "C" NOT NULL REFERENCES service_accounts(id) ON DELETE CASCADE,
    group_id    TEXT COLLATE "C" NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    roles       TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (account_id, group_id)
);
CREATE INDEX sa_groups_group ON sa_groups(group_id, account_id);

CREATE TABLE revoked_tokens (
    jti         TEXT COLLATE "C" PRIMARY KEY,
    account_id  TEXT COLLATE "C" NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX revoked_tokens_expiry ON revoked_tokens(expires_at);
