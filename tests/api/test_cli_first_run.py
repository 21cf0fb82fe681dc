"""A first ``zapvisor run`` with no credentials configured is usable (real subprocesses): it generates an
admin token and a JWT secret, keeps them under ``data_dir`` (mode 0600), prints a ready dashboard URL;
the next run reuses them, and ``zapvisor token`` signs JWTs the daemon accepts with the kept secret."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
from pathlib import Path

import httpx
import trio

from .conftest import START_TIMEOUT, ZAPVISOR

DASHBOARD = re.compile(r"dashboard: (http://[\d.]+:\d+)/#token=([\w-]+) \(.*: (generated on this first run|reused),"
                       r" kept in (\S+);")
STOP_TIMEOUT = 60.0
"""Real seconds for a clean stop on a loaded machine."""


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZAPVISOR_") or k == "ZAPVISOR_PG_BINDIR"}
    return env | {"ZAPVISOR_NODE__DATA_DIR": str(tmp_path / "data"), "ZAPVISOR_MEDIA__DIR": str(tmp_path / "media"),
                  "ZAPVISOR_API__PORT": "0", "ZAPVISOR_SESSIONS__DRIVER": "simulated"}


async def _run_until_dashboard(tmp_path: Path, name: str) -> tuple[trio.Process, re.Match, Path]:
    log = tmp_path / f"{name}.log"
    with open(log, "wb") as out:
        process = await trio.lowlevel.open_process([ZAPVISOR, "run"], env=_env(tmp_path), cwd=tmp_path,
                                                   stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    with trio.fail_after(START_TIMEOUT):
        while not (found := DASHBOARD.search(log.read_text())):
            assert process.poll() is None, log.read_text()
            await trio.sleep(0.05)
    return process, found, log


async def _stop(process: trio.Process, log: Path) -> None:
    process.send_signal(signal.SIGTERM)
    with trio.fail_after(STOP_TIMEOUT):
        assert await process.wait() == 0, log.read_text()


async def _mint(tmp_path: Path, tenant: str, user: int) -> str:
    minted = await trio.run_process([ZAPVISOR, "token", "--tenant", tenant, "--user", str(user)], env=_env(tmp_path),
                                    cwd=tmp_path, capture_stdout=True, capture_stderr=True, check=False)
    assert minted.returncode == 0, minted.stderr.decode()
    return minted.stdout.decode().strip()


async def test_a_first_run_prints_a_ready_dashboard_url_and_later_runs_reuse_its_credentials(tmp_path: Path) -> None:
    data = tmp_path / "data"
    nothing_kept = await trio.run_process([ZAPVISOR, "token", "--tenant", "acme", "--user", "1"], env=_env(tmp_path),
                                          cwd=tmp_path, capture_stdout=True, capture_stderr=True, check=False)
    assert nothing_kept.returncode == 2 and b"run `zapvisor run` once" in nothing_kept.stderr

    process, first, log = await _run_until_dashboard(tmp_path, "first")
    try:
        url, token, how, kept = first.groups()
        assert how == "generated on this first run" and Path(kept) == data / "admin_token"
        assert log.read_text().count("dashboard: ") == 1  # one line
        assert (data / "admin_token").read_text().strip() == token
        for name in ("admin_token", "jwt_secret"):
            assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
        async with httpx.AsyncClient(base_url=url, timeout=30) as api:
            admin = {"Authorization": f"Bearer {token}"}
            assert (await api.get("/tenants", headers=admin)).status_code == 200
            assert (await api.get("/tenants", headers={"Authorization": "Bearer not-the-token"})).status_code == 401
            assert (await api.post("/tenants", headers=admin, json={"id": "acme", "name": "Acme"})).status_code == 201
            user = await api.post("/tenants/acme/users", headers=admin,
                                  json={"email": "ana@acme.test", "name": "Ana", "role": "agent"})
            assert user.status_code == 201, user.text
            jwt = await _mint(tmp_path, "acme", user.json()["id"])
            agent = {"Authorization": f"Bearer {jwt}"}
            assert (await api.get("/tenants/acme/tickets", headers=agent)).status_code == 200
            forged = {"Authorization": f"Bearer {jwt}x"}
            assert (await api.get("/tenants/acme/tickets", headers=forged)).status_code == 401
    finally:
        if process.poll() is None:
            await _stop(process, log)
    assert process.returncode == 0, log.read_text()

    process, second, log = await _run_until_dashboard(tmp_path, "second")
    try:
        url, again, how, _ = second.groups()
        assert (again, how) == (token, "reused")
        async with httpx.AsyncClient(base_url=url, timeout=30) as api:  # the JWT secret was kept too
            assert (await api.get("/tenants/acme/tickets", headers=agent)).status_code == 200
    finally:
        await _stop(process, log)
