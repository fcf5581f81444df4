"""The OpenAPI 3.1 document, built from the route declarations alone.

Each operation's roles, parameters, request body and answers come from its :class:`Route`;
schemas are the pydantic models' own (``model_json_schema``), their ``$defs`` hoisted into
``components/schemas``. Nothing here is written per route, so the document cannot drift from
the code.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel

from ops.http.models import ErrorOut
from ops.http.roles import PUBLIC
from ops.http.routes import Content, Route, Schema
from ops.http.sessions import COOKIE_NAME

JSON = "application/json"
_REF = "#/components/schemas/{model}"
_SHARED_ERRORS: dict[int, str] = {
    400: "Invalid JSON, or a wrong, missing or unknown field (named in field).",
    401: "No valid session: sign in first (code unauthenticated).",
    403: "The session's role may not do this (code forbidden).",
    413: "The body exceeds web.max_body_bytes (code body_too_large).",
    415: "The body is not application/json (code unsupported_media_type).",
    500: "Unexpected server error (code internal_error); no details leak.",
}


def build_document(routes: Iterable[Route], *, title: str, version: str) -> dict[str, Any]:
    """The OpenAPI document of ``routes``."""
    schemas: dict[str, Schema] = {}
    paths: dict[str, dict[str, Any]] = {}
    operation_ids: dict[str, Route] = {}
    for route in sorted(routes, key=lambda r: (r.path, r.method)):
        same = operation_ids.setdefault(route.operation_id, route)
        if same is not route:
            raise RuntimeError(
                f"{route.method} {route.path} and {same.method} {same.path} have one "
                f"operationId {route.operation_id}; rename a handler"
            )
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": (
                "The HTTP API of one command room's hub. Every error answers with the "
                f"{ErrorOut.__name__} body. Sign in with POST /api/v1/auth/login; the session "
                "cookie it sets authorises the other calls."
            ),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "/"}],
        "security": [{"sessionCookie": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "sessionCookie": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": COOKIE_NAME,
                    "description": "Set by POST /api/v1/auth/login; HttpOnly, SameSite=Strict.",
                }
            },
            "schemas": dict(sorted(schemas.items())),
        },
    }


def _operation(route: Route, schemas: dict[str, Schema]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "tags": [route.tag],
        "summary": route.summary,
    }
    parameters = _path_parameters(route) + _query_parameters(route, schemas)
    if parameters:
        operation["parameters"] = parameters
    errors = dict(route.errors)
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {JSON: {"schema": _schema(route.body, schemas, "validation")}},
        }
        for status in (400, 413, 415):
            errors.setdefault(status, _SHARED_ERRORS[status])
    if route.query is not None:
        errors.setdefault(400, _SHARED_ERRORS[400])
    description = route.description
    if route.access == PUBLIC:
        operation["security"] = []
        operation["x-posko-roles"] = "public"
    else:
        roles = sorted(role.value for role in route.access)
        operation["x-posko-roles"] = roles
        description = f"{description}\n\nRoles: {', '.join(roles)}.".strip()
        errors.setdefault(401, _SHARED_ERRORS[401])
        errors.setdefault(403, _SHARED_ERRORS[403])
    errors.setdefault(500, _SHARED_ERRORS[500])
    if description:
        operation["description"] = description
    responses: dict[str, Any] = {}
    for status, answer in route.responses.items():
        responses[str(status)] = _answer(answer, schemas)
    error_schema = _schema(ErrorOut, schemas, "serialization")
    for status, text in errors.items():
        if str(status) not in responses:
            responses[str(status)] = {
                "description": text,
                "content": {JSON: {"schema": error_schema}},
            }
    operation["responses"] = dict(sorted(responses.items()))
    return operation


def _answer(answer: type[BaseModel] | Content | None, schemas: dict[str, Schema]) -> Schema:
    if answer is None:
        return {"description": "No content."}
    if isinstance(answer, Content) and not answer.media_type:
        return {"description": answer.description}
    if isinstance(answer, Content):
        return {
            "description": answer.description or answer.media_type,
            "content": {answer.media_type: {"schema": answer.schema}},
        }
    doc = (answer.__doc__ or answer.__name__).strip().splitlines()[0]
    return {
        "description": doc,
        "content": {JSON: {"schema": _schema(answer, schemas, "serialization")}},
    }


def _path_parameters(route: Route) -> list[Schema]:
    names = [part[1:-1] for part in route.path.split("/") if part.startswith("{")]
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": dict(route.path_params.get(name, {"type": "string"})),
        }
        for name in names
    ]


def _query_parameters(route: Route, schemas: dict[str, Schema]) -> list[Schema]:
    if route.query is None:
        return []
    schema = _hoist(route.query.model_json_schema(ref_template=_REF), schemas)
    required = set(schema.get("required", ()))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        parameter: Schema = {"name": name, "in": "query", "schema": prop}
        if "description" in prop:
            parameter["description"] = prop["description"]
        if name in required:
            parameter["required"] = True
        parameters.append(parameter)
    return parameters


def _schema(
    model: type[BaseModel],
    schemas: dict[str, Schema],
    mode: Literal["validation", "serialization"],
) -> Schema:
    """A reference to ``model``'s component schema, adding it (and what it uses) on first use."""
    name = model.__name__
    schema = _hoist(model.model_json_schema(ref_template=_REF, mode=mode), schemas)
    _add(schemas, name, schema)
    return {"$ref": _REF.format(model=name)}


def _hoist(schema: Schema, schemas: dict[str, Schema]) -> Schema:
    for name, nested in schema.pop("$defs", {}).items():
        _add(schemas, name, nested)
    return schema


def _add(schemas: dict[str, Schema], name: str, schema: Schema) -> None:
    known = schemas.setdefault(name, schema)
    if known != schema:
        raise RuntimeError(f"two different schemas are named {name}; rename one model")
