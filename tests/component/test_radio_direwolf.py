"""Frames through Dire Wolf, the reference software TNC, both ways.

Dire Wolf serves KISS over TCP on a free port and reads its receive audio from standard input
(``ADEVICE stdin null``: no sound card, nothing really transmitted). ``gen_packets`` makes real
1200-baud AFSK audio of APRS packets; fed to Dire Wolf, they come out of its KISS port into the
gateway and decode as the same position and message. What the gateway sends, Dire Wolf prints
as it keys up (``[0L] POSKO>APZPSK:...``). A machine without Dire Wolf skips with the reason;
under CI (``CI=true``) a missing Dire Wolf is a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from radio import aprs, ax25
from radio.channel import RadioChannel
from radio.gateway import Gateway
from tests.component.radio_support import FAST_BACKOFF, bus_on_loop, frame, running
from tests.polling import eventually

pytestmark = pytest.mark.slow

POSITION = "YB0ABC-7>APRS,WIDE1-1:!0611.00S/10649.00E>on patrol"
MESSAGE = "YB0ABC-7>APRS,WIDE1-1::POSKO    :EN ROUTE{12"
#: Seconds Dire Wolf gets to start, and to stop once asked.
START_WAIT = 15.0
STOP_WAIT = 5.0


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is not None:
        return path
    reason = f"{tool} is not installed (apt-get install direwolf)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _free_port() -> int:
    """A port free now, below 49152: Dire Wolf refuses a KISS port in the ephemeral range."""
    for _ in range(100):
        port = random.randrange(20_000, 49_152)  # noqa: S311 - not a secret
        with socket.socket() as probe:
            try:
                probe.bind(("0.0.0.0", port))  # noqa: S104 - Dire Wolf listens on every address
            except OSError:
                continue
            return port
    raise RuntimeError("no free port for Dire Wolf")


def _audio(tmp_path: Path, lines: list[str]) -> bytes:
    """AFSK audio of ``lines`` (TNC2 form), one ``gen_packets`` run each, back to back.

    One packet per file, without a line end: ``gen_packets`` would put it in the frame.
    """
    gen_packets = _require("gen_packets")
    audio = b""
    for index, line in enumerate(lines):
        text = tmp_path / f"packet{index}.txt"
        text.write_text(line)
        wav = tmp_path / f"packet{index}.wav"
        subprocess.run(
            [gen_packets, "-r", "44100", "-o", str(wav), str(text)],
            check=True,
            capture_output=True,
            timeout=30,
        )
        audio += wav.read_bytes()
    return audio


@dataclass
class DireWolf:
    process: asyncio.subprocess.Process
    port: int
    lines: list[str] = field(default_factory=list)

    async def feed(self, audio: bytes) -> None:
        assert self.process.stdin is not None
        # Audio, then a second of silence so the demodulator finishes the last frame.
        self.process.stdin.write(audio + bytes(2 * 44100))
        await self.process.stdin.drain()

    def printed(self, text: str) -> bool:
        return any(text in line for line in self.lines)


@contextlib.asynccontextmanager
async def direwolf(tmp_path: Path) -> AsyncIterator[DireWolf]:
    program = _require("direwolf")
    port = _free_port()
    config = tmp_path / "direwolf.conf"
    config.write_text(
        "\n".join(
            [
                "ADEVICE stdin null",
                "ARATE 44100",
                "CHANNEL 0",
                "MYCALL POSKO",
                "MODEM 1200",
                f"KISSPORT {port}",
                "AGWPORT 0",
                "",
            ]
        )
    )
    process = await asyncio.create_subprocess_exec(
        program,
        "-c",
        str(config),
        "-t",
        "0",
        "-",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
    )
    wolf = DireWolf(process, port)

    async def read() -> None:
        assert process.stdout is not None
        while line := await process.stdout.readline():
            wolf.lines.append(line.decode(errors="replace").rstrip())

    reader = asyncio.create_task(read(), name="direwolf-stdout")
    try:
        await eventually(
            lambda: wolf.printed(f"Ready to accept KISS TCP client application 0 on port {port}"),
            timeout=START_WAIT,
            message="Dire Wolf serving KISS over TCP",
        )
        yield wolf
    finally:
        if process.returncode is None:
            process.terminate()
        try:
            async with asyncio.timeout(STOP_WAIT):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
        await reader


async def test_frames_go_through_direwolf_both_ways(tmp_path: Path) -> None:
    audio = _audio(tmp_path, [POSITION, MESSAGE])
    bus = await bus_on_loop()
    async with direwolf(tmp_path) as wolf:
        gateway = Gateway("dw", f"tcp://127.0.0.1:{wolf.port}", backoff=FAST_BACKOFF)
        heard: list[ax25.Frame] = []
        gateway.on_frame(lambda _gateway, f: heard.append(f))
        async with running(gateway, bus):
            await eventually(lambda: gateway.up and wolf.printed("Attached to KISS TCP client"))
            await wolf.feed(audio)
            await eventually(lambda: len(heard) == 2, message="both packets out of Dire Wolf")
            position, message = (aprs.decode(f) for f in heard)
            assert str(heard[0].source) == "YB0ABC-7"
            assert isinstance(position, aprs.Position)
            assert (round(position.lat, 4), round(position.lon, 4)) == (-6.1833, 106.8167)
            assert message == aprs.Message("POSKO", "EN ROUTE", "12")
            assert gateway.decode_errors == 0

            out = frame("POSKO", b":YB0ABC-7 :Go now{1A", destination="APZPSK")
            gateway.transmit(out)
            await eventually(
                lambda: wolf.printed("POSKO>APZPSK::YB0ABC-7 :Go now{1A"),
                message="Dire Wolf transmitting the gateway's frame",
            )


class Directory:
    def unit_for(self, callsign: str) -> str | None:
        return "U1" if callsign == "YB0ABC-7" else None


async def test_the_radio_channel_acks_a_unit_through_direwolf(tmp_path: Path) -> None:
    audio = _audio(tmp_path, [MESSAGE])
    bus = await bus_on_loop()
    async with direwolf(tmp_path) as wolf:
        gateway = Gateway("dw", f"tcp://127.0.0.1:{wolf.port}", backoff=FAST_BACKOFF)
        channel = RadioChannel(
            bus, [gateway], Directory(), callsign="POSKO", tocall="APZPSK", path=[], retry=[30.0]
        )
        async with running(gateway, bus), running(channel, bus):
            await eventually(lambda: gateway.up and wolf.printed("Attached to KISS TCP client"))
            await wolf.feed(audio)
            await eventually(
                lambda: wolf.printed("POSKO>APZPSK::YB0ABC-7 :ack12"),
                message="the room's ack keyed up by Dire Wolf",
            )
