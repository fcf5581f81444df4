"""The audit trail: who did what to what, append-only (the table refuses updates and deletes).

``before``, ``after`` and ``detail`` are JSON values; they need a connection from
`db.pool.create_pool` (or set up by `db.pool.init_connection`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import datetime

    import asyncpg

    from db.pool import Connection

MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One entry of the audit trail."""

    id: int
    at: datetime
    actor: str
    action: str
    target: str | None
    before: Any
    after: Any
    detail: Any


async def append(
    conn: Connection,
    *,
    actor: str,
    action: str,
    target: str | None = None,
    before: Any = None,
    after: Any = None,
    detail: Any = None,
) -> int:
    """Record an action; return the entry's id."""
    entry_id: int = await conn.fetchval(
        """
        INSERT INTO audit_log (actor, action, target, before, after, detail)
        VALUES ($1, $2, $3, $4, $5, $6)
        RETURNING id
        """,
        actor,
        action,
        target,
        before,
        after,
        detail,
    )
    return entry_id


async def list_entries(
    conn: Connection,
    *,
    limit: int = 100,
    before_id: int | None = None,
    actor: str | None = None,
    target: str | None = None,
) -> list[AuditRow]:
    """Entries newest first; page on with ``before_id`` set to the last id seen."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
    rows = await conn.fetch(
        """
        SELECT id, at, actor, action, target, before, after, detail
        FROM audit_log
        WHERE ($2::bigint IS NULL OR id < $2)
          AND ($3::text IS NULL OR actor = $3)
          AND ($4::text IS NULL OR target = $4)
        ORDER BY id DESC
        LIMIT $1
        """,
        limit,
        before_id,
        actor,
        target,
    )
    return [_entry(row) for row in rows]


def _entry(row: asyncpg.Record) -> AuditRow:
    return AuditRow(**dict(row.items()))
