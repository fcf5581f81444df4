"""KISS framing between the hub and a TNC (KA9Q's protocol), with no I/O.

A frame on the wire is ``FEND type escaped-data FEND``. The type byte holds the TNC port in its
high nibble and the command in its low nibble; ``0xFF`` alone leaves KISS mode. Inside the data a
``FEND`` travels as ``FESC TFEND`` and a ``FESC`` as ``FESC TFESC``. There is no checksum on the
host link: the TNC adds and checks the on-air FCS.

:class:`KissDecoder` turns a byte stream cut at arbitrary points into frames. It never raises:
what it cannot read comes back as a :class:`KissError` in the list, and decoding resumes at the
next ``FEND``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final

FEND: Final = 0xC0
FESC: Final = 0xDB
TFEND: Final = 0xDC
TFESC: Final = 0xDD

#: The largest data field (type byte excluded) a decoder accepts unless told otherwise; an
#: AX.25 UI frame with 8 digipeaters and a 256-byte info field is 330 bytes.
DEFAULT_MAX_FRAME: Final = 1024
_RETURN_TYPE: Final = 0xFF
_FEND_BYTES: Final = bytes([FEND])
_FESC_BYTES: Final = bytes([FESC])


class KissCommand(IntEnum):
    """The low nibble of the type byte (``RETURN`` is the whole byte ``0xFF``)."""

    DATA = 0
    TXDELAY = 1
    PERSISTENCE = 2
    SLOTTIME = 3
    TXTAIL = 4
    FULLDUPLEX = 5
    SETHARDWARE = 6
    RETURN = 0xF


@dataclass(frozen=True, slots=True)
class KissFrame:
    """One KISS frame: the TNC port (0-15), what it is, and its unescaped data."""

    port: int
    command: KissCommand
    data: bytes


class KissError(ValueError):
    """Bytes that are not a KISS frame; ``reason`` is a short word for counting and logs.

    Reasons: ``bad-escape``, ``oversized``, ``bad-command``, ``empty``, ``bad-port``,
    ``bad-value``.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def escape(data: bytes) -> bytes:
    """``data`` with every FEND and FESC replaced by its two-byte escape."""
    return data.replace(_FESC_BYTES, b"\xdb\xdd").replace(_FEND_BYTES, b"\xdb\xdc")


def unescape(data: bytes) -> bytes:
    """The inverse of :func:`escape`.

    Raises:
        KissError: ``bad-escape`` for a FESC not followed by TFEND or TFESC, or a bare FEND.
    """
    if FEND in data:
        raise KissError("bad-escape", "FEND inside a frame")
    if FESC not in data:
        return data
    parts = data.split(_FESC_BYTES)
    out = bytearray(parts[0])
    for part in parts[1:]:
        if not part:
            raise KissError("bad-escape", "FESC at the end of a frame or before another FESC")
        code = part[0]
        if code == TFEND:
            out.append(FEND)
        elif code == TFESC:
            out.append(FESC)
        else:
            raise KissError("bad-escape", f"FESC followed by 0x{code:02x}")
        out += part[1:]
    return bytes(out)


def encode(frame: KissFrame) -> bytes:
    """The frame as it goes to the TNC, between two FENDs.

    Raises:
        KissError: ``bad-port`` for a port outside 0-15.
    """
    if not 0 <= frame.port <= 15:  # noqa: PLR2004 - a nibble
        raise KissError("bad-port", f"port {frame.port} is not 0-15")
    if frame.command is KissCommand.RETURN:
        type_byte = _RETURN_TYPE
    else:
        type_byte = (frame.port << 4) | int(frame.command)
    # The type byte is escaped too: port 12's data frames start with 0xC0.
    return _FEND_BYTES + escape(bytes([type_byte]) + frame.data) + _FEND_BYTES


def data_frame(payload: bytes, port: int = 0) -> bytes:
    """A data frame (an AX.25 frame without FCS) for TNC port ``port``."""
    return encode(KissFrame(port, KissCommand.DATA, payload))


def command_frame(command: KissCommand, value: int, port: int = 0) -> bytes:
    """A TNC parameter frame (TXDELAY, SLOTTIME, TXTAIL in 10 ms units; PERSISTENCE 0-255).

    ``RETURN`` ignores ``value`` (it is the single byte ``0xFF``).

    Raises:
        KissError: ``bad-value`` for a value outside 0-255, ``bad-command`` for DATA.
    """
    if command is KissCommand.DATA:
        raise KissError("bad-command", "use data_frame() for data")
    if command is KissCommand.RETURN:
        return encode(KissFrame(port, command, b""))
    if not 0 <= value <= 255:  # noqa: PLR2004 - one byte
        raise KissError("bad-value", f"{value} is not 0-255")
    return encode(KissFrame(port, command, bytes([value])))


def decode_frame(raw: bytes, max_frame: int = DEFAULT_MAX_FRAME) -> KissFrame:
    """One frame from the escaped bytes between two FENDs (type byte first).

    Raises:
        KissError: see the class for the reasons.
    """
    if not raw:
        raise KissError("empty", "no type byte")
    data = unescape(raw)
    if len(data) - 1 > max_frame:
        raise KissError("oversized", f"{len(data) - 1} bytes, at most {max_frame}")
    type_byte = data[0]
    if type_byte == _RETURN_TYPE:
        return KissFrame(0, KissCommand.RETURN, data[1:])
    code = type_byte & 0x0F
    if code > KissCommand.SETHARDWARE:
        raise KissError("bad-command", f"type byte 0x{type_byte:02x}")
    command = KissCommand(code)
    if command is KissCommand.DATA and len(data) == 1:
        raise KissError("empty", "data frame without data")
    return KissFrame(type_byte >> 4, command, data[1:])


class KissDecoder:
    """Frames out of a KISS byte stream fed in chunks of any size.

    Bytes before the first FEND are dropped (the stream may start mid-frame); back-to-back FENDs
    are ignored. A frame longer than ``max_frame`` data bytes is skipped up to the next FEND and
    reported once; memory stays bounded whatever arrives.
    """

    __slots__ = ("_buffer", "_limit", "_max_frame", "_skipping", "_synced")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self._max_frame = max_frame
        # Escaped, a frame of max_frame data bytes (plus its type byte) takes at most twice that.
        self._limit = 2 * (max_frame + 1)
        self._buffer = bytearray()
        self._synced = False
        self._skipping = False

    def feed(self, chunk: bytes) -> list[KissFrame | KissError]:
        """Every frame completed by ``chunk``, and an error for each frame that was unreadable."""
        out: list[KissFrame | KissError] = []
        start = 0
        while True:
            end = chunk.find(FEND, start)
            if end < 0:
                self._append(chunk[start:], out)
                return out
            self._append(chunk[start:end], out)
            self._close(out)
            start = end + 1

    def _append(self, piece: bytes, out: list[KissFrame | KissError]) -> None:
        if not piece or not self._synced or self._skipping:
            return
        self._buffer += piece
        if len(self._buffer) > self._limit:
            self._buffer.clear()
            self._skipping = True
            out.append(KissError("oversized", f"more than {self._max_frame} bytes"))

    def _close(self, out: list[KissFrame | KissError]) -> None:
        if not self._synced:
            self._synced = True
        elif self._skipping:
            self._skipping = False
        elif self._buffer:
            try:
                out.append(decode_frame(bytes(self._buffer), self._max_frame))
            except KissError as exc:
                out.append(exc)
            self._buffer.clear()
