"""Which unit a callsign is: the radio addresses of the units registry, kept current.

The radio channel asks for every frame it hears, so the answer comes from memory. The map is
loaded at start and a unit is read again when the registry announces a change to it (a unit
that gains, changes or loses its radio address). Callsigns compare case-insensitively, SSID
included: ``YB0ABC-7`` and ``YB0ABC`` are two stations.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from db import radio as radio_rows
from ops.core.bus import Bus, Overflow, Subscription
from ops.units.events import UNIT_CHANGED, UnitSnapshot

if TYPE_CHECKING:
    from db.pool import Pool
    from ops.core.adapter import AdapterContext

_LOGGER = logging.getLogger(__name__)

NAME = "radio-directory"
#: Unit changes waiting to be read; a burst beyond it (a shift change) means a full reload.
QUEUE = 4096


class Directory:
    """Callsign -> unit id for every unit whose channels hold a radio address (an adapter)."""

    name = NAME
    heartbeat_interval: float | None = None

    def __init__(self, pool: Pool, bus: Bus) -> None:
        self._pool = pool
        self._bus = bus
        self._units: dict[str, str] = {}
        self._calls: dict[str, set[str]] = {}
        self._subscription: Subscription | None = None
        self._dropped = 0
        self._stale = False

    def unit_for(self, callsign: str) -> str | None:
        """The unit id whose radio address is ``callsign`` (SSID included), or None."""
        return self._units.get(callsign.strip().upper())

    def callsigns_of(self, unit_id: str) -> tuple[str, ...]:
        """The radio addresses of one unit, sorted (empty: not reached by radio)."""
        return tuple(sorted(self._calls.get(unit_id, ())))

    def __len__(self) -> int:
        return len(self._units)

    async def load(self) -> None:
        """Follow the registry's changes from now on, and read every unit's radio addresses."""
        # Subscribed before the read, so a change committed meanwhile is read again, not lost.
        self._subscription = self._bus.subscribe(
            UNIT_CHANGED,
            maxsize=QUEUE,
            overflow=Overflow.DROP_OLDEST,
            name=NAME,
            replay_state=False,
        )
        await self.reload()

    async def reload(self, unit_ids: set[str] | None = None) -> None:
        """Read the addresses of ``unit_ids`` again (None: of every unit)."""
        async with self._pool.acquire() as conn:
            found = await radio_rows.unit_callsigns(
                conn, None if unit_ids is None else sorted(unit_ids)
            )
        if unit_ids is None:
            self._units, self._calls = {}, {}
        else:
            for unit_id in unit_ids:
                for call in self._calls.pop(unit_id, ()):
                    if self._units.get(call) == unit_id:
                        del self._units[call]
        for call, unit_id in found.items():
            self._units[call] = unit_id
            self._calls.setdefault(unit_id, set()).add(call)

    async def run(self, ctx: AdapterContext) -> None:
        """Read changed units again as the registry announces them, until cancelled."""
        subscription = self._subscription
        if subscription is None:
            raise RuntimeError("load() the directory before running it")
        if self._stale:  # a run that failed may have lost the changes it had taken
            await self.reload()
            self._stale = False
        try:
            await self._follow(subscription, ctx)
        except BaseException:
            self._stale = True
            raise

    async def _follow(self, subscription: Subscription, ctx: AdapterContext) -> None:
        while True:
            changed = [await subscription.get()]
            while (more := subscription.get_nowait()) is not None:
                changed.append(more)
            if subscription.dropped != self._dropped:
                # Changes were dropped in a burst: only a fresh picture is safe.
                self._dropped = subscription.dropped
                await self.reload()
                continue
            snapshots: list[UnitSnapshot] = [envelope.payload for envelope in changed]
            unit_ids = {s.id for s in snapshots if "radio" in s.channels or s.id in self._calls}
            if unit_ids:
                await self.reload(unit_ids)
                ctx.logger.debug("radio addresses of %d unit(s) read again", len(unit_ids))
