"""The MQTT app channel's wire format and its handlers, with no broker: what parses, what is
refused and why, and that nothing a unit sends can crash the adapter."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from devices.mqtt.appchannel import MqttAppChannel
from devices.mqtt.appcodec import (
    MAX_ORDER,
    Malformed,
    encode_order,
    parse_event,
    parse_position,
    unit_of,
)
from devices.mqtt.link import MqttMessage
from ops.core.bus import Bus
from ops.core.channels import (
    CHANNEL_EVENT,
    ChannelInputRejected,
    CopyAcknowledged,
    CopyDelivered,
    SendCopy,
    UnitStatusReported,
    UnitTextReceived,
)
from ops.core.events import UNIT_POSITION_REPORTED

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_position_with_epoch_iso_or_no_time() -> None:
    assert parse_position(b'{"lat": -6.2, "lon": 106.8, "ts": 1767225600}', NOW) == (
        -6.2,
        106.8,
        datetime(2026, 1, 1, tzinfo=UTC),
    )
    lat, lon, at = parse_position(b'{"lat": 1, "lon": 2, "ts": "2026-01-01T07:00:00+07:00"}', NOW)
    assert (lat, lon, at) == (1.0, 2.0, datetime(2026, 1, 1, tzinfo=UTC))
    assert parse_position(b'{"lat": 1.5, "lon": 2.5}', NOW) == (1.5, 2.5, NOW)


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"", "not JSON: Expecting value"),
        (b"\xff\xfe", "not JSON"),
        (b'{"lat": 1,', "not JSON: Expecting property name"),
        (b"[" * 2000 + b"]" * 2000, "not JSON: nested too deep"),
        (b"[]", "not a JSON object"),
        (b'{"lat": "1", "lon": 2}', "lat and lon must be numbers"),
        (b'{"lat": null, "lon": 2}', "lat and lon must be numbers"),
        (b'{"lat": false, "lon": 2}', "lat and lon must be numbers"),
        (b'{"lat": 1, "lon": 2, "ts": "noon"}', "ts must be epoch seconds or ISO 8601"),
        (b'{"lat": 1, "lon": 2, "ts": "2026-01-01T07:00:00"}', "ts needs a time zone"),
        (b'{"lat": 1, "lon": 2, "ts": 1e300}', "ts out of range"),
        (b'{"lat": 1, "lon": 2, "ts": [1]}', "ts must be epoch seconds or ISO 8601"),
        (b'{"lat": 1, "lon": 2, "pad": "' + b"x" * 5000 + b'"}', "payload over 4096 bytes"),
        (b'{"lat": 1, "lon": 2, "ts": NaN}', "ts must be finite"),
    ],
)
def test_malformed_positions_say_why(payload: bytes, why: str) -> None:
    with pytest.raises(Malformed, match=why):
        parse_position(payload, NOW)


def test_events() -> None:
    assert parse_event("U1", b'{"type": "ack", "order": "0a1b2c3d4e5f"}').order_id == "0a1b2c3d4e5f"
    status = parse_event("U1", b'{"type": "status", "status": "on_scene"}')
    assert (status.kind, status.status, status.order_id) == ("status", "on_scene", None)
    text = parse_event("U1", b'{"type": "text", "text": "  need water  "}')
    assert text.text == "need water"


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b'{"type": "hello"}', "type must be one of"),
        (b'{"type": "ack"}', "a ack event needs the order id"),
        (b'{"type": "ack", "order": "NOT-AN-ID"}', "order must be an order id"),
        (b'{"type": "ack", "order": 12}', "order must be an order id"),
        (b'{"type": "status"}', "a status event needs a status"),
        (b'{"type": "text", "text": "   "}', "a text event needs text"),
        (b'{"type": "text", "text": "a\\u0000b"}', "text must not contain NUL"),
        (b'{"type": "text", "text": 5}', "a text event needs text"),
        (b'{"type": "status", "status": ["on_scene"]}', "a status event needs a status"),
        (b'{"type": 1}', "type must be one of"),
        (b'{"type": "text", "text": "hi", "id": "has space"}', "id must be 1-64 letters"),
        (b'{"type": "text", "text": "hi", "id": 7}', "id must be 1-64 letters"),
        (b'"ack"', "not a JSON object"),
        (
            b'{"type": "ack", "order": "0a1b2c3d4e5f", "pad": "' + b"x" * 5000 + b'"}',
            "payload over 4096 bytes",
        ),
    ],
)
def test_malformed_events_say_why(payload: bytes, why: str) -> None:
    with pytest.raises(Malformed, match=why):
        parse_event("U1", payload)


def test_unit_of_topic() -> None:
    assert unit_of("posko/x/units/TGN-01/position", "posko/x/units", "position") == "TGN-01"
    assert unit_of("posko/x/units/a/b/position", "posko/x/units", "position") is None
    assert unit_of("other/units/TGN-01/position", "posko/x/units", "position") is None
    assert unit_of("posko/x/units/TGN-01/events", "posko/x/units", "position") is None


def test_order_carries_its_id_and_the_case() -> None:
    copy = order_copy(message="Banjir, evakuasi warga")
    body = json.loads(encode_order(copy))
    assert body == {
        "type": "order",
        "order": "0a1b2c3d4e5f",
        "unit": "TGN-01",
        "attempt": 2,
        "message": "Banjir, evakuasi warga",
        "case": {
            "id": 7,
            "number": "PSK-0000007",
            "title": "Banjir",
            "category": "disaster",
            "priority": "high",
            "lat": -6.2,
            "lon": 106.8,
        },
    }
    assert "Banjir, evakuasi" in encode_order(copy).decode()  # UTF-8, not escaped


def test_an_order_too_big_for_the_link_is_refused_with_its_size() -> None:
    with pytest.raises(Malformed, match=f"over {MAX_ORDER} bytes"):
        encode_order(order_copy(message="x" * MAX_ORDER))


def order_copy(*, message: str) -> SendCopy:
    return SendCopy(
        copy_id=1,
        order_id="0a1b2c3d4e5f",
        unit_id="TGN-01",
        channel="mqtt",
        address="TGN-01",
        attempt=2,
        message=message,
        case_id=7,
        case_number="PSK-0000007",
        case_title="Banjir",
        category="disaster",
        priority="high",
        lat=-6.2,
        lon=106.8,
        lease_until=NOW,
        deadline=NOW,
    )


class _Port:
    """The link's topic naming: the handlers under test only name topics, they send nothing."""

    def topic(self, *parts: str) -> str:
        return "/".join(("posko", *parts))


GARBAGE = [
    b"",
    b"\x00\x01\x02",
    b"{",
    b"null",
    b"[" * 5000,
    b'{"type": "ack", "order": {"nested": true}}',
    b'{"type": "text", "text": "' + b"x" * 10_000 + b'"}',
    b'{"lat": "north", "lon": []}',
    b"\xed\xa0\x80",
]


async def test_the_adapter_turns_app_messages_into_typed_channel_events() -> None:
    bus = Bus()
    bus.bind(asyncio.get_running_loop())
    channel = MqttAppChannel(cast("Any", _Port()), bus)
    async with (
        bus.subscribe(CHANNEL_EVENT, name="events") as events,
        bus.subscribe(UNIT_POSITION_REPORTED, name="positions") as positions,
    ):
        topic = "posko/units/TGN-01/events"
        for body in (
            {"type": "received", "order": "0a1b2c3d4e5f"},
            {"type": "ack", "order": "0a1b2c3d4e5f"},
            {"type": "status", "status": "on_scene"},
            {"type": "text", "text": "butuh air", "id": "m-1"},
        ):
            channel.on_event(MqttMessage(topic, json.dumps(body).encode()))
        channel.on_position(MqttMessage("posko/units/TGN-01/position", b'{"lat": 1, "lon": 2}'))
        got = [envelope.payload for envelope in drain(events)]
        [position] = [envelope.payload for envelope in drain(positions)]
    assert got == [
        CopyDelivered("0a1b2c3d4e5f", "TGN-01", "mqtt"),
        CopyAcknowledged("0a1b2c3d4e5f", "TGN-01", "mqtt", None),
        UnitStatusReported("TGN-01", "mqtt", "on_scene", None),
        UnitTextReceived("TGN-01", "mqtt", "butuh air", None, "m-1"),
    ]
    assert (position.unit_id, position.lat, position.lon, position.source) == (
        "TGN-01",
        1.0,
        2.0,
        "mqtt",
    )


@pytest.mark.parametrize("payload", GARBAGE)
async def test_garbage_never_crashes_the_adapter_and_says_why(payload: bytes) -> None:
    bus = Bus()
    bus.bind(asyncio.get_running_loop())
    channel = MqttAppChannel(cast("Any", _Port()), bus)
    async with bus.subscribe(CHANNEL_EVENT, name="events") as events:
        channel.on_event(MqttMessage("posko/units/TGN-01/events", payload))
        channel.on_position(MqttMessage("posko/units/TGN-01/position", payload))
        channel.on_event(MqttMessage("posko/units/bad id!/events", b"{}"))
        rejected = [envelope.payload for envelope in drain(events)]
    assert all(isinstance(r, ChannelInputRejected) for r in rejected)
    assert [(r.kind, r.source, r.reason) for r in rejected] == [  # type: ignore[union-attr]
        ("event", "TGN-01", "malformed"),
        ("position", "TGN-01", "malformed"),
        ("event", "posko/units/bad id!/events", "malformed"),
    ]
    assert all(r.detail for r in rejected)  # type: ignore[union-attr]


def drain(subscription: Any) -> list[Any]:
    items = []
    while (item := subscription.get_nowait()) is not None:
        items.append(item)
    return items
