"""A paired session reconnects as its whatsmeow device, again and again, on SQLite and PostgreSQL device stores.

Real worker processes, the real neonize library and a real whatsmeow device
store holding a device row (``devices.add_device``: the row a QR scan leaves).
whatsmeow resumes a device only by its full JID ``user:device@server``; before
this was kept, the second connect of every session named the bare
``user@server`` and aborted its worker with every co-hosted session. Each
connect here must reach the dial (which fails: no network) with the worker,
and a bystander session on it, alive.
"""

from __future__ import annotations

import os
import signal

import pytest
import trio

from actors.drivers import Connected, Disconnected, DriverConnectError, LoggedOut, PairSuccess
from actors.drivers.neonize import DeviceBook, NeonizeDriver, WorkerDied, WorkerPool
from bench._devices import add_device, devices

from .conftest import TEST_TIMEOUT_S, HangingProxy, MemoryDeviceBook, next_event, open_pool, running

PHONE = "5511999990000"
DEVICE = f"{PHONE}:12@s.whatsapp.net"
RECONNECTS = 10


@pytest.fixture(params=["sqlite", "postgres"])
def device_store(request: pytest.FixtureRequest, tmp_path) -> str:
    """neonize's store for session s1: a per-session SQLite file, or the shared PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "s1.db")
    return request.getfixturevalue("postgres_dsn")


async def _dial_fails(driver: NeonizeDriver) -> None:
    with pytest.raises(DriverConnectError, match="failed to dial"):
        await driver.connect()


async def _learn_device(pool: WorkerPool, store: str, book: DeviceBook, proxy: HangingProxy, *, via: str) -> None:
    """Session s1's first run: it pairs (``PairSuccess``) or connects (Go's ``Device`` message, then
    ``Connected``) through the real callback path, and its device JID lands in the book."""
    async with running(NeonizeDriver("s1", pool, store=store, proxy=proxy.url, devices=book)) as d:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(d.connect)
            await proxy.wait_accepted(proxy.accepted + 1)
            if via == "pair":
                await d.inject(qr="2@scan,me")
                await d.inject(event="PairStatusEv", fields={"Status": "SUCCESS", "ID": {"User": PHONE, "Device": 12, "Server": "s.whatsapp.net"}})
            else:
                await d.inject(event="Device", fields={"JID": {"User": PHONE, "Device": 12, "Server": "s.whatsapp.net"}})
                await d.inject(event="ConnectedEv", fields={"status": True})
        first = await next_event(d)
        if via == "pair":
            assert await next_event(d) == PairSuccess(jid=f"{PHONE}@s.whatsapp.net")
        else:
            assert first == Connected(jid=f"{PHONE}@s.whatsapp.net")
        assert await book.device_jid("s1") == DEVICE  # recorded before the event went on
        proxy.release()


@pytest.mark.parametrize("via", ["pair", "connected"])
async def test_every_later_connect_resumes_the_device_and_the_worker_and_a_bystander_survive(
    tmp_path, device_store, hanging_proxy, via
):
    book = MemoryDeviceBook()
    with trio.fail_after(TEST_TIMEOUT_S * 2):
        async with open_pool(clients_per_worker=2, max_connect_cycles=100) as pool:
            async with running(NeonizeDriver("bystander", pool, store=str(tmp_path / "b.db"))) as bystander:
                await _dial_fails(bystander)
                (worker,) = pool.workers
                async with running(NeonizeDriver("s1", pool, store=device_store)) as first:
                    await _dial_fails(first)  # neonize creates and migrates its tables
                add_device(device_store, DEVICE)
                await _learn_device(pool, device_store, book, hanging_proxy, via=via)

                # Later runs: each one a new driver, as the session's restarts make them.
                for attempt in range(RECONNECTS):
                    async with running(NeonizeDriver("s1", pool, store=device_store, devices=book)) as again:
                        await _dial_fails(again)
                        if attempt < 2:
                            await _dial_fails(again)  # and a reconnect within one run
                        assert again.worker_pid == worker.pid
                await _dial_fails(bystander)
                assert bystander.worker_pid == worker.pid
                assert pool.statistics().died == 0 and worker.dead is None
                assert book.jids["s1"] == DEVICE and devices(device_store).count(DEVICE) == 1

                # The bare JID is refused as bad input: it never reaches Go, which would abort.
                async with running(NeonizeDriver("s1", pool, store=device_store, jid=f"{PHONE}@s.whatsapp.net")) as bare:
                    with pytest.raises(ValueError, match="device JID"):
                        await bare.connect()
                assert pool.statistics().died == 0


async def test_a_remembered_device_gone_from_the_store_is_forgotten_not_resumed(tmp_path, device_store):
    """whatsmeow deletes a device by itself (logged out elsewhere): resuming it would abort the worker."""
    book = MemoryDeviceBook({"s1": DEVICE})
    with trio.fail_after(TEST_TIMEOUT_S):
        async with open_pool() as pool:
            async with running(NeonizeDriver("s1", pool, store=device_store)) as first:
                await _dial_fails(first)
            async with running(NeonizeDriver("s1", pool, store=device_store, devices=book)) as d:
                await _dial_fails(d)
                assert book.jids["s1"] is None  # pairs anew (a QR code) once WhatsApp is reachable
            assert pool.statistics().died == 0


async def test_logout_without_a_connection_wipes_the_device(tmp_path, device_store, hanging_proxy):
    book = MemoryDeviceBook()
    with trio.fail_after(TEST_TIMEOUT_S):
        async with open_pool() as pool:
            async with running(NeonizeDriver("s1", pool, store=device_store)) as first:
                await _dial_fails(first)
            add_device(device_store, DEVICE)
            if device_store.startswith("postgres"):
                add_device(device_store, "5511888880000:3@s.whatsapp.net")
            await _learn_device(pool, device_store, book, hanging_proxy, via="connected")
            async with running(NeonizeDriver("s1", pool, store=device_store, devices=book)) as d:
                await d.logout()
                assert book.jids["s1"] is None
            if device_store.startswith("postgres"):
                # The shared store: only this session's device goes.
                assert devices(device_store) == ["5511888880000:3@s.whatsapp.net"]
            else:
                assert not os.path.exists(device_store)


async def test_a_logged_out_device_is_forgotten_by_the_worker_and_the_book(tmp_path, hanging_proxy):
    store = str(tmp_path / "s1.db")
    book = MemoryDeviceBook()
    with trio.fail_after(TEST_TIMEOUT_S):
        async with open_pool() as pool:
            async with running(NeonizeDriver("s1", pool, store=store)) as first:
                await _dial_fails(first)
            add_device(store, DEVICE)
            await _learn_device(pool, store, book, hanging_proxy, via="connected")
            async with running(NeonizeDriver("s1", pool, store=store, proxy=hanging_proxy.url, devices=book)) as d:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(d.connect)
                    await hanging_proxy.wait_accepted(hanging_proxy.accepted + 1)
                    await d.inject(event="ConnectedEv", fields={"status": True})
                await next_event(d)
                await d.inject(event="LoggedOutEv", fields={"OnConnect": False, "Reason": "LOGGED_OUT"})
                assert await next_event(d) == LoggedOut(reason="logged_out", code=401)
                assert book.jids["s1"] is None  # whatsmeow deletes the device on LoggedOut
                hanging_proxy.release()


async def test_a_worker_aborting_fails_only_its_sessions_which_resume_their_devices_on_a_fresh_worker(tmp_path):
    book = MemoryDeviceBook()
    stores = {name: str(tmp_path / f"{name}.db") for name in ("a", "b", "other")}
    with trio.fail_after(TEST_TIMEOUT_S * 2):
        async with open_pool(clients_per_worker=2) as pool, trio.open_nursery() as nursery:
            for index, name in enumerate(("a", "b")):
                async with running(NeonizeDriver(name, pool, store=stores[name])) as first:
                    await _dial_fails(first)
                add_device(stores[name], f"55119999900{index:02d}:4@s.whatsapp.net")
                book.jids[name] = f"55119999900{index:02d}:4@s.whatsapp.net"
            failures: dict[str, BaseException] = {}

            async def run(driver: NeonizeDriver, *, task_status) -> None:
                try:
                    await driver.run(task_status=task_status)
                except WorkerDied as exc:
                    failures[driver.session_id] = exc

            drivers = {name: NeonizeDriver(name, pool, store=stores[name], devices=book) for name in stores}
            for name in ("a", "b", "other"):  # a and b share a worker, other gets its own
                await nursery.start(run, drivers[name])
                await _dial_fails(drivers[name])
            doomed = drivers["a"].worker_pid
            assert drivers["b"].worker_pid == doomed != drivers["other"].worker_pid
            os.kill(doomed, signal.SIGABRT)  # how a Go fatal error ends a worker
            while len(failures) < 2:
                await trio.sleep(0.01)
            assert set(failures) == {"a", "b"}
            assert all(f.restart_immediately and f.pid == doomed for f in failures.values())
            await _dial_fails(drivers["other"])  # untouched
            for name in ("a", "b"):  # restarted: new drivers, a fresh worker, their own devices
                async with running(NeonizeDriver(name, pool, store=stores[name], devices=book)) as again:
                    await _dial_fails(again)
                    assert again.worker_pid != doomed
            assert pool.statistics().died == 1
            assert book.jids == {"a": "5511999990000:4@s.whatsapp.net", "b": "5511999990001:4@s.whatsapp.net"}
            nursery.cancel_scope.cancel()


async def test_a_session_restarted_on_another_node_resumes_its_device_from_postgresql(postgres_dsn, hanging_proxy):
    """Two nodes share one PostgreSQL: the store (sessions.device_jid) and neonize's device store.
    Node A's session learns its device; node B, with its own store connection and workers, resumes it."""
    from actors.node._node import StoreDeviceBook
    from actors.store import PostgresBackend, open_store

    with trio.fail_after(TEST_TIMEOUT_S * 2):
        async with open_store(PostgresBackend(postgres_dsn)) as store_a:
            await store_a.upsert_tenant("t1", "T1")
            await store_a.upsert_session("s1", "t1", "main")
            async with open_pool() as pool_a:
                async with running(NeonizeDriver("s1", pool_a, store=postgres_dsn)) as first:
                    await _dial_fails(first)  # neonize's tables, beside zapvisor's
                add_device(postgres_dsn, DEVICE)
                await _learn_device(pool_a, postgres_dsn, StoreDeviceBook(store_a), hanging_proxy, via="connected")
        async with open_store(PostgresBackend(postgres_dsn)) as store_b, open_pool() as pool_b:
            assert (await store_b.get_session("s1")).device_jid == DEVICE
            async with running(NeonizeDriver("s1", pool_b, store=postgres_dsn, devices=StoreDeviceBook(store_b))) as d:
                for _ in range(3):
                    await _dial_fails(d)
                assert d.jid == DEVICE  # resumed, not a new device (which would have shown a QR code)
            assert (await store_b.get_session("s1")).device_jid == DEVICE
            assert pool_b.statistics().died == 0 and devices(postgres_dsn) == [DEVICE]


class FlakyBook(MemoryDeviceBook):
    """A book whose first write fails (a store outage)."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    async def set_device_jid(self, session_id: str, jid: str | None) -> None:
        if not self.failed:
            self.failed = True
            raise OSError("the store is unreachable")
        await super().set_device_jid(session_id, jid)


async def test_a_device_the_book_failed_to_record_is_recorded_at_the_next_connected(tmp_path, hanging_proxy):
    store = str(tmp_path / "s1.db")
    book = FlakyBook()
    with trio.fail_after(TEST_TIMEOUT_S):
        async with open_pool() as pool:
            async with running(NeonizeDriver("s1", pool, store=store)) as first:
                await _dial_fails(first)
            add_device(store, DEVICE)
            async with running(NeonizeDriver("s1", pool, store=store, proxy=hanging_proxy.url, devices=book)) as d:
                for _ in range(2):
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(d.connect)
                        await hanging_proxy.wait_accepted(hanging_proxy.accepted + 1)
                        await d.inject(event="Device", fields={"JID": {"User": PHONE, "Device": 12, "Server": "s.whatsapp.net"}})
                        await d.inject(event="ConnectedEv", fields={"status": True})
                    assert isinstance(await next_event(d), Connected)  # the session goes on either way
                    hanging_proxy.release()
                    assert isinstance(await next_event(d), Disconnected)
            assert book.failed and book.jids == {"s1": DEVICE} and book.writes == [("s1", DEVICE)]


async def test_the_nodes_neonize_sessions_keep_their_device_in_the_sessions_row(tmp_path, hanging_proxy):
    """The node's driver factory: per-session SQLite credentials under data_dir/auth, the JID in the store."""
    from actors.node._node import StoreDeviceBook, _driver_factory
    from actors.store import SqliteBackend, open_store
    from config import load_settings

    settings = load_settings(env={"ZAPVISOR_NODE__DATA_DIR": str(tmp_path), "ZAPVISOR_SESSIONS__DRIVER": "neonize"})
    with trio.fail_after(TEST_TIMEOUT_S):
        async with open_store(SqliteBackend(tmp_path / "zapvisor.sqlite3")) as store, open_pool() as pool:
            await store.upsert_tenant("t1", "T1")
            await store.upsert_session("s1", "t1", "main")
            make = _driver_factory(settings, pool, store)
            first = make("s1")
            assert isinstance(first.devices, StoreDeviceBook) and first.store == str(tmp_path / "auth" / "s1.sqlite3")
            async with running(first):
                await _dial_fails(first)
            add_device(first.store, DEVICE)
            await _learn_device(pool, first.store, first.devices, hanging_proxy, via="connected")
            assert (await store.get_session("s1")).device_jid == DEVICE
            for _ in range(3):  # the session's next runs
                again = make("s1")
                async with running(again):
                    await _dial_fails(again)
                    assert again.jid == DEVICE
            assert pool.statistics().died == 0
