"""Inbound from the field: what channels report on ``channel.event``, recorded by dispatch.

One worker (``dispatch-inbound``, a supervised adapter) takes the events in arrival order and
records each in its own short transaction: a copy taken (its lease runs to the deadline), sent
(the acknowledgement clock restarts), failed, delivered, acknowledged (the assignment closes and
copies on other channels are withdrawn), a unit's status or text; positions a channel could not
read are counted with the ingestor's. Order events go out after each commit.

The subscription outlives the worker's runs: an event the database fails on stays at the head
and is handled first when the supervisor restarts the worker. Repeats are recognised, not
re-applied: a repeated acknowledgement finds the assignment closed, a text with the same
message id opens no second case, a second "sent" for one attempt counts once.
"""

from __future__ import annotations

import collections
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Final

import asyncpg

from db import cases as case_rows
from db import dispatch as rows
from db import units as unit_rows
from ops.cases.errors import InvalidReport
from ops.cases.intake import IncomingReport, submit_report
from ops.cases.model import MAX_SHORT, MAX_TITLE
from ops.core.bus import Overflow
from ops.core.channels import (
    CHANNEL_EVENT,
    ChannelEvent,
    ChannelInputRejected,
    CopyAcknowledged,
    CopyDelivered,
    CopyFailed,
    CopySent,
    CopyTaken,
    UnitStatusReported,
    UnitTextReceived,
)
from ops.core.warnonce import WarnOnce
from ops.database import backoff_while_unreachable
from ops.dispatch.ledger import Effects, Ledger, OrderNotFound
from ops.units.errors import InvalidUnit, UnitNotFound
from ops.units.positions import Rejection
from ops.units.service import set_status

if TYPE_CHECKING:
    from ops.core.adapter import AdapterContext
    from ops.core.bus import Subscription
    from ops.core.config import CasesConfig
    from ops.core.events import Envelope
    from ops.units.positions import PositionIngestor

_LOGGER = logging.getLogger(__name__)

#: Unit statuses a unit may report itself.
UNIT_REPORTABLE: Final = frozenset(
    {"available", "en_route", "on_scene", "returning", "out_of_service"}
)
DEFAULT_QUEUE: Final = 10_000
#: A copy its channel could not send now is claimed again after this many seconds.
RETRY_AFTER: Final = 1.0
#: Sources whose first dropped event is logged at WARNING; past this many, only at DEBUG.
MAX_LOGGED_SOURCES: Final = 1000


class FieldInbound:
    """Records channel events for one hub (a supervised adapter)."""

    name = "dispatch-inbound"
    heartbeat_interval: float | None = None

    def __init__(
        self,
        ledger: Ledger,
        ingestor: PositionIngestor,
        *,
        cases: CasesConfig | None = None,
        queue: int = DEFAULT_QUEUE,
    ) -> None:
        self.ledger = ledger
        self.cases = cases
        self.handled = 0
        self.rejected: collections.Counter[str] = collections.Counter()
        self._ingestor = ingestor
        self._capacity = queue
        self._subscription: Subscription | None = None
        self._head: Envelope[ChannelEvent] | None = None
        self._warn = WarnOnce(_LOGGER, MAX_LOGGED_SOURCES)
        self._complained: set[str] = set()

    def attach(self) -> None:
        """Start listening for the hub's lifetime (at setup, before any channel runs)."""
        self._subscription = self.ledger.bus.subscribe(
            CHANNEL_EVENT,
            maxsize=self._capacity,
            overflow=Overflow.ALARM,
            name=self.name,
            replay_state=False,
        )

    async def run(self, ctx: AdapterContext) -> None:
        """Record events in arrival order; a database error keeps the event at the head."""
        if self._subscription is None:
            raise RuntimeError("attach() before starting the inbound worker")
        ctx.heartbeat()
        while True:
            if self._head is None:
                self._head = await self._subscription.get()
            with backoff_while_unreachable():
                await self.handle(self._head.payload)
            self._head = None
            self.handled += 1
            ctx.heartbeat()

    async def handle(self, event: ChannelEvent) -> None:
        """Record one event; a refused one (no such order or unit, bad status) is counted."""
        try:
            await self._record(event)
        except (OrderNotFound, UnitNotFound, InvalidUnit, InvalidReport) as exc:
            self._reject(_source_of(event), "refused", f"{type(event).__name__}: {exc}")
        except asyncpg.DataError as exc:
            # The database cannot take this event at all: retrying would stall every later one.
            self._reject(_source_of(event), "refused", f"{type(event).__name__}: {exc}")

    async def _record(self, event: ChannelEvent) -> None:
        match event:
            case CopyTaken():
                async with self.ledger.pool.acquire() as conn:
                    await rows.mark_taken(conn, event.copy_id, event.attempt)
            case CopySent():
                await self.sent(event)
            case CopyFailed():
                await self.failed(event)
            case CopyDelivered():
                await self.delivered(event.order_id, event.unit_id, channel=event.channel)
            case CopyAcknowledged():
                await self.acknowledged(event.order_id, event.unit_id, channel=event.channel)
            case UnitStatusReported():
                await self.unit_reported_status(
                    event.unit_id, event.status, channel=event.channel, order_id=event.order_id
                )
            case UnitTextReceived():
                await self.unit_text(
                    event.unit_id,
                    event.text,
                    channel=event.channel,
                    order_id=event.order_id,
                    message_id=event.message_id,
                )
            case ChannelInputRejected(kind="position"):
                self._ingestor.reject(
                    event.channel, _rejection(event.reason), f"{event.source}: {event.detail}"
                )
            case ChannelInputRejected():
                self._reject(event.source, event.reason, event.detail)

    async def sent(self, event: CopySent) -> bool:
        """A copy is on the air: mark it sent with a fresh deadline; False if nothing changed."""
        ledger = self.ledger
        effects = Effects()
        deadline = ledger.clock() + timedelta(seconds=ledger.timeout_of(event.channel))
        async with ledger.pool.acquire() as conn, conn.transaction():
            copy = await rows.mark_sent(conn, event.copy_id, event.attempt, deadline)
            order = None if copy is None else await rows.get_order(conn, event.order_id)
            if copy is None or order is None:
                return False
            await ledger.event(
                conn,
                effects,
                order,
                "sent",
                unit_id=copy.unit_id,
                channel=copy.channel,
                detail=event.detail or f"attempt {event.attempt} to {copy.address}",
            )
        if event.channel in self._complained:
            self._complained.discard(event.channel)
            _LOGGER.info("channel %s sends again", event.channel)
        ledger.announce(effects)
        return True

    async def failed(self, event: CopyFailed) -> None:
        """The channel could not send: retry soon, or give the copy up so the ladder moves on."""
        ledger = self.ledger
        effects = Effects()
        retry_at = ledger.clock() + timedelta(seconds=RETRY_AFTER) if event.retryable else None
        async with ledger.pool.acquire() as conn, conn.transaction():
            copy = await rows.mark_send_failed(
                conn, event.copy_id, event.attempt, event.reason, retry_at=retry_at
            )
            if copy is not None and not event.retryable:
                order = await rows.get_order(conn, event.order_id)
                if order is not None:
                    await ledger.event(
                        conn,
                        effects,
                        order,
                        "send_failed",
                        unit_id=copy.unit_id,
                        channel=copy.channel,
                        detail=event.reason,
                    )
        if event.channel not in self._complained:
            self._complained.add(event.channel)
            _LOGGER.warning("channel %s cannot send now: %s", event.channel, event.reason)
        ledger.announce(effects)

    async def acknowledged(self, order_id: str, unit_id: str, *, channel: str) -> bool:
        """The unit acknowledged over ``channel``; False when it was a repeat.

        Raises:
            OrderNotFound: no such order, or the unit is not part of it.
        """
        effects = Effects()
        async with self.ledger.pool.acquire() as conn, conn.transaction():
            changed = await self.ledger.acknowledge(
                conn, effects, order_id, unit_id, channel=channel, actor=f"unit:{unit_id}"
            )
        self.ledger.announce(effects)
        return changed

    async def delivered(self, order_id: str, unit_id: str, *, channel: str) -> bool:
        """The unit's device confirmed it received the order; False when nothing changed.

        Raises:
            OrderNotFound: no such order, or the unit is not part of it.
        """
        ledger = self.ledger
        effects = Effects()
        async with ledger.pool.acquire() as conn, conn.transaction():
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
            await ledger.event(conn, effects, order, "delivered", unit_id=unit_id, channel=channel)
        ledger.announce(effects)
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
        effects = Effects()
        async with self.ledger.pool.acquire() as conn, conn.transaction():
            reason = f"reported over {channel}" + (f" for order {order_id}" if order_id else "")
            changed = await set_status(
                conn, unit_id, actor=f"unit:{unit_id}", status=status, reason=reason
            )
            if changed is None:
                return False
            effects.units[unit_id] = changed[1]
        self.ledger.announce(effects)
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
        unit's last known position. ``message_id`` (the link's id of the message) makes that
        idempotent. Returns True for a note, False for a new case.

        Raises:
            UnitNotFound: no such unit (only when a new case would be opened).
        """
        ledger = self.ledger
        effects = Effects()
        unit: unit_rows.UnitRow | None = None
        async with ledger.pool.acquire() as conn, conn.transaction():
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
        async with ledger.pool.acquire() as conn, conn.transaction():
            await case_rows.add_note(
                conn, order.case_id, author=f"unit:{unit_id}", body=f"[{channel}] {text}"
            )
            await ledger.event(
                conn, effects, order, "text", unit_id=unit_id, channel=channel, detail=text[:200]
            )
        ledger.announce(effects)
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
        ref = await submit_report(self.ledger.pool, self.ledger.bus, report, config=self.cases)
        _LOGGER.info("text from unit %s without an order opened case %s", unit.id, ref.number)

    def _reject(self, source: str, reason: str, detail: str) -> None:
        """Count a dropped event; log the first of each source (unit id or topic) at WARNING."""
        self.rejected[reason] += 1
        if not self._warn(
            source,
            "dropped a unit event from %s (%s): %s; further ones from %s are only counted",
            source,
            reason,
            detail,
            source,
        ):
            _LOGGER.debug("dropped a unit event from %s (%s): %s", source, reason, detail)


def _source_of(event: ChannelEvent) -> str:
    """Whom a refused event is counted and logged against: its unit, else its source."""
    return event.source if isinstance(event, ChannelInputRejected) else event.unit_id


def _rejection(reason: str) -> Rejection:
    try:
        return Rejection(reason)
    except ValueError:
        return Rejection.MALFORMED
