"""A node connecting hundreds of sessions at once must not fail its outbox.

Found by ``bench/failover.py`` with 1,000 sessions: the outbox applied every status change as it
came, with store writes for each connected session, fell more than the board's subscriber buffer
behind, was dropped by the board and failed ("the status board dropped the outbox's
subscription"); its restarts refused sends and made them take seconds. Now it notes changes as
fast as they come and applies each session's newest one. Real store, board and actor system.
"""

from __future__ import annotations

import trio

from actors.outbox import OutboxDeps, OutboxService, Send
from actors.sessions import SessionStatus, StatusBoard
from actors.sessions._status import SUBSCRIBER_BUFFER
from actors.store import Queue, SqliteBackend, open_store
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


async def test_sessions_coming_up_at_once_cost_the_store_a_few_writes_not_some_each(tmp_path):
    """Each session that starts sending used to cost the store a write to settle what its previous
    sender left and a claim: ~1,000 writes for 338 sessions of a node coming up, every send behind
    them. Now one write settles them all and only a session with a queued send claims; an idle
    one claims as soon as a send arrives."""
    async with open_store(SqliteBackend(tmp_path / "z.db")) as store:
        await store.upsert_tenant("acme", "Acme")
        for index in range(SESSIONS):
            await store.upsert_session(f"s{index}", "acme", f"s{index}")
        waiting = (await store.enqueue_outbox("acme", "s0", "before", "1@s.whatsapp.net", {"text": "x"})).item
        board = StatusBoard(debounce=0.05)
        deps = OutboxDeps(store=store, board=board, attempts=3, pacing_interval=0.0, pacing_jitter=0.0)
        async with open_actor_system([]) as system:
            service = OutboxService(deps)
            await system.supervisor("/").start_child(ChildSpec("outbox", lambda: service))
            before = store.statistics().ops
            for index in range(SESSIONS):
                board.set(f"s{index}", "acme", SessionStatus.CONNECTED)
            with trio.fail_after(30):
                while len(service._senders) < SESSIONS or (await store.get_job(Queue.OUTBOX, waiting.id)).attempts == 0:
                    await trio.sleep(0.05)
            writes = store.statistics().ops - before
            assert writes < SESSIONS / 20, f"{writes} store writes for {SESSIONS} sessions coming up"
            later = await system.ref("/outbox").ask(Send("acme", "s1", "later", "1@s.whatsapp.net", "y"))
            with trio.fail_after(5):  # long before the idle poll: the send wakes its idle sender
                while (await store.get_job(Queue.OUTBOX, later.item.id)).attempts == 0:
                    await trio.sleep(0.05)


async def test_idle_senders_look_for_work_in_one_read_not_a_claim_each(tmp_path):
    """Idle senders used to claim (a store write) every poll interval each, and those of sessions
    that came up together did it together: hundreds of writes in a burst, every 30 s. Now one read
    finds the sessions with a send due (one enqueued by another node whose wake-up was lost, here)
    and only their senders claim."""
    poll = 0.2
    async with open_store(SqliteBackend(tmp_path / "z.db")) as store:
        await store.upsert_tenant("acme", "Acme")
        for index in range(SESSIONS):
            await store.upsert_session(f"s{index}", "acme", f"s{index}")
        board = StatusBoard(debounce=0.05)
        deps = OutboxDeps(store=store, board=board, attempts=3, pacing_interval=0.0, pacing_jitter=0.0,
                          idle_poll=poll)
        async with open_actor_system([]) as system:
            service = OutboxService(deps)
            await system.supervisor("/").start_child(ChildSpec("outbox", lambda: service))
            for index in range(SESSIONS):
                board.set(f"s{index}", "acme", SessionStatus.CONNECTED)
            with trio.fail_after(30):
                while len(service._senders) < SESSIONS:
                    await trio.sleep(0.05)
            before = store.statistics().ops
            await trio.sleep(5 * poll)
            idle_writes = store.statistics().ops - before
            assert idle_writes < 5, f"{idle_writes} store writes in {5 * poll} s of {SESSIONS} idle senders"
            lost = (await store.enqueue_outbox("acme", "s7", "elsewhere", "1@s.whatsapp.net", {"text": "x"})).item
            with trio.fail_after(5 * poll + 5):
                while (await store.get_job(Queue.OUTBOX, lost.id)).attempts == 0:
                    await trio.sleep(0.05)
