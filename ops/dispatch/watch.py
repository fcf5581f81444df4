"""The dispatch watch: times out unacknowledged copies and escalates (a supervised adapter)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ops.core.bus import Overflow
from ops.core.events import UNIT_POSITION_REPORTED

if TYPE_CHECKING:
    from ops.core.adapter import AdapterContext
    from ops.dispatch.service import DispatchService
    from ops.units.positions import PositionIngestor


class DispatchWatch:
    """Checks deadlines every ``interval`` seconds; a database error backs the watch off."""

    name = "dispatch-watch"

    def __init__(self, service: DispatchService, interval: float) -> None:
        self._service = service
        self._interval = interval
        self.heartbeat_interval: float | None = None

    async def run(self, ctx: AdapterContext) -> None:
        """Check, heartbeat, sleep; forever."""
        while True:
            await self._service.check_timeouts()
            ctx.heartbeat()
            await asyncio.sleep(self._interval)


class PositionFeed:
    """Positions other adapters publish on ``unit.position.reported`` go to the ingestor."""

    name = "unit-position-feed"
    heartbeat_interval: float | None = None

    def __init__(self, ingestor: PositionIngestor) -> None:
        self._ingestor = ingestor

    async def run(self, ctx: AdapterContext) -> None:
        """Forward every reported position; the ingestor validates and counts."""
        async with ctx.bus.subscribe(
            UNIT_POSITION_REPORTED,
            maxsize=10_000,
            overflow=Overflow.DROP_OLDEST,
            name=self.name,
        ) as positions:
            ctx.heartbeat()
            async for envelope in positions:
                report = envelope.payload
                self._ingestor.ingest(
                    report.unit_id, report.lat, report.lon, report.at, report.source
                )
