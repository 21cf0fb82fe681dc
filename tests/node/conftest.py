"""A whole node (store, bus, board, manager, tenants) on a real simulator and a temp data dir."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from actors.node import Node
from actors.sessions import SessionInfo, SessionStatus
from config import Settings, load_settings

from ..sessions.conftest import wait_status as wait_board_status


def node_settings(tmp_path: Path, simulator_url: str, **overrides: str) -> Settings:
    env = {
        "ZAPVISOR_NODE__DATA_DIR": str(tmp_path / "data"),
        "ZAPVISOR_SESSIONS__DRIVER": "simulated",
        "ZAPVISOR_SESSIONS__SIMULATOR_URL": simulator_url,
        "ZAPVISOR_SESSIONS__STATUS_DEBOUNCE": "0.05",
        "ZAPVISOR_SUPERVISION__BACKOFF_MIN": "0.1",
        "ZAPVISOR_SUPERVISION__BACKOFF_MAX": "0.5",
        **{f"ZAPVISOR_{key.upper()}": value for key, value in overrides.items()},
    }
    return load_settings(env=env)


async def wait_status(node: Node, session_id: str, *statuses: SessionStatus, timeout: float = 20.0,
                      where: Callable[[SessionInfo], bool] = lambda info: True) -> SessionInfo:
    return await wait_board_status(node.board, session_id, *statuses, timeout=timeout, where=where)


@pytest.fixture
def settings(tmp_path: Path, simulator) -> Settings:
    return node_settings(tmp_path, simulator.url)
