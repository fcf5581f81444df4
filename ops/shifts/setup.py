"""Start the shift domain on a hub: the clock that keeps units' duty in step with the schedule."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ops.shifts.clock import ShiftClock
from ops.shifts.schedule import Schedule

if TYPE_CHECKING:
    from ops.core.hub import HubContext


async def setup(hub: HubContext) -> None:
    """Start the shift clock on the schedule of ``[shifts]``."""
    hub.supervisor.start(ShiftClock(hub.pool, hub.bus, Schedule.from_config(hub.config)))
