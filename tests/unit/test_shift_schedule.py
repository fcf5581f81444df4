"""The shift schedule: the shift on at an instant, the next boundary, and its configuration."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any, cast

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ops.core.adapter import AdapterContext
from ops.core.bus import Bus
from ops.core.config import load_config
from ops.core.errors import AdapterNotReady, ConfigError
from ops.shifts.clock import ShiftClock
from ops.shifts.schedule import Schedule

JAKARTA = "Asia/Jakarta"  # UTC+7, no daylight saving
DEFAULT = Schedule.from_starts({"pagi": "07:00", "siang": "15:00", "malam": "23:00"}, JAKARTA)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("instant", "name", "started", "ends"),
    [
        # 07:00 local is 00:00 UTC; 15:00 is 08:00 UTC; 23:00 is 16:00 UTC.
        (utc(2026, 3, 10, 0, 0), "pagi", utc(2026, 3, 10, 0, 0), utc(2026, 3, 10, 8, 0)),
        (utc(2026, 3, 10, 7, 59, 59), "pagi", utc(2026, 3, 10, 0, 0), utc(2026, 3, 10, 8, 0)),
        (utc(2026, 3, 10, 8, 0), "siang", utc(2026, 3, 10, 8, 0), utc(2026, 3, 10, 16, 0)),
        # 23:30 local, then 02:00 local the next day: the night shift runs past midnight.
        (utc(2026, 3, 10, 16, 30), "malam", utc(2026, 3, 10, 16, 0), utc(2026, 3, 11, 0, 0)),
        (utc(2026, 3, 10, 19, 0), "malam", utc(2026, 3, 10, 16, 0), utc(2026, 3, 11, 0, 0)),
        (utc(2026, 3, 10, 23, 59), "malam", utc(2026, 3, 10, 16, 0), utc(2026, 3, 11, 0, 0)),
    ],
)
def test_the_shift_on_and_its_boundaries(
    instant: datetime, name: str, started: datetime, ends: datetime
) -> None:
    period = DEFAULT.at(instant)
    assert (period.name, period.started_at, period.ends_at) == (name, started, ends)


def test_any_zone_of_the_instant_gives_the_same_answer() -> None:
    instant = utc(2026, 3, 10, 16, 30)
    elsewhere = instant.astimezone(Schedule.from_starts({"x": "00:00"}, "Asia/Jayapura").zone)
    assert DEFAULT.at(elsewhere) == DEFAULT.at(instant)


def test_a_single_shift_lasts_a_day() -> None:
    schedule = Schedule.from_starts({"only": "07:00"}, JAKARTA)
    period = schedule.at(utc(2026, 3, 10, 0, 0))
    assert period.name == "only"
    assert period.ends_at - period.started_at == timedelta(hours=24)


def test_boundaries_fall_at_their_real_instant_across_daylight_saving() -> None:
    schedule = Schedule.from_starts({"day": "07:00", "night": "19:00"}, "Europe/Berlin")
    # 2026-03-29: clocks go from 02:00 to 03:00 CET -> CEST; the night shift is an hour shorter.
    period = schedule.at(utc(2026, 3, 28, 20, 0))
    assert period.name == "night"
    assert period.started_at == utc(2026, 3, 28, 18, 0)  # 19:00 CET
    assert period.ends_at == utc(2026, 3, 29, 5, 0)  # 07:00 CEST
    assert schedule.at(utc(2026, 3, 29, 5, 0)).name == "day"


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        DEFAULT.at(datetime(2026, 3, 10, 12, 0))  # noqa: DTZ001 - the point of the test


def test_names_and_order_by_start() -> None:
    schedule = Schedule.from_starts({"b": "15:00", "a": "07:00"}, JAKARTA)
    assert [s.name for s in schedule.shifts] == ["a", "b"]
    assert schedule.names == {"a", "b"}


_NAMES = st.from_regex(r"[a-z][a-z0-9_-]{0,8}", fullmatch=True)
_STARTS = st.dictionaries(_NAMES, st.integers(0, 24 * 60 - 1), min_size=1, max_size=6).filter(
    lambda starts: len(set(starts.values())) == len(starts)
)
_ZONES = st.sampled_from(["Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura", "UTC", "Asia/Kolkata"])
_INSTANTS = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)


@given(starts=_STARTS, zone=_ZONES, instant=_INSTANTS)
def test_the_shift_is_the_latest_start_at_or_before_the_local_time(
    starts: dict[str, int], zone: str, instant: datetime
) -> None:
    schedule = Schedule.from_starts(
        {name: f"{minute // 60:02d}:{minute % 60:02d}" for name, minute in starts.items()}, zone
    )
    local = instant.astimezone(schedule.zone).time()
    by_start = sorted(schedule.shifts, key=lambda shift: shift.start)
    earlier = [shift for shift in by_start if shift.start <= local]
    expected = (earlier or by_start)[-1]  # none yet today: the last of the day, wrapping

    period = schedule.at(instant)

    assert period.name == expected.name
    assert period.started_at <= instant < period.ends_at
    assert period.ends_at - instant <= timedelta(hours=24)
    assert period.started_at.astimezone(schedule.zone).time() == expected.start
    assert schedule.at(period.ends_at).started_at == period.ends_at


@pytest.mark.parametrize(
    ("text", "env", "names"),
    [
        ("[shifts]\nstarts = {}\n", {}, "shifts.starts: Value error, at least one shift"),
        ("[shifts]\nstarts = { Pagi = '07:00' }\n", {}, "shifts.starts"),
        ("[shifts]\nstarts = { pagi = '7:00' }\n", {}, "must be HH:MM"),
        ("[shifts]\nstarts = { pagi = '24:00' }\n", {}, "must be HH:MM"),
        ("[shifts]\nstarts = { a = '07:00', b = '07:00' }\n", {}, "both start at 07:00"),
        ("[shifts]\nlength = 8\n", {}, "shifts.length: unknown key"),
        ("", {"POSKO_SHIFTS__STARTS": "pagi"}, "POSKO_SHIFTS__STARTS"),
    ],
)
def test_config_errors_name_the_key(
    tmp_path: Path, text: str, env: dict[str, str], names: str
) -> None:
    path = tmp_path / "posko.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env)
    assert names in str(info.value)


def test_config_defaults_and_environment(tmp_path: Path) -> None:
    path = tmp_path / "posko.toml"
    path.write_text("")
    assert load_config(path, {}).shifts.starts == {
        "pagi": "07:00",
        "siang": "15:00",
        "malam": "23:00",
    }
    cfg = load_config(path, {"POSKO_SHIFTS__STARTS": "day=06:00, night=18:00"})
    schedule = Schedule.from_config(cfg)
    assert [(s.name, s.start) for s in schedule.shifts] == [
        ("day", time(6, 0)),
        ("night", time(18, 0)),
    ]


class _GonePool:
    """A pool whose server went away: every acquire fails the way asyncpg's does then."""

    def acquire(self) -> Any:
        raise asyncpg.exceptions.ConnectionDoesNotExistError(
            "connection was closed in the middle of operation"
        )


async def test_a_database_away_is_a_backoff_for_the_shift_clock_not_a_crash() -> None:
    clock = ShiftClock(cast("Any", _GonePool()), Bus(), DEFAULT, now=lambda: utc(2026, 3, 10, 1, 0))
    with pytest.raises(AdapterNotReady, match="database unreachable"):
        await clock.run(AdapterContext("shift-clock", Bus()))
    assert clock.applied is None
