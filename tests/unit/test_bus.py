"""Bus semantics: delivery, state replay, overflow policies, thread-safe publish."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

import pytest

from ops.core.bus import Bus, Overflow, Subscription
from ops.core.errors import SubscriptionOverflow
from ops.core.events import ALARM_RAISED, SUBSCRIBER_OVERFLOWED, Envelope, Topic


@dataclass(frozen=True, slots=True)
class Reading:
    value: int


READING: Topic[Reading] = Topic("test.reading")
LEVEL: Topic[Reading] = Topic("test.level", state=True)


def drain(sub) -> list[int]:
    values = []
    while (env := sub.get_nowait()) is not None:
        values.append(env.payload.value)
    return values


def test_each_subscriber_gets_its_topics_only() -> None:
    bus = Bus()
    readings = bus.subscribe(READING)
    everything = bus.subscribe()
    levels = bus.subscribe(LEVEL)
    bus.publish(READING, Reading(1), source="t")
    bus.publish(LEVEL, Reading(2), source="t")
    assert drain(readings) == [1]
    assert drain(levels) == [2]
    assert drain(everything) == [1, 2]


def test_envelope_carries_source_key_time_and_correlation() -> None:
    bus = Bus()
    sub = bus.subscribe(READING)
    sent = bus.publish(READING, Reading(7), source="radio", key="gw1", correlation_id="abc")
    got = sub.get_nowait()
    assert got is sent
    assert (got.source, got.key, got.correlation_id) == ("radio", "gw1", "abc")
    assert got.time.tzinfo is not None
    other = bus.publish(READING, Reading(8), source="radio")
    assert other.correlation_id != "abc"


def test_state_topic_replays_last_value_per_key_to_late_subscriber() -> None:
    bus = Bus()
    bus.publish(LEVEL, Reading(1), source="t", key="a")
    bus.publish(LEVEL, Reading(2), source="t", key="b")
    bus.publish(LEVEL, Reading(3), source="t", key="a")
    bus.publish(READING, Reading(99), source="t")
    late = bus.subscribe([LEVEL, READING])
    assert sorted(drain(late)) == [2, 3]
    assert bus.last(LEVEL, "a") is not None
    assert bus.last(LEVEL, "a").payload == Reading(3)  # type: ignore[union-attr]
    assert {e.key for e in bus.current(LEVEL)} == {"a", "b"}
    no_replay = bus.subscribe(LEVEL, replay_state=False)
    assert drain(no_replay) == []


def test_drop_oldest_keeps_newest_and_counts() -> None:
    bus = Bus()
    watcher = bus.subscribe(SUBSCRIBER_OVERFLOWED)
    sub = bus.subscribe(READING, maxsize=3, overflow=Overflow.DROP_OLDEST, name="slow")
    for i in range(10):
        bus.publish(READING, Reading(i), source="t")
    assert drain(sub) == [7, 8, 9]
    assert sub.dropped == 7
    assert not sub.closed
    reports = []
    while (env := watcher.get_nowait()) is not None:
        reports.append(env.payload)
    assert reports
    assert reports[0].subscriber == "slow"


def test_disconnect_policy_cuts_off_slow_subscriber_only() -> None:
    bus = Bus()
    slow = bus.subscribe(READING, maxsize=2, overflow=Overflow.DISCONNECT, name="browser")
    fast = bus.subscribe(READING, maxsize=100)
    for i in range(5):
        bus.publish(READING, Reading(i), source="t")
    assert slow.closed
    assert slow.overflowed
    with pytest.raises(SubscriptionOverflow):
        slow.get_nowait()
    assert slow not in bus.subscriptions
    assert drain(fast) == [0, 1, 2, 3, 4]


def test_alarm_policy_alarms_before_dropping_and_rearms() -> None:
    bus = Bus()
    alarms = bus.subscribe(ALARM_RAISED)
    writer = bus.subscribe(READING, maxsize=10, overflow=Overflow.ALARM, name="db-writer")
    for i in range(8):
        bus.publish(READING, Reading(i), source="t")
    first = alarms.get_nowait()
    assert first is not None
    assert first.payload.code == "queue_high_water"
    assert writer.dropped == 0
    # No repeated alarm while still above the low-water mark.
    bus.publish(READING, Reading(8), source="t")
    assert alarms.get_nowait() is None
    # Drain below the low-water mark: the alarm re-arms.
    for _ in range(8):
        assert writer.get_nowait() is not None
    for i in range(7):
        bus.publish(READING, Reading(100 + i), source="t")
    assert alarms.get_nowait() is not None


def test_overflow_reports_between_two_full_subscribers_do_not_recurse() -> None:
    bus = Bus()
    a = bus.subscribe(maxsize=1, name="a")
    b = bus.subscribe(maxsize=1, name="b")
    for i in range(50):
        bus.publish(READING, Reading(i), source="t")
    assert a.dropped > 0
    assert b.dropped > 0


async def test_get_waits_and_close_ends_iteration() -> None:
    bus = Bus()
    bus.bind(asyncio.get_running_loop())
    sub = bus.subscribe(READING)
    received: list[int] = []

    async def consume() -> None:
        received.extend([env.payload.value async for env in sub])

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)
    bus.publish(READING, Reading(1), source="t")
    bus.publish(READING, Reading(2), source="t")
    await asyncio.sleep(0)
    sub.close()
    await asyncio.wait_for(task, 1)
    assert received == [1, 2]
    assert sub not in bus.subscriptions


async def test_context_manager_unsubscribes() -> None:
    bus = Bus()
    async with bus.subscribe(READING) as sub:
        assert sub in bus.subscriptions
    assert sub not in bus.subscriptions
    bus.publish(READING, Reading(1), source="t")
    assert sub.get_nowait() is None


async def test_publish_threadsafe_from_worker_thread() -> None:
    bus = Bus()
    bus.bind(asyncio.get_running_loop())
    sub = bus.subscribe(READING)

    def worker() -> None:
        for i in range(100):
            bus.publish_threadsafe(READING, Reading(i), source="camera")

    thread = threading.Thread(target=worker)
    thread.start()
    await asyncio.to_thread(thread.join)
    values = [(await asyncio.wait_for(sub.get(), 1)).payload.value for _ in range(100)]
    assert values == list(range(100))


async def test_publish_from_wrong_thread_is_refused() -> None:
    bus = Bus()
    bus.bind(asyncio.get_running_loop())
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            bus.publish(READING, Reading(1), source="thread")
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    await asyncio.to_thread(thread.join)
    assert errors
    assert "publish_threadsafe" in str(errors[0])


def test_replayed_state_does_not_count_against_maxsize() -> None:
    bus = Bus()
    for i in range(50):
        bus.publish(LEVEL, Reading(i), source="t", key=f"device-{i}")
    sub = bus.subscribe(LEVEL, maxsize=4, overflow=Overflow.DISCONNECT)
    assert not sub.closed
    assert sub.qsize() == 50
    bus.publish(LEVEL, Reading(100), source="t", key="device-0")
    assert not sub.closed
    assert len(drain(sub)) == 51
    for i in range(4):
        bus.publish(LEVEL, Reading(200 + i), source="t", key="x")
    assert not sub.closed
    bus.publish(LEVEL, Reading(300), source="t", key="x")
    assert sub.closed  # past the snapshot, the ordinary limit applies again


def test_a_pattern_excludes_every_topic_it_matches_and_no_other() -> None:
    bus = Bus()
    sub = bus.subscribe(exclude=["channel.*.send", "channel.event"])
    for name in ("channel.radio.send", "channel.sat-2.send", "channel.event"):
        bus.publish(Topic(name), Reading(0), source="t")
    for number, name in enumerate(("channel.send", "channel.a.b.send", "channel.radio.sends")):
        bus.publish(Topic(name), Reading(number + 1), source="t")
    assert drain(sub) == [1, 2, 3]


def test_everything_but_excluded_topics() -> None:
    bus = Bus()
    bus.publish(LEVEL, Reading(1), source="t", key="a")
    sub = bus.subscribe(exclude=[READING, LEVEL])
    bus.publish(READING, Reading(2), source="t")
    bus.publish(LEVEL, Reading(3), source="t")
    assert drain(sub) == []
    named = bus.subscribe([READING], exclude=[READING])  # naming a topic wins
    bus.publish(READING, Reading(4), source="t")
    assert drain(named) == [4]


async def test_subscribers_that_come_and_go_between_publishes_are_routed_right() -> None:
    bus = Bus()
    first = bus.subscribe(READING, name="first")
    bus.publish(READING, Reading(1), source="t")  # routes READING to `first` only
    everything = bus.subscribe(name="everything")
    other = bus.subscribe(LEVEL, name="other")
    bus.publish(READING, Reading(2), source="t")
    first.close()
    bus.publish(READING, Reading(3), source="t")
    assert [e.payload.value for e in _drain(everything)] == [2, 3]
    assert _drain(other) == []
    late = bus.subscribe(READING, name="late")
    bus.publish(READING, Reading(4), source="t")
    assert [e.payload.value for e in _drain(late)] == [4]
    assert [e.payload.value for e in _drain(everything)] == [4]


def _drain(subscription: Subscription) -> list[Envelope[Reading]]:
    got = []
    while (envelope := subscription.get_nowait()) is not None:
        got.append(envelope)
    return got
