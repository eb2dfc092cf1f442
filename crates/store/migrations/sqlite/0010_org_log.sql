-- The org log holds the organization's own events only (Atlas' org event views list no project
-- event): a project's events are in the project's log, and are no longer numbered in the
-- org's. The org log is renumbered densely in the order it had. And Atlas' names for MongoDB
-- employee access events (ours, EXPIRED and USED, in the same style).
UPDATE events SET event_type = CASE event_type
        WHEN 'EMPLOYEE_ACCESS_GRANTED' THEN 'EMPLOYEE_ACCESS_GRANTED'
        WHEN 'EMPLOYEE_ACCESS_REVOKED' THEN 'EMPLOYEE_ACCESS_REVOKED'
        WHEN 'EMPLOYEE_ACCESS_EXPIRED' THEN 'EMPLOYEE_ACCESS_EXPIRED'
        ELSE 'EMPLOYEE_ACCESS_USED' END
    WHERE event_type IN ('EMPLOYEE_ACCESS_GRANTED', 'EMPLOYEE_ACCESS_REVOKED',
                         'EMPLOYEE_ACCESS_EXPIRED', 'EMPLOYEE_ACCESS_USED');
DROP INDEX events_org_pos;
DROP INDEX events_org_type_pos;
UPDATE events SET org_pos = p.n, org_type_pos = p.t FROM (
    SELECT id,
        ROW_NUMBER() OVER (PARTITION BY org_id ORDER BY org_pos) AS n,
        ROW_NUMBER() OVER (PARTITION BY org_id, event_type ORDER BY org_pos) AS t
    FROM events WHERE org_id IS NOT NULL AND group_id IS NULL) AS p
    WHERE events.id = p.id;
UPDATE events SET org_pos = NULL, org_type_pos = NULL WHERE group_id IS NOT NULL;
CREATE UNIQUE INDEX events_org_pos ON events(org_id, org_pos) WHERE org_pos IS NOT NULL;
CREATE UNIQUE INDEX events_org_type_pos ON events(org_id, event_type, org_type_pos)
    WHERE org_type_pos IS NOT NULL;
DELETE FROM event_counts WHERE scope LIKE 'org:%';
INSERT INTO event_counts (scope, n)
    SELECT 'org:' || org_id, COUNT(*) FROM events
    WHERE org_id IS NOT NULL AND group_id IS NULL GROUP BY org_id;
INSERT INTO event_counts (scope, n)
    SELECT 'org:' || org_id || ':' || event_type, COUNT(*) FROM events
    WHERE org_id IS NOT NULL AND group_id IS NULL GROUP BY org_id, event_type;
DELETE FROM event_counts WHERE scope LIKE 'group:%:EMPLOYEE_ACCESS_%';
INSERT INTO event_counts (scope, n)
    SELECT 'group:' || group_id || ':' || event_type, COUNT(*) FROM events
    WHERE group_id IS NOT NULL AND event_type IN ('EMPLOYEE_ACCESS_GRANTED',
        'EMPLOYEE_ACCESS_REVOKED', 'EMPLOYEE_ACCESS_EXPIRED', 'EMPLOYEE_ACCESS_USED')
    GROUP BY group_id, event_type;
-- A person who acted (a MongoDB Cloud user, once people sign in): its id and name.
ALTER TABLE events ADD COLUMN actor_user_id TEXT;
ALTER TABLE events ADD COLUMN actor_username TEXT;
