"""``posko`` as a person runs it: the fresh-machine path with embedded services, and its errors.

These always use the embedded PostgreSQL and broker, even in CI, because they prove what a
newcomer's ``make run`` does.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import aiomqtt
import pytest

from tests.fixtures.database import scratch_data_dir

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.broker]

START_TIMEOUT = 90.0


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


async def wait_ready(port: int, proc: asyncio.subprocess.Process) -> float:
    start = time.monotonic()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while time.monotonic() - start < START_TIMEOUT:
            assert proc.returncode is None, "the hub exited before it was ready"
            try:
                async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                    if response.status == 200:
                        body = await response.json()
                        assert body["checks"] == {"database": True, "mqtt": True}
                        return time.monotonic() - start
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the hub never became ready")


async def test_up_with_embedded_services_then_ctrl_c_leaves_nothing(
    tmp_path: Path, data_dir: Path
) -> None:
    web_port, mqtt_port = free_port(), free_port()
    env = clean_env(
        data_dir, POSKO_WEB__PORT=str(web_port), POSKO_MQTT__EMBEDDED_PORT=str(mqtt_port)
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ops",
        "up",
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
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

        proc.send_signal(signal.SIGINT)
        _, stderr = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, stderr.decode()[-3000:]
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    for _ in range(50):
        if not processes_using(data_dir):
            break
        await asyncio.sleep(0.1)
    assert processes_using(data_dir) == []
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", mqtt_port))  # the broker's port is free again


async def test_sigterm_stops_as_cleanly(tmp_path: Path, data_dir: Path) -> None:
    web_port, mqtt_port = free_port(), free_port()
    env = clean_env(
        data_dir, POSKO_WEB__PORT=str(web_port), POSKO_MQTT__EMBEDDED_PORT=str(mqtt_port)
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ops",
        "up",
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await wait_ready(web_port, proc)
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, stderr.decode()[-3000:]
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
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
    assert processes_using(data_dir) == []


def test_taken_broker_port_is_a_clear_error(tmp_path: Path, data_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = clean_env(
            data_dir, POSKO_WEB__PORT=str(free_port()), POSKO_MQTT__EMBEDDED_PORT=str(port)
        )
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


async def read_until(stream: asyncio.StreamReader, pattern: str) -> str:
    """Read log lines until one matches ``pattern``; return the match's first group."""
    regex = re.compile(pattern)
    async with asyncio.timeout(START_TIMEOUT):
        while line := await stream.readline():
            found = regex.search(line.decode(errors="replace"))
            if found:
                return found.group(1)
    raise AssertionError(f"the log ended without {pattern!r}")


async def test_demo_room_comes_alive(tmp_path: Path, data_dir: Path) -> None:
    """``posko up --demo``, what ``make run`` starts: an account, units, devices, reports."""
    web_port, mqtt_port = free_port(), free_port()
    env = clean_env(
        data_dir, POSKO_WEB__PORT=str(web_port), POSKO_MQTT__EMBEDDED_PORT=str(mqtt_port)
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ops", "up", "--demo",
        env=env, cwd=tmp_path, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    drain: asyncio.Task[bytes] | None = None
    try:
        password = await read_until(proc.stderr, r"sign in as 'demo' with password (\S+)")
        drain = asyncio.create_task(proc.stderr.read())  # keep the pipe from filling up
        await wait_ready(web_port, proc)
        base = f"http://127.0.0.1:{web_port}"
        jar = aiohttp.CookieJar(unsafe=True)  # the hub is an IP address, as in a browser
        async with aiohttp.ClientSession(base, cookie_jar=jar) as session:
            async with session.post(
                "/api/v1/auth/login", json={"username": "demo", "password": password}
            ) as response:
                assert response.status == 200
            async with asyncio.timeout(60):
                while True:
                    async with session.get("/api/v1/units") as response:
                        units = (await response.json())["units"]
                    async with session.get("/api/v1/devices") as response:
                        devices = (await response.json())["devices"]
                    async with session.get("/api/v1/cases") as response:
                        cases = (await response.json())["cases"]
                    placed = [u for u in units if u.get("lat") is not None]
                    sensors = [d for d in devices if d["id"] == "banjir-ciliwung"]
                    if len(placed) >= 8 and sensors and sensors[0]["state"] == "online" and cases:
                        break
                    await asyncio.sleep(1)
            async with session.get("/api/v1/walls/utama") as response:
                assert response.status == 200
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 30)
        assert proc.returncode == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        if drain is not None:
            await drain
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
