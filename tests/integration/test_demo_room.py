"""The demo room is composed on top of a started hub: the hub alone runs no demo, and entering
``DemoRoom`` seeds the room and starts the simulated field and reports; leaving stops them."""

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
from ops.core.events import AdapterState
from ops.demo import DemoRoom, room_config
from ops.users import Role, authenticate
from tests.fixtures.hub import TEST_RESTART_POLICY

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

WAIT = 15.0
DEMO_ADAPTERS = {"demo.field", "demo.reports"}
SIGNED = re.compile(r"sign in as 'demo' with password (\S+)")


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
