"""Durability: a write is acknowledged only after it commits.

Writers stream changes of four kinds (projects, service accounts, API keys, token
revocations) at a real server while the test kills it with SIGKILL again and again and
restarts it on the same data directory. Every write that was acknowledged (a 2xx that reached
the client) must be there after the last restart; writes cut off by a kill may or may not be.

``TESSERA_TEST_DATABASE_URL`` points the server at another store (e.g. PostgreSQL); without
it the store is the embedded SQLite file, whose integrity is checked at the end.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time

import requests
from requests.auth import HTTPDigestAuth

from helpers import V2_ACCEPT

SA_ACCEPT = "application/vnd.atlas.2024-08-05+json"
KILLS = 6
ACKS_PER_KILL = 25
WRITERS = 4


class Target:
    """The current base URL; writers wait while the server is down."""

    def __init__(self, base: str):
        self.lock = threading.Condition()
        self.base: str | None = base

    def get(self, deadline: float) -> str | None:
        with self.lock:
            while self.base is None and time.monotonic() < deadline:
                self.lock.wait(timeout=0.2)
            return self.base

    def set(self, base: str | None) -> None:
        with self.lock:
            self.base = base
            self.lock.notify_all()


def test_acknowledged_writes_survive_sigkill(server_factory):
    srv = server_factory()
    db_url = os.environ.get("TESSERA_TEST_DATABASE_URL")
    # 150 tokens and revocations from one client: the OAuth rate limit is not under test.
    # A fixed issuer: each restart listens on a new port, and with the default public URL
    # (the listen address) the tokens minted before the first kill would stop verifying
    # after it, so their revocations would be no-ops and the final check would prove nothing.
    srv.args = ["--oauth-rate-limit-per-minute", "0", "--public-url", "http://tessera.durability.test"]
    if db_url:
        srv.args += ["--database-url", db_url]
    srv.start()
    org, pub, priv = srv.org_id, srv.public_key, srv.private_key

    # Tokens to revoke later, minted from one service account before the kills start.
    s = srv.session(accept=SA_ACCEPT)
    r = s.post(srv.v2(f"/orgs/{org}/serviceAccounts"),
               json={"name": "Durability", "description": "tokens to revoke",
                     "roles": ["ORG_MEMBER"], "secretExpiresAfterHours": 24})
    assert r.status_code == 201, r.text
    cid, secret = r.json()["clientId"], r.json()["secrets"][0]["secret"]
    tokens = []
    for _ in range(KILLS * ACKS_PER_KILL):
        t = requests.post(srv.base_url + "/api/oauth/token", auth=(cid, secret),
                          data={"grant_type": "client_credentials"})
        assert t.status_code == 200, t.text
        tokens.append(t.json()["access_token"])

    target = Target(srv.base_url)
    acked: list[tuple[str, str]] = []  # (kind, id or token)
    acked_lock = threading.Lock()
    stop = threading.Event()
    errors: list[str] = []
    token_lock = threading.Lock()

    def ack(kind: str, ident: str) -> None:
        with acked_lock:
            acked.append((kind, ident))

    def writer(n: int) -> None:
        session = requests.Session()
        session.trust_env = False
        session.auth = HTTPDigestAuth(pub, priv)
        i = 0
        while not stop.is_set():
            base = target.get(time.monotonic() + 30)
            if base is None:
                errors.append("server did not come back")
                return
            i += 1
            kind = ("project", "account", "key", "revoke")[i % 4]
            try:
                if kind == "project":
                    r = session.post(f"{base}/api/atlas/v2/groups",
                                     json={"name": f"d-{n}-{i}", "orgId": org},
                                     headers={"Accept": V2_ACCEPT}, timeout=10)
                    if r.status_code == 200:
                        ack(kind, r.json()["id"])
                elif kind == "account":
                    r = session.post(f"{base}/api/atlas/v2/orgs/{org}/serviceAccounts",
                                     json={"name": f"sa {n} {i}", "description": "d",
                                           "roles": ["ORG_MEMBER"],
                                           "secretExpiresAfterHours": 24},
                                     headers={"Accept": SA_ACCEPT}, timeout=10)
                    if r.status_code == 201:
                        ack(kind, r.json()["clientId"])
                elif kind == "key":
                    r = session.post(f"{base}/api/atlas/v2/orgs/{org}/apiKeys",
                                     json={"desc": f"key {n} {i}", "roles": ["ORG_MEMBER"]},
                                     headers={"Accept": V2_ACCEPT}, timeout=10)
                    if r.status_code == 200:
                        ack(kind, r.json()["id"])
                else:
                    with token_lock:
                        if not tokens:
                            continue
                        tok = tokens.pop()
                    r = requests.post(f"{base}/api/oauth/revoke", auth=(cid, secret),
                                      data={"token": tok, "token_type_hint": "access_token"},
                                      timeout=10)
                    if r.status_code == 200:
                        ack(kind, tok)
                if r.status_code >= 500:
                    errors.append(f"{kind}: {r.status_code} {r.text}")
            except requests.RequestException:
                # Cut off by a kill: not acknowledged, so no promise either way.
                session = requests.Session()
                session.trust_env = False
                session.auth = HTTPDigestAuth(pub, priv)

    threads = [threading.Thread(target=writer, args=(n,), daemon=True) for n in range(WRITERS)]
    for t in threads:
        t.start()
    try:
        for k in range(KILLS):
            goal = (k + 1) * ACKS_PER_KILL
            deadline = time.monotonic() + 120
            while len(acked) < goal and time.monotonic() < deadline and not errors:
                time.sleep(0.02)  # polling interval, not an assertion
            assert not errors, errors
            assert len(acked) >= goal, f"only {len(acked)} writes acknowledged before kill {k}"
            target.set(None)
            srv.proc.kill()
            srv.proc.wait(timeout=15)
            srv.proc = None
            srv.start()
            target.set(srv.base_url)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not errors, errors

    # Every acknowledged write is there after the last restart.
    with acked_lock:
        done = list(acked)
    kinds = {k: sum(1 for kind, _ in done if kind == k) for k in ("project", "account", "key", "revoke")}
    print(f"\n{len(done)} acknowledged writes across {KILLS} SIGKILLs: {kinds}")
    assert all(kinds.values()), kinds
    check = srv.session()
    sa = srv.session(accept=SA_ACCEPT)
    for kind, ident in done:
        if kind == "project":
            r = check.get(srv.v2(f"/groups/{ident}"))
            assert r.status_code == 200, (kind, ident, r.text)
        elif kind == "account":
            r = sa.get(srv.v2(f"/orgs/{org}/serviceAccounts/{ident}"))
            assert r.status_code == 200, (kind, ident, r.text)
        elif kind == "key":
            r = check.get(srv.v2(f"/orgs/{org}/apiKeys/{ident}"))
            assert r.status_code == 200, (kind, ident, r.text)
        else:
            r = requests.get(srv.v2(f"/orgs/{org}"), headers={"Authorization": f"Bearer {ident}",
                                                              "Accept": V2_ACCEPT})
            assert r.status_code == 401, (kind, r.status_code, r.text)
    # The revocations checked above were real: a token nobody revoked still works.
    with token_lock:
        unrevoked = list(tokens)
    assert unrevoked, "every token was revoked; nothing shows the 401s above mean revoked"
    r = requests.get(srv.v2(f"/orgs/{org}"), headers={"Authorization": f"Bearer {unrevoked[0]}",
                                                      "Accept": V2_ACCEPT})
    assert r.status_code == 200, (r.status_code, r.text)
    if not db_url:
        con = sqlite3.connect(f"file:{srv.data_dir / 'tessera.db'}?mode=ro", uri=True)
        try:
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            con.close()
