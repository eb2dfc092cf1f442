"""The requests the official Terraform provider (``mongodbatlas``) makes for its project,
organization, organizations and advanced-cluster resources and data sources, replayed over HTTP
with the provider's headers (its User-Agent, the Go SDK's versioned Accept, JSON bodies) and
HTTP Digest, each checked for the shape the provider decodes. Issue 16 found each of these
unserved; the provider itself is not run here (no registry to fetch it from)."""

from __future__ import annotations

import pytest

UA = "terraform-provider-mongodbatlas/1.36.0 atlas-sdk-go/v20250312002 (linux; amd64)"


def accept(version: str) -> str:
    return f"application/vnd.atlas.{version}+json"


@pytest.fixture
def tf(server):
    s = server.session(accept=None)
    s.headers["User-Agent"] = UA

    def call(method, path, version, body=None, params=None):
        headers = {"Accept": accept(version)}
        if body is not None:
            headers["Content-Type"] = accept(version)
        r = s.request(method, server.v2(path), json=body, params=params, headers=headers)
        assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text}"
        if not r.text:
            return None  # 204: no body, no Content-Type
        assert r.headers["Content-Type"].startswith(accept(version)), r.headers
        return r.json()

    return call


def test_project_resource_and_data_source(server, tf):
    g = server.project_id
    settings = tf("GET", f"/groups/{g}/settings", "2023-01-01")
    assert settings["isDataExplorerEnabled"] is True
    changed = tf("PATCH", f"/groups/{g}/settings", "2023-01-01",
                 {"isSchemaAdvisorEnabled": False})
    assert changed["isSchemaAdvisorEnabled"] is False
    assert tf("GET", f"/groups/{g}/teams", "2023-01-01")["results"] == []
    limits = tf("GET", f"/groups/{g}/limits", "2023-01-01")
    assert {"name", "value", "defaultLimit", "maximumLimit"} <= set(limits[0])
    tf("PATCH", f"/groups/{g}/limits/atlas.project.deployment.clusters", "2023-01-01",
       {"value": 30})
    ips = tf("GET", f"/groups/{g}/ipAddresses", "2023-01-01")
    assert ips["groupId"] == g and "clusters" in ips["services"]
    assert tf("GET", f"/groups/{g}/managedSlowMs", "2023-01-01") is True
    users = tf("GET", f"/groups/{g}/users", "2025-02-19")
    assert users["totalCount"] == 0


def test_organization_resource_and_data_sources(server, tf):
    o = server.org_id
    changed = tf("PATCH", f"/orgs/{o}/settings", "2023-01-01",
                 {"apiAccessListRequired": False, "multiFactorAuthRequired": False,
                  "restrictEmployeeAccess": True})
    assert changed["restrictEmployeeAccess"] is True
    assert tf("GET", f"/orgs/{o}/settings", "2023-01-01")["restrictEmployeeAccess"] is True
    # The bootstrap's first owner (the console's sign-in) is the organization's one member.
    assert tf("GET", f"/orgs/{o}/users", "2025-02-19")["totalCount"] == 1
    # `mongodbatlas_organizations` sends `name=` empty: every organization.
    orgs = tf("GET", "/orgs", "2023-01-01", params={"name": "", "itemsPerPage": 100,
                                                     "includeCount": "true"})
    assert [x["id"] for x in orgs["results"]] == [o]


def test_advanced_cluster_resource(server, tf):
    g = server.project_id
    spec = {"name": "tf-cluster", "clusterType": "REPLICASET",
            "replicationSpecs": [{"zoneName": "Zone 1", "regionConfigs": [{
                "providerName": "AWS", "regionName": "US_EAST_1", "priority": 7,
                "electableSpecs": {"instanceSize": "M10", "nodeCount": 3}}]}]}
    tf("POST", f"/groups/{g}/clusters", "2024-10-23", spec)
    containers = tf("GET", f"/groups/{g}/containers", "2023-01-01",
                    params={"providerName": "AWS"})
    assert [c["regionName"] for c in containers["results"]] == ["US_EAST_1"]
    args = tf("GET", f"/groups/{g}/clusters/tf-cluster/processArgs", "2024-08-05")
    assert args["javascriptEnabled"] is True
    tf("PATCH", f"/groups/{g}/clusters/tf-cluster/processArgs", "2024-08-05",
       {"javascriptEnabled": False})
    assert tf("GET", f"/groups/{g}/flexClusters", "2024-11-13")["results"] == []
    tf("GET", f"/groups/{g}/clusters/tf-cluster", "2024-08-05")
    tf("DELETE", f"/groups/{g}/clusters/tf-cluster", "2023-02-01")


def test_access_resources(server, tf):
    """`mongodbatlas_project_ip_access_list`, `_database_user`, `_custom_db_role`, `_team`,
    `_project_invitation` and `_org_invitation`: create, read, delete, as the provider does."""
    g, o = server.project_id, server.org_id
    tf("POST", f"/groups/{g}/accessList", "2023-01-01",
       [{"cidrBlock": "198.51.100.0/24", "comment": "tf"}])
    assert tf("GET", f"/groups/{g}/accessList/198.51.100.0%2F24", "2023-01-01")["comment"] == "tf"
    role = tf("POST", f"/groups/{g}/customDBRoles/roles", "2023-01-01",
              {"roleName": "tfRole", "actions": [{"action": "FIND",
                                                  "resources": [{"db": "a", "collection": ""}]}]})
    assert role["roleName"] == "tfRole"
    user = tf("POST", f"/groups/{g}/databaseUsers", "2023-01-01",
              {"databaseName": "admin", "username": "tf-user", "password": "correct horse battery",
               "roles": [{"roleName": "tfRole", "databaseName": "admin"}],
               "scopes": [], "labels": [{"key": "k", "value": "v"}]})
    assert user["username"] == "tf-user"
    assert tf("GET", f"/groups/{g}/databaseUsers/admin/tf-user", "2023-01-01")["labels"] == [
        {"key": "k", "value": "v"}]
    team = tf("POST", f"/orgs/{o}/teams", "2023-01-01", {"name": "tf-team", "usernames": []})
    assert tf("GET", f"/orgs/{o}/teams/{team['id']}", "2023-01-01")["name"] == "tf-team"
    pinv = tf("POST", f"/groups/{g}/invites", "2023-01-01",
              {"username": "p@example.com", "roles": ["GROUP_READ_ONLY"]})
    assert tf("GET", f"/groups/{g}/invites/{pinv['id']}", "2023-01-01")["roles"] == [
        "GROUP_READ_ONLY"]
    oinv = tf("POST", f"/orgs/{o}/invites", "2023-01-01",
              {"username": "o@example.com", "roles": ["ORG_MEMBER"]})
    assert tf("GET", f"/orgs/{o}/invites/{oinv['id']}", "2023-01-01")["username"] == "o@example.com"
    for path in (f"/orgs/{o}/invites/{oinv['id']}", f"/groups/{g}/invites/{pinv['id']}",
                 f"/orgs/{o}/teams/{team['id']}", f"/groups/{g}/databaseUsers/admin/tf-user",
                 f"/groups/{g}/customDBRoles/roles/tfRole",
                 f"/groups/{g}/accessList/198.51.100.0%2F24"):
        tf("DELETE", path, "2023-01-01")
