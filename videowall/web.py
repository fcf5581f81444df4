"""The wall over HTTP: layouts, tile pushes, presets, paired screens, the wall page and its feed.

Roles (see ``ops.web.access``): anyone signed in reads; operators and supervisors push tiles and
recall presets; supervisors create and delete walls, presets and screens. Every change is
audited with its actor and published on the bus, so every screen of the wall updates at once.

A paired wall screen is a device: its live socket (``/api/v1/walls/{name}/live``) is the
console's live feed plus heartbeats, each reported as ``device.reported`` (kind ``wall_screen``),
and an ``online=False`` report when its last open socket closes. A person's view of a wall is
not a device and reports nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import re
import socket
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, web
from pydantic import BaseModel, ConfigDict, Field, RootModel

from ops.core.events import DEVICE_REPORTED, DeviceReported, Figure
from ops.web import auditing, live, pages
from ops.web.auth import ANONYMOUS
from ops.web.errors import ApiError, read_json
from ops.web.keys import HUB_KEY
from ops.web.sessions import SessionUser, current_user, hash_token, new_token, set_session_cookie
from videowall import service
from videowall.tiles import NAME_PATTERN, Layout

_LOGGER = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
#: Wall assets are served beside the console's, under this prefix of ``/static/``.
ASSET_PREFIX = "wall/"
WALL_SCREEN_KIND = "wall_screen"
SCREEN_ACCOUNT_PREFIX = "wall:"
#: Console panel modules other parts of the hub may ship as ``static/js/<name>.js``; each one
#: present is mounted into the console region ``[data-panel=<name>]`` (see docs/console.md).
PANEL_MODULES = ("cases", "units", "devices")
# Natural Earth admin-1 outlines (public domain), shipped so the map needs no network.
BUILT_IN_PROVINCES = pages.STATIC_DIR / "map" / "indonesia-provinces.geojson"
MAX_FIGURES = 32
MAX_FIGURE_NAME = 64
MAX_FIGURE_TEXT = 200
#: A tile index has at most this many digits (the largest grid has 64 cells).
MAX_INDEX_DIGITS = 3
_NAME = re.compile(NAME_PATTERN)
#: Time zone names the room may use, and what the room calls them.
ZONE_LABELS: Final = {
    "Asia/Jakarta": "WIB",
    "Asia/Pontianak": "WIB",
    "Asia/Makassar": "WITA",
    "Asia/Jayapura": "WIT",
}

#: Open live sockets per wall screen device id: offline only when the last one closes.
SCREEN_SOCKETS_KEY: Final = web.AppKey("screen_sockets", dict[str, int])

routes = web.RouteTableDef()


def setup(app: web.Application) -> None:
    """Add the wall's routes, its assets beside the console's, and the page security hook."""
    app.add_routes(routes)
    app[SCREEN_SOCKETS_KEY] = {}
    assets = app[pages.ASSETS_KEY]
    assets.update({ASSET_PREFIX + key: path for key, path in pages.find_assets(STATIC_DIR).items()})
    app.on_response_prepare.insert(0, _map_tiles_policy)


# -- request bodies -----------------------------------------------------------------------------


class _Object(RootModel[dict[str, Any]]):
    """Any JSON object (a tile is checked by kind afterwards, naming the field)."""


class PresetRequest(BaseModel):
    """The body of ``POST /api/v1/walls/{name}/presets``: save the current layout."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)


class ScreenRequest(BaseModel):
    """The body of ``POST /api/v1/walls/{name}/screens``: pair a new screen."""

    model_config = ConfigDict(extra="forbid")

    screen: str = Field(pattern=NAME_PATTERN)


class PairRequest(BaseModel):
    """The body of ``POST /api/v1/walls/{name}/screens/{screen}/session``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    token: str = Field(min_length=20, max_length=100)


# -- walls --------------------------------------------------------------------------------------


@routes.get("/api/v1/walls", allow_head=False)
async def list_walls(request: web.Request) -> web.Response:
    """Every wall with its layout."""
    walls = await service.list_walls(request.app[HUB_KEY].pool)
    return web.json_response({"walls": [service.wall_json(wall) for wall in walls]})


@routes.get("/api/v1/walls/{name}", allow_head=False)
async def get_wall(request: web.Request) -> web.Response:
    """One wall's layout."""
    name = _wall_name(request)
    with _mapped():
        wall = await service.get_wall(request.app[HUB_KEY].pool, name)
    return web.json_response(service.wall_json(wall))


@routes.put("/api/v1/walls/{name}")
async def put_wall(request: web.Request) -> web.Response:
    """Create a wall or replace its layout (supervisors)."""
    name = request.match_info["name"]
    if not _NAME.fullmatch(name):
        # Creating: a name that can never exist is bad input, not an unknown wall.
        raise ApiError(
            400,
            "invalid_field",
            "name: use 1-64 lower-case letters, digits, '-' or '_', "
            "starting with a letter or digit",
            "name",
        )
    layout = await read_json(request, Layout)
    user = current_user(request)
    hub = request.app[HUB_KEY]
    with _mapped():
        before, after = await service.put_wall(hub.pool, hub.bus, name, layout, actor=user.username)
    return web.json_response(service.wall_json(after), status=201 if before is None else 200)


@routes.delete("/api/v1/walls/{name}")
async def delete_wall(request: web.Request) -> web.Response:
    """Remove a wall, its presets and its paired screens (supervisors)."""
    name = _wall_name(request)
    user = current_user(request)
    hub = request.app[HUB_KEY]
    with _mapped():
        await service.delete_wall(hub.pool, hub.bus, name, actor=user.username)
    return web.Response(status=204)


@routes.put("/api/v1/walls/{name}/tiles/{index}")
async def put_tile(request: web.Request) -> web.Response:
    """Push a camera, case, map view or board to one tile (operators, supervisors)."""
    name = _wall_name(request)
    index = _tile_index(request)
    body = await read_json(request, _Object)
    user = current_user(request)
    hub = request.app[HUB_KEY]
    with _mapped():
        after = await service.push_tile(
            hub.pool, hub.bus, name, index, body.root, actor=user.username
        )
    return web.json_response(service.wall_json(after))


# -- presets ------------------------------------------------------------------------------------


@routes.get("/api/v1/walls/{name}/presets", allow_head=False)
async def list_presets(request: web.Request) -> web.Response:
    """A wall's saved layouts."""
    name = _wall_name(request)
    with _mapped():
        presets = await service.list_presets(request.app[HUB_KEY].pool, name)
    return web.json_response({"presets": [service.preset_json(preset) for preset in presets]})


@routes.post("/api/v1/walls/{name}/presets")
async def save_preset(request: web.Request) -> web.Response:
    """Save the wall's current layout as a preset (operators, supervisors)."""
    name = _wall_name(request)
    body = await read_json(request, PresetRequest)
    user = current_user(request)
    with _mapped():
        hub = request.app[HUB_KEY]
        before, after = await service.save_preset(
            hub.pool, hub.bus, name, body.name, actor=user.username
        )
    return web.json_response(service.preset_json(after), status=201 if before is None else 200)


@routes.delete("/api/v1/walls/{name}/presets/{preset}")
async def delete_preset(request: web.Request) -> web.Response:
    """Remove a preset (supervisors)."""
    name = _wall_name(request)
    preset = _preset_name(request)
    user = current_user(request)
    with _mapped():
        hub = request.app[HUB_KEY]
        await service.delete_preset(hub.pool, hub.bus, name, preset, actor=user.username)
    return web.Response(status=204)


@routes.post("/api/v1/walls/{name}/presets/{preset}/recall")
async def recall_preset(request: web.Request) -> web.Response:
    """Put a saved layout on the wall (operators, supervisors)."""
    name = _wall_name(request)
    preset = _preset_name(request)
    user = current_user(request)
    hub = request.app[HUB_KEY]
    with _mapped():
        after = await service.recall_preset(hub.pool, hub.bus, name, preset, actor=user.username)
    return web.json_response(service.wall_json(after))


# -- screens ------------------------------------------------------------------------------------


@routes.get("/api/v1/walls/{name}/screens", allow_head=False)
async def list_screens(request: web.Request) -> web.Response:
    """The screens paired to a wall (supervisors)."""
    name = _wall_name(request)
    with _mapped():
        screens = await service.list_screens(request.app[HUB_KEY].pool, name)
    return web.json_response({"screens": [service.screen_json(screen) for screen in screens]})


@routes.post("/api/v1/walls/{name}/screens")
async def add_screen(request: web.Request) -> web.Response:
    """Pair a screen: answers its token once, and the address to open on the screen."""
    name = _wall_name(request)
    body = await read_json(request, ScreenRequest)
    user = current_user(request)
    with _mapped():
        hub = request.app[HUB_KEY]
        row, token = await service.add_screen(
            hub.pool, hub.bus, name, body.screen, actor=user.username
        )
    return web.json_response(
        {
            **service.screen_json(row),
            "token": token,
            "pair_path": f"/wall/{name}?screen={body.screen}#pair={token}",
        },
        status=201,
    )


@routes.delete("/api/v1/walls/{name}/screens/{screen}")
async def delete_screen(request: web.Request) -> web.Response:
    """Unpair a screen: its token, account and sessions stop working at once (supervisors)."""
    name = _wall_name(request)
    screen = _screen_name(request)
    user = current_user(request)
    with _mapped():
        hub = request.app[HUB_KEY]
        row = await service.delete_screen(hub.pool, hub.bus, name, screen, actor=user.username)
    await request.app[live.LIVE_CLIENTS_KEY].close_user(row.user_id, "screen unpaired")
    return web.Response(status=204)


@routes.post("/api/v1/walls/{name}/screens/{screen}/session")
async def pair_screen(request: web.Request) -> web.Response:
    """A paired screen signs in with its token (public: the token is the credential)."""
    name = _wall_name(request)
    screen = _screen_name(request)
    body = await read_json(request, PairRequest)
    session = new_token()
    hub = request.app[HUB_KEY]
    opened = await service.open_screen_session(
        hub.pool,
        hub.bus,
        name,
        screen,
        token=body.token,
        session_hash=hash_token(session),
        remote=request.remote or "unknown",
    )
    if opened is None:
        _LOGGER.warning("wrong pairing token for screen %s of wall %s", screen, name)
        await auditing.record(
            request,
            actor=ANONYMOUS,
            action="wall.screen_refused",
            target=f"wall:{name}/screen:{screen}",
            detail={"remote": request.remote or "unknown"},
        )
        raise ApiError(401, "invalid_credentials", "this screen token is not valid for this wall")
    row, expires_at = opened
    username = service.screen_username(name, screen)
    response = web.json_response(
        {
            "user": {
                "id": row.user_id,
                "username": username,
                "role": "viewer",
                "display_name": f"{name} / {screen}",
            },
            "expires_at": expires_at.isoformat(),
        }
    )
    set_session_cookie(response, request, session, expires_at)
    return response


# -- the wall page and its feed -----------------------------------------------------------------


@routes.get("/wall/{name}", allow_head=False)
async def wall_page(request: web.Request) -> web.FileResponse:
    """The wall page (public shell; it signs in as a paired screen or a viewer)."""
    _wall_name(request)
    path = request.app[pages.ASSETS_KEY][ASSET_PREFIX + "wall.html"]
    return web.FileResponse(path, headers={"Cache-Control": "no-cache"})


@routes.get("/api/v1/walls/{name}/live", allow_head=False)
async def wall_live(request: web.Request) -> web.WebSocketResponse:
    """The live feed of one wall screen, which also reports the screen's heartbeat."""
    name = _wall_name(request)
    screen = request.query.get("screen", "main")
    if not _NAME.fullmatch(screen):
        raise ApiError(400, "invalid_field", f"screen must match {NAME_PATTERN}", "screen")
    with _mapped():
        wall = await service.get_wall(request.app[HUB_KEY].pool, name)
    user = current_user(request)
    device_id = service.screen_username(wall.name, screen)
    if user.username.startswith(SCREEN_ACCOUNT_PREFIX) and user.username != device_id:
        # A paired screen reports as itself only, so device health is never misled.
        raise ApiError(403, "forbidden", f"this screen is paired as {user.username}", "screen")
    _refuse_cross_origin(request)
    ws = web.WebSocketResponse(
        heartbeat=live.HEARTBEAT, max_msg_size=live.MAX_CLIENT_MESSAGE, timeout=live.CLOSE_TIMEOUT
    )
    if not ws.can_prepare(request).ok:
        raise ApiError(400, "websocket_required", "this endpoint speaks WebSocket only")
    await ws.prepare(request)
    _shrink_send_buffer(request)
    clients = request.app[live.LIVE_CLIENTS_KEY]
    client = WallScreenClient(request, ws, user, clients.next_name(), wall=wall.name, screen=screen)
    clients.add(client)
    try:
        await client.run()
    except Exception:
        _LOGGER.exception("wall screen %s crashed", client.device_id)
        await client.close(WSCloseCode.INTERNAL_ERROR, "internal error")
    finally:
        clients.discard(client)
    return ws


class WallScreenClient(live.LiveClient):
    """A live client that is also a device: online while connected, figures on heartbeat.

    Besides the console's messages the screen sends ``{"type": "heartbeat", "figures": {...}}``.
    """

    def __init__(
        self,
        request: web.Request,
        ws: web.WebSocketResponse,
        user: SessionUser,
        name: str,
        *,
        wall: str,
        screen: str,
    ) -> None:
        super().__init__(request, ws, user, name)
        self.wall = wall
        self.screen = screen
        self.device_id = service.screen_username(wall, screen)
        # Only a paired screen's own account is the screen; a person watching is not a device.
        self.is_device = user.username == self.device_id
        self._bus = request.app[HUB_KEY].bus
        self._sockets = request.app[SCREEN_SOCKETS_KEY]

    async def run(self) -> None:
        """Report the screen online, serve it, and offline when its last socket goes."""
        if self.is_device:
            self._sockets[self.device_id] = self._sockets.get(self.device_id, 0) + 1
            self._report(online=True, figures={"user": self.user.username})
        try:
            await super().run()
        finally:
            if self.is_device:
                left = self._sockets.get(self.device_id, 1) - 1
                if left > 0:
                    self._sockets[self.device_id] = left
                else:
                    self._sockets.pop(self.device_id, None)
                    self._report(online=False, figures={})

    async def _handle(self, text: str) -> None:
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict) and data.get("type") == "heartbeat":
            figures = _figures(data.get("figures"))
            if figures is None:
                await self._send_error(
                    "invalid_field",
                    f"figures must be an object of at most {MAX_FIGURES} plain values",
                    "figures",
                )
                return
            if self.is_device:
                self._report(online=True, figures=figures)
            await self._send({"type": "heartbeat", "device_id": self.device_id})
            return
        await super()._handle(text)

    def _report(self, *, online: bool | None, figures: dict[str, Figure]) -> None:
        self._bus.publish(
            DEVICE_REPORTED,
            DeviceReported(
                device_id=self.device_id,
                kind=WALL_SCREEN_KIND,
                figures=figures,
                online=online,
                name=f"{self.wall} / {self.screen}",
                site=self.wall,
            ),
            source="videowall",
            key=self.device_id,
        )


def _figures(value: Any) -> dict[str, Figure] | None:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_FIGURES:
        return None
    figures: dict[str, Figure] = {}
    for key, item in value.items():
        if not isinstance(key, str) or len(key) > MAX_FIGURE_NAME:
            return None
        if item is not None and not isinstance(item, str | int | float | bool):
            return None
        figures[key] = item[:MAX_FIGURE_TEXT] if isinstance(item, str) else item
    return figures


# -- console settings ---------------------------------------------------------------------------


@routes.get("/api/v1/console/settings", allow_head=False)
async def console_settings(request: web.Request) -> web.Response:
    """What the console and the wall need to draw: time zone, map centre, optional layers."""
    cfg = request.app[HUB_KEY].config
    zone = cfg.hub.timezone
    return web.json_response(
        {
            "hub_id": cfg.hub.id,
            "panels": [
                name for name in PANEL_MODULES if f"js/{name}.js" in request.app[pages.ASSETS_KEY]
            ],
            "timezone": zone,
            "zone_label": ZONE_LABELS.get(zone, _zone_abbreviation(zone)),
            "map": {
                "center": [cfg.map.center_lat, cfg.map.center_lon],
                "zoom": cfg.map.zoom,
                "outline": "/static/map/indonesia.geojson",
                "provinces": "/api/v1/map/provinces",
                "tile_url": cfg.map.tile_url,
                "tile_attribution": cfg.map.tile_attribution,
            },
        }
    )


@routes.get("/api/v1/map/provinces", allow_head=False)
async def provinces(request: web.Request) -> web.FileResponse:
    """The province outlines (GeoJSON): the room's own file, else the built-in ones."""
    path = request.app[HUB_KEY].config.map.provinces_file or BUILT_IN_PROVINCES
    if not path.is_file():
        raise ApiError(
            404, "not_found", f"the province outline file {path} is missing ([map] provinces_file)"
        )
    return web.FileResponse(
        path, headers={"Content-Type": "application/geo+json", "Cache-Control": "no-cache"}
    )


# -- helpers ------------------------------------------------------------------------------------


@contextlib.contextmanager
def _mapped() -> Iterator[None]:
    """Answer a wall error with its status, code and field."""
    try:
        yield
    except service.WallError as exc:
        raise ApiError(exc.status, exc.code, exc.message, exc.field) from None


def _wall_name(request: web.Request) -> str:
    name = request.match_info["name"]
    if not _NAME.fullmatch(name):
        raise ApiError(404, "wall_not_found", f"there is no wall named {name[:80]!r}", "name")
    return name


def _preset_name(request: web.Request) -> str:
    preset = request.match_info["preset"]
    if not _NAME.fullmatch(preset):
        raise ApiError(
            404, "preset_not_found", f"there is no preset named {preset[:80]!r}", "preset"
        )
    return preset


def _screen_name(request: web.Request) -> str:
    screen = request.match_info["screen"]
    if not _NAME.fullmatch(screen):
        raise ApiError(
            404, "screen_not_found", f"there is no screen named {screen[:80]!r}", "screen"
        )
    return screen


def _tile_index(request: web.Request) -> int:
    raw = request.match_info["index"]
    if not raw.isdigit() or len(raw) > MAX_INDEX_DIGITS:
        raise ApiError(404, "tile_not_found", f"there is no tile {raw[:20]!r}", "index")
    return int(raw)


def _zone_abbreviation(zone: str) -> str:
    try:
        return dt.datetime.now(zoneinfo.ZoneInfo(zone)).tzname() or zone
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zone


def _refuse_cross_origin(request: web.Request) -> None:
    """As the console's feed: browsers send cookies cross-site, so only our pages connect."""
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc.lower() != request.host.lower():
        raise ApiError(403, "forbidden", "live connections are accepted only from this hub's pages")


def _shrink_send_buffer(request: web.Request) -> None:
    transport = request.transport
    sock = None if transport is None else transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, live.SEND_BUFFER)


async def _map_tiles_policy(request: web.Request, response: web.StreamResponse) -> None:
    """Let pages load the configured online map tiles (the default policy admits only self)."""
    tile_url = request.app[HUB_KEY].config.map.tile_url
    if tile_url is None or response.content_type != "text/html":
        return
    parts = urlsplit(tile_url)
    origin = f"{parts.scheme}://{parts.netloc}".replace("{s}", "*")
    response.headers["Content-Security-Policy"] = pages.CONTENT_SECURITY_POLICY.replace(
        "img-src 'self' data:", f"img-src 'self' data: {origin}"
    )
