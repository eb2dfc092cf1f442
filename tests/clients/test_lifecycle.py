"""The `tessera` process as an operator meets it: signals, the data directory and its
permissions, explicit bootstrap, `tessera config`, restarts."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import tomllib

import pytest

from helpers import SHUTDOWN_TIMEOUT_S, catches_shutdown_signals, free_port, run_tessera


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def snapshot(directory) -> dict[str, bytes]:
    """Name -> content of every regular file in ``directory`` except SQLite's own files,
    whose bytes change on any open."""
    return {
        p.name: p.read_bytes()
        for p in sorted(directory.iterdir())
        if p.is_file() and not p.name.startswith("tessera.db")
    }


# ---- signals ----------------------------------------------------------------------------


def test_sigterm_exits_zero(server):
    assert server.session().get(server.v2("/orgs")).status_code == 200
    proc = server.proc
    code = server.stop()  # sends SIGTERM, waits (bounded)
    assert code == 0, f"exit code {code} after SIGTERM; stderr:\n{server.stderr()}"
    assert proc.poll() == 0


def test_sigint_exits_zero(server):
    proc, server.proc = server.proc, None
    proc.send_signal(signal.SIGINT)
    try:
        code = proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail("tessera ignored SIGINT")
    assert code == 0, f"exit code {code} after SIGINT; stderr:\n{server.stderr()}"


# Regression test: the handlers used to be installed only after /healthz answered.
RACE_CYCLES = 30


def test_sigterm_right_after_ready_exits_zero(server_factory):
    """A supervisor may stop the server the moment it is ready: that too must be graceful."""
    for cycle in range(RACE_CYCLES):
        srv = server_factory(f"cycle{cycle}")
        srv.start(wait_signal_handlers=False)
        caught = catches_shutdown_signals(srv.proc.pid)
        code = srv.stop()
        assert code == 0, (
            f"cycle {cycle}: exit code {code} on SIGTERM sent right after /healthz answered; "
            f"SIGTERM/SIGINT handlers installed at that moment: {caught}"
        )


# ---- data directory -----------------------------------------------------------------------


def test_first_start_creates_private_data_dir_and_files(server):
    assert mode(server.data_dir) == 0o700
    assert mode(server.data_dir / "bootstrap.json") == 0o600
    assert mode(server.data_dir / "server-keys.json") == 0o600
    boot = json.loads((server.data_dir / "bootstrap.json").read_text())
    assert set(boot) == {"orgId", "projectId", "publicKey", "privateKey", "ownerUsername",
                         "ownerPassword"}
    # The credentials are also printed once on stdout, and logs stay on stderr. Read the
    # output after the process has exited: the banner may be written after /healthz is up.
    code = server.stop()
    assert code == 0, f"exit code {code} after SIGTERM; stderr:\n{server.stderr()}"
    out = server.stdout()
    for value in boot.values():
        assert value in out, out
    assert boot["privateKey"] not in server.stderr()
    assert boot["ownerPassword"] not in server.stderr()


@pytest.mark.parametrize("perm", [0o755, 0o750, 0o705, 0o701], ids=oct)
def test_serve_refuses_data_dir_open_to_group_or_others(server_factory, tessera_bin, perm):
    srv = server_factory()
    srv.data_dir.mkdir(parents=True)
    os.chmod(srv.data_dir, perm)  # explicit: independent of the umask
    res = run_tessera(tessera_bin, "serve", "--data-dir", str(srv.data_dir),
                      "--listen", f"127.0.0.1:{free_port()}")
    assert res.returncode != 0, f"serve accepted a {oct(perm)} data dir; stderr:\n{res.stderr}"
    assert str(srv.data_dir) in res.stderr, res.stderr
    # It refused before touching anything.
    assert list(srv.data_dir.iterdir()) == []
    assert mode(srv.data_dir) == perm


def test_explicit_bootstrap_then_serve(server_factory, tessera_bin):
    srv = server_factory()
    res = run_tessera(tessera_bin, "bootstrap", "--data-dir", str(srv.data_dir),
                      "--org-name", "Acme", "--project-name", "Alpha")
    assert res.returncode == 0, res.stderr
    assert mode(srv.data_dir) == 0o700
    assert mode(srv.data_dir / "bootstrap.json") == 0o600
    boot = json.loads((srv.data_dir / "bootstrap.json").read_text())
    assert boot["privateKey"] in res.stdout

    srv.start()
    s = srv.session()
    orgs = s.get(srv.v2("/orgs")).json()
    assert [(o["id"], o["name"]) for o in orgs["results"]] == [(boot["orgId"], "Acme")]
    group = s.get(srv.v2(f"/groups/{boot['projectId']}")).json()
    assert group["name"] == "Alpha"
    assert srv.stop() == 0
    assert boot["privateKey"] not in srv.stdout(), "serve must not bootstrap again"
    assert json.loads((srv.data_dir / "bootstrap.json").read_text()) == boot


def test_bootstrap_on_bootstrapped_dir_exits_2_and_changes_nothing(server, tessera_bin):
    code = server.stop()
    assert code == 0, f"exit code {code} after SIGTERM; stderr:\n{server.stderr()}"
    before = snapshot(server.data_dir)
    assert "bootstrap.json" in before and "server-keys.json" in before

    res = run_tessera(tessera_bin, "bootstrap", "--data-dir", str(server.data_dir),
                      "--org-name", "Second", "--project-name", "Again")
    assert res.returncode == 2, f"exit {res.returncode}\nstdout: {res.stdout}\nstderr: {res.stderr}"
    assert res.stderr.strip(), "an explanation is expected on stderr"
    assert snapshot(server.data_dir) == before

    # Nor did it create anything in the database.
    server.start()
    orgs = server.session().get(server.v2("/orgs")).json()
    assert [o["name"] for o in orgs["results"]] == ["Tessera"]
    assert server.session().get(server.v2("/groups/byName/Again")).status_code == 404


# ---- tessera config -----------------------------------------------------------------------


def test_config_masks_database_password(tessera_bin):
    res = run_tessera(tessera_bin, "config", "--database-url", "sqlite://u:hunter2@/tmp/x.db")
    assert res.returncode == 0, res.stderr
    assert "hunter2" not in res.stdout + res.stderr
    cfg = tomllib.loads(res.stdout)
    assert cfg["database_url"] == "sqlite://u:****@/tmp/x.db"


def test_config_masks_password_from_environment(tessera_bin):
    res = run_tessera(tessera_bin, "config",
                      env={"TESSERA_DATABASE_URL": "sqlite://admin:s3cr3t-pw@/var/lib/t.db"})
    assert res.returncode == 0, res.stderr
    assert "s3cr3t-pw" not in res.stdout + res.stderr
    assert tomllib.loads(res.stdout)["database_url"] == "sqlite://admin:****@/var/lib/t.db"


def test_config_prints_effective_settings(tessera_bin, tmp_path):
    res = run_tessera(tessera_bin, "config", "--listen", "127.0.0.1:9999",
                      "--data-dir", str(tmp_path / "d"))
    assert res.returncode == 0, res.stderr
    cfg = tomllib.loads(res.stdout)
    assert cfg["listen"] == "127.0.0.1:9999"
    assert cfg["data_dir"] == str(tmp_path / "d")
    assert not (tmp_path / "d").exists(), "config must not create the data dir"


def test_postgres_database_url_password_is_masked(tessera_bin, tmp_path):
    res = run_tessera(tessera_bin, "config", "--database-url", "postgres://u:hunter2@db.invalid/t")
    assert res.returncode == 0, res.stderr
    assert "hunter2" not in res.stdout + res.stderr
    assert "postgres://u:****@db.invalid/t" in res.stdout
    # An unreachable PostgreSQL server: the start fails, and says so without the password.
    res = run_tessera(tessera_bin, "serve", "--data-dir", str(tmp_path / "d"),
                      "--database-url", "postgres://u:hunter2@127.0.0.1:1/t")
    assert res.returncode != 0
    assert "hunter2" not in res.stdout + res.stderr


# ---- restart ------------------------------------------------------------------------------


def test_restart_keeps_data_and_does_not_rebootstrap(server):
    s = server.session()
    r = s.post(server.v2("/groups"), json={"name": "survivor", "orgId": server.org_id})
    assert r.status_code == 200, r.text
    gid = r.json()["id"]
    key = s.post(server.v2(f"/orgs/{server.org_id}/apiKeys"),
                 json={"desc": "persisted", "roles": ["ORG_MEMBER"]}).json()
    boot_before = (server.data_dir / "bootstrap.json").read_bytes()
    keys_before = (server.data_dir / "server-keys.json").read_bytes()
    first = (server.org_id, server.project_id, server.public_key, server.private_key)

    server.restart()

    assert (server.data_dir / "bootstrap.json").read_bytes() == boot_before
    assert (server.data_dir / "server-keys.json").read_bytes() == keys_before
    assert (server.org_id, server.project_id, server.public_key, server.private_key) == first

    s = server.session()
    orgs = s.get(server.v2("/orgs")).json()
    assert [o["id"] for o in orgs["results"]] == [server.org_id]
    by_name = s.get(server.v2("/groups/byName/survivor"))
    assert by_name.status_code == 200, by_name.text
    assert by_name.json()["id"] == gid
    groups = s.get(server.v2("/groups")).json()
    assert {g["id"] for g in groups["results"]} == {server.project_id, gid}
    # Keys made before the restart still authenticate.
    member = server.session(key["publicKey"], key["privateKey"])
    assert member.get(server.v2("/orgs")).status_code == 200

    code = server.stop()
    assert code == 0, f"exit code {code} after SIGTERM; stderr:\n{server.stderr()}"
    assert server.private_key not in server.stdout(), "restart printed bootstrap credentials again"


# ---- a busy address -----------------------------------------------------------------------


def test_serve_on_a_busy_address_names_it_and_leaves_no_data(tessera_bin, tmp_path):
    """A second server on a taken address says which address, and exits before it creates
    keys or a database in its fresh data directory."""
    import socket
    data = tmp_path / "fresh"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        addr = f"127.0.0.1:{busy.getsockname()[1]}"
        res = run_tessera(tessera_bin, "serve", "--data-dir", str(data), "--listen", addr)
    assert res.returncode != 0, f"serve on a busy address exited 0; stderr:\n{res.stderr}"
    assert f"cannot listen on {addr}" in res.stderr, res.stderr
    assert "in use" in res.stderr.lower(), res.stderr
    made = sorted(p.name for p in data.iterdir()) if data.exists() else []
    assert made == [], f"a server that could not listen left {made} in its data directory"
    assert "bootstrap" not in res.stdout.lower(), res.stdout


# ---- log colours --------------------------------------------------------------------------

ANSI_ESCAPE = "\x1b["


def test_logs_written_to_a_file_carry_no_colour_codes(server_factory):
    """Logs to a file or a pipe are plain text, even with colours allowed (`NO_COLOR` empty
    counts as unset): only a terminal gets ANSI escapes."""
    srv = server_factory()
    srv.env = {"NO_COLOR": "", "TESSERA_LOG": "debug"}
    srv.start()
    assert srv.session().get(srv.v2("/orgs")).status_code == 200
    code = srv.stop()
    assert code == 0, f"exit code {code} after SIGTERM; stderr:\n{srv.stderr()}"
    log = srv.stderr()
    assert "tessera listening" in log, log
    assert ANSI_ESCAPE not in log, f"ANSI escapes in a log written to a file:\n{log!r}"


def _log_to_terminal(tessera_bin, tmp_path, **env) -> str:
    """Runs `tessera serve` with stderr on a pseudo-terminal until it logs that it listens;
    returns what it wrote there."""
    import pty
    import select
    import time
    from helpers import STARTUP_TIMEOUT_S, clean_env
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [str(tessera_bin), "serve", "--data-dir", str(tmp_path / "data"),
         "--listen", f"127.0.0.1:{free_port()}"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave,
        env=clean_env(**env))
    os.close(slave)
    seen = b""
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while b"listening" not in seen and time.monotonic() < deadline and proc.poll() is None:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    seen += os.read(master, 4096)
                except OSError:  # the terminal closed: the process is gone
                    break
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.close(master)
    text = seen.decode(errors="replace")
    assert "listening" in text, f"no 'listening' line on the terminal: {text!r}"
    return text


def test_logs_to_a_terminal_are_coloured_unless_no_color(tessera_bin, tmp_path):
    """The other side of the file test: on a terminal the same lines are coloured (so the file
    test would see escapes if they were written), and NO_COLOR=1 turns them off there too."""
    assert ANSI_ESCAPE in _log_to_terminal(tessera_bin, tmp_path / "a", NO_COLOR="")
    assert ANSI_ESCAPE not in _log_to_terminal(tessera_bin, tmp_path / "b", NO_COLOR="1")
