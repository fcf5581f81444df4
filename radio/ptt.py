"""PTT by a serial port's RTS or DTR line (through the interface's transistor or opto-coupler).

The gateway's ``ptt`` is ``serial:///dev/ttyUSB1?line=RTS&invert=0``: the line that keys the
transmitter and whether it keys when low (``invert=1``). pyserial is told the line's idle
level before it opens the port, so it sets it in the same call as the open (by default it would
raise both lines and key the radio until told otherwise); only the kernel's own raising of RTS
and DTR for the instant of ``open()`` remains. The other line is left as pyserial sets it
(asserted), since some interfaces draw their power from it. Setting a line is one ``ioctl``,
fast on a real port, but a USB adapter being unplugged can stall it: each call runs in a worker
thread, bounded by ``timeout``, so the event loop never waits on it.

A pseudo-terminal has no modem control lines: Linux refuses ``TIOCMBIS``/``TIOCMGET`` on both
of its ends with ``ENOTTY``. Keying a pty therefore raises :class:`PttError` at once (the port
opens, the first setting of the line fails) rather than pretending to key.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal, ParamSpec, TypeVar
from urllib.parse import parse_qsl, urlsplit

import serial

DEFAULT_TIMEOUT: Final = 2.0

Line = Literal["RTS", "DTR"]
P = ParamSpec("P")
R = TypeVar("R")


class PttError(OSError):
    """The transmitter could not be keyed or unkeyed (port missing, no modem lines, stalled)."""


@dataclass(frozen=True, slots=True)
class SerialPttSpec:
    """Where and how to key: the port (a path, or any pyserial URL), the line, its polarity."""

    port: str
    line: Line = "RTS"
    invert: bool = False

    @classmethod
    def parse(cls, url: str) -> SerialPttSpec:
        """Read ``serial:///dev/ttyUSB1?line=RTS&invert=0`` (as the configuration checks it)."""
        parts = urlsplit(url)
        if parts.scheme != "serial" or not parts.path or parts.netloc:
            raise ValueError(f"a serial PTT looks like serial:///dev/ttyUSB1?line=RTS, not {url!r}")
        query = dict(parse_qsl(parts.query))
        line = query.get("line", "RTS")
        invert = query.get("invert", "0")
        if line not in {"RTS", "DTR"} or invert not in {"0", "1"}:
            raise ValueError(f"line must be RTS or DTR and invert 0 or 1 in {url!r}")
        return cls(parts.path, "RTS" if line == "RTS" else "DTR", invert == "1")


class SerialPtt:
    """One serial port whose RTS or DTR keys a transmitter.

    :meth:`open` unkeys (the line at idle), :meth:`set` keys or unkeys, :meth:`close` unkeys and
    closes. ``keyed`` is what was last set successfully. All raise :class:`PttError`.
    """

    def __init__(self, spec: SerialPttSpec, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.spec = spec
        self.timeout = timeout
        self.keyed = False
        self._serial: serial.SerialBase | None = None
        # The worker threads of a stalled call and the next one must not interleave.
        self._io = threading.Lock()

    @property
    def is_open(self) -> bool:
        """True while the port is open."""
        return self._serial is not None

    async def open(self) -> None:
        """Open the port with the line at idle (unkeyed) and prove the line can be set."""
        if self._serial is not None:
            return
        self._serial = await self._call(self._open_blocking)
        self.keyed = False

    async def set(self, on: bool) -> None:
        """Key (``on``) or unkey; raises :class:`PttError` when the line cannot be set."""
        port = self._serial
        if port is None:
            raise PttError(errno.EBADF, f"PTT port {self.spec.port} is not open")
        await self._call(self._set_blocking, port, on)
        self.keyed = on

    async def close(self) -> None:
        """Unkey (best effort) and close; never raises."""
        port, self._serial = self._serial, None
        if port is None:
            return
        with contextlib.suppress(PttError):
            await self._call(self._close_blocking, port)
        self.keyed = False

    def level(self, on: bool) -> bool:
        """The electrical level of the line that means keyed (``on``) or not."""
        return on != self.spec.invert

    # -- in a worker thread ----------------------------------------------------------------

    async def _call(self, function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            async with asyncio.timeout(self.timeout):
                return await asyncio.to_thread(function, *args, **kwargs)
        except TimeoutError:
            raise PttError(
                errno.ETIMEDOUT, f"PTT port {self.spec.port} did not answer in {self.timeout} s"
            ) from None

    def _open_blocking(self) -> serial.SerialBase:
        with self._io:
            try:
                port = serial.serial_for_url(self.spec.port, do_not_open=True)
                self._apply(port, on=False)
                port.open()
            except (OSError, serial.SerialException, ValueError) as exc:
                raise _error(self.spec, "open", exc) from exc
            try:
                # pyserial ignores ENOTTY while opening; here it must not, or a pty "keys".
                self._apply(port, on=False)
            except (OSError, serial.SerialException, ValueError) as exc:
                port.close()
                raise _error(self.spec, "open", exc) from exc
            return port

    def _set_blocking(self, port: serial.SerialBase, on: bool) -> None:
        with self._io:
            try:
                self._apply(port, on=on)
            except (OSError, serial.SerialException, ValueError) as exc:
                raise _error(self.spec, "key" if on else "unkey", exc) from exc

    def _close_blocking(self, port: serial.SerialBase) -> None:
        with self._io:
            try:
                self._apply(port, on=False)
            except (OSError, serial.SerialException, ValueError) as exc:
                raise _error(self.spec, "unkey", exc) from exc
            finally:
                port.close()

    def _apply(self, port: serial.SerialBase, *, on: bool) -> None:
        if not port.is_open and port is self._serial:
            # In use but closed underneath: pyserial would store the level and report success.
            raise serial.PortNotOpenError
        level = self.level(on)
        if self.spec.line == "RTS":
            port.rts = level
        else:
            port.dtr = level


def _error(spec: SerialPttSpec, what: str, exc: BaseException) -> PttError:
    code = getattr(exc, "errno", None) or errno.EIO
    if code in {errno.ENOTTY, errno.EINVAL}:
        why = "the port has no modem control lines (a pseudo-terminal?)"
    else:
        why = str(exc) or type(exc).__name__
    return PttError(code, f"cannot {what} by {spec.line} on {spec.port}: {why}")
