"""The MQTT device bus against the real broker: commands round-trip, bad input never hurts."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os

import aiomqtt
import pytest

from db import health_samples
from ops.app import Hub
from ops.core.bus import Subscription
from ops.core.events import DEVICE_REPORTED
from ops.devicehealth import service_of
from ops.devicehealth.service import MAX_LOGGED_SOURCES, CommandRefused, DeviceNotFound
from tests.fixtures.hub import TEST_RESTART_POLICY, ConfigFactory, unique_name
from tests.integration.test_devices_health import WAIT, devices_hub, simulated, state, until
from tests.polling import eventually

pytestmark = [pytest.mark.postgres, pytest.mark.broker]


async def test_commands_round_trip(device_hub_config: ConfigFactory) -> None:
    async with devices_hub(device_hub_config) as hub:
        parts = service_of(hub)
        device = simulated(hub, interval=None, commands=("ping", "reboot"))
        await device.start()
        await until(lambda: state(hub, device.device_id) == "online")
        await until(
            lambda: "reboot" in parts.service.commands_of(parts.service.entry(device.device_id))
        )
        reply = await parts.service.command(
            device.device_id, "reboot", {"delay": 1}, by="tek", timeout=5
        )
        assert reply.ok
        assert reply.result == {"command": "reboot"}
        assert device.received[-1]["command"] == "reboot"
        assert device.received[-1]["args"] == {"delay": 1}
        assert device.received[-1]["id"] == reply.request_id

        with pytest.raises(CommandRefused):
            await parts.service.command(device.device_id, "self_destruct", {}, by="tek", timeout=1)
        with pytest.raises(DeviceNotFound):
            await parts.service.command("no-such-device", "ping", {}, by="tek", timeout=1)
        await device.stop()


async def test_a_device_that_does_not_answer_gets_a_timeout_reply(
    device_hub_config: ConfigFactory,
) -> None:
    async with devices_hub(device_hub_config) as hub:
        parts = service_of(hub)
        parts.devicebus.command_timeout = 0.5
        device = simulated(hub, interval=None, reply=False)
        await device.start()
        await until(lambda: state(hub, device.device_id) == "online")
        reply = await parts.service.command(device.device_id, "ping", {}, by="tek", timeout=5)
        assert not reply.ok
        assert reply.error == "no reply in time"
        assert device.received[-1]["command"] == "ping"
        await device.stop()


async def test_bad_input_is_counted_per_source_and_never_hurts_others(
    device_hub_config: ConfigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    async with devices_hub(device_hub_config, max_payload=1024, rate_per_device=20.0) as hub:
        parts = service_of(hub)
        bus = parts.devicebus
        prefix = hub.config.mqtt.prefix
        good = simulated(hub, interval=None)
        await good.start()
        await until(lambda: state(hub, good.device_id) == "online")
        bad = unique_name("bad")
        reports = hub.bus.subscribe(DEVICE_REPORTED, maxsize=10_000, name="test-reports")
        host, port = hub.config.mqtt.host_port
        caplog.set_level(logging.WARNING, logger="devices.mqtt.devicebus")
        async with aiomqtt.Client(host, port) as client:

            async def send(suffix: str, payload: bytes, device: str = bad) -> None:
                await client.publish(f"{prefix}/devices/{device}/{suffix}", payload, qos=1)

            await send("telemetry", b"not json at all {")
            await send("telemetry", b"\xff\xfe")
            await send("telemetry", b"[1, 2, 3]")
            await send("telemetry", json.dumps({"ts": "now", "temp": {"nested": 1}}).encode())
            await send("telemetry", json.dumps({"ts": [1]}).encode())
            await send("telemetry", json.dumps({"big": "x" * 2000}).encode())
            await send("status", b"maybe")
            await send("cmd/reply", json.dumps({"id": "nobody-asked", "ok": True}).encode())
            await send("telemetry", b"{}", device="bad id with spaces")
            # A storm from one device: far beyond its rate.
            for n in range(300):
                await client.publish(
                    f"{prefix}/devices/{bad}/telemetry", json.dumps({"n": n}), qos=0
                )
            # Meanwhile the good device goes on and is heard.
            await good.send_telemetry({"battery_pct": 42})
            await until(
                lambda: (
                    service_of(hub).service.entry(good.device_id).health.figures.get("battery_pct")
                    == 42
                )
            )
            # Every storm message is accounted for: let through or rate-limited.
            through = 0

            def storm_done() -> bool:
                nonlocal through
                while (envelope := reports.get_nowait()) is not None:
                    if envelope.payload.device_id == bad:
                        through += 1
                return through + bus.rejected_from(bad).get("rate_limited", 0) >= 300

            await until(storm_done)

        counts = bus.rejected_from(bad)
        assert counts["not_json"] == 2
        assert counts["not_object"] == 1
        assert counts["wrong_type"] == 2
        assert counts["too_large"] == 1
        assert counts["bad_status"] == 1
        assert counts["unknown_request"] == 1
        assert counts["rate_limited"] >= 200
        assert bus.rejected_from("?").get("bad_device_id", 0) == 1
        assert bus.rejected_from(good.device_id) == {}
        # Logged once per source and reason, not once per message.
        storm_lines = [r for r in caplog.records if "rate_limited" in r.getMessage()]
        assert len(storm_lines) == 1
        # The storm let through only about the burst.
        assert through <= 100
        reports.close()
        assert hub.mqtt.connected
        await good.stop()


async def test_unknown_devices_are_dropped_and_counted_by_default(
    device_hub_config: ConfigFactory,
) -> None:
    async with devices_hub(device_hub_config) as hub:
        parts = service_of(hub)
        device_id = unique_name("stranger")
        host, port = hub.config.mqtt.host_port
        async with aiomqtt.Client(host, port) as client:
            for n in range(3):
                await client.publish(
                    f"{hub.config.mqtt.prefix}/devices/{device_id}/telemetry",
                    json.dumps({"ts": 1, "battery_pct": 50 + n}),
                    qos=1,
                )
        await until(lambda: parts.devicebus.rejected_from(device_id).get("unknown_device") == 3)
        assert state(hub, device_id) is None
        await parts.service.wait_idle()
        async with hub.pool.acquire() as conn:
            row = await conn.fetchrow("SELECT kind FROM devices WHERE id = $1", device_id)
        assert row is None
        # Once it announces itself, its reports are accepted.
        announced = simulated(hub, device_id, interval=None)
        await announced.start()
        await announced.send_telemetry({"battery_pct": 61})
        await until(
            lambda: (
                device_id in parts.service.devices
                and parts.service.entry(device_id).health.figures.get("battery_pct") == 61
            )
        )
        assert parts.devicebus.rejected_from(device_id) == {"unknown_device": 3}
        await announced.stop()


async def test_a_storm_of_unknown_ids_is_counted_not_logged_line_by_line(
    device_hub_config: ConfigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    storm = MAX_LOGGED_SOURCES + 50
    async with devices_hub(device_hub_config, rate_per_device=1000.0) as hub:
        parts = service_of(hub)
        ids = [unique_name("made-up") for _ in range(storm)]
        host, port = hub.config.mqtt.host_port
        async with aiomqtt.Client(host, port) as client:
            for device_id in ids:
                await client.publish(
                    f"{hub.config.mqtt.prefix}/devices/{device_id}/telemetry",
                    json.dumps({"battery_pct": 50}),
                    qos=1,
                )
        await until(
            lambda: all(
                parts.devicebus.rejected_from(device_id).get("unknown_device") == 1
                for device_id in ids
            )
        )
    dropped = [r for r in caplog.records if "device report dropped" in r.getMessage()]
    by_name = [r for r in dropped if any(device_id in r.getMessage() for device_id in ids)]
    assert len(by_name) <= MAX_LOGGED_SOURCES
    assert any("the rest are only counted" in r.getMessage() for r in caplog.records)


async def test_unknown_devices_are_registered_on_first_report_when_allowed(
    device_hub_config: ConfigFactory,
) -> None:
    async with devices_hub(device_hub_config, register_unknown=True) as hub:
        parts = service_of(hub)
        device_id = unique_name("new")
        host, port = hub.config.mqtt.host_port
        async with aiomqtt.Client(host, port) as client:
            await client.publish(
                f"{hub.config.mqtt.prefix}/devices/{device_id}/telemetry",
                json.dumps({"ts": 1, "battery_pct": 50}),
                qos=1,
            )
        await until(lambda: state(hub, device_id) == "online")
        await parts.service.wait_idle()
        async with hub.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT kind, adapter, configured FROM devices WHERE id = $1", device_id
            )
        assert row is not None
        assert dict(row) == {"kind": "mqtt_sensor", "adapter": "mqtt-devices", "configured": False}


async def test_shared_subscription_group_splits_telemetry_between_hubs(
    device_hub_config: ConfigFactory,
) -> None:
    if not hub_broker_is_mosquitto():
        pytest.skip(
            "needs a broker with shared subscriptions (Mosquitto, as in CI): "
            "the embedded amqtt broker treats $share/... as a topic that matches nothing"
        )
    prefix = f"{unique_name('shared')}/posko"
    devices = {"hysteresis": 0.3, "offline_after": 30.0, "share_group": "posko-test"}
    hubs = [
        Hub(
            device_hub_config(devices=devices, mqtt={"prefix": prefix}),
            restart_policy=TEST_RESTART_POLICY,
        )
        for _ in range(2)
    ]
    total = 20
    async with hubs[0] as first, hubs[1] as second:
        for hub in (first, second):
            await until(lambda hub=hub: service_of(hub).devicebus.link.connected)
        device = simulated(first, interval=None)
        await device.start()
        for hub in (first, second):
            await until(lambda hub=hub: state(hub, device.device_id) == "online")
        shares: dict[str, set[int]] = {first.config.hub.id: set(), second.config.hub.id: set()}
        feeds = {
            hub.config.hub.id: hub.bus.subscribe(DEVICE_REPORTED, maxsize=1000, name="test-share")
            for hub in (first, second)
        }
        marked = dict.fromkeys(feeds, False)
        for n in range(total):
            await device.send_telemetry({"n": n})

        def collected() -> bool:
            for hub_id, feed in feeds.items():
                marked[hub_id] |= take_share(feed, device.device_id, shares[hub_id])
            return all(marked.values()) and len(set[int]().union(*shares.values())) >= total

        async def every_hub_heard_a_marker() -> bool:
            # The broker delivers one publisher's topic to each subscriber in order: a hub that
            # got a marker sent after the numbered reports has got every one it will ever get.
            await device.send_telemetry({"marker": 1})
            return collected()

        await eventually(every_hub_heard_a_marker, timeout=WAIT, interval=0.1)
        got = list(shares.values())
        assert all(got), f"a hub of the group got no share: {shares}"
        assert not got[0] & got[1], "a message went to both hubs"
        assert got[0] | got[1] == set(range(total))
        for feed in feeds.values():
            feed.close()
        await device.stop()


def take_share(feed: Subscription, device_id: str, share: set[int]) -> bool:
    """Add the numbers of ``device_id``'s reports waiting in ``feed``; whether a marker came."""
    marked = False
    while (envelope := feed.get_nowait()) is not None:
        figures = envelope.payload.figures if envelope.payload.device_id == device_id else {}
        if "n" in figures:
            share.add(int(figures["n"]))
        marked = marked or "marker" in figures
    return marked


def hub_broker_is_mosquitto() -> bool:
    return bool(os.environ.get("POSKO_MQTT__URL"))


async def test_hostile_payloads_are_counted_and_history_goes_on(
    device_hub_config: ConfigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    async with devices_hub(device_hub_config, sample_every=0.0) as hub:
        parts = service_of(hub)
        bus = parts.devicebus
        prefix = hub.config.mqtt.prefix
        hostile = simulated(hub, interval=None)
        healthy = simulated(hub, interval=None)
        for device in (hostile, healthy):
            await device.start()
            await until(lambda: state(hub, device.device_id) == "online")  # noqa: B023
        await hostile.send_telemetry({"battery_pct": 80})
        await until(
            lambda: parts.service.entry(hostile.device_id).health.figures.get("battery_pct") == 80
        )
        host, port = hub.config.mqtt.host_port
        caplog.set_level(logging.WARNING)
        async with aiomqtt.Client(host, port) as client:

            async def send(payload: bytes | str) -> None:
                await client.publish(
                    f"{prefix}/devices/{hostile.device_id}/telemetry", payload, qos=1
                )

            await send(b"x" * 1_048_576)
            await send(b"[" * 16_000)
            await send(json.dumps({"battery_pct": 81, "note": "a\u0000b"}))
            await send('{"battery_pct": 1' + "0" * 400 + "}")
            await send(json.dumps({"ts": "garbage", "battery_pct": 82}))
            await until(lambda: sum(bus.rejected_from(hostile.device_id).values()) >= 5)

        assert bus.rejected_from(hostile.device_id) == {
            "too_large": 1,
            "not_json": 1,
            "wrong_type": 3,
        }
        assert bus.link.handler_errors == 0
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        figures = parts.service.entry(hostile.device_id).health.figures
        assert figures["battery_pct"] == 80
        assert "note" not in figures

        start = dt.datetime.now(dt.UTC)
        await healthy.send_telemetry({"battery_pct": 55, "rssi_dbm": -70})
        await until(
            lambda: parts.service.entry(healthy.device_id).health.figures.get("battery_pct") == 55
        )
        await parts.service.wait_idle()
        while parts.history.pending():
            await parts.history.flush_now()
        async with hub.pool.acquire() as conn:
            samples = await health_samples.query(
                conn,
                healthy.device_id,
                since=start - dt.timedelta(seconds=1),
                until=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1),
            )
        assert [s.figures.get("battery_pct") for s in samples] == [55]
        assert hub.mqtt.connected
        await hostile.stop()
        await healthy.stop()
