"""Field units: one function per statement, connection passed in.

Nearest-unit search orders by the cube distance between ``ll_to_earth`` points, which the GiST
index answers as a KNN scan; the distance it returns is a chord, so the great-circle distance
is computed with ``earth_distance`` for the rows the scan yields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    import asyncpg

    from db.pool import Connection

_COLUMNS = """
    id, callsign, name, kind, skills, home_center, on_duty, status, status_reason, channels,
    lat, lon, position_at, position_source, shift, created_at, updated_at
"""

#: Columns :func:`update_unit` may set.
UPDATABLE = frozenset(
    {"callsign", "name", "kind", "skills", "home_center", "on_duty", "status", "status_reason"}
)


@dataclass(frozen=True, slots=True)
class UnitRow:
    """One field unit."""

    id: str
    callsign: str
    name: str
    kind: str
    skills: tuple[str, ...]
    home_center: str | None
    on_duty: bool
    status: str
    status_reason: str | None
    channels: tuple[tuple[str, str], ...]
    lat: float | None
    lon: float | None
    position_at: datetime | None
    position_source: str | None
    created_at: datetime
    updated_at: datetime
    #: The shift the unit's duty follows; None: duty set by hand only.
    shift: str | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    """A unit near a point, with its great-circle distance in metres."""

    unit: UnitRow
    distance_m: float


async def insert_unit(conn: Connection, values: dict[str, Any]) -> UnitRow | None:
    """Add a unit; None when its id or callsign is taken."""
    row = await conn.fetchrow(
        f"""
        INSERT INTO units (id, callsign, name, kind, skills, home_center, on_duty, channels, shift)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        ON CONFLICT DO NOTHING
        RETURNING {_COLUMNS}
        """,  # noqa: S608 - the column list is a constant
        values["id"],
        values["callsign"],
        values["name"],
        values["kind"],
        list(values.get("skills", ())),
        values.get("home_center"),
        values.get("on_duty", True),
        [{"channel": c, "address": a} for c, a in values.get("channels", ())],
        values.get("shift"),
    )
    return None if row is None else _unit(row)


async def get_unit(conn: Connection, unit_id: str, *, for_update: bool = False) -> UnitRow | None:
    """One unit, optionally locked for the rest of the transaction."""
    lock = " FOR NO KEY UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM units WHERE id = $1{lock}", unit_id)  # noqa: S608
    return None if row is None else _unit(row)


async def lock_in_order(conn: Connection, unit_ids: Sequence[str]) -> list[str]:
    """Lock these units' rows in id order (inside a transaction); return the ids that exist.

    Every writer that touches several units takes their locks in the same (id) order, so two
    such transactions wait for each other instead of deadlocking.
    """
    rows = await conn.fetch(
        "SELECT id FROM units WHERE id = ANY($1::text[]) ORDER BY id FOR NO KEY UPDATE",
        list(unit_ids),
    )
    return [row["id"] for row in rows]


async def list_units(
    conn: Connection,
    *,
    status: str | None = None,
    kind: str | None = None,
    limit: int = 1000,
) -> list[UnitRow]:
    """Units by id, optionally of one status or kind."""
    rows = await conn.fetch(
        f"""
        SELECT {_COLUMNS} FROM units
        WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR kind = $2)
        ORDER BY id LIMIT $3
        """,  # noqa: S608
        status,
        kind,
        limit,
    )
    return [_unit(row) for row in rows]


async def update_unit(conn: Connection, unit_id: str, changes: dict[str, Any]) -> UnitRow:
    """Set some of :data:`UPDATABLE`; the unit must exist (lock it first)."""
    unknown = changes.keys() - UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    names = sorted(changes)
    sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, start=2))
    values = [list(v) if isinstance(v, tuple) else v for v in (changes[n] for n in names)]
    row = await conn.fetchrow(
        f"UPDATE units SET {sets}, updated_at = now() WHERE id = $1 RETURNING {_COLUMNS}",  # noqa: S608
        unit_id,
        *values,
    )
    if row is None:
        raise LookupError(unit_id)
    return _unit(row)


async def out_of_shift(conn: Connection, current: str) -> list[tuple[str, bool]]:
    """Units with a shift whose duty differs from ``shift = current``: (id, duty due), by id."""
    rows = await conn.fetch(
        """
        SELECT id, shift = $1 AS due FROM units
        WHERE shift IS NOT NULL AND on_duty IS DISTINCT FROM (shift = $1)
        ORDER BY id
        """,
        current,
    )
    return [(row["id"], row["due"]) for row in rows]


async def nearest(
    conn: Connection,
    lat: float,
    lon: float,
    *,
    limit: int,
    exclude: Sequence[str] = (),
    kinds: Sequence[str] | None = None,
) -> list[Candidate]:
    """Available, on-duty units with a position, nearest first, at most ``limit``.

    The GiST index answers it as a KNN scan; ``kinds`` keeps only units of those kinds.
    """
    rows = await conn.fetch(
        f"""
        SELECT {_COLUMNS},
               earth_distance(ll_to_earth(lat, lon), ll_to_earth($1, $2)) AS distance_m
        FROM units
        WHERE lat IS NOT NULL AND status = 'available' AND on_duty AND NOT (id = ANY($4))
          AND ($5::text[] IS NULL OR kind = ANY($5))
        ORDER BY ll_to_earth(lat, lon) <-> ll_to_earth($1, $2)
        LIMIT $3
        """,  # noqa: S608
        lat,
        lon,
        limit,
        list(exclude),
        None if kinds is None else list(kinds),
    )
    return [Candidate(_unit(row), float(row["distance_m"])) for row in rows]


async def without_position(
    conn: Connection, *, limit: int, exclude: Sequence[str] = ()
) -> list[UnitRow]:
    """Available, on-duty units that never reported a position."""
    rows = await conn.fetch(
        f"""
        SELECT {_COLUMNS} FROM units
        WHERE lat IS NULL AND status = 'available' AND on_duty AND NOT (id = ANY($2))
        ORDER BY id LIMIT $1
        """,  # noqa: S608
        limit,
        list(exclude),
    )
    return [_unit(row) for row in rows]


def _unit(row: asyncpg.Record) -> UnitRow:
    return UnitRow(
        id=row["id"],
        callsign=row["callsign"],
        name=row["name"],
        kind=row["kind"],
        skills=tuple(row["skills"]),
        home_center=row["home_center"],
        on_duty=row["on_duty"],
        status=row["status"],
        status_reason=row["status_reason"],
        channels=tuple((c["channel"], c["address"]) for c in row["channels"]),
        lat=row["lat"],
        lon=row["lon"],
        position_at=row["position_at"],
        position_source=row["position_source"],
        shift=row["shift"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
