"""The hub's MQTT link against a real broker: status, dispatch, reconnects, the will, heartbeats."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiomqtt
import pytest
from amqtt.broker import Broker

from devices.mqtt.link import MqttLink, MqttMessage, MqttNotConnected
from ops.core.adapter import AdapterContext
from ops.core.bus import Bus, Subscription
from ops.core.errors import AdapterAuthError, AdapterNotReady
from ops.core.events import ADAPTER_STATUS, AdapterState
from ops.core.supervisor import RestartPolicy, Supervisor
from tests.fixtures.broker import HOST, ROOT, BrokerProcessFactory, free_port

pytestmark = pytest.mark.broker

FAST = RestartPolicy(initial=0.1, cap=0.5)
WAIT = 10.0


@dataclass
class Running:
    link: MqttLink
    supervisor: Supervisor
    statuses: Subscription


def new_link(
    host: str,
    port: int,
    prefix: str,
    *,
    heartbeat_interval: float = 5.0,
    handler_timeout: float = 2.0,
    connect_timeout: float = 5.0,
) -> MqttLink:
    hub_id = f"hub-{secrets.token_hex(3)}"
    return MqttLink(
        host=host,
        port=port,
        client_id=f"{prefix}-{hub_id}",
        prefix=prefix,
        hub_id=hub_id,
        heartbeat_interval=heartbeat_interval,
        handler_timeout=handler_timeout,
        connect_timeout=connect_timeout,
    )


@contextlib.asynccontextmanager
async def supervised(link: MqttLink) -> AsyncIterator[Running]:
    bus = Bus()
    bus.bind(asyncio.get_running_loop())
    supervisor = Supervisor(bus, FAST)
    async with bus.subscribe(ADAPTER_STATUS, replay_state=False) as statuses:
        supervisor.start(link)
        try:
            await wait_state(statuses, AdapterState.RUNNING)
            yield Running(link, supervisor, statuses)
        finally:
            await supervisor.stop_all()


async def wait_state(statuses: Subscription, state: AdapterState) -> str:
    """Wait for the link's next status in ``state``; return its detail."""
    async with asyncio.timeout(WAIT):
        while True:
            envelope = await statuses.get()
            if envelope.payload.name == "mqtt" and envelope.payload.state is state:
                return str(envelope.payload.detail)


@contextlib.asynccontextmanager
async def observer(host: str, port: int, *filters: str) -> AsyncIterator[aiomqtt.Client]:
    """A plain aiomqtt client beside the link, subscribed to ``filters``."""
    async with aiomqtt.Client(host, port, identifier=f"observer-{secrets.token_hex(4)}") as client:
        for topic_filter in filters:
            await client.subscribe(topic_filter, qos=1)
        yield client


async def next_payload(client: aiomqtt.Client, topic: str) -> tuple[bytes, bool]:
    async with asyncio.timeout(WAIT):
        async for message in client.messages:
            if message.topic.value == topic:
                return bytes(message.payload), message.retain
    raise AssertionError("unreachable")


def collector() -> tuple[Callable[[MqttMessage], None], asyncio.Queue[MqttMessage]]:
    queue: asyncio.Queue[MqttMessage] = asyncio.Queue()
    return queue.put_nowait, queue


async def next_message(queue: asyncio.Queue[MqttMessage]) -> MqttMessage:
    return await asyncio.wait_for(queue.get(), WAIT)


def is_connected(link: MqttLink) -> bool:
    """Read the flag through a call, so the type checker does not pin it after an assert."""
    return link.connected


def leftover_client_tasks(before: set[asyncio.Task[object]]) -> set[asyncio.Task[object]]:
    """Tasks started since ``before`` that are still pending, the embedded broker's excepted."""
    return {
        task
        for task in asyncio.all_tasks() - before
        if not task.done() and "/amqtt/" not in source_file(task)
    }


def source_file(task: asyncio.Task[object]) -> str:
    code = getattr(task.get_coro(), "cr_code", None)
    return "" if code is None else str(code.co_filename)


async def forget_status(host: str, port: int, link: MqttLink) -> None:
    """Clear the retained status so a shared broker is left as it was found."""
    async with aiomqtt.Client(host, port, identifier=f"cleaner-{secrets.token_hex(4)}") as client:
        await client.publish(link.status_topic, b"", qos=1, retain=True)


async def test_online_status_dispatch_publish_and_graceful_offline(
    mqtt_broker: tuple[str, int], mqtt_prefix: str
) -> None:
    host, port = mqtt_broker
    link = new_link(host, port, mqtt_prefix, heartbeat_interval=0.2)
    handler, received = collector()
    link.subscribe(link.topic("devices", "+", "telemetry"), handler)
    before = asyncio.all_tasks()
    try:
        async with supervised(link) as running:
            assert is_connected(link)
            async with observer(
                host, port, link.status_topic, link.heartbeat_topic, link.topic("units", "#")
            ) as other:
                assert await next_payload(other, link.status_topic) == (b"online", True)
                assert await next_payload(other, link.heartbeat_topic) == (b"", False)

                await other.publish(link.topic("devices", "d1", "telemetry"), b'{"ts":1}', qos=1)
                message = await next_message(received)
                assert message == MqttMessage(
                    link.topic("devices", "d1", "telemetry"), b'{"ts":1}', qos=1, retain=False
                )

                # A filter added while connected is subscribed at once: the retained message
                # arriving proves the subscription.
                panic_topic = link.topic("panic", "p7")
                await other.publish(panic_topic, b"pressed", qos=1, retain=True)
                panic, panics = collector()
                link.subscribe(link.topic("panic", "+"), panic, qos=0)
                message = await next_message(panics)
                assert (message.payload, message.retain) == (b"pressed", True)
                await other.publish(panic_topic, b"", qos=1, retain=True)

                await link.publish(link.topic("units", "u1", "orders"), "go", qos=1)
                assert await next_payload(other, link.topic("units", "u1", "orders")) == (
                    b"go",
                    False,
                )
                assert link.messages_out == 1
                assert link.messages_in >= 2

                await running.supervisor.stop("mqtt")
                assert await next_payload(other, link.status_topic) == (b"offline", False)
                assert not is_connected(link)
                assert await wait_state(running.statuses, AdapterState.STOPPED) == ""
            async with observer(host, port, link.status_topic) as late:
                assert await next_payload(late, link.status_topic) == (b"offline", True)
    finally:
        await forget_status(host, port, link)
    await asyncio.sleep(0)
    assert leftover_client_tasks(before) == set()


async def test_a_filter_added_while_connected_is_in_force_once_subscribed_says_so(
    mqtt_broker: tuple[str, int], mqtt_prefix: str
) -> None:
    """The field may publish the moment the hub says it started: nothing sent after
    ``wait_subscribed()`` returns is lost, on a slow broker (the embedded one) too."""
    host, port = mqtt_broker
    link = new_link(host, port, mqtt_prefix)
    try:
        async with supervised(link), observer(host, port) as field:
            async with asyncio.timeout(WAIT):
                await link.wait_subscribed()
            handler, received = collector()
            link.subscribe(link.topic("units", "+", "events"), handler)
            assert not link.subscribed  # registered, not yet granted
            async with asyncio.timeout(WAIT):
                await link.wait_subscribed()
            assert link.subscribed
            # Published at once, QoS 0 and not retained: only a subscription in force gets it.
            await field.publish(link.topic("units", "u1", "events"), b"first", qos=0)
            assert (await next_message(received)).payload == b"first"
        assert not link.subscribed
    finally:
        await forget_status(host, port, link)


async def test_publish_without_a_connection_raises(
    mqtt_broker: tuple[str, int], mqtt_prefix: str
) -> None:
    host, port = mqtt_broker
    link = new_link(host, port, mqtt_prefix)
    assert not is_connected(link)
    with pytest.raises(MqttNotConnected):
        await link.publish(link.topic("x"), b"nobody listens")
    assert link.messages_out == 0


@pytest.mark.allow_error_log(match=["MQTT handler for"])
async def test_failing_and_slow_handlers_do_not_stop_delivery(
    mqtt_broker: tuple[str, int], mqtt_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    host, port = mqtt_broker
    link = new_link(host, port, mqtt_prefix, handler_timeout=0.1)
    topic_filter = link.topic("devices", "+", "events")

    def broken(message: MqttMessage) -> None:
        raise ValueError(message.topic)

    async def stuck(_: MqttMessage) -> None:
        await asyncio.Event().wait()

    healthy, received = collector()
    link.subscribe(topic_filter, broken)
    link.subscribe(topic_filter, stuck)
    link.subscribe(topic_filter, healthy)
    caplog.set_level(logging.ERROR, logger="devices.mqtt.link")
    try:
        async with supervised(link), observer(host, port) as other:
            for n in range(3):
                await other.publish(link.topic("devices", f"d{n}", "events"), str(n), qos=1)
            payloads = [(await next_message(received)).payload for _ in range(3)]
            assert payloads == [b"0", b"1", b"2"]
            assert link.handler_errors == 6
            assert is_connected(link)
    finally:
        await forget_status(host, port, link)
    failures = [r for r in caplog.records if r.name == "devices.mqtt.link"]
    assert len(failures) == 2  # once per handler and exception type, not per message
    assert {r.exc_info[0] for r in failures if r.exc_info} == {ValueError, TimeoutError}


async def test_reconnects_and_resubscribes_after_the_broker_is_killed(
    broker_process: BrokerProcessFactory, mqtt_prefix: str
) -> None:
    broker = await broker_process()
    link = new_link(broker.host, broker.port, mqtt_prefix, heartbeat_interval=0.5)
    handler, received = collector()
    link.subscribe(link.topic("units", "+", "events"), handler)
    async with supervised(link) as running:
        async with observer(broker.host, broker.port) as other:
            await other.publish(link.topic("units", "u1", "events"), b"before", qos=1)
            assert (await next_message(received)).payload == b"before"

        broker.kill()
        detail = await wait_state(running.statuses, AdapterState.BACKOFF)
        assert "AdapterNotReady" in detail
        assert not is_connected(link)
        with pytest.raises(MqttNotConnected):
            await link.publish(link.topic("units", "u1", "orders"), b"lost")

        await broker.restart()
        await wait_state(running.statuses, AdapterState.RUNNING)
        assert is_connected(link)
        async with observer(broker.host, broker.port, link.status_topic) as other:
            assert await next_payload(other, link.status_topic) == (b"online", True)
            await other.publish(link.topic("units", "u2", "events"), b"after", qos=1)
            message = await next_message(received)
        assert (message.topic, message.payload) == (link.topic("units", "u2", "events"), b"after")
        assert running.supervisor.status["mqtt"].restarts >= 1


async def test_half_dead_broker_goes_stale_and_recovers(
    broker_process: BrokerProcessFactory, mqtt_prefix: str
) -> None:
    broker = await broker_process()
    link = new_link(
        broker.host, broker.port, mqtt_prefix, heartbeat_interval=0.2, connect_timeout=1.0
    )
    before = asyncio.all_tasks()
    async with supervised(link) as running:
        broker.pause()  # sockets stay open, nothing is acknowledged
        try:
            detail = await wait_state(running.statuses, AdapterState.BACKOFF)
        finally:
            broker.resume()
        assert "AdapterStale" in detail
        await wait_state(running.statuses, AdapterState.RUNNING)
        assert is_connected(link)
    await asyncio.sleep(0)
    assert leftover_client_tasks(before) == set()


async def test_failed_or_cancelled_connect_leaves_nothing_behind(mqtt_prefix: str) -> None:
    """A broker that accepts TCP but never answers CONNECT (a stalled or overloaded broker)."""
    heard: asyncio.Queue[bytes] = asyncio.Queue()
    closed: asyncio.Queue[bytes] = asyncio.Queue()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heard.put_nowait(await reader.read(1))  # CONNECT began: the client waits for CONNACK
        closed.put_nowait(await reader.read())  # returns once the client closes its socket
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(silent, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    before = asyncio.all_tasks()
    try:
        link = new_link(HOST, port, mqtt_prefix, connect_timeout=0.3)
        with pytest.raises(AdapterNotReady, match="timed out"):
            await link.run(AdapterContext("mqtt", Bus()))
        assert await asyncio.wait_for(heard.get(), WAIT) == b"\x10"  # CONNECT
        await asyncio.wait_for(closed.get(), WAIT)

        run = asyncio.create_task(link.run(AdapterContext("mqtt", Bus())))
        assert await asyncio.wait_for(heard.get(), WAIT) == b"\x10"
        run.cancel()  # while it waits for the CONNACK
        with pytest.raises(asyncio.CancelledError):
            await run
        await asyncio.wait_for(closed.get(), WAIT)
        await asyncio.sleep(0)
        assert not is_connected(link)
        assert leftover_client_tasks(before) == set()
    finally:
        server.close()
        await server.wait_closed()


CHILD = """
import asyncio, sys
from devices.mqtt.link import MqttLink
from ops.core.adapter import AdapterContext
from ops.core.bus import Bus

async def main() -> None:
    host, port, prefix, hub_id = sys.argv[1:5]
    link = MqttLink(host=host, port=int(port), client_id=f"{prefix}-{hub_id}", prefix=prefix,
                    hub_id=hub_id)
    ready = lambda: print("running", flush=True)
    await link.run(AdapterContext("mqtt", Bus(), on_first_heartbeat=ready))

asyncio.run(main())
"""


async def test_last_will_marks_a_killed_hub_offline(
    mqtt_broker: tuple[str, int], mqtt_prefix: str
) -> None:
    host, port = mqtt_broker
    hub_id = f"hub-{secrets.token_hex(3)}"
    status = f"{mqtt_prefix}/hub/{hub_id}/status"
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        host,
        str(port),
        mqtt_prefix,
        hub_id,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    assert child.stdout is not None
    try:
        async with observer(host, port, status) as other:
            line = await asyncio.wait_for(child.stdout.readline(), WAIT)
            assert line == b"running\n"
            assert await next_payload(other, status) == (b"online", False)
            child.send_signal(signal.SIGKILL)
            await child.wait()
            assert await next_payload(other, status) == (b"offline", False)
        async with observer(host, port, status) as late:
            assert await next_payload(late, status) == (b"offline", True)
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
        await child.stdout.read()
        async with aiomqtt.Client(host, port, identifier=f"cleaner-{hub_id}") as client:
            await client.publish(status, b"", qos=1, retain=True)


@pytest.mark.allow_error_log(match=["refused the credentials"])
async def test_refused_credentials_raise_auth_error(mqtt_prefix: str) -> None:
    port = free_port()
    broker = Broker(
        {
            "listeners": {"default": {"type": "tcp", "bind": f"{HOST}:{port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": False}
            },
        }
    )
    await broker.start()
    try:
        link = new_link(HOST, port, mqtt_prefix)
        with pytest.raises(AdapterAuthError, match="refused the credentials"):
            await link.run(AdapterContext("mqtt", Bus()))
        assert not is_connected(link)

        bus = Bus()
        supervisor = Supervisor(bus, FAST)
        async with bus.subscribe(ADAPTER_STATUS) as statuses:
            supervisor.start(link)
            detail = await wait_state(statuses, AdapterState.FAILED)
        assert "AdapterAuthError" in detail
        await supervisor.stop_all()
    finally:
        await broker.shutdown()
