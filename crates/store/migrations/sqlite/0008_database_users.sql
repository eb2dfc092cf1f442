-- A project's database users (Atlas' "Database Users"). A SCRAM user's `scram` holds its SCRAM
-- credentials (salts, iteration counts, stored and server keys, as JSON): never a password.
-- `roles`, `scopes` and `labels` are JSON arrays. A project's users go with it.
CREATE TABLE database_users (
    group_id       TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    database_name  TEXT NOT NULL,   -- admin or $external: where the user authenticates
    username       TEXT NOT NULL,
    auth           TEXT NOT NULL,   -- scram | x509_customer | x509_managed | aws_iam_user | ...
    roles          TEXT NOT NULL,
    scopes         TEXT NOT NULL,
    labels         TEXT NOT NULL,
    description    TEXT,
    delete_after   INTEGER,         -- epoch ms: a temporary user ends then; NULL: permanent
    scram          TEXT,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (group_id, database_name, username)
);
