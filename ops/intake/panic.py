"""MQTT panic buttons: ``{prefix}/panic/{device_id}`` opens a high-priority case.

The payload is empty or a JSON object. ``lat``/``lon`` in it place the case; otherwise the
device registry's position (``devices`` table) does; with neither the case still opens, marked
"location unknown", because a press is never dropped for want of a place. Every press has an
idempotency key, so a redelivered press (QoS 1) lands on the same case: the payload's ``id``,
else its ``ts``, else the minute the hub received it. A malformed payload is refused with a
warning naming the device and the problem (and counted); the next press is handled normally.

The MQTT link has acknowledged a press before the handler sees it, so the handler only decodes
it and puts it in a bounded queue; the adapter ``intake.panic`` files the queued presses in
order. While the database is away the adapter backs off and the presses wait in memory, to be
filed once it is back: a press survives a database outage, not a restart of the hub.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg

from db import cases as case_rows
from db.pool import Pool
from ops.cases.errors import InvalidReport
from ops.cases.intake import IncomingReport, submit_report
from ops.cases.model import refuse_nul
from ops.core.adapter import AdapterContext
from ops.core.bus import Bus
from ops.core.config import CasesConfig
from ops.core.errors import AdapterNotReady

_LOGGER = logging.getLogger(__name__)

CHANNEL = "panic"
CATEGORY = "public_order"
MAX_PAYLOAD = 4096
#: Presses kept while the database is away; past that a new press is refused (logged at ERROR).
DEFAULT_MAX_PENDING = 1000
#: A press without ``id`` or ``ts`` is keyed by the device and this slice of its receive time.
PRESS_BUCKET_SECONDS = 60
#: Failures that mean "the database is not reachable now": the press waits and is retried.
_UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
)
_DEVICE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_PRESS_ID = re.compile(r"^[A-Za-z0-9_.:+-]{1,64}$")


class Message(Protocol):
    """What the MQTT link hands a handler (``devices.mqtt.link.MqttMessage``)."""

    @property
    def topic(self) -> str:
        """The topic the message came on."""
        ...

    @property
    def payload(self) -> bytes:
        """The raw payload."""
        ...


class PanicRefused(ValueError):  # noqa: N818 - reads as the condition it reports
    """A panic message that cannot be read."""


@dataclass(frozen=True, slots=True)
class PanicPress:
    """One decoded press."""

    device_id: str
    lat: float | None
    lon: float | None
    press_id: str
    text: str | None


def parse_press(topic: str, payload: bytes, *, received: float | None = None) -> PanicPress:
    """Decode a panic message; raise PanicRefused saying what is wrong.

    ``received`` (Unix time, default now) keys a press that carries neither ``id`` nor ``ts``.
    """
    device_id = topic.rsplit("/", 1)[-1]
    if not _DEVICE_ID.fullmatch(device_id):
        raise PanicRefused(f"bad device id {device_id[:80]!r}")
    if len(payload) > MAX_PAYLOAD:
        raise PanicRefused(f"payload larger than {MAX_PAYLOAD} bytes")
    data: Any = {}
    if payload.strip():
        try:
            data = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            raise PanicRefused("payload is not JSON") from None
    if not isinstance(data, dict):
        raise PanicRefused("payload must be a JSON object")
    lat, lon = _coordinate(data, "lat", 90), _coordinate(data, "lon", 180)
    if (lat is None) != (lon is None):
        raise PanicRefused("give both lat and lon")
    text = _text(data)
    return PanicPress(device_id, lat, lon, _press_id(data, received), text)


class PanicIntake:
    """The MQTT handler and the adapter ``intake.panic`` that files each press as a case.

    ``refused`` counts presses that could not be read; ``dropped`` those refused because the
    queue was full; ``pending`` is how many wait for the database.
    """

    name = "intake.panic"
    heartbeat_interval: float | None = None

    def __init__(
        self,
        pool: Pool,
        bus: Bus,
        config: CasesConfig,
        *,
        max_pending: int = DEFAULT_MAX_PENDING,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._pool = pool
        self._bus = bus
        self._config = config
        self._clock = clock
        self._max_pending = max_pending
        self._pending: deque[PanicPress] = deque()
        self._arrived = asyncio.Event()
        self.refused = 0
        self.dropped = 0

    @property
    def pending(self) -> int:
        """Presses decoded and not yet committed."""
        return len(self._pending)

    async def handle(self, message: Message) -> None:
        """Decode one press and queue it for filing; log, count and drop what cannot be read."""
        try:
            press = parse_press(message.topic, message.payload, received=self._clock())
        except PanicRefused as exc:
            self.refused += 1
            _LOGGER.warning("panic message on %s refused: %s", message.topic[:200], exc)
            return
        if len(self._pending) >= self._max_pending:
            self.dropped += 1
            _LOGGER.error(
                "panic from %s refused: %d presses already wait for the database",
                press.device_id,
                len(self._pending),
            )
            return
        self._pending.append(press)
        self._arrived.set()

    async def run(self, ctx: AdapterContext) -> None:
        """File the queued presses in order; raise AdapterNotReady while the database is away."""
        ctx.heartbeat()
        while True:
            while not self._pending:
                self._arrived.clear()
                await self._arrived.wait()
            press = self._pending[0]
            try:
                await self._file(press)
            except _UNREACHABLE as exc:
                raise AdapterNotReady(
                    f"{len(self._pending)} panic presses wait for the database: {exc!r}"
                ) from exc
            except asyncpg.PostgresError as exc:  # this press cannot be stored: never retry it
                self.refused += 1
                _LOGGER.error("panic from %s refused by the database: %s", press.device_id, exc)  # noqa: TRY400 - the reason is the message
            except Exception:
                # One press that breaks filing must not hold up every press queued behind it.
                self.refused += 1
                _LOGGER.exception("panic from %s could not be filed", press.device_id)
            self._pending.popleft()
            ctx.heartbeat()

    async def _file(self, press: PanicPress) -> None:
        lat, lon = press.lat, press.lon
        where = "reported by the device"
        if lat is None or lon is None:
            async with self._pool.acquire() as conn:
                registered = await case_rows.device_location(conn, press.device_id)
            lat, lon = registered or (None, None)
            where = "device registry" if registered else "location unknown"
        description = f"Panic button {press.device_id} pressed ({where})."
        if press.text:
            description += "\n\n" + press.text
        report = IncomingReport(
            channel=CHANNEL,
            category=CATEGORY,
            title=f"Panic button {press.device_id}",
            description=description,
            priority="high",
            priority_reason="panic button",
            lat=lat,
            lon=lon,
            reporter_contact=f"device:{press.device_id}",
            external_source=CHANNEL,
            external_id=f"{press.device_id}/{press.press_id}",
            actor=f"device:{press.device_id}",
        )
        try:
            ref = await submit_report(self._pool, self._bus, report, config=self._config)
        except InvalidReport as exc:
            self.refused += 1
            _LOGGER.warning("panic from %s refused: %s", press.device_id, exc.message)
            return
        _LOGGER.info(
            "panic from %s: case %s (%s)",
            press.device_id,
            ref.number,
            "opened" if ref.created else "already open",
        )


def _press_id(data: dict[str, Any], received: float | None) -> str:
    press = data.get("id", data.get("ts"))
    if press is None:
        bucket = int((time.time() if received is None else received) // PRESS_BUCKET_SECONDS)
        return f"rx-{bucket}"
    press_id = str(press)
    if not _PRESS_ID.fullmatch(press_id):
        raise PanicRefused("id must be 1-64 letters, digits or _.:+-")
    return press_id


def _text(data: dict[str, Any]) -> str | None:
    text = data.get("text")
    if text is None:
        return None
    if not isinstance(text, str):
        raise PanicRefused("text must be a string")
    try:
        refuse_nul(text)
    except ValueError as exc:
        raise PanicRefused(f"text {exc}") from None
    return text[:1000]


def _coordinate(data: dict[str, Any], name: str, bound: float) -> float | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PanicRefused(f"{name} must be a number")
    try:
        number = float(value)  # an integer of hundreds of digits does not fit a float
    except OverflowError:
        raise PanicRefused(f"{name} must be between {-bound} and {bound}") from None
    if not math.isfinite(number):
        raise PanicRefused(f"{name} must be a number")
    if not -bound <= number <= bound:
        raise PanicRefused(f"{name} must be between {-bound} and {bound}")
    return number
