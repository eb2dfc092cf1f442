"""Helpers for the real-client suite: the ``tessera serve`` process, subcommand runs and
HTTP conveniences. Waiting is always a bounded poll for a condition; the deadlines are
upper bounds for failure, never timing assertions."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from requests.auth import HTTPDigestAuth

REPO_ROOT = Path(__file__).resolve().parents[2]

V2_ACCEPT = "application/vnd.atlas.2023-01-01+json"
V2_CONTENT_TYPE = "application/vnd.atlas.2023-01-01+json;charset=utf-8"
V1_ACCEPT = "application/json"
ERROR_KEYS = {"detail", "error", "errorCode", "parameters", "reason"}

# Upper bounds only: a healthy server answers in milliseconds.
STARTUP_TIMEOUT_S = 30.0
SHUTDOWN_TIMEOUT_S = 15.0
SIGNAL_HANDLER_TIMEOUT_S = 10.0
COMMAND_TIMEOUT_S = 30.0

_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a child process: no TESSERA_* settings leaking in from the
    caller, no proxy for loopback traffic, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TESSERA_") and k not in _PROXY_VARS
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["NO_COLOR"] = "1"
    env.update(extra)
    return env


def catches_shutdown_signals(pid: int) -> bool:
    """Whether process ``pid`` has handlers for both SIGTERM and SIGINT (Linux)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    caught = int(line.split()[1], 16)
                    wanted = (1 << (signal.SIGTERM - 1)) | (1 << (signal.SIGINT - 1))
                    return caught & wanted == wanted
    except OSError:
        pass
    return False


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_tessera(binary: Path, *args: str, env: dict[str, str] | None = None,
                timeout: float = COMMAND_TIMEOUT_S) -> subprocess.CompletedProcess:
    """Run a short-lived tessera subcommand (bootstrap, config, a serve that must fail).
    ``env`` adds variables to the clean environment. A command still running after
    ``timeout`` is killed and reported as a test failure."""
    try:
        return subprocess.run(
            [str(binary), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=clean_env(**(env or {})),
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"`tessera {' '.join(args)}` still running after {timeout}s (killed); "
                    f"stderr: {e.stderr!r}", pytrace=False)


@dataclass
class Server:
    """A running ``tessera serve`` and the bootstrap credentials of its data dir."""

    binary: Path
    data_dir: Path
    log_dir: Path
    port: int = 0
    proc: subprocess.Popen | None = None
    org_id: str = ""
    project_id: str = ""
    public_key: str = ""
    private_key: str = ""
    starts: int = 0
    # Extra environment for the server process (e.g. TESSERA_LOG).
    env: dict = field(default_factory=dict)
    # Extra command-line arguments for `tessera serve` (e.g. TLS or timeout flags).
    args: list = field(default_factory=list)
    # HTTPS: set ``tls`` and, for a server certificate not from the development mode,
    # ``ca`` (the CA file clients trust). In ``--tls-self-signed`` mode ``ca`` defaults to
    # the CA the server writes into its data directory.
    tls: bool = False
    ca: Path | None = None
    # Called with the Popen arguments' ``preexec_fn`` (e.g. to set resource limits).
    preexec_fn: object = None
    _sessions: list = field(default_factory=list)

    # ---- process control -------------------------------------------------------------

    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path | None:
        """The CA certificate clients must trust (HTTPS only)."""
        if not self.tls:
            return None
        return self.ca or self.data_dir / "tls-ca.pem"

    @property
    def verify(self):
        """What to give requests' ``verify=``."""
        return str(self.ca_file) if self.tls else True

    @property
    def stdout_path(self) -> Path:
        return self.log_dir / f"stdout.{self.starts}.log"

    @property
    def stderr_path(self) -> Path:
        return self.log_dir / f"stderr.{self.starts}.log"

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def start(self, wait_signal_handlers: bool = True) -> None:
        """Start the server and wait (bounded) until /healthz says ok and, unless told
        otherwise, until it catches SIGTERM/SIGINT. Retries with a new port if the process
        dies before becoming healthy because the port was taken between picking it and
        binding it."""
        assert self.proc is None, "server already running"
        last_error = ""
        for _attempt in range(3):
            self.port = free_port()
            self.starts += 1
            self.log_dir.mkdir(parents=True, exist_ok=True)
            with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
                self.proc = subprocess.Popen(
                    [
                        str(self.binary),
                        "serve",
                        "--data-dir",
                        str(self.data_dir),
                        "--listen",
                        f"127.0.0.1:{self.port}",
                        *self.args,
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    env=clean_env(**self.env),
                    preexec_fn=self.preexec_fn,
                )
            ok, last_error = self._wait_healthy()
            if ok:
                if wait_signal_handlers:
                    self.wait_signal_handlers()
                self._read_bootstrap()
                return
            # Not healthy: make sure the process is gone before deciding what to do.
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
            self.proc = None
            if "in use" not in last_error.lower():
                break
        pytest.fail(f"tessera serve did not become healthy: {last_error}", pytrace=False)

    def _wait_healthy(self) -> tuple[bool, str]:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        last = "no answer yet"
        with requests.Session() as probe:
            probe.trust_env = False
            return self._poll_healthz(probe, deadline, last)

    def _poll_healthz(self, probe: requests.Session, deadline: float, last: str) -> tuple[bool, str]:
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                return False, f"process exited with code {code} before /healthz answered; stderr:\n{self.stderr()}"
            if self.tls:
                if not self.ca_file.exists():
                    time.sleep(0.05)  # polling interval: the CA is written at startup
                    continue
                probe.verify = str(self.ca_file)
            try:
                r = probe.get(self.base_url + "/healthz", timeout=2)
                if r.status_code == 200 and r.text.strip() == "ok":
                    return True, ""
                last = f"/healthz answered {r.status_code} {r.text!r}"
            except requests.RequestException as e:
                last = f"{type(e).__name__}: {e}"
            time.sleep(0.05)  # polling interval, not an assertion
        return False, f"no healthy /healthz within {STARTUP_TIMEOUT_S}s ({last}); stderr:\n{self.stderr()}"

    def wait_signal_handlers(self, timeout: float = SIGNAL_HANDLER_TIMEOUT_S) -> bool:
        """Wait (bounded) until the process catches SIGTERM and SIGINT, as the kernel
        reports in /proc/PID/status (Linux). The server may answer /healthz a moment
        before it installs its handlers (see test_lifecycle's race test); waiting here
        keeps every other test's shutdown deterministic. Returns whether both are caught;
        never fails: the signal tests judge that."""
        status = Path(f"/proc/{self.proc.pid}/status")
        if not status.exists():
            return False
        deadline = time.monotonic() + timeout
        while True:
            if catches_shutdown_signals(self.proc.pid):
                return True
            if time.monotonic() >= deadline or self.proc.poll() is not None:
                return False
            time.sleep(0.01)  # polling interval, not an assertion

    def _read_bootstrap(self) -> None:
        data = json.loads((self.data_dir / "bootstrap.json").read_text())
        self.org_id = data["orgId"]
        self.project_id = data["projectId"]
        self.public_key = data["publicKey"]
        self.private_key = data["privateKey"]

    def stop(self) -> int:
        """SIGTERM and wait (bounded). Returns the exit code; kills and fails if the server
        does not stop in time."""
        for s in self._sessions:
            s.close()
        self._sessions.clear()
        proc, self.proc = self.proc, None
        if proc is None:
            return 0
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
            pytest.fail(f"tessera did not exit within {SHUTDOWN_TIMEOUT_S}s of SIGTERM; killed", pytrace=False)

    def restart(self) -> None:
        code = self.stop()
        assert code == 0, f"exit code {code} on SIGTERM; stderr:\n{self.stderr()}"
        self.start()

    # ---- HTTP helpers ----------------------------------------------------------------

    def v2(self, path: str) -> str:
        return f"{self.base_url}/api/atlas/v2{path}"

    def v1(self, path: str) -> str:
        return f"{self.base_url}/api/public/v1.0{path}"

    def session(self, public_key: str | None = None, private_key: str | None = None,
                accept: str | None = V2_ACCEPT) -> requests.Session:
        """A requests session authenticating with HTTPDigestAuth (the bootstrap ORG_OWNER
        key unless another is given) and sending ``accept`` by default."""
        s = requests.Session()
        s.trust_env = False
        s.verify = self.verify
        s.auth = HTTPDigestAuth(public_key or self.public_key,
                                self.private_key if private_key is None else private_key)
        if accept is not None:
            s.headers["Accept"] = accept
        self._sessions.append(s)
        return s


def assert_error(resp: requests.Response, status: int, error_code: str | None = None) -> dict:
    """The response is an error of ``status`` in the exact Atlas error shape."""
    assert resp.status_code == status, f"expected {status}, got {resp.status_code}: {resp.text}"
    assert resp.headers.get("Content-Type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert set(body) == ERROR_KEYS, body
    assert body["error"] == status
    assert isinstance(body["parameters"], list)
    if error_code is not None:
        assert body["errorCode"] == error_code, body
    assert resp.headers.get("X-Request-Id"), "every response carries X-Request-Id"
    return body
