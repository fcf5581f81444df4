"""What the radio adapters and the hub's radio domain say to each other on the bus.

The adapters in ``radio/`` (gateways, the radio channel, transceivers) import ``ops.core`` only;
the domain (``ops.radio``) writes the radio log, keeps the console's view of each gateway and
turns operators' requests into the commands below. Dispatch itself talks to the radio channel
through the channel contract (``ops.core.channels``), not through these topics.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal, Protocol

from ops.core.events import Topic

Direction = Literal["in", "out"]
#: What a logged frame was: an APRS position, message, ack, reject, bulletin, status, another
#: APRS type, a frame that could not be decoded, or a transmission keyed by hand (PTT).
FrameKind = Literal[
    "position", "message", "ack", "reject", "bulletin", "status", "other", "undecodable", "ptt"
]
FRAME_KINDS: Final[tuple[str, ...]] = (
    "position",
    "message",
    "ack",
    "reject",
    "bulletin",
    "status",
    "other",
    "undecodable",
    "ptt",
)


@dataclass(frozen=True, slots=True)
class RadioFrameLogged:
    """One frame heard or sent (or one keying of the transmitter): a line of the radio log.

    ``callsign`` is the other station (the source of what was heard, the addressee of what
    was sent; the group for a bulletin); ``text`` what a person reads (a message's text, a
    position as ``lat,lon``, the raw info field otherwise); ``tnc2`` the whole frame in TNC2
    form. ``number`` is the APRS message number of a message, ack or reject; ``attempt`` the
    try of an outgoing message (1 = first). The links (``order_id`` …) are set when known.
    """

    at: datetime
    gateway: str
    direction: Direction
    kind: FrameKind
    callsign: str
    text: str
    tnc2: str = ""
    channel: str | None = None
    number: str | None = None
    attempt: int | None = None
    unit_id: str | None = None
    order_id: str | None = None
    copy_id: int | None = None
    case_id: int | None = None


@dataclass(frozen=True, slots=True)
class GatewayChanged:
    """The link state of one gateway (a state topic, keyed by gateway id)."""

    gateway: str
    link: Literal["up", "down", "connecting"]
    url: str
    detail: str = ""
    frames_in: int = 0
    frames_out: int = 0
    decode_errors: int = 0
    transmit_queue: int = 0
    last_heard: datetime | None = None
    channel_busy: bool = False


@dataclass(frozen=True, slots=True)
class TransceiverChanged:
    """The transceiver of one gateway: channel in use, frequency, mode, PTT (state topic)."""

    gateway: str
    rig_online: bool
    channel: str | None = None
    frequency: int | None = None
    mode: str | None = None
    ptt: bool = False
    detail: str = ""


@dataclass(frozen=True, slots=True)
class SelectChannel:
    """Tune a gateway's transceiver to one channel of its plan (an operator's request)."""

    gateway: str
    channel: str
    requested_by: str


@dataclass(frozen=True, slots=True)
class KeyTransmitter:
    """Key (``on``) or unkey a gateway's transmitter by hand; the time-out unkeys it anyway."""

    gateway: str
    on: bool
    requested_by: str


@dataclass(frozen=True, slots=True)
class SendBulletin:
    """An APRS group bulletin (``BLN{line}{group}``, not acknowledged) on one or every gateway.

    ``group``: 0-5 letters or digits (empty: a general bulletin ``BLN{line}``).
    """

    group: str
    text: str
    requested_by: str
    gateway: str | None = None
    line: int = 0


RADIO_FRAME: Topic[RadioFrameLogged] = Topic("radio.frame")
GATEWAY_CHANGED: Topic[GatewayChanged] = Topic("radio.gateway", state=True)
TRANSCEIVER_CHANGED: Topic[TransceiverChanged] = Topic("radio.transceiver", state=True)
SELECT_CHANNEL: Topic[SelectChannel] = Topic("radio.command.channel")
KEY_TRANSMITTER: Topic[KeyTransmitter] = Topic("radio.command.ptt")
SEND_BULLETIN: Topic[SendBulletin] = Topic("radio.command.bulletin")


class StationDirectory(Protocol):
    """Which unit a callsign is (kept by the hub's radio domain from the units registry)."""

    def unit_for(self, callsign: str) -> str | None:
        """The unit id whose radio address is ``callsign`` (SSID included), or None."""
        ...
