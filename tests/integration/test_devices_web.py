"""Devices, health history, alarms and commands over HTTP, against a real hub, broker and DB."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest

from db import alarms as alarm_rows
from db import devices as device_rows
from db import health_samples
from ops.app import Hub
from ops.devicehealth import service_of
from ops.users import Role
from ops.web.app import Served
from tests.fixtures.devices import register_device
from tests.fixtures.hub import (
    ConfigFactory,
    WebClient,
    client_of,
    create_user,
    log_in,
    start_web_hub,
    unique_name,
)
from tests.integration.test_devices_health import simulated, state, until
from tests.integration.test_openapi import _spec, _validate
from tests.polling import eventually

pytestmark = [pytest.mark.postgres, pytest.mark.broker]


@contextlib.asynccontextmanager
async def web_hub(
    device_hub_config: ConfigFactory, **devices: Any
) -> AsyncIterator[tuple[Hub, Served]]:
    config = device_hub_config(
        devices={"hysteresis": 0.2, "sample_every": 0.0, "escalate_after": 60.0, **devices}
    )
    async with start_web_hub(config) as (hub, served):
        await eventually(lambda: hub.mqtt.connected, timeout=10)
        yield hub, served


@contextlib.asynccontextmanager
async def signed_in(hub: Hub, served: Served, role: Role) -> AsyncIterator[WebClient]:
    user, password = await create_user(hub, role)
    async with client_of(served) as client:
        assert (await log_in(client, user.username, password)).status == 200
        client.user = user
        yield client


async def call(
    client: WebClient, method: str, path: str, spec: dict[str, Any] | None = None, **kwargs: Any
) -> tuple[int, Any]:
    template = kwargs.pop("template", path.split("?", maxsplit=1)[0])
    async with client.request(method, path, **kwargs) as response:
        body = await response.json() if response.content_type == "application/json" else None
        if spec is not None:
            _validate(spec, method, template, response.status, body)
        return response.status, body


async def test_register_list_filter_update_and_audit(device_hub_config: ConfigFactory) -> None:
    async with (
        web_hub(device_hub_config) as (hub, served),
        signed_in(hub, served, Role.TECHNICIAN) as tech,
    ):
        spec = await _spec(tech)
        camera = unique_name("cam")
        body = {
            "id": camera,
            "kind": "camera",
            "name": "Simpang Lima",
            "site": "Semarang",
            "lat": -6.99,
            "lon": 110.42,
            "tags": ["junction"],
            "attributes": {"snapshot_url": "http://127.0.0.1:9/snap.jpg", "stream_url": "rtsp://x"},
        }
        status, created = await call(tech, "POST", "/api/v1/devices", spec, json=body)
        assert status == 201
        assert created["configured"] is True
        assert created["attributes"]["snapshot_url"] == "http://127.0.0.1:9/snap.jpg"
        assert created["commands"] == ["snapshot", "reconnect"]
        status, again = await call(tech, "POST", "/api/v1/devices", spec, json=body)
        assert (status, again["error"]["code"]) == (409, "device_exists")

        status, listed = await call(tech, "GET", "/api/v1/devices?kind=camera&site=Semarang", spec)
        assert status == 200
        assert camera in [d["id"] for d in listed["devices"]]
        status, listed = await call(tech, "GET", "/api/v1/devices?state=online", spec)
        assert camera not in [d["id"] for d in listed["devices"]]

        status, changed = await call(
            tech,
            "PATCH",
            f"/api/v1/devices/{camera}",
            spec,
            json={"site": "Kudus"},
            template="/api/v1/devices/{id}",
        )
        assert (status, changed["site"]) == (200, "Kudus")
        status, detail = await call(
            tech, "GET", f"/api/v1/devices/{camera}", spec, template="/api/v1/devices/{id}"
        )
        assert status == 200
        assert [t["figure"] for t in detail["thresholds"]] == ["frame_age_s", "fps"]
        async with hub.pool.acquire() as conn:
            actions = await conn.fetch(
                "SELECT actor, action FROM audit_log WHERE target = $1 ORDER BY id",
                f"device:{camera}",
            )
        assert [(r["actor"], r["action"]) for r in actions] == [
            (tech.user.username, "device.register"),
            (tech.user.username, "device.update"),
        ]


async def test_bad_requests_get_specific_errors(device_hub_config: ConfigFactory) -> None:
    async with (
        web_hub(device_hub_config) as (hub, served),
        signed_in(hub, served, Role.TECHNICIAN) as tech,
    ):
        spec = await _spec(tech)
        cases = [
            ("POST", "/api/v1/devices", {"json": {"id": "bad id!", "kind": "camera"}}, 400, "id"),
            ("POST", "/api/v1/devices", {"json": {"id": "x1", "kind": "Camera"}}, 400, "kind"),
            (
                "POST",
                "/api/v1/devices",
                {"json": {"id": "x1", "kind": "camera", "lat": 91}},
                400,
                "lat",
            ),
            (
                "POST",
                "/api/v1/devices",
                {"json": {"id": "x1", "kind": "camera", "owner": 1}},
                400,
                "owner",
            ),
            (
                "POST",
                "/api/v1/devices",
                {"data": b"{not json", "headers": {"Content-Type": "application/json"}},
                400,
                None,
            ),
            ("GET", "/api/v1/devices?state=sleepy", {}, 400, "state"),
            ("GET", "/api/v1/alarms?limit=0", {}, 400, "limit"),
            ("GET", "/api/v1/alarms?status=gone", {}, 400, "status"),
        ]
        for method, path, kwargs, expected, field in cases:
            status, body = await call(tech, method, path, spec, **kwargs)
            assert status == expected, (path, kwargs, body)
            assert body["error"]["field"] == field, (path, body)

        device = unique_name("dev")
        await call(tech, "POST", "/api/v1/devices", json={"id": device, "kind": "mqtt_sensor"})
        health = f"/api/v1/devices/{device}/health"
        template = "/api/v1/devices/{id}/health"
        for query in (
            "from=yesterday",
            "from=2026-01-01T00:00:00",
            "from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            "from=2025-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
        ):
            status, body = await call(tech, "GET", f"{health}?{query}", spec, template=template)
            assert status == 400, (query, body)
        status, body = await call(
            tech,
            "POST",
            f"/api/v1/devices/{device}/commands",
            spec,
            json={"command": "warp"},
            template="/api/v1/devices/{id}/commands",
        )
        assert (status, body["error"]["code"]) == (409, "command_not_accepted")
        status, body = await call(
            tech, "POST", "/api/v1/alarms/abc/ack", spec, template="/api/v1/alarms/{id}/ack"
        )
        assert status == 404


async def test_live_device_history_commands_alarms_and_metrics(
    device_hub_config: ConfigFactory,
) -> None:
    async with (
        web_hub(device_hub_config) as (hub, served),
        signed_in(hub, served, Role.TECHNICIAN) as tech,
        signed_in(hub, served, Role.VIEWER) as viewer,
    ):
        spec = await _spec(tech)
        start = dt.datetime.now(dt.UTC)
        device = simulated(hub, interval=None, figures={"battery_pct": 15, "rssi_dbm": -70})
        await device.start()
        await device.send_telemetry()
        await until(lambda: state(hub, device.device_id) == "degraded")  # battery below 20 %
        await device.send_telemetry({"battery_pct": 90, "rssi_dbm": -70})
        await until(lambda: state(hub, device.device_id) == "online")
        parts = service_of(hub)
        await until(lambda: parts.history.written >= 2)

        path = f"/api/v1/devices/{device.device_id}"
        status, history = await call(
            viewer,
            "GET",
            f"{path}/health",
            spec,
            template="/api/v1/devices/{id}/health",
            params={"from": (start - dt.timedelta(seconds=5)).isoformat()},
        )
        assert status == 200
        assert [s["figures"]["battery_pct"] for s in history["samples"]] == [15, 90]

        status, reply = await call(
            tech,
            "POST",
            f"{path}/commands",
            spec,
            template="/api/v1/devices/{id}/commands",
            json={"command": "ping", "args": {"n": 1}},
        )
        assert status == 200
        assert reply["ok"] is True
        status, _ = await call(viewer, "POST", f"{path}/commands", json={"command": "ping"})
        assert status == 403

        # The threshold alarm was raised and cleared; now the device dies.
        await device.crash()
        await until(lambda: state(hub, device.device_id) == "offline")

        async def offline_alarm() -> Any:
            _, page = await call(
                viewer, "GET", f"/api/v1/alarms?status=active&device_id={device.device_id}", spec
            )
            return next((a for a in page["alarms"] if a["code"] == "offline"), None)

        alarm: dict[str, Any] = await eventually(offline_alarm, timeout=10)
        status, acked = await call(
            tech,
            "POST",
            f"/api/v1/alarms/{alarm['id']}/ack",
            spec,
            template="/api/v1/alarms/{id}/ack",
        )
        assert (status, acked["status"], acked["acknowledged_by"]) == (
            200,
            "acknowledged",
            tech.user.username,
        )
        status, cleared = await call(
            tech,
            "POST",
            f"/api/v1/alarms/{alarm['id']}/clear",
            spec,
            template="/api/v1/alarms/{id}/clear",
        )
        assert (status, cleared["status"]) == (200, "cleared")
        status, again = await call(
            tech,
            "POST",
            f"/api/v1/alarms/{alarm['id']}/clear",
            spec,
            template="/api/v1/alarms/{id}/clear",
        )
        assert (status, again["error"]["code"]) == (409, "already_cleared")

        status, detail = await call(viewer, "GET", path, spec, template="/api/v1/devices/{id}")
        kinds = {event["kind"] for event in detail["events"]}
        assert {"state", "command", "command.reply", "alarm.raised", "alarm.acknowledged"} <= kinds

        async with client_of(served) as anonymous, anonymous.get("/metrics") as response:
            text = await response.text()
        line = (
            f'posko_device_state{{device="{device.device_id}",kind="mqtt_sensor",site="",'
            'state="offline"} 1.0'
        )
        assert line in text, [x for x in text.splitlines() if device.device_id in x]
        mine = [x for x in text.splitlines() if device.device_id in x]
        # The exposition sorts labels by name.
        figure = f'posko_device_figure{{device="{device.device_id}",figure="battery_pct",'
        assert f'{figure}kind="mqtt_sensor"}} 90.0' in mine, mine
        assert (
            'posko_device_state{device="adapter:mqtt",kind="adapter",site="",state="online"} 1.0'
            in text
        )

        async with client_of(served) as anonymous, anonymous.get("/devices") as response:
            assert response.status == 200
            assert "devices.js" in await response.text()


WEEK = 7 * 24 * 60  # minutes: a week at one sample a minute is 10,080 samples
OFFLINE_AT = 3_000  # the one minute of the week the device was offline


async def test_a_long_range_comes_back_in_buckets_computed_by_the_database(
    device_hub_config: ConfigFactory,
) -> None:
    async with (
        web_hub(device_hub_config, history_days=30.0) as (hub, served),
        signed_in(hub, served, Role.VIEWER) as viewer,
    ):
        spec = await _spec(viewer)
        device, since, until = await _a_week_of_samples(hub)
        status, history = await call(
            viewer,
            "GET",
            f"/api/v1/devices/{device}/health",
            spec,
            template="/api/v1/devices/{id}/health",
            params={"from": since.isoformat(), "to": until.isoformat()},
        )
        assert status == 200, history
        width = 1210  # seconds: a week in at most 500 (the default) buckets, rounded up
        assert (history["resolution"], history["samples"]) == (f"{width}s", [])
        buckets = history["buckets"]
        assert len(buckets) == 500
        assert dt.datetime.fromisoformat(buckets[0]["from"]) == since
        assert dt.datetime.fromisoformat(buckets[-1]["to"]) == until
        assert sum(b["samples"] for b in buckets) == WEEK

        known = 123  # seconds [148830, 150040) from the start: minutes 2481 to 2500
        bucket = buckets[known]
        start = since + dt.timedelta(seconds=known * width)
        assert dt.datetime.fromisoformat(bucket["from"]) == start
        assert dt.datetime.fromisoformat(bucket["to"]) == start + dt.timedelta(seconds=width)
        inside = list(range(2481, 2501))
        assert (bucket["samples"], bucket["state"]) == (len(inside), "online")
        assert set(bucket["figures"]) == {"n", "even"}  # numbers only
        assert bucket["figures"]["n"] == {
            "avg": pytest.approx(sum(inside) / len(inside)),
            "min": 2481,
            "max": 2500,
        }
        evens = [n for n in inside if n % 2 == 0]
        assert bucket["figures"]["even"] == {
            "avg": pytest.approx(sum(evens) / len(evens)),
            "min": 2482,
            "max": 2500,
        }
        worst = [b for b in buckets if b["state"] != "online"]
        offline_start = since + dt.timedelta(seconds=OFFLINE_AT * 60 // width * width)
        assert [(b["state"], dt.datetime.fromisoformat(b["from"])) for b in worst] == [
            ("offline", offline_start)
        ]


async def test_a_short_range_comes_back_raw_and_buckets_is_bounded(
    device_hub_config: ConfigFactory,
) -> None:
    async with (
        web_hub(device_hub_config, history_days=30.0) as (hub, served),
        signed_in(hub, served, Role.VIEWER) as viewer,
    ):
        spec = await _spec(viewer)
        device, since, _ = await _a_week_of_samples(hub)
        path = f"/api/v1/devices/{device}/health"
        template = "/api/v1/devices/{id}/health"
        hour = {"from": since.isoformat(), "to": (since + dt.timedelta(hours=1)).isoformat()}
        status, history = await call(viewer, "GET", path, spec, template=template, params=hour)
        assert (status, history["resolution"], history["buckets"]) == (200, "raw", [])
        assert [s["figures"]["n"] for s in history["samples"]] == list(range(60))
        status, history = await call(
            viewer, "GET", path, spec, template=template, params={**hour, "buckets": "60"}
        )
        assert (history["resolution"], len(history["samples"])) == ("raw", 60)
        status, history = await call(
            viewer, "GET", path, spec, template=template, params={**hour, "buckets": "59"}
        )
        assert history["resolution"] == "62s"
        assert [b["figures"]["n"]["min"] for b in history["buckets"]][:3] == [0, 2, 3]
        assert sum(b["samples"] for b in history["buckets"]) == 60
        assert len(history["buckets"]) <= 59
        for bad in ("0", "2001", "many"):
            status, history = await call(
                viewer, "GET", path, spec, template=template, params={**hour, "buckets": bad}
            )
            assert (status, history["error"]["field"]) == (400, "buckets")


async def _a_week_of_samples(hub: Hub) -> tuple[str, dt.datetime, dt.datetime]:
    """A registered device with a sample a minute over a week that ended a day ago (by COPY)."""
    device = unique_name("week")
    since = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(days=8)

    def sample(n: int) -> health_samples.Sample:
        figures: dict[str, Any] = {"n": n, "mode": "auto", "ok": True}
        if n % 2 == 0:
            figures["even"] = n
        state = "offline" if n == OFFLINE_AT else "online"
        return health_samples.Sample(device, since + dt.timedelta(minutes=n), state, figures)

    async with hub.pool.acquire() as conn:
        await register_device(conn, device)
        await health_samples.copy_samples(conn, [sample(n) for n in range(WEEK)])
    return device, since, since + dt.timedelta(minutes=WEEK)


async def test_a_cleared_alarm_cannot_be_acknowledged(device_hub_config: ConfigFactory) -> None:
    async with (
        web_hub(device_hub_config) as (hub, served),
        signed_in(hub, served, Role.TECHNICIAN) as tech,
    ):
        spec = await _spec(tech)
        device = unique_name("dev")
        status, _ = await call(
            tech, "POST", "/api/v1/devices", json={"id": device, "kind": "mqtt_sensor"}
        )
        assert status == 201
        async with hub.pool.acquire() as conn:
            alarm, _ = await alarm_rows.raise_alarm(
                conn, device_id=device, code="restart_storm", severity="warning", message="test"
            )
        clear = f"/api/v1/alarms/{alarm.id}/clear"
        status, cleared = await call(
            tech, "POST", clear, spec, template="/api/v1/alarms/{id}/clear"
        )
        assert (status, cleared["status"]) == (200, "cleared")

        ack = f"/api/v1/alarms/{alarm.id}/ack"
        status, refused = await call(tech, "POST", ack, spec, template="/api/v1/alarms/{id}/ack")
        assert (status, refused["error"]["code"]) == (409, "alarm_cleared")
        assert "cleared" in refused["error"]["message"]
        async with hub.pool.acquire() as conn:
            after = await alarm_rows.get_alarm(conn, alarm.id)
            events = await device_rows.recent_events(conn, device)
        assert after is not None
        assert (after.status, after.acknowledged_at, after.acknowledged_by) == (
            "cleared",
            None,
            None,
        )
        assert "alarm.acknowledged" not in {event.kind for event in events}
