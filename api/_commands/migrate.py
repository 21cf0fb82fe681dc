"""``zapvisor migrate``: bring the configured database to the current schema, then exit."""

from __future__ import annotations

import argparse
from pathlib import Path

from config import load_settings

from .._logging import configure_logging


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "migrate", help="create or upgrade the database schema and exit",
        description="Connect to the configured store (SQLite file or PostgreSQL), apply pending schema "
                    "migrations and exit. The daemon does the same at start; run this before a rolling upgrade.")
    parser.add_argument("--config", type=Path, metavar="PATH", help="TOML settings file")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    import trio

    from actors.node import build_node
    from actors.store import CURRENT_VERSION

    settings = load_settings(args.config)
    configure_logging(settings.logging)
    settings.node.data_dir.mkdir(parents=True, exist_ok=True)
    store = build_node(settings).store

    async def migrate() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)  # started = connected and migrated
            nursery.cancel_scope.cancel()

    trio.run(migrate)
    print(f"schema at version {CURRENT_VERSION} ({settings.store.backend})")
    return 0
