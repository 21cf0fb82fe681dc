"""The inbound journal of the neonize driver under kill -9, through neonize's real callback path.

whatsmeow receipts a message before neonize's callback runs, so nothing but our journal
can bring it back. Messages are built offline as protobuf events and fed through the
client's real callback (``NeonizeDriver.inject``): when ``inject`` returns, the callback
has run, i.e. whatsmeow would have receipted the message. The consumer stores on the real
SQLite store and acks (as the session does). After kill -9 of the worker, or of the
process hosting the driver (the daemon), a new driver replays the journal: every message
the callback received is stored exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import trio

from actors.drivers._journal import journal_path, read_pending
from actors.drivers.neonize import NeonizeDriver, WorkerDied
from actors.store import SqliteBackend, open_store

from ._journal_kit import SESSION, Consumer, connect, message_fields, prepare
from .conftest import TEST_TIMEOUT_S, open_pool

TOTAL = 60
HOLD_AFTER = 20  # stored before the consumer stops storing: the other 40 are in flight at the kill


async def _stored_ids(store) -> list[str]:
    tickets = await store.list_tickets("acme", limit=1000)
    return [m.wa_id for t in tickets for m in await store.list_messages(t.id, limit=1000)]


async def _replay_until_stored(pool, tmp_path, store, proxy, expected: set[str]) -> Consumer:
    """A new driver for the session (as the session actor makes after a failure) replays the journal."""
    driver = NeonizeDriver(SESSION, pool, store=str(tmp_path / "device.db"), proxy=proxy.url,
                           journal_dir=str(tmp_path / "journal"))
    consumer = Consumer(store)
    async with trio.open_nursery() as nursery:
        await nursery.start(driver.run)
        nursery.start_soon(consumer.run, driver)
        await connect(driver, proxy.wait_accepted, proxy.accepted)
        while not (expected <= set(await _stored_ids(store))
                   and not read_pending(journal_path(tmp_path / "journal", SESSION))):
            await trio.sleep(0.02)
        proxy.release()
        nursery.cancel_scope.cancel()
    return consumer


async def test_kill_9_of_the_worker_loses_nothing_the_callback_received(tmp_path, hanging_proxy):
    with trio.fail_after(TEST_TIMEOUT_S * 2):
        async with open_pool() as pool, open_store(SqliteBackend(tmp_path / "store.sqlite3")) as store:
            await prepare(store)
            driver = NeonizeDriver(SESSION, pool, store=str(tmp_path / "device.db"), proxy=hanging_proxy.url,
                                   journal_dir=str(tmp_path / "journal"))
            consumer = Consumer(store, hold_after=HOLD_AFTER, store_without_ack=3)
            received: list[str] = []
            died: list[BaseException] = []

            async def run_driver(*, task_status) -> None:
                try:
                    await driver.run(task_status=task_status)
                except WorkerDied as exc:
                    died.append(exc)

            async with trio.open_nursery() as nursery:
                await nursery.start(run_driver)
                nursery.start_soon(consumer.run, driver)
                await connect(driver, hanging_proxy.wait_accepted, 0)
                await consumer.connected.wait()
                for index in range(TOTAL):
                    await driver.inject(event="MessageEv", fields=message_fields(index))
                    received.append(message_fields(index)["Info"]["ID"])  # the callback has run
                while len(consumer.stored) < HOLD_AFTER:
                    await trio.sleep(0.01)
                in_flight = read_pending(journal_path(tmp_path / "journal", SESSION))
                os.kill(driver.worker_pid, signal.SIGKILL)
                while not died:
                    await trio.sleep(0.01)
                nursery.cancel_scope.cancel()
            # 40 never stored + 3 stored but never acked: journaled, unreleased at the kill.
            assert len(in_flight) == TOTAL - HOLD_AFTER + 3

            again = await _replay_until_stored(pool, tmp_path, store, hanging_proxy, set(received))
            stored = await _stored_ids(store)
            assert sorted(stored) == sorted(received)  # every message the callback got, exactly once
            assert {mid for mid, _ in in_flight} <= again.stored  # the replay brought the in-flight ones
            assert pool.statistics().died == 1


async def test_kill_9_of_the_daemon_loses_nothing_the_callback_received(tmp_path, hanging_proxy):
    """A child process plays the daemon (pool, driver, store, consumer) and is killed with SIGKILL;
    its worker exits at the EOF of its pipe. The test then restarts "the daemon" in-process."""
    command = [sys.executable, "-m", "tests.drivers.neonize._journal_kit", str(tmp_path), hanging_proxy.url,
               str(TOTAL), str(HOLD_AFTER)]
    with trio.fail_after(TEST_TIMEOUT_S * 2):
        child = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE, env=os.environ)
        received: list[str] = []
        buffer = b""
        try:
            while b"READY\n" not in buffer:
                chunk = await child.stdout.receive_some(1 << 16)
                assert chunk, f"the stand-in daemon exited early ({await child.wait()})"
                buffer += chunk
            received = [line.split()[1] for line in buffer.decode().splitlines() if line.startswith("CALLBACK ")]
            assert len(received) == TOTAL
            in_flight = read_pending(journal_path(tmp_path / "journal", SESSION))
        finally:
            child.kill()  # SIGKILL: no shutdown, no flush
            await child.wait()
        assert child.returncode == -signal.SIGKILL
        assert len(in_flight) == TOTAL - HOLD_AFTER + 3

        async with open_pool() as pool, open_store(SqliteBackend(tmp_path / "store.sqlite3")) as store:
            assert len(await _stored_ids(store)) == HOLD_AFTER  # what the killed daemon had committed
            await _replay_until_stored(pool, tmp_path, store, hanging_proxy, set(received))
            assert sorted(await _stored_ids(store)) == sorted(received)  # exactly once, none lost
