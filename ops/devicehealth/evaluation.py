"""Evaluation: bus events and the passing of time into device health changes, with no I/O.

Reports from any adapter (``DEVICE_REPORTED``), devices' own announcements, the hub's adapters
(``ADAPTER_STATUS``) and the hub's internal alarms (``ALARM_RAISED``) are applied to the pure rules
of :mod:`devices.health`. A committed change is published at once on ``device.health`` and queued
in :class:`~ops.devicehealth.changes.Pending` for the persister. Both clocks are injected, so the
state machine runs in a unit test without a database, a broker or a sleep.

Reports of ids nobody configured or announced that come from an untrusted source (the MQTT device
bus) are dropped and counted as ``unknown_device`` unless ``devices.register_unknown`` is set.
Silence is not judged while the MQTT link is down; each device gets a fresh silence window when
it comes back.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from db.devices import DeviceRow, SeenDevice, StateUpdate
from devices.health import DeviceHealth, HealthPolicy, HealthState, Transition
from devices.health.rules import MAX_FIGURES
from ops.core.bus import Bus
from ops.core.config import DevicesConfig
from ops.core.events import (
    ADAPTER_STATUS,
    ALARM_RAISED,
    DEVICE_ANNOUNCED,
    DEVICE_COMMAND_REPLIED,
    DEVICE_REPORTED,
    AdapterState,
    AdapterStatus,
    AlarmRaised,
    DeviceAnnounced,
    DeviceCommandReplied,
    DeviceReported,
    Envelope,
)
from ops.core.warnonce import WarnOnce
from ops.devicehealth.changes import AlarmAction, Pending
from ops.devicehealth.events import DEVICE_HEALTH, DeviceHealthChanged

_LOGGER = logging.getLogger(__name__)

SOURCE = "devicehealth"
UNKNOWN_DEVICE = "unknown_device"
#: At most this many sources are counted apart, and this many unknown devices' statuses kept.
MAX_SOURCES = 10_000
#: Sources whose dropped reports are logged by name; past this, drops are only counted.
MAX_LOGGED_SOURCES = 100
OFFLINE_ALARM = "offline"
THRESHOLD_ALARM = "threshold:"
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


def utc_now() -> dt.datetime:
    """The wall clock, in UTC."""
    return dt.datetime.now(dt.UTC)


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
    since: dt.datetime = field(default_factory=utc_now)
    configured: bool = False


class HealthEvaluator:
    """Every device's live health, changed only by :meth:`handle`, :meth:`tick` and people."""

    def __init__(
        self,
        bus: Bus,
        config: DevicesConfig,
        pending: Pending,
        *,
        hub_id: str,
        policy: HealthPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], dt.datetime] = utc_now,
        untrusted: frozenset[str] = frozenset(),
        link: str | None = None,
        on_rejected: Callable[[str, str], None] | None = None,
    ) -> None:
        # untrusted: event sources whose reports of unknown ids are dropped unless
        # config.register_unknown; link: the adapter whose outage pauses silence judgement;
        # on_rejected: also told of each dropped report as (source device, reason).
        self.bus = bus
        self.config = config
        self.pending = pending
        self.hub_id = hub_id
        self.policy = policy or HealthPolicy(
            silence=config.offline_after, hysteresis=config.hysteresis
        )
        self.devices: dict[str, DeviceEntry] = {}
        self.reports = 0
        self.transitions = 0
        #: Reports dropped, by (source device, reason).
        self.rejected: collections.Counter[tuple[str, str]] = collections.Counter()
        self.silence_paused = False
        #: The clock's time of the last :meth:`tick`: silence was judged up to here.
        self.judged_at: float | None = None
        self.clock = clock
        self.wall_clock = wall_clock
        self._untrusted = untrusted
        self._link = link
        self._on_rejected = on_rejected
        self._warn = WarnOnce(_LOGGER, MAX_LOGGED_SOURCES)
        self._held_status: dict[str, Envelope[DeviceReported]] = {}
        self._handlers: dict[str, Callable[[Envelope[Any]], None]] = {
            DEVICE_REPORTED.name: self._on_report,
            DEVICE_ANNOUNCED.name: self._on_announced,
            ADAPTER_STATUS.name: self._on_adapter,
            ALARM_RAISED.name: self._on_alarm,
            DEVICE_COMMAND_REPLIED.name: self._on_reply,
        }

    def restore(self, rows: Iterable[DeviceRow]) -> None:
        """Take the stored registry, each device with a fresh silence window."""
        now = self.clock()
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

    def handle(self, envelope: Envelope[Any]) -> None:
        """Apply one bus event."""
        self._handlers[envelope.topic.name](envelope)

    def tick(self) -> None:
        """Judge silence and hysteresis at the clock's time."""
        now = self.clock()
        paused = self.silence_paused
        for entry in list(self.devices.values()):
            if paused and entry.health.explicit is None:
                continue  # its silence may be the link's, not the device's
            change = entry.health.tick(now)
            if change is not None:
                self._transition(entry, change)
        self.judged_at = now

    def report_hub_itself(self) -> None:
        """The hub is alive: it is a device of its own."""
        device_id = f"hub:{self.hub_id}"
        entry = self.devices.get(device_id) or self._auto_register(
            device_id, HUB_KIND, self.hub_id, None, "hub"
        )
        entry.last_seen_at = self.wall_clock()
        change = entry.health.observe(self.clock(), {}, online=True)
        if change is not None:
            self._transition(entry, change)

    def link_changed(self, state: AdapterState) -> None:
        """The MQTT link changed: pause silence while it is down, then grant a fresh window."""
        running = state is AdapterState.RUNNING
        if running and self.silence_paused:
            now = self.clock()
            for entry in self.devices.values():
                if entry.health.last_seen is not None:
                    entry.health.last_seen = max(entry.health.last_seen, now)
            _LOGGER.info("MQTT link is back: silence is judged again from now")
        elif not running and not self.silence_paused:
            _LOGGER.info("MQTT link is down: silence is not judged until it is back")
        self.silence_paused = not running

    def registered(self, row: DeviceRow) -> None:
        """A person registered or changed a device: follow the new registration."""
        entry = self.devices.get(row.id)
        if entry is None:
            entry = self._entry_from_row(row)
            entry.configured = True
            self._start_silence_clock(entry, self.clock())
            self.devices[row.id] = entry
            return
        entry.configured = True
        entry.name, entry.site = row.name, row.site
        if entry.kind != row.kind:
            entry.kind = row.kind
            entry.health.kind = row.kind

    def entry(self, device_id: str) -> DeviceEntry:
        """The in-memory entry of a device.

        Raises:
            DeviceNotFound: no such device.
        """
        entry = self.devices.get(device_id)
        if entry is None:
            raise DeviceNotFound(device_id)
        return entry

    def commands_of(self, entry: DeviceEntry) -> tuple[str, ...]:
        """What a device accepts: its kind's commands and those it announced."""
        own = self.policy.rules(entry.kind).commands
        return tuple(dict.fromkeys((*own, *entry.commands)))

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

    def queue_event(self, device_id: str, kind: str, detail: dict[str, Any]) -> None:
        """Store a device event with the next batch."""
        self.pending.batch.events.append((device_id, self.wall_clock(), kind, detail))
        self.pending.queued()

    # -- events -----------------------------------------------------------------------------------

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
        change = entry.health.observe(self.clock(), report.figures, report.online)
        self.pending.touched.add(entry.id)
        if change is not None:
            self._transition(entry, change)

    def _on_announced(self, envelope: Envelope[DeviceAnnounced]) -> None:
        note = envelope.payload
        entry = self.devices.get(note.device_id)
        if entry is None:
            entry = self._auto_register(
                note.device_id, note.kind, note.name, note.site, note.adapter
            )
            self._start_silence_clock(entry, self.clock())
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
        self.pending.batch.announced[note.device_id] = note
        self.pending.queued()
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
            self.clock(), {"restarts": status.restarts}, online if online is not None else None
        )
        self.pending.touched.add(device_id)
        if change is not None:
            self._transition(entry, change)

    def _on_alarm(self, envelope: Envelope[AlarmRaised]) -> None:
        alarm = envelope.payload
        self.pending.batch.alarms.append(
            AlarmAction("raise", alarm.source, alarm.code, str(alarm.severity), alarm.message)
        )
        self.pending.queued()

    def _on_reply(self, envelope: Envelope[DeviceCommandReplied]) -> None:
        reply = envelope.payload
        detail: dict[str, Any] = {"id": reply.request_id, "ok": reply.ok}
        if reply.error:
            detail["error"] = reply.error
        self.queue_event(reply.device_id, "command.reply", detail)

    # -- helpers ----------------------------------------------------------------------------------

    def _start_silence_clock(self, entry: DeviceEntry, now: float) -> None:
        """Let a device this hub should hear go offline after a silence, even if never heard."""
        if not self.config.share_group and entry.health.last_seen is None:
            entry.health.last_seen = now

    def _reevaluate(self, entry: DeviceEntry) -> None:
        change = entry.health.evaluate(self.clock())
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
        self.pending.batch.seen[device_id] = SeenDevice(device_id, kind, name, site, adapter)
        self.pending.queued()
        return entry

    def _transition(self, entry: DeviceEntry, change: Transition) -> None:
        self.transitions += 1
        now = self.wall_clock()
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
        batch = self.pending.batch
        batch.states[entry.id] = StateUpdate(
            entry.id, change.new.value, change.reason, dict(health.figures), entry.last_seen_at
        )
        self.pending.touched.discard(entry.id)
        if change.old is not change.new:
            batch.events.append(
                (
                    entry.id,
                    now,
                    "state",
                    {"from": change.old.value, "to": change.new.value, "reason": change.reason},
                )
            )
        if change.new is HealthState.OFFLINE and change.old is not HealthState.OFFLINE:
            severity = "critical" if entry.kind in {"panic_button", HUB_KIND} else "warning"
            batch.alarms.append(
                AlarmAction(
                    "raise",
                    entry.id,
                    OFFLINE_ALARM,
                    severity,
                    f"{entry.id} offline: {change.reason}",
                )
            )
        elif change.old is HealthState.OFFLINE and change.new is not HealthState.OFFLINE:
            batch.alarms.append(AlarmAction("clear", entry.id, OFFLINE_ALARM))
        for breach in change.raised:
            batch.alarms.append(
                AlarmAction(
                    "raise",
                    entry.id,
                    THRESHOLD_ALARM + breach.figure,
                    breach.severity,
                    f"{entry.id}: {breach.reason}",
                )
            )
        for figure in change.cleared:
            batch.alarms.append(AlarmAction("clear", entry.id, THRESHOLD_ALARM + figure))
        self.pending.queued()

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
