"""Dispatch against the real database and broker: ranking, an order over the MQTT app with its
acknowledgement, duplicate acknowledgements, timeout → next channel → next unit → alarm, and
the refusals (unknown unit or case, unavailable unit)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from db import audit
from ops.app import Hub
from ops.core.events import ALARM_RAISED, AlarmRaised
from ops.dispatch.setup import add_channel, parts_of
from ops.users import Role
from ops.web.app import Served
from tests.fixtures.hub import ConfigFactory, LoginAs, start_web_hub, unique_name
from tests.integration.dispatch_support import RecordingRadio, app_for, running
from tests.integration.units_support import (
    add_case,
    add_unit,
    json_of,
    new_spot,
    signed_in,
)
from tests.polling import eventually

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

WAIT = 15.0


async def wait_order(
    client: Any, order_id: str, status: str, within: float = WAIT
) -> dict[str, Any]:

    async def reached() -> dict[str, Any] | None:
        code, body = await json_of(client, "GET", f"/api/v1/dispatches/{order_id}")
        assert code == 200, body
        return dict(body) if body["status"] == status else None

    return await eventually(reached, timeout=within, interval=0.1)


async def alarm_for(alarms: Any, order_id: str, within: float = WAIT) -> AlarmRaised:
    """The first unacknowledged-dispatch alarm about ``order_id`` (others are skipped)."""
    async with asyncio.timeout(within):
        while True:
            alarm: AlarmRaised = (await alarms.get()).payload
            if alarm.code == "dispatch.unacknowledged" and order_id in alarm.message:
                return alarm


async def audit_of(hub: Hub, order_id: str) -> list[tuple[str, str]]:
    """(action, actor) of an order's audit entries, oldest first."""
    async with hub.pool.acquire() as conn:
        entries = await audit.list_entries(conn, target=f"order:{order_id}")
    return [(entry.action, entry.actor) for entry in reversed(entries)]


async def test_recommendation_ranks_by_distance_kind_skill_and_freshness(
    hub: Hub, login_as: LoginAs
) -> None:
    viewer = await login_as(Role.VIEWER)
    spot = new_spot()
    case_id = await add_case(hub, spot, category="fire")
    near_fire = await add_unit(hub, kind="fire", at=spot.near(1.0), skills=("firefighting",))
    nearer_medic = await add_unit(hub, kind="medic", at=spot.near(0.5))
    stale_fire = await add_unit(
        hub, kind="fire", at=spot.near(0.2), age_s=3 * 3600, skills=("firefighting",)
    )
    far_fire = await add_unit(hub, kind="fire", at=spot.near(8.0), skills=("firefighting",))
    busy = await add_unit(hub, kind="fire", at=spot.near(0.1), skills=("firefighting",))
    await parts_of(hub).inbound.unit_reported_status(busy, "on_scene", channel="test")

    code, body = await json_of(viewer, "GET", f"/api/v1/units/recommend?case={case_id}&limit=4")
    assert code == 200, body
    ranked = [item["unit"]["id"] for item in body["units"]]
    assert ranked == [near_fire, far_fire, stale_fire, nearer_medic]
    assert busy not in ranked
    first, _, stale, medic = body["units"]
    assert first["rank"] == 1
    assert first["distance_km"] == pytest.approx(1.0, abs=0.02)
    assert first["reasons"][0] == "1.0 km away"
    assert "kind fire fits" in first["reasons"]
    assert stale["stale"] is True
    assert any("stale" in reason for reason in stale["reasons"])
    assert stale["unit"]["stale"] is True
    assert any(reason.startswith("kind medic is not fire") for reason in medic["reasons"])
    assert any(reason.startswith("lacks firefighting") for reason in medic["reasons"])
    assert body["need"] == {"kinds": ["fire"], "skills": ["firefighting"]}

    code, body = await json_of(viewer, "GET", "/api/v1/units/recommend?case=999999999")
    assert (code, body["error"]["code"]) == (404, "case_not_found")
    code, body = await json_of(viewer, "GET", "/api/v1/units/recommend?case=abc")
    assert (code, body["error"]["field"]) == (400, "case")
    nowhere = await add_case(hub, None)
    code, body = await json_of(viewer, "GET", f"/api/v1/units/recommend?case={nowhere}")
    assert (code, body["error"]["code"]) == (409, "case_without_location")


async def test_dispatch_over_the_app_is_acknowledged_once(hub: Hub, login_as: LoginAs) -> None:
    operator = await login_as(Role.OPERATOR)
    spot = new_spot()
    case_id = await add_case(hub, spot)
    unit_id = await add_unit(hub, at=spot.near(1.0))
    async with running(app_for(hub, unit_id)) as app:
        code, order = await json_of(
            operator,
            "POST",
            "/api/v1/dispatches",
            json={"case": case_id, "unit": unit_id, "message": "Fire at the market, go"},
        )
        assert code == 201, order
        order_id = order["id"]
        assert order["assignments"][0]["ladder"][0]["channel"] == "mqtt"
        done = await wait_order(operator, order_id, "acknowledged")
        assert app.acted == [order_id]
        assert app.received[0]["order"] == order_id
        assert app.received[0]["case"]["id"] == case_id
        assert app.received[0]["message"] == "Fire at the market, go"
        ladder = done["assignments"][0]["ladder"]
        assert [(step["channel"], step["state"]) for step in ladder] == [("mqtt", "acknowledged")]
        for moment in ("sent_at", "delivered_at", "acknowledged_at"):
            assert ladder[0][moment] is not None, moment
        assert done["assignments"][0]["ack_channel"] == "mqtt"
        kinds = [event["kind"] for event in done["events"]]
        assert kinds[:4] == ["created", "queued", "sent", "delivered"]
        assert "acknowledged" in kinds

        code, unit = await json_of(operator, "GET", f"/api/v1/units/{unit_id}")
        assert unit["status"] == "en_route"

        # The app acknowledges the same order again (a repeat on the air): nothing changes.
        service = parts_of(hub).service
        before = service.duplicate_acks
        await app._publish(app.events_topic, {"type": "ack", "order": order_id})
        await eventually(lambda: service.duplicate_acks != before, timeout=WAIT)
        code, again = await json_of(operator, "GET", f"/api/v1/dispatches/{order_id}")
        assert again["events"] == done["events"]
        # ...and so does a person entering it by hand.
        code, answer = await json_of(
            operator,
            "POST",
            f"/api/v1/dispatches/{order_id}/acknowledge",
            json={"unit": unit_id},
        )
        assert (code, answer["changed"]) == (200, False)
        assert app.acted == [order_id]

        # The unit reports its progress and a note; both are recorded.
        await app.send_status("on_scene", order_id)
        await app.send_text("Two people trapped, need a ladder", order_id)

        async def recorded() -> list[Any]:
            _code, unit = await json_of(operator, "GET", f"/api/v1/units/{unit_id}")
            async with hub.pool.acquire() as conn:
                notes = await conn.fetch(
                    "SELECT author, body FROM case_notes WHERE case_id = $1", case_id
                )
            return notes if unit["status"] == "on_scene" else []

        notes = await eventually(recorded, timeout=WAIT, interval=0.1)
        assert notes[0]["author"] == f"unit:{unit_id}"
        assert "need a ladder" in notes[0]["body"]


async def test_no_ack_goes_to_the_next_channel_then_the_next_unit_and_alarms(
    make_hub_config: ConfigFactory,
) -> None:
    config = make_hub_config(
        dispatch={"mqtt_ack_timeout": 5.0, "radio_ack_timeout": 0.4, "watch_interval": 0.1}
    )
    async with start_web_hub(config) as (hub, served):
        await _escalation(hub, served)


async def _escalation(hub: Hub, served: Served) -> None:
    spot = new_spot()
    case_id = await add_case(hub, spot)
    # The first unit's app receives but never acknowledges; its radio has no channel here, so
    # that copy stays queued until its own timeout.
    sleepy = await add_unit(
        hub, at=spot.near(0.5), channels=(("mqtt", "placeholder"), ("radio", "YB0ABC"))
    )
    async with hub.pool.acquire() as conn:
        await conn.execute(
            """UPDATE units SET channels = jsonb_build_array(
                   jsonb_build_object('channel', 'mqtt', 'address', id),
                   jsonb_build_object('channel', 'radio', 'address', 'YB0ABC'))
               WHERE id = $1""",
            sleepy,
        )
    awake = await add_unit(hub, at=spot.near(2.0))
    async with (
        signed_in(hub, served, Role.OPERATOR) as operator,
        hub.bus.subscribe(ALARM_RAISED, name="alarms", replay_state=False) as alarms,
        running(app_for(hub, sleepy, ack=False)) as sleepy_app,
        running(app_for(hub, awake)) as awake_app,
    ):
        code, order = await json_of(
            operator,
            "POST",
            "/api/v1/dispatches",
            json={"case": case_id, "unit": sleepy, "message": "go", "auto_escalate": True},
        )
        assert code == 201, order
        done = await wait_order(operator, order["id"], "acknowledged")
        alarm = await alarm_for(alarms, order["id"])
        username = operator.user.username  # type: ignore[union-attr]
    assert sleepy in alarm.message
    assert awake in alarm.message
    first, second = done["assignments"]
    assert (first["unit"], first["status"]) == (sleepy, "exhausted")
    assert [(s["channel"], s["state"]) for s in first["ladder"]] == [
        ("mqtt", "timed_out"),
        ("radio", "timed_out"),
    ]
    assert first["ladder"][0]["delivered_at"] is not None  # the app got it, nobody answered
    assert (second["unit"], second["status"], second["escalated_from"]) == (
        awake,
        "acknowledged",
        sleepy,
    )
    kinds = [e["kind"] for e in done["events"]]
    for expected in ("timed_out", "exhausted", "escalated", "alarm", "acknowledged"):
        assert expected in kinds
    assert sleepy_app.acted == [order["id"]]
    assert awake_app.acted == [order["id"]]
    async with hub.pool.acquire() as conn:
        rows = await conn.fetch("SELECT id, status FROM units WHERE id = ANY($1)", [sleepy, awake])
    statuses = {row["id"]: row["status"] for row in rows}
    assert statuses == {sleepy: "available", awake: "en_route"}
    # Each step is audited in its own transaction, with who did it: the operator, the hub
    # (timeouts, exhaustion, escalation) and the unit acknowledging over its app.
    assert await audit_of(hub, order["id"]) == [
        ("dispatch.create", username),
        ("dispatch.timeout", "hub"),
        ("dispatch.timeout", "hub"),
        ("dispatch.exhausted", "hub"),
        ("dispatch.escalate", "hub"),
        ("dispatch.acknowledge", f"unit:{awake}"),
    ]


async def test_without_auto_escalation_the_supervisor_is_alarmed_and_the_order_fails(
    make_hub_config: ConfigFactory,
) -> None:
    config = make_hub_config(dispatch={"mqtt_ack_timeout": 0.4, "watch_interval": 0.1})
    async with start_web_hub(config) as (hub, served):
        spot = new_spot()
        case_id = await add_case(hub, spot)
        unit_id = await add_unit(hub, at=spot.near(0.5))
        await add_unit(hub, at=spot.near(0.7))  # would be next, but escalation is off
        async with (
            signed_in(hub, served, Role.OPERATOR) as operator,
            hub.bus.subscribe(ALARM_RAISED, name="alarms", replay_state=False) as alarms,
        ):
            code, order = await json_of(
                operator,
                "POST",
                "/api/v1/dispatches",
                json={"case": case_id, "unit": unit_id, "message": "go", "auto_escalate": False},
            )
            assert code == 201
            done = await wait_order(operator, order["id"], "failed")
            alarm = await alarm_for(alarms, order["id"])
        assert alarm.severity == "critical"
        assert [a["unit"] for a in done["assignments"]] == [unit_id]
        # The unit answers by phone after all: a late acknowledgement still counts.
        async with signed_in(hub, served, Role.OPERATOR) as operator:
            code, answer = await json_of(
                operator,
                "POST",
                f"/api/v1/dispatches/{order['id']}/acknowledge",
                json={"unit": unit_id, "via": "phone"},
            )
        assert (code, answer["changed"]) == (200, True)
        assert answer["order"]["status"] == "acknowledged"
        assert answer["order"]["assignments"][0]["ack_channel"] == "phone"


async def test_dispatch_refusals(hub: Hub, login_as: LoginAs) -> None:
    operator = await login_as(Role.OPERATOR)
    supervisor = await login_as(Role.SUPERVISOR)
    spot = new_spot()
    case_id = await add_case(hub, spot)
    unit_id = await add_unit(hub, at=spot.near(1.0))
    busy = await add_unit(hub, at=spot.near(1.0))
    await parts_of(hub).inbound.unit_reported_status(busy, "out_of_service", channel="radio")
    unreachable = await add_unit(hub, at=spot.near(1.0), channels=())

    async def post(client: Any, body: dict[str, Any]) -> tuple[int, Any]:
        return await json_of(client, "POST", "/api/v1/dispatches", json=body)

    code, body = await post(operator, {"case": case_id, "unit": "no-such-unit", "message": "go"})
    assert (code, body["error"]["code"]) == (404, "unit_not_found")
    code, body = await post(operator, {"case": 999999999, "unit": unit_id, "message": "go"})
    assert (code, body["error"]["code"]) == (404, "case_not_found")
    code, body = await post(operator, {"case": case_id, "units": [unit_id, busy], "message": "go"})
    assert (code, body["error"]["code"]) == (409, "unit_unavailable")
    assert busy in body["error"]["message"]
    assert "out_of_service" in body["error"]["message"]
    assert "reported over radio" in body["error"]["message"]
    code, body = await post(operator, {"case": case_id, "unit": unreachable, "message": "go"})
    assert (code, body["error"]["code"]) == (409, "unit_unavailable")
    assert "no channel" in body["error"]["message"]
    code, body = await post(operator, {"case": case_id, "message": "go"})
    assert code == 400
    code, body = await post(
        operator, {"case": case_id, "unit": unit_id, "units": [unit_id], "message": "go"}
    )
    assert code == 400
    code, body = await post(operator, {"case": case_id, "unit": unit_id, "message": "  "})
    assert code == 400
    code, body = await post(operator, {"case": case_id, "unit": unit_id, "message": "a\u0000b"})
    assert (code, body["error"]["field"]) == (400, "message")
    # Nothing was committed by the refused dispatches: the unit is still available.
    code, unit = await json_of(operator, "GET", f"/api/v1/units/{unit_id}")
    assert unit["status"] == "available"

    override = {
        "case": case_id,
        "unit": busy,
        "message": "go anyway",
        "override": True,
        "override_reason": "only unit with a boat",
    }
    code, body = await post(operator, override)
    assert (code, body["error"]["field"]) == (403, "override")
    code, body = await post(supervisor, override)
    assert code == 201, body
    code, body = await json_of(
        operator, "POST", f"/api/v1/dispatches/{body['id']}/cancel", json={"reason": "test"}
    )
    assert (code, body["status"]) == (200, "cancelled")
    code, again = await json_of(
        operator, "POST", f"/api/v1/dispatches/{body['id']}/cancel", json={"reason": "test"}
    )
    assert (code, again["error"]["code"]) == (409, "order_closed")


async def test_an_ack_on_any_channel_closes_the_order_on_all(hub: Hub, login_as: LoginAs) -> None:
    operator = await login_as(Role.OPERATOR)
    spot = new_spot()
    case_id = await add_case(hub, spot)
    unit_id = await add_unit(hub, at=spot.near(1.0))
    async with running(app_for(hub, unit_id, ack=False)) as app:
        code, order = await json_of(
            operator,
            "POST",
            "/api/v1/dispatches",
            json={"case": case_id, "unit": unit_id, "message": "go"},
        )
        assert code == 201

        async def delivered() -> bool:
            _code, body = await json_of(operator, "GET", f"/api/v1/dispatches/{order['id']}")
            return bool(body["assignments"][0]["ladder"][0]["state"] == "delivered")

        await eventually(delivered, timeout=WAIT)
        # The unit calls in by phone: that closes the copy still waiting on the app.
        code, answer = await json_of(
            operator,
            "POST",
            f"/api/v1/dispatches/{order['id']}/acknowledge",
            json={"unit": unit_id, "via": "phone"},
        )
        assert (code, answer["changed"]) == (200, True)
        done = answer["order"]
        assert done["status"] == "acknowledged"
        assert done["assignments"][0]["ack_channel"] == "phone"
        assert [s["state"] for s in done["assignments"][0]["ladder"]] == ["cancelled"]
        # The app's own acknowledgement arrives later: recognised, nothing changes.
        service = parts_of(hub).service
        before = service.duplicate_acks
        await app._publish(app.events_topic, {"type": "ack", "order": order["id"]})
        await eventually(lambda: service.duplicate_acks != before, timeout=WAIT)
        code, again = await json_of(operator, "GET", f"/api/v1/dispatches/{order['id']}")
        assert again["events"] == done["events"]
        assert again["assignments"] == done["assignments"]


async def test_a_fitting_unit_beyond_a_crowd_of_others_is_not_missed(
    hub: Hub, login_as: LoginAs
) -> None:
    viewer = await login_as(Role.VIEWER)
    spot = new_spot()
    case_id = await add_case(hub, spot, category="fire")
    crowd = [f"{unique_name('m')}" for _ in range(60)]
    async with hub.pool.acquire() as conn:
        await conn.executemany(
            """
            INSERT INTO units (id, callsign, name, kind, lat, lon, position_at, channels)
            VALUES ($1::text, $1::text, 'medic', 'medic', $2, $3, now(),
                    jsonb_build_array(jsonb_build_object('channel', 'mqtt', 'address', $1::text)))
            """,
            [(unit_id, *spot.near(0.01 * n)) for n, unit_id in enumerate(crowd)],
        )
    fire = await add_unit(hub, kind="fire", at=spot.near(8.0), skills=("firefighting",))
    code, body = await json_of(viewer, "GET", f"/api/v1/units/recommend?case={case_id}&limit=3")
    assert code == 200, body
    assert body["units"][0]["unit"]["id"] == fire
    assert body["units"][0]["distance_km"] == pytest.approx(8.0, abs=0.05)
    assert [item["unit"]["id"] for item in body["units"][1:]] == crowd[:2]


async def test_a_copy_moves_to_a_second_working_channel_and_its_ack_closes_the_order(
    make_hub_config: ConfigFactory,
) -> None:
    config = make_hub_config(dispatch={"mqtt_ack_timeout": 0.5, "watch_interval": 0.1})
    async with start_web_hub(config) as (hub, served):
        radio = RecordingRadio()
        add_channel(hub, radio)
        spot = new_spot()
        case_id = await add_case(hub, spot)
        # No app answers on MQTT; the radio takes the copy and the unit answers there.
        unit_id = await add_unit(
            hub, at=spot.near(0.5), channels=(("mqtt", "nobody-listens"), ("radio", "YB0RAD"))
        )
        async with signed_in(hub, served, Role.OPERATOR) as operator:
            code, order = await json_of(
                operator,
                "POST",
                "/api/v1/dispatches",
                json={"case": case_id, "unit": unit_id, "message": "go", "auto_escalate": False},
            )
            assert code == 201, order
            async with asyncio.timeout(WAIT):
                [copy] = await radio.copies_of(order["id"])
            assert (copy.order_id, copy.unit_id, copy.address) == (order["id"], unit_id, "YB0RAD")
            assert copy.channel == "radio"
            # The radio gateway reports the acknowledgement the way every channel does: on
            # the bus, which dispatch records.
            radio.acknowledge(hub.bus, copy)
            done = await wait_order(operator, order["id"], "acknowledged")
        assert done["status"] == "acknowledged"
        [assignment] = done["assignments"]
        assert (assignment["status"], assignment["ack_channel"]) == ("acknowledged", "radio")
        ladder = [(s["channel"], s["state"]) for s in assignment["ladder"]]
        assert ladder == [("mqtt", "timed_out"), ("radio", "acknowledged")]
        assert all(step["closed_at"] is not None for step in assignment["ladder"])
        assert assignment["ladder"][0]["sent_at"] is not None  # it did go out on MQTT first
        # The app's late acknowledgement on the first channel changes nothing.
        service = parts_of(hub).service
        before = service.duplicate_acks
        assert not await parts_of(hub).inbound.acknowledged(copy.order_id, unit_id, channel="mqtt")
        assert service.duplicate_acks == before + 1
        async with hub.pool.acquire() as conn:
            status = await conn.fetchval("SELECT status FROM units WHERE id = $1", unit_id)
        assert status == "en_route"


async def test_text_from_a_unit_without_an_order_opens_one_case_where_it_is(hub: Hub) -> None:
    """A unit passing a landslide reports it: a case at the unit's last position, through the
    one intake function; the broker redelivering the message (same id) opens no second."""
    spot = new_spot()
    unit_id = await add_unit(hub, kind="volunteer", at=spot.near(0.0))
    text = f"Longsor menutup jalan desa {unique_name('km')}"
    async with running(app_for(hub, unit_id)) as app:
        await app.send_text(text, message_id="m-1")
        await app.send_text(text, message_id="m-1")  # a redelivery
        await app.send_text(f"{text} (kedua)", message_id="m-2")
        # The app's events are handled in order: once the last one made its case, the
        # redelivery before it has been handled too.

        async def both_handled() -> list[Any]:
            async with hub.pool.acquire() as conn:
                rows = await conn.fetch(
                    """
                    SELECT channel, category, title, description, lat, lon, reporter_name
                    FROM cases WHERE description LIKE '%' || $1 || '%' ORDER BY id
                    """,
                    text,
                )
            return rows if any("(kedua)" in row["description"] for row in rows) else []

        rows = await eventually(both_handled, timeout=WAIT, interval=0.1)
    assert len(rows) == 2  # m-1 once, m-2 once
    first = rows[0]
    assert (first["channel"], first["category"]) == ("field", "other")
    assert first["description"] == f"[mqtt] {text}"
    assert text in first["title"]
    assert (first["lat"], first["lon"]) == pytest.approx(spot.near(0.0))
    assert unit_id.upper() in first["reporter_name"]
