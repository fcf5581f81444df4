"""Deleting old rows of a write-heavy table in short batches."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import datetime as dt

    from db.pool import Connection

PRUNE_BATCH: Final = 10_000
#: The tables pruned by age and their time column; the SQL names come only from here.
_PRUNABLE: Final = {"health_samples": "at", "device_events": "at"}


async def older_than(
    conn: Connection, table: str, cutoff: dt.datetime, *, batch: int = PRUNE_BATCH
) -> int:
    """Delete rows of ``table`` older than ``cutoff``, ``batch`` per statement; return how many.

    Each statement is its own short transaction (call it outside one), so a large prune never
    holds locks or an old snapshot for long, and an interrupted prune keeps what it did.
    """
    column = _PRUNABLE[table]
    removed = 0
    while True:
        status = await conn.execute(
            f"""
            DELETE FROM {table} WHERE ctid = ANY(ARRAY(
                SELECT ctid FROM {table} WHERE {column} < $1 LIMIT $2
            ))
            """,  # noqa: S608 - table and column come from _PRUNABLE
            cutoff,
            batch,
        )
        count = int(status.split()[-1])
        removed += count
        if count < batch:
            return removed
