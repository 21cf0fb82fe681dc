"""The status board: instant fan-out, debounced persistence, supervision mirroring."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from actors.sessions import SessionStatus, StatusBoard



@pytest.fixture
def clock():
    return trio.testing.MockClock(autojump_threshold=0)


async def test_subscribers_see_every_change_now_and_the_store_once_per_debounce(clock):
    written: list[tuple[float, tuple]] = []

    async def persist(batch):
        written.append((trio.current_time(), tuple((i.session_id, i.status) for i in batch)))

    board = StatusBoard(debounce=5.0, persist=persist)
    async with trio.open_nursery() as nursery:
        await nursery.start(board.run)
        with board.subscribe() as changes:
            for status in (SessionStatus.CONNECTING, SessionStatus.QR, SessionStatus.CONNECTED):
                board.set("s1", "t1", status)
            board.set("s2", "t1", SessionStatus.CONNECTING)
            seen = [changes.receive_nowait().status for _ in range(4)]
        assert seen == [SessionStatus.CONNECTING, SessionStatus.QR, SessionStatus.CONNECTED, SessionStatus.CONNECTING]
        await trio.sleep(6)
        nursery.cancel_scope.cancel()
    assert written[0] == (5.0, (("s1", SessionStatus.CONNECTED), ("s2", SessionStatus.CONNECTING)))
    assert board.statistics().writes == 1 and board.statistics().updates == 4


async def test_unchanged_status_is_not_an_event(clock):
    board = StatusBoard()
    first = board.set("s1", "t1", SessionStatus.CONNECTED, "connected")
    await trio.sleep(1)
    assert board.set("s1", "t1", SessionStatus.CONNECTED, "connected") is first
    assert board.statistics().updates == 1


async def test_failed_write_is_retried_and_nothing_is_lost(clock):
    calls = []

    async def flaky(batch):
        calls.append(len(batch))
        if len(calls) == 1:
            raise ConnectionError("store down")

    board = StatusBoard(debounce=1.0, persist=flaky)
    async with trio.open_nursery() as nursery:
        await nursery.start(board.run)
        board.set("s1", "t1", SessionStatus.CONNECTED)
        await trio.sleep(3)
        nursery.cancel_scope.cancel()
    assert calls == [1, 1]
    assert board.statistics().write_errors == 1 and board.statistics().rows_written == 1


async def test_slow_subscriber_is_dropped_and_never_blocks(clock):
    board = StatusBoard()
    slow = board.subscribe(buffer=2)
    for i in range(5):
        board.set(f"s{i}", "t1", SessionStatus.CONNECTED)
    assert board.statistics().dropped_subscribers == 1
    received = [info async for info in slow]
    assert len(received) == 2


async def test_pending_changes_are_flushed_on_shutdown(clock):
    written = []

    async def persist(batch):
        written.extend(batch)

    board = StatusBoard(debounce=60.0, persist=persist)
    async with trio.open_nursery() as nursery:
        await nursery.start(board.run)
        board.set("s1", "t1", SessionStatus.CONNECTED)
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert [i.session_id for i in written] == ["s1"]


async def test_jid_is_kept_across_changes_and_qr_is_not(clock):
    board = StatusBoard()
    board.set("s1", "t1", SessionStatus.QR, "QR 1/3", qr="code-1", qr_index=1)
    board.set("s1", "t1", SessionStatus.CONNECTED, "connected", jid="5511@s.whatsapp.net")
    info = board.set("s1", "t1", SessionStatus.DEGRADED, "probe failed")
    assert (info.jid, info.qr, info.qr_index) == ("5511@s.whatsapp.net", None, None)
