"""Descriptor pressure on the real process: with its open-files limit at 64, more idle
sockets than it can hold do not take the server down. It keeps accepting (closing what it
cannot hold), closes the idle ones after the header-read timeout, and a fresh client's
/healthz is answered while the idle sockets are still open on the client side."""

from __future__ import annotations

import resource
import socket
import time

import requests

NOFILE = 64
IDLE_SOCKETS = 150  # well over the limit
ANSWER_TIMEOUT_S = 60.0  # upper bound for failure, never a timing assertion


def _limit_open_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


def test_healthz_answers_while_idle_sockets_exceed_the_open_files_limit(server_factory):
    srv = server_factory()
    srv.args = ["--header-read-timeout-secs", "1",
                # The per-address cap would refuse these before the limit is reached: off,
                # so the descriptor limit itself is what is tested.
                "--max-connections-per-address", "0"]
    srv.preexec_fn = _limit_open_files
    srv.start()
    limits = open(f"/proc/{srv.proc.pid}/limits").read()
    assert any(line.startswith("Max open files") and f" {NOFILE} " in line
               for line in limits.splitlines()), limits

    idle = []
    try:
        for _ in range(IDLE_SOCKETS):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            idle.append(s)  # connected, sends nothing, stays open on our side
        deadline = time.monotonic() + ANSWER_TIMEOUT_S
        answered = None
        while time.monotonic() < deadline:
            try:
                with requests.Session() as fresh:
                    fresh.trust_env = False
                    r = fresh.get(srv.base_url + "/healthz", timeout=5)
                if r.status_code == 200 and r.text.strip() == "ok":
                    answered = r
                    break
            except requests.RequestException:
                pass
            time.sleep(0.1)  # polling interval, not an assertion
        assert answered is not None, f"/healthz never answered; stderr:\n{srv.stderr()[-3000:]}"
        # The pressure was real: the server ran out of descriptors and shed connections,
        # and said so at most once a second (not once per failed accept).
        log = srv.stderr()
        assert "shedding connections" in log, log[-3000:]
        # And it closed the idle sockets itself: each reads EOF (or a reset).
        for s in idle:
            s.settimeout(ANSWER_TIMEOUT_S)
            try:
                assert s.recv(1) == b""
            except ConnectionResetError:
                pass
    finally:
        for s in idle:
            s.close()
    assert srv.proc.poll() is None
    assert srv.stop() == 0
