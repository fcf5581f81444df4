"""Wiring of device health into a hub: the service, the history writer and the MQTT listeners.

The MQTT listeners are the device bus and the watch on peer hubs' status and panic presses.

This is composition glue (like ``ops/app.py``): it is the one place of the domain that names the
MQTT device adapter, which it hands to the hub's supervisor. The service's evaluator, ticker and
persister and the history writer run as supervised adapters too, so a crash restarts them with
backoff and shows on the devices page like any adapter.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from devices.mqtt import devicebus as devicebus_module
from devices.mqtt.devicebus import DeviceBus
from ops.core.adapter import AdapterContext
from ops.core.parts import PartKey
from ops.devicehealth.history import HistoryWriter
from ops.devicehealth.service import DeviceHealthService
from ops.devicehealth.watch import MqttWatch

if TYPE_CHECKING:
    from ops.core.hub import HubContext

_LOGGER = logging.getLogger(__name__)

FINAL_FLUSH_TIMEOUT = 3.0
EVALUATOR = "devicehealth-evaluator"
TICKER = "devicehealth-ticker"
PERSISTER = "devicehealth-persister"
HISTORY = "devicehealth-history"


@dataclass(frozen=True, slots=True)
class DeviceHealthParts:
    """What runs for one hub."""

    service: DeviceHealthService
    history: HistoryWriter
    devicebus: DeviceBus
    watch: MqttWatch


DEVICE_HEALTH: PartKey[DeviceHealthParts] = PartKey("devicehealth")


def service_of(hub: HubContext) -> DeviceHealthParts:
    """The device health parts of a started hub."""
    return hub.parts.get(DEVICE_HEALTH)


async def setup(hub: HubContext) -> None:
    """Load the registry, subscribe, start the loops and the MQTT device bus adapter."""
    cfg = hub.config.devices
    # Tick often enough that silence and hysteresis end within a quarter of their length.
    tick = max(0.05, min(1.0, cfg.offline_after / 4, (cfg.hysteresis or 4.0) / 4))
    counted: list[DeviceBus] = []
    service = DeviceHealthService(
        hub.bus,
        hub.pool,
        cfg,
        hub_id=hub.config.hub.id,
        tick=tick,
        clock=hub.clock,
        untrusted=frozenset({DeviceBus.name}),
        link=hub.mqtt.name,
        on_rejected=lambda source, reason: _count_rejected(counted, source, reason),
    )
    await service.load()
    history = HistoryWriter(
        hub.bus,
        hub.pool,
        state_of=lambda device_id: _state_of(service, device_id),
        sample_every=cfg.sample_every,
        retention_days=cfg.history_days,
    )
    devicebus = DeviceBus(
        hub.mqtt,
        hub.bus,
        share_group=cfg.share_group,
        max_payload=cfg.max_payload,
        rate=cfg.rate_per_device,
    )
    counted.append(devicebus)
    devicebus.attach()
    # Peer hubs' status and panic presses (proof of life only; the panic intake files them).
    watch = MqttWatch(
        hub.mqtt,
        hub.bus,
        known=service.devices.__contains__,
        register_unknown=cfg.register_unknown,
    )
    watch.attach()
    evaluations = service.subscribe()
    samples = history.subscribe()
    # The link may have changed state before the subscription opened.
    link = hub.supervisor.status.get(hub.mqtt.name)
    if link is not None:
        service.link_changed(link.state)
    loops = [
        Loop(EVALUATOR, lambda: service.run_evaluator(evaluations)),
        Loop(TICKER, service.run_ticker),
        Loop(PERSISTER, service.run_persister),
        Loop(HISTORY, lambda: history.run(samples)),
    ]
    for loop in loops:
        hub.supervisor.start(loop)
    hub.parts.put(DEVICE_HEALTH, DeviceHealthParts(service, history, devicebus, watch))

    async def stop() -> None:
        for loop in reversed(loops):
            await hub.supervisor.stop(loop.name)
        evaluations.close()
        samples.close()
        try:
            async with asyncio.timeout(FINAL_FLUSH_TIMEOUT):
                await service.persist_now()
                while history.pending():
                    await history.flush_now()
        except Exception as exc:  # noqa: BLE001 - shutdown goes on; the log says what was lost
            _LOGGER.warning("device health could not store its last batch: %r", exc)

    hub.on_stop(stop)
    hub.supervisor.start(devicebus)


def _state_of(service: DeviceHealthService, device_id: str) -> str:
    entry = service.devices.get(device_id)
    return "unknown" if entry is None else entry.health.state.value


class Loop:
    """One of the domain's own loops as an adapter: restarted with backoff if it crashes."""

    heartbeat_interval: float | None = None

    def __init__(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        self.name = name
        self._loop = loop

    async def run(self, ctx: AdapterContext) -> None:
        """Run the loop; it starts healthy and runs until cancelled or it raises."""
        ctx.heartbeat()
        await self._loop()


def _count_rejected(devicebus: list[DeviceBus], source: str, reason: str) -> None:
    """Count a report the service dropped with the device bus's own per-source counts."""
    if not devicebus:
        return
    rejected = devicebus[0].rejected
    if (source, reason) in rejected or len(rejected) < devicebus_module.MAX_SOURCES:
        rejected[(source, reason)] += 1
