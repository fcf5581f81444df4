"""Helpers of the dispatch tests: channel adapters on the bus contract, as radio's will be, and
the unit's app running for a block."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from devices.mqtt.unitapp import UnitApp
from ops.core.adapter import AdapterContext
from ops.core.bus import Bus
from ops.core.channels import CHANNEL_EVENT, CopyAcknowledged, CopyQueue, SendCopy

if TYPE_CHECKING:
    from ops.app import Hub

#: Seconds one frame of a slow copy takes on the air.
FRAME = 0.1
#: Longest wait (seconds) for the unit's app to be connected and subscribed.
APP_READY = 15.0


@contextlib.asynccontextmanager
async def running(app: UnitApp) -> AsyncIterator[UnitApp]:
    """The unit's app, connected and subscribed, for the block."""
    task = asyncio.create_task(app.run())
    try:
        async with asyncio.timeout(APP_READY):
            await app.subscribed.wait()
        yield app
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def app_for(hub: Hub, unit_id: str, **kwargs: Any) -> UnitApp:
    """The app of ``unit_id`` on the hub's broker and prefix."""
    host, port = hub.config.mqtt.host_port
    return UnitApp(unit_id, host=host, port=port, prefix=hub.config.mqtt.prefix, **kwargs)


class RecordingRadio:
    """A working radio channel: takes every copy, puts it on the air at once, reports both."""

    name = "test-radio"
    channel = "radio"
    heartbeat_interval: float | None = None

    def __init__(
        self, *, seconds_per_copy: float = 0.0, slow_units: frozenset[str] = frozenset()
    ) -> None:
        self.copies: list[SendCopy] = []
        self.on_air: list[SendCopy] = []
        self.queue: CopyQueue | None = None
        self._seconds_per_copy = seconds_per_copy
        self._slow_units = slow_units
        self._took = asyncio.Condition()

    async def run(self, ctx: AdapterContext) -> None:
        """Send what the queue hands out; a copy to one of ``slow_units`` takes its time.

        The outbox is shared by every test of a run: copies other tests left go out at once.
        """
        async with CopyQueue(ctx.bus, self.channel, source=self.name, report_taken=True) as queue:
            self.queue = queue
            ctx.heartbeat()
            while True:
                copy = await queue.get()
                async with self._took:
                    self.copies.append(copy)
                    self._took.notify_all()
                if copy.unit_id in self._slow_units:
                    await self._transmit(queue)
                self.on_air.append(copy)
                queue.sent(copy)

    async def _transmit(self, queue: CopyQueue) -> None:
        """The link itself is slow (1200 baud, a satellite session): that is what is tested.

        Between frames the channel applies the commands that came in, as a radio would.
        """
        frames = max(1, round(self._seconds_per_copy / FRAME))
        for _ in range(frames):
            await asyncio.sleep(FRAME)
            queue.poll()

    async def copies_of(self, order_id: str, count: int = 1) -> list[SendCopy]:
        """The copies of an order taken so far, once there are ``count``."""

        def enough() -> bool:
            return sum(c.order_id == order_id for c in self.copies) >= count

        async with self._took:
            await self._took.wait_for(enough)
            return [c for c in self.copies if c.order_id == order_id]

    def acknowledge(self, bus: Bus, copy: SendCopy) -> None:
        """The unit answered over the radio: reported as every channel reports it."""
        bus.publish(
            CHANNEL_EVENT,
            CopyAcknowledged(copy.order_id, copy.unit_id, self.channel, message_id="ack-1"),
            source=self.name,
            key=copy.order_id,
        )
