"""The MQTT app channel: orders out to unit apps, positions and events in.

Orders leave on ``{prefix}/units/{id}/orders`` (QoS 1); positions arrive on
``{prefix}/units/{id}/position`` and events on ``{prefix}/units/{id}/events``.

Wire format (JSON objects, UTF-8; docs/dispatch.md has examples):

- position: ``{"lat": -6.2, "lon": 106.8, "ts": 1767225600.0}`` (``ts`` epoch seconds or an
  ISO 8601 time with zone; missing means now).
- order: ``{"type": "order", "order": ID, "unit": ..., "attempt": n, "message": ...,
  "case": {"id", "number", "title", "category", "priority", "lat", "lon"}}``.
- event: ``{"type": "received" | "ack", "order": ID}``, ``{"type": "status", "status": ...,
  "order"?: ID}`` or ``{"type": "text", "text": ..., "order"?: ID}``.

Inbound events go through a bounded queue to one worker, so a slow database never stalls the
MQTT receive loop and a database error retries the event instead of losing it.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeGuard

import asyncpg

from ops.cases.errors import InvalidReport
from ops.core.errors import AdapterNotReady
from ops.core.events import ALARM_RAISED, AlarmRaised
from ops.core.warnonce import WarnOnce
from ops.dispatch.channels import ChannelUnavailable, OrderCopy
from ops.dispatch.service import OrderNotFound
from ops.units.errors import InvalidUnit, UnitNotFound
from ops.units.positions import Rejection

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ops.core.adapter import AdapterContext
    from ops.core.bus import Bus
    from ops.dispatch.service import DispatchService
    from ops.units.positions import PositionIngestor

_LOGGER = logging.getLogger(__name__)

CHANNEL: Final = "mqtt"
MAX_PAYLOAD: Final = 4096
MAX_TEXT: Final = 1000
DEFAULT_INBOUND_QUEUE: Final = 10_000
#: Sources whose first dropped event is logged at WARNING; past this many, only at DEBUG.
MAX_LOGGED_SOURCES: Final = 1000
_ORDER_ID = re.compile(r"^[0-9a-z]{8,32}$")
_MESSAGE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_UNIT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
EVENT_TYPES: Final = ("received", "ack", "status", "text")


class Message(Protocol):
    """What the link hands a handler."""

    @property
    def topic(self) -> str:
        """The topic it arrived on."""
        ...

    @property
    def payload(self) -> bytes:
        """Its bytes."""
        ...


class MqttPort(Protocol):
    """The part of the hub's MQTT link this channel uses."""

    def topic(self, *parts: str) -> str:
        """Join parts under the configured prefix."""
        ...

    def subscribe(
        self, topic_filter: str, handler: Callable[[Any], Awaitable[None] | None], qos: int = 1
    ) -> None:
        """Publish and wait for the broker's acknowledgement (QoS 1)."""
        ...

    async def publish(
        self, topic: str, payload: bytes | str, *, qos: int = 0, retain: bool = False
    ) -> None:
        """Publish and wait for the broker's acknowledgement (QoS 1)."""
        ...


@dataclass(frozen=True, slots=True)
class UnitEvent:
    """One event a unit's app sent."""

    unit_id: str
    kind: str
    order_id: str | None = None
    status: str | None = None
    text: str | None = None
    #: The app's own id of the message, so a text redelivered by the broker opens one case.
    message_id: str | None = None


class Malformed(ValueError):  # noqa: N818 - reads as the condition it reports
    """A payload this channel cannot read; the message says what is wrong."""


# -- codec ------------------------------------------------------------------------------------


def encode_order(copy: OrderCopy) -> bytes:
    """The order message a unit's app receives."""
    body = {
        "type": "order",
        "order": copy.order_id,
        "unit": copy.unit_id,
        "attempt": copy.attempt,
        "message": copy.message,
        "case": {
            "id": copy.case_id,
            "number": copy.case_number,
            "title": copy.case_title,
            "category": copy.category,
            "priority": copy.priority,
            "lat": copy.lat,
            "lon": copy.lon,
        },
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def parse_position(payload: bytes, now: datetime) -> tuple[float, float, datetime]:
    """(lat, lon, at) of a position payload; range checks are the ingestor's.

    Raises:
        Malformed: not a JSON object with numeric lat and lon and a readable ts.
    """
    data = _object(payload)
    lat, lon = data.get("lat"), data.get("lon")
    if not _number(lat) or not _number(lon):
        raise Malformed("lat and lon must be numbers")
    return float(lat), float(lon), _time(data.get("ts"), now)


def parse_event(unit_id: str, payload: bytes) -> UnitEvent:
    """One unit event.

    Raises:
        Malformed: not one of the event shapes.
    """
    data = _object(payload)
    kind = data.get("type")
    if kind not in EVENT_TYPES:
        raise Malformed(f"type must be one of {', '.join(EVENT_TYPES)}")
    order = data.get("order")
    if order is not None and not (isinstance(order, str) and _ORDER_ID.fullmatch(order)):
        raise Malformed("order must be an order id")
    if kind in {"received", "ack"} and order is None:
        raise Malformed(f"a {kind} event needs the order id")
    status = data.get("status")
    if kind == "status" and not isinstance(status, str):
        raise Malformed("a status event needs a status")
    text = data.get("text")
    if kind == "text" and not (isinstance(text, str) and text.strip()):
        raise Malformed("a text event needs text")
    if isinstance(text, str) and "\x00" in text:
        raise Malformed("text must not contain NUL")
    message_id = data.get("id")
    if message_id is not None and not (
        isinstance(message_id, str) and _MESSAGE_ID.fullmatch(message_id)
    ):
        raise Malformed("id must be 1-64 letters, digits, '.', '_', ':' or '-'")
    return UnitEvent(
        unit_id=unit_id,
        kind=str(kind),
        order_id=order,
        status=status if kind == "status" else None,
        text=text.strip()[:MAX_TEXT] if kind == "text" and isinstance(text, str) else None,
        message_id=message_id,
    )


def unit_of(topic: str, prefix_topic: str, leaf: str) -> str | None:
    """The unit id in ``{prefix}/units/{id}/{leaf}``, or None."""
    head = prefix_topic + "/"
    tail = "/" + leaf
    if not topic.startswith(head) or not topic.endswith(tail):
        return None
    unit_id = topic[len(head) : -len(tail)]
    return unit_id if _UNIT_ID.fullmatch(unit_id) else None


def _object(payload: bytes) -> dict[str, Any]:
    if len(payload) > MAX_PAYLOAD:
        raise Malformed(f"payload over {MAX_PAYLOAD} bytes")
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise Malformed("not JSON") from None
    if not isinstance(data, dict):
        raise Malformed("not a JSON object")
    return data


def _number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _time(value: object, now: datetime) -> datetime:
    if value is None:
        return now
    if _number(value):
        seconds = float(value)
        if not math.isfinite(seconds):
            raise Malformed("ts must be finite")
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise Malformed("ts out of range") from None
    if isinstance(value, str):
        try:
            at = datetime.fromisoformat(value)
        except ValueError:
            raise Malformed("ts must be epoch seconds or ISO 8601") from None
        if at.tzinfo is None:
            raise Malformed("ts needs a time zone")
        return at
    raise Malformed("ts must be epoch seconds or ISO 8601")


# -- the channel ------------------------------------------------------------------------------


class MqttAppSender:
    """Sends order copies to the unit's app (a :class:`~ops.dispatch.channels.Sender`)."""

    channel = CHANNEL

    def __init__(self, port: MqttPort) -> None:
        self._port = port

    async def send(self, copy: OrderCopy) -> None:
        """Publish QoS 1; returns once the broker acknowledged it."""
        topic = self._port.topic("units", copy.address, "orders")
        try:
            await self._port.publish(topic, encode_order(copy), qos=1)
        except ChannelUnavailable:
            raise
        except (AdapterNotReady, TimeoutError, OSError) as exc:
            raise ChannelUnavailable(f"cannot publish to {topic}: {exc}") from exc


class MqttUnitInbound:
    """Positions and events from unit apps (a supervised adapter for the events worker)."""

    name = "dispatch-mqtt-inbound"
    heartbeat_interval: float | None = None

    def __init__(
        self,
        port: MqttPort,
        bus: Bus,
        service: DispatchService,
        ingestor: PositionIngestor,
        *,
        queue: int = DEFAULT_INBOUND_QUEUE,
    ) -> None:
        self._port = port
        self._bus = bus
        self._service = service
        self._ingestor = ingestor
        self._capacity = queue
        self._queue: collections.deque[UnitEvent] = collections.deque()
        self._wake = asyncio.Event()
        self._units_topic = port.topic("units")
        self._warn = WarnOnce(_LOGGER, MAX_LOGGED_SOURCES)
        self.rejected: collections.Counter[str] = collections.Counter()
        self.handled = 0

    def attach(self) -> None:
        """Subscribe on the link (kept across reconnects by the link)."""
        self._port.subscribe(f"{self._units_topic}/+/position", self.on_position, qos=0)
        self._port.subscribe(f"{self._units_topic}/+/events", self.on_event, qos=1)

    def on_position(self, message: Message) -> None:
        """One position message: parsed here, validated and buffered by the ingestor."""
        unit_id = unit_of(message.topic, self._units_topic, "position")
        if unit_id is None:
            self._ingestor.reject(CHANNEL, Rejection.MALFORMED, f"bad topic {message.topic}")
            return
        now = datetime.now(UTC)
        try:
            lat, lon, at = parse_position(message.payload, now)
        except Malformed as exc:
            self._ingestor.reject(CHANNEL, Rejection.MALFORMED, f"{unit_id}: {exc}")
            return
        self._ingestor.ingest(unit_id, lat, lon, at, CHANNEL)

    def on_event(self, message: Message) -> None:
        """One event message: parsed here, handled in order by the worker."""
        unit_id = unit_of(message.topic, self._units_topic, "events")
        if unit_id is None:
            self._reject(message.topic, "malformed", "bad topic")
            return
        try:
            event = parse_event(unit_id, message.payload)
        except Malformed as exc:
            self._reject(unit_id, "malformed", str(exc))
            return
        if len(self._queue) >= self._capacity:
            self._reject(unit_id, "overflow", "event queue full")
            self._bus.publish(
                ALARM_RAISED,
                AlarmRaised(self.name, "dispatch.events_overflow", "unit event queue is full"),
                source="dispatch",
            )
            return
        self._queue.append(event)
        self._wake.set()

    async def run(self, ctx: AdapterContext) -> None:
        """Handle queued events in arrival order; a database error keeps the event queued."""
        if self._queue:
            # A previous run failed with events still queued after clearing the flag.
            self._wake.set()
        ctx.heartbeat()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                await self._handle(self._queue[0])
                self._queue.popleft()
                self.handled += 1
            ctx.heartbeat()

    async def _handle(self, event: UnitEvent) -> None:
        try:
            if event.kind == "ack" and event.order_id is not None:
                await self._service.acknowledge(
                    event.order_id, event.unit_id, channel=CHANNEL, actor=f"unit:{event.unit_id}"
                )
            elif event.kind == "received" and event.order_id is not None:
                await self._service.delivered(event.order_id, event.unit_id, channel=CHANNEL)
            elif event.kind == "status" and event.status is not None:
                await self._service.unit_reported_status(
                    event.unit_id, event.status, channel=CHANNEL, order_id=event.order_id
                )
            elif event.text is not None:
                await self._service.unit_text(
                    event.unit_id,
                    event.text,
                    channel=CHANNEL,
                    order_id=event.order_id,
                    message_id=event.message_id,
                )
        except (OrderNotFound, UnitNotFound, InvalidUnit, InvalidReport) as exc:
            self._reject(event.unit_id, "refused", f"{event.kind}: {exc}")
        except asyncpg.DataError as exc:
            # The database cannot take this event at all: retrying would stall every later one.
            self._reject(event.unit_id, "refused", f"{event.kind}: {exc}")

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
