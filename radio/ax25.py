"""AX.25 UI frames as APRS uses them, with no I/O.

An address is six callsign characters shifted left one bit (space-padded) and an SSID octet
``H/C R R S S S S X``: the has-been-repeated bit on a digipeater (the command/response bit on the
destination and source), two reserved bits set to 1, the SSID, and the extension bit that marks
the last address. Then control ``0x03`` (UI), PID ``0xF0`` (no layer 3) and the information field.
The KISS link carries no FCS, so neither does this codec.

The text form is TNC2's ``SRC>DST,DIGI1,DIGI2*:info`` where ``*`` follows the last digipeater
that has repeated the frame.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

CONTROL_UI: Final = 0x03
PID_NO_LAYER3: Final = 0xF0
MAX_DIGIPEATERS: Final = 8
_POLL_BIT: Final = 0x10
_ADDRESS_LEN: Final = 7
_CALL_LEN: Final = 6
_MIN_FRAME: Final = 2 * _ADDRESS_LEN + 2
_CALLSIGN = re.compile(r"[A-Z0-9]{1,6}")
_ADDRESS_TEXT = re.compile(r"([A-Z0-9]{1,6})(?:-(\d{1,2}))?(\*?)", re.ASCII)
_CALL_BYTES: Final = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_MAX_SSID: Final = 15
_SSID_RESERVED: Final = 0x60
_H_BIT: Final = 0x80
_EXTENSION_BIT: Final = 0x01


class AX25Error(ValueError):
    """Bytes or text that are not an APRS UI frame; ``reason`` is a short word.

    Reasons: ``short``, ``bad-address``, ``bad-callsign``, ``bad-ssid``, ``too-many-digis``,
    ``not-ui``, ``bad-pid``, ``bad-tnc2``.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Address:
    """A station or digipeater: callsign (1-6 of A-Z 0-9), SSID 0-15, repeated (digis only).

    Constructing an invalid address raises :class:`AX25Error` (``bad-callsign``/``bad-ssid``).
    """

    call: str
    ssid: int = 0
    repeated: bool = False

    def __post_init__(self) -> None:
        if not _CALLSIGN.fullmatch(self.call):
            raise AX25Error("bad-callsign", f"{self.call!r} is not 1-6 of A-Z 0-9")
        if not 0 <= self.ssid <= _MAX_SSID:
            raise AX25Error("bad-ssid", f"SSID {self.ssid} is not 0-15")

    @classmethod
    def parse(cls, text: str) -> Address:
        """``"YB0ABC-7"``, ``"WIDE2-1*"`` (``*``: repeated); letters are upper-cased.

        Raises:
            AX25Error: ``bad-callsign`` or ``bad-ssid``.
        """
        match = _ADDRESS_TEXT.fullmatch(text.strip().upper())
        if match is None:
            raise AX25Error("bad-callsign", f"{text!r} is not CALL[-SSID]")
        call, ssid, star = match.groups()
        if ssid is not None and (len(ssid) > 1 and ssid[0] == "0"):
            raise AX25Error("bad-ssid", f"{text!r}: SSID with a leading zero")
        return cls(call, int(ssid or 0), bool(star))

    def __str__(self) -> str:
        return f"{self.call}-{self.ssid}" if self.ssid else self.call


@dataclass(frozen=True, slots=True)
class Frame:
    """An APRS UI frame. ``repeated`` counts only on the path (digipeaters)."""

    destination: Address
    source: Address
    path: tuple[Address, ...] = ()
    info: bytes = b""


def encode(frame: Frame) -> bytes:
    """The frame's AX.25 bytes (addresses, control 0x03, PID 0xF0, info; no FCS).

    Raises:
        AX25Error: ``too-many-digis`` for a path longer than 8.
    """
    if len(frame.path) > MAX_DIGIPEATERS:
        raise AX25Error("too-many-digis", f"{len(frame.path)} digipeaters, at most 8")
    out = bytearray()
    # As Dire Wolf sends it: an AX.25 v2 command (C bit on the destination, not on the source).
    out += _address_bytes(frame.destination, _H_BIT, last=False)
    out += _address_bytes(frame.source, 0, last=not frame.path)
    for index, digi in enumerate(frame.path):
        out += _address_bytes(
            digi, _H_BIT if digi.repeated else 0, last=index == len(frame.path) - 1
        )
    out.append(CONTROL_UI)
    out.append(PID_NO_LAYER3)
    out += frame.info
    return bytes(out)


def decode(data: bytes) -> Frame:
    """The UI frame in ``data`` (AX.25 without FCS).

    Raises:
        AX25Error: see the class for the reasons.
    """
    data = bytes(data)  # a bytearray's slices would not hash in the address cache
    if len(data) < _MIN_FRAME:
        raise AX25Error("short", f"{len(data)} bytes")
    addresses: list[Address] = []
    offset = 0
    while True:
        if offset + _ADDRESS_LEN > len(data):
            raise AX25Error("short", "address field not terminated")
        if len(addresses) == MAX_DIGIPEATERS + 2:
            raise AX25Error("too-many-digis", "more than 8 digipeaters")
        chunk = data[offset : offset + _ADDRESS_LEN]
        addresses.append(_decode_address(chunk, digi=len(addresses) >= 2))  # noqa: PLR2004
        offset += _ADDRESS_LEN
        if chunk[6] & _EXTENSION_BIT:
            break
    if len(addresses) < 2:  # noqa: PLR2004 - destination and source
        raise AX25Error("bad-address", "address field ends after the destination")
    if offset + 2 > len(data):
        raise AX25Error("short", "no control and PID")
    control, pid = data[offset], data[offset + 1]
    if control & ~_POLL_BIT != CONTROL_UI:
        raise AX25Error("not-ui", f"control 0x{control:02x}")
    if pid != PID_NO_LAYER3:
        raise AX25Error("bad-pid", f"PID 0x{pid:02x}")
    return Frame(addresses[0], addresses[1], tuple(addresses[2:]), bytes(data[offset + 2 :]))


def to_tnc2(frame: Frame) -> str:
    """``SRC>DST,DIGI1,DIGI2*:info``; the info field is read as UTF-8 (bad bytes replaced).

    A NUL byte is shown as U+FFFD too: this text goes into logs and PostgreSQL text columns,
    which cannot hold NUL, and no APRS format uses it.
    """
    last_repeated = max(
        (index for index, digi in enumerate(frame.path) if digi.repeated), default=-1
    )
    head = f"{frame.source}>{frame.destination}"
    for index, digi in enumerate(frame.path):
        head += f",{digi}*" if index == last_repeated else f",{digi}"
    info = frame.info.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    return f"{head}:{info}"


def from_tnc2(line: str) -> Frame:
    """The frame a TNC2 line describes; a ``*`` marks that digipeater and all before it repeated.

    Raises:
        AX25Error: ``bad-tnc2``, ``bad-callsign``, ``bad-ssid`` or ``too-many-digis``.
    """
    head, colon, info = line.partition(":")
    source, arrow, rest = head.partition(">")
    if not colon or not arrow:
        raise AX25Error("bad-tnc2", "not SRC>DST[,PATH]:info")
    destination, *hops = rest.split(",")
    if len(hops) > MAX_DIGIPEATERS:
        raise AX25Error("too-many-digis", f"{len(hops)} digipeaters, at most 8")
    src = Address.parse(source)
    dst = Address.parse(destination)
    if src.repeated or dst.repeated:
        raise AX25Error("bad-tnc2", "only digipeaters carry *")
    path = [Address.parse(hop) for hop in hops]
    last = max((index for index, digi in enumerate(path) if digi.repeated), default=-1)
    path = [Address(digi.call, digi.ssid, index <= last) for index, digi in enumerate(path)]
    return Frame(dst, src, tuple(path), info.encode())


def _address_bytes(address: Address, high_bit: int, *, last: bool) -> bytes:
    call = address.call.ljust(_CALL_LEN).encode("ascii")
    octet = high_bit | _SSID_RESERVED | (address.ssid << 1) | (_EXTENSION_BIT if last else 0)
    return bytes(byte << 1 for byte in call) + bytes([octet])


def _decode_address(chunk: bytes, *, digi: bool) -> Address:
    key = (chunk, digi)
    address = _ADDRESS_CACHE.get(key)
    if address is not None:
        return address
    call = chunk[:6].translate(_UNSHIFT)
    if _ODD in call:
        raise AX25Error("bad-address", "extension bit set inside a callsign")
    call = call.rstrip(b" ")
    if not call or _INVALID in call or b" " in call:
        raise AX25Error("bad-callsign", f"callsign bytes {chunk[:6].hex()}")
    octet = chunk[6]
    address = Address(call.decode("ascii"), (octet >> 1) & 0x0F, digi and bool(octet & _H_BIT))
    if len(_ADDRESS_CACHE) >= _ADDRESS_CACHE_SIZE:
        _ADDRESS_CACHE.clear()
    _ADDRESS_CACHE[key] = address
    return address


def _unshift_table() -> bytes:
    """Each byte of a shifted callsign to its character; odd bytes and others to markers."""
    table = bytearray()
    for byte in range(256):
        if byte & 1:
            table += _ODD
        elif (byte >> 1) in _CALL_BYTES or byte >> 1 == ord(" "):
            table.append(byte >> 1)
        else:
            table += _INVALID
    return bytes(table)


_ODD: Final = b"\x01"
_INVALID: Final = b"\x00"
_UNSHIFT: Final = _unshift_table()
# The same few stations are heard over and over; decoded addresses are immutable.
_ADDRESS_CACHE_SIZE: Final = 4096
_ADDRESS_CACHE: dict[tuple[bytes, bool], Address] = {}
