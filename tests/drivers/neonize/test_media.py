"""Media crosses the daemon/worker pipes as files, and a worker whose pipe breaks ends itself.

Real workers and the real neonize library. WhatsApp's media servers are
unreachable here, so each transfer is followed as far as it can go: the bytes
reach neonize's ``Upload`` (whose error then names the missing media
connection), whatever their size - ``media.max_bytes``, and more than a frame
can hold. Spool files never outlive their call.
"""

from __future__ import annotations

import os
import struct

import pytest
import trio

from actors.drivers import Disconnected, DriverConnectError, MediaKind, MediaRef, NotConnectedError, OutboundMedia, RequestError
from actors.drivers.neonize import NeonizeDriver, WorkerDied
from actors.drivers.neonize._wire import MAX_FRAME_BYTES
from actors.drivers.neonize._worker import EXIT_PIPE_FAILURE
from config import load_settings

from .conftest import TEST_TIMEOUT_S, HangingProxy, next_event, open_pool, running

PEER = "5511988887777@s.whatsapp.net"


async def _connected(d: NeonizeDriver, proxy: HangingProxy) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(d.connect)
        await proxy.wait_accepted(proxy.accepted + 1)
        await d.inject(event="ConnectedEv", fields={"status": True})
    await next_event(d)


def _spooled(pool) -> list[str]:
    return os.listdir(os.path.dirname(pool.media_file()))


async def test_media_of_any_size_reaches_neonize_as_a_file(tmp_path, hanging_proxy):
    """whatsmeow's upload waits for the socket, held by the hanging dial: once the call is inside Go
    (past every check of ours), the dial is released and the upload fails for want of WhatsApp."""
    max_bytes = load_settings(env={"ZAPVISOR_MEDIA__MAX_BYTES": str(256 * 1024)}).media.max_bytes
    with trio.fail_after(TEST_TIMEOUT_S * 2):
        async with open_pool() as pool, running(NeonizeDriver("s1", pool, store=str(tmp_path / "s1.db"), proxy=hanging_proxy.url)) as d:
            # media.max_bytes, and more than any frame may carry.
            for size in (max_bytes, MAX_FRAME_BYTES + 1):
                await _connected(d, hanging_proxy)
                if size == max_bytes:  # a download reaches whatsmeow too, and leaves no file behind
                    with pytest.raises(RequestError, match="no url present"):
                        await d.download_media(MediaRef(ref="GgA=", kind=MediaKind.IMAGE, mimetype="image/jpeg"))
                    assert _spooled(pool) == []
                media = OutboundMedia(data=os.urandom(size), kind=MediaKind.DOCUMENT, mimetype="application/pdf", file_name="a.pdf")
                errors: list[Exception] = []

                async def send() -> None:
                    with pytest.raises((RequestError, NotConnectedError)) as caught:
                        await d.send_media(PEER, media, f"m{size}")
                    errors.append(caught.value)

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(send)
                    while (await pool.workers[0].call("stats"))["in_go"] == 0:
                        await trio.sleep(0.01)
                    assert len(_spooled(pool)) == 1  # the bytes are in a file, not in a frame
                    hanging_proxy.release()
                assert "media connections" in str(errors[0]), errors[0]  # whatsmeow's upload answered
                assert _spooled(pool) == []
                assert isinstance(await next_event(d), Disconnected)  # the released dial ended the connection
            assert pool.statistics().died == 0
            spool = os.path.dirname(pool.media_file())
        assert not os.path.exists(spool)  # removed with the pool


async def test_a_frame_the_writer_cannot_send_ends_the_worker_and_its_sessions_come_back(tmp_path, hanging_proxy):
    caption = "x" * (MAX_FRAME_BYTES // 2)  # fits a call frame; with its media reference, no event frame
    with trio.fail_after(TEST_TIMEOUT_S * 2):
        async with open_pool(clients_per_worker=2) as pool, trio.open_nursery() as nursery:
            failures: dict[str, BaseException] = {}

            async def run(driver: NeonizeDriver, *, task_status) -> None:
                try:
                    await driver.run(task_status=task_status)
                except WorkerDied as exc:
                    failures[driver.session_id] = exc

            poisoned = NeonizeDriver("poisoned", pool, store=str(tmp_path / "p.db"), proxy=hanging_proxy.url)
            mate = NeonizeDriver("mate", pool, store=str(tmp_path / "m.db"))
            for driver in (poisoned, mate):
                await nursery.start(run, driver)
            await _connected(poisoned, hanging_proxy)
            with pytest.raises(DriverConnectError):
                await mate.connect()
            doomed = poisoned.worker_pid
            assert mate.worker_pid == doomed
            try:
                await poisoned.inject(event="MessageEv", fields={
                    "Info": {"ID": "BIG", "Timestamp": 1_700_000_000_000, "MessageSource": {"Chat": {"User": "5511988887777", "Server": "s.whatsapp.net"}, "Sender": {"User": "5511988887777", "Server": "s.whatsapp.net"}}},
                    "Message": {"imageMessage": {"caption": caption, "mimetype": "image/jpeg"}},
                })
            except WorkerDied:
                pass  # the event frame went before the call's reply
            with trio.fail_after(TEST_TIMEOUT_S):
                while len(failures) < 2:
                    await trio.sleep(0.01)
            assert {name: (f.pid, f.returncode) for name, f in failures.items()} == {
                "poisoned": (doomed, EXIT_PIPE_FAILURE), "mate": (doomed, EXIT_PIPE_FAILURE)
            }
            hanging_proxy.release()
            async with running(NeonizeDriver("mate", pool, store=str(tmp_path / "m.db"))) as again:
                with pytest.raises(DriverConnectError):
                    await again.connect()
                assert again.worker_pid != doomed
            nursery.cancel_scope.cancel()


async def test_a_torn_frame_from_the_daemon_ends_the_worker(tmp_path):
    with trio.fail_after(TEST_TIMEOUT_S):
        async with open_pool() as pool, running(NeonizeDriver("s1", pool, store=str(tmp_path / "s1.db")), failures := []) as d:
            with pytest.raises(DriverConnectError):
                await d.connect()
            (worker,) = pool.workers
            async with worker.send_lock:
                await worker.process.stdin.send_all(struct.pack(">I", MAX_FRAME_BYTES + 1))
            with trio.fail_after(10):
                await worker.process.wait()
            assert worker.process.returncode == EXIT_PIPE_FAILURE
            while not failures:
                await trio.sleep(0.01)
            assert isinstance(failures[0], WorkerDied) and pool.statistics().died == 1
