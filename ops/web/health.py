"""Liveness, readiness and Prometheus metrics for the room's monitoring.

All three are public: probes and scrapers carry no session. ``/metrics`` shows only counts and
states (no names of people, no case data); a room that must hide even those binds the hub to
loopback or filters ``/metrics`` at its reverse proxy.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from ops.web.keys import HUB_KEY, METRICS_REGISTRY_KEY

routes = web.RouteTableDef()


@routes.get("/healthz", allow_head=False)
async def healthz(request: web.Request) -> web.Response:
    """200 while the process serves requests; says nothing about its peers."""
    del request
    return web.json_response({"alive": True})


@routes.get("/readyz", allow_head=False)
async def readyz(request: web.Request) -> web.Response:
    """200 when the database and the broker are reachable now, else 503; same body either way."""
    checks = await request.app[HUB_KEY].check_readiness()
    ready = all(checks.values())
    return web.json_response({"ready": ready, "checks": checks}, status=200 if ready else 503)


@routes.get("/metrics", allow_head=False)
async def metrics(request: web.Request) -> web.Response:
    """The Prometheus text exposition of this app's registry."""
    body = generate_latest(request.app[METRICS_REGISTRY_KEY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})
