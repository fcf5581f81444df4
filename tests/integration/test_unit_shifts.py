"""Units' duty follows their shift: the shift clock flips it at each boundary (audited, announced),
off-duty units are neither recommended nor dispatched, and the current shift is served."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from db import audit
from db import units as unit_rows
from ops.app import Hub
from ops.core.adapter import AdapterContext
from ops.core.bus import Subscription
from ops.shifts.clock import ShiftClock
from ops.shifts.schedule import Schedule
from ops.units.events import UNIT_CHANGED
from ops.units.service import UnitSpec, create_unit
from ops.users import Role
from tests.fixtures.hub import LoginAs, unique_name
from tests.integration.units_support import add_case, json_of, new_spot, place

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

WAIT = 10.0
# Default schedule in Asia/Jakarta (UTC+7): pagi 07:00 = 00:00 UTC, siang 15:00 = 08:00 UTC.
BEFORE_SIANG = datetime(2026, 3, 10, 7, 50, tzinfo=UTC)
AFTER_SIANG = datetime(2026, 3, 10, 8, 0, 1, tzinfo=UTC)


class FakeTime:
    """A clock the test moves, and a sleep that returns only when the test says so."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.naps: asyncio.Queue[float] = asyncio.Queue()
        self.wake: asyncio.Queue[None] = asyncio.Queue()

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.naps.put_nowait(seconds)
        await self.wake.get()


async def _add_shift_unit(hub: Hub, shift: str, at: tuple[float, float] | None = None) -> str:
    unit_id = unique_name("sh")
    spec = UnitSpec.model_validate(
        {
            "id": unit_id,
            "callsign": unit_id.replace("_", "-")[:16],
            "name": f"Unit {unit_id}",
            "kind": "fire",
            "skills": ["firefighting"],
            "channels": [{"channel": "mqtt", "address": unit_id}],
            "shift": shift,
        }
    )
    await create_unit(
        hub.pool, hub.bus, spec, actor="test", schedule=Schedule.from_config(hub.config)
    )
    if at is not None:
        await place(hub, unit_id, at)
    return unit_id


async def _duty(hub: Hub, *unit_ids: str) -> dict[str, bool]:
    async with hub.pool.acquire() as conn:
        rows = [await unit_rows.get_unit(conn, unit_id) for unit_id in unit_ids]
    return {row.id: row.on_duty for row in rows if row is not None}


async def _announced(changes: Subscription, wanted: set[str]) -> dict[str, bool]:
    """The duty announced for each of ``wanted`` (waits until each was announced)."""
    seen: dict[str, bool] = {}
    async with asyncio.timeout(WAIT):
        while not wanted <= seen.keys():
            envelope = await changes.get()
            if envelope.key in wanted:
                seen[envelope.key] = envelope.payload.on_duty
                assert envelope.payload.shift is not None
    return seen


async def _without_the_hub_clock(hub: Hub) -> None:
    """Stop the hub's own clock: it shares the applied-shift record with the test's clocks, and
    its first sync, late on a loaded machine, would land between their steps."""
    await hub.supervisor.stop(ShiftClock.name)


async def test_duty_flips_at_the_boundary_audited_and_announced(hub: Hub) -> None:
    await _without_the_hub_clock(hub)
    day, afternoon = [await _add_shift_unit(hub, shift) for shift in ("pagi", "siang")]
    # Whatever the real shift at creation, start both out of step with the morning shift.
    async with hub.pool.acquire() as conn:
        await conn.execute(
            "UPDATE units SET on_duty = (id = $2) WHERE id = ANY($1)", [day, afternoon], afternoon
        )
    fake = FakeTime(BEFORE_SIANG)
    clock = ShiftClock(
        hub.pool,
        hub.bus,
        Schedule.from_config(hub.config),
        now=fake,
        sleep=fake.sleep,
        max_nap=3600.0,
    )
    async with hub.bus.subscribe(
        UNIT_CHANGED, name="test", replay_state=False, maxsize=100_000
    ) as changes:
        task = asyncio.create_task(clock.run(AdapterContext(clock.name, hub.bus)))
        try:
            # At start: the morning shift is on.
            async with asyncio.timeout(WAIT):
                nap = await fake.naps.get()
            assert nap == pytest.approx(600.0)  # sleeps up to the boundary at 08:00 UTC
            assert clock.applied is not None
            assert clock.applied.name == "pagi"
            assert await _duty(hub, day, afternoon) == {day: True, afternoon: False}
            assert await _announced(changes, {day, afternoon}) == {day: True, afternoon: False}

            # An operator's manual change holds until the next boundary...
            async with hub.pool.acquire() as conn:
                await conn.execute("UPDATE units SET on_duty = true WHERE id = $1", afternoon)
            fake.now = BEFORE_SIANG + timedelta(minutes=5)
            fake.wake.put_nowait(None)
            async with asyncio.timeout(WAIT):
                nap = await fake.naps.get()
            assert nap == pytest.approx(300.0)
            assert await _duty(hub, day, afternoon) == {day: True, afternoon: True}
            while changes.get_nowait() is not None:
                pass

            # ... which comes: the afternoon shift takes over.
            fake.now = AFTER_SIANG
            fake.wake.put_nowait(None)
            async with asyncio.timeout(WAIT):
                nap = await fake.naps.get()
            assert nap == pytest.approx(3600.0)  # never longer than max_nap at once
            assert clock.applied.name == "siang"
            assert await _duty(hub, day, afternoon) == {day: False, afternoon: True}
            assert await _announced(changes, {day}) == {day: False}
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async with hub.pool.acquire() as conn:
        day_trail = await audit.list_entries(conn, target=f"unit:{day}")
        afternoon_trail = await audit.list_entries(conn, target=f"unit:{afternoon}")
    by_hub = [e for e in day_trail if e.action == "unit.status"]
    assert [e.actor for e in by_hub][:2] == ["hub", "hub"]
    assert by_hub[0].before == {"status": "available", "on_duty": True}
    assert by_hub[0].after == {"status": "available", "on_duty": False, "reason": "shift siang"}
    assert by_hub[1].after == {"status": "available", "on_duty": True, "reason": "shift pagi"}
    first = next(e for e in afternoon_trail if e.action == "unit.status")
    assert (first.actor, first.after["on_duty"]) == ("hub", False)
    # The afternoon unit was set on duty by hand, so the boundary had nothing left to change.
    assert not [
        e
        for e in afternoon_trail
        if e.action == "unit.status" and e.after["reason"] == "shift siang"
    ]


async def test_off_duty_unit_is_not_recommended_and_refused(hub: Hub, login_as: LoginAs) -> None:
    operator = await login_as(Role.OPERATOR)
    schedule = Schedule.from_config(hub.config)
    current = schedule.at(datetime.now(UTC)).name
    other = next(name for name in sorted(schedule.names) if name != current)
    spot = new_spot()
    case_id = await add_case(hub, spot, category="fire")
    resting = await _add_shift_unit(hub, other, at=spot.near(0.5))
    working = await _add_shift_unit(hub, current, at=spot.near(2.0))
    assert await _duty(hub, resting, working) == {resting: False, working: True}

    code, body = await json_of(operator, "GET", f"/api/v1/units/recommend?case={case_id}&limit=5")
    assert code == 200, body
    ranked = [item["unit"]["id"] for item in body["units"]]
    assert ranked[0] == working
    assert resting not in ranked

    code, body = await json_of(
        operator,
        "POST",
        "/api/v1/dispatches",
        json={"case": case_id, "unit": resting, "message": "go"},
    )
    assert (code, body["error"]["code"]) == (409, "unit_unavailable")
    assert resting in body["error"]["message"]


async def test_register_with_a_shift_over_http(hub: Hub, login_as: LoginAs) -> None:
    supervisor = await login_as(Role.SUPERVISOR)
    current = Schedule.from_config(hub.config).at(datetime.now(UTC)).name

    def body(unit_id: str, shift: Any) -> dict[str, Any]:
        return {
            "id": unit_id,
            "callsign": unit_id[:16],
            "name": "TKSK Melati",
            "kind": "social_worker",
            "shift": shift,
        }

    for shift in ("sore", "Pagi", 7):
        unit_id = unique_name("tk")
        code, answer = await json_of(supervisor, "POST", "/api/v1/units", json=body(unit_id, shift))
        assert (code, answer["error"]["field"]) == (400, "shift"), (shift, answer)
        code, _ = await json_of(supervisor, "GET", f"/api/v1/units/{unit_id}")
        assert code == 404

    for shift in ("pagi", "siang", "malam"):
        unit_id = unique_name("tk")
        code, answer = await json_of(
            supervisor, "POST", "/api/v1/units", json={**body(unit_id, shift), "on_duty": False}
        )
        assert code == 201, answer
        assert (answer["shift"], answer["on_duty"]) == (shift, shift == current)
        code, listed = await json_of(
            supervisor, "GET", "/api/v1/units?kind=social_worker&limit=10000"
        )
        mine = next(unit for unit in listed["units"] if unit["id"] == unit_id)
        assert (mine["shift"], mine["on_duty"]) == (shift, shift == current)

    unit_id = unique_name("tk")
    code, answer = await json_of(supervisor, "POST", "/api/v1/units", json=body(unit_id, None))
    assert (code, answer["shift"], answer["on_duty"]) == (201, None, True)


async def test_current_shift_endpoint(login_as: LoginAs) -> None:
    viewer = await login_as(Role.VIEWER)
    code, body = await json_of(viewer, "GET", "/api/v1/shifts/current")
    assert code == 200, body
    now = datetime.now(UTC)
    started = datetime.fromisoformat(body["started_at"])
    ends = datetime.fromisoformat(body["ends_at"])
    assert started <= now < ends
    assert ends - started <= timedelta(hours=24)
    assert body["shifts"] == [
        {"name": "pagi", "start": "07:00"},
        {"name": "siang", "start": "15:00"},
        {"name": "malam", "start": "23:00"},
    ]
    local_start = started.astimezone(Schedule.from_starts({"x": "00:00"}, body["timezone"]).zone)
    expected = {shift["start"]: shift["name"] for shift in body["shifts"]}
    assert body["shift"] == expected[local_start.strftime("%H:%M")]


async def test_a_restart_mid_shift_keeps_the_duty_set_by_hand(hub: Hub) -> None:
    """The shift applied is kept in the database: a new clock in the same shift changes nothing,
    the next boundary applies the schedule again. Two clocks stand for two hub processes."""
    night = await _add_shift_unit(hub, "malam")
    # A shift of a day no other test uses: pagi began at 00:00 UTC on 2026-04-02.
    morning = datetime(2026, 4, 2, 1, 0, tzinfo=UTC)
    schedule = Schedule.from_config(hub.config)

    async def run_clock_once(at: datetime) -> ShiftClock:
        fake = FakeTime(at)
        clock = ShiftClock(hub.pool, hub.bus, schedule, now=fake, sleep=fake.sleep)
        task = asyncio.create_task(clock.run(AdapterContext(clock.name, hub.bus)))
        try:
            async with asyncio.timeout(WAIT):
                await fake.naps.get()  # it has applied (or skipped) the shift and sleeps
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return clock

    await run_clock_once(morning)
    assert await _duty(hub, night) == {night: False}
    async with hub.pool.acquire() as conn:  # an operator calls the night unit in early
        await conn.execute("UPDATE units SET on_duty = true WHERE id = $1", night)

    restarted = await run_clock_once(morning + timedelta(hours=2))
    assert restarted.applied is not None
    assert restarted.applied.name == "pagi"
    assert await _duty(hub, night) == {night: True}  # the restart left the hand-set duty alone

    await run_clock_once(datetime(2026, 4, 2, 8, 30, tzinfo=UTC))  # siang has begun
    assert await _duty(hub, night) == {night: False}
