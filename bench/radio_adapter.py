"""Frames per second through the KISS gateway over a pty, beside a raw read of the same bytes.

The same stream of KISS-framed APRS positions is written into the master side of a pty pair
twice in one run: once read raw from the slave side through the same asyncio serial transport
(pyserial-asyncio-fast, no decoding: the floor of any adapter), once through a running
:class:`~radio.gateway.Gateway` that unescapes, decodes AX.25 and hands every frame to a
callback. ``adapter_figures`` is the part of ``bench/radio.py`` that measures the adapter;
``python -m bench.radio_adapter`` runs it alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import tty

import serial_asyncio_fast

from bench.report import Figure, emit, parser
from ops.core.adapter import AdapterContext
from ops.core.bus import Bus
from radio import aprs, ax25, kiss
from radio.events import GATEWAY_CHANGED
from radio.gateway import Gateway

WRITE_CHUNK = 4096


def _stream(frames: int) -> bytes:
    """``frames`` KISS frames of a typical APRS position with a two-hop path."""
    frame = ax25.Frame(
        destination=ax25.Address.parse("APRS"),
        source=ax25.Address.parse("YB0ABC-7"),
        path=(ax25.Address.parse("WIDE1-1"), ax25.Address.parse("WIDE2-1")),
        info=aprs.encode_position(aprs.Position(-6.2, 106.8166, comment="on patrol")),
    )
    return kiss.data_frame(ax25.encode(frame)) * frames


def _write_all(master: int, data: bytes) -> None:
    """Blocking writes into the pty master (run in a thread, so the loop keeps reading)."""
    view = memoryview(data)
    while view:
        view = view[os.write(master, view[:WRITE_CHUNK]) :]


def _pty() -> tuple[int, int, str]:
    master, slave = os.openpty()
    tty.setraw(slave)
    return master, slave, os.ttyname(slave)


async def raw_read(data: bytes) -> float:
    """Bytes of ``data`` read from a pty through the serial transport; seconds taken."""
    master, slave, path = _pty()
    try:
        reader, writer = await serial_asyncio_fast.open_serial_connection(url=path, baudrate=9600)
        start = time.perf_counter()
        writing = asyncio.create_task(asyncio.to_thread(_write_all, master, data))
        got = 0
        while got < len(data):
            got += len(await reader.read(65536))
        elapsed = time.perf_counter() - start
        await writing
        writer.close()
        return elapsed
    finally:
        os.close(master)
        os.close(slave)


async def through_gateway(data: bytes, frames: int) -> float:
    """``frames`` frames of ``data`` decoded by a running gateway over a pty; seconds taken."""
    master, slave, path = _pty()
    bus = Bus()
    bus.bind(asyncio.get_running_loop())
    gateway = Gateway("bench", f"serial://{path}?baud=9600")
    heard = 0
    done = asyncio.Event()

    def count(_gateway: str, _frame: ax25.Frame) -> None:
        nonlocal heard
        heard += 1
        if heard == frames:
            done.set()

    gateway.on_frame(count)
    links = bus.subscribe(GATEWAY_CHANGED, name="bench")
    task = asyncio.create_task(gateway.run(AdapterContext(gateway.name, bus)))
    try:
        while (await links.get()).payload.link != "up":
            pass
        start = time.perf_counter()
        writing = asyncio.create_task(asyncio.to_thread(_write_all, master, data))
        await done.wait()
        elapsed = time.perf_counter() - start
        await writing
        return elapsed
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        links.close()
        os.close(master)
        os.close(slave)


async def adapter_figures(quick: bool) -> list[Figure]:
    """``radio_adapter_frames_per_s_pty``: through the gateway, beside the raw read."""
    frames = 20_000 if quick else 100_000
    data = _stream(frames)
    raw, ours = [], []
    for _ in range(3):
        raw.append(frames / await raw_read(data))
        ours.append(frames / await through_gateway(data, frames))
    return [
        Figure(
            name="radio_adapter_frames_per_s_pty",
            value=max(ours),
            unit="frames/s",
            baseline=max(raw),
            higher_is_better=True,
        )
    ]


if __name__ == "__main__":
    args = parser(__doc__ or "").parse_args()
    emit(asyncio.run(adapter_figures(args.quick)), as_json=args.json)
