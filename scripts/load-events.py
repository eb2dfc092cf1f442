#!/usr/bin/env python3
"""Loads synthetic events into a Tessera SQLite database, for benchmarking the event log.

Usage: scripts/load-events.py <tessera.db> <orgId> [count] [groupId]

Inserts `count` (default 1,000,000) events into `events` for the organization, one per second
ending now (a tenth of them in project `groupId` when given), each numbered in its logs and
counted in `event_counts` the way the store does (migration 0006), in one transaction. The
server may be running: SQLite serializes the writes (the loader waits on its lock). Ids follow Tessera's layout (4 bytes of
seconds, 5 random bytes per run, a 3-byte counter), so they sort in creation order.

This writes benchmark data only: never run it against a database you care about.
"""
import json
import os
import sqlite3
import sys
import time

TYPES = [
    "API_KEY_CREATED",
    "API_KEY_ROLES_CHANGED",
    "SERVICE_ACCOUNT_CREATED",
    "SERVICE_ACCOUNT_SECRET_ADDED",
    "SERVICE_ACCOUNT_TOKEN_REVOKED",
    "GROUP_CREATED",
]
BATCH = 100_000  # rows built in memory at a time


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    db, org = sys.argv[1], sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000
    group = sys.argv[4] if len(sys.argv) > 4 else None
    process = os.urandom(5).hex()
    end_ms = int(time.time() * 1000)
    start_ms = end_ms - count * 1000
    conn = sqlite3.connect(db, timeout=60, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 60000")
    target = json.dumps({"targetPublicKey": "benchkey", "targetApiKeyId": "0" * 24})
    # One transaction, so nothing the server writes meanwhile takes a position read here.
    conn.execute("BEGIN IMMEDIATE")
    # Each log's next position: one past its count (the store numbers events 1, 2, 3, ...).
    counts = dict(conn.execute("SELECT scope, n FROM event_counts").fetchall())

    def place(scope):
        if scope is None:
            return None
        counts[scope] = counts.get(scope, 0) + 1
        return counts[scope]

    for first in range(0, count, BATCH):
        rows = []
        for i in range(first, min(first + BATCH, count)):
            created = start_ms + i * 1000
            eid = f"{created // 1000:08x}{process}{i & 0xFFFFFF:06x}"
            g = group if group and i % 10 == 0 else None
            t = TYPES[i % len(TYPES)]
            positions = (place(f"org:{org}"), place(f"org:{org}:{t}"),
                         place(g and f"group:{g}"), place(g and f"group:{g}:{t}"))
            rows.append((eid, created, t, org, g, "api_key",
                         "0" * 24, "benchkey", None, "127.0.0.1", target) + positions)
        conn.executemany(
            "INSERT INTO events (id, created_at, event_type, org_id, group_id, actor_kind, "
            "actor_api_key_id, actor_public_key, actor_client_id, remote_address, target, count, "
            "org_pos, org_type_pos, group_pos, group_type_pos) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)",
            rows,
        )
        print(f"  {min(first + BATCH, count):,} events", file=sys.stderr)
    conn.executemany(
        "INSERT INTO event_counts (scope, n) VALUES (?, ?) "
        "ON CONFLICT(scope) DO UPDATE SET n = excluded.n",
        list(counts.items()),
    )
    conn.execute("COMMIT")
    conn.close()


if __name__ == "__main__":
    main()
