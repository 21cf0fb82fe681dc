"""The dashboard: a static page at ``/`` (no build step), served from ``api/static``, and its icon."""

from __future__ import annotations

from quart import Blueprint, current_app

from ._routing import Auth, endpoint

bp = Blueprint("dashboard", __name__)


@endpoint(bp, "GET", "/", summary="The live dashboard (HTML)", auth=Auth.NONE, produces=("text/html",))
async def dashboard(who: None):
    return await current_app.send_static_file("index.html")


@endpoint(bp, "GET", "/favicon.ico", summary="The dashboard's icon (SVG)", auth=Auth.NONE,
          produces=("image/svg+xml",))
async def favicon(who: None):
    # Browsers ask for /favicon.ico whatever the page says; an SVG answers them all (no 404 in the log).
    return await current_app.send_static_file("favicon.svg")
