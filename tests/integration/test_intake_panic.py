"""MQTT panic buttons through the real broker: a press opens a high-priority case where it is."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import aiomqtt
import pytest

from ops.app import Hub
from ops.core.bus import Subscription
from ops.core.events import CASE_OPENED, AdapterState, CaseSnapshot
from tests.faultproxy import FaultProxy
from tests.fixtures.hub import TEST_RESTART_POLICY, ConfigFactory, wait_ready
from tests.polling import eventually

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
        b'{"lat": 1' + b"0" * 400 + b', "lon": 0}',
        b'{"text": "tolong\\u0000"}',
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


def _proxy_for(dsn: str) -> FaultProxy:
    parts = urlsplit(dsn)
    if parts.hostname:
        return FaultProxy(parts.hostname, parts.port or 5432)
    query = parse_qs(parts.query)
    socket_dir, port = query["host"][0], query.get("port", ["5432"])[0]
    return FaultProxy.unix(f"{socket_dir}/.s.PGSQL.{port}")


def _via_proxy(dsn: str, proxy: FaultProxy) -> str:
    parts = urlsplit(dsn)
    user = parts.username or "root"
    return urlunsplit(parts._replace(netloc=f"{user}@127.0.0.1:{proxy.port}", query=""))


async def _until(check: Any) -> None:
    await eventually(check, timeout=WAIT)


async def test_a_press_during_a_database_outage_is_one_case_once_it_returns(
    make_hub_config: ConfigFactory, pg_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ops.intake.panic")
    proxy = _proxy_for(pg_dsn)
    await proxy.start()
    try:
        config = make_hub_config(database={"url": _via_proxy(pg_dsn, proxy), "command_timeout": 2})
        async with Hub(config, restart_policy=TEST_RESTART_POLICY) as hub:
            await wait_ready(hub)
            button = device()
            payload = {"lat": -6.2, "lon": 106.8, "ts": 1_800_000_000}  # no id: keyed by ts
            async with hub.bus.subscribe(CASE_OPENED, name="test-panic") as cases:
                await proxy.cut()
                await press(hub, button, payload)
                await _until(lambda: _state(hub) is AdapterState.BACKOFF)
                await press(hub, button, payload)  # the broker delivers it again
                proxy.restore()
                case = await opened(cases, f"Panic button {button}")
                await _until(lambda: _said(caplog, button, "already open"))
                assert cases.get_nowait() is None
            async with hub.pool.acquire() as conn:
                rows = await conn.fetch(
                    "SELECT id, external_id FROM cases WHERE reporter_contact = $1",
                    f"device:{button}",
                )
            assert [(r["id"], r["external_id"]) for r in rows] == [
                (case.id, f"{button}/1800000000")
            ]
            await _until(lambda: _state(hub) is AdapterState.RUNNING)
    finally:
        await proxy.stop()


def _state(hub: Hub) -> AdapterState | None:
    status = hub.supervisor.status.get("intake.panic")
    return None if status is None else status.state


def _said(caplog: pytest.LogCaptureFixture, *words: str) -> bool:
    return any(all(w in r.getMessage() for w in words) for r in caplog.records)
