"""APRS information fields (APRS 1.0.1), with no I/O: positions, messages, status, third-party.

Decoded: positions uncompressed and compressed, with and without timestamp (``!``, ``=``,
``/``, ``@``), course/speed and ``/A=`` altitude; Mic-E (`` ` `` and ``'``, latitude and message
bits in the destination); messages with numbers, the reply-ack form ``{MM}AA``, acks, rejects
and bulletins (``:``); status (``>``); third-party (``}``). Any other data type comes back as
:class:`Other`. Everything on the air is untrusted: what cannot be read raises
:class:`AprsError` with a short ``reason``, and nothing else escapes.

Encoded: positions in each of the three formats, messages, acks, rejects and status.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from radio.ax25 import Address, AX25Error, Frame, from_tnc2

MESSAGE_LIMIT: Final = 67
#: Mic-E message codes (the three message bits, A B C, 1 = standard) and their meaning.
MIC_E_STATUSES: Final[dict[str, int]] = {
    "Off Duty": 0b111,
    "En Route": 0b110,
    "In Service": 0b101,
    "Returning": 0b100,
    "Committed": 0b011,
    "Special": 0b010,
    "Priority": 0b001,
    "Emergency": 0b000,
}
_MIC_E_NAMES: Final = {bits: name for name, bits in MIC_E_STATUSES.items()}
_MAX_THIRD_PARTY_DEPTH: Final = 2
_FEET: Final = 0.3048
_MAX_SPEED: Final = 999.0
_MAX_MIC_E_SPEED: Final = 799
_MIC_E_ALT_OFFSET: Final = 10_000
_FORBIDDEN_IN_TEXT: Final = str.maketrans({"{": "(", "|": "/", "~": "-"})
_ADDRESSEE = re.compile(r"[\x21-\x39\x3b-\x7e]{1,9}")  # printable ASCII except ':'
_NUMBER = re.compile(r"[A-Za-z0-9]{1,5}")
_REPLY_ACK = re.compile(r"[A-Za-z0-9]{0,5}")
_ACK = re.compile(r"(ack|rej)([A-Za-z0-9]{1,5})(?:\}[A-Za-z0-9]{0,5})?")
_NUMBERED = re.compile(r"([A-Za-z0-9]{1,5})(?:\}([A-Za-z0-9]{0,5}))?")
_TIMESTAMP = re.compile(r"(\d\d)(\d\d)(\d\d)([zh/])", re.ASCII)
_STATUS_TIMESTAMP = re.compile(r"\d{6}z", re.ASCII)
_LAT = re.compile(r"(\d\d)([\d ]{2})\.([\d ]{2})([NS])", re.ASCII)
_LON = re.compile(r"(\d{3})([\d ]{2})\.([\d ]{2})([EW])", re.ASCII)
_CSE_SPD = re.compile(r"(\d{3}|\.{3}| {3})/(\d{3}|\.{3}| {3})", re.ASCII)
_ALTITUDE = re.compile(r"/A=(-\d{5}|\d{6})", re.ASCII)
_MIC_E_ALTITUDE = re.compile(r"[>\]`']?([!-{]{3})\}")
_SYMBOL_TABLES: Final = frozenset("/\\ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_COMPRESSED_TABLES: Final = frozenset("/\\ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij")
_DIGITS: Final = frozenset("0123456789")
#: Box of each ambiguity level in hundredths of a minute: none, 0.1', 1', 10', 1 degree.
_AMBIGUITY_BOX: Final = (1, 10, 100, 1000, 6000)
_MAX_AMBIGUITY: Final = 4

PositionFormat = Literal["uncompressed", "compressed", "mic-e"]


class AprsError(ValueError):
    """An information field that is not valid APRS; ``reason`` is a short word.

    Reasons: ``empty``, ``bad-position``, ``bad-timestamp``, ``bad-symbol``, ``bad-course``,
    ``bad-speed``, ``bad-altitude``, ``bad-ambiguity``, ``bad-format``, ``bad-mic-e``,
    ``bad-status``, ``bad-message``, ``bad-addressee``, ``bad-number``, ``bad-text``,
    ``too-long``, ``bad-third-party``.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Position:
    r"""A position report. ``speed`` in knots, ``altitude`` in metres, ``course`` in degrees.

    ``course`` is None when unknown, else 1-360 as decoded (360 is north, as on the air); 0 is
    accepted for north when encoding.

    ``symbol_table`` is ``/``, ``\`` or an overlay character (A-Z, 0-9). ``ambiguity`` is the
    number of trailing digits left blank (0-4); the decoded position is then the box's centre.
    """

    lat: float
    lon: float
    symbol_table: str = "/"
    symbol: str = ">"
    comment: str = ""
    timestamp: datetime | None = None
    course: int | None = None
    speed: float | None = None  # knots
    altitude: float | None = None  # metres
    messaging: bool = False
    format: PositionFormat = "uncompressed"
    ambiguity: int = 0
    mic_e_status: str | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """A message to ``addressee`` (a station, or ``BLNn…`` for a bulletin).

    ``number`` is set when the sender wants an ack; ``reply_ack`` is the ``AA`` of the
    ``{MM}AA`` form (the number it acknowledges on the way; empty: none to acknowledge).
    """

    addressee: str
    text: str
    number: str | None = None
    reply_ack: str | None = None

    @property
    def bulletin(self) -> bool:
        """A bulletin or announcement: addressed to everyone, never acknowledged."""
        return self.addressee.startswith("BLN")


@dataclass(frozen=True, slots=True)
class Ack:
    """``addressee`` acknowledges its message ``number`` (sent by the frame's source)."""

    addressee: str
    number: str


@dataclass(frozen=True, slots=True)
class Reject:
    """The frame's source refuses message ``number`` from ``addressee``."""

    addressee: str
    number: str


@dataclass(frozen=True, slots=True)
class Status:
    """A station's status text, with the time it was set when given."""

    text: str
    timestamp: datetime | None = None


@dataclass(frozen=True, slots=True)
class ThirdParty:
    """A packet relayed for another station: its own header and its decoded information."""

    frame: Frame
    packet: Packet


@dataclass(frozen=True, slots=True)
class Other:
    """Any other APRS data type (objects, items, telemetry, weather, …), undecoded."""

    data_type: str
    text: str


Packet = Position | Message | Ack | Reject | Status | ThirdParty | Other


def decode(frame: Frame, *, now: datetime | None = None) -> Packet:
    """The APRS packet a frame carries (the destination matters for Mic-E).

    ``now`` (default: the current time) places day-hour-minute timestamps in a month.

    Raises:
        AprsError: see the class for the reasons.
    """
    return _decode(frame.info, frame.destination.call, now, 0)


def decode_info(info: bytes, destination: str = "", *, now: datetime | None = None) -> Packet:
    """The APRS packet in an information field; ``destination`` is the frame's (for Mic-E).

    Raises:
        AprsError: see the class for the reasons.
    """
    return _decode(info, destination.partition("-")[0].rstrip("*"), now, 0)


def encode_position(position: Position) -> bytes:
    """The information field of an uncompressed or compressed position report.

    With a timestamp it is ``/`` or ``@`` (day-hour-minute, UTC), otherwise ``!`` or ``=``
    (``=``/``@`` when ``messaging``). The altitude goes in the comment as ``/A=`` feet.

    Raises:
        AprsError: a field out of range (``bad-position``, ``bad-symbol``, …) or the format
            ``mic-e`` (``bad-format``: use :func:`encode_mic_e`).
    """
    _check_position(position)
    if position.timestamp is not None:
        stamp = position.timestamp.astimezone(UTC)
        head = ("@" if position.messaging else "/") + f"{stamp:%d%H%M}z"
    else:
        head = "=" if position.messaging else "!"
    if position.format == "uncompressed":
        body = _uncompressed(position)
    elif position.format == "compressed":
        body = _compressed(position)
    else:
        raise AprsError("bad-format", "Mic-E positions go through encode_mic_e()")
    if position.altitude is not None:
        body += _altitude_text(position.altitude)
    return (head + body + position.comment).encode()


def encode_mic_e(position: Position, status: str = "En Route") -> tuple[Address, bytes]:
    """A Mic-E report: the destination address (latitude, message bits) and the info field.

    ``status`` is one of :data:`MIC_E_STATUSES`. Speed 0-799 knots; a longitude of exactly
    ±180° goes out as 179°59.99'.

    Raises:
        AprsError: a field out of range, or ``bad-status``.
    """
    _check_position(position, mic_e=True)
    bits = MIC_E_STATUSES.get(status)
    if bits is None:
        raise AprsError("bad-status", f"{status!r} is not a Mic-E status")
    lat_hm = round(abs(position.lat) * 6000)
    lat_digits = f"{lat_hm // 6000:02d}{lat_hm % 6000 // 100:02d}{lat_hm % 100:02d}"
    lon_hm = min(round(abs(position.lon) * 6000), 180 * 6000 - 1)
    lon_deg, lon_min, lon_hun = lon_hm // 6000, lon_hm % 6000 // 100, lon_hm % 100
    flags = (
        bool(bits & 0b100),
        bool(bits & 0b010),
        bool(bits & 0b001),
        position.lat >= 0,
        lon_deg < 10 or lon_deg >= 100,  # noqa: PLR2004 - the +100 longitude offset
        position.lon < 0,
    )
    blank_from = 6 - position.ambiguity
    destination = ""
    for index, (digit, flag) in enumerate(zip(lat_digits, flags, strict=True)):
        if index >= blank_from:
            destination += "Z" if flag else "L"
        else:
            destination += chr((ord("P") if flag else ord("0")) + int(digit))
    if lon_deg < 10:  # noqa: PLR2004
        d_byte = lon_deg + 118
    elif lon_deg < 100:  # noqa: PLR2004
        d_byte = lon_deg + 28
    elif lon_deg < 110:  # noqa: PLR2004
        d_byte = lon_deg + 8
    else:
        d_byte = lon_deg - 72
    m_byte = lon_min + 88 if lon_min < 10 else lon_min + 28  # noqa: PLR2004
    speed = round(position.speed or 0.0)
    course = _air_course(position.course)
    sp = speed // 10
    info = bytes(
        [
            ord("`"),
            d_byte,
            m_byte,
            lon_hun + 28,
            sp + 108 if sp < 20 else sp + 28,  # noqa: PLR2004 - spec: 0-199 kn as 108-127
            (speed % 10) * 10 + course // 100 + 28,
            course % 100 + 28,
            ord(position.symbol),
            ord(position.symbol_table),
        ]
    )
    tail = ""
    if position.altitude is not None:
        tail += _base91(round(position.altitude) + _MIC_E_ALT_OFFSET, 3) + "}"
    tail += position.comment
    return Address(destination), info + tail.encode()


def encode_message(message: Message) -> bytes:
    """``:ADDRESSEE:text{number`` (addressee padded to 9; ``{MM}AA`` when ``reply_ack`` is set).

    Raises:
        AprsError: ``bad-addressee``, ``bad-number``, ``bad-text`` (``{``, ``|``, ``~``, a
            control character, or a text that would read as an ack) or ``too-long`` (more than
            :data:`MESSAGE_LIMIT` bytes: use :func:`split_text`).
    """
    _check_addressee(message.addressee)
    text = message.text
    _check_text(text, "{|~", "message text")
    if len(text.encode()) > MESSAGE_LIMIT:
        raise AprsError("too-long", f"{len(text.encode())} bytes, at most {MESSAGE_LIMIT}")
    if message.number is None and _ACK.fullmatch(text.rstrip()):
        raise AprsError("bad-text", "an unnumbered text that reads as an ack or reject")
    out = f":{message.addressee:<9}:{text}"
    if message.number is not None:
        _check_number(message.number)
        out += "{" + message.number
        if message.reply_ack is not None:
            if not _REPLY_ACK.fullmatch(message.reply_ack):
                raise AprsError("bad-number", f"reply-ack {message.reply_ack!r}")
            out += "}" + message.reply_ack
    elif message.reply_ack is not None:
        raise AprsError("bad-number", "a reply-ack needs a message number")
    return out.encode()


def encode_ack(addressee: str, number: str) -> bytes:
    """The ack of message ``number`` received from ``addressee``.

    Raises:
        AprsError: ``bad-addressee`` or ``bad-number``.
    """
    _check_addressee(addressee)
    _check_number(number)
    return f":{addressee:<9}:ack{number}".encode()


def encode_reject(addressee: str, number: str) -> bytes:
    """The reject of message ``number`` received from ``addressee``.

    Raises:
        AprsError: ``bad-addressee`` or ``bad-number``.
    """
    _check_addressee(addressee)
    _check_number(number)
    return f":{addressee:<9}:rej{number}".encode()


def encode_status(text: str) -> bytes:
    """``>text`` (no timestamp).

    Raises:
        AprsError: ``bad-text`` for ``|``, ``~`` or a control character.
    """
    _check_text(text, "|~", "status text")
    return f">{text}".encode()


def split_text(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """``text`` cut into message parts of at most ``limit`` characters (and UTF-8 bytes).

    Cuts at spaces where it can; a word longer than a part is cut inside. ``{``, ``|`` and
    ``~`` (which APRS reserves) become ``(``, ``/`` and ``-``; control characters and runs of
    white space become one space. Non-ASCII characters are kept (as UTF-8) where they fit; one
    that could never fit (``limit`` below its byte count) or that UTF-8 cannot carry (a lone
    surrogate) becomes ``?``. An empty or blank text gives no parts.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    clean = "".join(" " if _is_control(char) else char for char in text)
    words = [
        "".join(char if 0 < _char_size(char) <= limit else "?" for char in word)
        for word in clean.translate(_FORBIDDEN_IN_TEXT).split()
    ]
    parts: list[str] = []
    current = ""
    for word in words:
        candidate = f"{current} {word}" if current else word
        if _size(candidate) <= limit:
            current = candidate
            continue
        if current:
            parts.append(current)
            current = ""
        while _size(word) > limit:
            head = _longest_prefix(word, limit)
            parts.append(head)
            word = word[len(head) :]  # noqa: PLW2901 - consume the word piece by piece
        current = word
    if current:
        parts.append(current)
    return parts


# --- decoding ------------------------------------------------------------------------------


def _decode(  # noqa: PLR0911 - one return per data type
    info: bytes, destination: str, now: datetime | None, depth: int
) -> Packet:
    if not info:
        raise AprsError("empty", "no information field")
    data_type = chr(info[0])
    if data_type in "`'":
        return _decode_mic_e(destination, info[1:])
    text = _text(info)
    if not text:
        raise AprsError("empty", "only a line end")
    body = text[1:]
    if data_type in "!=/@":
        return _decode_position(data_type, body, now)
    if data_type == ":":
        return _decode_message(body)
    if data_type == ">":
        if _STATUS_TIMESTAMP.match(body):
            return Status(body[7:], _parse_timestamp(body[:7], now))
        return Status(body)
    if data_type == "}":
        return _decode_third_party(body, now, depth)
    return Other(text[0], body)


def _decode_third_party(body: str, now: datetime | None, depth: int) -> ThirdParty:
    if depth >= _MAX_THIRD_PARTY_DEPTH:
        raise AprsError("bad-third-party", "third-party packets nested too deep")
    try:
        inner = from_tnc2(body)
    except AX25Error as exc:
        raise AprsError("bad-third-party", str(exc)) from None
    return ThirdParty(inner, _decode(inner.info, inner.destination.call, now, depth + 1))


def _decode_position(data_type: str, body: str, now: datetime | None) -> Position:
    timestamp = None
    if data_type in "/@":
        timestamp = _parse_timestamp(body[:7], now)
        body = body[7:]
    messaging = data_type in "=@"
    if body[:1] in _DIGITS:
        return _decode_uncompressed(body, timestamp, messaging)
    if body[:1] in _COMPRESSED_TABLES:
        return _decode_compressed(body, timestamp, messaging)
    raise AprsError("bad-position", "neither an uncompressed nor a compressed position")


def _decode_uncompressed(body: str, timestamp: datetime | None, messaging: bool) -> Position:
    lat_match = _LAT.fullmatch(body[:8])
    lon_match = _LON.fullmatch(body[9:18])
    if lat_match is None or lon_match is None or len(body) < 19:  # noqa: PLR2004
        raise AprsError("bad-position", f"{body[:19]!r} is not ddmm.hhN/dddmm.hhW")
    table, symbol = body[8], body[18]
    _check_symbol(table, symbol)
    lat_digits = "".join(lat_match.groups()[:3])
    ambiguity = len(lat_digits) - len(lat_digits.rstrip(" "))
    if ambiguity > _MAX_AMBIGUITY or " " in lat_digits.rstrip(" "):
        raise AprsError("bad-position", f"latitude {body[:8]!r}")
    lon_digits = "".join(lon_match.groups()[:3]).replace(" ", "0")
    lat = _degrees(int(lat_digits[:2]), lat_digits[2:].replace(" ", "0"), ambiguity, 90)
    lon = _degrees(int(lon_digits[:3]), lon_digits[3:], ambiguity, 180)
    if lat_match.group(4) == "S":
        lat = -lat
    if lon_match.group(4) == "W":
        lon = -lon
    rest = body[19:]
    course = speed = None
    extension = _CSE_SPD.match(rest)
    if extension is not None:
        cse, spd = extension.groups()
        if cse.isdigit() and int(cse) <= 360 and spd.isdigit():  # noqa: PLR2004
            course, speed = int(cse) or None, float(int(spd))
            rest = rest[7:]
        elif not cse.isdigit() and not spd.isdigit():
            rest = rest[7:]
    comment, altitude = _take_altitude(rest)
    return Position(
        lat,
        lon,
        table,
        symbol,
        comment,
        timestamp,
        course,
        speed,
        altitude,
        messaging,
        "uncompressed",
        ambiguity,
    )


def _decode_compressed(body: str, timestamp: datetime | None, messaging: bool) -> Position:
    if len(body) < 13:  # noqa: PLR2004
        raise AprsError("bad-position", "compressed position shorter than 13 characters")
    table, symbol = body[0], body[9]
    y, x = _from_base91(body[1:5]), _from_base91(body[5:9])
    if y is None or x is None:
        raise AprsError("bad-position", "compressed latitude/longitude not base-91")
    lat = 90 - y / 380926
    lon = -180 + x / 190463
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):  # noqa: PLR2004
        raise AprsError("bad-position", f"{lat:.5f},{lon:.5f} out of range")
    if table in "abcdefghij":
        table = str("abcdefghij".index(table))
    _check_symbol(table, symbol)
    c, s, t = (ord(char) - 33 for char in body[10:13])
    course = speed = altitude = None
    if body[10] != " ":
        if not (0 <= c <= 90 and 0 <= s <= 90 and 0 <= t <= 90):  # noqa: PLR2004
            raise AprsError("bad-position", "compressed course/speed bytes out of range")
        if t & 0x18 == 0x10:  # noqa: PLR2004 - NMEA source GGA: cs holds the altitude
            altitude = 1.002 ** (c * 91 + s) * _FEET
        elif c <= 89:  # noqa: PLR2004 - c = '{' is a radio range, not a course
            course, speed = c * 4 or 360, 1.08**s - 1
    comment, comment_altitude = _take_altitude(body[13:])
    return Position(
        lat,
        lon,
        table,
        symbol,
        comment,
        timestamp,
        course,
        speed,
        altitude if comment_altitude is None else comment_altitude,
        messaging,
        "compressed",
    )


def _decode_mic_e(destination: str, body: bytes) -> Position:
    lat, flags, status, ambiguity = _mic_e_destination(destination)
    if len(body) < 8:  # noqa: PLR2004
        raise AprsError("bad-mic-e", "information field shorter than 9 bytes")
    if any(not 28 <= byte <= 127 for byte in body[:6]):  # noqa: PLR2004
        raise AprsError("bad-mic-e", "longitude/speed bytes out of range")
    lon = _mic_e_longitude(body, flags, ambiguity)
    sp, dc, se = (byte - 28 for byte in body[3:6])
    speed = sp * 10 + dc // 10
    if speed >= 800:  # noqa: PLR2004
        speed -= 800
    course = (dc % 10) * 100 + se
    if course >= 400:  # noqa: PLR2004
        course -= 400
    symbol, table = chr(body[6]), chr(body[7])
    _check_symbol(table, symbol)
    rest = _text(body[8:])
    altitude = None
    match = _MIC_E_ALTITUDE.match(rest)
    if match is not None:
        value = _from_base91(match.group(1))
        if value is not None:
            altitude = float(value - _MIC_E_ALT_OFFSET)
            rest = rest[match.end() :]
    return Position(
        lat,
        lon,
        table,
        symbol,
        rest,
        course=course if 0 < course <= 360 else None,  # noqa: PLR2004 - 0: unknown
        speed=float(speed),
        altitude=altitude,
        format="mic-e",
        ambiguity=ambiguity,
        mic_e_status=status,
    )


def _mic_e_longitude(body: bytes, flags: list[bool], ambiguity: int) -> float:
    d, m, h = (byte - 28 for byte in body[:3])
    if flags[4]:
        d += 100
        if 180 <= d <= 189:  # noqa: PLR2004
            d -= 80
        elif 190 <= d <= 199:  # noqa: PLR2004
            d -= 190
    if m >= 60:  # noqa: PLR2004
        m -= 60
    if d > 179 or m > 59:  # noqa: PLR2004
        raise AprsError("bad-mic-e", f"longitude {d} degrees {m} minutes")
    lon = _degrees(d, f"{m:02d}{h:02d}", ambiguity, 180)
    return -lon if flags[5] else lon


def _mic_e_destination(destination: str) -> tuple[float, list[bool], str, int]:
    """Latitude, the six flag bits (A B C, north, +100 longitude, west), status, ambiguity."""
    if len(destination) != 6:  # noqa: PLR2004
        raise AprsError("bad-mic-e", f"destination {destination!r} is not 6 characters")
    digits = ""
    flags: list[bool] = []
    custom = standard = False
    for index, char in enumerate(destination):
        if "0" <= char <= "9":
            digits += char
            flags.append(False)
        elif "A" <= char <= "K" and index < 3:  # noqa: PLR2004 - custom message bits
            digits += " " if char == "K" else str(ord(char) - ord("A"))
            flags.append(True)
            custom = True
        elif char == "L":
            digits += " "
            flags.append(False)
        elif "P" <= char <= "Z":
            digits += " " if char == "Z" else str(ord(char) - ord("P"))
            flags.append(True)
            standard = standard or index < 3  # noqa: PLR2004
        else:
            raise AprsError("bad-mic-e", f"destination {destination!r}")
    ambiguity = len(digits) - len(digits.rstrip(" "))
    if ambiguity > _MAX_AMBIGUITY or " " in digits.rstrip(" "):
        raise AprsError("bad-mic-e", f"destination {destination!r}: ambiguity")
    lat = _degrees(int(digits[:2]), digits[2:].replace(" ", "0"), ambiguity, 90)
    bits = flags[0] << 2 | flags[1] << 1 | flags[2]
    if custom and standard:
        status = "Unknown"
    elif custom:
        status = f"Custom {7 - bits}"
    else:
        status = _MIC_E_NAMES[bits]
    return (lat if flags[3] else -lat), flags, status, ambiguity


def _decode_message(body: str) -> Message | Ack | Reject:
    if len(body) < 10 or body[9] != ":":  # noqa: PLR2004
        raise AprsError("bad-message", "addressee is not 9 characters followed by ':'")
    addressee = body[:9].rstrip(" ")
    if not _ADDRESSEE.fullmatch(addressee):
        raise AprsError("bad-addressee", f"{body[:9]!r}")
    text = body[10:]
    ack = _ACK.fullmatch(text.rstrip())
    if ack is not None:
        kind, number = ack.group(1), ack.group(2)
        return Ack(addressee, number) if kind == "ack" else Reject(addressee, number)
    brace = text.rfind("{")
    if brace >= 0:
        numbered = _NUMBERED.fullmatch(text[brace + 1 :].rstrip())
        if numbered is not None:
            return Message(addressee, text[:brace], numbered.group(1), numbered.group(2))
    return Message(addressee, text)


def _parse_timestamp(text: str, now: datetime | None) -> datetime:
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        raise AprsError("bad-timestamp", f"{text!r} is not DDHHMMz or HHMMSSh")
    first, second, third = (int(group) for group in match.groups()[:3])
    reference = (now or datetime.now(UTC)).astimezone(UTC)
    candidates: list[datetime] = []
    if match.group(4) == "h":
        if first > 23 or second > 59 or third > 59:  # noqa: PLR2004
            raise AprsError("bad-timestamp", f"{text!r}")
        today = reference.replace(hour=first, minute=second, second=third, microsecond=0)
        candidates = [today + timedelta(days=shift) for shift in (-1, 0, 1)]
    else:
        # Local time ('/') has no zone on the air; it is read as UTC.
        if second > 23 or third > 59:  # noqa: PLR2004
            raise AprsError("bad-timestamp", f"{text!r}")
        for shift in (-1, 0, 1):
            month_index = reference.year * 12 + reference.month - 1 + shift
            try:
                candidates.append(
                    datetime(
                        month_index // 12,
                        month_index % 12 + 1,
                        first,
                        second,
                        third,
                        tzinfo=UTC,
                    )
                )
            except ValueError:
                continue
    if not candidates:
        raise AprsError("bad-timestamp", f"{text!r}: no such day near {reference:%Y-%m}")
    return min(candidates, key=lambda candidate: abs(candidate - reference))


# --- helpers -------------------------------------------------------------------------------


def _degrees(degrees: int, minutes: str, ambiguity: int, limit: int) -> float:
    """Degrees from ``mmhh`` minutes; with ambiguity, the centre of the box (within limit)."""
    hundredths = int(minutes)
    if hundredths >= 6000:  # noqa: PLR2004
        raise AprsError("bad-position", f"{minutes[:2]} minutes")
    box = _AMBIGUITY_BOX[ambiguity]
    centre = hundredths - hundredths % box + box / 2 if ambiguity else hundredths
    value = degrees + centre / 6000
    if degrees > limit or (degrees == limit and hundredths):
        raise AprsError("bad-position", f"{degrees} degrees out of range")
    return min(value, float(limit))


def _text(data: bytes) -> str:
    """Received bytes as text: bad UTF-8 and NUL (which PostgreSQL text cannot hold) replaced.

    Some TNCs end the field with a line end; it is never part of the packet.
    """
    return data.decode("utf-8", errors="replace").replace("\x00", "\ufffd").rstrip("\r\n")


def _take_altitude(comment: str) -> tuple[str, float | None]:
    match = _ALTITUDE.search(comment)
    if match is None:
        return comment, None
    feet = int(match.group(1))
    return comment[: match.start()] + comment[match.end() :], feet * _FEET


def _uncompressed(position: Position) -> str:
    lat = _dm(position.lat, 2, "NS", position.ambiguity)
    lon = _dm(position.lon, 3, "EW", position.ambiguity)
    out = f"{lat}{position.symbol_table}{lon}{position.symbol}"
    if position.course is not None or position.speed is not None:
        speed = min(round(position.speed or 0.0), 999)
        out += f"{_air_course(position.course):03d}/{speed:03d}"
    return out


def _air_course(course: int | None) -> int:
    """Course as sent in CSE/SPD and Mic-E: 0 unknown, 1-360 (north is 360)."""
    if course is None:
        return 0
    return course or 360


def _dm(value: float, width: int, hemispheres: str, ambiguity: int) -> str:
    hundredths = round(abs(value) * 6000)
    digits = f"{hundredths // 6000:0{width}d}{hundredths % 6000:04d}"
    if ambiguity:
        digits = digits[:-ambiguity] + " " * ambiguity
    hemisphere = hemispheres[0] if value >= 0 else hemispheres[1]
    return f"{digits[:-2]}.{digits[-2:]}{hemisphere}"


def _compressed(position: Position) -> str:
    y = min(round(380926 * (90 - position.lat)), 91**4 - 1)
    x = min(round(190463 * (180 + position.lon)), 91**4 - 1)
    table = position.symbol_table
    if table in _DIGITS:
        table = "abcdefghij"[int(table)]
    if position.course is not None or position.speed is not None:
        c = round((position.course or 0) / 4) % 90
        s = min(round(math.log((position.speed or 0.0) + 1) / math.log(1.08)), 89)
        # Compression type: current fix, NMEA source RMC, software origin.
        cst = chr(c + 33) + chr(s + 33) + chr(0b111010 + 33)
    else:
        cst = "   "
    return f"{table}{_base91(y, 4)}{_base91(x, 4)}{position.symbol}{cst}"


def _altitude_text(metres: float) -> str:
    feet = round(metres / _FEET)
    return f"/A=-{-feet:05d}" if feet < 0 else f"/A={feet:06d}"


def _base91(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        value, digit = divmod(value, 91)
        chars.append(chr(digit + 33))
    return "".join(reversed(chars))


def _from_base91(text: str) -> int | None:
    value = 0
    for char in text:
        digit = ord(char) - 33
        if not 0 <= digit <= 90:  # noqa: PLR2004
            return None
        value = value * 91 + digit
    return value


def _check_position(position: Position, *, mic_e: bool = False) -> None:
    lat, lon = position.lat, position.lon
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):  # noqa: PLR2004
        raise AprsError("bad-position", f"{lat},{lon} out of range")
    _check_symbol(position.symbol_table, position.symbol)
    if position.course is not None and not 0 <= position.course <= 360:  # noqa: PLR2004
        raise AprsError("bad-course", f"{position.course} is not 0-360")
    top = _MAX_MIC_E_SPEED if mic_e else _MAX_SPEED
    if position.speed is not None and not (
        math.isfinite(position.speed) and 0 <= position.speed <= top
    ):
        raise AprsError("bad-speed", f"{position.speed} knots is not 0-{top:.0f}")
    if position.altitude is not None and not (
        math.isfinite(position.altitude)
        and -_MIC_E_ALT_OFFSET <= position.altitude <= 99_999 * _FEET
    ):
        raise AprsError("bad-altitude", f"{position.altitude} m")
    if not 0 <= position.ambiguity <= _MAX_AMBIGUITY or (
        position.ambiguity and position.format == "compressed" and not mic_e
    ):
        raise AprsError("bad-ambiguity", f"ambiguity {position.ambiguity}")
    _check_text(position.comment, "|~", "a comment")


def _check_text(text: str, reserved: str, what: str) -> None:
    if any(char in reserved for char in text) or any(_is_control(char) for char in text):
        raise AprsError(
            "bad-text", f"{what} may not hold {', '.join(reserved)} or control characters"
        )
    if any(_char_size(char) == 0 for char in text):
        raise AprsError("bad-text", f"{what} holds a character UTF-8 cannot carry")


def _is_control(char: str) -> bool:
    return ord(char) < 0x20 or char == "\x7f"  # noqa: PLR2004 - C0 controls and DEL


def _char_size(char: str) -> int:
    """UTF-8 bytes of one character; 0 for a lone surrogate, which UTF-8 cannot carry."""
    try:
        return len(char.encode())
    except UnicodeEncodeError:
        return 0


def _check_symbol(table: str, symbol: str) -> None:
    if len(table) != 1 or table not in _SYMBOL_TABLES:
        raise AprsError("bad-symbol", f"symbol table {table!r}")
    if len(symbol) != 1 or not "!" <= symbol <= "~":
        raise AprsError("bad-symbol", f"symbol {symbol!r}")


def _check_addressee(addressee: str) -> None:
    if not _ADDRESSEE.fullmatch(addressee):
        raise AprsError("bad-addressee", f"{addressee!r} is not 1-9 printable characters")


def _check_number(number: str) -> None:
    if not _NUMBER.fullmatch(number):
        raise AprsError("bad-number", f"{number!r} is not 1-5 letters or digits")


def _size(text: str) -> int:
    return len(text.encode())


def _longest_prefix(word: str, limit: int) -> str:
    size = 0
    for index, char in enumerate(word):
        size += len(char.encode())
        if size > limit:
            return word[:index]
    return word
