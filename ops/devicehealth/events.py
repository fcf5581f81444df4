"""What device health tells the room live: state changes (a state topic) and alarm changes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from ops.core.events import Figure, Topic


@dataclass(frozen=True, slots=True)
class DeviceHealthChanged:
    """A device's committed health: the console, the map and the wall show it.

    Published on the state topic ``device.health`` keyed by device id, so a new subscriber gets
    every device's current state first.
    """

    device_id: str
    kind: str
    name: str | None
    site: str | None
    state: str
    previous: str
    reason: str
    since: dt.datetime
    figures: dict[str, Figure] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AlarmChanged:
    """An alarm was raised, raised again, acknowledged, escalated or cleared (after commit)."""

    id: int
    device_id: str
    code: str
    severity: str
    message: str
    status: str
    action: str
    raised_at: dt.datetime
    times: int
    acknowledged_by: str | None
    acknowledged_at: dt.datetime | None
    escalated_at: dt.datetime | None
    cleared_at: dt.datetime | None
    escalated_to: str | None = None


DEVICE_HEALTH: Topic[DeviceHealthChanged] = Topic("device.health", state=True)
DEVICE_ALARM: Topic[AlarmChanged] = Topic("device.alarm")
