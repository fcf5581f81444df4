"""Cases at the edges: eight-digit numbers, NUL in text, forged cursors, duplicate chains,
SLA after reopening, region rules without case, and what a 500 leaves in the log."""

from __future__ import annotations

import base64
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from db.migrate import migrate
from db.pool import create_pool
from ops.app import Hub
from ops.cases import service
from ops.cases.intake import IncomingReport, submit_report
from ops.core.bus import Bus
from ops.users import Role
from tests.fixtures.hub import LoginAs, WebClient

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

CASES = "/api/v1/cases"
REPORTS = "/api/v1/public/reports"
NUL = "\u0000"


def region() -> str:
    return f"region-{secrets.token_hex(4)}"


async def create(client: WebClient, **fields: Any) -> dict[str, Any]:
    body = {"category": "fire", "description": "Api di gudang", **fields}
    async with client.post(CASES, json=body) as response:
        data: dict[str, Any] = await response.json()
        assert response.status == 201, data
        return data


# -- case numbers -------------------------------------------------------------------------------


async def test_case_numbers_grow_past_seven_digits_and_known_records_spend_no_id(
    fresh_database: Callable[[], Awaitable[str]],
) -> None:
    pool = await create_pool(await fresh_database())
    try:
        await migrate(pool)
        async with pool.acquire() as conn:
            await conn.execute("SELECT setval('cases_id_seq', 9999998)")
        bus = Bus()
        numbers = []
        for n in range(3):
            report = IncomingReport(
                channel="external",
                category="fire",
                description=f"Api nomor {n}",
                external_source="lapor",
                external_id=f"R-{n}",
            )
            ref = await submit_report(pool, bus, report)
            assert ref.created
            numbers.append(ref.number)
            for _ in range(3):  # the same record read again, as every poll does
                again = await submit_report(pool, bus, report)
                assert (again.created, again.number) == (False, ref.number)
        assert numbers == ["PSK-9999999", "PSK-10000000", "PSK-10000001"]
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT last_value FROM cases_id_seq") == 10_000_001
    finally:
        await pool.close()


# -- NUL in text --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"category": "fire", "description": f"Api{NUL}"}, "description"),
        ({"category": "fire", "description": "Api", "title": f"A{NUL}"}, "title"),
        ({"category": "fire", "description": "Api", "address": f"Jl.{NUL}"}, "address"),
        ({"category": "fire", "description": "Api", "region": NUL}, "region"),
        ({"category": "fire", "description": "Api", "reporter_name": f"B{NUL}"}, "reporter_name"),
        ({"category": f"fire{NUL}", "description": "Api"}, "category"),
    ],
)
async def test_nul_in_a_new_case_is_a_400_naming_the_field(
    hub: Hub, login_as: LoginAs, body: dict[str, Any], field: str
) -> None:
    operator = await login_as(Role.OPERATOR)
    async with operator.post(CASES, json=body) as response:
        error = (await response.json())["error"]
        assert response.status == 400, error
    assert (error["field"], error["code"]) == (field, "invalid_field")
    assert "NUL" in error["message"]


async def test_nul_in_changes_notes_and_queries_is_a_400_naming_the_field(
    hub: Hub, login_as: LoginAs
) -> None:
    operator = await login_as(Role.OPERATOR)
    case = await create(operator, region=region())
    url = f"{CASES}/{case['id']}"
    attempts: list[tuple[str, str, dict[str, Any], str]] = [
        ("PATCH", url, {"title": f"x{NUL}y"}, "title"),
        ("PATCH", url, {"region": NUL}, "region"),
        ("POST", f"{url}/transitions", {"to": "rejected", "reason": f"no{NUL}"}, "reason"),
        ("POST", f"{url}/notes", {"body": f"catatan{NUL}"}, "body"),
    ]
    for method, path, body, field in attempts:
        async with operator.request(method, path, json=body) as response:
            error = (await response.json())["error"]
            assert (response.status, error["field"]) == (400, field), (path, error)
    for name in ("q", "region", "category"):
        async with operator.get(CASES, params={name: f"a{NUL}b"}) as response:
            error = (await response.json())["error"]
            assert (response.status, error["field"]) == (400, name), error
    after = await (await operator.get(url)).json()
    assert after["status"] == "new"
    assert after["notes"] == []


async def test_nul_in_public_reports_and_follow_ups_is_a_400(web_client: WebClient) -> None:
    body = {"category": "fire", "description": f"Api{NUL}", "contact": "x@example.org"}
    async with web_client.post(REPORTS, json=body) as response:
        error = (await response.json())["error"]
        assert (response.status, error["field"]) == (400, "description")
    body = {"category": "other", "description": "a", "name": f"A{NUL}"}
    async with web_client.post(REPORTS, json=body) as response:
        assert (await response.json())["error"]["field"] == "name"
    whistle = {"category": "other", "description": "Pungli"}
    async with web_client.post("/api/v1/public/whistleblower", json=whistle) as response:
        code = (await response.json())["follow_up_code"]
    async with web_client.post(f"{REPORTS}/{code}/notes", json={"body": f"a{NUL}"}) as response:
        error = (await response.json())["error"]
        assert (response.status, error["field"]) == (400, "body")


# -- queue cursor -------------------------------------------------------------------------------


@pytest.mark.parametrize("rank", [99999, -1, 4])
async def test_a_forged_cursor_rank_is_a_400_naming_cursor(login_as: LoginAs, rank: int) -> None:
    viewer = await login_as(Role.VIEWER)
    raw = json.dumps([rank, datetime.now(UTC).isoformat(), 1]).encode()
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    async with viewer.get(CASES, params={"cursor": cursor}) as response:
        body = await response.json()
        assert response.status == 400, body
    assert body["error"]["field"] == "cursor"


# -- duplicates ---------------------------------------------------------------------------------


async def test_suspected_duplicates_point_at_the_original_not_along_a_chain(
    hub: Hub, login_as: LoginAs
) -> None:
    operator = await login_as(Role.OPERATOR)
    lat, lon = -10 + secrets.randbelow(10_000) / 1000, 95 + secrets.randbelow(40_000) / 1000
    first = await create(operator, category="disaster", lat=lat, lon=lon)
    second = await create(operator, category="disaster", lat=lat + 0.001, lon=lon)
    # Near the second (100 m), but 300 m from the first: still within the 500 m window of both.
    third = await create(operator, category="disaster", lat=lat + 0.002, lon=lon + 0.001)
    assert first["duplicate_of"] is None
    assert second["duplicate_of"] == first["id"]
    assert third["duplicate_of"] == first["id"]


# -- SLA after reopening ------------------------------------------------------------------------


async def test_a_change_after_reopening_counts_the_sla_from_the_reopening(
    hub: Hub, login_as: LoginAs
) -> None:
    operator = await login_as(Role.OPERATOR)
    case = await create(operator, category="fire", priority="low", region=region())
    async with hub.pool.acquire() as conn:  # opened ten days ago
        await conn.execute(
            "UPDATE cases SET created_at = created_at - interval '10 days' WHERE id = $1",
            case["id"],
        )
    await service.transition(hub.pool, hub.bus, case["id"], to="rejected", actor="t", reason="x")
    reopened = await service.transition(
        hub.pool, hub.bus, case["id"], to="reopened", actor="t", reason="again"
    )
    async with operator.request(
        "PATCH", f"{CASES}/{case['id']}", json={"priority": "medium"}
    ) as response:
        changed = await response.json()
        assert response.status == 200, changed
    due = datetime.fromisoformat(changed["sla_due_at"])
    # fire, medium: 240 minutes from the reopening (not from ten days ago).
    expected = reopened.updated_at + timedelta(minutes=240)
    assert abs(due - expected) < timedelta(seconds=5), (due, expected)
    assert changed["sla_breached_at"] is None


# -- region rules -------------------------------------------------------------------------------


async def test_region_rules_are_one_per_region_whatever_the_case(
    hub: Hub, login_as: LoginAs
) -> None:
    supervisor = await login_as(Role.SUPERVISOR)
    place = f"Kota {secrets.token_hex(3)}"
    sla = {"critical": 10, "high": 20, "medium": 30, "low": 40}
    for spelling, agency in ((place, "bpbd"), (place.upper(), "dinkes"), (place.lower(), "dpupr")):
        body = {"category": "animals", "region": spelling, "agency": agency, "sla_minutes": sla}
        async with supervisor.request("PUT", "/api/v1/routing-rules", json=body) as response:
            assert response.status == 200, await response.json()
    async with hub.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT region, agency FROM routing_rules WHERE lower(region) = lower($1)", place
        )
    assert [(r["region"], r["agency"]) for r in rows] == [(place.lower(), "dpupr")]
    routed = await create(supervisor, category="animals", region=place.title())
    assert routed["agency"] == "dpupr"


# -- what a 500 logs ----------------------------------------------------------------------------


@pytest.mark.allow_error_log(match=["unhandled error in POST"])
async def test_a_crash_on_a_follow_up_logs_the_route_never_the_secret_code(
    web_client: WebClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async with web_client.post(
        "/api/v1/public/whistleblower", json={"category": "other", "description": "Pungli"}
    ) as response:
        code = (await response.json())["follow_up_code"]

    async def broken(*_args: object) -> datetime:
        raise RuntimeError("the database is in a state it should never be in")

    monkeypatch.setattr(service, "add_reporter_note", broken)
    caplog.set_level(logging.DEBUG)
    async with web_client.post(f"{REPORTS}/{code}/notes", json={"body": "lagi"}) as response:
        assert response.status == 500
        assert (await response.json())["error"]["code"] == "internal_error"
    crash = [r for r in caplog.records if r.name == "ops.http.errors"]
    assert crash, "the crash is logged"
    assert "/api/v1/public/reports/{code}/notes" in crash[0].getMessage()
    for record in caplog.records:
        assert code not in record.getMessage()
        assert code not in (record.exc_text or "")
