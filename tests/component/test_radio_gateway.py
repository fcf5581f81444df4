"""The KISS gateway over real ports: a pty pair (serial path) and a TCP server, the TNC played by
the test with the project's codec. Frames both ways, the link dropped and back (health offline
and online, the transmit queue kept, nothing sent twice), bad input counted and skipped."""

from __future__ import annotations

import contextlib
import errno
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ops.core.events import (
    DEVICE_COMMAND_REPLIED,
    DEVICE_COMMAND_REQUESTED,
    DEVICE_REPORTED,
    DeviceCommandRequested,
    DeviceReported,
)
from radio import ax25, kiss
from radio.events import GATEWAY_CHANGED, RADIO_FRAME, RadioFrameLogged
from radio.gateway import Gateway, airtime
from tests.component.radio_support import (
    FAST_BACKOFF,
    PtyTnc,
    TcpTnc,
    bus_on_loop,
    events_of,
    frame,
    running,
)
from tests.polling import eventually

POSITION = b"!0611.00S/10649.00E>on patrol"


def heard(gateway: Gateway) -> list[ax25.Frame]:
    frames: list[ax25.Frame] = []
    gateway.on_frame(lambda _gateway, f: frames.append(f))
    return frames


def online_states(subscription: Any) -> list[bool | None]:
    return [e.online for e in events_of(subscription) if isinstance(e, DeviceReported)]


@contextlib.asynccontextmanager
async def tcp_tnc() -> AsyncIterator[TcpTnc]:
    tnc = TcpTnc()
    await tnc.start()
    try:
        yield tnc
    finally:
        await tnc.stop()


async def test_frames_go_both_ways_over_a_pty(tmp_path: Path) -> None:
    bus = await bus_on_loop()
    tnc = PtyTnc(tmp_path / "tnc")
    gateway = Gateway("vhf", tnc.url, backoff=FAST_BACKOFF)
    frames = heard(gateway)
    try:
        async with (
            bus.subscribe(DEVICE_REPORTED, name="health") as health,
            bus.subscribe(RADIO_FRAME, name="log") as log,
        ):
            async with running(gateway, bus):
                await eventually(lambda: gateway.up)
                one = frame("YB0ABC-7", POSITION, path=("WIDE1-1",))
                two = frame("YB0DEF", b">on duty")
                data = kiss.data_frame(ax25.encode(one)) + kiss.data_frame(ax25.encode(two))
                tnc.write(data[:7])  # a frame split across reads
                tnc.write(data[7:])
                await eventually(lambda: len(frames) == 2)
                assert frames == [one, two]
                out = frame("POSKO", b":YB0ABC-7 :go{1", destination="APZPSK")
                line = RadioFrameLogged(
                    at=datetime.now(UTC),
                    gateway="vhf",
                    direction="out",
                    kind="message",
                    callsign="X",
                    text="go",
                )
                gateway.transmit(out, line)
                assert await tnc.wait_frames(1) == [out]
                await eventually(lambda: gateway.frames_out == 1)
                assert [e.kind for e in events_of(log)] == ["message"]
                assert gateway.frames_in == 2
                assert gateway.decode_errors == 0
            states = online_states(health)
            assert states[0] is True
            assert states[-1] is False  # stopped: down
    finally:
        tnc.unplug()


async def test_a_pty_closed_and_back_keeps_the_queue_and_sends_each_frame_once(
    tmp_path: Path,
) -> None:
    bus = await bus_on_loop()
    link = tmp_path / "tnc"
    tnc = PtyTnc(link)
    gateway = Gateway("vhf", f"serial://{link}?baud=9600", backoff=FAST_BACKOFF)
    frames = heard(gateway)
    try:
        async with (
            bus.subscribe(DEVICE_REPORTED, name="health") as health,
            running(gateway, bus),
        ):
            await eventually(lambda: gateway.up)
            first = frame("POSKO", b">one", destination="APZPSK")
            gateway.transmit(first)
            await tnc.wait_frames(1)
            tnc.unplug()  # the USB TNC pulled out
            await eventually(lambda: gateway.link != "up")
            queued = [
                frame("POSKO", f">queued {n}".encode(), destination="APZPSK") for n in range(3)
            ]
            for f in queued:
                gateway.transmit(f)
            assert gateway.transmit_queue == 3
            assert online_states(health) == [True, False]  # the registry's offline alarm
            tnc = PtyTnc(link)  # plugged in again
            await eventually(lambda: gateway.up)
            assert await tnc.wait_frames(3) == queued
            tnc.send(frame("YB0ABC-7", POSITION))
            await eventually(lambda: len(frames) == 1)
            assert gateway.transmit_queue == 0
            assert online_states(health)[-1] is True
            assert gateway.connects >= 2
    finally:
        tnc.unplug()


async def test_a_tcp_reset_and_back_keeps_the_queue() -> None:
    bus = await bus_on_loop()
    async with tcp_tnc() as tnc:
        gateway = Gateway("hf", tnc.url, backoff=FAST_BACKOFF)
        frames = heard(gateway)
        async with (
            bus.subscribe(DEVICE_REPORTED, name="health") as health,
            bus.subscribe(GATEWAY_CHANGED, name="links") as links,
            running(gateway, bus),
        ):
            await eventually(lambda: gateway.up and tnc.connected.is_set())
            tnc.send(frame("YB0ABC-7", POSITION))
            await eventually(lambda: len(frames) == 1)
            gateway.transmit(frame("POSKO", b">before", destination="APZPSK"))
            await tnc.wait_frames(1)
            tnc.reset()
            await eventually(lambda: tnc.connections == 2 and gateway.up)
            gateway.transmit(frame("POSKO", b">after", destination="APZPSK"))
            got = await tnc.wait_frames(2)
            assert [f.info for f in got] == [b">before", b">after"]
            states = online_states(health)
            assert False in states
            assert states[-1] is True
            assert {e.link for e in events_of(links)} >= {"up", "down", "connecting"}


async def test_frames_queued_while_the_tnc_is_away_go_when_it_comes() -> None:
    bus = await bus_on_loop()
    tnc = TcpTnc()
    await tnc.start()
    port = tnc.port
    await tnc.stop()  # nothing listens: the gateway keeps trying
    gateway = Gateway("hf", f"tcp://127.0.0.1:{port}", backoff=FAST_BACKOFF, connect_timeout=1.0)
    async with running(gateway, bus):
        for n in range(5):
            gateway.transmit(frame("POSKO", f">{n}".encode(), destination="APZPSK"))
        await eventually(lambda: "cannot open" in gateway.detail)
        assert gateway.transmit_queue == 5
        tnc = TcpTnc()
        tnc.port = port
        await tnc.start()
        try:
            got = await tnc.wait_frames(5)
            assert [f.info for f in got] == [f">{n}".encode() for n in range(5)]
        finally:
            await tnc.stop()


async def test_garbage_truncated_and_oversized_frames_are_counted_and_skipped() -> None:
    bus = await bus_on_loop()
    async with tcp_tnc() as tnc:
        gateway = Gateway("vhf", tnc.url, backoff=FAST_BACKOFF)
        frames = heard(gateway)
        async with bus.subscribe(RADIO_FRAME, name="log") as log, running(gateway, bus):
            await eventually(tnc.connected.is_set)
            good = frame("YB0ABC-7", POSITION)
            encoded = ax25.encode(good)
            tnc.write(
                kiss.data_frame(b"\x01\x02\x03")  # random bytes: too short for AX.25
                + kiss.data_frame(encoded[:10])  # truncated in the address
                + b"\xc0\x00\xdb\x41\xc0"  # a bad escape
                + b"\xc0\x00"
                + bytes(5000)
                + b"\xc0"  # oversized
                + kiss.data_frame(encoded)
            )
            await eventually(lambda: len(frames) == 1)
            assert frames == [good]
            assert gateway.decode_errors == 4
            undecodable = [e for e in events_of(log) if e.kind == "undecodable"]
            # At most one line a second per gateway: a flood of garbage is counted, not logged.
            assert len(undecodable) == 1
            assert gateway.up


async def test_a_quiet_tnc_is_reconnected() -> None:
    bus = await bus_on_loop()
    async with tcp_tnc() as tnc:
        gateway = Gateway("vhf", tnc.url, backoff=FAST_BACKOFF, quiet_after=0.2)
        async with running(gateway, bus):
            await eventually(lambda: tnc.connections >= 2)
            assert "nothing heard" in gateway.detail or gateway.up


class RecordingKeyer:
    """A transmitter that only notes how long it was asked to key (no rig needed for that)."""

    def __init__(self, failures: int = 0) -> None:
        self.keyed: list[float] = []
        self.on = False
        self.failures = failures

    @contextlib.asynccontextmanager
    async def transmitting(self, seconds: float) -> AsyncIterator[None]:
        if self.failures:
            self.failures -= 1
            raise OSError(errno.ENODEV, "the PTT port is gone")
        self.keyed.append(seconds)
        self.on = True
        try:
            yield
        finally:
            self.on = False


async def test_each_write_is_keyed_for_its_airtime() -> None:
    bus = await bus_on_loop()
    keyer = RecordingKeyer()
    async with tcp_tnc() as tnc:
        gateway = Gateway("vhf", tnc.url, backoff=FAST_BACKOFF, keyer=keyer)
        async with running(gateway, bus):
            out = frame("POSKO", b":YB0ABC-7 :" + b"x" * 60 + b"{1", destination="APZPSK")
            gateway.transmit(out)
            await tnc.wait_frames(1)
            assert keyer.keyed == [airtime(len(ax25.encode(out)))]
            assert 0.8 < keyer.keyed[0] < 1.2  # about 90 bytes at 1200 baud
            # Keyed on for the frame's airtime after the write (while the TNC plays it), then off.
            await eventually(lambda: not keyer.on and gateway.frames_out == 1)


async def test_a_frame_that_cannot_be_keyed_waits_and_the_link_stays_up() -> None:
    bus = await bus_on_loop()
    keyer = RecordingKeyer(failures=1)
    async with tcp_tnc() as tnc:
        gateway = Gateway("vhf", tnc.url, backoff=FAST_BACKOFF, keyer=keyer)
        async with running(gateway, bus):
            out = frame("POSKO", b">keyed at last", destination="APZPSK")
            gateway.transmit(out)
            assert await tnc.wait_frames(1) == [out]
            assert gateway.key_errors == 1
            assert tnc.connections == 1
            await eventually(lambda: gateway.transmit_queue == 0)


async def test_the_registry_can_ping_a_gateway_and_have_it_reconnect() -> None:
    bus = await bus_on_loop()
    async with tcp_tnc() as tnc:
        gateway = Gateway("vhf", tnc.url, backoff=FAST_BACKOFF)
        async with (
            bus.subscribe(DEVICE_COMMAND_REPLIED, name="replies") as replies,
            running(gateway, bus),
        ):
            await eventually(lambda: gateway.up and tnc.connections == 1)
            for request_id, device_id, command in (
                ("r1", "radio:other", "ping"),  # another gateway's: not answered here
                ("r2", "radio:vhf", "ping"),
                ("r3", "radio:vhf", "reconnect"),
                ("r4", "radio:vhf", "reboot"),
            ):
                bus.publish(
                    DEVICE_COMMAND_REQUESTED,
                    DeviceCommandRequested(request_id, device_id, command),
                    source="test",
                )
            await eventually(lambda: tnc.connections == 2 and gateway.up)
            answers = {r.request_id: r for r in events_of(replies)}
            assert sorted(answers) == ["r2", "r3", "r4"]
            assert answers["r2"].ok
            assert answers["r2"].result["link"] == "up"
            assert answers["r3"].ok
            assert not answers["r4"].ok
