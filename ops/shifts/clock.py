"""The shift clock: keeps the duty of units that follow a shift in step with the schedule.

At start and at every shift boundary it puts each unit with a shift on duty when its shift is
the current one and off duty otherwise, through the audited unit path (actor ``hub``). An
operator's duty change by hand holds until the next boundary, where the schedule applies again;
a restart in the middle of a shift does not undo it (the applied shift is kept in the database).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ops.database import backoff_while_unreachable
from ops.units.service import follow_shift

if TYPE_CHECKING:
    from db.pool import Pool
    from ops.core.adapter import AdapterContext
    from ops.core.bus import Bus
    from ops.shifts.schedule import Schedule, ShiftPeriod

#: Longest single sleep: the clock wakes at least this often (seconds) and checks again, so a
#: change of the wall clock under a sleeping loop is caught within a minute.
DEFAULT_MAX_NAP = 60.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ShiftClock:
    """A supervised adapter: syncs units' duty to the current shift, then sleeps to the next."""

    name = "shift-clock"
    heartbeat_interval: float | None = None

    def __init__(
        self,
        pool: Pool,
        bus: Bus,
        schedule: Schedule,
        *,
        now: Callable[[], datetime] = _utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_nap: float = DEFAULT_MAX_NAP,
    ) -> None:
        self._pool = pool
        self._bus = bus
        self._schedule = schedule
        self._now = now
        self._sleep = sleep
        self._max_nap = max_nap
        self.applied: ShiftPeriod | None = None

    async def run(self, ctx: AdapterContext) -> None:
        """Sync at start and whenever a new shift begins; forever."""
        self.applied = None
        while True:
            period = self._schedule.at(self._now())
            if period != self.applied:
                with backoff_while_unreachable():
                    changed = await follow_shift(
                        self._pool, self._bus, period.name, period.started_at
                    )
                if changed is None:
                    ctx.logger.info(
                        "shift %s (since %s) was applied already; duty set by hand stays",
                        period.name,
                        period.started_at.isoformat(),
                    )
                else:
                    ctx.logger.info(
                        "shift %s began at %s: %d units changed duty",
                        period.name,
                        period.started_at.isoformat(),
                        len(changed),
                    )
                self.applied = period
            ctx.heartbeat()
            remaining = (period.ends_at - self._now()).total_seconds()
            await self._sleep(min(max(remaining, 0.0), self._max_nap))
