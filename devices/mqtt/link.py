"""The hub's one connection to the MQTT broker (aiomqtt 2.x, paho underneath, all in the loop).

Each run of the adapter is one connection: connect with a retained ``offline`` last will, subscribe
to every registered filter (after *each* connect, so a broker restart never loses subscriptions),
announce a retained ``online``, then receive and dispatch until the connection breaks or the run
is cancelled. Reconnecting is the supervisor's job: a lost connection raises ``AdapterNotReady``,
refused credentials raise ``AdapterAuthError``.

Proof of life: the link heartbeats once it is subscribed and announced, on every message it
receives, and every ``heartbeat_interval`` when the broker acknowledges a QoS 1 message to
``{prefix}/hub/{hub_id}/heartbeat``. A half-dead connection (no acknowledgements, no traffic)
therefore goes stale and the supervisor restarts it.

A filter registered while connected is subscribed in the background; until the broker grants it,
messages on it are not delivered to the hub at all (a broker drops what nobody subscribed to).
``subscribed`` and ``wait_subscribed()`` say when every registered filter is in force, so the hub
reports itself started only once what the field sends already reaches it.

Handlers run inline in arrival order, so each handler sees its messages in order. A coroutine
handler is bounded by ``handler_timeout``: if it overruns it is cancelled and counted as a
failure, so a slow handler delays the receive loop by at most that much per message. Handlers
should therefore be quick (typically: publish on the bus and return); a plain function cannot be
bounded and must never block. A handler that raises is logged once per exception type and never
stops delivery to other handlers or later messages.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import aiomqtt
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.reasoncodes import ReasonCode

from ops.core.errors import AdapterAuthError, AdapterConfigError, AdapterNotReady
from ops.core.mqtt import MessageHandler, MqttMessage

if TYPE_CHECKING:
    from ops.core.adapter import AdapterContext
    from ops.core.config import MqttConfig

# MqttMessage and MessageHandler live in ops.core (what every part may import) and are re-exported.
__all__ = ["MessageHandler", "MqttLink", "MqttMessage", "MqttNotConnected", "topic_matches"]

_LOGGER = logging.getLogger(__name__)
_PAHO_LOGGER = logging.getLogger(f"{__name__}.paho")

DEFAULT_KEEPALIVE = 30
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_HEARTBEAT_INTERVAL = 5.0
DEFAULT_HANDLER_TIMEOUT = 2.0
DEFAULT_PUBLISH_TIMEOUT = 5.0
#: Received messages waiting for dispatch; beyond this aiomqtt drops new ones (and logs it).
DEFAULT_MAX_QUEUED_IN = 10_000
#: Bound on the goodbye (retained ``offline``) and on ending the run's tasks, kept under the
#: supervisor's stop timeout so a dead broker cannot stall shutdown.
GOODBYE_TIMEOUT = 2.0

STATUS_ONLINE: Final = b"online"
STATUS_OFFLINE: Final = b"offline"

# CONNACK refusals, as MQTT 3.1.1 return codes and MQTT 5 reason codes.
_REFUSED_CREDENTIALS = frozenset({4, 5, 0x86, 0x87, 0x8A, 0x8C})  # bad user/password, not
# authorised, banned, bad authentication method
_REFUSED_CONFIG = frozenset({1, 2, 0x84, 0x85})  # protocol version, client identifier
_SUBACK_FAILURE = 0x80


class MqttNotConnected(AdapterNotReady):
    """The link has no broker connection right now; try again after it reconnects."""


class MqttLink:
    """The hub's MQTT connection as a supervised adapter, plus the publish/subscribe API."""

    name: str = "mqtt"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        client_id: str,
        prefix: str,
        hub_id: str,
        username: str | None = None,
        password: str | None = None,
        keepalive: int = DEFAULT_KEEPALIVE,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
        handler_timeout: float = DEFAULT_HANDLER_TIMEOUT,
    ) -> None:
        if heartbeat_interval <= 0 or handler_timeout <= 0 or connect_timeout <= 0:
            raise ValueError("heartbeat_interval, handler_timeout and connect_timeout must be > 0")
        self.host = host
        self.port = port
        self.client_id = client_id
        self.prefix = prefix
        self.hub_id = hub_id
        self.heartbeat_interval: float | None = heartbeat_interval
        self.status_topic = self.topic("hub", hub_id, "status")
        self.heartbeat_topic = self.topic("hub", hub_id, "heartbeat")
        self.messages_in = 0
        self.messages_out = 0
        self.handler_errors = 0
        self._username = username
        self._password = password
        self._keepalive = keepalive
        self._connect_timeout = connect_timeout
        self._beat_every = heartbeat_interval
        # A broker that cannot acknowledge within one heartbeat interval is not answering.
        self._goodbye_timeout = min(GOODBYE_TIMEOUT, heartbeat_interval)
        self._handler_timeout = handler_timeout
        self._routes: list[_Route] = []
        self._pending: dict[str, int] = {}
        self._pending_added = asyncio.Event()
        #: Set while connected with every registered filter granted by the broker.
        self._settled = asyncio.Event()
        self._reported: set[tuple[_Route, type[BaseException]]] = set()
        self._client: aiomqtt.Client | None = None

    @classmethod
    def from_config(cls, cfg: MqttConfig, hub_id: str) -> MqttLink:
        """Build the link from the ``[mqtt]`` section (embedded broker when no URL is set)."""
        host, port = cfg.host_port
        return cls(
            host=host,
            port=port,
            client_id=f"posko-hub-{hub_id}",
            prefix=cfg.prefix,
            hub_id=hub_id,
            username=cfg.username,
            password=None if cfg.password is None else cfg.password.get_secret_value(),
            keepalive=cfg.keepalive,
            connect_timeout=cfg.connect_timeout,
        )

    @property
    def connected(self) -> bool:
        """True only between an accepted CONNACK and the loss or end of that connection."""
        return self._client is not None

    @property
    def subscribed(self) -> bool:
        """True while connected with every filter registered so far granted by the broker."""
        return self._settled.is_set()

    async def wait_subscribed(self) -> None:
        """Wait until the link is connected and every filter registered so far is in force.

        A filter registered while connected takes effect only once the broker has granted it;
        a message published before then is lost (nobody was subscribed). Callers that promise
        "started" bound this wait themselves.
        """
        await self._settled.wait()

    def topic(self, *parts: str) -> str:
        """Join ``parts`` under the configured prefix: ``topic("units", "u1", "orders")``."""
        return "/".join((self.prefix, *parts))

    def subscribe(self, topic_filter: str, handler: MessageHandler, qos: int = 1) -> None:
        """Route messages matching ``topic_filter`` to ``handler`` on every connection from now on.

        Works before or while running. A second handler on a filter that is already subscribed
        does not get that filter's retained messages replayed.
        """
        aiomqtt.Wildcard(topic_filter)  # raises ValueError on a malformed filter
        if qos not in {0, 1, 2}:
            raise ValueError(f"qos must be 0, 1 or 2, not {qos!r}")
        before = self._wanted().get(topic_filter)
        self._routes.append(_Route(topic_filter, handler, qos))
        if self._client is not None and (before is None or qos > before):
            self._pending[topic_filter] = max(qos, before or 0)
            self._settled.clear()
            self._pending_added.set()

    async def publish(
        self,
        topic: str,
        payload: bytes | str,
        *,
        qos: int = 0,
        retain: bool = False,
        timeout: float = DEFAULT_PUBLISH_TIMEOUT,  # noqa: ASYNC109 - a per-call bound callers set
    ) -> None:
        """Publish on the current connection and wait until it is sent (QoS 0) or acknowledged.

        Nothing is queued across a reconnect: work that must survive one belongs in an outbox.

        Raises:
            MqttNotConnected: there is no connection, or paho refused the message because the
                connection just broke.
            TimeoutError: not sent or acknowledged within ``timeout`` seconds (which is also
                what a connection lost while waiting for the acknowledgement looks like).
        """
        client = self._client
        if client is None:
            raise MqttNotConnected(f"MQTT link to {self.host}:{self.port} is not connected")
        try:
            async with asyncio.timeout(timeout):
                await client.publish(topic, payload, qos=qos, retain=retain, timeout=math.inf)
        except aiomqtt.MqttError as exc:
            raise MqttNotConnected(f"cannot publish to {topic}: {_explain(exc)}") from exc
        self.messages_out += 1

    async def run(self, ctx: AdapterContext) -> None:
        """One connection: connect, subscribe, announce, serve until it breaks or is cancelled."""
        client = self._new_client()
        await self._connect(client)
        try:
            await self._serve(client, ctx)
        except aiomqtt.MqttError as exc:
            raise AdapterNotReady(f"MQTT connection lost: {_explain(exc)}") from exc
        finally:
            self._client = None
            self._settled.clear()
            await self._disconnect(client)

    # -- one connection -------------------------------------------------------------------------

    def _new_client(self) -> aiomqtt.Client:
        client = aiomqtt.Client(
            self.host,
            self.port,
            identifier=self.client_id,
            username=self._username,
            password=self._password,
            logger=_PAHO_LOGGER,
            will=aiomqtt.Will(self.status_topic, STATUS_OFFLINE, qos=1, retain=True),
            clean_session=True,
            keepalive=self._keepalive,
            timeout=self._connect_timeout,
            max_queued_incoming_messages=DEFAULT_MAX_QUEUED_IN,
        )
        # aiomqtt does not expose paho's TCP connect timeout; without it an unreachable host
        # holds the connect for paho's default rather than ours.
        client._client.connect_timeout = self._connect_timeout  # noqa: SLF001
        return client

    async def _connect(self, client: aiomqtt.Client) -> None:
        where = f"{self.host}:{self.port}"
        try:
            await self._open(client)
        except MqttConnectError as exc:
            code = None if exc.rc is None else _code(exc.rc)
            if code in _REFUSED_CREDENTIALS:
                raise AdapterAuthError(
                    f"MQTT broker {where} refused the credentials of user "
                    f"{self._username or '(anonymous)'}: {_explain(exc)}; check [mqtt] username "
                    "and POSKO_MQTT__PASSWORD"
                ) from exc
            if code in _REFUSED_CONFIG:
                raise AdapterConfigError(
                    f"MQTT broker {where} refused client {self.client_id!r}: {_explain(exc)}"
                ) from exc
            raise AdapterNotReady(f"MQTT broker {where} refused: {_explain(exc)}") from exc
        except aiomqtt.MqttError as exc:
            raise AdapterNotReady(f"cannot connect to MQTT broker {where}: {exc}") from exc
        _LOGGER.info("MQTT link connected to %s as %s", where, self.client_id)

    @staticmethod
    async def _open(client: aiomqtt.Client) -> None:
        """Enter the client; a failed or cancelled attempt leaves no socket behind.

        After a CONNACK timeout or a cancellation aiomqtt keeps the socket open with its
        housekeeping task running, and a CONNACK arriving later would hold a second session
        under our client id. paho's ``disconnect()`` trips over aiomqtt's cancelled CONNACK
        future, so paho's socket is closed directly (a no-op when it is already closed).
        """
        try:
            await client.__aenter__()
        except BaseException:
            client._client._sock_close()  # noqa: SLF001
            raise

    async def _disconnect(self, client: aiomqtt.Client) -> None:
        # A failed goodbye must never replace why the run ended (or swallow a cancellation),
        # and the socket must be closed whatever happened.
        try:
            await client.__aexit__(None, None, None)
        except aiomqtt.MqttError as exc:
            _LOGGER.debug("MQTT disconnect from %s:%d failed: %s", self.host, self.port, exc)
        finally:
            client._client._sock_close()  # noqa: SLF001

    async def _serve(self, client: aiomqtt.Client, ctx: AdapterContext) -> None:
        self._pending_added = asyncio.Event()
        self._client = client
        try:
            await self._subscribe_all(client)
            await client.publish(self.status_topic, STATUS_ONLINE, qos=1, retain=True)
            self._settle()
            ctx.heartbeat()
            await _first_to_end(
                self._receive(client, ctx),
                self._beat(client, ctx),
                self._subscribe_added(client),
            )
        except asyncio.CancelledError:
            self._client = None
            self._settled.clear()
            await self._say_offline(client)
            raise

    async def _subscribe_all(self, client: aiomqtt.Client) -> None:
        self._pending.clear()
        await self._subscribe(client, self._wanted())

    async def _subscribe_added(self, client: aiomqtt.Client) -> None:
        while True:
            await self._pending_added.wait()
            self._pending_added.clear()
            batch, self._pending = self._pending, {}
            await self._subscribe(client, batch)
            self._settle()

    def _settle(self) -> None:
        """Mark the subscriptions in force, unless more were registered while granting these."""
        if self._client is not None and not self._pending:
            self._settled.set()

    async def _subscribe(self, client: aiomqtt.Client, filters: dict[str, int]) -> None:
        if not filters:
            return
        granted: list[int | ReasonCode] = list(await client.subscribe(list(filters.items())))
        for topic_filter, code in zip(filters, granted, strict=False):
            if _code(code) >= _SUBACK_FAILURE:
                _LOGGER.warning("MQTT broker refused the subscription to %s", topic_filter)
        _LOGGER.debug("MQTT link subscribed to %s", ", ".join(filters))

    async def _receive(self, client: aiomqtt.Client, ctx: AdapterContext) -> None:
        async for message in client.messages:
            self.messages_in += 1
            ctx.heartbeat()
            await self._dispatch(_to_message(message))

    async def _beat(self, client: aiomqtt.Client, ctx: AdapterContext) -> None:
        """Publish a QoS 1 heartbeat every interval; heartbeat only when the broker acknowledges."""
        every = self._beat_every
        missed = 0
        while True:
            await asyncio.sleep(every)
            try:
                async with asyncio.timeout(every):
                    await client.publish(self.heartbeat_topic, b"", qos=1, timeout=math.inf)
            except TimeoutError:
                missed += 1
                _LOGGER.debug("MQTT heartbeat not acknowledged within %.1f s (%d)", every, missed)
                continue
            missed = 0
            ctx.heartbeat()

    async def _say_offline(self, client: aiomqtt.Client) -> None:
        try:
            await client.publish(
                self.status_topic, STATUS_OFFLINE, qos=1, retain=True, timeout=self._goodbye_timeout
            )
        except aiomqtt.MqttError as exc:
            _LOGGER.debug("could not publish the MQTT offline status: %s", exc)

    # -- dispatch -------------------------------------------------------------------------------

    async def _dispatch(self, message: MqttMessage) -> None:
        for route in tuple(self._routes):
            if topic_matches(route.topic_filter, message.topic):
                await self._call(route, message)

    async def _call(self, route: _Route, message: MqttMessage) -> None:
        try:
            result = route.handler(message)
            if result is not None:
                async with asyncio.timeout(self._handler_timeout):
                    await result
        except Exception as exc:  # noqa: BLE001 - a handler's bug must never take the link down
            self.handler_errors += 1
            self._report(route, message, exc)

    def _report(self, route: _Route, message: MqttMessage, exc: Exception) -> None:
        key = (route, type(exc))
        if key in self._reported:
            _LOGGER.debug("MQTT handler for %s failed again on %s: %r", route, message.topic, exc)
            return
        self._reported.add(key)
        _LOGGER.error(
            "MQTT handler for %s failed on %s (further %s from it are logged at DEBUG)",
            route,
            message.topic,
            type(exc).__name__,
            exc_info=exc,
        )

    def _wanted(self) -> dict[str, int]:
        """Every filter with the highest QoS any of its handlers asked for."""
        wanted: dict[str, int] = {}
        for route in self._routes:
            wanted[route.topic_filter] = max(route.qos, wanted.get(route.topic_filter, 0))
        return wanted


@dataclass(eq=False, slots=True)
class _Route:
    """A filter and its handler; compared by identity so each registration is reported apart."""

    topic_filter: str
    handler: MessageHandler
    qos: int

    def __str__(self) -> str:
        name = getattr(self.handler, "__qualname__", repr(self.handler))
        return f"{self.topic_filter} ({name})"


def topic_matches(topic_filter: str, topic: str) -> bool:
    """Whether ``topic`` matches ``topic_filter`` (MQTT wildcards; ``$share/<group>/`` ignored).

    paho's ``topic_matches_sub`` builds a matcher tree on every call (about 30 µs); this is the
    receive loop's hot path, so filters are split once and cached.
    """
    pattern = _levels(topic_filter)
    levels = topic.split("/")
    for index, part in enumerate(pattern):
        if part == "#":
            return index > 0 or not topic.startswith("$")
        if index >= len(levels):
            return False
        if part == "+":
            if index == 0 and topic.startswith("$"):
                return False
        elif part != levels[index]:
            return False
    return len(levels) == len(pattern)


@functools.lru_cache(maxsize=1024)
def _levels(topic_filter: str) -> tuple[str, ...]:
    return tuple(_unshared(topic_filter).split("/"))


def _unshared(topic_filter: str) -> str:
    """The filter messages match: ``$share/<group>/a/+`` (a shared subscription) matches ``a/+``."""
    if topic_filter.startswith("$share/"):
        return topic_filter.split("/", 2)[2] if topic_filter.count("/") >= 2 else topic_filter  # noqa: PLR2004
    return topic_filter


def _to_message(message: aiomqtt.Message) -> MqttMessage:
    return MqttMessage(message.topic.value, bytes(message.payload), message.qos, message.retain)


class _DemoteToDebug(logging.Filter):
    """Log paho's own lines at DEBUG.

    paho reports a dropped connection at ERROR; the supervisor already reports each failure
    once (WARNING, then DEBUG on repeats), so paho's copy would only repeat it louder.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.levelno = logging.DEBUG
        record.levelname = logging.getLevelName(logging.DEBUG)
        return True


_PAHO_LOGGER.addFilter(_DemoteToDebug())


def _code(rc: int | ReasonCode) -> int:
    """The number of a paho reason code (paho 2 reports MQTT 3.1.1 codes as ReasonCode too)."""
    return int(rc.value) if isinstance(rc, ReasonCode) else rc


def _explain(exc: aiomqtt.MqttError) -> str:
    """Return aiomqtt's message plus paho's underlying reason, when it hides one."""
    cause = exc.__cause__
    return f"{exc} ({cause})" if cause is not None and str(cause) != str(exc) else str(exc)


async def _first_to_end(*coros: Coroutine[Any, Any, None]) -> None:
    """Run the coroutines until one ends; re-raise its exception; end the others (bounded).

    Unlike a TaskGroup this raises the original exception, not an ExceptionGroup, so the
    supervisor can tell a lost connection from a bug.
    """
    tasks = [asyncio.create_task(coro) for coro in coros]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        ended, stuck = await asyncio.wait(tasks, timeout=GOODBYE_TIMEOUT)
        for task in stuck:
            _LOGGER.error("MQTT link task %s ignored cancellation", task.get_name())
        for task in ended:
            if not task.cancelled():
                task.exception()  # retrieved, so asyncio does not log it as lost
    for task in done:
        if task.cancelled():
            raise AdapterNotReady(f"MQTT link task {task.get_name()} was cancelled from inside")
        error = task.exception()
        if error is not None:
            raise error
    raise AdapterNotReady("MQTT link loop ended unexpectedly")
