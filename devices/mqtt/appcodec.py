"""The MQTT app channel's wire format, with no I/O: orders out, positions and events in.

Orders leave on ``{prefix}/units/{id}/orders`` (QoS 1); positions arrive on
``{prefix}/units/{id}/position`` and events on ``{prefix}/units/{id}/events``. JSON objects,
UTF-8, at most ``MAX_PAYLOAD`` bytes (docs/dispatch.md has examples):

- position: ``{"lat": -6.2, "lon": 106.8, "ts": 1767225600.0}`` (``ts`` epoch seconds or an
  ISO 8601 time with zone; missing means now).
- order: ``{"type": "order", "order": ID, "unit": ..., "attempt": n, "message": ...,
  "case": {"id", "number", "title", "category", "priority", "lat", "lon"}}``.
- event: ``{"type": "received" | "ack", "order": ID}``, ``{"type": "status", "status": ...,
  "order"?: ID}`` or ``{"type": "text", "text": ..., "order"?: ID, "id"?: MESSAGE_ID}``.

Everything a unit sends is untrusted: a payload that is not one of these shapes raises
:class:`Malformed` with a message saying exactly what is wrong, and nothing else escapes.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, TypeGuard

if TYPE_CHECKING:
    from ops.core.channels import SendCopy

CHANNEL: Final = "mqtt"
MAX_PAYLOAD: Final = 4096
#: An order bigger than this is refused before it is published (brokers and apps cap messages).
MAX_ORDER: Final = 16_384
MAX_TEXT: Final = 1000
_ORDER_ID = re.compile(r"^[0-9a-z]{8,32}$")
_MESSAGE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_UNIT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
EVENT_TYPES: Final = ("received", "ack", "status", "text")


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


def encode_order(copy: SendCopy) -> bytes:
    """The order message a unit's app receives.

    Raises:
        Malformed: the order would be over ``MAX_ORDER`` bytes.
    """
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
    payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    if len(payload) > MAX_ORDER:
        raise Malformed(f"order of {len(payload)} bytes is over {MAX_ORDER} bytes")
    return payload


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
        raise Malformed(f"payload over {MAX_PAYLOAD} bytes ({len(payload)})")
    try:
        data = json.loads(payload)
    except UnicodeDecodeError:
        raise Malformed("not JSON: not UTF-8") from None
    except ValueError as exc:
        raise Malformed(f"not JSON: {exc}") from None
    except RecursionError:
        raise Malformed("not JSON: nested too deep") from None
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
