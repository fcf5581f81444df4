"""Bus events of units and dispatch; the live feed carries them to the console.

``unit.changed`` and ``unit.moved`` are state topics keyed by unit id, so a console that joins
late gets every unit's status and last position at once. Orders are not: the console loads the
open ones from ``GET /api/v1/dispatches`` and follows ``dispatch.order.changed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ops.core.events import Topic

if TYPE_CHECKING:
    from datetime import datetime


@dataclass(frozen=True, slots=True)
class UnitSnapshot:
    """What the list and the map need to know of a unit after any change."""

    id: str
    callsign: str
    name: str
    kind: str
    skills: tuple[str, ...]
    status: str
    status_reason: str | None
    on_duty: bool
    lat: float | None
    lon: float | None
    position_at: datetime | None
    position_source: str | None
    channels: tuple[str, ...]
    shift: str | None = None


@dataclass(frozen=True, slots=True)
class UnitMoved:
    """A unit's last known position moved forward in time."""

    unit_id: str
    lat: float
    lon: float
    position_at: datetime
    position_source: str


@dataclass(frozen=True, slots=True)
class OrderChanged:
    """Something happened on an order's ladder.

    ``kind`` is one of created, queued, sent, send_failed, delivered, acknowledged, timed_out,
    exhausted, escalated, escalation_failed, alarm, text, requeued, cancelled, failed.
    """

    order_id: str
    case_id: int
    status: str
    kind: str
    unit_id: str | None
    channel: str | None
    detail: str


UNIT_CHANGED: Topic[UnitSnapshot] = Topic("unit.changed", state=True)
UNIT_MOVED: Topic[UnitMoved] = Topic("unit.moved", state=True)
ORDER_CHANGED: Topic[OrderChanged] = Topic("dispatch.order.changed")
