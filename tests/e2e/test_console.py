"""The operator console in headless Chromium: sign-in, live queue and map, expired sessions."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from typing import Any

import asyncpg
import pytest
from playwright.async_api import Route, expect

from ops.app import Hub
from ops.core.config import Config
from ops.users import Role
from ops.web.app import Served
from tests.e2e.conftest import NewPage, console_user, keep_screenshot, run_hub, sign_in
from tests.fixtures.hub import ConfigFactory, client_of, log_in

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.broker]

CASES = [
    {
        "title": "Banjir setinggi 1 m di Kampung Melayu",
        "description": "Warga terjebak di lantai dua, butuh perahu karet.",
        "category": "disaster",
        "priority": "critical",
        "lat": -6.2253,
        "lon": 106.8669,
    },
    {
        "title": "Lansia terlantar di Stasiun Manggarai",
        "description": "Penelepon melihat lansia kebingungan sejak pagi.",
        "category": "social_aid",
        "priority": "medium",
        "lat": -6.2099,
        "lon": 106.8502,
    },
]


async def create_case(served: Served, username: str, password: str, case: dict[str, Any]) -> Any:
    """A case through the hub's API, as another console or API client would."""
    async with client_of(served) as client:
        response = await log_in(client, username, password)
        assert response.status == 200
        async with client.post("/api/v1/cases", json={**case, "channel": "api"}) as created:
            assert created.status == 201, await created.text()
            return await created.json()


async def test_a_case_created_through_the_api_appears_in_the_queue_and_on_the_map(
    served_hub: tuple[Hub, Served], new_page: NewPage
) -> None:
    hub, served = served_hub
    username, password = await console_user(hub, Role.OPERATOR)
    page = await new_page()
    await sign_in(page, served, username, password)
    await expect(page.locator("#who-name")).to_have_text(username)
    await expect(page.locator("#map .leaflet-container, #map.leaflet-container")).to_have_count(1)
    # The offline outline of Indonesia is drawn from the vendored GeoJSON (no network).
    await expect(page.locator("#map path.map-outline").first).to_be_attached()
    # ... and the provinces as lines over it: the filled outline is painted first, beneath them.
    await expect(page.locator("#map path.map-provinces")).to_have_count(33)
    painted = await page.eval_on_selector_all(
        "#map path.map-outline, #map path.map-provinces",
        "paths => paths.map((p) => p.classList.contains('map-outline') ? 'outline' : 'province')",
    )
    assert painted.index("province") > max(i for i, p in enumerate(painted) if p == "outline")

    # Other tests' cases share the run's database: count from here, and tag ours.
    first_figure = page.locator("#kpis .kpi-value").first
    await expect(first_figure).to_have_text(re.compile(r"^\d+$"))
    open_before = int(await first_figure.text_content() or "")
    tag = f"RT {secrets.randbelow(20) + 1:02d}/RW {secrets.randbelow(20) + 1:02d}"
    numbers = []
    for case in CASES:
        case = {**case, "title": f"{case['title']} {tag}"}  # noqa: PLW2901
        created = await create_case(served, username, password, case)
        numbers.append(created["number"])
        # No reload: the live feed brings it into the queue and onto the map.
        item = page.locator(f"#queue [data-case='{created['id']}']")
        await expect(item).to_contain_text(created["number"])
        await expect(item).to_contain_text(case["title"])
        await expect(page.locator(".pin-case", has_text=created["number"])).to_have_count(1)

    # Most urgent first: the critical flood before the medium case.
    await page.fill("#queue-filter", tag)
    await expect(page.locator("#queue .number")).to_have_text(numbers)
    await page.keyboard.press("Escape")  # leave the filter; shortcuts work again
    await expect(page.locator("#queue [data-priority=critical] .badge")).to_contain_text("kritis")
    # Selecting shows the case; the indicators count it by priority.
    await page.keyboard.press("j")
    await expect(page.locator("#case-panel")).to_contain_text(numbers[0])
    await expect(page.locator("#kpis .kpi-value").first).to_have_text(str(open_before + 2))
    # English on demand, dates in the room's zone.
    await page.click("[data-lang=en]")
    await expect(page.locator("#queue-title")).to_have_text("Case queue")
    await expect(page.locator("#clock")).to_contain_text("WIB")
    await page.click("[data-lang=id]")
    await page.fill("#queue-filter", "")
    await page.click(".leaflet-control-zoom-out")  # a wider view of the city for the picture
    await page.wait_for_timeout(350)  # the zoom animation
    await keep_screenshot(page, "console", docs=True)


async def test_a_case_opened_while_the_queue_loads_is_not_wiped_by_the_older_snapshot(
    served_hub: tuple[Hub, Served], new_page: NewPage
) -> None:
    """The queue's first page, taken before the case was filed, answers after its live event."""
    hub, served = served_hub
    username, password = await console_user(hub, Role.OPERATOR)
    page = await new_page()
    held: asyncio.Queue[Route] = asyncio.Queue()

    async def hold_queue(route: Route) -> None:
        await held.put(route)

    await page.route("**/api/v1/cases?status=open*", hold_queue)
    await sign_in(page, served, username, password)
    route = await asyncio.wait_for(held.get(), timeout=10)
    answer = await route.fetch()  # the open queue as it is now, without the case below
    created = await create_case(served, username, password, CASES[1])
    # Drawn by the live event before the snapshot came in, and still there once it is drawn.
    item = page.locator(f"#queue [data-case='{created['id']}']")
    await expect(item).to_contain_text(created["number"])
    await route.fulfill(response=answer)
    await page.unroute("**/api/v1/cases?status=open*")
    await expect(page.locator("body")).to_have_attribute("data-snapshots", "1")
    await expect(item).to_contain_text(created["number"])


async def test_an_expired_session_returns_to_sign_in_and_keeps_what_was_typed(
    served_hub: tuple[Hub, Served], new_page: NewPage
) -> None:
    hub, served = served_hub
    username, password = await console_user(hub, Role.OPERATOR)
    page = await new_page()
    await sign_in(page, served, username, password)
    await page.fill("#queue-filter", "banjir kampung melayu")
    async with hub.pool.acquire() as conn:
        await conn.execute(
            "UPDATE sessions SET expires_at = now() - interval '1 second' "
            "WHERE user_id = (SELECT id FROM users WHERE username = $1)",
            username,
        )
    await page.keyboard.press("Escape")  # leave the field, then ask for fresh data (R)
    await page.keyboard.press("r")
    await expect(page.locator("#login")).to_be_visible()
    await expect(page.locator("#login-note")).to_contain_text("Sesi Anda berakhir")
    await expect(page.locator("#username")).to_have_value(username)
    await page.fill("#password", password)
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#shell")).to_be_visible()
    await expect(page.locator("#queue-filter")).to_have_value("banjir kampung melayu")


async def test_shortcuts_are_listed_and_the_console_is_signed_out_cleanly(
    served_hub: tuple[Hub, Served], new_page: NewPage
) -> None:
    hub, served = served_hub
    username, password = await console_user(hub, Role.VIEWER)
    page = await new_page()
    await sign_in(page, served, username, password)
    await page.keyboard.press("?")
    await expect(page.locator("#shortcuts")).to_be_visible()
    await expect(page.locator("#shortcuts")).to_contain_text("Saring antrean")
    await page.keyboard.press("Escape")
    await expect(page.locator("#shortcuts")).to_be_hidden()
    # A viewer reads the wall panel but cannot push.
    await page.click("#logout")
    await expect(page.locator("#login")).to_be_visible()
    await expect(page.locator("#login-note")).to_be_hidden()


OPEN_STATUSES = ["new", "triaged", "assigned", "in_progress", "reopened"]


async def _call(
    served: Served, username: str, password: str, method: str, path: str, *, body: Any = None
) -> tuple[int, Any]:
    async with client_of(served) as client:
        assert (await log_in(client, username, password)).status == 200
        kwargs = {} if body is None else {"json": body}
        async with client.request(method, path, **kwargs) as response:
            raw = await response.read()
            return response.status, (json.loads(raw) if raw else None)


async def test_every_open_case_is_counted_past_the_first_page(
    served_hub: tuple[Hub, Served], new_page: NewPage
) -> None:
    hub, served = served_hub
    async with hub.pool.acquire() as conn:
        await conn.execute(
            """
            INSERT INTO cases (channel, category, priority, title, sla_due_at)
            SELECT 'console', 'fire', 'low', 'Laporan massal ' || n, now() + interval '3 days'
            FROM generate_series(1, 230) AS n
            """
        )
        open_cases = await conn.fetchval(
            "SELECT count(*) FROM cases WHERE status = ANY($1::text[])", OPEN_STATUSES
        )
    assert open_cases > 200
    username, password = await console_user(hub, Role.OPERATOR)
    page = await new_page()
    await sign_in(page, served, username, password)
    await expect(page.locator("#kpis .kpi-value").first).to_have_text(str(open_cases))
    await expect(page.locator("#queue .queue-item")).to_have_count(open_cases)
    await expect(page.locator("#queue-capped")).to_be_hidden()


async def test_the_queue_shows_duplicates_and_clears_a_breach_the_hub_cleared(
    served_hub: tuple[Hub, Served], new_page: NewPage
) -> None:
    hub, served = served_hub
    operator = await console_user(hub, Role.OPERATOR)
    contact = f"0812{secrets.randbelow(10**8):08d}"
    # Far from the other tests' cases, so the likely duplicate is ours only.
    spot = {"lat": -2.5 - secrets.randbelow(1000) / 1000, "lon": 140.7}
    report = {**CASES[1], **spot, "reporter_contact": contact}
    parent = await create_case(served, *operator, report)
    child = await create_case(served, *operator, {**report, "title": "Lansia, laporan kedua"})
    assert child["duplicate_of"] == parent["id"]
    async with hub.pool.acquire() as conn:
        await conn.execute("UPDATE cases SET sla_breached_at = now() WHERE id = $1", parent["id"])
    page = await new_page()
    await sign_in(page, served, *operator)
    parent_item = page.locator(f"#queue [data-case='{parent['id']}']")
    child_item = page.locator(f"#queue [data-case='{child['id']}']")
    await expect(child_item.locator(".suspected")).to_contain_text(
        f"Diduga duplikat dari {parent['number']}"
    )
    await expect(parent_item.locator(".sla-breached")).to_be_visible()

    # Linked: the parent lists its duplicate, the child says whose it is.
    status, _ = await _call(
        served,
        *operator,
        "PUT",
        f"/api/v1/cases/{child['id']}/parent",
        body={"parent_id": parent["id"]},
    )
    assert status == 200
    await expect(parent_item.locator(".duplicates")).to_contain_text(
        f"1 duplikat tertaut: {child['number']}"
    )
    await expect(child_item.locator(".duplicates")).to_contain_text(parent["number"])

    # Re-prioritised with time left: the hub clears the breach, and so does the queue.
    status, body = await _call(
        served, *operator, "PATCH", f"/api/v1/cases/{parent['id']}", body={"priority": "low"}
    )
    assert status == 200, body
    assert body["sla_breached_at"] is None
    await expect(parent_item.locator(".sla-breached")).to_have_count(0)


async def test_a_device_picked_in_the_list_or_on_the_map_shows_its_detail(
    served_hub: tuple[Hub, Served], new_page: NewPage
) -> None:
    hub, served = served_hub
    supervisor = await console_user(hub, Role.SUPERVISOR)
    first, second = (f"sensor-{secrets.token_hex(3)}" for _ in range(2))
    for device_id, name, lat in (
        (first, "Pos Pantau Ciliwung", -6.21),
        (second, "AWS Monas", -6.18),
    ):
        status, body = await _call(
            served,
            *supervisor,
            "POST",
            "/api/v1/devices",
            body={
                "id": device_id,
                "kind": "mqtt_sensor",
                "name": name,
                "site": "Jakarta",
                "lat": lat,
                "lon": 106.83,
            },
        )
        assert status == 201, body
    page = await new_page()
    await sign_in(page, served, *supervisor)
    detail = page.locator("#device-detail")
    await expect(detail).to_contain_text("Pilih perangkat")
    await page.locator(f"#device-panel .device-row[data-device='{first}']").click()
    await expect(detail.locator(".device-head")).to_contain_text("Pos Pantau Ciliwung")
    await expect(detail.locator(".device-head .mark")).to_contain_text(re.compile(r"\w"))
    await expect(detail).to_contain_text("Jakarta")
    await expect(detail).to_contain_text("Tidak ada alarm aktif.")
    await expect(detail.locator("a.device-link")).to_have_attribute("href", f"/devices#{first}")
    # On the map: the device's marker picks it too.
    # (the two markers sit close together at this zoom: click the one meant, wherever it lies)
    await page.locator(".pin-device", has_text="AWS Monas").dispatch_event("click")
    await expect(detail.locator(".device-head")).to_contain_text("AWS Monas")
    await expect(
        page.locator(f"#device-panel .device-row[data-device='{second}']")
    ).to_have_attribute("aria-current", "true")


async def test_the_console_reconnects_by_itself_after_the_hub_restarts(
    make_hub_config: ConfigFactory, new_page: NewPage
) -> None:
    config: Config = make_hub_config()
    async with run_hub(config) as (hub, served):
        port = served.port
        operator = await console_user(hub, Role.OPERATOR)
        page = await new_page()
        await sign_in(page, served, *operator)
    await expect(page.locator("#live")).not_to_have_attribute("data-state", "open")
    await expect(page.locator("#live-text")).to_contain_text(re.compile("terputus|menyambung"))
    async with run_hub(config, port=port) as (_, served_again):
        await expect(page.locator("#live")).to_have_attribute("data-state", "open", timeout=30_000)
        created = await create_case(served_again, *operator, CASES[0])
        await expect(page.locator(f"#queue [data-case='{created['id']}']")).to_contain_text(
            created["number"]
        )
        await expect(page.locator("#shell")).to_be_visible()


async def test_a_session_that_ended_while_the_hub_was_away_asks_to_sign_in_again(
    make_hub_config: ConfigFactory, new_page: NewPage
) -> None:
    """The hub comes back and refuses the old session at the socket's handshake: the console
    asks on every refused attempt, not only on the first loss, and shows the sign-in form."""
    config: Config = make_hub_config()
    async with run_hub(config) as (hub, served):
        port = served.port
        username, password = await console_user(hub, Role.OPERATOR)
        page = await new_page()
        await sign_in(page, served, username, password)
    await expect(page.locator("#live")).not_to_have_attribute("data-state", "open")
    assert config.database.url
    conn = await asyncpg.connect(config.database.url)
    try:
        ended = await conn.execute(
            "UPDATE sessions SET expires_at = now() - interval '1 second' "
            "WHERE user_id = (SELECT id FROM users WHERE username = $1)",
            username,
        )
    finally:
        await conn.close()
    assert ended == "UPDATE 1"
    async with run_hub(config, port=port):
        await expect(page.locator("#login")).to_be_visible(timeout=30_000)
        await expect(page.locator("#login-note")).to_contain_text("Sesi Anda berakhir")
        await expect(page.locator("#username")).to_have_value(username)


async def test_a_lost_hub_is_shown_in_a_banner_until_the_socket_is_back(
    make_hub_config: ConfigFactory, new_page: NewPage
) -> None:
    config: Config = make_hub_config()
    async with run_hub(config) as (hub, served):
        port = served.port
        operator = await console_user(hub, Role.OPERATOR)
        page = await new_page()
        await sign_in(page, served, *operator)
        banner = page.locator("#offline-banner")
        await expect(banner).to_be_hidden()
    # The hub is gone: the banner under the header says so in shape and words, not folded away
    # in the hub panel.
    await expect(banner).to_be_visible()
    await expect(banner).to_have_attribute("role", "status")
    await expect(banner.locator(".offline-shape")).to_have_text("▲")
    await expect(banner).to_contain_text("Terputus dari hub")
    await expect(banner).to_contain_text("data terakhir yang diketahui")
    header_bottom = await page.locator("header.bar").evaluate(
        "e => e.getBoundingClientRect().bottom"
    )
    banner_top = await banner.evaluate("e => e.getBoundingClientRect().top")
    assert banner_top >= header_bottom - 1
    await page.click("[data-lang=en]")
    await expect(banner).to_contain_text("Lost the hub")
    await page.click("[data-lang=id]")
    await keep_screenshot(page, "console-lost-hub")
    async with run_hub(config, port=port):
        await expect(page.locator("#live")).to_have_attribute("data-state", "open", timeout=30_000)
        await expect(banner).to_be_hidden()
        await expect(page.locator("#shell")).to_be_visible()


async def test_new_urgent_cases_appear_in_the_notifications_strip_newest_first(
    served_hub: tuple[Hub, Served], new_page: NewPage
) -> None:
    hub, served = served_hub
    operator = await console_user(hub, Role.OPERATOR)
    page = await new_page()
    await sign_in(page, served, *operator)
    strip = page.locator("#notifications")
    tag = secrets.token_hex(3)
    spot = {"lat": -3.0 - secrets.randbelow(1000) / 1000, "lon": 128.2}
    critical = await create_case(
        served, *operator, {**CASES[0], **spot, "title": f"Banjir bandang {tag}"}
    )
    # No reload: the live feed brings it into the strip, with its priority's shape and words.
    first = strip.locator("li", has_text=critical["number"])
    await expect(first).to_have_count(1)
    await expect(first).to_have_attribute("data-tone", "bad")
    await expect(first.locator(".shape")).to_have_text("◆")
    await expect(first).to_contain_text(
        f"Kasus baru {critical['number']} (kritis): Banjir bandang {tag}"
    )
    await expect(first.locator("time")).to_have_text(re.compile(r"^\d{2}[.:]\d{2}"))
    high = await create_case(
        served,
        *operator,
        {**CASES[1], **spot, "priority": "high", "title": f"Tanah longsor {tag}"},
    )
    # Newest first.
    await expect(strip.locator("li").first).to_contain_text(high["number"])
    await expect(strip.locator("li").first.locator(".shape")).to_have_text("▲")
    await expect(strip.locator("li").nth(1)).to_contain_text(critical["number"])

    # The strip keeps the newest 30: the oldest fall off the end.
    async with client_of(served) as client:
        assert (await log_in(client, *operator)).status == 200
        for n in range(30):
            body = {
                **CASES[1],
                "lat": spot["lat"] + n / 100,
                "lon": spot["lon"],
                "title": f"Laporan {tag} #{n}",
                "channel": "api",
            }
            async with client.post("/api/v1/cases", json=body) as created:
                assert created.status == 201, await created.text()
    await expect(strip.locator("li").first).to_contain_text(f"Laporan {tag} #29")
    await expect(strip.locator("li")).to_have_count(30)
    await expect(strip.locator("li", has_text=critical["number"])).to_have_count(0)
    await expect(strip.locator("li", has_text=high["number"])).to_have_count(0)


async def test_past_its_first_rows_the_device_list_points_to_the_technician_page(
    served_hub: tuple[Hub, Served], new_page: NewPage
) -> None:
    hub, served = served_hub
    supervisor = await console_user(hub, Role.SUPERVISOR)
    cameras = [f"cam-{secrets.token_hex(4)}-{index}" for index in range(55)]
    try:
        async with client_of(served) as client:
            assert (await log_in(client, *supervisor)).status == 200
            for camera in cameras:  # more than the console's list shows, whatever else is there
                body = {"id": camera, "kind": "camera"}
                async with client.post("/api/v1/devices", json=body) as response:
                    assert response.status == 201, await response.text()
        page = await new_page()
        await sign_in(page, served, *supervisor)
        more = page.locator("#device-panel .devices-more a")
        await expect(more).to_contain_text(re.compile(r"^50 dari \d+ perangkat"))
        await expect(more).to_have_attribute("href", "/devices")
        await expect(page.locator("#device-panel li[data-state]")).to_have_count(50)
    finally:
        async with hub.pool.acquire() as conn:  # the run's database is shared: leave it as found
            await conn.execute("DELETE FROM devices WHERE id = ANY($1)", cameras)
