"""HTTPS in the server, as clients meet it: the development CA mode with Python ``requests``
(``verify=``) and ``curl --cacert``, and certificate files reloaded on SIGHUP (a bad file
keeps the previous certificate)."""

from __future__ import annotations

import shutil
import signal
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import requests

from helpers import COMMAND_TIMEOUT_S, V2_ACCEPT, clean_env

RELOAD_TIMEOUT_S = 15.0  # upper bound for failure, not an assertion on speed


def test_self_signed_mode_prints_its_ca_and_requests_and_curl_trust_it(server_factory):
    srv = server_factory()
    srv.args = ["--tls-self-signed"]
    srv.tls = True
    srv.start()
    ca = srv.data_dir / "tls-ca.pem"
    assert f"tessera: TLS CA certificate: {ca}" in srv.stdout()
    assert ca.stat().st_mode & 0o777 == 0o644
    for f in ("tls-cert.pem", "tls-key.pem"):
        assert (srv.data_dir / f).stat().st_mode & 0o777 == 0o600

    # requests with verify=<ca>: Digest over HTTPS, and the issuer says https.
    r = srv.session().get(srv.v2("/orgs"))
    assert r.status_code == 200, r.text
    meta = requests.get(srv.base_url + "/.well-known/oauth-authorization-server",
                        verify=str(ca), timeout=10).json()
    assert meta["issuer"] == srv.base_url
    assert meta["token_endpoint"].startswith("https://")
    # Without the CA, verification fails: the certificate is not publicly trusted.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(srv.base_url + "/healthz", timeout=10)

    # curl --cacert, by address and by name.
    for host in ("127.0.0.1", "localhost"):
        out = subprocess.run(
            ["curl", "-sS", "--fail", "--cacert", str(ca),
             f"https://{host}:{srv.port}/healthz"],
            capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, env=clean_env())
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "ok"
    out = subprocess.run(["curl", "-sS", f"https://127.0.0.1:{srv.port}/healthz"],
                         capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S,
                         env=clean_env())
    assert out.returncode == 60, (out.returncode, out.stderr)  # peer certificate not trusted

    # A restart reuses the CA that clients already trust.
    before = ca.read_bytes()
    srv.restart()
    assert ca.read_bytes() == before
    assert srv.session().get(srv.v2("/orgs")).status_code == 200


def _cert_set(server_factory, name: str) -> dict[str, Path]:
    """A CA and a server certificate for 127.0.0.1, made by the development mode."""
    maker = server_factory(name)
    maker.args = ["--tls-self-signed"]
    maker.tls = True
    maker.start()
    assert maker.stop() == 0
    d = maker.data_dir
    return {"ca": d / "tls-ca.pem", "cert": d / "tls-cert.pem", "key": d / "tls-key.pem"}


def _leaf_pem(cert_file: Path) -> str:
    text = cert_file.read_text()
    end = "-----END CERTIFICATE-----"
    return text[: text.index(end) + len(end)] + "\n"


def _served(port: int) -> str:
    return ssl.get_server_certificate(("127.0.0.1", port), timeout=10)


def _wait_served(port: int, want: str) -> str:
    deadline = time.monotonic() + RELOAD_TIMEOUT_S
    got = _served(port)
    while got != want and time.monotonic() < deadline:
        time.sleep(0.05)  # polling interval, not an assertion
        got = _served(port)
    return got


def test_certificate_files_reload_on_sighup_and_a_bad_file_keeps_the_old_one(
        server_factory, tmp_path):
    a = _cert_set(server_factory, "cert-a")
    b = _cert_set(server_factory, "cert-b")
    live = tmp_path / "live"
    live.mkdir()
    cert, key = live / "cert.pem", live / "key.pem"
    shutil.copy(a["cert"], cert)
    shutil.copy(a["key"], key)

    srv = server_factory("tls-files")
    srv.args = ["--tls-cert", str(cert), "--tls-key", str(key)]
    srv.tls = True
    srv.ca = a["ca"]
    srv.start()
    assert _served(srv.port) == _leaf_pem(a["cert"])
    keep_alive = srv.session()
    assert keep_alive.get(srv.v2("/orgs")).status_code == 200

    # Swap the files and SIGHUP: new connections get the new certificate; same process.
    shutil.copy(b["cert"], cert)
    shutil.copy(b["key"], key)
    srv.proc.send_signal(signal.SIGHUP)
    assert _wait_served(srv.port, _leaf_pem(b["cert"])) == _leaf_pem(b["cert"])
    assert srv.proc.poll() is None
    r = requests.get(srv.base_url + "/healthz", verify=str(b["ca"]), timeout=10)
    assert r.status_code == 200

    # A broken key: the reload is refused, logged, and the previous certificate stays.
    key.write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    srv.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + RELOAD_TIMEOUT_S
    while "TLS reload failed" not in srv.stderr() and time.monotonic() < deadline:
        time.sleep(0.05)  # polling interval, not an assertion
    assert "TLS reload failed" in srv.stderr(), srv.stderr()
    assert "bm90IGEga2V5" not in srv.stderr()
    assert srv.proc.poll() is None
    assert _served(srv.port) == _leaf_pem(b["cert"])
    r = requests.get(srv.base_url + "/healthz", verify=str(b["ca"]), timeout=10)
    assert r.status_code == 200
    assert srv.stop() == 0


def test_cert_without_key_is_refused_with_a_clear_error(tessera_bin, tmp_path):
    from helpers import run_tessera

    out = run_tessera(tessera_bin, "serve", "--data-dir", str(tmp_path / "d"),
                      "--listen", "127.0.0.1:0", "--tls-cert", str(tmp_path / "c.pem"))
    assert out.returncode != 0
    assert "tls_cert and tls_key go together" in out.stderr, out.stderr
