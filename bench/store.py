"""Benchmark the store's group commit against the raw drivers inserting the same rows, in one run.

    python -m bench.store [--quick]

For each backend: 100 concurrent writer tasks insert message rows through :class:`Store`
(each write awaited until COMMIT, as the inbound flow does), then the raw driver inserts the
same rows into a twin database with the same schema (asyncpg under a plain asyncio loop, see
:func:`plain_asyncio`; stdlib sqlite3). Commits are durable on both sides: PostgreSQL runs on disk with fsync on; SQLite is
WAL with ``synchronous=FULL`` (the store's default; ``sqlite_normal_*`` repeats it with NORMAL).

Two baselines, both measured here:
- ``*_raw_rows_per_s`` / ``*_ratio`` (the issue's figures): raw ``executemany`` of all rows in ONE
  transaction — one commit for everything.
- ``*_raw_same_commits_rows_per_s`` / ``*_ratio_same_commits``: raw ``executemany`` committing
  as often as the store did (its average batch size). With 100 writers each awaiting its own
  acknowledgement a batch can never exceed 100 rows, so the store must pay one durable commit
  per ≤100 rows; this baseline pays the same and isolates the store's own overhead.
``pg_copy_rows_per_s`` (COPY, not an INSERT) is context: the fastest bulk path there is. So is
``sqlite_raw_threaded_rows_per_s`` / ``sqlite_ratio_same_commits_threaded``: the same-commits
baseline with each transaction handed to a worker thread from trio (``trio.to_thread.run_sync``),
as a trio program must: it shows how much of SQLite's gap is that hop rather than the store.

Fairness: the raw PostgreSQL baselines run on a plain asyncio loop (:func:`plain_asyncio`; until
issue 18's third pass ``asyncio.run`` put them on trio-asyncio's loop, which flattered the store).
Both sides start from the same :class:`NewMessage` objects, so every raw baseline's
timing includes turning them into rows (the store's includes it too). The store and the
same-commits baseline alternate over :data:`ROUNDS` rounds (store, raw, store, raw), each into a
fresh database, and their times are summed: on a shared machine the load drifts within a run, and
one store phase followed by one raw phase would charge the drift to whichever ran second. Work
per row is not quite equal, in the raw side's favour: the store's INSERT also skips duplicates
(``ON CONFLICT DO NOTHING``) and hands back every new row's id (the idempotent insert its callers
rely on), and PostgreSQL's does it in one statement with its ticket and media side effects.

What bounds the headline ratios (measured with py-spy and per-phase timers, see the store's commit
history): with 100 writers each awaiting its own durable acknowledgement, the store must pay at
least rows/100 COMMITs (fsync on SQLite FULL / the WAL flush on PostgreSQL, plus one round trip
each), while the one-transaction baseline pays one. On this kind of machine a durable commit
costs about what inserting 100-200 rows does, so even a store with zero overhead lands near the
same-commits baseline's ratio (0.25-0.5 in our runs), below the issue's 0.6. What the store itself
adds is what ``*_ratio_same_commits`` shows: per batch, the trio side (waking and re-queueing
100 callers) and the thread/event-loop hand-offs — cheap on an idle machine, a few ms each when
the CPUs are oversubscribed. Running several times and reading the spread is part of the method:
shared machines move these figures by 2x between runs.

Where a batch's time goes (issue 18, cProfile, per-phase timers and callgrind): the trio side —
waking 100 callers, each validating and submitting its next write — is ~59k instructions per write
(callgrind, marginal between 2,000 and 4,000 writes through a backend that answers at once), of
which ~29k are trio's own: a bare loop of 100 tasks parking and being rescheduled by a writer costs
that much, the floor for a write awaited by its own task. It cannot overlap the database's work:
every caller of a batch waits for that batch, so the next one can only start once they have all
come back. Splitting the queue so that two half-batches overlap was measured and is slower here
(twice the commits, and no idle core to overlap on). Then the hand-off: for SQLite a thread hop per
batch (a bare ``trio.to_thread`` round trip is 60-100 us idle, 0.3-0.6 ms inside this bench at load
2-3); for PostgreSQL trio-asyncio, which runs one asyncio callback per trio scheduler pass (its loop
takes one handle per checkpoint): ~21 passes per batch (cProfile: 2,101 ``epoll`` polls for 101
batches; SQLite's batches take ~6), where the raw baseline's plain asyncio loop handles a round
trip's callbacks in one iteration. Each pass is a wake-up that waits for a CPU when the machine is
loaded. The store's own SQL costs a little more than the raw INSERT (it skips duplicates and returns ids):
per 100-row batch SQLite 1.1-1.25 vs 0.95-1.07 ms (same process), PostgreSQL 2.1-2.3 vs 2.1 ms
(BEGIN, statement, COMMIT on a plain asyncio loop; separate runs at load ~2).

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sqlite3
import sys
import tempfile
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import asyncpg
import trio

from actors.store import NewMessage, PostgresBackend, SqliteBackend, open_store
from bench._servers import PostgresServer

#: Issue 18's targets (the one-transaction ``*_ratio`` of issue 4 was the wrong comparison: see below).
TARGETS = {"pg_ratio_same_commits": ">= 0.7", "sqlite_ratio_same_commits": ">= 0.7", "pg_write_p99_ms": "< 20"}

#: Concurrent writer tasks: the issue's figure, a busy node's worth of session/ticket actors.
WRITERS = 100

#: Store/raw alternations per backend (see the module docstring): the rows are split between them.
ROUNDS = 2

_COLUMNS = (
    "tenant_id", "session_id", "wa_id", "contact_id", "ticket_id", "from_me", "body",
    "media_type", "status", "sent_at", "created_at",
)


def make_messages(count: int, tag: str) -> list[NewMessage]:
    """``count`` inbound text messages spread over 20 sessions, typical helpdesk-sized bodies."""
    return [
        NewMessage(
            tenant_id="bench", session_id=f"s{i % 20}", wa_id=f"{tag}{i:08d}", contact_id=1 + i % 500,
            ticket_id=None, from_me=False, body=f"message {i}: olá, preciso de ajuda com o pedido {i * 7}",
            sent_at=1_700_000_000.0 + i,
        )
        for i in range(count)
    ]


def raw_rows(messages: list[NewMessage]) -> list[tuple]:
    now = time.time()
    return [
        (m.tenant_id, m.session_id, m.wa_id, m.contact_id, m.ticket_id, int(m.from_me), m.body,
         m.media_type, str(m.status), m.sent_at, now)
        for m in messages
    ]


_RAW_INSERT = (
    f"INSERT INTO messages ({', '.join(_COLUMNS)}) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(_COLUMNS) + 1))})"
)


#: One message written before timing starts, on both sides (see :func:`through_store`).
WARM_UP = make_messages(1, "W")


async def through_store(backend, messages: list[NewMessage]) -> tuple[float, list[float], int]:
    """Insert ``messages`` from WRITERS tasks; returns (seconds, per-write latencies, transactions).

    One write (:data:`WARM_UP`) goes first, untimed, as on the raw side: a connection's first
    insert prepares its statement (PostgreSQL: 50-65 ms for the store's first batch, measured).
    Left in, that first batch's WRITERS latencies are 1 % of a round's: ``pg_write_p99_ms`` read
    the slowest write of the warm rounds, not their 99th percentile. Each write's latency is read
    with ``time.perf_counter`` (one C call; ``trio.current_time`` is three Python calls): the
    measuring stays out of the store's time, as the raw side measures none per row.
    """
    latencies: list[float] = []
    async with open_store(backend) as store:
        await store.insert_message(WARM_UP[0])
        shares = [messages[w::WRITERS] for w in range(WRITERS)]

        async def writer(share: list[NewMessage]) -> None:
            for message in share:
                started = time.perf_counter()
                await store.insert_message(message)
                latencies.append(time.perf_counter() - started)

        batches_before = store.statistics().batches
        started = trio.current_time()
        async with trio.open_nursery() as nursery:
            for share in shares:
                nursery.start_soon(writer, share)
        elapsed = trio.current_time() - started
        batches = store.statistics().batches - batches_before
        assert await store.count_messages() == len(messages) + len(WARM_UP)
    return elapsed, latencies, batches


async def migrate_only(backend) -> None:
    """Create the schema (the raw baselines insert into the same table definition)."""
    async with open_store(backend):
        pass


def plain_asyncio(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coro`` on a plain asyncio event loop, as an asyncio program runs asyncpg.

    Not ``asyncio.run``: importing trio_asyncio (the store's PostgreSQL backend does) swaps the
    event loop policy, after which ``asyncio.run`` runs on trio-asyncio's ``SyncTrioEventLoop`` — a
    trio loop in a greenlet, each asyncio callback a trio scheduler pass. The raw baselines ran on
    it until issue 18's review, paying part of the store's own trio-asyncio cost (0.1-0.3 ms per
    3-round-trip batch, measured), which flattered ``pg_ratio_same_commits``.
    """
    with asyncio.Runner(loop_factory=asyncio.SelectorEventLoop) as runner:
        return runner.run(coro)


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


def chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def bench_postgres(rows: int) -> dict:
    """Store vs asyncpg on a throwaway server on disk (fsync on)."""
    server = PostgresServer.create()  # system temp dir: on disk, a COMMIT's fsync is real
    share = rows // ROUNDS
    try:
        server.start()
        rounds = tuple(f"via_{side}{n}" for n in range(ROUNDS) for side in ("store", "batched"))
        for name in ("via_raw", "via_copy", *rounds):
            trio.run(migrate_only, PostgresBackend(server.create_database(name)))
        store_s, batched_s, latencies, batches = 0.0, 0.0, [], 0

        async def timed(database: str, work) -> float:
            conn = await asyncpg.connect(server.dsn(database))
            try:
                await conn.executemany(_RAW_INSERT, raw_rows(WARM_UP))  # untimed, as the store's
                started = time.perf_counter()
                await work(conn)
                return time.perf_counter() - started
            finally:
                await conn.close()

        def same_commits(messages: list[NewMessage], batch_size: int):
            async def work(conn) -> None:
                for chunk in chunks(messages, batch_size):
                    async with conn.transaction():
                        await conn.executemany(_RAW_INSERT, raw_rows(chunk))
            return work

        for n in range(ROUNDS):
            seconds, round_latencies, round_batches = trio.run(
                through_store, PostgresBackend(server.dsn(f"via_store{n}")), make_messages(share, f"S{n}")
            )
            store_s, batches = store_s + seconds, batches + round_batches
            latencies += round_latencies
            batch_size = max(1, round(share / round_batches))
            batched_s += plain_asyncio(timed(f"via_batched{n}", same_commits(make_messages(share, f"R{n}"), batch_size)))

        raw_messages = make_messages(rows, "R")

        async def one_transaction(conn) -> None:
            async with conn.transaction():
                await conn.executemany(_RAW_INSERT, raw_rows(raw_messages))

        async def copy(conn) -> None:
            await conn.copy_records_to_table("messages", records=raw_rows(raw_messages), columns=list(_COLUMNS))

        raw_s = plain_asyncio(timed("via_raw", one_transaction))
        copy_s = plain_asyncio(timed("via_copy", copy))
    finally:
        server.destroy()
    stored = share * ROUNDS
    return {
        "pg_rows_per_s": stored / store_s,
        "pg_raw_rows_per_s": rows / raw_s,
        "pg_ratio": (raw_s / rows) / (store_s / stored),
        "pg_write_p99_ms": p99(latencies) * 1000,
        "pg_avg_batch": stored / batches,
        "pg_raw_same_commits_rows_per_s": stored / batched_s,
        "pg_ratio_same_commits": batched_s / store_s,
        "pg_copy_rows_per_s": rows / copy_s,
    }


def sqlite_raw(
    path: Path, messages: list[NewMessage], synchronous: str, batch_size: int, *, threaded: bool = False
) -> float:
    """Seconds for sqlite3 executemany of ``messages``' rows in transactions of ``batch_size`` rows.

    ``threaded``: each transaction is one ``trio.to_thread.run_sync`` from a trio loop — the hop
    any trio program pays to keep the blocking driver off its event loop (context for the ratio:
    the plain baseline runs the driver on the calling thread, which a trio program may not).
    """
    trio.run(migrate_only, SqliteBackend(path))
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=not threaded)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    sql = _RAW_INSERT.replace("$", "?")

    def commit(chunk: list[NewMessage]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, raw_rows(chunk))
        conn.execute("COMMIT")

    commit(WARM_UP)  # untimed, as the store's (see through_store)

    async def from_trio() -> float:
        limiter = trio.CapacityLimiter(1)
        started = time.perf_counter()
        for chunk in chunks(messages, batch_size):
            await trio.to_thread.run_sync(commit, chunk, limiter=limiter)
        return time.perf_counter() - started

    if threaded:
        elapsed = trio.run(from_trio)
    else:
        started = time.perf_counter()
        for chunk in chunks(messages, batch_size):
            commit(chunk)
        elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def bench_sqlite(rows: int, workdir: Path, synchronous: str, prefix: str) -> dict:
    """Store vs sqlite3, both WAL with the given ``synchronous`` level."""
    share = rows // ROUNDS
    store_s, batched_s, threaded_s, latencies, batches = 0.0, 0.0, 0.0, [], 0
    for n in range(ROUNDS):
        seconds, round_latencies, round_batches = trio.run(
            through_store, SqliteBackend(workdir / f"{prefix}store{n}.db", synchronous=synchronous),
            make_messages(share, f"S{n}"),
        )
        store_s, batches = store_s + seconds, batches + round_batches
        latencies += round_latencies
        batch_size = max(1, round(share / round_batches))
        batched_s += sqlite_raw(workdir / f"{prefix}raw_batched{n}.db", make_messages(share, f"R{n}"), synchronous,
                                batch_size)
        threaded_s += sqlite_raw(workdir / f"{prefix}raw_threaded{n}.db", make_messages(share, f"T{n}"),
                                 synchronous, batch_size, threaded=True)
    raw_messages = make_messages(rows, "R")
    raw_s = sqlite_raw(workdir / f"{prefix}raw.db", raw_messages, synchronous, len(raw_messages))
    stored = share * ROUNDS
    return {
        f"{prefix}rows_per_s": stored / store_s,
        f"{prefix}raw_rows_per_s": rows / raw_s,
        f"{prefix}ratio": (raw_s / rows) / (store_s / stored),
        f"{prefix}write_p99_ms": p99(latencies) * 1000,
        f"{prefix}avg_batch": stored / batches,
        f"{prefix}raw_same_commits_rows_per_s": stored / batched_s,
        f"{prefix}ratio_same_commits": batched_s / store_s,
        f"{prefix}raw_threaded_rows_per_s": stored / threaded_s,
        f"{prefix}ratio_same_commits_threaded": threaded_s / store_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows (under 45 s)")
    args = parser.parse_args()
    rows = 20_000 if args.quick else 100_000
    with tempfile.TemporaryDirectory(prefix="zapvisor-bench-store-") as tmp:
        result: dict = {"rows": rows, "writers": WRITERS}
        # the store's default (FULL: an acknowledged write survives power loss) ...
        result |= bench_sqlite(rows, Path(tmp), "FULL", "sqlite_")
        # ... and NORMAL (survives a process crash, not power loss), both against raw in the same mode
        result |= bench_sqlite(rows, Path(tmp), "NORMAL", "sqlite_normal_")
        print(f"sqlite: {json.dumps(result)}", file=sys.stderr)
        result |= bench_postgres(rows)
    result = {key: round(value, 2) if isinstance(value, float) else value for key, value in result.items()}
    result["targets"] = TARGETS
    print(json.dumps(result))


if __name__ == "__main__":
    main()
