"""The simulated field for ``posko up --demo`` and training: units and devices on the broker.

Units are :class:`~devices.mqtt.unitapp.UnitApp` apps that wander around their start point,
report positions and acknowledge orders after a human-looking pause; devices are
:class:`~devices.mqtt.simulator.SimulatedDevice` s sending telemetry with their last will set.
Everything speaks the real MQTT topics, so the hub cannot tell the field from a real one.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from dataclasses import dataclass, field
from typing import Any

from devices.mqtt.simulator import SimulatedDevice
from devices.mqtt.unitapp import UnitApp
from ops.core.adapter import AdapterContext

_LOGGER = logging.getLogger(__name__)

DEFAULT_POSITION_INTERVAL = 5.0
DEFAULT_TELEMETRY_INTERVAL = 5.0
#: How far a wandering unit strays per step, in degrees (about 100 m).
STEP_DEGREES = 0.001
#: How far it may stray from its start point before it turns back, in degrees (about 3 km).
LEASH_DEGREES = 0.03


@dataclass(frozen=True, slots=True)
class FieldUnit:
    """A unit of the simulated field and where it starts.

    ``positions``: whether its app reports positions (False: another link reports them, the
    app only takes orders).
    """

    unit_id: str
    lat: float
    lon: float
    positions: bool = True


@dataclass(frozen=True, slots=True)
class FieldDevice:
    """A device of the simulated field."""

    device_id: str
    kind: str
    name: str
    lat: float
    lon: float
    site: str = "demo"
    figures: dict[str, Any] = field(default_factory=dict)


class SimulatedField:
    """An adapter running the whole simulated field; restarted by the supervisor like any other."""

    name = "demo.field"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        prefix: str,
        units: list[FieldUnit],
        devices: list[FieldDevice],
        position_interval: float = DEFAULT_POSITION_INTERVAL,
        telemetry_interval: float = DEFAULT_TELEMETRY_INTERVAL,
        seed: int | None = None,
    ) -> None:
        self.host, self.port, self.prefix = host, port, prefix
        self.units = units
        self.devices = devices
        self.position_interval = position_interval
        self.telemetry_interval = telemetry_interval
        self.heartbeat_interval: float | None = max(position_interval, telemetry_interval) * 2
        self._random = random.Random(seed)  # noqa: S311 - a simulation, not cryptography

    async def run(self, ctx: AdapterContext) -> None:
        """Run every unit and device until cancelled; any broker failure restarts the field."""
        started: list[SimulatedDevice] = []
        try:
            for spec in self.devices:
                device = self._device(spec)
                await device.start()
                started.append(device)
            ctx.heartbeat()
            async with asyncio.TaskGroup() as group:
                for unit in self.units:
                    app = UnitApp(
                        unit.unit_id,
                        host=self.host,
                        port=self.port,
                        prefix=self.prefix,
                        ack_delay=self._random.uniform(1.0, 6.0),
                    )
                    group.create_task(app.run(), name=f"demo.unit:{unit.unit_id}")
                    if unit.positions:
                        group.create_task(
                            self._wander(app, unit, ctx), name=f"demo.move:{unit.unit_id}"
                        )
                group.create_task(self._vary(started), name="demo.figures")
        finally:
            for device in started:
                await device.stop()

    def _device(self, spec: FieldDevice) -> SimulatedDevice:
        config = {
            "kind": spec.kind,
            "name": spec.name,
            "site": spec.site,
            "lat": spec.lat,
            "lon": spec.lon,
        }
        return SimulatedDevice(
            host=self.host,
            port=self.port,
            prefix=self.prefix,
            device_id=spec.device_id,
            kind=spec.kind,
            interval=self.telemetry_interval,
            config=config,
            figures=dict(spec.figures),
        )

    async def _wander(self, app: UnitApp, unit: FieldUnit, ctx: AdapterContext) -> None:
        """Walk at random around the start point, reporting each step."""
        lat, lon = unit.lat, unit.lon
        await app.subscribed.wait()
        while True:
            heading = self._random.uniform(0, 2 * math.pi)
            lat += STEP_DEGREES * math.cos(heading)
            lon += STEP_DEGREES * math.sin(heading)
            if math.hypot(lat - unit.lat, lon - unit.lon) > LEASH_DEGREES:
                lat, lon = (lat + unit.lat) / 2, (lon + unit.lon) / 2
            await app.send_position(round(lat, 6), round(lon, 6))
            ctx.heartbeat()
            await asyncio.sleep(self.position_interval * self._random.uniform(0.8, 1.2))

    async def _vary(self, devices: list[SimulatedDevice]) -> None:
        """Let the figures drift, so charts move and a threshold is crossed now and then."""
        while True:
            await asyncio.sleep(self.telemetry_interval)
            for device in devices:
                for name, value in list(device.figures.items()):
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        device.figures[name] = _drift(name, value, self._random)


def _drift(name: str, value: float, rng: random.Random) -> float | int:
    if name == "signal_bars":
        return max(0, min(5, int(value) + rng.choice((-1, 0, 0, 1))))
    if name == "battery_pct":
        return round(max(5.0, min(100.0, value - rng.uniform(0.0, 0.3))), 1)
    if isinstance(value, int):
        return max(0, value + rng.choice((-1, 0, 1)))
    return round(value * rng.uniform(0.95, 1.05), 2)


#: The demo room's devices around central Jakarta that speak MQTT (its radio gateway is a
#: real one, on the simulated TNC: ops.demo).
DEMO_DEVICES: tuple[FieldDevice, ...] = (
    FieldDevice(
        "sat-kemayoran",
        "satellite_terminal",
        "Terminal satelit Kemayoran",
        -6.1566,
        106.8453,
        figures={"signal_bars": 4, "queue_depth": 1, "errors": 0},
    ),
    FieldDevice(
        "banjir-ciliwung",
        "mqtt_sensor",
        "Sensor banjir Ciliwung",
        -6.2050,
        106.8567,
        figures={"battery_pct": 78.0, "rssi_dbm": -71, "water_level_cm": 42.0},
    ),
    FieldDevice(
        "panic-stasiun-gambir",
        "panic_button",
        "Tombol panik Stasiun Gambir",
        -6.1767,
        106.8306,
        figures={"battery_pct": 91.0},
    ),
    FieldDevice(
        "tracker-ambulans-01",
        "tracker",
        "Pelacak ambulans 01",
        -6.1783,
        106.8701,
        figures={"battery_pct": 64.0, "rssi_dbm": -66},
    ),
)
