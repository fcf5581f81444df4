"""Bus events of dispatch; the live feed carries them to the console.

Orders are not a state topic: the console loads the open ones from ``GET /api/v1/dispatches`` and
follows ``dispatch.order.changed``. The units' own events are in ``ops.units.events``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ops.core.events import Topic


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


ORDER_CHANGED: Topic[OrderChanged] = Topic("dispatch.order.changed")
