"""The radio log writer: ``radio.frame`` lines into ``radio_log`` in batches, then ``radio.logged``.

It reads its own bounded subscription with the ALARM policy, so a database that cannot keep up
raises an alarm at the high-water mark, well before the oldest lines are dropped. A batch is one
INSERT statement; only after its commit are the stored rows (with their ids) announced to the
console. A batch the database refuses for its data is written line by line, and the refused
lines alone are dropped and counted. While the database is away the writer raises (the
supervisor backs off) and keeps its batch: nothing taken from the bus is lost by a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Final

import asyncpg

from db import radio as radio_rows
from db.radio import NewLogRow
from ops.core.bus import Bus, Overflow, Subscription
from ops.core.warnonce import WarnOnce
from ops.radio.events import RADIO_LOGGED, RadioLogged
from radio.events import RADIO_FRAME, RadioFrameLogged

if TYPE_CHECKING:
    from db.pool import Pool
    from ops.core.adapter import AdapterContext
    from ops.core.events import Envelope

_LOGGER = logging.getLogger(__name__)

NAME: Final = "radio-log"
#: Lines waiting for the database; the alarm rings at the bus's high-water mark of this.
DEFAULT_QUEUE: Final = 20_000
DEFAULT_BATCH: Final = 500
#: Seconds a line may wait for others to share its INSERT.
DEFAULT_FLUSH: Final = 0.25
#: Errors that come from a line's content: writing it again can never succeed.
REFUSED: Final[tuple[type[asyncpg.PostgresError], ...]] = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.ProgramLimitExceededError,
)
#: Refused lines are logged once per gateway, for at most this many gateways.
MAX_LOGGED: Final = 100
#: Longest text kept of one line (an info field is at most 256 bytes; this is for garbage).
MAX_TEXT: Final = 2000


class LogWriter:
    """Appends every ``radio.frame`` line to the radio log (a supervised adapter)."""

    name = NAME
    heartbeat_interval: float | None = None

    def __init__(
        self,
        pool: Pool,
        bus: Bus,
        *,
        queue: int = DEFAULT_QUEUE,
        batch: int = DEFAULT_BATCH,
        flush: float = DEFAULT_FLUSH,
    ) -> None:
        self._pool = pool
        self._bus = bus
        self._batch_size = batch
        self._flush = flush
        self._batch: list[NewLogRow] = []
        self._warn = WarnOnce(_LOGGER, MAX_LOGGED)
        self._lock = asyncio.Lock()
        self.written = 0
        self.refused = 0
        # Open from construction on, so no line logged before the writer first runs is missed.
        self._subscription: Subscription = bus.subscribe(
            RADIO_FRAME, maxsize=queue, overflow=Overflow.ALARM, name=NAME
        )

    @property
    def dropped(self) -> int:
        """Lines the bus dropped because the writer fell too far behind."""
        return self._subscription.dropped

    def pending(self) -> int:
        """Lines taken or waiting, not yet stored."""
        return len(self._batch) + self._subscription.qsize()

    async def drain(self) -> None:
        """Write what is waiting (at shutdown, while the database is still there)."""
        try:
            await self.flush_now()
        except _TRANSIENT as exc:
            _LOGGER.warning(
                "radio log: %d line(s) not written at shutdown: %s", self.pending(), exc
            )

    async def run(self, ctx: AdapterContext) -> None:  # noqa: ARG002 - the adapter contract
        """Collect lines and write them in batches, until cancelled."""
        while True:
            if not self._batch:
                self._batch.append(_row_of(await self._subscription.get()))
            self._fill()
            if len(self._batch) < self._batch_size:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._flush):
                        while len(self._batch) < self._batch_size:
                            self._batch.append(_row_of(await self._subscription.get()))
                            self._fill()
            await self.flush_now()

    async def flush_now(self) -> int:
        """Write the lines taken so far and those waiting; return how many were stored."""
        async with self._lock:
            stored = 0
            self._fill()
            while self._batch:
                stored += await self._write(self._batch)
                self._batch = []
                self._fill()
            return stored

    def _fill(self) -> None:
        while len(self._batch) < self._batch_size:
            envelope = self._subscription.get_nowait()
            if envelope is None:
                return
            self._batch.append(_row_of(envelope))

    async def _write(self, batch: list[NewLogRow]) -> int:
        try:
            rows = await self._insert(batch)
        except REFUSED:
            rows = []
            for line in batch:
                try:
                    rows += await self._insert([line])
                except REFUSED as exc:
                    self.refused += 1
                    self._warn(
                        line.gateway,
                        "radio log of gateway %s refused a line (dropped): %s",
                        line.gateway,
                        exc,
                    )
        self.written += len(rows)
        if rows:
            self._bus.publish(RADIO_LOGGED, RadioLogged(tuple(rows)), source=NAME)
        return len(rows)

    async def _insert(self, batch: list[NewLogRow]) -> list[radio_rows.LogRow]:
        async with self._pool.acquire() as conn, conn.transaction():
            return await radio_rows.insert_batch(conn, batch)


_TRANSIENT: Final = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


def _row_of(envelope: Envelope[RadioFrameLogged]) -> NewLogRow:
    """A bus line as a row the database takes (no NUL characters, bounded text)."""
    line = envelope.payload
    return NewLogRow(
        at=line.at,
        gateway=_clean(line.gateway, 64),
        direction=line.direction,
        kind=line.kind,
        callsign=_clean(line.callsign, 64),
        text=_clean(line.text, MAX_TEXT),
        tnc2=_clean(line.tnc2, MAX_TEXT),
        channel=None if line.channel is None else _clean(line.channel, 64),
        number=None if line.number is None else _clean(line.number, 16),
        attempt=line.attempt,
        unit_id=line.unit_id,
        order_id=line.order_id,
        copy_id=line.copy_id,
        case_id=line.case_id,
    )


def _clean(value: str, limit: int) -> str:
    return value.replace("\x00", "\ufffd")[:limit]
