"""What the unit, dispatch and shift routes answer: one response model per shape."""

from __future__ import annotations

from pydantic import Field

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


class Orders(Out):
    """Orders newest first."""

    orders: list[OrderOut]


class AcknowledgeResult(Out):
    """Whether the acknowledgement changed anything, and the order now."""

    changed: bool = Field(description="False for a repeated acknowledgement.")
    order: OrderOut
