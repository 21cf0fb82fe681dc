"""bench/store.py's raw PostgreSQL baseline runs asyncpg on a plain asyncio loop (issue 18).

Importing trio_asyncio (the store's PostgreSQL backend does, and so does the bench) replaces the
event loop policy: ``asyncio.run`` then runs on trio-asyncio's ``SyncTrioEventLoop``, whose every
callback is a trio scheduler pass. The baseline ran there and paid part of the store's own
trio-asyncio cost, which made ``pg_ratio_same_commits`` look better than it was.
"""

from __future__ import annotations

import asyncio

import trio_asyncio

from bench.store import plain_asyncio


async def _loop_type() -> type:
    return type(asyncio.get_running_loop())


def test_the_raw_baseline_runs_on_a_plain_asyncio_loop_although_trio_asyncio_is_imported():
    assert trio_asyncio  # imported, as in the bench: the policy that asyncio.run obeys is trio-asyncio's
    loop_type = plain_asyncio(_loop_type())
    assert loop_type is asyncio.SelectorEventLoop  # asyncio.run gives trio_asyncio's SyncTrioEventLoop here
