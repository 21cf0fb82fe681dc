"""The client and tool commands: tree, sessions, token, migrate, simulate — real subprocesses
against the real app (served in this process) and real files."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import jwt
import trio

from actors.sessions import SessionStatus

from tests.fixtures.simulator import driver_config, open_simulator

from .conftest import ADMIN_TOKEN, JWT_SECRET, api_settings, open_api_server

ZAPVISOR = str(Path(sys.executable).with_name("zapvisor"))
COMMAND_TIMEOUT = 60.0
"""Real seconds for one CLI process: interpreter start and imports on a loaded machine."""


async def zapvisor(*args: str, **settings: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZAPVISOR_")}
    env.update(settings)
    with trio.fail_after(COMMAND_TIMEOUT):
        return await trio.run_process([ZAPVISOR, *args], env=env, capture_stdout=True, capture_stderr=True,
                                      check=False)


async def test_token_signs_a_jwt_with_the_configured_secret() -> None:
    done = await zapvisor("token", "--tenant", "t1", "--user", "5", "--role", "admin", "--ttl", "60",
                          ZAPVISOR_API__JWT_SECRET=JWT_SECRET)
    assert done.returncode == 0, done.stderr
    claims = jwt.decode(done.stdout.decode().strip(), JWT_SECRET, algorithms=["HS256"])
    assert (claims["tenant"], claims["user"], claims["role"]) == ("t1", 5, "admin")
    no_secret = await zapvisor("token", "--tenant", "t1", "--user", "5")
    assert no_secret.returncode == 2 and b"jwt_secret" in no_secret.stderr
    bad_user = await zapvisor("token", "--tenant", "t1", "--user", "five", ZAPVISOR_API__JWT_SECRET=JWT_SECRET)
    assert bad_user.returncode == 2 and b"--user" in bad_user.stderr


async def test_migrate_creates_the_schema(tmp_path: Path) -> None:
    done = await zapvisor("migrate", ZAPVISOR_NODE__DATA_DIR=str(tmp_path / "data"))
    assert done.returncode == 0, done.stderr
    assert b"schema at version" in done.stdout
    with sqlite3.connect(tmp_path / "data" / "zapvisor.sqlite3") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"tenants", "sessions", "outbox", "audit"} <= tables


async def test_simulate_forwards_its_arguments() -> None:
    done = await zapvisor("simulate", "--", "--help")
    assert done.returncode == 0 and b"--port" in done.stdout
    bad = await zapvisor("simulate", "--no-such-flag")
    assert bad.returncode == 2


SLOW_QR = ("--qr-interval", "30")
"""QR codes that outlive a few CLI processes starting one after the other (the fixture's rotate in 0.5 s)."""


async def test_tree_and_sessions_against_a_running_app(tmp_path: Path) -> None:
    async with open_simulator(tmp_path / "simulator", *SLOW_QR) as simulator, simulator.control() as control:
        config = driver_config(simulator.url, tmp_path / "auth")
        async with open_api_server(api_settings(tmp_path / "data", simulator.url), config) as api_server:
            await _tree_and_sessions(api_server, control)


async def _tree_and_sessions(api_server, simulator_control) -> None:
    await api_server.tenant("t1")
    remote = ("--url", api_server.url, "--token", ADMIN_TOKEN)
    tree = await zapvisor("tree", *remote, "--no-color")
    assert tree.returncode == 0, tree.stderr
    assert "store  running" in tree.stdout.decode() and "/  running" in tree.stdout.decode()

    created = await zapvisor("sessions", "create", *remote, "--tenant", "t1", "s1", "--name", "Support")
    assert created.returncode == 0 and b"created s1" in created.stdout
    connect = await zapvisor("sessions", "connect", *remote, "--tenant", "t1", "s1")
    assert connect.returncode == 0 and "█" in connect.stdout.decode()
    qr = await zapvisor("sessions", "qr", *remote, "--tenant", "t1", "s1")
    assert qr.returncode == 0 and "█" in qr.stdout.decode()
    await simulator_control.scan("s1")
    await api_server.wait_status("s1", SessionStatus.CONNECTED)
    listed = await zapvisor("sessions", "list", *remote, "--tenant", "t1")
    assert listed.stdout.decode().split()[:2] == ["s1", "connected"]
    logout = await zapvisor("sessions", "logout", *remote, "--tenant", "t1", "s1")
    assert logout.returncode == 0 and b"logged out" in logout.stdout

    missing = await zapvisor("sessions", "qr", *remote, "--tenant", "t1", "nope")
    assert missing.returncode == 1 and b"404" in missing.stderr and b"session_id" in missing.stderr
    forbidden = await zapvisor("tree", "--url", api_server.url, "--token", "wrong-token-wrong-token")
    assert forbidden.returncode == 1 and b"401" in forbidden.stderr
    unreachable = await zapvisor("tree", "--url", "http://127.0.0.1:9", "--token", ADMIN_TOKEN)
    assert unreachable.returncode == 1 and b"cannot reach" in unreachable.stderr
    usage = await zapvisor("sessions", "connect", *remote, "s1")  # --tenant missing
    assert usage.returncode == 2 and b"--tenant" in usage.stderr
