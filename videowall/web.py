"""The wall over HTTP: layouts, tile pushes, presets, paired screens, the wall page and its feed.

Roles (see ``ops.http.roles``): anyone signed in reads; operators and supervisors push tiles and
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
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, RootModel

from db.walls import ScreenRow, WallRow
from ops.core.events import DEVICE_REPORTED, DeviceReported, Figure
from ops.http import audit as auditing
from ops.http import live
from ops.http.assets import (
    ASSETS_KEY,
    CONTENT_SECURITY_POLICY,
    NO_CACHE,
    asset_response,
    find_assets,
)
from ops.http.audit import ANONYMOUS
from ops.http.errors import ApiError, read_json
from ops.http.keys import HUB_KEY
from ops.http.models import SessionOut, UserOut
from ops.http.roles import ANY_ROLE, PUBLIC, SUPERVISOR_ONLY, WALL_OPERATORS
from ops.http.routes import Api, Content, reply
from ops.http.sessions import current_user, hash_token, new_token, set_session_cookie
from ops.users import Role
from videowall import service
from videowall.models import (
    ConsoleSettings,
    MapSettings,
    PairedScreen,
    PresetOut,
    Presets,
    ScreenOut,
    Screens,
    WallOut,
    Walls,
)
from videowall.tiles import NAME_PATTERN, Layout

_LOGGER = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
#: Wall assets are served beside the console's, under this prefix of ``/static/``.
ASSET_PREFIX = "wall/"
WALL_SCREEN_KIND = "wall_screen"
SCREEN_ACCOUNT_PREFIX = "wall:"
#: Console panel modules other parts of the hub may ship as ``static/js/<name>.js``; each one
#: present is mounted into the console region ``[data-panel=<name>]`` (see docs/console.md).
PANEL_MODULES = ("cases", "units", "devices", "radio")
# Natural Earth admin-1 outlines (public domain), shipped with the console's assets so the map
# needs no network.
BUILT_IN_PROVINCES = "map/indonesia-provinces.geojson"
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

api = Api("walls")
_NAME_SCHEMA = {"type": "string", "pattern": NAME_PATTERN}
_WALL = {"name": _NAME_SCHEMA}
_PRESET = {"name": _NAME_SCHEMA, "preset": _NAME_SCHEMA}
_SCREEN = {"name": _NAME_SCHEMA, "screen": _NAME_SCHEMA}
_NO_WALL = {404: "No such wall (code wall_not_found)."}
_NO_PRESET = {404: "No such wall or preset (code wall_not_found, preset_not_found)."}
_NO_SCREEN = {404: "No such wall or screen (code wall_not_found, screen_not_found)."}


def setup(app: web.Application) -> None:
    """Add the wall's state, its assets beside the console's, and the page security hook.

    The wall's routes are :data:`api`, installed with the app's others.
    """
    app[SCREEN_SOCKETS_KEY] = {}
    assets = app[ASSETS_KEY]
    assets.update({ASSET_PREFIX + key: path for key, path in find_assets(STATIC_DIR).items()})
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


@api.get("/api/v1/walls", roles=ANY_ROLE, summary="Every wall with its layout.", response=Walls)
async def list_walls(request: web.Request) -> web.Response:
    """Every wall with its layout."""
    walls = await service.list_walls(request.app[HUB_KEY].pool)
    return reply(Walls(walls=[_wall(wall) for wall in walls]))


@api.get(
    "/api/v1/walls/{name}",
    roles=ANY_ROLE,
    summary="One wall's layout.",
    path_params=_WALL,
    response=WallOut,
    errors=_NO_WALL,
)
async def get_wall(request: web.Request) -> web.Response:
    """One wall's layout."""
    name = _wall_name(request)
    with _mapped():
        wall = await service.get_wall(request.app[HUB_KEY].pool, name)
    return reply(_wall(wall))


@api.put(
    "/api/v1/walls/{name}",
    roles=SUPERVISOR_ONLY,
    summary="Create a wall or replace its layout.",
    path_params=_WALL,
    body=Layout,
    responses={200: WallOut, 201: WallOut},
)
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
    return reply(_wall(after), status=201 if before is None else 200)


@api.delete(
    "/api/v1/walls/{name}",
    roles=SUPERVISOR_ONLY,
    summary="Remove a wall, its presets and its paired screens.",
    path_params=_WALL,
    responses={204: None},
    errors=_NO_WALL,
)
async def delete_wall(request: web.Request) -> web.Response:
    """Remove a wall, its presets and its paired screens (supervisors)."""
    name = _wall_name(request)
    user = current_user(request)
    hub = request.app[HUB_KEY]
    with _mapped():
        await service.delete_wall(hub.pool, hub.bus, name, actor=user.username)
    return web.Response(status=204)


@api.put(
    "/api/v1/walls/{name}/tiles/{index}",
    roles=WALL_OPERATORS,
    summary="Push a camera, case, map view or board to one tile.",
    path_params={
        **_WALL,
        "index": {"type": "integer", "minimum": 0, "description": "The cell, row by row."},
    },
    body=_Object,
    response=WallOut,
    errors={404: "No such wall or tile (code wall_not_found, tile_not_found)."},
)
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
    return reply(_wall(after))


# -- presets ------------------------------------------------------------------------------------


@api.get(
    "/api/v1/walls/{name}/presets",
    roles=ANY_ROLE,
    summary="A wall's saved layouts.",
    path_params=_WALL,
    response=Presets,
    errors=_NO_WALL,
)
async def list_presets(request: web.Request) -> web.Response:
    """A wall's saved layouts."""
    name = _wall_name(request)
    with _mapped():
        presets = await service.list_presets(request.app[HUB_KEY].pool, name)
    return reply(Presets(presets=[PresetOut.model_validate(preset) for preset in presets]))


@api.post(
    "/api/v1/walls/{name}/presets",
    roles=WALL_OPERATORS,
    summary="Save the wall's current layout as a preset (201 new, 200 replaced).",
    path_params=_WALL,
    body=PresetRequest,
    responses={200: PresetOut, 201: PresetOut},
    errors=_NO_WALL,
)
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
    return reply(PresetOut.model_validate(after), status=201 if before is None else 200)


@api.delete(
    "/api/v1/walls/{name}/presets/{preset}",
    roles=SUPERVISOR_ONLY,
    summary="Remove a preset.",
    path_params=_PRESET,
    responses={204: None},
    errors=_NO_PRESET,
)
async def delete_preset(request: web.Request) -> web.Response:
    """Remove a preset (supervisors)."""
    name = _wall_name(request)
    preset = _preset_name(request)
    user = current_user(request)
    with _mapped():
        hub = request.app[HUB_KEY]
        await service.delete_preset(hub.pool, hub.bus, name, preset, actor=user.username)
    return web.Response(status=204)


@api.post(
    "/api/v1/walls/{name}/presets/{preset}/recall",
    roles=WALL_OPERATORS,
    summary="Put a saved layout on the wall.",
    path_params=_PRESET,
    response=WallOut,
    errors=_NO_PRESET,
)
async def recall_preset(request: web.Request) -> web.Response:
    """Put a saved layout on the wall (operators, supervisors)."""
    name = _wall_name(request)
    preset = _preset_name(request)
    user = current_user(request)
    hub = request.app[HUB_KEY]
    with _mapped():
        after = await service.recall_preset(hub.pool, hub.bus, name, preset, actor=user.username)
    return reply(_wall(after))


# -- screens ------------------------------------------------------------------------------------


@api.get(
    "/api/v1/walls/{name}/screens",
    roles=SUPERVISOR_ONLY,
    summary="The screens paired to a wall.",
    path_params=_WALL,
    response=Screens,
    errors=_NO_WALL,
)
async def list_screens(request: web.Request) -> web.Response:
    """The screens paired to a wall (supervisors)."""
    name = _wall_name(request)
    with _mapped():
        screens = await service.list_screens(request.app[HUB_KEY].pool, name)
    return reply(Screens(screens=[_screen(screen) for screen in screens]))


@api.post(
    "/api/v1/walls/{name}/screens",
    roles=SUPERVISOR_ONLY,
    summary="Pair a screen: answers its token once, and the address to open on the screen.",
    path_params=_WALL,
    body=ScreenRequest,
    responses={201: PairedScreen},
    errors={**_NO_WALL, 409: "The screen is paired already (code screen_exists)."},
)
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
    return reply(
        PairedScreen.model_validate(
            {
                **dict(_screen(row)),
                "token": token,
                "pair_path": f"/wall/{name}?screen={body.screen}#pair={token}",
            }
        ),
        status=201,
    )


@api.delete(
    "/api/v1/walls/{name}/screens/{screen}",
    roles=SUPERVISOR_ONLY,
    summary="Unpair a screen: its token, account and sessions stop working at once.",
    path_params=_SCREEN,
    responses={204: None},
    errors=_NO_SCREEN,
)
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


@api.post(
    "/api/v1/walls/{name}/screens/{screen}/session",
    roles=PUBLIC,
    summary="A paired screen signs in with its token (the token is the credential).",
    path_params=_SCREEN,
    body=PairRequest,
    response=SessionOut,
    errors={401: "The token is not valid for this screen (code invalid_credentials)."},
)
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
    response = reply(
        SessionOut(
            user=UserOut(
                id=row.user_id,
                username=username,
                role=Role.VIEWER,
                display_name=f"{name} / {screen}",
            ),
            expires_at=expires_at,
        )
    )
    set_session_cookie(response, request, session, expires_at)
    return response


# -- the wall page and its feed -----------------------------------------------------------------


@api.get(
    "/wall/{name}",
    roles=PUBLIC,
    summary="The wall page (it signs in as a paired screen or a viewer).",
    path_params=_WALL,
    response=Content("text/html", description="HTML."),
    errors=_NO_WALL,
)
async def wall_page(request: web.Request) -> web.FileResponse:
    """The wall page (public shell; it signs in as a paired screen or a viewer)."""
    _wall_name(request)
    return asset_response(request, ASSET_PREFIX + "wall.html")


@api.get(
    "/api/v1/walls/{name}/live",
    roles=ANY_ROLE,
    summary="The live feed of one wall screen (WebSocket), which reports its heartbeat.",
    description=(
        "As /api/v1/live; a screen also sends "
        '{"type": "heartbeat", "figures": {...}} and gets {"type": "heartbeat"} back.'
    ),
    path_params=_WALL,
    responses={101: Content("", description="Switched to the WebSocket protocol.")},
    errors={
        400: "Not a WebSocket handshake (websocket_required) or a bad screen name.",
        **_NO_WALL,
    },
)
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
    return await live.serve_live(
        request,
        lambda request, ws, name: WallScreenClient(
            request, ws, name, wall=wall.name, screen=screen
        ),
    )


class WallScreenClient(live.LiveClient):
    """A live client that is also a device: online while connected, figures on heartbeat.

    Besides the console's messages the screen sends ``{"type": "heartbeat", "figures": {...}}``.
    """

    def __init__(
        self,
        request: web.Request,
        ws: web.WebSocketResponse,
        name: str,
        *,
        wall: str,
        screen: str,
    ) -> None:
        super().__init__(request, ws, name)
        self.wall = wall
        self.screen = screen
        self.device_id = service.screen_username(wall, screen)
        # Only a paired screen's own account is the screen; a person watching is not a device.
        self.is_device = self.user.username == self.device_id
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


@api.get(
    "/api/v1/console/settings",
    roles=ANY_ROLE,
    summary="The room's time zone and the map's centre, outline and optional layers.",
    response=ConsoleSettings,
)
async def console_settings(request: web.Request) -> web.Response:
    """What the console and the wall need to draw: time zone, map centre, optional layers."""
    cfg = request.app[HUB_KEY].config
    zone = cfg.hub.timezone
    return reply(
        ConsoleSettings(
            hub_id=cfg.hub.id,
            panels=[name for name in PANEL_MODULES if f"js/{name}.js" in request.app[ASSETS_KEY]],
            timezone=zone,
            zone_label=ZONE_LABELS.get(zone, _zone_abbreviation(zone)),
            map=MapSettings(
                center=[cfg.map.center_lat, cfg.map.center_lon],
                zoom=cfg.map.zoom,
                outline="/static/map/indonesia.geojson",
                provinces="/api/v1/map/provinces",
                tile_url=cfg.map.tile_url,
                tile_attribution=cfg.map.tile_attribution,
            ),
        )
    )


@api.get(
    "/api/v1/map/provinces",
    roles=ANY_ROLE,
    summary="The province outlines (GeoJSON).",
    response=Content("application/geo+json", {"type": "object"}, "GeoJSON."),
    errors={404: "The configured outline file is missing (code not_found)."},
)
async def provinces(request: web.Request) -> web.FileResponse:
    """The province outlines (GeoJSON): the room's own file, else the built-in ones."""
    path = request.app[HUB_KEY].config.map.provinces_file or request.app[ASSETS_KEY].get(
        BUILT_IN_PROVINCES, Path(BUILT_IN_PROVINCES)
    )
    if not path.is_file():
        raise ApiError(
            404, "not_found", f"the province outline file {path} is missing ([map] provinces_file)"
        )
    return web.FileResponse(
        path, headers={"Content-Type": "application/geo+json", "Cache-Control": NO_CACHE}
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


def _wall(wall: WallRow) -> WallOut:
    return WallOut.of(wall)


def _screen(screen: ScreenRow) -> ScreenOut:
    return service.screen_out(screen)


def _zone_abbreviation(zone: str) -> str:
    try:
        return dt.datetime.now(zoneinfo.ZoneInfo(zone)).tzname() or zone
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zone


async def _map_tiles_policy(request: web.Request, response: web.StreamResponse) -> None:
    """Let pages load the configured online map tiles (the default policy admits only self)."""
    tile_url = request.app[HUB_KEY].config.map.tile_url
    if tile_url is None or response.content_type != "text/html":
        return
    parts = urlsplit(tile_url)
    origin = f"{parts.scheme}://{parts.netloc}".replace("{s}", "*")
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.replace(
        "img-src 'self' data:", f"img-src 'self' data: {origin}"
    )
