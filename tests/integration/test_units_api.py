"""Units over HTTP and MQTT: register, status (audited, live), positions from the broker into
the database, and every kind of bad position dropped, counted and never fatal."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime

import aiomqtt
import pytest

from db import audit
from ops.app import Hub
from ops.dispatch.setup import parts_of
from ops.units.events import UNIT_CHANGED, UNIT_MOVED
from ops.users import Role
from tests.fixtures.hub import LoginAs, unique_name
from tests.integration.units_support import add_unit, json_of
from tests.polling import eventually

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

WAIT = 10.0


def _unit_body(unit_id: str, **changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "id": unit_id,
        "callsign": unit_id[:16],
        "name": "Tagana Cempaka",
        "kind": "volunteer",
        "skills": ["search_rescue", "first_aid"],
        "home_center": "Posko Cempaka",
        "channels": [
            {"channel": "mqtt", "address": unit_id},
            {"channel": "radio", "address": "YB0X-7"},
        ],
    }
    body.update(changes)
    return body


async def test_register_read_and_change_status_audited_and_live(
    hub: Hub, login_as: LoginAs
) -> None:
    supervisor = await login_as(Role.SUPERVISOR)
    operator = await login_as(Role.OPERATOR)
    unit_id = unique_name("tgn")
    status, body = await json_of(supervisor, "POST", "/api/v1/units", json=_unit_body(unit_id))
    assert status == 201, body
    assert body["status"] == "available"
    assert body["callsign"] == unit_id[:16].upper()
    assert body["channels"][1] == {"channel": "radio", "address": "YB0X-7"}
    assert (body["lat"], body["position_at"], body["stale"]) == (None, None, True)

    async with hub.bus.subscribe(UNIT_CHANGED, name="test", replay_state=False) as changes:
        status, body = await json_of(
            operator,
            "POST",
            f"/api/v1/units/{unit_id}/status",
            json={"status": "out_of_service", "reason": "flat tyre"},
        )
        assert status == 200, body
        assert (body["status"], body["status_reason"]) == ("out_of_service", "flat tyre")
        async with asyncio.timeout(WAIT):
            envelope = await changes.get()
        assert envelope.key == unit_id
        assert envelope.payload.status == "out_of_service"

    async with hub.pool.acquire() as conn:
        entries = await audit.list_entries(conn, target=f"unit:{unit_id}")
    actions = sorted((e.action, e.actor) for e in entries)
    assert actions == [
        ("unit.add", supervisor.user.username),  # type: ignore[union-attr]
        ("unit.status", operator.user.username),  # type: ignore[union-attr]
    ]

    status, body = await json_of(operator, "GET", f"/api/v1/units/{unit_id}")
    assert (status, body["status"]) == (200, "out_of_service")
    status, body = await json_of(operator, "GET", "/api/v1/units?status=out_of_service")
    assert unit_id in [u["id"] for u in body["units"]]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"kind": "wizard"}, "kind"),
        ({"id": "has space"}, "id"),
        ({"id": "recommend"}, "id"),
        ({"channels": [{"channel": "pigeon", "address": "x"}]}, "channels.0.channel"),
        ({"skills": ["Bad Skill"]}, "skills.0"),
        ({"extra": 1}, "extra"),
        ({"name": "Tagana\u0000"}, "name"),
    ],
)
async def test_bad_unit_bodies_name_the_field(
    login_as: LoginAs, changes: dict[str, object], field: str
) -> None:
    supervisor = await login_as(Role.SUPERVISOR)
    body = _unit_body(unique_name("bad"), **changes)
    status, answer = await json_of(supervisor, "POST", "/api/v1/units", json=body)
    assert status == 400, answer
    assert answer["error"]["field"] == field


async def test_taken_id_is_409_and_unknown_unit_404(hub: Hub, login_as: LoginAs) -> None:
    supervisor = await login_as(Role.SUPERVISOR)
    unit_id = await add_unit(hub)
    status, answer = await json_of(supervisor, "POST", "/api/v1/units", json=_unit_body(unit_id))
    assert (status, answer["error"]["code"]) == (409, "unit_taken")
    status, answer = await json_of(
        supervisor, "POST", "/api/v1/units/nobody-here/status", json={"status": "available"}
    )
    assert (status, answer["error"]["code"]) == (404, "unit_not_found")
    status, answer = await json_of(
        supervisor, "POST", f"/api/v1/units/{unit_id}/status", json={"status": "asleep"}
    )
    assert (status, answer["error"]["field"]) == (400, "status")
    status, answer = await json_of(supervisor, "POST", f"/api/v1/units/{unit_id}/status", json={})
    assert status == 400


async def _publish(hub: Hub, items: list[tuple[str, bytes]]) -> None:
    host, port = hub.config.mqtt.host_port
    async with aiomqtt.Client(host, port, identifier=unique_name("tracker")) as client:
        for topic, payload in items:
            await client.publish(topic, payload, qos=1)


async def test_mqtt_positions_reach_the_database_and_bad_ones_are_dropped_and_counted(
    hub: Hub, login_as: LoginAs, caplog: pytest.LogCaptureFixture
) -> None:
    viewer = await login_as(Role.VIEWER)
    unit_id = await add_unit(hub)
    topic = hub.mqtt.topic("units", unit_id, "position")
    now = time.time()
    good = [
        (topic, json.dumps({"lat": -6.2, "lon": 106.8, "ts": now - 60}).encode()),
        (topic, json.dumps({"lat": -6.21, "lon": 106.81, "ts": now - 5}).encode()),
        # older than the last one: kept in history, does not move the unit back
        (topic, json.dumps({"lat": -6.3, "lon": 106.9, "ts": now - 30}).encode()),
    ]
    bad = [
        (topic, b"not json at all"),
        (topic, b"[1, 2]"),
        (topic, b'{"lat": "south", "lon": 106.8}'),
        (topic, b'{"lat": true, "lon": 106.8}'),
        (topic, b'{"lat": -6.2, "lon": 106.8, "ts": "yesterday"}'),
        (topic, json.dumps({"lat": 91.0, "lon": 106.8, "ts": now}).encode()),
        (topic, json.dumps({"lat": -6.2, "lon": 181.0, "ts": now}).encode()),
        (topic, json.dumps({"lat": -6.2, "lon": 106.8, "ts": now + 3600}).encode()),
        (
            hub.mqtt.topic("units", "no-such-unit-" + unit_id, "position"),
            json.dumps({"lat": -6.2, "lon": 106.8, "ts": now}).encode(),
        ),
    ]
    ingestor = parts_of(hub).ingestor
    async with hub.bus.subscribe(UNIT_MOVED, name="test", replay_state=False) as moved:
        await _publish(hub, bad + good)
        await eventually(
            lambda: (
                ingestor.stored >= 3
                and not ingestor.pending
                and sum(ingestor.rejected.get("mqtt", {}).values()) >= 9
            ),
            timeout=WAIT,
        )
        async with asyncio.timeout(WAIT):
            envelope = await moved.get()
    assert envelope.key == unit_id
    rejected = ingestor.stats()["rejected"]["mqtt"]
    assert rejected == {"malformed": 5, "out_of_range": 2, "future": 1, "unknown_unit": 1}
    warnings = [
        r for r in caplog.records if r.name == "ops.units.positions" and r.levelname == "WARNING"
    ]
    assert len(warnings) == 1, "logged once per source"
    assert "from mqtt" in warnings[0].getMessage()

    status, body = await json_of(viewer, "GET", f"/api/v1/units/{unit_id}")
    assert status == 200
    assert (body["lat"], body["lon"]) == (-6.21, 106.81)
    assert body["position_source"] == "mqtt"
    assert body["stale"] is False
    assert 0 <= body["position_age_s"] < 60
    status, body = await json_of(viewer, "GET", f"/api/v1/units/{unit_id}/positions")
    assert [(p["lat"], p["lon"]) for p in body["positions"]] == [
        (-6.21, 106.81),
        (-6.3, 106.9),
        (-6.2, 106.8),
    ]
    status, body = await json_of(viewer, "GET", "/api/v1/positions/stats")
    assert body["rejected"]["mqtt"]["future"] == 1
    assert hub.mqtt.connected  # never fatal


async def test_positions_from_other_adapters_use_the_same_way_in(hub: Hub) -> None:
    from ops.core.events import UNIT_POSITION_REPORTED, UnitPositionReported

    unit_id = await add_unit(hub)
    ingestor = parts_of(hub).ingestor
    hub.bus.publish(
        UNIT_POSITION_REPORTED,
        UnitPositionReported(unit_id, -7.25, 112.75, datetime.now(UTC), "aprs"),
        source="test",
    )
    hub.bus.publish(
        UNIT_POSITION_REPORTED,
        UnitPositionReported(unit_id, -95.0, 112.75, datetime.now(UTC), "aprs"),
        source="test",
    )
    await eventually(lambda: ingestor.accepted["aprs"] >= 1 and not ingestor.pending)

    async def stored_from_aprs() -> bool:
        async with hub.pool.acquire() as conn:
            source = await conn.fetchval("SELECT position_source FROM units WHERE id = $1", unit_id)
        return bool(source == "aprs")

    await eventually(stored_from_aprs, timeout=WAIT)
    assert ingestor.stats()["rejected"]["aprs"] == {"out_of_range": 1}


async def test_bad_unit_events_are_counted_and_dropped(
    hub: Hub, login_as: LoginAs, caplog: pytest.LogCaptureFixture
) -> None:
    viewer = await login_as(Role.VIEWER)
    unit_id = await add_unit(hub)
    other_id = await add_unit(hub)
    topic = hub.mqtt.topic("units", unit_id, "events")
    bad_topic = hub.mqtt.topic("units", "bad id!", "events")
    inbound = parts_of(hub).inbound
    await _publish(
        hub,
        [
            (topic, b"\x00\x01garbage"),
            (topic, b'{"type": "ack"}'),
            (topic, b'{"type": "launch", "order": "0a1b2c3d4e5f"}'),
            (topic, b'{"type": "ack", "order": "0a1b2c3d4e5f"}'),  # no such order
            (topic, b'{"type": "status", "status": "dispatched"}'),  # not the unit's to say
            (bad_topic, b'{"type": "text", "text": "x"}'),
            (topic, b'{"type": "text", "text": "nul \\u0000 inside"}'),
            (hub.mqtt.topic("units", other_id, "events"), b"{broken"),
            (topic, b'{"type": "status", "status": "returning"}'),
        ],
    )

    async def recorded_the_last() -> bool:
        # Handled in arrival order: once the last (good) event is recorded, all were.
        async with hub.pool.acquire() as conn:
            status = await conn.fetchval("SELECT status FROM units WHERE id = $1", unit_id)
        return bool(status == "returning")

    await eventually(recorded_the_last, timeout=WAIT)
    assert dict(inbound.rejected) == {"malformed": 6, "refused": 2}
    # Logged once per source (each unit, the unreadable topic), whatever the reason.
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.name == "ops.dispatch.inbound" and r.levelname == "WARNING"
    ]
    assert len(warnings) == 3, warnings
    for source in (unit_id, other_id, bad_topic):
        assert sum(f"from {source} " in message for message in warnings) == 1, source
    # The good event after the bad ones still counts.
    code, body = await json_of(viewer, "GET", f"/api/v1/units/{unit_id}")
    assert (code, body["status"]) == (200, "returning")
    _, stats = await json_of(viewer, "GET", "/api/v1/positions/stats")
    assert stats["events_rejected"] == {"malformed": 6, "refused": 2}
