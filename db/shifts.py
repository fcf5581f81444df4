"""The shift clock's one row: which shift it applied last."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    from db.pool import Connection


async def lock_applied(conn: Connection) -> tuple[str, datetime] | None:
    """The shift applied last and when it began, locked until the transaction ends (None: never).

    Two hubs on one database take turns here, so a boundary is applied once.
    """
    await conn.execute(
        """
        INSERT INTO shift_clock (shift, started_at) VALUES ('', '-infinity')
        ON CONFLICT (only_row) DO NOTHING
        """
    )
    row = await conn.fetchrow("SELECT shift, started_at FROM shift_clock FOR UPDATE")
    if row is None or row["shift"] == "":
        return None
    return row["shift"], row["started_at"]


async def record_applied(conn: Connection, shift: str, started_at: datetime) -> None:
    """Remember that ``shift``, begun at ``started_at``, has been applied."""
    await conn.execute(
        "UPDATE shift_clock SET shift = $1, started_at = $2, applied_at = now()",
        shift,
        started_at,
    )
