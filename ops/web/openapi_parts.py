"""Small builders shared by every part of the OpenAPI document (core, cases, devices, walls…)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

JSON = "application/json"
Schema = dict[str, Any]


def ref(name: str) -> Schema:
    """A reference to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def response(name: str) -> Schema:
    """A reference to a shared response (Unauthenticated, Forbidden, …)."""
    return {"$ref": f"#/components/responses/{name}"}


def json_response(description: str, schema: Schema) -> Schema:
    """A JSON response with its schema."""
    return {"description": description, "content": {JSON: {"schema": schema}}}


def error(description: str) -> Schema:
    """A response carrying the error body."""
    return json_response(description, ref("Error"))


def body(schema: Schema) -> Schema:
    """A required JSON request body."""
    return {"required": True, "content": {JSON: {"schema": schema}}}


def model_schema(model: type[BaseModel], defs: dict[str, Schema] | None = None) -> Schema:
    """The JSON schema of a request model; nested definitions go to ``defs`` when given."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    nested = schema.pop("$defs", {}) if defs is not None else {}
    if defs is not None:
        defs.update(nested)
    return schema
