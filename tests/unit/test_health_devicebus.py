"""The device bus fed messages directly (no broker): bad input is counted, good becomes events."""

from __future__ import annotations

import asyncio
import json

import pytest

from devices.mqtt.devicebus import MAX_FIGURES, DeviceBus
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
        ({"note": "a\u0000b"}, "wrong_type"),
        ({"a\u0000": 1}, "wrong_type"),
        ({"note": "bell\u0007"}, "wrong_type"),
        ({"tab\tname": 1}, "wrong_type"),
        (b'{"note": "\\ud800"}', "wrong_type"),
        (b'{"x": 1' + b"0" * 400 + b"}", "wrong_type"),
        (b'{"x": -1' + b"0" * 400 + b"}", "wrong_type"),
        (b'{"ts": 1' + b"0" * 400 + b"}", "wrong_type"),
        ({"ts": "garbage", "x": 1}, "wrong_type"),
        ({"ts": "2026-11-29T08:00:00", "x": 1}, "wrong_type"),
        ({"ts": -1, "x": 1}, "wrong_type"),
        ({"ts": "1900-01-01T00:00:00+00:00", "x": 1}, "wrong_type"),
        ({"ts": 1e300, "x": 1}, "wrong_type"),
        (b'{"ts": NaN, "x": 1}', "wrong_type"),
        (b"[" * 1020, "not_json"),
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


@pytest.mark.parametrize(
    "ts", [None, 0, 1764000000, 1764000000.25, "2026-11-29T08:00:00Z", "2026-11-29T15:00:00+07:00"]
)
def test_good_ts_and_texts_with_tabs_and_line_breaks_pass(
    setup: tuple[DeviceBus, Bus, Clock], ts: object
) -> None:
    devicebus, bus, _ = setup
    reports = bus.subscribe(DEVICE_REPORTED)
    devicebus._on_telemetry(telemetry("dev-1", {"ts": ts, "note": "a\tb\nc", "big": 10**300}))
    envelope = reports.get_nowait()
    assert envelope is not None
    assert envelope.payload.figures == {"note": "a\tb\nc", "big": 10**300}
    assert devicebus.rejected == {}


def test_json_nested_past_the_recursion_limit_is_not_json() -> None:
    bus = Bus()
    link = MqttLink(host="127.0.0.1", port=1, client_id="c", prefix="room/a", hub_id="h")
    devicebus = DeviceBus(link, bus, max_payload=16_384)
    reports = bus.subscribe(DEVICE_REPORTED)
    devicebus._on_telemetry(telemetry("deep", b"[" * 16_000))
    devicebus._on_telemetry(telemetry("deep", b'{"a":' * 2500 + b"1" + b"}" * 2500))
    devicebus._on_config(config("deep", b'{"attributes":' * 1000 + b"{}" + b"}" * 1000))
    assert reports.get_nowait() is None
    assert devicebus.rejected_from("deep") == {"not_json": 3}


def config(device: str, body: object) -> MqttMessage:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return MqttMessage(f"room/a/devices/{device}/config", payload, retain=True)


@pytest.mark.parametrize(
    "body",
    [
        {"name": "a\u0000b"},
        {"site": "x\u001by"},
        {"tags": ["ok", "n\u0000"]},
        {"commands": ["ping\n"]},
        {"attributes": {"note": "a\u0000b"}},
        {"attributes": {"k\u0000": 1}},
        {"attributes": {"list": [1, ["deep", {"x": "\u0000"}]]}},
        {"attributes": json.loads('{"a":' * 12 + "1" + "}" * 12)},
        b'{"attributes": {"x": NaN}}',
        b'{"attributes": {"x": 1' + b"0" * 400 + b".5e999}}",
        b'{"lat": 1' + b"0" * 400 + b"}",
        b'{"lon": -1' + b"0" * 400 + b"}",
    ],
)
def test_bad_config_texts_and_numbers_are_wrong_type(
    setup: tuple[DeviceBus, Bus, Clock], body: object
) -> None:
    devicebus, bus, _ = setup
    events = bus.subscribe(DEVICE_ANNOUNCED)
    devicebus._on_config(config("cfg-1", body))
    assert events.get_nowait() is None
    assert devicebus.rejected_from("cfg-1") == {"wrong_type": 1}


def test_a_config_with_plain_attributes_is_announced(setup: tuple[DeviceBus, Bus, Clock]) -> None:
    devicebus, bus, _ = setup
    events = bus.subscribe(DEVICE_ANNOUNCED)
    attributes = {"stream_url": "rtsp://x/1", "notes": "line one\nline two", "n": [1, {"a": 2}]}
    devicebus._on_config(config("cfg-2", {"name": "Cam 2", "attributes": attributes}))
    envelope = events.get_nowait()
    assert envelope is not None
    assert envelope.payload.attributes == attributes
    assert devicebus.rejected == {}


@pytest.mark.parametrize(
    "body",
    [
        b'{"id": "r1", "ok": true, "result": {"x": "a\\u0000"}}',
        b'{"id": "r1", "ok": false, "error": "boom\\u0000"}',
        b'{"id": "r1", "ok": true, "result": {"x": Infinity}}',
    ],
)
def test_a_reply_the_database_could_not_store_is_wrong_type(
    setup: tuple[DeviceBus, Bus, Clock], body: bytes
) -> None:
    devicebus, _, _ = setup
    devicebus._pending["r1"] = ("d", 10.0)
    devicebus._on_reply(MqttMessage("room/a/devices/d/cmd/reply", body))
    assert devicebus.rejected_from("d") == {"wrong_type": 1}
    assert "r1" in devicebus._pending


def test_figure_names_per_device_are_capped_and_known_ones_keep_updating(
    setup: tuple[DeviceBus, Bus, Clock],
) -> None:
    devicebus, bus, clock = setup
    devicebus.rate = devicebus.burst = 1000.0
    reports = bus.subscribe(DEVICE_REPORTED, maxsize=100)
    devicebus._on_telemetry(telemetry("inventive", {f"a{n}": n for n in range(MAX_FIGURES)}))
    clock.now = 1.0
    devicebus._on_telemetry(telemetry("inventive", {"a0": 100, "new-1": 1, "new-2": 2}))
    devicebus._on_telemetry(telemetry("inventive", {"new-3": 3}))
    devicebus._on_telemetry(telemetry("other", {"b0": 1}))
    figures = []
    while (envelope := reports.get_nowait()) is not None:
        figures.append((envelope.key, envelope.payload.figures))
    assert len(figures[0][1]) == MAX_FIGURES
    assert figures[1:] == [("inventive", {"a0": 100}), ("inventive", {}), ("other", {"b0": 1})]
    assert devicebus.rejected_from("inventive") == {"too_many_figures": 2}
    assert devicebus.rejected_from("other") == {}


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
