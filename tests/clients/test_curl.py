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
