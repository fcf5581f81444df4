"""The demo room of ``posko up --demo``: seeded units, a wall, a demo account, a flow of reports.

The demo is composed on top of a started hub, which knows nothing of it::

    async with Hub(room_config(cfg)) as hub, DemoRoom(hub):
        ...

The field itself is simulated twice over: units and devices on MQTT (``devices/mqtt/field.py``)
and units on the air behind a KISS TNC with its rigctld (``radio/simulator.py``), which the room
reaches through a ``[radio]`` gateway that :func:`room_config` adds. Some units are reached by
radio first, some by their MQTT app first, one by radio only. This module prepares the room
around the field and keeps a trickle of public reports coming so the queue, the map and the
wall have something to show. Seeding is idempotent: a second ``--demo`` start reuses what the
first one made.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import secrets
import socket
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

from db import cases as case_rows
from db import users as user_rows
from db.pool import Pool
from devices.mqtt.field import DEMO_DEVICES, FieldUnit, SimulatedField
from ops import passwords
from ops.cases.intake import IncomingReport, submit_report
from ops.core.adapter import AdapterContext
from ops.core.bus import Bus
from ops.core.config import Config, RadioGatewayConfig
from ops.radio.commands import KIND_GROUPS
from ops.units.errors import UnitTaken
from ops.units.service import UnitSpec, create_unit
from ops.users import Role, add_user
from radio.rigsim import RigctldServer
from radio.simulator import BeaconFormat, SimStation, SimulatedTnc, loop_route
from videowall.service import WallNotFound, get_wall, put_wall
from videowall.tiles import Layout

if TYPE_CHECKING:
    from ops.core.hub import HubContext

_LOGGER = logging.getLogger(__name__)

DEMO_USER = "demo"
DEMO_WALL = "utama"
DEMO_CHANNEL = "public"
#: Jakarta's Monas, the centre of the demo field.
CENTRE = (-6.1754, 106.8272)
#: The demo's map view: the city, not the whole archipelago.
ZOOM = 12
DEFAULT_REPORT_INTERVAL = 60.0
MAX_OPEN_DEMO_CASES = 25
#: The demo's radio gateway: a simulated TNC and rigctld on free local ports.
DEMO_GATEWAY = "demo"
#: The APRS frequency the simulated units are on; the other channels of the plan are quiet.
APRS_FREQUENCY = 144_390_000
DEMO_CHANNELS: tuple[dict[str, Any], ...] = (
    {"name": "APRS 144.390", "frequency": APRS_FREQUENCY, "mode": "FM"},
    {"name": "Simpleks 145.500", "frequency": 145_500_000, "mode": "FM"},
    {"name": "Posko 147.000", "frequency": 147_000_000, "mode": "FM"},
)
#: Seconds between a simulated unit's position beacons (real handhelds: a minute or more).
DEMO_BEACON_EVERY = 10.0
#: How far (km) a radio unit patrols from its base, and how fast (km/h).
DEMO_PATROL_KM = 1.0
DEMO_PATROL_SPEED = 25.0
#: The simulated channel's rate: every frame takes its airtime, as on a 1200-baud APRS channel.
DEMO_BAUD = 1200
#: Seconds between the free texts of the units that send some.
DEMO_TEXT_EVERY = 300.0


def room_config(config: Config) -> Config:
    """The demo's settings: the demo city's map view, a gateway to the simulated TNC.

    Each only unless the room set its own (a map view, gateways).
    """
    update: dict[str, Any] = {}
    if not config.map.model_fields_set & {"center_lat", "center_lon", "zoom"}:
        view = {"center_lat": CENTRE[0], "center_lon": CENTRE[1], "zoom": ZOOM}
        update["map"] = config.map.model_copy(update=view)
    if not config.radio.gateways:
        gateway = RadioGatewayConfig.model_validate(
            {
                "id": DEMO_GATEWAY,
                "name": "TNC demo (simulasi)",
                "url": f"tcp://127.0.0.1:{_free_port()}",
                "rig": f"tcp://127.0.0.1:{_free_port()}",
                "ptt": "rig",
                "channels": list(DEMO_CHANNELS),
                "default_channel": DEMO_CHANNELS[0]["name"],
            }
        )
        update["radio"] = config.radio.model_copy(update={"gateways": [gateway]})
    return config.model_copy(update=update) if update else config


def demo_gateway(config: Config) -> RadioGatewayConfig | None:
    """The gateway :func:`room_config` added, or None when the room has gateways of its own."""
    for gateway in config.radio.gateways:
        if gateway.id == DEMO_GATEWAY and gateway.url.startswith("tcp://127.0.0.1:"):
            return gateway
    return None


class DemoRoom:
    """The demo room on a started hub, for as long as the ``async with`` block runs.

    Entering seeds the units, the wall and the demo account (its password, new at every start,
    is logged), then starts the simulated field on the hub's broker and the flow of reports on
    the hub's supervisor; leaving stops those two again.
    """

    def __init__(
        self, hub: HubContext, *, report_interval: float = DEFAULT_REPORT_INTERVAL
    ) -> None:
        self._hub = hub
        self._report_interval = report_interval
        self._started: list[str] = []
        self.units: list[DemoUnit] = []
        self.tnc: SimulatedTnc | None = None

    async def __aenter__(self) -> Self:
        hub = self._hub
        self.units = await seed(hub.pool, hub.bus)
        password = await demo_account(hub.pool)
        _LOGGER.warning(
            "demo room ready: sign in as %r with password %s (new at every start); wall: /wall/%s",
            DEMO_USER,
            password,
            DEMO_WALL,
        )
        host, port = hub.config.mqtt.host_port
        field = SimulatedField(
            host=host,
            port=port,
            prefix=hub.config.mqtt.prefix,
            units=[
                FieldUnit(unit.id, unit.lat, unit.lon, positions=unit.channels[0] == "mqtt")
                for unit in self.units
                if "mqtt" in unit.channels
            ],
            devices=list(DEMO_DEVICES),
        )
        reports = DemoReports(hub.pool, hub.bus, interval=self._report_interval)
        adapters: list[SimulatedField | DemoReports | SimulatedTnc] = [field, reports]
        gateway = demo_gateway(hub.config)
        if gateway is not None:
            self.tnc = radio_field(gateway, self.units, hub_callsign=hub.config.radio.callsign)
            adapters.append(self.tnc)
        for adapter in adapters:
            hub.supervisor.start(adapter)
            self._started.append(adapter.name)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        while self._started:
            await self._hub.supervisor.stop(self._started.pop())


@dataclass(frozen=True, slots=True)
class DemoUnit:
    """A unit of the demo room and where it is based.

    ``callsign`` is its AX.25 station, its radio address when ``channels`` (in the order
    dispatch tries them) hold ``radio``; the first channel reports its positions. On the air it
    beacons in ``beacon_format``, misses ``loss`` of the messages to it, keeps the bulletins to
    its kind (the console's groups) and sends free text when ``chatty``.
    """

    id: str
    callsign: str
    name: str
    kind: str
    skills: tuple[str, ...]
    lat: float
    lon: float
    channels: tuple[str, ...] = ("mqtt",)
    beacon_format: BeaconFormat = "uncompressed"
    loss: float = 0.0
    chatty: bool = False

    def channel_specs(self) -> list[dict[str, str]]:
        """Its ``channels`` as the units registry takes them."""
        address = {"mqtt": self.id, "radio": self.callsign}
        return [{"channel": channel, "address": address[channel]} for channel in self.channels]


UNITS: tuple[DemoUnit, ...] = (
    DemoUnit(
        "tagana-01",
        "YB0TGN-1",
        "Tagana Jakarta Pusat",
        "volunteer",
        ("evacuation", "first_aid"),
        -6.1862,
        106.8342,
        channels=("radio", "mqtt"),
        chatty=True,
    ),
    DemoUnit(
        "tagana-02",
        "YB0TGN-2",
        "Tagana Jakarta Utara",
        "volunteer",
        ("evacuation", "water_rescue"),
        -6.1275,
        106.8623,
        channels=("radio",),
        beacon_format="mic-e",
        loss=0.25,
    ),
    DemoUnit(
        "tksk-01",
        "YB0TKS-1",
        "TKSK Menteng",
        "social_worker",
        ("social_assessment",),
        -6.1963,
        106.8321,
        channels=("mqtt", "radio"),
    ),
    DemoUnit(
        "damkar-01",
        "YB0DMK-1",
        "Damkar Gambir",
        "fire",
        ("firefighting",),
        -6.1701,
        106.8166,
        channels=("radio", "mqtt"),
        beacon_format="compressed",
    ),
    DemoUnit(
        "damkar-02",
        "YB0DMK-2",
        "Damkar Tanah Abang",
        "fire",
        ("firefighting", "rescue"),
        -6.2088,
        106.8106,
    ),
    DemoUnit(
        "medis-01",
        "YB0MED-1",
        "Ambulans Cempaka Putih",
        "medic",
        ("first_aid", "ambulance"),
        -6.1783,
        106.8701,
        channels=("mqtt", "radio"),
    ),
    DemoUnit("satpol-01", "YB0POL-1", "Satpol PP Senen", "public_order", (), -6.1742, 106.8442),
    DemoUnit(
        "logistik-01",
        "YB0LOG-1",
        "Gudang Logistik Kemayoran",
        "logistics",
        ("supply",),
        -6.1566,
        106.8453,
    ),
)

#: Report templates: category, title, description.
REPORTS: tuple[tuple[str, str, str], ...] = (
    ("fire", "Asap dari gudang", "Warga melihat asap tebal dari gudang di gang sebelah pasar."),
    (
        "disaster",
        "Banjir setinggi lutut",
        "Air masuk ke rumah warga sejak subuh, anak-anak mengungsi.",
    ),
    ("medical", "Warga pingsan di halte", "Seorang bapak pingsan di halte, belum sadar."),
    ("elderly", "Lansia hidup sendiri", "Nenek tinggal sendiri, tidak makan dua hari."),
    ("child_protection", "Anak terlantar", "Dua anak kecil tidur di emperan toko setiap malam."),
    ("infrastructure", "Pohon tumbang", "Pohon besar tumbang menutup separuh jalan."),
    ("public_order", "Keributan di pasar", "Pedagang bertengkar, mulai ramai orang berkumpul."),
    (
        "social_aid",
        "Keluarga belum terima bantuan",
        "Keluarga miskin belum terdaftar bantuan sosial.",
    ),
    ("animals", "Ular masuk rumah", "Ular sanca sekitar dua meter di dapur warga."),
)


async def seed(pool: Pool, bus: Bus) -> list[DemoUnit]:
    """Create the demo units and wall if missing; return the units (all of them, new or not)."""
    for unit in UNITS:
        spec = UnitSpec.model_validate(
            {
                "id": unit.id,
                "callsign": unit.callsign,
                "name": unit.name,
                "kind": unit.kind,
                "skills": list(unit.skills),
                "home_center": unit.name,
                "channels": unit.channel_specs(),
            }
        )
        with contextlib.suppress(UnitTaken):
            await create_unit(pool, bus, spec, actor="demo")
    try:
        await get_wall(pool, DEMO_WALL)
    except WallNotFound:
        layout = Layout(
            title="Posko demo",
            rows=2,
            columns=2,
            tiles=[
                {
                    "kind": "map",
                    "title": "Jakarta",
                    "lat": CENTRE[0],
                    "lon": CENTRE[1],
                    "zoom": 12,
                    "layers": ["cases", "units", "devices"],
                },
                {"kind": "queue", "title": "Antrean"},
                {"kind": "kpis", "title": "Indikator"},
                {"kind": "devices", "title": "Perangkat"},
            ],
        )
        await put_wall(pool, bus, DEMO_WALL, layout, actor="demo")
    return list(UNITS)


def radio_field(
    gateway: RadioGatewayConfig, units: list[DemoUnit], *, hub_callsign: str
) -> SimulatedTnc:
    """The simulated TNC behind the demo gateway, its rigctld, and the units on the air.

    A unit reached by radio first beacons its position there while it patrols around its base;
    one reached by its app first only answers on the air. The units are heard only while the
    room's transceiver is on the APRS channel.
    """
    rig_port = urlsplit(gateway.rig or "").port
    stations = [
        SimStation(
            callsign=unit.callsign,
            route=loop_route((unit.lat, unit.lon), DEMO_PATROL_KM, turn=n * math.pi / 4),
            speed=DEMO_PATROL_SPEED,
            beacon_every=DEMO_BEACON_EVERY if unit.channels[0] == "radio" else None,
            beacon_format=unit.beacon_format,
            ack_delay=3.0 + n % 4,
            loss=unit.loss,
            text_every=DEMO_TEXT_EVERY if unit.chatty else None,
            group=KIND_GROUPS.get(unit.kind),
        )
        for n, unit in enumerate(units)
        if "radio" in unit.channels
    ]
    return SimulatedTnc(
        stations,
        tcp=("127.0.0.1", urlsplit(gateway.url).port or 0),
        rig=None if rig_port is None else RigctldServer(port=rig_port),
        frequency=APRS_FREQUENCY if rig_port is not None else None,
        seed=None,
        hub_callsign=hub_callsign,
        baud=DEMO_BAUD,
    )


async def demo_account(pool: Pool) -> str:
    """Make sure the demo supervisor exists with a fresh password; return that password.

    A new password every start: nothing is printed that still works after the demo stops.
    """
    password = secrets.token_urlsafe(12)
    async with pool.acquire() as conn:
        existing = await user_rows.get_user_by_username(conn, DEMO_USER)
    if existing is None:
        await add_user(
            pool,
            username=DEMO_USER,
            password=password,
            role=Role.SUPERVISOR,
            actor="demo",
            display_name="Demo supervisor",
        )
        return password
    password_hash = await passwords.hash_password(password)
    async with pool.acquire() as conn:
        await user_rows.set_password_hash(conn, existing.id, password_hash)
    return password


def _free_port() -> int:
    """A TCP port free on this machine now (the demo's simulated TNC and rig take them)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DemoReports:
    """An adapter that files a public report now and then, as the room's public would."""

    name = "demo.reports"
    heartbeat_interval: float | None = None

    def __init__(
        self,
        pool: Pool,
        bus: Bus,
        *,
        interval: float = DEFAULT_REPORT_INTERVAL,
        seed: int | None = None,
    ) -> None:
        self._pool = pool
        self._bus = bus
        self._interval = interval
        self._random = random.Random(seed)  # noqa: S311 - a simulation, not cryptography

    async def run(self, ctx: AdapterContext) -> None:
        """File one report per interval while the demo queue is short; never fill the room."""
        ctx.heartbeat()
        while True:
            async with self._pool.acquire() as conn:
                open_cases = await case_rows.count_open(conn, channel=DEMO_CHANNEL)
            if open_cases < MAX_OPEN_DEMO_CASES:
                ref = await submit_report(self._pool, self._bus, self.report())
                ctx.logger.info("demo report filed as %s", ref.number)
            await asyncio.sleep(self._interval * self._random.uniform(0.5, 1.5))

    def report(self) -> IncomingReport:
        """A plausible report somewhere in central Jakarta."""
        category, title, description = self._random.choice(REPORTS)
        return IncomingReport(
            channel=DEMO_CHANNEL,
            category=category,
            title=title,
            description=description,
            lat=round(CENTRE[0] + self._random.uniform(-0.05, 0.05), 6),
            lon=round(CENTRE[1] + self._random.uniform(-0.05, 0.05), 6),
            address="Jakarta Pusat (demo)",
            region="DKI Jakarta",
            actor="demo",
        )
