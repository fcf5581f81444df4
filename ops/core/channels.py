"""The channel contract: how dispatch hands copies of an order to a link and hears back.

Dispatch claims a queued copy with a lease, commits, and publishes a :class:`SendCopy` on the
channel's own command topic (:func:`send_topic`); a copy acknowledged elsewhere, timed out or
cancelled is withdrawn with a :class:`CancelCopy` (:func:`cancel_topic`). A channel adapter
(MQTT app, radio, satellite) imports only ``ops.core``: it keeps its own queue and answers on
:data:`CHANNEL_EVENT` with what happened — taken, sent on air, failed, delivered, acknowledged,
a unit's status or text, or input it had to drop — and positions on
``ops.core.events.UNIT_POSITION_REPORTED``. Dispatch records each event in its own short
transaction, so no transaction ever waits on a link.

Rules a channel follows (docs/dispatch.md, "Channels"):

- subscribe to both command topics in one subscription with ``COMMAND_OVERFLOW`` (commands are
  never dropped silently; the lease re-sends a copy whose command was lost anyway);
- publish :class:`CopyTaken` when the copy enters the channel's queue (the lease then lasts until
  the copy's deadline) and :class:`CopySent` once it is on the air;
- on :class:`CancelCopy` drop the copy if it is not on the air yet (a channel that keeps
  re-sending copies already on the air, as radio does until the unit acknowledges, stops those
  too: :class:`CopyQueue` tells it through ``on_cancel``);
- a repeated command for the same ``copy_id`` and ``attempt`` is the same copy: send it once.

:class:`CopyQueue` does all four for a channel; the channel only sends what it hands out.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

from ops.core.bus import Overflow
from ops.core.events import Envelope, Topic

if TYPE_CHECKING:
    from collections.abc import Callable

    from ops.core.bus import Bus, Subscription

#: The overflow policy of a channel's command subscription: alarm before anything is dropped.
COMMAND_OVERFLOW: Final = Overflow.ALARM
#: The queue size a channel's command subscription should have.
COMMAND_QUEUE: Final = 10_000


@dataclass(frozen=True, slots=True)
class SendCopy:
    """Send one copy of an order to one unit over this channel.

    ``address`` is the unit's address on the channel (MQTT unit id, radio callsign, satellite
    terminal id); ``order_id`` (12 hex digits) is the one id every copy of the order carries,
    so the unit can recognise a repeat. ``lease_until``: if dispatch hears neither taken nor sent
    by then, it sends the copy again. ``deadline``: when the ladder moves on without an answer.
    """

    copy_id: int
    order_id: str
    unit_id: str
    channel: str
    address: str
    attempt: int
    message: str
    case_id: int
    case_number: str
    case_title: str
    category: str
    priority: str
    lat: float | None
    lon: float | None
    lease_until: datetime
    deadline: datetime


@dataclass(frozen=True, slots=True)
class CancelCopy:
    """Withdraw a copy: acknowledged on another channel, timed out, or the order was cancelled."""

    copy_id: int
    order_id: str
    unit_id: str
    channel: str
    reason: str


@dataclass(frozen=True, slots=True)
class CopyTaken:
    """The channel queued the copy; it will go on the air when the link has room."""

    copy_id: int
    order_id: str
    unit_id: str
    channel: str
    attempt: int


@dataclass(frozen=True, slots=True)
class CopySent:
    """The copy is on the air (for MQTT: the broker acknowledged the QoS 1 publish)."""

    copy_id: int
    order_id: str
    unit_id: str
    channel: str
    attempt: int
    detail: str = ""


@dataclass(frozen=True, slots=True)
class CopyFailed:
    """The channel could not send the copy.

    ``retryable``: the link is down or busy, try again soon; otherwise the copy can never go
    this way (an address the link refuses, a message it cannot carry) and the ladder moves on.
    """

    copy_id: int
    order_id: str
    unit_id: str
    channel: str
    attempt: int
    reason: str
    retryable: bool


@dataclass(frozen=True, slots=True)
class CopyDelivered:
    """The unit's device confirmed it received the order (not yet that a person accepted it)."""

    order_id: str
    unit_id: str
    channel: str


@dataclass(frozen=True, slots=True)
class CopyAcknowledged:
    """A person at the unit accepted the order; ``message_id`` is the link's id of the answer."""

    order_id: str
    unit_id: str
    channel: str
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class UnitStatusReported:
    """A unit said what it is doing (``en_route``, ``on_scene`` …), maybe about an order."""

    unit_id: str
    channel: str
    status: str
    order_id: str | None = None


@dataclass(frozen=True, slots=True)
class UnitTextReceived:
    """Free text from a unit; ``message_id`` (the link's id of the message) makes it idempotent."""

    unit_id: str
    channel: str
    text: str
    order_id: str | None = None
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class ChannelInputRejected:
    """The channel dropped input it could not read; dispatch counts and logs it once per source.

    ``kind`` is ``position`` or ``event``; ``source`` the unit id, or the topic/frame when it
    names no unit; ``reason`` a short word (``malformed``), ``detail`` says what was wrong.
    """

    channel: str
    kind: str
    source: str
    reason: str
    detail: str


ChannelEvent = (
    CopyTaken
    | CopySent
    | CopyFailed
    | CopyDelivered
    | CopyAcknowledged
    | UnitStatusReported
    | UnitTextReceived
    | ChannelInputRejected
)

CHANNEL_EVENT: Topic[ChannelEvent] = Topic("channel.event")


def send_topic(channel: str) -> Topic[SendCopy]:
    """The topic a channel takes its send commands from (``channel.{name}.send``)."""
    return Topic(f"channel.{channel}.send")


def cancel_topic(channel: str) -> Topic[CancelCopy]:
    """The topic a channel takes its cancel commands from (``channel.{name}.cancel``)."""
    return Topic(f"channel.{channel}.cancel")


#: How many sent copies a :class:`CopyQueue` remembers to recognise a repeated command.
REMEMBERED_SENT: Final = 10_000


class CopyQueue:
    """A channel's own queue: commands in, cancels applied, repeats dropped.

    Opened inside the channel adapter's ``run`` (``async with CopyQueue(...) as queue``), so the
    relay sees a listener only while the channel runs; copies of a channel that is down stay in
    the outbox and the ladder times them out. With ``report_taken`` each new copy is reported
    :class:`CopyTaken` at once (channels whose queue may outlast the lease: radio, satellite);
    a channel that sends within moments (MQTT) reports only :class:`CopySent`.

    ``on_cancel`` is called with each :class:`CancelCopy` for a copy the queue no longer holds
    (handed out already, or never seen): a channel that keeps retrying copies on the air until
    the unit answers (radio) stops them there. The queue itself only drops copies still waiting.
    It runs inside :meth:`get` / :meth:`poll`, so it must not block.
    """

    def __init__(
        self,
        bus: Bus,
        channel: str,
        *,
        source: str,
        report_taken: bool,
        maxsize: int = COMMAND_QUEUE,
        on_cancel: Callable[[CancelCopy], None] | None = None,
    ) -> None:
        self.channel = channel
        self.cancelled = 0
        self._bus = bus
        self._source = source
        self._report_taken = report_taken
        self._on_cancel = on_cancel
        self._subscription: Subscription = bus.subscribe(
            [send_topic(channel), cancel_topic(channel)],
            maxsize=maxsize,
            overflow=COMMAND_OVERFLOW,
            name=source,
            replay_state=False,
        )
        self._pending: dict[int, SendCopy] = {}
        self._sent: collections.OrderedDict[tuple[int, int], None] = collections.OrderedDict()

    def __len__(self) -> int:
        """Copies waiting to be sent."""
        return len(self._pending)

    async def get(self) -> SendCopy:
        """The next copy to send, oldest first, after every command already in is applied."""
        while True:
            self._drain()
            if self._pending:
                copy_id = next(iter(self._pending))
                return self._pending.pop(copy_id)
            self._apply(await self._subscription.get())

    def poll(self) -> int:
        """Apply the commands already in, without waiting; return how many copies wait.

        A slow link calls it between frames, so a copy withdrawn meanwhile never goes.
        """
        self._drain()
        return len(self._pending)

    def sent(self, copy: SendCopy, detail: str = "") -> None:
        """Report ``copy`` on the air; a repeated command for it is then dropped."""
        self._sent[(copy.copy_id, copy.attempt)] = None
        if len(self._sent) > REMEMBERED_SENT:
            self._sent.popitem(last=False)
        self._bus.publish(
            CHANNEL_EVENT,
            CopySent(copy.copy_id, copy.order_id, copy.unit_id, copy.channel, copy.attempt, detail),
            source=self._source,
            key=copy.order_id,
        )

    def failed(self, copy: SendCopy, reason: str, *, retryable: bool) -> None:
        """Report that ``copy`` could not be sent (``retryable``: try again soon)."""
        self._bus.publish(
            CHANNEL_EVENT,
            CopyFailed(
                copy.copy_id,
                copy.order_id,
                copy.unit_id,
                copy.channel,
                copy.attempt,
                reason,
                retryable,
            ),
            source=self._source,
            key=copy.order_id,
        )

    def close(self) -> None:
        """Stop taking commands; copies not sent stay leased in the outbox and go again."""
        self._subscription.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _drain(self) -> None:
        while (envelope := self._subscription.get_nowait()) is not None:
            self._apply(envelope)

    def _apply(self, envelope: Envelope[Any]) -> None:
        payload = envelope.payload
        if isinstance(payload, CancelCopy):
            if self._pending.pop(payload.copy_id, None) is not None:
                self.cancelled += 1
            elif self._on_cancel is not None:
                self._on_cancel(payload)
        elif isinstance(payload, SendCopy):
            if (payload.copy_id, payload.attempt) in self._sent:
                return
            self._pending.pop(payload.copy_id, None)  # a newer command replaces a queued one
            self._pending[payload.copy_id] = payload
            if self._report_taken:
                self._bus.publish(
                    CHANNEL_EVENT,
                    CopyTaken(
                        payload.copy_id,
                        payload.order_id,
                        payload.unit_id,
                        payload.channel,
                        payload.attempt,
                    ),
                    source=self._source,
                    key=payload.order_id,
                )
