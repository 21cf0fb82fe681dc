"""A session on the real neonize driver, in real worker processes (WhatsApp itself is unreachable here).

neonize's ``connect()`` fails at the dial: the session must show that error as its
reason and wait at the upstream gate (no breaker, no stampede). A SIGKILL of its
worker must bring it back on a fresh worker at once, without a supervisor restart.
"""

from __future__ import annotations

import os
import signal

import trio

from actors.drivers.neonize import NeonizeDriver, PoolSettings, WorkerPool
from actors.sessions import SessionStatus, UpstreamMode

from .conftest import open_session_node


async def test_dial_failure_is_the_visible_reason_and_a_killed_worker_is_replaced(tmp_path):
    pool = WorkerPool(PoolSettings(clients_per_worker=4))

    def driver(session_id: str) -> NeonizeDriver:
        return NeonizeDriver(session_id, pool, str(tmp_path / f"{session_id}.sqlite3"))

    async with trio.open_nursery() as nursery:
        await nursery.start(pool.run)
        async with open_session_node(None, driver_factory=driver) as node:
            await node.add("s1")
            failed = await node.wait_status(
                "s1", SessionStatus.DISCONNECTED, timeout=60, where=lambda i: "unreachable" in i.reason
            )
            assert "dial" in failed.reason.lower(), failed.reason
            waiting = await node.wait_status("s1", SessionStatus.BACKOFF, timeout=60)
            assert waiting.until is not None and "dial" in waiting.reason.lower(), waiting
            assert node.deps.upstream.mode is UpstreamMode.DOWN
            snapshot = node.system.tree().find("/tenants/t1/sessions/s1")
            assert snapshot.state == "running" and snapshot.breaker == "closed"

            (worker,) = pool.workers
            os.kill(worker.pid, signal.SIGKILL)
            died = await node.wait_status("s1", SessionStatus.DISCONNECTED, timeout=60,
                                          where=lambda i: "died" in i.reason)
            assert str(worker.pid) in died.reason
            with trio.fail_after(60):
                while not any(w.pid != worker.pid for w in pool.workers):
                    await trio.sleep(0.05)
            assert pool.statistics().died == 1
            snapshot = node.system.tree().find("/tenants/t1/sessions/s1")
            assert snapshot.restarts == 0  # handled in place, no supervisor backoff
        nursery.cancel_scope.cancel()
