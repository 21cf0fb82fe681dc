"""``zapvisor watch ROOM...``: print a running daemon's websocket events, one JSON frame per line.

Connects to ``/ws`` with ``?token=`` (an agent JWT for its tenant's rooms, the admin token for
``tenant:<id>`` and ``supervision``), joins the rooms, and prints every frame the daemon sends
(events and the ``joined``/``resync``/``lagged`` control frames) until Ctrl-C, or until
``--count`` events have arrived. ``--since SEQ`` resumes: the events after SEQ that the room
still keeps are replayed first (``--since 0``: everything it keeps).

Exit codes: 0 done, 1 the daemon refused (the close reason is printed) or could not be reached,
2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys

from ._client import EXIT_FAILED, CommandFailed, add_connection_arguments, admin_token

CONNECT_TIMEOUT = 10.0
"""Seconds to open the websocket: the daemon answers the handshake at once."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "watch", help="print a running daemon's websocket events (rooms tenant:<id>, ticket:<id>, ...)",
        description=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_connection_arguments(parser)
    parser.add_argument("rooms", nargs="+", metavar="ROOM",
                        help="tenant:<id>, ticket:<id>, status:<name>, notifications or supervision")
    parser.add_argument("--since", type=int, metavar="SEQ", help="replay the events after this sequence number")
    parser.add_argument("--count", type=int, metavar="N", help="exit after N events (control frames not counted)")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    import trio

    if (args.since is not None and args.since < 0) or (args.count is not None and args.count < 1):
        print("zapvisor: watch: --since must be >= 0 and --count >= 1", file=sys.stderr)
        return 2
    try:
        url = _websocket_url(args)  # before trio.run: it may read the kept admin token (a file)
    except CommandFailed as error:
        print(f"zapvisor: watch: {error}", file=sys.stderr)
        return EXIT_FAILED
    try:
        trio.run(_watch, args, url)
    except _Failed as error:
        print(f"zapvisor: watch: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        pass
    return 0


class _Failed(Exception):
    pass


def _websocket_url(args: argparse.Namespace) -> str:
    """``ws://host:port/ws?token=...`` from ``--url``/``--token`` or the settings."""
    from urllib.parse import quote

    from config import load_settings

    settings = load_settings(args.config)
    base = (args.url or f"http://{settings.api.host}:{settings.api.port}").rstrip("/")
    token = args.token or admin_token(settings)
    ws_base = "ws" + base[len("http"):] if base.startswith("http") else base
    return ws_base + "/ws" + (f"?token={quote(token)}" if token else "")


async def _watch(args: argparse.Namespace, url: str) -> None:
    import trio_websocket

    shown = url.split("?", 1)[0]
    try:
        async with trio_websocket.open_websocket_url(url, connect_timeout=CONNECT_TIMEOUT) as ws:
            for room in args.rooms:
                request = {"op": "join", "room": room}
                if args.since is not None:
                    request["since"] = args.since
                await ws.send_message(json.dumps(request))
            events = 0
            while args.count is None or events < args.count:
                frame = await ws.get_message()
                print(frame, flush=True)
                if "payload" in json.loads(frame):  # an event; control frames (joined, resync...) have none
                    events += 1
    except trio_websocket.ConnectionClosed as closed:
        reason = closed.reason
        raise _Failed(f"{shown} closed the connection: {reason.code} {reason.reason or reason.name}") from None
    except (OSError, trio_websocket.HandshakeError) as error:
        raise _Failed(f"cannot reach the daemon at {shown}: {error}") from None
