"""Migrations and the identity tables (users, sessions, audit log) on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import asyncpg
import pytest

from db import audit, sessions, users
from db.migrate import MigrationError, load_migrations, migrate, pending
from db.pool import create_pool, init_connection

if TYPE_CHECKING:
    from pathlib import Path

    from db.pool import Connection, Pool

pytestmark = pytest.mark.postgres

FreshDatabase = Callable[[], Awaitable[str]]


@pytest.fixture
async def conn(db_pool: Pool) -> AsyncIterator[Connection]:
    """A connection inside a transaction that is rolled back after the test."""
    async with db_pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            yield conn
        finally:
            await transaction.rollback()


@contextlib.asynccontextmanager
async def connect(dsn: str) -> AsyncIterator[asyncpg.Connection[asyncpg.Record]]:
    conn = await asyncpg.connect(dsn)
    try:
        await init_connection(conn)
        yield conn
    finally:
        await conn.close()


def write_migrations(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(exist_ok=True)
    for name, sql in files.items():
        (directory / name).write_text(sql)
    return directory


async def applied_rows(conn: Connection) -> list[tuple[int, str]]:
    rows = await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
    return [(row["version"], row["name"]) for row in rows]


# --- the runner -------------------------------------------------------------------------------


async def test_migrate_applies_identity_once(fresh_database: FreshDatabase) -> None:
    dsn = await fresh_database()
    pool = await create_pool(dsn, max_size=2)
    try:
        every = [m.name for m in load_migrations()]
        assert every[0] == "0001_identity"
        assert await pending(pool) == every
        assert await migrate(pool) == every
        assert await pending(pool) == []
        async with pool.acquire() as conn:
            assert await migrate(conn) == []
            assert await applied_rows(conn) == [(m.version, m.name) for m in load_migrations()]
            for table in ("users", "sessions", "audit_log"):
                assert await conn.fetchval("SELECT to_regclass($1)", table) is not None
    finally:
        await pool.close()


async def test_concurrent_migrate_applies_each_file_once(
    fresh_database: FreshDatabase, tmp_path: Path
) -> None:
    # The sleep keeps the first migrator inside its transaction while the second one arrives.
    source = write_migrations(
        tmp_path / "migrations",
        {
            "0001_slow.sql": "SELECT pg_sleep(0.3); CREATE TABLE slow (x int);",
            "0002_next.sql": "CREATE TABLE next (x int);",
        },
    )
    dsn = await fresh_database()
    async with connect(dsn) as first, connect(dsn) as second:
        results = await asyncio.gather(
            migrate(first, source=source), migrate(second, source=source)
        )
        assert sorted(name for result in results for name in result) == ["0001_slow", "0002_next"]
        assert await applied_rows(first) == [(1, "0001_slow"), (2, "0002_next")]


async def test_failed_migration_rolls_back_and_names_its_file(
    fresh_database: FreshDatabase, tmp_path: Path
) -> None:
    source = write_migrations(
        tmp_path / "migrations",
        {
            "0001_good.sql": "CREATE TABLE good (x int);",
            "0002_bad.sql": "CREATE TABLE half_done (x int); SELECT 1 / 0;",
        },
    )
    dsn = await fresh_database()
    async with connect(dsn) as conn:
        with pytest.raises(MigrationError, match=r"0002_bad\.sql.*division by zero"):
            await migrate(conn, source=source)
        assert await applied_rows(conn) == [(1, "0001_good")]
        assert await conn.fetchval("SELECT to_regclass('good')") is not None
        assert await conn.fetchval("SELECT to_regclass('half_done')") is None
        assert await pending(conn, source=source) == ["0002_bad"]

        (source / "0002_bad.sql").write_text("CREATE TABLE half_done (x int);")
        assert await migrate(conn, source=source) == ["0002_bad"]


@pytest.mark.parametrize("name", ["1_short.sql", "0001-dash.sql", "0001_Upper.sql"])
def test_misnamed_migration_file_is_refused(tmp_path: Path, name: str) -> None:
    source = write_migrations(tmp_path / "migrations", {name: "SELECT 1;"})
    with pytest.raises(MigrationError, match=name):
        load_migrations(source)


def test_duplicate_version_is_refused(tmp_path: Path) -> None:
    source = write_migrations(
        tmp_path / "migrations", {"0001_one.sql": "SELECT 1;", "0001_two.sql": "SELECT 1;"}
    )
    with pytest.raises(MigrationError, match="version 1"):
        load_migrations(source)


# --- audit_log is append-only -------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET actor = 'mallory'",
        "DELETE FROM audit_log",
        "DELETE FROM audit_log WHERE false",
        "TRUNCATE audit_log",
    ],
)
async def test_audit_log_refuses_changes(conn: Connection, statement: str) -> None:
    entry = await audit.append(conn, actor="alice", action="case.open", target="case:1")
    with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
        async with conn.transaction():
            await conn.execute(statement)
    assert await conn.fetchval("SELECT actor FROM audit_log WHERE id = $1", entry) == "alice"


# --- users ----------------------------------------------------------------------------------------


async def test_user_round_trip(conn: Connection) -> None:
    created = await users.create_user(
        conn, username="Siti", password_hash="hash-1", role="operator", display_name="Siti A."
    )
    assert (created.username, created.role, created.display_name) == ("Siti", "operator", "Siti A.")
    assert created.active
    assert "hash-1" not in repr(created)

    assert await users.get_user(conn, created.id) == created
    assert await users.get_user_by_username(conn, "sITi") == created
    assert await users.get_user_by_username(conn, "nobody") is None
    assert created in await users.list_users(conn)

    assert await users.set_password_hash(conn, created.id, "hash-2")
    changed = await users.get_user(conn, created.id)
    assert changed is not None
    assert changed.password_hash == "hash-2"
    assert not await users.set_password_hash(conn, created.id + 1000, "hash-3")


async def test_username_is_unique_regardless_of_case(conn: Connection) -> None:
    await users.create_user(conn, username="Budi", password_hash="h", role="viewer")
    with pytest.raises(users.UsernameTaken, match="BUDI"):
        async with conn.transaction():
            await users.create_user(conn, username="BUDI", password_hash="h", role="viewer")


async def test_unknown_role_is_refused(conn: Connection) -> None:
    with pytest.raises(asyncpg.CheckViolationError):
        async with conn.transaction():
            await users.create_user(
                conn,
                username="eve",
                password_hash="h",
                role="root",  # type: ignore[arg-type]
            )


# --- sessions -------------------------------------------------------------------------------------


def token_hash() -> bytes:
    return hashlib.sha256(secrets.token_bytes(32)).digest()


async def test_session_round_trip(conn: Connection) -> None:
    user = await users.create_user(conn, username="dewi", password_hash="h", role="supervisor")
    token = token_hash()
    expires = datetime.now(UTC) + timedelta(hours=8)
    await sessions.create_session(conn, token_hash=token, user_id=user.id, expires_at=expires)

    found = await sessions.get_session(conn, token)
    assert found is not None
    assert (found.user_id, found.username, found.role, found.active) == (
        user.id,
        "dewi",
        "supervisor",
        True,
    )
    assert found.expires_at == expires

    later = expires + timedelta(hours=1)
    assert await sessions.touch_session(conn, token, expires_at=later)
    touched = await sessions.get_session(conn, token)
    assert touched is not None
    assert touched.expires_at == later

    assert await sessions.delete_session(conn, token)
    assert await sessions.get_session(conn, token) is None
    assert not await sessions.delete_session(conn, token)
    assert not await sessions.touch_session(conn, token)


async def test_expired_session_is_not_returned_and_is_purged(conn: Connection) -> None:
    user = await users.create_user(conn, username="eko", password_hash="h", role="technician")
    token = token_hash()
    past = datetime.now(UTC) - timedelta(minutes=1)
    await sessions.create_session(conn, token_hash=token, user_id=user.id, expires_at=past)

    assert await sessions.get_session(conn, token) is None
    assert not await sessions.touch_session(conn, token)
    assert await sessions.purge_expired_sessions(conn) >= 1
    assert await conn.fetchval("SELECT count(*) FROM sessions WHERE token_hash = $1", token) == 0


async def test_deleting_a_user_ends_their_sessions(conn: Connection) -> None:
    user = await users.create_user(conn, username="fajar", password_hash="h", role="operator")
    token = token_hash()
    expires = datetime.now(UTC) + timedelta(hours=1)
    await sessions.create_session(conn, token_hash=token, user_id=user.id, expires_at=expires)
    await conn.execute("DELETE FROM users WHERE id = $1", user.id)
    assert await sessions.get_session(conn, token) is None


# --- audit ----------------------------------------------------------------------------------------


async def test_audit_round_trip_and_paging(conn: Connection) -> None:
    target = f"case:{secrets.token_hex(4)}"
    first = await audit.append(
        conn,
        actor="alice",
        action="case.open",
        target=target,
        after={"status": "open", "tags": ["banjir", "évacuation"], "priority": 1},
    )
    second = await audit.append(
        conn,
        actor="hub",
        action="case.route",
        target=target,
        before={"owner": None},
        after={"owner": "tagana"},
        detail={"rule": 7},
    )
    third = await audit.append(conn, actor="alice", action="case.note", target=target)

    entries = await audit.list_entries(conn, target=target)
    assert [e.id for e in entries] == [third, second, first]
    assert entries[2].after == {"status": "open", "tags": ["banjir", "évacuation"], "priority": 1}
    assert (entries[1].before, entries[1].detail) == ({"owner": None}, {"rule": 7})
    assert (entries[0].before, entries[0].after, entries[0].detail) == (None, None, None)
    assert entries[0].at.tzinfo is not None

    page = await audit.list_entries(conn, target=target, limit=2)
    assert [e.id for e in page] == [third, second]
    rest = await audit.list_entries(conn, target=target, before_id=page[-1].id)
    assert [e.id for e in rest] == [first]

    by_alice = await audit.list_entries(conn, target=target, actor="alice")
    assert [e.id for e in by_alice] == [third, first]


@pytest.mark.parametrize("limit", [0, audit.MAX_LIMIT + 1])
async def test_audit_limit_is_bounded(conn: Connection, limit: int) -> None:
    with pytest.raises(ValueError, match="limit"):
        await audit.list_entries(conn, limit=limit)
