-- People (Atlas' "MongoDB Cloud Users", teams, invitations), project settings and limits.
-- A user is a person, who may belong to several organizations; `password_hash` is an argon2id
-- PHC string, NULL for a person known only by an invitation. A membership is active, or pending
-- while its invitation (`invitation_id`, `expires_at`) is open. Project roles of a member and
-- of a team are rows of their own, so a project's deletion takes them with it.
CREATE TABLE cloud_users (
    id             TEXT PRIMARY KEY,
    username       TEXT NOT NULL UNIQUE,   -- an email address, lower case
    first_name     TEXT,
    last_name      TEXT,
    country        TEXT,
    mobile_number  TEXT,
    password_hash  TEXT,
    created_at     INTEGER NOT NULL
);
CREATE TABLE org_members (
    org_id         TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    user_id        TEXT NOT NULL REFERENCES cloud_users(id) ON DELETE CASCADE,
    org_roles      TEXT NOT NULL,
    invitation_id  TEXT UNIQUE,   -- NULL: active
    inviter        TEXT,
    invited_at     INTEGER,
    expires_at     INTEGER,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX org_members_user ON org_members (user_id);
CREATE TABLE group_members (
    group_id  TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL REFERENCES cloud_users(id) ON DELETE CASCADE,
    roles     TEXT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id);
CREATE TABLE teams (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX teams_org ON teams (org_id);
CREATE TABLE team_members (
    team_id  TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES cloud_users(id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, user_id)
);
CREATE TABLE team_groups (
    team_id   TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    group_id  TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    roles     TEXT NOT NULL,
    PRIMARY KEY (team_id, group_id)
);
CREATE INDEX team_groups_group ON team_groups (group_id);
-- Organization and project settings: the document as JSON, one row each once changed.
CREATE TABLE org_settings (
    org_id  TEXT PRIMARY KEY REFERENCES orgs(id) ON DELETE CASCADE,
    body    TEXT NOT NULL
);
CREATE TABLE group_settings (
    group_id  TEXT PRIMARY KEY REFERENCES groups(id) ON DELETE CASCADE,
    body      TEXT NOT NULL
);
-- A project's limits set away from their defaults.
CREATE TABLE group_limits (
    group_id  TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    name      TEXT NOT NULL,
    value     INTEGER NOT NULL,
    PRIMARY KEY (group_id, name)
);
-- A cluster's process arguments (`processArgs`), kept with its record.
CREATE TABLE cluster_process_args (
    cluster_id  TEXT PRIMARY KEY REFERENCES clusters(id) ON DELETE CASCADE,
    body        TEXT NOT NULL
);
-- A project's custom database roles: the role as JSON (actions, inherited roles).
CREATE TABLE custom_db_roles (
    group_id    TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    role_name   TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (group_id, role_name)
);
-- X.509: the per-project CA that signs managed client certificates (its key sealed with the
-- server's sealing key), the certificates issued (never their keys), and a project's
-- customer-managed X.509 settings (`userSecurity`).
CREATE TABLE project_cas (
    group_id    TEXT PRIMARY KEY REFERENCES groups(id) ON DELETE CASCADE,
    cert_pem    TEXT NOT NULL,
    key_sealed  TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE TABLE db_user_certs (
    group_id    TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    username    TEXT NOT NULL,
    serial      INTEGER NOT NULL,
    subject     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    not_after   INTEGER NOT NULL,
    PRIMARY KEY (group_id, serial)
);
CREATE TABLE group_user_security (
    group_id  TEXT PRIMARY KEY REFERENCES groups(id) ON DELETE CASCADE,
    body      TEXT NOT NULL
);
