"""The device bus fed messages directly (no broker): bad input is counted, good becomes events."""

from __future__ import annotations

import asyncio
import json

import pytest

from devices.mqtt.devicebus import DeviceBus
from devices.mqtt.link import MqttLink, MqttMessage
from ops.core.bus import Bus
from ops.core.events import DEVICE_ANNOUNCED, DEVICE_REPORTED


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def setup() -> tuple[DeviceBus, Bus, Clock]:
    bus = Bus()
    link = MqttLink(host="127.0.0.1", port=1, client_id="c", prefix="room/a", hub_id="h")
    clock = Clock()
    return DeviceBus(link, bus, max_payload=1024, rate=2.0, burst=2.0, clock=clock), bus, clock


def telemetry(device: str, body: object) -> MqttMessage:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return MqttMessage(f"room/a/devices/{device}/telemetry", payload)


def test_good_telemetry_becomes_a_report(setup: tuple[DeviceBus, Bus, Clock]) -> None:
    devicebus, bus, _ = setup
    reports = bus.subscribe(DEVICE_REPORTED)
    devicebus._on_telemetry(telemetry("cam-1", {"ts": 1.5, "fps": 25, "ok": True, "note": "x"}))
    envelope = reports.get_nowait()
    assert envelope is not None
    assert envelope.key == "cam-1"
    assert envelope.payload.figures == {"fps": 25, "ok": True, "note": "x"}
    assert envelope.payload.online is None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{oops", "not_json"),
        (b"\xff", "not_json"),
        ([1], "not_object"),
        ({"x": {"nested": 1}}, "wrong_type"),
        ({"x": [1]}, "wrong_type"),
        ({"ts": True}, "wrong_type"),
        (b'{"x": NaN}', "wrong_type"),
        ({f"{n}": 0 for n in range(70)}, "too_many_figures"),
        ({"x": "y" * 1100}, "too_large"),
    ],
)
def test_bad_telemetry_is_counted_not_raised(
    setup: tuple[DeviceBus, Bus, Clock], body: object, reason: str
) -> None:
    devicebus, bus, _ = setup
    reports = bus.subscribe(DEVICE_REPORTED)
    devicebus._on_telemetry(telemetry("dev-9", body))
    assert reports.get_nowait() is None
    assert devicebus.rejected_from("dev-9") == {reason: 1}


def test_storms_are_rate_limited_per_device(setup: tuple[DeviceBus, Bus, Clock]) -> None:
    devicebus, bus, clock = setup
    reports = bus.subscribe(DEVICE_REPORTED, maxsize=100)
    for _ in range(10):
        devicebus._on_telemetry(telemetry("noisy", {"n": 1}))
    devicebus._on_telemetry(telemetry("calm", {"n": 1}))
    clock.now = 1.0
    devicebus._on_telemetry(telemetry("noisy", {"n": 2}))
    keys = []
    while (envelope := reports.get_nowait()) is not None:
        keys.append(envelope.key)
    assert keys == ["noisy", "noisy", "calm", "noisy"]
    assert devicebus.rejected_from("noisy") == {"rate_limited": 8}
    assert devicebus.rejected_from("calm") == {}


def test_status_config_and_bad_ids(setup: tuple[DeviceBus, Bus, Clock]) -> None:
    devicebus, bus, _ = setup
    events = bus.subscribe([DEVICE_REPORTED, DEVICE_ANNOUNCED])
    devicebus._on_config(
        MqttMessage(
            "room/a/devices/sat-1/config",
            json.dumps(
                {"kind": "satellite_terminal", "name": "Sat", "lat": -7.1, "commands": ["ping"]}
            ).encode(),
            retain=True,
        )
    )
    devicebus._on_status(MqttMessage("room/a/devices/sat-1/status", b"offline", retain=True))
    devicebus._on_status(MqttMessage("room/a/devices/sat-1/status", b"sleeping"))
    devicebus._on_status(MqttMessage("room/a/devices/bad id/status", b"online"))
    announced = events.get_nowait()
    reported = events.get_nowait()
    assert announced is not None
    assert reported is not None
    assert announced.payload.commands == ("ping",)
    assert reported.payload.kind == "satellite_terminal"  # learnt from the announcement
    assert reported.payload.online is False
    assert events.get_nowait() is None
    assert devicebus.rejected_from("sat-1") == {"bad_status": 1}
    assert devicebus.rejected_by_reason()["bad_device_id"] == 1


def test_retained_replays_are_not_a_storm(setup: tuple[DeviceBus, Bus, Clock]) -> None:
    devicebus, _, _ = setup
    for _ in range(20):
        devicebus._on_status(MqttMessage("room/a/devices/d/status", b"online", retain=True))
    assert devicebus.rejected == {}


async def test_a_reply_nobody_waits_for_is_rejected(setup: tuple[DeviceBus, Bus, Clock]) -> None:
    devicebus, _, _ = setup
    await asyncio.sleep(0)
    devicebus._on_reply(MqttMessage("room/a/devices/d/cmd/reply", b'{"id": "x", "ok": true}'))
    devicebus._on_reply(
        MqttMessage("room/a/devices/d/cmd/reply", b'{"id": "x", "ok": true}', retain=True)
    )
    assert devicebus.rejected_from("d") == {"unknown_request": 1, "retained_reply": 1}
