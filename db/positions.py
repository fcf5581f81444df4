"""Unit position history: batched COPY into ``unit_positions`` and the latest fix on ``units``.

One batch is one transaction of three statements whatever its size: which units exist, a COPY
of their rows, and one UPDATE that moves each unit to its newest fix of the batch when that is
newer than the one it has.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from db.pool import Connection

COLUMNS = ("unit_id", "at", "lat", "lon", "source", "received_at")


@dataclass(frozen=True, slots=True)
class PositionRow:
    """One reported position."""

    unit_id: str
    at: datetime
    lat: float
    lon: float
    source: str
    received_at: datetime


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What one batch did: rows stored, rows of unknown units, and units whose fix moved."""

    stored: int
    unknown: frozenset[str]
    moved: list[PositionRow]


async def write_batch(conn: Connection, rows: Sequence[PositionRow]) -> BatchResult:
    """Store a batch (call inside a transaction); rows of units that do not exist are skipped."""
    ids = sorted({row.unit_id for row in rows})
    known = {r["id"] for r in await conn.fetch("SELECT id FROM units WHERE id = ANY($1)", ids)}
    kept = [row for row in rows if row.unit_id in known]
    if kept:
        await conn.copy_records_to_table(
            "unit_positions",
            records=[(r.unit_id, r.at, r.lat, r.lon, r.source, r.received_at) for r in kept],
            columns=COLUMNS,
        )
    newest: dict[str, PositionRow] = {}
    for row in kept:
        seen = newest.get(row.unit_id)
        if seen is None or row.at > seen.at:
            newest[row.unit_id] = row
    moved: list[PositionRow] = []
    if newest:
        latest = list(newest.values())
        updated = await conn.fetch(
            """
            UPDATE units
            SET lat = b.lat, lon = b.lon, position_at = b.at, position_source = b.source
            FROM unnest($1::text[], $2::timestamptz[], $3::float8[], $4::float8[], $5::text[])
                AS b (unit_id, at, lat, lon, source)
            WHERE units.id = b.unit_id AND (units.position_at IS NULL OR units.position_at < b.at)
            RETURNING units.id
            """,
            [r.unit_id for r in latest],
            [r.at for r in latest],
            [r.lat for r in latest],
            [r.lon for r in latest],
            [r.source for r in latest],
        )
        moved = [newest[r["id"]] for r in updated]
    return BatchResult(len(kept), frozenset(set(ids) - known), moved)


async def history(
    conn: Connection, unit_id: str, *, since: datetime | None = None, limit: int = 500
) -> list[PositionRow]:
    """A unit's positions, newest first."""
    rows = await conn.fetch(
        """
        SELECT unit_id, at, lat, lon, source, received_at FROM unit_positions
        WHERE unit_id = $1 AND ($2::timestamptz IS NULL OR at >= $2)
        ORDER BY at DESC LIMIT $3
        """,
        unit_id,
        since,
        limit,
    )
    return [
        PositionRow(r["unit_id"], r["at"], r["lat"], r["lon"], r["source"], r["received_at"])
        for r in rows
    ]
