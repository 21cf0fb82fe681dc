"""The ``zapvisor`` command line (console script ``zapvisor = api.cli:main``).

Each subcommand lives in its own module under ``api/_commands``; `COMMANDS` below is the one
place that registers them. Bad usage exits with code 2 and a message (argparse), and so do
configuration errors: ``zapvisor: config error: <key>: <problem>``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from config import ConfigError

from ._commands import campaigns, demo, migrate, run, sessions, sim, simulate, token, tree, version, watch

COMMANDS = (run, simulate, sim, demo, tree, sessions, campaigns, watch, token, migrate, version)
"""Subcommand modules, in the order ``--help`` lists them."""

EXIT_USAGE = 2
"""Exit code for bad usage and bad configuration, as argparse (and sysexits' EX_USAGE) use."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="zapvisor",
        description="zapvisor: a supervisor daemon for WhatsApp sessions of multi-tenant helpdesks.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the subcommand, return its exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except ConfigError as error:
        print(f"zapvisor: config error: {error}", file=sys.stderr)
        return EXIT_USAGE
