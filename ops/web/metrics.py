"""Prometheus metrics: the hub's figures read at scrape time, plus HTTP request counts and latency.

Each app has its own registry (never the process-global one), so several hubs can share a process.
HTTP labels use the route template (``/api/v1/cases/{id}``), never the raw path, so a scanner
cannot grow the label set without bound.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from http import HTTPStatus
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ops.core.events import AdapterState

if TYPE_CHECKING:
    from ops.app import Hub

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: The route label of requests that matched no route (404s and the like).
UNMATCHED_ROUTE = "unmatched"
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class HubCollector(Collector):
    """Reads the hub's current figures on every scrape; nothing is updated in the hot path."""

    def __init__(self, hub: Hub, live_clients: Callable[[], int]) -> None:
        self._hub = hub
        self._live_clients = live_clients

    def collect(self) -> Iterator[Metric]:
        """Yield every hub metric as it is right now."""
        hub = self._hub
        yield _gauge("posko_up", "1 while the hub process runs.", 1)
        yield _gauge("posko_ready", "1 while the database and the broker are reachable.", hub.ready)

        states = GaugeMetricFamily(
            "posko_adapter_state",
            "1 for the current state of each adapter, 0 for the others.",
            labels=["adapter", "state"],
        )
        restarts = CounterMetricFamily(
            "posko_adapter_restarts", "Restarts of each adapter.", labels=["adapter"]
        )
        for name, status in sorted(hub.supervisor.status.items()):
            for state in AdapterState:
                states.add_metric([name, state.value], 1 if state is status.state else 0)
            restarts.add_metric([name], status.restarts)
        yield states
        yield restarts

        yield CounterMetricFamily(
            "posko_bus_events_published", "Events published on the bus.", value=hub.bus.published
        )
        depth = GaugeMetricFamily(
            "posko_bus_subscriber_queue_depth",
            "Events waiting in each bus subscriber's queue.",
            labels=["subscriber"],
        )
        dropped = CounterMetricFamily(
            "posko_bus_subscriber_dropped",
            "Events a bus subscriber lost to its overflow policy.",
            labels=["subscriber"],
        )
        for subscription in hub.bus.subscriptions:
            depth.add_metric([subscription.name], subscription.qsize())
            dropped.add_metric([subscription.name], subscription.dropped)
        yield depth
        yield dropped

        yield _gauge("posko_live_clients", "Open live WebSocket clients.", self._live_clients())
        yield CounterMetricFamily(
            "posko_mqtt_messages_received",
            "MQTT messages received by the hub.",
            value=hub.mqtt.messages_in,
        )
        yield CounterMetricFamily(
            "posko_mqtt_messages_sent",
            "MQTT messages sent by the hub.",
            value=hub.mqtt.messages_out,
        )


class HttpMetrics:
    """Request counter and latency histogram, labelled by route template."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "posko_http_requests",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "posko_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )

    def middleware(self) -> Middleware:
        """The outermost middleware, so it sees the status after errors became responses."""

        @web.middleware
        async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            started = time.perf_counter()
            status = 500
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                status = exc.status
                raise
            else:
                status = response.status
            finally:
                route = route_template(request)
                self.requests.labels(request.method, route, str(status)).inc()
                # A live socket's "duration" is its whole connection, which is not latency.
                if status != HTTPStatus.SWITCHING_PROTOCOLS:
                    self.duration.labels(route).observe(time.perf_counter() - started)
            return response

        return metrics_middleware


def create_registry(
    hub: Hub, live_clients: Callable[[], int]
) -> tuple[CollectorRegistry, HttpMetrics]:
    """A fresh registry holding the hub collector and the HTTP metrics."""
    registry = CollectorRegistry()
    registry.register(HubCollector(hub, live_clients))
    return registry, HttpMetrics(registry)


def route_template(request: web.Request) -> str:
    """The matched route's template (``/api/v1/cases/{id}``) or :data:`UNMATCHED_ROUTE`."""
    resource = request.match_info.route.resource
    if resource is None:
        return UNMATCHED_ROUTE
    return resource.canonical


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=float(value))
