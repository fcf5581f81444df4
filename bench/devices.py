"""Device health under load: 10,000 simulated devices sending telemetry every second.

Figures, each beside a baseline measured in the same run with the same client library (aiomqtt,
which the hub's link uses):

- ``device_telemetry_processed_per_s``: telemetry messages the hub turned into evaluated health
  reports per second, beside a bare aiomqtt subscriber's receive rate for the same load (the
  broker's own rate with that client);
- ``device_state_change_delay_ms``: from a device's ``offline`` status leaving the device to the
  hub's ``device.health`` change (hysteresis 0), median, beside the same client's bare
  publish-to-receive delay through the broker under the same load;
- ``device_cpu_per_message_us``: CPU time of the hub's process per processed message (MQTT
  receive, checks, bus, health rules, registry, history), beside the bare subscriber's CPU per
  received message. Unlike the rate it does not depend on what else the machine runs.

The load comes from another process (paho, threaded) so it does not share the hub's interpreter.
With ``POSKO_MQTT__URL`` set the configured broker is used (Mosquitto here); otherwise the embedded
amqtt broker, which tops out near 2.6k msg/s on its own, so both figures are then the broker's.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import resource
import secrets
import socket
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
import asyncpg

from bench.report import Figure, emit, parser
from devices.mqtt.broker import EmbeddedBroker
from ops.app import Hub
from ops.core.config import Config
from ops.devicehealth import service_of
from ops.devicehealth.events import DEVICE_HEALTH

DEVICES = 10_000
PROBES = 20
DRAIN = 5.0
PROBE_TIMEOUT = 10.0


def _publish_load(  # noqa: PLR0917 - a process target takes positional args
    host: str, port: int, prefix: str, devices: int, seconds: float, started: EventType
) -> None:
    """Child process: every device sends one telemetry message per second, evenly spread."""
    import json  # noqa: PLC0415 - the child imports what it needs

    import paho.mqtt.client as mqtt  # noqa: PLC0415

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-load-{os.getpid()}")
    client.max_queued_messages_set(0)
    client.connect(host, port, keepalive=60)
    client.loop_start()
    topics = [f"{prefix}/devices/bench-{n}/telemetry".encode() for n in range(devices)]
    slices = 20
    per_slice = max(1, devices // slices)
    started.set()
    begin = time.perf_counter()
    sent = 0
    while time.perf_counter() - begin < seconds:
        second = time.perf_counter()
        for index in range(slices):
            now = time.time()
            for topic in topics[index * per_slice : (index + 1) * per_slice]:
                body = json.dumps({"ts": now, "battery_pct": 80, "rssi_dbm": -60})
                client.publish(topic.decode(), body, qos=0)
                sent += 1
            pause = second + (index + 1) / slices - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
    client.loop_stop()
    client.disconnect()


@contextlib.asynccontextmanager
async def load(
    host: str, port: int, prefix: str, devices: int, seconds: float
) -> AsyncIterator[None]:
    """Run the load process for ``seconds``; yield once it is publishing."""
    context = multiprocessing.get_context("spawn")
    started = context.Event()
    process = context.Process(
        target=_publish_load, args=(host, port, prefix, devices, seconds, started), daemon=True
    )
    process.start()
    try:
        if not await asyncio.to_thread(started.wait, 30):
            raise RuntimeError("the load process did not start")
        yield
    finally:
        await asyncio.to_thread(process.join, seconds + 30)
        if process.is_alive():
            process.kill()


async def _probe_delays(host: str, port: int, prefix: str, count: int, receive: Any) -> list[float]:
    """Publish ``count`` offline statuses; ``receive(device_id)`` waits for its effect."""
    delays = []
    async with aiomqtt.Client(
        host, port, identifier=f"bench-probe-{secrets.token_hex(3)}"
    ) as client:
        for n in range(count):
            device_id = f"probe-{secrets.token_hex(4)}-{n}"
            await client.publish(f"{prefix}/devices/{device_id}/status", b"online", qos=1)
            try:
                await receive(device_id, "online")
            except TimeoutError:
                continue  # the probe device never came up: nothing to time
            began = time.perf_counter()
            await client.publish(f"{prefix}/devices/{device_id}/status", b"offline", qos=1)
            with contextlib.suppress(TimeoutError):  # a lost probe counts as the time waited
                await receive(device_id, "offline")
            delays.append(time.perf_counter() - began)
            await asyncio.sleep(0.05)
    return delays or [PROBE_TIMEOUT]


def _cpu() -> float:
    """CPU seconds this process (the hub or the bare subscriber, not the load) has used."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _settle(count: Callable[[], int], began: float, seconds: float) -> float:
    """Wait until the count stops growing after the load; return the seconds it was growing.

    A receiver that falls behind loses what the broker drops, so the rate is what it processed
    over the time it was processing, not what was offered.
    """
    last, last_change = count(), time.perf_counter()
    deadline = began + seconds + DRAIN
    while time.perf_counter() < deadline:
        await asyncio.sleep(0.1)
        now = count()
        if now != last:
            last, last_change = now, time.perf_counter()
        elif time.perf_counter() - began > seconds and time.perf_counter() - last_change > 1.0:
            break
    return max(last_change - began, 1e-3)


async def baseline(
    host: str, port: int, devices: int, seconds: float
) -> tuple[float, float, float]:
    """A bare aiomqtt subscriber under the same load: msg/s and probe delay (s)."""
    prefix = f"bench-base-{secrets.token_hex(3)}"
    received = 0
    waiting: dict[tuple[str, str], asyncio.Event] = {}
    async with aiomqtt.Client(host, port, identifier=f"bench-base-{secrets.token_hex(3)}") as sub:
        await sub.subscribe(f"{prefix}/devices/+/telemetry", qos=0)
        await sub.subscribe(f"{prefix}/devices/+/status", qos=1)

        async def read() -> None:
            nonlocal received
            async for message in sub.messages:
                parts = message.topic.value.split("/")
                if parts[-1] == "telemetry":
                    received += 1
                else:
                    status = bytes(message.payload).decode()  # type: ignore[arg-type]
                    waiting.setdefault((parts[-2], status), asyncio.Event()).set()

        async def receive(device_id: str, status: str) -> None:
            event = waiting.setdefault((device_id, status), asyncio.Event())
            async with asyncio.timeout(PROBE_TIMEOUT):
                await event.wait()

        reader = asyncio.create_task(read())
        try:
            async with load(host, port, prefix, devices, seconds):
                began, cpu = time.perf_counter(), _cpu()
                delays = await _probe_delays(host, port, prefix, PROBES, receive)
                elapsed = await _settle(lambda: received, began, seconds)
                cpu = _cpu() - cpu
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
    return received / elapsed, statistics.median(delays), cpu / max(received, 1)


@contextlib.asynccontextmanager
async def database() -> AsyncIterator[str | None]:
    """A throwaway database on the configured server (dropped after), or None: embedded."""
    server = os.environ.get("POSKO_DATABASE__URL")
    if not server:
        yield None
        return
    name = f"posko_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    finally:
        await admin.close()
    try:
        yield urlsplit(server)._replace(path="/" + name).geturl()
    finally:
        admin = await asyncpg.connect(server)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@contextlib.asynccontextmanager
async def hub_for(host: str, port: int, data_dir: Path) -> AsyncIterator[Hub]:
    """A hub on the broker and the configured (or embedded) database, hysteresis 0."""
    prefix = f"bench-hub-{secrets.token_hex(3)}"
    async with database() as database_url, _hub(host, port, data_dir, prefix, database_url) as hub:
        yield hub


@contextlib.asynccontextmanager
async def _hub(
    host: str, port: int, data_dir: Path, prefix: str, database_url: str | None
) -> AsyncIterator[Hub]:
    config = Config.model_validate(
        {
            "hub": {"id": f"bench-{secrets.token_hex(3)}", "data_dir": data_dir},
            "database": {"url": database_url},
            "mqtt": {"url": f"mqtt://{host}:{port}", "prefix": prefix},
            "devices": {
                "hysteresis": 0.0,
                "offline_after": 30.0,
                "rate_per_device": 10.0,
                "register_unknown": True,  # the fleet sends telemetry only, never a config
            },
        }
    )
    async with Hub(config) as hub:
        async with asyncio.timeout(15):
            while not hub.mqtt.connected:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        yield hub


async def through_hub(
    host: str, port: int, devices: int, seconds: float
) -> tuple[float, float, float]:
    """The hub under the load: telemetry reports evaluated per second and probe delay (s)."""
    with tempfile.TemporaryDirectory(prefix="posko-bench-") as tmp:
        async with hub_for(host, port, Path(tmp)) as hub:
            service = service_of(hub).service
            prefix = hub.config.mqtt.prefix
            changes = hub.bus.subscribe(
                DEVICE_HEALTH, maxsize=100_000, name="bench", replay_state=False
            )
            seen: dict[tuple[str, str], asyncio.Event] = {}

            async def watch() -> None:
                async for envelope in changes:
                    change = envelope.payload
                    seen.setdefault((change.device_id, change.state), asyncio.Event()).set()

            async def receive(device_id: str, status: str) -> None:
                event = seen.setdefault((device_id, status), asyncio.Event())
                async with asyncio.timeout(PROBE_TIMEOUT):
                    await event.wait()

            watcher = asyncio.create_task(watch())
            try:
                # Warm up: every device seen once and stored, so the figure is the steady state.
                async with load(host, port, prefix, devices, 1.0):
                    pass
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(DRAIN):
                        while len(service.devices) < devices:  # noqa: ASYNC110
                            await asyncio.sleep(0.05)
                        await service.wait_idle()
                before = service.reports
                async with load(host, port, prefix, devices, seconds):
                    began, cpu = time.perf_counter(), _cpu()
                    delays = await _probe_delays(host, port, prefix, PROBES, receive)
                    elapsed = await _settle(lambda: service.reports, began, seconds)
                    cpu = _cpu() - cpu
                processed = service.reports - before - 2 * PROBES
            finally:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
                changes.close()
    return processed / elapsed, statistics.median(delays), cpu / max(processed, 1)


@contextlib.asynccontextmanager
async def broker() -> AsyncIterator[tuple[str, int]]:
    """The configured broker, or an embedded one on a free port."""
    url = os.environ.get("POSKO_MQTT__URL")
    if url:
        parts = urlsplit(url)
        yield parts.hostname or "127.0.0.1", parts.port or 1883
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    embedded = EmbeddedBroker("127.0.0.1", port)
    await embedded.start()
    try:
        yield "127.0.0.1", port
    finally:
        await embedded.stop()


async def main(quick: bool) -> list[Figure]:
    seconds = 4.0 if quick else 20.0
    async with broker() as (host, port):
        base_rate, base_delay, base_cpu = await baseline(host, port, DEVICES, seconds)
        hub_rate, hub_delay, hub_cpu = await through_hub(host, port, DEVICES, seconds)
    return [
        Figure(
            name="device_telemetry_processed_per_s",
            value=hub_rate,
            unit="msg/s",
            baseline=base_rate,
            higher_is_better=True,
        ),
        Figure(
            name="device_state_change_delay_ms",
            value=hub_delay * 1000,
            unit="ms",
            baseline=base_delay * 1000,
            higher_is_better=False,
        ),
        Figure(
            name="device_cpu_per_message_us",
            value=hub_cpu * 1e6,
            unit="µs",
            baseline=base_cpu * 1e6,
            higher_is_better=False,
        ),
    ]


if __name__ == "__main__":
    args = parser(__doc__ or "").parse_args()
    emit(asyncio.run(main(args.quick)), as_json=args.json)
