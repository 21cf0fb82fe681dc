"""A node's debounced status flush is one store write, however many sessions changed.

Found by ``bench/failover.py`` with 1,000 sessions: a node bringing 338 sessions up flushed
their statuses as one write each; the group commit put them in one transaction, but each was
a round trip in it (2.5–4.5 s for 256 of them on a busy machine), and every other write of the
node — inbound messages, sends — waited behind it. Real store (PostgreSQL and SQLite).
"""

from __future__ import annotations

import pytest

from actors.node._node import _persist
from actors.sessions import SessionStatus, StatusBoard
from actors.store import PostgresBackend, SqliteBackend, open_store

SESSIONS = 300


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, tmp_path):
    if request.param == "sqlite":
        return SqliteBackend(tmp_path / "z.db")
    return PostgresBackend(request.getfixturevalue("postgres_dsn"))


async def test_a_flush_of_many_sessions_statuses_is_one_store_write(backend):
    async with open_store(backend) as store:
        await store.upsert_tenant("acme", "Acme")
        sessions = [f"s{index}" for index in range(SESSIONS)]
        for session_id in sessions:
            await store.upsert_session(session_id, "acme", session_id)
        board = StatusBoard(debounce=60.0, persist=lambda batch: _persist(store, batch))
        for session_id in sessions:
            board.set(session_id, "acme", SessionStatus.CONNECTED, f"{session_id} up")
        board.set("only-in-the-tree", "acme", SessionStatus.CONNECTED)  # no row: skipped, not an error
        before = store.statistics().ops
        await board.flush()
        assert store.statistics().ops - before == 1
        assert board.statistics().write_errors == 0
        stored = {r.id: (r.status, r.reason) for r in await store.list_sessions()}
        assert stored == {sid: ("connected", f"{sid} up") for sid in sessions}
