-- How many service accounts each organization has, kept in the transaction of every account
-- creation and deletion, so an org's listing reads its `totalCount` instead of walking the org's
-- index entries (100,000 of them in a large org) on every page. An org's row goes with it.
CREATE TABLE sa_org_counts (
    org_id  TEXT COLLATE "C" PRIMARY KEY REFERENCES orgs(id) ON DELETE CASCADE,
    n       BIGINT NOT NULL
);
INSERT INTO sa_org_counts (org_id, n)
    SELECT org_id, COUNT(*) FROM service_accounts GROUP BY org_id;
