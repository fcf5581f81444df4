"""MQTT panic buttons through the real broker: a press opens a high-priority case where it is."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

import aiomqtt
import pytest

from ops.app import Hub
from ops.core.bus import Subscription
from ops.core.events import CASE_OPENED, CaseSnapshot
from tests.fixtures.hub import wait_ready

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

WAIT = 10.0


async def press(hub: Hub, device_id: str, payload: bytes | dict[str, Any]) -> None:
    host, port = hub.config.mqtt.host_port
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    async with aiomqtt.Client(host, port, identifier=f"button-{secrets.token_hex(4)}") as client:
        await client.publish(hub.mqtt.topic("panic", device_id), body, qos=1)


async def opened(subscription: Subscription, title: str) -> CaseSnapshot:
    async with asyncio.timeout(WAIT):
        while True:
            envelope = await subscription.get()
            if envelope.payload.title == title:
                snapshot: CaseSnapshot = envelope.payload
                return snapshot


def device() -> str:
    return f"btn-{secrets.token_hex(4)}"


async def test_a_press_opens_a_high_priority_case_at_the_payload_location(hub: Hub) -> None:
    await wait_ready(hub)
    button = device()
    async with hub.bus.subscribe(CASE_OPENED, name="test-panic") as cases:
        await press(hub, button, {"lat": -6.175, "lon": 106.827, "id": "p1", "battery": 80})
        case = await opened(cases, f"Panic button {button}")
    assert (case.priority, case.channel, case.status) == ("high", "panic", "new")
    assert (case.lat, case.lon) == (-6.175, 106.827)
    assert case.category == "public_order"
    async with hub.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM cases WHERE id = $1", case.id)
    assert row["priority_reason"] == "panic button"
    assert row["external_id"] == f"{button}/p1"
    assert "reported by the device" in row["description"]


async def test_a_redelivered_press_is_one_case(hub: Hub) -> None:
    await wait_ready(hub)
    button = device()
    payload = {"lat": -7.25, "lon": 112.75, "id": "press-42"}
    async with hub.bus.subscribe(CASE_OPENED, name="test-panic") as cases:
        await press(hub, button, payload)
        await opened(cases, f"Panic button {button}")
        await press(hub, button, payload)
        await press(hub, button, {**payload, "id": "press-43"})
        second = await opened(cases, f"Panic button {button}")
    async with hub.pool.acquire() as conn:
        ids = await conn.fetch(
            "SELECT external_id, duplicate_of FROM cases WHERE reporter_contact = $1 ORDER BY id",
            f"device:{button}",
        )
    assert [r["external_id"] for r in ids] == [f"{button}/press-42", f"{button}/press-43"]
    assert ids[1]["duplicate_of"] is not None  # the same button again: a likely duplicate
    assert second.id != ids[1]["duplicate_of"]


async def test_without_coordinates_the_device_registry_places_the_case(hub: Hub) -> None:
    await wait_ready(hub)
    registered, unknown = device(), device()
    async with hub.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO devices (id, kind, name, lat, lon) VALUES ($1, 'panic', 'Pos RW', $2, $3)",
            registered,
            -6.9,
            107.6,
        )
    async with hub.bus.subscribe(CASE_OPENED, name="test-panic") as cases:
        await press(hub, registered, b"")
        placed = await opened(cases, f"Panic button {registered}")
        await press(hub, unknown, {"text": "tolong"})
        lost = await opened(cases, f"Panic button {unknown}")
    assert (placed.lat, placed.lon) == (-6.9, 107.6)
    assert (lost.lat, lost.lon) == (None, None)  # never dropped for want of a place
    async with hub.pool.acquire() as conn:
        description = await conn.fetchval("SELECT description FROM cases WHERE id = $1", lost.id)
    assert "location unknown" in description
    assert "tolong" in description


@pytest.mark.parametrize(
    "payload",
    [
        b"{not json",
        b"[1, 2]",
        b'{"lat": 95, "lon": 0}',
        b'{"lat": -6.2}',
        b'{"lat": "south", "lon": 106}',
        b'{"id": "has spaces in it"}',
        b'{"text": 5}',
        b"x" * 5000,
    ],
)
async def test_a_bad_press_is_refused_and_the_next_one_works(
    hub: Hub, payload: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    await wait_ready(hub)
    bad, good = device(), device()
    async with hub.bus.subscribe(CASE_OPENED, name="test-panic") as cases:
        await press(hub, bad, payload)
        await press(hub, good, {"lat": 1.0, "lon": 1.0})
        case = await opened(cases, f"Panic button {good}")
        assert cases.get_nowait() is None
    assert case.lat == 1.0
    async with hub.pool.acquire() as conn:
        assert not await conn.fetchval(
            "SELECT count(*) FROM cases WHERE reporter_contact = $1", f"device:{bad}"
        )
    assert any(bad in r.getMessage() and "refused" in r.getMessage() for r in caplog.records)
