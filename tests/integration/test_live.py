"""The live WebSocket against a real hub: events, slow and flooding clients, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohappyeyeballs import AddrInfoType

from ops.app import Hub
from ops.core.events import Topic
from ops.http.live import CLIENT_BURST, MAX_CLIENT_MESSAGE
from ops.users import Role
from tests.fixtures.hub import (
    ConfigFactory,
    LoginAs,
    WebClient,
    client_of,
    create_user,
    log_in,
    start_web_hub,
)

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

RECEIVE_TIMEOUT = 5.0
CLOSING = {aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED}


class Light(enum.Enum):
    GREEN = "green"


@dataclass(frozen=True, slots=True)
class Sample:
    number: int
    light: Light
    at: datetime
    tags: tuple[str, ...] = ()
    note: str = ""


SAMPLE: Topic[Sample] = Topic("test.sample")
OTHER: Topic[Sample] = Topic("test.other")


async def _next(ws: aiohttp.ClientWebSocketResponse, kind: str, **match: Any) -> dict[str, Any]:
    """The next server message of type ``kind`` (and topic etc.), skipping the others."""
    async with asyncio.timeout(RECEIVE_TIMEOUT):
        while True:
            message = await ws.receive()
            assert message.type is aiohttp.WSMsgType.TEXT, message
            data: dict[str, Any] = message.json()
            if data["type"] == kind and all(data.get(k) == v for k, v in match.items()):
                return data


async def _close_code(ws: aiohttp.ClientWebSocketResponse) -> int | None:
    """Read until the server closes; return its close code."""
    async with asyncio.timeout(RECEIVE_TIMEOUT * 3):
        while (await ws.receive()).type not in CLOSING:
            pass
    return ws.close_code


async def test_a_signed_in_client_gets_hello_state_and_events(hub: Hub, login_as: LoginAs) -> None:
    client = await login_as(Role.OPERATOR)
    assert client.user is not None
    async with client.ws_connect() as ws:
        hello = await ws.receive_json(timeout=RECEIVE_TIMEOUT)
        assert hello["type"] == "hello"
        assert hello["hub_id"] == hub.config.hub.id
        assert hello["user"] == {
            "id": client.user.id,
            "username": client.user.username,
            "role": "operator",
        }
        # State topics are replayed at once: the supervisor's view of the MQTT adapter.
        status = await _next(ws, "event", topic="hub.adapter.status", key="mqtt")
        assert status["payload"]["name"] == "mqtt"

        at = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
        sent = hub.bus.publish(
            SAMPLE,
            Sample(7, Light.GREEN, at, ("a", "b")),
            source="test",
            key="k1",
            correlation_id="c0ffee",
        )
        event = await _next(ws, "event", topic="test.sample")
    assert event == {
        "type": "event",
        "topic": "test.sample",
        "key": "k1",
        "source": "test",
        "time": sent.time.isoformat(),
        "correlation_id": "c0ffee",
        "payload": {
            "number": 7,
            "light": "green",
            "at": "2025-01-02T03:04:05+00:00",
            "tags": ["a", "b"],
            "note": "",
        },
    }


async def test_a_signed_out_client_is_refused_401(web_client: WebClient) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await web_client.ws_connect()
    assert refused.value.status == 401


async def test_a_cross_origin_page_is_refused(login_as: LoginAs) -> None:
    client = await login_as(Role.VIEWER)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect(origin="https://evil.example")
    assert refused.value.status == 403
    async with client.ws_connect(origin=client.base_url) as ws:
        assert (await ws.receive_json(timeout=RECEIVE_TIMEOUT))["type"] == "hello"


async def test_ping_gets_pong(login_as: LoginAs) -> None:
    client = await login_as(Role.VIEWER)
    async with client.ws_connect() as ws:
        await ws.send_json({"type": "ping"})
        assert await _next(ws, "pong") == {"type": "pong"}


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("not json at all", "invalid_json"),
        ('["ping"]', "bad_message"),
        ('{"kind": "ping"}', "bad_message"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"type": "subscribe", "topics": "test.sample"}', "invalid_field"),
        ('{"type": "subscribe", "topics": ["no spaces allowed"]}', "invalid_field"),
    ],
)
async def test_a_malformed_message_gets_an_error_and_the_socket_stays(
    login_as: LoginAs, message: str, code: str
) -> None:
    client = await login_as(Role.VIEWER)
    async with client.ws_connect() as ws:
        await ws.send_str(message)
        error = await _next(ws, "error")
        assert error["error"]["code"] == code
        assert set(error["error"]) == {"code", "message", "field"}
        await ws.send_json({"type": "ping"})
        await _next(ws, "pong")
        assert not ws.closed


async def test_subscribe_narrows_the_feed(hub: Hub, login_as: LoginAs) -> None:
    client = await login_as(Role.VIEWER)
    at = datetime.now(UTC)
    async with client.ws_connect() as ws:
        await ws.send_json({"type": "subscribe", "topics": ["test.other"]})
        assert await _next(ws, "subscribed") == {"type": "subscribed", "topics": ["test.other"]}
        hub.bus.publish(SAMPLE, Sample(1, Light.GREEN, at), source="test")
        hub.bus.publish(OTHER, Sample(2, Light.GREEN, at), source="test")
        event = await _next(ws, "event")
        assert event["topic"] == "test.other"
        assert event["payload"]["number"] == 2


async def test_channel_topics_reach_only_a_client_that_names_them(
    hub: Hub, login_as: LoginAs
) -> None:
    """Whatever units send on any channel stays off the default feed, so it cannot flood it."""
    client = await login_as(Role.VIEWER)
    at = datetime.now(UTC)
    channel_topics = [
        Topic("channel.event"),
        Topic("channel.radio.send"),
        Topic("channel.sat_2.cancel"),
        Topic("channel.any-new.send"),
    ]
    async with client.ws_connect() as ws:
        await _next(ws, "hello")
        for number, topic in enumerate(channel_topics):
            hub.bus.publish(topic, Sample(number, Light.GREEN, at), source="test")
        hub.bus.publish(SAMPLE, Sample(99, Light.GREEN, at), source="test")
        seen: list[str] = []
        while not seen or seen[-1] != "test.sample":
            seen.append((await _next(ws, "event"))["topic"])
        assert not [topic for topic in seen if topic.startswith("channel.")]

        await ws.send_json({"type": "subscribe", "topics": ["channel.event"]})
        await _next(ws, "subscribed")
        hub.bus.publish(channel_topics[0], Sample(5, Light.GREEN, at), source="test")
        event = await _next(ws, "event")
        assert (event["topic"], event["payload"]["number"]) == ("channel.event", 5)


async def test_a_flooding_client_is_closed_1008(login_as: LoginAs) -> None:
    client = await login_as(Role.VIEWER)
    async with client.ws_connect() as ws:
        for _ in range(CLIENT_BURST * 3):
            await ws.send_json({"type": "ping"})
        assert await _close_code(ws) == aiohttp.WSCloseCode.POLICY_VIOLATION


async def test_an_oversized_frame_is_closed_1009(login_as: LoginAs) -> None:
    client = await login_as(Role.VIEWER)
    async with client.ws_connect() as ws:
        await ws.send_str("x" * (MAX_CLIENT_MESSAGE + 1))
        assert await _close_code(ws) == aiohttp.WSCloseCode.MESSAGE_TOO_BIG


async def test_signing_out_closes_the_sessions_live_sockets(login_as: LoginAs) -> None:
    client = await login_as(Role.VIEWER)
    async with client.ws_connect() as ws:
        await _next(ws, "hello")
        reader = asyncio.create_task(_close_code(ws))
        async with client.post("/api/v1/auth/logout") as response:
            assert response.status == 204
        assert await reader == aiohttp.WSCloseCode.POLICY_VIOLATION


async def test_the_socket_closes_when_its_session_expires(hub: Hub, login_as: LoginAs) -> None:
    client = await login_as(Role.VIEWER)
    assert client.user is not None
    async with hub.pool.acquire() as conn:
        await conn.execute(
            "UPDATE sessions SET expires_at = now() + interval '1 second' WHERE user_id = $1",
            client.user.id,
        )
    async with client.ws_connect() as ws:
        await _next(ws, "hello")
        assert await _close_code(ws) == aiohttp.WSCloseCode.POLICY_VIOLATION
        assert ws.close_code == aiohttp.WSCloseCode.POLICY_VIOLATION


def _small_receive_buffer(addr_info: AddrInfoType) -> socket.socket:
    """A client socket with a tiny receive window, so a client that stops reading is felt soon."""
    family, kind, proto, _, _ = addr_info
    sock = socket.socket(family=family, type=kind, proto=proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return sock


async def _read_samples(ws: aiohttp.ClientWebSocketResponse, count: int) -> list[int]:
    numbers: list[int] = []
    while len(numbers) < count:
        message = await ws.receive()
        assert message.type is aiohttp.WSMsgType.TEXT, message
        data = message.json()
        if data["type"] == "event" and data["topic"] == "test.sample":
            numbers.append(data["payload"]["number"])
    return numbers


async def test_a_slow_client_is_closed_1013_and_never_holds_up_a_fast_one(
    make_hub_config: ConfigFactory,
) -> None:
    queue = 32
    events = 3000
    config = make_hub_config(web={"live_queue": queue})
    async with start_web_hub(config) as (hub, served):
        user, password = await create_user(hub, Role.VIEWER)
        async with (
            client_of(served) as fast,
            client_of(
                served, connector=aiohttp.TCPConnector(socket_factory=_small_receive_buffer)
            ) as slow,
        ):
            assert (await log_in(fast, user.username, password)).status == 200
            assert (await log_in(slow, user.username, password)).status == 200
            async with fast.ws_connect() as fast_ws, slow.ws_connect() as slow_ws:
                await _next(fast_ws, "hello")
                await _next(slow_ws, "hello")
                live_before = _live_subscribers(hub)
                assert len(live_before) == 2
                # The slow client reads nothing from here on.
                fast_reader = asyncio.create_task(_read_samples(fast_ws, events))
                note = "x" * 1000  # fill the slow client's buffers sooner
                at = datetime.now(UTC)
                for number in range(events):
                    hub.bus.publish(SAMPLE, Sample(number, Light.GREEN, at, note=note), source="t")
                    if number % (queue // 4) == 0:
                        await asyncio.sleep(0.001)  # a steady stream, not one burst
                received = await asyncio.wait_for(fast_reader, timeout=30)
                assert received == list(range(events))
                # The hub cut the slow one off on its own; the publisher never waited for it.
                assert len(_live_subscribers(hub)) == 1
                assert await _close_code(slow_ws) == aiohttp.WSCloseCode.TRY_AGAIN_LATER
                # The fast client is still served.
                await fast_ws.send_json({"type": "ping"})
                await _next(fast_ws, "pong")


def _live_subscribers(hub: Hub) -> list[str]:
    return [s.name for s in hub.bus.subscriptions if s.name.startswith("live:")]


async def test_shutdown_closes_live_sockets_going_away(make_hub_config: ConfigFactory) -> None:
    async with contextlib.AsyncExitStack() as clients:  # the client outlives the hub
        async with start_web_hub(make_hub_config()) as (hub, served):
            user, password = await create_user(hub, Role.VIEWER)
            client = await clients.enter_async_context(client_of(served))
            assert (await log_in(client, user.username, password)).status == 200
            ws = await clients.enter_async_context(client.ws_connect())
            await _next(ws, "hello")
            reader = asyncio.create_task(_close_code(ws))
        # Leaving the block stopped the server with the client still connected.
        assert await reader == aiohttp.WSCloseCode.GOING_AWAY
