r"""One declaration per route: method, path, roles, request and response models, summary.

A module declares its routes on an :class:`Api`::

    api = Api("cases")

    @api.get("/api/v1/cases/{id:\d+}", roles=ANY_ROLE, response=CaseDetail,
             errors={404: "No such case."}, summary="A case with its history.")
    async def get_case(request: web.Request) -> web.Response: ...

From the declarations alone the app builds its router (:func:`install`), the role table that
:mod:`ops.http.access` enforces, and the OpenAPI document (:mod:`ops.http.openapi`). An app with
an aiohttp route that was not declared refuses to start (:func:`check_declared`).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Required, TypedDict, TypeVar, Unpack

from aiohttp import web
from pydantic import BaseModel, ValidationError

from ops.http.errors import validation_error
from ops.http.roles import Access

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
Schema = dict[str, Any]
M = TypeVar("M", bound=BaseModel)

_REGEX_PART = re.compile(r"\{(\w+):[^}]*\}")


@dataclass(frozen=True, slots=True)
class Content:
    """An answer that is not a JSON model: a page, a file, a text exposition."""

    media_type: str
    schema: Schema = field(default_factory=lambda: {"type": "string"})
    description: str = ""


#: What a status answers with: a pydantic model (JSON), other content, or no body at all.
Answer = type[BaseModel] | Content | None
HTML: Final = Content("text/html", description="HTML.")


@dataclass(frozen=True, slots=True)
class Route:
    """Everything about one route, in one place."""

    method: Method
    pattern: str
    """The aiohttp pattern, which may constrain a part: ``/api/v1/cases/{id:\\d+}``."""
    handler: Handler
    access: Access
    summary: str
    tag: str
    responses: Mapping[int, Answer]
    errors: Mapping[int, str] = field(default_factory=dict)
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    description: str = ""
    path_params: Mapping[str, Schema] = field(default_factory=dict)

    @property
    def path(self) -> str:
        """The route template as aiohttp names it and OpenAPI documents it: ``/cases/{id}``."""
        return _REGEX_PART.sub(r"{\1}", self.pattern)

    @property
    def key(self) -> tuple[str, str]:
        """(method, template): the route's identity in the role table and the document."""
        return self.method, self.path

    @property
    def operation_id(self) -> str:
        """The handler's name in camelCase."""
        head, *rest = self.handler.__name__.strip("_").split("_")
        return head + "".join(part.title() for part in rest)


class Declaration(TypedDict, total=False):
    """What a declaration names besides its method and path (see :meth:`Api.route`)."""

    roles: Required[Access]
    summary: Required[str]
    response: Answer
    responses: Mapping[int, Answer] | None
    errors: Mapping[int, str] | None
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    description: str
    path_params: Mapping[str, Schema] | None


class Api:
    """The declared routes of one module."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.routes: list[Route] = []

    def get(self, pattern: str, **declaration: Unpack[Declaration]) -> Callable[[Handler], Handler]:
        """Declare a GET route over the decorated handler (no automatic HEAD)."""
        return self.route("GET", pattern, **declaration)

    def post(
        self, pattern: str, **declaration: Unpack[Declaration]
    ) -> Callable[[Handler], Handler]:
        """Declare a POST route."""
        return self.route("POST", pattern, **declaration)

    def put(self, pattern: str, **declaration: Unpack[Declaration]) -> Callable[[Handler], Handler]:
        """Declare a PUT route."""
        return self.route("PUT", pattern, **declaration)

    def patch(
        self, pattern: str, **declaration: Unpack[Declaration]
    ) -> Callable[[Handler], Handler]:
        """Declare a PATCH route."""
        return self.route("PATCH", pattern, **declaration)

    def delete(
        self, pattern: str, **declaration: Unpack[Declaration]
    ) -> Callable[[Handler], Handler]:
        """Declare a DELETE route."""
        return self.route("DELETE", pattern, **declaration)

    def route(
        self,
        method: Method,
        pattern: str,
        *,
        roles: Access,
        summary: str,
        response: Answer = None,
        responses: Mapping[int, Answer] | None = None,
        errors: Mapping[int, str] | None = None,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        description: str = "",
        path_params: Mapping[str, Schema] | None = None,
    ) -> Callable[[Handler], Handler]:
        """Declare a route: ``response`` is the 200 answer, ``responses`` any others."""

        def declare(handler: Handler) -> Handler:
            answers: dict[int, Answer] = {200: response} if responses is None else {}
            answers.update(responses or {})
            self.routes.append(
                Route(
                    method=method,
                    pattern=pattern,
                    handler=handler,
                    access=roles,
                    summary=summary,
                    tag=self.tag,
                    responses=answers,
                    errors=dict(errors or {}),
                    body=body,
                    query=query,
                    description=description,
                    path_params=dict(path_params or {}),
                )
            )
            return handler

        return declare


ROUTES_KEY: Final = web.AppKey("declared_routes", dict[tuple[str, str], Route])


def install(app: web.Application, *apis: Api) -> None:
    """Add every declared route of ``apis`` to the app's router and its role table."""
    if ROUTES_KEY not in app:
        app[ROUTES_KEY] = {}
    table = app[ROUTES_KEY]
    for api in apis:
        for route in api.routes:
            if route.key in table:
                raise RuntimeError(f"{route.method} {route.path} is declared twice")
            app.router.add_route(route.method, route.pattern, route.handler)
            table[route.key] = route


def declared(app: web.Application) -> Mapping[tuple[str, str], Route]:
    """The app's declarations by (method, template)."""
    return app.get(ROUTES_KEY, {})


def served(app: web.Application) -> set[tuple[str, str]]:
    """Every (method, route template) the app's router serves."""
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method != "*"
    }


def undeclared(app: web.Application) -> list[tuple[str, str]]:
    """The routes the router serves that no declaration made, sorted."""
    table = declared(app)
    return sorted(key for key in served(app) if key not in table)


def check_declared(app: web.Application) -> None:
    """Refuse an app with a route that has no declaration.

    Raises:
        RuntimeError: naming every undeclared route.
    """
    missing = undeclared(app)
    if missing:
        named = ", ".join(f"{method} {path}" for method, path in missing)
        raise RuntimeError(f"routes without a declaration (use ops.http.routes.Api): {named}")


def read_query(request: web.Request, model: type[M]) -> M:
    """Validate a request's query string; 400 naming the field otherwise.

    A list field takes every value of its parameter; any other field the first.
    """
    data: dict[str, Any] = {}
    for name in request.query:
        data[name] = request.query.getall(name) if _is_list(model, name) else request.query[name]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None


def reply(
    model: BaseModel, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON response of a response model."""
    return web.Response(
        text=model.model_dump_json(by_alias=True),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def _is_list(model: type[BaseModel], name: str) -> bool:
    for key, info in model.model_fields.items():
        if name in (key, info.alias):
            return getattr(info.annotation, "__origin__", None) is list
    return False
