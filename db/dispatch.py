"""Dispatch orders, their assignments, the outbox of copies and the ladder's history.

Row locks taken to change an order, assignment or copy are ``FOR NO KEY UPDATE``: keys never
change, and the weaker lock lets the foreign-key checks of a sender's inserts (which take
``FOR KEY SHARE`` on the order) pass instead of deadlocking against an operator's cancel.

The outbox is drained by channel senders with ``FOR UPDATE SKIP LOCKED``: a sender claims a
queued copy, sends it and marks it sent in one transaction, so a crash before the commit leaves
the copy queued (sent at most once more), and a crash after it leaves it sent (not sent again
unless :func:`resend_unacknowledged` is called at start).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
    "queued_at, sent_at, delivered_at, acknowledged_at, closed_at, last_error"
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


async def claim_queued(conn: Connection, channel: str, limit: int) -> list[ClaimedCopy]:
    """Lock queued copies of one channel for sending (call inside a transaction)."""
    rows = await conn.fetch(
        f"""
        SELECT {", ".join("o." + c.strip() for c in _OUTBOX.split(","))},
               d.message, c.id AS case_id, c.number AS case_number, c.title AS case_title,
               c.category, c.priority, c.lat AS case_lat, c.lon AS case_lon
        FROM dispatch_outbox AS o
        JOIN dispatch_orders AS d ON d.id = o.order_id
        JOIN cases AS c ON c.id = d.case_id
        WHERE o.channel = $1 AND o.state = 'queued'
        ORDER BY o.id
        LIMIT $2
        FOR UPDATE OF o SKIP LOCKED
        """,  # noqa: S608
        channel,
        limit,
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


async def mark_sent(conn: Connection, copy_id: int, deadline: datetime) -> None:
    """A sender handed the copy to its channel; the acknowledgement clock restarts."""
    await conn.execute(
        """
        UPDATE dispatch_outbox
        SET state = 'sent', attempts = attempts + 1, sent_at = now(), deadline = $2,
            last_error = NULL
        WHERE id = $1
        """,
        copy_id,
        deadline,
    )


async def mark_send_failed(conn: Connection, copy_id: int, error: str) -> None:
    """The channel refused the copy for now; it stays queued until its deadline."""
    await conn.execute(
        "UPDATE dispatch_outbox SET last_error = $2 WHERE id = $1", copy_id, error[:500]
    )


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


async def close_copies(conn: Connection, assignment_id: int, *, acked_channel: str | None) -> None:
    """Close every live copy of an assignment.

    The copy on ``acked_channel`` becomes acknowledged, every other one cancelled.
    """
    await conn.execute(
        """
        UPDATE dispatch_outbox
        SET state = CASE WHEN channel = $2 THEN 'acknowledged' ELSE 'cancelled' END,
            acknowledged_at = CASE WHEN channel = $2 THEN now() ELSE acknowledged_at END,
            closed_at = now()
        WHERE assignment_id = $1 AND state IN ('queued', 'sent', 'delivered')
        """,
        assignment_id,
        acked_channel,
    )


async def due_copies(conn: Connection, now: datetime, limit: int) -> list[OutboxRow]:
    """Live copies past their deadline, locked for the watcher (inside a transaction)."""
    rows = await conn.fetch(
        f"""
        SELECT {_OUTBOX} FROM dispatch_outbox
        WHERE state IN ('queued', 'sent', 'delivered') AND deadline <= $1
        ORDER BY deadline, id LIMIT $2
        FOR UPDATE SKIP LOCKED
        """,  # noqa: S608
        now,
        limit,
    )
    return [_outbox(row) for row in rows]


async def mark_timed_out(conn: Connection, copy_id: int, now: datetime) -> bool:
    """No acknowledgement within the channel's timeout; False when the copy moved on meanwhile.

    The watch picks copies from an unlocked snapshot: a sender may have marked one sent with a
    fresh deadline (or an acknowledgement closed it) since, and that must stand.
    """
    row = await conn.fetchrow(
        """
        UPDATE dispatch_outbox SET state = 'timed_out', closed_at = now()
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
        SET state = 'queued',
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
    )
