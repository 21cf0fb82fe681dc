"""Benchmark: fenced lock pairs through the Redis bus vs raw redis-py SET NX PX + DEL.

Usage: ``python -m bench.bus [--quick] [--workers N] [--seconds S] [--slice T]``

Starts a throwaway redis-server, then alternates timed rounds of
* ``lock``: ``bus.acquire(resource, ttl)`` + ``bus.release(token)`` (two Lua scripts: fencing
  counter, ownership check) through :class:`actors.bus.RedisBus`;
* ``raw``: ``SET key value NX PX ttl`` + ``DEL key`` with the same redis-py client, through the
  same trio-asyncio bridge (the baseline the seed's ticketLock used, minus its safety);
with ``--workers`` concurrent tasks, each on its own resource. Short slices of each alternate
so drift (other load on this shared machine) hits both sides alike; the rates are the means over
all slices, ``lock_ratio_median_slice`` the median of the per-slice-pair ratios. An in-memory bus
slice is reported for reference.

The last line of output is one JSON object: ``lock_ops_per_s`` and ``raw_lock_ops_per_s``
(acquire+release pairs per second), ``lock_ratio`` (lock / raw) and the run's parameters.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable

import trio

from actors.bus import Bus, MemoryBus, RedisBus, open_bus
from bench._redis import RedisServer

#: Lock TTL in the benchmark: far longer than a pair takes, so nothing expires mid-pair.
LOCK_TTL = 10.0

Pair = Callable[[int], Awaitable[None]]


async def timed_round(pair: Pair, workers: int, seconds: float) -> float:
    """Run ``pair(worker)`` in a loop on ``workers`` tasks for ``seconds``; pairs per second."""
    counts = [0] * workers
    deadline = trio.current_time() + seconds

    async def worker(index: int) -> None:
        while trio.current_time() < deadline:
            await pair(index)
            counts[index] += 1

    started = trio.current_time()
    async with trio.open_nursery() as nursery:
        for index in range(workers):
            nursery.start_soon(worker, index)
    return sum(counts) / (trio.current_time() - started)


def lock_pair(bus: Bus) -> Pair:
    async def pair(index: int) -> None:
        lock = await bus.acquire(f"bench:{index}", LOCK_TTL, owner="bench")
        if not await bus.release(lock):
            raise RuntimeError("release of a just-acquired lock failed")

    return pair


def raw_pair(bus: RedisBus) -> Pair:
    # the bus's own client and bridge: same pool, same asyncio loop, same aio_as_trio hop
    client, bridge = bus._client, bus._bridge

    async def pair(index: int) -> None:
        if not await bridge(client.set, f"raw:{index}", "bench", nx=True, px=int(LOCK_TTL * 1000)):
            raise RuntimeError("SET NX of a free key failed")
        await bridge(client.delete, f"raw:{index}")

    return pair


async def main(workers: int, seconds: float, slice_seconds: float) -> dict:
    """Alternate short lock/raw slices for ``seconds`` per side; rates from the summed slices."""
    server = RedisServer()
    await trio.to_thread.run_sync(server.start)
    try:
        async with open_bus(RedisBus(server.url)) as bus:
            await timed_round(lock_pair(bus), workers, slice_seconds)  # warm-up: pool, script cache
            await timed_round(raw_pair(bus), workers, slice_seconds)
            slices = max(1, round(seconds / slice_seconds))
            lock_rates, raw_rates = [], []
            for _ in range(slices):
                lock_rates.append(await timed_round(lock_pair(bus), workers, slice_seconds))
                raw_rates.append(await timed_round(raw_pair(bus), workers, slice_seconds))
        async with open_bus(MemoryBus()) as memory:
            memory_rate = await timed_round(lock_pair(memory), workers, slice_seconds)
    finally:
        await trio.to_thread.run_sync(server.close)
    lock_rate = sum(lock_rates) / slices
    raw_rate = sum(raw_rates) / slices
    ratios = sorted(lock / raw for lock, raw in zip(lock_rates, raw_rates))
    return {
        "lock_ops_per_s": round(lock_rate, 1),
        "raw_lock_ops_per_s": round(raw_rate, 1),
        "lock_ratio": round(lock_rate / raw_rate, 3),
        "lock_ratio_median_slice": round(ratios[len(ratios) // 2], 3),
        "memory_lock_ops_per_s": round(memory_rate, 1),
        "workers": workers,
        "seconds_per_side": round(slices * slice_seconds, 2),
        "slices": slices,
        "slice_seconds": slice_seconds,
        "unit": "acquire+release pairs per second",
    }


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter run (well under 45 s)")
    parser.add_argument("--workers", type=int, default=16, help="concurrent tasks (default 16)")
    parser.add_argument("--seconds", type=float, help="seconds measured per side (default 20, quick 8)")
    parser.add_argument("--slice", type=float, default=0.25, help="seconds per alternating slice (0.25)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse(sys.argv[1:])
    seconds = args.seconds or (8.0 if args.quick else 20.0)
    print(json.dumps(trio.run(main, args.workers, seconds, args.slice)))
