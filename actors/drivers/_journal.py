"""The inbound journal: a session's received-but-not-yet-stored messages, durable on our side of the FFI.

Why it exists. whatsmeow (real WhatsApp through neonize) sends the delivery
receipt for an inbound message as soon as neonize's Go handler has queued it,
before any Python code ran (DESIGN §9): from then on WhatsApp will never
deliver it again. Without a journal a crash of the worker or the daemon loses
everything receipted but not yet committed to our store. So each driver appends
every inbound message here *before* forwarding it to its session, and releases
it once the session's :meth:`~actors.drivers.Driver.ack` says the store has
committed it. Whatever is left when a driver starts (the worker or the daemon
died, the connection ended with messages in flight) is replayed before any new
event; the store's unique (session, WhatsApp id) turns a replay of something
already stored into a no-op.

The window that remains is *before* the append: on neonize, whatsmeow's
100-entry Go queue between its receipt and our callback; on the simulator in
its whatsmeow delivery mode, the frame between the driver's transport receipt
and the append. A kill -9 inside that window loses those messages (measured by
``tests/flows/test_kill9.py``; see README "Durability").

Format. An append-only file: one per session in a neonize worker
(``<dir>/<session>.journal``, :func:`journal_path`), one shared by a node's
simulated sessions (keys ``session<US>message id``, :func:`open_shared`). An
8-byte header, then records ``length (u32) | crc32 (u32) | kind (u8) | body``
(big endian; the CRC covers kind and body). An *entry* record's body is the
message id (u16 length + UTF-8) and an opaque payload (the driver's encoding
of the event); a *release* record's body is a list of ids (u16 length +
UTF-8 each). A torn or corrupt tail (a crash in the middle of a write) ends the
log: it is cut off when the journal is opened, and everything before it holds.

Durability. :meth:`Journal.append` is one ``write()`` (in the page cache: it
survives the death of the process, not of the machine); :meth:`Journal.sync`
``fsync``-s what was appended since the last sync, in group commits of bounded
latency: the neonize worker's converter thread syncs once per pass over what
queued meanwhile (at most ``CONVERT_GROUP`` events) before the pass's frames
leave; the process's :class:`Syncer` thread within ``SYNC_DELAY`` (5 ms) of an
append, without holding the messages back (a message already in the store
needs no fsync of ours). One fsync on this machine's ext4: 0.4 ms alone,
2.5 ms with 40 files syncing at once (16,000 fsyncs/s in all). Releases are
written but not synced: a release lost to a power cut only replays a stored
message, which the store ignores. For the same reason a sync whose entries were
all released since they were appended (stored within the window: light traffic
on a quick store) makes no fsync: it would protect nothing.

Compaction. Released entries are dead weight: once the file is larger than
``COMPACT_MIN_BYTES`` and four times the live entries, it is rewritten with
only the live ones (temporary file, fsync, atomic rename, directory fsync).
The cost is proportional to the live entries (a session holds at most a few
hundred unstored messages), paid once per ~MiB of traffic.

Threads. Every method is file I/O and thread-safe: the neonize worker calls it
from Go's callback threads, its converter thread and its call threads; the
simulated driver calls :meth:`Journal.append` on trio's thread. That one
exception to "no blocking call on an event loop's thread" is deliberate and
measured: the append is one ``write()`` of a frame's records (a few KB) into the
page cache, 0.1 ms at the median beside a busy trio thread, and the append lock
is never held across an fsync (a compaction holds it only to copy the records
appended during its own fsync and to rename, :meth:`Journal.compact`). Handing
the append to a thread instead costs a GIL round trip each way, and under a busy
trio thread each re-acquisition of the GIL by another thread waits for the
interpreter's switch interval (5 ms): measured on ``bench/pipeline.py``, a
thread's append took 20 ms at the median from receipt to forwarding, and its p99
reached 75-680 ms by load, most of the pipeline's latency at 1,000 msg/s (the
same span without a journal: 2.6 ms in the same run); ``bench/journal.py``
measures both ways.
:meth:`Journal.sync` and the rewrite of :meth:`Journal.compact` block for an
fsync: never on trio's thread (the :class:`Syncer` does them;
:meth:`Journal.sync_soon` and :meth:`Journal.release_soon` make no I/O).
One journal file has one writer: the driver of its session (the session's
ownership lease and the actor lifecycle ensure one at a time).
"""

from __future__ import annotations

import logging
import os
import re
import struct
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Final

import attrs

HEADER: Final = b"ZVJRNL1\n"
"""File magic and format version."""

COMPACT_MIN_BYTES: Final = 1 << 20
"""Below this size a journal is never rewritten: 1 MiB is ~3,000 messages, and
rewriting costs an fsync, a rename and a directory fsync."""

COMPACT_RATIO: Final = 4
"""Rewrite once the file is this many times its live entries: the rewrite copies
the live bytes, so its amortized cost stays under a third of the appends."""

_RECORD: Final = struct.Struct(">IIB")
_ID_LEN: Final = struct.Struct(">H")
_ENTRY: Final = 1
_RELEASE: Final = 2
_KIND_CRC: Final = {kind: zlib.crc32(bytes([kind])) for kind in (_ENTRY, _RELEASE)}
"""The CRC of each kind byte, which a record's CRC continues over its body (no kind + body copy)."""
_SAFE_NAME: Final = re.compile(r"[^A-Za-z0-9_.@:-]")

SYNC_DELAY: Final = 0.005
"""Longest wait between a change noted with :meth:`Journal.sync_soon` / :meth:`Journal.release_soon`
and the :class:`Syncer`'s pass that writes and fsyncs it: the group-commit window. Against power loss
a receipted message is exposed this long plus one fsync pass; against the death of the process not
at all (the append itself is in the page cache). One pass every 5 ms serves every journal of the
process (200 wake-ups per second in all, whatever the number of sessions)."""

log = logging.getLogger(__name__)


class JournalError(OSError):
    """A journal file that cannot be used (not a journal, unreadable)."""


def journal_path(directory: Path, session_id: str) -> Path:
    """The journal file of ``session_id`` under ``directory`` (unsafe characters replaced)."""
    return Path(directory) / f"{_SAFE_NAME.sub('_', session_id)}.journal"


def _encode_id(message_id: str) -> bytes:
    raw = message_id.encode()
    if not raw or len(raw) > 0xFFFF:
        raise ValueError(f"message id must be 1 to 65535 bytes, got {message_id!r}")
    return _ID_LEN.pack(len(raw)) + raw


def _record(kind: int, body: bytes) -> bytes:
    return _RECORD.pack(len(body), zlib.crc32(body, _KIND_CRC[kind]), kind) + body


def _entry(message_id: str, payload: bytes) -> bytes:
    return _record(_ENTRY, _encode_id(message_id) + payload)


def _entry_size(message_id: str, payload: bytes) -> int:
    """The length of :func:`_entry` ``(message_id, payload)`` without building it (no CRC)."""
    return _RECORD.size + _ID_LEN.size + len(message_id.encode()) + len(payload)


def _ids(body: bytes) -> list[str]:
    ids, offset = [], 0
    while offset < len(body):
        (size,) = _ID_LEN.unpack_from(body, offset)
        ids.append(body[offset + 2 : offset + 2 + size].decode())
        offset += 2 + size
    return ids


def _parse(data: bytes) -> tuple[OrderedDict[str, bytes], int]:
    """The live entries of a journal's bytes, and the length of its valid prefix."""
    live: OrderedDict[str, bytes] = OrderedDict()
    offset = len(HEADER)
    while offset + _RECORD.size <= len(data):
        size, crc, kind = _RECORD.unpack_from(data, offset)
        body = data[offset + _RECORD.size : offset + _RECORD.size + size]
        if len(body) < size or kind not in _KIND_CRC or zlib.crc32(body, _KIND_CRC[kind]) != crc:
            break  # a torn or corrupt tail: the log ends here
        try:
            if kind == _ENTRY:
                (id_size,) = _ID_LEN.unpack_from(body)
                message_id = body[2 : 2 + id_size].decode()
                live.setdefault(message_id, body[2 + id_size :])
            else:
                for message_id in _ids(body):
                    live.pop(message_id, None)
        except (struct.error, UnicodeDecodeError):
            break
        offset += _RECORD.size + size
    return live, offset


def read_pending(path: Path) -> list[tuple[str, bytes]]:
    """The live entries of the journal file at ``path``, read-only (no repair; ``[]`` if absent).

    For inspection (tests, operators) while its driver may be writing it: a
    record being written is seen as a torn tail and left out.
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    if not data.startswith(HEADER):
        return []
    return list(_parse(data)[0].items())


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@attrs.frozen
class JournalStats:
    """Counters of one journal since it was opened (``recovered``: live entries found at open)."""

    live: int
    recovered: int
    appended: int
    released: int
    syncs: int
    compactions: int
    torn_bytes: int
    size: int


@attrs.define(eq=False)
class Journal:
    """One session's inbound journal (see the module docstring). Build it with :meth:`open`."""

    path: Path
    _fd: int
    _live: OrderedDict[str, bytes]
    _size: int
    _live_bytes: int
    _recovered: int
    _torn_bytes: int
    _lock: threading.Lock = attrs.field(factory=threading.Lock)  # the fd, the live map, the counters
    _notes_lock: threading.Lock = attrs.field(factory=threading.Lock)  # only _notes: never held during I/O
    _notes: list[str] = attrs.field(factory=list)  # releases noted for the syncer
    _sync_lock: threading.Lock = attrs.field(factory=threading.Lock)  # one fsync or rewrite at a time
    _unsynced: set[str] = attrs.field(factory=set)  # live entries appended since the last fsync
    _appended: int = 0
    _released: int = 0
    _syncs: int = 0
    _compactions: int = 0

    @classmethod
    def open(cls, path: Path) -> Journal:
        """Open (or create) the journal at ``path``; a torn tail is cut off.

        Raises :class:`JournalError` when the file exists but is not a journal,
        ``OSError`` when it cannot be read or created.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            with open(fd, "rb", closefd=False) as stream:
                data = stream.read()
            if data and not data.startswith(HEADER) and len(data) >= len(HEADER):
                raise JournalError(f"{path} is not a zapvisor inbound journal")
            if len(data) < len(HEADER):  # new, or torn before its header was whole
                os.ftruncate(fd, 0)
                os.write(fd, HEADER)
                data = HEADER
            live, valid = _parse(data)
            if valid < len(data):
                os.ftruncate(fd, valid)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        live_bytes = sum(_entry_size(mid, payload) for mid, payload in live.items())
        return cls(path, fd, live, valid, live_bytes, len(live), len(data) - valid)

    def append(self, entries: Iterable[tuple[str, bytes]]) -> int:
        """Write entries (message id, payload) in one ``write()``; returns how many were new.

        An id already live is not written again (a re-delivery keeps its first
        place). Durable against process death on return; call :meth:`sync`
        for power loss. Raises ``ValueError`` for an empty or oversized id.
        """
        with self._lock:
            records = []
            for message_id, payload in entries:
                if message_id in self._live:
                    continue
                record = _entry(message_id, payload)
                self._live[message_id] = payload
                self._unsynced.add(message_id)
                self._live_bytes += len(record)
                records.append(record)
            if records:
                self._write(b"".join(records))
                self._appended += len(records)
            return len(records)

    def sync(self) -> None:
        """``fsync`` what was appended since the last sync, unless all of it was released since
        (stored: the store keeps it, and a lost release only replays it); else returns at once."""
        with self._sync_lock:
            with self._lock:
                if not self._unsynced:
                    return
                self._unsynced = set()
                fd = self._fd
            os.fsync(fd)  # outside the append lock: appends go on meanwhile
            with self._lock:
                self._syncs += 1

    def commit(self, entries: Iterable[tuple[str, bytes]]) -> int:
        """:meth:`append` then :meth:`sync`: one group commit. Returns how many entries were new."""
        count = self.append(entries)
        self.sync()
        return count

    def release(self, message_ids: Iterable[str]) -> int:
        """Drop stored messages from the journal; returns how many were live.

        Unknown ids are ignored (released before, or never journaled). May
        compact the file (see the module docstring).
        """
        with self._lock:
            released = [mid for mid in message_ids if mid in self._live]
            if not released:
                return 0
            for message_id in released:
                self._live_bytes -= _entry_size(message_id, self._live.pop(message_id))
                self._unsynced.discard(message_id)
            self._write(_record(_RELEASE, b"".join(_encode_id(mid) for mid in released)))
            self._released += len(released)
            due = self._size >= COMPACT_MIN_BYTES and self._size >= COMPACT_RATIO * self._live_bytes
        if due:
            self.compact()
        return len(released)

    def sync_soon(self) -> None:
        """Have the process's :class:`Syncer` fsync this journal within ``SYNC_DELAY`` (no I/O here)."""
        SYNCER.mark(self)

    def release_soon(self, message_ids: Iterable[str]) -> None:
        """Note a :meth:`release` for the syncer's next pass (no I/O here: safe on an event loop's thread).

        A noted release that never lands (the process died first) only replays a stored message.
        """
        with self._notes_lock:
            self._notes.extend(message_ids)
        SYNCER.mark(self)

    def flush(self) -> None:
        """Write the noted releases, then :meth:`sync` (the syncer's pass, and :meth:`close`)."""
        with self._notes_lock:
            notes, self._notes = self._notes, []
        if notes:
            self.release(notes)
        self.sync()

    def pending(self) -> list[tuple[str, bytes]]:
        """The live entries (journaled, not released nor noted for release), in the order they were appended."""
        with self._notes_lock:
            noted = set(self._notes)
        with self._lock:
            return [(mid, payload) for mid, payload in self._live.items() if mid not in noted]

    def compact(self) -> None:
        """Rewrite the file with the live entries only (atomic: a crash leaves the old or the new file).

        Appends go on during the rewrite and its fsync: the records written to the old file
        meanwhile are copied after the live entries, and only the last copy (what arrived
        during the fsync, a few records) and the rename hold the append lock.
        """
        with self._sync_lock:
            with self._lock:
                if self._fd < 0:
                    return
                body = HEADER + b"".join(_entry(mid, payload) for mid, payload in self._live.items())
                copied = self._size
            tmp = self.path.with_name(self.path.name + ".tmp")
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
            try:
                _write_all(fd, body)
                tail = self._copy_since(copied, fd)
                size, copied = len(body) + tail, copied + tail  # the next copy takes what follows
                os.fsync(fd)
                with self._lock:
                    size += self._copy_since(copied, fd)
                    os.replace(tmp, self.path)
                    # the last tail copy is not synced here: its entries are unsynced, the next sync's
                    old, self._fd, self._size = self._fd, fd, size
                    self._compactions += 1
            except BaseException:
                os.close(fd)
                raise
            os.close(old)
            _fsync_dir(self.path.parent)

    def _copy_since(self, offset: int, fd: int) -> int:
        """Append the current file's bytes from ``offset`` to its end (as the lock-free read saw it) to ``fd``."""
        end = self._size
        data = os.pread(self._fd, end - offset, offset) if end > offset else b""
        _write_all(fd, data)
        return len(data)

    def statistics(self) -> JournalStats:
        with self._lock:
            return JournalStats(
                live=len(self._live), recovered=self._recovered, appended=self._appended, released=self._released,
                syncs=self._syncs, compactions=self._compactions, torn_bytes=self._torn_bytes, size=self._size,
            )

    def close(self) -> None:
        """Write noted releases, sync and close the file (idempotent). Live entries stay for the next :meth:`open`."""
        if self._fd < 0:
            return
        self.flush()
        with self._sync_lock, self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def _write(self, data: bytes) -> None:
        if self._fd < 0:
            raise JournalError(f"{self.path}: the journal is closed")
        _write_all(self._fd, data)
        self._size += len(data)


@attrs.define(eq=False)
class Syncer:
    """One thread per process: fsyncs the journals marked dirty, and writes their noted releases,
    within ``delay`` of the first mark (a group commit across every journal of the process).

    Started on first use (a daemon thread; a process that dies leaves marked changes in the page
    cache, where only power loss threatens them). An error of one journal is logged, never fatal.
    """

    delay: float = SYNC_DELAY
    _lock: threading.Lock = attrs.field(factory=threading.Lock)
    _dirty: set[Journal] = attrs.field(factory=set)
    _wake: threading.Event = attrs.field(factory=threading.Event)
    _thread: threading.Thread | None = None

    def mark(self, journal: Journal) -> None:
        with self._lock:
            if journal in self._dirty:
                return  # already due in the coming pass
            self._dirty.add(journal)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="journal-syncer", daemon=True)
                self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(self.delay)  # a plain thread: the group-commit window, not an event loop's time
            with self._lock:
                self._wake.clear()
                dirty, self._dirty = self._dirty, set()
            for journal in dirty:
                try:
                    if journal._fd >= 0:
                        journal.flush()
                except OSError:
                    log.exception("journal %s: sync failed", journal.path)


SYNCER: Final = Syncer()
"""The process's syncer (see :class:`Syncer`)."""


_shared_lock = threading.Lock()
_shared: dict[Path, list] = {}  # path -> [journal, users]


def open_shared(path: Path) -> Journal:
    """The process's one :class:`Journal` at ``path``, opened on first use (blocking I/O: a thread).

    Several users (the simulated drivers of one node) share it; each calls :func:`close_shared`.
    """
    path = Path(path).resolve()
    with _shared_lock:
        entry = _shared.get(path)
        if entry is None:
            entry = _shared[path] = [Journal.open(path), 0]
        entry[1] += 1
        return entry[0]


def close_shared(journal: Journal) -> None:
    """Give up a use of a shared journal; the last one flushes and closes it (blocking I/O)."""
    with _shared_lock:
        entry = _shared.get(journal.path)
        if entry is None or entry[0] is not journal:
            return
        entry[1] -= 1
        if entry[1] > 0:
            journal.flush()
            return
        del _shared[journal.path]
    journal.close()
