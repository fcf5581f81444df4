"""Nothing lost, nothing doubled: the hub process is killed (SIGKILL) between accepting a
dispatch and sending it, between the broker taking the copy and the 'sent' mark being committed,
and between sending it and hearing the acknowledgement. After a restart the order goes out at
most once more and the unit's app, deduplicating by order id, acts on it once."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from db.pool import Pool
from devices.mqtt.unitapp import UnitApp
from ops.users import add_user
from tests.faultproxy import FaultProxy
from tests.fixtures.hub import unique_name
from tests.integration.dispatch_support import running as unit_app
from tests.integration.units_support import new_spot
from tests.polling import eventually

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.broker]

START_TIMEOUT = 60.0
WAIT = 30.0
PASSWORD = "correct horse battery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class HubProcess:
    """``python -m ops up`` on the run's database, killable."""

    def __init__(self, env: dict[str, str], cwd: Path, port: int) -> None:
        self.env = env
        self.cwd = cwd
        self.port = port
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, *, ready: bool = True) -> None:
        self.starts += 1
        log = (self.cwd / f"hub-{self.starts}.log").open("wb")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ops", "up", env=self.env, cwd=self.cwd, stdout=log, stderr=log
        )
        log.close()
        await self._wait_serving(ready=ready)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)

    async def reap(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            await asyncio.wait_for(self.proc.wait(), 30)

    async def _wait_serving(self, *, ready: bool) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:

            async def serving() -> bool:
                assert self.proc is not None
                assert self.proc.returncode is None, self.log()
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(f"{self.url}/readyz") as response:
                        return response.status == 200 or not ready
                return False

            await eventually(serving, timeout=START_TIMEOUT, interval=0.1)

    def log(self) -> str:
        return "\n".join(p.read_text()[-3000:] for p in sorted(self.cwd.glob("hub-*.log")))


@contextlib.asynccontextmanager
async def hub_process(
    tmp_path: Path, pg_dsn: str, mqtt_url: str, prefix: str
) -> AsyncIterator[HubProcess]:
    hub_id = unique_name("crash")
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSKO_")}
    env.update(
        {
            "POSKO_HUB__ID": hub_id,
            "POSKO_HUB__DATA_DIR": str(tmp_path / "var"),
            "POSKO_WEB__PORT": str(free_port()),
            "POSKO_DATABASE__URL": pg_dsn,
            "POSKO_MQTT__URL": mqtt_url,
            "POSKO_MQTT__PREFIX": prefix,
            # Long: the crash, not a timeout, is what is under test.
            "POSKO_DISPATCH__MQTT_ACK_TIMEOUT": "300",
        }
    )
    process = HubProcess(env, tmp_path, int(env["POSKO_WEB__PORT"]))
    try:
        yield process
    finally:
        await process.reap()


async def seed(pool: Pool) -> tuple[int, str, str]:
    """A case, a unit reachable over its app, and an operator; returns their names."""
    spot = new_spot()
    unit_id = unique_name("u")
    operator = unique_name("op")
    async with pool.acquire() as conn:
        case_id: int = await conn.fetchval(
            """
            INSERT INTO cases (channel, category, priority, title, lat, lon, sla_due_at)
            VALUES ('console', 'fire', 'high', 'crash test', $1, $2, now() + interval '1 hour')
            RETURNING id
            """,
            spot.lat,
            spot.lon,
        )
        await conn.execute(
            """
            INSERT INTO units (id, callsign, name, kind, channels, lat, lon, position_at)
            VALUES ($1::text, $1::text, 'crash unit', 'fire',
                    jsonb_build_array(jsonb_build_object('channel', 'mqtt', 'address', $1::text)),
                    $2, $3, now())
            """,
            unit_id,
            spot.lat,
            spot.lon,
        )
    await add_user(pool, username=operator, password=PASSWORD, role="operator", actor="test")
    return case_id, unit_id, operator


async def dispatch(hub: HubProcess, operator: str, case_id: int, unit_id: str) -> str:
    jar = aiohttp.CookieJar(unsafe=True)  # the hub is on an IP address
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(hub.url, timeout=timeout, cookie_jar=jar) as http:
        async with http.post(
            "/api/v1/auth/login", json={"username": operator, "password": PASSWORD}
        ) as response:
            assert response.status == 200
        async with http.post(
            "/api/v1/dispatches", json={"case": case_id, "unit": unit_id, "message": "go now"}
        ) as response:
            body = await response.json()
            assert response.status == 201, body
            return str(body["id"])


async def copies(pool: Pool, order_id: str) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT state, attempts FROM dispatch_outbox WHERE order_id = $1 ORDER BY id",
            order_id,
        )
    return [dict(row) for row in rows]


async def wait_status(pool: Pool, order_id: str, status: str, hub: HubProcess) -> None:
    try:

        async def reached() -> bool:
            async with pool.acquire() as conn:
                current = await conn.fetchval(
                    "SELECT status FROM dispatch_orders WHERE id = $1", order_id
                )
            return bool(current == status)

        await eventually(reached, timeout=WAIT, interval=0.1)
    except AssertionError:
        copies_now = await copies(pool, order_id)
        raise AssertionError(
            f"order {order_id} never {status}: {copies_now}\n{hub.log()}"
        ) from None


async def test_killed_after_accepting_before_sending(
    tmp_path: Path, pg_dsn: str, db_pool: Pool, mqtt_broker: tuple[str, int], mqtt_prefix: str
) -> None:
    host, port = mqtt_broker
    prefix = f"{mqtt_prefix}/{unique_name('a')}"
    case_id, unit_id, operator = await seed(db_pool)
    proxy = FaultProxy(host, port)
    await proxy.start()
    app = UnitApp(unit_id, host=host, port=port, prefix=prefix, journal=tmp_path / "unit.log")
    try:
        async with (
            hub_process(tmp_path, pg_dsn, f"mqtt://127.0.0.1:{proxy.port}", prefix) as hub,
            unit_app(app),
        ):
            await hub.start()
            await proxy.cut()  # the hub can accept but not send
            order_id = await dispatch(hub, operator, case_id, unit_id)
            assert await copies(db_pool, order_id) == [{"state": "queued", "attempts": 0}]
            hub.kill()
            await hub.reap()
            assert app.received == []

            proxy.restore()
            await hub.start()
            await wait_status(db_pool, order_id, "acknowledged", hub)
            assert app.acted == [order_id], hub.log()
            assert [copy["order"] for copy in app.received] == [order_id]
            assert await copies(db_pool, order_id) == [{"state": "acknowledged", "attempts": 1}]
    finally:
        await proxy.stop()


async def test_killed_after_sending_before_the_acknowledgement(
    tmp_path: Path, pg_dsn: str, db_pool: Pool, mqtt_broker: tuple[str, int], mqtt_prefix: str
) -> None:
    host, port = mqtt_broker
    prefix = f"{mqtt_prefix}/{unique_name('b')}"
    case_id, unit_id, operator = await seed(db_pool)
    # The app acts at once but acknowledges only after a while: the hub dies in between, so
    # that acknowledgement is lost with it.
    app = UnitApp(
        unit_id, host=host, port=port, prefix=prefix, ack_delay=2.0, journal=tmp_path / "u.log"
    )
    async with hub_process(tmp_path, pg_dsn, f"mqtt://{host}:{port}", prefix) as hub, unit_app(app):
        await hub.start()
        order_id = await dispatch(hub, operator, case_id, unit_id)
        await eventually(lambda: app.acted, timeout=WAIT, interval=0.02)

        async def committed_as_sent() -> bool:
            # ...and the hub has committed it as sent (the app's ack is still seconds away).
            return bool((await copies(db_pool, order_id))[0]["state"] != "queued")

        await eventually(committed_as_sent, timeout=WAIT, interval=0.02)
        hub.kill()
        await hub.reap()
        assert [c["state"] for c in await copies(db_pool, order_id)] in (["sent"], ["delivered"])
        # The first acknowledgement goes out while the hub is down, and so goes nowhere.
        await eventually(lambda: app.acked, timeout=WAIT)

        await hub.start()
        await wait_status(db_pool, order_id, "acknowledged", hub)
        assert app.acted == [order_id], hub.log()
        assert [copy["order"] for copy in app.received] == [order_id, order_id]
        assert [copy["attempt"] for copy in app.received] == [1, 2]
        assert await copies(db_pool, order_id) == [{"state": "acknowledged", "attempts": 2}]
        async with db_pool.acquire() as conn:
            kinds = [
                r["kind"]
                for r in await conn.fetch(
                    "SELECT kind FROM dispatch_events WHERE order_id = $1 ORDER BY id", order_id
                )
            ]
        assert kinds.count("sent") == 2
        assert "requeued" in kinds


async def test_killed_after_publishing_before_the_sent_mark(
    tmp_path: Path, pg_dsn: str, db_pool: Pool, mqtt_broker: tuple[str, int], mqtt_prefix: str
) -> None:
    host, port = mqtt_broker
    prefix = f"{mqtt_prefix}/{unique_name('c')}"
    case_id, unit_id, operator = await seed(db_pool)
    proxy = FaultProxy(host, port)
    await proxy.start()
    app = UnitApp(unit_id, host=host, port=port, prefix=prefix, journal=tmp_path / "unit.log")
    try:
        async with (
            hub_process(tmp_path, pg_dsn, f"mqtt://127.0.0.1:{proxy.port}", prefix) as hub,
            unit_app(app),
            db_pool.acquire() as holder,
        ):
            await hub.start()
            await proxy.cut()  # nothing leaves until the test holds its lock
            order_id = await dispatch(hub, operator, case_id, unit_id)
            async with holder.transaction():
                # The MQTT channel publishes and reports the copy sent; dispatch then records
                # the 'sent' event, whose foreign key needs a share lock on the order row:
                # holding the row stops that record right after the broker took the copy, with
                # its 'sent' mark not committed.
                await holder.execute(
                    "SELECT 1 FROM dispatch_orders WHERE id = $1 FOR UPDATE", order_id
                )
                proxy.restore()
                await wait_blocked_sender(db_pool, holder.get_server_pid(), app, hub)
                hub.kill()
                await hub.reap()
            assert [copy["order"] for copy in app.received] == [order_id]
            assert app.acted == [order_id]
            assert await copies(db_pool, order_id) == [{"state": "queued", "attempts": 0}]
            assert "sent" not in await event_kinds(db_pool, order_id)

            await hub.start()
            await wait_status(db_pool, order_id, "acknowledged", hub)
            assert app.acted == [order_id], hub.log()  # the unit acted once
            assert [copy["order"] for copy in app.received] == [order_id, order_id], hub.log()
            assert await copies(db_pool, order_id) == [{"state": "acknowledged", "attempts": 1}]
            assert (await event_kinds(db_pool, order_id)).count("sent") == 1
    finally:
        await proxy.stop()


async def wait_blocked_sender(pool: Pool, holder_pid: int, app: UnitApp, hub: HubProcess) -> None:
    """Until the app has the copy and the hub's 'sent' record waits on the test's lock."""
    try:

        async def blocked() -> bool:
            async with pool.acquire() as conn:
                waiting = await conn.fetchval(
                    """
                    SELECT count(*) FROM pg_stat_activity
                    WHERE $1 = ANY(pg_blocking_pids(pid))
                      AND query ILIKE '%INSERT INTO dispatch_events%'
                    """,
                    holder_pid,
                )
            return bool(waiting and app.received)

        await eventually(blocked, timeout=WAIT)
    except AssertionError:
        raise AssertionError(f"the sender never published: {app.received}\n{hub.log()}") from None


async def event_kinds(pool: Pool, order_id: str) -> list[str]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT kind FROM dispatch_events WHERE order_id = $1 ORDER BY id", order_id
        )
    return [row["kind"] for row in rows]
