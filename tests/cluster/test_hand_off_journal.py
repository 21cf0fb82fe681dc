"""A session handed off in a rebalance without answering its hand-over (it was stopped or had
failed: nothing stored what its last connection delivered) has its node's inbound journal stored
at the hand-off, not at that node's next boot (node ``a`` in-process, ``b`` a real daemon joining,
on one PostgreSQL and Redis, the simulator delivering like whatsmeow: receipted on arrival).

The session ran on ``a`` and receipted a message that ``a`` journaled but never stored; then its
actor was stopped by its supervisor, beneath the session manager (as when its restarts are used up:
the session is still this node's to hand off). ``b``
joins and placement gives the session to ``b``: ``a`` hands it off, the ``HandOver`` finds no
actor to answer, and the message exists only in ``a``'s journal, which ``b`` never reads.
"""

from __future__ import annotations

import json

import trio

from actors.cluster import Member as Placed
from actors.cluster import place
from actors.drivers._journal import close_shared, open_shared, read_pending
from actors.drivers._simulated import JOURNAL_FILE, KEY_SEPARATOR
from actors.node import open_node
from actors.sessions import SessionStatus
from actors.simulator._traffic import build_message, contact_jid

from ..node.conftest import node_settings, wait_status
from .conftest import SETTLE_TIMEOUT, cluster_member, running, seed, wait_converged

SESSIONS = {f"h{i:02d}" for i in range(6)}
CAPACITY = 50  # sessions.max_sessions' default: what placement weighs the two nodes by
REPLAY_WAIT = 20.0
"""Seconds after the join has converged that ``a`` gets to store the journaled message (it does
so at the hand-off itself, before the new owner even connects)."""


async def test_a_session_that_cannot_answer_its_rebalance_hand_off_has_its_journal_stored(
        tmp_path, simulator, simulator_control, postgres_dsn, redis_url):
    await seed(postgres_dsn, simulator_control, SESSIONS)
    placed = place(SESSIONS, [Placed("a", None, CAPACITY), Placed("b", None, CAPACITY)])
    moving = min(sid for sid, node in placed.items() if node == "b")
    settings = node_settings(tmp_path / "a", simulator.url, node__node_id="a", store__backend="postgres",
                             store__postgres_dsn=postgres_dsn, bus__backend="redis", bus__redis_url=redis_url)
    journal_path = tmp_path / "a" / "data" / "journal" / JOURNAL_FILE
    b = cluster_member(tmp_path, simulator.url, "b", postgres_dsn, redis_url)
    async with open_node(settings) as a:
        for session_id in sorted(SESSIONS):  # a alone: it owns them all
            await wait_status(a, session_id, SessionStatus.CONNECTED, timeout=SETTLE_TIMEOUT)
        assert moving in a.local

        # receipted to WhatsApp and journaled by a's driver, not stored: then its actor stops
        now = a.system.wall_time(trio.current_time())
        message = build_message(sender=contact_jid(1), timestamp=now, text="journaled, never stored",
                                message_id="JOURNALED1")
        key = f"{moving}{KEY_SEPARATOR}JOURNALED1"

        def journal_it() -> None:
            journal = open_shared(journal_path)  # the one a's drivers write (same process, same file)
            try:
                journal.commit([(key, json.dumps(message).encode())])
            finally:
                close_shared(journal)

        await trio.to_thread.run_sync(journal_it)
        await a.system.supervisor("/tenants/acme/sessions").terminate_child(moving)
        assert moving in a.local  # still a's to hand off: nobody restarts it here

        async with running(b):
            with trio.fail_after(SETTLE_TIMEOUT):  # converged (b settled, the hand-offs done) on the new placement
                while await wait_converged(b, SESSIONS, {"a", "b"}) != placed:
                    await trio.sleep(0.2)
            assert moving not in a.local
            with trio.move_on_after(REPLAY_WAIT):
                while key in dict(await trio.to_thread.run_sync(read_pending, journal_path)):
                    await trio.sleep(0.1)
            pending = dict(await trio.to_thread.run_sync(read_pending, journal_path))
            assert key not in pending, "the handed-off session's message is still only in a's journal"

            stored = await a.store.get_message(moving, "JOURNALED1")
            assert stored is not None and stored.ticket_id is not None
            await trio.sleep(1.0)  # a duplicate would show up here
            assert await a.store.count_messages(moving) == 1
    assert (await simulator_control.stats()).replaced == 0  # never two connections of one account
