"""The shift schedule: which shift is on at an instant and when it ends (pure, no I/O).

Start times are wall-clock times in the room's zone; a shift lasts until the next start, and the
last shift of the day runs past midnight into the first. Instants are compared in UTC, so a zone
with a daylight-saving change still gets each boundary at its real instant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ops.core.config import Config


@dataclass(frozen=True, slots=True)
class Shift:
    """One shift of the day: its name and its local start time."""

    name: str
    start: time


@dataclass(frozen=True, slots=True)
class ShiftPeriod:
    """One occurrence of a shift: from ``started_at`` up to (not including) ``ends_at``, UTC."""

    name: str
    started_at: datetime
    ends_at: datetime


@dataclass(frozen=True, slots=True)
class Schedule:
    """The room's shifts, ordered by start time, in the room's zone."""

    shifts: tuple[Shift, ...]
    zone: ZoneInfo

    @classmethod
    def from_starts(cls, starts: Mapping[str, str], timezone: str) -> Schedule:
        """A schedule from ``{name: "HH:MM"}`` (validated by the config) in zone ``timezone``.

        Raises:
            ValueError: no shift, a bad time, or two shifts starting at the same time.
            zoneinfo.ZoneInfoNotFoundError: an unknown zone.
        """
        shifts = sorted(
            (Shift(name, time.fromisoformat(start)) for name, start in starts.items()),
            key=lambda shift: shift.start,
        )
        if not shifts:
            raise ValueError("a schedule needs at least one shift")
        if len({shift.start for shift in shifts}) != len(shifts):
            raise ValueError("two shifts start at the same time")
        return cls(tuple(shifts), ZoneInfo(timezone))

    @classmethod
    def from_config(cls, config: Config) -> Schedule:
        """The schedule of ``[shifts]`` in ``[hub] timezone``."""
        return cls.from_starts(config.shifts.starts, config.hub.timezone)

    @property
    def names(self) -> frozenset[str]:
        """Every shift's name."""
        return frozenset(shift.name for shift in self.shifts)

    def at(self, instant: datetime) -> ShiftPeriod:
        """The shift on at ``instant`` (aware), when it started and when the next one starts.

        Raises:
            ValueError: ``instant`` is naive.
        """
        if instant.tzinfo is None or instant.utcoffset() is None:
            raise ValueError("instant must be timezone-aware")
        instant = instant.astimezone(UTC)
        day = instant.astimezone(self.zone).date()
        current: tuple[datetime, str] | None = None
        upcoming: datetime | None = None
        for start, name in self._starts_around(day):
            if start <= instant:
                if current is None or start > current[0]:
                    current = (start, name)
            elif upcoming is None or start < upcoming:
                upcoming = start
        if current is None or upcoming is None:  # pragma: no cover - three days always cover it
            raise RuntimeError("no shift boundary around the instant")
        return ShiftPeriod(current[1], current[0], upcoming)

    def _starts_around(self, day: date) -> list[tuple[datetime, str]]:
        """Every shift start (in UTC) on the local day before ``day``, on it and after it."""
        return [
            (
                datetime.combine(day + timedelta(days=offset), shift.start, self.zone).astimezone(
                    UTC
                ),
                shift.name,
            )
            for offset in (-1, 0, 1)
            for shift in self.shifts
        ]
