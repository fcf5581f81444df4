"""The embedded amqtt broker: clean start/stop, real pub/sub, a clear error on a taken port."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys

import aiomqtt
import pytest

from devices.mqtt.broker import BrokerPortInUse, EmbeddedBroker
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
