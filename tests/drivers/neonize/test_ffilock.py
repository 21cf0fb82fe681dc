"""The worker's lock around Go: starts/stops exclude calls, but never wait for a slow call to finish."""

import threading
import time

from actors.drivers.neonize._ffilock import READER_SETTLE_S, FfiLock


def test_a_writer_waits_for_a_fresh_reader_but_not_for_a_slow_one():
    lock = FfiLock()
    reader_inside = threading.Event()
    release_reader = threading.Event()

    def slow_call() -> None:
        with lock.shared():
            reader_inside.set()
            release_reader.wait(30)

    reader = threading.Thread(target=slow_call)
    reader.start()
    reader_inside.wait(5)
    entered = time.monotonic()
    with lock.exclusive():
        waited = time.monotonic() - entered
        assert not release_reader.is_set()  # the slow call is still inside Go
    release_reader.set()
    reader.join(5)
    # It waited for the reader to be past its map lookup, and not much longer.
    assert READER_SETTLE_S * 0.9 <= waited < READER_SETTLE_S + 5


def test_writers_exclude_each_other_and_new_readers():
    lock = FfiLock()
    order: list[str] = []
    writer_inside = threading.Event()
    release_writer = threading.Event()

    def writer() -> None:
        with lock.exclusive():
            writer_inside.set()
            release_writer.wait(30)
            order.append("writer done")

    def reader() -> None:
        with lock.shared():
            order.append("reader in")

    w = threading.Thread(target=writer)
    w.start()
    writer_inside.wait(5)
    r = threading.Thread(target=reader)
    r.start()
    r.join(0.2)
    assert order == []  # the reader waits while the writer holds
    release_writer.set()
    w.join(5)
    r.join(5)
    assert order == ["writer done", "reader in"]
