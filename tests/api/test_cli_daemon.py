"""The daemon's service slot and crash path, run in this process (`api._daemon.run_daemon`).

`run_daemon` calls ``trio.run`` itself, so these tests are synchronous. A service stops the
daemon by sending SIGTERM to this very process: the daemon's signal receiver is open before
any service starts, so the signal never reaches pytest's default handler.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import pytest
import trio

from api._daemon import run_daemon
from config import Settings, load_settings


def _settings(tmp_path: Path) -> Settings:
    """Credentials configured: the daemon runs with these very settings (none generated and kept:
    tests/api/test_cli_first_run.py)."""
    return load_settings(env={"ZAPVISOR_NODE__DATA_DIR": str(tmp_path / "data"),
                              "ZAPVISOR_API__ADMIN_TOKEN": "a" * 16, "ZAPVISOR_API__JWT_SECRET": "j" * 32})


def test_services_start_before_up_and_finish_before_the_tree_stops(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[str] = []
    settings = _settings(tmp_path)

    async def service(node, stop, *, task_status=trio.TASK_STATUS_IGNORED):
        assert node.settings is settings
        assert node.system.tree().find("/services/sessions").state == "running"
        events.append("service started")
        task_status.started()
        os.kill(os.getpid(), signal.SIGTERM)
        await stop.wait()
        events.append("service stopped")

    with caplog.at_level(logging.INFO, logger="zapvisor.daemon"):
        assert run_daemon(settings, [service]) == 0
    messages = [record.getMessage() for record in caplog.records if record.name == "zapvisor.daemon"]
    assert events == ["service started", "service stopped"]
    # the signal's own task may log it before or after "up": both come before the stop
    assert sorted(messages[:2]) == ["received SIGTERM", "zapvisor up node=node-1 store=sqlite bus=memory"]
    assert messages[2:] == ["stopping", "stopped"]


def test_a_crashing_service_is_logged_and_exits_1(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def service(node, stop, *, task_status=trio.TASK_STATUS_IGNORED):
        task_status.started()
        raise RuntimeError("listener died")

    with caplog.at_level(logging.INFO, logger="zapvisor.daemon"):
        assert run_daemon(_settings(tmp_path), [service]) == 1
    crash = [record for record in caplog.records if record.getMessage() == "zapvisor crashed"]
    assert len(crash) == 1
    assert "listener died" in caplog.text
