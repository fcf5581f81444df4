"""A KISS TNC with simulated units on the air, for the demo room, tests and training.

:class:`SimulatedTnc` serves KISS the way Dire Wolf does, on a TCP port (any number of hosts,
each hears everything) or on a pseudo-terminal (a serial TNC on ``/dev/pts/N``). Behind it,
each :class:`SimStation` is a handheld in the field: it moves along its route, beacons its
position (plain, compressed or Mic-E), acknowledges numbered messages addressed to it after a
human-looking pause (missing some, by ``loss``), acknowledges a repeat again but acts on it
once, keeps the bulletins of its group and now and then sends free text of its own. What the
host transmits reaches every station; what a station transmits reaches every host. A
:class:`RigServer` (hamlib's rigctld protocol) may ride along, so the room can tune and key the
"transceiver"; with ``frequency`` set, the stations are heard only while it is tuned there.

Randomness (loss, pauses, texts) comes from one seed per station, so a test replays exactly.
The simulator is also a supervised adapter (``radio-sim``) for the demo room, and a command::

    posko sim radio --tcp 127.0.0.1:8001 --units 5 --loss 0.2 --rigctld-port 4532
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import math
import os
import random
import re
import signal
import sys
import tty
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, Protocol, Self, cast, get_args

from ops.core.adapter import AdapterContext
from ops.core.config import check_callsign
from radio import aprs, ax25, kiss

_LOGGER = logging.getLogger(__name__)

BeaconFormat = Literal["uncompressed", "compressed", "mic-e"]
BEACON_FORMATS: Final[tuple[str, ...]] = get_args(BeaconFormat)

#: The destination (tocall) of what the stations send: APZ is the experimental range.
DEFAULT_TOCALL = "APZSIM"
DEFAULT_PATH: Final[tuple[str, ...]] = ("WIDE1-1",)
#: The room's station, to which the stations address their free text.
DEFAULT_HUB_CALLSIGN = "POSKO"
DEFAULT_SPEED = 30.0  # km/h
DEFAULT_BEACON_EVERY = 30.0
DEFAULT_ACK_DELAY = 2.0
#: Seconds between re-sends of a station's own text the room has not acknowledged.
DEFAULT_TEXT_RETRY = 30.0
#: How many times a station sends a text the room never acknowledges.
TEXT_TRIES = 3
#: TXDELAY before the first KISS command sets it, in 10 ms units (Dire Wolf's default).
DEFAULT_TXDELAY = 30
#: HDLC flags and FCS the TNC adds on air to each frame, in bytes.
ON_AIR_OVERHEAD = 4
#: Bytes written to a host that does not read before further frames to it are dropped.
MAX_HOST_BACKLOG = 256 * 1024
READ_CHUNK = 4096
EARTH_RADIUS = 6_371_000.0  # metres
MAX_LAT = 90.0
MAX_LON = 180.0
#: A bulletin group: what follows ``BLNn`` in the addressee.
_GROUP = re.compile(r"[A-Z0-9]{1,5}")
KNOTS_PER_KMH = 1 / 1.852

#: What a station says on its own, now and then.
TEXTS: Final[tuple[str, ...]] = (
    "Sudah tiba di lokasi",
    "Jalan macet, perkiraan 10 menit lagi",
    "Butuh tambahan personel",
    "Situasi terkendali",
    "Kembali ke posko",
    "Warga sudah dievakuasi",
)

#: ``posko sim radio`` puts its units around this point (Jakarta's Monas).
CLI_CENTRE = (-6.1754, 106.8272)


class RigServer(Protocol):
    """The rigctld-protocol server that rides along (``radio.rigsim.RigctldServer``)."""

    @property
    def port(self) -> int:
        """The TCP port it listens on."""
        ...

    @property
    def frequency(self) -> int:
        """The frequency the rig is tuned to, in Hz."""
        ...

    async def start(self) -> None:
        """Listen."""
        ...

    async def stop(self) -> None:
        """Stop listening and close every connection."""
        ...


@dataclass(frozen=True, slots=True)
class Fix:
    """Where a station is at one moment: position, course (degrees) and speed (knots)."""

    lat: float
    lon: float
    course: int
    knots: float


@dataclass(eq=False)
class SimStation:
    """One handheld in the field, and what it heard and said.

    ``route``: the points it walks through, in order, back to the first and around again (one
    point: it stays there). ``speed`` in km/h. ``beacon_every`` / ``text_every``: seconds
    between position beacons / texts of its own (None: never). ``ack_delay``: seconds before
    it acknowledges a numbered message. ``loss``: the share of messages to it that it misses
    (neither recorded nor acknowledged). ``group``: the bulletin group it keeps (``BLNnGROUP``).

    The records: ``heard`` every message to it as received (repeats and missed ones included),
    ``inbox`` each message once, ``missed`` the numbers it missed, ``acked`` the numbers it
    acknowledged (a repeat again), ``bulletins`` those for its group or everyone, ``beacons``
    the positions it sent, ``texts`` the texts it sent, ``acks_heard`` the room's acks of them.
    """

    callsign: str
    route: Sequence[tuple[float, float]]
    speed: float = DEFAULT_SPEED
    beacon_every: float | None = DEFAULT_BEACON_EVERY
    beacon_format: BeaconFormat = "uncompressed"
    ack_delay: float = DEFAULT_ACK_DELAY
    loss: float = 0.0
    text_every: float | None = None
    group: str | None = None
    symbol_table: str = "/"
    symbol: str = ">"
    comment: str = ""
    heard: list[aprs.Message] = field(default_factory=list, init=False)
    inbox: list[aprs.Message] = field(default_factory=list, init=False)
    missed: list[str | None] = field(default_factory=list, init=False)
    acked: list[str] = field(default_factory=list, init=False)
    bulletins: list[aprs.Message] = field(default_factory=list, init=False)
    beacons: list[aprs.Position] = field(default_factory=list, init=False)
    texts: list[aprs.Message] = field(default_factory=list, init=False)
    acks_heard: list[str] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.callsign = str(ax25.Address.parse(check_callsign(self.callsign)))
        if not self.route:
            raise ValueError(f"{self.callsign}: a route needs at least one point")
        if any(not (abs(lat) <= MAX_LAT and abs(lon) <= MAX_LON) for lat, lon in self.route):
            raise ValueError(f"{self.callsign}: a route point is not a position")
        if self.beacon_format not in BEACON_FORMATS:
            raise ValueError(f"{self.callsign}: beacon_format must be one of {BEACON_FORMATS}")
        if not 0.0 <= self.loss <= 1.0:
            raise ValueError(f"{self.callsign}: loss must be from 0 to 1")
        if self.speed < 0 or self.ack_delay < 0:
            raise ValueError(f"{self.callsign}: speed and ack_delay cannot be negative")
        if any(every is not None and every <= 0 for every in (self.beacon_every, self.text_every)):
            raise ValueError(f"{self.callsign}: intervals must be more than 0")
        if self.group is not None:
            self.group = self.group.upper()
            if not _GROUP.fullmatch(self.group):
                raise ValueError(f"{self.callsign}: a group is 1-5 letters or digits")

    def fix_at(self, elapsed: float) -> Fix:
        """Where the station is ``elapsed`` seconds after it set off along its route."""
        legs = _legs(self.route)
        total = sum(length for *_, length in legs)
        if total <= 0 or self.speed <= 0:
            lat, lon = self.route[0]
            return Fix(lat, lon, 0, 0.0)
        travelled = (self.speed / 3.6 * max(elapsed, 0.0)) % total
        for start, end, length in legs:
            if travelled <= length and length > 0:
                share = travelled / length
                lat = start[0] + (end[0] - start[0]) * share
                lon = start[1] + (end[1] - start[1]) * share
                return Fix(lat, lon, _bearing(start, end), self.speed * KNOTS_PER_KMH)
            travelled -= length
        lat, lon = self.route[0]  # rounding at the very end of the loop
        return Fix(lat, lon, _bearing(legs[-1][0], legs[-1][1]), self.speed * KNOTS_PER_KMH)

    def position_at(self, elapsed: float) -> aprs.Position:
        """The APRS position the station beacons ``elapsed`` seconds after it set off."""
        fix = self.fix_at(elapsed)
        moving = fix.knots > 0
        return aprs.Position(
            lat=round(fix.lat, 5),
            lon=round(fix.lon, 5),
            symbol_table=self.symbol_table,
            symbol=self.symbol,
            comment=self.comment,
            course=(fix.course or 360) if moving else None,
            speed=round(fix.knots, 1) if moving else None,
            messaging=True,
            format=self.beacon_format,
        )

    def wants_bulletin(self, addressee: str) -> bool:
        """Whether a bulletin to ``addressee`` (``BLN3``, ``BLN0SAR``) is for this station."""
        group = addressee.strip().upper()[4:]
        return not group or group == self.group


class SimulatedTnc:
    """A KISS TNC (TCP or pty) with simulated stations on the air; see the module docstring.

    Use it as ``async with SimulatedTnc(...) as tnc`` (or ``start`` / ``stop``), or hand it to
    a supervisor (``run``). ``tcp=(host, 0)`` picks a free port (``port``); ``pty=True`` opens
    a pseudo-terminal whose device is ``device`` (``link``: also a symlink to it). ``baud``
    makes every frame take its airtime on one shared channel (None: instant). ``rig`` is started
    and stopped with the TNC; with ``frequency`` set, nothing is heard either way unless the rig
    is tuned to it.

    What it saw: ``received`` the frames hosts sent, ``transmitted`` the frames stations sent,
    ``settings`` the KISS parameters hosts set (command → value), ``decode_errors`` input it
    could not read.
    """

    name = "radio-sim"
    heartbeat_interval: float | None = None

    def __init__(
        self,
        stations: Sequence[SimStation],
        *,
        tcp: tuple[str, int] | None = None,
        pty: bool = False,
        link: str | Path | None = None,
        rig: RigServer | None = None,
        frequency: int | None = None,
        seed: int | None = 0,
        hub_callsign: str = DEFAULT_HUB_CALLSIGN,
        tocall: str = DEFAULT_TOCALL,
        path: Sequence[str] = DEFAULT_PATH,
        baud: int | None = None,
        kiss_port: int = 0,
        text_retry: float = DEFAULT_TEXT_RETRY,
    ) -> None:
        if (tcp is None) == (not pty):
            raise ValueError("give exactly one of tcp=(host, port) and pty=True")
        if link is not None and not pty:
            raise ValueError("link is a symlink to the pty; it needs pty=True")
        calls = [station.callsign for station in stations]
        if len(set(calls)) != len(calls):
            raise ValueError("station callsigns must be unique")
        if baud is not None and baud <= 0:
            raise ValueError("baud must be more than 0")
        self.stations = list(stations)
        self.received: list[ax25.Frame] = []
        self.transmitted: list[ax25.Frame] = []
        self.settings: dict[kiss.KissCommand, int] = {}
        self.decode_errors = 0
        self.rig = rig
        self._tcp = tcp
        self._pty = pty
        self._link = Path(link) if link is not None else None
        self._frequency = frequency
        self._seed = seed
        self._hub = str(ax25.Address.parse(check_callsign(hub_callsign)))
        self._source_path = tuple(ax25.Address.parse(check_callsign(hop)) for hop in path)
        self._tocall = ax25.Address.parse(check_callsign(tocall))
        self._baud = baud
        self._kiss_port = kiss_port
        self._text_retry = text_retry
        self._random: dict[tuple[str, str], random.Random] = {}
        self._seen: dict[str, set[tuple[str, str]]] = {}
        self._numbers: dict[str, int] = {}
        self._hosts: set[_Host] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._crashed: asyncio.Future[None] | None = None
        self._air = asyncio.Lock()
        self._inbound: asyncio.Queue[ax25.Frame] | None = None
        self._server: asyncio.Server | None = None
        self._pty_host: _PtyHost | None = None
        self._slave_fd: int | None = None
        self._started_at = 0.0
        self.port: int | None = None
        self.device: str | None = None

    # -- life cycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """Where a gateway reaches this TNC: ``tcp://host:port`` or ``serial:///dev/pts/N``."""
        if self._tcp is not None:
            if self.port is None:
                raise RuntimeError("the TNC is not started")
            return f"tcp://{self._tcp[0]}:{self.port}"
        if self.device is None:
            raise RuntimeError("the TNC is not started")
        return f"serial://{self._link or self.device}"

    @property
    def hosts(self) -> int:
        """How many hosts are connected (TCP), or 1 while the pty is open."""
        return len(self._hosts)

    async def start(self) -> None:
        """Open the port (and the rig), put the stations on the air."""
        loop = asyncio.get_running_loop()
        self._crashed = loop.create_future()
        self._inbound = asyncio.Queue()
        self._started_at = loop.time()
        try:
            if self.rig is not None:
                await self.rig.start()
            if self._tcp is not None:
                await self._open_tcp(*self._tcp)
            else:
                self._open_pty()
        except BaseException:
            await self.stop()
            raise
        self._spawn(self._deliver(), "radio-sim.air")
        for station in self.stations:
            if station.beacon_every is not None:
                self._spawn(self._beacon(station), f"radio-sim.beacon:{station.callsign}")
            if station.text_every is not None:
                self._spawn(self._chatter(station), f"radio-sim.text:{station.callsign}")
        _LOGGER.info("simulated TNC on %s with %d stations", self.url, len(self.stations))

    async def stop(self) -> None:
        """Take the stations off the air, close every host and the port, stop the rig."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        if self._server is not None:
            self._server.close()
        for host in list(self._hosts):
            host.close()
        self._hosts.clear()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        if self._slave_fd is not None:
            os.close(self._slave_fd)
            self._slave_fd = None
        self._pty_host = None
        if self._link is not None and self._link.is_symlink():
            self._link.unlink()
        if self.rig is not None:
            await self.rig.stop()
        crashed = self._crashed
        if crashed is not None and crashed.done() and not crashed.cancelled():
            crashed.exception()  # reported by run(); retrieved here when nobody ran it

    async def run(self, ctx: AdapterContext) -> None:
        """The supervised form: run until cancelled; a station that fails restarts it all."""
        async with self:
            ctx.heartbeat()
            crashed = self._crashed
            assert crashed is not None  # noqa: S101 - set by start
            await crashed

    def disconnect(self) -> None:
        """Drop every host connection, as a TNC that is reset does (the port stays open)."""
        for host in list(self._hosts):
            if isinstance(host, _TcpHost):
                host.close()

    # -- what tests and the demo use --------------------------------------------------------

    def station(self, callsign: str) -> SimStation:
        """The station with this callsign."""
        wanted = callsign.upper()
        for station in self.stations:
            if station.callsign == wanted:
                return station
        raise KeyError(callsign)

    async def transmit(self, station: SimStation, info: bytes, destination: str = "") -> None:
        """Put one frame from ``station`` on the air (after its airtime), to every host."""
        target = ax25.Address.parse(destination) if destination else self._tocall
        frame = ax25.Frame(target, ax25.Address.parse(station.callsign), self._source_path, info)
        await self._on_air(frame)

    def elapsed(self) -> float:
        """Seconds since the stations set off."""
        return asyncio.get_running_loop().time() - self._started_at

    # -- host side ---------------------------------------------------------------------------

    async def _open_tcp(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _TcpHost(self), host, port, reuse_address=True
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    def _open_pty(self) -> None:
        master, slave = os.openpty()
        try:
            tty.setraw(slave)
            os.set_blocking(master, False)
            self.device = os.ttyname(slave)
            if self._link is not None:
                if self._link.is_symlink():
                    self._link.unlink()
                self._link.symlink_to(self.device)
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        # Holding the slave open keeps the master readable while hosts come and go.
        self._slave_fd = slave
        self._pty_host = _PtyHost(self, master)
        self._hosts.add(self._pty_host)

    def _from_host(self, chunk: bytes, decoder: kiss.KissDecoder) -> None:
        """Bytes from a host: data frames go on the air, commands set the TNC's parameters."""
        for item in decoder.feed(chunk):
            if isinstance(item, kiss.KissError):
                self.decode_errors += 1
                _LOGGER.debug("simulated TNC: bad KISS input (%s)", item.reason)
                continue
            if item.command is not kiss.KissCommand.DATA:
                if item.command is not kiss.KissCommand.RETURN:
                    self.settings[item.command] = item.data[0] if item.data else 0
                continue
            try:
                frame = ax25.decode(item.data)
            except ax25.AX25Error as exc:
                self.decode_errors += 1
                _LOGGER.debug("simulated TNC: bad AX.25 frame (%s)", exc.reason)
                continue
            self.received.append(frame)
            # Sent while the rig listens elsewhere, it never reaches the stations.
            if self._inbound is not None and self._tuned():
                self._inbound.put_nowait(frame)

    def _to_hosts(self, frame: ax25.Frame) -> None:
        data = kiss.data_frame(ax25.encode(frame), self._kiss_port)
        for host in list(self._hosts):
            host.write(data)

    # -- the air ---------------------------------------------------------------------------

    def _tuned(self) -> bool:
        """Whether the room's rig is on the stations' frequency (always, without one)."""
        if self.rig is None or self._frequency is None:
            return True
        return int(self.rig.frequency) == self._frequency

    def _airtime(self, frame: ax25.Frame) -> float:
        if self._baud is None:
            return 0.0
        txdelay = self.settings.get(kiss.KissCommand.TXDELAY, DEFAULT_TXDELAY) / 100
        return txdelay + (len(ax25.encode(frame)) + ON_AIR_OVERHEAD) * 8 / self._baud

    async def _on_air(self, frame: ax25.Frame) -> None:
        """A station transmits: it holds the channel for its airtime, then the hosts hear it."""
        async with self._air:
            airtime = self._airtime(frame)
            if airtime:
                await asyncio.sleep(airtime)
        if not self._tuned():
            return
        self.transmitted.append(frame)
        self._to_hosts(frame)

    async def _deliver(self) -> None:
        """What the hosts transmit, in order, each after its airtime, reaches the stations."""
        inbound = self._inbound
        assert inbound is not None  # noqa: S101 - set by start
        while True:
            frame = await inbound.get()
            async with self._air:
                airtime = self._airtime(frame)
                if airtime:
                    await asyncio.sleep(airtime)
            try:
                packet = aprs.decode(frame)
            except aprs.AprsError as exc:
                _LOGGER.debug("simulated stations: unreadable APRS (%s)", exc.reason)
                continue
            for station in self.stations:
                self._hear(station, frame, packet)

    def _hear(self, station: SimStation, frame: ax25.Frame, packet: aprs.Packet) -> None:
        """One station hears one frame the room sent."""
        if isinstance(packet, aprs.Message):
            addressee = packet.addressee.strip().upper()
            if packet.bulletin:
                if station.wants_bulletin(addressee) and packet not in station.bulletins:
                    station.bulletins.append(packet)
                return
            if addressee != station.callsign:
                return
            station.heard.append(packet)
            if self._rng(station, "loss").random() < station.loss:
                station.missed.append(packet.number)
                return
            sender = str(ax25.Address(frame.source.call, frame.source.ssid))
            if packet.number is None:
                station.inbox.append(packet)
                return
            seen = self._seen.setdefault(station.callsign, set())
            if (sender, packet.number) not in seen:
                seen.add((sender, packet.number))
                station.inbox.append(packet)
            self._spawn(
                self._ack(station, sender, packet.number),
                f"radio-sim.ack:{station.callsign}:{packet.number}",
            )
        elif isinstance(packet, aprs.Ack) and packet.addressee.upper() == station.callsign:
            station.acks_heard.append(packet.number)

    async def _ack(self, station: SimStation, sender: str, number: str) -> None:
        await asyncio.sleep(station.ack_delay)
        station.acked.append(number)
        await self.transmit(station, aprs.encode_ack(sender, number))

    async def _beacon(self, station: SimStation) -> None:
        rng = self._rng(station, "beacon")
        every = cast("float", station.beacon_every)
        # A first beacon soon after start, the stations spread out rather than all at once.
        await asyncio.sleep(rng.uniform(0.0, min(every, 1.0)))
        while True:
            position = station.position_at(self.elapsed())
            if position.format == "mic-e":
                destination, info = aprs.encode_mic_e(position)
                frame = ax25.Frame(
                    destination, ax25.Address.parse(station.callsign), self._source_path, info
                )
                station.beacons.append(position)
                await self._on_air(frame)
            else:
                station.beacons.append(position)
                await self.transmit(station, aprs.encode_position(position))
            await asyncio.sleep(every * rng.uniform(0.9, 1.1))

    async def _chatter(self, station: SimStation) -> None:
        """Free text now and then, numbered, re-sent a few times until the room acknowledges."""
        rng = self._rng(station, "text")
        every = cast("float", station.text_every)
        while True:
            await asyncio.sleep(every * rng.uniform(0.5, 1.5))
            number = self._numbers.get(station.callsign, 0) + 1
            self._numbers[station.callsign] = number
            message = aprs.Message(self._hub, rng.choice(TEXTS), str(number))
            station.texts.append(message)
            for _ in range(TEXT_TRIES):
                await self.transmit(station, aprs.encode_message(message))
                await asyncio.sleep(self._text_retry)
                if str(number) in station.acks_heard:
                    break

    def _rng(self, station: SimStation, purpose: str) -> random.Random:
        """One generator per station and purpose: beacon timing never shifts which it misses."""
        key = (station.callsign, purpose)
        rng = self._random.get(key)
        if rng is None:
            seed = None if self._seed is None else f"{self._seed}:{station.callsign}:{purpose}"
            rng = self._random[key] = random.Random(seed)  # noqa: S311 - a simulation
        return rng

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and self._crashed is not None and not self._crashed.done():
            _LOGGER.warning("simulated TNC: %s failed: %r", task.get_name(), exc)
            self._crashed.set_exception(exc)


class _Host(Protocol):
    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class _TcpHost(asyncio.Protocol):
    """One host connected over TCP; a host that stops reading loses frames, not the TNC."""

    def __init__(self, tnc: SimulatedTnc) -> None:
        self._tnc = tnc
        self._decoder = kiss.KissDecoder()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast("asyncio.Transport", transport)
        self._tnc._hosts.add(self)  # noqa: SLF001 - the TNC's own helper
        _LOGGER.info("simulated TNC: host connected")

    def data_received(self, data: bytes) -> None:
        self._tnc._from_host(data, self._decoder)  # noqa: SLF001

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: ARG002 - the protocol's
        self._tnc._hosts.discard(self)  # noqa: SLF001
        self._transport = None
        _LOGGER.info("simulated TNC: host disconnected")

    def write(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if transport.get_write_buffer_size() > MAX_HOST_BACKLOG:
            return
        transport.write(data)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class _PtyHost:
    """The host on the far side of the pseudo-terminal: non-blocking reads and writes."""

    def __init__(self, tnc: SimulatedTnc, master: int) -> None:
        self._tnc = tnc
        self._master: int | None = master
        self._decoder = kiss.KissDecoder()
        self._backlog = bytearray()
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(master, self._readable)

    def _readable(self) -> None:
        if self._master is None:
            return
        try:
            chunk = os.read(self._master, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno == errno.EIO:  # no host has the terminal open: nothing to read
                return
            raise
        if chunk:
            self._tnc._from_host(chunk, self._decoder)  # noqa: SLF001 - the TNC's own helper

    def write(self, data: bytes) -> None:
        if self._master is None or len(self._backlog) + len(data) > MAX_HOST_BACKLOG:
            return
        had_backlog = bool(self._backlog)
        self._backlog += data
        if not had_backlog:
            self._flush()

    def _flush(self) -> None:
        master = self._master
        if master is None:
            return
        try:
            written = os.write(master, self._backlog)
        except BlockingIOError:
            written = 0
        del self._backlog[:written]
        if self._backlog:
            self._loop.add_writer(master, self._flush)
        else:
            self._loop.remove_writer(master)

    def close(self) -> None:
        master, self._master = self._master, None
        if master is not None:
            self._loop.remove_reader(master)
            self._loop.remove_writer(master)
            os.close(master)


def _legs(
    route: Sequence[tuple[float, float]],
) -> list[tuple[tuple[float, float], tuple[float, float], float]]:
    """The route's legs (start, end, metres), the last one back to the first point."""
    points = list(route)
    ends = [*points[1:], points[0]]
    return [(start, end, _metres(start, end)) for start, end in zip(points, ends, strict=True)]


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS * math.asin(min(1.0, math.sqrt(h)))


def _bearing(a: tuple[float, float], b: tuple[float, float]) -> int:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    y = math.sin(lon2 - lon1) * math.cos(lat2)
    x = math.cos(lat1) * math.sin(lat2) - math.sin(lat1) * math.cos(lat2) * math.cos(lon2 - lon1)
    return round(math.degrees(math.atan2(y, x))) % 360


def loop_route(
    centre: tuple[float, float], radius_km: float, corners: int = 6, turn: float = 0.0
) -> list[tuple[float, float]]:
    """A closed patrol around ``centre``: ``corners`` points ``radius_km`` away from it."""
    lat, lon = centre
    route = []
    for n in range(corners):
        angle = turn + 2 * math.pi * n / corners
        north = radius_km * math.cos(angle) / 111.2
        east = radius_km * math.sin(angle) / (111.2 * max(math.cos(math.radians(lat)), 0.01))
        route.append((round(lat + north, 6), round(lon + east, 6)))
    return route


def cli_stations(
    count: int,
    *,
    centre: tuple[float, float] = CLI_CENTRE,
    beacon_every: float = DEFAULT_BEACON_EVERY,
    ack_delay: float = DEFAULT_ACK_DELAY,
    loss: float = 0.0,
    text_every: float | None = None,
    group: str | None = "SIM",
    seed: int | None = 0,
) -> list[SimStation]:
    """``count`` stations around ``centre``: YB0SIM-1 … YB0SIM-15, YB1SIM-1 …, formats in turn."""
    rng = random.Random(seed)  # noqa: S311 - a simulation, not cryptography
    stations = []
    for n in range(count):
        start = (
            centre[0] + rng.uniform(-0.03, 0.03),
            centre[1] + rng.uniform(-0.03, 0.03),
        )
        stations.append(
            SimStation(
                callsign=f"YB{n // 15}SIM-{n % 15 + 1}",
                route=loop_route(start, rng.uniform(0.5, 2.0), turn=rng.uniform(0, math.pi)),
                speed=round(rng.uniform(10.0, 40.0), 1),
                beacon_every=beacon_every,
                beacon_format=cast("BeaconFormat", BEACON_FORMATS[n % len(BEACON_FORMATS)]),
                ack_delay=ack_delay,
                loss=loss,
                text_every=text_every,
                group=group,
            )
        )
    return stations


def _host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:  # noqa: PLR2004 - the port range
        raise argparse.ArgumentTypeError(f"{value!r} is not HOST:PORT")
    return host or "127.0.0.1", int(port)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="posko sim radio",
        description="A KISS TNC with simulated units on the air (APRS), until Ctrl-C.",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--tcp",
        type=_host_port,
        metavar="HOST:PORT",
        help="serve KISS over TCP (default 127.0.0.1:8001, as Dire Wolf; port 0 picks one)",
    )
    where.add_argument("--pty", action="store_true", help="serve KISS on a pseudo-terminal")
    parser.add_argument("--link", type=Path, help="with --pty: a symlink to the terminal")
    parser.add_argument("--units", type=int, default=5, help="simulated units (1-150)")
    parser.add_argument("--loss", type=float, default=0.0, help="share of messages missed")
    parser.add_argument(
        "--ack-delay", type=float, default=DEFAULT_ACK_DELAY, help="seconds before an ack"
    )
    parser.add_argument(
        "--beacon", type=float, default=DEFAULT_BEACON_EVERY, help="seconds between beacons"
    )
    parser.add_argument("--text", type=float, default=None, help="seconds between free texts")
    parser.add_argument("--group", default="SIM", help="the units' bulletin group")
    parser.add_argument(
        "--hub-callsign", default=DEFAULT_HUB_CALLSIGN, help="the room's station (texts go to it)"
    )
    parser.add_argument("--baud", type=int, default=None, help="simulate airtime at this rate")
    parser.add_argument(
        "--rigctld-port", type=int, default=None, help="also serve rigctld on this port"
    )
    parser.add_argument("--seed", type=int, default=None, help="replay the same simulation")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``posko sim radio``: run the TNC and its units until Ctrl-C; print where it listens."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not 1 <= args.units <= 150:  # noqa: PLR2004 - ten callsigns of fifteen SSIDs
        parser.error("--units must be from 1 to 150")
    if not 0.0 <= args.loss <= 1.0:
        parser.error("--loss must be from 0 to 1")
    if args.link is not None and not args.pty:
        parser.error("--link needs --pty")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(message)s")
    stations = cli_stations(
        args.units,
        beacon_every=args.beacon,
        ack_delay=args.ack_delay,
        loss=args.loss,
        text_every=args.text,
        group=args.group or None,
        seed=args.seed,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args, stations))
    return 0


async def _serve(args: argparse.Namespace, stations: list[SimStation]) -> None:
    rig: RigServer | None = None
    if args.rigctld_port is not None:
        from radio.rigsim import RigctldServer  # noqa: PLC0415 - only when asked for

        rig = RigctldServer(port=args.rigctld_port)
    tcp = None if args.pty else (args.tcp or ("127.0.0.1", 8001))
    tnc = SimulatedTnc(
        stations,
        tcp=tcp,
        pty=args.pty,
        link=args.link,
        rig=rig,
        seed=args.seed,
        hub_callsign=args.hub_callsign,
        baud=args.baud,
    )
    async with tnc:
        _say(f"KISS TNC on {tnc.url}")
        if rig is not None:
            _say(f"rigctld on tcp://127.0.0.1:{rig.port}")
        for station in stations:
            _say(f"unit {station.callsign} ({station.beacon_format})")
        # SIGTERM ends it as Ctrl-C does: the pty's symlink and the ports are cleaned up.
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()


def _say(line: str) -> None:
    """One line on standard output, flushed: scripts and tests read where the TNC listens."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
