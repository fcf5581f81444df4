"""A field unit's phone app on the real MQTT topics, for tests, benches and training.

It speaks the unit topics byte for byte as a real app must: it subscribes to
``{prefix}/units/{id}/orders`` at QoS 1, and for each order publishes ``{"type": "received"}``
then ``{"type": "ack"}`` on ``{prefix}/units/{id}/events``. It deduplicates by order id: a
second copy of an order it already has is acknowledged again (the first acknowledgement may
have been lost) but never acted on twice. With a journal file the order ids it acted on survive
its own restart too. It can also report positions, status and text.

Run one from the shell::

    python -m devices.mqtt.unitapp --port 1883 --prefix posko --unit TGN-01 --journal u.log
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import time
from pathlib import Path
from typing import Any

import aiomqtt

_LOGGER = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0
PUBLISH_TIMEOUT = 5.0


class UnitApp:
    """One unit's app: takes orders, acts once per order id, acknowledges every copy."""

    def __init__(
        self,
        unit_id: str,
        *,
        host: str,
        port: int,
        prefix: str,
        ack: bool = True,
        ack_delay: float = 0.0,
        journal: Path | None = None,
    ) -> None:
        self.unit_id = unit_id
        self.host = host
        self.port = port
        self.prefix = prefix
        self.ack = ack
        self.ack_delay = ack_delay
        self.journal = journal
        self.received: list[dict[str, Any]] = []
        self.acted: list[str] = []
        #: Order ids of the acknowledgements the broker took, in the order they went out.
        self.acked: list[str] = []
        self.subscribed = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        if journal is not None and journal.exists():
            self.acted = [line for line in journal.read_text().splitlines() if line]

    @property
    def orders_topic(self) -> str:
        """Where orders arrive."""
        return f"{self.prefix}/units/{self.unit_id}/orders"

    @property
    def events_topic(self) -> str:
        """Where the app answers."""
        return f"{self.prefix}/units/{self.unit_id}/events"

    async def run(self) -> None:
        """Connect, subscribe and handle orders until cancelled."""
        async with aiomqtt.Client(
            self.host,
            self.port,
            identifier=f"unitapp-{self.unit_id}-{time.monotonic_ns()}",
            timeout=CONNECT_TIMEOUT,
        ) as client:
            self._client = client
            try:
                await client.subscribe(self.orders_topic, qos=1)
                self.subscribed.set()
                async for message in client.messages:
                    # Some brokers (amqtt) also hand a new session retained messages of other
                    # topics; an app only obeys what came on its own orders topic.
                    if not message.topic.matches(self.orders_topic):
                        _LOGGER.debug("unit %s: ignored %s", self.unit_id, message.topic)
                        continue
                    await self._on_order(client, message.payload)
            finally:
                self._client = None
                self.subscribed.clear()

    async def send_position(self, lat: float, lon: float, ts: float | None = None) -> None:
        """Report a position on ``{prefix}/units/{id}/position``."""
        body = {"lat": lat, "lon": lon, "ts": time.time() if ts is None else ts}
        await self._publish(f"{self.prefix}/units/{self.unit_id}/position", body, qos=0)

    async def send_status(self, status: str, order: str | None = None) -> None:
        """Say what the unit is doing now."""
        body: dict[str, Any] = {"type": "status", "status": status}
        if order is not None:
            body["order"] = order
        await self._publish(self.events_topic, body)

    async def send_text(
        self, text: str, order: str | None = None, message_id: str | None = None
    ) -> None:
        """Send free text to the command room; ``message_id`` lets the hub drop a redelivery."""
        body: dict[str, Any] = {"type": "text", "text": text}
        if order is not None:
            body["order"] = order
        if message_id is not None:
            body["id"] = message_id
        await self._publish(self.events_topic, body)

    async def _on_order(self, client: aiomqtt.Client, payload: Any) -> None:
        try:
            order = json.loads(payload)
            order_id = order["order"]
        except (ValueError, TypeError, KeyError):
            _LOGGER.warning("unit %s: unreadable order %r", self.unit_id, payload)
            return
        self.received.append(order)
        if order_id in self.acted:
            _LOGGER.info(
                "unit %s: order %s again; acknowledging, not acting", self.unit_id, order_id
            )
        else:
            self.acted.append(order_id)
            if self.journal is not None:
                with self.journal.open("a") as handle:
                    handle.write(order_id + "\n")
            _LOGGER.info("unit %s: acting on order %s", self.unit_id, order_id)
        await self._publish_on(client, self.events_topic, {"type": "received", "order": order_id})
        if self.ack:
            if self.ack_delay:
                await asyncio.sleep(self.ack_delay)
            await self._publish_on(client, self.events_topic, {"type": "ack", "order": order_id})
            self.acked.append(order_id)

    async def _publish(self, topic: str, body: dict[str, Any], qos: int = 1) -> None:
        if self._client is None:
            raise RuntimeError("the app is not connected")
        await self._publish_on(self._client, topic, body, qos)

    @staticmethod
    async def _publish_on(
        client: aiomqtt.Client, topic: str, body: dict[str, Any], qos: int = 1
    ) -> None:
        payload = json.dumps(body, separators=(",", ":"))
        async with asyncio.timeout(PUBLISH_TIMEOUT):
            await client.publish(topic, payload, qos=qos)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; runs until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m devices.mqtt.unitapp", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--prefix", default="posko")
    parser.add_argument("--unit", required=True)
    parser.add_argument("--journal", type=Path, default=None)
    parser.add_argument("--ack-delay", type=float, default=0.0)
    parser.add_argument("--no-ack", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app = UnitApp(
        args.unit,
        host=args.host,
        port=args.port,
        prefix=args.prefix,
        ack=not args.no_ack,
        ack_delay=args.ack_delay,
        journal=args.journal,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(app.run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
