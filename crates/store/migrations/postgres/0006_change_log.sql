-- What nodes sharing this database keep in memory changed: one row per change, written in the
-- change's own transaction. Nodes read it by sequence number (the feed); `NOTIFY` only wakes
-- them up, so a notification anyone can send changes nothing by itself. `node` is the writer,
-- which skips its own rows. Rows older than an hour are purged (a node away longer re-reads
-- everything).
CREATE TABLE change_log (
    seq         BIGSERIAL PRIMARY KEY,
    node        TEXT COLLATE "C" NOT NULL,
    kind        TEXT COLLATE "C" NOT NULL,
    subject     TEXT COLLATE "C" NOT NULL DEFAULT '',
    expires_at  BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL
);
CREATE INDEX change_log_created ON change_log (created_at);
