"""Liveness, readiness and Prometheus metrics for the room's monitoring.

All three are public: probes and scrapers carry no session. ``/metrics`` shows only counts and
states (no names of people, no case data); a room that must hide even those binds the hub to
loopback or filters ``/metrics`` at its reverse proxy.
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from pydantic import Field

from ops.http.keys import HUB_KEY, METRICS_REGISTRY_KEY
from ops.http.models import Out
from ops.http.roles import PUBLIC
from ops.http.routes import Api, Content, reply

api = Api("health")


class Health(Out):
    """Alive."""

    alive: Literal[True]


class Readiness(Out):
    """Whether the database and the broker are reachable now."""

    ready: bool
    checks: dict[str, bool] = Field(description="Each dependency and whether it is reachable.")


@api.get(
    "/healthz",
    roles=PUBLIC,
    summary="Liveness: 200 while the process serves requests.",
    response=Health,
)
async def healthz(request: web.Request) -> web.Response:
    """200 while the process serves requests; says nothing about its peers."""
    del request
    return reply(Health(alive=True))


@api.get(
    "/readyz",
    roles=PUBLIC,
    summary="Readiness: the database and the broker are reachable now.",
    responses={200: Readiness, 503: Readiness},
)
async def readyz(request: web.Request) -> web.Response:
    """200 when the database and the broker are reachable now, else 503; same body either way."""
    checks = await request.app[HUB_KEY].check_readiness()
    ready = all(checks.values())
    return reply(Readiness(ready=ready, checks=checks), status=200 if ready else 503)


@api.get(
    "/metrics",
    roles=PUBLIC,
    summary="Prometheus metrics (public: counts and states only; scrape from loopback).",
    response=Content("text/plain", description="Prometheus text exposition format 0.0.4."),
)
async def metrics(request: web.Request) -> web.Response:
    """The Prometheus text exposition of this app's registry."""
    body = generate_latest(request.app[METRICS_REGISTRY_KEY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})
