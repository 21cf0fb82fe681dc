"""Closing the SQLite backend while another task's read runs on a worker thread.

Found by the stateful admin test: restarting ``/infra/store`` closed the reader connection under a
read still running in a worker thread, and the daemon died in libsqlite3 (SIGSEGV, no log line).
The close now waits for the read; a read that comes after the close raises StoreClosed.
"""

from __future__ import annotations

import pytest
import trio

from actors.store import SqliteBackend, StoreClosed

#: A read that keeps its worker thread busy for a while (a recursive count, no table needed).
SLOW_READ = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000000) SELECT count(*) FROM n"
)


async def _slow_count(tx):
    return await tx.fetchval(SLOW_READ)


async def test_a_read_in_flight_finishes_before_the_close_and_a_later_one_is_refused(tmp_path):
    backend = SqliteBackend(tmp_path / "zapvisor.db")
    results = []

    async def reader(task_status=trio.TASK_STATUS_IGNORED):
        task_status.started()
        results.append(await backend.read(_slow_count))

    async with trio.open_nursery() as nursery:
        async with backend.open():
            await nursery.start(reader)
            await trio.sleep(0.05)  # the read is running on its worker thread; now leave: close
        assert results == [3000000]  # the close waited for it (before the fix: SIGSEGV here)
    with pytest.raises(StoreClosed):
        await backend.read(_slow_count)
    with pytest.raises(StoreClosed):
        await backend.run_batch(_slow_count)
