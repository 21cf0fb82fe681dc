"""``zapvisor campaigns list|show|pause|resume``: campaigns on a running daemon, with progress bars."""

from __future__ import annotations

import argparse

from ._client import add_connection_arguments, request, run

BAR = 30
"""Characters of a progress bar."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "campaigns", help="list, show, pause or resume campaigns",
        description="Follow and steer the campaigns (bulk sends) of a running daemon through its REST API.")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, help_: str, *, campaign: bool = True) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=help_, description=help_)
        add_connection_arguments(sub)
        if campaign:
            sub.add_argument("--tenant", required=True, help="the tenant id")
            sub.add_argument("campaign", type=int, help="the campaign id")
        return sub

    listing = action("list", "list campaigns with their progress (every tenant's, or --tenant's)", campaign=False)
    listing.add_argument("--tenant", help="only this tenant's campaigns")
    action("show", "show a campaign: status, progress, counts per state, pacing and schedule")
    action("pause", "pause a running campaign")
    action("resume", "resume a paused campaign")
    parser.set_defaults(handler=lambda args: run(main, args))


def progress_line(campaign: dict) -> str:
    """``12 acme/promo  running  [#########.....]  45% 450/1000 sent, 3 skipped``."""
    counts, total = campaign.get("counts", {}), max(campaign["total"], 1)
    done = counts.get("sent", 0) + counts.get("failed", 0) + counts.get("skipped", 0)
    filled = BAR * done // total
    bar = "#" * filled + "." * (BAR - filled)
    return (f"{campaign['id']:<5} {campaign['tenant_id']}/{campaign['name']:<20} {campaign['status']:<9} [{bar}] "
            f"{100 * done // total:3d}% {counts.get('sent', 0)}/{campaign['total']} sent, "
            f"{counts.get('skipped', 0)} skipped, {counts.get('failed', 0)} failed")


def main(args: argparse.Namespace) -> int:
    match args.action:
        case "list":
            path = "/campaigns" if args.tenant is None else f"/tenants/{args.tenant}/campaigns"
            for campaign in request(args, "GET", path):
                print(progress_line(campaign))
        case "show":
            _show(request(args, "GET", f"/tenants/{args.tenant}/campaigns/{args.campaign}"))
        case "pause" | "resume":
            _show(request(args, "POST", f"/tenants/{args.tenant}/campaigns/{args.campaign}/{args.action}"))
    return 0


def _show(campaign: dict) -> None:
    print(progress_line(campaign))
    if campaign.get("reason"):
        print(f"  reason:   {campaign['reason']}")
    print(f"  sessions: {', '.join(campaign['sessions'])}")
    print("  counts:   " + ", ".join(f"{key} {value}" for key, value in sorted(campaign["counts"].items()) if value))
    pacing, schedule = campaign["pacing"], campaign["schedule"]
    print(f"  pacing:   {pacing['delay'][0]}-{pacing['delay'][1]} s between sends, {pacing['daily_cap']}/day per "
          f"session ({pacing['cold_daily_cap']} to new contacts), pause after {pacing['failure_threshold']} failures")
    print(f"  schedule: {schedule['hours'][0]}h-{schedule['hours'][1]}h {','.join(schedule['days'])} "
          f"({schedule['timezone']})")
