"""The MQTT device bus against the real broker: commands round-trip, bad input never hurts."""

from __future__ import annotations

import json
import logging
import os

import aiomqtt
import pytest

from ops.core.events import DEVICE_REPORTED
from ops.devicehealth import service_of
from ops.devicehealth.service import CommandRefused, DeviceNotFound
from tests.fixtures.hub import ConfigFactory, unique_name
from tests.integration.test_devices_health import devices_hub, simulated, state, until

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


async def test_unknown_devices_are_registered_on_first_report(
    device_hub_config: ConfigFactory,
) -> None:
    async with devices_hub(device_hub_config) as hub:
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


async def test_shared_subscription_group_still_receives_telemetry(
    device_hub_config: ConfigFactory,
) -> None:
    if not hub_broker_is_mosquitto():
        pytest.skip("the embedded amqtt broker does not implement $share subscriptions")
    async with devices_hub(device_hub_config, share_group="posko-test") as hub:
        device = simulated(hub, interval=None)
        await device.start()
        await until(lambda: state(hub, device.device_id) == "online")
        await device.send_telemetry({"battery_pct": 33})
        await until(
            lambda: (
                service_of(hub).service.entry(device.device_id).health.figures.get("battery_pct")
                == 33
            )
        )
        await device.stop()


def hub_broker_is_mosquitto() -> bool:
    return bool(os.environ.get("POSKO_MQTT__URL"))
