"""The embedded PostgreSQL, as on a fresh machine: always run, even where a server is configured."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from db import users
from db.embedded import EmbeddedPostgres
from db.migrate import load_migrations, migrate
from db.pool import create_pool

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.postgres

CHILD_TIMEOUT = 60.0

# A process using the server like the hub (waits for SIGINT/SIGTERM, then stops it) or like
# `posko user add` (attaches, adds a user, leaves). The data dir comes in the environment so
# that pgrep on the data dir's path finds only PostgreSQL.
CHILD = """
import asyncio, os, signal, sys
from pathlib import Path
from db import users
from db.embedded import EmbeddedPostgres
from db.pool import create_pool

async def main(role):
    server = EmbeddedPostgres(Path(os.environ["POSKO_TEST_PG_DIR"]))
    await server.start()
    print("started" if server.started else "attached", flush=True)
    if role == "hub":
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopping.set)
        print("ready", flush=True)
        await stopping.wait()
    elif role == "user-add":
        pool = await create_pool(server.dsn, max_size=1)
        async with pool.acquire() as conn:
            await users.create_user(conn, username="from-cli", password_hash="h", role="viewer")
        await pool.close()
    elif role == "probe":
        pool = await create_pool(server.dsn, max_size=1)
        assert await pool.fetchval("SELECT 1") == 1
        await asyncio.sleep(0.2)
        await pool.close()
    else:
        print("ready", flush=True)
        await asyncio.sleep(3600)
    await server.stop()

asyncio.run(main(sys.argv[1]))
"""


def postgres_processes(data_dir: Path) -> list[str]:
    """Processes whose command line names the data dir: the postmaster, when one runs there."""
    found = subprocess.run(
        ["pgrep", "-af", re.escape(str(data_dir))], capture_output=True, text=True, check=False
    )
    return found.stdout.splitlines()


async def start_child(role: str, data_dir: Path) -> asyncio.subprocess.Process:
    """Start a child in its own process group, as a terminal runs a foreground job."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        role,
        env=os.environ | {"POSKO_TEST_PG_DIR": str(data_dir)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        process_group=0,
    )


async def read_until_ready(child: asyncio.subprocess.Process) -> list[str]:
    assert child.stdout is not None
    lines: list[str] = []
    while not lines or lines[-1] != "ready":
        line = await asyncio.wait_for(child.stdout.readline(), CHILD_TIMEOUT)
        if not line:
            _, stderr = await child.communicate()
            pytest.fail(f"child exited early: {stderr.decode()}")
        lines.append(line.decode().strip())
    return lines


async def finish(child: asyncio.subprocess.Process) -> tuple[str, str]:
    stdout, stderr = await asyncio.wait_for(child.communicate(), CHILD_TIMEOUT)
    return stdout.decode(), stderr.decode()


async def test_fresh_start_migrate_attach_and_stop(pg_data_dir: Path) -> None:
    server = EmbeddedPostgres(pg_data_dir)
    await server.start()
    try:
        assert server.started
        assert server.dsn == f"postgresql://postgres@/posko?host={pg_data_dir}&port=5432"
        assert postgres_processes(pg_data_dir)
        pool = await create_pool(server.dsn, max_size=2)
        try:
            assert await migrate(pool) == [m.name for m in load_migrations()]

            attached = EmbeddedPostgres(pg_data_dir)
            await attached.start()
            assert not attached.started
            assert attached.dsn == server.dsn
            assert await migrate(pool) == []
            await attached.stop()
            assert await pool.fetchval("SELECT 1") == 1

            # Another process attaches, works and leaves; the server stays up for this one.
            child = await start_child("user-add", pg_data_dir)
            stdout, stderr = await finish(child)
            assert (child.returncode, stdout.split()) == (0, ["attached"]), stderr
            async with pool.acquire() as conn:
                assert await users.get_user_by_username(conn, "from-cli") is not None
        finally:
            await pool.close()
    finally:
        await server.stop()
    assert postgres_processes(pg_data_dir) == []


async def test_restart_of_existing_data_dir_keeps_data(pg_data_dir: Path) -> None:
    async with EmbeddedPostgres(pg_data_dir) as server:
        pool = await create_pool(server.dsn, max_size=1)
        try:
            await migrate(pool)
            async with pool.acquire() as conn:
                await users.create_user(conn, username="kept", password_hash="h", role="viewer")
        finally:
            await pool.close()
    assert postgres_processes(pg_data_dir) == []

    async with EmbeddedPostgres(pg_data_dir) as server:
        assert server.started
        pool = await create_pool(server.dsn, max_size=1)
        try:
            assert await migrate(pool) == []
            async with pool.acquire() as conn:
                assert await users.get_user_by_username(conn, "kept") is not None
        finally:
            await pool.close()
    assert postgres_processes(pg_data_dir) == []


async def test_last_process_to_leave_stops_the_server(pg_data_dir: Path) -> None:
    first = EmbeddedPostgres(pg_data_dir)
    second = EmbeddedPostgres(pg_data_dir)
    await first.start()
    try:
        await second.start()
        try:
            await first.stop()  # the starter leaves first: the server must stay for the other
            assert postgres_processes(pg_data_dir)
            pool = await create_pool(second.dsn, max_size=1)
            assert await pool.fetchval("SELECT 1") == 1
            await pool.close()
        finally:
            await second.stop()
    finally:
        await first.stop()
    assert postgres_processes(pg_data_dir) == []


async def test_processes_starting_together_share_the_server(pg_data_dir: Path) -> None:
    children = [await start_child("probe", pg_data_dir) for _ in range(3)]
    results = [await finish(child) for child in children]
    for child, (_, stderr) in zip(children, results, strict=True):
        assert child.returncode == 0, stderr
    assert "started" in [stdout.strip() for stdout, _ in results]
    assert postgres_processes(pg_data_dir) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_signalled_hub_leaves_no_server(pg_data_dir: Path, signum: signal.Signals) -> None:
    child = await start_child("hub", pg_data_dir)
    assert await read_until_ready(child) == ["started", "ready"]
    assert postgres_processes(pg_data_dir)
    os.killpg(child.pid, signum)  # to the whole group, as Ctrl-C in a terminal does
    _, stderr = await finish(child)
    assert child.returncode == 0, stderr
    assert postgres_processes(pg_data_dir) == []


async def test_server_left_by_a_killed_process_is_adopted(pg_data_dir: Path) -> None:
    child = await start_child("sleeper", pg_data_dir)
    assert await read_until_ready(child) == ["started", "ready"]
    child.kill()
    await finish(child)
    assert postgres_processes(pg_data_dir), "the server outlives a killed process"

    server = EmbeddedPostgres(pg_data_dir)
    await server.start()
    assert not server.started
    await server.stop()  # the killed process no longer counts: the last one stops it
    assert postgres_processes(pg_data_dir) == []


@pytest.mark.parametrize("delay", [0.2, 0.6])
async def test_cancelled_start_leaves_no_server(pg_data_dir: Path, delay: float) -> None:
    server = EmbeddedPostgres(pg_data_dir)
    starting = asyncio.create_task(server.start())
    await asyncio.sleep(delay)  # somewhere in initdb, pg_ctl start or creating the database
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting
    assert postgres_processes(pg_data_dir) == []
    await server.stop()  # harmless after a failed start
