"""The public doors against a real hub: the report form, tracking, the whistleblower, limits."""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from ops.app import Hub
from ops.cases import codes
from ops.users import Role
from ops.web.app import Served
from tests.fixtures.hub import (
    ConfigFactory,
    LoginAs,
    WebClient,
    client_of,
    create_user,
    log_in,
    start_web_hub,
)

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

REPORTS = "/api/v1/public/reports"
WHISTLE = "/api/v1/public/whistleblower"
#: A loopback address of its own, so a scan for it finds only what this test's reporter left.
WHISTLEBLOWER_ADDRESS = "127.0.0.77"


async def _json(response: aiohttp.ClientResponse) -> Any:
    return json.loads(await response.read())


async def test_a_public_report_gets_a_code_that_shows_status_and_nothing_private(
    hub: Hub, web_client: WebClient, login_as: LoginAs
) -> None:
    private = {
        "name": f"Siti {secrets.token_hex(3)}",
        "contact": f"siti-{secrets.token_hex(3)}@example.org",
        "description": f"Jembatan retak {secrets.token_hex(3)}",
        "address": f"Jl. Rahasia {secrets.token_hex(3)}",
    }
    body = {"category": "infrastructure", "lat": -6.91234, "lon": 107.61234, **private}
    async with web_client.post(REPORTS, json=body) as response:
        receipt = await _json(response)
        assert response.status == 201, receipt
    code = receipt["tracking_code"]
    assert code.startswith("LP-")
    assert set(receipt) == {"number", "status", "tracking_code"}

    operator = await login_as(Role.OPERATOR)
    async with operator.get(f"/api/v1/cases?q={receipt['number']}") as response:
        [case] = (await _json(response))["cases"]
    assert case["channel"] == "public"
    assert case["reporter_contact"] == private["contact"]
    note = f"Catatan internal {secrets.token_hex(3)}"
    async with operator.post(f"/api/v1/cases/{case['id']}/notes", json={"body": note}) as r:
        assert r.status == 201
    transition = {"to": "assigned", "agency": "dpupr"}
    async with operator.post(f"/api/v1/cases/{case['id']}/transitions", json=transition) as r:
        assert r.status == 200

    async with web_client.get(f"{REPORTS}/{code.lower()}") as response:
        text = await response.text()
        assert response.status == 200, text
    shown = json.loads(text)
    assert set(shown) == {
        "number",
        "category",
        "status",
        "agency",
        "created_at",
        "updated_at",
        "timeline",
    }
    assert shown["status"] == "assigned"
    assert [step["status"] for step in shown["timeline"]] == ["new", "assigned"]
    for secret in [*private.values(), note, operator.user.username, "6.91234", "107.61234"]:
        assert secret not in text
    # The digest alone is stored.
    async with hub.pool.acquire() as conn:
        stored = await conn.fetchval(
            "SELECT count(*) FROM cases WHERE cases::text LIKE $1", f"%{code}%"
        )
    assert stored == 0


@pytest.mark.parametrize("code", ["LP-AAAAAAAAAA", "nonsense", "WB-" + "2" * 20, "LP-" + "A" * 300])
async def test_unknown_codes_are_not_found(web_client: WebClient, code: str) -> None:
    async with web_client.get(f"{REPORTS}/{code}") as response:
        assert (response.status, (await _json(response))["error"]["code"]) == (404, "not_found")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"description": "x"}, "category"),
        ({"category": "volcano", "description": "x"}, "category"),
        ({"category": "fire"}, "description"),
        ({"category": "fire", "description": "x", "lat": -91, "lon": 0}, "lat"),
        ({"category": "fire", "description": "x", "lat": 0, "lon": 200}, "lon"),
        ({"category": "fire", "description": "x", "priority": "critical"}, "priority"),
    ],
)
async def test_bad_public_reports_name_the_field(
    web_client: WebClient, body: dict[str, Any], field: str
) -> None:
    async with web_client.post(REPORTS, json=body) as response:
        error = (await _json(response))["error"]
        assert response.status == 400
    assert error["field"] == field


async def test_public_endpoints_are_rate_limited(make_hub_config: ConfigFactory) -> None:
    config = make_hub_config(cases={"public_reports_per_minute": 2, "public_lookups_per_minute": 3})
    async with start_web_hub(config) as (_hub, served), client_of(served) as client:
        body = {"category": "other", "description": "Lampu jalan mati"}
        for _ in range(2):
            async with client.post(REPORTS, json=body) as response:
                assert response.status == 201
        async with client.post(REPORTS, json=body) as response:
            assert response.status == 429
            assert int(response.headers["Retry-After"]) >= 1
            assert (await _json(response))["error"]["code"] == "too_many_requests"
        for _ in range(3):
            async with client.get(f"{REPORTS}/LP-AAAAAAAAAA") as response:
                assert response.status == 404
        async with client.get(f"{REPORTS}/LP-AAAAAAAAAA") as response:
            assert response.status == 429


@contextlib.asynccontextmanager
async def _client_from(served: Served, address: str) -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(local_addr=(address, 0))
    async with aiohttp.ClientSession(served.url, connector=connector) as session:
        yield session


async def test_a_whistleblower_leaves_no_identity_and_no_address(
    make_hub_config: ConfigFactory,
    fresh_database: Callable[[], Awaitable[str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    config = make_hub_config(database={"url": await fresh_database()})
    secret_text = f"Pungutan liar di kantor {secrets.token_hex(3)}"
    async with start_web_hub(config) as (hub, served):
        async with _client_from(served, WHISTLEBLOWER_ADDRESS) as reporter:
            named = {"category": "public_order", "description": "x", "name": "Ani"}
            async with reporter.post(WHISTLE, json=named) as response:
                assert response.status == 400
                assert (await _json(response))["error"]["field"] == "name"
            body = {"category": "public_order", "description": secret_text, "region": "Bandung"}
            async with reporter.post(WHISTLE, json=body) as response:
                receipt = await _json(response)
                assert response.status == 201, receipt
            code = receipt["follow_up_code"]
            assert code.startswith("WB-")
            assert len(code) == 23
            async with reporter.post(f"{REPORTS}/{code}/notes", json={"body": "Setiap Senin"}) as r:
                assert r.status == 201
            async with reporter.get(f"{REPORTS}/{code}") as response:
                shown = await _json(response)
                assert response.status == 200
            assert shown["status"] == "new"

        async with client_of(served) as operator:
            user, password = await create_user(hub, Role.OPERATOR)
            await log_in(operator, user.username, password)
            async with operator.get(f"/api/v1/cases?q={receipt['number']}") as response:
                [case] = (await _json(response))["cases"]
            assert case["anonymous"] is True
            assert case["channel"] == "whistleblower"
            assert (case["reporter_name"], case["reporter_contact"]) == (None, None)
            async with operator.get(f"/api/v1/cases/{case['id']}") as response:
                got = await _json(response)
            assert [(n["author"], n["body"]) for n in got["notes"]] == [
                ("reporter", "Setiap Senin")
            ]
            # A plain tracking code cannot add information to a case.
            async with operator.post(REPORTS, json={"category": "other", "description": "y"}) as r:
                tracking = (await _json(r))["tracking_code"]
            async with operator.post(f"{REPORTS}/{tracking}/notes", json={"body": "z"}) as r:
                assert r.status == 403

        # Nowhere in the database: every column of every table, whatever its type.
        async with hub.pool.acquire() as conn:
            # The scan finds what is there: the report's text, and the code's digest alone.
            assert "cases.description" in await _columns_holding(conn, secret_text)
            assert await _columns_holding(conn, codes.digest(code))
            assert await _columns_holding(conn, WHISTLEBLOWER_ADDRESS) == []
            assert await _columns_holding(conn, WHISTLEBLOWER_ADDRESS.encode()) == []
            assert await _columns_holding(conn, code) == []
            assert await _columns_holding(conn, code.removeprefix("WB-")) == []
            assert await _columns_holding(conn, code.encode()) == []
    # Nowhere in the logs.
    assert caplog.records, "the hub logs something at DEBUG, so the scan means something"
    for secret in (WHISTLEBLOWER_ADDRESS, code.removeprefix("WB-")):
        assert secret not in caplog.text
        assert all(secret not in str(r.args) for r in caplog.records)


async def _columns_holding(conn: Any, needle: str | bytes) -> list[str]:
    """Every ``table.column`` of the public schema with a value holding ``needle``.

    Text is matched without case in any column cast to text (json, arrays, addresses too);
    bytes are matched inside ``bytea`` columns.
    """
    columns = await conn.fetch(
        """
        SELECT quote_ident(c.table_name) AS tab, quote_ident(c.column_name) AS col, c.data_type
        FROM information_schema.columns AS c
        JOIN information_schema.tables AS t USING (table_schema, table_name)
        WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
        ORDER BY 1, 2
        """
    )
    assert columns, "the scan sees the tables"
    found = []
    for column in columns:
        if isinstance(needle, bytes):
            if column["data_type"] != "bytea":
                continue
            where = f"position($1::bytea in {column['col']}) > 0"
            argument: str | bytes = needle
        else:
            where = f"{column['col']}::text ILIKE $1"
            argument = (
                "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            )
        hit = await conn.fetchval(
            f"SELECT EXISTS (SELECT 1 FROM {column['tab']} WHERE {where})",  # noqa: S608
            argument,
        )
        if hit:
            found.append(f"{column['tab']}.{column['col']}")
    return found


async def test_follow_up_notes_refuse_bad_input(web_client: WebClient) -> None:
    async with web_client.post(WHISTLE, json={"category": "other", "description": "a"}) as r:
        code = (await _json(r))["follow_up_code"]
    async with web_client.post(f"{REPORTS}/{code}/notes", json={"body": ""}) as r:
        assert (r.status, (await _json(r))["error"]["field"]) == (400, "body")
    async with web_client.post(f"{REPORTS}/{code}/notes", json={"body": "a", "text": "a"}) as r:
        assert (r.status, (await _json(r))["error"]["field"]) == (400, "text")
    async with web_client.post(f"{REPORTS}/WB-{'3' * 20}/notes", json={"body": "a"}) as r:
        assert r.status == 404


async def test_the_forms_are_served_with_the_content_policy(web_client: WebClient) -> None:
    for path in ("/report", "/report/anonymous"):
        async with web_client.get(path) as response:
            assert response.status == 200
            assert response.content_type == "text/html"
            assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    async with web_client.get("/api/v1/public/categories") as response:
        categories = (await _json(response))["categories"]
    assert {"code": "fire", "label_id": "Kebakaran", "label_en": "Fire"} in categories
