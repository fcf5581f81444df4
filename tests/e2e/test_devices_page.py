"""The technician page in headless Chromium: live states, filters, charts, alarms, commands."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from playwright.async_api import APIResponse, Route, expect

from db import health_samples
from ops.devicehealth import service_of
from ops.users import Role
from tests.e2e.conftest import NewPage, console_user, keep_screenshot, run_hub, sign_in
from tests.fixtures.devices import register_device, river_sensor
from tests.fixtures.hub import ConfigFactory, unique_name
from tests.polling import eventually

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.broker]


async def test_a_technician_watches_a_device_fail_acknowledges_and_commands(
    device_hub_config: ConfigFactory, new_page: NewPage
) -> None:
    config = device_hub_config(devices={"hysteresis": 0.2, "sample_every": 0.0})
    async with run_hub(config) as (hub, served):
        device = await river_sensor(hub, "Pos Pantau Kali Garang", "Semarang")
        parts = service_of(hub)

        def battery() -> object:
            entry = parts.service.devices.get(device.device_id)
            return None if entry is None else entry.health.figures.get("battery_pct")

        for level in (90, 70, 50):
            await device.send_telemetry({"battery_pct": level, "rssi_dbm": -65})
            await eventually(lambda level=level: battery() == level, timeout=10)  # in order
        await eventually(lambda: parts.history.written >= 3, timeout=10)

        username, password = await console_user(hub, Role.TECHNICIAN)
        page = await new_page()
        await sign_in(page, served, username, password)
        await page.goto(served.url + "/devices")
        row = page.locator(f"tr[data-id='{device.device_id}']")
        await expect(row.locator(".state")).to_have_text("daring")
        await page.select_option("#filter-site", "Semarang")
        await page.select_option("#filter-state", "offline")
        await expect(row).to_have_count(0)
        await page.select_option("#filter-state", "")
        await row.click()
        await expect(page.locator("#detail-title")).to_contain_text("Pos Pantau Kali Garang")
        chart = page.locator("figure[data-figure=battery_pct]")
        await expect(chart.locator(".value")).to_have_text("50 %")
        await expect(chart.locator("polyline")).to_have_count(1)
        points = await chart.locator("polyline").get_attribute("points") or ""
        assert len(points.split()) == 3

        await page.click("#commands button[data-command=ping]")
        await expect(page.locator("#command-result")).to_have_text("ping: berhasil")

        await device.crash()
        await expect(row.locator(".state")).to_have_text("luring")
        alarm = page.locator("#alarms li", has_text=device.device_id)
        await expect(alarm).to_contain_text("offline")
        await keep_screenshot(page, "devices", docs=True)
        await alarm.locator("button.ack").click()
        await expect(alarm).to_contain_text(f"Diterima oleh {username}")
        await page.click("[data-lang=en]")
        await expect(row.locator(".state")).to_have_text("offline")
        await expect(alarm).to_contain_text(f"Acknowledged by {username}")


async def test_an_alarm_raised_while_the_lists_load_is_not_wiped_by_the_older_list(
    device_hub_config: ConfigFactory, new_page: NewPage
) -> None:
    """The page's first list of alarms, taken before the device fell, answers after the alarm."""
    async with run_hub(device_hub_config(devices={"hysteresis": 0.2})) as (hub, served):
        device = await river_sensor(hub, "Pos Pantau Banjir Kanal", "Semarang")
        await eventually(lambda: device.device_id in service_of(hub).service.devices)
        username, password = await console_user(hub, Role.TECHNICIAN)
        page = await new_page()
        await sign_in(page, served, username, password)
        # The console asks for the active alarms too: only the technician page's first list is held.
        await expect(page.locator("body")).to_have_attribute("data-snapshots", "1")
        first: asyncio.Queue[tuple[Route, APIResponse]] = asyncio.Queue()
        held = False

        async def hold_first(route: Route) -> None:
            nonlocal held
            if held:  # later lists (a device the page does not know yet) go straight through
                await route.continue_()
                return
            held = True
            await first.put((route, await route.fetch()))  # the active alarms as they are now

        await page.route("**/api/v1/alarms?status=active*", hold_first)
        await page.goto(served.url + "/devices")
        route, answer = await asyncio.wait_for(first.get(), timeout=10)
        await device.crash()
        alarm = page.locator("#alarms li", has_text=device.device_id)
        await expect(alarm).to_contain_text("offline")
        refreshes = int(await page.locator("body").get_attribute("data-refreshes") or 0)
        await route.fulfill(response=answer)
        await page.unroute("**/api/v1/alarms?status=active*")
        await expect(page.locator("body")).to_have_attribute("data-refreshes", str(refreshes + 1))
        await expect(alarm).to_contain_text("offline")


async def test_the_page_without_a_session_points_to_the_console(
    device_hub_config: ConfigFactory, new_page: NewPage
) -> None:
    async with run_hub(device_hub_config()) as (_, served):
        page = await new_page()
        await page.goto(served.url + "/devices")
        await expect(page.locator("#signed-out")).to_be_visible()
        await expect(page.locator("#page")).to_be_hidden()


async def test_a_long_history_is_charted_as_averages_within_a_min_max_band(
    device_hub_config: ConfigFactory, new_page: NewPage
) -> None:
    async with run_hub(device_hub_config()) as (hub, served):
        device_id = unique_name("busy")
        now = dt.datetime.now(dt.UTC)
        samples = [  # one every 5 s over the last hour: more than the page's 500 points
            health_samples.Sample(
                device_id,
                now - dt.timedelta(seconds=5 * n + 1),
                "online",
                {"battery_pct": 50 + n % 7},
            )
            for n in range(700)
        ]
        async with hub.pool.acquire() as conn:
            row = await register_device(conn, device_id, name="Pos Pantau Sibuk")
            await health_samples.copy_samples(conn, samples)
        assert row is not None
        service_of(hub).service.registered(row)

        username, password = await console_user(hub, Role.TECHNICIAN)
        page = await new_page()
        await sign_in(page, served, username, password)
        await page.goto(served.url + "/devices")
        await page.locator(f"tr[data-id='{device_id}']").click()
        chart = page.locator("figure[data-figure=battery_pct]")
        await expect(chart.locator("polygon.band")).to_have_count(1)
        await expect(chart.locator("polyline")).to_have_count(1)
        await expect(chart.locator("figcaption")).to_contain_text("rata-rata per 8s")
        points = await chart.locator("polyline").get_attribute("points") or ""
        assert 400 < len(points.split()) <= 500
        band = await chart.locator("polygon.band").get_attribute("points") or ""
        assert len(band.split()) == 2 * len(points.split())
