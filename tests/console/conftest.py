"""Fixtures for the console's browser tests.

Every test gets its own ``tessera serve`` (fresh data dir, so sign-in throttling and
TOTP enrolment start from scratch), its own browser context, and, when it asks for one,
its own test identity provider (``node idp.mjs``). The browser is Debian's Chromium driven
by Playwright for Python; Playwright's own browser download is not used.

Run: ``npm ci --prefix tests/console`` once, then
``TESSERA_BIN=target/debug/tessera python -m pytest tests/console``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# The real-client suite's helpers (the server process, free ports, a clean environment).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "clients"))

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from console_helpers import OIDC_CALLBACK_PATH, ConsoleServer, Idp  # noqa: E402
from helpers import REPO_ROOT  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",  # the tests run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # No calls home: on this network they would only be refused, noisily.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
# Upper bound for one Playwright action or expectation to come true.
EXPECT_TIMEOUT_MS = 10_000
expect.set_options(timeout=EXPECT_TIMEOUT_MS)


@pytest.fixture(scope="session")
def tessera_bin() -> Path:
    path = Path(os.environ.get("TESSERA_BIN", REPO_ROOT / "target" / "debug" / "tessera"))
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(f"tessera binary not found or not executable at {path}; "
                    "run `cargo build` first or set TESSERA_BIN", pytrace=False)
    return path


@pytest.fixture
def server(tessera_bin, tmp_path) -> ConsoleServer:
    """A running server with a fresh, bootstrapped data dir; the console is at its base_url."""
    srv = ConsoleServer(binary=tessera_bin, data_dir=tmp_path / "data", log_dir=tmp_path / "logs")
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def idp(server, tmp_path) -> Idp:
    """The test OpenID Connect provider, redirecting to this test's console."""
    host_names = {server.base_url, server.base_url.replace("127.0.0.1", "localhost")}
    provider = Idp(redirect_uris=sorted(f"{base}{OIDC_CALLBACK_PATH}" for base in host_names),
                   log_dir=tmp_path / "logs")
    try:
        provider.start()
        yield provider
    finally:
        provider.stop()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set CHROMIUM)",
                    pytrace=False)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can tell a failed test."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def page_factory(browser, server, request, tmp_path):
    """Make pages, each in a new browser context on the console (``base_url`` = the
    server's, 1280x800). Keyword arguments go to ``browser.new_context`` (e.g.
    ``bypass_csp=True``). On a failed test each page's screenshot and HTML are kept in the
    test's tmp_path."""
    contexts = []

    def make(**options):
        context = browser.new_context(base_url=server.base_url, viewport=VIEWPORT, **options)
        context.set_default_timeout(EXPECT_TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    failed = getattr(request.node, "report_call", None)
    for n, context in enumerate(contexts):
        if failed is not None and failed.failed:
            for p in context.pages:
                p.screenshot(path=str(tmp_path / f"failure-{n}.png"), full_page=True)
                (tmp_path / f"failure-{n}.html").write_text(p.content())
            print(f"failure screenshots and HTML in {tmp_path}")
        context.close()


@pytest.fixture
def page(page_factory):
    """A page in a fresh browser context, on the console."""
    return page_factory()
