"""Store fixtures: every store test runs against SQLite and PostgreSQL (``backend_name``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs
import pytest

from actors.store import PostgresBackend, SqliteBackend, Store, open_store


@attrs.define
class WallClock:
    """A settable wall clock for row timestamps (the reopen window, job due times)."""

    now: float = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "postgres"])
def backend_name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_backend(backend_name: str, request: pytest.FixtureRequest, tmp_path) -> Callable[[], Any]:
    """A factory of fresh backend objects all pointing at this test's one database."""
    if backend_name == "sqlite":
        return lambda: SqliteBackend(tmp_path / "zapvisor.db")
    dsn = request.getfixturevalue("postgres_dsn")
    return lambda: PostgresBackend(dsn)


@pytest.fixture
def wall_clock() -> WallClock:
    return WallClock()


@pytest.fixture
async def store(make_backend: Callable[[], Any], wall_clock: WallClock) -> AsyncIterator[Store]:
    async with open_store(make_backend(), clock=wall_clock) as running:
        yield running
