"""Benchmark the actor runtime against raw trio doing the same work, in one run.

Every figure comes with its baseline measured in the same process run, because
absolute times drift on shared machines; the ratios are what we hold ourselves to.
Memory figures are taken in fresh subprocesses so one measurement's garbage
does not inflate the next.

    python -m bench.actors [--quick]

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import statistics
import subprocess
import sys
import time

import psutil
import trio

from supervisor import (
    NO_BACKOFF,
    Actor,
    ChildSpec,
    Restart,
    open_actor_system,
)

TARGETS = {
    "tell_ratio": ">= 0.7",
    "ask_ratio": ">= 0.5",
    "restart_p99_ms": "< 2",
    "rss_ratio": "<= 2.0",
    "snapshot_10k_ms": "< 100",
}


class Counter(Actor):
    """Counts messages; sets ``done`` when it has seen ``expected``."""

    def __init__(self, expected: int, done: trio.Event) -> None:
        self.expected, self.done, self.seen = expected, done, 0

    async def receive(self, message):
        self.seen += 1
        if self.seen == self.expected:
            self.done.set()
        return message


class Idle(Actor):
    pass


class Crasher(Actor):
    """Crashes on request; records when each incarnation became ready."""

    ready_at: list[float] = []

    async def on_start(self):
        Crasher.ready_at.append(time.perf_counter())

    async def receive(self, message):
        raise RuntimeError("crash on request")


async def bench_tell(n: int) -> tuple[float, float]:
    done = trio.Event()
    async with open_actor_system([ChildSpec("counter", lambda: Counter(n, done))]) as system:
        ref = system.ref("/counter")
        start = time.perf_counter()
        for i in range(n):
            try:
                ref.tell(i)
            except Exception:  # MailboxFull: wait for room, like a producer should
                await ref.send(i)
        await done.wait()
        actor_rate = n / (time.perf_counter() - start)

    send, receive = trio.open_memory_channel(1000)
    raw_done = trio.Event()

    async def consumer():
        seen = 0
        async for _ in receive:
            seen += 1
            if seen == n:
                raw_done.set()
                return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        start = time.perf_counter()
        for i in range(n):
            try:
                send.send_nowait(i)
            except trio.WouldBlock:
                await send.send(i)
        await raw_done.wait()
        raw_rate = n / (time.perf_counter() - start)
    return actor_rate, raw_rate


async def bench_ask(n: int) -> tuple[float, float]:
    async with open_actor_system([ChildSpec("counter", lambda: Counter(-1, trio.Event()))]) as system:
        ref = system.ref("/counter")
        start = time.perf_counter()
        for i in range(n):
            await ref.ask(i)
        actor_rate = n / (time.perf_counter() - start)

    send, receive = trio.open_memory_channel(1000)

    async def server():
        async for message, reply in receive:
            reply[0] = message
            reply[1].set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server)
        start = time.perf_counter()
        for i in range(n):
            reply = [None, trio.Event()]
            await send.send((i, reply))
            await reply[1].wait()
        raw_rate = n / (time.perf_counter() - start)
        nursery.cancel_scope.cancel()
    return actor_rate, raw_rate


async def bench_restart(n: int) -> list[float]:
    """Crash → running again, no backoff: milliseconds per restart."""
    Crasher.ready_at = []
    spec = ChildSpec("crasher", Crasher, backoff=NO_BACKOFF)
    latencies = []
    async with open_actor_system([spec], intensity=n + 1, period=3600) as system:
        ref = system.ref("/crasher")
        for _ in range(n):
            seen = len(Crasher.ready_at)
            crashed_at = time.perf_counter()
            ref.tell("crash")
            while len(Crasher.ready_at) == seen:
                await trio.sleep(0)
            latencies.append((Crasher.ready_at[-1] - crashed_at) * 1000)
    return latencies


async def bench_spawn_and_snapshot(n: int) -> tuple[float, float]:
    async with open_actor_system([]) as system:
        root = system.supervisor("/")
        start = time.perf_counter()
        for i in range(n):
            await root.start_child(ChildSpec(f"a{i}", Idle, restart=Restart.TEMPORARY))
        spawn_s = time.perf_counter() - start
        start = time.perf_counter()
        tree = system.tree()
        snapshot_ms = (time.perf_counter() - start) * 1000
        assert len(tree.children) == n
    return spawn_s, snapshot_ms


async def rss_actors(n: int) -> float:
    process = psutil.Process()
    async with open_actor_system([]) as system:
        root = system.supervisor("/")
        gc.collect()
        before = process.memory_info().rss
        for i in range(n):
            await root.start_child(ChildSpec(f"a{i}", Idle, restart=Restart.TEMPORARY))
        gc.collect()
        return (process.memory_info().rss - before) / n / 1024


async def rss_raw_tasks(n: int) -> float:
    """A bare trio task waiting on its own memory channel: the floor an actor stands on."""
    process = psutil.Process()
    channels = []

    async def task(receive):
        async for _ in receive:
            pass

    async with trio.open_nursery() as nursery:
        gc.collect()
        before = process.memory_info().rss
        for _ in range(n):
            send, receive = trio.open_memory_channel(1000)
            channels.append(send)
            nursery.start_soon(task, receive)
        await trio.sleep(0.1)  # let every task start and park
        gc.collect()
        per_task = (process.memory_info().rss - before) / n / 1024
        nursery.cancel_scope.cancel()
    return per_task


def measure_in_subprocess(kind: str, n: int) -> float:
    out = subprocess.run(
        [sys.executable, "-m", "bench.actors", "--rss", kind, "--n", str(n)], check=True, capture_output=True, text=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


async def main(quick: bool) -> dict:
    messages = 100_000 if quick else 500_000
    asks = 20_000 if quick else 100_000
    restarts = 500 if quick else 2_000
    # Best of three rounds for throughput: the noise on a shared machine is one-sided.
    tell_pairs = [await bench_tell(messages) for _ in range(3)]
    ask_pairs = [await bench_ask(asks) for _ in range(3)]
    tell, raw_tell = max(p[0] for p in tell_pairs), max(p[1] for p in tell_pairs)
    ask, raw_ask = max(p[0] for p in ask_pairs), max(p[1] for p in ask_pairs)
    latencies = await bench_restart(restarts)
    spawn_s, snapshot_ms = await bench_spawn_and_snapshot(10_000)
    return {
        "tell_per_s": round(tell),
        "raw_channel_per_s": round(raw_tell),
        "tell_ratio": round(tell / raw_tell, 3),
        "ask_per_s": round(ask),
        "raw_request_reply_per_s": round(raw_ask),
        "ask_ratio": round(ask / raw_ask, 3),
        "restart_p50_ms": round(statistics.median(latencies), 3),
        "restart_p99_ms": round(percentile(latencies, 0.99), 3),
        "spawn_10k_s": round(spawn_s, 3),
        "snapshot_10k_ms": round(snapshot_ms, 2),
    }


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts; finishes in well under 45 s")
    parser.add_argument("--rss", choices=["actor", "raw"], help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=10_000, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss:
        print(trio.run(rss_actors if args.rss == "actor" else rss_raw_tasks, args.n))
        return
    started = time.perf_counter()
    result = trio.run(main, args.quick)
    rss_actor = statistics.median(measure_in_subprocess("actor", 10_000) for _ in range(3))
    rss_raw = statistics.median(measure_in_subprocess("raw", 10_000) for _ in range(3))
    result.update(
        rss_per_actor_kb=round(rss_actor, 2),
        raw_task_rss_kb=round(rss_raw, 2),
        rss_ratio=round(rss_actor / rss_raw, 3),
        quick=args.quick,
        wall_s=round(time.perf_counter() - started, 1),
        targets=TARGETS,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    cli()
