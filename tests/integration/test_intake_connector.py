"""The external complaint-system connector against a local HTTP server standing in for it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from ops.app import Hub
from ops.cases import service
from ops.core.events import ADAPTER_STATUS, AdapterState
from ops.intake import connector as connector_module
from ops.intake.connector import ExternalConnector
from tests.fixtures.hub import TEST_RESTART_POLICY, ConfigFactory
from tests.polling import eventually

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

WAIT = 10.0
NAME = "intake.connector"


@dataclass
class FakeLapor:
    """The external system: serves records, remembers the statuses pushed back."""

    records: list[dict[str, Any]] = field(default_factory=list)
    answer: Callable[[], web.StreamResponse] | None = None
    delay: float = 0.0  # how long an answer is held back, unless the server is shut down first
    pushed: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    polls: int = 0
    tokens: list[str | None] = field(default_factory=list)
    refuse: dict[str, int] = field(default_factory=dict)  # record id -> HTTP status to answer
    attempts: list[str] = field(default_factory=list)  # every push tried, refused or not
    polled_at: list[float] = field(default_factory=list)  # loop time of each poll received
    closing: asyncio.Event = field(default_factory=asyncio.Event)

    async def get_records(self, request: web.Request) -> web.StreamResponse:
        self.polls += 1
        self.polled_at.append(asyncio.get_running_loop().time())
        self.tokens.append(request.headers.get("Authorization"))
        if self.delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closing.wait(), self.delay)
        if self.answer is not None:
            return self.answer()
        return web.json_response({"records": self.records})

    async def post_status(self, request: web.Request) -> web.Response:
        record_id = request.match_info["id"]
        self.attempts.append(record_id)
        if record_id in self.refuse:
            return web.json_response({"error": "no"}, status=self.refuse[record_id])
        self.pushed.append((record_id, await request.json()))
        return web.json_response({"ok": True})


@contextlib.asynccontextmanager
async def serve_lapor(fake: FakeLapor) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/api/records", fake.get_records)
    app.router.add_post("/api/records/{id}/status", fake.post_status)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/api"
    finally:
        fake.closing.set()  # answers still held back go now, so shutting down waits for none
        await runner.cleanup()


@contextlib.asynccontextmanager
async def connector_hub(
    make_hub_config: ConfigFactory, fake: FakeLapor, **intake: Any
) -> AsyncIterator[Hub]:
    async with serve_lapor(fake) as url:
        source = f"lapor{secrets.token_hex(3)}"
        config = make_hub_config(
            intake={
                "connector_url": url,
                "connector_source": source,
                "connector_interval": 0.1,
                "connector_timeout": 1.0,
                **intake,
            }
        )
        async with Hub(config, restart_policy=TEST_RESTART_POLICY) as hub:
            yield hub


async def _until(check: Callable[[], Any]) -> None:
    await eventually(check, timeout=WAIT)


async def _cases(hub: Hub, source: str | None = None) -> list[dict[str, Any]]:
    source = source or hub.config.intake.connector_source
    async with hub.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT * FROM cases WHERE external_source = $1 ORDER BY external_id", source
        )
    return [dict(row) for row in rows]


def _record(record_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": record_id,
        "title": f"Aduan {record_id}",
        "description": "Bantuan sosial belum diterima",
        "category": "social_aid",
        "lat": -6.9,
        "lon": 107.6,
        "region": "Kota Bandung",
        "reporter_name": "Pak Ahmad",
        "reporter_contact": f"ahmad-{record_id}@example.org",
        "channel_info": {"ignored": True},
        **fields,
    }


async def test_records_become_cases_once_and_statuses_go_back(
    make_hub_config: ConfigFactory,
) -> None:
    fake = FakeLapor(records=[_record("A-1"), _record("A-2", category="unheard_of", id=77)])
    async with connector_hub(make_hub_config, fake) as hub:
        await _until(lambda: _pushed(fake, 2))
        polls = fake.polls
        await _until(lambda: _polled(fake, polls + 3))  # re-reading changes nothing
        cases = await _cases(hub)
        assert [c["external_id"] for c in cases] == ["77", "A-1"]
        by_id = {c["external_id"]: c for c in cases}
        assert by_id["A-1"]["category"] == "social_aid"
        assert by_id["A-1"]["agency"] == "dinsos"
        assert by_id["A-1"]["channel"] == "external"
        assert by_id["A-1"]["reporter_contact"] == "ahmad-A-1@example.org"
        assert by_id["77"]["category"] == "other"
        assert "[external category: unheard_of]" in by_id["77"]["description"]
        assert sorted(fake.pushed) == [
            ("77", {"status": "new", "case_number": by_id["77"]["number"]}),
            ("A-1", {"status": "new", "case_number": by_id["A-1"]["number"]}),
        ]
        await service.transition(
            hub.pool, hub.bus, by_id["A-1"]["id"], to="assigned", actor="test", agency="dinsos"
        )
        await _until(lambda: _pushed(fake, 3))
        assert fake.pushed[-1] == (
            "A-1",
            {"status": "assigned", "case_number": by_id["A-1"]["number"]},
        )
        assert fake.tokens[0] is None


async def _pushed(fake: FakeLapor, count: int) -> bool:
    return len(fake.pushed) >= count


async def _polled(fake: FakeLapor, count: int) -> bool:
    return fake.polls >= count


async def test_a_bad_record_is_skipped_and_the_rest_go_in(make_hub_config: ConfigFactory) -> None:
    fake = FakeLapor(
        records=[
            _record("B-1", lat=123.0),
            {"title": "no id"},
            _record("B-2", priority="whenever"),
            _record("B-3", description="", title=""),
            "not an object",
            _record("B-5", description="Banjir\u0000 besar"),
            _record("B-6", reporter_name="Pak\u0000"),
            _record("B-7\u0000"),
            _record("B-4"),
        ]
    )
    async with connector_hub(make_hub_config, fake) as hub:
        await _until(lambda: _pushed(fake, 1))
        polls = fake.polls
        await _until(lambda: _polled(fake, polls + 2))
        assert [c["external_id"] for c in await _cases(hub)] == ["B-4"]
        assert hub.supervisor.status[NAME].state is AdapterState.RUNNING
        connector = ExternalConnector(hub.pool, hub.bus, hub.config.intake, hub.config.cases)
        async with aiohttp.ClientSession() as http:
            assert await connector.poll(http) == (0, 8)  # every bad record counted, none written


@dataclass
class ChunkedLapor(FakeLapor):
    """Answers with a large JSON document in small chunks, as a slow proxy would."""

    padding: int = 288_000
    chunk: int = 4096

    async def get_records(self, request: web.Request) -> web.StreamResponse:
        self.polls += 1
        body = json.dumps({"records": self.records, "padding": "x" * self.padding}).encode()
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for start in range(0, len(body), self.chunk):
                await response.write(body[start : start + self.chunk])
                await asyncio.sleep(0.001)  # a steady trickle, not one burst
            await response.write_eof()
        except ConnectionResetError:
            pass  # the hub hung up on an answer too large: what it should do
        return response


async def test_a_large_answer_in_small_chunks_is_read_whole(
    make_hub_config: ConfigFactory,
) -> None:
    fake = ChunkedLapor(records=[_record("E-1"), _record("E-2")])
    async with connector_hub(make_hub_config, fake) as hub:
        await _until(lambda: _has_cases(hub, 2))
        # The poll that made them ends with the connector's heartbeat: running, not failed.
        await _until(lambda: _state(hub, AdapterState.RUNNING))


async def test_an_oversized_answer_is_refused_with_a_clear_error(
    make_hub_config: ConfigFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(connector_module, "MAX_RESPONSE_BYTES", 100_000)
    fake = ChunkedLapor(records=[_record("F-1")], padding=150_000)
    async with connector_hub(make_hub_config, fake) as hub:
        await _until(lambda: _state(hub, AdapterState.BACKOFF))
        assert await _cases(hub) == []
        fake.padding = 10_000
        await _until(lambda: _has_cases(hub, 1))
    assert any("more than 100000 bytes" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "broken",
    [
        lambda: web.Response(text="<html>maintenance</html>", content_type="text/html"),
        lambda: web.json_response({"data": "not records"}),
        lambda: web.Response(status=503, text="busy"),
        lambda: web.Response(body=b'{"records": [', content_type="application/json"),
    ],
)
async def test_a_broken_response_backs_off_writes_nothing_and_recovers(
    make_hub_config: ConfigFactory, broken: Callable[[], web.StreamResponse]
) -> None:
    fake = FakeLapor(records=[_record("C-1")], answer=broken)
    async with connector_hub(make_hub_config, fake) as hub:
        statuses = hub.bus.subscribe(ADAPTER_STATUS, name="test-connector")
        async with statuses:
            async with asyncio.timeout(WAIT):
                while True:
                    envelope = await statuses.get()
                    if (
                        envelope.payload.name == NAME
                        and envelope.payload.state is AdapterState.BACKOFF
                    ):
                        break
            assert "C-1" not in [c["external_id"] for c in await _cases(hub)]
            fake.answer = None  # the system comes back
            await _until(lambda: _has_cases(hub, 1))
        await _until(lambda: _state(hub, AdapterState.RUNNING))


async def _has_cases(hub: Hub, count: int) -> bool:
    return len(await _cases(hub)) >= count


async def test_a_slow_system_times_out_and_recovers(
    make_hub_config: ConfigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    timeout = 1.0
    # Held back far longer than the wait below: only a timeout ends a poll.
    fake = FakeLapor(records=[_record("D-1")], delay=60.0)
    async with connector_hub(make_hub_config, fake, connector_timeout=timeout) as hub:
        await _until(lambda: _polled(fake, 2))  # the first wait timed out, and it tried again
        # It gave up on a poll it had waited for, rather than failing at once for another reason.
        assert fake.polled_at[1] - fake.polled_at[0] > timeout / 2
        assert hub.supervisor.status[NAME].restarts >= 1
        # The request's own timeout ended it, not the supervisor's watch for a silent adapter.
        failures = [
            r.getMessage() for r in caplog.records if r.getMessage().startswith(f"adapter {NAME}")
        ]
        assert failures[0] == f"adapter {NAME} failed: TimeoutError", failures
        assert await _cases(hub) == []
        fake.delay = 0.0
        await _until(lambda: _has_cases(hub, 1))
        await _until(lambda: _state(hub, AdapterState.RUNNING))


@pytest.mark.allow_error_log(match=["refused our credentials"])
async def test_refused_credentials_stop_the_connector(make_hub_config: ConfigFactory) -> None:
    fake = FakeLapor(answer=lambda: web.Response(status=401, text="who are you"))
    async with connector_hub(make_hub_config, fake, connector_token="s3cret-token") as hub:
        await _until(lambda: _state(hub, AdapterState.FAILED))
        # The supervising task has ended: nothing is left that could poll again.
        supervising = hub.supervisor._tasks[NAME]
        async with asyncio.timeout(WAIT):
            await asyncio.wait({supervising})
        assert supervising.exception() is None
        assert fake.polls == 1  # refused once, stopped at once: no retry
        assert fake.tokens == ["Bearer s3cret-token"]
        assert hub.supervisor.status[NAME].state is AdapterState.FAILED
        assert "401" in hub.supervisor.status[NAME].detail


async def _state(hub: Hub, state: AdapterState) -> bool:
    status = hub.supervisor.status.get(NAME)
    return status is not None and status.state is state


async def test_statuses_still_go_back_while_fetching_fails(make_hub_config: ConfigFactory) -> None:
    fake = FakeLapor(records=[_record("G-1")])
    async with connector_hub(make_hub_config, fake) as hub:
        await _until(lambda: _pushed(fake, 1))
        fake.answer = lambda: web.Response(status=503, text="busy")
        polls = fake.polls
        await _until(lambda: _polled(fake, polls + 1))
        (case,) = await _cases(hub)
        await service.transition(
            hub.pool, hub.bus, case["id"], to="assigned", actor="test", agency="dinsos"
        )
        await _until(lambda: _pushed(fake, 2))
        assert fake.pushed[-1] == ("G-1", {"status": "assigned", "case_number": case["number"]})


async def test_a_refused_push_is_given_up_and_the_others_still_go(
    make_hub_config: ConfigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeLapor(records=[_record("H-1")], refuse={"H-1": 422})
    async with connector_hub(make_hub_config, fake) as hub:
        bound = connector_module.MAX_REFUSED_ATTEMPTS
        await _until(lambda: _attempted(fake, "H-1", bound))
        fake.records.append(_record("H-2"))  # a later record, fetched and pushed as usual
        await _until(lambda: _pushed(fake, 1))
        polls = fake.polls
        await _until(lambda: _polled(fake, polls + 10))  # long past the backoff of a retry
        assert fake.attempts.count("H-1") == bound
        assert [record_id for record_id, _ in fake.pushed] == ["H-2"]
        by_id = {c["external_id"]: c for c in await _cases(hub)}
        assert by_id["H-1"]["external_pushed"] is None  # kept as not heard
        assert by_id["H-2"]["external_pushed"] == "new"
        assert hub.supervisor.status[NAME].state is AdapterState.RUNNING
    given_up = [r for r in caplog.records if "given up" in r.getMessage()]
    assert len(given_up) == 1
    assert by_id["H-1"]["number"] in given_up[0].getMessage()


async def _attempted(fake: FakeLapor, record_id: str, count: int) -> bool:
    return fake.attempts.count(record_id) >= count
