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
from playwright.async_api import APIResponse, Route, expect

from devices.mqtt.unitapp import UnitApp
from ops.app import Hub
from ops.shifts.schedule import Schedule
from ops.units.service import UnitSpec, create_unit
from ops.users import Role
from ops.web.app import Served
from tests.e2e.conftest import NewPage, console_user, keep_screenshot, sign_in
from tests.fixtures.hub import client_of, log_in, unique_name
from tests.integration.units_support import Spot, add_unit, json_of, new_spot, signed_in
from tests.polling import eventually

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


async def recommend_for(page: Any, case_id: int, first: str) -> Any:
    """Select the case in the queue and ask for units; ``first`` must rank first."""
    panel = page.locator("[data-panel=units]")
    await page.locator(f"#queue [data-case='{case_id}']").click()
    await panel.locator("#recommend").click()
    await expect(panel.locator(".ranked li").first).to_have_attribute("data-unit", first)
    return panel


async def dispatch_from_panel(page: Any, case_id: int, unit_id: str) -> tuple[Any, Any, str]:
    """Recommend for the case, send the first unit (``unit_id``): (panel, order row, order id)."""
    panel = await recommend_for(page, case_id, unit_id)
    await panel.locator("#dispatch-send").click()
    order = panel.locator(".orders .order", has=page.locator(f".ladder[data-unit='{unit_id}']"))
    await expect(order).to_have_attribute("data-status", "open")
    await expect(order).to_contain_text(f"{unit_id} menunggu konfirmasi")
    order_id = await order.get_attribute("data-order")
    assert order_id
    return panel, order, order_id


async def order_and_unit(hub: Hub, served: Served, order_id: str, unit_id: str) -> tuple[Any, Any]:
    """The order and the unit as the hub has them now."""
    async with signed_in(hub, served, Role.VIEWER) as client:
        status, order = await json_of(client, "GET", f"/api/v1/dispatches/{order_id}")
        assert status == 200, order
        status, unit = await json_of(client, "GET", f"/api/v1/units/{unit_id}")
        assert status == 200, unit
    return order, unit


async def fire_case(served: Served, username: str, password: str, spot: Spot) -> Any:
    return await create_case(
        served,
        username,
        password,
        {
            "title": "Kebakaran rumah di Jatinegara",
            "description": "Api di lantai dua.",
            "category": "fire",
            "priority": "high",
            "lat": spot.lat,
            "lon": spot.lon,
        },
    )


async def test_an_operator_records_an_acknowledgement_by_hand(
    served_hub: tuple[Hub, Served], new_page: NewPage
) -> None:
    """Nobody's app answers this unit: the crew phoned in, and the operator records it."""
    hub, served = served_hub
    username, password = await console_user(hub, Role.OPERATOR)
    spot = new_spot()
    unit_id = await add_unit(hub, kind="fire", at=spot.near(0.5), skills=("firefighting",))
    page = await new_page()
    await sign_in(page, served, username, password)
    case = await fire_case(served, username, password, spot)
    _, order, order_id = await dispatch_from_panel(page, case["id"], unit_id)
    await expect(order.locator(".ladder li[data-channel=mqtt]")).to_have_attribute(
        "data-state", re.compile("queued|sent")
    )
    await order.get_by_role("button", name="Catat konfirmasi").click()
    await expect(order).to_have_attribute("data-status", "acknowledged")
    await expect(order).to_contain_text(f"{unit_id} dikonfirmasi")
    await expect(order.get_by_role("button", name="Catat konfirmasi")).to_have_count(0)
    await expect(order.get_by_role("button", name="Batalkan")).to_have_count(0)
    body, unit = await order_and_unit(hub, served, order_id, unit_id)
    assert body["status"] == "acknowledged"
    assert [(a["unit"], a["status"]) for a in body["assignments"]] == [(unit_id, "acknowledged")]
    assert unit["status"] == "en_route"


async def test_an_order_sent_while_the_open_orders_load_stays_in_the_list(
    served_hub: tuple[Hub, Served], new_page: NewPage
) -> None:
    """The panel's list of open orders, taken before the order was sent, answers after it."""
    hub, served = served_hub
    username, password = await console_user(hub, Role.OPERATOR)
    spot = new_spot()
    unit_id = await add_unit(hub, kind="fire", at=spot.near(0.5), skills=("firefighting",))
    page = await new_page()
    held: list[tuple[Route, APIResponse]] = []

    async def hold_orders(route: Route) -> None:
        held.append((route, await route.fetch()))  # the open orders as they are now

    await page.route("**/api/v1/dispatches?open=true*", hold_orders)
    await sign_in(page, served, username, password)
    # Both asked before the order below: when the panel mounts, and with the first snapshot.
    await eventually(lambda: len(held) == 2)
    case = await fire_case(served, username, password, spot)
    panel, order, _ = await dispatch_from_panel(page, case["id"], unit_id)
    # Sent, and nothing more to hear of it until the crew answers.
    await expect(order.locator(".ladder li[data-channel=mqtt]")).to_have_attribute(
        "data-state", "sent"
    )
    for route, answer in held:
        await route.fulfill(response=answer)
    await page.unroute("**/api/v1/dispatches?open=true*")
    await expect(panel).to_have_attribute("data-refreshes", "2")
    await expect(order).to_contain_text(f"{unit_id} menunggu konfirmasi")


async def test_an_operator_cancels_an_order_with_a_reason_and_the_unit_is_free_again(
    served_hub: tuple[Hub, Served], new_page: NewPage
) -> None:
    hub, served = served_hub
    username, password = await console_user(hub, Role.OPERATOR)
    spot = new_spot()
    unit_id = await add_unit(hub, kind="fire", at=spot.near(0.9), skills=("firefighting",))
    page = await new_page()
    await sign_in(page, served, username, password)
    case = await fire_case(served, username, password, spot)
    panel, order, order_id = await dispatch_from_panel(page, case["id"], unit_id)
    prompts: list[tuple[str, str]] = []
    answered = asyncio.Event()

    async def answer(dialog: Any, reason: str | None) -> None:
        prompts.append((dialog.type, dialog.message))
        await (dialog.accept(reason) if reason else dialog.dismiss())
        answered.set()

    # Asked for a reason and given none: nothing is cancelled.
    page.once("dialog", lambda dialog: answer(dialog, None))
    await order.get_by_role("button", name="Batalkan").click()
    async with asyncio.timeout(5):
        await answered.wait()
    await expect(order).to_have_attribute("data-status", "open")
    page.once("dialog", lambda dialog: answer(dialog, "Api sudah padam"))
    await order.get_by_role("button", name="Batalkan").click()
    await expect(order).to_have_attribute("data-status", "cancelled")
    await expect(order).to_contain_text("dibatalkan")
    await expect(order.get_by_role("button", name="Batalkan")).to_have_count(0)
    assert prompts == [("prompt", "Alasan pembatalan?")] * 2
    await panel.locator("#unit-search").fill(unit_id)
    await expect(panel.locator(f".unit-list [data-unit='{unit_id}']")).to_have_attribute(
        "data-status", "available"
    )
    body, unit = await order_and_unit(hub, served, order_id, unit_id)
    assert body["status"] == "cancelled"
    assert [(a["unit"], a["status"]) for a in body["assignments"]] == [(unit_id, "cancelled")]
    assert unit["status"] == "available"


async def test_only_a_supervisor_sends_an_unavailable_unit_with_a_reason(
    served_hub: tuple[Hub, Served], new_page: NewPage
) -> None:
    hub, served = served_hub
    operator = await console_user(hub, Role.OPERATOR)
    supervisor = await console_user(hub, Role.SUPERVISOR)
    spot = new_spot()
    unit_id = await add_unit(hub, kind="medic", at=spot.near(0.4), skills=("first_aid",))
    pages = []
    for person in (operator, supervisor):
        page = await new_page()
        await sign_in(page, served, *person)
        pages.append(page)
    case = await create_case(
        served,
        *operator,
        {
            "title": "Korban tenggelam di Kali Ciliwung",
            "description": "Satu orang hanyut.",
            "category": "medical",
            "priority": "critical",
            "lat": spot.lat,
            "lon": spot.lon,
        },
    )
    operator_panel, supervisor_panel = [
        await recommend_for(page, case["id"], unit_id) for page in pages
    ]
    await expect(operator_panel.locator("input[name=override]")).to_have_count(0)
    # Meanwhile the unit is taken out of service.
    async with signed_in(hub, served, Role.SUPERVISOR) as client:
        status, body = await json_of(
            client,
            "POST",
            f"/api/v1/units/{unit_id}/status",
            json={"status": "out_of_service", "reason": "ban bocor"},
        )
        assert status == 200, body

    # An operator is told why not, in the panel, and nothing is sent.
    await operator_panel.locator("#dispatch-send").click()
    refusal = operator_panel.locator(".dispatch [role=alert]")
    await expect(refusal).to_contain_text(f"{unit_id} is out_of_service (ban bocor)")
    await expect(
        operator_panel.locator(".orders .order", has=pages[0].locator(f"[data-unit='{unit_id}']"))
    ).to_have_count(0)

    # A supervisor overrides, with a reason.
    await supervisor_panel.locator("input[name=override]").check()
    await supervisor_panel.locator("input[name=override_reason]").fill(
        "Unit terdekat, ban cadangan"
    )
    await supervisor_panel.locator("#dispatch-send").click()
    await expect(supervisor_panel.locator(".dispatch [role=status]")).to_contain_text("dikirim")
    order = supervisor_panel.locator(
        ".orders .order", has=pages[1].locator(f".ladder[data-unit='{unit_id}']")
    )
    await expect(order).to_have_attribute("data-status", "open")
    await expect(order).to_contain_text(case["number"])
    order_id = await order.get_attribute("data-order")
    assert order_id
    body, unit = await order_and_unit(hub, served, order_id, unit_id)
    assert body["case"]["id"] == case["id"]
    assert [a["unit"] for a in body["assignments"]] == [unit_id]
    assert unit["status"] == "dispatched"
