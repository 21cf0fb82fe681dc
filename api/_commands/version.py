"""``zapvisor version``: print the installed distribution's version."""

from __future__ import annotations

import argparse
from importlib.metadata import version


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "version", help="print the version", description="Print zapvisor's version and exit."
    )
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    print(f"zapvisor {version('zapvisor')}")
    return 0
