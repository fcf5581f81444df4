"""The hub as a whole: readiness through a database outage, ordered shutdown with no leaks."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import aiohttp
import pytest
from aiohttp import web

from db.embedded import EmbeddedPostgres
from devices.mqtt.broker import EmbeddedBroker
from ops import database
from ops.app import Hub
from ops.core.config import Config
from ops.core.errors import ConfigError
from ops.core.events import ADAPTER_STATUS, HUB_READINESS, AdapterState
from ops.core.supervisor import RestartPolicy, Supervisor
from ops.serve import serve
from ops.web.app import Served
from tests.faultproxy import FaultProxy
from tests.fixtures.database import scratch_data_dir
from tests.polling import eventually

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
        task, served = await _serve(cfg, stop)
        url = f"{served.url}/readyz"
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


async def test_serve_shuts_down_in_order_leaving_no_tasks_or_threads(
    make_hub_config, monkeypatch: pytest.MonkeyPatch
):
    """Web, then adapters (newest first), then the pool, the embedded broker and PostgreSQL."""
    stopped: list[str] = []

    def record(owner: object, method: str, label: Callable[..., str]) -> None:
        original = getattr(owner, method)

        async def wrapper(*args: Any) -> Any:
            result = await original(*args)
            stopped.append(label(*args))
            return result

        monkeypatch.setattr(owner, method, wrapper)

    record(web.AppRunner, "cleanup", lambda _runner: "web")
    record(Supervisor, "stop", lambda _sup, name: f"adapter:{name}")
    record(database, "_close", lambda *_: "pool")
    record(EmbeddedBroker, "stop", lambda _broker: "broker")
    record(EmbeddedPostgres, "stop", lambda _server: "postgres")

    base = make_hub_config()
    with scratch_data_dir() as pg_dir:
        cfg = base.model_copy(
            update={
                "hub": base.hub.model_copy(update={"data_dir": pg_dir.parent}),
                "database": base.database.model_copy(update={"url": None}),
                "mqtt": base.mqtt.model_copy(update={"url": None, "embedded_port": _free_port()}),
            }
        )
        tasks_before = asyncio.all_tasks()
        threads_before = {t.ident for t in threading.enumerate()}
        stop = asyncio.Event()
        task, served = await _serve(cfg, stop, within=60)
        async with aiohttp.ClientSession() as session:
            await _poll(session, f"{served.url}/readyz", 200, within=60)
        stop.set()
        await asyncio.wait_for(task, 30)

    adapters = stopped[1:-3]
    assert stopped[0] == "web", "; ".join(stopped)
    assert adapters, stopped
    assert all(step.startswith("adapter:") for step in adapters), stopped
    assert adapters[-1] == "adapter:mqtt", "the MQTT link started first, so it stops last"
    assert stopped[-3:] == ["pool", "broker", "postgres"]
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


async def test_hub_started_before_its_database_waits_for_it(make_hub_config, pg_dsn, caplog):
    """After a power cut the hub may boot first: it serves /healthz and waits, then is ready."""
    proxy = proxy_for(pg_dsn)
    await proxy.start()
    await proxy.cut()
    try:
        cfg = make_hub_config(database={"url": via_proxy(pg_dsn, proxy)})
        stop = asyncio.Event()
        with caplog.at_level(logging.INFO):
            task, served = await _serve(cfg, stop)
            async with aiohttp.ClientSession() as session:
                assert (await _poll(session, f"{served.url}/healthz", 200))["alive"] is True
                body = await _poll(session, f"{served.url}/readyz", 503)
                assert body["checks"]["database"] is False
                async with session.get(f"{served.url}/api/v1/cases") as response:
                    assert response.status == 503
                    assert (await response.json())["error"]["code"] == "starting"
                attempts = f"database unreachable at 127.0.0.1:{proxy.port} (attempt 2"
                # Polling the captured log is the point: there is no event for it.
                await eventually(
                    lambda: any(attempts in r.getMessage() for r in caplog.records), timeout=20
                )
                assert not task.done(), "an unreachable database must not end the hub"

                proxy.restore()
                assert (await _poll(session, f"{served.url}/readyz", 200))["ready"] is True
            stop.set()
            await asyncio.wait_for(task, 20)
        assert not any(r.levelno >= logging.ERROR for r in caplog.records)
    finally:
        await proxy.stop()


async def test_stop_while_waiting_for_the_database_stops_what_was_started(
    make_hub_config, pg_dsn, caplog
):
    proxy = proxy_for(pg_dsn)
    await proxy.start()
    await proxy.cut()
    try:
        cfg = make_hub_config(database={"url": via_proxy(pg_dsn, proxy)})
        tasks_before = asyncio.all_tasks()
        stop = asyncio.Event()
        with caplog.at_level(logging.INFO):
            task, served = await _serve(cfg, stop)
            async with aiohttp.ClientSession() as session:
                await _poll(session, f"{served.url}/healthz", 200)
            stop.set()  # as SIGINT would: the database never came
            await asyncio.wait_for(task, 10)
        messages = [r.getMessage() for r in caplog.records]
        assert "stop requested while starting; stopping what was started" in messages
        assert not any("started" in m and m.startswith("hub ") for m in messages)
        leftover = {
            t
            for t in asyncio.all_tasks()
            if t not in tasks_before and not t.get_coro().__qualname__.startswith("Broker.")
        }
        assert leftover == set(), [t.get_name() for t in leftover]
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", served.port))  # the web port is free again
    finally:
        await proxy.stop()


@pytest.mark.parametrize(
    ("user", "database_name"),
    [("posko_no_such_role", None), (None, "posko_no_such_database")],
)
async def test_refused_credentials_or_unknown_database_fail_fast_as_config_errors(
    make_hub_config, pg_dsn, user, database_name
):
    parts = urlsplit(pg_dsn)
    if user is not None:
        parts = parts._replace(netloc=f"{user}@{parts.netloc.rpartition('@')[2]}")
    if database_name is not None:
        parts = parts._replace(path=f"/{database_name}")
    cfg = make_hub_config(database={"url": urlunsplit(parts)})
    async with asyncio.timeout(10):
        with pytest.raises(ConfigError, match=r"^database\.url: .* refused the connection"):
            async with Hub(cfg, restart_policy=FAST):
                pass


async def test_adapter_states_are_published_from_start_to_stop(make_hub_config):
    cfg = make_hub_config()
    async with Hub(cfg, restart_policy=FAST) as hub:
        sub = hub.bus.subscribe(ADAPTER_STATUS)
        first = await asyncio.wait_for(sub.get(), 5)
        assert first.payload.name == "mqtt"
        assert first.payload.state is AdapterState.RUNNING  # replayed current state
    assert hub.supervisor.status["mqtt"].state is AdapterState.STOPPED


def _free_port() -> int:
    """For the embedded broker only, which cannot listen on port 0 (its clients need a number)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _serve(
    cfg: Config, stop: asyncio.Event, within: float = 20
) -> tuple[asyncio.Task[None], Served]:
    """Run ``serve`` on ``[web] port`` 0 and return its task and the address it bound."""
    assert cfg.web.port == 0
    listening: asyncio.Future[Served] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(cfg, stop=stop, on_listening=listening.set_result))
    done, _ = await asyncio.wait({task, listening}, timeout=within, return_when="FIRST_COMPLETED")
    if listening not in done:
        stop.set()
        await asyncio.wait_for(task, 20)
        raise AssertionError("serve never started listening")
    return task, listening.result()


async def _poll(session: aiohttp.ClientSession, url: str, status: int, within: float = 20) -> dict:
    async def answered() -> dict | None:
        try:
            async with session.get(url) as response:
                if response.status == status:
                    return dict(await response.json())
        except aiohttp.ClientError:
            pass
        return None

    return await eventually(answered, timeout=within, interval=0.1)
