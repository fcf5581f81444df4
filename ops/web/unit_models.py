"""What the unit, dispatch and shift routes answer: one response model per shape."""

from __future__ import annotations

from datetime import datetime
from typing import Self

from pydantic import Field

from db.units import UnitRow
from ops.dispatch.service import OrderDetail
from ops.http.models import AnyJson, Out, Time


class ChannelOut(Out):
    """A way to reach a unit, tried in order."""

    channel: str
    address: str


class UnitOut(Out):
    """A unit, flat like the ``unit.changed`` and ``unit.moved`` events."""

    id: str
    callsign: str | None
    name: str
    kind: str
    skills: list[str]
    home_center: str | None
    on_duty: bool
    status: str
    status_reason: str | None
    channels: list[ChannelOut]
    shift: str | None
    lat: float | None
    lon: float | None
    position_at: Time | None
    position_source: str | None
    position_age_s: float | None
    stale: bool = Field(description="No position, or one older than stale_after_s.")
    stale_after_s: float
    updated_at: Time

    @classmethod
    def of(cls, row: UnitRow, now: datetime, stale_after: float) -> Self:
        """A unit with how old its position is now, and whether that is stale.

        A unit that never reported a position counts as stale.
        """
        age = None if row.position_at is None else (now - row.position_at).total_seconds()
        return cls.model_validate(
            {
                **{name: getattr(row, name) for name in cls.model_fields if hasattr(row, name)},
                "skills": list(row.skills),
                "channels": [{"channel": c, "address": a} for c, a in row.channels],
                "position_age_s": None if age is None else round(max(age, 0.0), 1),
                "stale": age is None or age > stale_after,
                "stale_after_s": stale_after,
            }
        )


class Units(Out):
    """Units with status, duty and position freshness."""

    units: list[UnitOut]


class CaseSummary(Out):
    """The case units are recommended for."""

    id: int
    number: str
    category: str
    lat: float | None
    lon: float | None


class Need(Out):
    """What the case's category needs."""

    kinds: list[str]
    skills: list[str]


class RankedUnit(Out):
    """A unit's place in the ranking, and why."""

    rank: int
    unit: UnitOut
    distance_km: float | None
    score: float
    stale: bool
    reasons: list[str]


class Recommendation(Out):
    """Available on-duty units ranked for a case."""

    case: CaseSummary
    need: Need
    stale_after_s: float
    units: list[RankedUnit]


class PositionOut(Out):
    """One position fix."""

    at: Time
    lat: float
    lon: float
    source: str
    received_at: Time


class PositionHistory(Out):
    """A unit's position history, newest first."""

    unit: str
    positions: list[PositionOut]


class PositionStats(Out):
    """Positions accepted and dropped per source and reason since the hub started."""

    accepted: dict[str, int]
    rejected: dict[str, dict[str, int]] = Field(
        description="Per source, per reason (malformed, out_of_range, future, unknown_unit, "
        "overflow)."
    )
    buffered: int
    stored: int
    events_rejected: dict[str, AnyJson]


class ShiftOut(Out):
    """A shift of the schedule and the local time it starts."""

    name: str
    start: str = Field(pattern="^[0-2][0-9]:[0-5][0-9]$")


class CurrentShift(Out):
    """The shift on now, when it started and ends, and the whole schedule."""

    shift: str
    started_at: Time
    ends_at: Time
    timezone: str
    shifts: list[ShiftOut]


class CopyOut(Out):
    """One copy of an order on one channel: a step of the delivery ladder."""

    step: int
    channel: str
    address: str
    state: str
    attempts: int
    queued_at: Time
    sent_at: Time | None
    delivered_at: Time | None
    acknowledged_at: Time | None
    closed_at: Time | None
    deadline: Time
    last_error: str | None


class AssignmentOut(Out):
    """A unit sent by an order, and its ladder."""

    unit: str
    status: str
    escalated_from: str | None = Field(description="The unit this one replaced.")
    acknowledged_at: Time | None
    ack_channel: str | None
    ladder: list[CopyOut]


class OrderEvent(Out):
    """Something that happened to an order."""

    at: Time
    kind: str
    unit: str | None
    channel: str | None
    detail: AnyJson


class OrderCase(Out):
    """The case an order serves."""

    id: int
    number: str


class OrderOut(Out):
    """A dispatch order: the ladder per unit, then the history."""

    id: str
    case: OrderCase
    message: str
    auto_escalate: bool
    status: str
    created_by: str
    created_at: Time
    closed_at: Time | None
    assignments: list[AssignmentOut]
    events: list[OrderEvent]

    @classmethod
    def of(cls, detail: OrderDetail) -> Self:
        """An order as the service reads it: the ladder per unit, then the history."""
        order = detail.order
        unit_of = {a.id: a.unit_id for a in detail.assignments}
        return cls(
            id=order.id,
            case=OrderCase(id=order.case_id, number=detail.case_number),
            message=order.message,
            auto_escalate=order.auto_escalate,
            status=order.status,
            created_by=order.created_by,
            created_at=order.created_at,
            closed_at=order.closed_at,
            assignments=[
                AssignmentOut(
                    unit=a.unit_id,
                    status=a.status,
                    escalated_from=unit_of.get(a.escalated_from)
                    if a.escalated_from is not None
                    else None,
                    acknowledged_at=a.acknowledged_at,
                    ack_channel=a.ack_channel,
                    ladder=[
                        CopyOut.model_validate(c) for c in detail.copies if c.assignment_id == a.id
                    ],
                )
                for a in detail.assignments
            ],
            events=[
                OrderEvent(at=e.at, kind=e.kind, unit=e.unit_id, channel=e.channel, detail=e.detail)
                for e in detail.events
            ],
        )


class Orders(Out):
    """Orders newest first."""

    orders: list[OrderOut]


class AcknowledgeResult(Out):
    """Whether the acknowledgement changed anything, and the order now."""

    changed: bool = Field(description="False for a repeated acknowledgement.")
    order: OrderOut
