"""The live feed: one WebSocket per console or wall, fed from the bus.

Each client has its own bounded bus subscription (DISCONNECT on overflow) and one writer task, so
the publisher never waits for a socket and one stalled client never holds up the others: a client
that falls behind is closed with 1013 (try again later) and resyncs on reconnect, because the
state topics are replayed to every new subscription. The kernel send buffer of a live socket is
kept small, so a client that stops reading is noticed within a few hundred kilobytes instead of
after megabytes of kernel buffering.

Server messages are JSON objects with a ``type``: ``hello`` (first, with the user), ``event``
(``topic``, ``key``, ``source``, ``time``, ``correlation_id``, ``payload``), ``pong``,
``subscribed`` and ``error`` (``error`` is the API's error object). Client messages are
``{"type": "ping"}`` and ``{"type": "subscribe", "topics": [...] | null}``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import itertools
import json
import logging
import re
from collections.abc import Callable
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from ops.core.bus import Overflow, Subscription
from ops.core.channels import CHANNEL_EVENT, cancel_topic, send_topic
from ops.core.errors import SubscriptionOverflow
from ops.core.events import DEVICE_REPORTED, UNIT_POSITION_REPORTED, Envelope, Topic
from ops.core.ratelimit import RateLimiter
from ops.http.encode import dumps, envelope_message
from ops.http.errors import ApiError, error_body
from ops.http.keys import HUB_KEY
from ops.http.sessions import current_user
from ops.http.websocket import SEND_BUFFER, refuse_cross_origin, shrink_send_buffer
from radio.events import RADIO_FRAME

_LOGGER = logging.getLogger(__name__)

#: Seconds between pings; a client that does not answer within half of this is dropped.
HEARTBEAT = 20.0
#: Largest frame a client may send (1009 beyond it); client messages are tiny.
MAX_CLIENT_MESSAGE = 16 * 1024
#: Client messages allowed per second on average, and in one burst (1008 beyond it).
CLIENT_RATE = 10.0
CLIENT_BURST = 40
#: Bound on one send and on the closing handshake; past them the client counts as gone.
SEND_TIMEOUT = 10.0
CLOSE_TIMEOUT = 5.0
MAX_TOPICS = 100
#: Recent events kept encoded for the other clients (a few hundred milliseconds of a busy bus).
ENCODED_CACHE = 1024
TOPIC_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")

#: Topics a client gets only by naming them: raw device reports and position fixes arrive
#: thousands a second in a large room (consoles follow the derived ``device.health`` and
#: ``unit.moved`` instead), and the channels' commands and events carry whatever units send, as
#: often as they send it (consoles follow what dispatch records of them). So a busy field, or a
#: unit sending garbage on any channel, never gets a console disconnected. Radio frames likewise:
#: consoles follow ``radio.logged``, the stored lines, in batches.
FIREHOSE: tuple[Topic[Any] | str, ...] = (
    DEVICE_REPORTED,
    UNIT_POSITION_REPORTED,
    CHANNEL_EVENT,
    RADIO_FRAME,
    send_topic("*").name,
    cancel_topic("*").name,
)

CLOSE_TOO_SLOW = WSCloseCode.TRY_AGAIN_LATER  # 1013
CLOSE_POLICY = WSCloseCode.POLICY_VIOLATION  # 1008


class LiveClients:
    """The open live sockets of one app: counted for metrics, closed on shutdown or sign-out."""

    def __init__(self) -> None:
        self._clients: set[LiveClient] = set()
        self._numbers = itertools.count(1)
        # Each event is encoded once for every client, not once per client; the envelope is
        # held beside its text so its id cannot be reused while the entry lives.
        self._encoded: collections.OrderedDict[int, tuple[Envelope[Any], str]] = (
            collections.OrderedDict()
        )

    def encoded(self, envelope: Envelope[Any]) -> str:
        """The live-feed text of an event, shared by every client that sends it."""
        key = id(envelope)
        hit = self._encoded.get(key)
        if hit is not None and hit[0] is envelope:
            return hit[1]
        text = dumps(envelope_message(envelope))
        self._encoded[key] = (envelope, text)
        if len(self._encoded) > ENCODED_CACHE:
            self._encoded.popitem(last=False)
        return text

    def __len__(self) -> int:
        return len(self._clients)

    def next_name(self) -> str:
        """A unique subscriber name for the next client."""
        return f"live:{next(self._numbers)}"

    def add(self, client: LiveClient) -> None:
        """Track an open client."""
        self._clients.add(client)

    def discard(self, client: LiveClient) -> None:
        """Stop tracking a client that has gone."""
        self._clients.discard(client)

    async def close_all(self, code: int, reason: str) -> None:
        """Close every client at once, each bounded by the close timeout."""
        clients = list(self._clients)
        if clients:
            _LOGGER.info("closing %d live client(s): %s", len(clients), reason)
            await asyncio.gather(*(client.close(code, reason) for client in clients))

    async def close_session(self, token_hash: bytes, reason: str) -> None:
        """Close the clients opened with one session (it was signed out)."""
        clients = [c for c in self._clients if c.user.token_hash == token_hash]
        await asyncio.gather(*(client.close(CLOSE_POLICY, reason) for client in clients))

    async def close_user(self, user_id: int, reason: str) -> None:
        """Close every client of one account (it was removed, e.g. an unpaired wall screen)."""
        clients = [c for c in self._clients if c.user.user_id == user_id]
        await asyncio.gather(*(client.close(CLOSE_POLICY, reason) for client in clients))


LIVE_CLIENTS_KEY = web.AppKey("live_clients", LiveClients)


async def close_live_clients(app: web.Application) -> None:
    """``on_shutdown``: tell every live client the hub is going away (1001)."""
    await app[LIVE_CLIENTS_KEY].close_all(WSCloseCode.GOING_AWAY, "hub shutting down")


async def serve_live(
    request: web.Request,
    client_class: Callable[[web.Request, web.WebSocketResponse, str], LiveClient],
) -> web.WebSocketResponse:
    """Upgrade ``request`` and serve one client of ``client_class`` until either side closes.

    Raises:
        ApiError: 403 for another origin's page, 400 for a request that is not a handshake.
    """
    refuse_cross_origin(request)
    ws = web.WebSocketResponse(
        heartbeat=HEARTBEAT, max_msg_size=MAX_CLIENT_MESSAGE, timeout=CLOSE_TIMEOUT
    )
    if not ws.can_prepare(request).ok:
        raise ApiError(400, "websocket_required", "this endpoint speaks WebSocket only")
    await ws.prepare(request)
    shrink_send_buffer(request, SEND_BUFFER)
    clients = request.app[LIVE_CLIENTS_KEY]
    client = client_class(request, ws, clients.next_name())
    clients.add(client)
    try:
        await client.run()
    except Exception:
        # The socket is open: an HTTP error body cannot be sent any more, a close code can.
        _LOGGER.exception("live client %s crashed", client.name)
        await client.close(WSCloseCode.INTERNAL_ERROR, "internal error")
    finally:
        clients.discard(client)
    return ws


class LiveClient:
    """One live socket: its subscription, its writer task and the loop reading its messages."""

    def __init__(self, request: web.Request, ws: web.WebSocketResponse, name: str) -> None:
        self.user = current_user(request)
        self.name = name
        self._request = request
        self._ws = ws
        self._hub = request.app[HUB_KEY]
        self._clients = request.app[LIVE_CLIENTS_KEY]
        self._subscription: Subscription | None = None
        self._writer: asyncio.Task[None] | None = None

    async def run(self) -> None:
        """Greet, follow every topic, and serve the client's messages until either side closes."""
        _LOGGER.debug("live client %s opened by %s", self.name, self.user.username)
        try:
            await self._send(
                {
                    "type": "hello",
                    "hub_id": self._hub.config.hub.id,
                    "user": {
                        "id": self.user.user_id,
                        "username": self.user.username,
                        "role": self.user.role.value,
                    },
                    "session_expires_at": self.user.expires_at.isoformat(),
                }
            )
            self._follow(None)
            await self._read_until_session_ends()
        except ConnectionError:
            _LOGGER.debug("live client %s went away", self.name)
        finally:
            await self._stop_writer(wait=self._ws.closed)
            _LOGGER.debug("live client %s closed (%s)", self.name, self._ws.close_code)

    async def close(self, code: int, reason: str) -> None:
        """Close the socket, bounded; a client that will not take the close frame is cut off."""
        if self._ws.closed:
            return
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self._ws.close(code=code, message=reason.encode())
        except TimeoutError:
            transport = self._request.transport
            if transport is not None:
                transport.abort()

    # -- reading ----------------------------------------------------------------------------

    async def _read_until_session_ends(self) -> None:
        left = (self.user.expires_at - dt.datetime.now(dt.UTC)).total_seconds()
        deadline = asyncio.timeout(max(left, 0.0))
        try:
            async with deadline:
                await self._read()
        except TimeoutError:
            if deadline.expired():
                await self.close(CLOSE_POLICY, "session expired")
            else:  # a reply to the client could not be sent in time
                await self.close(CLOSE_TOO_SLOW, "too slow; reconnect")

    async def _read(self) -> None:
        bucket = RateLimiter(CLIENT_RATE, CLIENT_BURST)
        async for message in self._ws:
            if message.type is WSMsgType.ERROR:
                _LOGGER.debug("live client %s: %s", self.name, self._ws.exception())
                return
            if not bucket.attempt().allowed:
                _LOGGER.warning("live client %s of %s flooded", self.name, self.user.username)
                await self.close(CLOSE_POLICY, "too many messages")
                return
            if message.type is WSMsgType.TEXT:
                await self._handle(message.data)
            else:
                await self._send_error("bad_message", "messages must be JSON text")

    async def _handle(self, text: str) -> None:
        try:
            data = json.loads(text)
        except ValueError:
            await self._send_error("invalid_json", "the message is not valid JSON")
            return
        kind = data.get("type") if isinstance(data, dict) else None
        if kind == "ping":
            await self._send({"type": "pong"})
        elif kind == "subscribe":
            await self._subscribe(data.get("topics"))
        elif isinstance(kind, str):
            await self._send_error("unknown_type", f"unknown message type {kind!r}", "type")
        else:
            await self._send_error("bad_message", "a message is an object with a type", "type")

    async def _subscribe(self, topics: Any) -> None:
        if topics is not None and not (
            isinstance(topics, list)
            and len(topics) <= MAX_TOPICS
            and all(isinstance(t, str) and TOPIC_PATTERN.fullmatch(t) for t in topics)
        ):
            await self._send_error(
                "invalid_field",
                f"topics must be null or a list of at most {MAX_TOPICS} topic names",
                "topics",
            )
            return
        chosen = None if topics is None else sorted(set(topics))
        await self._stop_writer(wait=False)
        await self._send({"type": "subscribed", "topics": chosen})
        self._follow(chosen)

    # -- writing ----------------------------------------------------------------------------

    def _follow(self, topics: list[str] | None) -> None:
        """Open the subscription (replaying current state) and start the one writer task."""
        wanted: list[Topic[Any]] | None = None
        if topics is not None:
            wanted = [Topic(name) for name in topics]
        self._subscription = self._hub.bus.subscribe(
            wanted,
            maxsize=self._hub.config.web.live_queue,
            overflow=Overflow.DISCONNECT,
            name=self.name,
            exclude=FIREHOSE,
        )
        self._writer = asyncio.create_task(
            self._write(self._subscription), name=f"{self.name}:writer"
        )

    async def _write(self, subscription: Subscription) -> None:
        try:
            async for envelope in subscription:
                async with asyncio.timeout(SEND_TIMEOUT):
                    await self._ws.send_str(self._clients.encoded(envelope))
        except SubscriptionOverflow:
            _LOGGER.warning(
                "live client %s of %s fell behind; closing it", self.name, self.user.username
            )
            await self.close(CLOSE_TOO_SLOW, "too slow; reconnect")
        except TimeoutError:
            _LOGGER.warning("live client %s of %s stopped reading", self.name, self.user.username)
            await self.close(CLOSE_TOO_SLOW, "too slow; reconnect")
        except ConnectionError:
            return

    async def _stop_writer(self, *, wait: bool) -> None:
        """End the writer (letting a closing handshake it started finish) and the subscription."""
        writer, self._writer = self._writer, None
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
        if writer is None:
            return
        if wait:
            await asyncio.wait({writer}, timeout=CLOSE_TIMEOUT)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer

    async def _send(self, message: dict[str, Any]) -> None:
        async with asyncio.timeout(SEND_TIMEOUT):
            await self._ws.send_str(dumps(message))

    async def _send_error(self, code: str, message: str, field: str | None = None) -> None:
        await self._send({"type": "error", **error_body(code, message, field)})
