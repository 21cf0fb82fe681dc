"""Start-up failures of ``zapvisor run`` (a real subprocess): one line on stderr naming the cause,
its documented exit code (``api._startup``), no traceback, never a password."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from api._startup import EXIT_ADDRESS, EXIT_PATH, EXIT_UNREACHABLE
from bench._servers import free_port

DAEMON = [sys.executable, "-c", "import sys; from api.cli import main; sys.exit(main(['run']))"]
TIMEOUT = 120.0
"""Real seconds for a start-up attempt on a loaded 2-core machine (imports, a tree start)."""
PASSWORD = "hunter2-not-to-be-printed"


def run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ZAPVISOR_")}
    base |= {"ZAPVISOR_NODE__DATA_DIR": str(tmp_path / "data"), "ZAPVISOR_API__PORT": "0",
             "ZAPVISOR_MEDIA__DIR": str(tmp_path / "media")}
    base |= {f"ZAPVISOR_{key.upper()}": value for key, value in env.items()}
    return subprocess.run(DAEMON, env=base, cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT,
                          stdin=subprocess.DEVNULL)


def one_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_postgres_unreachable_names_host_port_not_the_password(tmp_path: Path) -> None:
    port = free_port()
    result = run(tmp_path, store__backend="postgres",
                 store__postgres_dsn=f"postgresql://zap:{PASSWORD}@127.0.0.1:{port}/zapvisor")
    assert result.returncode == EXIT_UNREACHABLE
    line = one_line(result)
    assert f"cannot connect to PostgreSQL at 127.0.0.1:{port}" in line and "store.postgres_dsn" in line
    assert PASSWORD not in result.stderr + result.stdout


def test_redis_unreachable_names_host_port_not_the_password(tmp_path: Path) -> None:
    port = free_port()
    result = run(tmp_path, bus__backend="redis", bus__redis_url=f"redis://:{PASSWORD}@127.0.0.1:{port}/0")
    assert result.returncode == EXIT_UNREACHABLE
    line = one_line(result)
    assert f"cannot connect to Redis at 127.0.0.1:{port}" in line and "bus.redis_url" in line
    assert PASSWORD not in result.stderr + result.stdout


def test_api_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(tmp_path, api__host="127.0.0.1", api__port=str(port), logging__level="error")
    assert result.returncode == EXIT_ADDRESS, result.stderr
    line = one_line(result)
    assert f"cannot listen on 127.0.0.1:{port}" in line and "api.port" in line


def test_unwritable_data_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = run(tmp_path, node__data_dir=str(blocker / "data"))
    assert result.returncode == EXIT_PATH
    line = one_line(result)
    assert f"cannot write to node.data_dir {blocker / 'data'}" in line
