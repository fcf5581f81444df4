"""A channel's own queue of copies (ops.core.channels.CopyQueue), on a real bus, no I/O: order,
cancels, repeats, and the events it reports for the channel."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from ops.core.bus import Bus, Overflow
from ops.core.channels import (
    CHANNEL_EVENT,
    CancelCopy,
    CopyFailed,
    CopyQueue,
    CopySent,
    CopyTaken,
    SendCopy,
    cancel_topic,
    send_topic,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def command(copy_id: int, *, attempt: int = 1, channel: str = "radio") -> SendCopy:
    return SendCopy(
        copy_id=copy_id,
        order_id=f"{copy_id:012x}",
        unit_id=f"U{copy_id}",
        channel=channel,
        address=f"YB0{copy_id}",
        attempt=attempt,
        message="go",
        case_id=1,
        case_number="PSK-0000001",
        case_title="t",
        category="fire",
        priority="high",
        lat=None,
        lon=None,
        lease_until=NOW,
        deadline=NOW,
    )


def send(bus: Bus, copy: SendCopy) -> None:
    bus.publish(send_topic(copy.channel), copy, source="test", key=copy.order_id)


def cancel(bus: Bus, copy: SendCopy) -> None:
    bus.publish(
        cancel_topic(copy.channel),
        CancelCopy(copy.copy_id, copy.order_id, copy.unit_id, copy.channel, "acknowledged"),
        source="test",
        key=copy.order_id,
    )


def drain(subscription: Any) -> list[Any]:
    items = []
    while (item := subscription.get_nowait()) is not None:
        items.append(item.payload)
    return items


async def bus_on_loop() -> Bus:
    bus = Bus()
    bus.bind(asyncio.get_running_loop())
    return bus


async def test_copies_come_out_in_order_and_a_cancelled_one_never_does() -> None:
    bus = await bus_on_loop()
    async with CopyQueue(bus, "radio", source="radio-1", report_taken=False) as queue:
        first, second, third = command(1), command(2), command(3)
        for copy in (first, second, third):
            send(bus, copy)
        cancel(bus, second)
        assert queue.poll() == 2
        assert queue.cancelled == 1
        assert await queue.get() == first
        assert await queue.get() == third
        assert len(queue) == 0


async def test_a_repeated_command_for_a_copy_already_sent_is_dropped() -> None:
    bus = await bus_on_loop()
    async with (
        bus.subscribe(CHANNEL_EVENT, name="events") as events,
        CopyQueue(bus, "radio", source="radio-1", report_taken=False) as queue,
    ):
        send(bus, command(1))
        copy = await queue.get()
        queue.sent(copy, "on the air")
        send(bus, command(1))  # the lease ran out before dispatch heard of it: same attempt
        send(bus, command(1, attempt=2))  # a new attempt (after a restart) does go
        again = await queue.get()
        assert again.attempt == 2
        assert queue.poll() == 0
        assert drain(events) == [CopySent(1, copy.order_id, "U1", "radio", 1, "on the air")]


async def test_taken_is_reported_on_entry_and_failures_say_whether_to_retry() -> None:
    bus = await bus_on_loop()
    async with (
        bus.subscribe(CHANNEL_EVENT, name="events") as events,
        CopyQueue(bus, "satellite", source="sat-1", report_taken=True) as queue,
    ):
        copy = command(7, channel="satellite")
        send(bus, copy)
        send(bus, command(8, channel="radio"))  # another channel's: not this queue's
        taken = await queue.get()
        queue.failed(taken, "no signal", retryable=True)
        assert drain(events) == [
            CopyTaken(7, copy.order_id, "U7", "satellite", 1),
            CopyFailed(7, copy.order_id, "U7", "satellite", 1, "no signal", retryable=True),
        ]


async def test_the_command_subscription_alarms_rather_than_drops_silently() -> None:
    bus = await bus_on_loop()
    async with CopyQueue(bus, "radio", source="radio-1", report_taken=False):
        [subscription] = [s for s in bus.subscriptions if s.name == "radio-1"]
        assert subscription.overflow is Overflow.ALARM
    assert not [s for s in bus.subscriptions if s.name == "radio-1"]  # closed with the block


async def test_a_cancel_for_a_copy_already_handed_out_reaches_the_channel() -> None:
    bus = await bus_on_loop()
    withdrawn: list[CancelCopy] = []
    async with CopyQueue(
        bus, "radio", source="radio-1", report_taken=True, on_cancel=withdrawn.append
    ) as queue:
        first, second = command(1), command(2)
        send(bus, first)
        send(bus, second)
        assert await queue.get() == first  # on the air, retried by the channel until acked
        cancel(bus, first)
        cancel(bus, second)  # still waiting: the queue drops it, the channel never sees it
        assert queue.poll() == 0
        assert queue.cancelled == 1
        assert [c.copy_id for c in withdrawn] == [1]
