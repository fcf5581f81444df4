"""The web application: API, live feed and console over a running :class:`~ops.app.Hub`.

Handlers only read the hub and call domain functions; none talks to a device. Middleware order,
outermost first: metrics (sees the final status), errors (one JSON body for every failure),
access (session and role, before any handler).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from ops.http import live as live_feed
from ops.http.access import access_middleware
from ops.http.assets import ASSETS_KEY, find_assets
from ops.http.errors import error_middleware
from ops.http.keys import HUB_KEY, METRICS_REGISTRY_KEY
from ops.http.routes import Api, check_declared, install
from ops.web import auditing, auth, cases, health, live, openapi, pages, public, status
from ops.web import devices as devices_web
from ops.web import dispatch as dispatch_web
from ops.web import radio as radio_web
from ops.web import units as units_web
from ops.web.devices_metrics import register_metrics as register_device_metrics
from ops.web.metrics import create_registry
from videowall import web as videowall_web

if TYPE_CHECKING:
    from ops.app import Hub

_LOGGER = logging.getLogger(__name__)

__all__ = ["APIS", "HUB_KEY", "Served", "create_app", "serve"]

#: Seconds aiohttp waits for open requests when the server stops.
SHUTDOWN_TIMEOUT = 5.0


#: Every route the app serves, each declared once in its module.
APIS: tuple[Api, ...] = (
    health.api,
    pages.api,
    openapi.api,
    auth.api,
    status.api,
    auditing.api,
    live.api,
    cases.api,
    public.api,
    devices_web.api,
    units_web.api,
    dispatch_web.api,
    radio_web.api,
    videowall_web.api,
)


def create_app(hub: Hub) -> web.Application:
    """Build the application for a started hub (the caller owns the hub's lifetime)."""
    clients = live_feed.LiveClients()
    registry, http_metrics = create_registry(hub, lambda: len(clients))
    register_device_metrics(registry, hub)
    app = web.Application(
        middlewares=[http_metrics.middleware(), error_middleware, access_middleware],
        client_max_size=hub.config.web.max_body_bytes,
    )
    app[HUB_KEY] = hub
    app[METRICS_REGISTRY_KEY] = registry
    app[live_feed.LIVE_CLIENTS_KEY] = clients
    app[auth.LOGIN_LIMITER_KEY] = auth.create_login_limiter(
        hub.config.web.login_attempts_per_minute
    )
    app[ASSETS_KEY] = find_assets(pages.STATIC_DIR)
    install(app, *APIS)
    public.install(app, hub.config.cases)
    videowall_web.setup(app)
    check_declared(app)
    openapi.install_document(app)
    app.on_response_prepare.append(pages.add_security_headers)
    app.on_shutdown.append(live_feed.close_live_clients)
    return app


@dataclass(frozen=True, slots=True)
class Served:
    """Where a running app listens."""

    host: str
    port: int

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:8080``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


@contextlib.asynccontextmanager
async def serve(
    hub: Hub, *, host: str | None = None, port: int | None = None
) -> AsyncIterator[Served]:
    """Serve the hub's app until the block ends; port 0 picks a free port.

    ``host`` and ``port`` default to ``[web] host`` and ``port``. Leaving the block closes live
    sockets with 1001 and waits (bounded) for requests in flight.
    """
    cfg = hub.config.web
    runner = web.AppRunner(create_app(hub), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host or cfg.host, cfg.port if port is None else port)
        await site.start()
        bound = _bound_address(runner, host or cfg.host)
        _LOGGER.info("serving %s on %s", hub.config.hub.id, bound.url)
        yield bound
    finally:
        await runner.cleanup()


def _bound_address(runner: web.AppRunner, host: str) -> Served:
    for address in runner.addresses:
        if isinstance(address, tuple):
            return Served(host, int(address[1]))
    raise RuntimeError("the site did not bind a TCP address")
