"""Typed bus topics, the event envelope and the hub's own events.

Events are facts in the past tense, frozen so a subscriber can never change what another sees.
"""

from __future__ import annotations

import enum
import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Topic(Generic[T]):
    """A bus key whose type parameter is the payload type, so mypy checks publishers.

    A *state* topic keeps the last envelope per key, so a late subscriber gets the current picture.
    """

    name: str
    state: bool = False

    def __repr__(self) -> str:
        return f"Topic({self.name!r})"


_ID_PREFIX = uuid.uuid4().hex[:12]
_ID_COUNTER = itertools.count(1)


def new_correlation_id() -> str:
    """Return a fresh id that ties together the events of one piece of work.

    A per-process random prefix plus a counter: unique across hubs and restarts, and ten times
    cheaper than a UUID on the bus's hot path.
    """
    return f"{_ID_PREFIX}-{next(_ID_COUNTER):x}"


@dataclass(frozen=True, slots=True)
class Envelope(Generic[T]):
    """One event on the bus: what, about which key, from whom, when, and as part of what."""

    topic: Topic[T]
    payload: T
    source: str
    key: str = ""
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    correlation_id: str = field(default_factory=new_correlation_id)


class AdapterState(enum.StrEnum):
    """Life cycle of a supervised adapter."""

    STARTING = "starting"
    RUNNING = "running"
    BACKOFF = "backoff"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class AdapterStatus:
    """An adapter changed state; the wall and device health show it."""

    name: str
    state: AdapterState
    detail: str = ""
    restarts: int = 0
    retry_in: float | None = None


class Severity(enum.StrEnum):
    """How urgently a person must look at an alarm."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class AlarmRaised:
    """Something needs a person: an adapter that stopped, a restart storm, a queue about to drop."""

    source: str
    code: str
    message: str
    severity: Severity = Severity.WARNING


@dataclass(frozen=True, slots=True)
class SubscriberOverflowed:
    """A bus subscriber fell behind; what happened depends on its overflow policy."""

    subscriber: str
    policy: str
    dropped: int


@dataclass(frozen=True, slots=True)
class HubReadinessChanged:
    """The hub's readiness (database and broker reachable) changed."""

    ready: bool
    checks: dict[str, bool]


@dataclass(frozen=True, slots=True)
class AuditRecorded:
    """An action was written to the audit log."""

    actor: str
    action: str
    target: str | None
    detail: dict[str, Any] | None = None


Figure = float | int | str | bool | None


@dataclass(frozen=True, slots=True)
class DeviceReported:
    """A device showed life or reported figures, from whichever adapter reaches it.

    ``online`` is set when the source knows the status outright (an MQTT status message, a wall
    screen's socket closing); None means "heard from it", which counts as proof of life.
    """

    device_id: str
    kind: str
    figures: dict[str, Figure] = field(default_factory=dict)
    online: bool | None = None
    name: str | None = None
    site: str | None = None


@dataclass(frozen=True, slots=True)
class CaseSnapshot:
    """What the queue, the map and the wall need to know of a case after any change.

    ``priority`` is one of critical, high, medium, low; ``status`` one of the case life cycle's
    states. Published as ``case.opened`` when a case is created and ``case.changed`` after every
    committed change; ``case.sla_breached`` when its SLA clock runs out.
    """

    id: int
    number: str
    title: str
    category: str
    priority: str
    status: str
    channel: str
    agency: str | None
    lat: float | None
    lon: float | None
    region: str | None
    created_at: datetime
    updated_at: datetime
    sla_due_at: datetime | None
    parent_id: int | None = None
    #: A suspected original (set at intake), the breach time, and linked duplicates: so a queue
    #: shows duplicates and breaches from the event alone, without asking for the case again.
    duplicate_of: int | None = None
    sla_breached_at: datetime | None = None
    children: int = 0


ADAPTER_STATUS: Topic[AdapterStatus] = Topic("hub.adapter.status", state=True)
ALARM_RAISED: Topic[AlarmRaised] = Topic("hub.alarm.raised")
SUBSCRIBER_OVERFLOWED: Topic[SubscriberOverflowed] = Topic("hub.bus.overflowed")
HUB_READINESS: Topic[HubReadinessChanged] = Topic("hub.readiness", state=True)
AUDIT_RECORDED: Topic[AuditRecorded] = Topic("hub.audit.recorded")
DEVICE_REPORTED: Topic[DeviceReported] = Topic("device.reported")
CASE_OPENED: Topic[CaseSnapshot] = Topic("case.opened")
CASE_CHANGED: Topic[CaseSnapshot] = Topic("case.changed")
CASE_SLA_BREACHED: Topic[CaseSnapshot] = Topic("case.sla_breached")


@dataclass(frozen=True, slots=True)
class DeviceAnnounced:
    """A device described itself (kind, place, attributes, commands it accepts).

    MQTT devices do so with a retained ``{prefix}/devices/{id}/config`` message; a person's
    registration of the same device wins over it.
    """

    device_id: str
    kind: str
    adapter: str
    name: str | None = None
    site: str | None = None
    lat: float | None = None
    lon: float | None = None
    tags: tuple[str, ...] = ()
    attributes: dict[str, Any] = field(default_factory=dict)
    commands: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DeviceCommandRequested:
    """Someone asked a device to do something; the adapter that reaches it sends it on."""

    request_id: str
    device_id: str
    command: str
    args: dict[str, Any] = field(default_factory=dict)
    requested_by: str = ""


@dataclass(frozen=True, slots=True)
class DeviceCommandReplied:
    """A device answered a command (or did not in time: ``ok`` False, ``error`` says why)."""

    request_id: str
    device_id: str
    ok: bool
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


DEVICE_ANNOUNCED: Topic[DeviceAnnounced] = Topic("device.announced")
DEVICE_COMMAND_REQUESTED: Topic[DeviceCommandRequested] = Topic("device.command.requested")
DEVICE_COMMAND_REPLIED: Topic[DeviceCommandReplied] = Topic("device.command.replied")


@dataclass(frozen=True, slots=True)
class UnitPositionReported:
    """A field unit's position, heard by any adapter (APRS, satellite, NMEA, a tracker).

    The units domain validates it (range, not from the future) and stores it through the same
    function as MQTT positions; ``at`` is when the fix was taken, ``source`` the adapter's name.
    """

    unit_id: str
    lat: float
    lon: float
    at: datetime
    source: str


UNIT_POSITION_REPORTED: Topic[UnitPositionReported] = Topic("unit.position.reported")
