"""A janitor run through a real PostgreSQL outage: it waits at the node's store gate (no error, no
crash, nothing counted as failed) and finishes the sweep once the server is back."""

from __future__ import annotations

import attrs
import trio

from actors.lifecycle import Sweeper
from actors.sessions import UpstreamMode, store_gate
from actors.store import PostgresBackend, open_store

from tests.store.helpers import message

DAY = 86400.0
OUTAGE = 5.0
"""Longer than the store's write timeout below: writes do fail with StoreUnavailable meanwhile."""


async def test_a_run_waits_out_a_store_outage_at_the_gate(tmp_path, postgres_server, postgres_dsn,
                                                          retention_settings, wall_clock):
    settings = attrs.evolve(retention_settings, messages_days=1, batch_size=10, batch_pause=0.2)
    gate = store_gate()
    async with open_store(PostgresBackend(postgres_dsn), clock=wall_clock, default_timeout=2.0) as store:
        await store.upsert_tenant("acme", "Acme")
        await store.upsert_session("s1", "acme", "main")
        wall_clock.now -= 2 * DAY
        contact, found = await store.open_conversation("acme", "s1", "5511@s.whatsapp.net", reopen_window=0)
        await store.insert_messages([message(contact, f"w{i}", ticket_id=found.ticket.id) for i in range(200)])
        wall_clock.now += 2 * DAY
        sweeper = Sweeper(settings, store, tmp_path / "media", tmp_path / "auth", gate=gate)
        reports = []
        async with trio.open_nursery() as nursery:

            async def run() -> None:
                reports.append(await sweeper.run_once())

            nursery.start_soon(run)
            await trio.sleep(0.5)  # a few batches in
            await trio.to_thread.run_sync(postgres_server.stop)
            try:
                await trio.sleep(OUTAGE)
                stats = gate.statistics()  # the run waits at the gate, or is its trial write right now
                assert stats.mode is UpstreamMode.DOWN and stats.waiting + stats.trial_running == 1
                assert not reports
            finally:
                await trio.to_thread.run_sync(postgres_server.start)
            with trio.fail_after(30):
                while not reports:
                    await trio.sleep(0.1)
        assert reports[0].rows == {"messages": 200} and reports[0].errors == 0
        assert sweeper.statistics().errors == 0
        assert await store.count_messages("s1") == 0
