"""The C allocator under Python (glibc malloc): what it holds, and giving its free pages back.

CPython takes objects of up to 512 bytes from its own arenas (pymalloc) and everything larger
from ``malloc``: big dicts' and lists' tables, long strings, and every ``socket.recv``'s buffer.
``recv(65536)`` allocates 64 KiB and then shrinks the bytes object to what arrived, so glibc
splits the chunk and keeps the tail as a free hole just short of 64 KiB; the next receive needs
64 KiB again and takes it from the top of the heap as soon as a longer-lived allocation sits in
the hole. Under steady traffic (hypercorn, httpcore and trio all receive 64 KiB at a time) the
heap so fills with 8-60 KiB holes. Found with ``bench/soak.py``, ``malloc_info`` and heaptrack:
under churn the C heap's bytes in use stayed flat (``in_use`` below, ~21 MB) while the free bytes
inside it grew steadily (~0.6 MB a minute, the holes' sizes mostly 8-60 KiB), and RSS with them. glibc's ``free`` only returns the top of
the heap to the system; :func:`release_free_memory` (``malloc_trim(0)``) also hands back every
whole page inside those holes (``madvise``; they are faulted in again, zeroed, when reused).
``api/_gc.py`` calls it after each periodic full collection. Off glibc both are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util


class _Mallinfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2`` (every field a size_t)."""

    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


_LIBC = _libc()
_MALLINFO2 = getattr(_LIBC, "mallinfo2", None)  # glibc >= 2.33
_MALLOC_TRIM = getattr(_LIBC, "malloc_trim", None)
if _MALLINFO2 is not None:
    _MALLINFO2.restype = _Mallinfo2
if _MALLOC_TRIM is not None:
    _MALLOC_TRIM.argtypes, _MALLOC_TRIM.restype = [ctypes.c_size_t], ctypes.c_int


def malloc_stats() -> dict[str, int] | None:
    """glibc's view (``mallinfo2``, all arenas): ``arena`` bytes taken from the system for the
    heaps, ``in_use`` bytes handed out, ``free`` bytes held in them without being handed out
    (holes and the heap's top), ``mmapped`` large blocks; None off glibc. RSS growing with
    ``in_use`` is memory the process holds; with ``free``, memory the allocator holds."""
    if _MALLINFO2 is None:
        return None
    info = _MALLINFO2()
    return {"arena": info.arena, "in_use": info.uordblks, "free": info.fordblks, "mmapped": info.hblkhd}


def release_free_memory() -> bool:
    """Give the system back the whole free pages inside the C heap (``malloc_trim(0)``): a walk
    of the free lists and an ``madvise`` per hole, ~10 ms for 30 MB of new holes on the 2-core
    test machine, under a millisecond when few are new. True if anything went back."""
    return bool(_MALLOC_TRIM(0)) if _MALLOC_TRIM is not None else False
