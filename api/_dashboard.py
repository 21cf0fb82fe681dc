"""The dashboard: a static page at ``/`` (no build step), served from ``api/static``."""

from __future__ import annotations

from quart import Blueprint, current_app

from ._routing import Auth, endpoint

bp = Blueprint("dashboard", __name__)


@endpoint(bp, "GET", "/", summary="The live dashboard (HTML)", auth=Auth.NONE, produces=("text/html",))
async def dashboard(who: None):
    return await current_app.send_static_file("index.html")
