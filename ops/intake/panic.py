"""MQTT panic buttons: ``{prefix}/panic/{device_id}`` opens a high-priority case.

The payload is empty or a JSON object. ``lat``/``lon`` in it place the case; otherwise the
device registry's position (``devices`` table) does; with neither the case still opens, marked
"location unknown", because a press is never dropped for want of a place. An ``id`` (or ``ts``)
in the payload makes a redelivered press (QoS 1) land on the same case. A malformed payload is
refused with a warning naming the device and the problem; the next press is handled normally.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from typing import Any, Protocol

from db import cases as case_rows
from db.pool import Pool
from ops.cases.errors import InvalidReport
from ops.cases.intake import IncomingReport, submit_report
from ops.core.bus import Bus
from ops.core.config import CasesConfig

_LOGGER = logging.getLogger(__name__)

CHANNEL = "panic"
CATEGORY = "public_order"
MAX_PAYLOAD = 4096
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
    press_id: str | None
    text: str | None


def parse_press(topic: str, payload: bytes) -> PanicPress:
    """Decode a panic message; raise PanicRefused saying what is wrong."""
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
    press = data.get("id", data.get("ts"))
    press_id = None if press is None else str(press)
    if press_id is not None and not _PRESS_ID.fullmatch(press_id):
        raise PanicRefused("id must be 1-64 letters, digits or _.:+-")
    text = data.get("text")
    if text is not None and not isinstance(text, str):
        raise PanicRefused("text must be a string")
    return PanicPress(device_id, lat, lon, press_id, None if text is None else text[:1000])


class PanicIntake:
    """The MQTT handler: a press becomes a case (committed before the handler returns)."""

    def __init__(self, pool: Pool, bus: Bus, config: CasesConfig) -> None:
        self._pool = pool
        self._bus = bus
        self._config = config

    async def handle(self, message: Message) -> None:
        """Open (or find again) the case for one press; log and drop what cannot be read."""
        try:
            press = parse_press(message.topic, message.payload)
        except PanicRefused as exc:
            _LOGGER.warning("panic message on %s refused: %s", message.topic[:200], exc)
            return
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
            external_source=CHANNEL if press.press_id else None,
            external_id=None if press.press_id is None else f"{press.device_id}/{press.press_id}",
            actor=f"device:{press.device_id}",
        )
        try:
            ref = await submit_report(self._pool, self._bus, report, config=self._config)
        except InvalidReport as exc:
            _LOGGER.warning("panic from %s refused: %s", press.device_id, exc.message)
            return
        _LOGGER.info(
            "panic from %s: case %s (%s)",
            press.device_id,
            ref.number,
            "opened" if ref.created else "already open",
        )


def _coordinate(data: dict[str, Any], name: str, bound: float) -> float | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PanicRefused(f"{name} must be a number")
    if not -bound <= value <= bound:
        raise PanicRefused(f"{name} must be between {-bound} and {bound}")
    return float(value)
