"""Descriptor pressure on the real process: with its open-files limit at 64, more idle
sockets than it can hold do not take the server down. It keeps accepting (closing what it
cannot hold), closes the idle ones after the header-read timeout, and a fresh client's
/healthz is answered while the idle sockets are still open on the client side. And with the
limit at 256, one address that keeps reconnecting idle sockets gets only its share (the
per-address cap derived from the limit), so another client is still answered."""

from __future__ import annotations

import resource
import selectors
import socket
import threading
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
        # The pressure was real: the server shed connections (over its open-connections
        # threshold, derived from this limit, or, as a last resort, out of descriptors), and
        # said so at most once a second (not once per connection shed).
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


# ---- one address cannot take every descriptor ------------------------------------------

ATTACK_NOFILE = 256
ATTACK_ADDRESS = "127.0.0.2"  # loopback: the attacker's own client address
ATTACK_CONNECTS = 2_000  # bound on the attacker's connects
ATTACK_SECONDS = 15.0  # bound on the attack's duration
ATTACK_HELD = 300  # idle sockets the attacker tries to keep open: more than the limit
ATTACK_RATE = 130  # new connects per second once the first ATTACK_HELD are open
NORMAL_REQUESTS = 60


def _limit_open_files_256() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (ATTACK_NOFILE, ATTACK_NOFILE))


def _attack(port: int, stop: threading.Event, ready: threading.Event, stats: dict) -> None:
    """Keeps up to ATTACK_HELD idle connections from ATTACK_ADDRESS open, re-opening the
    ones the server closes, within ATTACK_CONNECTS connects and ATTACK_SECONDS."""
    sel = selectors.DefaultSelector()
    held: set[socket.socket] = set()
    start = time.monotonic()
    try:
        while not stop.is_set() and time.monotonic() - start < ATTACK_SECONDS:
            budget = min(ATTACK_CONNECTS,
                         ATTACK_HELD + int((time.monotonic() - start) * ATTACK_RATE))
            while len(held) < ATTACK_HELD and stats["connects"] < budget:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    s.bind((ATTACK_ADDRESS, 0))
                    s.settimeout(2)
                    s.connect(("127.0.0.1", port))
                except OSError:
                    s.close()
                    stats["failed"] += 1
                    break
                stats["connects"] += 1
                s.setblocking(False)
                sel.register(s, selectors.EVENT_READ)
                held.add(s)
            if len(held) >= ATTACK_HELD or stats["connects"] >= ATTACK_CONNECTS:
                ready.set()
            stats["max_held"] = max(stats["max_held"], len(held))
            # Reap what the server closed (EOF or reset), to open it again.
            for key, _ in sel.select(timeout=0.05):
                s = key.fileobj
                try:
                    data = s.recv(1)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(s)
                    held.discard(s)
                    s.close()
                    stats["closed_by_server"] += 1
    finally:
        ready.set()
        for s in held:
            s.close()
        sel.close()


def test_one_address_reconnecting_idle_sockets_does_not_lock_out_others(server_factory):
    srv = server_factory()
    srv.preexec_fn = _limit_open_files_256
    srv.start()  # no --max-connections-per-address: the derived default is what is tested
    limits = open(f"/proc/{srv.proc.pid}/limits").read()
    assert any(line.startswith("Max open files") and f" {ATTACK_NOFILE} " in line
               for line in limits.splitlines()), limits

    stop, ready = threading.Event(), threading.Event()
    stats = {"connects": 0, "failed": 0, "closed_by_server": 0, "max_held": 0}
    attacker = threading.Thread(target=_attack, args=(srv.port, stop, ready, stats),
                                daemon=True)
    attacker.start()
    answered = 0
    try:
        assert ready.wait(ATTACK_SECONDS + 5), "the attacker never got going"
        for _ in range(NORMAL_REQUESTS):
            try:
                with requests.Session() as fresh:  # a fresh connection every time
                    fresh.trust_env = False
                    r = fresh.get(srv.base_url + "/healthz", timeout=5,
                                  headers={"Connection": "close"})
                if r.status_code == 200 and r.text.strip() == "ok":
                    answered += 1
            except requests.RequestException:
                pass
            time.sleep(0.1)  # spreads the requests over the attack, not an assertion
    finally:
        stop.set()
        attacker.join(ATTACK_SECONDS + 10)
    print(f"\nattacker from {ATTACK_ADDRESS}: {stats}; normal client: "
          f"{answered}/{NORMAL_REQUESTS} answered 200")
    assert stats["connects"] > ATTACK_NOFILE, stats  # the attack was real
    assert answered >= 0.95 * NORMAL_REQUESTS, (
        f"{answered}/{NORMAL_REQUESTS} answered; stderr:\n{srv.stderr()[-3000:]}")
    assert srv.proc.poll() is None
    assert srv.stop() == 0
