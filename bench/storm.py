"""Reconnect storm: N sessions connected to the simulator, which dies, stays down, comes back.

Every session is a real SessionActor with the daemon's default backoff (2 s → 30 s,
full jitter) and breaker, each with its own websocket to a real simulator process.
The simulator is killed with SIGKILL, stays down ``--down`` seconds and restarts on
the same port and state. We measure how the node comes back: all sessions
reconnected, how long after the simulator's return, and that the shared connect
limiter held (peak concurrent connects never above its limit).

    python -m bench.storm [--quick] [--sessions N]

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import tempfile
import time
from pathlib import Path

import psutil
import trio

from actors.bus import MemoryBus, open_bus
from actors.drivers import SimulatedDriver, SimulatedDriverConfig
from actors.sessions import (
    InboundDefaults,
    SessionDeps,
    SessionPolicy,
    SessionPool,
    SessionStatus,
    StatusBoard,
    session_spec,
    tenant_spec,
    tenants_spec,
)
from actors.simulator import SimulatorProcess
from supervisor import RestartLimiter, open_actor_system

CONNECT_LIMIT = 50
"""Connects in flight at once (the shared limiter's max_concurrent): the figure we must not exceed."""

CONNECT_RATE = 200.0
"""Connect attempts per second allowed node-wide (the limiter's rate)."""


class CountingInbound(InboundDefaults):
    """The storm sends no traffic; count anything that arrives anyway."""

    def __init__(self) -> None:
        self.messages = 0

    async def deliver(self, session_id, tenant_id, messages) -> None:
        self.messages += len(messages)

    async def receipt(self, session_id, tenant_id, receipt) -> None:
        pass


async def wait_all_connected(board: StatusBoard, ids: list[str], timeout: float) -> float:
    """Seconds until every session shows ``connected`` (raises TooSlowError past ``timeout``)."""
    start = trio.current_time()
    with trio.fail_after(timeout):
        while any((info := board.get(sid)) is None or info.status is not SessionStatus.CONNECTED for sid in ids):
            await trio.sleep(0.05)
    return trio.current_time() - start


async def storm(sessions: int, down_for: float, state_dir: Path) -> dict:
    simulator = SimulatorProcess(state_dir / "simulator", args=("--auto-pair", "--flush-interval", "0.2"))
    await simulator.start()
    limiter = RestartLimiter(rate=CONNECT_RATE, burst=CONNECT_LIMIT, max_concurrent=CONNECT_LIMIT)
    board = StatusBoard(debounce=1.0)
    config = SimulatedDriverConfig(url=simulator.url, auth_dir=state_dir / "auth")
    process = psutil.Process()
    try:
        async with open_bus(MemoryBus()) as bus:
            deps = SessionDeps(
                driver_factory=functools.partial(SimulatedDriver, config=config),
                board=board, pool=SessionPool(sessions), bus=bus, limiter=limiter, inbound=CountingInbound(),
                policy=SessionPolicy(),
            )
            async with open_actor_system([tenants_spec()]) as system:
                board.wall_clock = system.wall_time
                async with trio.open_nursery() as nursery:
                    await nursery.start(board.run, system)
                    await system.supervisor("/tenants").start_child(tenant_spec("storm", limiter))
                    parent = system.supervisor("/tenants/storm/sessions")
                    ids = [f"s{i:05d}" for i in range(sessions)]
                    gc.collect()
                    rss_before = process.memory_info().rss
                    for sid in ids:
                        await parent.start_child(session_spec(sid, "storm", deps))
                    initial_s = await wait_all_connected(board, ids, timeout=120)
                    gc.collect()
                    rss_per_session_kb = (process.memory_info().rss - rss_before) / sessions / 1024
                    async with simulator.control() as control:
                        await control.flush()

                    await simulator.kill()
                    await trio.sleep(down_for)
                    await simulator.start()
                    returned = trio.current_time()
                    try:
                        await wait_all_connected(board, ids, timeout=120)
                        all_reconnected = True
                    except trio.TooSlowError:
                        all_reconnected = False
                    reconnect_s = trio.current_time() - returned
                    async with simulator.control() as control:
                        stats = await control.stats()
                    failed = sum(1 for sid in ids if board.get(sid).status is not SessionStatus.CONNECTED)
                    nursery.cancel_scope.cancel()
    finally:
        await simulator.kill()
    return {
        "sessions": sessions,
        "all_reconnected": all_reconnected,
        "reconnect_s": round(reconnect_s, 2),
        "initial_connect_s": round(initial_s, 2),
        "peak_concurrent_connects": stats.peak_concurrent_connects,
        "limiter_peak_in_progress": limiter.statistics().peak_in_progress,
        "connect_limit": CONNECT_LIMIT,
        "connect_rate_limit": CONNECT_RATE,
        "connect_attempts": stats.connect_attempts,
        "sessions_failed": failed,
        "rss_per_session_kb": round(rss_per_session_kb, 1),
        "down_s": down_for,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 sessions (finishes in under 45 s)")
    parser.add_argument("--sessions", type=int, help="number of sessions (default 1000, 300 with --quick)")
    parser.add_argument("--down", type=float, default=5.0, help="seconds the simulator stays down")
    args = parser.parse_args()
    sessions = args.sessions or (300 if args.quick else 1000)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="zapvisor-storm-") as tmp:
        result = trio.run(storm, sessions, args.down, Path(tmp))
    result.update(
        quick=args.quick,
        wall_s=round(time.perf_counter() - started, 1),
        targets={
            "all_reconnected": True,
            "reconnect_s": "<= 35 at 1000 sessions",
            "peak_concurrent_connects": "<= connect_limit",
            "sessions_failed": 0,
        },
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
