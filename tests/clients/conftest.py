"""Fixtures for the real-client suite.

Every test talks to a real ``tessera serve`` process started from the built binary
(``TESSERA_BIN``, default ``<repo>/target/debug/tessera``) on a free loopback port with
a fresh data directory. Nothing here sleeps to make a test pass: waiting is always a
bounded poll for a condition, and the only deadlines are upper bounds for failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import REPO_ROOT, Server


@pytest.fixture(scope="session")
def tessera_bin() -> Path:
    path = Path(os.environ.get("TESSERA_BIN", REPO_ROOT / "target" / "debug" / "tessera"))
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(
            f"tessera binary not found or not executable at {path}; "
            "run `cargo build` first or set TESSERA_BIN",
            pytrace=False,
        )
    return path


def _make_server(binary: Path, tmp: Path) -> Server:
    # The data dir must not exist yet: the server creates it (mode 0700).
    return Server(binary=binary, data_dir=tmp / "data", log_dir=tmp / "logs")


@pytest.fixture
def server_factory(tessera_bin, tmp_path):
    """Make (not start) servers with fresh data dirs; all are stopped at teardown."""
    made: list[Server] = []

    def make(name: str = "srv") -> Server:
        srv = _make_server(tessera_bin, tmp_path / name)
        made.append(srv)
        return srv

    yield make
    failures = []
    for srv in made:
        try:
            srv.stop()
        except BaseException as e:  # keep stopping the others; report afterwards
            failures.append(f"{srv.data_dir}: {e}")
    if failures:
        pytest.fail("teardown: " + "; ".join(failures), pytrace=False)


@pytest.fixture
def server(server_factory) -> Server:
    """A running server with a fresh, bootstrapped data dir."""
    srv = server_factory()
    srv.start()
    return srv


