"""Dispatch orders, their assignments, the outbox of copies and the ladder's history.

Row locks taken to change an order, assignment or copy are ``FOR NO KEY UPDATE``: keys never
change, and the weaker lock lets the foreign-key checks of a sender's inserts (which take
``FOR KEY SHARE`` on the order) pass instead of deadlocking against an operator's cancel.

The outbox is drained by the relay with a lease (:func:`claim_leased`): one statement claims
queued copies (``FOR UPDATE SKIP LOCKED``) by setting ``lease_until`` and commits before any
channel sees them, so no transaction waits on a link. A channel that queues the copy extends the
lease to the copy's deadline (:func:`mark_taken`); one that puts it on the air marks it sent
(:func:`mark_sent`). A lease that runs out with no word from the channel lets the copy be
claimed again; at start every lease is released and every sent copy queued again
(:func:`release_leases`, :func:`resend_unacknowledged`), so a copy goes out at most once more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    import asyncpg

    from db.pool import Connection

LIVE_STATES = ("queued", "sent", "delivered")

_ORDER = "id, case_id, message, auto_escalate, status, created_by, created_at, closed_at"
_ASSIGNMENT = (
    "id, order_id, unit_id, status, escalated_from, created_at, acknowledged_at, ack_channel"
)
_OUTBOX = (
    "id, order_id, assignment_id, unit_id, channel, address, step, state, attempts, deadline, "
    "queued_at, sent_at, delivered_at, acknowledged_at, closed_at, last_error, lease_until"
)


@dataclass(frozen=True, slots=True)
class OrderRow:
    """One order."""

    id: str
    case_id: int
    message: str
    auto_escalate: bool
    status: str
    created_by: str
    created_at: datetime
    closed_at: datetime | None


@dataclass(frozen=True, slots=True)
class AssignmentRow:
    """One unit asked to go by an order."""

    id: int
    order_id: str
    unit_id: str
    status: str
    escalated_from: int | None
    created_at: datetime
    acknowledged_at: datetime | None
    ack_channel: str | None


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One copy of an order to one unit over one channel."""

    id: int
    order_id: str
    assignment_id: int
    unit_id: str
    channel: str
    address: str
    step: int
    state: str
    attempts: int
    deadline: datetime
    queued_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    acknowledged_at: datetime | None
    closed_at: datetime | None
    last_error: str | None
    lease_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class EventRow:
    """One step in an order's history."""

    id: int
    order_id: str
    at: datetime
    unit_id: str | None
    channel: str | None
    kind: str
    detail: str


@dataclass(frozen=True, slots=True)
class ClaimedCopy:
    """A queued copy claimed for sending, with what the message needs from order and case."""

    copy: OutboxRow
    message: str
    case_id: int
    case_number: str
    case_title: str
    category: str
    priority: str
    lat: float | None
    lon: float | None


async def insert_order(
    conn: Connection,
    *,
    order_id: str,
    case_id: int,
    message: str,
    auto_escalate: bool,
    created_by: str,
) -> OrderRow:
    """Create an order."""
    row = await conn.fetchrow(
        f"""
        INSERT INTO dispatch_orders (id, case_id, message, auto_escalate, created_by)
        VALUES ($1, $2, $3, $4, $5) RETURNING {_ORDER}
        """,  # noqa: S608 - the column list is a constant
        order_id,
        case_id,
        message,
        auto_escalate,
        created_by,
    )
    assert row is not None  # noqa: S101 - INSERT … RETURNING always returns the row
    return _order(row)


async def get_order(
    conn: Connection, order_id: str, *, for_update: bool = False
) -> OrderRow | None:
    """One order, optionally locked."""
    lock = " FOR NO KEY UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT {_ORDER} FROM dispatch_orders WHERE id = $1{lock}", order_id)  # noqa: S608
    return None if row is None else _order(row)


async def list_orders(
    conn: Connection, *, open_only: bool, case_id: int | None, limit: int
) -> list[OrderRow]:
    """Orders, newest first."""
    rows = await conn.fetch(
        f"""
        SELECT {_ORDER} FROM dispatch_orders
        WHERE (NOT $1 OR status = 'open') AND ($2::bigint IS NULL OR case_id = $2)
        ORDER BY created_at DESC, id LIMIT $3
        """,  # noqa: S608
        open_only,
        case_id,
        limit,
    )
    return [_order(row) for row in rows]


async def set_order_status(conn: Connection, order_id: str, status: str) -> None:
    """Close (or reopen) an order."""
    await conn.execute(
        """
        UPDATE dispatch_orders
        SET status = $2, closed_at = CASE WHEN $2 = 'open' THEN NULL ELSE now() END
        WHERE id = $1
        """,
        order_id,
        status,
    )


async def insert_assignment(
    conn: Connection, order_id: str, unit_id: str, *, escalated_from: int | None = None
) -> AssignmentRow | None:
    """Ask a unit to go; None when this order already asked it."""
    row = await conn.fetchrow(
        f"""
        INSERT INTO dispatch_assignments (order_id, unit_id, escalated_from)
        VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING {_ASSIGNMENT}
        """,  # noqa: S608
        order_id,
        unit_id,
        escalated_from,
    )
    return None if row is None else _assignment(row)


async def get_assignment(
    conn: Connection, order_id: str, unit_id: str, *, for_update: bool = False
) -> AssignmentRow | None:
    """The assignment of a unit in an order, optionally locked."""
    lock = " FOR NO KEY UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {_ASSIGNMENT} FROM dispatch_assignments WHERE order_id = $1 AND unit_id = $2"  # noqa: S608
        + lock,
        order_id,
        unit_id,
    )
    return None if row is None else _assignment(row)


async def get_assignment_by_id(
    conn: Connection, assignment_id: int, *, for_update: bool = False
) -> AssignmentRow | None:
    """One assignment by id, optionally locked."""
    lock = " FOR NO KEY UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {_ASSIGNMENT} FROM dispatch_assignments WHERE id = $1{lock}",  # noqa: S608
        assignment_id,
    )
    return None if row is None else _assignment(row)


async def assignments_of(conn: Connection, order_id: str) -> list[AssignmentRow]:
    """An order's assignments in the order they were made."""
    rows = await conn.fetch(
        f"SELECT {_ASSIGNMENT} FROM dispatch_assignments WHERE order_id = $1 ORDER BY id",  # noqa: S608
        order_id,
    )
    return [_assignment(row) for row in rows]


async def set_assignment_status(
    conn: Connection, assignment_id: int, status: str, *, ack_channel: str | None = None
) -> None:
    """Close an assignment (acknowledged, exhausted, cancelled)."""
    await conn.execute(
        """
        UPDATE dispatch_assignments
        SET status = $2, ack_channel = COALESCE($3, ack_channel),
            acknowledged_at = CASE WHEN $2 = 'acknowledged' THEN now() ELSE acknowledged_at END
        WHERE id = $1
        """,
        assignment_id,
        status,
        ack_channel,
    )


async def queue_copy(
    conn: Connection,
    assignment: AssignmentRow,
    *,
    channel: str,
    address: str,
    step: int,
    deadline: datetime,
) -> OutboxRow:
    """Put one copy of the order in the outbox."""
    row = await conn.fetchrow(
        f"""
        INSERT INTO dispatch_outbox
            (order_id, assignment_id, unit_id, channel, address, step, deadline)
        VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_OUTBOX}
        """,  # noqa: S608
        assignment.order_id,
        assignment.id,
        assignment.unit_id,
        channel,
        address,
        step,
        deadline,
    )
    assert row is not None  # noqa: S101
    return _outbox(row)


async def claim_leased(
    conn: Connection, channels: Sequence[str], limit: int, lease: float
) -> list[ClaimedCopy]:
    """Claim up to ``limit`` queued copies of ``channels`` for ``lease`` seconds; one statement.

    Run it outside a transaction block: it commits at once, so the claim holds no lock while the
    copies travel. A copy leased and not yet heard of by its channel is skipped until the lease
    runs out.
    """
    rows = await conn.fetch(
        f"""
        WITH claimed AS (
            UPDATE dispatch_outbox SET lease_until = now() + make_interval(secs => $3)
            WHERE id IN (
                SELECT id FROM dispatch_outbox
                WHERE channel = ANY($1::text[]) AND state = 'queued'
                  AND (lease_until IS NULL OR lease_until <= now())
                ORDER BY id
                LIMIT $2
                FOR UPDATE SKIP LOCKED
            )
            RETURNING {_OUTBOX}
        )
        SELECT {", ".join("o." + c.strip() for c in _OUTBOX.split(","))},
               d.message, c.id AS case_id, c.number AS case_number, c.title AS case_title,
               c.category, c.priority, c.lat AS case_lat, c.lon AS case_lon
        FROM claimed AS o
        JOIN dispatch_orders AS d ON d.id = o.order_id
        JOIN cases AS c ON c.id = d.case_id
        ORDER BY o.id
        """,  # noqa: S608 - the column lists are constants
        list(channels),
        limit,
        lease,
    )
    return [
        ClaimedCopy(
            copy=_outbox(row),
            message=row["message"],
            case_id=row["case_id"],
            case_number=row["case_number"],
            case_title=row["case_title"],
            category=row["category"],
            priority=row["priority"],
            lat=row["case_lat"],
            lon=row["case_lon"],
        )
        for row in rows
    ]


async def mark_taken(conn: Connection, copy_id: int, attempt: int) -> bool:
    """The channel queued the copy: its lease lasts until the copy's deadline.

    False when the copy is no longer waiting for this attempt (sent, closed, or a stale event).
    """
    row = await conn.fetchrow(
        """
        UPDATE dispatch_outbox SET lease_until = GREATEST(deadline, now())
        WHERE id = $1 AND state = 'queued' AND attempts = $2 - 1
        RETURNING id
        """,
        copy_id,
        attempt,
    )
    return row is not None


async def mark_sent(
    conn: Connection, copy_id: int, attempt: int, deadline: datetime
) -> OutboxRow | None:
    """The channel put the copy on the air; the acknowledgement clock restarts.

    None when nothing changed: the copy was closed meanwhile, or this attempt was already
    recorded (a copy sent twice under one attempt, after a lease ran out, counts once). A copy
    already ``delivered`` (the unit's receipt overtook the channel's report) stays delivered.
    """
    row = await conn.fetchrow(
        f"""
        UPDATE dispatch_outbox
        SET state = CASE WHEN state = 'queued' THEN 'sent' ELSE state END,
            attempts = $2, sent_at = now(), deadline = $3, last_error = NULL, lease_until = NULL
        WHERE id = $1 AND state IN ('queued', 'delivered') AND attempts < $2
        RETURNING {_OUTBOX}
        """,  # noqa: S608
        copy_id,
        attempt,
        deadline,
    )
    return None if row is None else _outbox(row)


async def mark_send_failed(
    conn: Connection, copy_id: int, attempt: int, error: str, *, retry_at: datetime | None
) -> OutboxRow | None:
    """The channel could not send the copy; None when it is no longer queued for this attempt.

    With ``retry_at`` the copy stays queued and is claimed again from then; without, it can never
    go this way, so its deadline is now and the watch moves the ladder on.
    """
    row = await conn.fetchrow(
        f"""
        UPDATE dispatch_outbox
        SET last_error = $3,
            lease_until = COALESCE($4, 'infinity'::timestamptz),
            deadline = CASE WHEN $4::timestamptz IS NULL THEN LEAST(deadline, now())
                            ELSE deadline END
        WHERE id = $1 AND state = 'queued' AND attempts = $2 - 1
        RETURNING {_OUTBOX}
        """,  # noqa: S608
        copy_id,
        attempt,
        error[:500],
        retry_at,
    )
    return None if row is None else _outbox(row)


async def release_leases(conn: Connection) -> int:
    """At start: forget every lease, so copies claimed before a restart go out again."""
    result = await conn.execute(
        "UPDATE dispatch_outbox SET lease_until = NULL "
        "WHERE state = 'queued' AND lease_until IS NOT NULL"
    )
    return int(result.split()[-1])


async def mark_delivered(conn: Connection, assignment_id: int, channel: str) -> OutboxRow | None:
    """The unit's device confirmed receipt over ``channel``; None when no live copy there."""
    row = await conn.fetchrow(
        f"""
        UPDATE dispatch_outbox SET state = 'delivered', delivered_at = now()
        WHERE id = (
            SELECT id FROM dispatch_outbox
            WHERE assignment_id = $1 AND channel = $2 AND state IN ('queued', 'sent')
            ORDER BY id DESC LIMIT 1
        )
        RETURNING {_OUTBOX}
        """,  # noqa: S608
        assignment_id,
        channel,
    )
    return None if row is None else _outbox(row)


async def close_copies(
    conn: Connection, assignment_id: int, *, acked_channel: str | None
) -> list[OutboxRow]:
    """Close every live copy of an assignment; return the ones withdrawn.

    The copy on ``acked_channel`` becomes acknowledged, every other one cancelled (and returned,
    so its channel can be told to drop it).
    """
    rows = await conn.fetch(
        f"""
        UPDATE dispatch_outbox
        SET state = CASE WHEN channel = $2 THEN 'acknowledged' ELSE 'cancelled' END,
            acknowledged_at = CASE WHEN channel = $2 THEN now() ELSE acknowledged_at END,
            closed_at = now(), lease_until = NULL
        WHERE assignment_id = $1 AND state IN ('queued', 'sent', 'delivered')
        RETURNING {_OUTBOX}
        """,  # noqa: S608
        assignment_id,
        acked_channel,
    )
    return [copy for copy in map(_outbox, rows) if copy.state == "cancelled"]


async def due_orders(conn: Connection, now: datetime, limit: int) -> list[str]:
    """Orders with a live copy past its deadline (an unlocked snapshot for the watch)."""
    rows = await conn.fetch(
        """
        SELECT DISTINCT order_id FROM dispatch_outbox
        WHERE state IN ('queued', 'sent', 'delivered') AND deadline <= $1
        LIMIT $2
        """,
        now,
        limit,
    )
    return [row["order_id"] for row in rows]


async def mark_timed_out(conn: Connection, copy_id: int, now: datetime) -> bool:
    """No acknowledgement within the channel's timeout; False when the copy moved on meanwhile.

    The watch picks copies from an unlocked snapshot: a sender may have marked one sent with a
    fresh deadline (or an acknowledgement closed it) since, and that must stand.
    """
    row = await conn.fetchrow(
        """
        UPDATE dispatch_outbox SET state = 'timed_out', closed_at = now(), lease_until = NULL
        WHERE id = $1 AND state IN ('queued', 'sent', 'delivered') AND deadline <= $2
        RETURNING id
        """,
        copy_id,
        now,
    )
    return row is not None


async def resend_unacknowledged(
    conn: Connection, now: datetime, timeouts: dict[str, float], default: float
) -> list[OutboxRow]:
    """Queue again every copy that was sent but not acknowledged (after a restart).

    An acknowledgement may have been lost while the hub was down; the unit recognises the
    order id of the second copy and acts once. Each copy gets a new deadline, ``now`` plus its
    channel's timeout (``default`` for a channel not in ``timeouts``), as when first queued:
    the time the hub was down does not count against the unit.
    """
    rows = await conn.fetch(
        f"""
        UPDATE dispatch_outbox AS o
        SET state = 'queued', lease_until = NULL,
            deadline = $1::timestamptz + make_interval(secs => COALESCE(
                (SELECT t.secs FROM unnest($2::text[], $3::float8[]) AS t (channel, secs)
                 WHERE t.channel = o.channel),
                $4::float8))
        WHERE o.state IN ('sent', 'delivered')
        RETURNING {_OUTBOX}
        """,  # noqa: S608
        now,
        list(timeouts),
        list(timeouts.values()),
        default,
    )
    return [_outbox(row) for row in rows]


async def outbox_of(conn: Connection, order_id: str) -> list[OutboxRow]:
    """Every copy of an order, in the order they were queued."""
    rows = await conn.fetch(
        f"SELECT {_OUTBOX} FROM dispatch_outbox WHERE order_id = $1 ORDER BY id",  # noqa: S608
        order_id,
    )
    return [_outbox(row) for row in rows]


async def add_event(
    conn: Connection,
    order_id: str,
    kind: str,
    *,
    unit_id: str | None = None,
    channel: str | None = None,
    detail: str = "",
) -> None:
    """Append a step to an order's history."""
    await conn.execute(
        """
        INSERT INTO dispatch_events (order_id, kind, unit_id, channel, detail)
        VALUES ($1, $2, $3, $4, $5)
        """,
        order_id,
        kind,
        unit_id,
        channel,
        detail,
    )


async def events_of(conn: Connection, order_id: str) -> list[EventRow]:
    """An order's history, oldest first."""
    rows = await conn.fetch(
        """
        SELECT id, order_id, at, unit_id, channel, kind, detail FROM dispatch_events
        WHERE order_id = $1 ORDER BY id
        """,
        order_id,
    )
    return [
        EventRow(
            r["id"], r["order_id"], r["at"], r["unit_id"], r["channel"], r["kind"], r["detail"]
        )
        for r in rows
    ]


async def open_assignment_of_unit(conn: Connection, unit_id: str) -> AssignmentRow | None:
    """The unit's latest pending or acknowledged assignment in an open order, if any."""
    row = await conn.fetchrow(
        f"""
        SELECT {", ".join("a." + c.strip() for c in _ASSIGNMENT.split(","))}
        FROM dispatch_assignments AS a JOIN dispatch_orders AS d ON d.id = a.order_id
        WHERE a.unit_id = $1 AND a.status IN ('pending', 'acknowledged') AND d.status <> 'cancelled'
        ORDER BY a.id DESC LIMIT 1
        """,  # noqa: S608
        unit_id,
    )
    return None if row is None else _assignment(row)


def _order(row: asyncpg.Record) -> OrderRow:
    return OrderRow(
        id=row["id"],
        case_id=row["case_id"],
        message=row["message"],
        auto_escalate=row["auto_escalate"],
        status=row["status"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        closed_at=row["closed_at"],
    )


def _assignment(row: asyncpg.Record) -> AssignmentRow:
    return AssignmentRow(
        id=row["id"],
        order_id=row["order_id"],
        unit_id=row["unit_id"],
        status=row["status"],
        escalated_from=row["escalated_from"],
        created_at=row["created_at"],
        acknowledged_at=row["acknowledged_at"],
        ack_channel=row["ack_channel"],
    )


def _outbox(row: asyncpg.Record) -> OutboxRow:
    return OutboxRow(
        id=row["id"],
        order_id=row["order_id"],
        assignment_id=row["assignment_id"],
        unit_id=row["unit_id"],
        channel=row["channel"],
        address=row["address"],
        step=row["step"],
        state=row["state"],
        attempts=row["attempts"],
        deadline=row["deadline"],
        queued_at=row["queued_at"],
        sent_at=row["sent_at"],
        delivered_at=row["delivered_at"],
        acknowledged_at=row["acknowledged_at"],
        closed_at=row["closed_at"],
        last_error=row["last_error"],
        lease_until=row["lease_until"],
    )
