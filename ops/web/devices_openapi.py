"""The OpenAPI description of the device, health history, alarm and command routes.

Merged by :mod:`ops.web.openapi`; request bodies come from the pydantic models the handlers
validate with.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ops.web import devices
from ops.web.openapi_parts import Schema, body, model_schema
from ops.web.openapi_parts import error as _error
from ops.web.openapi_parts import json_response as _json
from ops.web.openapi_parts import ref as _ref
from ops.web.openapi_parts import response as _response

SCHEMAS: dict[str, Schema] = {}


def _body(name: str) -> Schema:
    return body(_ref(name))


def _model(model: type[BaseModel]) -> Schema:
    return model_schema(model, SCHEMAS)


_TIME = {"type": "string", "format": "date-time"}
_MAYBE_TIME = {"type": ["string", "null"], "format": "date-time"}
_MAYBE_TEXT = {"type": ["string", "null"]}
_STATE = {"type": "string", "enum": list(devices.STATES)}
_BODY_ERRORS = {
    "400": _response("BadRequest"),
    "413": _response("TooLarge"),
    "415": _response("UnsupportedMediaType"),
}
_NOT_FOUND = {"404": _response("NotFound")}


def _path_id(description: str) -> dict[str, Any]:
    return {
        "name": "id",
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


def _query(name: str, schema: Schema, description: str = "") -> dict[str, Any]:
    parameter: dict[str, Any] = {"name": name, "in": "query", "schema": schema}
    if description:
        parameter["description"] = description
    return parameter


SCHEMAS.update(
    {
        "DeviceState": _STATE,
        "Device": {
            "type": "object",
            "required": [
                "id",
                "kind",
                "name",
                "site",
                "lat",
                "lon",
                "tags",
                "adapter",
                "attributes",
                "configured",
                "state",
                "reason",
                "pending",
                "figures",
                "last_seen",
                "commands",
                "created_at",
                "updated_at",
            ],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "string"},
                "kind": {"type": "string", "examples": ["camera", "radio_gateway", "wall_screen"]},
                "name": _MAYBE_TEXT,
                "site": _MAYBE_TEXT,
                "lat": {"type": ["number", "null"]},
                "lon": {"type": ["number", "null"]},
                "tags": {"type": "array", "items": {"type": "string"}},
                "adapter": _MAYBE_TEXT,
                "attributes": {
                    "type": "object",
                    "description": "Free-form; cameras carry snapshot_url and stream_url.",
                },
                "configured": {"type": "boolean", "description": "Registered by a person."},
                "state": _ref("DeviceState"),
                "reason": _MAYBE_TEXT,
                "pending": {
                    "anyOf": [_ref("DeviceState"), {"type": "null"}],
                    "description": "A state waiting out the hysteresis.",
                },
                "figures": {"type": "object", "description": "The latest figures."},
                "last_seen": _MAYBE_TIME,
                "commands": {"type": "array", "items": {"type": "string"}},
                "created_at": _TIME,
                "updated_at": _TIME,
            },
        },
        "DeviceList": {
            "type": "object",
            "required": ["devices"],
            "additionalProperties": False,
            "properties": {"devices": {"type": "array", "items": _ref("Device")}},
        },
        "DeviceDetail": {
            "type": "object",
            "description": "A Device plus what its page shows.",
            "required": ["figure_specs", "thresholds", "alarms", "events", "rejected_input"],
            "additionalProperties": False,
            "properties": {
                "figure_specs": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "unit"],
                        "properties": {"name": {"type": "string"}, "unit": {"type": "string"}},
                    },
                },
                "thresholds": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["figure", "above", "below", "severity"],
                        "properties": {
                            "figure": {"type": "string"},
                            "above": {"type": ["number", "null"]},
                            "below": {"type": ["number", "null"]},
                            "severity": {"type": "string"},
                        },
                    },
                },
                "alarms": {"type": "array", "items": _ref("Alarm")},
                "events": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "at", "kind", "detail"],
                        "properties": {
                            "id": {"type": "integer"},
                            "at": _TIME,
                            "kind": {
                                "type": "string",
                                "examples": ["state", "alarm.raised", "command", "command.reply"],
                            },
                            "detail": {"type": "object"},
                        },
                    },
                },
                "rejected_input": {
                    "type": "object",
                    "description": "Messages of this device dropped as bad input, by reason.",
                    "additionalProperties": {"type": "integer"},
                },
            },
        },
        "HealthHistory": {
            "type": "object",
            "description": (
                "Raw samples when the range holds at most `buckets` of them; otherwise at most "
                "`buckets` equal time buckets (only those holding samples), computed in the "
                "database."
            ),
            "required": ["device_id", "from", "to", "resolution", "samples", "buckets"],
            "additionalProperties": False,
            "properties": {
                "device_id": {"type": "string"},
                "from": _TIME,
                "to": _TIME,
                "resolution": {
                    "type": "string",
                    "pattern": "^(raw|[1-9][0-9]*s)$",
                    "description": "`raw` (samples) or each bucket's width in seconds (buckets).",
                    "examples": ["raw", "1210s"],
                },
                "samples": {
                    "type": "array",
                    "description": "Oldest first; empty when downsampled.",
                    "items": {
                        "type": "object",
                        "required": ["at", "state", "figures"],
                        "additionalProperties": False,
                        "properties": {
                            "at": _TIME,
                            "state": {"type": "string"},
                            "figures": {"type": "object"},
                        },
                    },
                },
                "buckets": {
                    "type": "array",
                    "description": "Oldest first; empty when raw.",
                    "items": _ref("HealthBucket"),
                },
            },
        },
        "HealthBucket": {
            "type": "object",
            "required": ["from", "to", "samples", "state", "figures"],
            "additionalProperties": False,
            "properties": {
                "from": _TIME,
                "to": {**_TIME, "description": "Exclusive; never past the range's end."},
                "samples": {"type": "integer", "minimum": 1},
                "state": {
                    "type": "string",
                    "description": "The worst state in the bucket: offline, degraded, unknown, "
                    "online.",
                },
                "figures": {
                    "type": "object",
                    "description": "Each numeric figure over the bucket's samples carrying it.",
                    "additionalProperties": {
                        "type": "object",
                        "required": ["avg", "min", "max"],
                        "additionalProperties": False,
                        "properties": {
                            "avg": {"type": "number"},
                            "min": {"type": "number"},
                            "max": {"type": "number"},
                        },
                    },
                },
            },
        },
        "Alarm": {
            "type": "object",
            "required": [
                "id",
                "device_id",
                "code",
                "severity",
                "message",
                "status",
                "raised_at",
                "last_raised_at",
                "times",
                "acknowledged_at",
                "acknowledged_by",
                "escalated_at",
                "cleared_at",
                "cleared_by",
            ],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "integer"},
                "device_id": {"type": "string"},
                "code": {"type": "string", "examples": ["offline", "threshold:signal_bars"]},
                "severity": {"type": "string", "enum": ["info", "warning", "critical"]},
                "message": {"type": "string"},
                "status": {"type": "string", "enum": ["open", "acknowledged", "cleared"]},
                "raised_at": _TIME,
                "last_raised_at": _TIME,
                "times": {"type": "integer", "minimum": 1},
                "acknowledged_at": _MAYBE_TIME,
                "acknowledged_by": _MAYBE_TEXT,
                "escalated_at": {
                    **_MAYBE_TIME,
                    "description": "When it went to the supervisor unacknowledged.",
                },
                "cleared_at": _MAYBE_TIME,
                "cleared_by": _MAYBE_TEXT,
            },
        },
        "AlarmPage": {
            "type": "object",
            "required": ["alarms", "next_before_id"],
            "additionalProperties": False,
            "properties": {
                "alarms": {"type": "array", "items": _ref("Alarm")},
                "next_before_id": {"type": ["integer", "null"]},
            },
        },
        "CommandReply": {
            "type": "object",
            "required": ["request_id", "device_id", "ok", "result", "error"],
            "additionalProperties": False,
            "properties": {
                "request_id": {"type": "string"},
                "device_id": {"type": "string"},
                "ok": {"type": "boolean"},
                "result": {"type": "object"},
                "error": _MAYBE_TEXT,
            },
        },
        "DeviceCreate": _model(devices.DeviceCreate),
        "DeviceUpdate": _model(devices.DeviceUpdate),
        "CommandRequest": _model(devices.CommandRequest),
    }
)


OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/devices"): {
        "operationId": "devicesPage",
        "tags": ["pages"],
        "summary": "The technician page: devices, health, charts, alarms, commands.",
        "responses": {
            "200": {
                "description": "HTML.",
                "content": {"text/html": {"schema": {"type": "string"}}},
            }
        },
    },
    ("GET", "/api/v1/devices"): {
        "operationId": "listDevices",
        "tags": ["devices"],
        "summary": "Every device with its live health.",
        "parameters": [
            _query("kind", {"type": "string"}),
            _query("site", {"type": "string"}),
            _query("state", _STATE),
        ],
        "responses": {"200": _json("The devices.", _ref("DeviceList")), "400": _BODY_ERRORS["400"]},
    },
    ("POST", "/api/v1/devices"): {
        "operationId": "registerDevice",
        "tags": ["devices"],
        "summary": "Register a device by hand (adopts one first seen through its reports).",
        "requestBody": _body("DeviceCreate"),
        "responses": {
            "201": _json("The device.", _ref("Device")),
            **_BODY_ERRORS,
            "409": _error("Registered already (code device_exists)."),
        },
    },
    ("GET", "/api/v1/devices/{id}"): {
        "operationId": "getDevice",
        "tags": ["devices"],
        "summary": "A device with its figures, rules, active alarms and recent events.",
        "parameters": [_path_id("The device id.")],
        "responses": {"200": _json("The device.", _ref("DeviceDetail")), **_NOT_FOUND},
    },
    ("PATCH", "/api/v1/devices/{id}"): {
        "operationId": "updateDevice",
        "tags": ["devices"],
        "summary": "Change a device's registration.",
        "parameters": [_path_id("The device id.")],
        "requestBody": _body("DeviceUpdate"),
        "responses": {"200": _json("The device.", _ref("Device")), **_BODY_ERRORS, **_NOT_FOUND},
    },
    ("GET", "/api/v1/devices/{id}/health"): {
        "operationId": "deviceHealth",
        "tags": ["devices"],
        "summary": "The device's health history in a time range (default the last hour).",
        "parameters": [
            _path_id("The device id."),
            _query("from", _TIME, "Start (inclusive), with a UTC offset."),
            _query("to", _TIME, "End (exclusive), with a UTC offset; at most 31 days after from."),
            _query(
                "buckets",
                {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": devices.MAX_BUCKETS,
                    "default": devices.DEFAULT_BUCKETS,
                },
                "The most points answered: a range with more samples is downsampled.",
            ),
        ],
        "responses": {
            "200": _json("Samples or buckets, oldest first.", _ref("HealthHistory")),
            "400": _BODY_ERRORS["400"],
            **_NOT_FOUND,
        },
    },
    ("POST", "/api/v1/devices/{id}/commands"): {
        "operationId": "sendDeviceCommand",
        "tags": ["devices"],
        "summary": "Send a command the device's kind accepts and wait for its reply.",
        "parameters": [_path_id("The device id.")],
        "requestBody": _body("CommandRequest"),
        "responses": {
            "200": _json("The device answered (ok says whether it did it).", _ref("CommandReply")),
            **_BODY_ERRORS,
            **_NOT_FOUND,
            "409": _error("The device does not accept it (code command_not_accepted)."),
            "504": _error("No reply in time (code device_timeout)."),
        },
    },
    ("GET", "/api/v1/alarms"): {
        "operationId": "listAlarms",
        "tags": ["alarms"],
        "summary": "Alarms newest first, paged by id.",
        "parameters": [
            _query(
                "status",
                {"type": "string", "enum": list(devices.ALARM_STATUSES)},
                "active = not cleared.",
            ),
            _query("device_id", {"type": "string"}),
            _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}),
            _query("before_id", {"type": "integer", "minimum": 1}),
        ],
        "responses": {"200": _json("One page.", _ref("AlarmPage")), "400": _BODY_ERRORS["400"]},
    },
    ("POST", "/api/v1/alarms/{id}/ack"): {
        "operationId": "acknowledgeAlarm",
        "tags": ["alarms"],
        "summary": "Acknowledge an alarm (the first acknowledgement and its name stand).",
        "parameters": [_path_id("The alarm id.")],
        "responses": {
            "200": _json("The alarm.", _ref("Alarm")),
            **_NOT_FOUND,
            "409": _error("The alarm is cleared already (code alarm_cleared)."),
        },
    },
    ("POST", "/api/v1/alarms/{id}/clear"): {
        "operationId": "clearAlarm",
        "tags": ["alarms"],
        "summary": "Clear an alarm by hand.",
        "parameters": [_path_id("The alarm id.")],
        "responses": {
            "200": _json("The alarm.", _ref("Alarm")),
            **_NOT_FOUND,
            "409": _error("Cleared already (code already_cleared)."),
        },
    },
}


def _detail_extends_device() -> None:
    device, detail = SCHEMAS["Device"], SCHEMAS["DeviceDetail"]
    detail["required"] = [*device["required"], *detail["required"]]
    detail["properties"] = {**device["properties"], **detail["properties"]}


_detail_extends_device()
