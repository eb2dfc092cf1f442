-- A project's database users (Atlas' "Database Users"). A SCRAM user's `scram` holds its SCRAM
-- credentials (salts, iteration counts, stored and server keys, as JSON): never a password.
-- `roles`, `scopes` and `labels` are JSON arrays. A project's users go with it.
CREATE TABLE database_users (
    group_id       TEXT COLLATE "C" NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    database_name  TEXT COLLATE "C" NOT NULL,   -- admin or $external: where the user authenticates
    username       TEXT COLLATE "C" NOT NULL,
    auth           TEXT COLLATE "C" NOT NULL,   -- scram | x509_customer | x509_managed | aws_iam_user | ...
    roles          TEXT COLLATE "C" NOT NULL,
    scopes         TEXT COLLATE "C" NOT NULL,
    labels         TEXT COLLATE "C" NOT NULL,
    description    TEXT COLLATE "C",
    delete_after   BIGINT,         -- epoch ms: a temporary user ends then; NULL: permanent
    scram          TEXT COLLATE "C",
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (group_id, database_name, username)
);
