"""Real neonize clients in real worker processes: memory per session, and reconnects as full device JIDs.

No WhatsApp is reachable here, so a "live" client is the closest thing to one:
each session has its own SQLite device store holding a paired device
(``bench._devices``), its client resumes that device by its full JID and
dials WhatsApp through a local proxy that never answers (the Go call, the
whatsmeow client, its loaded device and its websocket dial all stay alive);
``Connected`` is then fed through neonize's real callback path. A connected
client on the real network holds more (Signal sessions, app state, buffers):
these figures are a floor for the client, but the worker's fixed cost is real.

1. **Memory** at ``clients_per_worker`` = 8, 32, 64 (``--quick``: 8 and the
   default): one worker filled with that many live clients; its RSS and PSS
   from ``/proc/<pid>/smaps_rollup``. ``fixed_per_worker_mb`` is the PSS of a
   worker hosting one client that never connected (neonize imported, nothing
   dialed); per session = the worker's PSS / its clients (what N sessions cost,
   fixed cost shared), marginal = (PSS - fixed) / clients.
2. **Reconnect loop**: N sessions (``--quick``: 8) each connecting 10 times as
   its device (every connect reaches the dial, which fails here), with the
   default ``max_connect_cycles`` (workers recycle); worker deaths counted.
   Before zapvisor kept the full JID, the second connect of every session
   aborted its worker.

    python -m bench.neonize [--quick] [--sessions N]

The last line printed is one JSON object; ``pss_per_session_mb`` and
``rss_per_session_mb`` are at the default packing (``workers.clients_per_worker``).
"""

from __future__ import annotations

import argparse
import functools
import json
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from actors.drivers import DriverConnectError
from actors.drivers.neonize import NeonizeDriver, PoolSettings, WorkerPool
from bench._devices import add_device
from config import load_settings

PACKINGS = (8, 32, 64)
RECONNECTS = 10
MB = 1024 * 1024


def _smaps(pid: int) -> dict[str, float]:
    """RSS and PSS of a process in MB (``/proc/<pid>/smaps_rollup``, kB lines)."""
    values: dict[str, float] = {}
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            name, _, rest = line.partition(":")
            if name in ("Rss", "Pss"):
                values[name.lower()] = int(rest.split()[0]) * 1024 / MB
    return values


class HangingProxy:
    """Accepts every dial and never answers it: the client's Go call stays in its dial."""

    def __init__(self) -> None:
        self.port = 0
        self.accepted = 0

    async def handle(self, stream: trio.SocketStream) -> None:
        self.accepted += 1
        async with stream:
            await trio.sleep_forever()

    async def start(self, nursery: trio.Nursery) -> None:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, self.handle, 0, host="127.0.0.1"))
        self.port = listeners[0].socket.getsockname()[1]


def _device(index: int) -> str:
    return f"55119{index:08d}:7@s.whatsapp.net"


async def _make_stores(pool: WorkerPool, workdir: Path, count: int) -> list[str]:
    """``count`` SQLite device stores, each holding one paired device (``_device(i)``)."""
    template = str(workdir / "template.db")
    driver = NeonizeDriver("template", pool, store=template)
    async with trio.open_nursery() as nursery:
        await nursery.start(driver.run)
        try:
            await driver.connect()
        except DriverConnectError:
            pass  # no network: neonize created and migrated its tables, which is all we need
        nursery.cancel_scope.cancel()

    def copy() -> list[str]:
        paths = []
        with sqlite3.connect(template) as source:
            for index in range(count):
                path = str(workdir / f"s{index}.db")
                with sqlite3.connect(path) as target:
                    source.backup(target)  # the WAL's content included
                target.close()
                add_device(path, _device(index))
                paths.append(path)
        source.close()
        return paths

    return await trio.to_thread.run_sync(copy)


async def _live_client(driver: NeonizeDriver, proxy: HangingProxy) -> None:
    """Connect ``driver`` through the proxy; feed ``Connected`` once its dial is in progress."""
    dials = proxy.accepted
    async with trio.open_nursery() as nursery:
        nursery.start_soon(driver.connect)
        while proxy.accepted <= dials:
            await trio.sleep(0.005)
        await driver.inject(event="ConnectedEv", fields={"status": True})


async def _packing(clients: int, stores: list[str], proxy: HangingProxy) -> dict[str, float]:
    """One worker with ``clients`` live clients: its memory, and the fixed cost measured first."""
    pool = WorkerPool(PoolSettings(clients_per_worker=clients, max_connect_cycles=clients + 1))
    async with trio.open_nursery() as nursery:
        await nursery.start(pool.run)
        drivers = [NeonizeDriver(f"s{i}", pool, store=stores[i], jid=_device(i), proxy=f"http://127.0.0.1:{proxy.port}")
                   for i in range(clients)]
        for driver in drivers:
            await nursery.start(driver.run)
        started = trio.current_time()
        await _live_client(drivers[0], proxy)
        (worker,) = pool.workers
        for driver in drivers[1:]:
            await _live_client(driver, proxy)
        await trio.sleep(1.0)  # let Go's goroutines and the converter settle
        memory = _smaps(worker.pid)
        if trio.current_time() - started > 50:  # whatsmeow's dial deadline is 60 s: all still dialing?
            raise RuntimeError("filling the worker took too long: the first clients' dials may have ended")
        assert len(pool.workers) == 1 and pool.statistics().died == 0
        nursery.cancel_scope.cancel()
    return memory


async def _fixed_cost(store: str) -> dict[str, float]:
    """A worker hosting one client that never connected: neonize imported, nothing dialed."""
    pool = WorkerPool()
    async with trio.open_nursery() as nursery:
        await nursery.start(pool.run)

        async def ignore_frame(_placement: Any, _frame: dict[str, Any]) -> None:
            await trio.lowlevel.checkpoint()

        await pool.attach("idle", create={"store": store, "qr_limit": 1, "jid": None, "proxy": None},
                          on_frame=ignore_frame, on_death=lambda _placement, _error: None)
        await trio.sleep(1.0)
        memory = _smaps(pool.workers[0].pid)
        nursery.cancel_scope.cancel()
    return memory


async def _reconnect_loop(sessions: int, stores: list[str], clients_per_worker: int) -> dict[str, Any]:
    defaults = load_settings(env={}).workers
    pool = WorkerPool(PoolSettings(clients_per_worker=clients_per_worker, max_connect_cycles=defaults.max_connect_cycles))
    reached_dial = 0
    other: list[str] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(pool.run)

        async def session(index: int) -> None:
            nonlocal reached_dial
            driver = NeonizeDriver(f"s{index}", pool, store=stores[index], jid=_device(index))
            async with trio.open_nursery() as inner:
                await inner.start(driver.run)
                for _ in range(RECONNECTS):
                    try:
                        await driver.connect()
                    except DriverConnectError as exc:
                        if "failed to dial" in str(exc):
                            reached_dial += 1
                        else:
                            other.append(str(exc))
                inner.cancel_scope.cancel()

        started = time.monotonic()
        async with trio.open_nursery() as sessions_nursery:
            for index in range(sessions):
                sessions_nursery.start_soon(session, index)
        elapsed = time.monotonic() - started
        stats = pool.statistics()
        nursery.cancel_scope.cancel()
    return {"reconnects": reached_dial, "attempts": sessions * RECONNECTS, "worker_deaths": stats.died,
            "workers_retired": stats.retired, "other_errors": other[:3], "reconnect_s": round(elapsed, 2)}


async def run(quick: bool, sessions: int | None) -> dict[str, Any]:
    default_packing = load_settings(env={}).workers.clients_per_worker
    packings = sorted({8, default_packing}) if quick else sorted({*PACKINGS, default_packing})
    loop_sessions = sessions or (8 if quick else 64)
    with tempfile.TemporaryDirectory(prefix="zapvisor-bench-neonize-") as tmp:
        workdir = Path(tmp)
        prep = WorkerPool()
        async with trio.open_nursery() as nursery:
            await nursery.start(prep.run)
            stores = await _make_stores(prep, workdir, max(max(packings), loop_sessions))
            nursery.cancel_scope.cancel()
        fixed = await _fixed_cost(str(workdir / "idle.db"))
        per_packing: dict[int, dict[str, float]] = {}
        async with trio.open_nursery() as nursery:
            proxy = HangingProxy()
            await proxy.start(nursery)
            for clients in packings:
                memory = await _packing(clients, stores, proxy)
                per_packing[clients] = {
                    "worker_rss_mb": round(memory["rss"], 1),
                    "worker_pss_mb": round(memory["pss"], 1),
                    "pss_per_session_mb": round(memory["pss"] / clients, 2),
                    "rss_per_session_mb": round(memory["rss"] / clients, 2),
                    "marginal_pss_per_client_mb": round((memory["pss"] - fixed["pss"]) / clients, 2),
                }
                print(f"clients_per_worker={clients}: {per_packing[clients]}", flush=True)
            nursery.cancel_scope.cancel()
        loop = await _reconnect_loop(loop_sessions, stores, default_packing)
    at_default = per_packing[default_packing]
    return {
        "benchmark": "neonize",
        "quick": quick,
        "clients_per_worker": default_packing,
        "pss_per_session_mb": at_default["pss_per_session_mb"],
        "rss_per_session_mb": at_default["rss_per_session_mb"],
        "fixed_per_worker_mb": round(fixed["pss"], 1),
        "fixed_per_worker_rss_mb": round(fixed["rss"], 1),
        "packings": {str(k): v for k, v in per_packing.items()},
        "sessions_in_4gb": int(4096 / at_default["pss_per_session_mb"]),
        **loop,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="packings 8 and the default, 8 sessions reconnecting")
    parser.add_argument("--sessions", type=int, help="sessions in the reconnect loop (default 64, 8 with --quick)")
    args = parser.parse_args()
    result = trio.run(run, args.quick, args.sessions)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
