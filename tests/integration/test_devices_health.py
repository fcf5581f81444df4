"""Device health against the real broker and database: will, silence, blips, alarms, history."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiomqtt
import pytest

from db import alarms as alarm_rows
from db import devices as device_rows
from db import health_samples
from devices.health.rules import MAX_FIGURES
from devices.mqtt.simulator import SimulatedDevice
from ops.app import Hub
from ops.core.events import (
    ALARM_RAISED,
    DEVICE_REPORTED,
    AlarmRaised,
    DeviceReported,
    Severity,
)
from ops.devicehealth import service_of
from ops.devicehealth.events import DEVICE_ALARM, DEVICE_HEALTH
from tests.faultproxy import FaultProxy
from tests.fixtures.devices import register_device
from tests.fixtures.hub import TEST_RESTART_POLICY, ConfigFactory, unique_name
from tests.polling import eventually

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

WAIT = 15.0


@contextlib.asynccontextmanager
async def devices_hub(device_hub_config: ConfigFactory, **devices: Any) -> AsyncIterator[Hub]:
    config = device_hub_config(devices={"hysteresis": 0.3, "offline_after": 30.0, **devices})
    async with Hub(config, restart_policy=TEST_RESTART_POLICY) as hub:
        await until(lambda: service_of(hub).devicebus.link.connected)
        yield hub


async def until(condition: Callable[[], object], within: float = WAIT) -> None:
    await eventually(condition, timeout=within)


def state(hub: Hub, device_id: str) -> str | None:
    entry = service_of(hub).service.devices.get(device_id)
    return None if entry is None else entry.health.state.value


def simulated(hub: Hub, device_id: str | None = None, **kwargs: Any) -> SimulatedDevice:
    host, port = hub.config.mqtt.host_port
    return SimulatedDevice(
        host, port, hub.config.mqtt.prefix, device_id or unique_name("dev"), **kwargs
    )


async def test_a_last_will_marks_the_device_offline_and_raises_an_alarm(
    device_hub_config: ConfigFactory,
) -> None:
    async with devices_hub(device_hub_config) as hub:
        device = simulated(hub, kind="camera", interval=None)
        alarms = hub.bus.subscribe(DEVICE_ALARM, name="test-alarms")
        await device.start()
        await until(lambda: state(hub, device.device_id) == "online")
        await device.crash()
        await until(lambda: state(hub, device.device_id) == "offline")
        entry = service_of(hub).service.entry(device.device_id)
        assert entry.kind == "camera"  # from its retained config announcement
        assert entry.health.reason == "reported offline"
        async with asyncio.timeout(WAIT):
            raised = (await alarms.get()).payload
        assert (raised.device_id, raised.code, raised.action) == (
            device.device_id,
            "offline",
            "raised",
        )
        alarms.close()


async def test_silence_marks_a_telemetry_only_device_offline(
    device_hub_config: ConfigFactory,
) -> None:
    async with devices_hub(device_hub_config, offline_after=1.0, register_unknown=True) as hub:
        host, port = hub.config.mqtt.host_port
        device_id = unique_name("quiet")
        topic = f"{hub.config.mqtt.prefix}/devices/{device_id}/telemetry"
        async with aiomqtt.Client(host, port) as client:
            await client.publish(topic, json.dumps({"ts": 1.0, "battery_pct": 77}), qos=1)
        await until(lambda: state(hub, device_id) == "online")
        started = asyncio.get_running_loop().time()
        await until(lambda: state(hub, device_id) == "offline")
        assert asyncio.get_running_loop().time() - started >= 0.9
        assert "silent" in service_of(hub).service.entry(device_id).health.reason


async def test_a_blip_shorter_than_the_hysteresis_does_not_flap(
    device_hub_config: ConfigFactory,
) -> None:
    async with devices_hub(device_hub_config, hysteresis=3.0) as hub:
        device = simulated(hub, interval=None)
        await device.start()
        await until(lambda: state(hub, device.device_id) == "online")
        changes = hub.bus.subscribe(DEVICE_HEALTH, name="test-health", replay_state=False)
        await device.publish_raw("status", b"offline", retain=True)
        await until(
            lambda: service_of(hub).service.entry(device.device_id).health.pending is not None
        )
        await device.publish_raw("status", b"online", retain=True)
        # Back within the hysteresis: the blip is forgotten, so nothing is left to commit later
        # (the rules' own tests run the clock past the hysteresis).
        await until(lambda: service_of(hub).service.entry(device.device_id).health.pending is None)
        assert state(hub, device.device_id) == "online"
        assert changes.get_nowait() is None
        changes.close()
        await device.stop()


async def test_alarms_raise_escalate_acknowledge_and_clear(
    device_hub_config: ConfigFactory,
) -> None:
    async with devices_hub(device_hub_config, escalate_after=0.5) as hub:
        parts = service_of(hub)
        device = simulated(hub, interval=None)
        await device.start()
        await until(lambda: state(hub, device.device_id) == "online")
        events = hub.bus.subscribe(DEVICE_ALARM, name="test-alarms")
        await device.crash()

        async def next_action(action: str) -> Any:
            async with asyncio.timeout(WAIT):
                while True:
                    change = (await events.get()).payload
                    if change.device_id == device.device_id and change.action == action:
                        return change

        raised = await next_action("raised")
        escalated = await next_action("escalated")
        assert escalated.id == raised.id
        assert escalated.escalated_to == "supervisor"
        # Escalation waits escalate_after from the raise.
        assert escalated.escalated_at - raised.raised_at >= dt.timedelta(seconds=0.5)
        acked = await parts.service.acknowledge(raised.id, "teknisi-budi")
        assert acked is not None
        assert acked.acknowledged_by == "teknisi-budi"
        assert (await next_action("acknowledged")).status == "acknowledged"
        # A second acknowledgement keeps the first one's name.
        again = await parts.service.acknowledge(raised.id, "someone-else")
        assert again is not None
        assert again.acknowledged_by == "teknisi-budi"

        revived = simulated(hub, device.device_id, interval=None)
        await revived.start()
        cleared = await next_action("cleared")
        assert cleared.id == raised.id
        async with hub.pool.acquire() as conn:
            row = await alarm_rows.get_alarm(conn, raised.id)
            assert row is not None
            assert row.status == "cleared"
            assert row.escalated_at is not None
            history = await device_rows.recent_events(conn, device.device_id)
        kinds = [event.kind for event in reversed(history)]
        for expected in ("alarm.raised", "alarm.escalated", "alarm.acknowledged", "alarm.cleared"):
            assert expected in kinds
        await revived.stop()

        # An alarm acknowledged before escalate_after never escalates.
        await acknowledged_alarm_does_not_escalate(hub, events)
        events.close()


async def acknowledged_alarm_does_not_escalate(hub: Hub, events: Any) -> None:
    quick = simulated(hub, interval=None)
    witness = simulated(hub, interval=None)  # its alarm, raised later, is left to escalate
    await quick.start()
    await witness.start()
    await until(lambda: state(hub, quick.device_id) == state(hub, witness.device_id) == "online")
    await quick.crash()
    quick_alarm = await next_action_of(events, quick.device_id, "raised")
    await service_of(hub).service.acknowledge(quick_alarm.id, "teknisi-budi")
    await witness.crash()
    # Once the later alarm has escalated, the escalation check has passed the quick one's
    # deadline too: had it been going to escalate, it would have by now.
    seen = []
    async with asyncio.timeout(WAIT):
        while (change := (await events.get()).payload) is not None:
            seen.append((change.id, change.action))
            if change.device_id == witness.device_id and change.action == "escalated":
                break
    assert (quick_alarm.id, "escalated") not in seen
    async with hub.pool.acquire() as conn:
        quiet = await alarm_rows.get_alarm(conn, quick_alarm.id)
    assert quiet is not None
    assert quiet.acknowledged_at is not None
    assert quiet.escalated_at is None
    while (envelope := events.get_nowait()) is not None:
        change = envelope.payload
        assert (change.id, change.action) != (quick_alarm.id, "escalated")


async def next_action_of(events: Any, device_id: str, action: str) -> Any:
    async with asyncio.timeout(WAIT):
        while True:
            change = (await events.get()).payload
            if change.device_id == device_id and change.action == action:
                return change


async def test_the_hubs_own_alarms_and_adapters_are_devices(
    device_hub_config: ConfigFactory,
) -> None:
    async with devices_hub(device_hub_config) as hub:
        await until(lambda: state(hub, "adapter:mqtt") == "online")
        assert state(hub, f"hub:{hub.config.hub.id}") == "online"
        hub.bus.publish(
            ALARM_RAISED,
            AlarmRaised(
                source="adapter:radio-1",
                code="restart_storm",
                message="6 restarts",
                severity=Severity.CRITICAL,
            ),
            source="test",
        )
        parts = service_of(hub)

        async def stored() -> list[alarm_rows.AlarmRow]:
            async with hub.pool.acquire() as conn:
                return await alarm_rows.list_alarms(conn, device_id="adapter:radio-1")

        rows = await eventually(stored, timeout=WAIT)
        assert (rows[0].code, rows[0].severity, rows[0].status) == (
            "restart_storm",
            "critical",
            "open",
        )
        cleared = await parts.service.clear(rows[0].id, "teknisi")
        assert cleared is not None
        assert cleared.cleared_by == "teknisi"


async def test_threshold_breach_degrades_and_clears(device_hub_config: ConfigFactory) -> None:
    async with devices_hub(device_hub_config) as hub:
        device = simulated(
            hub, kind="satellite_terminal", interval=None, figures={"signal_bars": 4}
        )
        await device.start()
        await device.send_telemetry()
        await until(lambda: state(hub, device.device_id) == "online")
        alarms = hub.bus.subscribe(DEVICE_ALARM, name="test-alarms")
        await device.send_telemetry({"signal_bars": 1})
        await until(lambda: state(hub, device.device_id) == "degraded")
        assert service_of(hub).service.entry(device.device_id).health.reason == "signal_bars 1 < 2"
        await device.send_telemetry({"signal_bars": 3})
        await until(lambda: state(hub, device.device_id) == "online")
        seen: list[tuple[str, str]] = []
        async with asyncio.timeout(WAIT):
            while ("threshold:signal_bars", "cleared") not in seen:
                change = (await alarms.get()).payload
                seen.append((change.code, change.action))
        assert seen == [("threshold:signal_bars", "raised"), ("threshold:signal_bars", "cleared")]
        alarms.close()
        await device.stop()


async def test_history_returns_what_was_written(device_hub_config: ConfigFactory) -> None:
    async with devices_hub(device_hub_config, sample_every=0.0) as hub:
        parts = service_of(hub)
        device = simulated(hub, interval=None)
        await device.start()
        start = dt.datetime.now(dt.UTC)
        for level in (90, 80, 70):
            await device.send_telemetry({"battery_pct": level, "rssi_dbm": -60})
        await until(lambda: parts.history.written + parts.history.pending() >= 3)
        while parts.history.pending():
            await parts.history.flush_now()
        async with hub.pool.acquire() as conn:
            samples = await health_samples.query(
                conn,
                device.device_id,
                since=start - dt.timedelta(seconds=1),
                until=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1),
            )
        assert [s.figures["battery_pct"] for s in samples] == [90, 80, 70]
        assert all(s.state in {"online", "unknown"} for s in samples)
        await device.stop()


async def test_history_older_than_the_retention_is_pruned(device_hub_config: ConfigFactory) -> None:
    async with devices_hub(device_hub_config, history_days=7.0) as hub:
        parts = service_of(hub)
        device_id = unique_name("old")
        now = dt.datetime.now(dt.UTC)
        async with hub.pool.acquire() as conn:
            await health_samples.copy_samples(
                conn,
                [
                    health_samples.Sample(
                        device_id, now - dt.timedelta(days=8), "online", {"x": 1}
                    ),
                    health_samples.Sample(
                        device_id, now - dt.timedelta(days=6), "online", {"x": 2}
                    ),
                ],
            )
        await parts.history.prune()  # the hourly prune may also have run since the hub started
        async with hub.pool.acquire() as conn:
            kept = await health_samples.query(
                conn, device_id, since=now - dt.timedelta(days=30), until=now
            )
        assert [s.figures for s in kept] == [{"x": 2}]


async def test_any_adapter_reports_devices_through_the_shared_event(
    device_hub_config: ConfigFactory,
) -> None:
    async with devices_hub(device_hub_config) as hub:
        screen = unique_name("screen")
        report = DeviceReported(screen, "wall_screen", {"clients": 1}, online=True, name="Wall A")
        hub.bus.publish(DEVICE_REPORTED, report, source="videowall", key=screen)
        await until(lambda: state(hub, screen) == "online")
        closed = DeviceReported(screen, "wall_screen", online=False)
        hub.bus.publish(DEVICE_REPORTED, closed, source="videowall", key=screen)
        await until(lambda: state(hub, screen) == "offline")
        await service_of(hub).service.wait_idle()
        async with hub.pool.acquire() as conn:
            row = await device_rows.get_device(conn, screen)
        assert row is not None
        assert (row.kind, row.name, row.adapter, row.state) == (
            "wall_screen",
            "Wall A",
            "videowall",
            "offline",
        )


async def test_a_restarted_hub_resumes_the_registry(device_hub_config: ConfigFactory) -> None:
    config = device_hub_config(devices={"hysteresis": 0.3})
    async with Hub(config, restart_policy=TEST_RESTART_POLICY) as hub:
        device = simulated(hub, kind="camera", interval=None)
        await device.start()
        await until(lambda: state(hub, device.device_id) == "online")
        await device.stop()
        await until(lambda: state(hub, device.device_id) == "offline")
    async with Hub(config, restart_policy=TEST_RESTART_POLICY) as again:
        entry = service_of(again).service.entry(device.device_id)
        assert (entry.kind, entry.health.state.value) == ("camera", "offline")


async def test_old_device_events_are_pruned_in_batches(device_hub_config: ConfigFactory) -> None:
    async with devices_hub(device_hub_config) as hub:
        device_id = unique_name("old")
        now = dt.datetime.now(dt.UTC)
        old = now - dt.timedelta(days=30)
        events = [
            (device_id, old + dt.timedelta(seconds=n), "state", {"n": n}) for n in range(2_500)
        ]
        events.append((device_id, now, "state", {"n": -1}))
        async with hub.pool.acquire() as conn:
            await device_rows.add_events(conn, events)
            statements: list[str] = []

            def log(record: Any) -> None:
                statements.append(record.query)

            conn.add_query_logger(log)
            try:
                removed = await device_rows.prune_events(
                    conn, now - dt.timedelta(days=1), batch=1_000
                )
            finally:
                conn.remove_query_logger(log)
            left = await conn.fetchval(
                "SELECT count(*) FROM device_events WHERE device_id = $1", device_id
            )
        assert removed >= 2_500
        assert left == 1
        deletes = [query for query in statements if "DELETE" in query]
        assert len(deletes) >= 3
        assert all("LIMIT" in query for query in deletes)


async def test_a_stored_device_loads_at_most_the_figure_cap(
    device_hub_config: ConfigFactory,
) -> None:
    config = device_hub_config(devices={"hysteresis": 0.3})
    device_id = unique_name("many")
    stored = {f"f{n:03d}": n for n in range(MAX_FIGURES + 36)}
    async with (
        Hub(config, restart_policy=TEST_RESTART_POLICY) as hub,
        hub.pool.acquire() as conn,
    ):
        await register_device(conn, device_id)
        await conn.execute(
            "UPDATE devices SET state = 'online', figures = $2 WHERE id = $1",
            device_id,
            stored,
        )
    async with Hub(config, restart_policy=TEST_RESTART_POLICY) as again:
        figures = service_of(again).service.entry(device_id).health.figures
        assert len(figures) == MAX_FIGURES
        assert figures == dict(list(stored.items())[:MAX_FIGURES])


async def test_a_peer_hub_that_dies_shows_offline_with_an_alarm(
    device_hub_config: ConfigFactory, device_broker: tuple[str, int]
) -> None:
    prefix = f"shared-{unique_name('room')}"
    proxy = FaultProxy(*device_broker)
    await proxy.start()
    try:
        devices = {"hysteresis": 0.3, "offline_after": 30.0}
        first_config = device_hub_config(mqtt={"prefix": prefix}, devices=devices)
        peer_config = device_hub_config(
            mqtt={"url": f"mqtt://127.0.0.1:{proxy.port}", "prefix": prefix}, devices=devices
        )
        async with Hub(first_config, restart_policy=TEST_RESTART_POLICY) as first:
            alarms = first.bus.subscribe(DEVICE_ALARM, name="test-peer-alarms")
            async with Hub(peer_config, restart_policy=TEST_RESTART_POLICY) as second:
                peer = f"hub:{second.config.hub.id}"
                await until(lambda: state(first, peer) == "online")
                assert service_of(first).service.entry(peer).kind == "hub"
                # The second hub never shows itself as its own peer.
                assert second.config.hub.id not in service_of(second).watch.peers
                assert first.config.hub.id not in service_of(first).watch.peers
                # ...and follows the first (its retained status may still be on its way).
                await until(lambda: first.config.hub.id in service_of(second).watch.peers)

                await proxy.cut()  # its socket is gone: the broker publishes its last will
                await until(lambda: state(first, peer) == "offline")
                assert service_of(first).service.entry(peer).health.reason == "reported offline"
                raised = await next_action_of(alarms, peer, "raised")
                assert (raised.code, raised.severity) == ("offline", "critical")

                proxy.restore()  # it reconnects and says online again: the alarm clears
                await until(lambda: state(first, peer) == "online")
                assert (await next_action_of(alarms, peer, "cleared")).id == raised.id
            alarms.close()
    finally:
        await proxy.stop()


async def test_a_retired_hubs_retained_goodbye_is_not_a_peer(
    device_hub_config: ConfigFactory, device_broker: tuple[str, int]
) -> None:
    """A hub that stopped before this one ever saw it run leaves a retained ``offline``: no
    device, no alarm nobody could clear. A peer first heard online is followed as before."""
    prefix = f"shared-{unique_name('room')}"
    retired, alive = unique_name("retired"), unique_name("alive")
    async with aiomqtt.Client(*device_broker, identifier=unique_name("peers")) as client:
        await client.publish(f"{prefix}/hub/{retired}/status", b"offline", qos=1, retain=True)
        await client.publish(f"{prefix}/hub/{alive}/status", b"online", qos=1, retain=True)
        try:
            config = device_hub_config(mqtt={"prefix": prefix})
            async with Hub(config, restart_policy=TEST_RESTART_POLICY) as hub:
                await until(lambda: state(hub, f"hub:{alive}") == "online")
                await client.publish(f"{prefix}/hub/{alive}/status", b"offline", qos=1, retain=True)
                await until(lambda: state(hub, f"hub:{alive}") == "offline")
                assert state(hub, f"hub:{retired}") is None
                assert service_of(hub).watch.peers == {alive}
        finally:
            for hub_id in (retired, alive):
                await client.publish(f"{prefix}/hub/{hub_id}/status", b"", qos=1, retain=True)


async def test_panic_presses_keep_a_press_only_button_online(
    device_hub_config: ConfigFactory,
) -> None:
    async with devices_hub(device_hub_config, offline_after=1.0) as hub:
        button = unique_name("btn")
        async with hub.pool.acquire() as conn:
            row = await register_device(conn, button, kind="panic_button", lat=-6.2, lon=106.8)
        assert row is not None
        service_of(hub).service.registered(row)
        host, port = hub.config.mqtt.host_port
        seen: set[str] = set()
        async with aiomqtt.Client(host, port, identifier=unique_name("button")) as client:
            for _ in range(12):  # 3.6 s: more than three times offline_after
                await client.publish(hub.mqtt.topic("panic", button), b'{"id": "p-1"}', qos=1)
                await asyncio.sleep(0.3)
                seen.add(state(hub, button) or "unknown")
        assert "offline" not in seen
        assert state(hub, button) == "online"
        # The panic intake still gets every press on its own subscription: one press id, one case.

        async def cases_of_button() -> int:
            async with hub.pool.acquire() as conn:
                return int(
                    await conn.fetchval(
                        "SELECT count(*) FROM cases WHERE reporter_contact = $1",
                        f"device:{button}",
                    )
                )

        count = await eventually(cases_of_button, timeout=WAIT)
        assert count == 1
        # Silent again, it goes offline as before.
        await until(lambda: state(hub, button) == "offline")


async def test_presses_of_unknown_buttons_register_nothing(
    device_hub_config: ConfigFactory,
) -> None:
    async with devices_hub(device_hub_config) as hub:
        known = unique_name("btn")
        async with hub.pool.acquire() as conn:
            row = await register_device(conn, known, kind="panic_button")
        assert row is not None
        service_of(hub).service.registered(row)
        stranger = unique_name("btn")
        host, port = hub.config.mqtt.host_port
        async with aiomqtt.Client(host, port, identifier=unique_name("button")) as client:
            await client.publish(hub.mqtt.topic("panic", stranger), b"", qos=1)
            await client.publish(hub.mqtt.topic("panic", known), b"", qos=1)
        await until(lambda: state(hub, known) == "online")
        assert stranger not in service_of(hub).service.devices
        assert service_of(hub).service.rejected[(stranger, "unknown_device")] == 0
