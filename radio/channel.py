"""The radio channel of dispatch: orders out as numbered APRS messages, answers and positions in.

A supervised adapter on the channel contract (``ops.core.channels``), importing ``ops.core``
and ``radio`` only. Each copy dispatch hands out becomes one text (:func:`order_text`: short
order id, case number, priority, title, position, the dispatcher's message) split at 67
characters into numbered APRS messages to the unit's callsign. A part's number is derived from
the copy id and the part's index (:func:`message_number`), so a copy sent again after a restart
carries the same numbers and the unit recognises the repeat. Each part goes at once and again
after each gap of the ``retry`` schedule, counted from when the previous try actually went out
(a slow or down link does not pile up tries), until the unit acks it; the copy is acknowledged
when every part is. A reject fails the copy for good; a :class:`~ops.core.channels.CancelCopy`
(acked on another channel, the ladder's time-out, the order cancelled) stops the tries of a
copy already on the air, and frames of it still queued in a gateway never go.

Inbound: APRS positions (plain, compressed, Mic-E, and inside third-party traffic) of known
callsigns go to ``unit.position.reported``; messages to the room's callsign are acked (every
copy, duplicates too) and acted on once per (callsign, number, text): a status word becomes
:class:`~ops.core.channels.UnitStatusReported`, other text
:class:`~ops.core.channels.UnitTextReceived`. Messages from callsigns no unit has are counted
and logged, neither acked nor acted on. Every frame in and out is a line on ``radio.frame``.

Nothing here waits on the air while holding anything: a gateway's queue is its own, and a
1200-baud link that takes seconds per frame only slows that queue.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import hashlib
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from ops.core.bus import Overflow
from ops.core.channels import (
    CHANNEL_EVENT,
    CancelCopy,
    ChannelEvent,
    ChannelInputRejected,
    CopyAcknowledged,
    CopyQueue,
    SendCopy,
    UnitStatusReported,
    UnitTextReceived,
)
from ops.core.events import UNIT_POSITION_REPORTED, UnitPositionReported
from ops.core.warnonce import WarnOnce
from radio import aprs, ax25
from radio.events import RADIO_FRAME, SEND_BULLETIN, FrameKind, RadioFrameLogged, SendBulletin

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ops.core.adapter import AdapterContext
    from ops.core.bus import Bus, Subscription
    from radio.events import StationDirectory
    from radio.gateway import Gateway

_LOGGER = logging.getLogger(__name__)

CHANNEL: Final = "radio"
SOURCE: Final = "channel-radio"
#: Most parts one order is split into (a longer text is cut, its last part ending in "…").
MAX_PARTS: Final = 16
#: Message numbers are base 36, at most 5 characters: 36**5 numbers, then they wrap.
NUMBER_SPACE: Final = 36**5
_DIGITS: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#: How many messages heard are remembered to act on a duplicate only once, and for how long
#: (seconds): longer than a handheld keeps retrying one message.
REMEMBERED_HEARD: Final = 10_000
DUPLICATE_WINDOW: Final = 3600.0
#: How many stations' last gateway is remembered (a busy APRS channel has thousands).
REMEMBERED_STATIONS: Final = 10_000
#: How many closed message numbers are remembered to recognise a late ack.
REMEMBERED_CLOSED: Final = 10_000
#: A bulletin goes once and again after each of these gaps (seconds): not acknowledged.
BULLETIN_REPEATS: Final = (30.0, 60.0)
#: Nested third-party headers followed at most this deep.
MAX_THIRD_PARTY: Final = 3
#: The words a unit may send as its status (upper case, single spaces) and what they mean.
STATUS_WORDS: Final = {
    "AVAILABLE": "available",
    "AVAIL": "available",
    "EN ROUTE": "en_route",
    "ENROUTE": "en_route",
    "ON SCENE": "on_scene",
    "ONSCENE": "on_scene",
    "ON SITE": "on_scene",
    "RETURNING": "returning",
    "OUT OF SERVICE": "out_of_service",
    "OOS": "out_of_service",
}
_POSITION_TYPES: Final = frozenset("!=/@`'")


def message_number(copy_id: int, part: int) -> str:
    """The APRS message number of part ``part`` of copy ``copy_id``: stable, ≤ 5 base-36 chars."""
    value = (copy_id * MAX_PARTS + part) % NUMBER_SPACE
    digits = ""
    while True:
        value, digit = divmod(value, 36)
        digits = _DIGITS[digit] + digits
        if value == 0:
            return digits


def order_text(copy: SendCopy) -> str:
    """What the unit reads: ``#ORDER CASE PRIORITY: title @lat,lon message``.

    ``#`` and the first 6 hex digits of the order id let the unit refer to it in an answer.
    """
    text = f"#{copy.order_id[:6]} {copy.case_number} {copy.priority.upper()}: {copy.case_title}"
    if copy.lat is not None and copy.lon is not None:
        text += f" @{copy.lat:.5f},{copy.lon:.5f}"
    if copy.message.strip():
        text += f" {copy.message.strip()}"
    return text


def split_order(copy: SendCopy) -> list[str]:
    """The parts of a copy's text (at most :data:`MAX_PARTS`; a longer one is cut, ``...``)."""
    parts = aprs.split_text(order_text(copy))
    if len(parts) > MAX_PARTS:
        parts = parts[:MAX_PARTS]
        parts[-1] = parts[-1][: aprs.MESSAGE_LIMIT - 3].rstrip() + "..."
    return parts


def status_of(text: str) -> str | None:
    """The unit status a message's text is, or None for free text."""
    words = " ".join(re.split(r"[\s_-]+", text.strip().upper()))
    return STATUS_WORDS.get(words)


@dataclass(slots=True)
class _Part:
    index: int
    number: str
    text: str
    info: bytes
    acked: bool = False
    tries: int = 0
    in_flight: bool = False
    sent_this_attempt: bool = False
    next_at: float | None = 0.0


@dataclass(slots=True)
class _OnAir:
    """One copy whose parts are on the air until acked, rejected or withdrawn."""

    copy: SendCopy
    parts: list[_Part]
    closed: bool = False
    sent_reported: bool = False


@dataclass(slots=True)
class _Scheduled:
    """A bulletin's repeat."""

    due: float
    gateways: list[Gateway]
    frame: ax25.Frame
    log: RadioFrameLogged
    remaining: list[float] = field(default_factory=list)


class RadioChannel:
    """Dispatch's radio channel over one or more gateways (a supervised adapter)."""

    name = SOURCE
    channel = CHANNEL
    heartbeat_interval: float | None = None

    def __init__(
        self,
        bus: Bus,
        gateways: Sequence[Gateway],
        directory: StationDirectory,
        *,
        callsign: str,
        tocall: str,
        path: Sequence[str],
        retry: Sequence[float],
    ) -> None:
        self._bus = bus
        self.gateways = list(gateways)
        self.directory = directory
        self.callsign = callsign.upper()
        self.retry = tuple(retry)
        self._source = ax25.Address.parse(self.callsign)
        self._destination = ax25.Address.parse(tocall.upper())
        self._path = tuple(ax25.Address.parse(hop.upper()) for hop in path)
        self._by_id = {gateway.gateway_id: gateway for gateway in self.gateways}
        self._on_air: dict[int, _OnAir] = {}
        self._numbers: dict[str, tuple[int, int]] = {}
        self._closed: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._heard_on: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._heard: collections.OrderedDict[tuple[str, str | None, str], float] = (
            collections.OrderedDict()
        )
        self._scheduled: list[_Scheduled] = []
        self._queue: CopyQueue | None = None
        self._wake = asyncio.Event()
        self._warn = WarnOnce(_LOGGER, 1000)
        self.unknown = 0
        self.rejected = 0
        for gateway in self.gateways:
            gateway.on_frame(self.on_frame)

    @property
    def on_air(self) -> list[int]:
        """Copy ids whose parts are kept on the air (not yet acked, rejected or withdrawn)."""
        return list(self._on_air)

    # -- the adapter -----------------------------------------------------------------------

    async def run(self, ctx: AdapterContext) -> None:
        """Take copies from dispatch, keep their parts on the air, send bulletins."""
        async with (
            CopyQueue(
                ctx.bus, CHANNEL, source=SOURCE, report_taken=True, on_cancel=self._cancelled
            ) as queue,
            ctx.bus.subscribe(
                SEND_BULLETIN, maxsize=100, overflow=Overflow.ALARM, name=f"{SOURCE}:bulletins"
            ) as bulletins,
        ):
            self._queue = queue
            ctx.heartbeat()
            tasks = {
                asyncio.create_task(self._take(queue), name=f"{SOURCE}:copies"),
                asyncio.create_task(self._keep_on_air(), name=f"{SOURCE}:retries"),
                asyncio.create_task(self._bulletins(bulletins), name=f"{SOURCE}:bulletins"),
            }
            try:
                # Not a TaskGroup: on 3.11 a child's failure racing an outside cancel swallows
                # the cancel. The loops only end by raising; the supervisor restarts the run.
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                error = next(iter(done)).exception()
                raise error if error is not None else RuntimeError("a channel task ended")
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.wait(tasks)
                self._queue = None

    async def _take(self, queue: CopyQueue) -> None:
        while True:
            self._start(await queue.get())

    def _start(self, copy: SendCopy) -> None:
        assert self._queue is not None  # noqa: S101 - only called while run holds the queue
        current = self._on_air.get(copy.copy_id)
        if current is not None and not current.closed:
            # Dispatch sent the copy again (a new attempt): same numbers, tries start over.
            current.copy = copy
            current.sent_reported = False
            for part in current.parts:
                if not part.acked:
                    part.tries = 0
                    part.sent_this_attempt = False
                    part.next_at = 0.0
            self._wake.set()
            return
        if not any(gateway.up for gateway in self.gateways):
            self._queue.failed(copy, "no radio gateway link is up", retryable=True)
            return
        try:
            parts = [
                _Part(
                    index,
                    number,
                    text,
                    aprs.encode_message(aprs.Message(copy.address.upper(), text, number)),
                )
                for index, text in enumerate(split_order(copy))
                for number in [message_number(copy.copy_id, index)]
            ]
        except aprs.AprsError as exc:
            self._queue.failed(copy, f"cannot send as APRS: {exc}", retryable=False)
            return
        self._on_air[copy.copy_id] = _OnAir(copy, parts)
        for part in parts:
            self._numbers[part.number] = (copy.copy_id, part.index)
        self._wake.set()

    async def _keep_on_air(self) -> None:
        """Send every part that is due; sleep until the next one is."""
        while True:
            now = time.monotonic()
            earliest: float | None = None
            for on_air in list(self._on_air.values()):
                for part in on_air.parts:
                    if part.acked or part.in_flight or part.next_at is None:
                        continue
                    if part.next_at <= now:
                        self._send_part(on_air, part)
                    elif earliest is None or part.next_at < earliest:
                        earliest = part.next_at
            for scheduled in list(self._scheduled):
                if scheduled.due <= now:
                    self._repeat_bulletin(scheduled, now)
                if scheduled in self._scheduled and (earliest is None or scheduled.due < earliest):
                    earliest = scheduled.due
            self._wake.clear()
            timeout = None if earliest is None else max(0.0, earliest - time.monotonic())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    def _send_part(self, on_air: _OnAir, part: _Part) -> None:
        copy = on_air.copy
        gateway = self._route(copy.address)
        frame = self._frame(part.info)
        log = RadioFrameLogged(
            at=datetime.now(UTC),
            gateway=gateway.gateway_id,
            direction="out",
            kind="message",
            callsign=copy.address.upper(),
            text=part.text,
            tnc2=ax25.to_tnc2(frame),
            number=part.number,
            attempt=part.tries + 1,
            unit_id=copy.unit_id,
            order_id=copy.order_id,
            copy_id=copy.copy_id,
            case_id=copy.case_id,
        )
        part.in_flight = True

        def sent() -> None:
            part.in_flight = False
            part.tries += 1
            part.sent_this_attempt = True
            gap = part.tries - 1
            part.next_at = time.monotonic() + self.retry[gap] if gap < len(self.retry) else None
            self._maybe_sent(on_air)
            self._wake.set()

        def wanted() -> bool:
            if on_air.closed or part.acked:
                part.in_flight = False
                return False
            return True

        gateway.transmit(frame, log, on_sent=sent, wanted=wanted)

    def _maybe_sent(self, on_air: _OnAir) -> None:
        """Report the copy on the air once every part of this attempt went at least once."""
        if on_air.sent_reported or on_air.closed or self._queue is None:
            return
        if all(part.acked or part.sent_this_attempt for part in on_air.parts):
            on_air.sent_reported = True
            copy = on_air.copy
            self._queue.sent(
                copy,
                f"attempt {copy.attempt} to {copy.address}: {len(on_air.parts)} message(s) "
                f"{', '.join(p.number for p in on_air.parts)}",
            )

    def _route(self, callsign: str) -> Gateway:
        """The gateway the callsign was last heard on, else the first one up, else the first."""
        heard = self._by_id.get(self._heard_on.get(callsign.upper(), ""))
        if heard is not None:
            return heard
        for gateway in self.gateways:
            if gateway.up:
                return gateway
        return self.gateways[0]

    def _frame(self, info: bytes, destination: ax25.Address | None = None) -> ax25.Frame:
        return ax25.Frame(
            destination=destination or self._destination,
            source=self._source,
            path=self._path,
            info=info,
        )

    def _cancelled(self, cancel: CancelCopy) -> None:
        """A copy on the air was withdrawn: no more tries (queued frames of it never go)."""
        on_air = self._on_air.get(cancel.copy_id)
        if on_air is not None:
            self._close(on_air)

    def _close(self, on_air: _OnAir) -> None:
        on_air.closed = True
        self._on_air.pop(on_air.copy.copy_id, None)
        for part in on_air.parts:
            if self._numbers.get(part.number) == (on_air.copy.copy_id, part.index):
                del self._numbers[part.number]
            self._closed[part.number] = None
            if len(self._closed) > REMEMBERED_CLOSED:
                self._closed.popitem(last=False)

    # -- bulletins -------------------------------------------------------------------------

    async def _bulletins(self, subscription: Subscription) -> None:
        async for envelope in subscription:
            if isinstance(envelope.payload, SendBulletin):
                self.send_bulletin(envelope.payload)

    def send_bulletin(self, bulletin: SendBulletin) -> None:
        """Send ``BLN{line}{group}`` on the named or every gateway, repeated a couple of times."""
        if bulletin.gateway is None:
            gateways = list(self.gateways)
        elif bulletin.gateway in self._by_id:
            gateways = [self._by_id[bulletin.gateway]]
        else:
            self._warn(
                ("bulletin", bulletin.gateway),
                "bulletin for unknown gateway %s not sent",
                bulletin.gateway,
            )
            return
        now = time.monotonic()
        for offset, text in enumerate(aprs.split_text(bulletin.text)[:10]):
            line = _DIGITS[(bulletin.line + offset) % 36]
            addressee = f"BLN{line}{bulletin.group.upper()}"[:9]
            try:
                frame = self._frame(aprs.encode_message(aprs.Message(addressee, text)))
            except aprs.AprsError as exc:
                self._warn(("bulletin", addressee), "bulletin %s not sent: %s", addressee, exc)
                return
            log = RadioFrameLogged(
                at=datetime.now(UTC),
                gateway="",
                direction="out",
                kind="bulletin",
                callsign=bulletin.group.upper() or addressee,
                text=text,
                tnc2=ax25.to_tnc2(frame),
                attempt=1,
            )
            scheduled = _Scheduled(now, gateways, frame, log, list(BULLETIN_REPEATS))
            self._repeat_bulletin(scheduled, now)
        self._wake.set()

    def _repeat_bulletin(self, scheduled: _Scheduled, now: float) -> None:
        for gateway in scheduled.gateways:
            gateway.transmit(scheduled.frame, scheduled.log)
        if scheduled in self._scheduled:
            self._scheduled.remove(scheduled)
        if scheduled.remaining:
            scheduled.due = now + scheduled.remaining.pop(0)
            attempt = (scheduled.log.attempt or 1) + 1
            scheduled.log = dataclasses.replace(scheduled.log, attempt=attempt)
            self._scheduled.append(scheduled)

    # -- inbound ---------------------------------------------------------------------------

    def on_frame(self, gateway_id: str, frame: ax25.Frame) -> None:
        """One AX.25 frame heard on a gateway (called by the gateway; never raises for input)."""
        source = str(frame.source).upper()
        self._heard_on[source] = gateway_id
        self._heard_on.move_to_end(source)
        if len(self._heard_on) > REMEMBERED_STATIONS:
            self._heard_on.popitem(last=False)
        tnc2 = ax25.to_tnc2(frame)
        try:
            packet = aprs.decode(frame)
        except aprs.AprsError as exc:
            self._malformed(gateway_id, frame, source, tnc2, exc)
            return
        self._packet(gateway_id, frame, source, packet, tnc2, depth=0)

    def _packet(
        self,
        gateway_id: str,
        frame: ax25.Frame,
        source: str,
        packet: aprs.Packet,
        tnc2: str,
        *,
        depth: int,
    ) -> None:
        match packet:
            case aprs.ThirdParty(frame=inner, packet=inner_packet) if depth < MAX_THIRD_PARTY:
                inner_source = str(inner.source).upper()
                self._packet(gateway_id, inner, inner_source, inner_packet, tnc2, depth=depth + 1)
            case aprs.Position():
                self._position(gateway_id, source, packet, tnc2)
            case aprs.Message():
                self._message(gateway_id, source, packet, tnc2)
            case aprs.Ack() | aprs.Reject():
                ours = packet.addressee.strip().upper() == self.callsign
                found = self._part_of(source, packet.number) if ours else None
                kind: FrameKind = "ack" if isinstance(packet, aprs.Ack) else "reject"
                self._log_in(
                    gateway_id,
                    kind,
                    source,
                    f"{kind}{packet.number}",
                    tnc2,
                    number=packet.number,
                    copy=None if found is None else found[0].copy,
                )
                if ours and isinstance(packet, aprs.Ack):
                    self._acked(source, packet.number)
                elif ours:
                    self._rejected(source, packet.number)
            case aprs.Status():
                self._log_in(gateway_id, "status", source, packet.text, tnc2)
            case _:
                self._log_in(gateway_id, "other", source, frame.info.decode(errors="replace"), tnc2)

    def _position(self, gateway_id: str, source: str, position: aprs.Position, tnc2: str) -> None:
        unit_id = self.directory.unit_for(source)
        self._log_in(
            gateway_id,
            "position",
            source,
            f"{position.lat:.5f},{position.lon:.5f}",
            tnc2,
            unit_id=unit_id,
        )
        if unit_id is None:
            return
        self._bus.publish(
            UNIT_POSITION_REPORTED,
            UnitPositionReported(
                unit_id,
                position.lat,
                position.lon,
                position.timestamp or datetime.now(UTC),
                CHANNEL,
            ),
            source=SOURCE,
            key=unit_id,
        )

    def _message(self, gateway_id: str, source: str, message: aprs.Message, tnc2: str) -> None:
        addressee = message.addressee.strip().upper()
        unit_id = self.directory.unit_for(source)
        kind: FrameKind = "bulletin" if message.bulletin else "message"
        open_copy = None if unit_id is None else self._open_copy_of(unit_id)
        self._log_in(
            gateway_id,
            kind,
            source,
            message.text,
            tnc2,
            number=message.number,
            unit_id=unit_id,
            copy=open_copy,
        )
        if message.reply_ack and addressee == self.callsign:
            self._acked(source, message.reply_ack)
        if addressee != self.callsign:
            return
        if unit_id is None:
            self.unknown += 1
            self._warn(
                ("unknown", source),
                "radio message from %s, which is no unit's callsign: not acted on",
                source,
            )
            return
        if message.number is not None:
            self._send_ack(gateway_id, source, message.number, unit_id)
        if self._duplicate(source, message):
            return  # acked again above, acted on once
        digest = hashlib.sha256(message.text.encode()).hexdigest()[:8]
        message_id = f"aprs:{source}:{message.number or ''}:{digest}"
        order_id = None if open_copy is None else open_copy.order_id
        status = status_of(message.text)
        event: ChannelEvent
        if status is not None:
            event = UnitStatusReported(unit_id, CHANNEL, status, order_id)
        else:
            event = UnitTextReceived(unit_id, CHANNEL, message.text, order_id, message_id)
        self._bus.publish(CHANNEL_EVENT, event, source=SOURCE, key=unit_id)

    def _duplicate(self, source: str, message: aprs.Message) -> bool:
        """True for a message heard within :data:`DUPLICATE_WINDOW` (same sender, number, text).

        A window rather than forever: handhelds reuse their numbers (many restart at 1 when
        switched on), and a unit may well say ``ON SCENE`` again tomorrow.
        """
        now = time.monotonic()
        while self._heard and next(iter(self._heard.values())) < now - DUPLICATE_WINDOW:
            self._heard.popitem(last=False)
        key = (source, message.number, message.text)
        if key in self._heard:
            return True
        self._heard[key] = now
        if len(self._heard) > REMEMBERED_HEARD:
            self._heard.popitem(last=False)
        return False

    def _open_copy_of(self, unit_id: str) -> SendCopy | None:
        """The unit's newest copy still on the air, if any."""
        for on_air in reversed(self._on_air.values()):
            if on_air.copy.unit_id == unit_id:
                return on_air.copy
        return None

    def _send_ack(self, gateway_id: str, callsign: str, number: str, unit_id: str) -> None:
        gateway = self._by_id[gateway_id]
        frame = self._frame(aprs.encode_ack(callsign, number))
        gateway.transmit(
            frame,
            RadioFrameLogged(
                at=datetime.now(UTC),
                gateway=gateway_id,
                direction="out",
                kind="ack",
                callsign=callsign,
                text=f"ack{number}",
                tnc2=ax25.to_tnc2(frame),
                number=number,
                unit_id=unit_id,
            ),
        )

    def _part_of(self, source: str, number: str) -> tuple[_OnAir, _Part] | None:
        found = self._numbers.get(number)
        if found is None:
            return None
        on_air = self._on_air.get(found[0])
        if on_air is None or on_air.copy.address.upper() != source:
            return None
        return on_air, on_air.parts[found[1]]

    def _acked(self, source: str, number: str) -> None:
        found = self._part_of(source, number)
        if found is None:
            if number not in self._closed:
                self._warn(("ack", source), "ack %s from %s matches no message", number, source)
            return
        on_air, part = found
        part.acked = True
        if all(p.acked for p in on_air.parts):
            copy = on_air.copy
            self._close(on_air)
            self._bus.publish(
                CHANNEL_EVENT,
                CopyAcknowledged(
                    copy.order_id,
                    copy.unit_id,
                    CHANNEL,
                    message_id=f"aprs:{source}:{on_air.parts[0].number}",
                ),
                source=SOURCE,
                key=copy.order_id,
            )

    def _rejected(self, source: str, number: str) -> None:
        found = self._part_of(source, number)
        if found is None:
            return
        on_air, _ = found
        self._close(on_air)
        if self._queue is not None:
            self._queue.failed(on_air.copy, f"{source} rejected message {number}", retryable=False)

    def _malformed(
        self, gateway_id: str, frame: ax25.Frame, source: str, tnc2: str, exc: aprs.AprsError
    ) -> None:
        self.rejected += 1
        info = frame.info.decode(errors="replace")
        self._log_in(gateway_id, "other", source, info, tnc2)
        unit_id = self.directory.unit_for(source)
        kind = "position" if info[:1] in _POSITION_TYPES else "event"
        self._bus.publish(
            CHANNEL_EVENT,
            ChannelInputRejected(
                CHANNEL, kind, unit_id or source, "malformed", f"{exc.reason}: {info[:80]}"
            ),
            source=SOURCE,
            key=unit_id or source,
        )

    def _log_in(
        self,
        gateway_id: str,
        kind: FrameKind,
        callsign: str,
        text: str,
        tnc2: str,
        *,
        number: str | None = None,
        unit_id: str | None = None,
        copy: SendCopy | None = None,
    ) -> None:
        if copy is not None:
            unit_id = copy.unit_id
        elif unit_id is None:
            unit_id = self.directory.unit_for(callsign)
        self._bus.publish(
            RADIO_FRAME,
            RadioFrameLogged(
                at=datetime.now(UTC),
                gateway=gateway_id,
                direction="in",
                kind=kind,
                callsign=callsign,
                text=text,
                tnc2=tnc2,
                number=number,
                unit_id=unit_id,
                order_id=None if copy is None else copy.order_id,
                copy_id=None if copy is None else copy.copy_id,
                case_id=None if copy is None else copy.case_id,
            ),
            source=SOURCE,
            key=gateway_id,
        )
