"""Lifecycle fixtures: the store tests' fixtures (every test runs on SQLite and PostgreSQL), plus
a sweeper over that store with its media and credential directories under ``tmp_path``."""

from __future__ import annotations

import attrs
import pytest

from actors.lifecycle import Sweeper
from config import load_settings
from tests.store.conftest import backend_name, make_backend, store, wall_clock  # noqa: F401 (fixtures)


@pytest.fixture
def retention_settings():
    """The shipped [retention] defaults with batches small enough to see several per sweep."""
    return attrs.evolve(load_settings(env={}).retention, batch_size=4, batch_pause=0.0)


@pytest.fixture
def sweeper(store, tmp_path, retention_settings) -> Sweeper:  # noqa: F811 (the imported fixture)
    (tmp_path / "media").mkdir()
    (tmp_path / "auth").mkdir()
    (tmp_path / "journal").mkdir()
    return Sweeper(retention_settings, store, tmp_path / "media", tmp_path / "auth", journal_dir=tmp_path / "journal")
