"""The asyncpg pool: every connection takes and returns json/jsonb as Python objects."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy

if TYPE_CHECKING:
    from typing import TypeAlias

    # What the query functions accept: a plain connection or one acquired from the pool.
    Connection: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]
    Pool: TypeAlias = asyncpg.Pool[asyncpg.Record]
else:  # asyncpg's classes are not generic at run time
    Connection = asyncpg.Connection | PoolConnectionProxy
    Pool = asyncpg.Pool

APPLICATION_NAME = "posko"
#: Hosts a connection to which never leaves the machine.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    command_timeout: float = 10.0,
    connect_timeout: float = 5.0,
    password: str | None = None,
) -> Pool:
    """Open a pool whose connections are set up by `init_connection` and named ``posko``.

    ``password``, when given, is used instead of one in ``dsn`` (secrets come from the
    environment, never from the configured URL).
    """
    return await asyncpg.create_pool(
        dsn,
        password=password,
        ssl=local_ssl(dsn),
        min_size=min_size,
        max_size=max_size,
        command_timeout=command_timeout,
        timeout=connect_timeout,
        init=init_connection,
        server_settings={"application_name": APPLICATION_NAME},
    )


def local_ssl(dsn: str) -> bool | None:
    """``False`` (no TLS) for a server on this machine when nothing asks for TLS, else ``None``.

    asyncpg's default (``prefer``) asks every new connection to upgrade to TLS, cancel requests
    included; on loopback that buys nothing, and a cancelled query's cancel request can leave the
    upgrade's future failing with nobody to read it ("Future exception was never retrieved",
    MagicStack/asyncpg#1310). A ``sslmode`` in the URL or ``PGSSLMODE`` is always honoured.
    """
    parts = urlsplit(dsn)
    query = parse_qs(parts.query)
    if "sslmode" in query or "ssl" in query or os.environ.get("PGSSLMODE"):
        return None
    host = parts.hostname or query.get("host", [""])[0]
    if not host or host.startswith("/") or host in LOOPBACK_HOSTS:
        return False
    return None


async def init_connection(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """Register the JSON codecs; also for connections opened outside the pool."""
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(typename, schema="pg_catalog", encoder=_dumps, decoder=json.loads)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
