"""OAuth 2.0 with real clients: Authlib (a maintained OAuth client library from PyPI) and
the seeds' own curl command lines (seed 000: revoke; seed 003: create a service account;
seed 001: unassign from a project)."""

from __future__ import annotations

import base64
import shutil

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session

from helpers import V1_ACCEPT, V2_ACCEPT, assert_error
from test_curl import parse_included, sh

SA_ACCEPT = "application/vnd.atlas.2024-08-05+json"
requires_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


def create_service_account(server, roles, hours=24):
    s = server.session(accept=SA_ACCEPT)
    r = s.post(server.v2(f"/orgs/{server.org_id}/serviceAccounts"),
               json={"name": "Client test", "description": "OAuth client test",
                     "roles": roles, "secretExpiresAfterHours": hours})
    assert r.status_code == 201, r.text
    body = r.json()
    return body["clientId"], body["secrets"][0]["secret"]


def test_authlib_client_credentials_call_and_revoke(server):
    client_id, secret = create_service_account(server, ["ORG_OWNER"])
    client = OAuth2Session(client_id, secret, token_endpoint_auth_method="client_secret_basic")
    client.trust_env = False
    token = client.fetch_token(f"{server.base_url}/api/oauth/token", grant_type="client_credentials")
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 3600
    assert token["access_token"].count(".") == 2

    # The library sends the Bearer token; both surfaces accept it.
    r = client.get(server.v2(f"/orgs/{server.org_id}/serviceAccounts/{client_id}"),
                   headers={"Accept": SA_ACCEPT})
    assert r.status_code == 200, r.text
    assert r.json()["clientId"] == client_id
    r = client.get(server.v1("/orgs"), headers={"Accept": V1_ACCEPT})
    assert r.status_code == 200 and r.json()["results"][0]["id"] == server.org_id
    r = client.post(server.v2("/groups"), headers={"Accept": V2_ACCEPT},
                    json={"name": "made-with-authlib", "orgId": server.org_id})
    assert r.status_code == 200, r.text

    # RFC 7009 revocation through the library, then the token is refused.
    r = client.revoke_token(f"{server.base_url}/api/oauth/revoke",
                            token=token["access_token"], token_type_hint="access_token")
    assert r.status_code == 200, r.text
    r = client.get(server.v1("/orgs"), headers={"Accept": V1_ACCEPT})
    assert_error(r, 401, "UNAUTHORIZED")


def test_authlib_wrong_secret_is_invalid_client(server):
    client_id, _ = create_service_account(server, ["ORG_MEMBER"])
    client = OAuth2Session(client_id, "mdb_sa_sk_" + "x" * 40,
                           token_endpoint_auth_method="client_secret_basic")
    client.trust_env = False
    with pytest.raises(Exception) as e:
        client.fetch_token(f"{server.base_url}/api/oauth/token", grant_type="client_credentials")
    assert "invalid_client" in str(e.value)


def test_discovery_documents(server):
    meta = requests.get(f"{server.base_url}/.well-known/oauth-authorization-server").json()
    assert meta["issuer"] == server.base_url
    assert meta["token_endpoint"] == f"{server.base_url}/api/oauth/token"
    jwks = requests.get(meta["jwks_uri"]).json()
    assert jwks["keys"][0]["alg"] == "ES256" and jwks["keys"][0]["kty"] == "EC"


@requires_curl
def test_seed_003_create_service_account_with_curl(server):
    cmd = (
        f'curl --user "{server.public_key}:{server.private_key}" --digest '
        '--header "Accept: application/json" '
        '--header "Content-Type: application/json" '
        '--include '
        f'--request POST "{server.base_url}/api/public/v1.0/orgs/{server.org_id}/serviceAccounts?pretty=true" '
        '--data \'{ "name": "Billing", "description": "Service account for users in finance.", '
        '"secretExpiresAfterHours": 3600, "roles": ["ORG_MEMBER", "ORG_BILLING_ADMIN"] }\''
    )
    res = sh(cmd)
    assert res.returncode == 0, res.stderr
    final = parse_included(res.stdout)[-1]
    assert final.status == 201, res.stdout
    body = final.json()
    assert set(body) == {"clientId", "createdAt", "description", "name", "roles", "secrets"}
    assert body["clientId"].startswith("mdb_sa_id_")
    assert body["roles"] == ["ORG_MEMBER", "ORG_BILLING_ADMIN"]
    secret = body["secrets"][0]
    assert set(secret) == {"createdAt", "expiresAt", "id", "secret"}
    assert secret["secret"].startswith("mdb_sa_sk_")


@requires_curl
def test_seed_000_revoke_with_curl(server):
    client_id, secret = create_service_account(server, ["ORG_OWNER"])
    minted = sh(f'curl -s --user "{client_id}:{secret}" -d grant_type=client_credentials '
                f'{server.base_url}/api/oauth/token')
    import json
    token = json.loads(minted.stdout)["access_token"]
    base64_auth = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    # Seed 000's command line, pointed at this server.
    cmd = (
        f'curl --include -X POST {server.base_url}/api/oauth/revoke '
        '-H "Content-Type: application/x-www-form-urlencoded" '
        f'-H "Authorization: Basic {base64_auth}" '
        f'-d "token={token}&token_type_hint=access_token"'
    )
    res = sh(cmd)
    ex = parse_included(res.stdout)[-1]
    assert ex.status == 200, res.stdout
    assert ex.body == ""
    assert ex.header("Content-Type") == ["application/json"]
    # Seed 002's Bearer form of a call: the revoked token is refused.
    call = sh(f'curl --include --header "Authorization: Bearer {token}" '
              f'--header "Accept: application/vnd.atlas.2023-01-01+json" '
              f'"{server.base_url}/api/atlas/v2/orgs/{server.org_id}"')
    assert parse_included(call.stdout)[-1].status == 401


@requires_curl
def test_seed_001_unassign_with_curl(server):
    client_id, secret = create_service_account(server, ["ORG_MEMBER"])
    s = server.session(accept=SA_ACCEPT)
    r = s.post(server.v2(f"/groups/{server.project_id}/serviceAccounts/{client_id}:invite"),
               json={"roles": ["GROUP_READ_ONLY"]})
    assert r.status_code == 200, r.text
    cmd = (
        f'curl --user "{server.public_key}:{server.private_key}" --digest '
        '--header "Accept: application/json" '
        '--header "Content-Type: application/json" '
        '--include '
        f'--request DELETE "{server.base_url}/api/public/v1.0/groups/{server.project_id}/serviceAccounts/{client_id}"'
    )
    res = sh(cmd)
    assert parse_included(res.stdout)[-1].status == 204, res.stdout
    # The account's credentials stay valid in the organization (seed 001's note).
    r = requests.post(f"{server.base_url}/api/oauth/token", auth=(client_id, secret),
                      data={"grant_type": "client_credentials"})
    assert r.status_code == 200, r.text


def test_no_secret_or_token_in_the_server_log(server_factory):
    srv = server_factory("logs")
    srv.env = {"TESSERA_LOG": "debug"}
    srv.start()
    client_id, secret = create_service_account(srv, ["ORG_OWNER"])
    token = requests.post(f"{srv.base_url}/api/oauth/token", auth=(client_id, secret),
                          data={"grant_type": "client_credentials"}).json()["access_token"]
    requests.get(srv.v1("/orgs"), headers={"Authorization": f"Bearer {token}"})
    requests.post(f"{srv.base_url}/api/oauth/token", auth=(client_id, "mdb_sa_sk_" + "y" * 40),
                  data={"grant_type": "client_credentials"})
    requests.post(f"{srv.base_url}/api/oauth/revoke", auth=(client_id, secret), data={"token": token})
    assert srv.stop() == 0
    log = srv.stderr()
    assert "token revoked" in log, "the log capture works"
    for value in (secret, token, token.rsplit(".", 1)[1], srv.private_key):
        assert value not in log
    stdout = srv.stdout()
    assert secret not in stdout and token not in stdout
