-- The event log (CONTRACT §11) and API-key access lists (CONTRACT §7).

-- Events outlive what they describe: no foreign keys, so deleting an org, project, key or
-- account keeps its history (for `tessera events export`). Never a secret, key or token.
CREATE TABLE events (
    id              TEXT COLLATE "C" PRIMARY KEY,  -- 24 hex, time-ordered
    created_at      BIGINT NOT NULL,           -- epoch milliseconds, UTC
    event_type      TEXT COLLATE "C" NOT NULL,
    org_id          TEXT COLLATE "C",
    group_id        TEXT COLLATE "C",
    actor_kind      TEXT COLLATE "C" NOT NULL,              -- api_key | service_account | system | anonymous
    actor_api_key_id TEXT COLLATE "C",                      -- the API key that acted, or
    actor_public_key TEXT COLLATE "C",
    actor_client_id TEXT COLLATE "C",                       -- the service account that acted (24 hex)
    remote_address  TEXT COLLATE "C",
    target          TEXT COLLATE "C" NOT NULL,              -- JSON object: the ids of what changed
    count           BIGINT NOT NULL DEFAULT 1, -- > 1 only for aggregated failures
    agg_key         TEXT COLLATE "C" UNIQUE                 -- (principal, address, minute) of an aggregate
);
-- Newest first within an org or a project; the index alone pages (see list_events).
CREATE INDEX events_org ON events(org_id, created_at, id);
CREATE INDEX events_group ON events(group_id, created_at, id);
-- An eventType filter (one type: in order from the index; its totalCount an index range).
CREATE INDEX events_org_type ON events(org_id, event_type, created_at, id);
CREATE INDEX events_created ON events(created_at, id);

-- Events per scope ('org:<id>', 'group:<id>'), kept in the inserting transaction, so an
-- unfiltered listing's totalCount is one row read, not a count of a million.
CREATE TABLE event_counts (
    scope  TEXT COLLATE "C" PRIMARY KEY,
    n      BIGINT NOT NULL
);

CREATE TABLE api_key_access_list (
    api_key_id         TEXT COLLATE "C" NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
    entry              TEXT COLLATE "C" NOT NULL,          -- canonical CIDR (a single address is /32 or /128)
    is_cidr            BOOLEAN NOT NULL,       -- true when given as cidrBlock, false as ipAddress
    created_at         BIGINT NOT NULL,
    last_used_at       BIGINT,
    last_used_address  TEXT COLLATE "C",
    request_count      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (api_key_id, entry)
);
