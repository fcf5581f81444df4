"""The transceiver over real parts: hamlib's ``rigctld`` (dummy rig), its ``rigctl`` client,
the project's rigctld-protocol server, real pty pairs and pyserial's own loopback port.

What a pseudo-terminal can and cannot show: Linux gives a pty no modem control lines; setting
RTS/DTR (``TIOCMBIS``) and reading them (``TIOCMGET``) fail with ``ENOTTY`` on both ends. So a
pty proves the failure path (the PTT refuses to pretend, the adapter reports it and backs off)
and the line and polarity are read back through pyserial's ``loop://`` port, whose CTS follows
RTS and DSR follows DTR.

A machine without ``rigctld``/``rigctl`` skips the hamlib tests with the reason; under CI
(``CI=true``) a missing tool is a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import shutil
import socket
import struct
import termios
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ops.core.adapter import AdapterContext
from ops.core.bus import Bus, Subscription
from ops.core.errors import AdapterNotReady
from ops.core.events import DEVICE_REPORTED, AdapterState, DeviceReported
from ops.core.supervisor import RestartPolicy, Supervisor
from radio.events import (
    KEY_TRANSMITTER,
    RADIO_FRAME,
    SELECT_CHANNEL,
    TRANSCEIVER_CHANGED,
    KeyTransmitter,
    RadioFrameLogged,
    SelectChannel,
    TransceiverChanged,
)
from radio.ptt import PttError, SerialPtt, SerialPttSpec
from radio.rigctl import RigctlClient, RigError
from radio.rigsim import RigctldServer
from radio.transceiver import ChannelPlan, Transceiver
from tests.polling import eventually

GW = "vhf"
PLAN = [
    ChannelPlan("aprs", 144_390_000, "FM", 0),
    ChannelPlan("local", 145_500_000, "FM", 12_000),
    ChannelPlan("ssb", 14_105_000, "USB", 2400),
]
#: Bound on every wait for a hamlib command line tool.
TOOL_TIMEOUT = 15.0


def require(tool: str) -> str:
    """The tool's path; skip without it, or fail under CI."""
    path = shutil.which(tool)
    if path is None:
        reason = f"{tool} is not installed (apt-get install libhamlib-utils)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def can_connect(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


@pytest.fixture
async def rigctld() -> AsyncIterator[int]:
    """A real ``rigctld -m 1 -P RIG`` (hamlib's dummy rig, PTT by CAT) on a free port."""
    async with hamlib_rigctld("-P", "RIG") as port:
        yield port


@contextlib.asynccontextmanager
async def hamlib_rigctld(*options: str) -> AsyncIterator[int]:
    binary = require("rigctld")
    require("rigctl")
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        binary,
        "-m",
        "1",
        *options,
        "-T",
        "127.0.0.1",
        "-t",
        str(port),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await eventually(lambda: can_connect(port), message="rigctld listening")
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            process.kill()
            await process.wait()


async def rigctl(port: int, *command: str) -> list[str]:
    """Run hamlib's own client (model 2, NET rigctl) against ``port``; its output lines."""
    process = await asyncio.create_subprocess_exec(
        require("rigctl"),
        "-m",
        "2",
        "-r",
        f"127.0.0.1:{port}",
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), TOOL_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, err.decode(errors="replace")
    return out.decode().split()


@pytest.fixture
async def rigsim() -> AsyncIterator[RigctldServer]:
    server = RigctldServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def running(transceiver: Transceiver, bus: Bus) -> AsyncIterator[asyncio.Task[None]]:
    """Run the adapter as the supervisor would, and cancel it at the end."""
    task = asyncio.create_task(transceiver.run(AdapterContext(transceiver.name, bus)))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, AdapterNotReady):
            await task


def drain(subscription: Subscription) -> list[Any]:
    payloads = []
    while (envelope := subscription.get_nowait()) is not None:
        payloads.append(envelope.payload)
    return payloads


def latest(bus: Bus) -> TransceiverChanged | None:
    envelope = bus.last(TRANSCEIVER_CHANGED, GW)
    return None if envelope is None else envelope.payload


def rig_transceiver(port: int, **kwargs: Any) -> Transceiver:
    options: dict[str, Any] = {
        "ptt": "rig",
        "rig": f"tcp://127.0.0.1:{port}",
        "plan": PLAN,
        "default_channel": "aprs",
        "tx_timeout": 30.0,
        "poll_interval": 0.2,
    }
    options.update(kwargs)
    return Transceiver(GW, **options)


# -- the Transceiver against hamlib's rigctld -----------------------------------------------


async def test_transceiver_tunes_keys_and_unkeys_a_real_rigctld(rigctld: int) -> None:
    await rigctl(rigctld, "T", "1")  # left keyed, as by a crash
    assert await rigctl(rigctld, "t") == ["1"]
    bus = Bus()
    transceiver = rig_transceiver(rigctld)
    async with bus.subscribe(DEVICE_REPORTED, name="health") as health, running(transceiver, bus):
        # Unkeyed first, then tuned to the default channel; hamlib's own client reads both.
        await eventually(lambda: (s := latest(bus)) is not None and s.channel == "aprs")
        assert await rigctl(rigctld, "f") == ["144390000"]
        assert await rigctl(rigctld, "t") == ["0"]
        state = latest(bus)
        assert state is not None
        assert state.rig_online
        assert state.frequency == 144_390_000
        assert state.mode == "FM"
        assert not state.ptt

        async with transceiver.transmitting(0.5):
            assert await rigctl(rigctld, "t") == ["1"]
        assert await rigctl(rigctld, "t") == ["0"]

        bus.publish(SELECT_CHANNEL, SelectChannel(GW, "local", "op"), source="test", key=GW)
        await eventually(lambda: (s := latest(bus)) is not None and s.channel == "local")
        assert await rigctl(rigctld, "f") == ["145500000"]
        assert await rigctl(rigctld, "m") == ["FM", "12000"]

        reports = [p for p in drain(health) if isinstance(p, DeviceReported)]
        assert reports
        assert reports[-1].device_id == "radio:vhf:rig"
        assert reports[-1].kind == "transceiver"
        assert reports[-1].online is True
        assert {"frequency", "ptt", "rig_online", "errors"} <= set(reports[-1].figures)
    # Unkeyed on the way out, too.
    assert await rigctl(rigctld, "t") == ["0"]


async def test_manual_ptt_is_logged_and_bounded_by_the_time_out(rigctld: int) -> None:
    bus = Bus()
    transceiver = rig_transceiver(rigctld, tx_timeout=0.6)
    lines: list[RadioFrameLogged] = []
    async with bus.subscribe(RADIO_FRAME, name="log") as log, running(transceiver, bus):
        await eventually(lambda: (s := latest(bus)) is not None and s.channel == "aprs")
        bus.publish(
            KEY_TRANSMITTER, KeyTransmitter(GW, on=True, requested_by="op"), source="test", key=GW
        )
        # Nobody unkeys by hand: the time-out does.
        await eventually(lambda: lines.extend(drain(log)) or len(lines) >= 2)
        assert await rigctl(rigctld, "t") == ["0"]
        assert lines[0].text == "PTT on"
        assert lines[1].text.startswith("PTT off after ")
        assert lines[1].text.endswith("(time-out)")
        assert all(
            (line.kind, line.direction, line.gateway, line.channel, line.callsign)
            == ("ptt", "out", GW, "aprs", "")
            for line in lines
        )
        assert transceiver.tx_timeouts == 1
        assert (s := latest(bus)) is not None
        assert not s.ptt

    # Keyed and unkeyed by hand.
    transceiver = rig_transceiver(rigctld, tx_timeout=300.0)
    lines.clear()
    async with bus.subscribe(RADIO_FRAME, name="log") as log, running(transceiver, bus):
        await eventually(lambda: (s := latest(bus)) is not None and s.rig_online)
        bus.publish(
            KEY_TRANSMITTER, KeyTransmitter(GW, on=True, requested_by="op"), source="test", key=GW
        )
        await eventually(lambda: (s := latest(bus)) is not None and s.ptt)
        assert await rigctl(rigctld, "t") == ["1"]
        bus.publish(
            KEY_TRANSMITTER, KeyTransmitter(GW, on=False, requested_by="op"), source="test", key=GW
        )
        await eventually(lambda: lines.extend(drain(log)) or len(lines) >= 2)
        assert lines[0].text == "PTT on"
        assert lines[1].text.startswith("PTT off after ")
        assert not lines[1].text.endswith("(time-out)")
        assert await rigctl(rigctld, "t") == ["0"]


async def test_the_time_out_unkeys_a_caller_that_hangs(rigctld: int) -> None:
    bus = Bus()
    transceiver = rig_transceiver(rigctld, tx_timeout=0.5)
    async with (
        bus.subscribe(TRANSCEIVER_CHANGED, name="states") as states,
        running(transceiver, bus),
    ):
        await eventually(lambda: (s := latest(bus)) is not None and s.rig_online)
        drain(states)
        async with transceiver.transmitting(0.2):
            # The caller stays in the block; the watchdog unkeys without it.
            await eventually(lambda: (s := latest(bus)) is not None and not s.ptt)
            assert await rigctl(rigctld, "t") == ["0"]
        assert [s.ptt for s in drain(states)] == [True, False]
        assert transceiver.tx_timeouts == 1
        # The transmitter is free again.
        async with transceiver.transmitting(0.2):
            assert (s := latest(bus)) is not None
            assert s.ptt
        assert await rigctl(rigctld, "t") == ["0"]


async def test_a_cancelled_caller_is_unkeyed_at_once(rigctld: int) -> None:
    bus = Bus()
    transceiver = rig_transceiver(rigctld, tx_timeout=300.0)
    keyed = asyncio.Event()

    async def hangs() -> None:
        async with transceiver.transmitting(0.2):
            keyed.set()
            await asyncio.Event().wait()

    async with running(transceiver, bus):
        await eventually(lambda: (s := latest(bus)) is not None and s.rig_online)
        caller = asyncio.create_task(hangs())
        await asyncio.wait_for(keyed.wait(), 10)
        assert await rigctl(rigctld, "t") == ["1"]
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        assert await rigctl(rigctld, "t") == ["0"]
        assert transceiver.tx_timeouts == 0


async def test_unknown_channel_is_a_detail_not_a_crash(rigctld: int) -> None:
    bus = Bus()
    transceiver = rig_transceiver(rigctld)
    async with running(transceiver, bus) as task:
        await eventually(lambda: (s := latest(bus)) is not None and s.channel == "aprs")
        bus.publish(SELECT_CHANNEL, SelectChannel(GW, "nowhere", "op"), source="test", key=GW)
        bus.publish(SELECT_CHANNEL, SelectChannel("other", "local", "op"), source="test", key="x")
        await eventually(lambda: (s := latest(bus)) is not None and "nowhere" in s.detail)
        assert not task.done()
        assert await rigctl(rigctld, "f") == ["144390000"]


async def test_a_rigctld_without_cat_ptt_is_reported_and_still_tuned(caplog: Any) -> None:
    # Without -P RIG hamlib's dummy refuses T (RPRT -1) and t (RPRT -11).
    async with hamlib_rigctld() as port:
        bus = Bus()
        transceiver = rig_transceiver(port, poll_interval=0.05)
        async with running(transceiver, bus) as task:
            await eventually(lambda: (s := latest(bus)) is not None and s.channel == "aprs")
            assert await rigctl(port, "f") == ["144390000"]
            with pytest.raises(PttError, match="RPRT -1"):
                async with transceiver.transmitting(0.1):
                    pass
            await eventually(lambda: transceiver.errors >= 4)  # polls go on, refused each time
            state = latest(bus)
            assert state is not None
            assert state.rig_online
            assert "RPRT" in state.detail
            assert not task.done()
    refusals = [r for r in caplog.records if "RPRT -11" in r.getMessage()]
    assert len(refusals) == 1  # warned once


# -- an unreachable rig ---------------------------------------------------------------------


async def test_an_unreachable_rig_is_reported_offline_then_found(caplog: Any) -> None:
    port = free_port()
    bus = Bus()
    transceiver = Transceiver(
        GW,
        ptt="rig",
        rig=f"tcp://127.0.0.1:{port}",
        plan=PLAN,
        default_channel="local",
        tx_timeout=5.0,
        poll_interval=0.1,
    )
    server = RigctldServer(port=port)
    server.ptt = True
    try:
        async with (
            bus.subscribe(DEVICE_REPORTED, name="health") as health,
            running(transceiver, bus) as task,
        ):
            await eventually(lambda: transceiver.errors >= 1)
            state = latest(bus)
            assert state is not None
            assert not state.rig_online
            assert "rig unreachable" in state.detail
            with pytest.raises(PttError):
                async with transceiver.transmitting(0.1):
                    pass
            assert not task.done()
            reports = [p for p in drain(health) if isinstance(p, DeviceReported)]
            assert reports
            assert reports[-1].online is False
            assert reports[-1].figures["rig_online"] is False
            warned = [r for r in caplog.records if r.levelname == "WARNING"]
            assert len(warned) == 1  # once, however often it is tried
            assert "rig unreachable" in warned[0].getMessage()
            # The rigctld comes up on that port: found at the next attempt, tuned, unkeyed.
            await server.start()
            await eventually(
                lambda: (s := latest(bus)) is not None and s.channel == "local", timeout=15
            )
            assert server.frequency == 145_500_000
            assert server.passband == 12_000
            assert not server.ptt
            assert latest(bus) == TransceiverChanged(
                GW, rig_online=True, channel="local", frequency=145_500_000, mode="FM"
            )
    finally:
        await server.stop()


# -- the rigctl client ----------------------------------------------------------------------


async def test_rigctl_client_against_rigctld(rigctld: int) -> None:
    client = RigctlClient("127.0.0.1", rigctld)
    try:
        await client.set_frequency(433_500_000)
        assert await client.get_frequency() == 433_500_000
        await client.set_mode("USB", 2400)
        assert await client.get_mode() == ("USB", 2400)
        await client.set_ptt(True)
        assert await client.get_ptt()
        assert await rigctl(rigctld, "t") == ["1"]
        await client.set_ptt(False)
        assert not await client.get_ptt()
        with pytest.raises(RigError) as refused:
            await client._command("T 5", 0)
        assert refused.value.code == -1
        assert "invalid parameter" in str(refused.value)
        assert await client.get_frequency() == 433_500_000  # still in step after an error
    finally:
        await client.close()


async def test_rigctl_client_reconnects_when_the_socket_drops(rigsim: RigctldServer) -> None:
    client = RigctlClient.from_url(f"tcp://127.0.0.1:{rigsim.port}")
    try:
        await client.set_frequency(144_800_000)
        await eventually(lambda: rigsim.clients == 1)
        await rigsim.drop_clients()
        assert await client.get_frequency() == 144_800_000
        assert rigsim.commands.count("f") == 1
    finally:
        await client.close()


async def test_rigctl_client_times_out_on_a_silent_daemon() -> None:
    silent: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        silent.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = RigctlClient("127.0.0.1", port, timeout=0.3)
    try:
        with pytest.raises(TimeoutError):
            await client.get_frequency()
        assert not client.connected  # the late answer cannot be taken for the next one
    finally:
        await client.close()
        for writer in silent:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_rigctl_client_reports_a_closed_port() -> None:
    client = RigctlClient("127.0.0.1", free_port(), timeout=1.0)
    with pytest.raises(OSError, match=r"."):
        await client.get_frequency()


# -- the rigctld-protocol server --------------------------------------------------------------


async def test_rigsim_answers_hamlibs_own_client(rigsim: RigctldServer) -> None:
    require("rigctl")
    assert await rigctl(rigsim.port, "f") == ["145000000"]
    assert await rigctl(rigsim.port, "F", "145500000") == []
    assert rigsim.frequency == 145_500_000
    assert await rigctl(rigsim.port, "M", "USB", "2400", "m") == ["USB", "2400"]
    assert (rigsim.mode, rigsim.passband) == ("USB", 2400)
    assert await rigctl(rigsim.port, "T", "1") == []
    assert rigsim.ptt
    assert await rigctl(rigsim.port, "t") == ["1"]
    assert await rigctl(rigsim.port, "T", "0", "t") == ["0"]
    assert await rigctl(rigsim.port, "V", "VFOB", "v") == ["VFOB"]
    assert "\\dump_state" in rigsim.commands


async def test_rigsim_with_the_project_client(rigsim: RigctldServer) -> None:
    client = RigctlClient("127.0.0.1", rigsim.port)
    try:
        await client.set_frequency(144_390_000)
        await client.set_mode("FM", 0)
        await client.set_ptt(True)
        assert (rigsim.frequency, rigsim.mode, rigsim.passband, rigsim.ptt) == (
            144_390_000,
            "FM",
            15_000,
            True,
        )
        assert await client.get_mode() == ("FM", 15_000)
        await client.set_mode("FM", -1)
        assert await client.get_mode() == ("FM", 15_000)
        with pytest.raises(RigError) as refused:
            await client.set_mode("NOPE", 0)
        assert refused.value.code == -1
        with pytest.raises(RigError) as unknown:
            await client._command("\\set_level RFPOWER 0.5", 0)
        assert unknown.value.code == -11
        assert await client.get_ptt()
    finally:
        await client.close()


async def test_rigsim_raw_protocol(rigsim: RigctldServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", rigsim.port)
    try:

        async def say(line: str, lines: int = 1) -> list[str]:
            writer.write(line.encode() + b"\n")
            async with asyncio.timeout(5):
                return [(await reader.readline()).decode().strip() for _ in range(lines)]

        assert await say("\\set_freq 7074000") == ["RPRT 0"]
        assert await say("\\get_freq") == ["7074000"]
        assert await say("F abc") == ["RPRT -1"]
        assert await say("F 1") == ["RPRT -1"]
        assert await say("T 7") == ["RPRT -1"]
        assert await say("y") == ["RPRT -11"]
        assert await say("\\get_mode", 2) == ["FM", "15000"]
        assert await say("q") == ["RPRT 0"]
        async with asyncio.timeout(5):
            assert await reader.read() == b""
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


# -- serial PTT: pyserial's loopback port and real ptys ----------------------------------------


@pytest.mark.parametrize(
    ("line", "invert"), [("RTS", False), ("RTS", True), ("DTR", False), ("DTR", True)]
)
async def test_serial_ptt_line_and_polarity(line: str, invert: bool) -> None:
    spec = SerialPttSpec.parse(f"serial:///dev/ttyUSB1?line={line}&invert={int(invert)}")
    assert (spec.port, spec.line, spec.invert) == ("/dev/ttyUSB1", line, invert)
    ptt = SerialPtt(SerialPttSpec("loop://", spec.line, spec.invert))

    def level() -> bool:
        port = ptt._serial
        assert port is not None
        # loop:// wires RTS to CTS and DTR to DSR.
        return bool(port.cts if line == "RTS" else port.dsr)

    await ptt.open()
    try:
        assert level() is invert  # opened unkeyed
        await ptt.set(True)
        assert ptt.keyed
        assert level() is not invert
        await ptt.set(False)
        assert level() is invert
        await ptt.set(True)
    finally:
        port = ptt._serial
        await ptt.close()
    assert port is not None
    assert not port.is_open
    assert (port.rts if line == "RTS" else port.dtr) is invert  # unkeyed on close


def test_serial_ptt_url_is_checked() -> None:
    with pytest.raises(ValueError, match="RTS or DTR"):
        SerialPttSpec.parse("serial:///dev/ttyUSB1?line=CTS")
    with pytest.raises(ValueError, match="serial PTT"):
        SerialPttSpec.parse("tcp://host:1")
    assert SerialPttSpec.parse("serial:///dev/ttyUSB1") == SerialPttSpec("/dev/ttyUSB1")


async def test_a_pty_has_no_modem_lines_and_the_ptt_says_so() -> None:
    controller, terminal = os.openpty()
    try:
        name = os.ttyname(terminal)
        # What the kernel says, on either end: no modem control lines on a pty.
        for fd in (controller, terminal):
            with pytest.raises(OSError, match="Inappropriate ioctl") as refused:
                fcntl.ioctl(fd, termios.TIOCMGET, struct.pack("I", 0))
            assert refused.value.errno == errno.ENOTTY
        ptt = SerialPtt(SerialPttSpec(name, "RTS"))
        with pytest.raises(PttError) as failed:
            await ptt.open()
        assert failed.value.errno == errno.ENOTTY
        assert "no modem control lines" in str(failed.value)
        assert not ptt.is_open
    finally:
        os.close(controller)
        os.close(terminal)


async def test_transceiver_with_a_pty_ptt_backs_off_with_the_reason() -> None:
    controller, terminal = os.openpty()
    bus = Bus()
    try:
        transceiver = Transceiver(
            GW,
            ptt=f"serial://{os.ttyname(terminal)}?line=DTR",
            rig=None,
            plan=[],
            default_channel=None,
            tx_timeout=5.0,
        )
        async with bus.subscribe(DEVICE_REPORTED, name="health") as health:
            with pytest.raises(AdapterNotReady, match="no modem control lines"):
                await transceiver.run(AdapterContext(transceiver.name, bus))
            reports = [p for p in drain(health) if isinstance(p, DeviceReported)]
        assert reports[-1].online is False
        state = latest(bus)
        assert state is not None
        assert "no modem control lines" in state.detail
        with pytest.raises(PttError):
            async with transceiver.transmitting(0.1):
                pass
    finally:
        os.close(controller)
        os.close(terminal)


async def test_transceiver_serial_ptt_keys_and_times_out() -> None:
    bus = Bus()
    transceiver = Transceiver(
        GW,
        ptt="serial:///dev/ttyUSB1?line=RTS&invert=1",
        rig=None,
        plan=[],
        default_channel=None,
        tx_timeout=0.4,
        poll_interval=0.1,
    )
    # The same line logic on pyserial's loopback port instead of a USB adapter.
    transceiver._serial_spec = SerialPttSpec("loop://", "RTS", invert=True)

    def rts() -> bool:
        port = transceiver._serial
        assert port is not None
        assert port._serial is not None
        return bool(port._serial.cts)

    lines: list[RadioFrameLogged] = []
    async with bus.subscribe(RADIO_FRAME, name="log") as log, running(transceiver, bus):
        await eventually(lambda: transceiver._serial is not None and transceiver._running)
        assert rts() is True  # inverted: high = receive
        async with transceiver.transmitting(0.1):
            assert rts() is False
            assert (s := latest(bus)) is not None
            assert s.ptt
            await eventually(rts, message="unkeyed by the time-out")
        assert transceiver.tx_timeouts == 1
        assert drain(log) == []  # the gateway's transmissions are logged by the gateway
        bus.publish(
            KEY_TRANSMITTER, KeyTransmitter(GW, on=True, requested_by="op"), source="test", key=GW
        )
        await eventually(lambda: lines.extend(drain(log)) or len(lines) >= 2)
        assert rts() is True
        assert lines[0].text == "PTT on"
        assert lines[1].text.endswith("(time-out)")
    assert transceiver._serial is None  # closed (and unkeyed) on the way out


async def test_ptt_none_just_yields() -> None:
    transceiver = Transceiver(
        GW, ptt="none", rig=None, plan=[], default_channel=None, tx_timeout=1.0
    )
    entered = False
    async with transceiver.transmitting(5.0):
        entered = True
    assert entered


# -- against the rigctld-protocol server: what a real rig seldom shows on cue -----------------


def sim_transceiver(server: RigctldServer, **kwargs: Any) -> Transceiver:
    return rig_transceiver(server.port, **kwargs)


async def test_a_rig_keyed_by_nobody_is_unkeyed_by_the_poll(
    rigsim: RigctldServer, caplog: Any
) -> None:
    bus = Bus()
    async with running(sim_transceiver(rigsim, poll_interval=0.05), bus):
        await eventually(lambda: (s := latest(bus)) is not None and s.channel == "aprs")
        rigsim.ptt = True  # a stuck command, another program, a crash elsewhere
        await eventually(lambda: "T 0" in rigsim.commands[-3:] and not rigsim.ptt)
    assert any("transmits unasked" in r.getMessage() for r in caplog.records)


async def test_cancelling_the_adapter_unkeys_a_manual_keying(rigsim: RigctldServer) -> None:
    bus = Bus()
    async with running(sim_transceiver(rigsim, tx_timeout=300.0), bus):
        await eventually(lambda: (s := latest(bus)) is not None and s.rig_online)
        bus.publish(
            KEY_TRANSMITTER, KeyTransmitter(GW, on=True, requested_by="op"), source="t", key=GW
        )
        await eventually(lambda: rigsim.ptt)
    assert not rigsim.ptt
    state = latest(bus)
    assert state is not None
    assert not state.ptt


async def test_a_channel_picked_while_transmitting_is_tuned_after_the_unkey(
    rigsim: RigctldServer,
) -> None:
    bus = Bus()
    transceiver = sim_transceiver(rigsim, poll_interval=0.05)
    async with running(transceiver, bus):
        await eventually(lambda: (s := latest(bus)) is not None and s.channel == "aprs")
        async with transceiver.transmitting(0.1):
            bus.publish(SELECT_CHANNEL, SelectChannel(GW, "local", "op"), source="t", key=GW)
            await eventually(lambda: (s := latest(bus)) is not None and "unkey" in s.detail)
            assert rigsim.frequency == 144_390_000
        await eventually(lambda: (s := latest(bus)) is not None and s.channel == "local")
        assert rigsim.frequency == 145_500_000
        assert rigsim.commands.index("F 145500000") > rigsim.commands.index("T 0")


async def test_a_dropped_rigctld_connection_is_reopened(rigsim: RigctldServer) -> None:
    bus = Bus()
    transceiver = sim_transceiver(rigsim, poll_interval=0.05)
    async with running(transceiver, bus):
        await eventually(lambda: (s := latest(bus)) is not None and s.rig_online)
        await rigsim.drop_clients()
        rigsim.frequency = 433_500_000  # turned by hand meanwhile: off the plan
        await eventually(lambda: (s := latest(bus)) is not None and s.frequency == 433_500_000)
        state = latest(bus)
        assert state is not None
        assert state.rig_online
        assert state.channel is None
        assert transceiver.errors == 0


async def test_under_the_supervisor_a_pty_ptt_backs_off_quietly(caplog: Any) -> None:
    controller, terminal = os.openpty()
    bus = Bus()
    supervisor = Supervisor(bus, RestartPolicy(initial=0.01, factor=1.0, cap=0.01))
    transceiver = Transceiver(
        GW,
        ptt=f"serial://{os.ttyname(terminal)}",
        rig=None,
        plan=[],
        default_channel=None,
        tx_timeout=5.0,
    )
    try:
        supervisor.start(transceiver)
        await eventually(lambda: transceiver.errors >= 5)
        assert supervisor.status[transceiver.name].state in {
            AdapterState.BACKOFF,
            AdapterState.STARTING,
        }
    finally:
        await supervisor.stop_all()
        os.close(controller)
        os.close(terminal)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    mine = [r for r in caplog.records if r.name == "radio.transceiver"]
    assert all(r.levelno < logging.WARNING for r in mine)


async def test_a_command_cancelled_mid_answer_never_shifts_the_next_answer(
    rigsim: RigctldServer,
) -> None:
    client = RigctlClient("127.0.0.1", rigsim.port)
    try:
        await client.set_ptt(False)
        # The rig takes its time over `f`; the caller gives up meanwhile.
        rigsim.answer_delay = 0.5
        reader_task = asyncio.create_task(client.get_frequency())
        await eventually(lambda: "f" in rigsim.commands)
        reader_task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader_task
        assert await client.get_ptt() is False  # not the late frequency read as "keyed"
    finally:
        await client.close()


async def test_a_ptt_port_lost_mid_run_restarts_the_adapter() -> None:
    bus = Bus()
    transceiver = Transceiver(
        GW,
        ptt="serial:///dev/ttyUSB1?line=DTR",
        rig=None,
        plan=[],
        default_channel=None,
        tx_timeout=5.0,
        poll_interval=0.05,
    )
    transceiver._serial_spec = SerialPttSpec("loop://", "DTR")
    async with running(transceiver, bus) as task:
        await eventually(lambda: transceiver._serial is not None and transceiver._running)
        port = transceiver._serial
        assert port is not None
        assert port._serial is not None
        port._serial.close()  # the USB adapter pulled out from under the hub
        with pytest.raises(PttError, match="cannot key by DTR"):
            async with transceiver.transmitting(0.1):
                pass
        with pytest.raises(AdapterNotReady, match="PTT port"):
            await asyncio.wait_for(task, 10)
    state = latest(bus)
    assert state is not None
    assert not state.ptt
