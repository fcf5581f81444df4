"""Helpers of the units and dispatch tests: cases and units placed at a spot of their own.

The test database is shared by every test of a run, so each test works around a random point
of its own; units of other tests are hundreds of kilometres away and never rank first.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ops.app import Hub
from ops.units.service import UnitSpec, create_unit
from ops.users import Role
from ops.web.app import Served
from tests.fixtures.hub import WebClient, client_of, create_user, log_in, unique_name


@dataclass(frozen=True)
class Spot:
    """A point of one test's own."""

    lat: float
    lon: float

    def near(self, north_km: float, east_km: float = 0.0) -> tuple[float, float]:
        """A point this many kilometres north and east (small distances)."""
        return self.lat + north_km / 111.2, self.lon + east_km / 111.0


def new_spot() -> Spot:
    """A random point in the archipelago's bounding box."""
    return Spot(random.uniform(-8.0, 4.0), random.uniform(96.0, 138.0))  # noqa: S311


async def add_case(hub: Hub, spot: Spot | None, *, category: str = "fire") -> int:
    """A new open case at ``spot`` (None: without a location); returns its id."""
    async with hub.pool.acquire() as conn:
        case_id: int = await conn.fetchval(
            """
            INSERT INTO cases (channel, category, priority, title, lat, lon, sla_due_at)
            VALUES ('console', $1, 'high', 'test case', $2, $3, now() + interval '1 hour')
            RETURNING id
            """,
            category,
            None if spot is None else spot.lat,
            None if spot is None else spot.lon,
        )
    return case_id


async def add_unit(
    hub: Hub,
    *,
    kind: str = "fire",
    at: tuple[float, float] | None = None,
    age_s: float = 10.0,
    skills: tuple[str, ...] = (),
    channels: tuple[tuple[str, str], ...] | None = None,
    unit_id: str | None = None,
) -> str:
    """Register a unit (channels default to its MQTT app) with a position ``age_s`` old."""
    unit_id = unit_id or unique_name("u")
    spec = UnitSpec.model_validate(
        {
            "id": unit_id,
            "callsign": unit_id.replace("_", "-")[:16],
            "name": f"Unit {unit_id}",
            "kind": kind,
            "skills": list(skills),
            "channels": [
                {"channel": c, "address": a}
                for c, a in (channels if channels is not None else (("mqtt", unit_id),))
            ],
        }
    )
    await create_unit(hub.pool, hub.bus, spec, actor="test")
    if at is not None:
        await place(hub, unit_id, at, age_s=age_s)
    return unit_id


async def place(hub: Hub, unit_id: str, at: tuple[float, float], *, age_s: float = 10.0) -> None:
    """Set a unit's last known position directly."""
    async with hub.pool.acquire() as conn:
        await conn.execute(
            """
            UPDATE units SET lat = $2, lon = $3, position_at = $4, position_source = 'test'
            WHERE id = $1
            """,
            unit_id,
            at[0],
            at[1],
            datetime.now(UTC) - timedelta(seconds=age_s),
        )


@contextlib.asynccontextmanager
async def signed_in(hub: Hub, served: Served, role: Role) -> AsyncIterator[WebClient]:
    """A client of ``served`` signed in as a new user of ``role``."""
    user, password = await create_user(hub, role)
    async with client_of(served) as client:
        response = await log_in(client, user.username, password)
        assert response.status == 200
        client.user = user
        yield client


async def json_of(client: WebClient, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    """Call the hub; return the status and the JSON body."""
    async with client.request(method, path, **kwargs) as response:
        return response.status, await response.json()
