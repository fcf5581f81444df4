"""What people do to devices: register and change them, send commands, acknowledge and clear alarms.

Each action commits its change, its device event and its audit entry (with the person as actor)
in one transaction; the bus hears of it (alarm changes, the command to the device, the audit
entry) only after that commit.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

from db import alarms as alarm_rows
from db import devices as device_rows
from ops import audit
from ops.core.events import (
    DEVICE_COMMAND_REPLIED,
    DEVICE_COMMAND_REQUESTED,
    DeviceCommandReplied,
    DeviceCommandRequested,
)
from ops.devicehealth.evaluation import SOURCE, DeviceNotFound

if TYPE_CHECKING:
    from db.alarms import AlarmRow
    from db.devices import DeviceRow
    from db.pool import Pool
    from ops.core.bus import Bus
    from ops.devicehealth.evaluation import HealthEvaluator
    from ops.devicehealth.persistence import HealthPersister

NO_REPLY = "no reply in time"


class DeviceExists(ValueError):  # noqa: N818 - a state, not an action
    """A person registered a device of that id already."""


class CommandRefused(ValueError):  # noqa: N818 - a state, not an action
    """The device's kind does not accept that command."""


class AlarmCleared(ValueError):  # noqa: N818 - a state, not an action
    """The alarm is cleared already: there is nothing left to acknowledge."""

    def __init__(self, alarm: AlarmRow) -> None:
        super().__init__(f"alarm {alarm.id} is {alarm.status}")
        self.alarm = alarm


class DeviceActions:
    """People's actions on devices and alarms, each committed with its audit entry."""

    def __init__(
        self, bus: Bus, pool: Pool, evaluator: HealthEvaluator, persister: HealthPersister
    ) -> None:
        self.bus = bus
        self.pool = pool
        self.evaluator = evaluator
        self.persister = persister

    async def register(self, device_id: str, fields: dict[str, Any], *, actor: str) -> DeviceRow:
        """Register a device by hand; one first seen through its reports is adopted.

        Raises:
            DeviceExists: a person registered it already.
        """
        async with self.pool.acquire() as conn, conn.transaction():
            existing = await device_rows.get_device(conn, device_id)
            if existing is not None and existing.configured:
                raise DeviceExists(device_id)
            if existing is None:
                row = await device_rows.insert_device(conn, device_id=device_id, **fields)
            else:
                row = await device_rows.update_device(conn, device_id, fields)
            if row is None:  # registered by someone else meanwhile
                raise DeviceExists(device_id)
            entry = await audit.write(
                conn,
                actor=actor,
                action="device.register",
                target=f"device:{device_id}",
                after={"id": device_id, **fields},
            )
        self.evaluator.registered(row)
        audit.announce(self.bus, entry, source=SOURCE)
        return row

    async def update(self, device_id: str, changes: dict[str, Any], *, actor: str) -> DeviceRow:
        """Change a device's registration; what the device announces no longer overrides it.

        Raises:
            DeviceNotFound: no such device.
        """
        async with self.pool.acquire() as conn, conn.transaction():
            before = await device_rows.get_device(conn, device_id)
            row = await device_rows.update_device(conn, device_id, changes)
            if row is None or before is None:
                raise DeviceNotFound(device_id)
            entry = await audit.write(
                conn,
                actor=actor,
                action="device.update",
                target=f"device:{device_id}",
                before={key: getattr(before, key) for key in changes},
                after=changes,
            )
        self.evaluator.registered(row)
        audit.announce(self.bus, entry, source=SOURCE)
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

        The request is committed (device event and audit entry) before the device is asked;
        the answer is stored as the device's ``command.reply`` event.

        Raises:
            DeviceNotFound: no such device.
            CommandRefused: its kind does not accept the command.
        """
        evaluator = self.evaluator
        known = evaluator.entry(device_id)
        accepted = evaluator.commands_of(known)
        if command not in accepted:
            raise CommandRefused(
                f"{known.kind} {device_id} accepts {', '.join(accepted) or 'none'}"
            )
        request_id = uuid.uuid4().hex
        async with self.pool.acquire() as conn, conn.transaction():
            await device_rows.add_events(
                conn,
                [
                    (
                        device_id,
                        evaluator.wall_clock(),
                        "command",
                        {"id": request_id, "command": command, "by": by},
                    )
                ],
            )
            entry = await audit.write(
                conn,
                actor=by,
                action="device.command",
                target=f"device:{device_id}",
                after={"command": command, "args": args},
                detail={"request_id": request_id},
            )
        audit.announce(self.bus, entry, source=SOURCE)
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
            try:
                async with asyncio.timeout(timeout):
                    while True:
                        reply: DeviceCommandReplied = (await replies.get()).payload
                        if reply.request_id == request_id:
                            return reply
            except TimeoutError:
                return DeviceCommandReplied(request_id, device_id, ok=False, error=NO_REPLY)

    async def acknowledge(self, alarm_id: int, by: str) -> AlarmRow | None:
        """Acknowledge an alarm (committed, then published); None when unknown.

        The first acknowledgement stands; a repeated one is audited but changes nothing.

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
                return None
            first = before is not None and before.acknowledged_at is None
            if first:
                await device_rows.add_events(
                    conn,
                    [
                        (
                            row.device_id,
                            self.evaluator.wall_clock(),
                            "alarm.acknowledged",
                            {"alarm": row.id, "by": by},
                        )
                    ],
                )
            entry = await audit.write(
                conn, actor=by, action="alarm.acknowledge", target=f"alarm:{alarm_id}"
            )
        if first:
            self.persister.alarm_changed(row, "acknowledged")
        audit.announce(self.bus, entry, source=SOURCE)
        return row

    async def clear(self, alarm_id: int, by: str) -> AlarmRow | None:
        """Clear an alarm by hand (the hub's internal alarms have no automatic end).

        None when there is no such alarm or it is cleared already.
        """
        async with self.pool.acquire() as conn, conn.transaction():
            row = await alarm_rows.clear_by_id(conn, alarm_id, by=by)
            if row is None:
                return None
            await device_rows.add_events(
                conn,
                [
                    (
                        row.device_id,
                        self.evaluator.wall_clock(),
                        "alarm.cleared",
                        {"alarm": row.id, "by": by},
                    )
                ],
            )
            entry = await audit.write(
                conn, actor=by, action="alarm.clear", target=f"alarm:{alarm_id}"
            )
        self.persister.alarm_changed(row, "cleared")
        audit.announce(self.bus, entry, source=SOURCE)
        return row
