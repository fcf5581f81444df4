"""The case API against a real hub: intake, routing, life cycle, queue, duplicates, live events."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import secrets
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from ops.app import Hub
from ops.cases.errors import InvalidReport
from ops.cases.intake import IncomingReport, submit_report
from ops.cases.model import STATUSES
from ops.core.bus import Subscription
from ops.core.events import CASE_CHANGED, CASE_OPENED, CASE_SLA_BREACHED
from ops.users import Role
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

CASES = "/api/v1/cases"
RECEIVE_TIMEOUT = 5.0

# The life cycle as docs/cases.md states it, written out rather than read from the product, so a
# change to the product's table shows up here as a failing pair.
_LIFE_CYCLE: dict[str, frozenset[str]] = {
    "new": frozenset({"triaged", "assigned", "rejected"}),
    "triaged": frozenset({"assigned", "rejected"}),
    "assigned": frozenset({"in_progress", "resolved", "triaged"}),
    "in_progress": frozenset({"resolved", "triaged"}),
    "resolved": frozenset({"closed", "reopened"}),
    "closed": frozenset({"reopened"}),
    "rejected": frozenset({"closed", "reopened"}),
    "reopened": frozenset({"triaged", "assigned", "rejected"}),
}
_LIFE_CYCLE_STATUSES = tuple(_LIFE_CYCLE)

# A path through the life cycle to each status, with the body each step needs.
_STEP_BODY: dict[str, dict[str, Any]] = {
    "triaged": {"to": "triaged", "reason": "back to triage"},
    "assigned": {"to": "assigned", "agency": "damkar"},
    "in_progress": {"to": "in_progress"},
    "resolved": {"to": "resolved"},
    "closed": {"to": "closed"},
    "rejected": {"to": "rejected", "reason": "not a real report"},
    "reopened": {"to": "reopened", "reason": "it happened again"},
}
_PATH_TO: dict[str, list[str]] = {
    "new": [],
    "triaged": ["triaged"],
    "assigned": ["assigned"],
    "in_progress": ["assigned", "in_progress"],
    "resolved": ["assigned", "in_progress", "resolved"],
    "closed": ["assigned", "in_progress", "resolved", "closed"],
    "rejected": ["rejected"],
    "reopened": ["rejected", "reopened"],
}


def region() -> str:
    """A region no other test uses, so queue queries see only this test's cases."""
    return f"region-{secrets.token_hex(4)}"


async def create(client: WebClient, **fields: Any) -> dict[str, Any]:
    body = {"category": "fire", "description": "Api di gudang", **fields}
    async with client.post(CASES, json=body) as response:
        data: dict[str, Any] = await response.json()
        assert response.status == 201, data
        return data


async def move(client: WebClient, case_id: int, body: dict[str, Any]) -> tuple[int, Any]:
    async with client.post(f"{CASES}/{case_id}/transitions", json=body) as response:
        return response.status, await response.json()


async def detail(client: WebClient, case_id: int) -> dict[str, Any]:
    async with client.get(f"{CASES}/{case_id}") as response:
        assert response.status == 200
        data: dict[str, Any] = await response.json()
        return data


async def page(client: WebClient, **query: Any) -> dict[str, Any]:
    params = {
        key: str(value).lower() if isinstance(value, bool) else str(value)
        for key, value in query.items()
    }
    async with client.get(CASES, params=params) as response:
        data: dict[str, Any] = await response.json()
        assert response.status == 200, data
        return data


# -- intake and routing -------------------------------------------------------------------------


async def test_a_call_taker_report_is_routed_and_committed(hub: Hub, login_as: LoginAs) -> None:
    operator = await login_as(Role.OPERATOR)
    before = datetime.now(UTC)
    case = await create(
        operator,
        title="Kebakaran gudang",
        lat=-6.2,
        lon=106.8,
        address="Jl. Merdeka 1",
        region=region(),
        reporter_name="Budi",
        reporter_contact="0812-000",
        channel="console",
    )
    assert case["number"].startswith("PSK-")
    assert case["status"] == "new"
    assert case["agency"] == "damkar"  # fire → the fire service
    assert case["priority"] == "critical"
    assert case["priority_reason"] == "category default (fire)"
    due = datetime.fromisoformat(case["sla_due_at"])
    assert timedelta(minutes=14) < due - before < timedelta(minutes=16)  # fire/critical: 15 min
    async with hub.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT channel, reporter_contact FROM cases WHERE id = $1", case["id"]
        )
        history = await conn.fetch(
            "SELECT actor, action FROM case_history WHERE case_id = $1", case["id"]
        )
    assert dict(row) == {"channel": "console", "reporter_contact": "0812-000"}
    assert [(h["actor"], h["action"]) for h in history] == [(operator.user.username, "opened")]


async def test_routing_follows_region_rules_and_priority(hub: Hub, login_as: LoginAs) -> None:
    supervisor = await login_as(Role.SUPERVISOR)
    place = region()
    rule = {
        "category": "animals",
        "region": place,
        "agency": "satpol_pp",
        "sla_minutes": {"critical": 5, "high": 10, "medium": 20, "low": 40},
    }
    async with supervisor.request("PUT", "/api/v1/routing-rules", json=rule) as response:
        assert response.status == 200, await response.text()
    here = await create(supervisor, category="animals", region=place.upper(), priority="high")
    elsewhere = await create(supervisor, category="animals", region=region())
    assert here["agency"] == "satpol_pp"
    assert here["priority_reason"] == f"set by {supervisor.user.username}"
    created = datetime.fromisoformat(here["created_at"])
    assert datetime.fromisoformat(here["sla_due_at"]) - created == timedelta(minutes=10)
    assert elsewhere["agency"] == "dkpp"
    # A new priority recomputes the SLA from the opening time.
    async with supervisor.request(
        "PATCH", f"{CASES}/{here['id']}", json={"priority": "low"}
    ) as response:
        changed = await response.json()
    assert datetime.fromisoformat(changed["sla_due_at"]) - created == timedelta(minutes=40)
    for bad, field in (
        ({"description": None}, "description"),
        ({"lat": 1.0}, "lon"),
        ({"status": "closed"}, "status"),
        ({}, None),
        ({"category": "nope"}, "category"),
    ):
        async with supervisor.request("PATCH", f"{CASES}/{here['id']}", json=bad) as response:
            assert response.status == 400, bad
            assert (await response.json())["error"]["field"] == field


async def test_categories_are_an_editable_catalogue(hub: Hub, login_as: LoginAs) -> None:
    supervisor = await login_as(Role.SUPERVISOR)
    operator = await login_as(Role.OPERATOR)
    async with operator.get("/api/v1/case-categories") as response:
        codes = {c["code"]: c for c in (await response.json())["categories"]}
    assert {
        "disaster",
        "social_aid",
        "poverty",
        "disability",
        "child_protection",
        "elderly",
        "medical",
        "fire",
        "public_order",
        "animals",
        "infrastructure",
        "other",
    } <= set(codes)
    assert codes["fire"]["label_id"] == "Kebakaran"
    code = f"flood_{secrets.token_hex(3)}"
    body = {"label_id": "Banjir", "label_en": "Flood", "default_priority": "high"}
    async with operator.request("PUT", f"/api/v1/case-categories/{code}", json=body) as response:
        assert response.status == 403
    async with supervisor.request("PUT", f"/api/v1/case-categories/{code}", json=body) as response:
        assert response.status == 201
    case = await create(operator, category=code)
    assert case["priority"] == "high"
    assert case["agency"] is None  # no rule yet: nobody owns it until triage assigns
    async with supervisor.request(
        "PUT", f"/api/v1/case-categories/{code}", json={**body, "active": False}
    ) as response:
        assert response.status == 200
    async with operator.post(CASES, json={"category": code, "description": "x"}) as response:
        assert response.status == 400
        assert (await response.json())["error"]["field"] == "category"


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"description": "x"}, "category", "missing_field"),
        ({"category": "volcano", "description": "x"}, "category", "unknown_category"),
        ({"category": "fire", "description": "x", "lat": 91, "lon": 0}, "lat", "invalid_field"),
        ({"category": "fire", "description": "x", "lat": 0, "lon": -181}, "lon", "invalid_field"),
        ({"category": "fire", "description": "x", "lat": 1}, "lon", "invalid_field"),
        (
            {"category": "fire", "description": "x", "priority": "urgent"},
            "priority",
            "invalid_field",
        ),
        ({"category": "fire", "description": "x", "owner": "me"}, "owner", "unknown_field"),
        ({"category": "fire"}, "description", "invalid_field"),
        ({"category": "fire", "description": "x" * 10_001}, "description", "invalid_field"),
    ],
)
async def test_bad_reports_name_the_field_and_write_nothing(
    hub: Hub, login_as: LoginAs, body: dict[str, Any], field: str, code: str
) -> None:
    operator = await login_as(Role.OPERATOR)
    async with hub.pool.acquire() as conn:
        before = await conn.fetchval("SELECT count(*) FROM cases")
    async with operator.post(CASES, json=body) as response:
        error = (await response.json())["error"]
        assert response.status == 400, error
    assert (error["field"], error["code"]) == (field, code)
    async with hub.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM cases") == before
    await create(operator)  # the door still works


async def test_bodies_that_are_not_json_or_too_large(hub: Hub, login_as: LoginAs) -> None:
    operator = await login_as(Role.OPERATOR)
    async with operator.post(
        CASES, data=b"{not json", headers={"Content-Type": "application/json"}
    ) as r:
        assert (r.status, (await r.json())["error"]["code"]) == (400, "invalid_json")
    async with operator.post(CASES, data=b"[]", headers={"Content-Type": "application/json"}) as r:
        assert (r.status, (await r.json())["error"]["code"]) == (400, "invalid_body")
    async with operator.post(CASES, data=b"category=fire") as r:
        assert r.status == 415
    huge = json.dumps({"category": "fire", "description": "x" * hub.config.web.max_body_bytes})
    headers = {"Content-Type": "application/json"}
    async with operator.post(CASES, data=io.BytesIO(huge.encode()), headers=headers) as r:
        assert (r.status, (await r.json())["error"]["code"]) == (413, "body_too_large")
    viewer = await login_as(Role.VIEWER)
    async with viewer.post(CASES, json={"category": "fire", "description": "x"}) as r:
        assert r.status == 403


# -- life cycle ---------------------------------------------------------------------------------


async def _case_in(client: WebClient, status: str) -> int:
    case = await create(client, category="fire", region=region())
    for step in _PATH_TO[status]:
        code, body = await move(client, case["id"], _STEP_BODY[step])
        assert code == 200, body
    assert (await detail(client, case["id"]))["status"] == status
    return int(case["id"])


def test_the_life_cycle_covers_every_status() -> None:
    assert set(STATUSES) == set(_LIFE_CYCLE)


@pytest.mark.parametrize("current", _LIFE_CYCLE_STATUSES)
async def test_every_transition_is_allowed_or_refused_by_the_life_cycle(
    hub: Hub, login_as: LoginAs, current: str
) -> None:
    operator = await login_as(Role.OPERATOR)
    for target in _LIFE_CYCLE_STATUSES:
        case_id = await _case_in(operator, current)
        code, body = await move(operator, case_id, _STEP_BODY.get(target, {"to": target}))
        if target in _LIFE_CYCLE[current]:
            assert code == 200, (current, target, body)
            assert body["status"] == target
            assert (await detail(operator, case_id))["status"] == target
        else:
            assert code == 409, (current, target, body)
            assert body["error"]["code"] == "invalid_transition"
            assert f"a case cannot go from {current} to {target}" in body["error"]["message"]
            assert (await detail(operator, case_id))["status"] == current


async def test_steps_missing_a_reason_or_agency_are_refused(hub: Hub, login_as: LoginAs) -> None:
    operator = await login_as(Role.OPERATOR)
    case = await create(operator, category="other", region=region())
    async with hub.pool.acquire() as conn:
        await conn.execute("UPDATE cases SET agency = NULL WHERE id = $1", case["id"])
    code, body = await move(operator, case["id"], {"to": "assigned"})
    assert (code, "agency" in body["error"]["message"]) == (409, True)
    code, body = await move(operator, case["id"], {"to": "rejected"})
    assert (code, "reason" in body["error"]["message"]) == (409, True)
    code, body = await move(operator, case["id"], {"to": "assigned", "agency": "nowhere"})
    assert (code, body["error"]["field"]) == (400, "agency")
    code, body = await move(operator, case["id"], {"to": "flying"})
    assert (code, body["error"]["field"]) == (400, "to")
    async with operator.post(f"{CASES}/999999999/transitions", json={"to": "triaged"}) as r:
        assert r.status == 404


async def test_the_owner_bounces_a_case_back_to_triage_with_a_reason(
    hub: Hub, login_as: LoginAs
) -> None:
    operator = await login_as(Role.OPERATOR)
    case = await create(operator, category="animals", region=region())
    assert (await move(operator, case["id"], {"to": "assigned", "agency": "dkpp"}))[0] == 200
    code, body = await move(operator, case["id"], {"to": "triaged"})
    assert code == 409
    code, body = await move(
        operator, case["id"], {"to": "triaged", "reason": "snake, not livestock"}
    )
    assert code == 200
    assert body["status"] == "triaged"
    assert body["status_reason"] == "bounced by dkpp: snake, not livestock"
    history = (await detail(operator, case["id"]))["history"]
    assert history[-1]["after"]["bounce"] is True
    assert history[-1]["before"] == {"status": "assigned", "agency": "dkpp"}


async def test_notes_history_and_supervisor_override(hub: Hub, login_as: LoginAs) -> None:
    operator = await login_as(Role.OPERATOR)
    supervisor = await login_as(Role.SUPERVISOR)
    case = await create(operator, category="medical", region=region())
    async with operator.post(
        f"{CASES}/{case['id']}/notes", json={"body": "Ambulans berangkat"}
    ) as r:
        assert r.status == 201
    async with operator.post(f"{CASES}/{case['id']}/notes", json={"body": "  "}) as r:
        assert (r.status, (await r.json())["error"]["field"]) == (400, "body")
    override = {"agency": "bpbd", "reason": "mass casualty"}
    async with operator.request("PUT", f"{CASES}/{case['id']}/agency", json=override) as r:
        assert r.status == 403
    async with supervisor.request("PUT", f"{CASES}/{case['id']}/agency", json=override) as r:
        assert (r.status, (await r.json())["agency"]) == (200, "bpbd")
    got = await detail(operator, case["id"])
    assert [n["body"] for n in got["notes"]] == ["Ambulans berangkat"]
    assert [h["action"] for h in got["history"]] == ["opened", "note", "routing_override"]
    assert got["history"][-1]["actor"] == supervisor.user.username
    async with operator.get(f"{CASES}/{case['id']}/events") as r:
        assert [e["action"] for e in (await r.json())["events"]] == [
            "opened",
            "note",
            "routing_override",
        ]
    async with hub.pool.acquire() as conn:
        with pytest.raises(Exception, match="append-only"):
            await conn.execute("DELETE FROM case_history WHERE case_id = $1", case["id"])


# -- queue ----------------------------------------------------------------------------------------


async def test_the_queue_filters_and_pages_by_keyset(hub: Hub, login_as: LoginAs) -> None:
    operator = await login_as(Role.OPERATOR)
    place = region()
    made = [
        await create(operator, category="fire", region=place, lat=-6.20, lon=106.80),
        await create(operator, category="social_aid", region=place, lat=-7.0, lon=110.0),
        await create(operator, category="poverty", region=place, description="Keluarga miskin"),
        await create(
            operator, category="fire", region=place, priority="low", lat=-6.21, lon=106.81
        ),
        await create(operator, category="medical", region=place, channel="console"),
    ]
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        query: dict[str, Any] = {"region": place, "limit": 2}
        if cursor:
            query["cursor"] = cursor
        result = await page(operator, **query)
        seen += result["cases"]
        cursor = result["next_cursor"]
        if cursor is None:
            break
    assert sorted(c["id"] for c in seen) == sorted(c["id"] for c in made)
    keys = [
        (["critical", "high", "medium", "low"].index(c["priority"]), c["sla_due_at"], c["id"])
        for c in seen
    ]
    assert keys == sorted(keys)
    assert seen[0]["priority"] == "critical"
    assert {c["id"] for c in (await page(operator, region=place, category="fire"))["cases"]} == {
        made[0]["id"],
        made[3]["id"],
    }
    assert [c["id"] for c in (await page(operator, region=place, priority="low"))["cases"]] == [
        made[3]["id"],
        made[2]["id"],
    ]
    assert [c["id"] for c in (await page(operator, region=place, channel="console"))["cases"]] == [
        made[4]["id"]
    ]
    assert [c["id"] for c in (await page(operator, region=place, q="MISKIN"))["cases"]] == [
        made[2]["id"]
    ]
    assert [c["id"] for c in (await page(operator, region=place, agency="dinsos"))["cases"]] == [
        made[1]["id"]
    ]
    box = await page(operator, region=place, bbox="106.7,-6.3,106.9,-6.1")
    assert {c["id"] for c in box["cases"]} == {made[0]["id"], made[3]["id"]}
    assert (await move(operator, made[1]["id"], {"to": "rejected", "reason": "spam"}))[0] == 200
    open_ids = {c["id"] for c in (await page(operator, region=place, status="open"))["cases"]}
    assert made[1]["id"] not in open_ids
    assert len(open_ids) == 4
    assert [c["id"] for c in (await page(operator, region=place, status="rejected"))["cases"]] == [
        made[1]["id"]
    ]
    # Overdue: open and past the SLA due time.
    async with hub.pool.acquire() as conn:
        await conn.execute(
            "UPDATE cases SET sla_due_at = now() - interval '1 minute' WHERE id = ANY($1)",
            [made[1]["id"], made[2]["id"]],
        )
    overdue = (await page(operator, region=place, overdue=True))["cases"]
    assert [c["id"] for c in overdue] == [made[2]["id"]]
    assert overdue[0]["overdue"] is True


async def _ids(client: WebClient, **query: Any) -> list[int]:
    """Every case of the queue for ``query``, paged by its cursor, in the order served."""
    ids: list[int] = []
    while True:
        result = await page(client, **query)
        ids += [c["id"] for c in result["cases"]]
        if result["next_cursor"] is None:
            return ids
        query = {**query, "cursor": result["next_cursor"]}


async def test_a_page_never_shifts_when_cases_arrive(hub: Hub, login_as: LoginAs) -> None:
    operator = await login_as(Role.OPERATOR)
    place = region()
    made = [await create(operator, priority="high", region=place) for _ in range(6)]
    order = await _ids(operator, region=place, limit=200)
    assert order == [c["id"] for c in made]  # same priority: by SLA due time, so by arrival
    due = {c["id"]: datetime.fromisoformat(c["sla_due_at"]) for c in made}
    assert all(due[a] < due[b] for a, b in itertools.pairwise(order))
    first = await page(operator, region=place, limit=3)
    assert [c["id"] for c in first["cases"]] == order[:3]
    cursor, last_seen = first["next_cursor"], order[2]
    assert cursor is not None

    # New cases arrive while the operator reads page 1: two sort before its last row, two after.
    ahead = await create(operator, priority="critical", region=place)
    inside = await create(operator, priority="high", region=place)
    next_up = await create(operator, priority="high", region=place)
    behind = await create(operator, priority="low", region=place)
    async with hub.pool.acquire() as conn:
        # Due times such as a region's shorter SLA rule would give them on arrival.
        await conn.execute(
            "UPDATE cases SET sla_due_at = $2 WHERE id = $1",
            inside["id"],
            due[last_seen] - timedelta(microseconds=1),
        )
        await conn.execute(
            "UPDATE cases SET sla_due_at = $2 WHERE id = $1", next_up["id"], due[last_seen]
        )
    now = await _ids(operator, region=place, limit=200)
    assert now.index(ahead["id"]) < now.index(inside["id"]) < now.index(last_seen)
    assert now.index(last_seen) < now.index(next_up["id"]) < now.index(order[3])
    assert now[-1] == behind["id"]

    rest = await _ids(operator, region=place, limit=3, cursor=cursor)
    assert rest == [next_up["id"], *order[3:], behind["id"]]
    seen = order[:3] + rest
    assert len(seen) == len(set(seen))  # nothing repeated
    assert set(order) <= set(seen)  # nothing skipped
    assert ahead["id"] not in rest
    assert inside["id"] not in rest


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"status": "lost"}, "status"),
        ({"priority": "urgent"}, "priority"),
        ({"bbox": "1,2,3"}, "bbox"),
        ({"bbox": "10,0,5,1"}, "bbox"),
        ({"bbox": "a,b,c,d"}, "bbox"),
        ({"overdue": "maybe"}, "overdue"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"sort": "name"}, "sort"),
    ],
)
async def test_bad_queue_queries_name_the_parameter(
    login_as: LoginAs, query: dict[str, str], field: str
) -> None:
    viewer = await login_as(Role.VIEWER)
    async with viewer.get(CASES, params=query) as response:
        body = await response.json()
        assert response.status == 400, body
    assert body["error"]["field"] == field


# -- duplicates -----------------------------------------------------------------------------------


async def test_duplicates_are_flagged_linked_and_unlinked(hub: Hub, login_as: LoginAs) -> None:
    operator = await login_as(Role.OPERATOR)
    place = region()
    # A spot of its own: other tests' open cases must not be near it.
    lat, lon = -10 + secrets.randbelow(10_000) / 1000, 95 + secrets.randbelow(40_000) / 1000
    first = await create(operator, category="fire", region=place, lat=lat, lon=lon)
    near = await create(operator, category="fire", region=place, lat=lat - 0.001, lon=lon + 0.001)
    far = await create(operator, category="fire", region=place, lat=lat - 0.1, lon=lon + 0.1)
    other_kind = await create(operator, category="medical", region=place, lat=lat, lon=lon)
    contact = f"08{secrets.randbelow(10**9):09d}"
    by_phone = await create(operator, category="poverty", region=place, reporter_contact=contact)
    same_phone = await create(operator, category="elderly", region=place, reporter_contact=contact)
    assert first["duplicate_of"] is None
    assert near["duplicate_of"] == first["id"]  # ~150 m away, same category, minutes apart
    assert far["duplicate_of"] is None
    assert other_kind["duplicate_of"] is None
    assert by_phone["duplicate_of"] is None
    assert same_phone["duplicate_of"] == by_phone["id"]

    async with operator.request(
        "PUT", f"{CASES}/{near['id']}/parent", json={"parent_id": first["id"]}
    ) as r:
        linked = await r.json()
        assert r.status == 200, linked
    assert (linked["parent_id"], linked["duplicate_of"]) == (first["id"], None)
    parent = await detail(operator, first["id"])
    assert parent["children"] == 1
    assert [c["id"] for c in parent["duplicates"]] == [near["id"]]
    children = await page(operator, parent_id=first["id"])
    assert [c["id"] for c in children["cases"]] == [near["id"]]
    # No chains and no loops.
    async with operator.request(
        "PUT", f"{CASES}/{far['id']}/parent", json={"parent_id": near["id"]}
    ) as r:
        assert (r.status, (await r.json())["error"]["code"]) == (409, "link_refused")
    async with operator.request(
        "PUT", f"{CASES}/{first['id']}/parent", json={"parent_id": far["id"]}
    ) as r:
        assert r.status == 409
    async with operator.request(
        "PUT", f"{CASES}/{far['id']}/parent", json={"parent_id": far["id"]}
    ) as r:
        assert r.status == 409
    async with operator.request(
        "PUT", f"{CASES}/{far['id']}/parent", json={"parent_id": 999999999}
    ) as r:
        assert r.status == 404
    async with operator.request("DELETE", f"{CASES}/{near['id']}/parent") as r:
        assert (r.status, (await r.json())["parent_id"]) == (200, None)
    assert (await detail(operator, first["id"]))["children"] == 0
    actions = [h["action"] for h in (await detail(operator, first["id"]))["history"]]
    assert actions == ["opened", "child_linked", "child_unlinked"]


# -- live events and the SLA watch --------------------------------------------------------------


async def _event(ws: aiohttp.ClientWebSocketResponse, topic: str, case_id: int) -> dict[str, Any]:
    async with asyncio.timeout(RECEIVE_TIMEOUT):
        while True:
            message = await ws.receive_json()
            if (
                message.get("type") == "event"
                and message["topic"] == topic
                and message["key"] == str(case_id)
            ):
                payload: dict[str, Any] = message["payload"]
                return payload


async def test_the_live_socket_announces_new_and_changed_cases(hub: Hub, login_as: LoginAs) -> None:
    operator = await login_as(Role.OPERATOR)
    async with operator.ws_connect() as ws:
        assert (await ws.receive_json(timeout=RECEIVE_TIMEOUT))["type"] == "hello"
        case = await create(operator, category="fire", region=region(), lat=-6.2, lon=106.8)
        opened = await _event(ws, CASE_OPENED.name, case["id"])
        assert opened["number"] == case["number"]
        assert opened["priority"] == "critical"
        assert (opened["lat"], opened["lon"], opened["agency"]) == (-6.2, 106.8, "damkar")
        assert set(opened) >= {
            "id",
            "title",
            "category",
            "status",
            "channel",
            "region",
            "created_at",
            "updated_at",
            "sla_due_at",
            "parent_id",
        }
        await move(operator, case["id"], {"to": "assigned", "agency": "damkar"})
        changed = await _event(ws, CASE_CHANGED.name, case["id"])
        assert changed["status"] == "assigned"


async def _breach(hub: Hub, subscription: Subscription, case_id: int, seen: list[int]) -> None:
    """Put a case past its due time and wait until the watch announces it.

    Every announcement received on the way is added to ``seen`` (other tests' cases may be
    overdue in the same database).
    """
    async with hub.pool.acquire() as conn:
        await conn.execute(
            "UPDATE cases SET sla_due_at = now() - interval '1 second' WHERE id = $1", case_id
        )
    async with asyncio.timeout(RECEIVE_TIMEOUT):
        while case_id not in seen:
            seen.append((await subscription.get()).payload.id)


async def test_an_sla_breach_is_recorded_once_and_announced(make_hub_config: ConfigFactory) -> None:
    config = make_hub_config(cases={"sla_check_seconds": 0.1})
    async with start_web_hub(config) as (hub, served), client_of(served) as client:
        user, password = await create_user(hub, Role.OPERATOR)
        await log_in(client, user.username, password)
        subscription = hub.bus.subscribe(CASE_SLA_BREACHED, name="test-sla")
        async with subscription:
            case = await create(client, category="fire", region=region())
            seen: list[int] = []
            await _breach(hub, subscription, case["id"], seen)
            # Later cases running out of time prove later passes of the watch: each of those
            # passes saw the first case again and must have left it alone.
            for _ in range(2):
                later = await create(client, category="fire", region=region())
                await _breach(hub, subscription, later["id"], seen)
            while (envelope := subscription.get_nowait()) is not None:
                seen.append(envelope.payload.id)
        assert seen.count(case["id"]) == 1
        got = await detail(client, case["id"])
        assert got["sla_breached_at"] is not None
        assert [h["action"] for h in got["history"]].count("sla_breached") == 1
        # Reopening starts a fresh clock.
        for step in ("assigned", "in_progress", "resolved", "reopened"):
            assert (await move(client, case["id"], _STEP_BODY[step]))[0] == 200
        reopened = await detail(client, case["id"])
        assert reopened["sla_breached_at"] is None
        due = datetime.fromisoformat(reopened["sla_due_at"]) - datetime.now(UTC)
        assert timedelta(minutes=14) < due <= timedelta(minutes=15)


# -- the intake function field adapters call ----------------------------------------------------


async def test_field_text_goes_through_the_same_intake_function(hub: Hub) -> None:
    report = IncomingReport(
        channel="radio",
        category="disaster",
        description="Longsor menutup jalan desa, 3 rumah tertimbun",
        lat=-7.12,
        lon=110.4,
        reporter_contact=f"YC1{secrets.token_hex(2).upper()}-7",
        external_source="aprs",
        external_id=f"msg-{secrets.token_hex(4)}",
    )
    async with hub.bus.subscribe(CASE_OPENED, name="test-field") as opened:
        first = await submit_report(hub.pool, hub.bus, report)
        again = await submit_report(hub.pool, hub.bus, report)  # the radio repeated itself
        envelope = await asyncio.wait_for(opened.get(), RECEIVE_TIMEOUT)
        assert opened.get_nowait() is None  # announced once
    assert (first.created, again.created) == (True, False)
    assert again.id == first.id
    assert envelope.payload.channel == "radio"
    assert envelope.payload.agency == "bpbd"
    for bad, field in (
        (replace(report, channel="Radio!"), "channel"),
        (replace(report, lat=None), "lat"),
        (replace(report, category="x"), "category"),
        (replace(report, anonymous=True), "reporter_contact"),
    ):
        with pytest.raises(InvalidReport) as refused:
            await submit_report(hub.pool, hub.bus, replace(bad, external_id=None))
        assert refused.value.field == field
