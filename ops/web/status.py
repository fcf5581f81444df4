"""The hub's own state for the console: adapters, readiness, uptime and which services it runs."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Literal

from aiohttp import web
from pydantic import Field

from ops.core.events import AdapterState
from ops.http.keys import HUB_KEY
from ops.http.models import Out
from ops.http.roles import ANY_ROLE
from ops.http.routes import Api, reply

if TYPE_CHECKING:
    from ops.app import Hub

api = Api("hub")

Where = Literal["embedded", "external"]


class AdapterStatusOut(Out):
    """One adapter's state."""

    name: str
    state: AdapterState
    detail: str
    restarts: int = Field(ge=0)
    retry_in: float | None = Field(description="Seconds, in backoff.")


class Services(Out):
    """Whether the database and the broker are the hub's own or the room's."""

    database: Where
    mqtt: Where


class MqttFigures(Out):
    """The MQTT link's state and counts."""

    connected: bool
    messages_received: int = Field(ge=0)
    messages_sent: int = Field(ge=0)


class HubStatus(Out):
    """Adapters, readiness, uptime and services of the hub."""

    hub_id: str
    uptime_seconds: float = Field(ge=0)
    ready: bool
    checks: dict[str, bool]
    adapters: list[AdapterStatusOut]
    services: Services
    mqtt: MqttFigures


@api.get(
    "/api/v1/hub/status",
    roles=ANY_ROLE,
    summary="Adapters, readiness, uptime and services of the hub.",
    response=HubStatus,
)
async def hub_status(request: web.Request) -> web.Response:
    """A snapshot; the console then follows ``hub.adapter.status`` and ``hub.readiness`` live."""
    return reply(status_snapshot(request.app[HUB_KEY]))


def status_snapshot(hub: Hub) -> HubStatus:
    """What ``GET /api/v1/hub/status`` returns."""
    return HubStatus(
        hub_id=hub.config.hub.id,
        uptime_seconds=round(time.monotonic() - hub.started_at, 3),
        ready=hub.ready,
        checks=dict(hub.checks),
        adapters=[
            AdapterStatusOut.model_validate(status)
            for _, status in sorted(hub.supervisor.status.items())
        ],
        services=Services(
            database="embedded" if hub.embedded_database else "external",
            mqtt="embedded" if hub.embedded_broker else "external",
        ),
        mqtt=MqttFigures(
            connected=hub.mqtt.connected,
            messages_received=hub.mqtt.messages_in,
            messages_sent=hub.mqtt.messages_out,
        ),
    )
