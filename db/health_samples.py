"""Health history: many small rows appended by COPY in batches, read by device and time range."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from db import prune as pruning

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


#: How states rank when a bucket keeps its worst: offline, degraded, unknown, online.
STATE_RANK: dict[str, int] = {"online": 0, "unknown": 1, "degraded": 2, "offline": 3}


@dataclass(frozen=True, slots=True)
class Bucket:
    """A device's samples in ``[start, start + width)`` summed up.

    ``figures`` maps each numeric figure to its ``avg``, ``min`` and ``max`` over the bucket's
    samples that carry it; ``state`` is the worst state of the bucket (see ``STATE_RANK``).
    """

    start: dt.datetime
    samples: int
    state: str
    figures: dict[str, dict[str, float]]


async def downsample(
    conn: Connection,
    device_id: str,
    *,
    since: dt.datetime,
    until: dt.datetime,
    width: dt.timedelta,
) -> list[Bucket]:
    """A device's samples in ``[since, until)`` in buckets of ``width`` from ``since``.

    Only buckets holding samples are returned, oldest first. The database does the work: one
    pass over the device's rows in the range, whatever its length.
    """
    ranks = sorted(STATE_RANK.items(), key=lambda item: item[1])
    rank_sql = " ".join(f"WHEN '{name}' THEN {rank}" for name, rank in ranks)
    rows = await conn.fetch(
        f"""
        WITH s AS MATERIALIZED (
            SELECT date_bin($4, at, $2) AS bucket, state, figures FROM health_samples
            WHERE device_id = $1 AND at >= $2 AND at < $3
        ),
        states AS (
            SELECT bucket, count(*) AS samples,
                   max(CASE state {rank_sql} ELSE {STATE_RANK["unknown"]} END) AS worst
            FROM s GROUP BY bucket
        ),
        figures AS (
            SELECT bucket, jsonb_object_agg(
                key, jsonb_build_object('avg', mean, 'min', low, 'max', high)
            ) AS figures
            FROM (
                SELECT s.bucket, f.key, avg(f.value::float8) AS mean,
                       min(f.value::float8) AS low, max(f.value::float8) AS high
                FROM s CROSS JOIN LATERAL jsonb_each(
                    CASE jsonb_typeof(s.figures) WHEN 'object' THEN s.figures ELSE '{{}}' END
                ) AS f
                WHERE jsonb_typeof(f.value) = 'number'
                GROUP BY s.bucket, f.key
            ) AS per_figure
            GROUP BY bucket
        )
        SELECT states.bucket, states.samples, states.worst,
               COALESCE(figures.figures, '{{}}'::jsonb) AS figures
        FROM states LEFT JOIN figures USING (bucket)
        ORDER BY states.bucket
        """,  # noqa: S608 - the CASE arms are the constant STATE_RANK
        device_id,
        since,
        until,
        width,
    )
    names = {rank: name for name, rank in ranks}
    return [
        Bucket(row["bucket"], row["samples"], names[row["worst"]], row["figures"]) for row in rows
    ]


async def prune(
    conn: Connection, older_than: dt.datetime, *, batch: int = pruning.PRUNE_BATCH
) -> int:
    """Delete samples older than a moment in short batches (:func:`db.prune.older_than`)."""
    return await pruning.older_than(conn, "health_samples", older_than, batch=batch)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _jsonb_binary(value: Any) -> bytes:
    """Jsonb's binary form: a version byte (1), then the JSON text."""
    return b"\x01" + _dumps(value).encode()


def _jsonb_from_binary(data: bytes) -> Any:
    return json.loads(data[1:])
