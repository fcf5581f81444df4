"""The sender interface every channel implements, and the worker that drains its outbox rows.

A channel (the MQTT app here; radio and satellite in their own packages) is a :class:`Sender`:
``send`` hands one copy to the channel and returns once the channel took it (for MQTT: the
broker acknowledged the QoS 1 publish), or raises :class:`ChannelUnavailable`. Plug one in with
``ops.dispatch.setup.add_sender(hub, sender)``; the copy's ``address`` is the unit's address on
that channel (MQTT unit id, radio callsign, satellite terminal id).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

import asyncpg

from db import dispatch as rows
from ops.core.errors import AdapterNotReady
from ops.dispatch.events import ORDER_CHANGED, OrderChanged

if TYPE_CHECKING:
    from db.pool import Pool
    from ops.core.adapter import AdapterContext
    from ops.core.bus import Bus

_LOGGER = logging.getLogger(__name__)

DEFAULT_POLL = 1.0
CLAIM_BATCH = 20


@dataclass(frozen=True, slots=True)
class OrderCopy:
    """One copy of an order, as a channel sends it."""

    order_id: str
    unit_id: str
    channel: str
    address: str
    attempt: int
    message: str
    case_id: int
    case_number: str
    case_title: str
    category: str
    priority: str
    lat: float | None
    lon: float | None


class ChannelUnavailable(AdapterNotReady):
    """The channel cannot take a copy now (link down, modem busy); the copy stays queued."""


class Sender(Protocol):
    """One way to reach units."""

    channel: str

    async def send(self, copy: OrderCopy) -> None:
        """Hand ``copy`` to the channel; raise ChannelUnavailable if it cannot take it now."""
        ...


class OutboxSender:
    """Drains one channel's queued copies (a supervised adapter).

    Claim, send and mark sent happen in one transaction: a crash before the commit leaves the
    copy queued, so it is sent at most once more after a restart.
    """

    heartbeat_interval: float | None = None

    def __init__(
        self,
        pool: Pool,
        bus: Bus,
        sender: Sender,
        *,
        timeout: float,
        poll: float = DEFAULT_POLL,
    ) -> None:
        self.name = f"dispatch-{sender.channel}"
        self.sender = sender
        self.sent = 0
        self._pool = pool
        self._bus = bus
        self._timeout = timeout
        self._poll = poll
        self._wake = asyncio.Event()
        self._complained = False

    def wake(self) -> None:
        """Copies were queued: drain now rather than at the next poll."""
        self._wake.set()

    async def run(self, ctx: AdapterContext) -> None:
        """Drain, then wait for a wake-up or the poll interval (other hubs may queue too)."""
        ctx.heartbeat()
        while True:
            self._wake.clear()
            try:
                while await self.drain_once():
                    ctx.heartbeat()
            except (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError) as exc:
                # The database went away mid-batch (the claim rolls back): a backoff, not a crash.
                raise AdapterNotReady(f"database unreachable: {exc}") from exc
            ctx.heartbeat()
            try:
                async with asyncio.timeout(self._poll):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def drain_once(self) -> bool:
        """Send one claimed batch; True when every copy went and more may wait."""
        changes: list[OrderChanged] = []
        all_sent = True
        async with self._pool.acquire() as conn, conn.transaction():
            claimed = await rows.claim_queued(conn, self.sender.channel, CLAIM_BATCH)
            for item in claimed:
                copy = item.copy
                try:
                    await self.sender.send(_order_copy(item))
                except (ChannelUnavailable, TimeoutError, OSError) as exc:
                    await rows.mark_send_failed(conn, copy.id, str(exc) or type(exc).__name__)
                    self._complain(exc)
                    all_sent = False
                    break
                deadline = datetime.now(UTC) + timedelta(seconds=self._timeout)
                await rows.mark_sent(conn, copy.id, deadline)
                await rows.add_event(
                    conn,
                    copy.order_id,
                    "sent",
                    unit_id=copy.unit_id,
                    channel=copy.channel,
                    detail=f"attempt {copy.attempts + 1} to {copy.address}",
                )
                changes.append(
                    OrderChanged(
                        order_id=copy.order_id,
                        case_id=item.case_id,
                        status="open",
                        kind="sent",
                        unit_id=copy.unit_id,
                        channel=copy.channel,
                        detail=f"attempt {copy.attempts + 1} to {copy.address}",
                    )
                )
        self.sent += len(changes)
        if changes and self._complained:
            self._complained = False
            _LOGGER.info("channel %s sends again", self.sender.channel)
        for change in changes:
            self._bus.publish(ORDER_CHANGED, change, source=self.name, key=change.order_id)
        return all_sent and len(claimed) == CLAIM_BATCH

    def _complain(self, exc: BaseException) -> None:
        if not self._complained:
            self._complained = True
            _LOGGER.warning("channel %s cannot send now: %s", self.sender.channel, exc)


def _order_copy(item: rows.ClaimedCopy) -> OrderCopy:
    return OrderCopy(
        order_id=item.copy.order_id,
        unit_id=item.copy.unit_id,
        channel=item.copy.channel,
        address=item.copy.address,
        attempt=item.copy.attempts + 1,
        message=item.message,
        case_id=item.case_id,
        case_number=item.case_number,
        case_title=item.case_title,
        category=item.category,
        priority=item.priority,
        lat=item.lat,
        lon=item.lon,
    )
