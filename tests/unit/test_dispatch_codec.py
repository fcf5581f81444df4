"""The MQTT app channel's wire format, with no broker: what parses, what is refused and why."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from ops.dispatch.channels import OrderCopy
from ops.dispatch.mqtt_app import Malformed, encode_order, parse_event, parse_position, unit_of

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
        (b"", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[]", "not a JSON object"),
        (b'{"lat": "1", "lon": 2}', "lat and lon must be numbers"),
        (b'{"lat": null, "lon": 2}', "lat and lon must be numbers"),
        (b'{"lat": false, "lon": 2}', "lat and lon must be numbers"),
        (b'{"lat": 1, "lon": 2, "ts": "noon"}', "ts must be epoch seconds or ISO 8601"),
        (b'{"lat": 1, "lon": 2, "ts": "2026-01-01T07:00:00"}', "ts needs a time zone"),
        (b'{"lat": 1, "lon": 2, "ts": 1e300}', "ts out of range"),
        (b'{"lat": 1, "lon": 2, "ts": [1]}', "ts must be epoch seconds or ISO 8601"),
        (b'{"lat": 1, "lon": 2, "pad": "' + b"x" * 5000 + b'"}', "payload over 4096 bytes"),
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
    copy = OrderCopy(
        order_id="0a1b2c3d4e5f",
        unit_id="TGN-01",
        channel="mqtt",
        address="TGN-01",
        attempt=2,
        message="Banjir, evakuasi warga",
        case_id=7,
        case_number="PSK-0000007",
        case_title="Banjir",
        category="disaster",
        priority="high",
        lat=-6.2,
        lon=106.8,
    )
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
