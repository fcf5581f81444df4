"""Live fan-out: 50 connected clients, 1,000 bus events per second, delay from publish to receipt.

The hub runs in this process (its real bus, auth, live socket and per-client writer); the 50
clients run in a second process, so client parsing does not steal the hub's loop. Both sides
read ``time.monotonic()`` (CLOCK_MONOTONIC, shared by every process on the machine). The baseline
is the same fan-out from a bare aiohttp WebSocket handler with no bus, auth or envelope: one
queue and one writer task per client, fed at the same rate, measured by the same clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.report import Figure, emit, parser
from bench.startup import free_port, throwaway_database
from ops.app import Hub
from ops.core.config import Config, load_config
from ops.core.events import Topic
from ops.http.sessions import COOKIE_NAME
from ops.users import add_user
from ops.web.app import serve

CLIENTS = 50
RATE = 1000  # events per second
TICK = 0.01  # publish in 10 ms batches
TOPIC_NAME = "bench.live"
CONNECT_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class LiveTick:
    n: int
    sent: float


LIVE_TICK: Topic[LiveTick] = Topic(TOPIC_NAME)


# -- the client process ---------------------------------------------------------------------------


async def run_clients(url: str, cookie: str, count: int, expected: int) -> dict[str, Any]:
    """Connect ``count`` clients, say READY, collect delays until ``expected`` or a pause."""
    delays: list[float] = []
    closed: list[int | None] = []
    headers = {"Cookie": f"{COOKIE_NAME}={cookie}"} if cookie else {}
    async with aiohttp.ClientSession(headers=headers) as session:
        sockets = [await session.ws_connect(url, max_msg_size=0) for _ in range(count)]
        for ws in sockets:
            # The live feed greets first; the baseline sends nothing until the run starts.
            if cookie:
                await ws.receive(timeout=CONNECT_TIMEOUT)
        print("READY", flush=True)

        async def read(ws: aiohttp.ClientWebSocketResponse) -> None:
            got = 0
            while got < expected:
                try:
                    message = await ws.receive(timeout=5.0)
                except TimeoutError:
                    break
                if message.type is not aiohttp.WSMsgType.TEXT:
                    closed.append(ws.close_code)
                    break
                now = time.monotonic()
                data = json.loads(message.data)
                payload = data.get("payload", data)
                if data.get("topic", TOPIC_NAME) != TOPIC_NAME or "sent" not in payload:
                    continue
                delays.append(now - payload["sent"])
                got += 1

        await asyncio.gather(*(read(ws) for ws in sockets))
        for ws in sockets:
            await ws.close()
    return {"delays": delays, "closed": closed}


async def start_clients(
    url: str, cookie: str, expected: int
) -> tuple[asyncio.subprocess.Process, asyncio.StreamReader]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.live",
        "--client",
        url,
        cookie or "-",
        str(CLIENTS),
        str(expected),
        stdout=asyncio.subprocess.PIPE,
    )
    if proc.stdout is None:
        raise RuntimeError("no client output")
    async with asyncio.timeout(CONNECT_TIMEOUT):
        line = await proc.stdout.readline()
    if line.strip() != b"READY":
        raise RuntimeError(f"clients did not connect: {line!r}")
    return proc, proc.stdout


async def finish_clients(proc: asyncio.subprocess.Process, out: asyncio.StreamReader) -> Any:
    async with asyncio.timeout(120):
        data = await out.read()
        await proc.wait()
    return json.loads(data)


async def pace(seconds: float, publish: Any) -> int:
    """Call ``publish(n)`` RATE times a second, in TICK batches; return how many were sent."""
    per_tick = int(RATE * TICK)
    start = time.monotonic()
    sent = 0
    ticks = int(seconds / TICK)
    for tick in range(ticks):
        for _ in range(per_tick):
            publish(sent)
            sent += 1
        delay = start + (tick + 1) * TICK - time.monotonic()
        await asyncio.sleep(max(0.0, delay))
    return sent


# -- the hub --------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def bench_config() -> AsyncIterator[Config]:
    base = load_config(None, os.environ)
    with tempfile.TemporaryDirectory(prefix="posko-bench-live-") as tmp:
        data: dict[str, Any] = {
            "hub": {"id": "bench-live", "data_dir": Path(tmp) / "var", "log_level": "WARNING"},
            "web": {"host": "127.0.0.1", "port": 0, "live_queue": base.web.live_queue},
            "mqtt": {"prefix": "bench-live"},
        }
        if base.mqtt.url is not None:
            data["mqtt"]["url"] = base.mqtt.url
        else:
            data["mqtt"]["embedded_port"] = free_port()
        if base.database.url is not None:
            async with throwaway_database(base.database.url) as url:
                data["database"] = {"url": url}
                yield Config.model_validate(data)
        else:
            yield Config.model_validate(data)


async def through_hub(seconds: float) -> dict[str, Any]:
    expected = int(seconds / TICK) * int(RATE * TICK)
    async with bench_config() as config, Hub(config) as hub, serve(hub, port=0) as served:
        password = secrets.token_urlsafe(16)
        await add_user(hub.pool, username="bench", password=password, role="viewer", actor="bench")
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{served.url}/api/v1/auth/login",
                json={"username": "bench", "password": password},
            ) as response,
        ):
            response.raise_for_status()
            cookie = response.cookies[COOKIE_NAME].value
        url = served.url.replace("http", "ws", 1) + "/api/v1/live"
        proc, out = await start_clients(url, cookie, expected)
        sent = await pace(
            seconds,
            lambda n: hub.bus.publish(
                LIVE_TICK, LiveTick(n, time.monotonic()), source="bench", key=str(n)
            ),
        )
        result = await finish_clients(proc, out)
    return {**result, "sent": sent}


# -- the baseline ---------------------------------------------------------------------------------


async def through_bare_aiohttp(seconds: float) -> dict[str, Any]:
    expected = int(seconds / TICK) * int(RATE * TICK)
    queues: list[asyncio.Queue[str]] = []

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        queue: asyncio.Queue[str] = asyncio.Queue()
        queues.append(queue)

        async def write() -> None:
            while True:
                await ws.send_str(await queue.get())

        writer = asyncio.create_task(write())
        try:
            async for _ in ws:
                pass
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await writer
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        proc, out = await start_clients(f"ws://127.0.0.1:{port}/ws", "", expected)

        def publish(n: int) -> None:
            text = json.dumps({"n": n, "sent": time.monotonic()})
            for queue in queues:
                queue.put_nowait(text)

        sent = await pace(seconds, publish)
        result = await finish_clients(proc, out)
    finally:
        await runner.cleanup()
    return {**result, "sent": sent}


# -- figures --------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 1000) - 1]


async def main(quick: bool) -> list[Figure]:
    # Rounds alternate the baseline and the hub, and each figure is the median over rounds,
    # so a burst of load from elsewhere on the machine hits both sides alike.
    seconds, rounds = (5.0, 1) if quick else (10.0, 3)
    hub_runs, bare_runs = [], []
    for _ in range(rounds):
        bare_runs.append(await through_bare_aiohttp(seconds))
        hub_runs.append(await through_hub(seconds))

    def median(runs: list[dict[str, Any]], q: float) -> float:
        return statistics.median(percentile(run["delays"], q) * 1000 for run in runs)

    def delivered(runs: list[dict[str, Any]]) -> float:
        return statistics.median(len(run["delays"]) / (CLIENTS * run["sent"]) for run in runs)

    return [
        Figure(
            name="live_p50_delay_ms_50_clients_1000_per_s",
            value=median(hub_runs, 0.5),
            unit="ms",
            baseline=median(bare_runs, 0.5),
            higher_is_better=False,
        ),
        Figure(
            name="live_p99_delay_ms_50_clients_1000_per_s",
            value=median(hub_runs, 0.99),
            unit="ms",
            baseline=median(bare_runs, 0.99),
            higher_is_better=False,
        ),
        Figure(
            name="live_delivered_fraction",
            value=delivered(hub_runs),
            unit="of events",
            baseline=delivered(bare_runs),
            higher_is_better=True,
        ),
    ]


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        url, cookie, count, expected = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        outcome = asyncio.run(run_clients(url, "" if cookie == "-" else cookie, count, expected))
        print(json.dumps(outcome))
    else:
        args = parser(__doc__.splitlines()[0]).parse_args()
        emit(asyncio.run(main(args.quick)), as_json=args.json)
