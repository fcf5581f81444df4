"""The simulated TNC against the codec over a real TCP socket and a real pseudo-terminal: the
stations' beacons decode in every format (here and in aprslib), numbered messages are acked
after the station's pause, a lossy station misses some (the same ones for the same seed), a
repeat is acked again but kept once, bulletins reach their group, free text is re-sent until
the room acks it, KISS commands are accepted and garbage is skipped."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aprslib
import pytest
import serial_asyncio_fast

from radio import aprs, ax25, kiss
from radio.simulator import SimStation, SimulatedTnc, loop_route
from tests.polling import eventually

WAIT = 10.0
ROOM = "YB0ROM"
CENTRE = (-6.1754, 106.8272)


def station(callsign: str, **kwargs: object) -> SimStation:
    options: dict[str, object] = {"beacon_every": None, "ack_delay": 0.05, **kwargs}
    return SimStation(callsign, loop_route(CENTRE, 1.0), **options)  # type: ignore[arg-type]


class Host:
    """The room's side of the TNC: KISS frames out, every frame heard decoded and kept."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.frames: list[ax25.Frame] = []
        self._decoder = kiss.KissDecoder()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while chunk := await self.reader.read(4096):
            for item in self._decoder.feed(chunk):
                assert isinstance(item, kiss.KissFrame), item
                self.frames.append(ax25.decode(item.data))

    def send(self, info: bytes, *, source: str = ROOM) -> None:
        frame = ax25.Frame(ax25.Address.parse("APZPSK"), ax25.Address.parse(source), (), info)
        self.writer.write(kiss.data_frame(ax25.encode(frame)))

    def message(self, to: str, text: str, number: str | None = None) -> None:
        self.send(aprs.encode_message(aprs.Message(to, text, number)))

    def packets(self, source: str) -> list[aprs.Packet]:
        return [aprs.decode(f) for f in self.frames if str(f.source) == source]

    def acks(self, source: str) -> list[str]:
        return [p.number for p in self.packets(source) if isinstance(p, aprs.Ack)]

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@contextlib.asynccontextmanager
async def tcp_host(tnc: SimulatedTnc) -> AsyncIterator[Host]:
    assert tnc.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", tnc.port)
    host = Host(reader, writer)
    await eventually(lambda: tnc.hosts >= 1)
    try:
        yield host
    finally:
        await host.close()


@contextlib.asynccontextmanager
async def pty_host(device: str) -> AsyncIterator[Host]:
    reader, writer = await serial_asyncio_fast.open_serial_connection(url=device, baudrate=9600)
    host = Host(reader, writer)
    try:
        yield host
    finally:
        await host.close()


@contextlib.asynccontextmanager
async def on_tcp(
    *stations: SimStation, **kwargs: object
) -> AsyncIterator[tuple[SimulatedTnc, Host]]:
    async with (
        SimulatedTnc(stations, tcp=("127.0.0.1", 0), **kwargs) as tnc,  # type: ignore[arg-type]
        tcp_host(tnc) as host,
    ):
        yield tnc, host


def same_file(a: Path | str, b: Path | str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def is_there(path: Path) -> bool:
    return os.path.lexists(path)


async def wait_for(predicate: Callable[[], object]) -> None:
    await eventually(predicate, timeout=WAIT)


async def test_beacons_decode_in_every_format_here_and_in_aprslib() -> None:
    formats = ("uncompressed", "compressed", "mic-e")
    stations = [
        station(f"YB0BC{n}", beacon_every=0.2, beacon_format=fmt, comment="sim")
        for n, fmt in enumerate(formats)
    ]
    async with on_tcp(*stations) as (tnc, host):
        for sim in stations:
            await wait_for(lambda sim=sim: len(host.packets(sim.callsign)) >= 2)
        for sim, fmt in zip(stations, formats, strict=True):
            frames = [f for f in host.frames if str(f.source) == sim.callsign]
            positions = [aprs.decode(f) for f in frames]
            assert all(isinstance(p, aprs.Position) for p in positions)
            first = positions[0]
            assert isinstance(first, aprs.Position)
            assert first.format == fmt
            sent = sim.beacons[0]
            assert first.lat == pytest.approx(sent.lat, abs=0.001)
            assert first.lon == pytest.approx(sent.lon, abs=0.001)
            # Along its route, near the centre it patrols.
            assert first.lat == pytest.approx(CENTRE[0], abs=0.02)
            assert first.lon == pytest.approx(CENTRE[1], abs=0.02)
            # An independent parser reads the same frame the same way.
            parsed = aprslib.parse(ax25.to_tnc2(frames[0]))
            assert parsed["from"] == sim.callsign
            assert parsed["format"] == fmt
            assert parsed["latitude"] == pytest.approx(sent.lat, abs=0.001)
            assert parsed["longitude"] == pytest.approx(sent.lon, abs=0.001)
        assert tnc.transmitted


async def test_a_numbered_message_is_acked_after_the_stations_pause() -> None:
    slow = station("YB0SLO", ack_delay=3600.0)
    quick = station("YB0QIK", ack_delay=0.2)
    async with on_tcp(slow, quick) as (tnc, host):
        host.message("YB0SLO", "Menuju lokasi", "7")
        host.message("YB0QIK", "Menuju lokasi", "8")
        await wait_for(lambda: host.acks("YB0QIK") == ["8"])
        ack = next(f for f in host.frames if str(f.source) == "YB0QIK")
        assert aprs.decode(ack) == aprs.Ack(ROOM, "8")
        assert aprslib.parse(ax25.to_tnc2(ack))["response"] == "ack"
        assert [m.text for m in quick.inbox] == ["Menuju lokasi"]
        assert quick.acked == ["8"]
        # The slow one has it but is still thinking about it: no ack yet.
        assert [m.number for m in slow.inbox] == ["7"]
        assert slow.acked == []
        assert host.acks("YB0SLO") == []
        assert [str(f.source) for f in tnc.received] == [ROOM, ROOM]


async def lossy_run(seed: int) -> tuple[list[str | None], list[str]]:
    lossy = station("YB0LOS", loss=0.5)
    async with on_tcp(lossy, seed=seed) as (_, host):
        for number in range(1, 21):
            host.message("YB0LOS", f"pesan {number}", str(number))
        await wait_for(lambda: len(lossy.heard) == 20)
        expected = [str(n) for n in range(1, 21) if str(n) not in lossy.missed]
        await wait_for(lambda: sorted(host.acks("YB0LOS"), key=int) == expected)
        assert [m.number for m in lossy.inbox] == expected
        return lossy.missed, expected


async def test_a_lossy_station_misses_some_messages_and_the_same_ones_for_the_same_seed() -> None:
    missed, acked = await lossy_run(seed=11)
    assert missed
    assert acked
    assert await lossy_run(seed=11) == (missed, acked)


async def test_a_repeat_is_acked_again_but_kept_once() -> None:
    sim = station("YB0DUP-9")
    async with on_tcp(sim) as (_, host):
        host.message("YB0DUP-9", "Ke posko", "42")
        await wait_for(lambda: host.acks("YB0DUP-9") == ["42"])
        host.message("YB0DUP-9", "Ke posko", "42")
        await wait_for(lambda: host.acks("YB0DUP-9") == ["42", "42"])
        assert len(sim.heard) == 2
        assert [m.number for m in sim.inbox] == ["42"]
        # The same number from another station of the room is another message.
        host.send(aprs.encode_message(aprs.Message("YB0DUP-9", "Lain", "42")), source="YB0RM2")
        await wait_for(lambda: len(sim.inbox) == 2)
        await wait_for(lambda: sim.acked == ["42", "42", "42"])
        # Unnumbered text is kept and never acked.
        host.message("YB0DUP-9", "Tanpa nomor")
        await wait_for(lambda: len(sim.inbox) == 3)
        assert sim.inbox[-1].number is None


async def test_bulletins_reach_their_group_and_general_ones_everyone() -> None:
    sar = station("YB0SAR", group="SAR")
    medic = station("YB0MED", group="MEDIS")
    loner = station("YB0ONE")
    async with on_tcp(sar, medic, loner) as (_, host):
        host.message("BLN0SAR", "Kumpul di posko 1")
        host.message("BLN1MEDIS", "Siapkan tandu")
        host.message("BLN2", "Cuaca buruk malam ini")
        host.message("BLN0SAR", "Kumpul di posko 1")  # a bulletin is repeated, kept once
        await wait_for(lambda: len(sar.bulletins) == 2 and len(loner.bulletins) == 1)
        await wait_for(lambda: len(medic.bulletins) == 2)
        assert [b.text for b in sar.bulletins] == ["Kumpul di posko 1", "Cuaca buruk malam ini"]
        assert [b.text for b in medic.bulletins] == ["Siapkan tandu", "Cuaca buruk malam ini"]
        assert [b.text for b in loner.bulletins] == ["Cuaca buruk malam ini"]
        # Bulletins are not acknowledged.
        assert not any(host.acks(s.callsign) for s in (sar, medic, loner))


async def test_free_text_is_resent_until_the_room_acks_it() -> None:
    chatty = station("YB0TXT", text_every=0.2)
    async with on_tcp(chatty, text_retry=0.3, hub_callsign=ROOM) as (_, host):

        def texts() -> list[aprs.Message]:
            return [p for p in host.packets("YB0TXT") if isinstance(p, aprs.Message)]

        await wait_for(lambda: len(texts()) >= 2)
        first = texts()[0]
        assert first.addressee.strip() == ROOM
        assert first.number == "1"
        assert first.text in {m.text for m in chatty.texts}
        # Unanswered, it comes again with the same number.
        assert texts()[1].number == "1"
        host.send(aprs.encode_ack("YB0TXT", "1"))
        await wait_for(lambda: "1" in chatty.acks_heard)
        await wait_for(lambda: any(m.number == "2" for m in texts()))


async def test_kiss_commands_are_accepted_and_garbage_is_skipped() -> None:
    sim = station("YB0KSS")
    async with on_tcp(sim) as (tnc, host):
        host.writer.write(kiss.command_frame(kiss.KissCommand.TXDELAY, 40))
        host.writer.write(kiss.command_frame(kiss.KissCommand.PERSISTENCE, 63))
        host.writer.write(bytes([kiss.FEND, 0x00, 0x01, 0x02, kiss.FEND]))  # too short for AX.25
        host.writer.write(bytes([kiss.FEND, 0x00, kiss.FESC, 0x41, kiss.FEND]))  # bad escape
        host.message("YB0KSS", "Masih dengar?", "5")
        await wait_for(lambda: host.acks("YB0KSS") == ["5"])
        assert tnc.settings == {kiss.KissCommand.TXDELAY: 40, kiss.KissCommand.PERSISTENCE: 63}
        assert tnc.decode_errors == 2


async def test_every_host_hears_the_stations_and_a_host_may_come_back() -> None:
    sim = station("YB0ALL", beacon_every=0.2)
    async with on_tcp(sim) as (tnc, first):
        async with tcp_host(tnc) as second:
            await wait_for(lambda: first.packets("YB0ALL") and second.packets("YB0ALL"))
        tnc.disconnect()
        await wait_for(lambda: tnc.hosts == 0)
        async with tcp_host(tnc) as again:
            again.message("YB0ALL", "Kembali", "1")
            await wait_for(lambda: again.acks("YB0ALL") == ["1"])


async def test_with_airtime_frames_still_go_both_ways() -> None:
    sim = station("YB0AIR", ack_delay=0.0)
    async with on_tcp(sim, baud=9600) as (tnc, host):
        host.writer.write(kiss.command_frame(kiss.KissCommand.TXDELAY, 1))
        host.message("YB0AIR", "Pelan-pelan", "3")
        await wait_for(lambda: host.acks("YB0AIR") == ["3"])
        ack = tnc.transmitted[-1]
        # A 9600-baud frame: TXDELAY plus its bits with flags and FCS.
        assert tnc._airtime(ack) == pytest.approx(0.01 + (len(ax25.encode(ack)) + 4) * 8 / 9600)


async def test_over_a_pty_with_a_symlink(tmp_path: Path) -> None:
    link = tmp_path / "tnc"
    sim = station("YB0PTY", beacon_every=0.2, beacon_format="mic-e")
    async with SimulatedTnc([sim], pty=True, link=link) as tnc:
        assert tnc.device is not None
        assert same_file(link, tnc.device)
        assert tnc.url == f"serial://{link}"
        async with pty_host(str(link)) as host:
            await wait_for(lambda: host.packets("YB0PTY"))
            position = host.packets("YB0PTY")[0]
            assert isinstance(position, aprs.Position)
            assert position.format == "mic-e"
            host.message("YB0PTY", "Lewat serial", "12")
            await wait_for(lambda: host.acks("YB0PTY") == ["12"])
        # The host went away; another opens the same terminal and is heard.
        async with pty_host(tnc.device) as again:
            again.message("YB0PTY", "Lagi", "13")
            await wait_for(lambda: again.acks("YB0PTY") == ["13"])
        assert [m.number for m in sim.inbox] == ["12", "13"]
    assert not is_there(link)


@pytest.mark.parametrize(
    ("command", "room"),
    [
        (["radio.simulator"], "POSKO"),
        # ``posko sim radio``: the units address their texts to the hub's configured station.
        (["ops", "sim", "radio"], "YB0CLI"),
    ],
)
async def test_the_command_line_serves_units_until_stopped(command: list[str], room: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSKO_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        *command,
        "--tcp",
        "127.0.0.1:0",
        "--units",
        "3",
        "--beacon",
        "0.3",
        "--text",
        "0.3",
        "--seed",
        "4",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={**env, "PYTHONUNBUFFERED": "1", "POSKO_RADIO__CALLSIGN": "YB0CLI"},
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(WAIT):
            line = (await process.stdout.readline()).decode()
        assert line.startswith("KISS TNC on tcp://127.0.0.1:"), line
        port = int(line.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        host = Host(reader, writer)
        try:
            units = {"YB0SIM-1", "YB0SIM-2", "YB0SIM-3"}
            await wait_for(lambda: {str(f.source) for f in host.frames} == units)
            formats = {
                str(f.source): p.format
                for f in host.frames
                if isinstance(p := aprs.decode(f), aprs.Position)
            }
            # The formats take turns.
            assert formats == {
                "YB0SIM-1": "uncompressed",
                "YB0SIM-2": "compressed",
                "YB0SIM-3": "mic-e",
            }
            host.message("YB0SIM-2", "Tes", "1")
            await wait_for(lambda: host.acks("YB0SIM-2") == ["1"])
            await wait_for(
                lambda: any(isinstance(p, aprs.Message) for p in host.packets("YB0SIM-1"))
            )
            texts = [p for p in host.packets("YB0SIM-1") if isinstance(p, aprs.Message)]
            assert texts[0].addressee == room
        finally:
            await host.close()
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()
