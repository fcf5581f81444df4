"""Schema migrations: numbered SQL files in ``db/migrations``, each applied once, in order.

Each file runs in its own transaction together with its ``schema_migrations`` row, under an
advisory lock, so a failed file leaves no trace and two processes migrating at once apply each
file exactly once. A file must therefore not hold statements that refuse a transaction block
(``CREATE INDEX CONCURRENTLY``, ``VACUUM``).
"""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

import asyncpg

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from importlib.resources.abc import Traversable

    from db.pool import Connection, Pool

_LOGGER = logging.getLogger(__name__)

# One lock for every process that migrates a database ("posko" in ASCII).
_LOCK_KEY = 0x706F736B6F
_FILE_NAME = re.compile(r"(?P<version>\d{4})_[a-z0-9_]+\.sql")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    int PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(RuntimeError):
    """A migration file is misnamed or failed; nothing of a failed file was applied."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file."""

    version: int
    name: str  # the file name without ``.sql``, e.g. ``0001_identity``
    sql: str


def load_migrations(source: Traversable | None = None) -> list[Migration]:
    """Read the migrations of ``source`` (default: the packaged ones), in version order."""
    directory = source if source is not None else resources.files("db").joinpath("migrations")
    found: dict[int, Migration] = {}
    for entry in directory.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE_NAME.fullmatch(entry.name)
        if match is None:
            raise MigrationError(f"{entry.name}: migration files are named NNNN_name.sql")
        version = int(match["version"])
        if version in found:
            raise MigrationError(
                f"{entry.name}: version {version} is taken by {found[version].name}"
            )
        found[version] = Migration(version, entry.name.removesuffix(".sql"), entry.read_text())
    return [found[version] for version in sorted(found)]


async def migrate(db: Connection | Pool, *, source: Traversable | None = None) -> list[str]:
    """Apply the pending migrations; return the names applied (empty when up to date)."""
    migrations = load_migrations(source)
    done: list[str] = []
    async with _connection(db) as conn:
        async with conn.transaction():
            await _lock(conn)
            await conn.execute(_CREATE_TABLE)
        applied = await _applied_versions(conn)
        if unknown := applied - {m.version for m in migrations}:
            _LOGGER.warning("Database has migrations newer than this code: %s", sorted(unknown))
        for migration in migrations:
            if migration.version in applied:
                continue
            if await _apply(conn, migration):
                done.append(migration.name)
    return done


async def pending(db: Connection | Pool, *, source: Traversable | None = None) -> list[str]:
    """Names of the migrations not applied yet, in the order they would be applied."""
    migrations = load_migrations(source)
    async with _connection(db) as conn:
        applied = await _applied_versions(conn)
    return [m.name for m in migrations if m.version not in applied]


async def _apply(conn: Connection, migration: Migration) -> bool:
    """Apply one migration unless another process did meanwhile; True if this one did."""
    try:
        async with conn.transaction():
            await _lock(conn)
            if await conn.fetchval(
                "SELECT 1 FROM schema_migrations WHERE version = $1", migration.version
            ):
                return False
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
            )
    except asyncpg.PostgresError as err:
        raise MigrationError(f"{migration.name}.sql failed and was rolled back: {err}") from err
    _LOGGER.info("Applied migration %s", migration.name)
    return True


async def _applied_versions(conn: Connection) -> set[int]:
    if await conn.fetchval("SELECT to_regclass('schema_migrations')") is None:
        return set()
    rows = await conn.fetch("SELECT version FROM schema_migrations")
    return {row["version"] for row in rows}


async def _lock(conn: Connection) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)


@contextlib.asynccontextmanager
async def _connection(db: Connection | Pool) -> AsyncIterator[Connection]:
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn:
            yield conn
    else:
        yield db
