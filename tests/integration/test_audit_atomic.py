"""Each audited change (walls, devices, signing in, the catalogue) commits with its audit entry.

Proved two ways against the real database: a change leaves exactly one entry, written by the
transaction that wrote the change (the rows share their ``xmin``); and a change whose audit insert
fails (a trigger refuses one actor's entries) is rolled back whole and announces nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from db import alarms as alarm_rows
from db import devices as device_rows
from ops.app import Hub
from ops.core.bus import Subscription
from ops.core.events import AUDIT_RECORDED, DEVICE_COMMAND_REQUESTED, Topic
from ops.devicehealth import service_of
from ops.devicehealth.events import DEVICE_ALARM
from ops.users import Role
from tests.fixtures.hub import LoginAs, unique_name
from videowall import service as walls
from videowall.events import WALL_CHANGED
from videowall.tiles import Layout

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

LAYOUT = Layout(title="Audit", rows=1, columns=2, tiles=[{"kind": "queue"}, {"kind": "kpis"}])
KPIS = {"kind": "kpis"}
DEVICE: dict[str, Any] = {
    "kind": "mqtt_sensor",
    "name": "Pos pantau",
    "site": None,
    "lat": None,
    "lon": None,
    "tags": [],
    "adapter": None,
    "attributes": {},
}


@pytest.fixture
async def refused_actor(hub: Hub) -> AsyncIterator[str]:
    """An actor whose audit entries the database refuses (a trigger of this test only)."""
    actor = unique_name("refused")
    trigger = actor.replace("-", "_")
    async with hub.pool.acquire() as conn:
        await conn.execute(
            f"""
            CREATE FUNCTION {trigger}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'audit entry refused by the test';
            END;
            $$;
            CREATE TRIGGER {trigger} BEFORE INSERT ON audit_log FOR EACH ROW
                WHEN (NEW.actor = '{actor}') EXECUTE FUNCTION {trigger}();
            """
        )
    try:
        yield actor
    finally:
        async with hub.pool.acquire() as conn:
            await conn.execute(f"DROP TRIGGER {trigger} ON audit_log; DROP FUNCTION {trigger}();")


async def _entries(hub: Hub, target: str) -> list[asyncpg.Record]:
    async with hub.pool.acquire() as conn:
        return list(
            await conn.fetch(
                "SELECT actor, action, xmin::text AS tx FROM audit_log WHERE target = $1 "
                "ORDER BY id",
                target,
            )
        )


async def _xmin(hub: Hub, sql: str, *args: Any) -> str:
    async with hub.pool.acquire() as conn:
        tx: str | None = await conn.fetchval(sql, *args)
    assert tx is not None
    return tx


def _heard(subscription: Subscription, *about: str) -> list[str]:
    """The topics of what was published so far about these walls, devices or alarms.

    Publishing is synchronous, so nothing published before this call is still on its way.
    """
    seen: list[str] = []
    while (envelope := subscription.get_nowait()) is not None:
        names = [getattr(envelope.payload, key, None) for key in ("target", "device_id", "name")]
        if any(isinstance(name, str) and name.startswith(about) for name in names):
            seen.append(envelope.topic.name)
    return seen


async def test_each_wall_change_commits_with_exactly_its_audit_entry(hub: Hub) -> None:
    name = unique_name("audit").lower()
    actor = unique_name("sup")
    target = f"wall:{name}"
    wall_tx = "SELECT xmin::text FROM walls WHERE name = $1"
    async with hub.bus.subscribe([AUDIT_RECORDED, WALL_CHANGED], maxsize=100) as heard:
        await walls.put_wall(hub.pool, hub.bus, name, LAYOUT, actor=actor)
        [created] = await _entries(hub, target)
        assert (created["actor"], created["action"]) == (actor, "wall.create")
        assert created["tx"] == await _xmin(hub, wall_tx, name)
        # The wall's screens hear of it after the commit, then the audit trail's followers.
        assert _heard(heard, name, target) == [WALL_CHANGED.name, AUDIT_RECORDED.name]

        await walls.push_tile(hub.pool, hub.bus, name, 0, KPIS, actor=actor)
        *_, pushed = await _entries(hub, target)
        assert pushed["action"] == "wall.tile"
        assert pushed["tx"] == await _xmin(hub, wall_tx, name)

        await walls.save_preset(hub.pool, hub.bus, name, "pagi", actor=actor)
        [saved] = await _entries(hub, f"{target}/preset:pagi")
        assert saved["action"] == "wall.preset_save"
        assert saved["tx"] == await _xmin(
            hub, "SELECT xmin::text FROM wall_presets WHERE wall = $1 AND name = 'pagi'", name
        )
        await walls.recall_preset(hub.pool, hub.bus, name, "pagi", actor=actor)
        [_, recalled] = await _entries(hub, f"{target}/preset:pagi")
        assert recalled["action"] == "wall.preset_recall"
        assert recalled["tx"] == await _xmin(hub, wall_tx, name)

        await walls.add_screen(hub.pool, hub.bus, name, "kiri", actor=actor)
        [paired] = await _entries(hub, f"{target}/screen:kiri")
        assert paired["action"] == "wall.screen_add"
        assert paired["tx"] == await _xmin(
            hub, "SELECT xmin::text FROM wall_screens WHERE wall = $1 AND screen = 'kiri'", name
        )
        _heard(heard, name, target)

        await walls.delete_screen(hub.pool, hub.bus, name, "kiri", actor=actor)
        await walls.delete_preset(hub.pool, hub.bus, name, "pagi", actor=actor)
        await walls.delete_wall(hub.pool, hub.bus, name, actor=actor)
        assert [e["action"] for e in await _entries(hub, f"{target}/screen:kiri")] == [
            "wall.screen_add",
            "wall.screen_delete",
        ]
        assert [e["action"] for e in await _entries(hub, f"{target}/preset:pagi")][-1] == (
            "wall.preset_delete"
        )
        assert [e["action"] for e in await _entries(hub, target)] == [
            "wall.create",
            "wall.tile",
            "wall.delete",
        ]
        assert _heard(heard, target).count(AUDIT_RECORDED.name) == 3


async def test_a_wall_change_whose_audit_entry_fails_is_rolled_back(
    hub: Hub, refused_actor: str
) -> None:
    name = unique_name("audit").lower()
    before, _ = await walls.put_wall(hub.pool, hub.bus, name, LAYOUT, actor="supervisor")
    assert before is None
    await walls.save_preset(hub.pool, hub.bus, name, "pagi", actor="supervisor")
    stored = await walls.get_wall(hub.pool, name)
    async with hub.bus.subscribe([AUDIT_RECORDED, WALL_CHANGED], maxsize=100) as heard:
        _heard(heard, name)  # the wall as it is: a state topic replays it first
        with pytest.raises(asyncpg.RaiseError):
            await walls.push_tile(hub.pool, hub.bus, name, 0, KPIS, actor=refused_actor)
        with pytest.raises(asyncpg.RaiseError):
            await walls.put_wall(hub.pool, hub.bus, name, LAYOUT, actor=refused_actor)
        with pytest.raises(asyncpg.RaiseError):
            await walls.recall_preset(hub.pool, hub.bus, name, "pagi", actor=refused_actor)
        with pytest.raises(asyncpg.RaiseError):
            await walls.add_screen(hub.pool, hub.bus, name, "kiri", actor=refused_actor)
        with pytest.raises(asyncpg.RaiseError):
            await walls.delete_preset(hub.pool, hub.bus, name, "pagi", actor=refused_actor)
        with pytest.raises(asyncpg.RaiseError):
            await walls.delete_wall(hub.pool, hub.bus, name, actor=refused_actor)
        assert _heard(heard, name, f"wall:{name}") == []
    after = await walls.get_wall(hub.pool, name)
    assert (after.version, after.tiles) == (stored.version, stored.tiles)
    assert [p.name for p in await walls.list_presets(hub.pool, name)] == ["pagi"]
    assert await walls.list_screens(hub.pool, name) == []
    async with hub.pool.acquire() as conn:
        account = await conn.fetchval(
            "SELECT count(*) FROM users WHERE username = $1", walls.screen_username(name, "kiri")
        )
    assert account == 0
    assert [e["actor"] for e in await _entries(hub, f"wall:{name}")] == ["supervisor"]


async def _raise_alarm(hub: Hub, device_id: str) -> alarm_rows.AlarmRow:
    async with hub.pool.acquire() as conn:
        row, new = await alarm_rows.raise_alarm(
            conn, device_id=device_id, code="threshold:temp", severity="warning", message="hot"
        )
    assert new
    return row


async def test_each_device_action_commits_with_exactly_its_audit_entry(hub: Hub) -> None:
    actions = service_of(hub).service.actions
    device_id = unique_name("sensor")
    actor = unique_name("tek")
    target = f"device:{device_id}"
    device_tx = "SELECT xmin::text FROM devices WHERE id = $1"
    async with hub.bus.subscribe([AUDIT_RECORDED, DEVICE_ALARM], maxsize=100) as heard:
        await actions.register(device_id, DEVICE, actor=actor)
        [registered] = await _entries(hub, target)
        assert (registered["actor"], registered["action"]) == (actor, "device.register")
        assert registered["tx"] == await _xmin(hub, device_tx, device_id)

        await actions.update(device_id, {"site": "Kudus"}, actor=actor)
        [_, updated] = await _entries(hub, target)
        assert updated["action"] == "device.update"
        assert updated["tx"] == await _xmin(hub, device_tx, device_id)

        # No device answers: the request was committed before it went out all the same.
        reply = await actions.command(device_id, "ping", {}, by=actor, timeout=0)
        assert not reply.ok
        [*_, commanded] = await _entries(hub, target)
        assert commanded["action"] == "device.command"
        assert commanded["tx"] == await _xmin(
            hub,
            "SELECT xmin::text FROM device_events WHERE device_id = $1 AND kind = 'command'",
            device_id,
        )

        alarm = await _raise_alarm(hub, device_id)
        alarm_tx = "SELECT xmin::text FROM alarms WHERE id = $1"
        assert await actions.acknowledge(alarm.id, actor) is not None
        [acknowledged] = await _entries(hub, f"alarm:{alarm.id}")
        assert acknowledged["action"] == "alarm.acknowledge"
        assert acknowledged["tx"] == await _xmin(hub, alarm_tx, alarm.id)
        assert await actions.clear(alarm.id, actor) is not None
        [_, cleared] = await _entries(hub, f"alarm:{alarm.id}")
        assert cleared["action"] == "alarm.clear"
        assert cleared["tx"] == await _xmin(hub, alarm_tx, alarm.id)
        assert _heard(heard, device_id, target, f"alarm:{alarm.id}") == [
            AUDIT_RECORDED.name,
            AUDIT_RECORDED.name,
            AUDIT_RECORDED.name,
            DEVICE_ALARM.name,
            AUDIT_RECORDED.name,
            DEVICE_ALARM.name,
            AUDIT_RECORDED.name,
        ]


async def test_a_device_action_whose_audit_entry_fails_is_rolled_back(
    hub: Hub, refused_actor: str
) -> None:
    parts = service_of(hub)
    actions = parts.service.actions
    refused_id = unique_name("sensor")
    device_id = unique_name("sensor")
    await actions.register(device_id, DEVICE, actor="teknisi")
    alarm = await _raise_alarm(hub, device_id)
    watched: list[Topic[Any]] = [AUDIT_RECORDED, DEVICE_ALARM, DEVICE_COMMAND_REQUESTED]
    async with hub.bus.subscribe(watched, maxsize=100) as heard:
        with pytest.raises(asyncpg.RaiseError):
            await actions.register(refused_id, DEVICE, actor=refused_actor)
        with pytest.raises(asyncpg.RaiseError):
            await actions.update(device_id, {"site": "Kudus"}, actor=refused_actor)
        with pytest.raises(asyncpg.RaiseError):
            await actions.command(device_id, "ping", {}, by=refused_actor, timeout=1)
        with pytest.raises(asyncpg.RaiseError):
            await actions.acknowledge(alarm.id, refused_actor)
        with pytest.raises(asyncpg.RaiseError):
            await actions.clear(alarm.id, refused_actor)
        assert (
            _heard(heard, refused_id, device_id, f"device:{device_id}", f"alarm:{alarm.id}") == []
        )
    assert refused_id not in parts.service.devices
    async with hub.pool.acquire() as conn:
        assert await device_rows.get_device(conn, refused_id) is None
        row = await device_rows.get_device(conn, device_id)
        after = await alarm_rows.get_alarm(conn, alarm.id)
        events = await device_rows.recent_events(conn, device_id)
    assert row is not None
    assert row.site is None
    assert after is not None
    assert (after.acknowledged_at, after.cleared_at) == (None, None)
    assert events == []
    assert [e["actor"] for e in await _entries(hub, f"device:{device_id}")] == ["teknisi"]
    assert await _entries(hub, f"device:{refused_id}") == []
    assert await _entries(hub, f"alarm:{alarm.id}") == []


async def test_sign_in_and_a_catalogue_change_commit_with_their_audit_entries(
    hub: Hub, login_as: LoginAs
) -> None:
    supervisor = await login_as(Role.SUPERVISOR)
    user = supervisor.user
    assert user is not None
    username = user.username
    [_added, signed_in] = await _entries(hub, f"user:{username}")
    assert (signed_in["actor"], signed_in["action"]) == (username, "auth.login")
    assert signed_in["tx"] == await _xmin(
        hub, "SELECT xmin::text FROM sessions WHERE user_id = $1", user.id
    )

    code = f"flood_{secrets.token_hex(3)}"
    body = {"label_id": "Banjir", "label_en": "Flood", "default_priority": "high"}
    async with supervisor.request("PUT", f"/api/v1/case-categories/{code}", json=body) as response:
        assert response.status == 201
    [put] = await _entries(hub, f"case_category:{code}")
    assert (put["actor"], put["action"]) == (username, "case_category.put")
    assert put["tx"] == await _xmin(
        hub, "SELECT xmin::text FROM case_categories WHERE code = $1", code
    )

    async with supervisor.post("/api/v1/auth/logout") as response:
        assert response.status == 204
    async with hub.pool.acquire() as conn:
        sessions = await conn.fetchval("SELECT count(*) FROM sessions WHERE user_id = $1", user.id)
    assert sessions == 0
    assert [e["action"] for e in await _entries(hub, f"user:{username}")] == [
        "user.add",
        "auth.login",
        "auth.logout",
    ]
