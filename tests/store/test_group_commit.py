"""Group commit: many callers, few transactions; a failing op fails only its caller."""

import pytest
import trio

from actors.store import (
    Fence, FencedOut, Inserted, InvalidInput, SqliteBackend, StoreStatistics, StoreUnavailable, WriteFailed,
    open_store,
)

from .helpers import message, seed


async def test_ops_from_100_tasks_land_in_few_transactions(store):
    contact = await seed(store)
    before = store.statistics()
    results = []

    async def write(i: int) -> None:
        results.append(await store.insert_message(message(contact, f"WA{i}")))

    async with trio.open_nursery() as nursery:
        for i in range(100):
            nursery.start_soon(write, i)
    after = store.statistics()
    assert all(isinstance(r, Inserted) for r in results) and len(results) == 100
    assert after.ops - before.ops == 100
    assert after.batches - before.batches <= 100 // 10  # at least ten callers per transaction
    assert await store.count_messages() == 100


async def test_a_batch_never_exceeds_max_batch(make_backend, wall_clock):
    async with open_store(make_backend(), clock=wall_clock, max_batch=7) as store:
        contact = await seed(store)
        before = store.statistics().batches
        async with trio.open_nursery() as nursery:
            for i in range(70):
                nursery.start_soon(store.insert_message, message(contact, f"WA{i}"))
        assert store.statistics().batches - before >= 10
        assert await store.count_messages() == 70


async def test_a_rejected_write_fails_only_its_caller(make_backend, wall_clock):
    # linger makes sure the bad write shares its transaction with the good ones
    async with open_store(make_backend(), clock=wall_clock, linger=0.05) as store:
        contact = await seed(store)
        outcomes = {}

        async def write(i: int) -> None:
            outcomes[i] = await store.insert_message(message(contact, f"WA{i}"))

        async def bad() -> None:
            with pytest.raises(WriteFailed, match="UpsertSession rejected"):
                await store.upsert_session("s9", "no-such-tenant", "orphan")  # foreign key violation
            outcomes["bad"] = "failed"

        async with trio.open_nursery() as nursery:
            for i in range(20):
                nursery.start_soon(write, i)
            nursery.start_soon(bad)
            for i in range(20, 40):
                nursery.start_soon(write, i)
        assert outcomes.pop("bad") == "failed"
        assert all(isinstance(r, Inserted) for r in outcomes.values()) and len(outcomes) == 40
        assert await store.count_messages() == 40
        assert await store.get_session("s9") is None
        stats = store.statistics()
        assert stats.fallbacks >= 1 and stats.failed_ops == 1


async def test_a_refused_write_does_not_roll_back_its_batch(make_backend, wall_clock):
    async with open_store(make_backend(), clock=wall_clock, linger=0.05) as store:
        contact = await seed(store)
        ticket = (await store.find_or_create_ticket("acme", "s1", contact.id, reopen_window=0)).ticket
        await store.close_ticket(ticket.id, fence=Fence("ticket:1", 10))
        results = {}

        async def stale() -> None:
            with pytest.raises(FencedOut):
                await store.reopen_ticket(ticket.id, fence=Fence("ticket:1", 9))
            results["stale"] = "refused"

        async def write(i: int) -> None:
            results[i] = await store.insert_message(message(contact, f"WA{i}"))

        async with trio.open_nursery() as nursery:
            for i in range(10):
                nursery.start_soon(write, i)
            nursery.start_soon(stale)
        assert results.pop("stale") == "refused"
        assert len(results) == 10 and await store.count_messages() == 10
        assert store.statistics().fallbacks == 0


async def test_statistics_is_a_frozen_snapshot(store):
    await seed(store)
    stats = store.statistics()
    assert isinstance(stats, StoreStatistics) and stats.state == "connected"
    assert stats.ops == 3 and stats.latency_p99 >= stats.latency_p50 > 0
    with pytest.raises(AttributeError):
        stats.ops = 0  # type: ignore[misc]


async def test_bad_arguments_name_the_field(store):
    with pytest.raises(InvalidInput, match="tenant_id"):
        await store.upsert_tenant("", "x")
    with pytest.raises(InvalidInput, match="reopen_window"):
        await store.find_or_create_ticket("acme", "s1", 1, reopen_window=-1)
    with pytest.raises(InvalidInput, match="role"):
        await store.create_user("acme", "a@b", "A", role="boss")
    with pytest.raises(InvalidInput, match="timeout"):
        await store.upsert_tenant("acme", "x", timeout=0)
    with pytest.raises(InvalidInput, match="limit"):
        await store.list_tickets("acme", limit=0)


async def test_a_cancelled_caller_withdraws_its_queued_write(make_backend, wall_clock):
    # linger holds the writer long enough for the caller to give up before the batch is taken
    async with open_store(make_backend(), clock=wall_clock, linger=0.1) as store:
        await seed(store)
        with trio.move_on_after(0.01) as scope:
            await store.upsert_tenant("withdrawn", "Never")
        assert scope.cancelled_caught
        await store.upsert_tenant("later", "Later")  # the next batch has run
        assert {t.id for t in await store.list_tenants()} == {"acme", "later"}
        assert store.statistics().failed_ops == 1


async def test_a_full_queue_applies_backpressure_without_losing_writes(make_backend, wall_clock):
    async with open_store(make_backend(), clock=wall_clock, queue_capacity=2, linger=0.01) as store:
        contact = await seed(store)
        before = store.statistics().batches
        async with trio.open_nursery() as nursery:
            for i in range(12):
                nursery.start_soon(store.insert_message, message(contact, f"WA{i}"))
        assert await store.count_messages() == 12
        assert store.statistics().batches - before >= 12 // 2  # never more than two waiting


async def test_a_full_queue_past_the_deadline_is_unavailable_and_not_written(make_backend, wall_clock):
    async with open_store(make_backend(), clock=wall_clock, queue_capacity=1, linger=0.2) as store:
        await seed(store)
        failures = []

        async def write(i: int) -> None:
            try:
                await store.upsert_tenant(f"t{i}", "T", timeout=0.05)
            except StoreUnavailable as refused:
                failures.append((i, refused.outcome_unknown))

        async with trio.open_nursery() as nursery:
            for i in range(3):
                nursery.start_soon(write, i)
        assert failures and all(unknown is False for _, unknown in failures)
        stored = {t.id for t in await store.list_tenants()}
        assert not stored & {f"t{i}" for i, _ in failures}


async def test_a_deadline_fires_exactly_on_time(tmp_path, wall_clock, autojump_clock):
    # The writer lingers far longer than the caller's timeout: only the deadline sweeper can
    # answer. Writer logic, so one backend suffices: SQLite, because a mock clock that jumps
    # whenever tasks wait would also jump through PostgreSQL's network waits.
    async with open_store(SqliteBackend(tmp_path / "z.db"), clock=wall_clock, linger=10.0) as store:
        started = trio.current_time()
        with pytest.raises(StoreUnavailable, match="it was not written") as refused:
            await store.upsert_tenant("late", "Late", timeout=1.5)
        assert trio.current_time() - started == 1.5
        assert refused.value.outcome_unknown is False
        assert await store.list_tenants() == []


async def test_an_earlier_deadline_moves_the_sweepers_alarm_forward_every_time(tmp_path, wall_clock, autojump_clock):
    # The writer keeps its own copy of the alarm's deadline (a float compare per write): it must
    # follow both a submit with an earlier deadline and the sweeper re-arming for the next one.
    # A (5 s) arms the alarm; B (1 s) moves it to 1 s; after B fires, the sweeper re-arms for
    # A at 5 s, and C (0.5 s, submitted at 1.25 s) must move it to 1.75 s again.
    async with open_store(SqliteBackend(tmp_path / "z.db"), clock=wall_clock, linger=10.0) as store:
        started = trio.current_time()
        answered: dict[str, float] = {}

        async def write(name: str, timeout: float, after: float = 0.0) -> None:
            await trio.sleep(after)
            with pytest.raises(StoreUnavailable):
                await store.upsert_tenant(name, name, timeout=timeout)
            answered[name] = trio.current_time() - started

        async with trio.open_nursery() as nursery:
            nursery.start_soon(write, "a", 5.0)
            await trio.sleep(0)
            nursery.start_soon(write, "b", 1.0)
            nursery.start_soon(write, "c", 0.5, 1.25)
        assert answered == {"b": 1.0, "c": 1.75, "a": 5.0}
