"""``zapvisor sessions list|create|connect|qr|logout``: a tenant's sessions on a running daemon."""

from __future__ import annotations

import argparse

from ._client import add_connection_arguments, request, run


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sessions", help="list, create, connect, show the QR code of, or log out sessions",
        description="Manage a tenant's WhatsApp sessions on a running daemon through its REST API.")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, help_: str, *, session: bool = True) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=help_, description=help_)
        add_connection_arguments(sub)
        sub.add_argument("--tenant", required=True, help="the tenant id")
        if session:
            sub.add_argument("session", help="the session id")
        return sub

    action("list", "list the tenant's sessions with their status", session=False)
    create = action("create", "create a session (stopped until connected)")
    create.add_argument("--name", help="display name (default: the session id)")
    connect = action("connect", "start the session; print its QR code, a pairing code, or connected")
    connect.add_argument("--phone", help="ask for a pairing code for this number instead of a QR code")
    action("qr", "print the session's current QR code in the terminal")
    action("logout", "log the device out (its credentials are wiped)")
    parser.set_defaults(handler=lambda args: run(main, args))


def main(args: argparse.Namespace) -> int:
    base = f"/tenants/{args.tenant}/sessions"
    match args.action:
        case "list":
            for session in request(args, "GET", base):
                print(f"{session['id']:<24} {session['status']:<13} {session.get('reason') or ''}")
        case "create":
            made = request(args, "POST", base, json={"id": args.session, "name": args.name or args.session})
            print(f"created {made['id']} ({made['status']})")
        case "connect":
            body = {"phone": args.phone} if args.phone else {}
            shown = request(args, "POST", f"{base}/{args.session}/connect", json=body)
            if shown.get("pairing_code"):
                print(f"pairing code: {shown['pairing_code']}  (WhatsApp > Linked devices > Link with phone number)")
            elif shown["status"] == "qr":
                print(request(args, "GET", f"{base}/{args.session}/qr", params={"format": "text"}))
                print("scan with WhatsApp > Linked devices; `zapvisor sessions qr` shows the next code")
            else:
                print(f"{args.session}: {shown['status']} {shown.get('reason') or ''}".rstrip())
        case "qr":
            print(request(args, "GET", f"{base}/{args.session}/qr", params={"format": "text"}))
        case "logout":
            request(args, "POST", f"{base}/{args.session}/logout")
            print(f"{args.session}: logged out")
    return 0
