"""The wall API against a real hub: tables, roles, bad input, audit, and live updates on the bus."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from db import audit
from ops.app import Hub
from ops.core.config import load_config
from ops.core.errors import ConfigError
from ops.core.events import DEVICE_REPORTED
from ops.users import Role
from tests.fixtures.hub import (
    ConfigFactory,
    LoginAs,
    WebClient,
    client_of,
    create_user,
    log_in,
    start_web_hub,
    unique_name,
)
from tests.polling import eventually
from videowall.events import WALL_CHANGED

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

RECEIVE_TIMEOUT = 5.0
LAYOUT = {
    "title": "Dinding utama",
    "rows": 2,
    "columns": 2,
    "tiles": [{"kind": "queue"}, {"kind": "kpis"}],
}


def _wall_name() -> str:
    return unique_name("wall").lower()


async def _call(client: WebClient, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    kwargs: dict[str, Any] = {} if body is None else {"json": body}
    async with client.request(method, path, **kwargs) as response:
        raw = await response.read()
        return response.status, (json.loads(raw) if raw else None)


async def _make_wall(supervisor: WebClient, layout: dict[str, Any] | None = None) -> str:
    name = _wall_name()
    status, body = await _call(supervisor, "PUT", f"/api/v1/walls/{name}", layout or LAYOUT)
    assert status == 201, body
    return name


async def test_a_supervisor_creates_a_wall_stored_in_the_database(
    hub: Hub, login_as: LoginAs
) -> None:
    supervisor = await login_as(Role.SUPERVISOR)
    name = await _make_wall(supervisor)
    status, wall = await _call(supervisor, "GET", f"/api/v1/walls/{name}")
    assert status == 200
    assert wall["rows"] == 2
    assert wall["columns"] == 2
    assert [tile["kind"] for tile in wall["tiles"]] == ["queue", "kpis", "empty", "empty"]
    async with hub.pool.acquire() as conn:
        stored = await conn.fetchrow("SELECT rows, columns, tiles FROM walls WHERE name = $1", name)
    assert stored is not None
    assert len(stored["tiles"]) == 4
    # Replacing the layout answers 200 and bumps the version.
    status, again = await _call(
        supervisor, "PUT", f"/api/v1/walls/{name}", {**LAYOUT, "rows": 1, "columns": 3}
    )
    assert status == 200
    assert again["version"] == wall["version"] + 1
    assert len(again["tiles"]) == 3
    status, listed = await _call(supervisor, "GET", "/api/v1/walls")
    assert name in [w["name"] for w in listed["walls"]]


async def test_an_operator_pushes_a_case_and_a_map_view_and_the_bus_carries_it(
    hub: Hub, login_as: LoginAs
) -> None:
    supervisor = await login_as(Role.SUPERVISOR)
    operator = await login_as(Role.OPERATOR)
    name = await _make_wall(supervisor)
    changes = hub.bus.subscribe([WALL_CHANGED], maxsize=16, name="test-walls")
    _drain(changes)  # the current layouts, replayed because the topic keeps state
    try:
        status, case = await _call(
            operator,
            "POST",
            "/api/v1/cases",
            {"title": "Pohon tumbang", "category": "disaster", "channel": "api"},
        )
        assert status == 201, case
        status, body = await _call(
            operator, "PUT", f"/api/v1/walls/{name}/tiles/2", {"kind": "case", "case_id": 999999999}
        )
        assert (status, body["error"]["code"]) == (404, "case_not_found"), body
        assert body["error"]["field"] == "case_id"
        status, wall = await _call(
            operator,
            "PUT",
            f"/api/v1/walls/{name}/tiles/2",
            {"kind": "case", "case_id": case["id"]},
        )
        assert status == 200, wall
        assert wall["tiles"][2] == {"kind": "case", "case_id": case["id"], "title": ""}
        view = {"kind": "map", "lat": -6.2, "lon": 106.8, "zoom": 12, "title": "Jakarta"}
        status, wall = await _call(operator, "PUT", f"/api/v1/walls/{name}/tiles/3", view)
        assert status == 200, wall
        async with asyncio.timeout(RECEIVE_TIMEOUT):
            first = await changes.get()
            second = await changes.get()
    finally:
        changes.close()
    assert first.key == name
    assert (first.payload.change, first.payload.index) == ("tile", 2)
    assert first.payload.actor == operator.user.username if operator.user else False
    assert second.payload.tiles[3]["kind"] == "map"
    assert second.payload.tiles[3]["layers"] == ["cases", "units", "alerts"]
    async with hub.pool.acquire() as conn:
        entries = await audit.list_entries(conn, target=f"wall:{name}")
    actions = [entry.action for entry in entries]
    assert actions.count("wall.tile") == 2
    assert "wall.create" in actions
    tile_entry = next(e for e in entries if e.action == "wall.tile" and e.after["index"] == 2)
    assert tile_entry.before == {"index": 2, "tile": {"kind": "empty", "title": ""}}


async def test_a_pushed_tile_reaches_a_wall_screen_over_its_live_socket(
    hub: Hub, login_as: LoginAs, web_client: WebClient
) -> None:
    supervisor = await login_as(Role.SUPERVISOR)
    viewer = await login_as(Role.VIEWER)
    name = await _make_wall(supervisor)
    reports = hub.bus.subscribe([DEVICE_REPORTED], maxsize=64, name="test-screens")
    try:
        # A person watching the wall is not a device: nothing is reported for "main".
        async with viewer.ws_connect(f"/api/v1/walls/{name}/live") as ws:
            assert (await ws.receive_json(timeout=RECEIVE_TIMEOUT))["type"] == "hello"
            await ws.send_json({"type": "heartbeat", "figures": {"version": 1}})
            await _next(ws, "heartbeat")
        screen = await _paired_screen(supervisor, web_client, name, "left")
        async with screen.ws_connect(f"/api/v1/walls/{name}/live?screen=left") as ws:
            assert (await ws.receive_json(timeout=RECEIVE_TIMEOUT))["type"] == "hello"
            status, _ = await _call(
                supervisor, "PUT", f"/api/v1/walls/{name}/tiles/1", {"kind": "alerts"}
            )
            assert status == 200
            event = await _next_event(ws, "wall.changed", name)
            assert event["payload"]["tiles"][1]["kind"] == "alerts"
            await ws.send_json({"type": "heartbeat", "figures": {"version": 3, "fps": 59.5}})
            ack = await _next(ws, "heartbeat")
            assert ack["device_id"] == f"wall:{name}:left"
            await ws.send_json({"type": "heartbeat", "figures": {"bad": [1, 2]}})
            error = await _next(ws, "error")
            assert error["error"]["field"] == "figures"
        seen = await _reports_for(reports, f"wall:{name}:left", count=3)
        assert not _pending_reports_for(reports, f"wall:{name}:main")
    finally:
        reports.close()
    assert [r.online for r in seen] == [True, True, False]
    assert seen[0].kind == "wall_screen"
    assert seen[1].figures == {"version": 3, "fps": 59.5}
    assert seen[0].site == name
    async with hub.pool.acquire() as conn:
        person = await conn.fetchval(
            "SELECT count(*) FROM devices WHERE id = $1", f"wall:{name}:main"
        )
    assert person == 0


async def test_a_screen_with_two_sockets_stays_online_until_the_last_closes(
    hub: Hub, login_as: LoginAs, web_client: WebClient
) -> None:
    supervisor = await login_as(Role.SUPERVISOR)
    name = await _make_wall(supervisor)
    device_id = f"wall:{name}:dup"
    screen = await _paired_screen(supervisor, web_client, name, "dup")
    reports = hub.bus.subscribe([DEVICE_REPORTED], maxsize=64, name="test-dup-screens")
    path = f"/api/v1/walls/{name}/live?screen=dup"
    try:
        first = await screen.ws_connect(path)
        assert (await first.receive_json(timeout=RECEIVE_TIMEOUT))["type"] == "hello"
        async with screen.ws_connect(path) as second:
            assert (await second.receive_json(timeout=RECEIVE_TIMEOUT))["type"] == "hello"
            await first.close()
            await second.send_json({"type": "heartbeat", "figures": {"tiles": 4}})
            await _next(second, "heartbeat")
            assert await _device_state(supervisor, device_id, "online") == "online"
            seen = await _reports_for(reports, device_id, count=3)
            assert [r.online for r in seen] == [True, True, True]
        (last,) = await _reports_for(reports, device_id, count=1)
    finally:
        reports.close()
    assert last.online is False


async def _paired_screen(
    supervisor: WebClient, screen: WebClient, name: str, screen_name: str
) -> WebClient:
    status, paired = await _call(
        supervisor, "POST", f"/api/v1/walls/{name}/screens", {"screen": screen_name}
    )
    assert status == 201, paired
    path = f"/api/v1/walls/{name}/screens/{screen_name}/session"
    status, body = await _call(screen, "POST", path, {"token": paired["token"]})
    assert status == 200, body
    return screen


async def _device_state(client: WebClient, device_id: str, want: str) -> Any:

    async def reached() -> Any:
        status, body = await _call(client, "GET", f"/api/v1/devices/{device_id}")
        state = body.get("state") if status == 200 else status
        return state if state == want else None

    return await eventually(reached, timeout=RECEIVE_TIMEOUT)


def _pending_reports_for(subscription: Any, device_id: str) -> list[Any]:
    seen = []
    while (envelope := subscription.get_nowait()) is not None:
        if envelope.payload.device_id == device_id:
            seen.append(envelope.payload)
    return seen


async def test_presets_are_saved_and_recalled(hub: Hub, login_as: LoginAs) -> None:
    supervisor = await login_as(Role.SUPERVISOR)
    operator = await login_as(Role.OPERATOR)
    name = await _make_wall(supervisor)
    status, preset = await _call(
        supervisor, "POST", f"/api/v1/walls/{name}/presets", {"name": "banjir"}
    )
    assert status == 201, preset
    assert [t["kind"] for t in preset["tiles"]] == ["queue", "kpis", "empty", "empty"]
    await _call(operator, "PUT", f"/api/v1/walls/{name}/tiles/0", {"kind": "devices"})
    # Operators save and recall presets; only supervisors delete them.
    status, body = await _call(operator, "POST", f"/api/v1/walls/{name}/presets", {"name": "x"})
    assert status == 201, body
    assert body["created_by"] == operator.user.username if operator.user else False
    status, _ = await _call(operator, "DELETE", f"/api/v1/walls/{name}/presets/x")
    assert status == 403
    assert (await _call(supervisor, "DELETE", f"/api/v1/walls/{name}/presets/x"))[0] == 204
    changes = hub.bus.subscribe([WALL_CHANGED], maxsize=16, name="test-recall")
    _drain(changes)
    try:
        status, wall = await _call(operator, "POST", f"/api/v1/walls/{name}/presets/banjir/recall")
        assert status == 200, wall
        assert wall["tiles"][0]["kind"] == "queue"
        async with asyncio.timeout(RECEIVE_TIMEOUT):
            recalled = await changes.get()
    finally:
        changes.close()
    assert (recalled.payload.change, recalled.payload.preset) == ("recall", "banjir")
    status, listed = await _call(operator, "GET", f"/api/v1/walls/{name}/presets")
    assert [p["name"] for p in listed["presets"]] == ["banjir"]
    status, _ = await _call(supervisor, "DELETE", f"/api/v1/walls/{name}/presets/banjir")
    assert status == 204
    status, body = await _call(operator, "POST", f"/api/v1/walls/{name}/presets/banjir/recall")
    assert (status, body["error"]["code"]) == (404, "preset_not_found")
    assert "banjir" in body["error"]["message"]


@pytest.mark.parametrize(
    ("tile", "field"),
    [
        ({"kind": "map", "lat": 100, "lon": 0}, "lat"),
        ({"kind": "map", "lon": 0}, "lat"),
        ({"kind": "map", "lat": 0, "lon": 0, "layers": ["ships"]}, "layers.0"),
        ({"kind": "case", "case_id": "seven"}, "case_id"),
        ({"kind": "case"}, "case_id"),
        ({"kind": "camera"}, "device_id"),
        ({"kind": "camera", "snapshot_url": "http://elsewhere/x.jpg"}, "snapshot_url"),
        ({"kind": "queue", "colour": "red"}, "colour"),
        ({"kind": "hologram"}, "kind"),
        ({"title": "no kind"}, "kind"),
    ],
)
async def test_a_bad_tile_is_refused_naming_the_field(
    hub: Hub, login_as: LoginAs, tile: dict[str, Any], field: str
) -> None:
    supervisor = await login_as(Role.SUPERVISOR)
    name = await _make_wall(supervisor)
    status, body = await _call(supervisor, "PUT", f"/api/v1/walls/{name}/tiles/0", tile)
    assert status == 400, body
    assert body["error"]["field"] == field
    status, wall = await _call(supervisor, "GET", f"/api/v1/walls/{name}")
    assert wall["tiles"][0]["kind"] == "queue"  # unchanged


async def test_unknown_walls_tiles_and_bad_layouts_are_named(hub: Hub, login_as: LoginAs) -> None:
    supervisor = await login_as(Role.SUPERVISOR)
    name = await _make_wall(supervisor)
    status, body = await _call(supervisor, "GET", "/api/v1/walls/atrium")
    assert (status, body["error"]["code"], body["error"]["field"]) == (
        404,
        "wall_not_found",
        "name",
    )
    assert "'atrium'" in body["error"]["message"]
    status, body = await _call(supervisor, "PUT", f"/api/v1/walls/{name}/tiles/4", {"kind": "kpis"})
    assert (status, body["error"]["code"]) == (404, "tile_not_found")
    assert "0 to 3" in body["error"]["message"]
    status, body = await _call(supervisor, "PUT", f"/api/v1/walls/{name}/tiles/x", {"kind": "kpis"})
    assert (status, body["error"]["code"]) == (404, "tile_not_found")
    status, body = await _call(supervisor, "PUT", "/api/v1/walls/Bad Name!", LAYOUT)
    assert (status, body["error"]["code"], body["error"]["field"]) == (400, "invalid_field", "name")
    too_many = {"rows": 1, "columns": 1, "tiles": [{"kind": "queue"}, {"kind": "kpis"}]}
    status, body = await _call(supervisor, "PUT", f"/api/v1/walls/{name}", too_many)
    assert (status, body["error"]["field"]) == (400, "tiles")
    bad_cell = {"rows": 1, "columns": 2, "tiles": [{"kind": "queue"}, {"kind": "map"}]}
    status, body = await _call(supervisor, "PUT", f"/api/v1/walls/{name}", bad_cell)
    assert (status, body["error"]["field"]) == (400, "tiles.1.lat")
    status, body = await _call(
        supervisor, "PUT", f"/api/v1/walls/{name}", {"rows": 9, "columns": 1}
    )
    assert (status, body["error"]["field"]) == (400, "rows")
    async with supervisor.request(
        "PUT",
        f"/api/v1/walls/{name}/tiles/0",
        data=b"[1,",
        headers={"Content-Type": "application/json"},
    ) as response:
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "invalid_json"
    status, body = await _call(supervisor, "PUT", f"/api/v1/walls/{name}/tiles/0", [1])
    assert (status, body["error"]["code"]) == (400, "invalid_body")


async def test_roles_on_walls(hub: Hub, login_as: LoginAs) -> None:
    supervisor = await login_as(Role.SUPERVISOR)
    name = await _make_wall(supervisor)
    for role in (Role.VIEWER, Role.TECHNICIAN):
        client = await login_as(role)
        assert (await _call(client, "GET", f"/api/v1/walls/{name}"))[0] == 200
        push = await _call(client, "PUT", f"/api/v1/walls/{name}/tiles/0", {"kind": "kpis"})
        assert push[0] == 403
    operator = await login_as(Role.OPERATOR)
    assert (await _call(operator, "PUT", f"/api/v1/walls/{name}", LAYOUT))[0] == 403
    assert (await _call(operator, "DELETE", f"/api/v1/walls/{name}"))[0] == 403
    assert (await _call(supervisor, "DELETE", f"/api/v1/walls/{name}"))[0] == 204
    assert (await _call(supervisor, "GET", f"/api/v1/walls/{name}"))[0] == 404


async def test_a_paired_screen_signs_in_with_its_token_until_unpaired(
    hub: Hub, login_as: LoginAs, web_client: WebClient
) -> None:
    supervisor = await login_as(Role.SUPERVISOR)
    name = await _make_wall(supervisor)
    status, paired = await _call(
        supervisor, "POST", f"/api/v1/walls/{name}/screens", {"screen": "left"}
    )
    assert status == 201, paired
    assert paired["pair_path"] == f"/wall/{name}?screen=left#pair={paired['token']}"
    status, body = await _call(
        supervisor, "POST", f"/api/v1/walls/{name}/screens", {"screen": "left"}
    )
    assert (status, body["error"]["code"]) == (409, "screen_exists")
    async with hub.pool.acquire() as conn:
        stored = await conn.fetchval("SELECT token_hash FROM wall_screens WHERE wall = $1", name)
    assert paired["token"].encode() not in bytes(stored)

    screen = web_client
    path = f"/api/v1/walls/{name}/screens/left/session"
    status, body = await _call(screen, "POST", path, {"token": "w" * 43})
    assert (status, body["error"]["code"]) == (401, "invalid_credentials")
    status, body = await _call(screen, "POST", path, {"token": paired["token"]})
    assert status == 200, body
    assert body["user"]["role"] == "viewer"
    assert body["user"]["username"] == f"wall:{name}:left"
    assert (await _call(screen, "GET", f"/api/v1/walls/{name}"))[0] == 200
    assert (await _call(screen, "PUT", f"/api/v1/walls/{name}/tiles/0", {"kind": "kpis"}))[0] == 403

    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await screen.ws_connect(f"/api/v1/walls/{name}/live?screen=right")
    assert refused.value.status == 403  # a paired screen reports as itself only
    async with screen.ws_connect(f"/api/v1/walls/{name}/live?screen=left") as ws:
        assert (await ws.receive_json(timeout=RECEIVE_TIMEOUT))["type"] == "hello"
        reader = asyncio.create_task(_close_code(ws))
        status, _ = await _call(supervisor, "DELETE", f"/api/v1/walls/{name}/screens/left")
        assert status == 204
        assert await reader == aiohttp.WSCloseCode.POLICY_VIOLATION
    assert (await _call(screen, "GET", f"/api/v1/walls/{name}"))[0] == 401
    status, _ = await _call(screen, "POST", path, {"token": paired["token"]})
    assert status == 401


async def test_console_settings_name_the_room_zone(hub: Hub, login_as: LoginAs) -> None:
    viewer = await login_as(Role.VIEWER)
    status, settings = await _call(viewer, "GET", "/api/v1/console/settings")
    assert status == 200
    assert settings["timezone"] == hub.config.hub.timezone
    assert settings["zone_label"] == "WIB"
    async with viewer.get(settings["map"]["outline"]) as response:
        outline = json.loads(await response.read())
    assert outline["features"][0]["properties"]["name"] == "Indonesia"
    # The built-in province outlines: every province of the Natural Earth admin-1 set, offline.
    assert settings["map"]["provinces"] == "/api/v1/map/provinces"
    async with viewer.get(settings["map"]["provinces"]) as response:
        assert response.status == 200
        assert response.content_type == "application/geo+json"
        provinces = await response.json(content_type=None)
    names = {feature["properties"]["name"] for feature in provinces["features"]}
    assert len(names) == len(provinces["features"]) == 33
    assert {"Aceh", "Jakarta Raya", "Bali", "Papua", "Sulawesi Selatan"} <= names
    for feature in provinces["features"]:
        assert feature["geometry"]["type"] in {"Polygon", "MultiPolygon"}


async def test_a_flooding_wall_screen_is_cut_off_and_others_keep_their_feed(
    hub: Hub, login_as: LoginAs
) -> None:
    supervisor = await login_as(Role.SUPERVISOR)
    name = await _make_wall(supervisor)
    flooder = await login_as(Role.VIEWER)
    calm = await login_as(Role.VIEWER)
    async with (
        flooder.ws_connect(f"/api/v1/walls/{name}/live?screen=a") as bad,
        calm.ws_connect(f"/api/v1/walls/{name}/live?screen=b") as good,
    ):
        assert (await bad.receive_json(timeout=RECEIVE_TIMEOUT))["type"] == "hello"
        assert (await good.receive_json(timeout=RECEIVE_TIMEOUT))["type"] == "hello"
        for _ in range(200):
            if bad.closed:
                break
            await bad.send_str('{"type": "heartbeat"}')
        async with asyncio.timeout(RECEIVE_TIMEOUT):
            while (await bad.receive()).type is aiohttp.WSMsgType.TEXT:
                pass
        assert bad.close_code == 1008
        await _call(supervisor, "PUT", f"/api/v1/walls/{name}/tiles/0", {"kind": "units"})
        event = await _next_event(good, "wall.changed", name)
        assert event["payload"]["tiles"][0]["kind"] == "units"


async def test_a_signed_out_client_cannot_open_a_wall_feed(hub: Hub, login_as: LoginAs) -> None:
    supervisor = await login_as(Role.SUPERVISOR)
    name = await _make_wall(supervisor)
    async with client_of(supervisor.served) as anonymous:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await anonymous.ws_connect(f"/api/v1/walls/{name}/live")
    assert refused.value.status == 401


# -- helpers ------------------------------------------------------------------------------------


async def _close_code(ws: aiohttp.ClientWebSocketResponse) -> int | None:
    async with asyncio.timeout(RECEIVE_TIMEOUT * 3):
        while (await ws.receive()).type not in {
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.CLOSING,
            aiohttp.WSMsgType.CLOSED,
        }:
            pass
    return ws.close_code


def _drain(subscription: Any) -> None:
    while subscription.get_nowait() is not None:
        pass


async def _next(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    async with asyncio.timeout(RECEIVE_TIMEOUT):
        while True:
            data: dict[str, Any] = await ws.receive_json()
            if data["type"] == kind:
                return data


async def _next_event(
    ws: aiohttp.ClientWebSocketResponse, topic: str, key: str, change: str = "tile"
) -> dict[str, Any]:
    """The next event of ``topic`` about ``key`` (past the replayed state: a ``change``)."""
    async with asyncio.timeout(RECEIVE_TIMEOUT):
        while True:
            data: dict[str, Any] = await ws.receive_json()
            if (
                data["type"] == "event"
                and data["topic"] == topic
                and data["key"] == key
                and data["payload"].get("change") == change
            ):
                return data


async def _reports_for(subscription: Any, device_id: str, count: int) -> list[Any]:
    seen = []
    async with asyncio.timeout(RECEIVE_TIMEOUT):
        while len(seen) < count:
            envelope = await subscription.get()
            if envelope.payload.device_id == device_id:
                seen.append(envelope.payload)
    return seen


async def test_the_map_config_admits_online_tiles_and_serves_the_room_provinces(
    make_hub_config: ConfigFactory, tmp_path: Path
) -> None:
    provinces = tmp_path / "provinces.geojson"
    provinces.write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    config = make_hub_config(
        map={"tile_url": "https://tiles.example.org/{z}/{x}/{y}.png", "provinces_file": provinces}
    )
    async with start_web_hub(config) as (hub, served), client_of(served) as client:
        user, password = await create_user(hub, Role.VIEWER)
        assert (await log_in(client, user.username, password)).status == 200
        async with client.get("/") as page:
            policy = page.headers["Content-Security-Policy"]
        assert "img-src 'self' data: https://tiles.example.org" in policy
        assert "script-src 'self'" in policy
        status, settings = await _call(client, "GET", "/api/v1/console/settings")
        assert status == 200
        assert settings["map"]["provinces"] == "/api/v1/map/provinces"
        assert settings["map"]["tile_url"].startswith("https://tiles.example.org/")
        async with client.get("/api/v1/map/provinces") as response:
            assert response.status == 200
            assert response.content_type == "application/geo+json"
            assert await response.json(content_type=None) == {
                "type": "FeatureCollection",
                "features": [],
            }  # the room's own file, not the built-in one


async def test_a_bad_tile_url_is_refused_at_start_naming_the_key() -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(None, {"POSKO_MAP__TILE_URL": "ftp://tiles.example.org/x.png"})
    assert "map.tile_url" in str(refused.value)


@pytest.mark.parametrize(("zone", "label"), [("Asia/Makassar", "WITA"), ("Asia/Jayapura", "WIT")])
async def test_the_console_is_told_the_room_zone(
    make_hub_config: ConfigFactory, zone: str, label: str
) -> None:
    config = make_hub_config(hub={"timezone": zone})
    async with start_web_hub(config) as (hub, served), client_of(served) as client:
        user, password = await create_user(hub, Role.OPERATOR)
        assert (await log_in(client, user.username, password)).status == 200
        status, settings = await _call(client, "GET", "/api/v1/console/settings")
    assert status == 200
    assert (settings["timezone"], settings["zone_label"]) == (zone, label)
