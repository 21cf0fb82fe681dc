"""``zapvisor token``: sign an agent JWT with ``api.jwt_secret`` (no daemon needed): the configured
one, else the one ``zapvisor run`` generated and kept under ``node.data_dir`` (``api._secrets``)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from config import load_settings

EXIT_USAGE = 2


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "token", help="issue an agent JWT",
        description="Sign an agent JWT (HS256 with api.jwt_secret, else the one `zapvisor run` kept in "
                    "<node.data_dir>/jwt_secret; claims tenant, user, role, exp) and print it. Offline: the user "
                    "is not checked against the database (POST /tenants/<id>/tokens does).")
    parser.add_argument("--config", type=Path, metavar="PATH", help="TOML settings file")
    parser.add_argument("--tenant", required=True, help="tenant id")
    parser.add_argument("--user", required=True, type=int, help="user id (integer)")
    parser.add_argument("--role", default="agent", choices=("agent", "admin"), help="default: agent")
    parser.add_argument("--ttl", type=float, help="lifetime in seconds (default: api.jwt_ttl)")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from .._auth import Authority
    from .._secrets import KeptSecretError, secret_path, with_kept_secrets

    settings = load_settings(args.config)
    try:
        settings = with_kept_secrets(settings)  # the secret `zapvisor run` generated and kept
    except KeptSecretError as error:
        print(f"zapvisor: token: {error}", file=sys.stderr)
        return EXIT_USAGE
    if not settings.api.jwt_secret:
        print("zapvisor: token: api.jwt_secret is not set (ZAPVISOR_API__JWT_SECRET or [api] jwt_secret) and "
              f"no daemon kept one in {secret_path(settings, 'jwt_secret')} (run `zapvisor run` once with the "
              "same settings)", file=sys.stderr)
        return EXIT_USAGE
    if args.ttl is not None and args.ttl <= 0:
        print("zapvisor: token: --ttl must be > 0 seconds", file=sys.stderr)
        return EXIT_USAGE
    authority = Authority(None, settings.api.jwt_secret, settings.api.jwt_ttl, clock=time.time)
    token, _ = authority.issue(args.tenant, args.user, args.role, args.ttl)
    print(token)
    return 0
