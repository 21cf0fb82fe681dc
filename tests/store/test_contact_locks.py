"""A known contact writing again does not lock its row: nodes sharing a contact never wait for one another.

Found by ``bench/failover.py`` (three daemons, 1,000 sessions of one tenant whose customers write
to many of its numbers): every inbound message upserted its contact, which locks the row until
the batch commits; two nodes' batches then waited for each other in whatever order their
messages came — PostgreSQL broke the cycles after its 1 s ``deadlock_timeout``, and each broken
batch was re-run one write per transaction, hundreds of them while every send waited (p99 of
seconds to tens of seconds). Two stores on one real PostgreSQL database play the two nodes.
"""

from __future__ import annotations

import attrs
import trio

from actors.store import PostgresBackend, open_store
from actors.store._ops_core import UpsertContact

HELD = 3.0
"""Seconds the first node's transaction stays open after writing to the contact."""


@attrs.frozen
class _SlowBatch:
    """A batch of the first node: the contact's upsert, then more work before its COMMIT."""

    upsert: UpsertContact

    async def apply(self, tx, now: float) -> None:
        await self.upsert.apply(tx, now)
        await tx.execute(f"SELECT pg_sleep({HELD})")


async def test_a_known_contact_is_not_locked_by_another_nodes_open_batch(postgres_dsn):
    async with open_store(PostgresBackend(postgres_dsn)) as first, open_store(PostgresBackend(postgres_dsn)) as second:
        await first.upsert_tenant("acme", "Acme")
        await first.upsert_contact("acme", "5511@s.whatsapp.net", "Bob")
        finished: list[str] = []

        async def slow() -> None:
            await first._write(_SlowBatch(UpsertContact("acme", "5511@s.whatsapp.net", "Bob", False)), None)
            finished.append("first node's batch")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(slow)
            await trio.sleep(HELD / 3)  # its transaction has written to the contact and is still open
            for name in ("Bob", ""):  # the same name, or none (WhatsApp sent no push name)
                contact = await second.upsert_contact("acme", "5511@s.whatsapp.net", name)
                assert contact.name == "Bob"
            finished.append("second node's upserts")
        assert finished == ["second node's upserts", "first node's batch"]
        renamed = await second.upsert_contact("acme", "5511@s.whatsapp.net", "Robert")  # a new name is written
        assert (await first.get_contact(renamed.id)).name == "Robert"
