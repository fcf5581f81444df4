"""Static files served by relative path from a table built at start, never from a request path.

The console and the wall each add their files to the one table (the wall under ``wall/``), so no
request path ever reaches the file system.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

ASSETS_KEY = web.AppKey("static_assets", dict[str, Path])
#: The console may talk only to its own hub; nothing is loaded from elsewhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)

#: Revalidate: after an upgrade a page must not mix old and new modules.
NO_CACHE = "no-cache"


def find_assets(root: Path) -> dict[str, Path]:
    """Every file under ``root`` by its POSIX relative path."""
    return {
        path.relative_to(root).as_posix(): path
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    }


def asset_response(request: web.Request, name: str) -> web.FileResponse:
    """The asset ``name`` of the app's table; 404 when there is none."""
    path = request.app[ASSETS_KEY].get(name)
    if path is None:
        raise web.HTTPNotFound
    return web.FileResponse(path, headers={"Cache-Control": NO_CACHE})


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: headers every response gets, and the CSP for pages."""
    del request
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if response.content_type == "text/html":
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Frame-Options", "DENY")
