-- The project IP access list (Atlas' "Project IP Access List"): what a project's clusters
-- accept connections from. A project's entries go with it.
CREATE TABLE network_access (
    group_id      TEXT COLLATE "C" NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    entry         TEXT COLLATE "C" NOT NULL,     -- CIDR (an address as /32 or /128) or an AWS security group id
    kind          TEXT COLLATE "C" NOT NULL,     -- ip | cidr | sg: how it was given, which decides how it is shown
    comment       TEXT COLLATE "C",
    delete_after  BIGINT,           -- epoch ms: a temporary entry ends then; NULL: permanent
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (group_id, entry)
);
