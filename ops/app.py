"""The composition root: the only module that imports every package and wires them together.

``Hub`` is usable headless (``async with Hub(cfg) as hub``), which the tests and benches rely on;
``posko up`` wraps it in the web server (and with ``--demo`` enters ``ops.demo.DemoRoom`` on it).
Start order is database server, broker, pool, MQTT link, the domains' setups, readiness; shutdown
is the exact reverse, each step bounded, so nothing outlives what it uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Self

import asyncpg

from db.migrate import migrate
from devices.mqtt.appchannel import MqttAppChannel
from devices.mqtt.broker import EmbeddedBroker
from devices.mqtt.link import MqttLink
from ops.cases.setup import setup as cases_setup
from ops.core.bus import Bus, Overflow, Subscription
from ops.core.config import Config
from ops.core.events import ADAPTER_STATUS, HUB_READINESS, HubReadinessChanged
from ops.core.hub import DomainSetup, HubContext
from ops.core.parts import Parts
from ops.core.supervisor import RestartPolicy, Supervisor
from ops.database import connect_pool, database_server
from ops.devicehealth.setup import setup as devicehealth_setup
from ops.dispatch.setup import add_channel
from ops.dispatch.setup import setup as dispatch_setup
from ops.intake.setup import setup as intake_setup
from ops.radio.setup import setup as radio_setup
from ops.shifts.setup import setup as shifts_setup

_LOGGER = logging.getLogger(__name__)

DEFAULT_READINESS_INTERVAL = 2.0
DEFAULT_DB_CHECK_TIMEOUT = 2.0


def domain_services() -> list[DomainSetup]:
    """The operations domains, started in this order after the adapters' bus link is up.

    Each ``setup(hub)`` takes the hub as an ``ops.core.hub.HubContext``, subscribes to the bus,
    starts its adapters on ``hub.supervisor``, registers its parts in ``hub.parts`` and its
    teardown with ``hub.on_stop``; add one line here per domain.
    """
    return [
        cases_setup,
        intake_setup,
        devicehealth_setup,
        dispatch_setup,
        radio_setup,
        mqtt_app_channel_setup,
        shifts_setup,
    ]


async def mqtt_app_channel_setup(hub: HubContext) -> None:
    """Orders to unit apps and their answers over the hub's MQTT link: dispatch's first channel."""
    channel = MqttAppChannel(hub.mqtt, hub.bus)
    channel.attach()
    add_channel(hub, channel)


class Hub:
    """One room's hub: bus, supervisor, database pool, MQTT link and the embedded services."""

    def __init__(
        self,
        config: Config,
        *,
        restart_policy: RestartPolicy | None = None,
        readiness_interval: float = DEFAULT_READINESS_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.clock = clock
        self.bus = Bus()
        self.supervisor = Supervisor(self.bus, restart_policy)
        self.parts = Parts()
        self.mqtt = MqttLink.from_config(config.mqtt, config.hub.id)
        self.started_at = time.monotonic()
        self.ready = False
        self.checks: dict[str, bool] = {"database": False, "mqtt": False}
        self._readiness_interval = readiness_interval
        self._pool: asyncpg.Pool | None = None
        self._stack = contextlib.AsyncExitStack()
        self._embedded_broker: EmbeddedBroker | None = None
        self._readiness_task: asyncio.Task[None] | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        """The database pool; only valid while the hub runs."""
        if self._pool is None:
            raise RuntimeError("the hub is not started")
        return self._pool

    @property
    def embedded_database(self) -> bool:
        """Whether the hub runs its own PostgreSQL."""
        return self.config.database.url is None

    @property
    def embedded_broker(self) -> bool:
        """Whether the hub runs its own MQTT broker."""
        return self._embedded_broker is not None

    async def __aenter__(self) -> Self:
        self.bus.bind(asyncio.get_running_loop())
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _LOGGER.info("hub %s stopping", self.config.hub.id)
        await self._stack.aclose()
        _LOGGER.info("hub %s stopped", self.config.hub.id)

    async def _start(self) -> None:
        cfg = self.config
        # Servers first, then the pool on them: shutdown (the reverse) closes the pool before
        # the embedded broker and database stop.
        dsn = await self._stack.enter_async_context(database_server(cfg))
        if cfg.mqtt.url is None:
            host, port = cfg.mqtt.host_port
            self._embedded_broker = EmbeddedBroker(host=host, port=port)
            await self._embedded_broker.start()
            self._stack.push_async_callback(self._embedded_broker.stop)

        # A server that is not up yet (the room's power came back) is waited for, not fatal.
        self._pool = await self._stack.enter_async_context(connect_pool(cfg, dsn, wait=None))
        self._stack.callback(self._forget_pool)
        async with self.pool.acquire() as conn:
            applied = await migrate(conn)
        if applied:
            _LOGGER.info("applied migrations: %s", ", ".join(applied))

        self._stack.push_async_callback(self.supervisor.stop_all)
        self.supervisor.start(self.mqtt)
        for setup in domain_services():
            await setup(self)

        statuses = self.bus.subscribe(
            ADAPTER_STATUS, maxsize=64, overflow=Overflow.DROP_OLDEST, name="readiness"
        )
        self._stack.callback(statuses.close)
        # Give the MQTT link a moment so a healthy start is ready at once, with every domain's
        # subscription granted (what the field sends meanwhile would be lost); never fatal.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(cfg.mqtt.connect_timeout):
                await self.mqtt.wait_subscribed()
        await self.check_readiness()
        self._readiness_task = asyncio.create_task(
            self._watch_readiness(statuses), name="readiness"
        )
        self._stack.push_async_callback(self._stop_readiness)
        _LOGGER.info("hub %s started", cfg.hub.id)

    def on_stop(self, callback: Callable[[], Awaitable[object]]) -> None:
        """Run ``callback`` at shutdown, before everything started earlier (LIFO)."""
        self._stack.push_async_callback(callback)

    async def check_readiness(self) -> dict[str, bool]:
        """Probe the database and the broker now; publish a change of readiness."""
        checks = {"database": await self._database_reachable(), "mqtt": self.mqtt.connected}
        ready = all(checks.values())
        if checks != self.checks or ready != self.ready:
            self.checks = checks
            self.ready = ready
            if ready:
                _LOGGER.info("hub ready")
            else:
                _LOGGER.warning(
                    "hub not ready: %s", ", ".join(k for k, ok in checks.items() if not ok)
                )
            self.bus.publish(
                HUB_READINESS, HubReadinessChanged(ready=ready, checks=dict(checks)), source="hub"
            )
        return checks

    async def _database_reachable(self) -> bool:
        if self._pool is None:
            return False
        try:
            async with asyncio.timeout(DEFAULT_DB_CHECK_TIMEOUT):
                async with self._pool.acquire() as conn:
                    await conn.fetchval("SELECT 1")
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False
        return True

    async def _watch_readiness(self, statuses: Subscription) -> None:
        """Re-check when an adapter changes state, and at least every readiness interval."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._readiness_interval):
                    await statuses.get()
            await self.check_readiness()

    async def _stop_readiness(self) -> None:
        if self._readiness_task is not None:
            self._readiness_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._readiness_task

    def _forget_pool(self) -> None:
        self._pool = None
