"""The in-process event bus.

``publish`` is synchronous and never awaits a subscriber: each subscriber owns a bounded queue with
an explicit overflow policy, so one slow consumer can never hold up the publisher or the others.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import itertools
import logging
import re
import threading
from collections.abc import AsyncIterator, Iterable
from types import TracebackType
from typing import Any, Self, TypeVar

from ops.core.errors import SubscriptionClosed, SubscriptionOverflow
from ops.core.events import (
    ALARM_RAISED,
    SUBSCRIBER_OVERFLOWED,
    AlarmRaised,
    Envelope,
    Severity,
    SubscriberOverflowed,
    Topic,
    new_correlation_id,
)

_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_MAXSIZE = 1000
#: Topic names whose exclusion by pattern a subscription remembers (topic names are few).
EXCLUSION_CACHE = 1024
#: An ALARM subscriber raises its alarm at this fill ratio, before anything is dropped.
ALARM_HIGH_WATER = 0.8
#: ...and re-arms once it has drained below this one.
ALARM_LOW_WATER = 0.5


class Overflow(enum.StrEnum):
    """What a full subscriber queue does with the next event."""

    DROP_OLDEST = "drop_oldest"
    """Telemetry and wall state: the newest value matters, old ones may go."""
    DISCONNECT = "disconnect"
    """Live clients: a client that cannot keep up is cut off and must resync."""
    ALARM = "alarm"
    """Durable writers: raise an alarm at the high-water mark, drop oldest only when full."""


class Subscription:
    """A subscriber's bounded queue; an async iterator and an async context manager."""

    def __init__(
        self,
        bus: Bus,
        topics: frozenset[str] | None,
        *,
        excluded: frozenset[str] = frozenset(),
        excluded_patterns: tuple[re.Pattern[str], ...] = (),
        maxsize: int,
        overflow: Overflow,
        name: str,
    ) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.name = name
        self.overflow = overflow
        self.maxsize = maxsize
        self.dropped = 0
        self._bus = bus
        self._topics = topics
        self._excluded = excluded
        self._excluded_patterns = excluded_patterns
        self._excluded_by_pattern: dict[str, bool] = {}
        self._queue: collections.deque[Envelope[Any]] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._overflowed = False
        self._alarm_armed = True
        # Replayed state rides on top of maxsize: a client with many state keys must not be
        # cut off for the snapshot it asked for. The credit shrinks as the replay is read.
        self._replay_credit = 0

    @property
    def closed(self) -> bool:
        """True once the subscription was closed or cut off."""
        return self._closed

    @property
    def overflowed(self) -> bool:
        """True if the DISCONNECT policy cut this subscriber off."""
        return self._overflowed

    def qsize(self) -> int:
        """Events waiting in this subscriber's queue."""
        return len(self._queue)

    def wants(self, topic: Topic[Any]) -> bool:
        """Whether events of ``topic`` belong in this queue."""
        if self._topics is None:
            return not self._is_excluded(topic.name)
        return topic.name in self._topics

    def _is_excluded(self, name: str) -> bool:
        if name in self._excluded:
            return True
        if not self._excluded_patterns:
            return False
        verdict = self._excluded_by_pattern.get(name)
        if verdict is None:
            verdict = any(pattern.fullmatch(name) for pattern in self._excluded_patterns)
            if len(self._excluded_by_pattern) < EXCLUSION_CACHE:
                self._excluded_by_pattern[name] = verdict
        return verdict

    def get_nowait(self) -> Envelope[Any] | None:
        """Return the next event, or None if the queue is empty."""
        if self._queue:
            item = self._queue.popleft()
            if self._replay_credit:
                self._replay_credit -= 1
            self._after_get()
            return item
        if self._overflowed:
            raise SubscriptionOverflow(f"subscriber {self.name!r} fell behind and was disconnected")
        return None

    async def get(self) -> Envelope[Any]:
        """Wait for the next event.

        Raises:
            SubscriptionOverflow: the DISCONNECT policy cut this subscriber off.
            SubscriptionClosed: the subscription was closed and is drained.
        """
        while True:
            item = self.get_nowait()
            if item is not None:
                return item
            if self._closed:
                raise SubscriptionClosed(f"subscription {self.name!r} closed")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def close(self) -> None:
        """Stop receiving; a pending ``get`` ends."""
        if self._closed:
            return
        self._closed = True
        self._bus._remove(self)  # noqa: SLF001 - the bus and its subscriptions are one unit
        self._wake()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __aiter__(self) -> AsyncIterator[Envelope[Any]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Envelope[Any]]:
        while True:
            try:
                yield await self.get()
            except SubscriptionClosed:
                return

    def _offer(self, envelope: Envelope[Any]) -> None:
        if self._closed:
            return
        if len(self._queue) >= self.maxsize + self._replay_credit:
            self.dropped += 1
            if self.overflow is Overflow.DISCONNECT:
                self._overflowed = True
                self._queue.clear()
                self._closed = True
                self._bus._remove(self)  # noqa: SLF001
                self._bus._overflowed(self)  # noqa: SLF001
                self._wake()
                return
            self._queue.popleft()
            if self.dropped == 1 or self.overflow is Overflow.ALARM:
                self._bus._overflowed(self)  # noqa: SLF001
        self._queue.append(envelope)
        if self.overflow is Overflow.ALARM:
            self._check_high_water()
        self._wake()

    def _replay(self, envelopes: list[Envelope[Any]]) -> None:
        self._queue.extend(envelopes)
        self._replay_credit = len(envelopes)

    def _check_high_water(self) -> None:
        fill = len(self._queue) / self.maxsize
        if self._alarm_armed and fill >= ALARM_HIGH_WATER:
            self._alarm_armed = False
            self._bus._high_water(self)  # noqa: SLF001

    def _after_get(self) -> None:
        if not self._alarm_armed and len(self._queue) / self.maxsize < ALARM_LOW_WATER:
            self._alarm_armed = True

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class Bus:
    """Typed publish/subscribe inside the hub's one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop
        self._subscriptions: list[Subscription] = []
        # Topic name -> the subscriptions that want it; rebuilt after any (un)subscribe, so a
        # publish touches only its own subscribers, however many the hub has.
        self._routes: dict[str, tuple[Subscription, ...]] = {}
        self._state: dict[str, dict[str, Envelope[Any]]] = {}
        self._names = itertools.count(1)
        self._loop_thread: int | None = None
        self._reporting = False
        self.published = 0

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attach the bus to the loop that owns it (done by the hub at start)."""
        self._loop = loop
        self._loop_thread = threading.get_ident()

    def publish(
        self,
        topic: Topic[T],
        payload: T,
        *,
        source: str,
        key: str = "",
        correlation_id: str | None = None,
    ) -> Envelope[T]:
        """Deliver an event to every interested subscriber without awaiting any of them.

        Only call this from the loop's thread; threads use :meth:`publish_threadsafe`.
        """
        if self._loop_thread is not None and threading.get_ident() != self._loop_thread:
            raise RuntimeError("Bus.publish called from another thread; use publish_threadsafe")
        envelope = Envelope(
            topic=topic,
            payload=payload,
            source=source,
            key=key,
            correlation_id=correlation_id or new_correlation_id(),
        )
        self.published += 1
        if topic.state:
            self._state.setdefault(topic.name, {})[key] = envelope
        for subscription in self._subscribers_of(topic):
            subscription._offer(envelope)  # noqa: SLF001
        return envelope

    def publish_threadsafe(
        self,
        topic: Topic[T],
        payload: T,
        *,
        source: str,
        key: str = "",
        correlation_id: str | None = None,
    ) -> None:
        """Publish from a worker thread (OpenCV, serial helpers) by hopping onto the loop."""
        if self._loop is None:
            raise RuntimeError("the bus is not bound to a loop yet")

        def _publish() -> None:
            self.publish(topic, payload, source=source, key=key, correlation_id=correlation_id)

        self._loop.call_soon_threadsafe(_publish)

    def subscribe(
        self,
        topics: Topic[Any] | Iterable[Topic[Any]] | None = None,
        *,
        maxsize: int = DEFAULT_MAXSIZE,
        overflow: Overflow = Overflow.DROP_OLDEST,
        name: str | None = None,
        replay_state: bool = True,
        exclude: Iterable[Topic[Any] | str] = (),
    ) -> Subscription:
        """Open a subscription to some topics (None: every topic but those in ``exclude``).

        An ``exclude`` entry is a topic, or a pattern of topic names in which ``*`` stands for one
        dot-separated part (``channel.*.send`` leaves out every channel's send commands).

        With ``replay_state`` the subscriber first receives the last value of each key of every
        state topic it asked for, so a reconnecting wall needs no separate snapshot call.
        """
        if topics is None:
            names: frozenset[str] | None = None
        elif isinstance(topics, Topic):
            names = frozenset({topics.name})
        else:
            names = frozenset(t.name for t in topics)
        excluded = {t.name if isinstance(t, Topic) else t for t in exclude}
        subscription = Subscription(
            self,
            names,
            excluded=frozenset(name for name in excluded if "*" not in name),
            excluded_patterns=tuple(_topic_pattern(name) for name in excluded if "*" in name),
            maxsize=maxsize,
            overflow=overflow,
            name=name or f"subscriber-{next(self._names)}",
        )
        if replay_state:
            subscription._replay(  # noqa: SLF001
                [
                    envelope
                    for topic_name, by_key in self._state.items()
                    if subscription.wants(Topic(topic_name))
                    for envelope in by_key.values()
                ]
            )
        self._subscriptions.append(subscription)
        self._routes.clear()
        return subscription

    def last(self, topic: Topic[T], key: str = "") -> Envelope[T] | None:
        """The last event of a state topic for one key."""
        return self._state.get(topic.name, {}).get(key)

    def current(self, topic: Topic[T]) -> list[Envelope[T]]:
        """Every key's last event of a state topic."""
        return list(self._state.get(topic.name, {}).values())

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        """The open subscriptions, for metrics and health."""
        return tuple(self._subscriptions)

    def _subscribers_of(self, topic: Topic[Any]) -> tuple[Subscription, ...]:
        routed = self._routes.get(topic.name)
        if routed is None:
            routed = tuple(s for s in self._subscriptions if s.wants(topic))
            self._routes[topic.name] = routed
        return routed

    def _remove(self, subscription: Subscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)
            self._routes.clear()

    def _overflowed(self, subscription: Subscription) -> None:
        if subscription.dropped == 1 or subscription.dropped % 1000 == 0:
            _LOGGER.warning(
                "bus subscriber %s overflowed (%s), %d dropped",
                subscription.name,
                subscription.overflow,
                subscription.dropped,
            )
        self._publish_internal(
            SUBSCRIBER_OVERFLOWED,
            SubscriberOverflowed(
                subscriber=subscription.name,
                policy=str(subscription.overflow),
                dropped=subscription.dropped,
            ),
            exclude=subscription,
        )

    def _high_water(self, subscription: Subscription) -> None:
        _LOGGER.warning("bus subscriber %s is near overflow", subscription.name)
        self._publish_internal(
            ALARM_RAISED,
            AlarmRaised(
                source=f"bus:{subscription.name}",
                code="queue_high_water",
                message=(
                    f"subscriber {subscription.name} queue at "
                    f"{len(subscription._queue)}/{subscription.maxsize}"  # noqa: SLF001
                ),
                severity=Severity.CRITICAL,
            ),
            exclude=subscription,
        )

    def _publish_internal(self, topic: Topic[T], payload: T, *, exclude: Subscription) -> None:
        """Publish a bus-health event to everyone but the subscriber it is about.

        Reports raised while reporting are dropped: two full subscribers must not ping-pong.
        """
        if self._reporting:
            return
        envelope = Envelope(topic=topic, payload=payload, source="bus")
        self.published += 1
        self._reporting = True
        try:
            for subscription in tuple(self._subscriptions):
                if subscription is not exclude and subscription.wants(topic):
                    subscription._offer(envelope)  # noqa: SLF001
        finally:
            self._reporting = False


def _topic_pattern(pattern: str) -> re.Pattern[str]:
    """A topic pattern as a regular expression: ``*`` is one part of a dotted name."""
    return re.compile("[^.]+".join(re.escape(part) for part in pattern.split("*")))
