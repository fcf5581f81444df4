"""The units and dispatch panel in headless Chromium: units live with freshness, recommend for
the selected case, dispatch, and the order's ladder turning acknowledged as the app answers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiomqtt
import pytest
from playwright.async_api import expect

from devices.mqtt.unitapp import UnitApp
from ops.app import Hub
from ops.shifts.schedule import Schedule
from ops.units.service import UnitSpec, create_unit
from ops.users import Role
from ops.web.app import Served
from tests.e2e.conftest import NewPage, console_user, keep_screenshot, sign_in
from tests.fixtures.hub import client_of, log_in, unique_name
from tests.integration.units_support import Spot, add_unit, new_spot

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.broker]


async def create_case(served: Served, username: str, password: str, body: dict[str, Any]) -> Any:
    async with client_of(served) as client:
        response = await log_in(client, username, password)
        assert response.status == 200
        async with client.post("/api/v1/cases", json={**body, "channel": "api"}) as created:
            assert created.status == 201, await created.text()
            return await created.json()


async def test_recommend_dispatch_and_watch_the_ladder(
    served_hub: tuple[Hub, Served], new_page: NewPage
) -> None:
    hub, served = served_hub
    username, password = await console_user(hub, Role.OPERATOR)
    spot = new_spot()
    near = await add_unit(hub, kind="fire", at=spot.near(0.8), skills=("firefighting",))
    far = await add_unit(hub, kind="fire", at=spot.near(5.0), age_s=7200)
    page = await new_page()
    await sign_in(page, served, username, password)
    panel = page.locator("[data-panel=units]")
    # Other tests' units share the database: find ours by name, as an operator would.
    await panel.locator("#unit-search").fill(near)
    await expect(panel.locator(f".unit-list [data-unit='{near}']")).to_contain_text("siaga")
    await expect(panel.locator(".unit-list li")).to_have_count(1)
    await expect(panel.locator(".position-stats")).to_contain_text("Posisi:")

    case = await create_case(
        served,
        username,
        password,
        {
            "title": "Kebakaran gudang di Pasar Minggu",
            "description": "Asap tebal dari gudang.",
            "category": "fire",
            "priority": "critical",
            "lat": spot.lat,
            "lon": spot.lon,
        },
    )
    host, port = hub.config.mqtt.host_port
    app = UnitApp(near, host=host, port=port, prefix=hub.config.mqtt.prefix)
    task = asyncio.create_task(app.run())
    try:
        async with asyncio.timeout(10):
            await app.subscribed.wait()
        await page.locator(f"#queue [data-case='{case['id']}']").click()
        await panel.locator("#recommend").click()
        ranked = panel.locator(".ranked li")
        await expect(ranked.first).to_have_attribute("data-unit", near)
        await expect(ranked.first).to_contain_text("0.8 km")
        await expect(panel.locator(f".ranked li[data-unit='{far}']")).to_contain_text("posisi basi")
        await panel.locator("textarea[name=message]").fill("Kebakaran gudang, segera ke lokasi")
        await panel.locator("#dispatch-send").click()
        order = panel.locator(".orders .order").first
        await expect(order).to_contain_text(case["number"])
        step = order.locator(f".ladder[data-unit='{near}'] li[data-channel=mqtt]")
        await expect(step).to_have_attribute("data-state", "acknowledged")
        await expect(step).to_contain_text("dikonfirmasi")
        await expect(panel.locator(f".unit-list [data-unit='{near}']")).to_contain_text("di jalan")
        await keep_screenshot(page, "dispatch-panel", docs=True)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert len(app.acted) == 1


@contextlib.asynccontextmanager
async def moving(hub: Hub, unit_id: str, spot: Spot) -> AsyncIterator[list[int]]:
    """The unit reports a new fix over MQTT every 20 ms meanwhile; yields [fixes sent]."""
    host, port = hub.config.mqtt.host_port
    topic = hub.mqtt.topic("units", unit_id, "position")
    stop = asyncio.Event()
    sent = [0]

    async def keep_moving() -> None:
        async with aiomqtt.Client(host, port, identifier=unique_name("tracker")) as client:
            while not stop.is_set():
                lat, lon = spot.near(1.0 + sent[0] / 10000)
                fix = {"lat": lat, "lon": lon, "ts": time.time()}
                await client.publish(topic, json.dumps(fix).encode(), qos=1)
                sent[0] += 1
                await asyncio.sleep(0.02)

    mover = asyncio.create_task(keep_moving())
    try:
        yield sent
    finally:
        stop.set()
        await mover


async def test_typing_in_the_units_panel_survives_live_updates(
    served_hub: tuple[Hub, Served], new_page: NewPage
) -> None:
    """A unit moving while the operator types must not steal the focus, the keystrokes, the
    message being written or the units ticked."""
    hub, served = served_hub
    username, password = await console_user(hub, Role.OPERATOR)
    spot = new_spot()
    wanted = await add_unit(hub, kind="medic", at=spot.near(0.5), skills=("first_aid",))
    other = await add_unit(hub, kind="medic", at=spot.near(1.0), skills=("first_aid",))
    page = await new_page()
    await sign_in(page, served, username, password)
    panel = page.locator("[data-panel=units]")
    # The list shows a page of units and other tests' units share the database: wait for the
    # panel, not for our unit among the first page.
    await expect(panel.locator(".unit-list li").first).to_be_visible()
    case = await create_case(
        served,
        username,
        password,
        {
            "title": "Warga pingsan di halte",
            "description": "Butuh pertolongan pertama.",
            "category": "medical",
            "priority": "high",
            "lat": spot.lat,
            "lon": spot.lon,
        },
    )

    search = panel.locator("#unit-search")
    async with moving(hub, other, spot) as sent:
        await search.click()
        await search.press_sequentially(wanted, delay=40)
    assert sent[0] > 10, "the unit must have moved while the operator typed"
    await expect(search).to_have_value(wanted)
    await expect(search).to_be_focused()
    await expect(panel.locator(".unit-list li")).to_have_count(1)
    await expect(panel.locator(f".unit-list [data-unit='{wanted}']")).to_be_visible()

    await page.locator(f"#queue [data-case='{case['id']}']").click()
    await panel.locator("#recommend").click()
    await expect(panel.locator(f".ranked li[data-unit='{other}']")).to_be_visible()
    message = panel.locator("textarea[name=message]")
    words = "dua orang, bawa tandu"
    async with moving(hub, other, spot) as sent:
        await panel.locator(f".ranked input[value='{other}']").check()
        await message.click()
        await message.press("End")
        await message.press_sequentially(words, delay=40)
    assert sent[0] > 10
    await expect(message).to_have_value(f"{case['number']}: {words}")
    await expect(message).to_be_focused()
    await expect(panel.locator(f".ranked input[value='{other}']")).to_be_checked()
    await expect(panel.locator(f".ranked input[value='{wanted}']")).to_be_checked()


async def test_a_unit_shows_its_shift_and_when_it_is_off_duty(
    served_hub: tuple[Hub, Served], new_page: NewPage
) -> None:
    hub, served = served_hub
    username, password = await console_user(hub, Role.OPERATOR)
    schedule = Schedule.from_config(hub.config)
    current = schedule.at(datetime.now(UTC)).name
    resting = next(name for name in sorted(schedule.names) if name != current)
    unit_id = unique_name("sf")
    spec = UnitSpec.model_validate(
        {
            "id": unit_id,
            "callsign": unit_id[:16],
            "name": "Tagana",
            "kind": "volunteer",
            "shift": resting,
        }
    )
    await create_unit(hub.pool, hub.bus, spec, actor="test", schedule=schedule)
    page = await new_page()
    await sign_in(page, served, username, password)
    panel = page.locator("[data-panel=units]")
    await panel.locator("#unit-search").fill(unit_id)
    row = panel.locator(f".unit-list [data-unit='{unit_id}']")
    await expect(row).to_contain_text(f"sif {resting}")
    await expect(row).to_contain_text("lepas dinas")
    await expect(row).to_have_attribute("data-duty", "off")
    # The panel says which shift is on, and from when to when in the room's time.
    await expect(panel.locator(".shift-now")).to_have_attribute("data-shift", current)
    await expect(panel.locator(".shift-now")).to_contain_text(f"Sif sekarang: {current}")


async def test_the_map_and_the_list_agree_on_which_positions_are_stale(
    served_hub: tuple[Hub, Served], new_page: NewPage
) -> None:
    """One threshold (dispatch.stale_after, 15 minutes by default) on the list and the map."""
    hub, served = served_hub
    username, password = await console_user(hub, Role.VIEWER)
    spot = new_spot()
    recent = await add_unit(hub, kind="logistics", at=spot.near(0.2), age_s=12 * 60)
    old = await add_unit(hub, kind="logistics", at=spot.near(0.4), age_s=16 * 60)
    page = await new_page()
    await sign_in(page, served, username, password)
    panel = page.locator("[data-panel=units]")
    for unit_id, stale in ((recent, "false"), (old, "true")):
        await panel.locator("#unit-search").fill(unit_id)
        await expect(panel.locator(f".unit-list [data-unit='{unit_id}']")).to_have_attribute(
            "data-stale", stale
        )
        marker = page.locator("#map .pin-unit", has_text=unit_id.upper())
        await expect(marker).to_have_count(1)
        if stale == "true":
            await expect(marker).to_have_class(re.compile(r"\bstale\b"))
        else:
            await expect(marker).not_to_have_class(re.compile(r"\bstale\b"))
    # The status filter offers every status, and filters by it.
    options = panel.locator("#unit-filter option")
    await expect(options).to_have_count(7)  # all + six statuses
    await panel.locator("#unit-search").fill(old)
    await panel.locator("#unit-filter").select_option("dispatched")
    await expect(panel.locator(f".unit-list [data-unit='{old}']")).to_have_count(0)
    await panel.locator("#unit-filter").select_option("available")
    await expect(panel.locator(f".unit-list [data-unit='{old}']")).to_have_count(1)
