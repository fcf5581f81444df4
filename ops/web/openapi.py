"""The OpenAPI 3.1 document of the app's declared routes, served at ``/api/v1/openapi.json``."""

from __future__ import annotations

from importlib import metadata
from typing import Any

from aiohttp import web

from ops.http.openapi import build_document
from ops.http.roles import PUBLIC
from ops.http.routes import Api, Content, declared

api = Api("meta")
DOCUMENT_KEY = web.AppKey("openapi_document", dict[str, Any])


@api.get(
    "/api/v1/openapi.json",
    roles=PUBLIC,
    summary="This OpenAPI document.",
    response=Content("application/json", {"type": "object"}, "OpenAPI 3.1."),
)
async def openapi_json(request: web.Request) -> web.Response:
    """This document."""
    return web.json_response(request.app[DOCUMENT_KEY])


def install_document(app: web.Application) -> None:
    """Build the document of every route declared so far.

    Built at start, so a document that cannot be built fails the start, not its first reader.
    """
    app[DOCUMENT_KEY] = build_document(
        declared(app).values(), title="Posko hub API", version=_version()
    )


def _version() -> str:
    try:
        return metadata.version("posko")
    except metadata.PackageNotFoundError:
        return "0.0.0"
