"""Alarms: raised, acknowledged (by whom), escalated, cleared, and kept as history.

At most one alarm per device and code is open (not cleared); raising it again counts up
``times`` instead of adding a row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncpg

    from db.pool import Connection

MAX_LIMIT = 1000

_COLUMNS = (
    "id, device_id, code, severity, message, raised_at, last_raised_at, times, "
    "acknowledged_at, acknowledged_by, escalated_at, cleared_at, cleared_by"
)


@dataclass(frozen=True, slots=True)
class AlarmRow:
    """One alarm and its life so far."""

    id: int
    device_id: str
    code: str
    severity: str
    message: str
    raised_at: dt.datetime
    last_raised_at: dt.datetime
    times: int
    acknowledged_at: dt.datetime | None
    acknowledged_by: str | None
    escalated_at: dt.datetime | None
    cleared_at: dt.datetime | None
    cleared_by: str | None

    @property
    def status(self) -> str:
        """``open``, ``acknowledged`` or ``cleared``."""
        if self.cleared_at is not None:
            return "cleared"
        return "open" if self.acknowledged_at is None else "acknowledged"


async def raise_alarm(
    conn: Connection, *, device_id: str, code: str, severity: str, message: str
) -> tuple[AlarmRow, bool]:
    """Open an alarm, or count the open one again; return it and whether it is new."""
    row = await conn.fetchrow(
        f"""
        INSERT INTO alarms (device_id, code, severity, message)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT (device_id, code) WHERE cleared_at IS NULL DO UPDATE SET
            times = alarms.times + 1, last_raised_at = now(), message = EXCLUDED.message,
            severity = EXCLUDED.severity
        RETURNING {_COLUMNS}, (xmax = 0) AS inserted
        """,  # noqa: S608 - the column list is a constant
        device_id,
        code,
        severity,
        message,
    )
    assert row is not None  # noqa: S101 - INSERT .. ON CONFLICT DO UPDATE always returns a row
    values = dict(row.items())
    inserted = bool(values.pop("inserted"))
    return AlarmRow(**values), inserted


async def clear_alarm(
    conn: Connection, *, device_id: str, code: str, by: str | None = None
) -> AlarmRow | None:
    """Clear the open alarm of a device and code; None when none is open."""
    row = await conn.fetchrow(
        f"""
        UPDATE alarms SET cleared_at = now(), cleared_by = $3
        WHERE device_id = $1 AND code = $2 AND cleared_at IS NULL
        RETURNING {_COLUMNS}
        """,  # noqa: S608
        device_id,
        code,
        by,
    )
    return None if row is None else _alarm(row)


async def clear_by_id(conn: Connection, alarm_id: int, *, by: str) -> AlarmRow | None:
    """Clear one alarm by hand; None when it is unknown or cleared already."""
    row = await conn.fetchrow(
        f"""
        UPDATE alarms SET cleared_at = now(), cleared_by = $2
        WHERE id = $1 AND cleared_at IS NULL
        RETURNING {_COLUMNS}
        """,  # noqa: S608
        alarm_id,
        by,
    )
    return None if row is None else _alarm(row)


async def acknowledge(conn: Connection, alarm_id: int, *, by: str) -> AlarmRow | None:
    """Acknowledge an alarm (the first acknowledgement stands); None when unknown or cleared."""
    row = await conn.fetchrow(
        f"""
        UPDATE alarms
        SET acknowledged_at = COALESCE(acknowledged_at, now()),
            acknowledged_by = COALESCE(acknowledged_by, $2)
        WHERE id = $1 AND cleared_at IS NULL
        RETURNING {_COLUMNS}
        """,  # noqa: S608
        alarm_id,
        by,
    )
    return None if row is None else _alarm(row)


async def escalate_due(conn: Connection, *, older_than: dt.datetime) -> list[AlarmRow]:
    """Mark open, unacknowledged alarms raised before a moment as escalated; return them."""
    rows = await conn.fetch(
        f"""
        UPDATE alarms SET escalated_at = now()
        WHERE cleared_at IS NULL AND acknowledged_at IS NULL AND escalated_at IS NULL
          AND raised_at < $1
        RETURNING {_COLUMNS}
        """,  # noqa: S608
        older_than,
    )
    return [_alarm(row) for row in rows]


async def get_alarm(conn: Connection, alarm_id: int) -> AlarmRow | None:
    """One alarm, or None."""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM alarms WHERE id = $1", alarm_id)  # noqa: S608
    return None if row is None else _alarm(row)


async def list_alarms(
    conn: Connection,
    *,
    status: str | None = None,
    device_id: str | None = None,
    limit: int = 100,
    before_id: int | None = None,
) -> list[AlarmRow]:
    """Alarms newest first; ``status`` is open, acknowledged, cleared or active (not cleared)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
    conditions = {
        None: "true",
        "active": "cleared_at IS NULL",
        "open": "cleared_at IS NULL AND acknowledged_at IS NULL",
        "acknowledged": "cleared_at IS NULL AND acknowledged_at IS NOT NULL",
        "cleared": "cleared_at IS NOT NULL",
    }
    if status not in conditions:
        raise ValueError(f"unknown alarm status {status!r}")
    rows = await conn.fetch(
        f"""
        SELECT {_COLUMNS} FROM alarms
        WHERE {conditions[status]}
          AND ($1::text IS NULL OR device_id = $1)
          AND ($3::bigint IS NULL OR id < $3)
        ORDER BY id DESC
        LIMIT $2
        """,  # noqa: S608 - one of the constant conditions above
        device_id,
        limit,
        before_id,
    )
    return [_alarm(row) for row in rows]


def _alarm(row: asyncpg.Record) -> AlarmRow:
    return AlarmRow(**dict(row.items()))
