"""Device health when things go wrong: refused rows, late announcements, silence, outages."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import aiomqtt
import pytest

from db import devices as device_rows
from db import health_samples
from ops.app import Hub
from ops.core.events import DEVICE_REPORTED, AdapterState, DeviceReported
from ops.devicehealth import service_of
from tests.fixtures.broker import BrokerProcessFactory
from tests.fixtures.clock import SteppedClock
from tests.fixtures.devices import register_device
from tests.fixtures.hub import TEST_RESTART_POLICY, ConfigFactory, unique_name
from tests.integration.test_devices_health import WAIT, devices_hub, simulated, state, until
from tests.polling import eventually

pytestmark = [pytest.mark.postgres, pytest.mark.broker]


async def test_a_refused_row_does_not_block_other_devices(
    device_hub_config: ConfigFactory,
) -> None:
    async with devices_hub(device_hub_config, sample_every=0.0) as hub:
        parts = service_of(hub)
        bad = unique_name("nul")
        # PostgreSQL refuses a NUL character in a jsonb text; another adapter could send one.
        hub.bus.publish(
            DEVICE_REPORTED,
            DeviceReported(bad, "mqtt_sensor", {"note": "a\u0000b", "battery_pct": 70}),
            source="test-adapter",
            key=bad,
        )
        await until(lambda: state(hub, bad) == "online")
        # Its rows reach the database and are refused.
        await until(lambda: parts.service.refused >= 1 and parts.history.refused >= 1)
        good = simulated(hub, interval=None)
        await good.start()
        await good.send_telemetry({"battery_pct": 55})
        await until(
            lambda: parts.service.entry(good.device_id).health.figures.get("battery_pct") == 55
        )
        async with asyncio.timeout(WAIT):
            await parts.service.wait_idle()

        async def stored() -> tuple[Any, int]:
            async with hub.pool.acquire() as conn:
                row = await conn.fetchrow(
                    "SELECT state, figures FROM devices WHERE id = $1", good.device_id
                )
                count = await conn.fetchval(
                    "SELECT count(*) FROM health_samples WHERE device_id = $1", good.device_id
                )
            return row, count

        async def stored_online() -> Any:
            row, count = await stored()
            return row if row is not None and row["state"] == "online" and count >= 1 else None

        row = await eventually(stored_online, timeout=WAIT, interval=0.1)
        assert row["figures"]["battery_pct"] == 55, (row, parts.service.refused)
        assert parts.history.pending() == 0
        assert parts.service.refused >= 1
        assert parts.history.refused >= 1
        await good.stop()


async def test_a_late_announcement_sets_the_kind_in_memory_and_in_the_database(
    device_hub_config: ConfigFactory,
) -> None:
    config = device_hub_config(devices={"hysteresis": 0.3, "offline_after": 30.0})
    host, port = config.mqtt.host_port
    device_id = unique_name("cam")
    base = f"{config.mqtt.prefix}/devices/{device_id}"
    async with aiomqtt.Client(host, port) as client:
        # Retained replay brings them in this order: status first, then config.
        await client.publish(f"{base}/status", b"online", qos=1, retain=True)
        await client.publish(f"{base}/config", json.dumps({"kind": "camera"}), qos=1, retain=True)
    try:
        async with Hub(config, restart_policy=TEST_RESTART_POLICY) as hub:
            parts = service_of(hub)
            await until(lambda: state(hub, device_id) == "online")
            await until(lambda: parts.service.entry(device_id).kind == "camera")
            assert parts.service.entry(device_id).health.kind == "camera"
            async with aiomqtt.Client(host, port) as client:
                await client.publish(f"{base}/telemetry", json.dumps({"fps": 1}), qos=1)
            # The camera's own rule (fps < 5), which a generic sensor does not have.
            await until(lambda: state(hub, device_id) == "degraded")
            await parts.service.wait_idle()
            async with hub.pool.acquire() as conn:
                row = await device_rows.get_device(conn, device_id)
            assert row is not None
            assert (row.kind, row.state) == ("camera", "degraded")
    finally:
        async with aiomqtt.Client(host, port) as client:
            await client.publish(f"{base}/status", b"", qos=1, retain=True)
            await client.publish(f"{base}/config", b"", qos=1, retain=True)


async def test_a_configured_device_never_heard_from_goes_offline(
    device_hub_config: ConfigFactory,
) -> None:
    config = device_hub_config(devices={"hysteresis": 0.3, "offline_after": 1.0})
    loaded = unique_name("mute")
    async with (
        Hub(config, restart_policy=TEST_RESTART_POLICY) as first,
        first.pool.acquire() as conn,
    ):
        await register_device(conn, loaded)
    async with Hub(config, restart_policy=TEST_RESTART_POLICY) as hub:
        parts = service_of(hub)
        assert state(hub, loaded) == "unknown"
        later = unique_name("mute")
        async with hub.pool.acquire() as conn:
            row = await register_device(conn, later)
        parts.service.registered(row)
        began = asyncio.get_running_loop().time()
        await until(lambda: state(hub, later) == "offline")
        assert asyncio.get_running_loop().time() - began >= 0.9
        await until(lambda: state(hub, loaded) == "offline")
        await parts.service.wait_idle()
        await until(
            lambda: (
                {(a.device_id, a.code) for a in parts.service.open_alarms.values()}
                >= {(loaded, "offline"), (later, "offline")}
            )
        )


async def test_a_broker_outage_pauses_silence(
    device_hub_config: ConfigFactory, broker_process: BrokerProcessFactory
) -> None:
    broker = await broker_process()
    window = 2.0
    config = device_hub_config(
        devices={"hysteresis": 0.0, "offline_after": window},
        mqtt={"url": f"mqtt://{broker.host}:{broker.port}"},
    )
    clock = SteppedClock()
    async with Hub(config, restart_policy=TEST_RESTART_POLICY, clock=clock) as hub:
        parts = service_of(hub)
        await until(lambda: link_running(hub))
        base = f"{config.mqtt.prefix}/devices"
        talker, mute = unique_name("talker"), unique_name("mute")

        async def send(*ids: str, announce: bool = False) -> None:
            async with aiomqtt.Client(broker.host, broker.port) as client:
                for device_id in ids:
                    if announce:
                        config_message = json.dumps({"kind": "mqtt_sensor"})
                        await client.publish(f"{base}/{device_id}/config", config_message, qos=1)
                    await client.publish(
                        f"{base}/{device_id}/telemetry", json.dumps({"battery_pct": 80}), qos=1
                    )

        await send(talker, mute, announce=True)
        await until(lambda: state(hub, talker) == state(hub, mute) == "online")
        broker.kill()
        await until(lambda: hub.supervisor.status["mqtt"].state is not AdapterState.RUNNING)
        evaluator = parts.service.evaluator
        await until(lambda: evaluator.silence_paused)
        # Two whole windows of silence go by while the link is down, and are judged.
        two_windows_on = clock.advance(window * 2)
        await until(lambda: (evaluator.judged_at or 0.0) >= two_windows_on)
        assert state(hub, talker) == state(hub, mute) == "online"
        assert not [a for a in parts.service.open_alarms.values() if a.device_id in {talker, mute}]

        await broker.start()
        await until(lambda: link_running(hub))
        back = asyncio.get_running_loop().time()
        async with asyncio.timeout(window * 4):
            while state(hub, mute) != "offline":
                await send(talker)  # the talker resumes; the mute one stays silent
                await asyncio.sleep(window / 4)
        assert asyncio.get_running_loop().time() - back >= window * 0.9
        assert state(hub, talker) == "online"


@pytest.mark.allow_error_log(match=["adapter devicehealth-persister crashed"])
async def test_the_health_loops_are_supervised_adapters(
    device_hub_config: ConfigFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with devices_hub(device_hub_config) as hub:
        parts = service_of(hub)
        names = (
            "devicehealth-evaluator",
            "devicehealth-ticker",
            "devicehealth-persister",
            "devicehealth-history",
        )
        assert set(names) <= set(hub.supervisor.names)
        await until(lambda: all(state(hub, f"adapter:{name}") == "online" for name in names))

        real = parts.service.persister._commit
        crashed: list[bool] = []

        async def crash_once(*args: Any, **kwargs: Any) -> Any:
            if not crashed:
                crashed.append(True)
                raise RuntimeError("a bug in the persister")
            return await real(*args, **kwargs)

        monkeypatch.setattr(parts.service.persister, "_commit", crash_once)
        device = simulated(hub, interval=None)
        await device.start()
        await until(lambda: hub.supervisor.status["devicehealth-persister"].restarts >= 1)
        await until(
            lambda: hub.supervisor.status["devicehealth-persister"].state is AdapterState.RUNNING
        )
        await parts.service.wait_idle()
        async with hub.pool.acquire() as conn:
            row = await device_rows.get_device(conn, device.device_id)
        assert row is not None  # the batch the crash interrupted was kept and stored
        await device.stop()


async def test_pruning_deletes_in_batches(device_hub_config: ConfigFactory) -> None:
    async with devices_hub(device_hub_config) as hub:
        device_id = unique_name("old")
        old = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
        now = dt.datetime.now(dt.UTC)
        samples = [
            health_samples.Sample(device_id, old + dt.timedelta(seconds=n), "online", {"n": n})
            for n in range(2_500)
        ]
        samples.append(health_samples.Sample(device_id, now, "online", {"n": -1}))
        async with hub.pool.acquire() as conn:
            await health_samples.copy_samples(conn, samples)
            statements: list[str] = []

            def log(record: Any) -> None:
                statements.append(record.query)

            conn.add_query_logger(log)
            try:
                removed = await health_samples.prune(conn, now - dt.timedelta(days=1), batch=1_000)
            finally:
                conn.remove_query_logger(log)
            left = await conn.fetchval(
                "SELECT count(*) FROM health_samples WHERE device_id = $1", device_id
            )
        assert removed >= 2_500
        assert left == 1
        deletes = [query for query in statements if "DELETE" in query]
        assert len(deletes) >= 3


def link_running(hub: Hub) -> bool:
    status = hub.supervisor.status.get("mqtt")
    return status is not None and status.state is AdapterState.RUNNING
