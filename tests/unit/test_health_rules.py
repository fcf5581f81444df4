"""The pure health rules: states, silence, hysteresis and thresholds, on an injected clock."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.health import (
    DeviceHealth,
    HealthPolicy,
    HealthState,
    KindRules,
    Threshold,
    as_number,
)

POLICY = HealthPolicy(silence=30.0, hysteresis=5.0)


def test_first_report_commits_at_once() -> None:
    health = DeviceHealth("mqtt_sensor", POLICY)
    change = health.observe(0.0, {"battery_pct": 90})
    assert change is not None
    assert (change.old, change.new) == (HealthState.UNKNOWN, HealthState.ONLINE)
    assert health.state is HealthState.ONLINE


def test_last_will_goes_offline_after_the_hysteresis() -> None:
    health = DeviceHealth("camera", POLICY)
    health.observe(0.0, online=True)
    assert health.observe(1.0, online=False) is None
    assert health.pending is HealthState.OFFLINE
    assert health.evaluate(5.9) is None
    change = health.evaluate(6.0)
    assert change is not None
    assert change.new is HealthState.OFFLINE
    assert change.reason == "reported offline"


def test_a_blip_shorter_than_the_hysteresis_does_not_flap() -> None:
    health = DeviceHealth("camera", POLICY)
    health.observe(0.0, online=True)
    assert health.observe(10.0, online=False) is None
    assert health.observe(14.0, online=True) is None
    assert health.evaluate(100.0) is None
    assert health.state is HealthState.ONLINE
    assert health.pending is None


def test_silence_goes_offline_counted_from_the_end_of_the_window() -> None:
    health = DeviceHealth("mqtt_sensor", POLICY)
    health.observe(0.0, {"battery_pct": 80})
    assert health.evaluate(30.0) is None  # not yet beyond the window
    assert health.evaluate(34.0) is None  # offline since 30, hysteresis not over
    change = health.evaluate(35.0)
    assert change is not None
    assert change.new is HealthState.OFFLINE
    assert "silent" in change.reason


def test_a_late_tick_commits_silence_at_once() -> None:
    health = DeviceHealth("mqtt_sensor", POLICY)
    health.observe(0.0, {"battery_pct": 80})
    change = health.evaluate(100.0)
    assert change is not None
    assert change.new is HealthState.OFFLINE


def test_explicit_online_status_is_not_subject_to_silence() -> None:
    health = DeviceHealth("camera", POLICY)
    health.observe(0.0, online=True)
    assert health.evaluate(10_000.0) is None
    assert health.state is HealthState.ONLINE


def test_a_kind_can_have_its_own_silence() -> None:
    policy = HealthPolicy(
        silence=30.0, hysteresis=0.0, kinds={"beacon": KindRules("beacon", silence=300.0)}
    )
    health = DeviceHealth("beacon", policy)
    health.observe(0.0, {})
    assert health.evaluate(200.0) is None
    change = health.evaluate(301.0)
    assert change is not None
    assert change.new is HealthState.OFFLINE


def test_threshold_breach_degrades_and_raises_then_clears() -> None:
    health = DeviceHealth("satellite_terminal", POLICY)
    health.observe(0.0, {"signal_bars": 4, "queue_depth": 0})
    assert health.observe(1.0, {"signal_bars": 1}) is None
    change = health.evaluate(6.0)
    assert change is not None
    assert change.new is HealthState.DEGRADED
    assert [breach.figure for breach in change.raised] == ["signal_bars"]
    assert change.raised[0].reason == "signal_bars 1 < 2"
    health.observe(7.0, {"signal_bars": 3})
    change = health.evaluate(12.0)
    assert change is not None
    assert change.new is HealthState.ONLINE
    assert change.cleared == ("signal_bars",)


def test_a_second_breach_while_degraded_raises_only_the_new_one() -> None:
    health = DeviceHealth("satellite_terminal", HealthPolicy(hysteresis=0.0))
    health.observe(0.0, {"signal_bars": 1, "queue_depth": 0})
    change = health.observe(1.0, {"queue_depth": 50})
    assert change is not None
    assert (change.old, change.new) == (HealthState.DEGRADED, HealthState.DEGRADED)
    assert [breach.figure for breach in change.raised] == ["queue_depth"]
    assert change.cleared == ()


def test_going_offline_keeps_breaches_open() -> None:
    health = DeviceHealth("satellite_terminal", HealthPolicy(hysteresis=0.0))
    health.observe(0.0, {"signal_bars": 0})
    change = health.observe(1.0, online=False)
    assert change is not None
    assert change.new is HealthState.OFFLINE
    assert change.cleared == ()
    assert set(health.breaches) == {"signal_bars"}


def test_noisy_figures_do_not_flap() -> None:
    health = DeviceHealth("camera", POLICY)
    health.observe(0.0, {"fps": 25, "frame_age_s": 0.1})
    for step in range(1, 40):
        fps = 2 if step % 2 else 25
        assert health.observe(float(step), {"fps": fps}) is None
    assert health.state is HealthState.ONLINE


def test_unknown_kind_gets_generic_rules() -> None:
    health = DeviceHealth("weather_station", POLICY)
    change = health.observe(0.0, {"temperature_c": 99.0})
    assert change is not None
    assert change.new is HealthState.ONLINE
    assert POLICY.rules("weather_station").thresholds == ()


@pytest.mark.parametrize(
    ("value", "breached"),
    [(5, False), (5.01, True), ("many", False), (None, False), (True, False), (math.nan, False)],
)
def test_threshold_checks_only_numbers(value: float | str | None, breached: bool) -> None:
    assert Threshold("x", above=5).breached(value) is breached


def test_as_number() -> None:
    assert as_number(value=True) == 1.0
    assert as_number(3) == 3.0
    assert as_number(math.inf) is None
    assert as_number("3") is None


@given(
    st.lists(
        st.tuples(st.floats(min_value=0.0, max_value=2.0), st.sampled_from([True, False, None])),
        max_size=60,
    )
)
def test_no_commit_ever_happens_before_the_hysteresis(
    steps: list[tuple[float, bool | None]],
) -> None:
    """Whatever the sequence, two commits of a started device are at least hysteresis apart."""
    policy = HealthPolicy(silence=3.0, hysteresis=1.5)
    health = DeviceHealth("mqtt_sensor", policy)
    now = 0.0
    health.observe(now, {}, online=True)
    last_commit = now
    for gap, online in steps:
        now += gap
        change = health.observe(now, {}, online=online)
        if change is not None:
            assert now - last_commit >= policy.hysteresis - 1e-9
            last_commit = now


def test_tick_skips_what_time_cannot_change_and_catches_what_it_can() -> None:
    health = DeviceHealth("mqtt_sensor", POLICY)
    assert health.tick(0.0) is None  # never heard from
    health.observe(0.0, {"battery_pct": 80})
    assert health.tick(10.0) is None  # within the silence window
    assert health.tick(31.0) is None  # silent since 30: pending, not yet shown
    assert health.pending is HealthState.OFFLINE
    change = health.tick(35.0)
    assert change is not None
    assert change.new is HealthState.OFFLINE
    assert health.tick(1000.0) is None  # offline stays offline without noise


def test_tick_commits_a_pending_explicit_status() -> None:
    health = DeviceHealth("camera", POLICY)
    health.observe(0.0, online=True)
    health.observe(1.0, online=False)
    assert health.tick(3.0) is None
    change = health.tick(6.0)
    assert change is not None
    assert change.new is HealthState.OFFLINE


def test_distinct_figures_are_capped_and_known_ones_keep_updating() -> None:
    health = DeviceHealth("mqtt_sensor", POLICY)
    health.observe(0.0, {"battery_pct": 90})
    for n in range(100):
        health.observe(float(n), {f"made_up_{n}_{m}": m for m in range(64)})
    assert len(health.figures) == 64  # the cap, as the device bus has per message
    health.observe(200.0, {"battery_pct": 10, "another": 1})
    assert health.figures["battery_pct"] == 10
    assert "another" not in health.figures
    assert health.pending is HealthState.DEGRADED
