"""The real `curl` binary, with the commands a person copies from the README and from the
Atlas documentation. Commands go through bash exactly as typed (quotes included)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import COMMAND_TIMEOUT_S, REPO_ROOT, clean_env

CURL = shutil.which("curl")
pytestmark = pytest.mark.skipif(CURL is None, reason="the curl binary is not installed (apt-get install -y curl)")

CHALLENGE = re.compile(
    r'Digest realm="MMS Public API", domain="", nonce="[^"]+", '
    r'algorithm=(SHA-256|MD5), qop="auth", stale=false'
)
UNAUTHORIZED_BODY = {
    "detail": "You are not authorized for this resource.",
    "error": 401,
    "errorCode": "UNAUTHORIZED",
    "parameters": [],
    "reason": "Unauthorized",
}


def sh(command: str, **env: str) -> subprocess.CompletedProcess:
    """Run one shell command line as a user would paste it (no proxy for loopback)."""
    res = subprocess.run(
        ["bash", "-c", command],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=COMMAND_TIMEOUT_S,
        env=clean_env(**env),
    )
    # Decode by hand: text mode would turn the CRLFs of `--include` output into LFs.
    return subprocess.CompletedProcess(res.args, res.returncode,
                                       res.stdout.decode("utf-8", "replace"),
                                       res.stderr.decode("utf-8", "replace"))


def curl(command: str, **env: str) -> str:
    res = sh(command, **env)
    assert res.returncode == 0, f"{command}\nexit {res.returncode}\nstderr: {res.stderr}"
    return res.stdout


class Exchange:
    """One HTTP response as printed by `curl --include`."""

    def __init__(self, head: str, body: str):
        lines = head.split("\r\n")
        self.status_line = lines[0]
        self.status = int(lines[0].split()[1])
        self.headers = [tuple(l.split(": ", 1)) for l in lines[1:] if l]
        self.body = body

    def header(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        return json.loads(self.body)


def parse_included(output: str) -> list[Exchange]:
    """Split `curl --include` output into responses: with --digest, curl prints the 401
    challenge's head (and body) before the authenticated response's."""
    out: list[Exchange] = []
    rest = output
    while rest.startswith("HTTP/"):
        head, _, rest = rest.partition("\r\n\r\n")
        nxt = rest.find("HTTP/1.1 ")
        # The body runs up to the next status line (bodies here are JSON, never "HTTP/").
        if nxt == -1:
            body, rest = rest, ""
        else:
            body, rest = rest[:nxt], rest[nxt:]
        out.append(Exchange(head, body))
    assert out, f"no HTTP response in curl output:\n{output}"
    return out


# ---- README quickstart ------------------------------------------------------------------


def readme_quickstart_curls() -> list[str]:
    """The curl commands of README.md's Quickstart, continuation lines joined. The
    `VAR=$(jq ...)` lines that read bootstrap.json are left out: the test sets PUB, PRIV
    and ORG itself (jq need not be installed)."""
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```(?:sh|bash|console)?\n(.*?)```", section, re.S):
        for command in block.replace("\\\n", " ").splitlines():
            command = command.strip()
            if command.startswith("curl "):
                commands.append(command)
    return commands


def test_readme_quickstart_commands_as_written(server):
    commands = readme_quickstart_curls()
    assert len(commands) >= 2, f"README.md Quickstart has no curl commands: {commands}"
    env = {"PUB": server.public_key, "PRIV": server.private_key, "ORG": server.org_id}
    created = None
    for command in commands:
        assert "http://127.0.0.1:8080" in command, command
        out = curl(command.replace("http://127.0.0.1:8080", server.base_url), **env)
        body = json.loads(out)
        assert "errorCode" not in body, f"{command}\n{out}"
        if "--request POST" in command and "/groups" in command:
            assert body["orgId"] == server.org_id
            created = body
    assert created, f"README.md Quickstart creates no project: {commands}"
    # The project the README creates is really there.
    out = curl(
        f'curl --user "$PUB:$PRIV" --digest '
        f'--header "Accept: application/vnd.atlas.2023-01-01+json" '
        f'"{server.base_url}/api/atlas/v2/groups/{created["id"]}"', **env
    )
    assert json.loads(out)["name"] == created["name"]



def test_readme_list_orgs(server):
    out = curl(
        f'curl --user "{server.public_key}:{server.private_key}" --digest '
        f'--header "Accept: application/vnd.atlas.2023-01-01+json" '
        f'"{server.base_url}/api/atlas/v2/orgs?pretty=true"'
    )
    assert out.startswith("{\n  "), out  # pretty-printed
    body = json.loads(out)
    assert body["totalCount"] == 1
    assert body["results"][0]["id"] == server.org_id
    assert body["results"][0]["name"] == "Tessera"


def test_readme_create_project(server):
    out = curl(
        f'curl --user "{server.public_key}:{server.private_key}" --digest '
        f'--header "Accept: application/vnd.atlas.2023-01-01+json" '
        f'--header "Content-Type: application/json" '
        f'--request POST "{server.base_url}/api/atlas/v2/groups?pretty=true" '
        f'--data \'{{"name":"curl-project","orgId":"{server.org_id}"}}\''
    )
    group = json.loads(out)
    assert group["name"] == "curl-project"
    assert group["orgId"] == server.org_id
    assert re.fullmatch(r"[0-9a-f]{24}", group["id"])

    # And it is there for the next command.
    out = curl(
        f'curl --user "{server.public_key}:{server.private_key}" --digest '
        f'--header "Accept: application/vnd.atlas.2023-01-01+json" '
        f'"{server.base_url}/api/atlas/v2/groups/byName/curl-project"'
    )
    assert json.loads(out)["id"] == group["id"]


def test_readme_create_project_include_shows_status(server):
    out = curl(
        f'curl --user "{server.public_key}:{server.private_key}" --digest --include '
        f'--header "Accept: application/vnd.atlas.2023-01-01+json" '
        f'--header "Content-Type: application/json" '
        f'--request POST "{server.base_url}/api/atlas/v2/groups" '
        f'--data \'{{"name":"curl-project-2","orgId":"{server.org_id}"}}\''
    )
    responses = parse_included(out)
    final = responses[-1]
    assert final.status_line.startswith("HTTP/1.1 200"), out
    assert final.header("Content-Type") == ["application/vnd.atlas.2023-01-01+json;charset=utf-8"]
    assert final.json()["name"] == "curl-project-2"
    # The challenge round trip curl made first is a proper 401.
    assert [r.status for r in responses] == [401, 200], out


# ---- Atlas documentation, v1.0 style -----------------------------------------------------


def test_atlas_docs_v1_get_group_with_include(server):
    out = curl(
        f'curl --user "{server.public_key}:{server.private_key}" --digest '
        f'--header "Accept: application/json" '
        f'--include '
        f'--request GET "{server.base_url}/api/public/v1.0/groups/{server.project_id}?pretty=true"'
    )
    responses = parse_included(out)
    assert [r.status for r in responses] == [401, 200], out
    final = responses[-1]
    assert final.status_line.startswith("HTTP/1.1 200 OK"), final.status_line
    assert final.header("Content-Type")[0].startswith("application/json")
    assert final.header("X-Request-Id"), final.headers
    group = final.json()
    assert group["id"] == server.project_id
    assert group["name"] == "Project0"
    assert group["orgId"] == server.org_id


def test_atlas_docs_v1_list_orgs_with_include(server):
    out = curl(
        f'curl --user "{server.public_key}:{server.private_key}" --digest '
        f'--header "Accept: application/json" '
        f'--include '
        f'--request GET "{server.base_url}/api/public/v1.0/orgs?pretty=true"'
    )
    final = parse_included(out)[-1]
    assert final.status_line.startswith("HTTP/1.1 200 OK"), out
    assert [o["id"] for o in final.json()["results"]] == [server.org_id]


def test_atlas_docs_v2_list_groups(server):
    out = curl(
        f'curl --user "{server.public_key}:{server.private_key}" --digest '
        f'--header "Accept: application/vnd.atlas.2023-01-01+json" '
        f'-X GET "{server.base_url}/api/atlas/v2/groups?pretty=true"'
    )
    body = json.loads(out)
    assert [g["id"] for g in body["results"]] == [server.project_id]


# ---- failures as curl shows them ----------------------------------------------------------


@pytest.mark.parametrize("base,accept", [
    ("/api/atlas/v2", "application/vnd.atlas.2023-01-01+json"),
    ("/api/public/v1.0", "application/json"),
])
def test_no_credentials_shows_401_with_both_challenges(server, base, accept):
    out = curl(f'curl --include --header "Accept: {accept}" "{server.base_url}{base}/orgs"')
    [resp] = parse_included(out)
    assert resp.status_line.startswith("HTTP/1.1 401 Unauthorized"), resp.status_line
    found = resp.header("WWW-Authenticate")
    assert len(found) == 2, resp.headers
    algorithms = []
    for value in found:
        m = CHALLENGE.fullmatch(value)
        assert m, f"challenge not in the Atlas shape: {value!r}"
        algorithms.append(m.group(1))
    assert algorithms == ["SHA-256", "MD5"]
    assert resp.header("X-Request-Id")
    assert resp.header("Content-Type")[0].startswith("application/json")
    assert resp.json() == UNAUTHORIZED_BODY


def test_wrong_password_ends_in_401(server):
    out = curl(
        f'curl --include --user "{server.public_key}:wrong-password" --digest '
        f'--header "Accept: application/vnd.atlas.2023-01-01+json" '
        f'"{server.base_url}/api/atlas/v2/orgs"'
    )
    final = parse_included(out)[-1]
    assert final.status == 401, out
    assert final.json() == UNAUTHORIZED_BODY


def test_fail_flag_gives_curl_exit_22_on_401(server):
    res = sh(
        f'curl --silent --fail --user "{server.public_key}:wrong-password" --digest '
        f'--header "Accept: application/vnd.atlas.2023-01-01+json" '
        f'"{server.base_url}/api/atlas/v2/orgs"'
    )
    assert res.returncode == 22, (res.returncode, res.stdout, res.stderr)


def test_v2_without_vnd_accept_is_406(server):
    out = curl(
        f'curl --include --user "{server.public_key}:{server.private_key}" --digest '
        f'"{server.base_url}/api/atlas/v2/orgs"'
    )
    final = parse_included(out)[-1]
    assert final.status == 406, out
    assert set(final.json()) == {"detail", "error", "errorCode", "parameters", "reason"}
    assert final.json()["error"] == 406


# ---- seed 002: MongoDB employee access, both of the seed's curl forms ----------------------

V2024_ACCEPT = "application/vnd.atlas.2024-08-05+json"

# The seed's two command lines (revokeMongoDBEmployeeAccess), as printed, pointed at this
# server: `https://cloud.mongodb.com` becomes the server's base URL and the path placeholders
# are filled in; `-d '{ <Payload> }'` stays as written (the operation takes no body).
SEED_002_BEARER = (
    'curl --include --header "Authorization: Bearer ${ACCESS_TOKEN}" \\\n'
    '--header "Accept: application/vnd.atlas.2024-08-05+json" \\\n'
    '--header "Content-Type: application/json" \\\n'
    '-X POST "https://cloud.mongodb.com/api/atlas/v2/groups/{groupId}/clusters/{clusterName}:revokeMongoDBEmployeeAccess" \\\n'
    "-d '{ <Payload> }'"
)
SEED_002_DIGEST = (
    'curl --user "${PUBLIC_KEY}:${PRIVATE_KEY}" \\\n'
    '--digest --include \\\n'
    '--header "Accept: application/vnd.atlas.2024-08-05+json" \\\n'
    '--header "Content-Type: application/json" \\\n'
    '-X POST "https://cloud.mongodb.com/api/atlas/v2/groups/{groupId}/clusters/{clusterName}:revokeMongoDBEmployeeAccess" \\\n'
    "-d '{ <Payload> }'"
)


def seed_002(command: str, server, group_id: str, cluster: str, action: str = "revoke",
             payload: str | None = None) -> str:
    out = (command.replace("https://cloud.mongodb.com", server.base_url)
           .replace("{groupId}", group_id).replace("{clusterName}", cluster))
    if action == "grant":
        out = out.replace(":revokeMongoDBEmployeeAccess", ":grantMongoDBEmployeeAccess")
    if payload is not None:
        out = out.replace("{ <Payload> }", payload)
    return out


def in_a_day() -> str:
    import datetime
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def employee_access_setup(server):
    """A cluster in the bootstrap project and a service account that is that project's
    GROUP_SUPPORT_ACCESS_MANAGER, with a token."""
    import requests
    owner = server.session(accept=V2024_ACCEPT)
    r = owner.post(server.v2(f"/groups/{server.project_id}/clusters"),
                   json={"name": "Cluster0", "clusterType": "REPLICASET"})
    assert r.status_code == 201, r.text
    r = owner.post(server.v2(f"/orgs/{server.org_id}/serviceAccounts"),
                   json={"name": "Support admin", "description": "Grants support access",
                         "roles": ["ORG_MEMBER"], "secretExpiresAfterHours": 24})
    assert r.status_code == 201, r.text
    client_id, secret = r.json()["clientId"], r.json()["secrets"][0]["secret"]
    r = owner.post(server.v2(f"/groups/{server.project_id}/serviceAccounts/{client_id}:invite"),
                   json={"roles": ["GROUP_SUPPORT_ACCESS_MANAGER"]})
    assert r.status_code == 200, r.text
    r = requests.post(f"{server.base_url}/api/oauth/token", auth=(client_id, secret),
                      data={"grant_type": "client_credentials"})
    assert r.status_code == 200, r.text
    return owner, r.json()["access_token"]


def active_grant(owner, server):
    r = owner.get(server.v2(f"/groups/{server.project_id}/clusters/Cluster0"))
    assert r.status_code == 200, r.text
    return r.json().get("mongoDBEmployeeAccessGrant")


def test_seed_002_grant_and_revoke_with_both_curl_forms(server):
    owner, token = employee_access_setup(server)
    p = server.project_id
    grant_body = f'{{ "grantType": "CLUSTER_INFRASTRUCTURE", "expirationTime": "{in_a_day()}" }}'

    # Bearer form (service account with the project role): grant, then the seed's revoke.
    res = sh(seed_002(SEED_002_BEARER, server, p, "Cluster0", "grant", grant_body),
             ACCESS_TOKEN=token)
    assert parse_included(res.stdout)[-1].status == 204, res.stdout + res.stderr
    assert active_grant(owner, server)["grantType"] == "CLUSTER_INFRASTRUCTURE"
    res = sh(seed_002(SEED_002_BEARER, server, p, "Cluster0"), ACCESS_TOKEN=token)
    final = parse_included(res.stdout)[-1]
    assert final.status == 204, res.stdout + res.stderr
    assert final.body == ""
    assert active_grant(owner, server) is None

    # Digest form (the bootstrap API key): grant, then the seed's revoke, exactly as printed.
    env = {"PUBLIC_KEY": server.public_key, "PRIVATE_KEY": server.private_key}
    res = sh(seed_002(SEED_002_DIGEST, server, p, "Cluster0", "grant", grant_body), **env)
    assert [e.status for e in parse_included(res.stdout)] == [401, 204], res.stdout
    assert active_grant(owner, server)["expirationTime"]
    res = sh(seed_002(SEED_002_DIGEST, server, p, "Cluster0"), **env)
    assert [e.status for e in parse_included(res.stdout)] == [401, 204], res.stdout
    assert active_grant(owner, server) is None
    # Revoking again is still 204.
    res = sh(seed_002(SEED_002_DIGEST, server, p, "Cluster0"), **env)
    assert parse_included(res.stdout)[-1].status == 204, res.stdout

    # An unknown cluster is CLUSTER_NOT_FOUND on the same command line.
    res = sh(seed_002(SEED_002_BEARER, server, p, "Nope"), ACCESS_TOKEN=token)
    final = parse_included(res.stdout)[-1]
    assert final.status == 404, res.stdout
    assert final.json()["errorCode"] == "CLUSTER_NOT_FOUND"

    # Every change is in the project's log.
    r = owner.get(server.v2(f"/groups/{p}/events"),
                  headers={"Accept": "application/vnd.atlas.2023-01-01+json"})
    types = [e["eventTypeName"] for e in r.json()["results"]]
    assert types.count("EMPLOYEE_ACCESS_GRANTED") == 2, types
    assert types.count("EMPLOYEE_ACCESS_REVOKED") == 2, types


def test_operators_cli_and_support_decision_with_curl(server):
    from helpers import run_tessera
    owner, token = employee_access_setup(server)
    p = server.project_id
    made = run_tessera(server.binary, "operators", "create", "--name", "support-console",
                       "--data-dir", str(server.data_dir))
    assert made.returncode == 0, made.stderr
    op = json.loads(made.stdout)
    assert op["secret"].startswith("tss_op_sk_")
    listed = run_tessera(server.binary, "operators", "list", "--data-dir", str(server.data_dir))
    assert listed.returncode == 0, listed.stderr
    assert [o["id"] for o in json.loads(listed.stdout)] == [op["id"]]
    assert op["secret"] not in listed.stdout

    question = (f'{{"staffMember": "alice", "groupId": "{p}", "clusterName": "Cluster0", '
                '"grantType": "CLUSTER_DATABASE_LOGS"}')
    ask = (f'curl -s --user "$OP_ID:$OP_SECRET" --header "Content-Type: application/json" '
           f'-X POST "{server.base_url}/api/tessera/v1/support/decisions" -d \'{question}\'')
    env = {"OP_ID": op["id"], "OP_SECRET": op["secret"]}
    assert json.loads(curl(ask, **env))["reason"] == "NO_ACTIVE_GRANT"
    r = owner.post(server.v2(f"/groups/{p}/clusters/Cluster0:grantMongoDBEmployeeAccess"),
                   json={"grantType": "CLUSTER_INFRASTRUCTURE", "expirationTime": in_a_day()})
    assert r.status_code == 204, r.text
    answer = json.loads(curl(ask, **env))
    assert answer["allowed"] is True and answer["grantType"] == "CLUSTER_INFRASTRUCTURE", answer
    # A customer's credentials are refused.
    res = sh(f'curl -s --header "Authorization: Bearer {token}" --header "Content-Type: application/json" '
             f'-X POST "{server.base_url}/api/tessera/v1/support/decisions" -d \'{question}\'')
    assert json.loads(res.stdout)["errorCode"] == "OPERATOR_CREDENTIALS_REQUIRED"
    # The customer sees the use.
    r = owner.get(server.v2(f"/groups/{p}/events?eventType=EMPLOYEE_ACCESS_USED"),
                  headers={"Accept": "application/vnd.atlas.2023-01-01+json"})
    assert [e["employeeIdentifier"] for e in r.json()["results"]] == ["alice"]

    deleted = run_tessera(server.binary, "operators", "delete", "--id", op["id"],
                          "--data-dir", str(server.data_dir))
    assert deleted.returncode == 0, deleted.stderr
    res = sh(ask.replace("curl -s", "curl -s -o /dev/null -w '%{http_code}'"), **env)
    assert res.stdout == "401", res.stdout


def test_atlas_docs_curl_lines_for_the_access_plane(server):
    """One documentation-style curl line per new resource (issue 16): users, org and project
    members, teams, invitations, settings, limits, the IP access list, custom roles,
    database users and their certificates; each answers with what it made or read."""
    auth = f'--user "{server.public_key}:{server.private_key}" --digest'
    v2 = f"{server.base_url}/api/atlas/v2"
    o, g = server.org_id, server.project_id

    def run(version: str, method: str, path: str, body: str | None = None) -> dict | str:
        cmd = (f'curl {auth} --silent --show-error --fail --header '
               f'"Accept: application/vnd.atlas.{version}+json" -X {method} "{v2}{path}"')
        if body is not None:
            cmd += f" --header \"Content-Type: application/json\" --data '{body}'"
        out = curl(cmd)
        return json.loads(out) if out.strip() else ""

    user = run("2023-01-01", "POST", "/users",
               '{"username": "ada@example.com", "password": "a long enough password", '
               '"firstName": "Ada", "lastName": "Lovelace", '
               f'"roles": [{{"orgId": "{o}", "roleName": "ORG_OWNER"}}]}}')
    assert user["username"] == "ada@example.com"
    assert run("2023-01-01", "GET", f"/users/{user['id']}")["id"] == user["id"]
    invited = run("2025-02-19", "POST", f"/orgs/{o}/users",
                  '{"username": "grace@example.com", "roles": {"orgRoles": ["ORG_MEMBER"]}}')
    assert invited["orgMembershipStatus"] == "PENDING"
    # Ada, the invited colleague, and the bootstrap's first owner (the console's sign-in).
    assert run("2025-02-19", "GET", f"/orgs/{o}/users")["totalCount"] == 3
    assert len(run("2023-01-01", "GET", f"/orgs/{o}/invites")) == 1
    added = run("2025-02-19", "POST", f"/groups/{g}/users",
                '{"username": "ada@example.com", "roles": ["GROUP_READ_ONLY"]}')
    assert added["roles"] == ["GROUP_READ_ONLY"]
    team = run("2023-01-01", "POST", f"/orgs/{o}/teams",
               '{"name": "ops", "usernames": ["ada@example.com"]}')
    assigned = run("2023-01-01", "POST", f"/groups/{g}/teams",
                   f'[{{"teamId": "{team["id"]}", "roleNames": ["GROUP_CLUSTER_MANAGER"]}}]')
    assert assigned["totalCount"] == 1
    assert run("2023-01-01", "PATCH", f"/orgs/{o}/settings",
               '{"restrictEmployeeAccess": true}')["restrictEmployeeAccess"] is True
    assert run("2023-01-01", "GET",
               f"/groups/{g}/limits/atlas.project.deployment.clusters")["value"] == 25
    entries = run("2023-01-01", "POST", f"/groups/{g}/accessList",
                  '[{"cidrBlock": "198.51.100.0/24", "comment": "office"}]')
    assert entries["totalCount"] == 1
    role = run("2023-01-01", "POST", f"/groups/{g}/customDBRoles/roles",
               '{"roleName": "reader", "actions": [{"action": "FIND", '
               '"resources": [{"db": "sales", "collection": ""}]}]}')
    assert role["roleName"] == "reader"
    dbu = run("2023-01-01", "POST", f"/groups/{g}/databaseUsers",
              '{"databaseName": "$external", "username": "reporting", "x509Type": "MANAGED", '
              '"roles": [{"roleName": "reader", "databaseName": "admin"}]}')
    assert dbu["x509Type"] == "MANAGED"
    pem = run("2023-01-01", "POST", f"/groups/{g}/databaseUsers/reporting/certs",
              '{"monthsUntilExpiration": 1}')
    assert "BEGIN CERTIFICATE" in pem and "PRIVATE KEY" in pem
    assert run("2023-01-01", "GET",
               f"/groups/{g}/databaseUsers/reporting/certs")["totalCount"] == 1
