"""The radio log: frames heard and sent, appended in batches, read back filtered and paged by id.

Pages are keyset pages, newest first: ``before_id`` is the last id of the previous page, so a
page never shifts while new frames arrive. A unit's thread (its numbered messages with their
tries and whether the unit acknowledged them, and what it sent the room) is computed here in SQL
from the log alone, so it shows what went over the air, whatever dispatch made of it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    import asyncpg

    from db.pool import Connection

#: The columns of a log row, in the order of the CSV export.
COLUMNS: Final = (
    "id",
    "at",
    "gateway",
    "channel",
    "direction",
    "kind",
    "callsign",
    "text",
    "tnc2",
    "number",
    "attempt",
    "unit_id",
    "order_id",
    "copy_id",
    "case_id",
)
_SELECT = ", ".join(COLUMNS)
#: Rows fetched per round trip while an export streams.
CURSOR_PREFETCH = 500
#: A thread shows at most this many messages each way.
THREAD_LIMIT = 200
#: The reply-ack of a message heard (``…{MM}AA`` at the end of its info): it acks number AA.
REPLY_ACK: Final = r"\{[A-Za-z0-9]{1,5}\}([A-Za-z0-9]{1,5})\s*$"


@dataclass(frozen=True, slots=True)
class NewLogRow:
    """A line to append (the log writer's input)."""

    at: dt.datetime
    gateway: str
    direction: str
    kind: str
    callsign: str
    text: str
    tnc2: str = ""
    channel: str | None = None
    number: str | None = None
    attempt: int | None = None
    unit_id: str | None = None
    order_id: str | None = None
    copy_id: int | None = None
    case_id: int | None = None


@dataclass(frozen=True, slots=True)
class LogRow:
    """A stored line of the radio log."""

    id: int
    at: dt.datetime
    gateway: str
    channel: str | None
    direction: str
    kind: str
    callsign: str
    text: str
    tnc2: str
    number: str | None
    attempt: int | None
    unit_id: str | None
    order_id: str | None
    copy_id: int | None
    case_id: int | None


@dataclass(frozen=True, slots=True)
class LogFilter:
    """What to show of the log; every field set narrows it.

    ``callsign`` with an SSID (``YB0ABC-7``) matches that station only; without one it matches
    the callsign with any SSID. ``since`` is inclusive, ``until`` exclusive.
    """

    gateway: str | None = None
    callsign: str | None = None
    unit_id: str | None = None
    direction: str | None = None
    kind: str | None = None
    order_id: str | None = None
    case_id: int | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    before_id: int | None = None


@dataclass(frozen=True, slots=True)
class ThreadMessage:
    """One numbered message the room sent a unit, with its tries and what became of it.

    ``state``: ``acked`` (the unit's ack with this number came back), ``rejected`` (a reject
    came back), ``retried`` (sent more than once, no answer yet) or ``sent``.
    """

    number: str
    callsign: str
    text: str
    tries: int
    first_sent: dt.datetime
    last_sent: dt.datetime
    state: str
    answered_at: dt.datetime | None
    order_id: str | None
    case_id: int | None
    copy_id: int | None


@dataclass(frozen=True, slots=True)
class Thread:
    """A unit's conversation over radio: what the room sent (newest first), what it heard."""

    unit_id: str
    callsigns: tuple[str, ...]
    outgoing: list[ThreadMessage]
    incoming: list[LogRow]


async def insert_batch(conn: Connection, rows: Sequence[NewLogRow]) -> list[LogRow]:
    """Append ``rows`` with one statement; return them as stored (with their ids), in order."""
    if not rows:
        return []
    columns = [[getattr(row, f.name) for row in rows] for f in fields(NewLogRow)]
    records = await conn.fetch(
        f"""
        INSERT INTO radio_log (
            at, gateway, direction, kind, callsign, text, tnc2, channel, number, attempt,
            unit_id, order_id, copy_id, case_id
        )
        SELECT at, gateway, direction, kind, callsign, text, tnc2, channel, number, attempt,
               unit_id, order_id, copy_id, case_id
        FROM unnest(
            $1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::text[], $8::text[], $9::text[], $10::integer[], $11::text[], $12::text[],
            $13::bigint[], $14::bigint[]
        ) WITH ORDINALITY AS batch (
            at, gateway, direction, kind, callsign, text, tnc2, channel, number, attempt,
            unit_id, order_id, copy_id, case_id, ord
        )
        ORDER BY ord
        RETURNING {_SELECT}
        """,  # noqa: S608 -- the column list is a constant
        *columns,
    )
    return sorted((_row(record) for record in records), key=lambda row: row.id)


async def query(conn: Connection, where: LogFilter, *, limit: int) -> list[LogRow]:
    """One page of the log, newest first."""
    clause, args = _where(where)
    records = await conn.fetch(
        f"SELECT {_SELECT} FROM radio_log {clause} ORDER BY id DESC LIMIT ${len(args) + 1}",  # noqa: S608
        *args,
        limit,
    )
    return [_row(record) for record in records]


async def iterate(
    conn: Connection, where: LogFilter, *, limit: int | None = None
) -> AsyncIterator[LogRow]:
    """Every matching row, newest first, through a cursor (call inside a transaction)."""
    clause, args = _where(where)
    sql = f"SELECT {_SELECT} FROM radio_log {clause} ORDER BY id DESC"  # noqa: S608
    if limit is not None:
        sql += f" LIMIT ${len(args) + 1}"
        args.append(limit)
    async for record in conn.cursor(sql, *args, prefetch=CURSOR_PREFETCH):
        yield _row(record)


async def unit_callsigns(conn: Connection, unit_ids: Sequence[str] | None = None) -> dict[str, str]:
    """The radio addresses of ``unit_ids`` (None: of every unit): upper-case callsign -> unit id."""
    records = await conn.fetch(
        """
        SELECT upper(c->>'address') AS callsign, u.id
        FROM units u, jsonb_array_elements(u.channels) AS c
        WHERE c->>'channel' = 'radio' AND c->>'address' IS NOT NULL
          AND ($1::text[] IS NULL OR u.id = ANY($1::text[]))
        ORDER BY u.id
        """,
        None if unit_ids is None else list(unit_ids),
    )
    return {record["callsign"]: record["id"] for record in records}


async def thread(conn: Connection, unit_id: str, *, limit: int = THREAD_LIMIT) -> Thread | None:
    """A unit's thread, or None when there is no such unit.

    Outgoing messages are grouped by (copy, number): each logged transmission is one try. An ack
    or reject counts for a message when it comes from the station the message went to (or is
    logged against the unit), carries its number (or, for a message heard, acks it in the
    reply-ack form ``{MM}AA``), and arrives after its first try and before the next message
    that reused the number.
    """
    callsigns = await conn.fetchval(
        """
        SELECT coalesce(array_agg(upper(c->>'address') ORDER BY upper(c->>'address'))
                        FILTER (WHERE c->>'channel' = 'radio'), '{}')
        FROM units u LEFT JOIN LATERAL jsonb_array_elements(u.channels) AS c ON true
        WHERE u.id = $1
        GROUP BY u.id
        """,
        unit_id,
    )
    if callsigns is None:
        return None
    outgoing = await conn.fetch(
        """
        WITH sent AS (
            SELECT * FROM radio_log
            WHERE direction = 'out' AND kind = 'message' AND number IS NOT NULL
              AND (unit_id = $1 OR upper(callsign) = ANY($2::text[]))
        ),
        messages AS (
            SELECT number,
                   upper((array_agg(callsign ORDER BY id))[1]) AS callsign,
                   (array_agg(text ORDER BY id))[1] AS text,
                   count(*)::integer AS tries,
                   min(at) AS first_sent,
                   max(at) AS last_sent,
                   max(id) AS last_id,
                   (array_agg(order_id ORDER BY id) FILTER (WHERE order_id IS NOT NULL))[1]
                       AS order_id,
                   (array_agg(case_id ORDER BY id) FILTER (WHERE case_id IS NOT NULL))[1]
                       AS case_id,
                   copy_id
            FROM sent
            GROUP BY copy_id, number
        ),
        spans AS (
            SELECT *, lead(first_sent) OVER (
                PARTITION BY callsign, number ORDER BY first_sent
            ) AS reused_at
            FROM messages
        ),
        answered AS (
            SELECT s.*,
                   (SELECT min(a.at) FROM radio_log a
                    WHERE a.direction = 'in'
                      AND ((a.kind = 'ack' AND a.number = s.number)
                           OR (a.kind = 'message'
                               AND substring(a.tnc2 FROM $4) = s.number))
                      AND (upper(a.callsign) = s.callsign OR a.unit_id = $1)
                      AND a.at >= s.first_sent
                      AND a.at < coalesce(s.reused_at, 'infinity')) AS acked_at,
                   (SELECT min(r.at) FROM radio_log r
                    WHERE r.direction = 'in' AND r.kind = 'reject' AND r.number = s.number
                      AND (upper(r.callsign) = s.callsign OR r.unit_id = $1)
                      AND r.at >= s.first_sent
                      AND r.at < coalesce(s.reused_at, 'infinity')) AS rejected_at
            FROM spans s
        )
        SELECT number, callsign, text, tries, first_sent, last_sent, order_id, case_id, copy_id,
               CASE WHEN acked_at IS NOT NULL THEN 'acked'
                    WHEN rejected_at IS NOT NULL THEN 'rejected'
                    WHEN tries > 1 THEN 'retried'
                    ELSE 'sent' END AS state,
               coalesce(acked_at, rejected_at) AS answered_at
        FROM answered
        ORDER BY last_id DESC
        LIMIT $3
        """,
        unit_id,
        list(callsigns),
        limit,
        REPLY_ACK,
    )
    incoming = await conn.fetch(
        f"""
        SELECT {_SELECT} FROM radio_log
        WHERE direction = 'in' AND kind = 'message'
          AND (unit_id = $1 OR upper(callsign) = ANY($2::text[]))
        ORDER BY id DESC
        LIMIT $3
        """,  # noqa: S608 -- the column list is a constant
        unit_id,
        list(callsigns),
        limit,
    )
    return Thread(
        unit_id=unit_id,
        callsigns=tuple(callsigns),
        outgoing=[ThreadMessage(**dict(record.items())) for record in outgoing],
        incoming=[_row(record) for record in incoming],
    )


#: Each filter field and its condition on ``radio_log`` (``$?`` is its parameter).
_CONDITIONS: Final = (
    ("gateway", "gateway = $?"),
    ("unit_id", "unit_id = $?"),
    ("direction", "direction = $?"),
    ("kind", "kind = $?"),
    ("order_id", "order_id = $?"),
    ("case_id", "case_id = $?"),
    ("since", "at >= $?"),
    ("until", "at < $?"),
    ("before_id", "id < $?"),
)


def _where(where: LogFilter) -> tuple[str, list[Any]]:
    conditions: list[str] = []
    args: list[Any] = []
    wanted = [(getattr(where, name), condition) for name, condition in _CONDITIONS]
    if where.callsign is not None:
        call = where.callsign.upper()
        by_base = "split_part(upper(callsign), '-', 1) = $?"
        wanted.append((call, "upper(callsign) = $?" if "-" in call else by_base))
    for value, condition in wanted:
        if value is not None:
            args.append(value)
            conditions.append(condition.replace("$?", f"${len(args)}"))
    return ("WHERE " + " AND ".join(conditions) if conditions else ""), args


def _row(record: asyncpg.Record) -> LogRow:
    return LogRow(**dict(record.items()))
