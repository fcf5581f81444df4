"""Supervisor: backoff maths, restart on failure, staleness, fatal errors, ordered stop."""

from __future__ import annotations

import asyncio
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ops.core.adapter import AdapterContext
from ops.core.bus import Bus
from ops.core.errors import AdapterAuthError, AdapterConfigError, AdapterNotReady
from ops.core.events import ADAPTER_STATUS, ALARM_RAISED, AdapterState
from ops.core.supervisor import RestartPolicy, Supervisor
from tests.polling import eventually

FAST = RestartPolicy(initial=0.01, factor=2.0, cap=0.05, jitter=0.0, reset_after=0.2)


@given(
    failures=st.integers(min_value=0, max_value=200),
    rand=st.floats(min_value=0.0, max_value=0.999999),
)
def test_backoff_is_capped_and_jittered_within_bounds(failures: int, rand: float) -> None:
    policy = RestartPolicy(initial=1.0, factor=2.0, cap=60.0, jitter=0.2)
    delay = policy.delay(failures, rand)
    base = min(60.0, 2.0**failures)
    assert base * 0.8 - 1e-9 <= delay <= base * 1.2 + 1e-9


@given(
    failures=st.integers(min_value=0, max_value=200),
    rand=st.floats(min_value=0.0, max_value=0.999999),
)
def test_jittered_backoff_never_exceeds_the_cap(failures: int, rand: float) -> None:
    policy = RestartPolicy(initial=1.0, factor=2.0, cap=60.0, jitter=0.2)
    assert policy.delay(failures, rand) <= 60.0


def test_capped_backoff_still_spreads_below_the_cap() -> None:
    policy = RestartPolicy(initial=1.0, factor=2.0, cap=60.0, jitter=0.2)
    assert policy.delay(10, 0.0) == pytest.approx(48.0)
    assert policy.delay(10, 0.999999) == 60.0


def test_backoff_doubles_until_cap() -> None:
    policy = RestartPolicy(initial=1.0, factor=2.0, cap=60.0, jitter=0.2)
    assert [policy.delay(n, 0.5) for n in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]


class Flaky:
    """Fails ``fail_times`` times, then runs healthy, heartbeating."""

    heartbeat_interval: float | None = None

    def __init__(self, name: str, fail_times: int, error: BaseException | None = None) -> None:
        self.name = name
        self.fail_times = fail_times
        self.error = error or AdapterNotReady("link down")
        self.runs = 0
        self.healthy = asyncio.Event()

    async def run(self, ctx: AdapterContext) -> None:
        self.runs += 1
        if self.runs <= self.fail_times:
            ctx.heartbeat()
            raise self.error
        ctx.heartbeat()
        self.healthy.set()
        await asyncio.Event().wait()


def states_of(sub, name: str) -> list[AdapterState]:
    out = []
    while (env := sub.get_nowait()) is not None:
        if env.payload.name == name:
            out.append(env.payload.state)
    return out


async def test_failing_adapter_is_restarted_with_backoff_until_healthy() -> None:
    bus = Bus()
    sleeps: list[float] = []

    async def sleep(delay: float) -> None:
        sleeps.append(delay)
        await asyncio.sleep(0)

    sup = Supervisor(bus, FAST, sleep=sleep)
    sub = bus.subscribe(ADAPTER_STATUS)
    flaky = Flaky("radio", fail_times=3)
    sup.start(flaky)
    await asyncio.wait_for(flaky.healthy.wait(), 2)
    assert flaky.runs == 4
    assert sleeps == [0.01, 0.02, 0.04]
    assert sup.status["radio"].state is AdapterState.RUNNING
    assert sup.status["radio"].restarts == 3
    await sup.stop_all()
    states = states_of(sub, "radio")
    assert states[:4] == [
        AdapterState.STARTING,
        AdapterState.RUNNING,
        AdapterState.BACKOFF,
        AdapterState.STARTING,
    ]
    assert states[-1] is AdapterState.STOPPED


async def test_backoff_resets_after_a_healthy_period() -> None:
    bus = Bus()
    sleeps: list[float] = []
    clock_now = [0.0]

    async def sleep(delay: float) -> None:
        sleeps.append(delay)
        await asyncio.sleep(0)

    class HealthyThenFails:
        name = "sat"
        heartbeat_interval = None
        runs = 0

        async def run(self, ctx: AdapterContext) -> None:
            self.runs += 1
            ctx.heartbeat()
            if self.runs == 3:
                clock_now[0] += 10.0  # this run stayed healthy far longer than reset_after
            if self.runs >= 5:
                await asyncio.Event().wait()
            raise OSError("serial port vanished")

    sup = Supervisor(bus, FAST, sleep=sleep, clock=lambda: clock_now[0])
    adapter = HealthyThenFails()
    sup.start(adapter)
    await eventually(lambda: adapter.runs >= 5, timeout=2, interval=0.005)
    await sup.stop_all()
    assert sleeps == [0.01, 0.02, 0.01, 0.02]


async def test_stale_heartbeat_cancels_and_restarts() -> None:
    """Staleness is judged on the injected clock, so a stalled test loop cannot fake silence."""
    bus = Bus()
    alive = asyncio.Event()
    stalled = asyncio.Event()
    cancelled: list[bool] = []
    now = [0.0]
    reads = [0]  # of the clock: each beat reads it once, the watch once per look
    beats = [0]

    def clock() -> float:
        reads[0] += 1
        return now[0]

    def looks() -> int:
        return reads[0] - beats[0]

    async def sleep(_delay: float) -> None:
        await asyncio.sleep(0)

    class Silent:
        name = "camera-1"
        heartbeat_interval = 0.02
        runs = 0

        async def run(self, ctx: AdapterContext) -> None:
            self.runs += 1
            beats[0] += 1
            ctx.heartbeat()
            if self.runs >= 2:
                alive.set()
                while True:
                    beats[0] += 1
                    ctx.heartbeat()
                    await asyncio.sleep(0.005)
            stalled.set()
            try:
                await asyncio.Event().wait()  # stalls: never beats again
            except asyncio.CancelledError:
                cancelled.append(True)
                raise

    sub = bus.subscribe(ADAPTER_STATUS)
    sup = Supervisor(bus, FAST, clock=clock, sleep=sleep)
    sup.start(Silent())
    await asyncio.wait_for(stalled.wait(), 2)
    now[0] += 1.0  # far beyond 4.5 intervals of silence
    await asyncio.wait_for(alive.wait(), 2)
    # A healthy, beating run is not cancelled: the clock stands still, however long this takes
    # (the watch looks many times over).
    seen = looks()
    await eventually(lambda: looks() >= seen + 20, timeout=5, interval=0.005)
    assert sup.status["camera-1"].state is AdapterState.RUNNING
    await sup.stop_all()
    assert cancelled == [True]
    details = []
    while (env := sub.get_nowait()) is not None:
        if env.payload.state is AdapterState.BACKOFF:
            details.append(env.payload.detail)
    assert len(details) == 1
    assert "AdapterStale" in details[0]


@pytest.mark.allow_error_log
@pytest.mark.parametrize("error", [AdapterConfigError("bad port"), AdapterAuthError("denied")])
async def test_config_and_auth_errors_stop_with_alarm(error: BaseException) -> None:
    bus = Bus()
    alarms = bus.subscribe(ALARM_RAISED)
    sup = Supervisor(bus, FAST)
    flaky = Flaky("mqtt", fail_times=100, error=error)
    sup.start(flaky)
    await eventually(
        lambda: sup.status.get("mqtt") and sup.status["mqtt"].state is AdapterState.FAILED,
        timeout=2,
        interval=0.005,
    )
    assert sup.status["mqtt"].state is AdapterState.FAILED
    assert flaky.runs == 1
    alarm = alarms.get_nowait()
    assert alarm is not None
    assert alarm.payload.code == "adapter_failed"
    await sup.stop_all()


@pytest.mark.allow_error_log
async def test_unknown_exception_is_retried_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    bus = Bus()
    sup = Supervisor(bus, FAST)
    flaky = Flaky("wall", fail_times=1, error=ZeroDivisionError("bug"))
    sup.start(flaky)
    await asyncio.wait_for(flaky.healthy.wait(), 2)
    await sup.stop_all()
    assert any(r.levelname == "ERROR" and "crashed" in r.message for r in caplog.records)


async def test_restart_storm_raises_alarm() -> None:
    bus = Bus()
    alarms = bus.subscribe(ALARM_RAISED)
    policy = RestartPolicy(initial=0.001, cap=0.001, jitter=0.0, storm_restarts=3)
    sup = Supervisor(bus, policy)
    flaky = Flaky("gw", fail_times=6)
    sup.start(flaky)
    await asyncio.wait_for(flaky.healthy.wait(), 2)
    await sup.stop_all()
    codes = []
    while (env := alarms.get_nowait()) is not None:
        codes.append(env.payload.code)
    assert "restart_storm" in codes


async def test_stop_all_stops_in_reverse_order_without_leaking_tasks() -> None:
    bus = Bus()
    order: list[str] = []

    class Recorder:
        heartbeat_interval = None

        def __init__(self, name: str) -> None:
            self.name = name

        async def run(self, ctx: AdapterContext) -> None:
            ctx.heartbeat()
            try:
                await asyncio.Event().wait()
            finally:
                order.append(self.name)

    before = asyncio.all_tasks()
    sup = Supervisor(bus, FAST)
    for name in ("db-writer", "mqtt", "radio"):
        sup.start(Recorder(name))
    await eventually(
        lambda: [s.state for s in sup.status.values()] == [AdapterState.RUNNING] * 3, timeout=2
    )
    await sup.stop_all()
    assert order == ["radio", "mqtt", "db-writer"]
    assert asyncio.all_tasks() == before
    assert all(s.state is AdapterState.STOPPED for s in sup.status.values())


@pytest.mark.allow_error_log
async def test_stuck_adapter_does_not_stall_stop(caplog: pytest.LogCaptureFixture) -> None:
    bus = Bus()

    class Stubborn:
        name = "stuck"
        heartbeat_interval = None

        async def run(self, ctx: AdapterContext) -> None:
            ctx.heartbeat()
            while True:
                try:
                    await asyncio.sleep(10)
                except asyncio.CancelledError:
                    if asyncio.current_task().cancelling() > 3:  # type: ignore[union-attr]
                        raise

    sup = Supervisor(bus, FAST, stop_timeout=0.05)
    sup.start(Stubborn())
    await eventually(
        lambda: "stuck" in sup.status and sup.status["stuck"].state is AdapterState.RUNNING
    )
    with caplog.at_level(logging.ERROR, logger="ops.core.supervisor"):
        await asyncio.wait_for(sup.stop_all(), 2)
    # The stuck run is named in the log and abandoned; the adapter is reported stopped.
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == ["task adapter:stuck ignored cancellation for 0.1 s"]
    assert sup.status["stuck"].state is AdapterState.STOPPED
    assert sup.names == []
    # let the stubborn task finally end so the test leaves nothing behind
    for task in asyncio.all_tasks():
        if task.get_name().startswith(("adapter:stuck", "supervise:stuck")):
            for _ in range(5):
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_returning_run_is_treated_as_failure() -> None:
    bus = Bus()
    sleeps: list[float] = []

    async def sleep(delay: float) -> None:
        sleeps.append(delay)
        await asyncio.sleep(0)

    class Quitter:
        name = "quitter"
        heartbeat_interval = None
        runs = 0

        async def run(self, _ctx: AdapterContext) -> None:
            self.runs += 1
            if self.runs > 2:
                await asyncio.Event().wait()

    sup = Supervisor(bus, FAST, sleep=sleep)
    quitter = Quitter()
    sup.start(quitter)
    await eventually(lambda: quitter.runs >= 3, timeout=2, interval=0.005)
    await sup.stop_all()
    assert quitter.runs == 3
    assert len(sleeps) == 2
