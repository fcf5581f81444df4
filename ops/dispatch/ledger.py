"""What every change to an order writes, shared by commands, the ladder and the field inbound.

Every change locks the order row first, then writes its assignments, outbox copies, unit
statuses, audit entries and history in one transaction, collecting in :class:`Effects` what to
announce; :meth:`Ledger.announce` publishes it only after the commit: order changes, unit
snapshots, audit entries, alarms, a wake-up for the relay and the withdrawal (``cancel``) of
copies a channel may still hold.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from db import audit
from db import dispatch as rows
from ops.core.channels import CancelCopy, cancel_topic
from ops.core.events import ALARM_RAISED, AUDIT_RECORDED, AlarmRaised, AuditRecorded
from ops.dispatch.events import ORDER_CHANGED, OrderChanged
from ops.units.errors import UnitError
from ops.units.service import announce, set_status

if TYPE_CHECKING:
    from datetime import datetime

    from db import units as unit_rows
    from db.pool import Connection, Pool
    from ops.core.bus import Bus

_LOGGER = logging.getLogger(__name__)


@dataclass(slots=True)
class Effects:
    """What to announce once the transaction has committed."""

    orders: list[OrderChanged] = field(default_factory=list)
    units: dict[str, unit_rows.UnitRow] = field(default_factory=dict)
    alarms: list[AlarmRaised] = field(default_factory=list)
    queued: bool = False
    audits: list[tuple[int, AuditRecorded]] = field(default_factory=list)
    withdrawn: list[CancelCopy] = field(default_factory=list)


def new_order_id() -> str:
    """A short random id (12 hex digits): short enough for an APRS message, unique enough."""
    return secrets.token_hex(6)


class Ledger:
    """The order writes of one hub, and what it announces after each commit."""

    def __init__(
        self,
        pool: Pool,
        bus: Bus,
        *,
        timeouts: dict[str, float],
        clock: Callable[[], datetime],
    ) -> None:
        self.pool = pool
        self.bus = bus
        self.timeouts = dict(timeouts)
        self.clock = clock
        self.duplicate_acks = 0
        self._on_queued: Callable[[], None] | None = None

    def on_queued(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` after a commit that queued copies (the relay claims them at once)."""
        self._on_queued = wake

    def timeout_of(self, channel: str) -> float:
        """The acknowledgement timeout of a channel (unknown channels get the longest)."""
        return self.timeouts.get(channel, max(self.timeouts.values()))

    async def assign(
        self,
        conn: Connection,
        effects: Effects,
        order: rows.OrderRow,
        unit: unit_rows.UnitRow,
        *,
        actor: str,
        escalated_from: int | None = None,
    ) -> rows.AssignmentRow | None:
        """Ask ``unit`` to go: its assignment, its first copy and its ``dispatched`` status."""
        assignment = await rows.insert_assignment(
            conn, order.id, unit.id, escalated_from=escalated_from
        )
        if assignment is None:
            return None
        await self.queue_step(conn, effects, order, assignment, unit, step=0)
        changed = await set_status(
            conn, unit.id, actor=actor, status="dispatched", reason=f"order {order.id}"
        )
        if changed is not None:
            effects.units[unit.id] = changed[1]
        return assignment

    async def queue_step(
        self,
        conn: Connection,
        effects: Effects,
        order: rows.OrderRow,
        assignment: rows.AssignmentRow,
        unit: unit_rows.UnitRow,
        *,
        step: int,
    ) -> None:
        """Queue the copy for the unit's ``step``-th channel in the outbox."""
        channel, address = unit.channels[step]
        deadline = self.clock() + timedelta(seconds=self.timeout_of(channel))
        await rows.queue_copy(
            conn, assignment, channel=channel, address=address, step=step, deadline=deadline
        )
        effects.queued = True
        await self.event(
            conn, effects, order, "queued", unit_id=unit.id, channel=channel, detail=address
        )

    async def acknowledge(
        self,
        conn: Connection,
        effects: Effects,
        order_id: str,
        unit_id: str,
        *,
        channel: str,
        actor: str,
    ) -> bool:
        """Close a unit's assignment on every channel; False when it was already closed.

        Copies still live on other channels are withdrawn. Call inside a transaction.

        Raises:
            OrderNotFound: no such order, or the unit is not part of it.
        """
        order = await rows.get_order(conn, order_id, for_update=True)
        if order is None:
            raise OrderNotFound(f"no order {order_id!r}")
        assignment = await rows.get_assignment(conn, order_id, unit_id, for_update=True)
        if assignment is None:
            raise OrderNotFound(f"unit {unit_id!r} is not part of order {order_id}")
        if assignment.status in {"acknowledged", "cancelled"} or order.status == "cancelled":
            self.duplicate_acks += 1
            return False
        await rows.set_assignment_status(conn, assignment.id, "acknowledged", ack_channel=channel)
        withdrawn = await rows.close_copies(conn, assignment.id, acked_channel=channel)
        self.withdraw(effects, withdrawn, f"acknowledged over {channel}")
        await self.event(
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
        await self.audit(
            conn,
            effects,
            actor=actor,
            action="dispatch.acknowledge",
            order_id=order_id,
            after={"unit": unit_id, "via": channel},
        )
        await self.settle(conn, effects, order)
        return True

    @staticmethod
    def withdraw(effects: Effects, copies: list[rows.OutboxRow], reason: str) -> None:
        """Tell each copy's channel, after the commit, to drop it if it has not gone yet."""
        effects.withdrawn.extend(
            CancelCopy(
                copy_id=copy.id,
                order_id=copy.order_id,
                unit_id=copy.unit_id,
                channel=copy.channel,
                reason=reason,
            )
            for copy in copies
        )

    async def release(
        self, conn: Connection, effects: Effects, order: rows.OrderRow, unit_id: str, *, actor: str
    ) -> None:
        """A unit still dispatched by ``order`` becomes available again."""
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

    async def settle(self, conn: Connection, effects: Effects, order: rows.OrderRow) -> None:
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
        await self.event(conn, effects, current, final)

    async def event(
        self,
        conn: Connection,
        effects: Effects,
        order: rows.OrderRow,
        kind: str,
        *,
        unit_id: str | None = None,
        channel: str | None = None,
        detail: str = "",
    ) -> None:
        """Append a step to the order's history; announce it after the commit."""
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

    async def audit(
        self,
        conn: Connection,
        effects: Effects,
        *,
        actor: str,
        action: str,
        order_id: str,
        after: dict[str, Any],
    ) -> None:
        """Write an audit entry in the caller's transaction; announce it after the commit."""
        target = f"order:{order_id}"
        entry_id = await audit.append(conn, actor=actor, action=action, target=target, after=after)
        effects.audits.append((entry_id, AuditRecorded(actor=actor, action=action, target=target)))

    def announce(self, effects: Effects) -> None:
        """Publish what a committed transaction changed."""
        for unit in effects.units.values():
            announce(self.bus, unit)
        for change in effects.orders:
            self.bus.publish(ORDER_CHANGED, change, source="dispatch", key=change.order_id)
        for entry_id, recorded in effects.audits:
            self.bus.publish(AUDIT_RECORDED, recorded, source="dispatch", key=str(entry_id))
        for alarm in effects.alarms:
            _LOGGER.warning("%s", alarm.message)
            self.bus.publish(ALARM_RAISED, alarm, source="dispatch")
        for cancel in effects.withdrawn:
            self.bus.publish(
                cancel_topic(cancel.channel), cancel, source="dispatch", key=cancel.order_id
            )
        if effects.queued and self._on_queued is not None:
            self._on_queued()


class OrderNotFound(UnitError, LookupError):  # noqa: N818 - reads as the condition it reports
    """No order with that id, or the unit is not part of it."""
