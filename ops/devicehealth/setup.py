"""Wiring of device health into a hub: the service, the history writer and the MQTT device bus.

This is composition glue (like ``ops/app.py``): it is the one place of the domain that names the
MQTT device adapter, which it hands to the hub's supervisor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

from devices.mqtt.devicebus import DeviceBus
from ops.devicehealth.history import HistoryWriter
from ops.devicehealth.service import DeviceHealthService

if TYPE_CHECKING:
    from ops.app import Hub

_LOGGER = logging.getLogger(__name__)

FINAL_FLUSH_TIMEOUT = 3.0


@dataclass(frozen=True, slots=True)
class DeviceHealthParts:
    """What runs for one hub."""

    service: DeviceHealthService
    history: HistoryWriter
    devicebus: DeviceBus


_PARTS: weakref.WeakKeyDictionary[Hub, DeviceHealthParts] = weakref.WeakKeyDictionary()


def service_of(hub: Hub) -> DeviceHealthParts:
    """The device health parts of a started hub."""
    parts = _PARTS.get(hub)
    if parts is None:
        raise RuntimeError("device health is not set up on this hub")
    return parts


async def setup(hub: Hub) -> None:
    """Load the registry, subscribe, start the loops and the MQTT device bus adapter."""
    cfg = hub.config.devices
    # Tick often enough that silence and hysteresis end within a quarter of their length.
    tick = max(0.05, min(1.0, cfg.offline_after / 4, (cfg.hysteresis or 4.0) / 4))
    service = DeviceHealthService(hub.bus, hub.pool, cfg, hub_id=hub.config.hub.id, tick=tick)
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
    devicebus.attach()
    evaluations = service.subscribe()
    samples = history.subscribe()
    tasks = [
        asyncio.create_task(service.run(evaluations), name="devicehealth"),
        asyncio.create_task(history.run(samples), name="devicehealth:history"),
    ]
    for task in tasks:
        task.add_done_callback(_report_crash)
    _PARTS[hub] = DeviceHealthParts(service, history, devicebus)

    async def stop() -> None:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
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


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        _LOGGER.error("%s stopped", task.get_name(), exc_info=task.exception())
