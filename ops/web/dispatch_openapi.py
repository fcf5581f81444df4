"""The units and dispatch part of the OpenAPI document, merged by ops.web.openapi.

Request bodies come from the same pydantic models the handlers validate with.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ops.units.model import CHANNELS, KINDS, STATUSES
from ops.units.recommend import MAX_LIMIT
from ops.units.service import ChannelSpec, UnitSpec
from ops.web.dispatch import AcknowledgeRequest, CancelRequest, DispatchRequest
from ops.web.openapi_parts import Schema, body, model_schema
from ops.web.openapi_parts import error as _error
from ops.web.openapi_parts import json_response as _json
from ops.web.openapi_parts import ref as _ref
from ops.web.openapi_parts import response as _response
from ops.web.units import StatusChange


def _body(name: str) -> Schema:
    return body(_ref(name))


def _model(model: type[BaseModel]) -> Schema:
    return model_schema(model)


_TIME = {"type": "string", "format": "date-time"}
_NULL_TIME = {"type": ["string", "null"], "format": "date-time"}
_BODY_ERRORS = {
    "400": _response("BadRequest"),
    "413": _response("TooLarge"),
    "415": _response("UnsupportedMediaType"),
}
_UNIT_PATH = {
    "name": "unit_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "example": "TGN-01",
}
_ORDER_PATH = {
    "name": "order_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[0-9a-z]{8,32}$"},
}
_UNIT_404 = _error("No such unit (code unit_not_found).")
_ORDER_404 = _error("No such order (code order_not_found).")

SCHEMAS: dict[str, Schema] = {
    "UnitSpec": _model(UnitSpec),
    "ChannelSpec": _model(ChannelSpec),
    "StatusChange": _model(StatusChange),
    "DispatchRequest": _model(DispatchRequest),
    "AcknowledgeRequest": _model(AcknowledgeRequest),
    "CancelRequest": _model(CancelRequest),
    "Unit": {
        "type": "object",
        "required": ["id", "callsign", "name", "kind", "status", "on_duty", "lat", "lon", "stale"],
        "properties": {
            "id": {"type": "string"},
            "callsign": {"type": "string"},
            "name": {"type": "string"},
            "kind": {"enum": list(KINDS)},
            "skills": {"type": "array", "items": {"type": "string"}},
            "home_center": {"type": ["string", "null"]},
            "on_duty": {"type": "boolean"},
            "shift": {
                "type": ["string", "null"],
                "description": "The shift its duty follows; null: duty set by hand only.",
            },
            "status": {"enum": list(STATUSES)},
            "status_reason": {"type": ["string", "null"]},
            "channels": {
                "type": "array",
                "description": "Tried in this order.",
                "items": {
                    "type": "object",
                    "properties": {
                        "channel": {"enum": list(CHANNELS)},
                        "address": {"type": "string"},
                    },
                },
            },
            "lat": {"type": ["number", "null"]},
            "lon": {"type": ["number", "null"]},
            "position_at": _NULL_TIME,
            "position_source": {"type": ["string", "null"]},
            "position_age_s": {"type": ["number", "null"]},
            "stale": {
                "type": "boolean",
                "description": "No position, or one older than stale_after_s.",
            },
            "stale_after_s": {"type": "number", "description": "dispatch.stale_after."},
            "updated_at": _TIME,
        },
    },
    "UnitList": {
        "type": "object",
        "required": ["units"],
        "properties": {"units": {"type": "array", "items": _ref("Unit")}},
    },
    "Recommendation": {
        "type": "object",
        "required": ["case", "need", "units"],
        "properties": {
            "case": {"type": "object"},
            "need": {
                "type": "object",
                "properties": {
                    "kinds": {"type": "array", "items": {"type": "string"}},
                    "skills": {"type": "array", "items": {"type": "string"}},
                },
            },
            "stale_after_s": {"type": "number"},
            "units": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["rank", "unit", "distance_km", "score", "stale", "reasons"],
                    "properties": {
                        "rank": {"type": "integer", "minimum": 1},
                        "unit": _ref("Unit"),
                        "distance_km": {"type": ["number", "null"]},
                        "score": {
                            "type": "number",
                            "description": "Kilometre-equivalents; lower ranks first.",
                        },
                        "stale": {"type": "boolean"},
                        "reasons": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
        },
    },
    "PositionHistory": {
        "type": "object",
        "properties": {
            "unit": {"type": "string"},
            "positions": {"type": "array", "items": {"type": "object"}},
        },
    },
    "PositionStats": {
        "type": "object",
        "properties": {
            "accepted": {"type": "object", "additionalProperties": {"type": "integer"}},
            "rejected": {
                "type": "object",
                "description": "Per source, per reason (malformed, out_of_range, future, "
                "unknown_unit, overflow).",
            },
            "buffered": {"type": "integer"},
            "stored": {"type": "integer"},
            "events_rejected": {"type": "object"},
        },
    },
    "Order": {
        "type": "object",
        "required": ["id", "case", "message", "status", "assignments", "events"],
        "properties": {
            "id": {"type": "string", "description": "Carried by every copy sent."},
            "case": {"type": "object"},
            "message": {"type": "string"},
            "auto_escalate": {"type": "boolean"},
            "status": {"enum": ["open", "acknowledged", "failed", "cancelled"]},
            "created_by": {"type": "string"},
            "created_at": _TIME,
            "closed_at": _NULL_TIME,
            "assignments": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "unit": {"type": "string"},
                        "status": {"enum": ["pending", "acknowledged", "exhausted", "cancelled"]},
                        "escalated_from": {"type": ["string", "null"]},
                        "ack_channel": {"type": ["string", "null"]},
                        "ladder": {
                            "type": "array",
                            "description": "One copy per channel tried, in order.",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "channel": {"type": "string"},
                                    "state": {
                                        "enum": [
                                            "queued",
                                            "sent",
                                            "delivered",
                                            "acknowledged",
                                            "timed_out",
                                            "cancelled",
                                        ]
                                    },
                                    "attempts": {"type": "integer"},
                                    "deadline": _TIME,
                                },
                            },
                        },
                    },
                },
            },
            "events": {"type": "array", "items": {"type": "object"}},
        },
    },
    "OrderList": {
        "type": "object",
        "properties": {"orders": {"type": "array", "items": _ref("Order")}},
    },
    "CurrentShift": {
        "type": "object",
        "required": ["shift", "started_at", "ends_at", "shifts"],
        "properties": {
            "shift": {"type": "string", "description": "The shift on now."},
            "started_at": _TIME,
            "ends_at": {**_TIME, "description": "When the next shift starts."},
            "timezone": {"type": "string", "description": "hub.timezone, of the start times."},
            "shifts": {
                "type": "array",
                "description": "The schedule ([shifts] starts), by start time.",
                "items": {
                    "type": "object",
                    "required": ["name", "start"],
                    "properties": {
                        "name": {"type": "string"},
                        "start": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"},
                    },
                },
            },
        },
    },
    "AcknowledgeResult": {
        "type": "object",
        "properties": {
            "changed": {"type": "boolean", "description": "False for a repeated ack."},
            "order": _ref("Order"),
        },
    },
}

OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/api/v1/units"): {
        "operationId": "listUnits",
        "tags": ["units"],
        "summary": "Units with status, duty and position freshness.",
        "parameters": [
            {"name": "status", "in": "query", "schema": {"enum": list(STATUSES)}},
            {"name": "kind", "in": "query", "schema": {"enum": list(KINDS)}},
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1}},
        ],
        "responses": {
            "200": _json("Units by id.", _ref("UnitList")),
            "400": _response("BadRequest"),
        },
    },
    ("POST", "/api/v1/units"): {
        "operationId": "createUnit",
        "tags": ["units"],
        "summary": "Register a unit and its channels (tried in order).",
        "requestBody": _body("UnitSpec"),
        "responses": {
            "201": _json("Registered.", _ref("Unit")),
            **_BODY_ERRORS,
            "409": _error("The id or callsign is taken (code unit_taken)."),
        },
    },
    ("GET", "/api/v1/units/recommend"): {
        "operationId": "recommendUnits",
        "tags": ["units"],
        "summary": "Available on-duty units ranked for a case, with the reasons for each place.",
        "description": (
            "Score = great-circle km + penalties (wrong kind, each missing skill, stale "
            "position) in km-equivalents; units without a position come last."
        ),
        "parameters": [
            {"name": "case", "in": "query", "required": True, "schema": {"type": "integer"}},
            {
                "name": "limit",
                "in": "query",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
            },
            {"name": "kind", "in": "query", "schema": {"enum": list(KINDS)}},
            {
                "name": "skill",
                "in": "query",
                "description": "Repeat for several; replaces the category's skills.",
                "schema": {"type": "string"},
            },
        ],
        "responses": {
            "200": _json("The ranking.", _ref("Recommendation")),
            "400": _response("BadRequest"),
            "404": _error("No such case (code case_not_found)."),
            "409": _error("The case has no location (code case_without_location)."),
        },
    },
    ("GET", "/api/v1/positions/stats"): {
        "operationId": "positionStats",
        "tags": ["units"],
        "summary": "Positions accepted and dropped per source and reason since start.",
        "responses": {"200": _json("Counters.", _ref("PositionStats"))},
    },
    ("GET", "/api/v1/units/{unit_id}"): {
        "operationId": "getUnit",
        "tags": ["units"],
        "summary": "One unit.",
        "parameters": [_UNIT_PATH],
        "responses": {"200": _json("The unit.", _ref("Unit")), "404": _UNIT_404},
    },
    ("POST", "/api/v1/units/{unit_id}/status"): {
        "operationId": "changeUnitStatus",
        "tags": ["units"],
        "summary": "Set a unit's status and/or duty; audited and shown live.",
        "parameters": [_UNIT_PATH],
        "requestBody": _body("StatusChange"),
        "responses": {"200": _json("The unit.", _ref("Unit")), **_BODY_ERRORS, "404": _UNIT_404},
    },
    ("GET", "/api/v1/units/{unit_id}/positions"): {
        "operationId": "unitPositions",
        "tags": ["units"],
        "summary": "A unit's position history, newest first.",
        "parameters": [
            _UNIT_PATH,
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1}},
        ],
        "responses": {
            "200": _json("Positions.", _ref("PositionHistory")),
            "400": _response("BadRequest"),
            "404": _UNIT_404,
        },
    },
    ("POST", "/api/v1/dispatches"): {
        "operationId": "createDispatch",
        "tags": ["dispatch"],
        "summary": "Send units to a case: one order id, copies queued in the outbox.",
        "description": (
            "201 only after the order and its outbox copies are committed. An unavailable or "
            "off-duty unit gives 409 unit_unavailable naming why; a supervisor may override "
            "with override and override_reason."
        ),
        "requestBody": _body("DispatchRequest"),
        "responses": {
            "201": _json("The order.", _ref("Order")),
            **_BODY_ERRORS,
            "404": _error("No such case or unit (case_not_found, unit_not_found)."),
            "409": _error("A unit is unavailable, or the case is closed (message says why)."),
        },
    },
    ("GET", "/api/v1/dispatches"): {
        "operationId": "listDispatches",
        "tags": ["dispatch"],
        "summary": "Orders newest first, each with its ladder.",
        "parameters": [
            {"name": "open", "in": "query", "schema": {"type": "boolean"}},
            {"name": "case", "in": "query", "schema": {"type": "integer"}},
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1}},
        ],
        "responses": {
            "200": _json("Orders.", _ref("OrderList")),
            "400": _response("BadRequest"),
        },
    },
    ("GET", "/api/v1/dispatches/{order_id}"): {
        "operationId": "getDispatch",
        "tags": ["dispatch"],
        "summary": "One order: assignments, the copy on each channel, history.",
        "parameters": [_ORDER_PATH],
        "responses": {"200": _json("The order.", _ref("Order")), "404": _ORDER_404},
    },
    ("POST", "/api/v1/dispatches/{order_id}/acknowledge"): {
        "operationId": "acknowledgeDispatch",
        "tags": ["dispatch"],
        "summary": "Record an acknowledgement received by other means; repeats change nothing.",
        "parameters": [_ORDER_PATH],
        "requestBody": _body("AcknowledgeRequest"),
        "responses": {
            "200": _json("Result.", _ref("AcknowledgeResult")),
            **_BODY_ERRORS,
            "404": _ORDER_404,
        },
    },
    ("POST", "/api/v1/dispatches/{order_id}/cancel"): {
        "operationId": "cancelDispatch",
        "tags": ["dispatch"],
        "summary": "Stop an open order; units it still holds become available.",
        "parameters": [_ORDER_PATH],
        "requestBody": _body("CancelRequest"),
        "responses": {
            "200": _json("The order.", _ref("Order")),
            **_BODY_ERRORS,
            "404": _ORDER_404,
            "409": _error("The order is already closed (code order_closed)."),
        },
    },
    ("GET", "/api/v1/shifts/current"): {
        "operationId": "currentShift",
        "tags": ["units"],
        "summary": "The shift on now, when it started and ends, and the room's schedule.",
        "responses": {"200": _json("The current shift.", _ref("CurrentShift"))},
    },
}
