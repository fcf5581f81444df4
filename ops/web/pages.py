"""The operator console page and its static assets (plain files: no build step, no CDN)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from ops.http.assets import add_security_headers, asset_response
from ops.http.roles import PUBLIC
from ops.http.routes import HTML, Api, Content

__all__ = ["STATIC_DIR", "add_security_headers", "api"]

STATIC_DIR = Path(__file__).resolve().parent / "static"

api = Api("pages")


@api.get("/", roles=PUBLIC, summary="The operator console page.", response=HTML)
async def console(request: web.Request) -> web.FileResponse:
    """The operator console shell."""
    return asset_response(request, "index.html")


@api.get(
    "/static/{path:.+}",
    roles=PUBLIC,
    summary="A console asset (JavaScript module, stylesheet, image).",
    response=Content("*/*", {}, "The file."),
    errors={404: "No such asset (code not_found)."},
)
async def asset(request: web.Request) -> web.FileResponse:
    """One console or wall asset."""
    return asset_response(request, request.match_info["path"])
