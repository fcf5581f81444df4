"""The escalation ladder: no answer in time → next channel → next unit → the supervisor.

At start it also sends again what a restart may have lost.

``dispatch-watch`` (a supervised adapter) checks deadlines every ``watch_interval`` seconds.
Each timed-out copy is handled under its order's row lock in one transaction with its audit
entries (actor ``hub``); the copy is withdrawn from its channel after the commit, so a slow
link drops a copy the ladder has moved past.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final

from db import cases as case_rows
from db import dispatch as rows
from db import units as unit_rows
from ops.core.events import AlarmRaised, Severity
from ops.database import backoff_while_unreachable
from ops.dispatch.ledger import Effects, Ledger
from ops.units import recommend

if TYPE_CHECKING:
    from datetime import datetime

    from db.pool import Connection
    from ops.core.adapter import AdapterContext

WATCH_BATCH: Final = 100
#: Units considered when escalating (the ranking's usual first page).
ESCALATION_PICKS: Final = 10


class Ladder:
    """Timeouts and escalation of one hub's orders."""

    def __init__(self, ledger: Ledger, *, stale_after: float) -> None:
        self.ledger = ledger
        self.stale_after = stale_after

    async def resume(self) -> int:
        """At start: release every lease and queue again what was sent but not acknowledged.

        An acknowledgement may have been lost with the process; the unit recognises the order
        id of the second copy and acts once. Returns how many copies were queued again.
        """
        ledger = self.ledger
        effects = Effects()
        async with ledger.pool.acquire() as conn, conn.transaction():
            await rows.release_leases(conn)
            copies = await rows.resend_unacknowledged(
                conn, ledger.clock(), ledger.timeouts, max(ledger.timeouts.values())
            )
            for copy in copies:
                effects.queued = True
                order = await rows.get_order(conn, copy.order_id)
                if order is not None:
                    await ledger.event(
                        conn,
                        effects,
                        order,
                        "requeued",
                        unit_id=copy.unit_id,
                        channel=copy.channel,
                        detail="sent before a restart, not acknowledged",
                    )
        ledger.announce(effects)
        return len(copies)

    async def check_timeouts(self) -> int:
        """Time out copies past their deadline: next channel, else next unit, and an alarm."""
        now = self.ledger.clock()
        async with self.ledger.pool.acquire() as conn:
            due = await rows.due_orders(conn, now, WATCH_BATCH)
        handled = 0
        for order_id in due:
            handled += await self._time_out_order(order_id, now)
        return handled

    async def _time_out_order(self, order_id: str, now: datetime) -> int:
        ledger = self.ledger
        effects = Effects()
        async with ledger.pool.acquire() as conn, conn.transaction():
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
                ledger.withdraw(effects, [copy], "timed out")
                await ledger.event(
                    conn,
                    effects,
                    order,
                    "timed_out",
                    unit_id=copy.unit_id,
                    channel=copy.channel,
                    detail=copy.last_error
                    or f"no acknowledgement in {ledger.timeout_of(copy.channel):g} s",
                )
                await ledger.audit(
                    conn,
                    effects,
                    actor="hub",
                    action="dispatch.timeout",
                    order_id=order_id,
                    after={"unit": copy.unit_id, "channel": copy.channel, "step": copy.step},
                )
                await self._next_step(conn, effects, order, copy)
            await ledger.settle(conn, effects, order)
        ledger.announce(effects)
        return timed_out

    async def _next_step(
        self, conn: Connection, effects: Effects, order: rows.OrderRow, copy: rows.OutboxRow
    ) -> None:
        ledger = self.ledger
        assignment = await rows.get_assignment_by_id(conn, copy.assignment_id, for_update=True)
        unit = await unit_rows.get_unit(conn, copy.unit_id)
        if assignment is None or unit is None or assignment.status != "pending":
            return
        if copy.step + 1 < len(unit.channels):
            await ledger.queue_step(conn, effects, order, assignment, unit, step=copy.step + 1)
            return
        await rows.set_assignment_status(conn, assignment.id, "exhausted")
        await ledger.event(
            conn,
            effects,
            order,
            "exhausted",
            unit_id=unit.id,
            detail=f"no acknowledgement on any of {len(unit.channels)} channel(s)",
        )
        await ledger.audit(
            conn,
            effects,
            actor="hub",
            action="dispatch.exhausted",
            order_id=order.id,
            after={"unit": unit.id, "channels": len(unit.channels)},
        )
        await ledger.release(conn, effects, order, unit.id, actor="hub")
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
        await ledger.event(
            conn, effects, order, "alarm", unit_id=unit.id, detail="supervisor alarmed"
        )

    async def _escalate(
        self,
        conn: Connection,
        effects: Effects,
        order: rows.OrderRow,
        failed: rows.AssignmentRow,
    ) -> str | None:
        ledger = self.ledger
        case = await case_rows.get_case(conn, order.case_id)
        if case is None or case.lat is None or case.lon is None:
            await ledger.event(
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
            now=ledger.clock(),
            stale_after=self.stale_after,
        )
        for choice in ranked:
            unit = await unit_rows.get_unit(conn, choice.unit.id, for_update=True)
            if unit is None or unit.status != "available" or not unit.on_duty:
                continue
            if await ledger.assign(
                conn, effects, order, unit, actor="hub", escalated_from=failed.id
            ):
                await ledger.event(
                    conn,
                    effects,
                    order,
                    "escalated",
                    unit_id=unit.id,
                    detail=f"next recommended after {failed.unit_id}: {'; '.join(choice.reasons)}",
                )
                await ledger.audit(
                    conn,
                    effects,
                    actor="hub",
                    action="dispatch.escalate",
                    order_id=order.id,
                    after={"unit": unit.id, "after": failed.unit_id},
                )
                return unit.id
        await ledger.event(conn, effects, order, "escalation_failed", detail="no unit available")
        return None


class DispatchWatch:
    """Checks deadlines every ``interval`` seconds (a supervised adapter).

    A database error backs the watch off.
    """

    name = "dispatch-watch"
    heartbeat_interval: float | None = None

    def __init__(self, ladder: Ladder, interval: float) -> None:
        self._ladder = ladder
        self._interval = interval

    async def run(self, ctx: AdapterContext) -> None:
        """Check, heartbeat, sleep; forever."""
        while True:
            with backoff_while_unreachable():
                await self._ladder.check_timeouts()
            ctx.heartbeat()
            await asyncio.sleep(self._interval)
