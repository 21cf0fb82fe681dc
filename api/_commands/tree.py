"""``zapvisor tree``: the live supervision tree of a running daemon, coloured by state."""

from __future__ import annotations

import argparse
import os
import sys

from ._client import add_connection_arguments, request, run

COLOURS = {"running": "32", "starting": "33", "stopping": "33", "backoff": "33", "suspended": "31",
           "stopped": "90"}
"""ANSI colours by actor state: green running, yellow in transition, red suspended, grey stopped."""
BREAKER_COLOURS = {"closed": "32", "half_open": "33", "open": "31", "forced_open": "31", "forced_closed": "33"}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tree", help="print the live supervision tree of a running daemon",
        description="Print the supervision tree of a running daemon (GET /supervision/tree): state, "
                    "restarts, breaker and mailbox of every actor. Needs the admin token.")
    add_connection_arguments(parser)
    parser.add_argument("--no-color", action="store_true", help="plain text (also when NO_COLOR is set "
                        "or the output is not a terminal)")
    parser.set_defaults(handler=lambda args: run(main, args))


def render(tree: dict, colour: bool) -> list[str]:
    """One line per actor, indented by depth."""
    def paint(text: str, code: str | None) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if colour and code else text

    lines: list[str] = []

    def walk(node: dict, prefix: str, last: bool, root: bool) -> None:
        branch = "" if root else ("└── " if last else "├── ")
        details = [paint(node["state"], COLOURS.get(node["state"]))]
        if node["restarts"]:
            details.append(f"restarts={node['restarts']}")
        if node.get("breaker"):
            details.append("breaker=" + paint(node["breaker"], BREAKER_COLOURS.get(node["breaker"])))
        if node.get("mailbox_depth"):
            details.append(f"mailbox={node['mailbox_depth']}")
        if node.get("last_failure"):
            details.append(f"last failure: {node['last_failure']['type']}")
        lines.append(f"{prefix}{branch}{node['path'] if root else node['id']}  {' '.join(details)}")
        children = node["children"]
        for index, child in enumerate(children):
            walk(child, prefix if root else prefix + ("    " if last else "│   "), index == len(children) - 1, False)

    walk(tree, "", True, True)
    return lines


def main(args: argparse.Namespace) -> int:
    colour = not args.no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()
    print("\n".join(render(request(args, "GET", "/supervision/tree"), colour)))
    return 0
