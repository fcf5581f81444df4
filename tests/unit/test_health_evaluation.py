"""Device health evaluation without I/O: bus events and an injected clock in, changes queued out."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ops.core.bus import Bus
from ops.core.config import DevicesConfig
from ops.core.events import (
    ADAPTER_STATUS,
    DEVICE_ANNOUNCED,
    DEVICE_REPORTED,
    AdapterState,
    AdapterStatus,
    DeviceAnnounced,
    DeviceReported,
    Envelope,
    Topic,
)
from ops.devicehealth.changes import AlarmAction, Pending
from ops.devicehealth.evaluation import UNKNOWN_DEVICE, HealthEvaluator
from ops.devicehealth.events import DEVICE_HEALTH

CONFIG = DevicesConfig(offline_after=30.0, hysteresis=5.0)
WALL_TIME = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
LINK = "mqtt"


class Clock:
    """Monotonic seconds that only move when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _evaluator(**kwargs: Any) -> tuple[HealthEvaluator, Clock, Bus]:
    bus = Bus()
    clock = Clock()
    evaluator = HealthEvaluator(
        bus,
        CONFIG,
        Pending(),
        hub_id="hub-test",
        clock=clock,
        wall_clock=lambda: WALL_TIME,
        link=LINK,
        **kwargs,
    )
    return evaluator, clock, bus


def _envelope(topic: Topic[Any], payload: Any, source: str = "test") -> Envelope[Any]:
    return Envelope(topic=topic, payload=payload, source=source, time=WALL_TIME)


def _health(bus: Bus, device_id: str) -> str | None:
    last = bus.last(DEVICE_HEALTH, device_id)
    return None if last is None else last.payload.state


def test_a_first_report_registers_the_device_and_queues_its_state() -> None:
    evaluator, _, bus = _evaluator()
    evaluator.handle(_envelope(DEVICE_REPORTED, DeviceReported("s-1", "mqtt_sensor", {"t": 1})))
    assert _health(bus, "s-1") == "online"
    batch = evaluator.pending.take()
    assert list(batch.seen) == ["s-1"]
    assert batch.states["s-1"].state == "online"
    assert [(event[0], event[2]) for event in batch.events] == [("s-1", "state")]
    assert evaluator.pending.wake.is_set()


def test_silence_raises_the_offline_alarm_and_a_report_clears_it() -> None:
    evaluator, clock, bus = _evaluator()
    evaluator.handle(_envelope(DEVICE_REPORTED, DeviceReported("s-1", "mqtt_sensor")))
    evaluator.pending.take()
    clock.now = 29.0
    evaluator.tick()
    assert _health(bus, "s-1") == "online"
    clock.now = 36.0  # the silence, then the hysteresis
    evaluator.tick()
    assert _health(bus, "s-1") == "offline"
    offline = evaluator.pending.take()
    assert offline.alarms[0] == AlarmAction(
        "raise", "s-1", "offline", "warning", offline.alarms[0].message
    )
    evaluator.handle(_envelope(DEVICE_REPORTED, DeviceReported("s-1", "mqtt_sensor")))
    clock.now = 42.0
    evaluator.tick()
    assert _health(bus, "s-1") == "online"
    assert evaluator.pending.take().alarms == [AlarmAction("clear", "s-1", "offline")]


def test_an_untrusted_unknown_device_is_dropped_until_it_announces_itself() -> None:
    evaluator, _, bus = _evaluator(untrusted=frozenset({"devicebus"}))
    status = DeviceReported("s-2", "mqtt_sensor", online=True)
    evaluator.handle(_envelope(DEVICE_REPORTED, status, source="devicebus"))
    assert "s-2" not in evaluator.devices
    assert evaluator.rejected[("s-2", UNKNOWN_DEVICE)] == 1
    note = DeviceAnnounced("s-2", "mqtt_sensor", adapter="devicebus", commands=("calibrate",))
    evaluator.handle(_envelope(DEVICE_ANNOUNCED, note, source="devicebus"))
    # The status it sent before it was known is applied once it is.
    assert _health(bus, "s-2") == "online"
    assert "calibrate" in evaluator.commands_of(evaluator.entry("s-2"))


def test_silence_is_not_judged_while_the_link_is_down() -> None:
    evaluator, clock, bus = _evaluator()
    evaluator.handle(_envelope(DEVICE_REPORTED, DeviceReported("s-3", "mqtt_sensor")))
    down = AdapterStatus(LINK, AdapterState.BACKOFF, restarts=1)
    evaluator.handle(_envelope(ADAPTER_STATUS, down))
    assert evaluator.judged_at is None
    clock.now = 100.0
    evaluator.tick()
    assert evaluator.judged_at == 100.0  # judged, and found nothing to change
    assert _health(bus, "s-3") == "online"
    evaluator.link_changed(AdapterState.RUNNING)
    clock.now = 129.0  # a fresh silence window from the link's return
    evaluator.tick()
    assert _health(bus, "s-3") == "online"
    clock.now = 136.0
    evaluator.tick()
    assert _health(bus, "s-3") == "offline"
