"""Persistence: what evaluation decided, stored in batches; alarm changes published once committed.

The persister wakes when evaluation queues a change (or every ``flush`` seconds), gathers a little
more, and commits the batch in one transaction: devices seen or announced, states, device events,
alarms raised and cleared, and the escalation of alarms left unacknowledged. Last-seen times and
figures of devices without a state change are stored every ``touch_every`` seconds.

A database outage only delays the persister: it keeps its batch and retries. A batch the database
refuses for its data (a value PostgreSQL rejects) is stored again device by device, and only the
refused devices' part is dropped and counted, so one bad row never blocks the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping, Sequence

import asyncpg

from db import alarms as alarm_rows
from db import devices as device_rows
from db.alarms import AlarmRow
from db.devices import StateUpdate
from db.pool import Connection, Pool
from ops.core.bus import Bus
from ops.core.config import DevicesConfig
from ops.core.warnonce import WarnOnce
from ops.devicehealth.changes import AlarmAction, Batch, Pending
from ops.devicehealth.evaluation import SOURCE, DeviceEntry, utc_now
from ops.devicehealth.events import DEVICE_ALARM, AlarmChanged
from ops.devicehealth.storage import TRANSIENT, refused

_LOGGER = logging.getLogger(__name__)

DEFAULT_FLUSH = 0.25
#: Last-seen times and figures of devices without a state change are stored this often.
DEFAULT_TOUCH_EVERY = 60.0
DB_RETRY = 1.0
ESCALATE_TO = "supervisor"
#: Devices whose refused data is logged by name; past this, refusals are only counted.
MAX_LOGGED_DEVICES = 100


class HealthPersister:
    """Stores :class:`Pending` changes and keeps the open alarms as committed."""

    def __init__(
        self,
        bus: Bus,
        pool: Pool,
        config: DevicesConfig,
        pending: Pending,
        devices: Mapping[str, DeviceEntry],
        *,
        flush: float = DEFAULT_FLUSH,
        touch_every: float = DEFAULT_TOUCH_EVERY,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self.bus = bus
        self.pool = pool
        self.config = config
        self.pending = pending
        self.devices = devices
        #: Stored changes the database refused for their data, dropped (see the module text).
        self.refused = 0
        self.open_alarms: dict[int, AlarmRow] = {}
        self._flush = flush
        self._touch_every = touch_every
        self._clock = clock
        self._wall_clock = wall_clock
        self._warn = WarnOnce(_LOGGER, MAX_LOGGED_DEVICES)
        self._in_flight = False

    async def run(self) -> None:
        """Store changes in batches and escalate due alarms, until cancelled."""
        last_touch = self._clock()
        last_escalation = 0.0
        wake = self.pending.wake
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._flush):
                    await wake.wait()
            wake.clear()
            await asyncio.sleep(self._flush / 4)  # gather a little more into this batch
            now = self._clock()
            if now - last_touch >= self._touch_every:
                last_touch = now
                self._touch()
            batch = self.pending.take()
            escalate = now - last_escalation >= min(1.0, self.config.escalate_after / 4)
            if not batch and not escalate:
                continue
            self._in_flight = True
            try:
                changed = await self._store(batch, escalate=escalate)
            except TRANSIENT as exc:
                _LOGGER.warning("device health could not store a batch (will retry): %s", exc)
                self.pending.put_back(batch)
                await asyncio.sleep(DB_RETRY)
                continue
            except BaseException:
                # Rolled back: the restarted persister (or the final flush at shutdown) stores it.
                self.pending.put_back(batch)
                raise
            finally:
                self._in_flight = False
            if escalate:
                last_escalation = now
            for row, action in changed:
                self.alarm_changed(row, action)

    async def persist_now(self) -> None:
        """Store everything queued so far at once (at shutdown, when the loops are stopped)."""
        self._touch()
        batch = self.pending.take()
        if batch:
            for row, action in await self._store(batch, escalate=False):
                self.alarm_changed(row, action)

    async def wait_idle(self) -> None:
        """Wait until everything known so far is committed (for tests and benches)."""
        self._touch()
        while self.pending.batch or self._in_flight:
            self.pending.queued()
            await asyncio.sleep(self._flush / 2)

    def alarm_changed(self, row: AlarmRow, action: str) -> None:
        """Follow and publish an alarm change that is committed."""
        if row.cleared_at is None:
            self.open_alarms[row.id] = row
        else:
            self.open_alarms.pop(row.id, None)
        self.bus.publish(
            DEVICE_ALARM,
            AlarmChanged(
                id=row.id,
                device_id=row.device_id,
                code=row.code,
                severity=row.severity,
                message=row.message,
                status=row.status,
                action=action,
                raised_at=row.raised_at,
                times=row.times,
                acknowledged_by=row.acknowledged_by,
                acknowledged_at=row.acknowledged_at,
                escalated_at=row.escalated_at,
                cleared_at=row.cleared_at,
                escalated_to=ESCALATE_TO if row.escalated_at is not None else None,
            ),
            source=SOURCE,
            key=str(row.id),
        )

    # -- helpers ----------------------------------------------------------------------------------

    def _touch(self) -> None:
        batch = self.pending.batch
        for device_id in self.pending.touched:
            entry = self.devices.get(device_id)
            if entry is not None:  # the latest figures, even over a queued state change
                batch.states[device_id] = StateUpdate(
                    device_id,
                    entry.health.state.value,
                    entry.health.reason,
                    dict(entry.health.figures),
                    entry.last_seen_at,
                )
        self.pending.touched.clear()

    async def _store(self, batch: Batch, *, escalate: bool) -> list[tuple[AlarmRow, str]]:
        """Commit a batch; if its data is refused, commit it device by device instead.

        Raises what is not about the data (a lost connection), with nothing of the batch
        committed, so the caller keeps the whole batch and retries.
        """
        try:
            return await self._commit(batch, escalate=escalate)
        except asyncpg.PostgresError as exc:
            if not refused(exc):
                raise
        return await self._store_each(batch, escalate=escalate)

    async def _store_each(self, batch: Batch, *, escalate: bool) -> list[tuple[AlarmRow, str]]:
        changed: list[tuple[AlarmRow, str]] = []
        parts = batch.by_device()
        done: set[str] = set()
        try:
            for device_id, part in parts.items():
                try:
                    changed.extend(await self._commit(part, escalate=False))
                except asyncpg.PostgresError as exc:
                    if not refused(exc):
                        raise
                    self._refused(device_id, exc)
                done.add(device_id)
            if escalate:
                changed.extend(await self._commit(Batch(), escalate=True))
        except BaseException:
            # Committed parts are published now; what is left goes back to the caller.
            for row, action in changed:
                self.alarm_changed(row, action)
            left = Batch()
            for device_id, part in parts.items():
                if device_id not in done:
                    left.extend(part)
            batch.replace(left)
            raise
        return changed

    def _refused(self, device_id: str, exc: BaseException) -> None:
        self.refused += 1
        self._warn(
            (device_id, "refused"),
            "device %s: the database refused its health data (dropped): %s",
            device_id,
            exc,
        )

    async def _commit(self, batch: Batch, *, escalate: bool) -> list[tuple[AlarmRow, str]]:
        changed: list[tuple[AlarmRow, str]] = []
        async with self.pool.acquire() as conn, conn.transaction():
            await device_rows.register_seen(conn, list(batch.seen.values()))
            for note in batch.announced.values():
                await device_rows.announce(
                    conn,
                    device_id=note.device_id,
                    kind=note.kind,
                    name=note.name,
                    site=note.site,
                    lat=note.lat,
                    lon=note.lon,
                    tags=note.tags,
                    attributes=(
                        {**note.attributes, "commands": list(note.commands)}
                        if note.commands
                        else note.attributes
                    ),
                    adapter=note.adapter,
                )
            await device_rows.store_states(conn, list(batch.states.values()))
            for action in batch.alarms:
                changed.extend(await self._apply_alarm(conn, action))
            await device_rows.add_events(conn, batch.events)
            if escalate:
                due = self._wall_clock() - dt.timedelta(seconds=self.config.escalate_after)
                for row in await alarm_rows.escalate_due(conn, older_than=due):
                    await device_rows.add_events(
                        conn,
                        [
                            (
                                row.device_id,
                                self._wall_clock(),
                                "alarm.escalated",
                                {"alarm": row.id, "to": ESCALATE_TO},
                            )
                        ],
                    )
                    changed.append((row, "escalated"))
        return changed

    async def _apply_alarm(
        self, conn: Connection, action: AlarmAction
    ) -> Sequence[tuple[AlarmRow, str]]:
        if action.action == "raise":
            row, new = await alarm_rows.raise_alarm(
                conn,
                device_id=action.device_id,
                code=action.code,
                severity=action.severity
                if action.severity in {"info", "warning", "critical"}
                else "warning",
                message=action.message[:1000],
            )
            if new:
                await device_rows.add_events(
                    conn,
                    [
                        (
                            row.device_id,
                            self._wall_clock(),
                            "alarm.raised",
                            {"alarm": row.id, "code": row.code},
                        )
                    ],
                )
            return [(row, "raised" if new else "repeated")]
        cleared = await alarm_rows.clear_alarm(conn, device_id=action.device_id, code=action.code)
        if cleared is None:
            return []
        await device_rows.add_events(
            conn,
            [
                (
                    cleared.device_id,
                    self._wall_clock(),
                    "alarm.cleared",
                    {"alarm": cleared.id, "code": cleared.code},
                )
            ],
        )
        return [(cleared, "cleared")]
