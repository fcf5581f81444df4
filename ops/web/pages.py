"""The operator console page and its static assets (plain files: no build step, no CDN).

Only files that exist under ``static/`` when the app is created are served, looked up by their
relative path in a table, so no request path ever reaches the file system.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).resolve().parent / "static"
ASSETS_KEY = web.AppKey("static_assets", dict[str, Path])

#: The console may talk only to its own hub; nothing is loaded from elsewhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
_CACHE = "no-cache"  # revalidate: after an upgrade the console must not mix old and new modules

routes = web.RouteTableDef()


def find_assets(root: Path = STATIC_DIR) -> dict[str, Path]:
    """Every file under ``root`` by its POSIX relative path."""
    return {
        path.relative_to(root).as_posix(): path
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    }


@routes.get("/", allow_head=False)
async def console(request: web.Request) -> web.FileResponse:
    """The operator console shell."""
    return _file(request, "index.html")


@routes.get("/static/{path:.+}", allow_head=False)
async def asset(request: web.Request) -> web.FileResponse:
    """One console asset."""
    return _file(request, request.match_info["path"])


def _file(request: web.Request, name: str) -> web.FileResponse:
    path = request.app[ASSETS_KEY].get(name)
    if path is None:
        raise web.HTTPNotFound
    return web.FileResponse(path, headers={"Cache-Control": _CACHE})


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: headers every response gets, and the CSP for pages."""
    del request
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if response.content_type == "text/html":
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Frame-Options", "DENY")
