"""A store with a tenant and a webhook; ``receiver`` is the shared local webhook receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from actors.store import SqliteBackend, open_store
from actors.webhooks import TargetPolicy
from config import load_settings
from tests.fixtures.webhook_receiver import Receiver

SECRET = "webhook-secret"

LOCAL_RECEIVERS = TargetPolicy.from_settings(
    load_settings(env={"ZAPVISOR_WEBHOOKS__ALLOW_TARGETS": "127.0.0.1/32"}).webhooks.allow_targets)
"""The local receiver listens on 127.0.0.1, which webhooks refuse by default: allowed the documented
way, with the ``webhooks.allow_targets`` setting (as an on-premise receiver would be)."""


@pytest.fixture
async def receiver(webhook_receiver: Receiver) -> Receiver:
    return webhook_receiver


@pytest.fixture
def db_path(tmp_path) -> Any:
    return tmp_path / "zapvisor.db"


async def prepare(store: Any, url: str, events=("connection.update",), secret: str | None = SECRET) -> Any:
    await store.upsert_tenant("acme", "Acme")
    await store.upsert_tenant("zeta", "Zeta")
    return await store.create_webhook("acme", url, list(events), secret=secret)


@pytest.fixture
async def store(db_path) -> AsyncIterator[Any]:
    async with open_store(SqliteBackend(db_path)) as running:
        yield running
