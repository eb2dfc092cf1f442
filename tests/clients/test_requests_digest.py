"""The server as the Python `requests` library sees it, authenticating with
`requests.auth.HTTPDigestAuth` (the way Atlas' own Python examples do)."""

from __future__ import annotations

import json
import re
import socket

import pytest
import requests

from helpers import V1_ACCEPT, V2_ACCEPT, V2_CONTENT_TYPE, assert_error

MASKED_KEY = re.compile(r"^\*{8}-\*{4}-\*{4}-\*{4}-\*{8}[0-9a-f]{4}$")
CHALLENGE = re.compile(
    r'^Digest realm="MMS Public API", domain="", nonce="[^"]+", '
    r'algorithm=(SHA-256|MD5), qop="auth", stale=false$'
)


def link(body: dict, rel: str) -> str | None:
    hrefs = [l["href"] for l in body.get("links", []) if l.get("rel") == rel]
    assert len(hrefs) <= 1, body["links"]
    return hrefs[0] if hrefs else None


def challenges(resp: requests.Response) -> list[str]:
    """Each WWW-Authenticate header separately (requests joins repeated headers)."""
    return resp.raw.headers.getlist("WWW-Authenticate")


def assert_unauthorized(resp: requests.Response) -> None:
    body = assert_error(resp, 401, "UNAUTHORIZED")
    assert body == {
        "detail": "You are not authorized for this resource.",
        "error": 401,
        "errorCode": "UNAUTHORIZED",
        "parameters": [],
        "reason": "Unauthorized",
    }
    found = challenges(resp)
    assert len(found) == 2, found
    assert [CHALLENGE.match(c).group(1) if CHALLENGE.match(c) else c for c in found] == ["SHA-256", "MD5"]


# ---- listing organizations --------------------------------------------------------------


def test_list_orgs_v2(server):
    r = server.session().get(server.v2("/orgs"))
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == V2_CONTENT_TYPE
    assert r.headers.get("X-Request-Id")
    body = r.json()
    assert set(body) == {"links", "results", "totalCount"}
    assert body["totalCount"] == 1
    [org] = body["results"]
    assert org["id"] == server.org_id
    assert org["name"] == "Tessera"
    assert link(body, "self") == server.v2("/orgs")
    assert link(org, "self") == server.v2(f"/orgs/{server.org_id}")


def test_list_orgs_v1(server):
    r = server.session(accept=V1_ACCEPT).get(server.v1("/orgs"))
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["totalCount"] == 1
    assert [o["id"] for o in body["results"]] == [server.org_id]
    assert link(body["results"][0], "self") == server.v1(f"/orgs/{server.org_id}")


def test_get_org_by_id_both_bases(server):
    r = server.session().get(server.v2(f"/orgs/{server.org_id}"))
    assert r.status_code == 200, r.text
    assert r.json()["id"] == server.org_id
    r = server.session(accept=V1_ACCEPT).get(server.v1(f"/orgs/{server.org_id}"))
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Tessera"


def test_health_ready_metrics(server):
    s = requests.Session()
    s.trust_env = False
    r = s.get(server.base_url + "/healthz")
    assert (r.status_code, r.text) == (200, "ok")
    assert r.headers.get("X-Request-Id")
    assert s.get(server.base_url + "/readyz").status_code == 200
    server.session().get(server.v2("/orgs"))
    m = s.get(server.base_url + "/metrics")
    assert m.status_code == 200
    assert "http_requests_total" in m.text


# ---- authentication ---------------------------------------------------------------------


def test_no_credentials_401_with_both_challenges(server):
    s = requests.Session()
    s.trust_env = False
    r = s.get(server.v2("/orgs"), headers={"Accept": V2_ACCEPT})
    assert_unauthorized(r)
    r = s.get(server.v1("/orgs"), headers={"Accept": V1_ACCEPT})
    assert_unauthorized(r)


def test_wrong_password_401(server):
    s = server.session(private_key="00000000-0000-0000-0000-000000000000")
    r = s.get(server.v2("/orgs"))
    assert_unauthorized(r)
    s = server.session(accept=V1_ACCEPT, private_key="not-the-key")
    assert_unauthorized(s.get(server.v1("/orgs")))


def test_unknown_public_key_401(server):
    s = server.session(public_key="zzzzzzzz", private_key=server.private_key)
    assert_unauthorized(s.get(server.v2("/orgs")))


def read_http_response(sock: socket.socket) -> tuple[int, dict[str, list[str]], bytes]:
    """Read one HTTP/1.1 response with a Content-Length body from a raw socket."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed before a complete response: {buf!r}")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, value = line.split(":", 1)
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    length = int(headers.get("content-length", ["0"])[0])
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed inside a response body")
        rest += chunk
    return int(lines[0].split()[1]), headers, rest[:length]


def test_challenge_to_post_keeps_connection_usable(server):
    """What requests does for a Digest POST: headers and body go out in separate writes,
    the 401 comes back, and the authenticated retry reuses the connection. The server may
    wait for the body before answering, announce `Connection: close`, or keep the
    connection usable; closing it silently breaks the retry (a regression test: earlier
    builds did that, and about half of requests sessions whose first request was a POST
    failed with ConnectionError)."""
    body = json.dumps({"name": "keepalive", "orgId": server.org_id}).encode()
    head = (
        f"POST /api/atlas/v2/groups HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Accept: {V2_ACCEPT}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    # A server that answers before the body does so at once; one that waits for the body
    # is silent: after 2 s of silence the test sends the body (a bound, not an assertion).
    with socket.create_connection(("127.0.0.1", server.port), timeout=2) as sock:
        sock.sendall(head)
        try:
            status, headers, _ = read_http_response(sock)
            answered_before_body = True
        except TimeoutError:
            answered_before_body = False  # the server waits for the body: fine
        if answered_before_body:
            assert status == 401
            if any("close" in v.lower() for v in headers.get("connection", [])):
                return  # announced: a client opens a new connection for the retry
            # Unannounced, so the connection must stay open. Before sending the body, give
            # a closing server (bounded) time to show it: EOF here is the bug.
            sock.settimeout(3)
            try:
                extra = sock.recv(1)
            except TimeoutError:
                extra = None  # still open: good
            except OSError as e:
                extra = repr(e).encode()
            assert extra is None, (
                f"the server closed the connection after its 401 without `Connection: close` "
                f"(read {extra!r}); a Digest client retrying on it fails"
            )
        sock.settimeout(30)
        sock.sendall(body)
        if not answered_before_body:
            status, headers, _ = read_http_response(sock)
            assert status == 401
        sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode())
        status, _, text = read_http_response(sock)
        assert (status, text) == (200, b"ok")


def test_one_session_many_requests(server):
    """A Digest session keeps working across requests (nonce reuse with a growing nc)."""
    s = server.session()
    for _ in range(5):
        r = s.get(server.v2(f"/groups/{server.project_id}"))
        assert r.status_code == 200, r.text


# ---- projects ---------------------------------------------------------------------------


def test_create_project_then_fetch_by_id_and_name(server):
    s = server.session()
    r = s.post(server.v2("/groups"), json={"name": "demo", "orgId": server.org_id})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == V2_CONTENT_TYPE
    group = r.json()
    assert group["name"] == "demo"
    assert group["orgId"] == server.org_id
    assert group["clusterCount"] == 0
    assert group["tags"] == []
    assert group["withDefaultAlertsSettings"] is True
    assert group["created"]
    gid = group["id"]
    assert re.fullmatch(r"[0-9a-f]{24}", gid), gid
    assert link(group, "self") == server.v2(f"/groups/{gid}")

    by_id = s.get(server.v2(f"/groups/{gid}"))
    assert by_id.status_code == 200, by_id.text
    assert by_id.json() == group
    by_name = s.get(server.v2("/groups/byName/demo"))
    assert by_name.status_code == 200, by_name.text
    assert by_name.json() == group

    v1 = server.session(accept=V1_ACCEPT).get(server.v1(f"/groups/{gid}"))
    assert v1.status_code == 200, v1.text
    assert v1.json()["name"] == "demo"

    listed = s.get(server.v2(f"/orgs/{server.org_id}/groups")).json()
    assert {g["id"] for g in listed["results"]} == {server.project_id, gid}
    assert listed["totalCount"] == 2


def test_duplicate_project_name_409(server):
    s = server.session()
    body = {"name": "twice", "orgId": server.org_id}
    assert s.post(server.v2("/groups"), json=body).status_code == 200
    assert_error(s.post(server.v2("/groups"), json=body), 409)


@pytest.mark.parametrize("name", ["has space", "", "x" * 65, "semi;colon"])
def test_invalid_project_name_400(server, name):
    r = server.session().post(server.v2("/groups"), json={"name": name, "orgId": server.org_id})
    assert_error(r, 400)


def test_rename_and_delete_project(server):
    s = server.session()
    gid = s.post(server.v2("/groups"), json={"name": "old-name", "orgId": server.org_id}).json()["id"]
    r = s.patch(server.v2(f"/groups/{gid}"), json={"name": "new-name"})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "new-name"
    assert s.get(server.v2("/groups/byName/new-name")).json()["id"] == gid
    assert_error(s.get(server.v2("/groups/byName/old-name")), 404)
    r = s.delete(server.v2(f"/groups/{gid}"))
    assert r.status_code in (202, 204), r.text
    assert_error(s.get(server.v2(f"/groups/{gid}")), 404)


# ---- API keys ---------------------------------------------------------------------------


def test_org_api_key_private_key_shown_once_then_masked_and_authenticates(server):
    s = server.session()
    r = s.post(server.v2(f"/orgs/{server.org_id}/apiKeys"),
               json={"desc": "ci key", "roles": ["ORG_MEMBER"]})
    assert r.status_code == 200, r.text
    key = r.json()
    private = key["privateKey"]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", private), private
    assert key["desc"] == "ci key"
    assert key["roles"] == [{"orgId": server.org_id, "roleName": "ORG_MEMBER"}]
    assert key["publicKey"] and key["id"]

    got = s.get(server.v2(f"/orgs/{server.org_id}/apiKeys/{key['id']}"))
    assert got.status_code == 200, got.text
    masked = got.json()["privateKey"]
    assert MASKED_KEY.match(masked), masked
    assert masked.endswith(private[-4:])
    assert private not in got.text

    listed = s.get(server.v2(f"/orgs/{server.org_id}/apiKeys"))
    assert listed.status_code == 200
    assert private not in listed.text
    mine = [k for k in listed.json()["results"] if k["id"] == key["id"]]
    assert len(mine) == 1 and MASKED_KEY.match(mine[0]["privateKey"])

    # The new key itself is a working Digest credential, on both bases.
    new = server.session(key["publicKey"], private)
    r = new.get(server.v2("/orgs"))
    assert r.status_code == 200, r.text
    assert [o["id"] for o in r.json()["results"]] == [server.org_id]
    r = server.session(key["publicKey"], private, accept=V1_ACCEPT).get(server.v1("/orgs"))
    assert r.status_code == 200, r.text


def test_org_api_key_patch_and_delete(server):
    s = server.session()
    key = s.post(server.v2(f"/orgs/{server.org_id}/apiKeys"),
                 json={"desc": "temp", "roles": ["ORG_MEMBER"]}).json()
    r = s.patch(server.v2(f"/orgs/{server.org_id}/apiKeys/{key['id']}"),
                json={"desc": "renamed", "roles": ["ORG_READ_ONLY"]})
    assert r.status_code == 200, r.text
    assert r.json()["desc"] == "renamed"
    assert r.json()["roles"] == [{"orgId": server.org_id, "roleName": "ORG_READ_ONLY"}]
    assert MASKED_KEY.match(r.json()["privateKey"])

    r = s.delete(server.v2(f"/orgs/{server.org_id}/apiKeys/{key['id']}"))
    assert r.status_code == 204, r.text
    assert_error(s.get(server.v2(f"/orgs/{server.org_id}/apiKeys/{key['id']}")), 404)
    # A deleted key no longer authenticates.
    assert_unauthorized(server.session(key["publicKey"], key["privateKey"]).get(server.v2("/orgs")))


def test_project_api_keys_create_assign_delete(server):
    s = server.session()
    gid = server.project_id
    r = s.post(server.v2(f"/groups/{gid}/apiKeys"),
               json={"desc": "project key", "roles": ["GROUP_READ_ONLY"]})
    assert r.status_code == 200, r.text
    pkey = r.json()
    assert re.fullmatch(r"[0-9a-f-]{36}", pkey["privateKey"])
    listed = s.get(server.v2(f"/groups/{gid}/apiKeys"))
    assert listed.status_code == 200, listed.text
    assert pkey["id"] in {k["id"] for k in listed.json()["results"]}
    assert pkey["privateKey"] not in listed.text

    # The project key can read its project.
    ro = server.session(pkey["publicKey"], pkey["privateKey"])
    assert ro.get(server.v2(f"/groups/{gid}")).status_code == 200

    # Assign an org key (not yet in the project) to the project.
    okey = s.post(server.v2(f"/orgs/{server.org_id}/apiKeys"),
                  json={"desc": "org key", "roles": ["ORG_MEMBER"]}).json()
    r = s.post(server.v2(f"/groups/{gid}/apiKeys/{okey['id']}"), json=[{"roles": ["GROUP_OWNER"]}])
    assert r.status_code == 204, r.text
    listed = s.get(server.v2(f"/groups/{gid}/apiKeys")).json()
    assert okey["id"] in {k["id"] for k in listed["results"]}

    r = s.patch(server.v2(f"/groups/{gid}/apiKeys/{okey['id']}"), json={"roles": ["GROUP_READ_ONLY"]})
    assert r.status_code == 200, r.text

    r = s.delete(server.v2(f"/groups/{gid}/apiKeys/{pkey['id']}"))
    assert r.status_code == 204, r.text
    listed = s.get(server.v2(f"/groups/{gid}/apiKeys")).json()
    assert pkey["id"] not in {k["id"] for k in listed["results"]}


# ---- roles and tenancy ------------------------------------------------------------------


def test_org_member_gets_403_on_patch_org(server):
    s = server.session()
    key = s.post(server.v2(f"/orgs/{server.org_id}/apiKeys"),
                 json={"desc": "member", "roles": ["ORG_MEMBER"]}).json()
    member = server.session(key["publicKey"], key["privateKey"])
    assert member.get(server.v2(f"/orgs/{server.org_id}")).status_code == 200
    r = member.patch(server.v2(f"/orgs/{server.org_id}"), json={"name": "Hijacked"})
    assert_error(r, 403)
    # The owner may.
    r = s.patch(server.v2(f"/orgs/{server.org_id}"), json={"name": "Renamed"})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Renamed"


def test_other_orgs_id_is_404_not_403(server):
    s = server.session()
    r = s.post(server.v2("/orgs"),
               json={"name": "Other", "apiKey": {"desc": "other owner", "roles": ["ORG_OWNER"]}})
    assert r.status_code == 201, r.text
    created = r.json()
    other_org = created["organization"]["id"]
    assert created["organization"]["name"] == "Other"
    other_key = created["apiKey"]
    assert other_key["roles"] == [{"orgId": other_org, "roleName": "ORG_OWNER"}]
    assert re.fullmatch(r"[0-9a-f-]{36}", other_key["privateKey"])

    other = server.session(other_key["publicKey"], other_key["privateKey"])
    r = other.get(server.v2("/orgs"))
    assert r.status_code == 200, r.text
    assert [o["id"] for o in r.json()["results"]] == [other_org]
    # The first org is invisible to the other org's owner: 404, whatever the method.
    assert_error(other.get(server.v2(f"/orgs/{server.org_id}")), 404)
    assert_error(other.patch(server.v2(f"/orgs/{server.org_id}"), json={"name": "Mine"}), 404)
    assert_error(other.get(server.v2(f"/orgs/{server.org_id}/apiKeys")), 404)

    # And the other way round, for a low-privilege key of the first org.
    member_key = s.post(server.v2(f"/orgs/{server.org_id}/apiKeys"),
                        json={"desc": "member", "roles": ["ORG_MEMBER"]}).json()
    member = server.session(member_key["publicKey"], member_key["privateKey"])
    assert_error(member.get(server.v2(f"/orgs/{other_org}")), 404)
    assert_error(member.patch(server.v2(f"/orgs/{other_org}"), json={"name": "Mine"}), 404)


# ---- list conventions -------------------------------------------------------------------


def test_pagination_next_link_works(server):
    s = server.session()
    created = set()
    for i in range(3):
        r = s.post(server.v2("/groups"), json={"name": f"page-{i}", "orgId": server.org_id})
        assert r.status_code == 200, r.text
        created.add(r.json()["id"])
    everyone = created | {server.project_id}

    first = s.get(server.v2("/groups"), params={"itemsPerPage": 2})
    assert first.status_code == 200, first.text
    page1 = first.json()
    assert len(page1["results"]) == 2
    assert page1["totalCount"] == 4
    nxt = link(page1, "next")
    assert nxt, page1["links"]
    assert nxt.startswith(server.v2("/groups"))

    second = s.get(nxt)
    assert second.status_code == 200, second.text
    page2 = second.json()
    assert len(page2["results"]) == 2
    ids1 = {g["id"] for g in page1["results"]}
    ids2 = {g["id"] for g in page2["results"]}
    assert not ids1 & ids2
    assert ids1 | ids2 == everyone
    assert link(page2, "next") is None
    prev = link(page2, "previous")
    assert prev, page2["links"]
    assert {g["id"] for g in s.get(prev).json()["results"]} == ids1
    assert link(page1, "previous") is None

    # Past the end: an empty page, not an error.
    r = s.get(server.v2("/groups"), params={"itemsPerPage": 2, "pageNum": 3})
    assert r.status_code == 200, r.text
    assert r.json()["results"] == []


@pytest.mark.parametrize("query", [
    "itemsPerPage=0", "itemsPerPage=501", "itemsPerPage=abc", "pageNum=abc",
    "pretty=maybe", "envelope=2", "includeCount=yes-please",
])
def test_bad_query_parameters_400(server, query):
    r = server.session().get(server.v2("/groups") + "?" + query)
    assert_error(r, 400)


def test_pretty_true(server):
    r = server.session().get(server.v2("/orgs"), params={"pretty": "true"})
    assert r.status_code == 200, r.text
    assert "\n  " in r.text
    compact = server.session().get(server.v2("/orgs"))
    assert "\n" not in compact.text.strip()
    assert r.json()["results"] == compact.json()["results"]


def test_envelope_true(server):
    s = server.session()
    # A list gains a status field.
    r = s.get(server.v2("/groups"), params={"envelope": "true"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == 200
    assert [g["id"] for g in body["results"]] == [server.project_id]
    # A single resource is wrapped in {status, content}.
    r = s.get(server.v2(f"/groups/{server.project_id}"), params={"envelope": "true"})
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"status", "content"}
    assert r.json()["status"] == 200
    assert r.json()["content"]["id"] == server.project_id
    # An error rides in the envelope with HTTP 200.
    r = s.get(server.v2("/groups/" + "b" * 24), params={"envelope": "true"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == 404
    assert set(r.json()["content"]) == {"detail", "error", "errorCode", "parameters", "reason"}
    # POST in an envelope: the 200 arrives as such.
    r = s.post(server.v2("/groups"), params={"envelope": "true"},
               json={"name": "enveloped", "orgId": server.org_id})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == 200
    assert r.json()["content"]["name"] == "enveloped"


def test_envelope_still_challenges_with_401(server):
    """Digest needs the real 401 to answer the challenge, envelope or not."""
    s = requests.Session()
    s.trust_env = False
    r = s.get(server.v2("/orgs"), params={"envelope": "true"}, headers={"Accept": V2_ACCEPT})
    assert r.status_code == 401
    assert len(challenges(r)) == 2


# ---- content negotiation ----------------------------------------------------------------


@pytest.mark.parametrize("accept", [None, "application/json", "*/*", "text/html"])
def test_v2_without_versioned_accept_is_406(server, accept):
    s = server.session(accept=None)
    headers = {} if accept is None else {"Accept": accept}
    if accept is None:
        s.headers.pop("Accept", None)
    r = s.get(server.v2("/orgs"), headers=headers)
    assert_error(r, 406)


def test_v2_unknown_version_406(server):
    r = server.session(accept="application/vnd.atlas.1999-01-01+json").get(server.v2("/orgs"))
    assert_error(r, 406)


def test_v1_accepts_application_json(server):
    r = server.session(accept=V1_ACCEPT).get(server.v1(f"/groups/{server.project_id}"))
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json()["id"] == server.project_id


def test_a_session_moves_between_nodes_and_a_captured_request_does_not(server_factory, tmp_path):
    """Two nodes sharing one database and one master key (here two processes on one SQLite
    file). A nonce is accepted only by the node that issued it: a requests session that moves
    from node A to node B gets B's 401 with ``stale=true`` and retries on its own (one extra
    round trip, no error), while a request captured on A and replayed on B is refused."""
    import os
    import shutil

    master = tmp_path / "master.key"
    master.write_text(os.urandom(32).hex() + "\n")
    master.chmod(0o600)
    a = server_factory("a")
    a.args = ["--master-key-file", str(master)]
    a.start()
    b = server_factory("b")
    # B's own data directory (made as the server would, 0700) holding only A's bootstrap
    # credentials for the test to read; B itself starts without bootstrapping.
    b.data_dir.mkdir(mode=0o700, parents=True)
    shutil.copy(a.data_dir / "bootstrap.json", b.data_dir / "bootstrap.json")
    (b.data_dir / "bootstrap.json").chmod(0o600)
    b.args = ["--master-key-file", str(master),
              "--database-url", f"sqlite://{a.data_dir / 'tessera.db'}"]
    b.start()

    path = "/api/atlas/v2/orgs"
    s = a.session()
    r = s.get(a.base_url + path)
    assert r.status_code == 200, r.text
    captured = r.request.headers["Authorization"]
    # The session holds A's nonce; on B, requests answers B's stale challenge by itself.
    r = s.get(b.base_url + path)
    assert r.status_code == 200, r.text
    assert [h.status_code for h in r.history] == [401]
    assert all(c.endswith("stale=true") for c in challenges(r.history[0])), challenges(r.history[0])
    # And it keeps working on B with B's nonce (a growing nc).
    assert s.get(b.base_url + path).status_code == 200

    # The captured request, replayed: stale on B (never a 200), a replay on A.
    with requests.Session() as raw:
        raw.trust_env = False
        for node, stale in ((b, "stale=true"), (a, "stale=false")):
            r = raw.get(node.base_url + path,
                        headers={"Accept": V2_ACCEPT, "Authorization": captured})
            assert_error(r, 401, "UNAUTHORIZED")
            got = challenges(r)
            assert len(got) == 2 and all(c.endswith(stale) for c in got), got
