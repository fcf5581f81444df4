"""The outbox relay: claims queued copies with a lease, commits, then hands each to its channel.

One statement claims up to ``CLAIM_BATCH`` copies of the channels that have an adapter and
commits; only then is one :class:`~ops.core.channels.SendCopy` per copy published on the
channel's command topic. No transaction waits on a link: a radio taking seconds per frame holds
neither a pool connection nor a row lock. A copy whose command is lost (the channel restarting,
the hub dying) keeps its lease until it runs out and is then claimed again, with the same order
id and attempt, so a unit sees it at most once more and recognises it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Final

from db import dispatch as rows
from ops.core.channels import SendCopy, send_topic
from ops.database import backoff_while_unreachable

if TYPE_CHECKING:
    from db.pool import Pool
    from ops.core.adapter import AdapterContext
    from ops.core.bus import Bus

_LOGGER = logging.getLogger(__name__)

CLAIM_BATCH: Final = 20
DEFAULT_POLL: Final = 1.0
DEFAULT_LEASE: Final = 30.0


class OutboxRelay:
    """Claims and hands out the copies of every channel with an adapter (a supervised adapter)."""

    name = "dispatch-relay"
    heartbeat_interval: float | None = None

    def __init__(
        self, pool: Pool, bus: Bus, *, lease: float = DEFAULT_LEASE, poll: float = DEFAULT_POLL
    ) -> None:
        self.channels: set[str] = set()
        self._pool = pool
        self._bus = bus
        self._lease = lease
        self._poll = poll
        self._wake = asyncio.Event()

    def add_channel(self, channel: str) -> None:
        """Claim copies of ``channel`` whenever its adapter listens on its command topic."""
        self.channels.add(channel)
        self.wake()

    def wake(self) -> None:
        """Copies were queued: claim now rather than at the next poll."""
        self._wake.set()

    async def run(self, ctx: AdapterContext) -> None:
        """Claim and hand out, then wait for a wake-up or the poll (leases run out, other hubs)."""
        ctx.heartbeat()
        while True:
            self._wake.clear()
            with backoff_while_unreachable():
                while await self.relay_once():
                    ctx.heartbeat()
            ctx.heartbeat()
            try:
                async with asyncio.timeout(self._poll):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def relay_once(self) -> bool:
        """Claim one batch (committed) and publish its commands; True when more may wait."""
        listening = sorted(c for c in self.channels if self._listened(c))
        if not listening:
            return False
        async with self._pool.acquire() as conn:
            claimed = await rows.claim_leased(conn, listening, CLAIM_BATCH, self._lease)
        for item in claimed:
            command = _command(item)
            self._bus.publish(
                send_topic(command.channel), command, source=self.name, key=command.order_id
            )
        return len(claimed) == CLAIM_BATCH

    def _listened(self, channel: str) -> bool:
        """Whether the channel's adapter is running and taking commands.

        A channel that is down gets nothing: its copies stay queued and the ladder times them
        out, rather than leases running out one after another on commands nobody reads.
        """
        topic = send_topic(channel)
        return any(s.wants(topic) for s in self._bus.subscriptions)


def _command(item: rows.ClaimedCopy) -> SendCopy:
    copy = item.copy
    assert copy.lease_until is not None  # noqa: S101 - a claimed copy always has its lease
    return SendCopy(
        copy_id=copy.id,
        order_id=copy.order_id,
        unit_id=copy.unit_id,
        channel=copy.channel,
        address=copy.address,
        attempt=copy.attempts + 1,
        message=item.message,
        case_id=item.case_id,
        case_number=item.case_number,
        case_title=item.case_title,
        category=item.category,
        priority=item.priority,
        lat=item.lat,
        lon=item.lon,
        lease_until=copy.lease_until,
        deadline=copy.deadline,
    )
