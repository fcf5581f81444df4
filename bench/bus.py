"""Events per second through the bus to 10 subscribers, beside plain asyncio.Queue fan-out."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from bench.report import Figure, emit, parser
from ops.core.bus import Bus
from ops.core.events import Topic

SUBSCRIBERS = 10


@dataclass(frozen=True, slots=True)
class Tick:
    n: int


TICK: Topic[Tick] = Topic("bench.tick")


async def through_bus(events: int) -> float:
    """Publish ``events`` and wait until every subscriber has read them all; events/s."""
    bus = Bus()
    bus.bind(asyncio.get_running_loop())
    subs = [bus.subscribe(TICK, maxsize=events) for _ in range(SUBSCRIBERS)]

    async def consume(index: int) -> None:
        sub = subs[index]
        for _ in range(events):
            await sub.get()

    consumers = [asyncio.create_task(consume(i)) for i in range(SUBSCRIBERS)]
    await asyncio.sleep(0)
    start = time.perf_counter()
    for i in range(events):
        bus.publish(TICK, Tick(i), source="bench")
        if i % 256 == 0:
            await asyncio.sleep(0)
    await asyncio.gather(*consumers)
    return events / (time.perf_counter() - start)


async def through_queues(events: int) -> float:
    """The same fan-out with bare asyncio.Queues and bare payloads: the floor of any bus."""
    queues: list[asyncio.Queue[Tick]] = [asyncio.Queue(maxsize=events) for _ in range(SUBSCRIBERS)]

    async def consume(queue: asyncio.Queue[Tick]) -> None:
        for _ in range(events):
            await queue.get()

    consumers = [asyncio.create_task(consume(q)) for q in queues]
    await asyncio.sleep(0)
    start = time.perf_counter()
    for i in range(events):
        tick = Tick(i)
        for queue in queues:
            queue.put_nowait(tick)
        if i % 256 == 0:
            await asyncio.sleep(0)
    await asyncio.gather(*consumers)
    return events / (time.perf_counter() - start)


async def main(quick: bool) -> list[Figure]:
    events = 20_000 if quick else 200_000
    rounds = 3
    bus_rates, queue_rates = [], []
    for _ in range(rounds):
        queue_rates.append(await through_queues(events))
        bus_rates.append(await through_bus(events))
    return [
        Figure(
            name="bus_events_per_s_10_subscribers",
            value=max(bus_rates),
            unit="events/s",
            baseline=max(queue_rates),
            higher_is_better=True,
        )
    ]


if __name__ == "__main__":
    args = parser(__doc__ or "").parse_args()
    emit(asyncio.run(main(args.quick)), as_json=args.json)
