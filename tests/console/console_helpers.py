"""Helpers for the console's browser tests: the server with its first owner's sign-in, the
test identity provider, sign-in steps as a person takes them, API set-up calls, axe and
screenshots.

Waiting is Playwright's auto-waiting ``expect`` or a bounded poll for a condition; no
sleep stands in for an assertion.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest
import requests
from playwright.sync_api import Page, Response, expect

from helpers import REPO_ROOT, Server, clean_env, free_port

CONSOLE_DIR = Path(__file__).resolve().parent
AXE_JS = CONSOLE_DIR / "node_modules" / "axe-core" / "axe.min.js"
IDP_SCRIPT = CONSOLE_DIR / "idp.mjs"
SCREENSHOT_DIR = REPO_ROOT / "docs" / "screenshots"

# Where the console receives the identity provider's answer (the OIDC redirect URI).
OIDC_CALLBACK_PATH = "/login/oidc/callback"

# Media types of the Atlas Admin API versions the set-up calls use.
V2023 = "application/vnd.atlas.2023-01-01+json"
V2024_08 = "application/vnd.atlas.2024-08-05+json"
V2024_10 = "application/vnd.atlas.2024-10-23+json"
V2025_02 = "application/vnd.atlas.2025-02-19+json"

# Upper bounds for failure only.
IDP_STARTUP_TIMEOUT_S = 30.0
IDP_SHUTDOWN_TIMEOUT_S = 10.0

# A password long enough for the server's policy, for people the tests create.
TEST_PASSWORD = "a long enough password"


# ---- the server ------------------------------------------------------------------------


@dataclass
class ConsoleServer(Server):
    """A ``tessera serve`` whose bootstrap also names the first owner's local sign-in."""

    owner_username: str = ""
    owner_password: str = ""

    def _read_bootstrap(self) -> None:
        super()._read_bootstrap()
        data = json.loads((self.data_dir / "bootstrap.json").read_text())
        if "ownerUsername" not in data or "ownerPassword" not in data:
            pytest.fail("bootstrap.json names no first owner (ownerUsername, ownerPassword): "
                        "this tessera has no console", pytrace=False)
        self.owner_username = data["ownerUsername"]
        self.owner_password = data["ownerPassword"]


# ---- the test identity provider --------------------------------------------------------


@dataclass
class Idp:
    """``node idp.mjs``: the test OpenID Connect provider (see idp.mjs for its accounts)."""

    redirect_uris: list[str]
    log_dir: Path
    port: int = 0
    proc: subprocess.Popen | None = None

    @property
    def issuer(self) -> str:
        return f"http://localhost:{self.port}"

    @property
    def stdout_path(self) -> Path:
        return self.log_dir / "idp.stdout.log"

    @property
    def stderr_path(self) -> Path:
        return self.log_dir / "idp.stderr.log"

    def output(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in (self.stdout_path, self.stderr_path)
                         if p.exists())

    def start(self) -> None:
        node = shutil.which("node")
        if node is None:
            pytest.fail("node is not installed: the test identity provider needs it", pytrace=False)
        if not (CONSOLE_DIR / "node_modules" / "oidc-provider").is_dir():
            pytest.fail("oidc-provider is not installed: run `npm ci --prefix tests/console`",
                        pytrace=False)
        self.port = free_port()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = clean_env(IDP_PORT=str(self.port), CONSOLE_REDIRECT_URI=",".join(self.redirect_uris))
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen([node, str(IDP_SCRIPT)], cwd=CONSOLE_DIR,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env)
        deadline = time.monotonic() + IDP_STARTUP_TIMEOUT_S
        while "IDP READY" not in self.stdout_path.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"the test identity provider did not start:\n{self.output()}",
                            pytrace=False)
            time.sleep(0.05)  # polling interval, not an assertion

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=IDP_SHUTDOWN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=IDP_SHUTDOWN_TIMEOUT_S)


def idp_sign_in(page: Page, email: str) -> None:
    """Sign in at the test identity provider, whose pages the browser is on: its development
    login form (login = the email, any password, button "Sign-in"), then its consent page
    (button "Continue"). A fresh browser context has no session and no grant there, so
    both pages are always shown."""
    page.locator("input[name=login]").fill(email)
    page.locator("input[name=password]").fill("any password")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()


# ---- signing in to the console ---------------------------------------------------------


def totp_now(secret: str) -> str:
    """The current six-digit code of a base32 TOTP secret."""
    return pyotp.TOTP(secret).now()


def totp_other_than(secret: str, used: str) -> str:
    """A current code other than ``used``. The server may refuse a code already used (replay),
    so a second sign-in within the same 30-second step waits, bounded, for the next step."""
    totp = pyotp.TOTP(secret)
    deadline = time.monotonic() + totp.interval + 5
    while (code := totp.now()) == used:
        assert time.monotonic() < deadline, "the TOTP code did not change within one step"
        time.sleep(0.2)  # polling interval, not an assertion
    return code


def submit_sign_in(page: Page, email: str, password: str) -> Response | None:
    """Fill and submit the sign-in form at /login (the page must show it); the response of
    the page the browser lands on."""
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    with page.expect_navigation() as landed:
        page.get_by_role("button", name="Sign in", exact=True).click()
    return landed.value


def submit_totp(page: Page, code: str) -> Response | None:
    """Enter a code on the two-factor page and press Verify; the response landed on."""
    page.get_by_label("Authentication code").fill(code)
    with page.expect_navigation() as landed:
        page.get_by_role("button", name="Verify").click()
    return landed.value


def expect_heading(page: Page, text: str) -> None:
    expect(page.get_by_role("heading", level=1)).to_have_text(text)


def enrolment_secret(page: Page) -> str:
    """The TOTP secret the two-factor page shows at enrolment (spaces for legibility dropped)."""
    expect_heading(page, "Two-factor authentication")
    return re.sub(r"\s+", "", page.locator("#totp-secret").inner_text())


def sign_in_and_enrol(page: Page, email: str, password: str) -> tuple[str, str]:
    """First sign-in of a local user: password, then TOTP enrolment. Ends on the
    Organizations page. Returns the TOTP secret and the code used."""
    page.goto("/login")
    submit_sign_in(page, email, password)
    secret = enrolment_secret(page)
    code = totp_now(secret)
    submit_totp(page, code)
    expect_heading(page, "Organizations")
    return secret, code


def sign_out(page: Page) -> None:
    with page.expect_navigation():
        page.get_by_role("button", name="Sign out").click()


def csrf_token(page: Page) -> str:
    """The CSRF token of the first form on the page (every form carries one)."""
    token = page.locator("form input[name=csrf]").first.get_attribute("value")
    assert token, "a form without a CSRF token"
    return token


def form_of(page: Page, button_name: str) -> tuple[str, dict[str, str]]:
    """The action URL and the fields (as the browser would send them) of the form holding
    the button ``button_name``."""
    form = page.get_by_role("button", name=button_name, exact=True).locator("xpath=ancestor::form")
    found = form.evaluate("f => ({action: f.action, fields: Object.fromEntries(new FormData(f))})")
    return found["action"], found["fields"]


# ---- set-up through the Atlas Admin API ------------------------------------------------


def api(server: Server, accept: str = V2023) -> requests.Session:
    """A Digest session with the bootstrap ORG_OWNER API key."""
    s = server.session(accept=accept)
    s.headers["Content-Type"] = accept
    return s


def org_name(server: Server) -> str:
    r = api(server).get(server.v2(f"/orgs/{server.org_id}"))
    assert r.status_code == 200, r.text
    return r.json()["name"]


def create_cluster(server: Server, name: str = "Cluster0") -> str:
    body = {
        "name": name,
        "clusterType": "REPLICASET",
        "replicationSpecs": [{"regionConfigs": [{
            "providerName": "AWS", "regionName": "US_EAST_1", "priority": 7,
            "electableSpecs": {"instanceSize": "M10", "nodeCount": 3}}]}],
    }
    r = api(server, V2024_10).post(server.v2(f"/groups/{server.project_id}/clusters"), json=body)
    assert r.status_code == 201, r.text
    return name


def employee_access_grant(server: Server, cluster: str) -> dict | None:
    """The cluster's active MongoDB employee access grant, as the API reports it."""
    r = api(server, V2024_08).get(server.v2(f"/groups/{server.project_id}/clusters/{cluster}"))
    assert r.status_code == 200, r.text
    return r.json().get("mongoDBEmployeeAccessGrant")


def access_list_entries(server: Server) -> list[str]:
    r = api(server).get(server.v2(f"/groups/{server.project_id}/accessList"))
    assert r.status_code == 200, r.text
    return [e.get("cidrBlock") or e.get("ipAddress") for e in r.json()["results"]]


def service_account_names(server: Server) -> list[str]:
    r = api(server, V2024_08).get(server.v2(f"/orgs/{server.org_id}/serviceAccounts"))
    assert r.status_code == 200, r.text
    return [a["name"] for a in r.json()["results"]]


def create_service_account(server: Server, name: str) -> str:
    r = api(server, V2024_08).post(server.v2(f"/orgs/{server.org_id}/serviceAccounts"),
                         json={"name": name, "description": "Made through the API",
                               "roles": ["ORG_MEMBER"], "secretExpiresAfterHours": 24})
    assert r.status_code == 201, r.text
    return r.json()["clientId"]


def create_local_user(server: Server, username: str, org_role: str) -> str:
    """A MongoDB Cloud user with a password and ``org_role`` in the bootstrap organization,
    active at once (POST /users gives the role directly; POST /orgs/{orgId}/users would only
    invite). Returns the user's id."""
    r = api(server).post(server.v2("/users"), json={
        "username": username, "password": TEST_PASSWORD, "firstName": "Rob", "lastName": "Reader",
        "roles": [{"orgId": server.org_id, "roleName": org_role}],
    })
    assert r.status_code in (200, 201), r.text
    return r.json()["id"]


def configure_oidc(server: Server, idp: Idp, display_name: str = "Test IdP") -> str:
    """Make the test identity provider the bootstrap organization's workforce OIDC provider,
    mapping its group "tessera-owners" to ORG_OWNER. Returns the identity provider's id."""
    s = api(server)
    r = s.get(server.v2(f"/orgs/{server.org_id}/federationSettings"))
    assert r.status_code == 200, r.text
    fid = r.json()["id"]
    idps = api(server, "application/vnd.atlas.2023-11-15+json")
    r = idps.post(server.v2(f"/federationSettings/{fid}/identityProviders"), json={
        "protocol": "OIDC", "idpType": "WORKFORCE", "displayName": display_name,
        "issuerUri": idp.issuer, "clientId": "tessera-console", "audience": "tessera-console",
        "authorizationType": "GROUP", "groupsClaim": "groups", "userClaim": "email",
        "requestedScopes": ["email", "profile", "groups"], "associatedDomains": ["example.com"],
    })
    assert r.status_code in (200, 201), r.text
    idp_id = r.json()["id"]
    connected = server.v2(f"/federationSettings/{fid}/connectedOrgConfigs/{server.org_id}")
    r = s.patch(connected, json={"identityProviderId": idp_id, "domainAllowList": [],
                                 "domainRestrictionEnabled": False, "postAuthRoleGrants": []})
    assert r.status_code == 200, r.text
    r = s.post(f"{connected}/roleMappings", json={
        "externalGroupName": "tessera-owners",
        "roleAssignments": [{"orgId": server.org_id, "role": "ORG_OWNER"}],
    })
    assert r.status_code in (200, 201), r.text
    return idp_id


def utc_in(**delta: float) -> str:
    """A ``datetime-local`` value (UTC, to the minute) ``delta`` from now."""
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(**delta)
    return t.strftime("%Y-%m-%dT%H:%M")


# ---- accessibility and screenshots -----------------------------------------------------


def axe(page: Page) -> list[dict]:
    """Run axe-core on the page; its violations of impact "serious" or "critical", each as
    rule id, impact, help text and the offending elements. The page's context must bypass
    the console's CSP (``bypass_csp=True``) for the script tag to run."""
    page.add_script_tag(path=str(AXE_JS))
    violations = page.evaluate("async () => (await axe.run(document, "
                               "{resultTypes: ['violations']})).violations")
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"],
         "nodes": [n["target"] for n in v["nodes"]]}
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]


def screenshot(page: Page, name: str) -> None:
    """Save docs/screenshots/<name>.png, only when TESSERA_SCREENSHOTS=1 (CI runs leave the
    work tree untouched)."""
    if os.environ.get("TESSERA_SCREENSHOTS") != "1":
        return
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT_DIR / f"{name}.png"), full_page=True)
