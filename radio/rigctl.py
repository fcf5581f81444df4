"""An asyncio client of hamlib's ``rigctld`` network protocol: frequency, mode and PTT.

``rigctld`` serves one line per command (``F 145500000``, ``f``, ``M FM 15000``, ``m``,
``T 1``, ``t``); a set command answers ``RPRT 0`` or ``RPRT -n`` (a negative hamlib error
code), a get command its value line(s) or ``RPRT -n``. Through it any radio hamlib supports is
tuned and keyed the same way. Every wait is bounded by ``timeout``; a reply that does not come
in time leaves the connection in an unknown state, so it is closed and the next command opens a
new one. A socket the daemon dropped (restarted, idle timeout) is re-opened once per command:
every command here is idempotent, so repeating it is safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final
from urllib.parse import urlsplit

_LOGGER = logging.getLogger(__name__)

DEFAULT_TIMEOUT: Final = 3.0
#: Longest answer line accepted from the daemon (a dump is never asked for here).
MAX_LINE: Final = 4096

#: hamlib's error codes (``rig_errcode_e``), for messages a technician can read.
ERRORS: Final[dict[int, str]] = {
    1: "invalid parameter",
    2: "invalid configuration",
    3: "out of memory",
    4: "not implemented",
    5: "timed out talking to the rig",
    6: "I/O error",
    7: "internal hamlib error",
    8: "protocol error",
    9: "command rejected by the rig",
    10: "argument truncated",
    11: "not available",
    12: "VFO not targetable",
    13: "bus error",
    14: "bus busy",
    15: "invalid argument",
    16: "invalid VFO",
    17: "argument out of domain",
}


class RigError(Exception):
    """``rigctld`` refused a command: ``code`` the ``RPRT`` number (negative), ``command`` it."""

    def __init__(self, code: int, command: str) -> None:
        self.code = code
        self.command = command
        meaning = ERRORS.get(abs(code), "unknown error")
        super().__init__(f"rigctld answered RPRT {code} ({meaning}) to {command!r}")


class RigctlClient:
    """One connection to a ``rigctld``, opened on first use and re-opened when it drops.

    Commands are serialised (one outstanding command per connection, as the protocol needs).
    Raises ``OSError``/``TimeoutError`` when the daemon cannot be reached or does not answer,
    :class:`RigError` when it answers with an error.
    """

    def __init__(self, host: str, port: int, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def from_url(cls, url: str, *, timeout: float = DEFAULT_TIMEOUT) -> RigctlClient:
        """A client of ``tcp://host:4532`` (the ``rig`` of a gateway's configuration)."""
        parts = urlsplit(url)
        if parts.scheme != "tcp" or not parts.hostname or parts.port is None:
            raise ValueError(f"a rigctld address looks like tcp://host:4532, not {url!r}")
        return cls(parts.hostname, parts.port, timeout=timeout)

    @property
    def connected(self) -> bool:
        """True while a connection is open (it may still turn out to be dead)."""
        return self._writer is not None and not self._writer.is_closing()

    async def connect(self) -> None:
        """Open the connection now (otherwise the first command does)."""
        async with self._lock:
            await self._open()

    async def close(self) -> None:
        """Say goodbye (``q``) if connected and close; never raises."""
        async with self._lock:
            writer = self._writer
            if writer is not None and not writer.is_closing():
                with contextlib.suppress(OSError):
                    writer.write(b"q\n")
            await self._drop()

    async def get_frequency(self) -> int:
        """The rig's frequency in Hz."""
        (line,) = await self._command("f", 1)
        return _number(line, "f")

    async def set_frequency(self, hz: int) -> None:
        """Tune to ``hz``."""
        await self._command(f"F {int(hz)}", 0)

    async def get_mode(self) -> tuple[str, int]:
        """The rig's mode and passband (Hz)."""
        mode, passband = await self._command("m", 2)
        return mode, _number(passband, "m")

    async def set_mode(self, mode: str, passband: int = 0) -> None:
        """Set mode (hamlib token: FM, USB, PKTFM …) and passband (0 rig default, -1 unchanged)."""
        if not mode or not mode.isalnum():
            raise ValueError(f"bad mode {mode!r}")
        await self._command(f"M {mode} {int(passband)}", 0)

    async def get_ptt(self) -> bool:
        """True while the rig transmits."""
        (line,) = await self._command("t", 1)
        return _number(line, "t") != 0

    async def set_ptt(self, on: bool) -> None:
        """Key (``T 1``) or unkey (``T 0``) the transmitter."""
        await self._command(f"T {1 if on else 0}", 0)

    # -- helpers ---------------------------------------------------------------------------

    async def _command(self, command: str, answers: int) -> list[str]:
        """Send one command and read its answer, re-opening a dropped connection once."""
        async with self._lock:
            fresh = not self.connected
            if fresh:
                await self._open()
            try:
                return await self._exchange(command, answers)
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                await self._drop()
                if fresh:
                    raise ConnectionError(f"rigctld closed the connection: {exc}") from exc
                _LOGGER.debug("rigctld %s:%s dropped the connection; re-opening", *self._where)
            await self._open()
            try:
                return await self._exchange(command, answers)
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                await self._drop()
                raise ConnectionError(f"rigctld closed the connection: {exc}") from exc

    async def _exchange(self, command: str, answers: int) -> list[str]:
        reader, writer = self._reader, self._writer
        assert reader is not None  # noqa: S101 - _open set both
        assert writer is not None  # noqa: S101
        try:
            writer.write(command.encode("ascii") + b"\n")
            async with asyncio.timeout(self.timeout):
                await writer.drain()
                return await self._answer(reader, command, answers)
        except TimeoutError:
            # A late answer would be read as the next command's: start over.
            await self._drop()
            raise TimeoutError(f"rigctld did not answer {command!r} in {self.timeout} s") from None
        except RigError:
            raise
        except (ValueError, asyncio.LimitOverrunError) as exc:
            await self._drop()
            raise ConnectionError(f"rigctld answered nonsense: {exc}") from exc
        except asyncio.CancelledError:
            # The answer may still come, and would be read as the next command's.
            self._abandon()
            raise

    async def _answer(self, reader: asyncio.StreamReader, command: str, answers: int) -> list[str]:
        """Value lines until ``answers`` of them, or ``RPRT`` (:class:`RigError` unless 0)."""
        lines: list[str] = []
        while True:
            line = await self._readline(reader)
            if line.startswith("RPRT "):
                code = _number(line[5:], command)
                if code != 0:
                    raise RigError(code, command)
                if answers == 0:
                    return lines
                raise ConnectionError(f"rigctld answered RPRT 0 to {command!r}")
            lines.append(line)
            if len(lines) == answers:
                return lines

    @staticmethod
    async def _readline(reader: asyncio.StreamReader) -> str:
        raw = await reader.readuntil(b"\n")
        if len(raw) > MAX_LINE:
            raise ValueError("answer line too long")
        return raw.decode("ascii", errors="replace").strip()

    async def _open(self) -> None:
        if self.connected:
            return
        await self._drop()
        try:
            async with asyncio.timeout(self.timeout):
                self._reader, self._writer = await asyncio.open_connection(
                    self.host, self.port, limit=MAX_LINE
                )
        except TimeoutError:
            raise TimeoutError(
                f"rigctld {self.host}:{self.port} did not accept in {self.timeout} s"
            ) from None

    def _abandon(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()

    async def _drop(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is None:
            return
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(self.timeout):
                await writer.wait_closed()

    @property
    def _where(self) -> tuple[str, int]:
        return self.host, self.port


def _number(text: str, command: str) -> int:
    """An integer answer (hamlib may print a frequency as ``145500000.000000``)."""
    try:
        return int(float(text.strip()))
    except (ValueError, OverflowError):
        raise ValueError(f"{text!r} is not a number (answer to {command!r})") from None
