"""Device health for the room: registry, health evaluation loop, alarms and their escalation.

Reports from any adapter (``DEVICE_REPORTED``), devices' own announcements, the hub's adapters
(``ADAPTER_STATUS``) and the hub's internal alarms (``ALARM_RAISED``) come in on one bounded bus
subscription. The pure rules of :mod:`devices.health` turn them into committed state changes;
those are published at once on ``device.health`` and stored by the persister, which writes in
batches, one transaction per batch, and publishes alarm changes only after they are committed.
A database outage only delays the persister: it keeps its batch and retries. A batch the
database refuses for its data (a value PostgreSQL rejects) is stored again device by device, and
only the refused devices' part is dropped and counted, so one bad row never blocks the others.

Reports of ids nobody configured or announced that come from an untrusted source (the MQTT device
bus) are dropped and counted as ``unknown_device`` unless ``devices.register_unknown`` is set.
Silence is not judged while the MQTT link is down; each device gets a fresh silence window when
it comes back.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from db import alarms as alarm_rows
from db import devices as device_rows
from db.alarms import AlarmRow
from db.devices import DeviceRow, SeenDevice, StateUpdate
from db.pool import Pool
from devices.health import DeviceHealth, HealthPolicy, HealthState, Transition
from devices.health.rules import MAX_FIGURES
from ops.core.bus import Bus, Overflow, Subscription
from ops.core.config import DevicesConfig
from ops.core.events import (
    ADAPTER_STATUS,
    ALARM_RAISED,
    DEVICE_ANNOUNCED,
    DEVICE_COMMAND_REPLIED,
    DEVICE_COMMAND_REQUESTED,
    DEVICE_REPORTED,
    AdapterState,
    AdapterStatus,
    AlarmRaised,
    DeviceAnnounced,
    DeviceCommandReplied,
    DeviceCommandRequested,
    DeviceReported,
    Envelope,
    Figure,
)
from ops.core.warnonce import WarnOnce
from ops.devicehealth.events import DEVICE_ALARM, DEVICE_HEALTH, AlarmChanged, DeviceHealthChanged
from ops.devicehealth.storage import TRANSIENT, refused

_LOGGER = logging.getLogger(__name__)

SOURCE = "devicehealth"
DEFAULT_TICK = 1.0
DEFAULT_FLUSH = 0.25
#: Last-seen times and figures of devices without a state change are stored this often.
DEFAULT_TOUCH_EVERY = 60.0
DEFAULT_QUEUE = 50_000
DB_RETRY = 1.0
UNKNOWN_DEVICE = "unknown_device"
#: At most this many sources are counted apart, and this many unknown devices' statuses kept.
MAX_SOURCES = 10_000
#: Sources whose dropped reports are logged by name; past this, drops are only counted.
MAX_LOGGED_SOURCES = 100
OFFLINE_ALARM = "offline"
THRESHOLD_ALARM = "threshold:"
ESCALATE_TO = "supervisor"
HUB_KIND = "hub"
ADAPTER_KIND = "adapter"
_ADAPTER_ONLINE = {
    AdapterState.RUNNING: True,
    AdapterState.BACKOFF: False,
    AdapterState.FAILED: False,
    AdapterState.STOPPED: False,
}


class DeviceNotFound(LookupError):  # noqa: N818 - a state, like the web's not_found
    """No device has that id."""


class CommandRefused(ValueError):  # noqa: N818 - a state, not an action
    """The device's kind does not accept that command."""


class AlarmCleared(ValueError):  # noqa: N818 - a state, not an action
    """The alarm is cleared already: there is nothing left to acknowledge."""

    def __init__(self, alarm: AlarmRow) -> None:
        super().__init__(f"alarm {alarm.id} is {alarm.status}")
        self.alarm = alarm


@dataclass(slots=True)
class DeviceEntry:
    """One device in memory: its registration and its health tracker."""

    id: str
    kind: str
    name: str | None
    site: str | None
    health: DeviceHealth
    commands: tuple[str, ...] = ()
    last_seen_at: dt.datetime | None = None
    since: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    configured: bool = False


@dataclass(frozen=True, slots=True)
class _AlarmAction:
    action: str  # "raise" or "clear"
    device_id: str
    code: str
    severity: str = "warning"
    message: str = ""


@dataclass(slots=True)
class _Batch:
    seen: dict[str, SeenDevice] = field(default_factory=dict)
    announced: dict[str, DeviceAnnounced] = field(default_factory=dict)
    states: dict[str, StateUpdate] = field(default_factory=dict)
    events: list[tuple[str, dt.datetime, str, dict[str, Any]]] = field(default_factory=list)
    alarms: list[_AlarmAction] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.seen or self.announced or self.states or self.events or self.alarms)

    def by_device(self) -> dict[str, _Batch]:
        """The batch split into one part per device, each in its original order."""
        parts: dict[str, _Batch] = collections.defaultdict(_Batch)
        for device_id, seen in self.seen.items():
            parts[device_id].seen[device_id] = seen
        for device_id, note in self.announced.items():
            parts[device_id].announced[device_id] = note
        for device_id, update in self.states.items():
            parts[device_id].states[device_id] = update
        for event in self.events:
            parts[event[0]].events.append(event)
        for action in self.alarms:
            parts[action.device_id].alarms.append(action)
        return dict(parts)


class DeviceHealthService:
    """Every device's truth: registry, health, alarms; run by :meth:`run` in one task group."""

    def __init__(
        self,
        bus: Bus,
        pool: Pool,
        config: DevicesConfig,
        *,
        hub_id: str,
        policy: HealthPolicy | None = None,
        tick: float = DEFAULT_TICK,
        flush: float = DEFAULT_FLUSH,
        touch_every: float = DEFAULT_TOUCH_EVERY,
        clock: Callable[[], float] = time.monotonic,
        untrusted: frozenset[str] = frozenset(),
        link: str | None = None,
        on_rejected: Callable[[str, str], None] | None = None,
    ) -> None:
        # untrusted: event sources whose reports of unknown ids are dropped unless
        # config.register_unknown; link: the adapter whose outage pauses silence judgement;
        # on_rejected: also told of each dropped report as (source device, reason).
        self.bus = bus
        self.pool = pool
        self.config = config
        self.hub_id = hub_id
        self.policy = policy or HealthPolicy(
            silence=config.offline_after, hysteresis=config.hysteresis
        )
        self.devices: dict[str, DeviceEntry] = {}
        self.reports = 0
        self.transitions = 0
        #: Stored changes the database refused for their data, dropped (see the module text).
        self.refused = 0
        #: Reports dropped by the service, by (source device, reason).
        self.rejected: collections.Counter[tuple[str, str]] = collections.Counter()
        self.silence_paused = False
        self._untrusted = untrusted
        self._link = link
        self._on_rejected = on_rejected
        self._warn = WarnOnce(_LOGGER, MAX_LOGGED_SOURCES)
        self._held_status: dict[str, Envelope[DeviceReported]] = {}
        self.open_alarms: dict[int, AlarmRow] = {}
        self._tick = tick
        self._flush = flush
        self._touch_every = touch_every
        self._clock = clock
        self._batch = _Batch()
        self._touched: set[str] = set()
        self._wake = asyncio.Event()
        self._in_flight = False

    # -- life cycle -------------------------------------------------------------------------------

    async def load(self) -> None:
        """Resume from the database: every known device, with a fresh silence window."""
        async with self.pool.acquire() as conn:
            rows = await device_rows.list_devices(conn)
            active = await alarm_rows.list_alarms(conn, status="active", limit=alarm_rows.MAX_LIMIT)
        now = self._clock()
        for row in rows:
            entry = self._entry_from_row(row)
            if row.state != HealthState.UNKNOWN:
                entry.health.state = HealthState(row.state)
                entry.health.reason = row.reason or ""
                _load_figures(entry.health, row.figures)
            # Alone, this hub hears every device: a fresh silence window catches the ones that
            # died while it was down, and the ones never heard from at all. In a share group
            # another hub may be the one that hears a device, so silence is judged only for
            # devices this hub hears itself.
            self._start_silence_clock(entry, now)
            self.devices[row.id] = entry
        self.open_alarms = {alarm.id: alarm for alarm in active}
        _LOGGER.info("device registry loaded: %d devices, %d active alarms", len(rows), len(active))

    def subscribe(self) -> Subscription:
        """The evaluator's subscription; open it before the adapters start so nothing is missed."""
        return self.bus.subscribe(
            [
                DEVICE_REPORTED,
                DEVICE_ANNOUNCED,
                ADAPTER_STATUS,
                ALARM_RAISED,
                DEVICE_COMMAND_REPLIED,
            ],
            maxsize=DEFAULT_QUEUE,
            overflow=Overflow.ALARM,
            name=SOURCE,
        )

    async def run(self, subscription: Subscription) -> None:
        """Evaluate, tick, persist and escalate until cancelled."""
        self._report_hub_itself()
        async with asyncio.TaskGroup() as group:
            group.create_task(self._evaluate(subscription), name=f"{SOURCE}:evaluate")
            group.create_task(self._ticker(), name=f"{SOURCE}:tick")
            group.create_task(self._persister(), name=f"{SOURCE}:persist")

    async def run_evaluator(self, subscription: Subscription) -> None:
        """Turn bus events into health changes until cancelled (one supervised adapter)."""
        self._report_hub_itself()
        await self._evaluate(subscription)

    async def run_ticker(self) -> None:
        """Judge silence and hysteresis as time passes, until cancelled."""
        await self._ticker()

    async def run_persister(self) -> None:
        """Store health changes in batches and escalate due alarms, until cancelled."""
        await self._persister()

    async def persist_now(self) -> None:
        """Store everything queued so far at once (at shutdown, when the loops are stopped)."""
        self._touch()
        batch, self._batch = self._batch, _Batch()
        if batch:
            for row, action in await self._store(batch, escalate=False):
                self._alarm_changed(row, action)

    async def wait_idle(self) -> None:
        """Wait until everything known so far is committed (for tests and benches)."""
        self._touch()
        while self._batch or self._in_flight:
            self._wake.set()
            await asyncio.sleep(self._flush / 2)

    # -- queries and actions for people -----------------------------------------------------------

    def entry(self, device_id: str) -> DeviceEntry:
        """The in-memory entry of a device."""
        entry = self.devices.get(device_id)
        if entry is None:
            raise DeviceNotFound(device_id)
        return entry

    def live_view(self, row: DeviceRow) -> dict[str, Any]:
        """A stored device overlaid with its live health (the stored copy may lag a flush)."""
        entry = self.devices.get(row.id)
        if entry is None:
            return {
                "state": row.state,
                "reason": row.reason,
                "figures": row.figures,
                "last_seen": row.last_seen,
                "pending": None,
                "commands": list(self.policy.rules(row.kind).commands),
            }
        health = entry.health
        return {
            "state": health.state.value,
            "reason": health.reason,
            "figures": dict(health.figures),
            "last_seen": entry.last_seen_at or row.last_seen,
            "pending": None if health.pending is None else health.pending.value,
            "commands": list(self.commands_of(entry)),
        }

    def commands_of(self, entry: DeviceEntry) -> tuple[str, ...]:
        """What a device accepts: its kind's commands and those it announced."""
        own = self.policy.rules(entry.kind).commands
        return tuple(dict.fromkeys((*own, *entry.commands)))

    def registered(self, row: DeviceRow) -> None:
        """A person registered or changed a device: follow the new registration."""
        entry = self.devices.get(row.id)
        if entry is None:
            entry = self._entry_from_row(row)
            entry.configured = True
            self._start_silence_clock(entry, self._clock())
            self.devices[row.id] = entry
            return
        entry.configured = True
        entry.name, entry.site = row.name, row.site
        if entry.kind != row.kind:
            entry.kind = row.kind
            entry.health.kind = row.kind

    async def acknowledge(self, alarm_id: int, by: str) -> AlarmRow | None:
        """Acknowledge an alarm (committed, then published); None when unknown.

        Raises:
            AlarmCleared: the alarm is cleared already (there is nothing left to acknowledge).
        """
        async with self.pool.acquire() as conn, conn.transaction():
            before = await alarm_rows.get_alarm(conn, alarm_id)
            row = await alarm_rows.acknowledge(conn, alarm_id, by=by)
            if row is None:
                now = await alarm_rows.get_alarm(conn, alarm_id)
                if now is not None:  # cleared, before or while this ran
                    raise AlarmCleared(now)
            if row is not None and before is not None and before.acknowledged_at is None:
                await device_rows.add_events(
                    conn,
                    [(row.device_id, _now(), "alarm.acknowledged", {"alarm": row.id, "by": by})],
                )
        if row is not None and before is not None and before.acknowledged_at is None:
            self._alarm_changed(row, "acknowledged")
        return row

    async def clear(self, alarm_id: int, by: str) -> AlarmRow | None:
        """Clear an alarm by hand (the hub's internal alarms have no automatic end)."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await alarm_rows.clear_by_id(conn, alarm_id, by=by)
            if row is not None:
                await device_rows.add_events(
                    conn, [(row.device_id, _now(), "alarm.cleared", {"alarm": row.id, "by": by})]
                )
        if row is not None:
            self._alarm_changed(row, "cleared")
        return row

    async def command(
        self,
        device_id: str,
        command: str,
        args: dict[str, Any],
        *,
        by: str,
        timeout: float,  # noqa: ASYNC109 - the caller's bound on the device's answer
    ) -> DeviceCommandReplied:
        """Ask a device to do something and wait for its answer (or a timeout answer).

        Raises:
            DeviceNotFound: no such device.
            CommandRefused: its kind does not accept the command.
        """
        entry = self.entry(device_id)
        if command not in self.commands_of(entry):
            raise CommandRefused(
                f"{entry.kind} {device_id} accepts {', '.join(self.commands_of(entry)) or 'none'}"
            )
        request_id = uuid.uuid4().hex
        async with self.bus.subscribe(
            DEVICE_COMMAND_REPLIED, maxsize=1000, name=f"command:{request_id[:8]}"
        ) as replies:
            self.bus.publish(
                DEVICE_COMMAND_REQUESTED,
                DeviceCommandRequested(request_id, device_id, command, args, by),
                source=SOURCE,
                key=device_id,
                correlation_id=request_id,
            )
            self._queue_event(
                device_id, "command", {"id": request_id, "command": command, "by": by}
            )
            try:
                async with asyncio.timeout(timeout):
                    while True:
                        reply: DeviceCommandReplied = (await replies.get()).payload
                        if reply.request_id == request_id:
                            return reply
            except TimeoutError:
                return DeviceCommandReplied(
                    request_id, device_id, ok=False, error="no reply in time"
                )

    # -- evaluation -------------------------------------------------------------------------------

    async def _evaluate(self, subscription: Subscription) -> None:
        handlers: dict[str, Callable[[Envelope[Any]], None]] = {
            DEVICE_REPORTED.name: self._on_report,
            DEVICE_ANNOUNCED.name: self._on_announced,
            ADAPTER_STATUS.name: self._on_adapter,
            ALARM_RAISED.name: self._on_alarm,
            DEVICE_COMMAND_REPLIED.name: self._on_reply,
        }
        handled = 0
        async for envelope in subscription:
            try:
                handlers[envelope.topic.name](envelope)
            except Exception:
                _LOGGER.exception("device health could not handle %s", envelope.topic.name)
            handled += 1
            if handled % 512 == 0:
                await asyncio.sleep(0)  # let the other tasks in during a burst

    def _on_report(self, envelope: Envelope[DeviceReported]) -> None:
        report = envelope.payload
        self.reports += 1
        entry = self.devices.get(report.device_id)
        if (
            entry is None
            and envelope.source in self._untrusted
            and not self.config.register_unknown
        ):
            self._reject(report.device_id, UNKNOWN_DEVICE)
            if report.online is not None and (
                report.device_id in self._held_status or len(self._held_status) < MAX_SOURCES
            ):
                # Retained replay may bring a status before the config: keep the last one.
                self._held_status[report.device_id] = envelope
            return
        if entry is None:
            entry = self._auto_register(
                report.device_id, report.kind, report.name, report.site, envelope.source
            )
        if report.online is not False:
            entry.last_seen_at = envelope.time
        change = entry.health.observe(self._clock(), report.figures, report.online)
        self._touched.add(entry.id)
        if change is not None:
            self._transition(entry, change)

    def _on_announced(self, envelope: Envelope[DeviceAnnounced]) -> None:
        note = envelope.payload
        entry = self.devices.get(note.device_id)
        if entry is None:
            entry = self._auto_register(
                note.device_id, note.kind, note.name, note.site, note.adapter
            )
            self._start_silence_clock(entry, self._clock())
        elif not entry.configured:
            # A device's own announcement wins over what its first report guessed, but never
            # over a person's registration (the database applies the same rule).
            entry.name = note.name if note.name is not None else entry.name
            entry.site = note.site if note.site is not None else entry.site
            if entry.kind != note.kind:
                entry.kind = note.kind
                entry.health.kind = note.kind
                self._reevaluate(entry)
        entry.commands = note.commands
        self._batch.announced[note.device_id] = note
        self._wake.set()
        held = self._held_status.pop(note.device_id, None)
        if held is not None:
            self._on_report(held)

    def _on_adapter(self, envelope: Envelope[AdapterStatus]) -> None:
        status = envelope.payload
        if status.name == self._link:
            self.link_changed(status.state)
        device_id = f"adapter:{status.name}"
        entry = self.devices.get(device_id) or self._auto_register(
            device_id, ADAPTER_KIND, status.name, None, "hub"
        )
        online = _ADAPTER_ONLINE.get(status.state)
        if online is not False:
            entry.last_seen_at = envelope.time
        # "starting" says nothing yet; it keeps the adapter's explicit status as it was.
        change = entry.health.observe(
            self._clock(), {"restarts": status.restarts}, online if online is not None else None
        )
        self._touched.add(device_id)
        if change is not None:
            self._transition(entry, change)

    def _on_alarm(self, envelope: Envelope[AlarmRaised]) -> None:
        alarm = envelope.payload
        self._batch.alarms.append(
            _AlarmAction("raise", alarm.source, alarm.code, str(alarm.severity), alarm.message)
        )
        self._wake.set()

    def _on_reply(self, envelope: Envelope[DeviceCommandReplied]) -> None:
        reply = envelope.payload
        detail: dict[str, Any] = {"id": reply.request_id, "ok": reply.ok}
        if reply.error:
            detail["error"] = reply.error
        self._queue_event(reply.device_id, "command.reply", detail)

    def _report_hub_itself(self) -> None:
        device_id = f"hub:{self.hub_id}"
        entry = self.devices.get(device_id) or self._auto_register(
            device_id, HUB_KIND, self.hub_id, None, "hub"
        )
        entry.last_seen_at = _now()
        change = entry.health.observe(self._clock(), {}, online=True)
        if change is not None:
            self._transition(entry, change)

    def link_changed(self, state: AdapterState) -> None:
        """The MQTT link changed: pause silence while it is down, then grant a fresh window."""
        running = state is AdapterState.RUNNING
        if running and self.silence_paused:
            now = self._clock()
            for entry in self.devices.values():
                if entry.health.last_seen is not None:
                    entry.health.last_seen = max(entry.health.last_seen, now)
            _LOGGER.info("MQTT link is back: silence is judged again from now")
        elif not running and not self.silence_paused:
            _LOGGER.info("MQTT link is down: silence is not judged until it is back")
        self.silence_paused = not running

    def _start_silence_clock(self, entry: DeviceEntry, now: float) -> None:
        """Let a device this hub should hear go offline after a silence, even if never heard."""
        if not self.config.share_group and entry.health.last_seen is None:
            entry.health.last_seen = now

    def _reevaluate(self, entry: DeviceEntry) -> None:
        change = entry.health.evaluate(self._clock())
        if change is not None:
            self._transition(entry, change)

    def _reject(self, source: str, reason: str) -> None:
        key = (source, reason)
        if key in self.rejected or len(self.rejected) < MAX_SOURCES:
            self.rejected[key] += 1
        if self._on_rejected is not None:
            self._on_rejected(source, reason)
        self._warn(key, "device report dropped (%s): %s", reason, source)

    def _auto_register(
        self, device_id: str, kind: str, name: str | None, site: str | None, adapter: str | None
    ) -> DeviceEntry:
        entry = DeviceEntry(device_id, kind, name, site, DeviceHealth(kind, self.policy))
        self.devices[device_id] = entry
        self._batch.seen[device_id] = SeenDevice(device_id, kind, name, site, adapter)
        self._wake.set()
        return entry

    def _transition(self, entry: DeviceEntry, change: Transition) -> None:
        self.transitions += 1
        now = _now()
        entry.since = now
        health = entry.health
        self.bus.publish(
            DEVICE_HEALTH,
            DeviceHealthChanged(
                device_id=entry.id,
                kind=entry.kind,
                name=entry.name,
                site=entry.site,
                state=change.new.value,
                previous=change.old.value,
                reason=change.reason,
                since=now,
                figures=dict(health.figures),
            ),
            source=SOURCE,
            key=entry.id,
        )
        self._batch.states[entry.id] = StateUpdate(
            entry.id, change.new.value, change.reason, dict(health.figures), entry.last_seen_at
        )
        self._touched.discard(entry.id)
        if change.old is not change.new:
            self._batch.events.append(
                (
                    entry.id,
                    now,
                    "state",
                    {"from": change.old.value, "to": change.new.value, "reason": change.reason},
                )
            )
        if change.new is HealthState.OFFLINE and change.old is not HealthState.OFFLINE:
            severity = "critical" if entry.kind in {"panic_button", HUB_KIND} else "warning"
            self._batch.alarms.append(
                _AlarmAction(
                    "raise",
                    entry.id,
                    OFFLINE_ALARM,
                    severity,
                    f"{entry.id} offline: {change.reason}",
                )
            )
        elif change.old is HealthState.OFFLINE and change.new is not HealthState.OFFLINE:
            self._batch.alarms.append(_AlarmAction("clear", entry.id, OFFLINE_ALARM))
        for breach in change.raised:
            self._batch.alarms.append(
                _AlarmAction(
                    "raise",
                    entry.id,
                    THRESHOLD_ALARM + breach.figure,
                    breach.severity,
                    f"{entry.id}: {breach.reason}",
                )
            )
        for figure in change.cleared:
            self._batch.alarms.append(_AlarmAction("clear", entry.id, THRESHOLD_ALARM + figure))
        self._wake.set()

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self._tick)
            now = self._clock()
            paused = self.silence_paused
            for entry in list(self.devices.values()):
                if paused and entry.health.explicit is None:
                    continue  # its silence may be the link's, not the device's
                change = entry.health.tick(now)
                if change is not None:
                    self._transition(entry, change)

    # -- persistence ------------------------------------------------------------------------------

    def _queue_event(self, device_id: str, kind: str, detail: dict[str, Any]) -> None:
        self._batch.events.append((device_id, _now(), kind, detail))
        self._wake.set()

    async def _persister(self) -> None:
        last_touch = self._clock()
        last_escalation = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._flush):
                    await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(self._flush / 4)  # gather a little more into this batch
            now = self._clock()
            if now - last_touch >= self._touch_every:
                last_touch = now
                self._touch()
            batch, self._batch = self._batch, _Batch()
            escalate = now - last_escalation >= min(1.0, self.config.escalate_after / 4)
            if not batch and not escalate:
                continue
            self._in_flight = True
            try:
                changed = await self._store(batch, escalate=escalate)
            except TRANSIENT as exc:
                _LOGGER.warning("device health could not store a batch (will retry): %s", exc)
                self._merge_back(batch)
                await asyncio.sleep(DB_RETRY)
                continue
            except BaseException:
                # Rolled back: the restarted persister (or the final flush at shutdown) stores it.
                self._merge_back(batch)
                raise
            finally:
                self._in_flight = False
            if escalate:
                last_escalation = now
            for row, action in changed:
                self._alarm_changed(row, action)

    def _touch(self) -> None:
        for device_id in self._touched:
            entry = self.devices.get(device_id)
            if entry is not None:  # the latest figures, even over a queued state change
                self._batch.states[device_id] = StateUpdate(
                    device_id,
                    entry.health.state.value,
                    entry.health.reason,
                    dict(entry.health.figures),
                    entry.last_seen_at,
                )
        self._touched.clear()

    def _merge_back(self, batch: _Batch) -> None:
        """Put a batch that failed in front of what came since, keeping the newer states."""
        newer = self._batch
        batch.seen.update(newer.seen)
        batch.announced.update(newer.announced)
        batch.states.update(newer.states)
        batch.events.extend(newer.events)
        batch.alarms.extend(newer.alarms)
        self._batch = batch

    async def _store(self, batch: _Batch, *, escalate: bool) -> list[tuple[AlarmRow, str]]:
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

    async def _store_each(self, batch: _Batch, *, escalate: bool) -> list[tuple[AlarmRow, str]]:
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
                changed.extend(await self._commit(_Batch(), escalate=True))
        except BaseException:
            # Committed parts are published now; what is left goes back to the caller.
            for row, action in changed:
                self._alarm_changed(row, action)
            left = _Batch()
            for device_id, part in parts.items():
                if device_id not in done:
                    left.seen.update(part.seen)
                    left.announced.update(part.announced)
                    left.states.update(part.states)
                    left.events.extend(part.events)
                    left.alarms.extend(part.alarms)
            batch.seen, batch.announced, batch.states = left.seen, left.announced, left.states
            batch.events, batch.alarms = left.events, left.alarms
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

    async def _commit(self, batch: _Batch, *, escalate: bool) -> list[tuple[AlarmRow, str]]:
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
                due = _now() - dt.timedelta(seconds=self.config.escalate_after)
                for row in await alarm_rows.escalate_due(conn, older_than=due):
                    await device_rows.add_events(
                        conn,
                        [
                            (
                                row.device_id,
                                _now(),
                                "alarm.escalated",
                                {"alarm": row.id, "to": ESCALATE_TO},
                            )
                        ],
                    )
                    changed.append((row, "escalated"))
        return changed

    async def _apply_alarm(self, conn: Any, action: _AlarmAction) -> Sequence[tuple[AlarmRow, str]]:
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
                    [(row.device_id, _now(), "alarm.raised", {"alarm": row.id, "code": row.code})],
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
                    _now(),
                    "alarm.cleared",
                    {"alarm": cleared.id, "code": cleared.code},
                )
            ],
        )
        return [(cleared, "cleared")]

    def _alarm_changed(self, row: AlarmRow, action: str) -> None:
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

    def _entry_from_row(self, row: DeviceRow) -> DeviceEntry:
        commands = row.attributes.get("commands")
        return DeviceEntry(
            row.id,
            row.kind,
            row.name,
            row.site,
            DeviceHealth(row.kind, self.policy),
            tuple(c for c in commands if isinstance(c, str)) if isinstance(commands, list) else (),
            row.last_seen,
            configured=row.configured,
        )


def _load_figures(health: DeviceHealth, stored: dict[str, Any]) -> None:
    """Stored figures into a device's state, within the rules' cap on distinct names."""
    figures = health.figures
    for name, value in stored.items():
        if name in figures or len(figures) < MAX_FIGURES:
            figures[name] = value


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


__all__ = [
    "AlarmCleared",
    "CommandRefused",
    "DeviceEntry",
    "DeviceHealthService",
    "DeviceNotFound",
    "Figure",
]
