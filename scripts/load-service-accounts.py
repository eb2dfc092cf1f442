#!/usr/bin/env python3
"""Loads synthetic service accounts into a stopped Tessera's SQLite database, for benchmarking.

Usage: scripts/load-service-accounts.py <tessera.db | postgres://...> <orgId> [in-org] [orgs] [per-org]

Adds `in-org` accounts (default 100,000) to organization `orgId` (so its listing has 1,000
pages of 100), then `orgs` new organizations (default 900) with `per-org` accounts each
(default 1,000): 1,000,000 accounts with the defaults. Every account has two unexpired
secrets whose hashes are random (no client can mint with them; the benchmark makes its own
account through the API for that) and the role ORG_MEMBER. Rows go in, in transactions of
50,000 accounts, the way the store writes them; ids follow Tessera's layout (4 bytes of
seconds, 5 random bytes per run, a 3-byte counter), so they sort in creation order.

Given a PostgreSQL URL, the same rows are made by SQL (generate_series) through `psql`.

Stop the server first: it loads every account at start and does not see rows added behind
its back until it restarts. This writes benchmark data only: never run it against a database
you care about.
"""
import os
import sqlite3
import subprocess
import sys
import time

BATCH = 50_000


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    db, org = sys.argv[1], sys.argv[2]
    in_org = int(sys.argv[3]) if len(sys.argv) > 3 else 100_000
    orgs = int(sys.argv[4]) if len(sys.argv) > 4 else 900
    per_org = int(sys.argv[5]) if len(sys.argv) > 5 else 1_000
    if db.startswith(("postgres://", "postgresql://")):
        load_postgres(db, org, in_org, orgs, per_org)
        return
    process = os.urandom(5).hex()
    now_ms = int(time.time() * 1000)
    expires_ms = now_ms + 8760 * 3600 * 1000
    counter = 0

    def next_id() -> str:
        nonlocal counter
        counter += 1
        return f"{now_ms // 1000:08x}{process}{counter & 0xFFFFFF:06x}"

    conn = sqlite3.connect(db, timeout=60, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 60000")
    new_orgs = [(next_id(), f"bench org {i}", now_ms) for i in range(orgs)]
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO orgs (id, name, skip_default_alerts, created_at) VALUES (?, ?, 0, ?)",
        new_orgs,
    )
    conn.execute("COMMIT")
    plan = [org] * in_org + [o for (o, _, _) in new_orgs for _ in range(per_org)]
    total = len(plan)
    started = time.monotonic()
    # Each account's place in its org, after the org's last (migration 0006), and the live
    # accounts of each block of 1,024 places.
    last = dict(conn.execute("SELECT org_id, last_pos FROM sa_org_counts").fetchall())
    blocks: dict[tuple[str, int], int] = {}
    for first in range(0, total, BATCH):
        accounts, secrets = [], []
        for owner in plan[first:first + BATCH]:
            aid = next_id()
            pos = last[owner] = last.get(owner, 0) + 1
            blocks[(owner, (pos - 1) // 1024)] = blocks.get((owner, (pos - 1) // 1024), 0) + 1
            accounts.append((aid, owner, f"bench {aid[-6:]}", "loaded", "ORG_MEMBER", now_ms, pos))
            for _ in range(2):
                secrets.append((next_id(), aid, os.urandom(32), "mdb_sa_sk_****bnch",
                                now_ms, expires_ms))
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO service_accounts (id, org_id, name, description, org_roles, created_at, "
            "org_pos) VALUES (?, ?, ?, ?, ?, ?, ?)",
            accounts,
        )
        conn.executemany(
            "INSERT INTO sa_secrets (id, account_id, secret_hash, masked, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            secrets,
        )
        conn.execute("COMMIT")
        print(f"  {min(first + BATCH, total):,} accounts", file=sys.stderr)
    # Each org's account count, last place and blocks, as the store keeps them.
    per_owner: dict[str, int] = {}
    for owner in plan:
        per_owner[owner] = per_owner.get(owner, 0) + 1
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO sa_org_counts (org_id, n, last_pos) VALUES (?, ?, ?) "
        "ON CONFLICT(org_id) DO UPDATE SET n = n + excluded.n, last_pos = excluded.last_pos",
        [(o, n, last[o]) for o, n in per_owner.items()],
    )
    conn.executemany(
        "INSERT INTO sa_org_blocks (org_id, block, n) VALUES (?, ?, ?) "
        "ON CONFLICT(org_id, block) DO UPDATE SET n = n + excluded.n",
        [(o, b, n) for (o, b), n in blocks.items()],
    )
    conn.execute("COMMIT")
    conn.close()
    print(f"loaded {total:,} accounts ({2 * total:,} secrets) in {time.monotonic() - started:.1f} s",
          file=sys.stderr)


def load_postgres(url: str, org: str, in_org: int, orgs: int, per_org: int) -> None:
    """The same rows, made inside PostgreSQL. Ids: 8 hex digits of seconds, then a
    per-run prefix and a counter, as the SQLite path."""
    now_ms = int(time.time() * 1000)
    prefix = f"{now_ms // 1000:08x}{os.urandom(3).hex()}"  # 14 hex; 10 left for counters
    expires_ms = now_ms + 8760 * 3600 * 1000
    total = in_org + orgs * per_org
    sql = f"""
\\set ON_ERROR_STOP on
BEGIN;
INSERT INTO orgs (id, name, skip_default_alerts, created_at)
  SELECT '{prefix}' || lpad(to_hex(n), 10, '0'), 'bench org ' || n, false, {now_ms}
  FROM generate_series(1, {orgs}) AS n;
CREATE TEMP TABLE plan ON COMMIT DROP AS
  SELECT n, CASE WHEN n <= {in_org} THEN '{org}'
                 ELSE '{prefix}' || lpad(to_hex(1 + (n - {in_org} - 1) / {max(per_org, 1)}), 10, '0')
            END AS owner
  FROM generate_series(1, {total}) AS n;
INSERT INTO service_accounts (id, org_id, name, description, org_roles, created_at, org_pos)
  SELECT '{prefix}' || lpad(to_hex(1000000000 + n), 10, '0'), owner, 'bench ' || n, 'loaded',
         'ORG_MEMBER', {now_ms},
         COALESCE((SELECT last_pos FROM sa_org_counts c WHERE c.org_id = owner), 0)
           + ROW_NUMBER() OVER (PARTITION BY owner ORDER BY n)
  FROM plan;
INSERT INTO sa_secrets (id, account_id, secret_hash, masked, created_at, expires_at)
  SELECT '{prefix}' || lpad(to_hex(2000000000 + 2 * n + k), 10, '0'),
         '{prefix}' || lpad(to_hex(1000000000 + n), 10, '0'),
         decode(md5(random()::text) || md5(random()::text), 'hex'),
         'mdb_sa_sk_****bnch', {now_ms}, {expires_ms}
  FROM plan, generate_series(0, 1) AS k;
INSERT INTO sa_org_counts (org_id, n, last_pos)
  SELECT owner, COUNT(*), MAX(s.org_pos) FROM plan JOIN service_accounts s
    ON s.id = '{prefix}' || lpad(to_hex(1000000000 + n), 10, '0') GROUP BY owner
  ON CONFLICT (org_id) DO UPDATE SET n = sa_org_counts.n + excluded.n, last_pos = excluded.last_pos;
INSERT INTO sa_org_blocks (org_id, block, n)
  SELECT s.org_id, (s.org_pos - 1) / 1024, COUNT(*) FROM plan JOIN service_accounts s
    ON s.id = '{prefix}' || lpad(to_hex(1000000000 + n), 10, '0') GROUP BY 1, 2
  ON CONFLICT (org_id, block) DO UPDATE SET n = sa_org_blocks.n + excluded.n;
COMMIT;
VACUUM ANALYZE;
"""
    started = time.monotonic()
    subprocess.run(["psql", "-q", url], input=sql.encode(), check=True)
    print(f"loaded {total:,} accounts ({2 * total:,} secrets) in {time.monotonic() - started:.1f} s",
          file=sys.stderr)


if __name__ == "__main__":
    main()
