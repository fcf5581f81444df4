"""The radio panel in headless Chromium: a gateway with its link state and its rig (a rigctld),
a channel picked and hold-to-talk keying the rig, log lines as the radio puts them on the bus
(live, filtered), the CSV export downloading, and the radio badge on a unit opening its thread
with each message's state."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import random
import string
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import Route, WebSocket, expect

from ops.app import Hub
from ops.users import Role
from ops.web.app import Served
from radio.events import RADIO_FRAME, RadioFrameLogged
from radio.rigsim import RigctldServer
from tests.e2e.conftest import NewPage, console_user, keep_screenshot, run_hub, sign_in
from tests.fixtures.hub import ConfigFactory, unique_name
from tests.integration.units_support import add_unit
from tests.polling import eventually

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.broker]

#: A message that starts as a spreadsheet formula would (a phone number's "+").
CALL_BACK = "+62 812 5550 101 hubungi pelapor"


@contextlib.asynccontextmanager
async def quiet_tnc() -> AsyncIterator[int]:
    """A KISS-over-TCP port that takes the gateway's connection and says nothing; yields it."""
    writers: list[asyncio.StreamWriter] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        with contextlib.suppress(ConnectionError):
            while await reader.read(1024):
                pass

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


def frame(gateway: str, call: str, **fields: Any) -> RadioFrameLogged:
    values: dict[str, Any] = {
        "at": datetime.now(UTC),
        "gateway": gateway,
        "direction": "in",
        "kind": "position",
        "callsign": call,
        "text": "-6.2000,106.8000",
        "tnc2": f"{call}>APRS:!0612.00S/10648.00E>",
    }
    values.update(fields)
    return RadioFrameLogged(**values)


async def test_radio_panel_gateway_log_csv_and_unit_thread(
    make_hub_config: ConfigFactory, new_page: NewPage
) -> None:
    gateway = unique_name("gw")
    call = "YD" + "".join(random.choices(string.ascii_uppercase + string.digits, k=4))  # noqa: S311
    station = f"{call}-7"
    rig = RigctldServer()
    await rig.start()
    try:
        async with quiet_tnc() as port:
            config = make_hub_config(
                radio={
                    "callsign": "YB0PSK",
                    "gateways": [
                        {
                            "id": gateway,
                            "name": "Posko Utara",
                            "url": f"tcp://127.0.0.1:{port}",
                            "ptt": "rig",
                            "rig": f"tcp://127.0.0.1:{rig.port}",
                            "tx_timeout": 20,
                            "channels": [
                                {"name": "APRS", "frequency": 144_390_000},
                                {"name": "Lokal", "frequency": 145_500_000},
                            ],
                            "default_channel": "APRS",
                        }
                    ],
                }
            )
            async with run_hub(config) as (hub, served):
                await _walk_the_panel(hub, served, new_page, gateway, station, rig)
    finally:
        await rig.stop()


async def _walk_the_panel(  # noqa: PLR0915, PLR0917 - one walk through one room
    hub: Hub,
    served: Served,
    new_page: NewPage,
    gateway: str,
    station: str,
    rig: RigctldServer,
) -> None:
    unit_id = await add_unit(hub, kind="medic", channels=(("radio", station),))
    username, password = await console_user(hub, Role.OPERATOR)
    page = await new_page()
    await sign_in(page, served, username, password)
    panel = page.locator("[data-panel=radio]")
    row = panel.locator(f".radio-gateway[data-gateway='{gateway}']")
    await expect(row).to_contain_text("Posko Utara")
    await expect(row).to_have_attribute("data-link", "up")
    await expect(row.locator(".radio-link")).to_contain_text("terhubung")
    await expect(row.locator(".radio-ptt")).to_contain_text("diam")
    await expect(row.locator(".radio-rig")).to_contain_text("rig tersambung")
    await expect(row.locator(".radio-current")).to_contain_text("APRS")

    # The channel picker tunes the rig; the panel shows the channel once the rig reports it.
    await row.locator(f"#radio-channel-{gateway}").select_option("Lokal")
    await row.locator(".radio-set-channel").click()
    await eventually(lambda: rig.frequency == 145_500_000)
    await expect(row.locator(".radio-current")).to_contain_text("Lokal")

    # Hold to talk: keyed while held, unkeyed on release.
    await row.locator(".radio-talk").hover()
    await page.mouse.down()
    await eventually(lambda: rig.ptt)
    await expect(row.locator(".radio-talk")).to_have_attribute("aria-pressed", "true")
    await expect(row.locator(".radio-ptt")).to_contain_text("MEMANCAR")
    await page.mouse.up()
    await eventually(lambda: not rig.ptt)
    await expect(row.locator(".radio-ptt")).to_contain_text("diam")

    # Only this test's gateway: other tests' lines share the database.
    await panel.locator("#radio-filter-gateway").select_option(gateway)
    await panel.locator("#radio-filter-kind").select_option("message")
    await panel.locator(".radio-filters button[type=submit]").click()
    await expect(panel.locator(".radio-log")).to_contain_text("Tidak ada baris log.")
    await panel.locator("#radio-filter-kind").select_option("")
    await panel.locator(".radio-filters button[type=submit]").click()
    # The keying by hand is in the log.
    await expect(panel.locator(".radio-lines li[data-kind=ptt]").first).to_contain_text("PTT")
    await panel.locator("#radio-filter-direction").select_option("in")
    await panel.locator(".radio-filters button[type=submit]").click()
    await expect(panel.locator(".radio-log")).to_contain_text("Tidak ada baris log.")
    await panel.locator("#radio-filter-direction").select_option("")
    await panel.locator("#radio-filter-callsign").fill(station)
    await panel.locator(".radio-filters button[type=submit]").click()
    await expect(panel.locator(".radio-log")).to_contain_text("Tidak ada baris log.")

    start = datetime.now(UTC) - timedelta(seconds=30)
    lines = [
        frame(
            gateway,
            station,
            direction="out",
            kind="message",
            number="1",
            attempt=1,
            text="Ke Posko Utara segera",
            unit_id=unit_id,
            at=start,
        ),
        frame(
            gateway,
            station,
            direction="out",
            kind="message",
            number="1",
            attempt=2,
            text="Ke Posko Utara segera",
            unit_id=unit_id,
            at=start + timedelta(seconds=15),
        ),
        frame(
            gateway,
            station,
            direction="in",
            kind="ack",
            number="1",
            text="",
            at=start + timedelta(seconds=20),
        ),
        frame(
            gateway,
            station,
            direction="out",
            kind="message",
            number="2",
            attempt=1,
            text=CALL_BACK,
            unit_id=unit_id,
            at=start + timedelta(seconds=25),
        ),
        frame(gateway, station, at=start + timedelta(seconds=26)),
    ]
    for line in lines:
        hub.bus.publish(RADIO_FRAME, line, source="test")
    items = panel.locator(".radio-lines li")
    await expect(items).to_have_count(len(lines))
    await expect(items.first).to_contain_text("posisi")
    await expect(items.nth(4)).to_contain_text("Ke Posko Utara segera")
    await expect(panel.locator(".radio-lines li[data-direction=out]").first).to_contain_text(
        "keluar"
    )

    async with page.expect_download() as download_info:
        await panel.locator("a.radio-csv").click()
    download = await download_info.value
    path = await download.path()
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert rows[0][:3] == ["id", "at", "gateway"]
    assert len(rows) == len(lines) + 1
    text = rows[0].index("text")
    assert {r[2] for r in rows[1:]} == {gateway}
    assert {r[rows[0].index("callsign")] for r in rows[1:]} == {station}
    assert f"'{CALL_BACK}" in [r[text] for r in rows[1:]]  # a spreadsheet reads no formula

    units = page.locator("[data-panel=units]")
    await units.locator("#unit-search").fill(unit_id)
    badge = units.locator(f".unit-list [data-unit='{unit_id}'] .radio-badge")
    await expect(badge).to_contain_text("radio")
    await badge.click()
    thread = panel.locator(".radio-thread")
    await expect(thread.locator("li[data-number='1']")).to_have_attribute("data-state", "acked")
    await expect(thread.locator("li[data-number='1']")).to_contain_text("dikonfirmasi")
    await expect(thread.locator("li[data-number='1']")).to_contain_text("2\u00d7 kirim")
    await expect(thread.locator("li[data-number='2']")).to_have_attribute("data-state", "sent")

    # A retry heard later turns the open thread's message to "retried", live.
    hub.bus.publish(
        RADIO_FRAME,
        frame(
            gateway,
            station,
            direction="out",
            kind="message",
            number="2",
            attempt=2,
            text=CALL_BACK,
            unit_id=unit_id,
        ),
        source="test",
    )
    await expect(thread.locator("li[data-number='2']")).to_have_attribute("data-state", "retried")
    await expect(thread.locator("li[data-number='2']")).to_contain_text("diulang")
    await thread.scroll_into_view_if_needed()
    await keep_screenshot(page, "radio-panel", docs=True)


async def test_a_line_logged_while_the_log_loads_is_not_lost(
    make_hub_config: ConfigFactory, new_page: NewPage
) -> None:
    """The log page is what the database held when the hub read it; a line committed after
    that arrives only over the live socket, maybe before the page's answer does. The answer
    must not wipe it: the request is held here until the live line has reached the browser."""
    call = "YD" + "".join(random.choices(string.ascii_uppercase + string.digits, k=4))  # noqa: S311
    station = f"{call}-7"
    text = f"Jembatan putus {unique_name('km')}"
    heard: list[str] = []
    held: asyncio.Queue[Route] = asyncio.Queue()

    def on_socket(socket: WebSocket) -> None:
        socket.on("framereceived", lambda payload: heard.append(str(payload)))

    async def hold_filtered(route: Route) -> None:
        # The panel's own first load may still be on its way: only the filtered one is held.
        if "callsign=" in route.request.url:
            await held.put(route)
        else:
            await route.continue_()

    async with run_hub(make_hub_config()) as (hub, served):
        username, password = await console_user(hub, Role.OPERATOR)
        page = await new_page()
        page.on("websocket", on_socket)
        await sign_in(page, served, username, password)
        panel = page.locator("[data-panel=radio]")
        await page.route("**/api/v1/radio/log?*", hold_filtered)
        await panel.locator("#radio-filter-callsign").fill(station)
        await panel.locator(".radio-filters button[type=submit]").click()
        route = await asyncio.wait_for(held.get(), timeout=10)
        answer = await route.fetch()  # the hub's answer now: the line is not in the database yet
        hub.bus.publish(RADIO_FRAME, frame("gw-late", station, text=text), source="test")
        await eventually(lambda: any(text in payload for payload in heard))
        await route.fulfill(response=answer)
        await expect(panel.locator(".radio-lines")).to_contain_text(text)
        await page.unroute("**/api/v1/radio/log?*")
