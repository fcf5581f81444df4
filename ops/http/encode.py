"""Bus values to JSON: dataclasses become objects, enums their value, datetimes ISO 8601.

Anything else that JSON cannot carry becomes its ``str`` (and NaN becomes null), so one odd
payload can never break the live feed of every client.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import math
from collections.abc import Mapping
from typing import Any

from ops.core.events import Envelope


def to_jsonable(value: Any) -> Any:  # noqa: PLR0911 - one return per JSON kind
    """Return ``value`` as plain JSON types (dict, list, str, int, float, bool, None)."""
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: to_jsonable(getattr(value, field.name))
            for field in dataclasses.fields(value)
        }
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(item) for item in value]
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def envelope_message(envelope: Envelope[Any]) -> dict[str, Any]:
    """The live-feed message for one bus event."""
    return {
        "type": "event",
        "topic": envelope.topic.name,
        "key": envelope.key,
        "source": envelope.source,
        "time": envelope.time.isoformat(),
        "correlation_id": envelope.correlation_id,
        "payload": to_jsonable(envelope.payload),
    }


def dumps(value: Any) -> str:
    """Compact JSON text of an already JSON-able value."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
