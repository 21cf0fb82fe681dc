"""A deleted session leaves nothing behind in the node's services (real node, real simulator).

Found with ``bench/soak.py`` (sessions created, paired, written to, logged out and deleted over
and over): each deleted session left its conversations in the inbound sink's ticket cache
(bounded at 50,000 entries: some 10 MB of dead keys on a node that churns sessions) and its id
in the outbox's set of sessions paused by their status (unbounded). The soak's memory slope
grew with both. The test reads those two containers: they are what leaked.
"""

from __future__ import annotations

import trio

from actors.flows._wiring import OUTBOX_PATH
from actors.node import DeleteSession, open_node
from actors.store import Queue

from .test_manager import create_and_pair

CONTACTS = 3


async def test_a_deleted_session_leaves_nothing_in_the_inbound_and_outbox(settings, simulator_control):
    async with open_node(settings) as node:
        await node.store.upsert_tenant("acme", "Acme")
        tickets = node.flows.inbound._tickets
        outbox = node.system._registry[OUTBOX_PATH].cell.actor
        await create_and_pair(node, simulator_control, "kept")
        await simulator_control.send_message("kept", "oi", sender="5511900000099@s.whatsapp.net")
        for round_ in range(2):
            session_id = f"gone{round_}"
            await create_and_pair(node, simulator_control, session_id)
            for contact in range(CONTACTS):
                await simulator_control.send_message(session_id, f"oi {contact}",
                                                     sender=f"55119000000{contact:02d}@s.whatsapp.net")
            with trio.fail_after(10):
                while await node.store.count_messages(session_id) < CONTACTS:
                    await trio.sleep(0.02)
            assert sum(1 for key in tickets._data if key[0] == session_id) == CONTACTS  # what it cached

            assert await node.manager.ask(DeleteSession(session_id)) is None  # connected: logged out first
            with trio.fail_after(10):  # its logout paused its outbox
                while session_id not in await node.store.paused(Queue.OUTBOX):
                    await trio.sleep(0.02)
            await trio.sleep(0.2)  # whatever the outbox still had to hear of it, it has heard

            assert [key for key in tickets._data if key[0] == session_id] == []
            assert session_id not in outbox._paused_by_status
        assert [key for key in tickets._data if key[0] == "kept"] != []  # the others' entries stay
