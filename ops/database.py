"""Open the configured database, or the embedded one when none is configured."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import asyncpg

from db.embedded import EmbeddedPostgres, EmbeddedPostgresError
from db.pool import create_pool
from ops.core.config import Config
from ops.core.errors import ConfigError

_LOGGER = logging.getLogger(__name__)

EMBEDDED_SUBDIR = "pg"


@contextlib.asynccontextmanager
async def open_pool(config: Config) -> AsyncIterator[asyncpg.Pool]:
    """Yield a pool on the configured server, or on the embedded one under ``hub.data_dir``.

    The embedded server is shared: a CLI command beside a running hub attaches to the hub's
    server and leaves it running when done.
    """
    async with contextlib.AsyncExitStack() as stack:
        dsn = config.database.url
        if dsn is None:
            embedded = EmbeddedPostgres(config.hub.data_dir / EMBEDDED_SUBDIR)
            try:
                await embedded.start()
            except EmbeddedPostgresError as exc:
                raise ConfigError(f"hub.data_dir: embedded PostgreSQL failed: {exc}") from exc
            stack.push_async_callback(embedded.stop)
            dsn = embedded.dsn
        password = config.database.password
        try:
            pool = await create_pool(
                dsn,
                min_size=config.database.pool_min,
                max_size=config.database.pool_max,
                command_timeout=config.database.command_timeout,
                connect_timeout=config.database.connect_timeout,
                password=password.get_secret_value() if password else None,
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise ConfigError(f"database.url: cannot connect ({exc})") from exc
        stack.push_async_callback(_close, pool, config.hub.shutdown_timeout)
        yield pool


async def _close(pool: asyncpg.Pool, grace: float) -> None:
    """Close gracefully, but never let a stuck connection hold up shutdown."""
    try:
        async with asyncio.timeout(grace):
            await pool.close()
    except TimeoutError:
        _LOGGER.warning("database pool did not close within %.1f s; terminating", grace)
        pool.terminate()
