"""The embedded amqtt broker: clean start/stop, real pub/sub, a clear error on a taken port."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys

import aiomqtt
import pytest

from devices.mqtt.broker import BrokerPortInUse, EmbeddedBroker, _SnapshotTable
from ops.core.errors import ConfigError
from tests.fixtures.broker import HOST, ROOT, free_port

pytestmark = pytest.mark.broker


async def test_start_stop_leaves_no_tasks_and_frees_the_port() -> None:
    before = asyncio.all_tasks()
    broker = EmbeddedBroker(HOST, free_port())
    await broker.start()
    assert broker.running
    # A client still connected when the broker stops must not keep any broker task alive.
    client = aiomqtt.Client(HOST, broker.port, identifier="embedded-stop-test")
    await client.__aenter__()
    await broker.stop()
    with pytest.raises(aiomqtt.MqttError):
        async for _ in client.messages:
            pass
    await client.__aexit__(None, None, None)
    await asyncio.sleep(0)  # aiomqtt cancels its housekeeping task on the next loop turn
    assert {t for t in asyncio.all_tasks() - before if not t.done()} == set()

    again = EmbeddedBroker(HOST, broker.port)  # the port is free again
    await again.start()
    await again.stop()
    assert not again.running


async def test_publish_and_subscribe_through_it() -> None:
    broker = EmbeddedBroker(HOST, free_port())
    await broker.start()
    try:
        async with (
            aiomqtt.Client(HOST, broker.port, identifier="embedded-pub") as pub,
            aiomqtt.Client(HOST, broker.port, identifier="embedded-sub") as sub,
        ):
            await pub.publish("t/retained", b"kept", qos=1, retain=True)
            await sub.subscribe("t/#", qos=1)
            await pub.publish("t/live", b"hello", qos=1)
            got = []
            async with asyncio.timeout(5):
                async for message in sub.messages:
                    got.append((message.topic.value, message.payload, message.retain))
                    if len(got) == 2:
                        break
    finally:
        await broker.stop()
    assert got == [("t/retained", b"kept", True), ("t/live", b"hello", False)]


async def test_taken_port_names_the_setting_to_change() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind((HOST, 0))
        squatter.listen(1)
        port = squatter.getsockname()[1]
        before = asyncio.all_tasks()
        broker = EmbeddedBroker(HOST, port)
        with pytest.raises(BrokerPortInUse) as caught:
            await broker.start()
    assert isinstance(caught.value, ConfigError)
    assert "embedded_port" in str(caught.value)
    assert "POSKO_MQTT__EMBEDDED_PORT" in str(caught.value)
    assert str(port) in str(caught.value)
    assert not broker.running
    assert asyncio.all_tasks() - before == set()


def test_command_line_reports_a_taken_port() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind((HOST, 0))
        squatter.listen(1)
        port = squatter.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "devices.mqtt.broker", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            cwd=ROOT,
        )
    assert done.returncode == 2
    assert "embedded_port" in done.stderr
    assert done.stdout == ""


async def test_a_new_client_gets_no_retained_message_it_did_not_subscribe_to() -> None:
    """amqtt replays retained messages of every client's subscriptions to each new client;
    the embedded broker sends a client only what matches its own subscriptions."""
    broker = EmbeddedBroker(HOST, free_port())
    await broker.start()
    try:
        async with (
            aiomqtt.Client(HOST, broker.port, identifier="holder") as holder,
            aiomqtt.Client(HOST, broker.port, identifier="other") as other,
        ):
            await holder.publish("a/status", b"online", qos=1, retain=True)
            await holder.subscribe("a/#", qos=1)
            await other.subscribe("b/#", qos=1)
            async with aiomqtt.Client(HOST, broker.port, identifier="newcomer") as newcomer:
                await newcomer.subscribe("b/#", qos=1)
                await holder.publish("b/ping", b"1", qos=1)
                async with asyncio.timeout(5):
                    message = await anext(newcomer.messages)
    finally:
        await broker.stop()
    assert (message.topic.value, message.payload) == ("b/ping", b"1")


async def test_many_clients_connecting_and_subscribing_at_once_all_stay_connected() -> None:
    """amqtt walks its subscription table across awaits when a client connects, so another
    client subscribing meanwhile used to drop the connection ("dictionary changed size")."""
    broker = EmbeddedBroker(HOST, free_port())
    await broker.start()
    newcomers = 40

    async def one(index: int) -> bytes:
        async with aiomqtt.Client(HOST, broker.port, identifier=f"new-{index}") as client:
            await client.subscribe(f"held/{index % 20}/status", qos=1)
            async with asyncio.timeout(10):
                message = await anext(client.messages)
            return bytes(message.payload)

    try:
        async with contextlib.AsyncExitStack() as stack:
            for index in range(20):  # devices with a retained status, each subscribed to its own
                holder = await stack.enter_async_context(
                    aiomqtt.Client(HOST, broker.port, identifier=f"held-{index}")
                )
                await holder.publish(f"held/{index}/status", b"online", qos=1, retain=True)
                await holder.subscribe(f"held/{index}/cmd", qos=1)
            got = await asyncio.gather(*(one(index) for index in range(newcomers)))
    finally:
        await broker.stop()
    assert got == [b"online"] * newcomers


def test_the_subscription_table_can_change_while_it_is_walked() -> None:
    """What amqtt does across an await: walk the table while another client subscribes."""
    table = _SnapshotTable({"a/#": [], "b/#": []})
    walked = []
    for topic in table:
        table[f"{topic}/more"] = []
        walked.append(topic)
    for topic, subscribers in table.items():
        assert subscribers == []
        table.pop(topic)
    assert walked == ["a/#", "b/#"]
    assert table == {}
