"""The position ingestor's checks and its bounded buffer, with no database."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from ops.core.bus import Bus
from ops.core.events import ALARM_RAISED
from ops.units.positions import PositionIngestor

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def ingestor(bus: Bus, **kwargs: Any) -> PositionIngestor:
    return PositionIngestor(cast("Any", None), bus, clock=lambda: NOW, **kwargs)


async def test_checks_count_per_source_and_reason() -> None:
    bus = Bus()
    bus.bind(asyncio.get_running_loop())
    positions = ingestor(bus, future_tolerance=60)
    assert positions.ingest("U1", -6.2, 106.8, NOW, "mqtt")
    assert positions.ingest("U1", -6.2, 106.8, NOW + timedelta(seconds=59), "mqtt")
    assert not positions.ingest("U1", -6.2, 106.8, NOW + timedelta(seconds=61), "mqtt")
    assert not positions.ingest("U1", 90.5, 106.8, NOW, "aprs")
    assert not positions.ingest("U1", -6.2, -180.1, NOW, "aprs")
    assert not positions.ingest("U1", math.nan, 106.8, NOW, "aprs")
    assert not positions.ingest("U1", -6.2, math.inf, NOW, "aprs")
    assert not positions.ingest("bad id!", -6.2, 106.8, NOW, "nmea")
    assert not positions.ingest("U1", -6.2, 106.8, NOW.replace(tzinfo=None), "nmea")
    assert positions.stats() == {
        "accepted": {"mqtt": 2},
        "rejected": {
            "mqtt": {"future": 1},
            "aprs": {"out_of_range": 4},
            "nmea": {"malformed": 2},
        },
        "buffered": 2,
        "stored": 0,
    }


async def test_a_full_buffer_drops_the_oldest_and_alarms_once() -> None:
    bus = Bus()
    bus.bind(asyncio.get_running_loop())
    async with bus.subscribe(ALARM_RAISED, name="alarms") as alarms:
        positions = ingestor(bus, buffer=100)
        for i in range(150):
            assert positions.ingest("U1", 0.0, i / 1000, NOW, "mqtt")
        assert positions.pending == 100
        assert positions.stats()["rejected"] == {"mqtt": {"overflow": 50}}
        alarm = alarms.get_nowait()
        assert alarm is not None
        assert alarm.payload.code == "positions.overflow"
        assert alarms.get_nowait() is None
