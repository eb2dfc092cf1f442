"""MongoDB's own MCP server (npm ``mongodb-mcp-server``, pinned in tests/mcp/package.json) as
a real Atlas client of Tessera over HTTPS: it authenticates with a service account's client
credentials (its OAuth library requests tokens over HTTPS only), and its Atlas tools list
organizations and projects and create a project that then exists in Tessera.

The MCP server runs over stdio; this test speaks MCP's JSON-RPC (one message a line) to it.
Install it with ``npm ci --prefix tests/mcp`` (``.ci/run`` does)."""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from helpers import REPO_ROOT, clean_env

MCP_DIR = REPO_ROOT / "tests" / "mcp"
MCP_ENTRY = MCP_DIR / "node_modules" / "mongodb-mcp-server" / "dist" / "index.js"
V2024_ACCEPT = "application/vnd.atlas.2024-08-05+json"
REPLY_TIMEOUT_S = 60.0  # upper bound for failure only


class McpClient:
    """A minimal MCP client over a child process's stdio."""

    def __init__(self, args: list[str], env: dict[str, str], stderr_path: Path):
        self._stderr = open(stderr_path, "wb")
        self.stderr_path = stderr_path
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr, env=env, cwd=MCP_DIR)
        self._lines: queue.Queue = queue.Queue()
        self._next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def send(self, msg: dict) -> None:
        self.proc.stdin.write((json.dumps(msg) + "\n").encode())
        self.proc.stdin.flush()

    def request(self, method: str, params: dict) -> dict:
        self._next_id += 1
        rid = self._next_id
        self.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        while True:
            left = deadline - time.monotonic()
            try:
                line = self._lines.get(timeout=max(left, 0.01))
            except queue.Empty:
                pytest.fail(f"no reply to {method} within {REPLY_TIMEOUT_S}s; stderr:\n"
                            f"{self.stderr_path.read_text(errors='replace')[-4000:]}",
                            pytrace=False)
            if line is None:
                pytest.fail(f"the MCP server exited during {method}; stderr:\n"
                            f"{self.stderr_path.read_text(errors='replace')[-4000:]}",
                            pytrace=False)
            try:
                msg = json.loads(line)
            except ValueError:
                continue  # not a JSON-RPC line
            if msg.get("id") == rid:
                assert "error" not in msg, msg
                return msg["result"]

    def call_tool(self, name: str, arguments: dict) -> dict:
        result = self.request("tools/call", {"name": name, "arguments": arguments})
        text = " ".join(c.get("text", "") for c in result.get("content", []))
        assert not result.get("isError"), f"{name} failed: {text}"
        return result

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=15)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(timeout=15)
        self._stderr.close()


@pytest.fixture
def node() -> str:
    path = shutil.which("node")
    if path is None:
        print("SKIP reason: node is not installed; the MCP real-client test needs Node.js")
        pytest.skip("node is not installed: the MongoDB MCP server test needs Node.js")
    if not MCP_ENTRY.is_file():
        pytest.fail(f"{MCP_ENTRY} is missing: run `npm ci --prefix tests/mcp` first",
                    pytrace=False)
    return path


def test_mongodb_mcp_server_uses_tessera_over_https(node, server_factory, tmp_path):
    srv = server_factory()
    srv.args = ["--tls-self-signed"]
    srv.tls = True
    srv.start()
    ca = srv.ca_file

    # A service account with ORG_OWNER, created with the bootstrap API key (Digest).
    s = srv.session(accept=V2024_ACCEPT)
    r = s.post(srv.v2(f"/orgs/{srv.org_id}/serviceAccounts"), json={
        "name": "MCP server", "description": "mongodb-mcp-server",
        "roles": ["ORG_OWNER"], "secretExpiresAfterHours": 24})
    assert r.status_code == 201, r.text
    client_id = r.json()["clientId"]
    secret = r.json()["secrets"][0]["secret"]

    home = tmp_path / "home"
    home.mkdir()
    env = clean_env(
        MDB_MCP_API_BASE_URL=srv.base_url + "/",
        MDB_MCP_API_CLIENT_ID=client_id,
        MDB_MCP_API_CLIENT_SECRET=secret,
        # Node's own TLS (NODE_EXTRA_CA_CERTS) and the MCP server's HTTP agent, which
        # builds its trust store from the system's CA file (SSL_CERT_FILE) and Node's
        # bundled roots but not from NODE_EXTRA_CA_CERTS: both are needed.
        NODE_EXTRA_CA_CERTS=str(ca),
        SSL_CERT_FILE=str(ca),
        MDB_MCP_TELEMETRY="disabled",
        DO_NOT_TRACK="1",
        MDB_MCP_LOG_PATH=str(tmp_path / "mcp-logs"),
        HOME=str(home),
    )
    mcp = McpClient([node, str(MCP_ENTRY)], env, tmp_path / "mcp-stderr.log")
    try:
        init = mcp.request("initialize", {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "tessera-tests", "version": "0"},
        })
        assert "serverInfo" in init, init
        mcp.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        tools = {t["name"] for t in mcp.request("tools/list", {})["tools"]}
        for t in ("atlas-list-orgs", "atlas-list-projects", "atlas-create-project"):
            assert t in tools, sorted(tools)

        orgs = mcp.call_tool("atlas-list-orgs", {})
        assert srv.org_id in json.dumps(orgs), orgs

        projects = mcp.call_tool("atlas-list-projects", {"orgId": srv.org_id})
        assert srv.project_id in json.dumps(projects), projects

        mcp.call_tool("atlas-create-project",
                      {"projectName": "made-by-mcp", "orgId": srv.org_id})

        # Network and database access (issue 16): the project IP access list, with the
        # caller's own address looked up at /api/private/ipinfo, and database users.
        pid = srv.project_id
        for t in ("atlas-create-access-list", "atlas-inspect-access-list",
                  "atlas-create-db-user", "atlas-list-db-users"):
            assert t in tools, sorted(tools)
        mcp.call_tool("atlas-create-access-list", {
            "projectId": pid, "ipAddresses": ["192.0.2.7"], "cidrBlocks": ["198.51.100.0/24"],
            "currentIpAddress": True, "comment": "from the MCP server"})
        listed = json.dumps(mcp.call_tool("atlas-inspect-access-list", {"projectId": pid}))
        for entry in ("192.0.2.7", "198.51.100.0/24", "127.0.0.1"):
            assert entry in listed, listed
        mcp.call_tool("atlas-create-db-user", {
            "projectId": pid, "username": "mcp-app", "password": "a long enough password",
            "roles": [{"roleName": "readWrite", "databaseName": "sales"}]})
        users = json.dumps(mcp.call_tool("atlas-list-db-users", {"projectId": pid}))
        assert "mcp-app" in users, users
        assert "a long enough password" not in users
    finally:
        mcp.close()

    # The access list and the user really exist in Tessera, the password nowhere.
    s1 = srv.session()
    r = s1.get(srv.v2(f"/groups/{srv.project_id}/accessList"))
    assert r.status_code == 200 and r.json()["totalCount"] == 3, r.text
    r = s1.get(srv.v2(f"/groups/{srv.project_id}/databaseUsers/admin/mcp-app"))
    assert r.status_code == 200, r.text
    assert "a long enough password" not in srv.stderr()
    # The project really exists in Tessera.
    r = srv.session().get(srv.v2("/groups/byName/made-by-mcp"))
    assert r.status_code == 200, r.text
    assert r.json()["orgId"] == srv.org_id
    # And the MCP server never sent its secret anywhere but the token endpoint over TLS:
    # Tessera's log has no trace of it.
    assert secret not in srv.stderr()
