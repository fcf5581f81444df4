"""Wiring of units and dispatch into a hub.

The position ingestor and its feed, the order commands, the ladder and its watch, the outbox
relay and the inbound worker for channel events all start here (the shift clock starts from
``ops.shifts.setup``).

Dispatch talks to every channel over the bus only (``ops.core.channels``): the relay publishes
send and cancel commands on ``channel.{name}.send`` / ``channel.{name}.cancel``, the channel
answers on ``channel.event``. Channels are adapters outside the domain, plugged in by the
composition root with :func:`add_channel` (the MQTT app channel, ``devices.mqtt.appchannel``,
in ``ops.app``); radio and satellite do the same from their own ``setup(hub)``::

    add_channel(hub, RadioChannel(...))  # an adapter with ``channel = "radio"``

Their adapter imports ``ops.core`` only: it opens a :class:`~ops.core.channels.CopyQueue`
(``report_taken=True``: a 1200-baud queue may outlast the lease) in its ``run``, sends what the
queue hands out, calls ``queue.sent``/``queue.failed``, and publishes what units say
(``CopyAcknowledged`` with the order id, ``UnitTextReceived``, ``UnitStatusReported``) on
``channel.event`` and positions on ``unit.position.reported``. Its acknowledgement timeout is
``dispatch.{name}_ack_timeout``. docs/dispatch.md ("Channels") is the full contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from ops.core.parts import PartKey
from ops.dispatch.inbound import FieldInbound
from ops.dispatch.ladder import DispatchWatch, Ladder
from ops.dispatch.ledger import Ledger
from ops.dispatch.relay import OutboxRelay
from ops.dispatch.service import DispatchService
from ops.units.positions import PositionFeed, PositionIngestor

if TYPE_CHECKING:
    from ops.core.adapter import AdapterContext
    from ops.core.hub import HubContext


class ChannelAdapter(Protocol):
    """A supervised adapter that carries copies of orders over one channel."""

    name: str
    channel: str
    heartbeat_interval: float | None

    async def run(self, ctx: AdapterContext) -> None:
        """Take commands from the channel's topics until cancelled (see ``ops.core.channels``)."""
        ...


@dataclass(slots=True)
class DispatchParts:
    """The running parts the web layer and other domains reach."""

    service: DispatchService
    ladder: Ladder
    inbound: FieldInbound
    relay: OutboxRelay
    ingestor: PositionIngestor


DISPATCH: PartKey[DispatchParts] = PartKey("dispatch")


def parts_of(hub: HubContext) -> DispatchParts:
    """The dispatch parts of a started hub."""
    return hub.parts.get(DISPATCH)


async def setup(hub: HubContext) -> None:
    """Start units and dispatch on a hub (one line in ``ops.app.domain_services``)."""
    cfg = hub.config.dispatch
    ledger = Ledger(
        hub.pool,
        hub.bus,
        timeouts={
            "mqtt": cfg.mqtt_ack_timeout,
            "radio": cfg.radio_ack_timeout,
            "satellite": cfg.satellite_ack_timeout,
        },
        clock=_now,
    )
    ingestor = PositionIngestor(
        hub.pool,
        hub.bus,
        batch=cfg.position_batch,
        flush=cfg.position_flush,
        buffer=cfg.position_buffer,
        future_tolerance=cfg.future_tolerance,
    )
    ladder = Ladder(ledger, stale_after=cfg.stale_after)
    inbound = FieldInbound(ledger, ingestor, cases=hub.config.cases)
    relay = OutboxRelay(hub.pool, hub.bus, lease=cfg.claim_lease)
    ledger.on_queued(relay.wake)
    parts = DispatchParts(
        service=DispatchService(ledger, auto_escalate=cfg.auto_escalate),
        ladder=ladder,
        inbound=inbound,
        relay=relay,
        ingestor=ingestor,
    )
    hub.parts.put(DISPATCH, parts)
    await ladder.resume()
    inbound.attach()
    hub.supervisor.start(ingestor)
    hub.supervisor.start(PositionFeed(ingestor))
    hub.supervisor.start(inbound)
    hub.supervisor.start(relay)
    hub.supervisor.start(DispatchWatch(ladder, cfg.watch_interval))
    hub.on_stop(ingestor.drain)


def add_channel(hub: HubContext, adapter: ChannelAdapter) -> None:
    """Plug a channel in: start its adapter; the relay hands it copies while it listens."""
    hub.supervisor.start(adapter)
    parts_of(hub).relay.add_channel(adapter.channel)


def _now() -> datetime:
    return datetime.now(UTC)
