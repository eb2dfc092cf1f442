"""Request bodies sent in small pieces, over real sockets against the real process.

A body trickled one byte per TCP segment must cost the server a small multiple of its size,
not a read buffer per byte, and a body that has not arrived whole by the body deadline
(``--body-deadline-secs``, here through ``TESSERA_BODY_DEADLINE_SECS``) is answered 408
in the Atlas error shape and its connection closed. No timing assertions: every deadline
below is an upper bound that turns a hang into a failure.
"""

from __future__ import annotations

import json
import socket
import time

from helpers import ERROR_KEYS

CONNECTIONS = 200
BODY_BYTES = 60_000
BODY_DEADLINE_S = 3
RSS_GROWTH_LIMIT_KIB = 64 * 1024
# Stop trickling once the server has grown this much: the assertion has failed by then, and
# the unfixed server would go on to take gigabytes of the machine.
RSS_GROWTH_ABORT_KIB = 256 * 1024
TRICKLE_BOUND_S = 60.0  # upper bound for failure
HANG_S = 60.0  # upper bound for failure

HEAD = (
    b"POST /api/oauth/token HTTP/1.1\r\nHost: t\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\n"
    b"Content-Length: " + str(BODY_BYTES).encode() + b"\r\n\r\n"
)


def vm_kib(pid: int, field: str) -> int:
    """A ``Vm*`` line of /proc/<pid>/status, in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def read_until_closed(s: socket.socket, timeout: float = HANG_S) -> tuple[bytes, bool]:
    """Reads until the server closes (EOF or reset). Returns (bytes read, closed)."""
    got = b""
    s.settimeout(timeout)
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return got, True
            got += chunk
    except (ConnectionResetError, BrokenPipeError):
        return got, True
    except socket.timeout:
        return got, False


def _start(server_factory):
    srv = server_factory()
    # The environment rather than the flag, so the same test runs against a binary that
    # predates the setting (to see it fail there). The per-address cap is off: 200
    # connections from one address are the point here, not the cap.
    srv.env = {"TESSERA_BODY_DEADLINE_SECS": str(BODY_DEADLINE_S)}
    srv.args = ["--max-connections-per-address", "0"]
    srv.start()
    return srv


def test_trickled_bodies_cost_little_memory_and_end_at_the_body_deadline(server_factory):
    srv = _start(server_factory)
    pid = srv.proc.pid
    rss_before = vm_kib(pid, "VmRSS")
    socks: list[socket.socket] = []
    closed: dict[int, bytes] = {}  # index -> what the server sent before closing
    peak = rss_before
    sent = 0
    try:
        for _ in range(CONNECTIONS):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.sendall(HEAD)
            s.setblocking(False)
            socks.append(s)
        start = time.monotonic()
        for rnd in range(BODY_BYTES):
            if len(closed) == len(socks) or time.monotonic() - start > TRICKLE_BOUND_S:
                break
            for i, s in enumerate(socks):
                if i in closed:
                    continue
                try:
                    s.send(b"a")  # one byte per segment (TCP_NODELAY)
                    sent += 1
                except BlockingIOError:
                    pass
                except OSError:
                    closed[i] = b""
            if rnd % 10 == 0:
                # Notice the connections the server closed (EOF, reset, or its answer).
                for i, s in enumerate(socks):
                    if i in closed:
                        continue
                    try:
                        data = s.recv(65536)
                        closed[i] = data
                    except BlockingIOError:
                        pass
                    except OSError:
                        closed[i] = b""
                peak = max(peak, vm_kib(pid, "VmRSS"))
                if peak - rss_before > RSS_GROWTH_ABORT_KIB:
                    break
            time.sleep(0.001)  # pacing between rounds, not an assertion
        peak = max(peak, vm_kib(pid, "VmRSS"))
        hwm = vm_kib(pid, "VmHWM")
        print(f"\ntrickled bodies: {CONNECTIONS} connections, {sent} body bytes sent one per "
              f"segment; server VmRSS before {rss_before} KiB, peak {peak} KiB "
              f"(growth {peak - rss_before} KiB), VmHWM {hwm} KiB")
        assert peak - rss_before < RSS_GROWTH_LIMIT_KIB, (
            f"RSS grew by {(peak - rss_before) // 1024} MiB for {sent} trickled bytes")
        # Every connection is closed by the server (its deadline passed long before the
        # 60,000 bytes could arrive at this pace): EOF, a reset, or the 408 then EOF.
        for i, s in enumerate(socks):
            if i in closed and closed[i] == b"":
                continue
            got, was_closed = read_until_closed(s)
            got = closed.get(i, b"") + got
            assert was_closed, f"connection {i} still open; it sent {got[:200]!r}"
            assert got == b"" or got.startswith(b"HTTP/1.1 408"), got[:300]
    finally:
        for s in socks:
            s.close()
    assert srv.proc.poll() is None, srv.stderr()[-3000:]


def test_a_body_not_whole_by_the_deadline_is_a_408_in_the_error_shape(server_factory):
    # The body stops after a few bytes: the per-chunk timeout (30 s default) is far away,
    # so what ends the request is the whole-body deadline.
    srv = _start(server_factory)
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    try:
        s.sendall(HEAD + b"grant_type=client_credentials&")
        got, was_closed = read_until_closed(s)
    finally:
        s.close()
    assert was_closed, got
    head, _, body = got.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 408 Request Timeout", got
    headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    assert headers["content-type"].startswith("application/json"), headers
    assert headers["connection"].lower() == "close", headers
    assert headers.get("x-request-id"), headers
    assert int(headers["content-length"]) == len(body), headers
    err = json.loads(body)
    assert set(err) == ERROR_KEYS, err
    assert err["error"] == 408
    assert err["errorCode"] == "REQUEST_TIMEOUT"
    assert err["reason"] == "Request Timeout"
    assert err["parameters"] == []
    # The server still serves others.
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        got, _ = read_until_closed(s)
    finally:
        s.close()
    assert got.startswith(b"HTTP/1.1 200"), got
