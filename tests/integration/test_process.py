"""``posko`` as a person runs it: the fresh-machine path with embedded services, and its errors.

These always use the embedded PostgreSQL and broker, even in CI, because they prove what a
newcomer's ``make run`` does.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import aiomqtt
import asyncpg
import pytest

from db.migrate import load_migrations
from db.pool import create_pool
from ops.demo import UNITS
from ops.users import authenticate
from tests.fixtures.database import scratch_data_dir, with_database
from tests.polling import eventually

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.broker]

START_TIMEOUT = 90.0
#: The demo units whose positions come by radio.
RADIO_FIRST = {unit.id for unit in UNITS if unit.channels[0] == "radio"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """The hub's ``data_dir``, outside pytest's temporary root (see ``scratch_data_dir``)."""
    with scratch_data_dir() as pg:
        yield pg.parent


def clean_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSKO_")}
    env.update({"POSKO_HUB__DATA_DIR": str(data_dir), **extra})
    return env


def posko(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ops", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def processes_using(path: Path) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(path) in cmdline:
            found.append(f"{proc.name}: {cmdline}")
    return found


@dataclass
class RunningHub:
    """A ``posko up`` process, the ports it serves on, and the task draining its log."""

    proc: asyncio.subprocess.Process
    web_port: int
    mqtt_port: int
    early_log: str
    drain: asyncio.Task[bytes]

    async def log(self) -> str:
        """Everything the hub logged (once it has exited)."""
        return self.early_log + (await self.drain).decode(errors="replace")


async def start_hub(
    env: dict[str, str], cwd: Path, *args: str, log_until: str | None = None, attempts: int = 3
) -> RunningHub:
    """``posko up`` on web port 0, read back from its log; retry if the broker's port was taken.

    With ``log_until``, the log is read (into ``early_log``) until that pattern shows too.

    The embedded broker needs a port number its clients can use, so it gets a free one, which
    something else may take before the hub binds it; that (and only that) is retried.
    """
    for _ in range(attempts):
        mqtt_port = free_port()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ops", "up", *args,
            env={**env, "POSKO_WEB__PORT": "0", "POSKO_MQTT__EMBEDDED_PORT": str(mqtt_port)},
            cwd=cwd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert proc.stderr is not None
        lines: list[str] = []
        web_port: int | None = None
        async with asyncio.timeout(START_TIMEOUT):
            while raw := await proc.stderr.readline():
                lines.append(raw.decode(errors="replace"))
                found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", lines[-1])
                if found:
                    web_port = int(found.group(1))
                if web_port is not None and (
                    log_until is None or re.search(log_until, "".join(lines))
                ):
                    drain = asyncio.create_task(proc.stderr.read())  # keep the pipe flowing
                    return RunningHub(proc, web_port, mqtt_port, "".join(lines), drain)
        await proc.wait()
        if "embedded_port" not in "".join(lines):
            break
    raise AssertionError("the hub did not start listening:\n" + "".join(lines)[-3000:])


async def stop_hub(hub: RunningHub, sig: signal.Signals = signal.SIGINT) -> str:
    """Signal the hub, wait for it, and return its log; fail unless it exited 0."""
    hub.proc.send_signal(sig)
    await asyncio.wait_for(hub.proc.wait(), 30)
    log = await hub.log()
    assert hub.proc.returncode == 0, log[-3000:]
    return log


async def kill_hub(hub: RunningHub) -> None:
    """Make sure the process is gone (after a failed test)."""
    if hub.proc.returncode is None:
        hub.proc.kill()
        await hub.proc.wait()
    await asyncio.gather(hub.drain, return_exceptions=True)


async def wait_ready(port: int, proc: asyncio.subprocess.Process) -> float:
    start = time.monotonic()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:

        async def ready() -> bool:
            assert proc.returncode is None, "the hub exited before it was ready"
            try:
                async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                    if response.status == 200:
                        body = await response.json()
                        assert body["checks"] == {"database": True, "mqtt": True}
                        return True
            except (aiohttp.ClientError, TimeoutError):
                pass
            return False

        await eventually(ready, timeout=START_TIMEOUT, interval=0.1, message="hub ready")
    return time.monotonic() - start


async def test_up_with_embedded_services_then_ctrl_c_leaves_nothing(
    tmp_path: Path, data_dir: Path
) -> None:
    env = clean_env(data_dir)
    hub = await start_hub(env, tmp_path)
    web_port, mqtt_port, proc = hub.web_port, hub.mqtt_port, hub.proc
    try:
        await wait_ready(web_port, proc)
        # The embedded broker answers MQTT on its port.
        _, writer = await asyncio.open_connection("127.0.0.1", mqtt_port)
        writer.close()
        await writer.wait_closed()

        # `posko user add` works beside the running hub, on the same embedded database.
        added = await asyncio.to_thread(
            posko,
            "user",
            "add",
            "ani",
            "--role",
            "supervisor",
            env={**env, "POSKO_PASSWORD": "correct horse battery"},
            cwd=tmp_path,
        )
        assert added.returncode == 0, added.stderr
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"http://127.0.0.1:{web_port}/api/v1/auth/login",
                json={"username": "ani", "password": "correct horse battery"},
            ) as response:
                assert response.status == 200
            async with session.get(f"http://127.0.0.1:{web_port}/readyz") as response:
                assert response.status == 200, "the CLI must not stop the hub's database"

        await stop_hub(hub, signal.SIGINT)
    finally:
        await kill_hub(hub)
    await eventually(lambda: not processes_using(data_dir), timeout=5, interval=0.1)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", mqtt_port))  # the broker's port is free again


async def test_sigterm_stops_as_cleanly(tmp_path: Path, data_dir: Path) -> None:
    hub = await start_hub(clean_env(data_dir), tmp_path)
    try:
        await wait_ready(hub.web_port, hub.proc)
        await stop_hub(hub, signal.SIGTERM)
    finally:
        await kill_hub(hub)
    assert processes_using(data_dir) == []


def test_taken_web_port_is_a_clear_error(tmp_path: Path, data_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = clean_env(
            data_dir, POSKO_WEB__PORT=str(port), POSKO_MQTT__EMBEDDED_PORT=str(free_port())
        )
        result = posko("up", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "web.port" in result.stderr
    assert "POSKO_WEB__PORT" in result.stderr
    # Found before anything else started: no database was created, no broker ran.
    assert "PostgreSQL" not in result.stderr
    assert "broker" not in result.stderr
    assert not (data_dir / "pg").exists()
    assert processes_using(data_dir) == []


def test_taken_broker_port_is_a_clear_error(tmp_path: Path, data_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = clean_env(data_dir, POSKO_WEB__PORT="0", POSKO_MQTT__EMBEDDED_PORT=str(port))
        result = posko("up", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "embedded_port" in result.stderr
    assert processes_using(data_dir) == []


@pytest.mark.parametrize(
    ("env_extra", "config", "expected"),
    [
        ({"POSKO_WEB__PORT": "eighty"}, None, "POSKO_WEB__PORT"),
        ({}, "[web]\nprot = 80\n", "web.prot: unknown key"),
        ({}, "[database]\npassword = 'x'\n", "POSKO_DATABASE__PASSWORD"),
    ],
)
def test_bad_config_names_the_key(
    tmp_path: Path, data_dir: Path, env_extra: dict[str, str], config: str | None, expected: str
) -> None:
    if config is not None:
        (tmp_path / "posko.toml").write_text(config)
    result = posko("up", env=clean_env(data_dir, **env_extra), cwd=tmp_path)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_user_add_refuses_bad_input(tmp_path: Path, data_dir: Path) -> None:
    env = clean_env(data_dir, POSKO_PASSWORD="short")
    result = posko("user", "add", "budi", "--role", "operator", env=env, cwd=tmp_path)
    assert result.returncode != 0
    assert "password" in result.stderr
    assert "Traceback" not in result.stderr
    bad_role = posko("user", "add", "budi", "--role", "admin", env=env, cwd=tmp_path)
    assert bad_role.returncode == 2
    assert "invalid choice" in bad_role.stderr
    assert processes_using(data_dir) == []


async def test_demo_room_comes_alive(tmp_path: Path, data_dir: Path) -> None:
    """``posko up --demo``, what ``make run`` starts: an account, units (on MQTT and on the
    air), devices, reports."""
    signed = r"sign in as 'demo' with password (\S+)"
    hub = await start_hub(clean_env(data_dir), tmp_path, "--demo", log_until=signed)
    web_port, proc = hub.web_port, hub.proc
    try:
        found = re.search(signed, hub.early_log)
        assert found is not None
        password = found.group(1)
        await wait_ready(web_port, proc)
        base = f"http://127.0.0.1:{web_port}"
        jar = aiohttp.CookieJar(unsafe=True)  # the hub is an IP address, as in a browser
        async with aiohttp.ClientSession(base, cookie_jar=jar) as session:
            async with session.post(
                "/api/v1/auth/login", json={"username": "demo", "password": password}
            ) as response:
                assert response.status == 200

            async def room_alive() -> bool:
                async with session.get("/api/v1/units") as response:
                    units = (await response.json())["units"]
                async with session.get("/api/v1/devices") as response:
                    devices = (await response.json())["devices"]
                async with session.get("/api/v1/cases") as response:
                    cases = (await response.json())["cases"]
                placed = [u for u in units if u.get("lat") is not None]
                sensors = [d for d in devices if d["id"] == "banjir-ciliwung"]
                # Units reached by radio first are placed by their beacons, through the demo's
                # gateway on the simulated TNC.
                by_radio = {u["id"] for u in placed if u.get("position_source") == "radio"}
                return bool(
                    len(placed) >= 8
                    and by_radio >= RADIO_FIRST
                    and sensors
                    and sensors[0]["state"] == "online"
                    and cases
                )

            await eventually(room_alive, timeout=60, interval=1)
            async with session.get("/api/v1/walls/utama") as response:
                assert response.status == 200
            # The map opens on the demo city, where its units and devices are.
            async with session.get("/api/v1/console/settings") as response:
                view = (await response.json())["map"]
            assert view["center"] == pytest.approx([-6.1754, 106.8272])
            assert view["zoom"] == 12  # a city, not the archipelago
        await stop_hub(hub)
    finally:
        await kill_hub(hub)
    assert processes_using(data_dir) == []


@pytest.mark.broker
async def test_posko_sim_runs_a_simulator_on_the_broker(
    tmp_path: Path, data_dir: Path, mqtt_broker: tuple[str, int], mqtt_prefix: str
) -> None:
    host, port = mqtt_broker
    prefix = f"{mqtt_prefix}/sim"
    async with aiomqtt.Client(host, port, identifier=f"{prefix}-watcher") as watcher:
        await watcher.subscribe(f"{prefix}/devices/+/telemetry")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ops", "sim", "mqtt-devices",
            "--host", host, "--port", str(port), "--prefix", prefix,
            "--count", "2", "--interval", "0.2",
            env=clean_env(data_dir), cwd=tmp_path,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            seen: set[str] = set()
            async with asyncio.timeout(20):
                async for message in watcher.messages:
                    body = json.loads(message.payload)  # type: ignore[arg-type]
                    assert "ts" in body
                    seen.add(str(message.topic).split("/")[-2])
                    if len(seen) == 2:
                        break
        finally:
            proc.send_signal(signal.SIGINT)
            await asyncio.wait_for(proc.wait(), 20)
    assert seen == {"sim-sensor-0", "sim-sensor-1"}


def posko_on_terminal(
    *args: str, env: dict[str, str], cwd: Path, answers: list[tuple[str, str]], timeout: float = 60
) -> tuple[int, str]:
    """Run ``posko`` on a pseudo-terminal, typing each answer after its prompt appears.

    Returns the exit code and everything the terminal showed. The child gets its own session,
    so ``getpass`` talks to this terminal, never to the one pytest may run in.
    """
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ops", *args],
            stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd, start_new_session=True,
        )  # fmt: skip
    finally:
        os.close(slave)
    deadline = time.monotonic() + timeout
    shown = b""
    try:
        for prompt, answer in answers:
            start = len(shown)
            while prompt.encode() not in shown[start:]:
                chunk = _read_terminal(master, deadline)
                assert chunk, f"the terminal closed before {prompt!r}: {shown.decode()!r}"
                shown += chunk
            os.write(master, answer.encode() + b"\n")
        while chunk := _read_terminal(master, deadline):
            shown += chunk
        returncode = proc.wait(max(0.1, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return returncode, shown.decode(errors="replace")


def _read_terminal(master: int, deadline: float) -> bytes:
    """The next output of the terminal; empty once the other side has closed it."""
    ready, _, _ = select.select([master], [], [], max(0.0, deadline - time.monotonic()))
    if not ready:
        raise AssertionError("the command stopped answering")
    try:
        return os.read(master, 4096)
    except OSError:  # EIO: every process on the terminal has closed it
        return b""


async def test_db_migrate_applies_then_reports_up_to_date(
    tmp_path: Path, data_dir: Path, fresh_database: Callable[[], Awaitable[str]]
) -> None:
    dsn = await fresh_database()
    env = clean_env(data_dir, POSKO_DATABASE__URL=dsn)
    expected = [m.name for m in load_migrations()]

    first = await asyncio.to_thread(posko, "db", "migrate", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout == "applied: " + ", ".join(expected) + "\n"
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT to_regclass('users') IS NOT NULL") is True
    finally:
        await conn.close()

    second = await asyncio.to_thread(posko, "db", "migrate", env=env, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert second.stdout == "database is up to date\n"
    assert not (data_dir / "pg").exists(), "a configured database must not start the embedded one"


async def test_user_add_asks_for_the_password_on_the_terminal(
    tmp_path: Path, data_dir: Path, fresh_database: Callable[[], Awaitable[str]]
) -> None:
    dsn = await fresh_database()
    env = clean_env(data_dir, POSKO_DATABASE__URL=dsn)
    secret = "correct horse battery"
    code, shown = await asyncio.to_thread(
        posko_on_terminal, "user", "add", "sari", "--role", "technician",
        env=env, cwd=tmp_path, answers=[("password: ", secret), ("again: ", secret)],
    )  # fmt: skip
    assert code == 0, shown
    assert "user sari added with role technician" in shown
    assert secret not in shown, "the password must not be echoed"
    pool = await create_pool(dsn)
    try:
        user = await authenticate(pool, "sari", secret)
    finally:
        await pool.close()
    assert user is not None
    assert user.role == "technician"


async def test_user_add_refuses_passwords_that_differ(
    tmp_path: Path, data_dir: Path, fresh_database: Callable[[], Awaitable[str]]
) -> None:
    dsn = await fresh_database()
    env = clean_env(data_dir, POSKO_DATABASE__URL=dsn)
    code, shown = await asyncio.to_thread(
        posko_on_terminal, "user", "add", "sari", "--role", "operator",
        env=env, cwd=tmp_path,
        answers=[("password: ", "correct horse battery"), ("again: ", "correct horse batterY")],
    )  # fmt: skip
    assert code == 2
    assert "posko: the two passwords differ" in shown
    assert "Traceback" not in shown
    conn = await asyncpg.connect(dsn)
    try:  # nothing was written: the command stopped before it touched the database
        assert await conn.fetchval("SELECT to_regclass('users')") is None
    finally:
        await conn.close()


def test_unreachable_database_is_exit_1_not_a_configuration_error(
    tmp_path: Path, data_dir: Path
) -> None:
    port = free_port()  # nothing listens there: connections are refused
    env = clean_env(data_dir, POSKO_DATABASE__URL=f"postgresql://posko@127.0.0.1:{port}/posko")
    started = time.monotonic()
    result = posko("db", "migrate", "--wait", "2", env=env, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert f"posko: database unreachable at 127.0.0.1:{port}" in result.stderr
    assert "configuration" not in result.stderr
    assert "database.url" not in result.stderr
    assert "Traceback" not in result.stderr
    # Each attempt is logged while it waits, and the wait is bounded.
    assert result.stderr.count(f"database unreachable at 127.0.0.1:{port} (attempt") >= 2
    assert time.monotonic() - started < 30


def test_unknown_database_is_still_a_configuration_error(
    tmp_path: Path, data_dir: Path, pg_server_dsn: str
) -> None:
    env = clean_env(
        data_dir, POSKO_DATABASE__URL=with_database(pg_server_dsn, "posko_no_such_database")
    )
    started = time.monotonic()
    result = posko("db", "migrate", env=env, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "database.url" in result.stderr
    assert "posko_no_such_database" in result.stderr
    assert time.monotonic() - started < 15, "a refusal must not be retried"
