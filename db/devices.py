"""The device registry and each device's recent events.

Rows written in bulk (devices first seen, state changes) go through ``unnest`` arrays, so one
statement carries a whole batch.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from db import prune as pruning

if TYPE_CHECKING:
    import asyncpg

    from db.pool import Connection

MAX_LIMIT = 10_000

_COLUMNS = (
    "id, kind, name, site, lat, lon, tags, adapter, attributes, configured, state, reason, "
    "figures, last_seen, created_at, updated_at"
)


@dataclass(frozen=True, slots=True)
class DeviceRow:
    """One registered device and its last committed health."""

    id: str
    kind: str
    name: str | None
    site: str | None
    lat: float | None
    lon: float | None
    tags: list[str]
    adapter: str | None
    attributes: dict[str, Any]
    configured: bool
    state: str
    reason: str | None
    figures: dict[str, Any]
    last_seen: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class SeenDevice:
    """A device first seen through a report: what the report told about it."""

    id: str
    kind: str
    name: str | None
    site: str | None
    adapter: str | None


@dataclass(frozen=True, slots=True)
class StateUpdate:
    """A device's committed health, to store."""

    id: str
    state: str
    reason: str
    figures: dict[str, Any]
    last_seen: dt.datetime | None


@dataclass(frozen=True, slots=True)
class DeviceEventRow:
    """One thing that happened to a device."""

    id: int
    device_id: str
    at: dt.datetime
    kind: str
    detail: dict[str, Any]


async def list_devices(
    conn: Connection,
    *,
    kind: str | None = None,
    site: str | None = None,
    state: str | None = None,
    limit: int = MAX_LIMIT,
) -> list[DeviceRow]:
    """Devices by id, filtered by kind, site and state."""
    rows = await conn.fetch(
        f"""
        SELECT {_COLUMNS} FROM devices
        WHERE ($1::text IS NULL OR kind = $1)
          AND ($2::text IS NULL OR site = $2)
          AND ($3::text IS NULL OR state = $3)
        ORDER BY id
        LIMIT $4
        """,  # noqa: S608 - the column list is a constant
        kind,
        site,
        state,
        limit,
    )
    return [_device(row) for row in rows]


async def get_device(conn: Connection, device_id: str) -> DeviceRow | None:
    """One device, or None."""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM devices WHERE id = $1", device_id)  # noqa: S608
    return None if row is None else _device(row)


async def insert_device(
    conn: Connection,
    *,
    device_id: str,
    kind: str,
    name: str | None,
    site: str | None,
    lat: float | None,
    lon: float | None,
    tags: Sequence[str],
    adapter: str | None,
    attributes: dict[str, Any],
) -> DeviceRow | None:
    """Register a device by hand; None when the id exists already."""
    row = await conn.fetchrow(
        f"""
        INSERT INTO devices (id, kind, name, site, lat, lon, tags, adapter, attributes, configured)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, true)
        ON CONFLICT (id) DO NOTHING
        RETURNING {_COLUMNS}
        """,  # noqa: S608
        device_id,
        kind,
        name,
        site,
        lat,
        lon,
        list(tags),
        adapter,
        attributes,
    )
    return None if row is None else _device(row)


async def update_device(
    conn: Connection, device_id: str, changes: dict[str, Any]
) -> DeviceRow | None:
    """Change a device's registration (kind, name, site, lat, lon, tags, adapter, attributes)."""
    allowed = ("kind", "name", "site", "lat", "lon", "tags", "adapter", "attributes")
    unknown = set(changes) - set(allowed)
    if unknown:
        raise ValueError(f"cannot change {sorted(unknown)}")
    names = [name for name in allowed if name in changes]
    sets = ", ".join(f"{name} = ${index}" for index, name in enumerate(names, start=2))
    assignments = f"{sets}, " if sets else ""
    row = await conn.fetchrow(
        f"""
        UPDATE devices SET {assignments}configured = true, updated_at = now()
        WHERE id = $1
        RETURNING {_COLUMNS}
        """,  # noqa: S608 - names come from the fixed list above
        device_id,
        *(list(changes[name]) if name == "tags" else changes[name] for name in names),
    )
    return None if row is None else _device(row)


async def register_seen(
    conn: Connection, devices: Sequence[SeenDevice], *, announced: bool = False
) -> None:
    """Insert devices first seen through reports; known ones keep their registration.

    With ``announced`` (a device's own retained config message) name and site are refreshed
    too, unless a person registered the device.
    """
    if not devices:
        return
    conflict = (
        """DO UPDATE SET kind = EXCLUDED.kind,
                  name = COALESCE(EXCLUDED.name, devices.name),
                  site = COALESCE(EXCLUDED.site, devices.site),
                  updated_at = now()
           WHERE NOT devices.configured"""
        if announced
        else "DO NOTHING"
    )
    await conn.execute(
        f"""
        INSERT INTO devices (id, kind, name, site, adapter)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
        ON CONFLICT (id) {conflict}
        """,  # noqa: S608 - one of two constants
        [d.id for d in devices],
        [d.kind for d in devices],
        [d.name for d in devices],
        [d.site for d in devices],
        [d.adapter for d in devices],
    )


async def announce(
    conn: Connection,
    *,
    device_id: str,
    kind: str,
    name: str | None,
    site: str | None,
    lat: float | None,
    lon: float | None,
    tags: Sequence[str],
    attributes: dict[str, Any],
    adapter: str,
) -> None:
    """Store a device's own announcement; a registration made by a person wins over it."""
    await conn.execute(
        """
        INSERT INTO devices (id, kind, name, site, lat, lon, tags, adapter, attributes)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        ON CONFLICT (id) DO UPDATE SET
            kind = EXCLUDED.kind, name = EXCLUDED.name, site = EXCLUDED.site,
            lat = EXCLUDED.lat, lon = EXCLUDED.lon, tags = EXCLUDED.tags,
            adapter = EXCLUDED.adapter, attributes = EXCLUDED.attributes, updated_at = now()
        WHERE NOT devices.configured
        """,
        device_id,
        kind,
        name,
        site,
        lat,
        lon,
        list(tags),
        adapter,
        attributes,
    )


async def store_states(conn: Connection, updates: Sequence[StateUpdate]) -> None:
    """Store the committed health of many devices in one statement."""
    if not updates:
        return
    await conn.execute(
        """
        UPDATE devices AS d
        SET state = u.state, reason = u.reason, figures = u.figures::jsonb,
            last_seen = u.last_seen, updated_at = now()
        FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
             AS u (id, state, reason, figures, last_seen)
        WHERE d.id = u.id
        """,
        [u.id for u in updates],
        [u.state for u in updates],
        [u.reason for u in updates],
        [json.dumps(u.figures, separators=(",", ":")) for u in updates],
        [u.last_seen for u in updates],
    )


async def add_events(
    conn: Connection, events: Sequence[tuple[str, dt.datetime, str, dict[str, Any]]]
) -> None:
    """Append (device_id, at, kind, detail) events."""
    if not events:
        return
    await conn.executemany(
        "INSERT INTO device_events (device_id, at, kind, detail) VALUES ($1, $2, $3, $4)",
        list(events),
    )


async def recent_events(
    conn: Connection, device_id: str, *, limit: int = 50
) -> list[DeviceEventRow]:
    """A device's latest events, newest first."""
    rows = await conn.fetch(
        """
        SELECT id, device_id, at, kind, detail FROM device_events
        WHERE device_id = $1 ORDER BY id DESC LIMIT $2
        """,
        device_id,
        limit,
    )
    return [DeviceEventRow(**dict(row.items())) for row in rows]


async def prune_events(
    conn: Connection, older_than: dt.datetime, *, batch: int = pruning.PRUNE_BATCH
) -> int:
    """Delete events older than a moment in short batches (:func:`db.prune.older_than`)."""
    return await pruning.older_than(conn, "device_events", older_than, batch=batch)


def _device(row: asyncpg.Record) -> DeviceRow:
    return DeviceRow(**dict(row.items()))
