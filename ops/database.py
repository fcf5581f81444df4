"""Open the configured database, or the embedded one when none is configured."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import asyncpg

from db.embedded import EmbeddedPostgres, EmbeddedPostgresError
from db.pool import create_pool
from ops.core.config import Config
from ops.core.errors import AdapterNotReady, ConfigError, PoskoError
from ops.core.supervisor import RestartPolicy

_LOGGER = logging.getLogger(__name__)

EMBEDDED_SUBDIR = "pg"
#: How long a one-shot command (``posko db migrate``, ``posko user add``) waits for the server.
DEFAULT_COMMAND_WAIT = 30.0
#: Backoff between attempts to reach a server that is not up yet (after a power cut, say).
CONNECT_BACKOFF = RestartPolicy(initial=0.5, factor=2.0, cap=10.0, jitter=0.2)

# Errors that mean "the server is not there (yet)", as opposed to "it said no": refused or
# timed-out links, a dropped link, a server still starting up or out of connection slots.
UNREACHABLE_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
)


class DatabaseUnreachable(PoskoError):  # noqa: N818 - a state, not an action
    """The database server could not be reached within the allowed wait."""


@contextlib.asynccontextmanager
async def open_pool(
    config: Config,
    *,
    wait: float | None = DEFAULT_COMMAND_WAIT,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncIterator[asyncpg.Pool]:
    """Yield a pool on the configured server, or on the embedded one under ``hub.data_dir``.

    The embedded server is shared: a CLI command beside a running hub attaches to the hub's
    server and leaves it running when done. ``wait`` and ``sleep`` are as for `connect_pool`.
    """
    async with (
        database_server(config) as dsn,
        connect_pool(config, dsn, wait=wait, sleep=sleep) as pool,
    ):
        yield pool


@contextlib.asynccontextmanager
async def database_server(config: Config) -> AsyncIterator[str]:
    """Yield the DSN of the configured server, or start (or attach to) the embedded one."""
    if config.database.url is not None:
        yield config.database.url
        return
    embedded = EmbeddedPostgres(config.hub.data_dir / EMBEDDED_SUBDIR)
    try:
        await embedded.start()
    except EmbeddedPostgresError as exc:
        raise ConfigError(f"hub.data_dir: embedded PostgreSQL failed: {exc}") from exc
    try:
        yield embedded.dsn
    finally:
        await embedded.stop()


@contextlib.asynccontextmanager
async def connect_pool(
    config: Config,
    dsn: str,
    *,
    wait: float | None = DEFAULT_COMMAND_WAIT,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncIterator[asyncpg.Pool]:
    """Yield a pool on ``dsn``, closed (bounded by ``hub.shutdown_timeout``) at the end.

    A server that cannot be reached is retried with capped, jittered backoff, each attempt
    logged, for ``wait`` seconds (``None``: until it answers), then DatabaseUnreachable.
    Refused credentials, an unknown database or a malformed URL raise ConfigError at once.
    """
    pool = await _connect(config, dsn, wait=wait, sleep=sleep)
    try:
        yield pool
    finally:
        await _close(pool, config.hub.shutdown_timeout)


def server_address(dsn: str) -> str:
    """``host:port`` (or the socket directory) of a DSN, for messages; never the password."""
    try:
        parts = urlsplit(dsn)
        query = parse_qs(parts.query)
        host = parts.hostname or query.get("host", ["localhost"])[0]
        port = parts.port or int(query.get("port", ["5432"])[0])
    except ValueError:
        return "the configured address"
    return f"{host}:{port}"


async def _connect(
    config: Config,
    dsn: str,
    *,
    wait: float | None,
    sleep: Callable[[float], Awaitable[None]],
) -> asyncpg.Pool:
    db = config.database
    password = db.password.get_secret_value() if db.password else None
    address = server_address(dsn)
    loop = asyncio.get_running_loop()
    deadline = None if wait is None else loop.time() + wait
    attempt = 0
    while True:
        try:
            return await create_pool(
                dsn,
                min_size=db.pool_min,
                max_size=db.pool_max,
                command_timeout=db.command_timeout,
                connect_timeout=db.connect_timeout,
                password=password,
            )
        except UNREACHABLE_ERRORS as exc:
            delay = CONNECT_BACKOFF.delay(attempt, random.random())  # noqa: S311 - jitter
            attempt += 1
            if deadline is not None and loop.time() + delay > deadline:
                raise DatabaseUnreachable(
                    f"database unreachable at {address} after {attempt} attempts ({exc!r})"
                ) from exc
            _LOGGER.warning(
                "database unreachable at %s (attempt %d: %r); retrying in %.1f s",
                address,
                attempt,
                exc,
                delay,
            )
            await sleep(delay)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
            raise ConfigError(f"database.url: {address} refused the connection ({exc})") from exc


async def _close(pool: asyncpg.Pool, grace: float) -> None:
    """Close gracefully, but never let a stuck connection hold up shutdown."""
    try:
        async with asyncio.timeout(grace):
            await pool.close()
    except TimeoutError:
        _LOGGER.warning("database pool did not close within %.1f s; terminating", grace)
        pool.terminate()


#: Failures that mean the database is away (restarting, the network cut), not a fault in the work.
UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
)


@contextlib.contextmanager
def backoff_while_unreachable() -> Iterator[None]:
    """Turn a lost database into ``AdapterNotReady``: the supervisor backs off, no crash logged."""
    try:
        yield
    except UNREACHABLE as exc:
        raise AdapterNotReady(f"database unreachable: {exc}") from exc
