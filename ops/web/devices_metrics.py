"""Device health on ``/metrics``: states, figures, alarms and the device bus's counters.

Names and labels are stable: ``posko_device_state{device,kind,site,state}`` is 1 for the current
state and 0 for the others; ``posko_device_figure{device,kind,figure}`` carries every numeric
figure (true/false as 1/0). Everything is read at scrape time from the running service.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from devices.health import HealthState, as_number
from ops.devicehealth import service_of

if TYPE_CHECKING:
    from ops.app import Hub


class DeviceCollector(Collector):
    """Reads the device health service of one hub on every scrape."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    def collect(self) -> Iterator[Metric]:
        """Yield every device metric as it is right now."""
        try:
            parts = service_of(self._hub)
        except RuntimeError:
            return
        service = parts.service
        states = GaugeMetricFamily(
            "posko_device_state",
            "1 for each device's current health state, 0 for the others.",
            labels=["device", "kind", "site", "state"],
        )
        figures = GaugeMetricFamily(
            "posko_device_figure",
            "Each device's latest numeric figures.",
            labels=["device", "kind", "figure"],
        )
        for device_id, entry in sorted(service.devices.items()):
            current = entry.health.state
            for state in HealthState:
                states.add_metric(
                    [device_id, entry.kind, entry.site or "", state.value],
                    1 if state is current else 0,
                )
            for figure, value in sorted(entry.health.figures.items()):
                number = as_number(value)
                if number is not None:
                    figures.add_metric([device_id, entry.kind, figure], number)
        yield states
        yield figures

        alarms = GaugeMetricFamily(
            "posko_device_alarms_active",
            "Alarms not cleared, by severity and whether acknowledged.",
            labels=["severity", "acknowledged"],
        )
        counts: collections.Counter[tuple[str, str]] = collections.Counter(
            (row.severity, "true" if row.acknowledged_at else "false")
            for row in service.open_alarms.values()
        )
        for severity in ("info", "warning", "critical"):
            for acknowledged in ("false", "true"):
                alarms.add_metric([severity, acknowledged], counts[(severity, acknowledged)])
        yield alarms

        yield CounterMetricFamily(
            "posko_device_reports", "Device reports evaluated.", value=service.reports
        )
        yield CounterMetricFamily(
            "posko_device_transitions",
            "Committed device health changes.",
            value=service.transitions,
        )
        rejected = CounterMetricFamily(
            "posko_device_input_rejected",
            "Device bus messages dropped as bad input, by reason.",
            labels=["reason"],
        )
        for reason, count in sorted(parts.devicebus.rejected_by_reason().items()):
            rejected.add_metric([reason], count)
        yield rejected
        yield CounterMetricFamily(
            "posko_device_history_samples_written",
            "Health samples written to the history.",
            value=parts.history.written,
        )
        yield GaugeMetricFamily(
            "posko_device_history_pending",
            "Health samples waiting to be written.",
            value=parts.history.pending(),
        )


def register_metrics(registry: CollectorRegistry, hub: Hub) -> None:
    """Add the device collector to an app's registry."""
    registry.register(DeviceCollector(hub))
