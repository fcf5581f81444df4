"""The MQTT app channel: a channel adapter between dispatch's bus commands and units' phone apps.

It imports ``ops.core`` only (and the link beside it). Commands for channel ``mqtt`` arrive on
the bus (``ops.core.channels``); each copy is published QoS 1 on ``{prefix}/units/{address}/orders``
and reported sent once the broker acknowledged it. Messages from apps come back through the
hub's link: ``.../events`` become typed channel events (delivered, acknowledged, status, text),
``.../position`` becomes ``unit.position.reported``; anything unreadable becomes a
:class:`~ops.core.channels.ChannelInputRejected` saying why, and never stops the adapter. The
wire format is :mod:`devices.mqtt.appcodec`.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from devices.mqtt.appcodec import (
    CHANNEL,
    Malformed,
    UnitEvent,
    encode_order,
    parse_event,
    parse_position,
    unit_of,
)
from ops.core.channels import (
    CHANNEL_EVENT,
    ChannelEvent,
    ChannelInputRejected,
    CopyAcknowledged,
    CopyDelivered,
    CopyQueue,
    UnitStatusReported,
    UnitTextReceived,
)
from ops.core.errors import AdapterNotReady
from ops.core.events import UNIT_POSITION_REPORTED, UnitPositionReported
from ops.core.mqtt import MqttPort

if TYPE_CHECKING:
    from devices.mqtt.link import MqttMessage
    from ops.core.adapter import AdapterContext
    from ops.core.bus import Bus

_LOGGER = logging.getLogger(__name__)

SOURCE: Final = "channel-mqtt"
#: Longest wait (seconds) for the broker to grant the events subscription before an order goes.
SUBSCRIBE_WAIT: Final = 5.0


class MqttAppChannel:
    """Orders out to unit apps, their answers and positions in (a supervised adapter)."""

    name = SOURCE
    channel = CHANNEL
    heartbeat_interval: float | None = None

    def __init__(self, port: MqttPort, bus: Bus) -> None:
        self._port = port
        self._bus = bus
        self._units_topic = port.topic("units")

    def attach(self) -> None:
        """Subscribe on the link (kept across reconnects by the link)."""
        self._port.subscribe(f"{self._units_topic}/+/position", self.on_position, qos=0)
        self._port.subscribe(f"{self._units_topic}/+/events", self.on_event, qos=1)

    async def run(self, ctx: AdapterContext) -> None:
        """Send each copy dispatch hands out, in order; cancelled ones never go."""
        async with CopyQueue(ctx.bus, CHANNEL, source=SOURCE, report_taken=False) as queue:
            ctx.heartbeat()
            while True:
                copy = await queue.get()
                topic = self._port.topic("units", copy.address, "orders")
                try:
                    payload = encode_order(copy)
                except Malformed as exc:
                    queue.failed(copy, str(exc), retryable=False)
                    continue
                try:
                    await self._answers_heard()
                    await self._port.publish(topic, payload, qos=1)
                except (AdapterNotReady, TimeoutError, OSError) as exc:
                    queue.failed(copy, f"cannot publish to {topic}: {exc}", retryable=True)
                    continue
                queue.sent(copy, f"attempt {copy.attempt} to {copy.address}")
                ctx.heartbeat()

    async def _answers_heard(self) -> None:
        """Wait until the broker granted the events subscription, so the answer is not lost.

        An order published before the broker grants it is answered into the void: the unit
        acknowledges, nobody is subscribed yet, and the order times out although it was taken.

        Raises:
            TimeoutError: not granted within ``SUBSCRIBE_WAIT`` seconds (the copy is retried).
        """
        if not self._port.subscribed:
            async with asyncio.timeout(SUBSCRIBE_WAIT):
                await self._port.wait_subscribed()

    def on_position(self, message: MqttMessage) -> None:
        """One position message: parsed here, validated and batched by the units' ingestor."""
        unit_id = unit_of(message.topic, self._units_topic, "position")
        if unit_id is None:
            self._rejected("position", message.topic, f"bad topic {message.topic}")
            return
        try:
            lat, lon, at = parse_position(message.payload, datetime.now(UTC))
        except Malformed as exc:
            self._rejected("position", unit_id, str(exc))
            return
        self._bus.publish(
            UNIT_POSITION_REPORTED,
            UnitPositionReported(unit_id, lat, lon, at, CHANNEL),
            source=SOURCE,
            key=unit_id,
        )

    def on_event(self, message: MqttMessage) -> None:
        """One event message: parsed here, recorded in order by dispatch."""
        unit_id = unit_of(message.topic, self._units_topic, "events")
        if unit_id is None:
            self._rejected("event", message.topic, "bad topic")
            return
        try:
            event = parse_event(unit_id, message.payload)
        except Malformed as exc:
            self._rejected("event", unit_id, str(exc))
            return
        self._bus.publish(CHANNEL_EVENT, _typed(event), source=SOURCE, key=unit_id)

    def _rejected(self, kind: str, source: str, detail: str) -> None:
        self._bus.publish(
            CHANNEL_EVENT,
            ChannelInputRejected(CHANNEL, kind, source, "malformed", detail),
            source=SOURCE,
            key=source,
        )


def _typed(event: UnitEvent) -> ChannelEvent:
    """The channel event of one parsed app event (the codec guarantees the fields each needs)."""
    if event.kind == "ack" and event.order_id is not None:
        return CopyAcknowledged(event.order_id, event.unit_id, CHANNEL, event.message_id)
    if event.kind == "received" and event.order_id is not None:
        return CopyDelivered(event.order_id, event.unit_id, CHANNEL)
    if event.kind == "status" and event.status is not None:
        return UnitStatusReported(event.unit_id, CHANNEL, event.status, event.order_id)
    return UnitTextReceived(
        event.unit_id, CHANNEL, event.text or "", event.order_id, event.message_id
    )
