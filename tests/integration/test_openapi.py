"""The served OpenAPI document is valid 3.1, matches the router exactly, and real answers fit it."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
import referencing
import referencing.jsonschema
from openapi_spec_validator import OpenAPIV31SpecValidator

from ops.app import Hub
from ops.http.roles import PUBLIC
from ops.http.routes import declared, served
from ops.users import Role
from ops.web.app import create_app
from tests.fixtures.hub import LoginAs, WebClient, client_of, create_user, wait_ready

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

SPEC_URI = "urn:posko:openapi"
#: (method, template, status) of every real answer validated against the document so far.
VALIDATED: set[tuple[str, str, int]] = set()
JSON = "application/json"
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


async def _spec(client: WebClient) -> dict[str, Any]:
    async with client.get("/api/v1/openapi.json") as response:
        assert response.status == 200
        spec: dict[str, Any] = await response.json()
        return spec


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _validate(spec: dict[str, Any], method: str, path: str, status: int, body: Any) -> None:
    """Validate ``body`` against the spec's JSON schema for that operation's answer."""
    response = spec["paths"][path][method.lower()]["responses"][str(status)]
    VALIDATED.add((method.upper(), path, status))
    if JSON not in response.get("content", {}):
        return  # a page, a file or no body: only its status is documented
    if "$ref" in response:
        pointer = response["$ref"].removeprefix("#")
    else:
        pointer = f"/paths/{_escape(path)}/{method.lower()}/responses/{status}"
    pointer += "/content/application~1json/schema"
    resource = referencing.Resource.from_contents(
        spec, default_specification=referencing.jsonschema.DRAFT202012
    )
    registry = referencing.Registry().with_resource(SPEC_URI, resource)
    validator = jsonschema.Draft202012Validator(
        {"$ref": f"{SPEC_URI}#{pointer}"},
        registry=registry,
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )
    validator.validate(body)


async def test_the_document_is_valid_openapi_3_1(web_client: WebClient) -> None:
    spec = await _spec(web_client)
    assert spec["openapi"].startswith("3.1.")
    OpenAPIV31SpecValidator(spec).validate()


async def test_the_document_describes_exactly_the_routes(hub: Hub, web_client: WebClient) -> None:
    spec = await _spec(web_client)
    documented = {
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in METHODS
    }
    app = create_app(hub)
    assert documented - served(app) == set(), "described but not served"
    assert served(app) - documented == set(), "served but not described"


async def test_security_follows_the_declarations(hub: Hub, web_client: WebClient) -> None:
    spec = await _spec(web_client)
    assert spec["components"]["securitySchemes"]["sessionCookie"] == {
        "type": "apiKey",
        "in": "cookie",
        "name": "posko_session",
        "description": spec["components"]["securitySchemes"]["sessionCookie"]["description"],
    }
    assert spec["security"] == [{"sessionCookie": []}]
    for (method, path), route in declared(create_app(hub)).items():
        access = route.access
        operation = spec["paths"][path][method.lower()]
        if access == PUBLIC:
            assert operation["security"] == [], (method, path)
        else:
            assert "security" not in operation, (method, path)
            assert operation["x-posko-roles"] == sorted(role.value for role in access)
            assert {"401", "403"} <= set(operation["responses"]), (method, path)
        assert "500" in operation["responses"]


async def test_real_answers_fit_their_schemas(
    hub: Hub, web_client: WebClient, login_as: LoginAs
) -> None:
    spec = await _spec(web_client)
    await wait_ready(hub)

    async def check(client: WebClient, method: str, path: str, **kwargs: Any) -> int:
        template = kwargs.pop("template", path)
        async with client.request(method, path, **kwargs) as response:
            _validate(spec, method, template, response.status, await response.json())
            return response.status

    assert await check(web_client, "GET", "/healthz") == 200
    assert await check(web_client, "GET", "/readyz") == 200
    user, password = await create_user(hub, Role.SUPERVISOR, display_name="Sari")
    login = {"username": user.username, "password": password}
    assert await check(web_client, "POST", "/api/v1/auth/login", json=login) == 200
    assert await check(web_client, "GET", "/api/v1/auth/me") == 200
    assert await check(web_client, "GET", "/api/v1/hub/status") == 200
    assert await check(web_client, "GET", "/api/v1/audit", params={"limit": "3"}) == 200
    # Error answers fit the shared Error schema too.
    wrong = {"username": user.username, "password": "not it at all"}
    assert await check(web_client, "POST", "/api/v1/auth/login", json=wrong) == 401
    assert await check(web_client, "POST", "/api/v1/auth/login", json={}) == 400
    assert await check(web_client, "GET", "/api/v1/audit", params={"limit": "0"}) == 400
    viewer = await login_as(Role.VIEWER)
    assert await check(viewer, "GET", "/api/v1/audit") == 403
    async with client_of(web_client.served) as anonymous:
        assert await check(anonymous, "GET", "/api/v1/hub/status") == 401


async def test_readiness_503_fits_its_schema(hub: Hub, web_client: WebClient) -> None:
    spec = await _spec(web_client)
    await wait_ready(hub)
    await hub.supervisor.stop("mqtt")
    async with web_client.get("/readyz") as response:
        assert response.status == 503
        _validate(spec, "GET", "/readyz", 503, await response.json())


async def test_every_route_answers_as_documented(
    hub: Hub, web_client: WebClient, login_as: LoginAs
) -> None:
    """Each route, called by a role it admits, answers with a status and body it documents."""
    from tests.integration.test_web_auth import PROBES, Probe

    spec = await _spec(web_client)
    await wait_ready(hub)
    table = declared(create_app(hub))
    clients = {role: await login_as(role) for role in Role}
    later: list[tuple[tuple[str, str], Probe]] = []
    for (method, template), probe in sorted(PROBES.items()):
        if template == "/api/v1/auth/logout":
            later.append(((method, template), probe))
            continue
        access = table[(method, template)].access
        client = web_client if access == PUBLIC else clients[min(access)]
        if probe.ok == 101:
            async with client.ws_connect(probe.path) as ws:
                assert (await ws.receive_json(timeout=5))["type"] == "hello"
            _validate(spec, method, template, 101, None)
            continue
        async with client.request(method, probe.path, json=probe.body) as response:
            assert response.status == probe.ok, (method, template)
            body = await response.json() if response.content_type == JSON else None
            _validate(spec, method, template, response.status, body)
    for (method, template), probe in later:
        async with clients[Role.VIEWER].request(method, probe.path) as response:
            _validate(spec, method, template, response.status, None)


@pytest.mark.xfail(
    reason="the probes meet most routes' errors only; their successes need fixtures yet",
    strict=True,
)
async def test_every_documented_success_was_met_by_a_real_answer(web_client: WebClient) -> None:
    """Runs last in this module: every documented 2xx of every operation was validated above
    or by the modules that import ``_validate`` in the same run."""
    spec = await _spec(web_client)
    documented = {
        (method.upper(), path, int(status))
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        for status in operation["responses"]
        if status.startswith("2") or status == "101"
    }
    missing = sorted(documented - VALIDATED)
    assert missing == [], f"documented answers no test met: {missing}"
