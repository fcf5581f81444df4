"""What evaluation hands to persistence: the changes decided but not stored yet.

Evaluation fills one :class:`Pending` (no I/O); the persister takes its batch, stores it, and puts
it back in front of what came since when the database is away.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from db.devices import SeenDevice, StateUpdate
from ops.core.events import DeviceAnnounced

#: A device event to store: (device id, when, kind, detail).
DeviceEvent = tuple[str, dt.datetime, str, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class AlarmAction:
    """Raise or clear one alarm of a device."""

    action: str  # "raise" or "clear"
    device_id: str
    code: str
    severity: str = "warning"
    message: str = ""


@dataclass(slots=True)
class Batch:
    """Changes stored together, in one transaction."""

    seen: dict[str, SeenDevice] = field(default_factory=dict)
    announced: dict[str, DeviceAnnounced] = field(default_factory=dict)
    states: dict[str, StateUpdate] = field(default_factory=dict)
    events: list[DeviceEvent] = field(default_factory=list)
    alarms: list[AlarmAction] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.seen or self.announced or self.states or self.events or self.alarms)

    def by_device(self) -> dict[str, Batch]:
        """The batch split into one part per device, each in its original order."""
        parts: dict[str, Batch] = collections.defaultdict(Batch)
        for device_id, seen in self.seen.items():
            parts[device_id].seen[device_id] = seen
        for device_id, note in self.announced.items():
            parts[device_id].announced[device_id] = note
        for device_id, update in self.states.items():
            parts[device_id].states[device_id] = update
        for event in self.events:
            parts[event[0]].events.append(event)
        for action in self.alarms:
            parts[action.device_id].alarms.append(action)
        return dict(parts)

    def extend(self, newer: Batch) -> None:
        """Add what came after this batch; newer states of a device win."""
        self.seen.update(newer.seen)
        self.announced.update(newer.announced)
        self.states.update(newer.states)
        self.events.extend(newer.events)
        self.alarms.extend(newer.alarms)

    def replace(self, other: Batch) -> None:
        """Hold exactly what ``other`` holds (the caller keeps this object)."""
        self.seen, self.announced, self.states = other.seen, other.announced, other.states
        self.events, self.alarms = other.events, other.alarms


class Pending:
    """The batch being filled, the devices with unstored figures, and the persister's wake-up."""

    def __init__(self) -> None:
        self.batch = Batch()
        #: Devices whose last-seen time and figures changed without a state change.
        self.touched: set[str] = set()
        self.wake = asyncio.Event()

    def queued(self) -> None:
        """Something was added to the batch: the persister should store it soon."""
        self.wake.set()

    def take(self) -> Batch:
        """The batch so far, leaving an empty one in its place."""
        batch, self.batch = self.batch, Batch()
        return batch

    def put_back(self, batch: Batch) -> None:
        """Put a batch that was not stored in front of what came since."""
        batch.extend(self.batch)
        self.batch = batch
