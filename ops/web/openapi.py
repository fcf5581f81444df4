"""The OpenAPI 3.1 description of every route, served at ``/api/v1/openapi.json``.

Who may call an operation comes from :data:`ops.web.access.ROUTE_ROLES` (as ``security`` and the
``x-posko-roles`` extension), and request bodies from the same pydantic models the handlers
validate with, so the document cannot drift from the code on either. The tests check the rest:
every route is described and every described operation exists.
"""

from __future__ import annotations

import copy
import functools
from importlib import metadata
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from ops.core.events import AdapterState
from ops.users import Role
from ops.web import cases_openapi, devices_openapi, dispatch_openapi
from ops.web.access import PUBLIC, ROUTE_ROLES
from ops.web.auditing import DEFAULT_PAGE, MAX_PAGE
from ops.web.auth import LoginRequest
from ops.web.sessions import COOKIE_NAME
from videowall import openapi as wall_openapi

routes = web.RouteTableDef()

JSON = "application/json"
Schema = dict[str, Any]


@routes.get("/api/v1/openapi.json", allow_head=False)
async def openapi_json(request: web.Request) -> web.Response:
    """This document."""
    del request
    return web.json_response(openapi_document())


@functools.cache
def _document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for (method, path), operation in _OPERATIONS.items():
        paths.setdefault(path, {})[method.lower()] = _finish(method, path, operation)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Posko hub API",
            "version": _version(),
            "description": (
                "The HTTP API of one command room's hub. Every error answers with the Error "
                "body. Sign in with POST /api/v1/auth/login; the session cookie it sets "
                "authorises the other calls."
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
            "schemas": _SCHEMAS,
            "responses": _RESPONSES,
        },
    }


def openapi_document() -> dict[str, Any]:
    """A copy of the document (callers may change theirs)."""
    return copy.deepcopy(_document())


# -- schemas ------------------------------------------------------------------------------------


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _model(model: type[BaseModel]) -> Schema:
    return model.model_json_schema(ref_template="#/components/schemas/{model}")


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


_TIME = {"type": "string", "format": "date-time"}
_ANY_JSON: Schema = {}

_SCHEMAS: dict[str, Schema] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "additionalProperties": False,
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "field"],
                "additionalProperties": False,
                "properties": {
                    "code": {"type": "string", "description": "Stable, machine-readable."},
                    "message": {"type": "string", "description": "For people."},
                    "field": {
                        "type": ["string", "null"],
                        "description": "The offending request field, when there is one.",
                    },
                },
            }
        },
    },
    "Role": {"type": "string", "enum": [role.value for role in Role]},
    "User": {
        "type": "object",
        "required": ["id", "username", "role", "display_name"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "integer"},
            "username": {"type": "string"},
            "role": _ref("Role"),
            "display_name": {"type": ["string", "null"]},
        },
    },
    "LoginRequest": _model(LoginRequest),
    "Session": {
        "type": "object",
        "required": ["user", "expires_at"],
        "additionalProperties": False,
        "properties": {"user": _ref("User"), "expires_at": _TIME},
    },
    "Health": {
        "type": "object",
        "required": ["alive"],
        "properties": {"alive": {"const": True}},
    },
    "Readiness": {
        "type": "object",
        "required": ["ready", "checks"],
        "additionalProperties": False,
        "properties": {
            "ready": {"type": "boolean"},
            "checks": {
                "type": "object",
                "description": "Each dependency (database, mqtt) and whether it is reachable.",
                "additionalProperties": {"type": "boolean"},
            },
        },
    },
    "AdapterStatus": {
        "type": "object",
        "required": ["name", "state", "detail", "restarts", "retry_in"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string"},
            "state": {"type": "string", "enum": [state.value for state in AdapterState]},
            "detail": {"type": "string"},
            "restarts": {"type": "integer", "minimum": 0},
            "retry_in": {"type": ["number", "null"], "description": "Seconds, in backoff."},
        },
    },
    "HubStatus": {
        "type": "object",
        "required": [
            "hub_id",
            "uptime_seconds",
            "ready",
            "checks",
            "adapters",
            "services",
            "mqtt",
        ],
        "additionalProperties": False,
        "properties": {
            "hub_id": {"type": "string"},
            "uptime_seconds": {"type": "number", "minimum": 0},
            "ready": {"type": "boolean"},
            "checks": {"type": "object", "additionalProperties": {"type": "boolean"}},
            "adapters": {"type": "array", "items": _ref("AdapterStatus")},
            "services": {
                "type": "object",
                "required": ["database", "mqtt"],
                "additionalProperties": False,
                "properties": {
                    "database": {"enum": ["embedded", "external"]},
                    "mqtt": {"enum": ["embedded", "external"]},
                },
            },
            "mqtt": {
                "type": "object",
                "required": ["connected", "messages_received", "messages_sent"],
                "additionalProperties": False,
                "properties": {
                    "connected": {"type": "boolean"},
                    "messages_received": {"type": "integer", "minimum": 0},
                    "messages_sent": {"type": "integer", "minimum": 0},
                },
            },
        },
    },
    "AuditEntry": {
        "type": "object",
        "required": ["id", "at", "actor", "action", "target", "before", "after", "detail"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "integer"},
            "at": _TIME,
            "actor": {"type": "string", "description": "A username, 'anonymous', or 'cli'."},
            "action": {"type": "string", "examples": ["auth.login", "user.add"]},
            "target": {"type": ["string", "null"], "examples": ["user:budi"]},
            "before": _ANY_JSON,
            "after": _ANY_JSON,
            "detail": _ANY_JSON,
        },
    },
    "AuditPage": {
        "type": "object",
        "required": ["entries", "next_before_id"],
        "additionalProperties": False,
        "properties": {
            "entries": {"type": "array", "items": _ref("AuditEntry")},
            "next_before_id": {
                "type": ["integer", "null"],
                "description": "Pass as before_id for the next (older) page; null on the last.",
            },
        },
    },
}

# -- responses ----------------------------------------------------------------------------------


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": _ref("Error")}}}


_RESPONSES: dict[str, Any] = {
    "BadRequest": _error("Invalid JSON or a wrong, missing or unknown field (named in field)."),
    "Unauthenticated": _error("No valid session: sign in first (code unauthenticated)."),
    "Forbidden": _error("The session's role may not do this (code forbidden)."),
    "NotFound": _error("No such resource (code not_found)."),
    "TooLarge": _error("The body exceeds web.max_body_bytes (code body_too_large)."),
    "UnsupportedMediaType": _error("The body is not application/json."),
    "InternalError": _error("Unexpected server error (code internal_error); no details leak."),
}


def _response_ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{name}"}


def _json(description: str, schema: Schema, **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}, **extra}


def _body(schema_name: str) -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": _ref(schema_name)}}}


_BODY_ERRORS = {
    "400": _response_ref("BadRequest"),
    "413": _response_ref("TooLarge"),
    "415": _response_ref("UnsupportedMediaType"),
}

# -- operations ---------------------------------------------------------------------------------

_OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/healthz"): {
        "operationId": "healthz",
        "tags": ["health"],
        "summary": "Liveness: 200 while the process serves requests.",
        "responses": {"200": _json("Alive.", _ref("Health"))},
    },
    ("GET", "/readyz"): {
        "operationId": "readyz",
        "tags": ["health"],
        "summary": "Readiness: the database and the broker are reachable now.",
        "responses": {
            "200": _json("Ready.", _ref("Readiness")),
            "503": _json("Not ready; checks says what is missing.", _ref("Readiness")),
        },
    },
    ("GET", "/metrics"): {
        "operationId": "metrics",
        "tags": ["health"],
        "summary": "Prometheus metrics (public: counts and states only; scrape from loopback).",
        "responses": {
            "200": {
                "description": "Prometheus text exposition format 0.0.4.",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    },
    ("GET", "/"): {
        "operationId": "console",
        "tags": ["pages"],
        "summary": "The operator console page.",
        "responses": {
            "200": {
                "description": "HTML.",
                "content": {"text/html": {"schema": {"type": "string"}}},
            }
        },
    },
    ("GET", "/static/{path}"): {
        "operationId": "asset",
        "tags": ["pages"],
        "summary": "A console asset (JavaScript module, stylesheet, image).",
        "parameters": [
            {
                "name": "path",
                "in": "path",
                "required": True,
                "schema": {"type": "string"},
                "example": "js/main.js",
            }
        ],
        "responses": {
            "200": {"description": "The file.", "content": {"*/*": {"schema": {}}}},
            "404": _response_ref("NotFound"),
        },
    },
    ("GET", "/api/v1/openapi.json"): {
        "operationId": "openapi",
        "tags": ["meta"],
        "summary": "This OpenAPI document.",
        "responses": {"200": _json("OpenAPI 3.1.", {"type": "object"})},
    },
    ("POST", "/api/v1/auth/login"): {
        "operationId": "login",
        "tags": ["auth"],
        "summary": "Sign in; sets the session cookie.",
        "description": (
            "A wrong username and a wrong password give the same 401. Attempts are limited per "
            "client address and username (web.login_attempts_per_minute)."
        ),
        "requestBody": _body("LoginRequest"),
        "responses": {
            "200": _json(
                "Signed in.",
                _ref("Session"),
                headers={
                    "Set-Cookie": {
                        "description": f"{COOKIE_NAME}=…; HttpOnly; SameSite=Strict; Path=/",
                        "schema": {"type": "string"},
                    }
                },
            ),
            **_BODY_ERRORS,
            "401": _error("Wrong username or password (code invalid_credentials)."),
            "429": {
                **_error("Too many attempts (code too_many_requests)."),
                "headers": {
                    "Retry-After": {
                        "description": "Seconds to wait.",
                        "schema": {"type": "integer"},
                    }
                },
            },
        },
    },
    ("POST", "/api/v1/auth/logout"): {
        "operationId": "logout",
        "tags": ["auth"],
        "summary": "Sign out: ends the session, drops the cookie, closes its live sockets.",
        "responses": {"204": {"description": "Signed out."}},
    },
    ("GET", "/api/v1/auth/me"): {
        "operationId": "me",
        "tags": ["auth"],
        "summary": "The signed-in user.",
        "responses": {"200": _json("The session's user.", _ref("Session"))},
    },
    ("GET", "/api/v1/hub/status"): {
        "operationId": "hubStatus",
        "tags": ["hub"],
        "summary": "Adapters, readiness, uptime and services of the hub.",
        "responses": {"200": _json("Current status.", _ref("HubStatus"))},
    },
    ("GET", "/api/v1/live"): {
        "operationId": "live",
        "tags": ["live"],
        "summary": "The live feed (WebSocket).",
        "description": (
            "Upgrade to a WebSocket. The server sends JSON objects with a type: hello (first; "
            "with the user), event (topic, key, source, time, correlation_id, payload; the "
            "current state of state topics comes first), pong, subscribed and error. A client "
            'sends {"type": "ping"} or {"type": "subscribe", "topics": [...] | null}. Close '
            "codes: 1001 hub shutting down, 1008 flooding, session expired or signed out, 1009 "
            "frame too large, 1013 too slow (reconnect)."
        ),
        "responses": {
            "101": {"description": "Switched to the WebSocket protocol."},
            "400": _error("Not a WebSocket handshake (code websocket_required)."),
        },
    },
    ("GET", "/api/v1/audit"): {
        "operationId": "listAudit",
        "tags": ["audit"],
        "summary": "Audit entries, newest first, paged by id.",
        "parameters": [
            {
                "name": "limit",
                "in": "query",
                "schema": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_PAGE,
                    "default": DEFAULT_PAGE,
                },
            },
            {
                "name": "before_id",
                "in": "query",
                "description": "Only entries older than this id (the previous next_before_id).",
                "schema": {"type": "integer", "minimum": 1},
            },
            {"name": "actor", "in": "query", "schema": {"type": "string"}},
            {"name": "target", "in": "query", "schema": {"type": "string"}},
        ],
        "responses": {
            "200": _json("One page.", _ref("AuditPage")),
            "400": _response_ref("BadRequest"),
        },
    },
}


_SCHEMAS.update(wall_openapi.SCHEMAS)
_OPERATIONS.update(wall_openapi.OPERATIONS)
_SCHEMAS.update(dispatch_openapi.SCHEMAS)
_OPERATIONS.update(dispatch_openapi.OPERATIONS)
_SCHEMAS.update(cases_openapi.SCHEMAS)
_OPERATIONS.update(cases_openapi.OPERATIONS)
_SCHEMAS.update(devices_openapi.SCHEMAS)
_OPERATIONS.update(devices_openapi.OPERATIONS)


def _finish(method: str, path: str, operation: dict[str, Any]) -> dict[str, Any]:
    """Add what the access table says: security, roles, and the 401/403/500 answers."""
    access = ROUTE_ROLES[(method, path)]
    result = dict(operation)
    responses = dict(operation["responses"])
    if access == PUBLIC:
        result["security"] = []
        result["x-posko-roles"] = "public"
    else:
        roles = sorted(role.value for role in access)
        result["x-posko-roles"] = roles
        result["description"] = (
            f"{operation.get('description', '')}\n\nRoles: {', '.join(roles)}.".strip()
        )
        responses["401"] = _response_ref("Unauthenticated")
        responses["403"] = _response_ref("Forbidden")
    responses["500"] = _response_ref("InternalError")
    result["responses"] = dict(sorted(responses.items()))
    return result


def _version() -> str:
    try:
        return metadata.version("posko")
    except metadata.PackageNotFoundError:
        return "0.0.0"
