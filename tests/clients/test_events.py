"""The event log as real clients see it: Python `requests` with `HTTPDigestAuth` (a list
parameter becomes a repeated `eventType`, and the `next` links are followed as given), and
`tessera events export` run from the built binary beside the running server."""

from __future__ import annotations

import json

from helpers import V1_ACCEPT, assert_error, run_tessera


def make_keys(server, n: int) -> list[str]:
    s = server.session()
    made = []
    for i in range(n):
        r = s.post(server.v2(f"/orgs/{server.org_id}/apiKeys"),
                   json={"desc": f"key {i}", "roles": ["ORG_MEMBER"]})
        assert r.status_code == 200, r.text
        made.append(r.json()["publicKey"])
    return made


def test_list_filter_and_follow_next_links(server):
    made = make_keys(server, 5)
    s = server.session()
    params = {"eventType": ["API_KEY_CREATED", "ORG_CREATED"], "itemsPerPage": 2}
    r = s.get(server.v2(f"/orgs/{server.org_id}/events"), params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["totalCount"] == 7  # bootstrap's org and key, and five keys
    seen = []
    while True:
        seen += body["results"]
        nxt = [l["href"] for l in body["links"] if l["rel"] == "next"]
        if not nxt:
            break
        r = s.get(nxt[0])
        assert r.status_code == 200, r.text
        body = r.json()
    assert len(seen) == 7
    assert len({e["id"] for e in seen}) == 7
    assert {e["eventTypeName"] for e in seen} == {"API_KEY_CREATED", "ORG_CREATED"}
    targets = [e.get("targetPublicKey") for e in seen if e["eventTypeName"] == "API_KEY_CREATED"]
    assert set(made) <= set(targets)
    created = [e["created"] for e in seen]
    assert created == sorted(created, reverse=True)

    one = s.get(server.v2(f"/orgs/{server.org_id}/events/{seen[0]['id']}"),
                params={"includeRaw": "true"})
    assert one.status_code == 200, one.text
    assert one.json()["raw"]["actorKind"] == "API_KEY"

    v1 = server.session(accept=V1_ACCEPT).get(server.v1(f"/groups/{server.project_id}/events"))
    assert v1.status_code == 200, v1.text
    assert [e["eventTypeName"] for e in v1.json()["results"]] == ["GROUP_CREATED"]

    assert_error(s.get(server.v2(f"/orgs/{server.org_id}/events"),
                       params={"minDate": "2026-01-02T00:00:00Z", "maxDate": "2026-01-01T00:00:00Z"}),
                 400, "INVALID_QUERY_PARAMETER")
    assert_error(s.get(server.v2(f"/orgs/{server.org_id}/events/0123456789abcdef01234567")),
                 404, "EVENT_NOT_FOUND")


def test_export_json_lines_and_resume(server):
    make_keys(server, 4)
    api = server.session().get(server.v2(f"/orgs/{server.org_id}/events"),
                               params={"includeRaw": "true", "itemsPerPage": 500})
    assert api.status_code == 200, api.text
    # Export prints the org's events and its projects' (the org's log holds its own only).
    project = server.session().get(server.v2(f"/groups/{server.project_id}/events"),
                                   params={"includeRaw": "true", "itemsPerPage": 500})
    assert project.status_code == 200, project.text
    expected = sorted(api.json()["results"] + project.json()["results"],
                      key=lambda e: (e["created"], e["id"]))

    def export(*args: str) -> list[dict]:
        p = run_tessera(server.binary, "events", "export", "--data-dir", str(server.data_dir),
                        "--public-url", server.base_url, *args)
        assert p.returncode == 0, p.stderr
        return [json.loads(line) for line in p.stdout.splitlines()]

    # By default an export leaves out events younger than the settle window (90 s with the
    # default flush interval): every event here was just made.
    assert export("--since", "2000-01-01T00:00:00Z", "--org", server.org_id) == []
    until = ("--until", "2100-01-01T00:00:00Z")
    lines = export("--since", "2000-01-01T00:00:00Z", "--org", server.org_id, *until)
    assert lines == expected
    cut = lines[3]
    rest = export("--since", cut["created"], "--after-id", cut["id"], "--org", server.org_id,
                  *until)
    assert rest == lines[4:]

    bad = run_tessera(server.binary, "events", "export", "--data-dir", str(server.data_dir),
                      "--since", "not-a-date")
    assert bad.returncode != 0
    assert bad.stdout == ""
