"""Nothing acknowledged is lost: SQLite across reopen, PostgreSQL across restarts and outages."""

import pytest
import trio

from actors.store import (
    Inserted, PostgresBackend, SqliteBackend, StoreClosed, StoreUnavailable, open_store,
)
from bench._servers import free_port

from .helpers import message, seed
from .tcp_proxy import CommitCutter


async def test_sqlite_file_survives_reopen(tmp_path, wall_clock):
    path = tmp_path / "nested" / "dir" / "zapvisor.db"
    async with open_store(SqliteBackend(path), clock=wall_clock) as store:
        contact = await seed(store)
        ticket = (await store.find_or_create_ticket("acme", "s1", contact.id, reopen_window=0)).ticket
        await store.insert_message(message(contact, "WA1", ticket_id=ticket.id))
    async with open_store(SqliteBackend(path), clock=wall_clock) as store:
        assert [m.wa_id for m in await store.list_messages(ticket.id)] == ["WA1"]
        assert (await store.get_ticket(ticket.id)).unread == 1


async def test_a_stopped_store_says_closed(make_backend, wall_clock):
    async with open_store(make_backend(), clock=wall_clock) as store:
        contact = await seed(store)
    with pytest.raises(StoreClosed):
        await store.upsert_tenant("acme", "x")
    with pytest.raises(StoreClosed):  # the hot path, which skips _write
        await store.insert_message(message(contact, "WA9"))
    with pytest.raises(StoreClosed):
        await store.list_tenants()
    assert store.statistics().state == "stopped"


async def test_unreachable_postgres_at_start_is_unavailable():
    backend = PostgresBackend(f"postgresql://postgres@127.0.0.1:{free_port()}/none", connect_deadline=0.3)
    with pytest.raises(StoreUnavailable, match="unreachable"):
        async with open_store(backend):
            pass


async def _stream(store, contact, stop: trio.Event, writers: int, timeout: float):
    """Writers insert distinct messages until ``stop``; returns (acked, failed_clean, unknown) wa ids."""
    acked, failed, unknown = set(), set(), set()

    async def writer(w: int) -> None:
        i = 0
        while not stop.is_set():
            wa = f"W{w}-{i}"
            i += 1
            try:
                result = await store.insert_message(message(contact, wa), timeout=timeout)
            except StoreUnavailable as lost:
                (unknown if lost.outcome_unknown else failed).add(wa)
                await trio.sleep(0.01)
                continue
            assert isinstance(result, Inserted)
            acked.add(wa)

    async with trio.open_nursery() as nursery:
        for w in range(writers):
            nursery.start_soon(writer, w)
    return acked, failed, unknown


async def _stored_wa_ids(store) -> list[str]:
    rows = await store._fetch("SELECT wa_id FROM messages WHERE wa_id LIKE 'W%'")
    return [row["wa_id"] for row in rows]


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_postgres_restart_mid_stream_loses_no_acknowledged_write(postgres_server, postgres_dsn, mode):
    async with open_store(PostgresBackend(postgres_dsn)) as store:
        contact = await seed(store)
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            outcome = {}

            async def run_stream() -> None:
                outcome["sets"] = await _stream(store, contact, stop, writers=20, timeout=20)

            nursery.start_soon(run_stream)
            await trio.sleep(0.3)
            acked_before = store.statistics().ops
            await trio.to_thread.run_sync(postgres_server.restart, mode)
            await trio.sleep(0.5)
            stop.set()
        acked, failed, unknown = outcome["sets"]
        stored = await _stored_wa_ids(store)
        assert len(stored) == len(set(stored))  # nothing duplicated
        assert acked <= set(stored)  # every acknowledged write is present
        assert not (failed & set(stored))  # a write reported as not written is not there
        assert set(stored) <= acked | unknown
        assert store.statistics().reconnects >= 1
        assert acked_before > 0 and len(acked) > acked_before


async def test_postgres_outage_longer_than_the_deadline_reports_failures(postgres_server, postgres_dsn):
    async with open_store(PostgresBackend(postgres_dsn)) as store:
        contact = await seed(store)
        stop = trio.Event()
        outcome = {}
        async with trio.open_nursery() as nursery:

            async def run_stream() -> None:
                outcome["sets"] = await _stream(store, contact, stop, writers=5, timeout=0.4)

            nursery.start_soon(run_stream)
            await trio.sleep(0.2)
            await trio.to_thread.run_sync(postgres_server.stop, "fast")
            try:
                await trio.sleep(1.0)
                assert store.statistics().state == "reconnecting"
                with pytest.raises(StoreUnavailable):
                    await store.list_tenants()
            finally:
                await trio.to_thread.run_sync(postgres_server.start)
            with trio.fail_after(10):  # the reconnect backoff may be up to its 2 s cap
                while store.statistics().state != "connected":
                    await trio.sleep(0.01)
            await trio.sleep(0.1)
            stop.set()
        acked, failed, unknown = outcome["sets"]
        stored = set(await _stored_wa_ids(store))
        assert failed, "callers past their deadline were told"
        assert acked <= stored and not (failed & stored) and stored <= acked | unknown
        assert store.statistics().state == "connected"
        assert isinstance(await store.insert_message(message(contact, "after")), Inserted)


@pytest.mark.parametrize("how", ["deliver", "drop"])
async def test_a_commit_cut_off_midway_is_resolved_not_guessed(postgres_server, postgres_dsn, how):
    """The COMMIT's answer is lost: the store asks the server (pg_xact_status) what happened.

    deliver: the server committed → callers are acknowledged, rows stored once, no re-run.
    drop: the server rolled back → the batch runs again → callers acknowledged, rows stored once.
    """
    async with trio.open_nursery() as nursery:
        proxy = await nursery.start(CommitCutter(postgres_server.port).serve)
        dsn = postgres_dsn.replace(f":{postgres_server.port}/", f":{proxy.port}/")
        async with open_store(PostgresBackend(dsn), linger=0.05) as store:
            contact = await seed(store)
            proxy.trap(how)
            results = []

            async def write(i: int) -> None:
                results.append(await store.insert_message(message(contact, f"W{i}")))

            async with trio.open_nursery() as writers:
                for i in range(10):
                    writers.start_soon(write, i)
            assert proxy.cuts == 1
            # "deliver" re-run blindly would answer AlreadyStored: Inserted proves it was resolved
            assert len(results) == 10 and all(isinstance(r, Inserted) for r in results)
            stored = await _stored_wa_ids(store)
            assert sorted(stored) == sorted(f"W{i}" for i in range(10))
            stats = store.statistics()
            assert stats.reconnects == 1 and stats.failed_ops == 0
            assert stats.batches == 4  # three seed writes, then one committed batch of ten
        nursery.cancel_scope.cancel()


async def test_a_batch_the_server_never_answers_is_given_up_and_resolved(postgres_server, postgres_dsn):
    """A hung server (the COMMIT swallowed, the socket open and silent): after the backend's
    command_timeout the batch is given up like a lost connection, the old transaction is found
    still open and terminated, the batch runs again and every caller is answered once."""
    async with trio.open_nursery() as nursery:
        proxy = await nursery.start(CommitCutter(postgres_server.port).serve)
        dsn = postgres_dsn.replace(f":{postgres_server.port}/", f":{proxy.port}/")
        async with open_store(PostgresBackend(dsn, command_timeout=1.0), linger=0.05) as store:
            contact = await seed(store)
            proxy.trap("stall")
            results = []

            async def write(i: int) -> None:
                results.append(await store.insert_message(message(contact, f"W{i}")))

            started = trio.current_time()
            async with trio.open_nursery() as writers:
                for i in range(5):
                    writers.start_soon(write, i)
            assert 1.0 <= trio.current_time() - started < 10.0
            assert proxy.cuts == 1 and len(results) == 5 and all(isinstance(r, Inserted) for r in results)
            assert sorted(await _stored_wa_ids(store)) == sorted(f"W{i}" for i in range(5))
            stats = store.statistics()
            assert stats.reconnects == 1 and stats.failed_ops == 0
        nursery.cancel_scope.cancel()


async def test_an_idle_store_notices_postgres_going_away(postgres_server, postgres_dsn):
    async with open_store(PostgresBackend(postgres_dsn)) as store:
        await seed(store)
        await trio.to_thread.run_sync(postgres_server.stop, "fast")
        try:
            with trio.fail_after(10):
                while store.statistics().state != "disconnected":
                    await trio.sleep(0.01)
        finally:
            await trio.to_thread.run_sync(postgres_server.start)
        await store.upsert_tenant("back", "Back")  # the next write reconnects
        assert store.statistics().state == "connected"
        assert store.statistics().reconnects == 1
