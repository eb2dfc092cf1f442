"""The console in a real browser: sign-in (password, TOTP, OIDC), the pages that change
access, their events, what a read-only member may do, keyboard use, accessibility and the
browser-facing security properties.

Each test starts its own server and browser context, so none depends on another.
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect

from console_helpers import (
    TEST_PASSWORD,
    access_list_entries,
    axe,
    configure_oidc,
    create_cluster,
    create_local_user,
    create_service_account,
    csrf_token,
    employee_access_grant,
    enrolment_secret,
    expect_heading,
    form_of,
    idp_sign_in,
    org_name,
    screenshot,
    service_account_names,
    sign_in_and_enrol,
    sign_out,
    submit_sign_in,
    submit_totp,
    totp_now,
    totp_other_than,
    utc_in,
)

HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture
def owner_page(page, server) -> Page:
    """The page, signed in as the bootstrap owner (password, then TOTP enrolment)."""
    sign_in_and_enrol(page, server.owner_username, server.owner_password)
    return page


def events_table(page: Page):
    return page.locator("#events")


def shown_as_text(page: Page, text: str):
    """Elements showing ``text`` themselves, not as a choice of a select."""
    return page.locator(f"xpath=//body//*[not(self::option)][contains(text(), '{text}')]").first


def enrolment_code(page: Page) -> str:
    """A valid code for the secret the two-factor page shows at enrolment."""
    return totp_now(enrolment_secret(page))


# ---- signing in and out ----------------------------------------------------------------


def test_owner_enrols_totp_signs_out_and_signs_in_again(page, server):
    page.goto("/login")
    expect_heading(page, "Sign in to Tessera")
    screenshot(page, "login")
    submit_sign_in(page, server.owner_username, server.owner_password)
    expect(page).to_have_url(re.compile(r"/login/totp$"))
    secret = enrolment_secret(page)
    assert len(secret) >= 16, f"a TOTP secret of less than 80 bits: {secret!r}"
    screenshot(page, "totp-enrolment")
    first_code = totp_now(secret)
    submit_totp(page, first_code)
    expect(page).to_have_url(re.compile(r"/$"))
    expect_heading(page, "Organizations")
    expect(page.locator("main").get_by_role("link", name=org_name(server), exact=True)).to_have_attribute(
        "href", re.compile(rf"/orgs/{server.org_id}$"))
    screenshot(page, "organizations")

    sign_out(page)
    page.goto("/")
    expect_heading(page, "Sign in to Tessera")

    # The second sign-in asks for a code and shows no secret any more.
    submit_sign_in(page, server.owner_username, server.owner_password)
    expect_heading(page, "Two-factor authentication")
    expect(page.locator("#totp-secret")).to_have_count(0)
    submit_totp(page, totp_other_than(secret, first_code))
    expect_heading(page, "Organizations")


def test_wrong_password_is_an_alert_and_the_sixth_try_is_too_many(page, server):
    page.goto("/login")
    for attempt in range(1, 6):
        landed = submit_sign_in(page, server.owner_username, f"wrong password {attempt}")
        assert landed is not None and landed.status != 429, f"attempt {attempt} throttled"
        expect(page.get_by_role("alert")).to_be_visible()
        expect_heading(page, "Sign in to Tessera")

    # The limit is 5 a minute, one more every 12 s: the next try is refused unless this
    # (busy) machine took that long between tries, so keep trying, bounded, until it is.
    for attempt in range(6, 16):
        landed = submit_sign_in(page, server.owner_username, f"wrong password {attempt}")
        assert landed is not None
        if landed.status == 429:
            break
    assert landed.status == 429, "ten more wrong passwords were never throttled"
    throttled_at = time.monotonic()
    retry_after = int(landed.headers.get("retry-after", "0"))
    assert retry_after >= 1
    expect(page.get_by_text("Too many attempts")).to_be_visible()

    # Within the wait it names, even the right password is refused.
    page.goto("/login")
    landed = submit_sign_in(page, server.owner_username, server.owner_password)
    assert landed is not None
    if time.monotonic() - throttled_at < retry_after:
        assert landed.status == 429
        expect(page.get_by_text("Too many attempts")).to_be_visible()


def test_oidc_sign_in_lands_on_the_organizations_page(page, server, idp):
    configure_oidc(server, idp, display_name="Test IdP")
    page.goto("/login")
    page.get_by_role("link", name="Sign in with Test IdP").click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(idp.issuer)}/"))
    idp_sign_in(page, "alice@example.com")
    expect(page).to_have_url(re.compile(rf"^{re.escape(server.base_url)}/$"))
    expect_heading(page, "Organizations")
    expect(page.locator("main").get_by_role("link", name=org_name(server), exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_oidc_callback_with_a_forged_state_or_replayed_is_refused(page, page_factory, server, idp):
    """The callback's ``state`` must be the one this browser's sign-in sent, and a sign-in in
    progress is taken once: a changed state, or the same callback again, signs nobody in."""
    idp_id = configure_oidc(server, idp, display_name="Test IdP")
    # The redirect to the provider, with its state changed before the browser follows it.
    start = page.request.get(f"{server.base_url}/login/oidc/{idp_id}", max_redirects=0)
    assert start.status == 303, start.status
    to_idp = start.headers["location"]
    assert "code_challenge_method=S256" in to_idp and "nonce=" in to_idp, to_idp
    page.goto(re.sub(r"state=[^&]+", "state=forged", to_idp))
    idp_sign_in(page, "alice@example.com")
    expect(page.get_by_role("alert")).to_contain_text("state does not match")
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login$"))
    # A genuine sign-in (in a browser new to the provider); then its callback again is
    # refused (the sign-in was taken).
    page = page_factory()
    callbacks: list[str] = []
    page.on("request", lambda r: callbacks.append(r.url) if "/login/oidc/callback" in r.url else None)
    page.goto("/login")
    page.get_by_role("link", name="Sign in with Test IdP").click()
    idp_sign_in(page, "alice@example.com")
    expect_heading(page, "Organizations")
    assert callbacks, "the callback was not seen"
    page.goto(callbacks[-1])
    expect(page.get_by_role("alert")).to_contain_text("expired or was already used")


# ---- changing access, and the events it writes -----------------------------------------


def test_service_account_secret_is_shown_once_and_the_creation_logged(owner_page, server):
    page = owner_page
    page.goto(f"/orgs/{server.org_id}/serviceAccounts")
    expect_heading(page, "Service accounts")
    page.get_by_label("Name", exact=True).fill("Deploy bot")
    page.get_by_label("Description").fill("Deploys from CI")
    page.get_by_label("Role").select_option("ORG_MEMBER")
    page.get_by_label("Secret expires after (hours)").fill("24")
    page.get_by_role("button", name="Create service account").click()

    expect(page).to_have_url(re.compile(rf"/orgs/{server.org_id}/serviceAccounts/[^/?#]+$"))
    expect_heading(page, "Deploy bot")
    secret = page.locator("#new-secret")
    expect(secret).to_have_text(re.compile(r"^\s*mdb_sa_sk_\S+\s*$"))
    expect(page.get_by_role("button", name="Copy")).to_be_visible()
    expect(page.get_by_role("button", name="Delete service account")).to_be_visible()
    screenshot(page, "service-account-secret")
    shown = secret.inner_text().strip()

    page.reload()
    expect_heading(page, "Deploy bot")
    expect(page.locator("#new-secret")).to_have_count(0)
    assert shown not in page.content()
    assert service_account_names(server) == ["Deploy bot"]

    page.goto(f"/orgs/{server.org_id}/events")
    expect_heading(page, "Events")
    expect(events_table(page)).to_contain_text("SERVICE_ACCOUNT_CREATED")
    screenshot(page, "org-events")


def test_employee_access_is_granted_and_revoked_and_both_logged(owner_page, server):
    page = owner_page
    cluster = create_cluster(server)
    page.goto(f"/groups/{server.project_id}/clusters/{cluster}")
    expect_heading(page, cluster)
    expect(page.get_by_role("heading", level=2, name="MongoDB employee access")).to_be_visible()
    page.get_by_label("Access level").select_option("CLUSTER_INFRASTRUCTURE")
    page.get_by_label("Expires at").fill(utc_in(days=1))
    page.get_by_role("button", name="Grant access").click()

    revoke = page.get_by_role("button", name="Revoke access")
    expect(revoke).to_be_visible()
    expect(shown_as_text(page, "CLUSTER_INFRASTRUCTURE")).to_be_visible()
    assert employee_access_grant(server, cluster)["grantType"] == "CLUSTER_INFRASTRUCTURE"
    screenshot(page, "employee-access")

    revoke.click()
    expect(page.get_by_role("button", name="Grant access")).to_be_visible()
    expect(page.get_by_role("button", name="Revoke access")).to_have_count(0)
    assert employee_access_grant(server, cluster) is None

    page.goto(f"/groups/{server.project_id}/events")
    expect_heading(page, "Events")
    expect(events_table(page)).to_contain_text("EMPLOYEE_ACCESS_GRANTED")
    expect(events_table(page)).to_contain_text("EMPLOYEE_ACCESS_REVOKED")


def test_access_list_entry_is_added_and_removed_and_both_logged(owner_page, server):
    page = owner_page
    entry = "203.0.113.7/32"
    page.goto(f"/groups/{server.project_id}/accessList")
    expect_heading(page, "IP access list")
    page.get_by_label("IP address or CIDR block").fill(entry)
    page.get_by_label("Comment").fill("Office")
    page.get_by_role("button", name="Add entry").click()

    remove = page.get_by_role("button", name=f"Remove {entry}")
    expect(remove).to_be_visible()
    assert access_list_entries(server) == [entry]
    screenshot(page, "access-list")
    remove.click()
    expect(page.get_by_role("button", name=f"Remove {entry}")).to_have_count(0)
    assert access_list_entries(server) == []

    page.goto(f"/groups/{server.project_id}/events")
    table = events_table(page)
    expect(table).to_contain_text("NETWORK_PERMISSION_ENTRY_ADDED")
    expect(table).to_contain_text("NETWORK_PERMISSION_ENTRY_REMOVED")

    # The type filter keeps only the chosen type.
    page.get_by_label("Event type").select_option("NETWORK_PERMISSION_ENTRY_REMOVED")
    page.get_by_role("button", name="Filter").click()
    expect(table).to_contain_text("NETWORK_PERMISSION_ENTRY_REMOVED")
    expect(table).not_to_contain_text("NETWORK_PERMISSION_ENTRY_ADDED")


def test_live_events_show_new_rows_without_a_reload(owner_page, server):
    page = owner_page
    page.goto(f"/orgs/{server.org_id}/events")
    expect(events_table(page)).not_to_contain_text("SERVICE_ACCOUNT_CREATED")
    page.get_by_label("Live").check()
    # A mark on this document: a reload would make a new one, without it.
    page.evaluate("() => { window.stillTheSamePage = true; }")

    create_service_account(server, "Live bot")
    # The tail asks every 3 s; a generous bound for a busy machine (not a timing assertion).
    expect(events_table(page)).to_contain_text("SERVICE_ACCOUNT_CREATED", timeout=30_000)
    assert page.evaluate("() => window.stillTheSamePage === true"), "the page was reloaded"


# ---- a read-only member ----------------------------------------------------------------


def test_read_only_member_sees_no_change_buttons_and_a_forged_post_is_refused(
        page_factory, server):
    cluster = create_cluster(server)
    create_local_user(server, "rob@example.com", "ORG_READ_ONLY")
    o, g = server.org_id, server.project_id

    # The forms as an owner's browser would send them, filled in by label.
    owner = page_factory()
    sign_in_and_enrol(owner, server.owner_username, server.owner_password)
    owner.goto(f"/orgs/{o}/serviceAccounts")
    owner.get_by_label("Name", exact=True).fill("Forged bot")
    owner.get_by_label("Description").fill("Should never exist")
    owner.get_by_label("Role").select_option("ORG_OWNER")
    owner.get_by_label("Secret expires after (hours)").fill("24")
    forged_service_account = form_of(owner, "Create service account")
    owner.goto(f"/groups/{g}/accessList")
    owner.get_by_label("IP address or CIDR block").fill("198.51.100.0/24")
    forged_entry = form_of(owner, "Add entry")

    reader = page_factory()
    sign_in_and_enrol(reader, "rob@example.com", TEST_PASSWORD)
    reader.goto(f"/orgs/{o}/serviceAccounts")
    expect_heading(reader, "Service accounts")
    expect(reader.get_by_role("button", name="Create service account")).to_have_count(0)
    reader.goto(f"/groups/{g}/accessList")
    expect_heading(reader, "IP access list")
    expect(reader.get_by_role("button", name="Add entry")).to_have_count(0)
    reader.goto(f"/groups/{g}/clusters/{cluster}")
    expect_heading(reader, cluster)
    expect(reader.get_by_role("button", name="Grant access")).to_have_count(0)

    # The same posts with the reader's session and the reader's own CSRF token, from the
    # console's origin: refused for want of the role.
    token = csrf_token(reader)
    for action, fields in (forged_service_account, forged_entry):
        r = reader.request.post(action, form={**fields, "csrf": token},
                                headers={"Origin": server.base_url}, max_redirects=0)
        assert r.status == 403, f"{action}: {r.status} {r.text()[:300]}"
    assert service_account_names(server) == []
    assert access_list_entries(server) == []


# ---- keyboard, accessibility -----------------------------------------------------------


def test_keyboard_only_sign_in(page, server):
    page.goto("/login")
    email = page.get_by_label("Email", exact=True)
    password = page.get_by_label("Password", exact=True)
    sign_in = page.get_by_role("button", name="Sign in", exact=True)

    def focused(locator) -> bool:
        return locator.evaluate("el => el === document.activeElement")

    # Tab until Email has the focus (it may have it already, with autofocus).
    for _ in range(10):
        if focused(email):
            break
        page.keyboard.press("Tab")
    expect(email).to_be_focused()
    page.keyboard.type(server.owner_username)
    page.keyboard.press("Tab")
    expect(password).to_be_focused()
    page.keyboard.type(server.owner_password)
    page.keyboard.press("Tab")
    expect(sign_in).to_be_focused()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect_heading(page, "Two-factor authentication")


def test_keyboard_only_navigation_creates_a_service_account(owner_page, server):
    """From the organizations page to a new service account's secret with the keyboard only:
    Tab to a link or field, type, Enter. Every control is reachable and shows its focus."""
    page = owner_page

    def tab_to(locator, most: int = 60) -> None:
        for _ in range(most):
            if locator.evaluate("el => el === document.activeElement"):
                return
            page.keyboard.press("Tab")
        raise AssertionError(f"Tab never reached {locator}")

    expect_heading(page, "Organizations")
    tab_to(page.locator("main").get_by_role("link", name=org_name(server), exact=True))
    with page.expect_navigation():
        page.keyboard.press("Enter")
    tab_to(page.get_by_role("navigation", name="Organization").get_by_role("link", name="Service accounts"))
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "the focused link shows its focus"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect_heading(page, "Service accounts")
    tab_to(page.get_by_label("Name", exact=True))
    page.keyboard.type("keyboard-made")
    page.keyboard.press("Tab")
    page.keyboard.type("made without a mouse")
    tab_to(page.get_by_role("button", name="Create service account"))
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.locator("#new-secret")).to_contain_text("mdb_sa_sk_")
    tab_to(page.get_by_role("button", name="Copy"))


def test_pages_have_no_serious_accessibility_violations(page_factory, server):
    # axe-core is injected as a script tag, which the console's CSP forbids.
    page = page_factory(bypass_csp=True)
    found = {}
    page.goto("/login")
    found["/login"] = axe(page)
    submit_sign_in(page, server.owner_username, server.owner_password)
    found["/login/totp"] = axe(page)
    submit_totp(page, enrolment_code(page))
    for path in ("/", f"/orgs/{server.org_id}/serviceAccounts", f"/orgs/{server.org_id}/events"):
        page.goto(path)
        found[path] = axe(page)
    assert {path: v for path, v in found.items() if v} == {}


# ---- browser-facing security -----------------------------------------------------------


def assert_security_headers(response, where: str) -> None:
    assert response is not None, where
    csp = response.headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in csp, f"{where}: CSP {csp!r}"
    assert "unsafe-inline" not in csp, f"{where}: CSP {csp!r}"


def test_every_page_sends_a_strict_content_security_policy(page, server):
    cluster = create_cluster(server)
    o, g = server.org_id, server.project_id
    assert_security_headers(page.goto("/login"), "/login")
    assert_security_headers(submit_sign_in(page, server.owner_username, server.owner_password),
                            "/login/totp")
    assert_security_headers(submit_totp(page, enrolment_code(page)), "after sign-in")
    for path in ("/", f"/orgs/{o}", f"/orgs/{o}/users", f"/orgs/{o}/serviceAccounts",
                 f"/orgs/{o}/events", f"/groups/{g}", f"/groups/{g}/accessList",
                 f"/groups/{g}/events", f"/groups/{g}/clusters/{cluster}", "/no-such-page"):
        assert_security_headers(page.goto(path), path)


def test_hostile_names_are_shown_as_text(owner_page, server):
    page = owner_page
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    # A service account name: refused or kept, it is never markup. The server's answer is
    # what is tested, so the browser's own form validation is switched off.
    page.goto(f"/orgs/{server.org_id}/serviceAccounts")
    page.get_by_label("Name", exact=True).fill(HOSTILE)
    page.get_by_label("Description").fill("Hostile name")
    page.get_by_label("Role").select_option("ORG_MEMBER")
    page.get_by_label("Secret expires after (hours)").fill("24")
    create = page.get_by_role("button", name="Create service account")
    create.locator("xpath=ancestor::form").evaluate("form => { form.noValidate = true; }")
    with page.expect_navigation():
        create.click()
    expect(page.locator("img[src='x'], [onerror]")).to_have_count(0)

    # An access-list comment, which may hold any text: shown exactly as typed.
    page.goto(f"/groups/{server.project_id}/accessList")
    page.get_by_label("IP address or CIDR block").fill("192.0.2.1/32")
    page.get_by_label("Comment").fill(HOSTILE)
    page.get_by_role("button", name="Add entry").click()
    expect(page.get_by_role("button", name="Remove 192.0.2.1/32")).to_be_visible()
    expect(page.get_by_text(HOSTILE, exact=True)).to_be_visible()
    expect(page.locator("img[src='x'], [onerror]")).to_have_count(0)
    assert dialogs == []


def test_session_cookies_are_http_only_secure_and_same_site(page, server):
    def assert_cookie_flags(stage: str) -> None:
        cookies = page.context.cookies(server.base_url)
        assert cookies, f"{stage}: no cookie"
        for c in cookies:
            assert c["httpOnly"], f"{stage}: {c['name']} is readable by scripts"
            assert c["secure"], f"{stage}: {c['name']} is not Secure"
            assert c["sameSite"] in ("Lax", "Strict"), f"{stage}: {c['name']} {c['sameSite']}"

    page.goto("/login")
    submit_sign_in(page, server.owner_username, server.owner_password)
    assert_cookie_flags("between password and code")
    submit_totp(page, enrolment_code(page))
    expect_heading(page, "Organizations")
    assert_cookie_flags("signed in")


# ---- navigation ------------------------------------------------------------------------


def test_organization_and_project_navigation(owner_page, server):
    page = owner_page
    page.locator("main").get_by_role("link", name=org_name(server), exact=True).click()
    expect(page).to_have_url(re.compile(rf"/orgs/{server.org_id}$"))
    for name in ("Projects", "Users", "Teams", "API keys", "Service accounts", "Events"):
        expect(page.get_by_role("link", name=name, exact=True).first).to_be_visible()
    page.get_by_role("link", name="Users", exact=True).first.click()
    expect_heading(page, "Users")
    page.get_by_label("Email", exact=True).fill("grace@example.com")
    role = page.get_by_label("Role")
    for value in ("ORG_OWNER", "ORG_MEMBER", "ORG_READ_ONLY"):
        expect(role.locator(f"option[value='{value}']")).to_have_count(1)
    expect(page.get_by_role("button", name="Invite")).to_be_visible()

    page.goto(f"/orgs/{server.org_id}")
    project = page.locator(f"a[href$='/groups/{server.project_id}']").first
    project.click()
    expect(page).to_have_url(re.compile(rf"/groups/{server.project_id}$"))
    for name in ("Clusters", "Database users", "IP access list", "Users", "Events"):
        expect(page.get_by_role("link", name=name, exact=True).first).to_be_visible()
    page.get_by_role("link", name="IP access list", exact=True).first.click()
    expect_heading(page, "IP access list")
