#!/usr/bin/env python3
"""Loads synthetic events into a Tessera SQLite database, for benchmarking the event log.

Usage: scripts/load-events.py <tessera.db> <orgId> [count] [groupId]

Inserts `count` (default 1,000,000) events into `events` for the organization, one per second
ending now (a tenth of them in project `groupId` when given), and adds them to `event_counts`
the way the store does, in transactions of 100,000 rows. The server may be running: SQLite
serializes the writes (the loader waits on its lock). Ids follow Tessera's layout (4 bytes of
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
BATCH = 100_000


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
    in_group = 0
    for first in range(0, count, BATCH):
        rows = []
        for i in range(first, min(first + BATCH, count)):
            created = start_ms + i * 1000
            eid = f"{created // 1000:08x}{process}{i & 0xFFFFFF:06x}"
            g = group if group and i % 10 == 0 else None
            in_group += g is not None
            rows.append((eid, created, TYPES[i % len(TYPES)], org, g, "api_key",
                         "0" * 24, "benchkey", None, "127.0.0.1", target))
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO events (id, created_at, event_type, org_id, group_id, actor_kind, "
            "actor_api_key_id, actor_public_key, actor_client_id, remote_address, target, count) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
            rows,
        )
        conn.execute("COMMIT")
        print(f"  {min(first + BATCH, count):,} events", file=sys.stderr)
    conn.execute("BEGIN IMMEDIATE")
    scopes = [(f"org:{org}", count)] + ([(f"group:{group}", in_group)] if group else [])
    for scope, n in scopes:
        conn.execute(
            "INSERT INTO event_counts (scope, n) VALUES (?, ?) "
            "ON CONFLICT(scope) DO UPDATE SET n = n + excluded.n",
            (scope, n),
        )
    conn.execute("COMMIT")
    conn.close()


if __name__ == "__main__":
    main()
