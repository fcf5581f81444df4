"""Sign-in, sessions, roles on every route, and the audit trail, against a real hub."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
import pytest

from db import audit
from ops.app import Hub
from ops.core.errors import PoskoError
from ops.http.roles import PUBLIC
from ops.http.routes import declared, served
from ops.http.sessions import COOKIE_NAME
from ops.users import InvalidUser, Role, UsernameTaken, add_user, authenticate
from ops.web.app import create_app
from tests.fixtures.hub import (
    ConfigFactory,
    LoginAs,
    WebClient,
    client_of,
    create_user,
    log_in,
    start_web_hub,
    unique_name,
)

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

LOGIN = "/api/v1/auth/login"
ME = "/api/v1/auth/me"
LOGOUT = "/api/v1/auth/logout"
AUDIT = "/api/v1/audit"


async def _json(response: aiohttp.ClientResponse) -> Any:
    return json.loads(await response.read())


# -- the user service -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"username": "x"}, "username"),
        ({"username": "9lives"}, "username"),
        ({"username": "has space"}, "username"),
        ({"password": "short"}, "password"),
        ({"role": "admin"}, "role"),
        ({"display_name": "   "}, "display_name"),
    ],
)
async def test_add_user_refuses_bad_input(hub: Hub, changes: dict[str, str], field: str) -> None:
    arguments = {"username": "valid-name", "password": "long enough", "role": "viewer"}
    with pytest.raises(InvalidUser) as refused:
        await add_user(hub.pool, actor="test", **{**arguments, **changes})
    assert refused.value.field == field
    assert isinstance(refused.value, PoskoError)  # the CLI reports these without a traceback


async def test_add_user_stores_a_hash_and_audits_in_one_go(hub: Hub) -> None:
    name = unique_name("Sari")
    user = await add_user(
        hub.pool, username=name, password="correct horse", role="Supervisor", actor="cli"
    )
    assert user.username == name.lower()
    assert user.role == "supervisor"
    assert user.password_hash.startswith("$argon2id$")
    assert "correct horse" not in user.password_hash
    async with hub.pool.acquire() as conn:
        entries = await audit.list_entries(conn, target=f"user:{user.username}")
    assert [(e.actor, e.action, e.after) for e in entries] == [
        ("cli", "user.add", {"username": user.username, "role": "supervisor", "display_name": None})
    ]
    assert await authenticate(hub.pool, name.upper(), "correct horse") == user
    assert await authenticate(hub.pool, name, "wrong horse") is None
    assert await authenticate(hub.pool, "nobody-at-all", "correct horse") is None


async def test_a_taken_username_adds_nothing(hub: Hub) -> None:
    user, _ = await create_user(hub, Role.OPERATOR)
    async with hub.pool.acquire() as conn:
        before = await conn.fetchval("SELECT count(*) FROM audit_log")
    with pytest.raises(UsernameTaken) as taken:
        await add_user(
            hub.pool,
            username=user.username.upper(),
            password="long enough",
            role="viewer",
            actor="test",
        )
    assert isinstance(taken.value, PoskoError)
    async with hub.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM audit_log") == before


# -- login ------------------------------------------------------------------------------------


async def test_login_sets_an_httponly_strict_cookie_whose_hash_alone_is_stored(
    hub: Hub, web_client: WebClient
) -> None:
    user, password = await create_user(hub, Role.OPERATOR, display_name="Budi Santoso")
    async with web_client.post(
        LOGIN, json={"username": user.username, "password": password}
    ) as response:
        assert response.status == 200
        body = await response.json()
        set_cookie = response.headers.getall("Set-Cookie")
    assert body["user"] == {
        "id": user.id,
        "username": user.username,
        "role": "operator",
        "display_name": "Budi Santoso",
    }
    assert "password" not in json.dumps(body)
    assert len(set_cookie) == 1
    attributes = [part.strip().lower() for part in set_cookie[0].split(";")]
    assert "httponly" in attributes
    assert "samesite=strict" in attributes
    assert "path=/" in attributes
    assert "secure" not in attributes

    token = web_client.cookie(COOKIE_NAME)
    assert token is not None
    assert len(token) == 43  # secrets.token_urlsafe(32)
    async with hub.pool.acquire() as conn:
        stored = await conn.fetch("SELECT token_hash FROM sessions WHERE user_id = $1", user.id)
    assert [row["token_hash"] for row in stored] == [hashlib.sha256(token.encode()).digest()]

    async with web_client.get(ME) as response:
        assert response.status == 200
        assert (await response.json())["user"]["username"] == user.username


async def test_usernames_are_case_insensitive_at_login(hub: Hub, web_client: WebClient) -> None:
    user, password = await create_user(hub, Role.VIEWER)
    response = await log_in(web_client, user.username.upper(), password)
    assert response.status == 200


async def test_logging_in_again_replaces_the_session(hub: Hub, web_client: WebClient) -> None:
    user, password = await create_user(hub, Role.OPERATOR)
    assert (await log_in(web_client, user.username, password)).status == 200
    assert (await log_in(web_client, user.username, password)).status == 200
    async with hub.pool.acquire() as conn:
        count = await conn.fetchval("SELECT count(*) FROM sessions WHERE user_id = $1", user.id)
    assert count == 1


async def test_secure_cookie_when_configured(make_hub_config: ConfigFactory) -> None:
    config = make_hub_config(web={"secure_cookies": True})
    async with start_web_hub(config) as (hub, served), client_of(served) as client:
        user, password = await create_user(hub, Role.VIEWER)
        async with client.post(
            LOGIN, json={"username": user.username, "password": password}
        ) as response:
            assert response.status == 200
            attributes = [
                part.strip().lower() for part in response.headers["Set-Cookie"].split(";")
            ]
    assert "secure" in attributes
    assert "httponly" in attributes


async def test_bad_password_and_unknown_user_get_the_same_401(
    hub: Hub, web_client: WebClient
) -> None:
    user, _ = await create_user(hub, Role.OPERATOR)
    async with web_client.post(
        LOGIN, json={"username": user.username, "password": "wrong password"}
    ) as response:
        wrong_password = (response.status, await response.read())
        assert COOKIE_NAME not in response.cookies
    async with web_client.post(
        LOGIN, json={"username": "nobody-here", "password": "wrong password"}
    ) as response:
        unknown_user = (response.status, await response.read())
    assert wrong_password == unknown_user
    assert wrong_password[0] == 401
    assert json.loads(wrong_password[1]) == {
        "error": {
            "code": "invalid_credentials",
            "message": "wrong username or password",
            "field": None,
        }
    }


async def test_inactive_user_can_neither_log_in_nor_use_a_session(
    hub: Hub, login_as: LoginAs, web_client: WebClient
) -> None:
    client = await login_as(Role.OPERATOR)
    assert client.user is not None
    assert client.password is not None
    async with hub.pool.acquire() as conn:
        await conn.execute("UPDATE users SET active = false WHERE id = $1", client.user.id)
    async with client.get(ME) as response:
        assert response.status == 401
    response = await log_in(web_client, client.user.username, client.password)
    assert response.status == 401


async def test_login_attempts_are_rate_limited_per_address_and_username(
    make_hub_config: ConfigFactory,
) -> None:
    # 3 a minute: a token comes back only every 20 s, far longer than the attempts take, so a
    # loaded machine cannot refill the budget mid-test (the refill itself is unit-tested).
    config = make_hub_config(web={"login_attempts_per_minute": 3})
    async with start_web_hub(config) as (hub, served), client_of(served) as web_client:
        user, password = await create_user(hub, Role.OPERATOR)
        for _ in range(3):
            response = await log_in(web_client, user.username, "not the password")
            assert response.status == 401
        async with web_client.post(
            LOGIN, json={"username": user.username, "password": password}
        ) as response:
            assert response.status == 429
            assert int(response.headers["Retry-After"]) >= 1
            assert (await response.json())["error"]["code"] == "too_many_requests"
        # Another username from the same address is not held up.
        other, other_password = await create_user(hub, Role.OPERATOR)
        assert (await log_in(web_client, other.username, other_password)).status == 200


async def test_logout_ends_the_session(hub: Hub, login_as: LoginAs) -> None:
    client = await login_as(Role.TECHNICIAN)
    token = client.cookie(COOKIE_NAME)
    assert token is not None
    async with client.post(LOGOUT) as response:
        assert response.status == 204
        assert response.cookies[COOKIE_NAME].value == ""
    async with client.get(ME) as response:
        assert response.status == 401
    # The old token opens nothing either, even if a client kept it.
    async with client_of(client.served) as replay:
        replay.session.cookie_jar.update_cookies({COOKIE_NAME: token})
        async with replay.get(ME) as response:
            assert response.status == 401
            assert (await response.json())["error"]["code"] == "unauthenticated"
    async with hub.pool.acquire() as conn:
        left = await conn.fetchval(
            "SELECT count(*) FROM sessions WHERE token_hash = $1",
            hashlib.sha256(token.encode()).digest(),
        )
    assert left == 0


async def test_an_expired_session_is_refused(hub: Hub, login_as: LoginAs) -> None:
    client = await login_as(Role.VIEWER)
    assert client.user is not None
    async with client.get(ME) as response:
        assert response.status == 200
    async with hub.pool.acquire() as conn:
        await conn.execute(
            "UPDATE sessions SET expires_at = now() - interval '1 second' WHERE user_id = $1",
            client.user.id,
        )
    async with client.get(ME) as response:
        assert response.status == 401
        assert (await response.json())["error"]["code"] == "unauthenticated"


async def test_session_lasts_web_session_hours(hub: Hub, login_as: LoginAs) -> None:
    client = await login_as(Role.VIEWER)
    assert client.user is not None
    async with hub.pool.acquire() as conn:
        lifetime = await conn.fetchval(
            "SELECT extract(epoch FROM expires_at - created_at) FROM sessions WHERE user_id = $1",
            client.user.id,
        )
    assert abs(float(lifetime) - hub.config.web.session_hours * 3600) < 60


async def test_a_forged_cookie_is_refused(web_client: WebClient) -> None:
    web_client.session.cookie_jar.update_cookies({COOKIE_NAME: "A" * 43})
    async with web_client.get(ME) as response:
        assert response.status == 401


# -- roles on every route ---------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """How to call one route, and what an admitted caller gets."""

    path: str
    ok: int = 200
    body: Any = None


_NO_CASE = 999_999_999  # a case id no test reaches

#: One example call per route. A route added to the app without an entry here fails the test.
PROBES: dict[tuple[str, str], Probe] = {
    ("GET", "/healthz"): Probe("/healthz"),
    ("GET", "/readyz"): Probe("/readyz"),
    ("GET", "/metrics"): Probe("/metrics"),
    ("GET", "/"): Probe("/"),
    ("GET", "/static/{path}"): Probe("/static/js/main.js"),
    ("GET", "/api/v1/openapi.json"): Probe("/api/v1/openapi.json"),
    ("POST", "/api/v1/auth/login"): Probe(
        "/api/v1/auth/login", ok=401, body={"username": "nobody", "password": "x"}
    ),
    ("POST", "/api/v1/auth/logout"): Probe("/api/v1/auth/logout", ok=204),
    ("GET", "/api/v1/auth/me"): Probe("/api/v1/auth/me"),
    ("GET", "/api/v1/hub/status"): Probe("/api/v1/hub/status"),
    ("GET", "/api/v1/live"): Probe("/api/v1/live", ok=101),
    ("GET", "/api/v1/audit"): Probe("/api/v1/audit?limit=5"),
    ("GET", "/api/v1/cases"): Probe("/api/v1/cases?limit=5"),
    ("POST", "/api/v1/cases"): Probe(
        "/api/v1/cases", ok=201, body={"category": "other", "description": "probe"}
    ),
    ("GET", "/api/v1/cases/{id}"): Probe(f"/api/v1/cases/{_NO_CASE}", ok=404),
    ("PATCH", "/api/v1/cases/{id}"): Probe(
        f"/api/v1/cases/{_NO_CASE}", ok=404, body={"title": "probe"}
    ),
    ("POST", "/api/v1/cases/{id}/transitions"): Probe(
        f"/api/v1/cases/{_NO_CASE}/transitions", ok=404, body={"to": "triaged"}
    ),
    ("POST", "/api/v1/cases/{id}/notes"): Probe(
        f"/api/v1/cases/{_NO_CASE}/notes", ok=404, body={"body": "probe"}
    ),
    ("GET", "/api/v1/cases/{id}/events"): Probe(f"/api/v1/cases/{_NO_CASE}/events", ok=404),
    ("PUT", "/api/v1/cases/{id}/parent"): Probe(
        f"/api/v1/cases/{_NO_CASE}/parent", ok=404, body={"parent_id": 1}
    ),
    ("DELETE", "/api/v1/cases/{id}/parent"): Probe(f"/api/v1/cases/{_NO_CASE}/parent", ok=404),
    ("PUT", "/api/v1/cases/{id}/agency"): Probe(
        f"/api/v1/cases/{_NO_CASE}/agency", ok=404, body={"agency": "bpbd", "reason": "probe"}
    ),
    ("GET", "/api/v1/case-categories"): Probe("/api/v1/case-categories"),
    ("PUT", "/api/v1/case-categories/{code}"): Probe(
        "/api/v1/case-categories/other",
        body={"label_id": "Lainnya", "label_en": "Other", "default_priority": "low"},
    ),
    ("GET", "/api/v1/agencies"): Probe("/api/v1/agencies"),
    ("GET", "/api/v1/routing-rules"): Probe("/api/v1/routing-rules"),
    ("PUT", "/api/v1/routing-rules"): Probe(
        "/api/v1/routing-rules",
        body={
            "category": "other",
            "region": "probe-region",
            "agency": "posko",
            "sla_minutes": {"critical": 60, "high": 240, "medium": 1440, "low": 4320},
        },
    ),
    ("GET", "/report"): Probe("/report"),
    ("GET", "/report/anonymous"): Probe("/report/anonymous"),
    ("GET", "/api/v1/public/categories"): Probe("/api/v1/public/categories"),
    ("POST", "/api/v1/public/reports"): Probe(
        "/api/v1/public/reports", ok=201, body={"category": "other", "description": "probe"}
    ),
    ("GET", "/api/v1/public/reports/{code}"): Probe("/api/v1/public/reports/LP-AAAAAAAAAA", ok=404),
    ("POST", "/api/v1/public/reports/{code}/notes"): Probe(
        f"/api/v1/public/reports/WB-{'2' * 20}/notes", ok=404, body={"body": "probe"}
    ),
    ("POST", "/api/v1/public/whistleblower"): Probe(
        "/api/v1/public/whistleblower", ok=201, body={"category": "other", "description": "probe"}
    ),
    # Walls: no wall exists here, so admitted callers get the wall's 404 (or a body's 400).
    ("GET", "/wall/{name}"): Probe("/wall/main"),
    ("GET", "/api/v1/walls"): Probe("/api/v1/walls"),
    ("GET", "/api/v1/walls/{name}"): Probe("/api/v1/walls/no-wall", ok=404),
    ("PUT", "/api/v1/walls/{name}"): Probe(
        "/api/v1/walls/no-wall", ok=400, body={"rows": 0, "columns": 1}
    ),
    ("DELETE", "/api/v1/walls/{name}"): Probe("/api/v1/walls/no-wall", ok=404),
    ("PUT", "/api/v1/walls/{name}/tiles/{index}"): Probe(
        "/api/v1/walls/no-wall/tiles/0", ok=404, body={"kind": "queue"}
    ),
    ("GET", "/api/v1/walls/{name}/presets"): Probe("/api/v1/walls/no-wall/presets", ok=404),
    ("POST", "/api/v1/walls/{name}/presets"): Probe(
        "/api/v1/walls/no-wall/presets", ok=404, body={"name": "p"}
    ),
    ("DELETE", "/api/v1/walls/{name}/presets/{preset}"): Probe(
        "/api/v1/walls/no-wall/presets/p", ok=404
    ),
    ("POST", "/api/v1/walls/{name}/presets/{preset}/recall"): Probe(
        "/api/v1/walls/no-wall/presets/p/recall", ok=404
    ),
    ("GET", "/api/v1/walls/{name}/screens"): Probe("/api/v1/walls/no-wall/screens", ok=404),
    ("POST", "/api/v1/walls/{name}/screens"): Probe(
        "/api/v1/walls/no-wall/screens", ok=404, body={"screen": "s"}
    ),
    ("DELETE", "/api/v1/walls/{name}/screens/{screen}"): Probe(
        "/api/v1/walls/no-wall/screens/s", ok=404
    ),
    ("POST", "/api/v1/walls/{name}/screens/{screen}/session"): Probe(
        "/api/v1/walls/no-wall/screens/s/session", ok=401, body={"token": "x" * 43}
    ),
    ("GET", "/api/v1/walls/{name}/live"): Probe("/api/v1/walls/no-wall/live", ok=404),
    ("GET", "/api/v1/console/settings"): Probe("/api/v1/console/settings"),
    ("GET", "/api/v1/map/provinces"): Probe("/api/v1/map/provinces"),
    # Units and dispatch: nothing named here exists, so admitted callers get 404 (or 400).
    ("GET", "/api/v1/units"): Probe("/api/v1/units"),
    ("POST", "/api/v1/units"): Probe("/api/v1/units", ok=400, body={"id": "u"}),
    ("GET", "/api/v1/units/recommend"): Probe("/api/v1/units/recommend?case=999999999", ok=404),
    ("GET", "/api/v1/positions/stats"): Probe("/api/v1/positions/stats"),
    ("GET", "/api/v1/units/{unit_id}"): Probe("/api/v1/units/no-unit", ok=404),
    ("POST", "/api/v1/units/{unit_id}/status"): Probe(
        "/api/v1/units/no-unit/status", ok=404, body={"status": "available"}
    ),
    ("GET", "/api/v1/units/{unit_id}/positions"): Probe("/api/v1/units/no-unit/positions", ok=404),
    ("POST", "/api/v1/dispatches"): Probe(
        "/api/v1/dispatches", ok=404, body={"case": 999999999, "unit": "no-unit", "message": "go"}
    ),
    ("GET", "/api/v1/dispatches"): Probe("/api/v1/dispatches?open=true"),
    ("GET", "/api/v1/dispatches/{order_id}"): Probe("/api/v1/dispatches/000000000000", ok=404),
    ("POST", "/api/v1/dispatches/{order_id}/acknowledge"): Probe(
        "/api/v1/dispatches/000000000000/acknowledge", ok=404, body={"unit": "no-unit"}
    ),
    ("POST", "/api/v1/dispatches/{order_id}/cancel"): Probe(
        "/api/v1/dispatches/000000000000/cancel", ok=404, body={"reason": "test"}
    ),
    # Radio: this hub has no gateway, so commands get the gateway's 404 (a bulletin the 409).
    ("GET", "/api/v1/radio/gateways"): Probe("/api/v1/radio/gateways"),
    ("POST", "/api/v1/radio/gateways/{id}/channel"): Probe(
        "/api/v1/radio/gateways/no-gw/channel", ok=404, body={"channel": "APRS"}
    ),
    ("POST", "/api/v1/radio/gateways/{id}/ptt"): Probe(
        "/api/v1/radio/gateways/no-gw/ptt", ok=404, body={"on": False}
    ),
    ("POST", "/api/v1/radio/bulletins"): Probe(
        "/api/v1/radio/bulletins", ok=409, body={"group": "medic", "text": "probe"}
    ),
    ("GET", "/api/v1/radio/log"): Probe("/api/v1/radio/log?limit=5"),
    ("GET", "/api/v1/radio/log.csv"): Probe("/api/v1/radio/log.csv?limit=5"),
    ("GET", "/api/v1/radio/units/{unit_id}/thread"): Probe(
        "/api/v1/radio/units/no-unit/thread", ok=404
    ),
    ("GET", "/api/v1/shifts/current"): Probe("/api/v1/shifts/current"),
    ("GET", "/devices"): Probe("/devices"),
    ("GET", "/api/v1/devices"): Probe("/api/v1/devices?state=offline"),
    ("POST", "/api/v1/devices"): Probe("/api/v1/devices", ok=400, body={}),
    ("GET", "/api/v1/devices/{id}"): Probe("/api/v1/devices/no-device", ok=404),
    ("PATCH", "/api/v1/devices/{id}"): Probe("/api/v1/devices/no-device", ok=404, body={}),
    ("GET", "/api/v1/devices/{id}/health"): Probe("/api/v1/devices/no-device/health", ok=404),
    ("POST", "/api/v1/devices/{id}/commands"): Probe(
        "/api/v1/devices/no-device/commands", ok=404, body={"command": "ping"}
    ),
    ("GET", "/api/v1/alarms"): Probe("/api/v1/alarms?limit=5"),
    ("POST", "/api/v1/alarms/{id}/ack"): Probe("/api/v1/alarms/0/ack", ok=404),
    ("POST", "/api/v1/alarms/{id}/clear"): Probe("/api/v1/alarms/0/clear", ok=404),
}


async def test_every_route_is_declared_and_has_a_probe(hub: Hub) -> None:
    app = create_app(hub)
    assert served(app) == set(declared(app)), "every route needs a declaration"
    assert served(app) == set(PROBES), "every route needs a probe in this test"


async def _call(client: WebClient, method: str, probe: Probe) -> tuple[int, Any]:
    if probe.ok == 101:
        try:
            async with client.ws_connect(probe.path) as ws:
                hello = await ws.receive_json(timeout=5)
                assert hello["type"] == "hello"
                return 101, hello
        except aiohttp.WSServerHandshakeError:
            pass  # refused: read the refusal's body with a plain request below
    async with client.request(method, probe.path, json=probe.body) as response:
        body = await response.read()
        if response.content_type == "application/json" and body:
            return response.status, json.loads(body)
        return response.status, None


@pytest.mark.parametrize("role", [None, *Role])
async def test_roles_are_enforced_on_every_route(
    hub: Hub, web_client: WebClient, login_as: LoginAs, role: Role | None
) -> None:
    signed_in = None if role is None else await login_as(role)
    table = declared(create_app(hub))
    for (method, template), probe in sorted(PROBES.items()):
        access = table[(method, template)].access
        client = web_client if signed_in is None else signed_in
        if role is not None and template == LOGOUT:
            client = await login_as(role)  # logging out must not spoil the later probes
        status, body = await _call(client, method, probe)
        where = f"{method} {template} as {role or 'anonymous'}"
        if access == PUBLIC:
            assert status == probe.ok, where
        elif role is None:
            assert status == 401, where
            assert body["error"]["code"] == "unauthenticated", where
        elif role in access:
            assert status == probe.ok, where
        else:
            assert status == 403, where
            assert body["error"]["code"] == "forbidden", where
            assert all(allowed.value in body["error"]["message"] for allowed in access), where


# -- audit ------------------------------------------------------------------------------------


async def _audit(client: WebClient, **query: Any) -> dict[str, Any]:
    async with client.get(AUDIT, params={k: str(v) for k, v in query.items()}) as response:
        assert response.status == 200, await response.text()
        result: dict[str, Any] = await response.json()
        return result


async def test_logins_failures_and_logouts_are_audited(
    hub: Hub, web_client: WebClient, login_as: LoginAs
) -> None:
    user, password = await create_user(hub, Role.OPERATOR)
    secret_guess = "hunter2-not-it"
    assert (await log_in(web_client, user.username, secret_guess)).status == 401
    assert (await log_in(web_client, user.username, password)).status == 200
    async with web_client.post(LOGOUT) as response:
        assert response.status == 204

    supervisor = await login_as(Role.SUPERVISOR)
    entries = (await _audit(supervisor, target=f"user:{user.username}"))["entries"]
    actions = [(entry["actor"], entry["action"]) for entry in reversed(entries)]
    assert actions == [
        ("test", "user.add"),
        ("anonymous", "auth.login_failed"),
        (user.username, "auth.login"),
        (user.username, "auth.logout"),
    ]
    for entry in entries:
        assert entry["at"]
        assert entry["target"] == f"user:{user.username}"
    text = json.dumps(entries)
    assert password not in text
    assert secret_guess not in text
    async with hub.pool.acquire() as conn:
        everything = json.dumps(
            [dict(row) for row in await conn.fetch("SELECT * FROM audit_log")], default=str
        )
    assert password not in everything
    assert secret_guess not in everything


async def test_audit_pages_by_id(hub: Hub, login_as: LoginAs) -> None:
    supervisor = await login_as(Role.SUPERVISOR)
    first = await _audit(supervisor, limit=2)
    assert len(first["entries"]) == 2
    ids = [entry["id"] for entry in first["entries"]]
    assert ids == sorted(ids, reverse=True)
    assert first["next_before_id"] == ids[-1]
    second = await _audit(supervisor, limit=2, before_id=first["next_before_id"])
    assert all(entry["id"] < ids[-1] for entry in second["entries"])


async def test_audit_query_is_validated(login_as: LoginAs) -> None:
    supervisor = await login_as(Role.SUPERVISOR)
    async with supervisor.get(AUDIT, params={"limit": "many"}) as response:
        assert response.status == 400
        error = (await response.json())["error"]
    assert error["field"] == "limit"
    async with supervisor.get(AUDIT, params={"colour": "red"}) as response:
        assert response.status == 400
        assert (await response.json())["error"]["field"] == "colour"


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET actor = 'someone else'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ],
)
async def test_the_audit_log_refuses_changes(hub: Hub, login_as: LoginAs, statement: str) -> None:
    await login_as(Role.VIEWER)  # at least one entry exists
    async with hub.pool.acquire() as conn:
        before = await conn.fetchval("SELECT count(*) FROM audit_log")
        with pytest.raises(asyncpg.PostgresError, match="append-only"):
            await conn.execute(statement)
        assert await conn.fetchval("SELECT count(*) FROM audit_log") == before
