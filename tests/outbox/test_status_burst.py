"""A node connecting hundreds of sessions at once must not fail its outbox.

Found by ``bench/failover.py`` with 1,000 sessions: the outbox applied every status change as it
came, with store writes for each connected session, fell more than the board's subscriber buffer
behind, was dropped by the board and failed ("the status board dropped the outbox's
subscription"); its restarts refused sends and made them take seconds. Now it notes changes as
fast as they come and applies each session's newest one. Real store, board and actor system.
"""

from __future__ import annotations

import trio

from actors.outbox import OutboxDeps, OutboxService
from actors.sessions import SessionStatus, StatusBoard
from actors.sessions._status import SUBSCRIBER_BUFFER
from actors.store import SqliteBackend, open_store
from supervisor import ChildSpec, open_actor_system

SESSIONS = 600
"""Three changes each: well over the board's subscriber buffer in all."""


async def test_a_burst_of_status_changes_neither_drops_nor_fails_the_outbox(tmp_path):
    assert 3 * SESSIONS > SUBSCRIBER_BUFFER
    async with open_store(SqliteBackend(tmp_path / "z.db")) as store:
        await store.upsert_tenant("acme", "Acme")
        board = StatusBoard(debounce=0.05)
        deps = OutboxDeps(store=store, board=board, attempts=3, pacing_interval=0.0, pacing_jitter=0.0)
        async with open_actor_system([]) as system:
            service = OutboxService(deps)
            await system.supervisor("/").start_child(ChildSpec("outbox", lambda: service))
            for index in range(SESSIONS):  # as sessions coming up do: many tasks, a checkpoint now and then
                session_id = f"s{index}"
                for status in (SessionStatus.CONNECTING, SessionStatus.CONNECTED, SessionStatus.DISCONNECTED):
                    board.set(session_id, "acme", status)
                board.set(session_id, "acme", SessionStatus.CONNECTED)
                if index % 50 == 0:
                    await trio.sleep(0)
            with trio.fail_after(30):
                while len(service._senders) < SESSIONS:
                    await trio.sleep(0.05)
            assert board.statistics().dropped_subscribers == 0
            assert system.tree().find("/outbox").restarts == 0
            assert sorted(service._senders) == sorted(f"s{index}" for index in range(SESSIONS))
