"""Closing an asyncio-backed backend while other tasks wait on its loop (:mod:`actors._aio`).

Found in a 1,000-session cluster run under overload: right after a store restart the daemon
died with ``TrioInternalError`` — a caller still waited on a future of the closed trio-asyncio
loop, and its deadline made trio-asyncio cancel that future through the closed loop, inside
trio's scheduler. The same shape, reproduced without the daemon (a caller awaiting a future of a
loop that then closes, with a deadline), ends ``trio.run`` with ``TrioInternalError``. Now every
call is cancelled and has returned before the loop closes.
"""

from __future__ import annotations

import asyncio

import pytest
import trio
import trio_asyncio

from actors._aio import LoopCalls
from actors.store import PostgresBackend, StoreClosed


class Closed(Exception):
    pass


async def test_a_caller_waiting_on_the_loop_is_released_before_it_closes():
    """The crash's shape: an asyncio future nobody will finish, a caller with a deadline that
    expires after the loop's owner left. The caller gets the backend's closed error instead."""
    outcomes: list[str] = []
    started = trio.Event()

    async with trio.open_nursery() as nursery:
        async with trio_asyncio.open_loop() as loop:
            calls = LoopCalls(lambda: Closed("stopped"))

            async def caller() -> None:
                with trio.move_on_after(1.0):  # expires after the loop closed (the crash's trigger)
                    try:
                        started.set()
                        await calls(trio_asyncio.run_aio_future, loop.create_future())
                    except Closed:
                        outcomes.append("closed")

            nursery.start_soon(caller)
            await started.wait()
            await trio.sleep(0.05)
            await calls.close()
            assert outcomes == ["closed"]  # released while the loop still ran

    with pytest.raises(Closed):  # after the close, calls are refused, the coroutine closed unawaited
        await calls(loop.run_aio_coroutine, asyncio.sleep(0))


async def test_postgres_close_ends_a_read_in_flight_and_refuses_later_ones(postgres_dsn):
    backend = PostgresBackend(postgres_dsn)
    results: list[object] = []

    async def slow_read(task_status=trio.TASK_STATUS_IGNORED):
        async def sleep(tx):
            return await tx.fetch("SELECT pg_sleep(30)")

        task_status.started()
        try:
            results.append(await backend.read(sleep))
        except StoreClosed as exc:
            results.append(exc)

    async with trio.open_nursery() as nursery:
        async with backend.open():
            await nursery.start(slow_read)
            await trio.sleep(0.3)  # the query is running on the server
            closing = trio.current_time()
        closed_after = trio.current_time() - closing
    assert len(results) == 1 and isinstance(results[0], StoreClosed)
    assert closed_after < 10  # not the 30 s query, nor an unbounded wait

    async def one(tx):
        return await tx.fetch("SELECT 1")

    with pytest.raises(StoreClosed):
        await backend.read(one)
