"""The durable history writer: device figures into ``health_samples`` by batched COPY.

It reads ``DEVICE_REPORTED`` through its own bounded subscription with the ALARM policy, so a
database that cannot keep up raises an alarm before anything is dropped. Each device is sampled
at most once per ``sample_every`` seconds (0: every report). Rows older than the retention are
pruned by age, in the background. A batch the database refuses for its data is split until the
refused samples are found; those are dropped and counted (``refused``), the rest is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable

import asyncpg

from db import devices as device_rows
from db import health_samples
from db.health_samples import Sample
from db.pool import Pool
from ops.core.bus import Bus, Overflow, Subscription
from ops.core.events import DEVICE_REPORTED, DeviceReported
from ops.core.warnonce import WarnOnce
from ops.devicehealth.storage import TRANSIENT, refused

_LOGGER = logging.getLogger(__name__)

NAME = "devicehealth:history"
DEFAULT_QUEUE = 100_000
DEFAULT_BATCH = 10_000
DEFAULT_FLUSH = 0.5
PRUNE_EVERY = 3600.0
DB_RETRY = 1.0
#: A failing database makes the writer keep at most this many samples waiting (then the oldest go).
MAX_BACKLOG = 200_000
#: Refused samples are logged once per device, for at most this many devices.
MAX_LOGGED = 10_000


class HistoryWriter:
    """Samples device figures and appends them in batches."""

    def __init__(
        self,
        bus: Bus,
        pool: Pool,
        *,
        state_of: Callable[[str], str],
        sample_every: float,
        retention_days: float,
        flush: float = DEFAULT_FLUSH,
        batch: int = DEFAULT_BATCH,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bus = bus
        self.pool = pool
        self.written = 0
        self.skipped = 0
        self.dropped = 0
        #: Samples the database refused for their data, dropped.
        self.refused = 0
        self._warn = WarnOnce(_LOGGER, MAX_LOGGED)
        self._state_of = state_of
        self._sample_every = sample_every
        self._retention = dt.timedelta(days=retention_days)
        self._flush = flush
        self._batch = batch
        self._clock = clock
        self._buffer: list[Sample] = []
        self._last: dict[str, float] = {}
        self._full = asyncio.Event()

    def subscribe(self) -> Subscription:
        """The writer's subscription (open it before the adapters start)."""
        return self.bus.subscribe(
            DEVICE_REPORTED, maxsize=DEFAULT_QUEUE, overflow=Overflow.ALARM, name=NAME
        )

    async def run(self, subscription: Subscription) -> None:
        """Collect, write and prune until cancelled (one supervised adapter)."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._collect(subscription), name=f"{NAME}:collect")
            group.create_task(self._write_loop(), name=f"{NAME}:write")
            group.create_task(self._prune_loop(), name=f"{NAME}:prune")

    async def flush_now(self) -> int:
        """Write what is buffered now; return how many rows."""
        return await self._write()

    def pending(self) -> int:
        """Samples waiting in the buffer."""
        return len(self._buffer)

    async def _collect(self, subscription: Subscription) -> None:
        seen = 0
        async for envelope in subscription:
            report: DeviceReported = envelope.payload
            seen += 1
            if seen % 1024 == 0:
                await asyncio.sleep(0)
            if not report.figures:
                continue
            now = self._clock()
            last = self._last.get(report.device_id)
            if self._sample_every and last is not None and now - last < self._sample_every:
                self.skipped += 1
                continue
            self._last[report.device_id] = now
            self._buffer.append(
                Sample(
                    report.device_id,
                    envelope.time,
                    self._state_of(report.device_id),
                    dict(report.figures),
                )
            )
            if len(self._buffer) >= self._batch:
                self._full.set()

    async def _write_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._flush):
                    await self._full.wait()
            self._full.clear()
            try:
                await self._write()
            except TRANSIENT as exc:
                _LOGGER.warning("health history could not be written (will retry): %s", exc)
                await asyncio.sleep(DB_RETRY)

    async def _write(self) -> int:
        if not self._buffer:
            return 0
        batch, self._buffer = self._buffer[: self._batch], self._buffer[self._batch :]
        try:
            written = await self._copy(batch)
        except BaseException:
            self._buffer[:0] = batch
            if len(self._buffer) > MAX_BACKLOG:
                over = len(self._buffer) - MAX_BACKLOG
                del self._buffer[:over]
                self.dropped += over
            raise
        self.written += written
        if len(self._buffer) >= self._batch:
            self._full.set()
        return written

    async def _copy(self, batch: list[Sample]) -> int:
        """COPY a batch; on refused data, halve until each refused sample stands alone.

        On any other error the samples not yet written are left in ``batch`` (the caller puts
        them back), so nothing is written twice.
        """
        try:
            async with self.pool.acquire() as conn:
                return await health_samples.copy_samples(conn, batch)
        except asyncpg.PostgresError as exc:
            if not refused(exc):
                raise
        written = 0
        todo = [batch[len(batch) // 2 :], batch[: len(batch) // 2]]
        try:
            while todo:
                part = todo[-1]
                try:
                    async with self.pool.acquire() as conn:
                        written += await health_samples.copy_samples(conn, part)
                except asyncpg.PostgresError as exc:
                    if not refused(exc):
                        raise
                    todo.pop()
                    if len(part) > 1:
                        todo += [part[len(part) // 2 :], part[: len(part) // 2]]
                    else:
                        self._refuse(part[0], exc)
                    continue
                todo.pop()
        except BaseException:
            batch[:] = [sample for part in reversed(todo) for sample in part]
            self.written += written
            raise
        return written

    def _refuse(self, sample: Sample, exc: BaseException) -> None:
        self.refused += 1
        self._warn(
            sample.device_id,
            "device %s: the database refused a health sample (dropped): %s",
            sample.device_id,
            exc,
        )

    async def _prune_loop(self) -> None:
        while True:
            try:
                await self.prune()
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                _LOGGER.warning("health history could not be pruned: %s", exc)
            await asyncio.sleep(PRUNE_EVERY)

    async def prune(self) -> int:
        """Delete samples and device events older than the retention; return the sample count."""
        cutoff = dt.datetime.now(dt.UTC) - self._retention
        async with self.pool.acquire() as conn:
            removed = await health_samples.prune(conn, cutoff)
            await device_rows.prune_events(conn, cutoff)
        if removed:
            _LOGGER.info("pruned %d health samples older than %s", removed, cutoff.isoformat())
        return removed
