"""The wall's part of the OpenAPI document: its schemas and operations, merged by ops.web.openapi.

Request bodies come from the same pydantic models the handlers validate with.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ops.web.openapi_parts import JSON, Schema, model_schema
from ops.web.openapi_parts import body as _body
from ops.web.openapi_parts import json_response as _json
from ops.web.openapi_parts import ref as _ref
from ops.web.openapi_parts import response as _response
from videowall.tiles import MAP_LAYERS, MAX_COLUMNS, MAX_ROWS, NAME_PATTERN, TILE_KINDS, Layout
from videowall.web import PairRequest, PresetRequest, ScreenRequest


def _model(model: type[BaseModel]) -> Schema:
    return model_schema(model)


def _not_found(what: str) -> Schema:
    return {
        "description": f"No such {what} (code names it: wall_not_found, tile_not_found, …).",
        "content": {JSON: {"schema": _ref("Error")}},
    }


_NAME = {"type": "string", "pattern": NAME_PATTERN}
_WALL = {"name": "name", "in": "path", "required": True, "schema": _NAME, "example": "main"}
_PRESET = {"name": "preset", "in": "path", "required": True, "schema": _NAME}
_SCREEN = {"name": "screen", "in": "path", "required": True, "schema": _NAME}
_INDEX = {
    "name": "index",
    "in": "path",
    "required": True,
    "description": "The cell, row by row from 0.",
    "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ROWS * MAX_COLUMNS - 1},
}
_BODY_ERRORS = {
    "400": _response("BadRequest"),
    "413": _response("TooLarge"),
    "415": _response("UnsupportedMediaType"),
}
_TIME = {"type": "string", "format": "date-time"}

SCHEMAS: dict[str, Schema] = {
    "WallTile": {
        "oneOf": [
            {
                **_model(model),
                "title": f"{kind.capitalize()}Tile",
            }
            for kind, model in TILE_KINDS.items()
        ],
        "discriminator": {"propertyName": "kind"},
        "description": (
            "One cell of a wall. kind is empty, camera (device_id, snapshot_url or stream_url "
            "of this hub), map (lat, lon, zoom, layers from "
            f"{', '.join(MAP_LAYERS)}), case (case_id), queue, alerts, units, devices, kpis or "
            "follow (the cameras nearest the newest high-priority case)."
        ),
    },
    "WallLayout": _model(Layout),
    "Wall": {
        "type": "object",
        "required": ["name", "title", "rows", "columns", "tiles", "version", "updated_at"],
        "additionalProperties": False,
        "properties": {
            "name": _NAME,
            "title": {"type": "string"},
            "rows": {"type": "integer", "minimum": 1, "maximum": MAX_ROWS},
            "columns": {"type": "integer", "minimum": 1, "maximum": MAX_COLUMNS},
            "tiles": {"type": "array", "items": _ref("WallTile")},
            "version": {"type": "integer", "description": "Goes up with every change."},
            "updated_at": _TIME,
        },
    },
    "WallList": {
        "type": "object",
        "required": ["walls"],
        "properties": {"walls": {"type": "array", "items": _ref("Wall")}},
    },
    "WallPresetRequest": _model(PresetRequest),
    "WallPreset": {
        "type": "object",
        "required": ["wall", "name", "rows", "columns", "tiles", "created_by", "created_at"],
        "additionalProperties": False,
        "properties": {
            "wall": _NAME,
            "name": _NAME,
            "rows": {"type": "integer"},
            "columns": {"type": "integer"},
            "tiles": {"type": "array", "items": _ref("WallTile")},
            "created_by": {"type": "string"},
            "created_at": _TIME,
        },
    },
    "WallPresetList": {
        "type": "object",
        "required": ["presets"],
        "properties": {"presets": {"type": "array", "items": _ref("WallPreset")}},
    },
    "WallScreenRequest": _model(ScreenRequest),
    "WallScreen": {
        "type": "object",
        "required": ["wall", "screen", "device_id", "created_by", "created_at", "last_used_at"],
        "properties": {
            "wall": _NAME,
            "screen": _NAME,
            "device_id": {"type": "string", "examples": ["wall:main:left"]},
            "created_by": {"type": "string"},
            "created_at": _TIME,
            "last_used_at": {"anyOf": [_TIME, {"type": "null"}]},
            "token": {"type": "string", "description": "Only when the screen is paired."},
            "pair_path": {
                "type": "string",
                "description": "Open this on the screen once (only when paired).",
            },
        },
    },
    "WallScreenList": {
        "type": "object",
        "required": ["screens"],
        "properties": {"screens": {"type": "array", "items": _ref("WallScreen")}},
    },
    "WallPairRequest": _model(PairRequest),
    "ConsoleSettings": {
        "type": "object",
        "required": ["hub_id", "panels", "timezone", "zone_label", "map"],
        "properties": {
            "hub_id": {"type": "string"},
            "panels": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Console panel modules this hub ships (static/js/<name>.js).",
            },
            "timezone": {"type": "string", "examples": ["Asia/Jakarta"]},
            "zone_label": {"type": "string", "examples": ["WIB", "WITA", "WIT"]},
            "map": {
                "type": "object",
                "required": ["center", "zoom", "outline", "provinces", "tile_url"],
                "properties": {
                    "center": {"type": "array", "items": {"type": "number"}},
                    "zoom": {"type": "integer"},
                    "outline": {"type": "string"},
                    "provinces": {"type": "string"},
                    "tile_url": {"type": ["string", "null"]},
                    "tile_attribution": {"type": "string"},
                },
            },
        },
    },
}

_HTML = {"description": "HTML.", "content": {"text/html": {"schema": {"type": "string"}}}}

OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/wall/{name}"): {
        "operationId": "wallPage",
        "tags": ["pages"],
        "summary": "A wall's page; it signs in as a paired screen or uses a viewer's session.",
        "parameters": [_WALL],
        "responses": {"200": _HTML, "404": _not_found("wall")},
    },
    ("GET", "/api/v1/walls"): {
        "operationId": "listWalls",
        "tags": ["walls"],
        "summary": "Every wall with its layout.",
        "responses": {"200": _json("The walls.", _ref("WallList"))},
    },
    ("GET", "/api/v1/walls/{name}"): {
        "operationId": "getWall",
        "tags": ["walls"],
        "summary": "One wall's layout.",
        "parameters": [_WALL],
        "responses": {"200": _json("The wall.", _ref("Wall")), "404": _not_found("wall")},
    },
    ("PUT", "/api/v1/walls/{name}"): {
        "operationId": "putWall",
        "tags": ["walls"],
        "summary": "Create a wall or replace its layout; missing cells become empty tiles.",
        "parameters": [_WALL],
        "requestBody": _body(_ref("WallLayout")),
        "responses": {
            "200": _json("Replaced.", _ref("Wall")),
            "201": _json("Created.", _ref("Wall")),
            **_BODY_ERRORS,
        },
    },
    ("DELETE", "/api/v1/walls/{name}"): {
        "operationId": "deleteWall",
        "tags": ["walls"],
        "summary": "Remove a wall with its presets and paired screens.",
        "parameters": [_WALL],
        "responses": {"204": {"description": "Removed."}, "404": _not_found("wall")},
    },
    ("PUT", "/api/v1/walls/{name}/tiles/{index}"): {
        "operationId": "putWallTile",
        "tags": ["walls"],
        "summary": "Push a camera, case, map view or board to one tile; every screen updates.",
        "parameters": [_WALL, _INDEX],
        "requestBody": _body(_ref("WallTile")),
        "responses": {
            "200": _json("The wall after the push.", _ref("Wall")),
            "404": _not_found("wall, tile, or the case of a case tile (case_not_found)"),
            **_BODY_ERRORS,
        },
    },
    ("GET", "/api/v1/walls/{name}/presets"): {
        "operationId": "listWallPresets",
        "tags": ["walls"],
        "summary": "A wall's saved layouts.",
        "parameters": [_WALL],
        "responses": {
            "200": _json("The presets.", _ref("WallPresetList")),
            "404": _not_found("wall"),
        },
    },
    ("POST", "/api/v1/walls/{name}/presets"): {
        "operationId": "saveWallPreset",
        "tags": ["walls"],
        "summary": "Save the wall's current layout under a name (replacing one of that name).",
        "parameters": [_WALL],
        "requestBody": _body(_ref("WallPresetRequest")),
        "responses": {
            "200": _json("Replaced.", _ref("WallPreset")),
            "201": _json("Saved.", _ref("WallPreset")),
            "404": _not_found("wall"),
            **_BODY_ERRORS,
        },
    },
    ("DELETE", "/api/v1/walls/{name}/presets/{preset}"): {
        "operationId": "deleteWallPreset",
        "tags": ["walls"],
        "summary": "Remove a preset.",
        "parameters": [_WALL, _PRESET],
        "responses": {"204": {"description": "Removed."}, "404": _not_found("wall or preset")},
    },
    ("POST", "/api/v1/walls/{name}/presets/{preset}/recall"): {
        "operationId": "recallWallPreset",
        "tags": ["walls"],
        "summary": "Put a saved layout on the wall; every screen updates.",
        "parameters": [_WALL, _PRESET],
        "responses": {
            "200": _json("The wall after the recall.", _ref("Wall")),
            "404": _not_found("wall or preset"),
        },
    },
    ("GET", "/api/v1/walls/{name}/screens"): {
        "operationId": "listWallScreens",
        "tags": ["walls"],
        "summary": "The screens paired to a wall.",
        "parameters": [_WALL],
        "responses": {
            "200": _json("The screens.", _ref("WallScreenList")),
            "404": _not_found("wall"),
        },
    },
    ("POST", "/api/v1/walls/{name}/screens"): {
        "operationId": "addWallScreen",
        "tags": ["walls"],
        "summary": "Pair a screen: its token and pairing address are answered only now.",
        "parameters": [_WALL],
        "requestBody": _body(_ref("WallScreenRequest")),
        "responses": {
            "201": _json("Paired.", _ref("WallScreen")),
            "404": _not_found("wall"),
            "409": {
                "description": "A screen of that name exists (code screen_exists).",
                "content": {JSON: {"schema": _ref("Error")}},
            },
            **_BODY_ERRORS,
        },
    },
    ("DELETE", "/api/v1/walls/{name}/screens/{screen}"): {
        "operationId": "deleteWallScreen",
        "tags": ["walls"],
        "summary": "Unpair a screen: its token, account, sessions and live socket end now.",
        "parameters": [_WALL, _SCREEN],
        "responses": {"204": {"description": "Unpaired."}, "404": _not_found("wall or screen")},
    },
    ("POST", "/api/v1/walls/{name}/screens/{screen}/session"): {
        "operationId": "pairWallScreen",
        "tags": ["walls"],
        "summary": "A paired screen signs in with its token; sets the session cookie.",
        "parameters": [_WALL, _SCREEN],
        "requestBody": _body(_ref("WallPairRequest")),
        "responses": {
            "200": _json("Signed in as the screen.", _ref("Session")),
            "401": {
                "description": "Wrong token (code invalid_credentials).",
                "content": {JSON: {"schema": _ref("Error")}},
            },
            "404": _not_found("wall or screen"),
            **_BODY_ERRORS,
        },
    },
    ("GET", "/api/v1/walls/{name}/live"): {
        "operationId": "wallLive",
        "tags": ["live"],
        "summary": "A wall screen's live feed (WebSocket) with its heartbeat.",
        "description": (
            "The same messages as /api/v1/live. The screen also sends "
            '{"type": "heartbeat", "figures": {...}} (answered with type heartbeat); each is '
            "published as device.reported (kind wall_screen, device_id wall:{name}:{screen}), "
            "and the socket closing as online=false."
        ),
        "parameters": [
            _WALL,
            {"name": "screen", "in": "query", "schema": {**_NAME, "default": "main"}},
        ],
        "responses": {
            "101": {"description": "Switched to the WebSocket protocol."},
            "400": _response("BadRequest"),
            "404": _not_found("wall"),
        },
    },
    ("GET", "/api/v1/console/settings"): {
        "operationId": "consoleSettings",
        "tags": ["pages"],
        "summary": "The room's time zone and the map's centre, outline and optional layers.",
        "responses": {"200": _json("Settings.", _ref("ConsoleSettings"))},
    },
    ("GET", "/api/v1/map/provinces"): {
        "operationId": "mapProvinces",
        "tags": ["pages"],
        "summary": "Province outlines: the room's [map] provinces_file, else the built-in ones.",
        "responses": {
            "200": {
                "description": "GeoJSON.",
                "content": {"application/geo+json": {"schema": {"type": "object"}}},
            },
            "404": _not_found("province file"),
        },
    },
}
