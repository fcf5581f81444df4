"""A KISS TNC link (serial or TCP): AX.25 frames in and out, health through the device registry.

One :class:`Gateway` per configured gateway, a supervised adapter. ``url`` is
``serial:///dev/ttyUSB0?baud=9600`` (pyserial-asyncio-fast, an asyncio transport, never a
blocking read) or ``tcp://host:8001`` (asyncio streams, as Dire Wolf and most software TNCs
serve KISS). The gateway reconnects by itself, inside ``run``, with the supervisor's backoff
(:class:`~ops.core.supervisor.RestartPolicy`): when the port vanishes (a USB TNC unplugged, a
pty closed, a TCP reset) and, with ``quiet_after``, when nothing was heard for that long. It
does so itself rather than raising, so the transmit queue and the figures survive a reconnect.
While the link is down the gateway reports ``online=False`` on ``device.reported`` (the
registry raises its offline alarm) and ``link="down"`` on ``radio.gateway``; back up, online.

Transmitting is at least once: a frame leaves the queue only after it was written (and, with a
keyer, after the transmitter unkeyed), so a frame written just as the link died is written
again on the next link. APRS receivers drop a message they already have by its number, and the
radio channel's acks are idempotent, so a repeat costs airtime only.

Bad input never ends ``run``: a KISS frame that does not unescape or is too long, or an AX.25
frame that does not decode, is counted (``decode_errors``), logged on ``radio.frame`` as kind
``undecodable`` at most once per :data:`UNDECODABLE_EVERY` seconds per gateway (the line says
how many were skipped since the last one), and decoding resumes with the next frame.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, Literal, Protocol
from urllib.parse import parse_qs, urlsplit

from ops.core.errors import AdapterConfigError
from ops.core.events import (
    DEVICE_COMMAND_REPLIED,
    DEVICE_COMMAND_REQUESTED,
    DEVICE_REPORTED,
    DeviceCommandReplied,
    DeviceCommandRequested,
    DeviceReported,
    Figure,
)
from ops.core.supervisor import RestartPolicy
from ops.core.warnonce import WarnOnce
from radio import ax25, kiss
from radio.events import GATEWAY_CHANGED, RADIO_FRAME, GatewayChanged, RadioFrameLogged

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractAsyncContextManager

    from ops.core.adapter import AdapterContext
    from ops.core.bus import Bus, Subscription

_LOGGER = logging.getLogger(__name__)

Link = Literal["up", "down", "connecting"]
DEVICE_KIND: Final = "radio_gateway"
#: AFSK data rate the airtime of a frame is estimated at (bits per second).
AIR_BAUD: Final = 1200
#: Seconds a transmission takes besides the frame's bits: the TNC's TXDELAY flags and tail.
AIR_OVERHEAD: Final = 0.3
#: At most one ``undecodable`` line per gateway in this many seconds; the rest are counted.
UNDECODABLE_EVERY: Final = 1.0
#: How many bytes of an undecodable frame its log line shows (hex).
UNDECODABLE_SHOWN: Final = 32
#: Seconds between health reports while the link is up (state changes report at once).
REPORT_EVERY: Final = 15.0
#: The longest KISS frame taken (bytes, unescaped): AX.25 with 8 digipeaters and 256 info.
MAX_FRAME: Final = 1024
#: Seconds a write may take beyond the frame's airtime before the link counts as stuck.
WRITE_GRACE: Final = 5.0
#: Backoff between reconnects: the supervisor's, capped lower (a TNC is usually right there).
RECONNECT: Final = RestartPolicy(initial=1.0, factor=2.0, cap=30.0, reset_after=60.0)
DEFAULT_BAUD: Final = 9600
#: Seconds before a frame whose keying failed is tried again (it stays first in the queue).
KEY_RETRY: Final = 1.0


class Keyer(Protocol):
    """Keys the transceiver around one transmission (the transceiver's PTT, or nothing)."""

    def transmitting(self, airtime: float) -> AbstractAsyncContextManager[None]:
        """Key for about ``airtime`` seconds; unkey when the block ends."""
        ...


class _WriteFailedError(Exception):
    """A write to the TNC failed inside the keyer's block: the link's failure, not the keyer's."""

    def __init__(self, error: OSError | TimeoutError) -> None:
        super().__init__(str(error))
        self.error = error


class LinkLostError(ConnectionError):
    """The TNC closed the link or went quiet; the gateway reconnects."""


@dataclass(slots=True)
class _Outgoing:
    frame: ax25.Frame
    log: RadioFrameLogged | None
    on_sent: Callable[[], None] | None
    wanted: Callable[[], bool] | None


def airtime(frame_bytes: int) -> float:
    """Seconds on the air of an AX.25 frame of ``frame_bytes`` at 1200 baud.

    Bits plus the frame check sequence, two flags and about 5 % bit stuffing, plus the TNC's
    preamble and tail: a rough figure, good enough for a PTT time-out.
    """
    bits = (frame_bytes + 4) * 8 * 1.05
    return AIR_OVERHEAD + bits / AIR_BAUD


class Gateway:
    """One KISS TNC: frames heard go to ``on_frame`` callbacks, frames queued go out in order."""

    heartbeat_interval: float | None = None

    def __init__(
        self,
        gateway_id: str,
        url: str,
        *,
        kiss_port: int = 0,
        quiet_after: float | None = None,
        connect_timeout: float = 5.0,
        keyer: Keyer | None = None,
        max_queue: int = 1000,
        backoff: RestartPolicy = RECONNECT,
        report_every: float = REPORT_EVERY,
    ) -> None:
        self.gateway_id = gateway_id
        self.name = f"radio-gateway:{gateway_id}"
        self.device_id = f"radio:{gateway_id}"
        self.url = url
        self.kiss_port = kiss_port
        self.quiet_after = quiet_after
        self.connect_timeout = connect_timeout
        self.keyer = keyer
        self.max_queue = max_queue
        self.backoff = backoff
        self.report_every = report_every
        self.frames_in = 0
        self.frames_out = 0
        self.decode_errors = 0
        self.dropped = 0
        self.key_errors = 0
        self.connects = 0
        self.link: Link = "down"
        self.detail = ""
        self.last_heard: datetime | None = None
        self.channel_busy = False
        self._last_heard_mono: float | None = None
        self._queue: collections.deque[_Outgoing] = collections.deque()
        self._queued = asyncio.Event()
        self._reconnect = asyncio.Event()
        self._callbacks: list[Callable[[str, ax25.Frame], None]] = []
        self._bus: Bus | None = None
        self._undecodable_at = -UNDECODABLE_EVERY
        self._undecodable_skipped = 0
        self._warn = WarnOnce(_LOGGER, 100)
        self._scheme, self._target, self._baud = _parse_url(url)

    # -- what the radio channel uses -------------------------------------------------------

    def on_frame(self, callback: Callable[[str, ax25.Frame], None]) -> None:
        """Call ``callback(gateway_id, frame)`` for every AX.25 frame heard (it must not block)."""
        self._callbacks.append(callback)

    def transmit(
        self,
        frame: ax25.Frame,
        log: RadioFrameLogged | None = None,
        *,
        on_sent: Callable[[], None] | None = None,
        wanted: Callable[[], bool] | None = None,
    ) -> None:
        """Queue ``frame``; it goes out when the link is up, in order, kept across reconnects.

        ``log`` is published on ``radio.frame`` (with the time it went) once it was written;
        ``on_sent`` is called then too. ``wanted`` is asked just before the frame goes: False
        drops it (a message withdrawn while it waited behind slower frames). A full queue drops
        its oldest frame (counted).
        """
        if len(self._queue) >= self.max_queue:
            self._queue.popleft()
            self.dropped += 1
            self._warn(
                "full", "gateway %s: transmit queue full, oldest frames dropped", self.gateway_id
            )
        self._queue.append(_Outgoing(frame, log, on_sent, wanted))
        self._queued.set()

    @property
    def up(self) -> bool:
        """The link is open."""
        return self.link == "up"

    @property
    def transmit_queue(self) -> int:
        """Frames waiting to go out."""
        return len(self._queue)

    # -- the adapter -----------------------------------------------------------------------

    async def run(self, ctx: AdapterContext) -> None:
        """Keep the link open, reconnecting with backoff; runs until cancelled."""
        self._bus = ctx.bus
        async with ctx.bus.subscribe(
            DEVICE_COMMAND_REQUESTED, maxsize=100, name=f"{self.name}:commands", replay_state=False
        ) as commands:
            commanding = asyncio.create_task(self._commands(commands), name=f"{self.name}:cmd")
            try:
                await self._keep_linked(ctx)
            finally:
                commanding.cancel()
                await asyncio.wait({commanding})
                self.channel_busy = False
                self._set_link("down", "stopped")

    async def _keep_linked(self, ctx: AdapterContext) -> None:
        failures = 0
        while True:
            self._set_link("connecting", self.url)
            self._reconnect.clear()
            started = time.monotonic()
            try:
                reader, writer = await self._open()
            except (OSError, TimeoutError) as exc:
                reason = f"cannot open {self.url}: {_describe(exc)}"
            else:
                self.connects += 1
                ctx.heartbeat()
                reason = await self._session(ctx, reader, writer)
            if time.monotonic() - started >= self.backoff.reset_after:
                failures = 0
            delay = self.backoff.delay(failures, random.random())  # noqa: S311 - jitter
            failures += 1
            if failures == 1:
                _LOGGER.warning("gateway %s down: %s", self.gateway_id, reason)
            else:
                _LOGGER.debug("gateway %s down again: %s", self.gateway_id, reason)
            self._set_link("down", f"{reason}; retry in {delay:.1f} s")
            if self._reconnect.is_set():
                failures = 0
                continue  # asked for by an operator: at once
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._reconnect.wait()

    async def _commands(self, commands: Subscription) -> None:
        """The registry's commands for this gateway: ``ping`` (figures) and ``reconnect``."""
        async for envelope in commands:
            request: DeviceCommandRequested = envelope.payload
            if request.device_id != self.device_id:
                continue
            if request.command == "reconnect":
                self._reconnect.set()
                reply = DeviceCommandReplied(request.request_id, self.device_id, ok=True)
            elif request.command == "ping":
                reply = DeviceCommandReplied(
                    request.request_id, self.device_id, ok=self.up, result=self.figures()
                )
            else:
                reply = DeviceCommandReplied(
                    request.request_id,
                    self.device_id,
                    ok=False,
                    error=f"a radio gateway takes ping and reconnect, not {request.command!r}",
                )
            ctx_bus = self._bus
            if ctx_bus is not None:
                ctx_bus.publish(
                    DEVICE_COMMAND_REPLIED,
                    reply,
                    source=self.name,
                    key=self.device_id,
                    correlation_id=envelope.correlation_id,
                )

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with asyncio.timeout(self.connect_timeout):
            if self._scheme == "tcp":
                host, port = self._target.rsplit(":", 1)
                return await asyncio.open_connection(host.strip("[]"), int(port))
            import serial_asyncio_fast  # noqa: PLC0415 - only serial gateways need it

            return await serial_asyncio_fast.open_serial_connection(
                url=self._target, baudrate=self._baud
            )

    async def _session(
        self, ctx: AdapterContext, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> str:
        """Serve one open link until it fails; return why it ended."""
        self._set_link("up", self.url)
        tasks = {
            asyncio.create_task(self._receive(ctx, reader), name=f"{self.name}:rx"),
            asyncio.create_task(self._send(writer), name=f"{self.name}:tx"),
            asyncio.create_task(self._report_periodically(), name=f"{self.name}:report"),
            asyncio.create_task(self._reconnect_requested(), name=f"{self.name}:reconnect"),
        }
        try:
            # Not a TaskGroup: on 3.11 a child's failure racing an outside cancel swallows
            # the cancel, and the gateway would then never stop.
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            error = next(iter(done)).exception()
            if isinstance(error, OSError | TimeoutError):
                return _describe(error)
            if error is not None:
                raise error
            return "link ended"
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)
            self.channel_busy = False
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await writer.wait_closed()

    async def _reconnect_requested(self) -> None:
        await self._reconnect.wait()
        raise LinkLostError("reconnect requested")

    async def _receive(self, ctx: AdapterContext, reader: asyncio.StreamReader) -> None:
        decoder = kiss.KissDecoder(max_frame=MAX_FRAME)
        while True:
            if self.quiet_after is None:
                chunk = await reader.read(4096)
            else:
                try:
                    async with asyncio.timeout(self.quiet_after):
                        chunk = await reader.read(4096)
                except TimeoutError:
                    raise LinkLostError(f"nothing heard for {self.quiet_after:g} s") from None
            if not chunk:
                raise LinkLostError("closed by the TNC")
            for item in decoder.feed(chunk):
                self._heard(ctx, item)

    def _heard(self, ctx: AdapterContext, item: kiss.KissFrame | kiss.KissError) -> None:
        if isinstance(item, kiss.KissError):
            self._undecodable(f"KISS {item.reason}", b"")
            return
        if item.command is not kiss.KissCommand.DATA or item.port != self.kiss_port:
            return
        try:
            frame = ax25.decode(item.data)
        except ax25.AX25Error as exc:
            self._undecodable(f"AX.25 {exc.reason}", item.data)
            return
        self.frames_in += 1
        self.last_heard = datetime.now(UTC)
        self._last_heard_mono = time.monotonic()
        ctx.heartbeat()
        for callback in self._callbacks:
            try:
                callback(self.gateway_id, frame)
            except Exception:
                _LOGGER.exception("gateway %s: a frame handler failed", self.gateway_id)

    async def _send(self, writer: asyncio.StreamWriter) -> None:
        while True:
            while not self._queue:
                self._queued.clear()
                await self._queued.wait()
            item = self._queue[0]
            if item.wanted is not None and not item.wanted():
                self._queue.popleft()
                continue
            try:
                payload = ax25.encode(item.frame)
            except ValueError as exc:
                self._queue.popleft()
                self.dropped += 1
                self._warn(
                    ("unencodable", str(exc)),
                    "gateway %s: frame not sent: %s",
                    self.gateway_id,
                    exc,
                )
                continue
            data = kiss.data_frame(payload, self.kiss_port)
            if not await self._transmit_one(writer, item, data, airtime(len(payload))):
                await asyncio.sleep(KEY_RETRY)

    def _written(self, item: _Outgoing) -> None:
        """The frame is with the TNC: only now does it leave the queue (at least once).

        Reported at once, not when its airtime ends: an answer heard while the transmitter is
        still keyed comes after it, in the log and in dispatch's ladder.
        """
        if self._queue and self._queue[0] is item:
            self._queue.popleft()
        self.frames_out += 1
        if item.log is not None:
            self._publish_log(item.log)
        if item.on_sent is not None:
            item.on_sent()

    async def _transmit_one(
        self, writer: asyncio.StreamWriter, item: _Outgoing, data: bytes, seconds: float
    ) -> bool:
        """Write one frame, keyed if there is a keyer; False if it could not be keyed.

        With a keyer the transmitter stays keyed for the frame's airtime after the write, while
        the TNC plays it. A keyer that fails (its PTT port or rig gone) leaves the frame queued
        and the link up; a write that fails ends the link.
        """
        self.channel_busy = True
        written = False
        try:
            if self.keyer is None:
                await self._write(writer, data, seconds)
                self._written(item)
                return True
            async with self.keyer.transmitting(seconds):
                try:
                    await self._write(writer, data, seconds)
                except (OSError, TimeoutError) as exc:
                    raise _WriteFailedError(exc) from exc
                written = True
                self._written(item)
                await asyncio.sleep(seconds)
        except _WriteFailedError as failed:
            raise failed.error from None
        except OSError as exc:
            self.key_errors += 1
            self._warn(
                ("keyer", type(exc).__name__),
                "gateway %s: the transmitter could not be keyed: %s",
                self.gateway_id,
                exc,
            )
            return written
        finally:
            self.channel_busy = False
        return True

    async def _write(self, writer: asyncio.StreamWriter, data: bytes, seconds: float) -> None:
        writer.write(data)
        async with asyncio.timeout(seconds + WRITE_GRACE):
            await writer.drain()

    async def _report_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.report_every)
            self._report()

    # -- what goes on the bus --------------------------------------------------------------

    def _undecodable(self, reason: str, data: bytes) -> None:
        self.decode_errors += 1
        now = time.monotonic()
        if now - self._undecodable_at < UNDECODABLE_EVERY:
            self._undecodable_skipped += 1
            return
        self._undecodable_at = now
        skipped, self._undecodable_skipped = self._undecodable_skipped, 0
        text = reason
        if data:
            text += f": {data[:UNDECODABLE_SHOWN].hex()}" + (
                "…" if len(data) > UNDECODABLE_SHOWN else ""
            )
        if skipped:
            text += f" ({skipped} more not logged since the last)"
        self._warn(
            ("undecodable", reason), "gateway %s: undecodable frame (%s)", self.gateway_id, reason
        )
        self._publish_log(
            RadioFrameLogged(
                at=datetime.now(UTC),
                gateway=self.gateway_id,
                direction="in",
                kind="undecodable",
                callsign="",
                text=text,
            )
        )

    def _publish_log(self, log: RadioFrameLogged) -> None:
        if self._bus is None:
            return
        if log.gateway != self.gateway_id or log.direction == "out":
            log = dataclasses.replace(log, gateway=self.gateway_id, at=datetime.now(UTC))
        self._bus.publish(RADIO_FRAME, log, source=self.name, key=self.gateway_id)

    def _set_link(self, link: Link, detail: str) -> None:
        changed = link != self.link
        self.link = link
        self.detail = detail
        if changed or link != "up":
            self._report()

    def figures(self) -> dict[str, Figure]:
        """The health figures of the device registry.

        ``last_frame_age_s``, ``queue_depth`` and ``errors`` are the names the registry's
        ``radio_gateway`` rules judge (a channel silent for 10 minutes, more than 20 frames
        waiting); the others say the same in the radio panel's words, and more.
        """
        age = (
            None
            if self._last_heard_mono is None
            else round(time.monotonic() - self._last_heard_mono, 1)
        )
        return {
            "link": self.link,
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "decode_errors": self.decode_errors,
            "transmit_queue": len(self._queue),
            "transmit_dropped": self.dropped,
            "key_errors": self.key_errors,
            "last_heard_age": age,
            "channel_busy": self.channel_busy,
            "last_frame_age_s": age,
            "queue_depth": len(self._queue),
            "errors": self.decode_errors,
        }

    def _report(self) -> None:
        if self._bus is None:
            return
        self._bus.publish(
            GATEWAY_CHANGED,
            GatewayChanged(
                gateway=self.gateway_id,
                link=self.link,
                url=self.url,
                detail=self.detail,
                frames_in=self.frames_in,
                frames_out=self.frames_out,
                decode_errors=self.decode_errors,
                transmit_queue=len(self._queue),
                last_heard=self.last_heard,
                channel_busy=self.channel_busy,
            ),
            source=self.name,
            key=self.gateway_id,
        )
        if self.link == "connecting":
            return  # neither proof of life nor of death yet
        self._bus.publish(
            DEVICE_REPORTED,
            DeviceReported(
                device_id=self.device_id,
                kind=DEVICE_KIND,
                figures=self.figures(),
                online=self.link == "up",
                name=self.gateway_id,
            ),
            source=self.name,
            key=self.device_id,
        )


def _parse_url(url: str) -> tuple[str, str, int]:
    """(scheme, target, baud) of a gateway URL: the device path or ``host:port``.

    Raises:
        AdapterConfigError: not ``serial:///path?baud=N`` or ``tcp://host:port``.
    """
    parts = urlsplit(url)
    if parts.scheme == "tcp" and parts.hostname and parts.port:
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        return "tcp", f"{host}:{parts.port}", 0
    if parts.scheme == "serial" and parts.path and not parts.netloc:
        query = parse_qs(parts.query)
        try:
            baud = int(query.get("baud", [str(DEFAULT_BAUD)])[0])
        except ValueError:
            raise AdapterConfigError(f"bad baud rate in {url!r}") from None
        return "serial", parts.path, baud
    raise AdapterConfigError(f"a gateway URL is serial:///dev/… or tcp://host:port, not {url!r}")


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
