"""The simulated TNC with its rigctld: started and stopped with it, and with a frequency set,
the units are heard, and hear the room, only while the rig is tuned there."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from radio import aprs, ax25, kiss
from radio.rigsim import RigctldServer
from radio.simulator import SimStation, SimulatedTnc, loop_route
from tests.component.test_radio_simulator import CENTRE, WAIT, Host, tcp_host
from tests.polling import eventually

APRS = 144_390_000
ELSEWHERE = 145_500_000


@contextlib.asynccontextmanager
async def rig_client(port: int) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def tune(port: int, frequency: int) -> None:
    async with rig_client(port) as (reader, writer):
        writer.write(f"F {frequency}\n".encode())
        async with asyncio.timeout(WAIT):
            assert (await reader.readline()).strip() == b"RPRT 0"


def message(host: Host, to: str, number: str) -> None:
    frame = ax25.Frame(
        ax25.Address.parse("APZPSK"),
        ax25.Address.parse("YB0ROM"),
        (),
        aprs.encode_message(aprs.Message(to, "Tes", number)),
    )
    host.writer.write(kiss.data_frame(ax25.encode(frame)))


async def test_the_units_are_on_the_air_only_while_the_rig_is_tuned_to_them() -> None:
    station = SimStation("YB0RIG", loop_route(CENTRE, 1.0), beacon_every=0.2, ack_delay=0.0)
    rig = RigctldServer(port=0)
    async with SimulatedTnc([station], tcp=("127.0.0.1", 0), rig=rig, frequency=APRS) as tnc:
        assert rig.port
        await tune(rig.port, APRS)
        async with tcp_host(tnc) as host:
            await eventually(lambda: host.packets("YB0RIG"), timeout=WAIT)
            await tune(rig.port, ELSEWHERE)
            message(host, "YB0RIG", "1")  # sent while tuned away: nobody hears it
            await eventually(lambda: len(tnc.received) == 1, timeout=WAIT)
            await tune(rig.port, APRS)
            message(host, "YB0RIG", "2")
            await eventually(lambda: host.acks("YB0RIG") == ["2"], timeout=WAIT)
        assert [m.number for m in station.heard] == ["2"]
    # Stopped with the TNC: the rig's port is closed.
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", rig.port)
    except OSError:
        pass
    else:
        writer.close()
        raise AssertionError("the rig still listens")
