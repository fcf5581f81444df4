"""Dispatch at room scale: 10,000 units and 1,000 open cases.

Figures, each beside a baseline measured in the same run:

- ``recommend_p50_ms`` / ``recommend_p99_ms``: the ranking for one case (nearest candidates by
  the GiST index, then kind, skills and freshness), beside the bare KNN query of the same cases
  (``ORDER BY ll_to_earth(lat, lon) <-> … LIMIT 10``), the index's own floor;
- ``recommend_http_p50_ms`` / ``recommend_http_p99_ms``: the same rankings through
  ``GET /api/v1/units/recommend?case=ID`` with a signed-in session (session check, ranking,
  JSON), beside the library call above;
- ``positions_mqtt_to_db_per_s``: positions published on ``{prefix}/units/{id}/position`` from
  another process and stored in the database by the hub (MQTT link, validation, batched COPY,
  latest-fix update), beside a bare aiomqtt subscriber's receive rate for the same load (the
  broker's own rate with the client the hub uses);
- ``positions_mqtt_stored_fraction``: of the positions published, the share the hub stored,
  beside the share the bare subscriber received (positions are QoS 0: a broker drops them for a
  client that falls behind, and the next fix supersedes a lost one);
- ``positions_db_write_per_s``: the ingestor's write path alone (validate, buffer, COPY into
  the history, move each unit's latest fix), beside a raw COPY of the same rows.

With ``POSKO_DATABASE__URL`` set the bench works in a throwaway database on that server, else in
an embedded server; with ``POSKO_MQTT__URL`` set it uses that broker (Mosquitto here), else the
embedded amqtt broker, which tops out near 2.6k msg/s on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import random
import secrets
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as EventType
from pathlib import Path

import aiohttp
import aiomqtt

from bench.devices import broker
from bench.report import Figure, emit, latency_figures, parser
from bench.startup import throwaway_database
from db.pool import Pool
from ops.app import Hub
from ops.core.config import Config
from ops.dispatch.setup import parts_of
from ops.units import recommend
from ops.units.model import KINDS
from ops.users import add_user
from ops.web.app import serve

UNITS = 10_000
CASES = 1_000
SKILLS = ("first_aid", "firefighting", "search_rescue", "child_protection", "disability_care")
# Java and Bali: where the units and cases are scattered.
LAT, LON = (-8.8, -5.9), (105.2, 115.7)
DRAIN = 30.0


def _publish_positions(host: str, port: int, prefix: str, count: int, started: EventType) -> None:
    """Child process: ``count`` position messages over the 10,000 units, as fast as it can."""
    import json  # noqa: PLC0415 - the child imports what it needs

    import paho.mqtt.client as mqtt  # noqa: PLC0415

    version = mqtt.CallbackAPIVersion.VERSION2  # type: ignore[attr-defined]
    client = mqtt.Client(version, client_id=f"bench-pos-{os.getpid()}")
    client.max_queued_messages_set(0)
    client.connect(host, port, keepalive=60)
    client.loop_start()
    rng = random.Random(7)
    started.set()
    now = time.time()
    for n in range(count):
        unit = n % UNITS
        body = json.dumps(
            {"lat": rng.uniform(*LAT), "lon": rng.uniform(*LON), "ts": now - 60 + n / count * 50}
        )
        info = client.publish(f"{prefix}/units/bench-{unit}/position", body, qos=0)
        if n % 1000 == 0:
            info.wait_for_publish(5)
    time.sleep(0.5)
    client.loop_stop()
    client.disconnect()


@contextlib.contextmanager
def publisher(host: str, port: int, prefix: str, count: int) -> Iterator[BaseProcess]:
    """Run the publishing process; yield once it publishes."""
    context = multiprocessing.get_context("spawn")
    started = context.Event()
    process = context.Process(
        target=_publish_positions, args=(host, port, prefix, count, started), daemon=True
    )
    process.start()
    try:
        if not started.wait(30):
            raise RuntimeError("the publishing process did not start")
        yield process
    finally:
        process.join(120)
        if process.is_alive():
            process.kill()


async def _until_still(counter: Callable[[], int], began: float) -> tuple[int, float]:
    """Wait until ``counter()`` stops growing for a second; (count, seconds to the last one)."""
    last, last_at = counter(), time.perf_counter()
    deadline = time.perf_counter() + DRAIN
    while time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
        now = counter()
        if now != last:
            last, last_at = now, time.perf_counter()
        elif time.perf_counter() - last_at > 1.0:
            break
    return last, last_at - began


async def broker_rate(host: str, port: int, count: int) -> tuple[float, int]:
    """A bare aiomqtt subscriber under the same load: (messages received per second, received)."""
    prefix = f"bench-base-{secrets.token_hex(3)}"
    received = 0
    async with aiomqtt.Client(host, port, identifier=f"bench-base-{secrets.token_hex(3)}") as sub:
        await sub.subscribe(f"{prefix}/units/+/position", qos=0)

        async def read() -> None:
            nonlocal received
            async for _ in sub.messages:
                received += 1

        reader = asyncio.create_task(read())
        try:
            with publisher(host, port, prefix, count):
                began = time.perf_counter()
                got, seconds = await _until_still(lambda: received, began)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
    return got / seconds, got


async def seed(pool: Pool) -> list[tuple[int, float, float]]:
    """10,000 units and 1,000 open cases, by COPY; returns the cases (id, lat, lon)."""
    rng = random.Random(11)
    now = datetime.now(UTC)
    units = []
    for n in range(UNITS):
        skills = sorted(rng.sample(SKILLS, rng.randint(0, 2)))
        fresh = rng.random() < 0.9
        position_at = now if fresh else now.replace(year=now.year - 1)
        units.append(
            (
                f"bench-{n}",
                f"B{n}",
                f"Bench unit {n}",
                rng.choice(KINDS),
                skills,
                rng.uniform(*LAT),
                rng.uniform(*LON),
                position_at,
                "bench",
            )
        )
    async with pool.acquire() as conn:
        await conn.copy_records_to_table(
            "units",
            records=units,
            columns=(
                "id",
                "callsign",
                "name",
                "kind",
                "skills",
                "lat",
                "lon",
                "position_at",
                "position_source",
            ),
        )
        await conn.execute(
            """UPDATE units SET channels = jsonb_build_array(
                   jsonb_build_object('channel', 'mqtt', 'address', id))"""
        )
        categories = [r["code"] for r in await conn.fetch("SELECT code FROM case_categories")]
        cases = await conn.fetch(
            """
            INSERT INTO cases (channel, category, priority, title, lat, lon, sla_due_at)
            SELECT 'bench', c, 'high', 'bench case', la, lo, now() + interval '1 day'
            FROM unnest($1::text[], $2::float8[], $3::float8[]) AS t (c, la, lo)
            RETURNING id, lat, lon
            """,
            [rng.choice(categories) for _ in range(CASES)],
            [rng.uniform(*LAT) for _ in range(CASES)],
            [rng.uniform(*LON) for _ in range(CASES)],
        )
        await conn.execute("ANALYZE units")
    return [(r["id"], r["lat"], r["lon"]) for r in cases]


async def recommend_times(hub: Hub, cases: list[tuple[int, float, float]]) -> list[float]:
    """Seconds per ranking, one per case."""
    times = []
    stale_after = hub.config.dispatch.stale_after
    for case_id, _, _ in cases:
        began = time.perf_counter()
        result = await recommend.recommend(
            hub.pool, case_id, now=datetime.now(UTC), stale_after=stale_after, limit=10
        )
        times.append(time.perf_counter() - began)
        assert result.ranked, "a ranking without units"  # noqa: S101 - a bench's sanity check
    return times


async def recommend_http_times(hub: Hub, cases: list[tuple[int, float, float]]) -> list[float]:
    """Seconds per ranking asked over HTTP by a signed-in viewer, one per case."""
    password = secrets.token_urlsafe(16)
    await add_user(hub.pool, username="bench", password=password, role="viewer", actor="bench")
    times = []
    async with (
        serve(hub, port=0) as served,
        aiohttp.ClientSession(served.url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
    ):
        login = {"username": "bench", "password": password}
        async with http.post("/api/v1/auth/login", json=login) as response:
            response.raise_for_status()
        for case_id, _, _ in cases:
            began = time.perf_counter()
            async with http.get(f"/api/v1/units/recommend?case={case_id}&limit=10") as response:
                response.raise_for_status()
                body = await response.json()
            times.append(time.perf_counter() - began)
            assert body["units"], "a ranking without units"  # noqa: S101 - a bench's sanity check
    return times


async def knn_times(pool: Pool, cases: list[tuple[int, float, float]]) -> list[float]:
    """Seconds per bare nearest-ten query of the same cases."""
    times = []
    for _, lat, lon in cases:
        began = time.perf_counter()
        async with pool.acquire() as conn:
            await conn.fetch(
                """
                SELECT id FROM units WHERE lat IS NOT NULL
                ORDER BY ll_to_earth(lat, lon) <-> ll_to_earth($1, $2) LIMIT 10
                """,
                lat,
                lon,
            )
        times.append(time.perf_counter() - began)
    return times


async def write_rates(hub: Hub, rows: int) -> tuple[float, float]:
    """(ingestor write path rows/s, raw COPY rows/s) for the same rows."""
    rng = random.Random(3)
    now = datetime.now(UTC)
    fixes = [(f"bench-{n % UNITS}", rng.uniform(*LAT), rng.uniform(*LON), now) for n in range(rows)]
    ingestor = parts_of(hub).ingestor
    await hub.supervisor.stop(ingestor.name)  # this bench drives the writer itself
    batch = hub.config.dispatch.position_batch
    began = time.perf_counter()
    for unit_id, lat, lon, at in fixes:
        ingestor.ingest(unit_id, lat, lon, at, "bench")
        if ingestor.pending >= batch:
            await ingestor.write_one_batch()
    while ingestor.pending:
        await ingestor.write_one_batch()
    ours = rows / (time.perf_counter() - began)

    records = [(u, at, la, lo, "bench", now) for u, la, lo, at in fixes]
    began = time.perf_counter()
    for start in range(0, rows, batch):
        async with hub.pool.acquire() as conn, conn.transaction():
            await conn.copy_records_to_table(
                "unit_positions",
                records=records[start : start + batch],
                columns=("unit_id", "at", "lat", "lon", "source", "received_at"),
            )
    raw = rows / (time.perf_counter() - began)
    return ours, raw


@contextlib.asynccontextmanager
async def bench_hub(host: str, port: int, data_dir: Path) -> AsyncIterator[Hub]:
    """A hub on the broker and a throwaway (or embedded) database."""
    url = os.environ.get("POSKO_DATABASE__URL")
    async with contextlib.AsyncExitStack() as stack:
        database = await stack.enter_async_context(throwaway_database(url)) if url else None
        config = Config.model_validate(
            {
                "hub": {"id": f"bench-{secrets.token_hex(3)}", "data_dir": data_dir},
                "database": {"url": database},
                "mqtt": {"url": f"mqtt://{host}:{port}", "prefix": f"bench-{secrets.token_hex(3)}"},
            }
        )
        hub = await stack.enter_async_context(Hub(config))
        async with asyncio.timeout(15):
            while not hub.mqtt.connected:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        yield hub


async def main(quick: bool) -> list[Figure]:
    picks = 200 if quick else CASES
    messages = 20_000 if quick else 100_000
    async with broker() as (host, port):
        base_rate, base_received = await broker_rate(host, port, messages)
        with tempfile.TemporaryDirectory(prefix="posko-bench-") as tmp:
            async with bench_hub(host, port, Path(tmp)) as hub:
                cases = (await seed(hub.pool))[:picks]
                await knn_times(hub.pool, cases[:20])  # warm the cache and the plans
                knn = await knn_times(hub.pool, cases)
                ours = await recommend_times(hub, cases)
                over_http = await recommend_http_times(hub, cases)

                ingestor = parts_of(hub).ingestor
                before = ingestor.stored
                with publisher(host, port, hub.config.mqtt.prefix, messages):
                    began = time.perf_counter()
                    stored, seconds = await _until_still(lambda: ingestor.stored, began)
                mqtt_rate = (stored - before) / seconds
                write_rate, copy_rate = await write_rates(hub, 50_000 if quick else 200_000)
    return [
        *latency_figures("recommend", ours, knn),
        *latency_figures("recommend_http", over_http, ours),
        Figure("positions_mqtt_to_db_per_s", mqtt_rate, "msg/s", base_rate, higher_is_better=True),
        Figure(
            "positions_mqtt_stored_fraction",
            (stored - before) / messages,
            "of sent",
            base_received / messages,
            higher_is_better=True,
        ),
        Figure("positions_db_write_per_s", write_rate, "rows/s", copy_rate, higher_is_better=True),
    ]


if __name__ == "__main__":
    args = parser(__doc__ or "").parse_args()
    emit(asyncio.run(main(args.quick)), as_json=args.json)
