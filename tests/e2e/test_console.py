"""The operator console in headless Chromium: sign-in, live queue and map, expired sessions."""

from __future__ import annotations

import re
import secrets
from typing import Any

import pytest
from playwright.async_api import expect

from ops.app import Hub
from ops.users import Role
from ops.web.app import Served
from tests.e2e.conftest import NewPage, console_user, keep_screenshot, sign_in
from tests.fixtures.hub import client_of, log_in

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
