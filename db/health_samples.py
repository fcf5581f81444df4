"""Health history: many small rows appended by COPY in batches, read by device and time range."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from db.pool import Connection

MAX_LIMIT = 20_000


@dataclass(frozen=True, slots=True)
class Sample:
    """A device's figures and state at one moment."""

    device_id: str
    at: dt.datetime
    state: str
    figures: dict[str, Any]


async def copy_samples(conn: Connection, samples: Sequence[Sample]) -> int:
    """Append samples with one binary COPY; return how many."""
    if not samples:
        return 0
    records = [(s.device_id, s.at, s.state, s.figures) for s in samples]
    # Binary COPY needs a binary jsonb codec (the pool sets a text one). The binary codec takes
    # and gives the same Python values, so the connection keeps it: nothing to restore, and no
    # statement left to run after a cancelled copy.
    await conn.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        encoder=_jsonb_binary,
        decoder=_jsonb_from_binary,
        format="binary",
    )
    await conn.copy_records_to_table(
        "health_samples", records=records, columns=("device_id", "at", "state", "figures")
    )
    return len(records)


async def query(
    conn: Connection,
    device_id: str,
    *,
    since: dt.datetime,
    until: dt.datetime,
    limit: int = MAX_LIMIT,
) -> list[Sample]:
    """A device's samples in ``[since, until)``, oldest first."""
    rows = await conn.fetch(
        """
        SELECT device_id, at, state, figures FROM health_samples
        WHERE device_id = $1 AND at >= $2 AND at < $3
        ORDER BY at
        LIMIT $4
        """,
        device_id,
        since,
        until,
        limit,
    )
    return [Sample(**dict(row.items())) for row in rows]


PRUNE_BATCH = 10_000


async def prune(conn: Connection, older_than: dt.datetime, *, batch: int = PRUNE_BATCH) -> int:
    """Delete samples older than a moment, ``batch`` rows per statement; return how many.

    Each statement is its own short transaction (call it outside one), so a large prune never
    holds locks or an old snapshot for long, and an interrupted prune keeps what it did.
    """
    removed = 0
    while True:
        status = await conn.execute(
            """
            DELETE FROM health_samples WHERE ctid = ANY(ARRAY(
                SELECT ctid FROM health_samples WHERE at < $1 LIMIT $2
            ))
            """,
            older_than,
            batch,
        )
        count = int(status.split()[-1])
        removed += count
        if count < batch:
            return removed


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _jsonb_binary(value: Any) -> bytes:
    """Jsonb's binary form: a version byte (1), then the JSON text."""
    return b"\x01" + _dumps(value).encode()


def _jsonb_from_binary(data: bytes) -> Any:
    return json.loads(data[1:])
