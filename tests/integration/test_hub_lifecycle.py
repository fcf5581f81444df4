"""The hub as a whole: readiness through a database outage, ordered shutdown with no leaks."""

from __future__ import annotations

import asyncio
import threading
from urllib.parse import parse_qs, urlsplit, urlunsplit

import aiohttp
import pytest

from ops.app import Hub
from ops.core.events import ADAPTER_STATUS, HUB_READINESS, AdapterState
from ops.core.supervisor import RestartPolicy
from ops.serve import serve
from tests.faultproxy import FaultProxy

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

FAST = RestartPolicy(initial=0.1, cap=0.5)


def via_proxy(dsn: str, proxy: FaultProxy) -> str:
    parts = urlsplit(dsn)
    user = parts.username or "root"
    return urlunsplit(parts._replace(netloc=f"{user}@127.0.0.1:{proxy.port}", query=""))


def proxy_for(dsn: str) -> FaultProxy:
    """A proxy in front of the test server, over TCP or (embedded) its Unix socket."""
    parts = urlsplit(dsn)
    if parts.hostname:
        return FaultProxy(parts.hostname, parts.port or 5432)
    query = parse_qs(parts.query)
    socket_dir, port = query["host"][0], query.get("port", ["5432"])[0]
    return FaultProxy.unix(f"{socket_dir}/.s.PGSQL.{port}")


async def test_database_outage_makes_hub_not_ready_until_it_returns(make_hub_config, pg_dsn):
    proxy = proxy_for(pg_dsn)
    await proxy.start()
    try:
        cfg = make_hub_config(database={"url": via_proxy(pg_dsn, proxy), "command_timeout": 2})
        async with Hub(cfg, restart_policy=FAST, readiness_interval=0.1) as hub:
            changes = hub.bus.subscribe(HUB_READINESS, replay_state=False)
            assert (await hub.check_readiness()) == {"database": True, "mqtt": True}

            await proxy.cut()
            checks = await hub.check_readiness()
            assert checks["database"] is False
            assert hub.ready is False
            change = await asyncio.wait_for(changes.get(), 5)
            assert change.payload.ready is False

            # The hub keeps serving its other parts while the database is away.
            assert checks["mqtt"] is True

            proxy.restore()
            async with asyncio.timeout(10):
                while not (await asyncio.wait_for(changes.get(), 10)).payload.ready:
                    pass
            assert hub.ready is True
            async with hub.pool.acquire() as conn:
                assert await conn.fetchval("SELECT 1") == 1
    finally:
        await proxy.stop()


async def test_readyz_reports_outage_over_http(make_hub_config, pg_dsn):
    proxy = proxy_for(pg_dsn)
    await proxy.start()
    try:
        cfg = make_hub_config(database={"url": via_proxy(pg_dsn, proxy), "command_timeout": 2})
        stop = asyncio.Event()
        cfg = cfg.model_copy(update={"web": cfg.web.model_copy(update={"port": _free_port()})})
        task = asyncio.create_task(serve(cfg, stop=stop))
        url = f"http://127.0.0.1:{cfg.web.port}/readyz"
        async with aiohttp.ClientSession() as session:
            assert (await _poll(session, url, 200))["ready"] is True
            await proxy.cut()
            body = await _poll(session, url, 503)
            assert body["checks"]["database"] is False
            proxy.restore()
            assert (await _poll(session, url, 200))["checks"]["database"] is True
        stop.set()
        await asyncio.wait_for(task, 15)
    finally:
        await proxy.stop()


async def test_serve_shuts_down_in_order_leaving_no_tasks_or_threads(make_hub_config):
    cfg = make_hub_config()
    cfg = cfg.model_copy(update={"web": cfg.web.model_copy(update={"port": _free_port()})})
    tasks_before = asyncio.all_tasks()
    threads_before = {t.ident for t in threading.enumerate()}
    stop = asyncio.Event()
    task = asyncio.create_task(serve(cfg, stop=stop))
    async with aiohttp.ClientSession() as session:
        await _poll(session, f"http://127.0.0.1:{cfg.web.port}/readyz", 200)
    stop.set()
    await asyncio.wait_for(task, 20)
    # On a fresh machine the test session's broker runs in this loop too; its own tasks
    # (amqtt broadcasting the hub's `offline`) belong to the session, not to the hub.
    leftover = {
        t
        for t in asyncio.all_tasks()
        if t not in tasks_before and not t.get_coro().__qualname__.startswith("Broker.")
    }
    assert leftover == set(), [t.get_name() for t in leftover]
    # Worker threads (argon2, embedded-server helpers) must be gone too; the default executor's
    # idle workers are the loop's, not the hub's, so only non-executor threads count.
    lingering = [
        t
        for t in threading.enumerate()
        if t.ident not in threads_before and not t.name.startswith("asyncio_")
    ]
    assert lingering == []


async def test_adapter_states_are_published_from_start_to_stop(make_hub_config):
    cfg = make_hub_config()
    async with Hub(cfg, restart_policy=FAST) as hub:
        sub = hub.bus.subscribe(ADAPTER_STATUS)
        first = await asyncio.wait_for(sub.get(), 5)
        assert first.payload.name == "mqtt"
        assert first.payload.state is AdapterState.RUNNING  # replayed current state
    assert hub.supervisor.status["mqtt"].state is AdapterState.STOPPED


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _poll(session: aiohttp.ClientSession, url: str, status: int) -> dict:
    async with asyncio.timeout(20):
        while True:
            try:
                async with session.get(url) as response:
                    if response.status == status:
                        return await response.json()
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
