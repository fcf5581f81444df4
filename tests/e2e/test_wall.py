"""The video wall in headless Chromium: pushes from the console, presets, and a hub restart."""

from __future__ import annotations

import asyncio
import re
import secrets
from typing import Any

import pytest
from playwright.async_api import Page, Route, expect

from ops.app import Hub
from ops.core.config import Config
from ops.users import Role
from ops.web.app import Served
from tests.e2e.conftest import (
    NewPage,
    console_user,
    keep_screenshot,
    run_hub,
    sign_in,
)
from tests.e2e.test_console import CASES, create_case
from tests.fixtures.devices import river_sensor
from tests.fixtures.hub import ConfigFactory, client_of, log_in
from tests.polling import eventually

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.broker]

LAYOUT = {
    "title": "Dinding utama",
    "rows": 2,
    "columns": 3,
    "tiles": [
        {"kind": "kpis"},
        {"kind": "queue"},
        {"kind": "empty"},
        {"kind": "devices"},
        {"kind": "units"},
    ],
}


def _wall_name() -> str:
    return f"wall-{secrets.token_hex(3)}"


async def _api(
    served: Served, username: str, password: str, method: str, path: str, *, body: Any = None
) -> Any:
    async with client_of(served) as client:
        assert (await log_in(client, username, password)).status == 200
        kwargs = {} if body is None else {"json": body}
        async with client.request(method, path, **kwargs) as response:
            assert response.status < 300, await response.text()
            return await response.json()


async def _open_wall(
    new_page: NewPage, served: Served, supervisor: tuple[str, str], wall: str, screen: str
) -> Page:
    """Pair a screen as the supervisor would, and open its address on a fresh browser."""
    paired = await _api(
        served, *supervisor, "POST", f"/api/v1/walls/{wall}/screens", body={"screen": screen}
    )
    page = await new_page(viewport={"width": 1920, "height": 1080})
    await page.goto(served.url + paired["pair_path"])
    await expect(page.locator("#wall-link")).to_have_attribute("data-state", "open")
    # The token left the address bar once it was stored.
    assert "pair=" not in page.url
    return page


async def _end_session_in(hub: Hub, account: str, seconds: int) -> None:
    """Make the screen account's session expire ``seconds`` from now."""
    async with hub.pool.acquire() as conn:
        ended = await conn.execute(
            "UPDATE sessions SET expires_at = now() + make_interval(secs => $2) "
            "WHERE user_id = (SELECT id FROM users WHERE username = $1)",
            account,
            seconds,
        )
    assert ended == "UPDATE 1"


async def _sessions(hub: Hub, account: str, *, fresh: bool) -> int:
    """The account's sessions still valid: all of them, or (``fresh``) only new 30-day ones."""
    async with hub.pool.acquire() as conn:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id "
            "WHERE u.username = $1 AND s.expires_at > now() + make_interval(days => $2)",
            account,
            1 if fresh else 0,
        )
    return count


def _tile(page: Page, index: int) -> Any:
    return page.locator(f"#wall-grid .tile[data-index='{index}']")


async def test_push_a_case_and_a_map_view_from_the_console_to_the_wall(
    served_hub: tuple[Hub, Served], new_page: NewPage
) -> None:
    hub, served = served_hub
    supervisor = await console_user(hub, Role.SUPERVISOR)
    operator = await console_user(hub, Role.OPERATOR)
    wall = _wall_name()
    await _api(served, *supervisor, "PUT", f"/api/v1/walls/{wall}", body=LAYOUT)
    created = [await create_case(served, *operator, case) for case in CASES]
    resting = f"r-{secrets.token_hex(4)}"
    unit = {"id": resting, "callsign": resting, "name": "Tagana", "kind": "volunteer"}
    await _api(served, *supervisor, "POST", "/api/v1/units", body={**unit, "on_duty": False})
    screen = await _open_wall(new_page, served, supervisor, wall, "tengah")
    await expect(_tile(screen, 1)).to_contain_text(created[0]["number"])  # the queue tile
    await expect(_tile(screen, 0)).to_contain_text("Kasus terbuka")
    # The unit board says which units are off duty, in words.
    await expect(_tile(screen, 4).locator(f"[data-unit='{resting}']")).to_contain_text(
        "lepas dinas"
    )

    console = await new_page()
    await sign_in(console, served, *operator)
    await console.select_option("#wall-select", wall)  # other tests' walls share the database
    await expect(console.locator("#wall-select")).to_have_value(wall)
    # Pick the flood, tile 3 (key 3), send the case (W).
    await console.locator(f"#queue [data-case='{created[0]['id']}']").click()
    await console.keyboard.press("3")
    await expect(console.locator(".tile-choice[data-index='2']")).to_have_attribute(
        "aria-checked", "true"
    )
    await console.keyboard.press("w")
    await expect(console.locator("#wall-result")).to_contain_text("Petak 3")
    await expect(_tile(screen, 2)).to_have_attribute("data-kind", "case")
    await expect(_tile(screen, 2)).to_contain_text(created[0]["title"])
    await expect(_tile(screen, 2)).to_contain_text("kritis")

    # The map view to tile 6 with the button.
    await console.locator(".tile-choice[data-index='5']").click()
    await console.click("#push-map")
    await expect(_tile(screen, 5)).to_have_attribute("data-kind", "map")
    await expect(_tile(screen, 5).locator(".leaflet-container")).to_have_count(1)
    await expect(_tile(screen, 5).locator(".pin-case").first).to_be_attached()
    # The screen shows in device health as a wall screen device, reported over its socket
    # (asked of the hub: other tests' devices share the database and the console's first rows).

    async def screen_online() -> bool:
        listed = await _api(served, *operator, "GET", "/api/v1/devices?kind=wall_screen")
        names = {d["name"]: d["state"] for d in listed["devices"]}
        return names.get(f"{wall} / tengah") == "online"

    await eventually(screen_online, timeout=10, interval=0.1)
    await keep_screenshot(screen, "wall", docs=True)
    await keep_screenshot(console, "console-wall-control")


async def test_save_and_recall_a_preset(served_hub: tuple[Hub, Served], new_page: NewPage) -> None:
    hub, served = served_hub
    supervisor = await console_user(hub, Role.SUPERVISOR)
    wall = _wall_name()
    await _api(served, *supervisor, "PUT", f"/api/v1/walls/{wall}", body=LAYOUT)
    screen = await _open_wall(new_page, served, supervisor, wall, "kiri")
    console = await new_page()
    await sign_in(console, served, *supervisor)
    await console.select_option("#wall-select", wall)  # other tests' walls share the database
    await expect(console.locator("#wall-select")).to_have_value(wall)

    await console.fill("#preset-name", "pagi")
    await console.click("#preset-save")
    await expect(console.locator("#wall-result")).to_contain_text("pagi")
    await expect(console.locator("#preset-select option")).to_have_text(["pagi"])

    await console.locator(".tile-choice[data-index='0']").click()
    await console.click("#push-map")
    await expect(_tile(screen, 0)).to_have_attribute("data-kind", "map")

    await console.select_option("#preset-select", "pagi")
    await console.click("#preset-recall")
    await expect(console.locator("#wall-result")).to_contain_text("pagi")
    await expect(_tile(screen, 0)).to_have_attribute("data-kind", "kpis")
    await expect(_tile(screen, 0)).to_contain_text("Kasus terbuka")


async def test_a_wall_screen_reconnects_after_the_hub_restarts(
    make_hub_config: ConfigFactory, new_page: NewPage
) -> None:
    config: Config = make_hub_config()
    async with run_hub(config) as (hub, served):
        port = served.port
        supervisor = await console_user(hub, Role.SUPERVISOR)
        wall = _wall_name()
        await _api(served, *supervisor, "PUT", f"/api/v1/walls/{wall}", body=LAYOUT)
        screen = await _open_wall(new_page, served, supervisor, wall, "kanan")
        await expect(_tile(screen, 3)).to_have_attribute("data-kind", "devices")

    # The hub is gone: the screen says so, in words and shape, not only colour.
    await expect(screen.locator("#wall-link")).not_to_have_attribute("data-state", "open")
    await expect(screen.locator("#wall-link-text")).to_contain_text(
        re.compile("TERPUTUS|MENYAMBUNG")
    )
    await keep_screenshot(screen, "wall-lost-hub")

    # The same hub (same data, same port) comes back; the screen reconnects by itself.
    async with run_hub(config, port=port) as (_, served_again):
        await expect(screen.locator("#wall-link")).to_have_attribute(
            "data-state", "open", timeout=30_000
        )
        await _api(
            served_again,
            *supervisor,
            "PUT",
            f"/api/v1/walls/{wall}/tiles/2",
            body={"kind": "alerts", "title": "Peringatan BMKG"},
        )
        await expect(_tile(screen, 2)).to_contain_text("Peringatan BMKG")


async def test_the_follow_tile_shows_the_camera_nearest_the_newest_urgent_case(
    served_hub: tuple[Hub, Served], new_page: NewPage
) -> None:
    hub, served = served_hub
    supervisor = await console_user(hub, Role.SUPERVISOR)
    operator = await console_user(hub, Role.OPERATOR)
    wall = _wall_name()
    tag = secrets.token_hex(3)
    # Two cameras of the device registry; a hub path stands in for their snapshot relay.
    cameras = {
        "north": (-6.1200, 106.8000),
        "south": (-6.3500, 106.8300),
    }
    for place, (lat, lon) in cameras.items():
        await _api(
            served,
            *supervisor,
            "POST",
            "/api/v1/devices",
            body={
                "id": f"cam-{place}-{tag}",
                "kind": "camera",
                "name": f"CCTV {place} {tag}",
                "lat": lat,
                "lon": lon,
                "attributes": {"snapshot_url": "/static/vendor/leaflet/images/layers-2x.png"},
            },
        )
    layout = {"rows": 1, "columns": 2, "tiles": [{"kind": "follow"}, {"kind": "kpis"}]}
    await _api(served, *supervisor, "PUT", f"/api/v1/walls/{wall}", body=layout)
    screen = await _open_wall(new_page, served, supervisor, wall, "ikuti")

    near_north = {**CASES[0], "lat": -6.1350, "lon": 106.8000, "title": f"Kebakaran {tag}"}
    created = await create_case(served, *operator, near_north)
    follow = _tile(screen, 0)
    await expect(follow).to_contain_text(f"CCTV north {tag}")
    await expect(follow).to_contain_text(created["number"])
    image = follow.locator("img.camera")
    await expect(image).to_have_attribute("src", re.compile(r"layers-2x\.png\?t="))
    await screen.wait_for_function(  # the snapshot really loaded
        "() => [...document.querySelectorAll(\"[data-index='0'] img.camera\")]"
        ".some((img) => img.complete && img.naturalWidth > 0)"
    )

    # A newer urgent case elsewhere pulls the camera nearest to it.
    near_south = {**CASES[0], "lat": -6.3490, "lon": 106.8290, "title": f"Longsor {tag}"}
    await create_case(served, *operator, near_south)
    await expect(follow).to_contain_text(f"CCTV south {tag}")

    # An operator picks a camera on the console's map and sends it to the other tile.
    console = await new_page()
    await sign_in(console, served, *operator)
    await console.select_option("#wall-select", wall)
    await console.locator(".tile-choice[data-index='1']").click()
    await console.locator(f"#queue [data-case='{created['id']}']").click()  # the map goes there
    await console.locator(".pin-camera", has_text=f"CCTV north {tag}").click()
    await console.click("#push-camera")
    await expect(_tile(screen, 1)).to_have_attribute("data-kind", "camera")
    await expect(_tile(screen, 1)).to_contain_text(f"CCTV north {tag}")
    await screen.wait_for_function(
        "() => [...document.querySelectorAll(\"[data-index='1'] img.camera\")]"
        ".some((img) => img.complete && img.naturalWidth > 0)"
    )


async def test_a_paired_screen_signs_in_again_by_itself_when_its_session_ends(
    served_hub: tuple[Hub, Served], new_page: NewPage
) -> None:
    hub, served = served_hub
    supervisor = await console_user(hub, Role.SUPERVISOR)
    wall = _wall_name()
    await _api(served, *supervisor, "PUT", f"/api/v1/walls/{wall}", body=LAYOUT)
    screen = await _open_wall(new_page, served, supervisor, wall, "lobi")
    account = f"wall:{wall}:lobi"
    await _end_session_in(hub, account, 1)
    # The socket reconnects at once with the old cookie; the hub ends it when the session
    # expires (1008), and the page pairs again with its stored token.
    await screen.reload()  # the socket's deadline is set when it opens
    # The new session is the sign that the old one ended and the page paired again, however
    # long a loaded machine takes over each step.
    paired = await eventually(
        lambda: _sessions(hub, account, fresh=True), message="the screen paired again"
    )
    assert paired == 1
    await expect(screen.locator("#wall-link")).to_have_attribute("data-state", "open")
    await expect(_tile(screen, 1)).to_have_attribute("data-kind", "queue")


async def test_a_screen_whose_session_ends_while_it_loads_pairs_again(
    served_hub: tuple[Hub, Served], new_page: NewPage
) -> None:
    """Signed in when the page starts, expired by the time it asks for its wall: it pairs again
    instead of retrying a socket the hub refuses for ever."""
    hub, served = served_hub
    supervisor = await console_user(hub, Role.SUPERVISOR)
    wall = _wall_name()
    await _api(served, *supervisor, "PUT", f"/api/v1/walls/{wall}", body=LAYOUT)
    screen = await _open_wall(new_page, served, supervisor, wall, "ruang-rapat")
    account = f"wall:{wall}:ruang-rapat"
    held: asyncio.Queue[Route] = asyncio.Queue()

    async def hold_first(route: Route) -> None:
        if held.empty():
            await held.put(route)
        else:
            await route.continue_()

    await _end_session_in(hub, account, 2)
    await screen.route(f"**/api/v1/walls/{wall}", hold_first)
    await screen.reload()
    route = await asyncio.wait_for(held.get(), timeout=10)

    async def expired() -> bool:
        return await _sessions(hub, account, fresh=False) == 0

    await eventually(expired, message="the screen's session expired")
    await route.continue_()  # now answered 401
    await screen.unroute(f"**/api/v1/walls/{wall}")

    paired = await eventually(
        lambda: _sessions(hub, account, fresh=True), message="the screen paired again"
    )
    assert paired == 1
    await expect(screen.locator("#wall-link")).to_have_attribute("data-state", "open")
    await expect(_tile(screen, 1)).to_have_attribute("data-kind", "queue")


async def test_a_case_tile_of_a_closed_case_says_so_and_priority_counts_stay_legible(
    served_hub: tuple[Hub, Served], new_page: NewPage
) -> None:
    hub, served = served_hub
    supervisor = await console_user(hub, Role.SUPERVISOR)
    operator = await console_user(hub, Role.OPERATOR)
    wall = _wall_name()
    await _api(served, *supervisor, "PUT", f"/api/v1/walls/{wall}", body=LAYOUT)
    created = await create_case(served, *operator, CASES[1])
    path = f"/api/v1/cases/{created['id']}/transitions"
    await _api(served, *operator, "POST", path, body={"to": "rejected", "reason": "laporan uji"})
    await _api(served, *operator, "POST", path, body={"to": "closed"})
    await create_case(served, *operator, CASES[0])  # an open one for the queue tile
    screen = await _open_wall(new_page, served, supervisor, wall, "kasus")
    await _api(
        served,
        *operator,
        "PUT",
        f"/api/v1/walls/{wall}/tiles/2",
        body={"kind": "case", "case_id": created["id"]},
    )
    tile = _tile(screen, 2)
    await expect(tile.locator(".case-closed")).to_contain_text(
        f"KASUS {created['number']} SUDAH DITUTUP (ditutup)"
    )
    await expect(tile).to_contain_text(created["title"])
    await expect(tile).not_to_contain_text("Pilih kasus")

    # The counts by priority are read from across the room: never smaller than the queue rows.
    await expect(_tile(screen, 1).locator(".board li").first).to_be_visible()
    sizes = await screen.evaluate(
        """() => [".tile-body .kpi-split", ".board li"].map(
            (s) => parseFloat(getComputedStyle(document.querySelector(s)).fontSize))"""
    )
    assert sizes[0] >= sizes[1], sizes


async def test_an_operator_saves_a_preset_and_pushes_the_layers_the_map_shows(
    served_hub: tuple[Hub, Served], new_page: NewPage
) -> None:
    hub, served = served_hub
    supervisor = await console_user(hub, Role.SUPERVISOR)
    operator = await console_user(hub, Role.OPERATOR)
    wall = _wall_name()
    await _api(served, *supervisor, "PUT", f"/api/v1/walls/{wall}", body=LAYOUT)
    console = await new_page()
    await sign_in(console, served, *operator)
    await console.select_option("#wall-select", wall)
    await expect(console.locator("#wall-select")).to_have_value(wall)
    await console.fill("#preset-name", "siang")
    await console.click("#preset-save")
    await expect(console.locator("#wall-result")).to_contain_text("siang")
    await expect(console.locator("#preset-select option")).to_have_text(["siang"])

    await console.locator(".tile-choice[data-index='5']").click()
    await console.click("#push-map")
    await expect(console.locator("#wall-result")).to_contain_text("Petak 6")
    pushed = await _api(served, *operator, "GET", f"/api/v1/walls/{wall}")
    assert pushed["tiles"][5]["layers"] == [
        "cases",
        "units",
        "alerts",
        "centers",
        "cameras",
        "devices",
    ]
    # A layer switched off on the console map stays off on the wall.
    await console.locator(".leaflet-control-layers").hover()
    await (
        console.locator(".leaflet-control-layers-overlays label", has_text="Unit")
        .locator("input")
        .uncheck()
    )
    await console.click("#push-map")
    await expect(console.locator("#wall-result")).to_contain_text("Petak 6")
    pushed = await _api(served, *operator, "GET", f"/api/v1/walls/{wall}")
    assert "units" not in pushed["tiles"][5]["layers"]
    assert "devices" in pushed["tiles"][5]["layers"]


async def test_open_device_alarms_reach_the_console_and_the_wall_and_escalations_are_loud(
    device_hub_config: ConfigFactory, new_page: NewPage
) -> None:
    config = device_hub_config(
        devices={"hysteresis": 0.2, "sample_every": 0.0, "escalate_after": 1.0}
    )
    async with run_hub(config) as (hub, served):
        supervisor = await console_user(hub, Role.SUPERVISOR)
        wall = _wall_name()
        layout = {"rows": 1, "columns": 2, "tiles": [{"kind": "kpis"}, {"kind": "devices"}]}
        await _api(served, *supervisor, "PUT", f"/api/v1/walls/{wall}", body=layout)
        device = await river_sensor(hub, "Pos Pantau Kali Angke", "Jakarta")
        await device.send_telemetry({"battery_pct": 80, "rssi_dbm": -60})
        console = await new_page()
        await sign_in(console, served, *supervisor)
        screen = await _open_wall(new_page, served, supervisor, wall, "alarm")
        # The sensor is online before it fails (other tests' devices share the database, so it
        # need not be among the console list's first rows: ask the hub).

        async def sensor_online() -> bool:
            path = f"/api/v1/devices/{device.device_id}"
            return bool((await _api(served, *supervisor, "GET", path))["state"] == "online")

        await eventually(sensor_online, timeout=10, interval=0.1)

        await device.crash()
        alarm = console.locator("#alarm-panel li", has_text="Pos Pantau Kali Angke")
        await expect(alarm).to_contain_text("offline")
        # Nobody acknowledged it in time: the supervisor is told, loudly.
        await expect(alarm.locator(".escalated")).to_contain_text("Diteruskan ke supervisor")
        await expect(console.locator("#alarm-escalated")).to_be_visible()
        await expect(console.locator("#notifications li.urgent").first).to_contain_text(
            "diteruskan ke supervisor"
        )
        figure = _tile(screen, 0).locator(".kpi", has_text="Alarm aktif").locator(".kpi-value")
        await expect(figure).to_have_text(re.compile(r"^[1-9]\d*$"))
        await alarm.locator("button.alarm-ack").click()
        await expect(alarm).to_contain_text(f"Diakui oleh {supervisor[0]}")
        await expect(console.locator("#alarm-result")).to_contain_text("✓")
