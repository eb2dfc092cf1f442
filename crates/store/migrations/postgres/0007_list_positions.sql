-- Positions that make page 1000 of a long listing an index seek instead of a walk past 99,900
-- index entries (architecture.md, "Deep pages").

-- The event log: each event's place (1, 2, 3, ... in the order written) in its org's log, in
-- its project's log, and in each log's one-type view. Events are never deleted, so the places
-- are dense: page p of n newest-first is the places n - (p-1)*size down to n - p*size + 1,
-- and `event_counts` (now also per type: 'org:<id>:<TYPE>', 'group:<id>:<TYPE>') holds n.
ALTER TABLE events ADD COLUMN org_pos BIGINT;
ALTER TABLE events ADD COLUMN org_type_pos BIGINT;
ALTER TABLE events ADD COLUMN group_pos BIGINT;
ALTER TABLE events ADD COLUMN group_type_pos BIGINT;
UPDATE events SET org_pos = p.n FROM (
    SELECT id, ROW_NUMBER() OVER (PARTITION BY org_id ORDER BY created_at, id) AS n
    FROM events WHERE org_id IS NOT NULL) AS p WHERE events.id = p.id;
UPDATE events SET org_type_pos = p.n FROM (
    SELECT id, ROW_NUMBER() OVER (PARTITION BY org_id, event_type ORDER BY created_at, id) AS n
    FROM events WHERE org_id IS NOT NULL) AS p WHERE events.id = p.id;
UPDATE events SET group_pos = p.n FROM (
    SELECT id, ROW_NUMBER() OVER (PARTITION BY group_id ORDER BY created_at, id) AS n
    FROM events WHERE group_id IS NOT NULL) AS p WHERE events.id = p.id;
UPDATE events SET group_type_pos = p.n FROM (
    SELECT id, ROW_NUMBER() OVER (PARTITION BY group_id, event_type ORDER BY created_at, id) AS n
    FROM events WHERE group_id IS NOT NULL) AS p WHERE events.id = p.id;
-- Partial: an event of no project (most of them: revocations, key and account changes) writes
-- no project index entry, so numbering costs an event about what the index it replaces did.
CREATE UNIQUE INDEX events_org_pos ON events(org_id, org_pos) WHERE org_id IS NOT NULL;
CREATE UNIQUE INDEX events_org_type_pos ON events(org_id, event_type, org_type_pos)
    WHERE org_id IS NOT NULL;
CREATE UNIQUE INDEX events_group_pos ON events(group_id, group_pos) WHERE group_id IS NOT NULL;
CREATE UNIQUE INDEX events_group_type_pos ON events(group_id, event_type, group_type_pos)
    WHERE group_id IS NOT NULL;
DROP INDEX events_org_type;
DROP INDEX events_group;
CREATE INDEX events_group ON events(group_id, created_at, id) WHERE group_id IS NOT NULL;
DELETE FROM event_counts;
INSERT INTO event_counts (scope, n)
    SELECT 'org:' || org_id, COUNT(*) FROM events WHERE org_id IS NOT NULL GROUP BY org_id;
INSERT INTO event_counts (scope, n)
    SELECT 'org:' || org_id || ':' || event_type, COUNT(*) FROM events
    WHERE org_id IS NOT NULL GROUP BY org_id, event_type;
INSERT INTO event_counts (scope, n)
    SELECT 'group:' || group_id, COUNT(*) FROM events WHERE group_id IS NOT NULL GROUP BY group_id;
INSERT INTO event_counts (scope, n)
    SELECT 'group:' || group_id || ':' || event_type, COUNT(*) FROM events
    WHERE group_id IS NOT NULL GROUP BY group_id, event_type;

-- Service accounts: each account's place in its org (1, 2, 3, ... in the order created; never
-- reused, so a deletion leaves a gap), and how many live accounts each block of 1,024 places
-- holds. Page p starts in the block where the running sum of `n` passes (p-1)*size: one read
-- of the org's blocks (98 for 100,000 accounts) and at most 1,023 index entries skipped.
ALTER TABLE service_accounts ADD COLUMN org_pos BIGINT;
UPDATE service_accounts SET org_pos = p.n FROM (
    SELECT id, ROW_NUMBER() OVER (PARTITION BY org_id ORDER BY id) AS n FROM service_accounts
) AS p WHERE service_accounts.id = p.id;
CREATE UNIQUE INDEX service_accounts_org_pos ON service_accounts(org_id, org_pos);
ALTER TABLE sa_org_counts ADD COLUMN last_pos BIGINT NOT NULL DEFAULT 0;
UPDATE sa_org_counts SET last_pos = COALESCE(
    (SELECT MAX(org_pos) FROM service_accounts s WHERE s.org_id = sa_org_counts.org_id), 0);
CREATE TABLE sa_org_blocks (
    org_id  TEXT COLLATE "C" NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    block   BIGINT NOT NULL,  -- (org_pos - 1) / 1024
    n       BIGINT NOT NULL,  -- live accounts in it
    PRIMARY KEY (org_id, block)
);
INSERT INTO sa_org_blocks (org_id, block, n)
    SELECT org_id, (org_pos - 1) / 1024, COUNT(*) FROM service_accounts
    GROUP BY org_id, (org_pos - 1) / 1024;
