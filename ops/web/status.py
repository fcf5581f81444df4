"""The hub's own state for the console: adapters, readiness, uptime and which services it runs."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from ops.app import Hub
from ops.web.encode import to_jsonable
from ops.web.keys import HUB_KEY

routes = web.RouteTableDef()


@routes.get("/api/v1/hub/status", allow_head=False)
async def hub_status(request: web.Request) -> web.Response:
    """A snapshot; the console then follows ``hub.adapter.status`` and ``hub.readiness`` live."""
    return web.json_response(status_snapshot(request.app[HUB_KEY]))


def status_snapshot(hub: Hub) -> dict[str, Any]:
    """What ``GET /api/v1/hub/status`` returns."""
    return {
        "hub_id": hub.config.hub.id,
        "uptime_seconds": round(time.monotonic() - hub.started_at, 3),
        "ready": hub.ready,
        "checks": dict(hub.checks),
        "adapters": [to_jsonable(status) for _, status in sorted(hub.supervisor.status.items())],
        "services": {
            "database": "embedded" if hub.embedded_database else "external",
            "mqtt": "embedded" if hub.embedded_broker else "external",
        },
        "mqtt": {
            "connected": hub.mqtt.connected,
            "messages_received": hub.mqtt.messages_in,
            "messages_sent": hub.mqtt.messages_out,
        },
    }
