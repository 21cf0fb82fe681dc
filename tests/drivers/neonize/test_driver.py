"""NeonizeDriver on real worker processes running the real neonize library (no WhatsApp reachable).

Events are built offline as protobuf JSON and fed, inside the worker, through
the client's real callback path (``NeonizeDriver.inject``); a hanging proxy
keeps the connection's Go call alive meanwhile (see ``conftest``).
"""

from __future__ import annotations

import os
import signal
import time

import pytest
import trio

from actors.drivers import (
    ClientOutdated,
    Connected,
    Disconnected,
    DriverConnectError,
    DriverStateError,
    KeepaliveLost,
    KeepaliveRestored,
    LidMapped,
    LoggedOut,
    Message,
    NotConnectedError,
    OfflineSyncDone,
    PairSuccess,
    Presence,
    PresenceState,
    Qr,
    Receipt,
    ReceiptKind,
    Replaced,
    TemporaryBan,
    Undecryptable,
)
from actors.drivers.neonize import NeonizeDriver, WorkerDied, WorkerStartError

from .conftest import TEST_TIMEOUT_S, HangingProxy, next_event, open_pool, running

PHONE = "5511999990000"
LID = "81234567890123"


def _jid(user: str, server: str = "s.whatsapp.net") -> dict:
    return {"User": user, "Server": server}


async def _connect_with(driver: NeonizeDriver, proxy: HangingProxy, **first_event) -> None:
    """connect() through the hanging proxy; it returns once ``first_event`` is fed to the worker."""
    dials = proxy.accepted
    async with trio.open_nursery() as nursery:
        nursery.start_soon(driver.connect)
        await proxy.wait_accepted(dials + 1)
        await driver.inject(**first_event)


async def test_connect_fails_at_the_dial_with_neonizes_reason(tmp_path):
    with trio.fail_after(TEST_TIMEOUT_S):
        async with open_pool() as pool, running(NeonizeDriver("s1", pool, store=str(tmp_path / "s1.db"))) as driver:
            with pytest.raises(DriverConnectError, match="failed to dial") as caught:
                await driver.connect()
            assert caught.value.code is None
            with pytest.raises(NotConnectedError):
                await driver.send_text(f"{PHONE}@s.whatsapp.net", "hi", "m1")
            assert driver.events.statistics().current_buffer_used == 0  # a failed connect emits nothing
            assert pool.statistics().workers == 1 and pool.statistics().clients == 1


async def test_events_from_the_real_callback_path_drive_connected_ban_logged_out(tmp_path, hanging_proxy):
    store = str(tmp_path / "s1.db")
    with trio.fail_after(TEST_TIMEOUT_S):
        async with open_pool() as pool, running(NeonizeDriver("s1", pool, store=store, proxy=hanging_proxy.url)) as d:
            await _connect_with(d, hanging_proxy, event="ConnectedEv", fields={"status": True})
            assert await next_event(d) == Connected(jid=None)
            with pytest.raises(DriverStateError, match="first QR"):
                await d.pair_phone(PHONE)  # a paired account shows no QR: nothing to pair
            # Bad input is refused by the worker, naming the field, before anything reaches Go.
            with pytest.raises(ValueError, match="to must be a JID"):
                await d.send_text("not-a-jid", "hi", "m1")
            with pytest.raises(ValueError, match="message_ids"):
                await d.mark_read(f"{PHONE}@s.whatsapp.net", ())
            with pytest.raises(ValueError, match="phone must be 8-15 digits"):
                await d.pair_phone("+55 11")

            await d.inject(
                event="MessageEv",
                fields={
                    "Info": {
                        "ID": "3EB0AA",
                        "Timestamp": 1_700_000_000_123,  # milliseconds, as neonize sends them
                        "Pushname": "Ana",
                        "MessageSource": {
                            "Chat": _jid(LID, "lid"),
                            "Sender": _jid(LID, "lid"),
                            "SenderAlt": _jid(PHONE),
                        },
                    },
                    "Message": {"conversation": "olá"},
                },
            )
            assert await next_event(d) == LidMapped(lid=f"{LID}@lid", pn=f"{PHONE}@s.whatsapp.net")  # the pair first
            message = await next_event(d)
            assert isinstance(message, Message)
            assert message.timestamp == pytest.approx(1_700_000_000.123)
            assert message.sender_jid == message.chat_jid == f"{PHONE}@s.whatsapp.net"
            assert (message.id, message.text, message.push_name, message.from_me) == ("3EB0AA", "olá", "Ana", False)

            await d.inject(
                event="ReceiptEv",
                fields={
                    "MessageSource": {"Chat": _jid(PHONE), "Sender": _jid(PHONE)},
                    "MessageIDs": ["A1", "A2"],
                    "Timestamp": 1_700_000_100,  # seconds
                    "Type": "READ",
                },
            )
            assert await next_event(d) == Receipt(
                message_ids=("A1", "A2"), chat_jid=f"{PHONE}@s.whatsapp.net", kind=ReceiptKind.READ, timestamp=1_700_000_100.0
            )

            before = time.time()
            await d.inject(event="TemporaryBanEv", fields={"Code": "BLOCKED_BY_USERS", "Expire": 3600})
            ban = await next_event(d)
            assert isinstance(ban, TemporaryBan) and ban.ban_code == 102 and ban.code == 402  # WhatsApp's code
            assert before + 3600 <= ban.expires_at <= time.time() + 3600
            # The ban ended the connection: nothing more comes from it, and requests are refused.
            await d.inject(event="KeepAliveTimeoutEv", fields={"ErrorCount": 1})
            with pytest.raises(NotConnectedError):
                await d.probe()

            hanging_proxy.release()  # the first connection's Go call returns; a second one can start
            await _connect_with(d, hanging_proxy, event="ConnectedEv", fields={"status": True})
            assert await next_event(d) == Connected(jid=None)  # not the keepalive of the ended connection
            await d.inject(event="KeepAliveTimeoutEv", fields={"ErrorCount": 2})
            assert await next_event(d) == KeepaliveLost(error_count=2)
            await d.inject(event="LoggedOutEv", fields={"OnConnect": False, "Reason": "LOGGED_OUT"})
            assert await next_event(d) == LoggedOut(reason="logged_out", code=401)
            hanging_proxy.release()


async def test_qr_limit_stops_the_client_and_pairing_waits_for_the_first_qr(tmp_path, hanging_proxy):
    with trio.fail_after(TEST_TIMEOUT_S):
        async with open_pool() as pool:
            driver = NeonizeDriver("s1", pool, store=str(tmp_path / "s1.db"), qr_limit=2, proxy=hanging_proxy.url)
            async with running(driver) as d:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(d.connect)
                    await hanging_proxy.wait_accepted(1)
                    with pytest.raises(NotConnectedError):
                        await d.pair_phone(PHONE)  # connect() has not returned: nothing is open yet
                    await d.inject(qr="2@first,code")
                first = await next_event(d)
                assert isinstance(first, Qr) and (first.code, first.index) == ("2@first,code", 1)
                assert first.expires_at == pytest.approx(time.time() + 60, abs=5)
                await d.inject(qr="2@second,code")
                second = await next_event(d)
                assert isinstance(second, Qr) and second.index == 2
                await d.inject(qr="2@third,code")
                ended = await next_event(d)
                assert isinstance(ended, Disconnected) and ended.code == 408 and "QR limit" in ended.reason
                hanging_proxy.release()


async def _capture_failure(driver: NeonizeDriver, failures: list[BaseException], *, task_status) -> None:
    try:
        await driver.run(task_status=task_status)
    except WorkerDied as exc:
        failures.append(exc)


@pytest.mark.parametrize("death", [signal.SIGKILL, signal.SIGABRT], ids=["SIGKILL", "SIGABRT"])
async def test_a_dead_worker_fails_only_its_sessions_which_restart_on_a_new_worker(tmp_path, hanging_proxy, death):
    with trio.fail_after(TEST_TIMEOUT_S):
        async with open_pool(clients_per_worker=1) as pool, trio.open_nursery() as nursery:
            doomed_failures: list[BaseException] = []
            doomed = NeonizeDriver("doomed", pool, store=str(tmp_path / "doomed.db"), proxy=hanging_proxy.url)
            await nursery.start(_capture_failure, doomed, doomed_failures)
            survivor_failures: list[BaseException] = []
            survivor = NeonizeDriver("survivor", pool, store=str(tmp_path / "survivor.db"))
            await nursery.start(_capture_failure, survivor, survivor_failures)
            with pytest.raises(DriverConnectError):
                await survivor.connect()

            connect_error: list[BaseException] = []

            async def connect_doomed() -> None:
                try:
                    await doomed.connect()
                except WorkerDied as exc:
                    connect_error.append(exc)

            nursery.start_soon(connect_doomed)
            await hanging_proxy.wait_accepted(1)  # the doomed session's connect() is in flight
            doomed_pid, survivor_pid = doomed.worker_pid, survivor.worker_pid
            assert doomed_pid != survivor_pid
            os.kill(doomed_pid, death)  # SIGABRT is how a Go fatal error ends the process
            while not (doomed_failures and connect_error):
                await trio.sleep(0.01)

            for died in (doomed_failures[0], connect_error[0]):
                assert isinstance(died, WorkerDied) and died.restart_immediately
                assert (died.pid, died.returncode) == (doomed_pid, -death)
            assert pool.statistics().died == 1
            # The other worker's session is untouched and still served by its worker.
            with pytest.raises(DriverConnectError, match="failed to dial"):
                await survivor.connect()
            assert survivor.worker_pid == survivor_pid and not survivor_failures

            # The failed session restarts (a new driver, as its supervisor would make) on a fresh worker.
            async with running(NeonizeDriver("doomed", pool, store=str(tmp_path / "doomed.db"))) as again:
                with pytest.raises(DriverConnectError, match="failed to dial"):
                    await again.connect()
                assert again.worker_pid not in (doomed_pid, survivor_pid)
            hanging_proxy.release()
            nursery.cancel_scope.cancel()


async def test_a_worker_is_recycled_after_max_connect_cycles(tmp_path):
    with trio.fail_after(TEST_TIMEOUT_S):
        async with open_pool(clients_per_worker=2, max_connect_cycles=2) as pool:
            async with running(NeonizeDriver("s1", pool, store=str(tmp_path / "s1.db"))) as driver:
                fds = []
                for _ in range(2):
                    with pytest.raises(DriverConnectError):
                        await driver.connect()
                    fds.append((await pool.workers[0].call("stats"))["fds"])
                assert fds[1] > fds[0]  # neonize leaks a descriptor per connect: why workers are recycled
                first = pool.workers[0]
                assert first.draining and pool.statistics().draining == 1

                with pytest.raises(DriverConnectError):
                    await driver.connect()  # moves to a fresh worker; the drained one retires
                assert driver.worker_pid != first.pid
                with trio.fail_after(10):
                    await first.process.wait()
                assert first.process.returncode == 0
                stats = pool.statistics()
                assert (stats.workers, stats.retired, stats.died, stats.clients) == (1, 1, 0, 1)


async def test_connect_gives_up_when_whatsapp_never_answers(tmp_path, hanging_proxy):
    with trio.fail_after(TEST_TIMEOUT_S):
        async with open_pool() as pool:
            driver = NeonizeDriver("s1", pool, store=str(tmp_path / "s1.db"), proxy=hanging_proxy.url, connect_timeout=1.0)
            async with running(driver) as d, trio.open_nursery() as nursery:
                failure: list[BaseException] = []

                async def first_connect() -> None:
                    try:
                        await d.connect()
                    except DriverConnectError as exc:
                        failure.append(exc)

                nursery.start_soon(first_connect)
                await hanging_proxy.wait_accepted(1)
                with pytest.raises(DriverStateError, match="open or opening"):
                    await d.connect()
                started = trio.current_time()
                while not failure:
                    await trio.sleep(0.05)
                assert "no answer from WhatsApp within 1.0 s" in str(failure[0])
                assert trio.current_time() - started <= 1.5
                # Its dial still hangs in Go (Stop cannot cut it short): a new connect fails, retryably.
                d.connect_timeout = 10.0  # longer than the worker's wait for the old dial
                with pytest.raises(DriverConnectError, match="still closing"):
                    await d.connect()
                hanging_proxy.release()  # the old dial fails; the next connection may start
                await _connect_with(d, hanging_proxy, event="ConnectedEv", fields={"status": True})
                assert await next_event(d) == Connected(jid=None)
                hanging_proxy.release()


async def test_credentials_can_live_in_postgresql(postgres_dsn):
    import psycopg  # the test's own view of the database; the driver never touches it directly

    with trio.fail_after(TEST_TIMEOUT_S):
        async with open_pool() as pool, running(NeonizeDriver("s1", pool, store=postgres_dsn)) as driver:
            with pytest.raises(DriverConnectError, match="failed to dial"):
                await driver.connect()  # the store opened and migrated: only the network is missing

    def whatsmeow_tables() -> int:
        with psycopg.connect(postgres_dsn) as conn:
            query = "SELECT count(*) FROM information_schema.tables WHERE table_name LIKE 'whatsmeow%'"
            return conn.execute(query).fetchone()[0]

    assert await trio.to_thread.run_sync(whatsmeow_tables) > 0


ENDINGS = [
    ("StreamReplacedEv", {}, Replaced()),
    ("ClientOutdatedEv", {}, ClientOutdated()),
    ("DisconnectedEv", {"status": False}, Disconnected(code=None, reason="stream closed")),
    ("StreamErrorEv", {"Code": "503"}, Disconnected(code=503, reason="stream error 503")),
    ("LoggedOutEv", {"OnConnect": True, "Reason": "MAIN_DEVICE_GONE"}, LoggedOut(reason="main_device_gone (on connect)", code=403)),
    ("LoggedOutEv", {"OnConnect": False, "Reason": "UNKNOWN_LOGOUT"}, LoggedOut(reason="unknown_logout", code=406)),
    ("ConnectFailureEv", {"Reason": "GENERIC", "Message": "try later"}, Disconnected(code=400, reason="try later")),
    ("PairStatusEv", {"Status": "ERROR", "Error": "bad"}, Disconnected(code=None, reason="pairing failed: bad")),
]


async def test_every_neonize_event_maps_to_its_normalized_event(tmp_path, hanging_proxy):
    with trio.fail_after(TEST_TIMEOUT_S):
        async with open_pool() as pool, running(NeonizeDriver("s1", pool, store=str(tmp_path / "s1.db"), proxy=hanging_proxy.url)) as d:
            # A refusal as WhatsApp's first answer fails connect() with its code, and emits nothing.
            refused: list[DriverConnectError] = []

            async def refused_connect() -> None:
                with pytest.raises(DriverConnectError, match="try later") as caught:
                    await d.connect()
                refused.append(caught.value)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(refused_connect)
                await hanging_proxy.wait_accepted(1)
                await d.inject(event="ConnectFailureEv", fields={"Reason": "GENERIC", "Message": "try later"})
            assert refused[0].code == 400
            assert d.events.statistics().current_buffer_used == 0
            hanging_proxy.release()

            await _connect_with(d, hanging_proxy, event="ConnectedEv", fields={"status": True})
            assert await next_event(d) == Connected(jid=None)
            source = {"Chat": _jid("120363000000000000", "g.us"), "Sender": _jid(LID, "lid"), "SenderAlt": _jid(PHONE), "IsGroup": True}
            flowing = [
                ("KeepAliveRestoredEv", {}, KeepaliveRestored()),
                ("OfflineSyncCompletedEv", {"Count": 12}, OfflineSyncDone(count=12)),
                ("PairStatusEv", {"Status": "SUCCESS", "ID": _jid(PHONE)}, PairSuccess(jid=f"{PHONE}@s.whatsapp.net")),
                (
                    "UndecryptableMessageEv",
                    {"Info": {"ID": "U1", "Timestamp": 1_700_000_000_500, "MessageSource": source}, "IsUnavailable": True},
                    Undecryptable(id="U1", chat_jid="120363000000000000@g.us", sender_jid=f"{PHONE}@s.whatsapp.net", timestamp=1_700_000_000.5, is_unavailable=True),
                ),
                (
                    "ReceiptEv",
                    {"MessageSource": source, "MessageIDs": ["G1"], "Timestamp": 1_700_000_200, "Type": "DELIVERED"},
                    Receipt(message_ids=("G1",), chat_jid="120363000000000000@g.us", kind=ReceiptKind.DELIVERED, timestamp=1_700_000_200.0, sender_jid=f"{PHONE}@s.whatsapp.net"),
                ),
                ("ChatPresenceEv", {"MessageSource": source, "State": "COMPOSING", "Media": "AUDIO"}, Presence(jid=f"{PHONE}@s.whatsapp.net", state=PresenceState.RECORDING, chat_jid="120363000000000000@g.us")),
                ("PresenceEv", {"From": _jid(PHONE), "Unavailable": True, "LastSeen": 1_700_000_300}, Presence(jid=f"{PHONE}@s.whatsapp.net", state=PresenceState.UNAVAILABLE, last_seen=1_700_000_300.0)),
            ]
            for name, fields, expected in flowing:
                await d.inject(event=name, fields=fields)
                if name == "UndecryptableMessageEv":  # the first event naming the LID with its phone: the pair first
                    assert await next_event(d) == LidMapped(lid=f"{LID}@lid", pn=f"{PHONE}@s.whatsapp.net")
                assert await next_event(d) == expected, name
            await d.inject(event="ReceiptEv", fields={"MessageSource": source, "MessageIDs": ["G1"], "Type": "RETRY"})  # ignored
            await d.inject(event="StreamReplacedEv", fields={})
            assert await next_event(d) == Replaced()
            hanging_proxy.release()

            for name, fields, expected in ENDINGS:
                await _connect_with(d, hanging_proxy, event="ConnectedEv", fields={"status": True})
                assert await next_event(d) == Connected(jid=None)
                await d.inject(event=name, fields=fields)
                assert await next_event(d) == expected, name
                hanging_proxy.release()


async def test_many_clients_connecting_at_once_never_abort_their_worker(tmp_path):
    sessions, rounds = 8, 3
    with trio.fail_after(TEST_TIMEOUT_S):
        async with open_pool(clients_per_worker=sessions, max_connect_cycles=sessions * rounds + 1) as pool:
            drivers = [NeonizeDriver(f"s{i}", pool, store=str(tmp_path / f"s{i}.db")) for i in range(sessions)]
            async with trio.open_nursery() as nursery:
                for driver in drivers:
                    await nursery.start(driver.run)

                async def hammer(driver: NeonizeDriver) -> None:
                    for _ in range(rounds):
                        with pytest.raises(DriverConnectError, match="failed to dial"):
                            await driver.connect()

                async with trio.open_nursery() as hammers:
                    for driver in drivers:
                        hammers.start_soon(hammer, driver)
                stats = pool.statistics()
                assert (stats.workers, stats.died, stats.clients) == (1, 0, sessions)
                assert (await pool.workers[0].call("stats"))["connects"] == sessions * rounds
                nursery.cancel_scope.cancel()


async def test_a_worker_that_cannot_start_is_a_clear_error(tmp_path):
    with trio.fail_after(TEST_TIMEOUT_S):
        async with open_pool(python="/bin/false") as pool, running(NeonizeDriver("s1", pool, store=str(tmp_path / "s.db"))) as d:
            with pytest.raises(WorkerStartError, match="hello"):
                await d.connect()
            assert pool.statistics().workers == 0


async def test_logout_while_showing_qr_and_without_a_connection(tmp_path, hanging_proxy):
    store = tmp_path / "s1.db"
    with trio.fail_after(TEST_TIMEOUT_S):
        async with open_pool() as pool, running(NeonizeDriver("s1", pool, store=str(store), proxy=hanging_proxy.url)) as d:
            await _connect_with(d, hanging_proxy, qr="2@only,code")
            assert isinstance(await next_event(d), Qr)
            await d.logout()  # nothing paired yet: the connection just ends, as a logout
            assert await next_event(d) == LoggedOut(reason="logged out by zapvisor", local=True)
            hanging_proxy.release()

            assert store.exists()  # neonize created its store at the first connect
            await d.logout()  # no connection: only the stored credentials go
            assert not store.exists()
            assert d.events.statistics().current_buffer_used == 0
