"""Start-up time: ``posko up`` until ``/readyz`` answers 200, embedded and external services.

The baseline is the floor of any Python web service here: a subprocess that imports aiohttp and
answers ``/readyz`` at once. External services are used when ``POSKO_DATABASE__URL`` and
``POSKO_MQTT__URL`` are set; the bench then works in a throwaway database of its own.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg

from bench.report import Figure, emit, parser

READY_TIMEOUT = 120.0
BASELINE_APP = """
import sys
from aiohttp import web
async def ready(request):
    return web.json_response({"ready": True})
app = web.Application()
app.router.add_get("/readyz", ready)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_ready(port: int, proc: asyncio.subprocess.Process) -> None:
    url = f"http://127.0.0.1:{port}/readyz"
    deadline = time.monotonic() + READY_TIMEOUT
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                raise RuntimeError(f"process exited with {proc.returncode} before it was ready")
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.02)
    raise TimeoutError(f"{url} not ready after {READY_TIMEOUT} s")


async def timed_start(argv: list[str], env: dict[str, str], port: int) -> tuple[float, float]:
    """Start a process, time it to ready, then SIGTERM it and time the shutdown."""
    start = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    try:
        await wait_ready(port, proc)
        ready = time.perf_counter() - start
        stop_start = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), 60)
        if proc.returncode not in (0, -signal.SIGTERM):
            raise RuntimeError(f"exit {proc.returncode}: {stderr.decode()[-2000:]}")
        return ready, time.perf_counter() - stop_start
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def hub_env(data_dir: Path, port: int, *, external: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSKO_")}
    env.update(
        {
            "POSKO_WEB__PORT": str(port),
            "POSKO_HUB__DATA_DIR": str(data_dir),
            "POSKO_HUB__LOG_LEVEL": "WARNING",
            "POSKO_HUB__ID": f"bench-{uuid.uuid4().hex[:6]}",
        }
    )
    if external:
        env.update(external)
    else:
        env["POSKO_MQTT__EMBEDDED_PORT"] = str(free_port())
    return env


@asynccontextmanager
async def throwaway_database(url: str) -> AsyncIterator[str]:
    name = f"posko_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        parts = urlsplit(url)
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def main(quick: bool) -> list[Figure]:
    rounds = 1 if quick else 3
    hub = [sys.executable, "-m", "ops", "up"]
    figures: list[Figure] = []

    baseline_times, baseline_stops = [], []
    for _ in range(rounds + 1):
        port = free_port()
        ready, stopped = await timed_start(
            [sys.executable, "-c", BASELINE_APP, str(port)], dict(os.environ), port
        )
        baseline_times.append(ready)
        baseline_stops.append(stopped)
    # The first run only warms the page cache.
    baseline = statistics.median(baseline_times[1:])
    baseline_stop = statistics.median(baseline_stops[1:])

    with tempfile.TemporaryDirectory(prefix="posko-bench-") as tmp:
        data_dir = Path(tmp) / "var"
        cold_port = free_port()
        cold, _ = await timed_start(hub, hub_env(data_dir, cold_port, external=None), cold_port)
        warm_times, stop_times = [], []
        for _ in range(rounds):
            port = free_port()
            warm, stopped = await timed_start(hub, hub_env(data_dir, port, external=None), port)
            warm_times.append(warm)
            stop_times.append(stopped)
    figures += [
        Figure("startup_embedded_first_s", cold, "s", baseline, higher_is_better=False),
        Figure(
            "startup_embedded_s",
            statistics.median(warm_times),
            "s",
            baseline,
            higher_is_better=False,
        ),
        Figure(
            "shutdown_embedded_s",
            statistics.median(stop_times),
            "s",
            baseline_stop,
            higher_is_better=False,
        ),
    ]

    db_url, mqtt_url = os.environ.get("POSKO_DATABASE__URL"), os.environ.get("POSKO_MQTT__URL")
    if db_url and mqtt_url:
        async with throwaway_database(db_url) as dsn:
            ext_times = []
            for _ in range(rounds):
                with tempfile.TemporaryDirectory(prefix="posko-bench-") as tmp:
                    port = free_port()
                    env = hub_env(
                        Path(tmp),
                        port,
                        external={
                            "POSKO_DATABASE__URL": dsn,
                            "POSKO_MQTT__URL": mqtt_url,
                            "POSKO_MQTT__PREFIX": f"posko-bench-{uuid.uuid4().hex[:6]}",
                        },
                    )
                    ready, _ = await timed_start(hub, env, port)
                    ext_times.append(ready)
        figures.append(
            Figure(
                "startup_external_s",
                statistics.median(ext_times),
                "s",
                baseline,
                higher_is_better=False,
            )
        )
    else:
        print(
            "external services not configured: set POSKO_DATABASE__URL and POSKO_MQTT__URL "
            "to measure them",
            file=sys.stderr,
        )
    return figures


if __name__ == "__main__":
    args = parser(__doc__ or "").parse_args()
    emit(asyncio.run(main(args.quick)), as_json=args.json)
