"""Shared by the journal kill tests: a session-like consumer on the real store, and the "daemon" child.

The consumer does what the session actor does with inbound messages (store, *then*
``driver.ack``) on the real SQLite store, whose unique (session, WhatsApp id) makes a
replay of a stored message a no-op. ``python -m tests.drivers.neonize._journal_kit``
runs a stand-in daemon (worker pool, real ``NeonizeDriver``, real store, consumer)
that injects messages through neonize's real callback path and prints each id once
its callback returned, for the test to ``kill -9`` it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import attrs
import trio

from actors.drivers import Connected, DriverStateError, Message
from actors.drivers.neonize import NeonizeDriver, PoolSettings, WorkerPool
from actors.store import NewMessage, SqliteBackend, Store, open_store

SESSION = "s1"
TENANT = "acme"
PHONE = "5511999990000"
REOPEN_WINDOW = 3600.0


def message_fields(index: int) -> dict:
    """A ``MessageEv`` in protobuf JSON form: message ``J<index>`` from one of five contacts."""
    contact = {"User": f"55219000000{index % 5:02d}", "Server": "s.whatsapp.net"}
    return {
        "Info": {"ID": f"J{index:04d}", "Timestamp": 1_700_000_000_000 + index,
                 "MessageSource": {"Chat": contact, "Sender": contact}},
        "Message": {"conversation": f"message {index}"},
    }


async def prepare(store: Store) -> None:
    await store.upsert_tenant(TENANT, "Acme")
    await store.upsert_session(SESSION, TENANT, "desk")


@attrs.define(eq=False)
class Consumer:
    """Reads a driver's events; stores each run of messages, then acks it (unless paused)."""

    store: Store
    stored: set[str] = attrs.field(factory=set)
    connected: trio.Event = attrs.field(factory=trio.Event)
    hold_after: int | None = None  # stop storing once this many are stored (messages pile up unstored)
    store_without_ack: int = 0  # the last N stored before holding are not acked (a crash between)

    async def run(self, driver: NeonizeDriver) -> None:
        async for event in driver.events:
            if isinstance(event, Connected):
                self.connected.set()
            if not isinstance(event, Message):
                continue
            if self.hold_after is not None and len(self.stored) >= self.hold_after:
                continue  # held: never stored, never acked (journaled, in flight)
            contact, found = await self.store.open_conversation(TENANT, SESSION, event.sender_jid,
                                                                reopen_window=REOPEN_WINDOW)
            await self.store.insert_messages([NewMessage(
                tenant_id=TENANT, session_id=SESSION, wa_id=event.id, contact_id=contact.id,
                ticket_id=found.ticket.id, from_me=False, body=event.text, sent_at=event.timestamp)])
            self.stored.add(event.id)
            unacked_zone = self.hold_after is not None and len(self.stored) > self.hold_after - self.store_without_ack
            if not unacked_zone:
                await driver.ack(event.id)


async def connect(driver: NeonizeDriver, proxy_accepted, dials: int) -> None:
    """connect() through the hanging proxy, answered by an injected ``ConnectedEv``."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(driver.connect)
        await proxy_accepted(dials + 1)
        await driver.inject(event="ConnectedEv", fields={"status": True})


async def _child(directory: Path, proxy_url: str, total: int, hold_after: int) -> None:
    """The stand-in daemon: inject ``total`` messages, store ``hold_after``, then wait to be killed."""
    pool = WorkerPool(PoolSettings())
    async with trio.open_nursery() as nursery, open_store(SqliteBackend(directory / "store.sqlite3")) as store:
        await nursery.start(pool.run)
        await prepare(store)
        driver = NeonizeDriver(SESSION, pool, store=str(directory / "device.db"), proxy=proxy_url,
                               journal_dir=str(directory / "journal"))
        await nursery.start(driver.run)
        consumer = Consumer(store, hold_after=hold_after, store_without_ack=3)
        nursery.start_soon(consumer.run, driver)

        async with trio.open_nursery() as connecting:  # the proxy is the test's: retry until the dial binds
            connecting.start_soon(driver.connect)
            while True:
                try:
                    await driver.inject(event="ConnectedEv", fields={"status": True})
                    break
                except DriverStateError:  # connect() has not bound neonize's callbacks yet
                    await trio.sleep(0.05)
        await consumer.connected.wait()
        for index in range(total):
            await driver.inject(event="MessageEv", fields=message_fields(index))
            print(f"CALLBACK {message_fields(index)['Info']['ID']}", flush=True)
        while len(consumer.stored) < hold_after:
            await trio.sleep(0.01)
        print("READY", flush=True)
        await trio.sleep_forever()


if __name__ == "__main__":
    trio.run(_child, Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
