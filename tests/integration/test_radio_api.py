"""The radio room over HTTP: the log (filters, keyset paging, CSV), units' threads, the gateways'
view, operators' commands on the bus with their audit entries, roles, bad input, and the
directory that follows the units registry.

Lines reach the log the way the adapters put them there: as ``radio.frame`` events on the bus.
"""

from __future__ import annotations

import asyncio
import csv
import io
import random
import string
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest

from db import audit
from ops.app import Hub
from ops.core.bus import Bus
from ops.core.config import Config
from ops.core.events import ALARM_RAISED
from ops.radio.events import RADIO_LOGGED
from ops.radio.log import LogWriter
from ops.radio.setup import parts_of
from ops.units import service as unit_service
from ops.users import Role
from radio.events import (
    KEY_TRANSMITTER,
    RADIO_FRAME,
    SELECT_CHANNEL,
    SEND_BULLETIN,
    RadioFrameLogged,
)
from radio.rigsim import RigctldServer
from radio.simulator import SimStation, SimulatedTnc, loop_route
from tests.fixtures.broker import free_port
from tests.fixtures.hub import (
    TEST_RESTART_POLICY,
    ConfigFactory,
    LoginAs,
    WebClient,
    unique_name,
)
from tests.integration.units_support import add_unit, json_of
from tests.polling import eventually

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

#: The test's hub has the gateways "north" (a rig with a channel plan) and "south" (no rig).
WITH_GATEWAYS = pytest.mark.parametrize("hub_config", ["gateways"], indirect=True)
#: Seconds for a gateway's adapters to find their TNC and rig after they come up.
GATEWAY_WAIT = 30.0
ALL_ROLES = (Role.OPERATOR, Role.SUPERVISOR, Role.TECHNICIAN, Role.VIEWER)


def new_call(ssid: int | None = None) -> str:
    """A callsign no other test uses."""
    base = "YC" + "".join(random.choices(string.ascii_uppercase + string.digits, k=4))  # noqa: S311
    return base if ssid is None else f"{base}-{ssid}"


def line(gateway: str, **fields: Any) -> RadioFrameLogged:
    """A log line of ``gateway`` (a position heard, unless told otherwise)."""
    values: dict[str, Any] = {
        "at": datetime.now(UTC),
        "gateway": gateway,
        "direction": "in",
        "kind": "position",
        "callsign": "YB0AAA",
        "text": "-6.2,106.8",
        "tnc2": "YB0AAA>APRS:!0612.00S/10648.00E>",
    }
    values.update(fields)
    return RadioFrameLogged(**values)


async def log_lines(hub: Hub, *lines: RadioFrameLogged) -> list[int]:
    """Put lines on the bus and wait until they are stored; return their ids in order."""
    stored: list[int] = []
    async with hub.bus.subscribe(RADIO_LOGGED, name="test-logged") as logged:
        for item in lines:
            hub.bus.publish(RADIO_FRAME, item, source="test")
        while len(stored) < len(lines):
            envelope = await logged.get()
            stored += [
                row.id for row in envelope.payload.rows if row.gateway in {i.gateway for i in lines}
            ]
    return stored


async def csv_of(client: WebClient, path: str) -> tuple[int, dict[str, str], list[list[str]]]:
    async with client.get(path) as response:
        text = await response.text()
        return response.status, dict(response.headers), list(csv.reader(io.StringIO(text)))


# -- the log ------------------------------------------------------------------------------------


async def test_log_filters_and_keyset_paging(hub: Hub, login_as: LoginAs) -> None:
    viewer = await login_as(Role.VIEWER)
    gateway, other = unique_name("gw"), unique_name("gw")
    call = new_call()
    start = datetime.now(UTC) - timedelta(minutes=10)
    ids = await log_lines(
        hub,
        *[
            line(gateway, callsign=f"{call}-{n % 3}", at=start + timedelta(seconds=n))
            for n in range(7)
        ],
        line(
            gateway,
            direction="out",
            kind="message",
            callsign=f"{call}-9",
            number="1",
            attempt=1,
            text="Go to Kampung Melayu",
            order_id="abcdef0123",
            case_id=77,
            unit_id="unit-a",
            at=start + timedelta(seconds=30),
        ),
        line(other, callsign=call, at=start + timedelta(seconds=40)),
    )
    assert len(ids) == 9

    status, page = await json_of(viewer, "GET", f"/api/v1/radio/log?gateway={gateway}&limit=3")
    assert status == 200, page
    assert [entry["id"] for entry in page["lines"]] == sorted(ids[:8], reverse=True)[:3]
    assert page["next_before_id"] == page["lines"][-1]["id"]
    seen = [entry["id"] for entry in page["lines"]]
    while page["next_before_id"] is not None:
        status, page = await json_of(
            viewer,
            "GET",
            f"/api/v1/radio/log?gateway={gateway}&limit=3&before_id={page['next_before_id']}",
        )
        assert status == 200
        seen += [entry["id"] for entry in page["lines"]]
    assert seen == sorted(ids[:8], reverse=True)

    async def ids_of(query: str) -> list[int]:
        status, body = await json_of(viewer, "GET", f"/api/v1/radio/log?{query}")
        assert status == 200, body
        return [entry["id"] for entry in body["lines"]]

    # A callsign without an SSID matches every SSID; with one, that station only.
    assert len(await ids_of(f"callsign={call.lower()}")) == 9
    assert len(await ids_of(f"callsign={call}-1&gateway={gateway}")) == 2
    assert await ids_of(f"callsign={call}&direction=out") == [ids[7]]
    assert await ids_of(f"callsign={call}&kind=message") == [ids[7]]
    assert await ids_of("order=abcdef0123&case=77&unit=unit-a&" + f"gateway={gateway}") == [ids[7]]
    assert await ids_of(f"gateway={other}") == [ids[8]]
    since = (start + timedelta(seconds=2)).isoformat().replace("+00:00", "Z")
    until = (start + timedelta(seconds=5)).isoformat().replace("+00:00", "Z")
    assert await ids_of(f"gateway={gateway}&since={since}&until={until}") == ids[2:5][::-1]

    status, page = await json_of(viewer, "GET", f"/api/v1/radio/log?gateway={other}")
    (entry,) = page["lines"]
    assert entry["callsign"] == call
    assert entry["tnc2"].startswith("YB0AAA>APRS")
    assert entry["direction"] == "in"


async def test_bad_log_queries_answer_400_naming_the_field(login_as: LoginAs) -> None:
    viewer = await login_as(Role.VIEWER)
    for query, field in [
        ("limit=501", "limit"),
        ("limit=0", "limit"),
        ("direction=sideways", "direction"),
        ("kind=telepathy", "kind"),
        ("callsign=NOT A CALL", "callsign"),
        ("gateway=Bad%20Id", "gateway"),
        ("before_id=0", "before_id"),
        ("before_id=x", "before_id"),
        ("since=yesterday", "since"),
        ("since=2026-01-01T00:00:00", "since"),
        ("case=-1", "case"),
        ("order=X", "order"),
        ("colour=red", "colour"),
        ("since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "until"),
    ]:
        paths = ["/api/v1/radio/log"]
        if query != "limit=501":  # an export may be longer than a page
            paths.append("/api/v1/radio/log.csv")
        for path in paths:
            status, body = await json_of(viewer, "GET", f"{path}?{query}")
            assert status == 400, (path, query, body)
            assert body["error"]["field"] == field, (path, query, body)


async def test_csv_export_streams_the_filtered_log_defused(hub: Hub, login_as: LoginAs) -> None:
    viewer = await login_as(Role.VIEWER)
    gateway = unique_name("gw")
    ids = await log_lines(
        hub,
        line(gateway, kind="message", text='=HYPERLINK("http://x")', callsign="YB1AAA"),
        line(gateway, kind="message", text='+1 and, "quoted"\nnext line', callsign="YB1AAA"),
        line(gateway, kind="status", text="@home -ready"),
        line(gateway, kind="undecodable", text="raw\x00bytes", tnc2=""),
    )
    status, headers, rows = await csv_of(viewer, f"/api/v1/radio/log.csv?gateway={gateway}")
    assert status == 200
    assert headers["Content-Type"].startswith("text/csv")
    assert "attachment" in headers["Content-Disposition"]
    header, *records = rows
    assert header[:7] == ["id", "at", "gateway", "channel", "direction", "kind", "callsign"]
    text = header.index("text")
    assert [int(r[0]) for r in records] == sorted(ids, reverse=True)
    by_id = {int(r[0]): r for r in records}
    assert by_id[ids[0]][text] == '\'=HYPERLINK("http://x")'
    assert by_id[ids[1]][text] == '\'+1 and, "quoted"\nnext line'
    assert by_id[ids[2]][text] == "'@home -ready"
    assert by_id[ids[3]][text] == "raw\ufffdbytes"
    assert by_id[ids[3]][header.index("tnc2")] == ""

    status, _, rows = await csv_of(viewer, f"/api/v1/radio/log.csv?gateway={gateway}&kind=status")
    assert status == 200
    assert [int(r[0]) for r in rows[1:]] == [ids[2]]
    status, _, rows = await csv_of(viewer, "/api/v1/radio/log.csv?gateway=nobody-here")
    assert rows == [header]


async def test_log_writer_refuses_bad_lines_alone(hub: Hub, login_as: LoginAs) -> None:
    viewer = await login_as(Role.VIEWER)
    gateway = unique_name("gw")
    hub.bus.publish(RADIO_FRAME, line(gateway, attempt=0), source="test")  # attempt >= 1
    ids = await log_lines(hub, line(gateway, text="good"))
    _, page = await json_of(viewer, "GET", f"/api/v1/radio/log?gateway={gateway}")
    assert [entry["id"] for entry in page["lines"]] == ids
    assert parts_of(hub).log.refused >= 1


async def test_a_writer_that_falls_behind_alarms_before_it_drops(
    hub: Hub, login_as: LoginAs
) -> None:
    """A writer on a bus of its own that is not running: its queue fills, the alarm comes first."""
    viewer = await login_as(Role.VIEWER)
    gateway = unique_name("gw")
    bus = Bus()
    bus.bind(asyncio.get_running_loop())
    writer = LogWriter(hub.pool, bus, queue=10, batch=4)
    async with bus.subscribe(ALARM_RAISED, name="test-alarms") as alarms:
        for n in range(8):
            bus.publish(RADIO_FRAME, line(gateway, text=f"line {n}"), source="test")
        alarm = (await alarms.get()).payload
    assert alarm.code == "queue_high_water"
    assert alarm.source == "bus:radio-log"
    assert writer.dropped == 0
    assert writer.pending() == 8
    async with bus.subscribe(RADIO_LOGGED, name="test-logged") as logged:
        assert await writer.flush_now() == 8
        batches = [logged.get_nowait(), logged.get_nowait()]
    assert [len(b.payload.rows) for b in batches if b is not None] == [4, 4]
    _, page = await json_of(viewer, "GET", f"/api/v1/radio/log?gateway={gateway}")
    assert [entry["text"] for entry in page["lines"]] == [f"line {n}" for n in range(7, -1, -1)]


# -- threads ------------------------------------------------------------------------------------


async def test_thread_states_come_from_the_log(hub: Hub, login_as: LoginAs) -> None:
    operator = await login_as(Role.OPERATOR)
    call = new_call(7)
    unit_id = await add_unit(hub, channels=(("mqtt", "x"), ("radio", call.lower())))
    gateway = unique_name("gw")
    t0 = datetime.now(UTC) - timedelta(minutes=5)

    def sent(number: str, text: str, attempt: int, second: int) -> RadioFrameLogged:
        return line(
            gateway,
            direction="out",
            kind="message",
            callsign=call,
            number=number,
            text=text,
            attempt=attempt,
            at=t0 + timedelta(seconds=second),
            order_id="order00001",
            case_id=5,
        )

    def heard(kind: str, number: str | None, second: int, text: str = "") -> RadioFrameLogged:
        return line(
            gateway,
            direction="in",
            kind=kind,
            callsign=call,
            number=number,
            text=text,
            at=t0 + timedelta(seconds=second),
        )

    await log_lines(
        hub,
        sent("11", "acked at once", 1, 0),
        heard("ack", "11", 5),
        sent("12", "retried then acked", 1, 10),
        sent("12", "retried then acked", 2, 25),
        heard("ack", "12", 30),
        heard("ack", "12", 31),  # a duplicate ack changes nothing
        sent("13", "retried, no answer", 1, 40),
        sent("13", "retried, no answer", 2, 55),
        sent("14", "sent once", 1, 60),
        sent("15", "refused", 1, 61),
        heard("reject", "15", 62),
        heard("ack", "16", 63),  # an ack for nothing sent
        heard("message", None, 64, "on scene"),
        sent("17", "acked in a reply", 1, 66),
        line(
            gateway,
            direction="in",
            kind="message",
            callsign=call,
            number="AB",
            text="otw",
            tnc2=f"{call}>APRS::YB0PSK   :otw{{AB}}17",
            at=t0 + timedelta(seconds=67),
        ),
        # Another station's ack with the same number is not this unit's.
        line(
            gateway,
            direction="in",
            kind="ack",
            callsign=new_call(),
            number="14",
            at=t0 + timedelta(seconds=65),
        ),
    )
    status, thread = await json_of(operator, "GET", f"/api/v1/radio/units/{unit_id}/thread")
    assert status == 200, thread
    assert thread["callsigns"] == [call]
    states = {m["number"]: (m["state"], m["tries"], m["text"]) for m in thread["outgoing"]}
    assert states == {
        "11": ("acked", 1, "acked at once"),
        "12": ("acked", 2, "retried then acked"),
        "13": ("retried", 2, "retried, no answer"),
        "14": ("sent", 1, "sent once"),
        "15": ("rejected", 1, "refused"),
        "17": ("acked", 1, "acked in a reply"),
    }
    assert [m["number"] for m in thread["outgoing"]] == ["17", "15", "14", "13", "12", "11"]
    twelve = next(m for m in thread["outgoing"] if m["number"] == "12")
    assert twelve["first_sent"] < twelve["last_sent"] < twelve["answered_at"]
    assert twelve["order_id"] == "order00001"
    assert [m["text"] for m in thread["incoming"]] == ["otw", "on scene"]

    status, body = await json_of(operator, "GET", "/api/v1/radio/units/nobody-zz/thread")
    assert (status, body["error"]["code"]) == (404, "unit_not_found")
    status, body = await json_of(operator, "GET", "/api/v1/radio/units/bad%20id/thread")
    assert status == 404


async def test_a_reused_number_is_answered_once(hub: Hub, login_as: LoginAs) -> None:
    viewer = await login_as(Role.VIEWER)
    call = new_call()
    unit_id = await add_unit(hub, channels=(("radio", call),))
    gateway = unique_name("gw")
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    await log_lines(
        hub,
        line(
            gateway,
            direction="out",
            kind="message",
            callsign=call,
            number="1",
            attempt=1,
            text="first",
            copy_id=1,
            at=t0,
        ),
        line(
            gateway,
            direction="in",
            kind="ack",
            callsign=call,
            number="1",
            at=t0 + timedelta(seconds=5),
        ),
        line(
            gateway,
            direction="out",
            kind="message",
            callsign=call,
            number="1",
            attempt=1,
            text="second",
            copy_id=2,
            at=t0 + timedelta(seconds=60),
        ),
    )
    status, thread = await json_of(viewer, "GET", f"/api/v1/radio/units/{unit_id}/thread")
    assert status == 200
    assert [(m["text"], m["state"]) for m in thread["outgoing"]] == [
        ("second", "sent"),
        ("first", "acked"),
    ]


# -- the directory ------------------------------------------------------------------------------


async def test_directory_follows_unit_changes(hub: Hub) -> None:
    directory = parts_of(hub).directory
    call = new_call(9)
    unit_id = await add_unit(hub, channels=(("mqtt", "m"), ("radio", call.lower())))
    await eventually(lambda: directory.unit_for(call) == unit_id)
    assert directory.unit_for(call.lower()) == unit_id
    assert directory.unit_for(call.split("-")[0]) is None  # the SSID is part of the station
    assert directory.callsigns_of(unit_id) == (call,)

    moved = new_call(2)
    async with hub.pool.acquire() as conn:
        await conn.execute(
            "UPDATE units SET channels = $2 WHERE id = $1",
            unit_id,
            [{"channel": "radio", "address": moved}],
        )
    unit_service.announce(hub.bus, await unit_service.get_unit(hub.pool, unit_id))
    await eventually(lambda: directory.unit_for(moved) == unit_id)
    assert directory.unit_for(call) is None

    async with hub.pool.acquire() as conn:
        await conn.execute(
            "UPDATE units SET channels = $2 WHERE id = $1",
            unit_id,
            [{"channel": "mqtt", "address": "m"}],
        )
    unit_service.announce(hub.bus, await unit_service.get_unit(hub.pool, unit_id))
    await eventually(lambda: directory.unit_for(moved) is None)
    assert directory.callsigns_of(unit_id) == ()


# -- gateways and commands ----------------------------------------------------------------------


@pytest.fixture
def hub_config(make_hub_config: ConfigFactory, request: pytest.FixtureRequest) -> Config:
    """A room with two gateways for a test parametrized ``WITH_GATEWAYS``; none otherwise."""
    if getattr(request, "param", None) != "gateways":
        return make_hub_config()
    return make_hub_config(
        radio={
            "callsign": "YB0PSK",
            "gateways": [
                {
                    "id": "north",
                    "name": "Posko Utara",
                    # A TNC and a rigctld come up on these ports only in the test that wants them.
                    "url": f"tcp://127.0.0.1:{free_port()}",
                    "ptt": "rig",
                    "rig": f"tcp://127.0.0.1:{free_port()}",
                    "tx_timeout": 20,
                    "channels": [
                        {"name": "APRS", "frequency": 144_390_000},
                        {"name": "Lokal", "frequency": 145_500_000, "mode": "FM"},
                    ],
                    "default_channel": "APRS",
                },
                {"id": "south", "url": "tcp://127.0.0.1:9"},
            ],
        }
    )


@pytest.fixture
async def commands_seen(hub: Hub) -> AsyncIterator[list[Any]]:
    """Every radio command published while the test runs."""
    seen: list[Any] = []
    subscription = hub.bus.subscribe(
        [SELECT_CHANNEL, KEY_TRANSMITTER, SEND_BULLETIN], name="test-commands"
    )

    async def drain() -> None:
        # One by one, not extended at the end: the test looks while they come.
        async for envelope in subscription:
            seen.append(envelope.payload)  # noqa: PERF401

    task = asyncio.create_task(drain())
    yield seen
    subscription.close()
    await task


async def audit_actions(hub: Hub, actor: str) -> list[tuple[str, str | None, Any]]:
    async with hub.pool.acquire() as conn:
        rows = await audit.list_entries(conn, limit=20, actor=actor)
    return [
        (row.action, row.target, row.after)
        for row in reversed(rows)
        if row.action.startswith("radio.")
    ]


async def test_no_gateway_configured_answers_empty(login_as: LoginAs) -> None:
    for role in ALL_ROLES:
        client = await login_as(role)
        status, body = await json_of(client, "GET", "/api/v1/radio/gateways")
        assert status == 200
        assert body["gateways"] == []
    operator = await login_as(Role.OPERATOR)
    status, body = await json_of(
        operator, "POST", "/api/v1/radio/bulletins", json={"group": "medic", "text": "Apel 07.00"}
    )
    assert (status, body["error"]["code"]) == (409, "no_gateway")
    status, body = await json_of(
        operator, "POST", "/api/v1/radio/gateways/north/channel", json={"channel": "APRS"}
    )
    assert (status, body["error"]["code"]) == (404, "gateway_not_found")


@WITH_GATEWAYS
async def test_gateways_show_config_and_the_adapters_latest_word(
    hub: Hub, login_as: LoginAs
) -> None:
    """The room's settings beside what each gateway's adapter last said: north reaches its TNC
    and rig once they are up, south reaches nothing."""
    north_config = hub.config.radio.gateways[0]
    assert north_config.rig is not None
    viewer = await login_as(Role.VIEWER)
    technician = await login_as(Role.TECHNICIAN)
    station = SimStation(new_call(7), loop_route((-6.2, 106.8), 0.2), beacon_every=0.2)

    async def north_on(channel: str) -> Any:
        """The gateways, once north's link is up with a frame heard and its rig on ``channel``."""
        status, body = await json_of(viewer, "GET", "/api/v1/radio/gateways")
        assert status == 200, body
        link = body["gateways"][0]["link"] or {}
        rig = body["gateways"][0]["transceiver"] or {}
        heard = link.get("link") == "up" and link.get("frames_in", 0) >= 1
        return body if heard and rig.get("rig_online") and rig.get("channel") == channel else None

    async with SimulatedTnc(
        [station],
        tcp=("127.0.0.1", urlsplit(north_config.url).port or 0),
        rig=RigctldServer(port=urlsplit(north_config.rig).port or 0),
        frequency=144_390_000,
        hub_callsign="YB0PSK",
    ):
        body = await eventually(lambda: north_on("APRS"), timeout=GATEWAY_WAIT)
        assert body["callsign"] == "YB0PSK"
        north, south = body["gateways"]
        assert (north["id"], north["name"], north["ptt"], north["has_rig"]) == (
            "north",
            "Posko Utara",
            "rig",
            True,
        )
        assert [c["name"] for c in north["channels"]] == ["APRS", "Lokal"]
        assert north["default_channel"] == "APRS"
        assert north["tx_timeout"] == 20
        assert north["transceiver"]["frequency"] == 144_390_000
        assert (south["name"], south["ptt"], south["has_rig"], south["channels"]) == (
            "south",
            "none",
            False,
            [],
        )
        assert south["link"]["link"] == "down"
        # Tuned from the API, the rig's own answer is what the list shows next.
        status, answer = await json_of(
            technician, "POST", "/api/v1/radio/gateways/north/channel", json={"channel": "Lokal"}
        )
        assert status == 202, answer
        body = await eventually(lambda: north_on("Lokal"), timeout=GATEWAY_WAIT)
        assert body["gateways"][0]["transceiver"]["frequency"] == 145_500_000


@WITH_GATEWAYS
async def test_commands_reach_the_bus_audited(
    hub: Hub, login_as: LoginAs, commands_seen: list[Any]
) -> None:
    technician = await login_as(Role.TECHNICIAN)
    operator = await login_as(Role.OPERATOR)
    assert technician.user is not None
    assert operator.user is not None

    status, body = await json_of(
        technician, "POST", "/api/v1/radio/gateways/north/channel", json={"channel": "Lokal"}
    )
    assert status == 202, body
    assert body == {"gateway": "north", "channel": "Lokal"}
    status, body = await json_of(
        operator, "POST", "/api/v1/radio/gateways/north/ptt", json={"on": True}
    )
    assert status == 202, body
    assert body == {"gateway": "north", "on": True, "tx_timeout": 20.0}
    status, body = await json_of(
        operator, "POST", "/api/v1/radio/gateways/north/ptt", json={"on": False}
    )
    assert status == 202
    status, body = await json_of(
        operator, "POST", "/api/v1/radio/bulletins", json={"group": "medic", "text": "Apel 07.00"}
    )
    assert status == 202, body
    assert body == {"group": "MEDIC", "text": "Apel 07.00", "gateway": None}
    status, body = await json_of(
        operator,
        "POST",
        "/api/v1/radio/bulletins",
        json={"group": "jkt1", "text": "Banjir RW 05", "gateway": "south"},
    )
    assert status == 202, body

    await eventually(lambda: len(commands_seen) == 5)
    channel, key_on, key_off, bulletin, local = commands_seen
    assert (channel.gateway, channel.channel) == ("north", "Lokal")
    assert channel.requested_by == technician.user.username
    assert (key_on.on, key_off.on) == (True, False)
    assert (bulletin.group, bulletin.text, bulletin.gateway) == ("MEDIC", "Apel 07.00", None)
    assert (local.group, local.gateway) == ("JKT1", "south")

    assert await audit_actions(hub, technician.user.username) == [
        ("radio.channel", "radio_gateway:north", {"channel": "Lokal"})
    ]
    assert [a[:2] for a in await audit_actions(hub, operator.user.username)] == [
        ("radio.ptt", "radio_gateway:north"),
        ("radio.ptt", "radio_gateway:north"),
        ("radio.bulletin", "radio"),
        ("radio.bulletin", "radio_gateway:south"),
    ]


@WITH_GATEWAYS
async def test_refused_commands_and_roles(
    hub: Hub, login_as: LoginAs, commands_seen: list[Any]
) -> None:
    operator = await login_as(Role.OPERATOR)
    technician = await login_as(Role.TECHNICIAN)
    viewer = await login_as(Role.VIEWER)

    async def expect(
        client: WebClient,
        path: str,
        body: Any,
        status: int,
        code: str,
        *field: str,
    ) -> None:
        got, answer = await json_of(client, "POST", path, json=body)
        assert got == status, (path, body, answer)
        assert answer["error"]["code"] == code, answer
        assert answer["error"]["field"] == (field[0] if field else None), answer

    channel = "/api/v1/radio/gateways/north/channel"
    await expect(operator, channel, {"channel": "Nope"}, 400, "unknown_channel", "channel")
    await expect(operator, channel, {"channel": ""}, 400, "invalid_field", "channel")
    await expect(operator, channel, {}, 400, "missing_field", "channel")
    await expect(operator, channel, {"channel": "APRS", "x": 1}, 400, "unknown_field", "x")
    await expect(operator, channel, [], 400, "invalid_body")
    await expect(
        operator, "/api/v1/radio/gateways/south/channel", {"channel": "APRS"}, 409, "no_rig"
    )
    await expect(
        operator,
        "/api/v1/radio/gateways/west/channel",
        {"channel": "APRS"},
        404,
        "gateway_not_found",
    )
    await expect(
        operator,
        "/api/v1/radio/gateways/NOT%20ONE/channel",
        {"channel": "APRS"},
        404,
        "gateway_not_found",
    )
    await expect(
        operator, "/api/v1/radio/gateways/north/ptt", {"on": "maybe"}, 400, "invalid_field", "on"
    )
    await expect(operator, "/api/v1/radio/gateways/south/ptt", {"on": True}, 409, "no_ptt")
    bulletins = "/api/v1/radio/bulletins"
    await expect(
        operator, bulletins, {"group": "toolong", "text": "x"}, 400, "invalid_field", "group"
    )
    await expect(
        operator, bulletins, {"group": "medic", "text": "x" * 68}, 400, "invalid_field", "text"
    )
    await expect(
        operator, bulletins, {"group": "medic", "text": "a{b"}, 400, "invalid_field", "text"
    )
    await expect(
        operator, bulletins, {"group": "medic", "text": "   "}, 400, "invalid_field", "text"
    )
    await expect(
        operator,
        bulletins,
        {"group": "medic", "text": "ok", "gateway": "west"},
        404,
        "gateway_not_found",
        "gateway",
    )
    async with operator.post(bulletins, data="group=medic") as response:
        assert response.status == 415

    # Roles: a viewer reads only; a technician tunes but neither keys nor sends bulletins.
    await expect(viewer, channel, {"channel": "APRS"}, 403, "forbidden")
    await expect(viewer, "/api/v1/radio/gateways/north/ptt", {"on": True}, 403, "forbidden")
    await expect(technician, "/api/v1/radio/gateways/north/ptt", {"on": True}, 403, "forbidden")
    await expect(technician, bulletins, {"group": "medic", "text": "x"}, 403, "forbidden")
    await expect(viewer, bulletins, {"group": "medic", "text": "x"}, 403, "forbidden")
    assert commands_seen == []


async def test_shutdown_unkeys_and_logs_it(hub: Hub, make_hub_config: ConfigFactory) -> None:
    """A room stopping while keyed by hand: the rig is unkeyed, and the log has both lines."""
    gateway = unique_name("gw")
    rig = RigctldServer()
    await rig.start()
    try:
        config = make_hub_config(
            radio={
                "gateways": [
                    {
                        "id": gateway,
                        "url": "tcp://127.0.0.1:9",
                        "ptt": "rig",
                        "rig": f"tcp://127.0.0.1:{rig.port}",
                    }
                ]
            }
        )
        async with Hub(config, restart_policy=TEST_RESTART_POLICY) as room:
            await eventually(
                lambda: (
                    (view := parts_of(room).view.gateway(gateway)) is not None
                    and view.transceiver is not None
                    and view.transceiver.rig_online
                )
            )
            await parts_of(room).commands.key_transmitter(gateway, on=True, actor="test")
            await eventually(lambda: rig.ptt)
        assert not rig.ptt
    finally:
        await rig.stop()
    async with hub.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT text FROM radio_log WHERE gateway = $1 AND kind = 'ptt' ORDER BY id", gateway
        )
    texts: list[str] = [row["text"] for row in rows]
    assert texts[0] == "PTT on"
    assert texts[-1].startswith("PTT off")
