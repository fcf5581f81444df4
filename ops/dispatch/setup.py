"""Wiring of units and dispatch into a hub.

The position ingestor, the channel senders, the MQTT app channel, the inbound worker and the
watch all start here.

Radio and satellite plug in with :func:`add_sender` from their own ``setup(hub)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ops.core.parts import PartKey
from ops.dispatch.channels import OutboxSender, Sender
from ops.dispatch.mqtt_app import MqttAppSender, MqttUnitInbound
from ops.dispatch.service import DispatchService
from ops.dispatch.watch import DispatchWatch, PositionFeed
from ops.units.positions import PositionIngestor

if TYPE_CHECKING:
    from ops.core.hub import HubContext


@dataclass(slots=True)
class DispatchParts:
    """The running parts the web layer and other domains reach."""

    service: DispatchService
    ingestor: PositionIngestor
    inbound: MqttUnitInbound
    senders: dict[str, OutboxSender] = field(default_factory=dict)


DISPATCH: PartKey[DispatchParts] = PartKey("dispatch")


def parts_of(hub: HubContext) -> DispatchParts:
    """The dispatch parts of a started hub."""
    return hub.parts.get(DISPATCH)


async def setup(hub: HubContext) -> None:
    """Start units and dispatch on a hub (one line in ``ops.app.domain_services``)."""
    cfg = hub.config.dispatch
    service = DispatchService(
        hub.pool,
        hub.bus,
        timeouts={
            "mqtt": cfg.mqtt_ack_timeout,
            "radio": cfg.radio_ack_timeout,
            "satellite": cfg.satellite_ack_timeout,
        },
        auto_escalate=cfg.auto_escalate,
        cases=hub.config.cases,
        stale_after=cfg.stale_after,
    )
    ingestor = PositionIngestor(
        hub.pool,
        hub.bus,
        batch=cfg.position_batch,
        flush=cfg.position_flush,
        buffer=cfg.position_buffer,
        future_tolerance=cfg.future_tolerance,
    )
    inbound = MqttUnitInbound(hub.mqtt, hub.bus, service, ingestor)
    parts = DispatchParts(service, ingestor, inbound)
    hub.parts.put(DISPATCH, parts)
    await service.resume()
    inbound.attach()
    hub.supervisor.start(ingestor)
    hub.supervisor.start(PositionFeed(ingestor))
    hub.supervisor.start(inbound)
    add_sender(hub, MqttAppSender(hub.mqtt))
    hub.supervisor.start(DispatchWatch(service, cfg.watch_interval))
    hub.on_stop(ingestor.drain)


def add_sender(hub: HubContext, sender: Sender) -> OutboxSender:
    """Plug a channel in: its queued copies are drained by ``sender`` from now on."""
    parts = parts_of(hub)
    worker = OutboxSender(
        hub.pool, hub.bus, sender, timeout=parts.service.timeout_of(sender.channel)
    )
    parts.senders[sender.channel] = worker
    parts.service.on_queued(sender.channel, worker.wake)
    hub.supervisor.start(worker)
    return worker
