"""Case intake: cases/s through ``POST /api/v1/cases`` with a concurrent client, and latency.

The baseline, measured in the same run on the same database, is raw asyncpg: one ``INSERT`` of
the same row into ``cases`` per report, with the same concurrency. The API adds everything a
real report costs: HTTP, session check, validation, routing lookup, history entry, duplicate
search, the commit, the bus announcement and the JSON answer. Client and hub share one process
and one loop here, so the API figure is a floor.

External services are used when ``POSKO_DATABASE__URL`` and ``POSKO_MQTT__URL`` are set (in a
throwaway database); otherwise the embedded ones, like the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from bench.report import Figure, emit, latency_figures, parser
from bench.startup import free_port, throwaway_database
from ops.app import Hub
from ops.core.config import Config
from ops.users import add_user
from ops.web.app import serve

CONCURRENCY = 16
CATEGORIES = ("fire", "medical", "social_aid", "disaster", "public_order", "infrastructure")


def reports(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """The same reports for both sides: spread over Indonesia, mixed categories."""
    rng = random.Random(seed)
    return [
        {
            "category": rng.choice(CATEGORIES),
            "title": f"Laporan bench {i}",
            "description": "Laporan uji beban dari bench/cases.py",
            "lat": round(rng.uniform(-10.0, 5.0), 5),
            "lon": round(rng.uniform(95.0, 140.0), 5),
            "region": f"Kab. {rng.randrange(500)}",
            "reporter_contact": f"08{rng.randrange(10**9):09d}",
        }
        for i in range(count)
    ]


async def run_concurrently(
    items: list[dict[str, Any]], call: Callable[[dict[str, Any]], Awaitable[None]]
) -> tuple[float, list[float]]:
    """Run ``call`` over ``items`` with CONCURRENCY workers; return (seconds, latencies)."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)
    latencies: list[float] = []

    async def worker() -> None:
        while not queue.empty():
            item = queue.get_nowait()
            start = time.perf_counter()
            await call(item)
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(CONCURRENCY):
            group.create_task(worker())
    return time.perf_counter() - start, latencies


@contextlib.asynccontextmanager
async def bench_config() -> AsyncIterator[Config]:
    db_url, mqtt_url = os.environ.get("POSKO_DATABASE__URL"), os.environ.get("POSKO_MQTT__URL")
    with tempfile.TemporaryDirectory(prefix="posko-bench-") as tmp:
        data: dict[str, Any] = {
            "hub": {"id": f"bench-{secrets.token_hex(3)}", "data_dir": Path(tmp) / "var"},
            "web": {"host": "127.0.0.1", "port": 0},
            "database": {"pool_max": CONCURRENCY + 4},
            "mqtt": {"embedded_port": free_port()},
        }
        if db_url and mqtt_url:
            async with throwaway_database(db_url) as dsn:
                data["database"]["url"] = dsn
                data["mqtt"] = {"url": mqtt_url, "prefix": f"posko-bench-{secrets.token_hex(3)}"}
                yield Config.model_validate(data)
        else:
            yield Config.model_validate(data)


async def main(quick: bool) -> list[Figure]:
    logging.basicConfig(level=logging.WARNING)
    count = 400 if quick else 3000
    api_rows, raw_rows = reports(count), reports(count)
    async with bench_config() as config, Hub(config) as hub, serve(hub, port=0) as served:
        password = secrets.token_urlsafe(16)
        await add_user(
            hub.pool, username="bench", password=password, role="operator", actor="bench"
        )
        jar = aiohttp.CookieJar(unsafe=True)
        connector = aiohttp.TCPConnector(limit=CONCURRENCY)
        async with aiohttp.ClientSession(served.url, cookie_jar=jar, connector=connector) as http:
            async with http.post(
                "/api/v1/auth/login", json={"username": "bench", "password": password}
            ) as response:
                response.raise_for_status()

            async def through_api(report: dict[str, Any]) -> None:
                async with http.post("/api/v1/cases", json=report) as response:
                    if response.status != 201:
                        raise RuntimeError(f"{response.status}: {await response.text()}")
                    await response.read()

            async def raw_insert(report: dict[str, Any]) -> None:
                now = datetime.now(UTC)
                async with hub.pool.acquire() as conn:
                    await conn.execute(
                        """
                        INSERT INTO cases (channel, category, priority, title, description, lat,
                            lon, region, reporter_contact, sla_due_at)
                        VALUES ('api', $1, 'high', $2, $3, $4, $5, $6, $7, $8)
                        """,
                        report["category"],
                        report["title"],
                        report["description"],
                        report["lat"],
                        report["lon"],
                        report["region"],
                        report["reporter_contact"],
                        now + timedelta(hours=4),
                    )

            warm = reports(50, seed=1)
            await run_concurrently(warm, through_api)
            await run_concurrently(warm, raw_insert)
            raw_seconds, raw_latencies = await run_concurrently(raw_rows, raw_insert)
            api_seconds, api_latencies = await run_concurrently(api_rows, through_api)
    return [
        Figure(
            "cases_per_s",
            count / api_seconds,
            "cases/s",
            count / raw_seconds,
            higher_is_better=True,
        ),
        *latency_figures("case_create", api_latencies, raw_latencies),
    ]


if __name__ == "__main__":
    args = parser(__doc__ or "").parse_args()
    emit(asyncio.run(main(args.quick)), as_json=args.json)
