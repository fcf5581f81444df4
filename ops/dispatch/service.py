"""The commands people give about orders, and the reads of an order and its ladder.

Dispatch (with a supervisor's override), acknowledge on a unit's behalf, cancel.

Each command is one transaction that locks the order row first (``ops.dispatch.ledger``) and
writes its audit entry inside it; bus events, the relay's wake-up and the withdrawal of copies
go out only after the commit. The audit actor is the operator. The ladder (timeouts and
escalation) is ``ops.dispatch.ladder``; what units say over their channels is
``ops.dispatch.inbound``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from db import cases as case_rows
from db import dispatch as rows
from db import units as unit_rows
from ops.dispatch.ledger import Effects, Ledger, OrderNotFound, new_order_id
from ops.units import recommend
from ops.units.errors import UnitError, UnitNotFound

if TYPE_CHECKING:
    from db.pool import Connection, Pool

__all__ = [
    "MAX_UNITS_PER_ORDER",
    "OPEN_CASE_STATUSES",
    "DispatchRefused",
    "DispatchService",
    "OrderDetail",
    "OrderNotFound",
]

#: Case statuses a unit can still be sent to.
OPEN_CASE_STATUSES: Final = frozenset({"new", "triaged", "assigned", "in_progress", "reopened"})
MAX_UNITS_PER_ORDER: Final = 10


class DispatchRefused(UnitError):  # noqa: N818 - reads as the condition it reports
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


class DispatchService:
    """The order commands of one hub (what the web layer calls)."""

    def __init__(self, ledger: Ledger, *, auto_escalate: bool) -> None:
        self.ledger = ledger
        self.auto_escalate = auto_escalate

    @property
    def pool(self) -> Pool:
        """The database pool the commands write through."""
        return self.ledger.pool

    @property
    def duplicate_acks(self) -> int:
        """Acknowledgements that found the assignment already closed."""
        return self.ledger.duplicate_acks

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
        ledger = self.ledger
        effects = Effects()
        order_id = new_order_id()
        async with self.pool.acquire() as conn, conn.transaction():
            case = await case_rows.get_case(conn, case_id)
            if case is None:
                raise recommend.CaseMissing(f"no case {case_id}")
            if case.status not in OPEN_CASE_STATUSES:
                raise DispatchRefused("case_closed", f"case {case.number} is {case.status}")
            units = await _lock_units(conn, sorted(set(unit_ids)), override=override)
            order = await rows.insert_order(
                conn,
                order_id=order_id,
                case_id=case_id,
                message=message,
                auto_escalate=self.auto_escalate if auto_escalate is None else auto_escalate,
                created_by=actor,
            )
            await ledger.event(conn, effects, order, "created", detail=f"by {actor}")
            for unit in units:
                await ledger.assign(conn, effects, order, unit, actor=actor)
            await ledger.audit(
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
        ledger.announce(effects)
        return await self.detail(order_id)

    async def acknowledge(self, order_id: str, unit_id: str, *, channel: str, actor: str) -> bool:
        """Record an acknowledgement a person took (by phone, voice radio); False if a repeat.

        Raises:
            OrderNotFound: no such order, or the unit is not part of it.
        """
        effects = Effects()
        async with self.pool.acquire() as conn, conn.transaction():
            changed = await self.ledger.acknowledge(
                conn, effects, order_id, unit_id, channel=channel, actor=actor
            )
        self.ledger.announce(effects)
        return changed

    async def cancel(self, order_id: str, *, actor: str, reason: str) -> OrderDetail:
        """Stop an open order: copies withdrawn, units still dispatched by it become available.

        Raises:
            OrderNotFound: no such order.
            DispatchRefused: the order is already closed.
        """
        ledger = self.ledger
        effects = Effects()
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
                withdrawn = await rows.close_copies(conn, assignment.id, acked_channel=None)
                ledger.withdraw(effects, withdrawn, "order cancelled")
                await ledger.release(conn, effects, order, assignment.unit_id, actor=actor)
            await rows.set_order_status(conn, order_id, "cancelled")
            await ledger.event(conn, effects, order, "cancelled", detail=f"by {actor}: {reason}")
            await ledger.audit(
                conn,
                effects,
                actor=actor,
                action="dispatch.cancel",
                order_id=order_id,
                after={"reason": reason},
            )
        ledger.announce(effects)
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


async def _lock_units(
    conn: Connection, unit_ids: list[str], *, override: bool
) -> list[unit_rows.UnitRow]:
    """Lock the units in id order (as every writer does) and refuse the unavailable ones."""
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
