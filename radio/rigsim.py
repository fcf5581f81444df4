r"""A small ``rigctld``: hamlib's network protocol over TCP, with one rig's state in memory.

The simulator and the tests use it where no radio (and no hamlib) is at hand. It answers the
commands the hub's :class:`~radio.rigctl.RigctlClient` uses and those hamlib's own network
client (``rigctl -m 2``, "NET rigctl") sends when it opens: ``f``/``F``, ``m``/``M``,
``t``/``T``, ``v``/``V``, ``s``, ``\chk_vfo``, ``\dump_state`` (a minimal capability dump),
``\get_powerstat``, ``\get_lock_mode`` and their long ``\get_freq``-style names; ``q``
closes. Anything else is refused with ``RPRT -11`` (not available), a bad argument with
``RPRT -1``, as ``rigctld`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Final

_LOGGER = logging.getLogger(__name__)

RIG_OK: Final = 0
RIG_EINVAL: Final = -1
RIG_ENAVAIL: Final = -11
#: Seconds a client may stay silent before the server closes its connection.
IDLE_TIMEOUT: Final = 600.0
MAX_LINE: Final = 1024

#: hamlib's mode tokens (``rig_parse_mode``) and the passband ``0`` stands for (Hz).
MODES: Final[dict[str, int]] = {
    "AM": 8000,
    "CW": 500,
    "USB": 2400,
    "LSB": 2400,
    "RTTY": 2400,
    "FM": 15000,
    "WFM": 230000,
    "CWR": 500,
    "RTTYR": 2400,
    "AMS": 8000,
    "PKTLSB": 2400,
    "PKTUSB": 2400,
    "PKTFM": 15000,
    "ECSSUSB": 2400,
    "ECSSLSB": 2400,
    "FAX": 2400,
    "SAM": 8000,
    "SAL": 8000,
    "SAH": 8000,
    "DSB": 2400,
    "FMN": 12500,
    "PKTAM": 8000,
}
VFOS: Final = frozenset(
    {"VFOA", "VFOB", "VFOC", "currVFO", "VFO", "MEM", "Main", "Sub", "TX", "RX"}
)
LOW_HZ: Final = 150_000
HIGH_HZ: Final = 1_500_000_000

#: What ``\\dump_state`` answers: protocol 1, a 150 kHz-1.5 GHz receiver and transmitter,
#: PTT by CAT, no functions or levels. hamlib's NET rigctl backend reads it on open.
DUMP_STATE: Final = "\n".join(
    [
        "1",  # protocol version
        "1",  # rig model (hamlib's dummy)
        "0",  # ITU region
        f"{LOW_HZ}.000000 {HIGH_HZ}.000000 0x1ff -1 -1 0x3 0xf",
        "0 0 0 0 0 0 0",
        f"{LOW_HZ}.000000 {HIGH_HZ}.000000 0x1ff 5000 100000 0x3 0xf",
        "0 0 0 0 0 0 0",
        "0x1ff 1",
        "0 0",
        "0x2 500",
        "0x1 2400",
        "0x1 8000",
        "0x40 15000",
        "0x40 230000",
        "0 0",
        "0",  # max RIT
        "0",  # max XIT
        "0",  # max IF shift
        "0",  # announces
        "",  # preamp
        "",  # attenuator
        "0x0",  # get functions
        "0x0",  # set functions
        "0x0",  # get levels
        "0x0",  # set levels
        "0x0",  # get parms
        "0x0",  # set parms
        "vfo_ops=0x0",
        "ptt_type=0x1",
        "targetable_vfo=0x10c3",
        "has_set_vfo=1",
        "has_get_vfo=1",
        "has_set_freq=1",
        "has_get_freq=1",
        "has_set_conf=0",
        "has_get_conf=0",
        "has_power2mW=0",
        "has_mW2power=0",
        "timeout=0",
        "rig_model=1",
        "rigctld_version=Posko rigctld simulator",
        "done",
    ]
)

_LONG_NAMES: Final = {
    "\\set_freq": "F",
    "\\get_freq": "f",
    "\\set_mode": "M",
    "\\get_mode": "m",
    "\\set_ptt": "T",
    "\\get_ptt": "t",
    "\\set_vfo": "V",
    "\\get_vfo": "v",
    "\\get_split_vfo": "s",
    "\\quit": "q",
}


class RigctldServer:
    """A ``rigctld`` on ``host:port`` (0: any free port, read ``.port`` after :meth:`start`).

    ``frequency`` (Hz), ``mode``, ``passband`` (Hz), ``ptt`` and ``vfo`` are the rig's state;
    tests may read and set them. ``commands`` lists every command line received, in order.
    ``on_command`` (optional) sees each line before it is answered; ``answer_delay`` (seconds)
    plays a slow rig.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        frequency: int = 145_000_000,
        mode: str = "FM",
        passband: int = 15_000,
    ) -> None:
        self.host = host
        self.port = port
        self.frequency = frequency
        self.mode = mode
        self.passband = passband
        self.ptt = False
        self.vfo = "VFOA"
        self.commands: list[str] = []
        self.on_command: Callable[[str], None] | None = None
        self.answer_delay = 0.0
        self._server: asyncio.Server | None = None
        self._clients: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    async def start(self) -> None:
        """Listen; ``.port`` is the bound port afterwards."""
        self._server = await asyncio.start_server(
            self._serve_client, self.host, self.port, limit=MAX_LINE
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and close every client connection."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        await self.drop_clients()
        if server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5.0):
                    await server.wait_closed()

    @property
    def clients(self) -> int:
        """Connections open now."""
        return len(self._clients)

    async def drop_clients(self) -> None:
        """Close every client connection (as a restarted daemon would), keep listening."""
        # Closed, not cancelled: the stream server reports a cancelled client task as an error.
        for writer in self._clients.values():
            writer.close()
        if self._clients:
            await asyncio.wait(set(self._clients), timeout=5.0)

    def answer(self, line: str) -> str | None:
        """The answer to one command line (None: close the connection)."""
        words = line.split()
        if not words:
            return ""
        command, args = words[0], words[1:]
        command = _LONG_NAMES.get(command, command)
        handler = self._handlers().get(command)
        if handler is None:
            return _rprt(RIG_ENAVAIL)
        return handler(args)

    # -- commands --------------------------------------------------------------------------

    def _handlers(self) -> dict[str, Callable[[list[str]], str | None]]:
        return {
            "f": lambda _: f"{self.frequency}\n",
            "F": self._set_freq,
            "m": lambda _: f"{self.mode}\n{self.passband}\n",
            "M": self._set_mode,
            "t": lambda _: f"{int(self.ptt)}\n",
            "T": self._set_ptt,
            "v": lambda _: f"{self.vfo}\n",
            "V": self._set_vfo,
            "s": lambda _: f"0\n{self.vfo}\n",
            "\\chk_vfo": lambda _: "0\n",
            "\\dump_state": lambda _: DUMP_STATE + "\n",
            "\\get_powerstat": lambda _: "1\n",
            "\\get_lock_mode": lambda _: "0\n",
            "q": lambda _: None,
            "Q": lambda _: None,
        }

    def _set_freq(self, args: list[str]) -> str:
        if len(args) != 1:
            return _rprt(RIG_EINVAL)
        try:
            hz = round(float(args[0]))
        except (ValueError, OverflowError):
            return _rprt(RIG_EINVAL)
        if not LOW_HZ <= hz <= HIGH_HZ:
            return _rprt(RIG_EINVAL)
        self.frequency = hz
        return _rprt(RIG_OK)

    def _set_mode(self, args: list[str]) -> str:
        if len(args) != 2 or args[0] not in MODES:  # noqa: PLR2004 - mode and passband
            return _rprt(RIG_EINVAL)
        try:
            passband = int(args[1])
        except ValueError:
            return _rprt(RIG_EINVAL)
        if passband < -1:
            return _rprt(RIG_EINVAL)
        mode = args[0]
        if passband == 0:
            passband = MODES[mode]
        elif passband == -1:
            passband = self.passband if mode == self.mode else MODES[mode]
        self.mode = mode
        self.passband = passband
        return _rprt(RIG_OK)

    def _set_ptt(self, args: list[str]) -> str:
        if len(args) != 1 or args[0] not in {"0", "1", "2", "3"}:
            return _rprt(RIG_EINVAL)
        self.ptt = args[0] != "0"
        return _rprt(RIG_OK)

    def _set_vfo(self, args: list[str]) -> str:
        if len(args) != 1 or args[0] not in VFOS:
            return _rprt(RIG_EINVAL)
        self.vfo = args[0]
        return _rprt(RIG_OK)

    # -- connections -----------------------------------------------------------------------

    async def _serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None  # noqa: S101 - a client handler always runs in a task
        self._clients[task] = writer
        try:
            while True:
                async with asyncio.timeout(IDLE_TIMEOUT):
                    raw = await reader.readline()
                if not raw:
                    return
                line = raw.decode("ascii", errors="replace").strip()
                self.commands.append(line)
                if self.on_command is not None:
                    self.on_command(line)
                if self.answer_delay > 0:
                    await asyncio.sleep(self.answer_delay)
                reply = self.answer(line)
                if reply is None:
                    writer.write(_rprt(RIG_OK).encode())
                    await writer.drain()
                    return
                if reply:
                    writer.write(reply.encode("ascii"))
                    await writer.drain()
        except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as exc:
            _LOGGER.debug("rigctld simulator: client ended: %r", exc)
        finally:
            self._clients.pop(task, None)
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await writer.wait_closed()


def _rprt(code: int) -> str:
    return f"RPRT {code}\n"
