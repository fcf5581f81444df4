"""Device health for the room: one front for its three parts, as the hub and the web use them.

- :mod:`~ops.devicehealth.evaluation` turns bus events and time into health changes (no I/O);
- :mod:`~ops.devicehealth.persistence` stores them in batches and publishes committed alarms;
- :mod:`~ops.devicehealth.actions` is what people do, each action audited in its transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from db import alarms as alarm_rows
from db import devices as device_rows
from devices.health import HealthPolicy
from ops.core.bus import Bus, Overflow, Subscription
from ops.core.events import (
    ADAPTER_STATUS,
    ALARM_RAISED,
    DEVICE_ANNOUNCED,
    DEVICE_COMMAND_REPLIED,
    DEVICE_REPORTED,
    AdapterState,
    DeviceCommandReplied,
)
from ops.devicehealth.actions import AlarmCleared, CommandRefused, DeviceActions, DeviceExists
from ops.devicehealth.changes import Pending
from ops.devicehealth.evaluation import (
    MAX_LOGGED_SOURCES,
    SOURCE,
    DeviceEntry,
    DeviceNotFound,
    HealthEvaluator,
)
from ops.devicehealth.persistence import DEFAULT_FLUSH, DEFAULT_TOUCH_EVERY, HealthPersister

if TYPE_CHECKING:
    import collections

    from db.alarms import AlarmRow
    from db.devices import DeviceRow
    from db.pool import Pool
    from ops.core.config import DevicesConfig

_LOGGER = logging.getLogger(__name__)

DEFAULT_TICK = 1.0
DEFAULT_QUEUE = 50_000
#: The evaluator yields to the other tasks after this many events in a burst.
YIELD_EVERY = 512


class DeviceHealthService:
    """Every device's truth: registry, health, alarms; its loops run as supervised adapters."""

    def __init__(
        self,
        bus: Bus,
        pool: Pool,
        config: DevicesConfig,
        *,
        hub_id: str,
        policy: HealthPolicy | None = None,
        tick: float = DEFAULT_TICK,
        flush: float = DEFAULT_FLUSH,
        touch_every: float = DEFAULT_TOUCH_EVERY,
        clock: Callable[[], float] = time.monotonic,
        untrusted: frozenset[str] = frozenset(),
        link: str | None = None,
        on_rejected: Callable[[str, str], None] | None = None,
    ) -> None:
        self.bus = bus
        self.pool = pool
        pending = Pending()
        self.evaluator = HealthEvaluator(
            bus,
            config,
            pending,
            hub_id=hub_id,
            policy=policy,
            clock=clock,
            untrusted=untrusted,
            link=link,
            on_rejected=on_rejected,
        )
        self.persister = HealthPersister(
            bus,
            pool,
            config,
            pending,
            self.evaluator.devices,
            flush=flush,
            touch_every=touch_every,
            clock=clock,
        )
        self.actions = DeviceActions(bus, pool, self.evaluator, self.persister)
        self.policy = self.evaluator.policy
        self.devices = self.evaluator.devices
        self._tick = tick

    # -- what evaluation and persistence count ---------------------------------------------------

    @property
    def reports(self) -> int:
        """Reports evaluated."""
        return self.evaluator.reports

    @property
    def transitions(self) -> int:
        """Committed health changes."""
        return self.evaluator.transitions

    @property
    def rejected(self) -> collections.Counter[tuple[str, str]]:
        """Reports dropped, by (source device, reason)."""
        return self.evaluator.rejected

    @property
    def refused(self) -> int:
        """Stored changes the database refused for their data, dropped."""
        return self.persister.refused

    @property
    def open_alarms(self) -> dict[int, AlarmRow]:
        """The alarms not cleared, as committed."""
        return self.persister.open_alarms

    # -- life cycle -------------------------------------------------------------------------------

    async def load(self) -> None:
        """Resume from the database: every known device, with a fresh silence window."""
        async with self.pool.acquire() as conn:
            rows = await device_rows.list_devices(conn)
            active = await alarm_rows.list_alarms(conn, status="active", limit=alarm_rows.MAX_LIMIT)
        self.evaluator.restore(rows)
        self.persister.open_alarms.update((alarm.id, alarm) for alarm in active)
        _LOGGER.info("device registry loaded: %d devices, %d active alarms", len(rows), len(active))

    def subscribe(self) -> Subscription:
        """The evaluator's subscription; open it before the adapters start so nothing is missed."""
        return self.bus.subscribe(
            [
                DEVICE_REPORTED,
                DEVICE_ANNOUNCED,
                ADAPTER_STATUS,
                ALARM_RAISED,
                DEVICE_COMMAND_REPLIED,
            ],
            maxsize=DEFAULT_QUEUE,
            overflow=Overflow.ALARM,
            name=SOURCE,
        )

    async def run_evaluator(self, subscription: Subscription) -> None:
        """Turn bus events into health changes until cancelled (one supervised adapter)."""
        evaluator = self.evaluator
        evaluator.report_hub_itself()
        handled = 0
        async for envelope in subscription:
            try:
                evaluator.handle(envelope)
            except Exception:
                _LOGGER.exception("device health could not handle %s", envelope.topic.name)
            handled += 1
            if handled % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # let the other tasks in during a burst

    async def run_ticker(self) -> None:
        """Judge silence and hysteresis as time passes, until cancelled."""
        while True:
            await asyncio.sleep(self._tick)
            self.evaluator.tick()

    async def run_persister(self) -> None:
        """Store health changes in batches and escalate due alarms, until cancelled."""
        await self.persister.run()

    async def persist_now(self) -> None:
        """Store everything queued so far at once (at shutdown, when the loops are stopped)."""
        await self.persister.persist_now()

    async def wait_idle(self) -> None:
        """Wait until everything known so far is committed (for tests and benches)."""
        await self.persister.wait_idle()

    def link_changed(self, state: AdapterState) -> None:
        """The MQTT link changed: pause silence while it is down, then grant a fresh window."""
        self.evaluator.link_changed(state)

    # -- queries and actions for people -----------------------------------------------------------

    def entry(self, device_id: str) -> DeviceEntry:
        """The in-memory entry of a device; raises DeviceNotFound."""
        return self.evaluator.entry(device_id)

    def live_view(self, row: DeviceRow) -> dict[str, Any]:
        """A stored device overlaid with its live health (the stored copy may lag a flush)."""
        return self.evaluator.live_view(row)

    def commands_of(self, entry: DeviceEntry) -> tuple[str, ...]:
        """What a device accepts: its kind's commands and those it announced."""
        return self.evaluator.commands_of(entry)

    def registered(self, row: DeviceRow) -> None:
        """A device was registered or changed outside :attr:`actions`: follow it."""
        self.evaluator.registered(row)

    async def command(
        self,
        device_id: str,
        command: str,
        args: dict[str, Any],
        *,
        by: str,
        timeout: float,  # noqa: ASYNC109 - the caller's bound on the device's answer
    ) -> DeviceCommandReplied:
        """Ask a device to do something and wait for its answer (see :class:`DeviceActions`)."""
        return await self.actions.command(device_id, command, args, by=by, timeout=timeout)

    async def acknowledge(self, alarm_id: int, by: str) -> AlarmRow | None:
        """Acknowledge an alarm, audited (see :class:`DeviceActions`)."""
        return await self.actions.acknowledge(alarm_id, by)

    async def clear(self, alarm_id: int, by: str) -> AlarmRow | None:
        """Clear an alarm by hand, audited (see :class:`DeviceActions`)."""
        return await self.actions.clear(alarm_id, by)


__all__ = [
    "MAX_LOGGED_SOURCES",
    "AlarmCleared",
    "CommandRefused",
    "DeviceEntry",
    "DeviceExists",
    "DeviceHealthService",
    "DeviceNotFound",
]
