"""The demo room is composed on top of a started hub: the hub alone runs no demo, and entering
``DemoRoom`` seeds the room and starts the simulated field (on the broker and on the air) and
reports; leaving stops them. Units reached by radio first move on the map by their beacons."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest

from db import cases as case_rows
from db import units as unit_rows
from db import walls as wall_rows
from ops import demo
from ops.app import Hub
from ops.core.config import check_callsign
from ops.core.events import AdapterState
from ops.demo import DemoRoom, room_config
from ops.users import Role, authenticate
from tests.fixtures.hub import TEST_RESTART_POLICY
from tests.polling import eventually

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

WAIT = 15.0
#: The gateway links up after the simulated TNC starts (a backoff), then a beacon period.
RADIO_WAIT = 30.0
DEMO_ADAPTERS = {"demo.field", "demo.reports", "radio-sim"}
#: The demo units whose positions come over the air.
RADIO_FIRST = {unit.id for unit in demo.UNITS if unit.channels[0] == "radio"}
SIGNED = re.compile(r"sign in as 'demo' with password (\S+)")


async def radio_positioned(hub: Hub, unit_ids: set[str]) -> bool:
    """Whether every one of ``unit_ids`` has a position that came over the radio."""
    async with hub.pool.acquire() as conn:
        units = await unit_rows.list_units(conn)
    return all(
        u.position_source == "radio" and u.lat is not None for u in units if u.id in unit_ids
    )


def logged_password(caplog: pytest.LogCaptureFixture) -> str:
    """The password of the last "demo room ready" line."""
    found = [SIGNED.search(r.getMessage()) for r in caplog.records if r.name == "ops.demo"]
    passwords = [match.group(1) for match in found if match is not None]
    assert passwords, "no demo room log line"
    return passwords[-1]


async def test_a_hub_alone_runs_no_demo(make_hub_config, fresh_database) -> None:
    cfg = make_hub_config(database={"url": await fresh_database()})
    async with Hub(cfg, restart_policy=TEST_RESTART_POLICY) as hub:
        assert not DEMO_ADAPTERS & set(hub.supervisor.names)
        async with hub.pool.acquire() as conn:
            assert await unit_rows.list_units(conn) == []
            assert await wall_rows.get_wall(conn, demo.DEMO_WALL) is None
        assert (hub.config.map.center_lat, hub.config.map.center_lon) != demo.CENTRE


async def test_the_demo_room_seeds_runs_and_stops_on_a_started_hub(
    make_hub_config, fresh_database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ops.demo")
    cfg = room_config(make_hub_config(database={"url": await fresh_database()}))
    assert (cfg.map.center_lat, cfg.map.center_lon, cfg.map.zoom) == (*demo.CENTRE, demo.ZOOM)
    [gateway] = cfg.radio.gateways
    assert gateway.id == demo.DEMO_GATEWAY
    assert gateway.default_channel == demo.DEMO_CHANNELS[0]["name"]
    async with Hub(cfg, restart_policy=TEST_RESTART_POLICY) as hub:
        async with DemoRoom(hub) as room:
            first_password = logged_password(caplog)
            assert [unit.id for unit in room.units] == [unit.id for unit in demo.UNITS]
            async with hub.pool.acquire() as conn:
                seeded = {row.id for row in await unit_rows.list_units(conn)}
                assert seeded == {unit.id for unit in demo.UNITS}
                assert await wall_rows.get_wall(conn, demo.DEMO_WALL) is not None
            user = await authenticate(hub.pool, demo.DEMO_USER, first_password)
            assert user is not None
            assert user.role == Role.SUPERVISOR
            # The field comes up on the hub's broker and the first public report is filed.
            async with asyncio.timeout(WAIT):
                while True:
                    field = hub.supervisor.status.get("demo.field")
                    async with hub.pool.acquire() as conn:
                        reports = await case_rows.count_open(conn, channel=demo.DEMO_CHANNEL)
                    if field is not None and field.state is AdapterState.RUNNING and reports:
                        break
                    await asyncio.sleep(0.1)
            # The radio units come on the air: the room hears their beacons and moves them.
            assert room.tnc is not None
            assert len(RADIO_FIRST) >= 2
            await eventually(
                lambda: radio_positioned(hub, RADIO_FIRST),
                timeout=RADIO_WAIT,
                message="radio-first units positioned by radio",
            )

        # Leaving the room stops its adapters; the hub goes on.
        assert not DEMO_ADAPTERS & set(hub.supervisor.names)
        assert (await hub.check_readiness())["database"] is True

        # A second start reuses what the first made and gives the account a new password.
        async with DemoRoom(hub):
            second_password = logged_password(caplog)
            assert second_password != first_password
            assert await authenticate(hub.pool, demo.DEMO_USER, first_password) is None
            assert await authenticate(hub.pool, demo.DEMO_USER, second_password) is not None
            async with hub.pool.acquire() as conn:
                assert len(await unit_rows.list_units(conn)) == len(demo.UNITS)


def test_the_demo_adds_its_gateway_only_when_the_room_has_none(make_hub_config) -> None:
    own = {"id": "room", "url": "tcp://10.0.0.2:8001"}
    cfg = room_config(make_hub_config(radio={"gateways": [own]}))
    assert [g.id for g in cfg.radio.gateways] == ["room"]
    assert demo.demo_gateway(cfg) is None
    added = room_config(make_hub_config())
    gateway = demo.demo_gateway(added)
    assert gateway is not None
    assert gateway.url != gateway.rig


def test_the_demo_units_are_valid_stations_reached_in_every_order() -> None:
    orders = {unit.channels for unit in demo.UNITS}
    assert {("radio", "mqtt"), ("mqtt", "radio"), ("radio",), ("mqtt",)} <= orders
    for unit in demo.UNITS:
        assert check_callsign(unit.callsign) == unit.callsign
    calls = [unit.callsign for unit in demo.UNITS]
    assert len(set(calls)) == len(calls)
