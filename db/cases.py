"""Cases, their append-only history and notes: one function per statement, connection passed in.

The queue order is (priority_rank, sla_due_at, id); :func:`list_cases` pages it by keyset, so a
page never shifts when cases arrive meanwhile. Tracking codes are stored only as SHA-256 digests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import datetime

    import asyncpg

    from db.pool import Connection

MAX_LIMIT = 500
#: Statuses whose SLA clock runs and that duplicates are matched against.
OPEN_STATUSES = ("new", "triaged", "assigned", "in_progress", "reopened")

_COLUMNS = """
    id, number, channel, category, priority, priority_rank, priority_reason, title, description,
    lat, lon, address, region, reporter_name, reporter_contact, anonymous, status, status_reason,
    agency, parent_id, duplicate_of, sla_due_at, sla_breached_at, external_source, external_id,
    message_id, attachments, created_at, updated_at,
    (SELECT count(*) FROM cases AS child WHERE child.parent_id = cases.id) AS children
"""

#: The same, of a row just inserted (it has no duplicates linked under it yet).
_NEW_COLUMNS = _COLUMNS.replace(
    "(SELECT count(*) FROM cases AS child WHERE child.parent_id = cases.id)", "0::bigint"
)
_INSERTABLE = frozenset(
    {
        "channel",
        "category",
        "priority",
        "priority_reason",
        "title",
        "description",
        "lat",
        "lon",
        "address",
        "region",
        "reporter_name",
        "reporter_contact",
        "anonymous",
        "agency",
        "sla_due_at",
        "created_at",
        "updated_at",
        "external_source",
        "external_id",
        "message_id",
        "attachments",
        "tracking_hash",
    }
)

#: Columns :func:`update_case` may set.
UPDATABLE = frozenset(
    {
        "category",
        "priority",
        "priority_reason",
        "title",
        "description",
        "lat",
        "lon",
        "address",
        "region",
        "status",
        "status_reason",
        "agency",
        "parent_id",
        "duplicate_of",
        "sla_due_at",
        "sla_breached_at",
    }
)


@dataclass(frozen=True, slots=True)
class CaseRow:
    """One case."""

    id: int
    number: str
    channel: str
    category: str
    priority: str
    priority_rank: int
    priority_reason: str
    title: str
    description: str
    lat: float | None
    lon: float | None
    address: str | None
    region: str | None
    reporter_name: str | None = field(repr=False)
    reporter_contact: str | None = field(repr=False)
    anonymous: bool
    status: str
    status_reason: str | None
    agency: str | None
    parent_id: int | None
    duplicate_of: int | None
    sla_due_at: datetime
    sla_breached_at: datetime | None
    external_source: str | None
    external_id: str | None
    message_id: str | None
    attachments: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime
    children: int


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One entry of a case's history."""

    id: int
    case_id: int
    at: datetime
    actor: str
    action: str
    before: Any
    after: Any


@dataclass(frozen=True, slots=True)
class NoteRow:
    """A note on a case."""

    id: int
    case_id: int
    at: datetime
    author: str
    body: str


@dataclass(frozen=True, slots=True)
class CaseFilter:
    """What the queue shows; every field narrows it (None: no narrowing)."""

    statuses: tuple[str, ...] | None = None
    category: str | None = None
    agency: str | None = None
    priority: str | None = None
    channel: str | None = None
    region: str | None = None
    text: str | None = None
    bbox: tuple[float, float, float, float] | None = None  # min lon, min lat, max lon, max lat
    overdue: bool = False
    parent_id: int | None = None


QueueKey = tuple[int, "datetime", int]


@dataclass(frozen=True, slots=True)
class DuplicateWindow:
    """What makes an open case a likely duplicate of a new one (see :func:`insert_case`)."""

    since: datetime
    distance_m: float


async def insert_case(
    conn: Connection,
    values: dict[str, Any],
    *,
    actor: str,
    opened: dict[str, Any],
    duplicates: DuplicateWindow,
) -> CaseRow | None:
    """Insert a case with its ``opened`` history entry, in one statement (atomic by itself).

    ``duplicate_of`` points at the original of the newest open case (not itself a linked
    duplicate) with the same reporter contact, or of the same category opened since
    ``duplicates.since`` and within ``duplicates.distance_m`` (great-circle): that case, or the
    case it is itself suspected to duplicate, so suspicions never chain. That adds a
    ``duplicate_suspected`` entry by "hub". Returns None when the case already exists (same
    external record or Message-ID).
    """
    if set(values) != _INSERTABLE:
        raise ValueError(f"insert_case needs exactly the columns {sorted(_INSERTABLE)}")
    names = sorted(values)
    index = {name: i for i, name in enumerate(names, start=1)}
    extra = len(names)
    # Only the idempotency keys may turn the insert into "already there"; any other clash
    # (a case number, a tracking digest) is an error, never a silent no-op.
    if values["external_id"] is not None:
        on_conflict = (
            "ON CONFLICT (external_source, external_id) WHERE external_id IS NOT NULL DO NOTHING"
        )
    elif values["message_id"] is not None:
        on_conflict = "ON CONFLICT (message_id) WHERE message_id IS NOT NULL DO NOTHING"
    else:
        on_conflict = ""
    row = await conn.fetchrow(
        f"""
        WITH c AS (
            INSERT INTO cases ({", ".join(names)}, duplicate_of)
            VALUES ({", ".join(f"${i}" for i in index.values())}, (
                SELECT coalesce(d.duplicate_of, d.id) FROM cases AS d
                WHERE d.parent_id IS NULL AND d.status = ANY(${extra + 3}::text[])
                  AND (
                    (${index["reporter_contact"]}::text IS NOT NULL
                     AND lower(d.reporter_contact) = lower(${index["reporter_contact"]}))
                    OR (
                      d.category = ${index["category"]} AND d.created_at >= ${extra + 1}
                      AND ${index["lat"]}::float8 IS NOT NULL AND d.lat IS NOT NULL
                      AND d.lat BETWEEN ${index["lat"]} - ${extra + 2} / 111000.0
                                    AND ${index["lat"]} + ${extra + 2} / 111000.0
                      AND 2 * 6371000 * asin(sqrt(
                            power(sin(radians(d.lat - ${index["lat"]}) / 2), 2)
                            + cos(radians(${index["lat"]})) * cos(radians(d.lat))
                              * power(sin(radians(d.lon - ${index["lon"]}) / 2), 2)
                          )) <= ${extra + 2}
                    )
                  )
                ORDER BY d.created_at DESC, d.id DESC
                LIMIT 1
            ))
            {on_conflict}
            RETURNING *
        ), history AS (
            INSERT INTO case_history (case_id, actor, action, before, after)
            SELECT entry.case_id, entry.actor, entry.action, NULL, entry.after
            FROM (
                SELECT 1 AS ord, c.id AS case_id, ${extra + 4}::text AS actor,
                       'opened' AS action, ${extra + 5}::jsonb AS after
                FROM c
                UNION ALL
                SELECT 2, c.id, 'hub', 'duplicate_suspected',
                       jsonb_build_object('duplicate_of', c.duplicate_of)
                FROM c WHERE c.duplicate_of IS NOT NULL
            ) AS entry
            ORDER BY entry.ord
        )
        SELECT {_NEW_COLUMNS} FROM c
        """,  # noqa: S608 - names come from the caller's keys, checked against the table
        *(values[name] for name in names),
        duplicates.since,
        duplicates.distance_m,
        list(OPEN_STATUSES),
        actor,
        opened,
    )
    return None if row is None else _case(row)


async def find_existing(
    conn: Connection,
    *,
    external_source: str | None = None,
    external_id: str | None = None,
    message_id: str | None = None,
) -> CaseRow | None:
    """The case made earlier from the same external record or the same mail, if any."""
    row = await conn.fetchrow(
        f"""
        SELECT {_COLUMNS} FROM cases
        WHERE ($1::text IS NOT NULL AND external_source = $1 AND external_id = $2)
           OR ($3::text IS NOT NULL AND message_id = $3)
        LIMIT 1
        """,  # noqa: S608 - constant column lists
        external_source,
        external_id,
        message_id,
    )
    return None if row is None else _case(row)


async def get_case(conn: Connection, case_id: int, *, for_update: bool = False) -> CaseRow | None:
    """One case; ``for_update`` locks it until the transaction ends."""
    lock = " FOR NO KEY UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM cases WHERE id = $1{lock}", case_id)  # noqa: S608 - constant column lists
    return None if row is None else _case(row)


async def get_by_tracking(conn: Connection, tracking_hash: bytes) -> CaseRow | None:
    """The case a tracking or follow-up code (by its digest) belongs to."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM cases WHERE tracking_hash = $1",  # noqa: S608 - constant
        tracking_hash,
    )
    return None if row is None else _case(row)


async def update_case(conn: Connection, case_id: int, changes: dict[str, Any]) -> CaseRow:
    """Set some columns (names from :data:`UPDATABLE`) and ``updated_at``; return the row."""
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    names = sorted(changes)
    sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, start=2))
    row = await conn.fetchrow(
        f"""
        UPDATE cases SET {sets}{", " if sets else ""}updated_at = now() WHERE id = $1
        RETURNING {_COLUMNS}
        """,  # noqa: S608 - constant column lists
        case_id,
        *(changes[name] for name in names),
    )
    if row is None:
        raise LookupError(f"case {case_id} does not exist")
    return _case(row)


async def clock_start(conn: Connection, case_id: int) -> datetime | None:
    """When a case's SLA clock last started: its latest reopening, else its opening."""
    value: datetime | None = await conn.fetchval(
        """
        SELECT coalesce(
            (SELECT max(h.at) FROM case_history AS h
             WHERE h.case_id = c.id AND h.action = 'transition'
               AND h.after ->> 'status' = 'reopened'),
            c.created_at
        )
        FROM cases AS c WHERE c.id = $1
        """,
        case_id,
    )
    return value


async def append_history(
    conn: Connection, case_id: int, *, actor: str, action: str, before: Any, after: Any
) -> int:
    """Record one change of a case; return the entry's id."""
    entry_id: int = await conn.fetchval(
        """
        INSERT INTO case_history (case_id, actor, action, before, after)
        VALUES ($1, $2, $3, $4, $5) RETURNING id
        """,
        case_id,
        actor,
        action,
        before,
        after,
    )
    return entry_id


async def list_history(conn: Connection, case_id: int) -> list[HistoryRow]:
    """A case's history, oldest first."""
    rows = await conn.fetch(
        """
        SELECT id, case_id, at, actor, action, before, after
        FROM case_history WHERE case_id = $1 ORDER BY id
        """,
        case_id,
    )
    return [HistoryRow(**dict(row.items())) for row in rows]


async def add_note(conn: Connection, case_id: int, *, author: str, body: str) -> NoteRow:
    """Append a note to a case."""
    row = await conn.fetchrow(
        """
        INSERT INTO case_notes (case_id, author, body) VALUES ($1, $2, $3)
        RETURNING id, case_id, at, author, body
        """,
        case_id,
        author,
        body,
    )
    assert row is not None  # noqa: S101 - RETURNING of an insert always yields the row
    return NoteRow(**dict(row.items()))


async def list_notes(conn: Connection, case_id: int) -> list[NoteRow]:
    """A case's notes, oldest first."""
    rows = await conn.fetch(
        "SELECT id, case_id, at, author, body FROM case_notes WHERE case_id = $1 ORDER BY id",
        case_id,
    )
    return [NoteRow(**dict(row.items())) for row in rows]


async def list_children(conn: Connection, parent_id: int) -> list[CaseRow]:
    """The cases linked to ``parent_id`` as its duplicates, oldest first."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM cases WHERE parent_id = $1 ORDER BY id",  # noqa: S608 - constant
        parent_id,
    )
    return [_case(row) for row in rows]


async def list_cases(
    conn: Connection,
    query: CaseFilter,
    *,
    limit: int,
    after: QueueKey | None = None,
) -> list[CaseRow]:
    """One page of the queue in queue order, after the keyset ``after`` (the last row seen)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
    bbox = query.bbox or (None, None, None, None)
    text = None if query.text is None else "%" + _escape_like(query.text) + "%"
    rows = await conn.fetch(
        f"""
        SELECT {_COLUMNS} FROM cases
        WHERE ($2::text[] IS NULL OR status = ANY($2))
          AND ($3::text IS NULL OR category = $3)
          AND ($4::text IS NULL OR agency = $4)
          AND ($5::text IS NULL OR priority = $5)
          AND ($6::text IS NULL OR channel = $6)
          AND ($7::text IS NULL OR lower(region) = lower($7))
          AND ($8::text IS NULL OR title ILIKE $8 OR description ILIKE $8 OR number ILIKE $8
               OR address ILIKE $8)
          AND ($9::float8 IS NULL OR (lon BETWEEN $9 AND $11 AND lat BETWEEN $10 AND $12))
          AND (NOT $13::boolean OR (sla_due_at < now() AND status = ANY($17::text[])))
          AND ($14::smallint IS NULL OR (priority_rank, sla_due_at, id) > ($14, $15, $16))
          AND ($18::bigint IS NULL OR parent_id = $18)
        ORDER BY priority_rank, sla_due_at, id
        LIMIT $1
        """,  # noqa: S608 - constant column lists
        limit,
        None if query.statuses is None else list(query.statuses),
        query.category,
        query.agency,
        query.priority,
        query.channel,
        query.region,
        text,
        *bbox,
        query.overdue,
        *(after or (None, None, None)),
        list(OPEN_STATUSES),
        query.parent_id,
    )
    return [_case(row) for row in rows]


async def breach_due(conn: Connection) -> list[CaseRow]:
    """Mark every open case whose SLA ran out as breached (once); return them."""
    rows = await conn.fetch(
        f"""
        UPDATE cases SET sla_breached_at = now(), updated_at = now()
        WHERE sla_breached_at IS NULL AND sla_due_at <= now() AND status = ANY($1::text[])
        RETURNING {_COLUMNS}
        """,  # noqa: S608 - constant column lists
        list(OPEN_STATUSES),
    )
    return [_case(row) for row in rows]


@dataclass(frozen=True, slots=True)
class PendingPush:
    """An external case whose status the external system has not been told yet."""

    id: int
    number: str
    external_id: str
    status: str


async def pending_pushes(conn: Connection, source: str, limit: int = 100) -> list[PendingPush]:
    """External cases of ``source`` whose status differs from the last one pushed."""
    rows = await conn.fetch(
        """
        SELECT id, number, external_id, status FROM cases
        WHERE external_source = $1 AND external_id IS NOT NULL
          AND external_pushed IS DISTINCT FROM status
        ORDER BY updated_at, id LIMIT $2
        """,
        source,
        limit,
    )
    return [PendingPush(**dict(row.items())) for row in rows]


async def mark_pushed(conn: Connection, case_id: int, status: str) -> None:
    """Remember that the external system now knows ``status``."""
    await conn.execute("UPDATE cases SET external_pushed = $2 WHERE id = $1", case_id, status)


async def device_location(conn: Connection, device_id: str) -> tuple[float, float] | None:
    """The registered position of a device, when the device registry knows one."""
    if await conn.fetchval("SELECT to_regclass('devices')") is None:
        return None
    row = await conn.fetchrow("SELECT lat, lon FROM devices WHERE id = $1", device_id)
    if row is None or row["lat"] is None or row["lon"] is None:
        return None
    return float(row["lat"]), float(row["lon"])


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _case(row: asyncpg.Record) -> CaseRow:
    return CaseRow(**dict(row.items()))


async def count_open(conn: Connection, *, channel: str | None = None) -> int:
    """Open cases, optionally from one channel (the demo keeps its queue at a readable size)."""
    value = await conn.fetchval(
        "SELECT count(*) FROM cases WHERE status = ANY($1::text[])"
        " AND ($2::text IS NULL OR channel = $2)",
        list(OPEN_STATUSES),
        channel,
    )
    return int(value or 0)
