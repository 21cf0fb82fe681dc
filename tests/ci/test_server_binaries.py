"""``.ci/server-binaries``: finds PostgreSQL's bin directory and checks redis-server."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import trio

SCRIPT = str(Path(__file__).resolve().parents[2] / ".ci" / "server-binaries")

RUN_TIMEOUT = 30.0
"""Seconds for a script that only looks at a few directories (no apt-get: binaries exist)."""


async def _run(**env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k != "ZAPVISOR_PG_BINDIR"} | env
    with trio.fail_after(RUN_TIMEOUT):
        return await trio.run_process(
            [SCRIPT], env=full, capture_stdout=True, capture_stderr=True, check=False
        )


async def test_prints_a_directory_holding_initdb_and_pg_ctl() -> None:
    result = await _run()
    assert result.returncode == 0, result.stderr
    bindir = Path(result.stdout.decode().strip())
    assert os.access(bindir / "initdb", os.X_OK)
    assert os.access(bindir / "pg_ctl", os.X_OK)


async def test_honours_zapvisor_pg_bindir() -> None:
    found = (await _run()).stdout.decode().strip()
    result = await _run(ZAPVISOR_PG_BINDIR=found)
    assert (result.returncode, result.stdout.decode().strip()) == (0, found)


async def test_refuses_a_zapvisor_pg_bindir_without_binaries(tmp_path: Path) -> None:
    result = await _run(ZAPVISOR_PG_BINDIR=str(tmp_path))
    assert result.returncode == 1
    assert result.stdout == b""
    assert f"ZAPVISOR_PG_BINDIR={tmp_path} holds no initdb and pg_ctl" in result.stderr.decode()
