"""The inbound journal (``actors.drivers._journal``) on real files: order, release, torn tails, compaction."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from actors.drivers._journal import COMPACT_MIN_BYTES, HEADER, Journal, JournalError, journal_path, read_pending


def _entries(count: int, prefix: str = "m", size: int = 40) -> list[tuple[str, bytes]]:
    return [(f"{prefix}{i}", f"payload {i} ".encode().ljust(size, b".")) for i in range(count)]


def test_pending_entries_replay_in_append_order_after_reopen(tmp_path):
    path = journal_path(tmp_path, "s/1")
    assert path.name == "s_1.journal"
    journal = Journal.open(path)
    assert journal.commit(_entries(5)) == 5
    assert journal.append([("m2", b"again"), ("x", b"new")]) == 1  # a live id keeps its first place
    journal.release(["m1", "m3", "unknown"])
    journal.close()

    again = Journal.open(path)
    assert again.pending() == [("m0", b"payload 0 ".ljust(40, b".")), ("m2", b"payload 2 ".ljust(40, b".")),
                               ("m4", b"payload 4 ".ljust(40, b".")), ("x", b"new")]
    stats = again.statistics()
    assert (stats.live, stats.recovered, stats.torn_bytes) == (4, 4, 0)
    again.close()


def test_a_released_id_can_be_journaled_again(tmp_path):
    journal = Journal.open(tmp_path / "s.journal")
    journal.commit([("a", b"1")])
    assert journal.release(["a"]) == 1 and journal.release(["a"]) == 0
    assert journal.commit([("a", b"2")]) == 1  # re-delivered after its release: live again
    journal.close()
    assert Journal.open(tmp_path / "s.journal").pending() == [("a", b"2")]


@pytest.mark.parametrize("cut", [1, 5, 9, 20])
def test_a_torn_tail_is_cut_off_and_everything_before_it_holds(tmp_path, cut):
    path = tmp_path / "s.journal"
    journal = Journal.open(path)
    journal.commit(_entries(3))
    whole = path.stat().st_size
    journal.commit([("last", b"z" * 30)])
    journal.close()
    size = path.stat().st_size
    os.truncate(path, size - cut)  # the crash hit the last write

    again = Journal.open(path)
    assert [mid for mid, _ in again.pending()] == ["m0", "m1", "m2"]
    assert again.statistics().torn_bytes == size - cut - whole
    assert path.stat().st_size == whole  # cut back to the last whole record
    again.commit([("after", b"ok")])  # and appending goes on from there
    again.close()
    assert [mid for mid, _ in Journal.open(path).pending()] == ["m0", "m1", "m2", "after"]


def test_a_corrupt_record_ends_the_log(tmp_path):
    path = tmp_path / "s.journal"
    journal = Journal.open(path)
    journal.commit(_entries(2))
    journal.close()
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # a flipped byte in the last record's payload: its CRC no longer matches
    path.write_bytes(bytes(data))
    assert [mid for mid, _ in Journal.open(path).pending()] == ["m0"]


def test_a_file_that_is_not_a_journal_is_refused(tmp_path):
    path = tmp_path / "s.journal"
    path.write_bytes(b"something else entirely")
    with pytest.raises(JournalError, match="not a zapvisor inbound journal"):
        Journal.open(path)
    short = tmp_path / "short.journal"
    short.write_bytes(HEADER[:3])  # torn before its header was whole: started afresh
    assert Journal.open(short).pending() == []


def test_compaction_keeps_the_file_bounded_and_the_live_entries(tmp_path):
    path = tmp_path / "s.journal"
    journal = Journal.open(path)
    payload = b"p" * 200
    for batch in range(80):  # ~80 x 100 x 220 bytes = 1.7 MiB appended
        ids = [f"b{batch}-{i}" for i in range(100)]
        journal.commit([(mid, payload) for mid in ids])
        journal.release(ids[:-1])  # one message of each batch stays unstored
    stats = journal.statistics()
    assert stats.compactions >= 1
    assert stats.size < COMPACT_MIN_BYTES + 100 * 300  # bounded: it never grew far past the threshold
    assert stats.live == 80
    journal.close()
    assert [mid for mid, _ in Journal.open(path).pending()] == [f"b{batch}-99" for batch in range(80)]
    assert not path.with_name(path.name + ".tmp").exists()


def test_appends_from_many_threads_are_whole_records(tmp_path):
    path = tmp_path / "s.journal"
    journal = Journal.open(path)

    def writer(prefix: str) -> None:
        for i in range(200):
            journal.append([(f"{prefix}{i}", b"x" * (i % 50))])
            if i % 10 == 0:
                journal.sync()

    threads = [threading.Thread(target=writer, args=(f"t{n}-",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    journal.close()
    pending = Journal.open(path).pending()
    assert len(pending) == 1600
    for n in range(8):  # each thread's entries in its own order
        mine = [mid for mid, _ in pending if mid.startswith(f"t{n}-")]
        assert mine == [f"t{n}-{i}" for i in range(200)]


def test_compactions_while_threads_append_and_release_keep_every_live_entry(tmp_path):
    """A compaction lets appends go on during its rewrite and fsync, and copies what they wrote
    after the live entries: whatever was appended and not released survives, in its order."""
    path = tmp_path / "s.journal"
    journal = Journal.open(path)
    writing = threading.Event()
    writing.set()

    def writer(prefix: str) -> None:
        for i in range(600):
            batch = [(f"{prefix}{i}-{k}", b"w" * 120) for k in range(5)]
            journal.append(batch)
            journal.release([mid for mid, _ in batch[1:]])  # the first of each batch stays live

    def compactor() -> None:
        while writing.is_set():
            journal.compact()

    threads = [threading.Thread(target=writer, args=(f"t{n}-",)) for n in range(4)]
    rewrites = threading.Thread(target=compactor)
    rewrites.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writing.clear()
    rewrites.join()
    assert journal.statistics().compactions >= 2
    expected = [mid for mid, _ in journal.pending()]
    journal.close()
    pending = [mid for mid, _ in Journal.open(path).pending()]
    assert pending == expected
    for n in range(4):
        assert [mid for mid in pending if mid.startswith(f"t{n}-")] == [f"t{n}-{i}-0" for i in range(600)]


def test_entries_appended_before_a_kill_9_are_there_after_it(tmp_path):
    """A real process appends (no fsync) and is killed by SIGKILL mid-stream: every append that
    returned is in the file (the page cache survives the process), the tail is whole or cut."""
    path = tmp_path / "s.journal"
    code = (
        "import os, sys\n"
        "from actors.drivers._journal import Journal\n"
        f"j = Journal.open({str(path)!r})\n"
        "i = 0\n"
        "while True:\n"
        "    j.append([(f'm{i}', b'y' * 100)])\n"
        "    print(i, flush=True)\n"
        "    i += 1\n"
        "    if i == 500: os.kill(os.getpid(), 9)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ)
    assert result.returncode == -9
    acknowledged = int(result.stdout.split()[-1])
    pending = [mid for mid, _ in Journal.open(path).pending()]
    assert pending[: acknowledged + 1] == [f"m{i}" for i in range(acknowledged + 1)]


def test_the_syncer_writes_noted_releases_and_fsyncs_within_its_window(tmp_path):
    journal = Journal.open(tmp_path / "s.journal")
    journal.append(_entries(3))
    journal.sync_soon()
    journal.release_soon(["m0", "m2"])  # no I/O here: the syncer's pass writes it
    deadline = time.monotonic() + 5.0  # real threads: generous, the window itself is 5 ms
    while journal.statistics().syncs < 1 or journal.statistics().released < 2:
        assert time.monotonic() < deadline, journal.statistics()
        time.sleep(0.005)
    assert [mid for mid, _ in read_pending(tmp_path / "s.journal")] == ["m1"]
    journal.release_soon(["m1"])
    journal.close()  # a noted release is written by close too
    assert read_pending(tmp_path / "s.journal") == []
    with pytest.raises(JournalError, match="closed"):
        journal.append([("late", b"x")])


def test_a_release_noted_for_the_syncer_is_not_pending_any_more(tmp_path):
    journal = Journal.open(tmp_path / "s.journal")
    journal.append(_entries(2))
    journal.release_soon(["m0"])
    assert [mid for mid, _ in journal.pending()] == ["m1"]  # before the syncer's pass wrote it
    journal.close()


def test_a_sync_makes_no_fsync_when_everything_appended_since_was_released(tmp_path):
    """An fsync protects unstored entries against power loss; entries released before the sync
    are stored (a lost release only replays them), so the sync skips the fsync: under light
    traffic most syncer passes find their messages stored, and each fsync delays the store's."""
    journal = Journal.open(tmp_path / "s.journal")
    journal.append(_entries(3))
    journal.release(["m0", "m1", "m2"])
    journal.sync()
    assert journal.statistics().syncs == 0
    journal.append(_entries(2, prefix="n"))
    journal.release(["n0"])  # n1 is not stored yet: it needs the fsync
    journal.sync()
    assert journal.statistics().syncs == 1
    journal.sync()  # nothing appended since
    assert journal.statistics().syncs == 1
    journal.close()
    assert [mid for mid, _ in read_pending(tmp_path / "s.journal")] == ["n1"]
