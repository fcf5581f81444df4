"""Real TNC peers for the radio link tests: a pty pair and a TCP server, speaking KISS with the
project's own codec on the far side, and a way to run an adapter for the length of a block."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ops.core.adapter import AdapterContext
from ops.core.bus import Bus
from ops.core.supervisor import RestartPolicy
from radio import ax25, kiss
from tests.polling import eventually

if TYPE_CHECKING:
    from ops.core.adapter import Adapter

#: Reconnect quickly in tests; no jitter.
FAST_BACKOFF = RestartPolicy(initial=0.05, factor=2.0, cap=0.2, jitter=0.0, reset_after=1.0)


async def bus_on_loop() -> Bus:
    bus = Bus()
    bus.bind(asyncio.get_running_loop())
    return bus


@contextlib.asynccontextmanager
async def running(adapter: Adapter, bus: Bus) -> AsyncIterator[AdapterContext]:
    """Run ``adapter`` (as the supervisor would, without restarts) for the block."""
    ctx = AdapterContext(adapter.name, bus)
    task = asyncio.create_task(adapter.run(ctx), name=f"test:{adapter.name}")
    try:
        yield ctx
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def frame(
    source: str, info: bytes, destination: str = "APRS", path: tuple[str, ...] = ()
) -> ax25.Frame:
    return ax25.Frame(
        destination=ax25.Address.parse(destination),
        source=ax25.Address.parse(source),
        path=tuple(ax25.Address.parse(hop) for hop in path),
        info=info,
    )


class Peer:
    """What both TNC peers share: frames the gateway sent, decoded, and a way to wait for them."""

    def __init__(self) -> None:
        self.frames: list[ax25.Frame] = []
        self.errors: list[Exception] = []
        self._decoder = kiss.KissDecoder()

    def _feed(self, data: bytes) -> None:
        for item in self._decoder.feed(data):
            if isinstance(item, kiss.KissError):
                self.errors.append(item)
                continue
            try:
                self.frames.append(ax25.decode(item.data))
            except ax25.AX25Error as exc:
                self.errors.append(exc)

    async def wait_frames(self, count: int) -> list[ax25.Frame]:
        """The frames heard so far, once there are at least ``count``."""
        await eventually(lambda: len(self.frames) >= count, message=f"{count} frames heard")
        return list(self.frames)

    def send(self, *frames: ax25.Frame) -> None:
        self.write(b"".join(kiss.data_frame(ax25.encode(f)) for f in frames))

    def write(self, data: bytes) -> None:
        raise NotImplementedError


class PtyTnc(Peer):
    """A TNC on the master side of a pty pair; the gateway opens ``link`` (a symlink to the
    slave), so a new pair behind the same link is the same TNC plugged in again."""

    def __init__(self, link: Path) -> None:
        super().__init__()
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.link = link
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
        link.symlink_to(os.ttyname(self._slave))
        os.set_blocking(self.master, False)
        asyncio.get_running_loop().add_reader(self.master, self._readable)
        self.open = True

    @property
    def url(self) -> str:
        return f"serial://{self.link}?baud=9600"

    def _readable(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.unplug()
            return
        self._feed(data)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self.master, view)
            view = view[written:]

    def unplug(self) -> None:
        """Close both ends: the gateway's port vanishes (reads fail with EIO)."""
        if not self.open:
            return
        self.open = False
        asyncio.get_running_loop().remove_reader(self.master)
        os.close(self.master)
        os.close(self._slave)


class TcpTnc(Peer):
    """A KISS-over-TCP TNC (as Dire Wolf serves it) on a free port; one client at a time."""

    def __init__(self) -> None:
        super().__init__()
        self.server: asyncio.Server | None = None
        self.port = 0
        self.connections = 0
        self._writer: asyncio.StreamWriter | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.connected = asyncio.Event()
        self.closing = False

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.closing = False
        self.server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.closing = True
        if self.server is not None:
            self.server.close()
        self.reset()
        if self.server is not None:
            await self.server.wait_closed()
            self.server = None
        # Each handler ends on its own once its connection is aborted (cancelling one makes
        # asyncio's stream protocol log the cancellation as an error).
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.closing:
            writer.transport.abort()
            return
        self.connections += 1
        self._writer = writer
        self._writers.append(writer)
        self.connected.set()
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        try:
            while data := await reader.read(65536):
                self._feed(data)
        except ConnectionError:
            pass
        finally:
            self._tasks.discard(task)  # type: ignore[arg-type]
            writer.close()

    def write(self, data: bytes) -> None:
        assert self._writer is not None, "no gateway connected"
        self._writer.write(data)

    def reset(self) -> None:
        """Drop the gateway's connections at once (an abort, as a TCP reset)."""
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()
        self._writer = None
        self.connected.clear()


def events_of(subscription: Any) -> list[Any]:
    """The payloads waiting in ``subscription``."""
    items = []
    while (item := subscription.get_nowait()) is not None:
        items.append(item.payload)
    return items
