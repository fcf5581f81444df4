"""Units: register, change status or duty (audited, announced live), read.

A status change comes from an operator, from the unit itself (app event, radio text,
satellite) or from the order flow; all go through :func:`set_status`, which writes the audit
entry in the same transaction as the change, so no change is ever shown that was not recorded.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from db import audit
from db import shifts as shift_rows
from db import units as unit_rows
from ops.core.config import SHIFT_NAME_PATTERN
from ops.units.errors import InvalidUnit, UnitNotFound, UnitTaken
from ops.units.events import UNIT_CHANGED
from ops.units.model import (
    CALLSIGN_PATTERN,
    ID_PATTERN,
    RESERVED_IDS,
    SKILL_PATTERN,
    STATUSES,
    TEXT_PATTERN,
    Channel,
    Kind,
    snapshot,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from db.pool import Connection, Pool
    from ops.core.bus import Bus

Skill = Annotated[str, StringConstraints(pattern=SKILL_PATTERN)]
MAX_SKILLS = 32
MAX_CHANNELS = 8


class ShiftPeriod(Protocol):
    """One occurrence of a shift, as far as a unit needs it."""

    @property
    def name(self) -> str:
        """The shift's name."""
        ...


class ShiftTable(Protocol):
    """What units need of the room's schedule (``ops.shifts.schedule.Schedule`` is one).

    Typed here because the shift domain sits above units: its clock sets units' duty.
    """

    @property
    def names(self) -> frozenset[str]:
        """Every shift's name."""
        ...

    def at(self, instant: datetime) -> ShiftPeriod:
        """The shift on at ``instant``."""
        ...


class ChannelSpec(BaseModel):
    """One way to reach a unit: which channel, and its address there."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: Channel
    address: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_/:.-]+$")


class UnitSpec(BaseModel):
    """The body of ``POST /api/v1/units``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=ID_PATTERN)
    callsign: str = Field(pattern=CALLSIGN_PATTERN)
    name: str = Field(min_length=1, max_length=200, pattern=TEXT_PATTERN)
    kind: Kind
    skills: list[Skill] = Field(default_factory=list, max_length=MAX_SKILLS)
    home_center: str | None = Field(
        default=None, min_length=1, max_length=200, pattern=TEXT_PATTERN
    )
    on_duty: bool = True
    channels: list[ChannelSpec] = Field(default_factory=list, max_length=MAX_CHANNELS)
    shift: str | None = Field(default=None, pattern=SHIFT_NAME_PATTERN)

    @field_validator("id")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value.lower() in RESERVED_IDS:
            raise ValueError(f"{value!r} is reserved")
        return value


async def create_unit(
    pool: Pool,
    bus: Bus,
    spec: UnitSpec,
    *,
    actor: str,
    schedule: ShiftTable | None = None,
    now: datetime | None = None,
) -> unit_rows.UnitRow:
    """Register a unit; audited and announced.

    A unit with a shift starts on duty exactly when its shift is the one on at ``now`` (default:
    the current time) in ``schedule``; ``spec.on_duty`` is then ignored.

    Raises:
        UnitTaken: its id or callsign is already used.
        InvalidUnit: ``shift`` names no shift of ``schedule`` (or there is no schedule).
    """
    on_duty = spec.on_duty
    if spec.shift is not None:
        if schedule is None or spec.shift not in schedule.names:
            known = ", ".join(sorted(schedule.names)) if schedule is not None else "none"
            raise InvalidUnit("shift", f"no shift {spec.shift!r} (shifts: {known})")
        current = schedule.at(now if now is not None else datetime.now(UTC))
        on_duty = spec.shift == current.name
    values: dict[str, Any] = {
        "id": spec.id,
        "callsign": spec.callsign.upper(),
        "name": spec.name.strip(),
        "kind": spec.kind,
        "skills": sorted(set(spec.skills)),
        "home_center": spec.home_center,
        "on_duty": on_duty,
        "channels": [(c.channel, c.address) for c in spec.channels],
        "shift": spec.shift,
    }
    async with pool.acquire() as conn, conn.transaction():
        row = await unit_rows.insert_unit(conn, values)
        if row is None:
            raise UnitTaken(f"a unit with id {spec.id!r} or callsign {spec.callsign!r} exists")
        await audit.append(
            conn, actor=actor, action="unit.add", target=f"unit:{row.id}", after=_audited(row)
        )
    announce(bus, row)
    return row


async def set_status(
    conn: Connection,
    unit_id: str,
    *,
    actor: str,
    status: str | None = None,
    on_duty: bool | None = None,
    reason: str | None = None,
    only_from: Sequence[str] | None = None,
) -> tuple[unit_rows.UnitRow, unit_rows.UnitRow] | None:
    """Change a unit's status and/or duty inside the caller's transaction, with its audit entry.

    Returns (before, after), or None when nothing changed (same values, or the status is not
    one of ``only_from``). The caller announces ``after`` once committed.

    Raises:
        UnitNotFound: no such unit.
        InvalidUnit: an unknown status.
    """
    if status is not None and status not in STATUSES:
        raise InvalidUnit("status", f"status must be one of {', '.join(STATUSES)}")
    before = await unit_rows.get_unit(conn, unit_id, for_update=True)
    if before is None:
        raise UnitNotFound(f"no unit {unit_id!r}")
    if only_from is not None and before.status not in only_from:
        return None
    changes: dict[str, Any] = {}
    if status is not None and status != before.status:
        changes["status"] = status
        changes["status_reason"] = reason
    if on_duty is not None and on_duty != before.on_duty:
        changes["on_duty"] = on_duty
    if not changes:
        return None
    after = await unit_rows.update_unit(conn, unit_id, changes)
    await audit.append(
        conn,
        actor=actor,
        action="unit.status",
        target=f"unit:{unit_id}",
        before={"status": before.status, "on_duty": before.on_duty},
        after={"status": after.status, "on_duty": after.on_duty, "reason": reason},
    )
    return before, after


async def change_status(
    pool: Pool,
    bus: Bus,
    unit_id: str,
    *,
    actor: str,
    status: str | None = None,
    on_duty: bool | None = None,
    reason: str | None = None,
) -> unit_rows.UnitRow:
    """Change status and/or duty in its own transaction; announce it; return the unit."""
    async with pool.acquire() as conn, conn.transaction():
        changed = await set_status(
            conn, unit_id, actor=actor, status=status, on_duty=on_duty, reason=reason
        )
        if changed is None:
            row = await unit_rows.get_unit(conn, unit_id)
            if row is None:  # pragma: no cover - set_status raised already
                raise UnitNotFound(f"no unit {unit_id!r}")
            return row
    announce(bus, changed[1])
    return changed[1]


async def follow_shift(
    pool: Pool, bus: Bus, current: str, started_at: datetime, *, actor: str = "hub"
) -> list[unit_rows.UnitRow] | None:
    """Put every unit with a shift on duty when its shift is ``current`` and off duty otherwise.

    One transaction: each change goes through :func:`set_status` with its audit entry; every
    changed unit is announced once committed. Returns the changed units, or None when this
    shift (begun at ``started_at``) was applied already: a hub restarting mid-shift then leaves
    the duty operators set by hand since the shift began.
    """
    changed: list[unit_rows.UnitRow] = []
    async with pool.acquire() as conn, conn.transaction():
        if await shift_rows.lock_applied(conn) == (current, started_at):
            return None
        for unit_id, due in await unit_rows.out_of_shift(conn, current):
            result = await set_status(
                conn, unit_id, actor=actor, on_duty=due, reason=f"shift {current}"
            )
            if result is not None:
                changed.append(result[1])
        await shift_rows.record_applied(conn, current, started_at)
    for row in changed:
        announce(bus, row)
    return changed


async def get_unit(pool: Pool, unit_id: str) -> unit_rows.UnitRow:
    """One unit.

    Raises:
        UnitNotFound: no such unit.
    """
    async with pool.acquire() as conn:
        row = await unit_rows.get_unit(conn, unit_id)
    if row is None:
        raise UnitNotFound(f"no unit {unit_id!r}")
    return row


def announce(bus: Bus, row: unit_rows.UnitRow) -> None:
    """Publish the unit's current picture on its state topic."""
    bus.publish(UNIT_CHANGED, snapshot(row), source="units", key=row.id)


def _audited(row: unit_rows.UnitRow) -> dict[str, Any]:
    return {
        "callsign": row.callsign,
        "name": row.name,
        "kind": row.kind,
        "skills": list(row.skills),
        "home_center": row.home_center,
        "on_duty": row.on_duty,
        "channels": [{"channel": c, "address": a} for c, a in row.channels],
        "shift": row.shift,
    }
