"""One error body for every failure, and the JSON request-body reader that produces most of them.

Every error, including aiohttp's own 404/405/413 and unexpected exceptions, leaves as
``{"error": {"code": ..., "message": ..., "field": ...}}`` so a client needs one code path; a 500
never carries a traceback (the log does).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

_LOGGER = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Error codes for the statuses aiohttp raises by itself.
_STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}
_JSON_TYPES = ("application/json",)
TOO_LARGE_MESSAGE = "the body is larger than this server accepts (web.max_body_bytes)"


class ApiError(Exception):
    """An expected failure with its HTTP status, a stable machine code and a human message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    """The error document; ``field`` is present (possibly null) so clients can rely on the key."""
    return {"error": {"code": code, "message": message, "field": field}}


def error_response(error: ApiError) -> web.Response:
    """Render an :class:`ApiError` as a JSON response."""
    return web.json_response(
        error_body(error.code, error.message, error.field),
        status=error.status,
        headers=error.headers,
    )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn ApiError, aiohttp's HTTP exceptions and crashes into the one error body."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        if exc.status < HTTPStatus.BAD_REQUEST:
            raise
        return error_response(_from_http_exception(exc))
    except Exception:
        _LOGGER.exception("unhandled error in %s %s", request.method, route_of(request))
        return error_response(ApiError(500, "internal_error", "internal error"))


def route_of(request: web.Request) -> str:
    """The route pattern a request matched, for logs.

    Never the raw path: a path can carry a secret (a whistleblower's follow-up code).
    """
    resource = request.match_info.route.resource
    return "(no route)" if resource is None else resource.canonical


async def read_json(request: web.Request, model: type[M]) -> M:
    """Read and validate a JSON request body.

    Raises:
        ApiError: 415 for a non-JSON content type, 413 over the size limit, 400
            ``invalid_json`` for a body that is not JSON, 400 naming the field for a wrong,
            missing or unknown field.
    """
    if request.content_type not in _JSON_TYPES:
        raise ApiError(415, "unsupported_media_type", "the body must be application/json")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, "body_too_large", TOO_LARGE_MESSAGE) from None
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "the body is not valid JSON") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None


def validation_error(exc: ValidationError) -> ApiError:
    """A 400 for the first problem pydantic found, naming the field."""
    first = exc.errors(include_url=False, include_context=False, include_input=False)[0]
    field = ".".join(str(part) for part in first["loc"]) or None
    kind = first["type"]
    if kind == "missing":
        return ApiError(400, "missing_field", f"{field} is required", field)
    if kind == "extra_forbidden":
        return ApiError(400, "unknown_field", f"{field} is not a known field", field)
    if kind == "model_type" or field is None:
        return ApiError(400, "invalid_body", "the body must be a JSON object", field)
    return ApiError(400, "invalid_field", f"{field}: {first['msg']}", field)


def _from_http_exception(exc: web.HTTPException) -> ApiError:
    code = _STATUS_CODES.get(exc.status, "http_error")
    message = exc.reason.lower() if exc.reason else "error"
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        message = TOO_LARGE_MESSAGE
    headers = {}
    if isinstance(exc, web.HTTPMethodNotAllowed):
        headers["Allow"] = ", ".join(sorted(exc.allowed_methods))
        message = f"{exc.method} is not allowed here; use {headers['Allow']}"
    elif isinstance(exc, web.HTTPNotFound):
        message = "no such resource"
    return ApiError(exc.status, code, message, headers=headers)
