"""One way in for unit positions from every source, and the batched writer behind it.

Every source (the MQTT position topic, APRS, satellite, NMEA) calls :meth:`PositionIngestor.ingest`
or publishes ``unit.position.reported``, which ends there too. A fix out of range, from the
future, or malformed never reaches the database: it is counted per source and reason, logged
once per source (later ones at DEBUG) and dropped. Accepted fixes wait in a bounded buffer that
the writer copies to the database in batches; when the buffer is full the oldest fix is dropped
(counted as ``overflow``) and an alarm is raised once, since a fresher fix supersedes it anyway.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import logging
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg

from db import positions
from db import units as unit_rows
from ops.core.bus import Overflow
from ops.core.events import ALARM_RAISED, UNIT_POSITION_REPORTED, AlarmRaised, Severity
from ops.core.warnonce import WarnOnce
from ops.units.events import UNIT_MOVED, UnitMoved
from ops.units.model import ID_PATTERN

if TYPE_CHECKING:
    from db.pool import Pool
    from ops.core.adapter import AdapterContext
    from ops.core.bus import Bus
    from ops.core.events import Envelope

_LOGGER = logging.getLogger(__name__)

DEFAULT_BATCH = 2000
DEFAULT_FLUSH = 0.2
DEFAULT_BUFFER = 100_000
DEFAULT_FUTURE_TOLERANCE = 60.0
DRAIN_TIMEOUT = 5.0
_UNIT_ID = re.compile(ID_PATTERN)


class Rejection(enum.StrEnum):
    """Why a position was dropped."""

    MALFORMED = "malformed"
    OUT_OF_RANGE = "out_of_range"
    FUTURE = "future"
    UNKNOWN_UNIT = "unknown_unit"
    OVERFLOW = "overflow"


class PositionIngestor:
    """Validates positions, buffers them and writes them in batches (a supervised adapter)."""

    name = "unit-positions"
    heartbeat_interval: float | None = None

    def __init__(
        self,
        pool: Pool,
        bus: Bus,
        *,
        batch: int = DEFAULT_BATCH,
        flush: float = DEFAULT_FLUSH,
        buffer: int = DEFAULT_BUFFER,
        future_tolerance: float = DEFAULT_FUTURE_TOLERANCE,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._pool = pool
        self._bus = bus
        self._batch = batch
        self._flush = flush
        self._capacity = buffer
        self._tolerance = timedelta(seconds=future_tolerance)
        self._clock = clock
        self._buffer: collections.deque[positions.PositionRow] = collections.deque()
        self._wake = asyncio.Event()
        self._warn = WarnOnce(_LOGGER)
        self._overflow_alarmed = False
        self.accepted: collections.Counter[str] = collections.Counter()
        self.stored = 0
        self.rejected: dict[str, collections.Counter[str]] = {}

    def ingest(self, unit_id: str, lat: float, lon: float, at: datetime, source: str) -> bool:
        """Take one position from any source; False (counted and logged) when it is refused."""
        now = self._clock()
        if not _UNIT_ID.fullmatch(unit_id):
            self.reject(source, Rejection.MALFORMED, f"bad unit id {unit_id!r}")
            return False
        if not _finite(lat) or not _finite(lon) or not -90 <= lat <= 90 or not -180 <= lon <= 180:  # noqa: PLR2004
            self.reject(source, Rejection.OUT_OF_RANGE, f"{unit_id}: lat {lat!r} lon {lon!r}")
            return False
        if at.tzinfo is None:
            self.reject(source, Rejection.MALFORMED, f"{unit_id}: time without a zone")
            return False
        if at > now + self._tolerance:
            self.reject(source, Rejection.FUTURE, f"{unit_id}: fix at {at.isoformat()}")
            return False
        if len(self._buffer) >= self._capacity:
            dropped = self._buffer.popleft()
            self.reject(dropped.source, Rejection.OVERFLOW, "position buffer full")
            self._alarm_overflow()
        self._buffer.append(positions.PositionRow(unit_id, at, float(lat), float(lon), source, now))
        self.accepted[source] += 1
        if len(self._buffer) == 1 or len(self._buffer) >= self._batch:
            self._wake.set()
        return True

    def reject(self, source: str, reason: Rejection, detail: str) -> None:
        """Count a refused position; log the first of each source at WARNING."""
        self.rejected.setdefault(source, collections.Counter())[reason.value] += 1
        if not self._warn(
            source,
            "dropped a position from %s (%s): %s; further ones from %s are only counted",
            source,
            reason.value,
            detail,
            source,
        ):
            _LOGGER.debug("dropped a position from %s (%s): %s", source, reason.value, detail)

    def stats(self) -> dict[str, Any]:
        """Counters per source: accepted, rejected by reason; buffered and stored totals."""
        return {
            "accepted": dict(self.accepted),
            "rejected": {source: dict(counts) for source, counts in self.rejected.items()},
            "buffered": len(self._buffer),
            "stored": self.stored,
        }

    @property
    def pending(self) -> int:
        """Positions waiting for the writer."""
        return len(self._buffer)

    async def run(self, ctx: AdapterContext) -> None:
        """Write batches whenever positions wait; a database error leaves them buffered."""
        if self._buffer:
            self._wake.set()
        ctx.heartbeat()
        while True:
            await self._wake.wait()
            self._wake.clear()
            if len(self._buffer) < self._batch:
                await asyncio.sleep(self._flush)  # gather a batch rather than write one by one
            while self._buffer:
                await self.write_one_batch()
            ctx.heartbeat()

    async def write_one_batch(self) -> int:
        """Write up to one batch now; on failure the rows go back to the buffer's front."""
        rows = [self._buffer.popleft() for _ in range(min(self._batch, len(self._buffer)))]
        if not rows:
            return 0
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                # Units in id order first, as dispatch locks them: no deadlock between the two.
                await unit_rows.lock_in_order(conn, sorted({row.unit_id for row in rows}))
                result = await positions.write_batch(conn, rows)
        except BaseException:
            self._buffer.extendleft(reversed(rows))
            raise
        self.stored += result.stored
        if result.unknown:
            for row in rows:
                if row.unit_id in result.unknown:
                    self.reject(row.source, Rejection.UNKNOWN_UNIT, f"no unit {row.unit_id!r}")
        for row in result.moved:
            self._bus.publish(
                UNIT_MOVED,
                UnitMoved(row.unit_id, row.lat, row.lon, row.at, row.source),
                source="units",
                key=row.unit_id,
            )
        if self._overflow_alarmed and len(self._buffer) < self._capacity // 2:
            self._overflow_alarmed = False
        return len(rows)

    async def drain(self) -> None:
        """Write what is buffered (at shutdown), bounded; what cannot be written is logged."""
        try:
            async with asyncio.timeout(DRAIN_TIMEOUT):
                while self._buffer:
                    await self.write_one_batch()
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            _LOGGER.warning("cannot write buffered positions at shutdown: %s", exc)
        if self._buffer:
            _LOGGER.warning("%d positions not written at shutdown", len(self._buffer))

    def _alarm_overflow(self) -> None:
        if self._overflow_alarmed:
            return
        self._overflow_alarmed = True
        self._bus.publish(
            ALARM_RAISED,
            AlarmRaised(
                source=self.name,
                code="positions.overflow",
                message=f"position buffer full ({self._capacity}); dropping the oldest fixes",
                severity=Severity.WARNING,
            ),
            source="units",
        )


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class PositionFeed:
    """Positions adapters publish on ``unit.position.reported`` go to the ingestor.

    The MQTT app channel, radio, satellite and NMEA all publish there; the ingestor validates,
    counts and batches them. Telemetry: a full queue drops the oldest fix, which a fresher one
    supersedes anyway.
    """

    name = "unit-position-feed"
    heartbeat_interval: float | None = None

    def __init__(self, ingestor: PositionIngestor, *, queue: int = 10_000) -> None:
        self._ingestor = ingestor
        self._queue = queue

    async def run(self, ctx: AdapterContext) -> None:
        """Forward every reported position; the ingestor validates and counts."""
        async with ctx.bus.subscribe(
            UNIT_POSITION_REPORTED,
            maxsize=self._queue,
            overflow=Overflow.DROP_OLDEST,
            name=self.name,
        ) as positions:
            ctx.heartbeat()
            while True:
                envelope: Envelope[Any] | None = await positions.get()
                # Take what else is queued in the same turn: one wake-up per burst, not per fix.
                while envelope is not None:
                    report = envelope.payload
                    self._ingestor.ingest(
                        report.unit_id, report.lat, report.lon, report.at, report.source
                    )
                    envelope = positions.get_nowait()
