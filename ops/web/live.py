"""The console's live feed over one WebSocket (the machinery is :mod:`ops.http.live`)."""

from __future__ import annotations

from aiohttp import web

from ops.http.live import LiveClient, serve_live
from ops.http.roles import ANY_ROLE
from ops.http.routes import Api, Content

api = Api("live")


@api.get(
    "/api/v1/live",
    roles=ANY_ROLE,
    summary="The live feed (WebSocket).",
    description=(
        "Upgrade to a WebSocket. The server sends JSON objects with a type: hello (first; "
        "with the user), event (topic, key, source, time, correlation_id, payload; the "
        "current state of state topics comes first), pong, subscribed and error. A client "
        'sends {"type": "ping"} or {"type": "subscribe", "topics": [...] | null}. Close '
        "codes: 1001 hub shutting down, 1008 flooding, session expired or signed out, 1009 "
        "frame too large, 1013 too slow (reconnect)."
    ),
    responses={101: Content("", description="Switched to the WebSocket protocol.")},
    errors={400: "Not a WebSocket handshake (code websocket_required)."},
)
async def live(request: web.Request) -> web.WebSocketResponse:
    """Upgrade to the live feed for the signed-in user."""
    return await serve_live(request, LiveClient)
