"""``zapvisor simulate [ARGS...]``: run the simulated WhatsApp server (``actors.simulator``)."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate", help="run the simulated WhatsApp server",
        description="Run the simulated WhatsApp server until SIGTERM/SIGINT. Every argument after "
                    "`simulate` goes to it (`zapvisor simulate -- --help` lists them: --port, --state-dir, "
                    "--qr-interval...). Point the daemon at it with sessions.driver = \"simulated\" and "
                    "sessions.simulator_url.")
    parser.add_argument("simulator_args", nargs=argparse.REMAINDER, help="arguments for the simulator")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from actors.simulator import main as simulator_main

    forwarded = args.simulator_args[1:] if args.simulator_args[:1] == ["--"] else args.simulator_args
    return simulator_main(forwarded)
