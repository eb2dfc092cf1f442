"""npm ``mongodb-atlas-api-client`` (pinned in tests/atlas-api-client/package.json) as a real
Atlas client of Tessera at its default base path, ``/api/atlas/v1.0``, with HTTP Digest: its
people, team, access-list/whitelist, database-user and custom-role calls
(tests/atlas-api-client/run.js). Install it with ``npm ci --prefix tests/atlas-api-client``
(``.ci/run`` does)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from helpers import REPO_ROOT, clean_env

CLIENT_DIR = REPO_ROOT / "tests" / "atlas-api-client"


def test_atlas_api_client_people_network_and_database_access(server):
    if shutil.which("node") is None or not (CLIENT_DIR / "node_modules").is_dir():
        pytest.skip("node or tests/atlas-api-client/node_modules missing (npm ci --prefix tests/atlas-api-client)")
    s = server.session()
    team = s.post(server.v2(f"/orgs/{server.org_id}/teams"), json={"name": "ops", "usernames": []})
    assert team.status_code == 200, team.text
    env = clean_env()
    env.update({
        "TESSERA_URL": server.base_url,
        "PUBLIC_KEY": server.public_key,
        "PRIVATE_KEY": server.private_key,
        "ORG_ID": server.org_id,
        "PROJECT_ID": server.project_id,
        "TEAM_ID": team.json()["id"],
    })
    p = subprocess.run(["node", str(CLIENT_DIR / "run.js")], env=env, cwd=CLIENT_DIR,
                       capture_output=True, text=True, timeout=300)
    print(p.stdout)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "passed 30" in p.stdout, p.stdout
