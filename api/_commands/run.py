"""``zapvisor run [--config PATH]``: load settings, configure logging, run the daemon."""

from __future__ import annotations

import argparse
from pathlib import Path

from config import load_settings

from .._logging import configure_logging


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the daemon in the foreground",
        description=(
            "Run the zapvisor daemon until SIGTERM or SIGINT. Settings come from the built-in "
            "defaults, then the TOML file given with --config, then ZAPVISOR_<SECTION>__<KEY> "
            "environment variables."
        ),
    )
    parser.add_argument(
        "--config", type=Path, metavar="PATH", help="TOML settings file (see config/example.toml)"
    )
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    """Start the daemon; returns 0 after a clean stop. Raises `ConfigError` on bad settings."""
    settings = load_settings(args.config)
    from actors.webhooks import target_policy

    target_policy(settings.webhooks, settings.api)  # admin_notify_url obeys the webhook target rule
    configure_logging(settings.logging)
    from .._daemon import run_daemon

    return run_daemon(settings)
