"""Orders to field units: create, acknowledge, deliver, cancel, time out and escalate.

Every change to an order locks the order row first, then writes its assignments, outbox copies,
unit statuses, audit entries and history in one transaction; bus events go out only after the
commit. The audit actor is the operator for console actions, ``unit:{id}`` for a unit's own
acknowledgement and ``hub`` for timeouts, exhaustion and escalation. The order's id is the one
id every copy carries, so an acknowledgement names it, and a repeated acknowledgement finds the
assignment already closed and changes nothing.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from db import audit
from db import cases as case_rows
from db import dispatch as rows
from db import units as unit_rows
from ops.cases.intake import IncomingReport, submit_report
from ops.cases.model import MAX_SHORT, MAX_TITLE
from ops.core.events import (
    ALARM_RAISED,
    AUDIT_RECORDED,
    AlarmRaised,
    AuditRecorded,
    Severity,
)
from ops.dispatch.events import ORDER_CHANGED, OrderChanged
from ops.units import recommend
from ops.units.errors import InvalidUnit, UnitError, UnitNotFound
from ops.units.service import announce, set_status

if TYPE_CHECKING:
    from db.pool import Connection, Pool
    from ops.core.bus import Bus
    from ops.core.config import CasesConfig

_LOGGER = logging.getLogger(__name__)

#: Case statuses a unit can still be sent to.
OPEN_CASE_STATUSES: Final = frozenset({"new", "triaged", "assigned", "in_progress", "reopened"})
#: Unit statuses a unit may report itself.
UNIT_REPORTABLE: Final = frozenset(
    {"available", "en_route", "on_scene", "returning", "out_of_service"}
)
WATCH_BATCH: Final = 100
MAX_UNITS_PER_ORDER: Final = 10
#: Units considered when escalating (the ranking's usual first page).
ESCALATION_PICKS: Final = 10


class OrderNotFound(UnitError, LookupError):  # noqa: N818 - reads as the condition it reports
    """No order with that id, or the unit is not part of it."""


class DispatchRefused(UnitError):  # noqa: N818
    """The dispatch cannot go as asked (409); ``reasons`` says why, per unit where it applies."""

    def __init__(self, code: str, message: str, reasons: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reasons = reasons or {}


@dataclass(frozen=True, slots=True)
class OrderDetail:
    """An order with its case, assignments, outbox ladder and history."""

    order: rows.OrderRow
    case_number: str
    assignments: list[rows.AssignmentRow]
    copies: list[rows.OutboxRow]
    events: list[rows.EventRow]


@dataclass(slots=True)
class _Effects:
    """What to announce once the transaction has committed."""

    orders: list[OrderChanged] = field(default_factory=list)
    units: dict[str, unit_rows.UnitRow] = field(default_factory=dict)
    alarms: list[AlarmRaised] = field(default_factory=list)
    queued: set[str] = field(default_factory=set)
    audits: list[tuple[int, AuditRecorded]] = field(default_factory=list)


def new_order_id() -> str:
    """A short random id (12 hex digits): short enough for an APRS message, unique enough."""
    return secrets.token_hex(6)


class DispatchService:
    """The order flow of one hub."""

    def __init__(
        self,
        pool: Pool,
        bus: Bus,
        *,
        timeouts: dict[str, float],
        auto_escalate: bool,
        stale_after: float,
        cases: CasesConfig | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.pool = pool
        self.cases = cases
        self.bus = bus
        self.timeouts = dict(timeouts)
        self.auto_escalate = auto_escalate
        self.stale_after = stale_after
        self.clock = clock
        self.duplicate_acks = 0
        self._wakers: dict[str, Callable[[], None]] = {}

    def on_queued(self, channel: str, wake: Callable[[], None]) -> None:
        """Call ``wake`` when a copy for ``channel`` is queued (its sender drains at once)."""
        self._wakers[channel] = wake

    def timeout_of(self, channel: str) -> float:
        """The acknowledgement timeout of a channel (unknown channels get the longest)."""
        return self.timeouts.get(channel, max(self.timeouts.values()))

    # -- create ------------------------------------------------------------------------------

    async def dispatch(
        self,
        *,
        case_id: int,
        unit_ids: Sequence[str],
        message: str,
        actor: str,
        auto_escalate: bool | None = None,
        override: bool = False,
        override_reason: str | None = None,
    ) -> OrderDetail:
        """Create one order for the units and queue its first copies; committed on return.

        Audited as ``dispatch.create`` (``dispatch.override`` with ``override``) by ``actor``.

        Raises:
            recommend.CaseMissing: no such case.
            UnitNotFound: a unit does not exist.
            DispatchRefused: the case is closed, or a unit is unavailable or unreachable (an
                unavailable unit may be sent anyway with ``override``).
        """
        effects = _Effects()
        order_id = new_order_id()
        async with self.pool.acquire() as conn, conn.transaction():
            case = await case_rows.get_case(conn, case_id)
            if case is None:
                raise recommend.CaseMissing(f"no case {case_id}")
            if case.status not in OPEN_CASE_STATUSES:
                raise DispatchRefused("case_closed", f"case {case.number} is {case.status}")
            units = await self._lock_units(conn, sorted(set(unit_ids)), override=override)
            order = await rows.insert_order(
                conn,
                order_id=order_id,
                case_id=case_id,
                message=message,
                auto_escalate=self.auto_escalate if auto_escalate is None else auto_escalate,
                created_by=actor,
            )
            await self._event(conn, effects, order, "created", detail=f"by {actor}")
            for unit in units:
                await self._assign(conn, effects, order, unit, actor=actor)
            await self._audit(
                conn,
                effects,
                actor=actor,
                action="dispatch.override" if override else "dispatch.create",
                order_id=order_id,
                after={
                    "case": case_id,
                    "units": list(unit_ids),
                    "auto_escalate": order.auto_escalate,
                    "override_reason": override_reason,
                },
            )
        self._announce(effects)
        return await self.detail(order_id)

    async def _lock_units(
        self, conn: Connection, unit_ids: list[str], *, override: bool
    ) -> list[unit_rows.UnitRow]:
        units = []
        refused: dict[str, str] = {}
        for unit_id in unit_ids:
            unit = await unit_rows.get_unit(conn, unit_id, for_update=True)
            if unit is None:
                raise UnitNotFound(f"no unit {unit_id!r}")
            if not unit.channels:
                refused[unit_id] = f"{unit_id} has no channel to reach it"
            elif unit.status != "available" and not override:
                reason = f" ({unit.status_reason})" if unit.status_reason else ""
                refused[unit_id] = f"{unit_id} is {unit.status}{reason}"
            elif not unit.on_duty and not override:
                refused[unit_id] = f"{unit_id} is off duty"
            units.append(unit)
        if refused:
            raise DispatchRefused(
                "unit_unavailable", "; ".join(refused[u] for u in sorted(refused)), refused
            )
        return units

    async def _assign(
        self,
        conn: Connection,
        effects: _Effects,
        order: rows.OrderRow,
        unit: unit_rows.UnitRow,
        *,
        actor: str,
        escalated_from: int | None = None,
    ) -> rows.AssignmentRow | None:
        assignment = await rows.insert_assignment(
            conn, order.id, unit.id, escalated_from=escalated_from
        )
        if assignment is None:
            return None
        await self._queue_step(conn, effects, order, assignment, unit, step=0)
        changed = await set_status(
            conn, unit.id, actor=actor, status="dispatched", reason=f"order {order.id}"
        )
        if changed is not None:
            effects.units[unit.id] = changed[1]
        return assignment

    async def _queue_step(
        self,
        conn: Connection,
        effects: _Effects,
        order: rows.OrderRow,
        assignment: rows.AssignmentRow,
        unit: unit_rows.UnitRow,
        *,
        step: int,
    ) -> None:
        channel, address = unit.channels[step]
        deadline = self.clock() + timedelta(seconds=self.timeout_of(channel))
        await rows.queue_copy(
            conn, assignment, channel=channel, address=address, step=step, deadline=deadline
        )
        effects.queued.add(channel)
        await self._event(
            conn, effects, order, "queued", unit_id=unit.id, channel=channel, detail=address
        )

    # -- inbound -----------------------------------------------------------------------------

    async def acknowledge(self, order_id: str, unit_id: str, *, channel: str, actor: str) -> bool:
        """Close a unit's assignment on every channel; False when it was already closed.

        Raises:
            OrderNotFound: no such order, or the unit is not part of it.
        """
        effects = _Effects()
        async with self.pool.acquire() as conn, conn.transaction():
            order = await rows.get_order(conn, order_id, for_update=True)
            if order is None:
                raise OrderNotFound(f"no order {order_id!r}")
            assignment = await rows.get_assignment(conn, order_id, unit_id, for_update=True)
            if assignment is None:
                raise OrderNotFound(f"unit {unit_id!r} is not part of order {order_id}")
            if assignment.status in {"acknowledged", "cancelled"} or order.status == "cancelled":
                self.duplicate_acks += 1
                return False
            await rows.set_assignment_status(
                conn, assignment.id, "acknowledged", ack_channel=channel
            )
            await rows.close_copies(conn, assignment.id, acked_channel=channel)
            await self._event(
                conn,
                effects,
                order,
                "acknowledged",
                unit_id=unit_id,
                channel=channel,
                detail=f"by {actor}",
            )
            changed = await set_status(
                conn,
                unit_id,
                actor=actor,
                status="en_route",
                reason=f"acknowledged order {order_id}",
                only_from=("available", "dispatched"),
            )
            if changed is not None:
                effects.units[unit_id] = changed[1]
            await self._audit(
                conn,
                effects,
                actor=actor,
                action="dispatch.acknowledge",
                order_id=order_id,
                after={"unit": unit_id, "via": channel},
            )
            await self._settle(conn, effects, order)
        self._announce(effects)
        return True

    async def delivered(self, order_id: str, unit_id: str, *, channel: str) -> bool:
        """The unit's device confirmed it received the order; False when nothing changed."""
        effects = _Effects()
        async with self.pool.acquire() as conn, conn.transaction():
            order = await rows.get_order(conn, order_id, for_update=True)
            if order is None:
                raise OrderNotFound(f"no order {order_id!r}")
            assignment = await rows.get_assignment(conn, order_id, unit_id)
            if assignment is None:
                raise OrderNotFound(f"unit {unit_id!r} is not part of order {order_id}")
            if assignment.status != "pending":
                return False
            copy = await rows.mark_delivered(conn, assignment.id, channel)
            if copy is None:
                return False
            await self._event(conn, effects, order, "delivered", unit_id=unit_id, channel=channel)
        self._announce(effects)
        return True

    async def unit_reported_status(
        self, unit_id: str, status: str, *, channel: str, order_id: str | None = None
    ) -> bool:
        """A unit said what it is doing; False when nothing changed.

        Raises:
            InvalidUnit: a status a unit may not report itself.
            UnitNotFound: no such unit.
        """
        if status not in UNIT_REPORTABLE:
            raise InvalidUnit("status", f"a unit may report {', '.join(sorted(UNIT_REPORTABLE))}")
        effects = _Effects()
        async with self.pool.acquire() as conn, conn.transaction():
            reason = f"reported over {channel}" + (f" for order {order_id}" if order_id else "")
            changed = await set_status(
                conn, unit_id, actor=f"unit:{unit_id}", status=status, reason=reason
            )
            if changed is None:
                return False
            effects.units[unit_id] = changed[1]
        self._announce(effects)
        return True

    async def unit_text(
        self,
        unit_id: str,
        text: str,
        *,
        channel: str,
        order_id: str | None = None,
        message_id: str | None = None,
    ) -> bool:
        """Free text from a unit: a note on the case of its order, or else a new case.

        A unit with no order reporting from the field (a landslide it passes, a family asking
        for help) is a report like any other: it goes through the one intake function, at the
        unit's last known position. ``message_id`` (the app's id of the message) makes that
        idempotent. Returns True for a note, False for a new case.

        Raises:
            UnitNotFound: no such unit (only when a new case would be opened).
        """
        effects = _Effects()
        unit: unit_rows.UnitRow | None = None
        async with self.pool.acquire() as conn, conn.transaction():
            if order_id is None:
                assignment = await rows.open_assignment_of_unit(conn, unit_id)
                order_id = None if assignment is None else assignment.order_id
            order = None if order_id is None else await rows.get_order(conn, order_id)
            if order is None:
                unit = await unit_rows.get_unit(conn, unit_id)
        if order is None:
            if unit is None:
                raise UnitNotFound(f"no unit {unit_id!r}")
            await self._report_from_field(unit, text, channel=channel, message_id=message_id)
            return False
        async with self.pool.acquire() as conn, conn.transaction():
            await case_rows.add_note(
                conn, order.case_id, author=f"unit:{unit_id}", body=f"[{channel}] {text}"
            )
            await self._event(
                conn, effects, order, "text", unit_id=unit_id, channel=channel, detail=text[:200]
            )
        self._announce(effects)
        return True

    async def _report_from_field(
        self, unit: unit_rows.UnitRow, text: str, *, channel: str, message_id: str | None
    ) -> None:
        title = f"{unit.callsign}: {text}"
        report = IncomingReport(
            channel="field",
            category="other",
            title=title if len(title) <= MAX_TITLE else title[: MAX_TITLE - 1] + "…",
            description=f"[{channel}] {text}",
            lat=unit.lat,
            lon=unit.lon,
            reporter_name=f"{unit.callsign} ({unit.name})"[:MAX_SHORT],
            message_id=None if message_id is None else f"unit:{unit.id}:{message_id}",
        )
        ref = await submit_report(self.pool, self.bus, report, config=self.cases)
        _LOGGER.info("text from unit %s without an order opened case %s", unit.id, ref.number)

    # -- operators ---------------------------------------------------------------------------

    async def cancel(self, order_id: str, *, actor: str, reason: str) -> OrderDetail:
        """Stop an open order: no more copies, units still dispatched by it become available.

        Raises:
            OrderNotFound: no such order.
            DispatchRefused: the order is already closed.
        """
        effects = _Effects()
        async with self.pool.acquire() as conn, conn.transaction():
            order = await rows.get_order(conn, order_id, for_update=True)
            if order is None:
                raise OrderNotFound(f"no order {order_id!r}")
            if order.status != "open":
                raise DispatchRefused("order_closed", f"order {order_id} is {order.status}")
            for assignment in await rows.assignments_of(conn, order_id):
                if assignment.status != "pending":
                    continue
                await rows.set_assignment_status(conn, assignment.id, "cancelled")
                await rows.close_copies(conn, assignment.id, acked_channel=None)
                await self._release(conn, effects, order, assignment.unit_id, actor=actor)
            await rows.set_order_status(conn, order_id, "cancelled")
            await self._event(conn, effects, order, "cancelled", detail=f"by {actor}: {reason}")
            await self._audit(
                conn,
                effects,
                actor=actor,
                action="dispatch.cancel",
                order_id=order_id,
                after={"reason": reason},
            )
        self._announce(effects)
        return await self.detail(order_id)

    async def detail(self, order_id: str) -> OrderDetail:
        """An order with its ladder.

        Raises:
            OrderNotFound: no such order.
        """
        async with self.pool.acquire() as conn:
            order = await rows.get_order(conn, order_id)
            if order is None:
                raise OrderNotFound(f"no order {order_id!r}")
            case = await case_rows.get_case(conn, order.case_id)
            return OrderDetail(
                order=order,
                case_number=case.number if case else str(order.case_id),
                assignments=await rows.assignments_of(conn, order_id),
                copies=await rows.outbox_of(conn, order_id),
                events=await rows.events_of(conn, order_id),
            )

    async def list_orders(
        self, *, open_only: bool, case_id: int | None, limit: int
    ) -> list[OrderDetail]:
        """Orders newest first, each with its ladder."""
        async with self.pool.acquire() as conn:
            orders = await rows.list_orders(conn, open_only=open_only, case_id=case_id, limit=limit)
        return [await self.detail(order.id) for order in orders]

    # -- the watch ---------------------------------------------------------------------------

    async def resume(self) -> int:
        """At start: queue again the copies sent but not acknowledged before a restart."""
        effects = _Effects()
        async with self.pool.acquire() as conn, conn.transaction():
            copies = await rows.resend_unacknowledged(
                conn, self.clock(), self.timeouts, max(self.timeouts.values())
            )
            for copy in copies:
                effects.queued.add(copy.channel)
                order = await rows.get_order(conn, copy.order_id)
                if order is not None:
                    await self._event(
                        conn,
                        effects,
                        order,
                        "requeued",
                        unit_id=copy.unit_id,
                        channel=copy.channel,
                        detail="sent before a restart, not acknowledged",
                    )
        self._announce(effects)
        return len(copies)

    async def check_timeouts(self) -> int:
        """Time out copies past their deadline: next channel, else next unit, and an alarm."""
        now = self.clock()
        async with self.pool.acquire() as conn:
            due = await conn.fetch(
                """
                SELECT DISTINCT order_id FROM dispatch_outbox
                WHERE state IN ('queued', 'sent', 'delivered') AND deadline <= $1
                LIMIT $2
                """,
                now,
                WATCH_BATCH,
            )
        handled = 0
        for record in due:
            handled += await self._time_out_order(record["order_id"], now)
        return handled

    async def _time_out_order(self, order_id: str, now: datetime) -> int:
        effects = _Effects()
        async with self.pool.acquire() as conn, conn.transaction():
            order = await rows.get_order(conn, order_id, for_update=True)
            if order is None:
                return 0
            copies = [
                c
                for c in await rows.outbox_of(conn, order_id)
                if c.state in rows.LIVE_STATES and c.deadline <= now
            ]
            timed_out = 0
            for copy in copies:
                if not await rows.mark_timed_out(conn, copy.id, now):
                    continue  # sent again with a fresh deadline, or closed, since the snapshot
                timed_out += 1
                await self._event(
                    conn,
                    effects,
                    order,
                    "timed_out",
                    unit_id=copy.unit_id,
                    channel=copy.channel,
                    detail=f"no acknowledgement in {self.timeout_of(copy.channel):g} s",
                )
                await self._audit(
                    conn,
                    effects,
                    actor="hub",
                    action="dispatch.timeout",
                    order_id=order_id,
                    after={"unit": copy.unit_id, "channel": copy.channel, "step": copy.step},
                )
                await self._next_step(conn, effects, order, copy)
            await self._settle(conn, effects, order)
        self._announce(effects)
        return timed_out

    async def _next_step(
        self, conn: Connection, effects: _Effects, order: rows.OrderRow, copy: rows.OutboxRow
    ) -> None:
        assignment = await rows.get_assignment_by_id(conn, copy.assignment_id, for_update=True)
        unit = await unit_rows.get_unit(conn, copy.unit_id)
        if assignment is None or unit is None or assignment.status != "pending":
            return
        if copy.step + 1 < len(unit.channels):
            await self._queue_step(conn, effects, order, assignment, unit, step=copy.step + 1)
            return
        await rows.set_assignment_status(conn, assignment.id, "exhausted")
        await self._event(
            conn,
            effects,
            order,
            "exhausted",
            unit_id=unit.id,
            detail=f"no acknowledgement on any of {len(unit.channels)} channel(s)",
        )
        await self._audit(
            conn,
            effects,
            actor="hub",
            action="dispatch.exhausted",
            order_id=order.id,
            after={"unit": unit.id, "channels": len(unit.channels)},
        )
        await self._release(conn, effects, order, unit.id, actor="hub")
        escalated = None
        if order.auto_escalate and order.status == "open":
            escalated = await self._escalate(conn, effects, order, assignment)
        where = f"; escalated to {escalated}" if escalated else ""
        effects.alarms.append(
            AlarmRaised(
                source="dispatch",
                code="dispatch.unacknowledged",
                message=f"order {order.id}: {unit.id} did not acknowledge on any channel{where}",
                severity=Severity.CRITICAL if escalated is None else Severity.WARNING,
            )
        )
        await self._event(
            conn, effects, order, "alarm", unit_id=unit.id, detail="supervisor alarmed"
        )

    async def _escalate(
        self,
        conn: Connection,
        effects: _Effects,
        order: rows.OrderRow,
        failed: rows.AssignmentRow,
    ) -> str | None:
        case = await case_rows.get_case(conn, order.case_id)
        if case is None or case.lat is None or case.lon is None:
            await self._event(
                conn, effects, order, "escalation_failed", detail="case has no location"
            )
            return None
        tried = [a.unit_id for a in await rows.assignments_of(conn, order.id)]
        need = recommend.need_for(case.category)
        candidates = await recommend.candidates_for(
            conn, case.lat, case.lon, need, limit=ESCALATION_PICKS, exclude=tried
        )
        ranked = recommend.rank(
            [c for c in candidates if c.unit.channels],
            [],
            need,
            now=self.clock(),
            stale_after=self.stale_after,
        )
        for choice in ranked:
            unit = await unit_rows.get_unit(conn, choice.unit.id, for_update=True)
            if unit is None or unit.status != "available" or not unit.on_duty:
                continue
            if await self._assign(
                conn, effects, order, unit, actor="hub", escalated_from=failed.id
            ):
                await self._event(
                    conn,
                    effects,
                    order,
                    "escalated",
                    unit_id=unit.id,
                    detail=f"next recommended after {failed.unit_id}: {'; '.join(choice.reasons)}",
                )
                await self._audit(
                    conn,
                    effects,
                    actor="hub",
                    action="dispatch.escalate",
                    order_id=order.id,
                    after={"unit": unit.id, "after": failed.unit_id},
                )
                return unit.id
        await self._event(conn, effects, order, "escalation_failed", detail="no unit available")
        return None

    async def _release(
        self, conn: Connection, effects: _Effects, order: rows.OrderRow, unit_id: str, *, actor: str
    ) -> None:
        changed = await set_status(
            conn,
            unit_id,
            actor=actor,
            status="available",
            reason=f"released from order {order.id}",
            only_from=("dispatched",),
        )
        if changed is not None:
            effects.units[unit_id] = changed[1]

    async def _settle(self, conn: Connection, effects: _Effects, order: rows.OrderRow) -> None:
        """Close the order once no assignment is pending.

        A late acknowledgement of a failed order still counts: that unit is on its way.
        """
        current = await rows.get_order(conn, order.id)
        if current is None or current.status not in {"open", "failed"}:
            return
        statuses = [a.status for a in await rows.assignments_of(conn, order.id)]
        if "pending" in statuses:
            return
        final = "acknowledged" if "acknowledged" in statuses else "failed"
        if final == current.status:
            return
        await rows.set_order_status(conn, order.id, final)
        await self._event(conn, effects, current, final)

    async def _event(
        self,
        conn: Connection,
        effects: _Effects,
        order: rows.OrderRow,
        kind: str,
        *,
        unit_id: str | None = None,
        channel: str | None = None,
        detail: str = "",
    ) -> None:
        await rows.add_event(conn, order.id, kind, unit_id=unit_id, channel=channel, detail=detail)
        current = await rows.get_order(conn, order.id)
        effects.orders.append(
            OrderChanged(
                order_id=order.id,
                case_id=order.case_id,
                status=current.status if current else order.status,
                kind=kind,
                unit_id=unit_id,
                channel=channel,
                detail=detail,
            )
        )

    async def _audit(
        self,
        conn: Connection,
        effects: _Effects,
        *,
        actor: str,
        action: str,
        order_id: str,
        after: dict[str, Any],
    ) -> None:
        target = f"order:{order_id}"
        entry_id = await audit.append(conn, actor=actor, action=action, target=target, after=after)
        effects.audits.append((entry_id, AuditRecorded(actor=actor, action=action, target=target)))

    def _announce(self, effects: _Effects) -> None:
        for unit in effects.units.values():
            announce(self.bus, unit)
        for change in effects.orders:
            self.bus.publish(ORDER_CHANGED, change, source="dispatch", key=change.order_id)
        for entry_id, recorded in effects.audits:
            self.bus.publish(AUDIT_RECORDED, recorded, source="dispatch", key=str(entry_id))
        for alarm in effects.alarms:
            _LOGGER.warning("%s", alarm.message)
            self.bus.publish(ALARM_RAISED, alarm, source="dispatch")
        for channel in effects.queued:
            wake = self._wakers.get(channel)
            if wake is not None:
                wake()
