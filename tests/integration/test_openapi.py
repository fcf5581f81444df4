"""The served OpenAPI document is valid 3.1, matches the router exactly, and real answers fit it."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
import referencing
import referencing.jsonschema
from openapi_spec_validator import OpenAPIV31SpecValidator

from ops.app import Hub
from ops.users import Role
from ops.web.access import PUBLIC, ROUTE_ROLES, routes_of
from ops.web.app import create_app
from tests.fixtures.hub import LoginAs, WebClient, client_of, create_user, wait_ready

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

SPEC_URI = "urn:posko:openapi"
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
    served = set(routes_of(create_app(hub)))
    assert documented - served == set(), "described but not served"
    assert served - documented == set(), "served but not described"


async def test_security_follows_the_access_table(web_client: WebClient) -> None:
    spec = await _spec(web_client)
    assert spec["components"]["securitySchemes"]["sessionCookie"] == {
        "type": "apiKey",
        "in": "cookie",
        "name": "posko_session",
        "description": spec["components"]["securitySchemes"]["sessionCookie"]["description"],
    }
    assert spec["security"] == [{"sessionCookie": []}]
    for (method, path), access in ROUTE_ROLES.items():
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
