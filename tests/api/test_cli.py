"""The ``zapvisor`` console script as a user runs it: real subprocesses, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import trio

ZAPVISOR = str(Path(sys.executable).with_name("zapvisor"))

START_TIMEOUT = 60.0
"""Seconds for the daemon to print its up line: imports alone take a few on a loaded machine."""
STOP_TIMEOUT = 10.0
"""Seconds from the stop signal to the exit: an empty tree stops in well under one."""


def _env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """The test process's environment without ZAPVISOR_* settings, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZAPVISOR_")}
    env["ZAPVISOR_NODE__DATA_DIR"] = str(tmp_path / "data")
    env.update(settings)
    return env


async def _zapvisor(tmp_path: Path, *args: str, **settings: str) -> subprocess.CompletedProcess:
    with trio.fail_after(START_TIMEOUT):
        return await trio.run_process(
            [ZAPVISOR, *args],
            env=_env(tmp_path, **settings),
            cwd=tmp_path,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )


class _Daemon:
    """A running ``zapvisor run`` whose stderr is read line by line."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._buffer = b""

    async def wait_for_line(self, fragment: str) -> str:
        """Read stderr until a line containing ``fragment``; returns it."""
        while True:
            for line in self.lines:
                if fragment in line:
                    return line
            chunk = await self.process.stderr.receive_some()
            if not chunk:
                raise AssertionError(f"stderr closed before {fragment!r}: {self.lines}")
            self._buffer += chunk
            *complete, self._buffer = self._buffer.split(b"\n")
            self.lines.extend(line.decode() for line in complete)

    async def read_to_end(self) -> list[str]:
        while chunk := await self.process.stderr.receive_some():
            self._buffer += chunk
        self.lines.extend(line.decode() for line in self._buffer.split(b"\n") if line)
        self._buffer = b""
        return self.lines


async def _start(tmp_path: Path, **settings: str) -> _Daemon:
    process = await trio.lowlevel.open_process(
        [ZAPVISOR, "run"],
        # Any free port for the API: daemons of parallel runs never collide.
        env=_env(tmp_path, **{"ZAPVISOR_API__PORT": "0", **settings}),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return _Daemon(process)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_run_logs_up_and_stops_cleanly_on_signal(
    tmp_path: Path, signum: signal.Signals
) -> None:
    daemon = await _start(tmp_path, ZAPVISOR_NODE__NODE_ID="test-node")
    try:
        with trio.fail_after(START_TIMEOUT):
            up = await daemon.wait_for_line("zapvisor up")
        assert up.endswith("zapvisor up node=test-node store=sqlite bus=memory")
        assert (tmp_path / "data").is_dir()
        daemon.process.send_signal(signum)
        with trio.fail_after(STOP_TIMEOUT):
            lines = await daemon.read_to_end()
            assert await daemon.process.wait() == 0
    finally:
        daemon.process.kill()
    messages = [line.split(": ", 1)[-1] for line in lines[lines.index(up) + 1 :]]
    _assert_in_order(messages, [f"received {signum.name}", "stopping", "stopped"])
    assert messages[-1] == "stopped"


def _assert_in_order(messages: list[str], expected: list[str]) -> None:
    """``expected`` occur in ``messages`` in this order (other lines may come between)."""
    positions = [messages.index(message) for message in expected]
    assert positions == sorted(positions), messages


async def test_run_logs_json_lines(tmp_path: Path) -> None:
    daemon = await _start(tmp_path, ZAPVISOR_LOGGING__FORMAT="json")
    try:
        with trio.fail_after(START_TIMEOUT):
            up = json.loads(await daemon.wait_for_line("zapvisor up"))
        daemon.process.send_signal(signal.SIGTERM)
        with trio.fail_after(STOP_TIMEOUT):
            lines = await daemon.read_to_end()
            assert await daemon.process.wait() == 0
    finally:
        daemon.process.kill()
    assert up["level"] == "info"
    assert up["logger"] == "zapvisor.daemon"
    assert (up["node"], up["store"], up["bus"]) == ("node-1", "sqlite", "memory")
    messages = [json.loads(line)["msg"] for line in lines]
    _assert_in_order(messages, ["received SIGTERM", "stopping", "stopped"])
    assert messages[-1] == "stopped"


async def test_bad_config_value_in_env_exits_2_naming_the_key(tmp_path: Path) -> None:
    result = await _zapvisor(tmp_path, "run", ZAPVISOR_STORE__BACKEND="mysql")
    assert result.returncode == 2
    assert result.stderr.decode() == (
        "zapvisor: config error: store.backend: must be one of 'sqlite', 'postgres', "
        "got 'mysql' (in ZAPVISOR_STORE__BACKEND)\n"
    )


async def test_an_internal_admin_notify_url_is_a_config_error(tmp_path: Path) -> None:
    """The webhook target rule holds for admin notifications too, checked when the settings load."""
    result = await _zapvisor(tmp_path, "run", ZAPVISOR_WEBHOOKS__ADMIN_NOTIFY_URL="http://169.254.169.254/latest")
    assert result.returncode == 2
    assert result.stderr.decode().startswith("zapvisor: config error: webhooks.admin_notify_url: 169.254.169.254 is "
                                             "link-local")


async def test_bad_config_value_in_file_exits_2_naming_key_and_file(tmp_path: Path) -> None:
    config = tmp_path / "zapvisor.toml"
    config.write_text("[api]\nport = 70000\n")
    result = await _zapvisor(tmp_path, "run", "--config", str(config))
    assert result.returncode == 2
    assert result.stderr.decode() == (
        f"zapvisor: config error: api.port: must be <= 65535, got 70000 (in {config})\n"
    )


async def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = await _zapvisor(tmp_path, "run", "--config", "absent.toml")
    assert result.returncode == 2
    assert result.stderr.decode() == "zapvisor: config error: absent.toml: no such file\n"


async def test_unknown_subcommand_exits_2(tmp_path: Path) -> None:
    result = await _zapvisor(tmp_path, "frobnicate")
    assert result.returncode == 2
    assert "invalid choice: 'frobnicate'" in result.stderr.decode()


async def test_missing_subcommand_exits_2(tmp_path: Path) -> None:
    result = await _zapvisor(tmp_path)
    assert result.returncode == 2
    assert "the following arguments are required: COMMAND" in result.stderr.decode()


async def test_unknown_option_exits_2(tmp_path: Path) -> None:
    result = await _zapvisor(tmp_path, "run", "--frob")
    assert result.returncode == 2
    assert "unrecognized arguments: --frob" in result.stderr.decode()


async def test_version(tmp_path: Path) -> None:
    result = await _zapvisor(tmp_path, "version")
    assert result.returncode == 0
    assert result.stdout.decode() == f"zapvisor {version('zapvisor')}\n"


async def test_help_lists_the_subcommands(tmp_path: Path) -> None:
    result = await _zapvisor(tmp_path, "--help")
    assert result.returncode == 0
    out = result.stdout.decode()
    assert "run" in out and "version" in out
    run_help = await _zapvisor(tmp_path, "run", "--help")
    assert "--config PATH" in run_help.stdout.decode()
