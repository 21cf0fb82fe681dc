"""Benchmark the simulated driver's journal append beside a busy trio thread: on trio's thread vs a thread hop.

    python -m bench.journal [--quick]

Why it exists: the inbound pipeline's latency with the journal on (``bench/pipeline.py``) was mostly
the trip of each frame through another thread. Under a busy trio thread every re-acquisition of the
GIL by another thread waits for the interpreter's switch interval (5 ms), so a hop costs several of
them however small the write. This measures that one effect without PostgreSQL or the simulator,
so it stays readable on a loaded machine.

SESSIONS tasks each journal a FRAME-message frame every FRAME_PERIOD seconds (1,000 msg/s in all)
into one shared journal (as the simulated driver does, ``simulated.journal``), and note its release
STORE_DELAY later (as the session's ack does); a task beside them keeps trio's thread busy in BUSY_SLICE
slices, as the pipeline's store and ticket actors do. Each append is timed from the frame's receipt to
the moment its messages could be forwarded:

- ``append_p50_ms`` / ``append_p99_ms``: the driver's way, :meth:`Journal.append` (one ``write()``) on
  trio's thread, then :meth:`Journal.sync_soon` (the syncer thread fsyncs within 5 ms);
- ``thread_p50_ms`` / ``thread_p99_ms``: the baseline, the same append through ``trio.to_thread``;
- ``ratio``: ``thread_p99_ms`` / ``append_p99_ms`` (the tail is what the pipeline's latency target meets).

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import trio

from actors.drivers._journal import Journal

SESSIONS = 40
FRAME = 5
FRAME_PERIOD = 0.2  # 40 sessions x 5 messages / 0.2 s = 1,000 msg/s
STORE_DELAY = 0.01
BUSY_SLICE = 0.002
PAYLOAD = json.dumps({"id": "3EB0C767D26A1D9A", "chat": "5511999990000@s.whatsapp.net", "text": "x" * 200}).encode()


async def _busy() -> None:
    while True:
        started = time.perf_counter()
        while time.perf_counter() - started < BUSY_SLICE:
            pass
        await trio.sleep(0)


async def measure(journal: Journal, frames: int, hop: bool) -> list[float]:
    """Receipt-to-forwardable seconds of every frame, appended on trio's thread or through a thread hop."""
    latencies: list[float] = []

    async def session(nursery: trio.Nursery, number: int) -> None:
        for frame in range(frames):
            await trio.sleep(FRAME_PERIOD)
            entries = [(f"{hop}-s{number}\x1fm{frame}-{k}", PAYLOAD) for k in range(FRAME)]
            started = time.perf_counter()
            if hop:
                await trio.to_thread.run_sync(journal.append, entries)
            else:
                journal.append(entries)
            journal.sync_soon()
            latencies.append(time.perf_counter() - started)
            nursery.start_soon(store, [mid for mid, _ in entries])

    async def store(ids: list[str]) -> None:
        await trio.sleep(STORE_DELAY)
        journal.release_soon(ids)

    async with trio.open_nursery() as outer:
        outer.start_soon(_busy)
        async with trio.open_nursery() as sessions:
            for number in range(SESSIONS):
                sessions.start_soon(session, sessions, number)
        outer.cancel_scope.cancel()
    return sorted(latencies)


def _ms(ordered: list[float], fraction: float) -> float:
    return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a shorter run (~20 s)")
    args = parser.parse_args()
    frames = 60 if args.quick else 300
    with tempfile.TemporaryDirectory(prefix="zapvisor-bench-journal-") as tmp:
        journal = Journal.open(Path(tmp) / "simulated.journal")
        try:
            direct = trio.run(measure, journal, frames, False)
            hop = trio.run(measure, journal, frames, True)
        finally:
            journal.close()
    result = {
        "append_p50_ms": _ms(direct, 0.5), "append_p99_ms": _ms(direct, 0.99),
        "thread_p50_ms": _ms(hop, 0.5), "thread_p99_ms": _ms(hop, 0.99),
        "ratio": round(_ms(hop, 0.99) / max(_ms(direct, 0.99), 0.001), 1),
        "msgs_per_s": SESSIONS * FRAME / FRAME_PERIOD, "frames": len(direct), "load": round(os.getloadavg()[0], 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
