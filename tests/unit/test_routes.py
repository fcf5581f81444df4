"""Route declarations: what the router, the role table and the OpenAPI document get from them."""

from __future__ import annotations

import pytest
from aiohttp import web
from pydantic import BaseModel, ConfigDict

from ops.http.models import Out, Time
from ops.http.openapi import build_document
from ops.http.roles import PUBLIC, SUPERVISOR_ONLY
from ops.http.routes import Api, check_declared, declared, install, undeclared


class Inner(Out):
    """A nested shape."""

    at: Time


class Thing(Out):
    """A thing."""

    id: int
    inner: Inner


class ThingRequest(BaseModel):
    """Make a thing."""

    model_config = ConfigDict(extra="forbid")

    name: str


class ThingQuery(BaseModel):
    """Filter things."""

    model_config = ConfigDict(extra="forbid")

    limit: int = 10
    tag: list[str] = []


def _api() -> Api:
    api = Api("things")

    @api.get("/api/v1/things/{id:\\d+}", roles=PUBLIC, summary="One thing.", response=Thing)
    async def get_thing(request: web.Request) -> web.Response:
        raise NotImplementedError

    @api.post(
        "/api/v1/things",
        roles=SUPERVISOR_ONLY,
        summary="Make a thing.",
        body=ThingRequest,
        query=ThingQuery,
        responses={201: Thing},
        errors={409: "Taken."},
    )
    async def make_thing(request: web.Request) -> web.Response:
        raise NotImplementedError

    return api


def test_the_router_and_the_role_table_come_from_the_declarations() -> None:
    app = web.Application()
    install(app, _api())
    assert {key: route.access for key, route in declared(app).items()} == {
        ("GET", "/api/v1/things/{id}"): PUBLIC,
        ("POST", "/api/v1/things"): SUPERVISOR_ONLY,
    }
    assert undeclared(app) == []
    check_declared(app)


def test_an_app_with_an_undeclared_route_is_refused() -> None:
    async def handler(request: web.Request) -> web.Response:
        raise NotImplementedError

    app = web.Application()
    install(app, _api())
    app.router.add_get("/sneaky", handler)
    with pytest.raises(RuntimeError, match="GET /sneaky"):
        check_declared(app)


def test_a_route_declared_twice_is_refused() -> None:
    app = web.Application()
    install(app, _api())
    with pytest.raises(RuntimeError, match="declared twice"):
        install(app, _api())


def test_the_document_is_built_from_the_declarations() -> None:
    document = build_document(_api().routes, title="t", version="1")
    public = document["paths"]["/api/v1/things/{id}"]["get"]
    assert public["operationId"] == "getThing"
    assert public["security"] == []
    assert set(public["responses"]) == {"200", "500"}
    make = document["paths"]["/api/v1/things"]["post"]
    assert make["x-posko-roles"] == ["supervisor"]
    assert set(make["responses"]) == {"201", "400", "401", "403", "409", "413", "415", "500"}
    assert make["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ThingRequest"
    }
    assert [p["name"] for p in make["parameters"]] == ["limit", "tag"]
    schemas = document["components"]["schemas"]
    assert {"Thing", "Inner", "ThingRequest", "ErrorOut"} <= set(schemas)
    assert schemas["Thing"]["properties"]["inner"] == {"$ref": "#/components/schemas/Inner"}
    assert schemas["Thing"]["additionalProperties"] is False
    assert schemas["Inner"]["properties"]["at"]["format"] == "date-time"
    assert "$defs" not in schemas["Thing"]


def test_two_different_models_of_one_name_are_refused() -> None:
    first = _api()

    class Thing(Out):  # another shape under the same name
        """Not the same thing."""

        name: str

    second = Api("other")

    @second.get("/other", roles=PUBLIC, summary="Other.", response=Thing)
    async def other(request: web.Request) -> web.Response:
        raise NotImplementedError

    with pytest.raises(RuntimeError, match="two different schemas are named Thing"):
        build_document([*first.routes, *second.routes], title="t", version="1")
