"""The OpenAPI description of the case and public-report routes, merged by :mod:`ops.web.openapi`.

Request bodies come from the pydantic models the handlers validate with.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ops.cases.model import CHANNELS, PRIORITIES, STATUSES
from ops.web import cases, public
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
_TEXT_OR_NULL = {"type": ["string", "null"]}
_NUMBER_OR_NULL = {"type": ["number", "null"]}
_INT_OR_NULL = {"type": ["integer", "null"]}
_PRIORITY = {"type": "string", "enum": list(PRIORITIES)}
_STATUS = {"type": "string", "enum": list(STATUSES)}
_BODY_ERRORS = {
    "400": _response("BadRequest"),
    "413": _response("TooLarge"),
    "415": _response("UnsupportedMediaType"),
}
_NOT_FOUND = {"404": _response("NotFound")}
_LIMITED = {
    "429": {
        **_error("Too many requests from this address (code too_many_requests)."),
        "headers": {"Retry-After": {"description": "Seconds.", "schema": {"type": "integer"}}},
    }
}
_CASE_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1},
}
_CODE = {
    "name": "code",
    "in": "path",
    "required": True,
    "description": "A tracking code (LP-…) or a whistleblower's follow-up code (WB-…).",
    "schema": {"type": "string"},
}


def _object(properties: dict[str, Schema], *, required: list[str] | None = None) -> Schema:
    return {
        "type": "object",
        "required": required if required is not None else list(properties),
        "additionalProperties": False,
        "properties": properties,
    }


_CASE_FIELDS: dict[str, Schema] = {
    "id": {"type": "integer"},
    "number": {"type": "string", "examples": ["PSK-0000042"]},
    "title": {"type": "string"},
    "description": {"type": "string"},
    "category": {"type": "string"},
    "priority": _PRIORITY,
    "priority_reason": {"type": "string"},
    "status": _STATUS,
    "status_reason": _TEXT_OR_NULL,
    "channel": {"type": "string", "examples": list(CHANNELS)},
    "agency": _TEXT_OR_NULL,
    "lat": _NUMBER_OR_NULL,
    "lon": _NUMBER_OR_NULL,
    "address": _TEXT_OR_NULL,
    "region": _TEXT_OR_NULL,
    "reporter_name": _TEXT_OR_NULL,
    "reporter_contact": _TEXT_OR_NULL,
    "anonymous": {"type": "boolean"},
    "parent_id": {**_INT_OR_NULL, "description": "The case this one is linked under."},
    "duplicate_of": {**_INT_OR_NULL, "description": "A likely duplicate found at intake."},
    "children": {"type": "integer", "description": "Cases linked under this one."},
    "created_at": _TIME,
    "updated_at": _TIME,
    "sla_due_at": _TIME,
    "sla_breached_at": {"anyOf": [_TIME, {"type": "null"}]},
    "overdue": {"type": "boolean"},
    "external_source": _TEXT_OR_NULL,
    "external_id": _TEXT_OR_NULL,
    "attachments": {
        "type": "array",
        "description": "Metadata of mail attachments; their contents are never stored.",
        "items": {"type": "object"},
    },
}

SCHEMAS.update(
    {
        "Case": _object(_CASE_FIELDS),
        "HistoryEntry": _object(
            {
                "id": {"type": "integer"},
                "at": _TIME,
                "actor": {"type": "string"},
                "action": {"type": "string", "examples": ["opened", "transition", "note"]},
                "before": {},
                "after": {},
            }
        ),
        "Note": _object(
            {
                "id": {"type": "integer"},
                "at": _TIME,
                "author": {"type": "string"},
                "body": {"type": "string"},
            }
        ),
        "CasePage": _object(
            {
                "cases": {"type": "array", "items": _ref("Case")},
                "next_cursor": {
                    "type": ["string", "null"],
                    "description": "Pass as cursor for the next page; null on the last.",
                },
            }
        ),
        "Category": _object(
            {
                "code": {"type": "string"},
                "label_id": {"type": "string"},
                "label_en": {"type": "string"},
                "default_priority": _PRIORITY,
                "active": {"type": "boolean"},
            }
        ),
        "Agency": _object(
            {
                "code": {"type": "string"},
                "name_id": {"type": "string"},
                "name_en": {"type": "string"},
            }
        ),
        "RoutingRule": _object(
            {
                "category": {"type": "string"},
                "region": {"type": "string", "description": "'' is the category's default."},
                "agency": {"type": "string"},
                "sla_minutes": _object(
                    {name: {"type": "integer", "minimum": 1} for name in PRIORITIES}
                ),
            }
        ),
        "PublicReceipt": _object(
            {
                "number": {"type": "string"},
                "status": _STATUS,
                "tracking_code": {"type": "string", "examples": ["LP-7KQ2M9XH4C"]},
            }
        ),
        "WhistleblowerReceipt": _object(
            {
                "number": {"type": "string"},
                "status": _STATUS,
                "follow_up_code": {
                    "type": "string",
                    "description": "Secret: shown once; lets its holder follow and add to it.",
                },
            }
        ),
        "PublicStatus": _object(
            {
                "number": {"type": "string"},
                "category": {"type": "string"},
                "status": _STATUS,
                "agency": _TEXT_OR_NULL,
                "created_at": _TIME,
                "updated_at": _TIME,
                "timeline": {
                    "type": "array",
                    "items": _object({"at": _TIME, "status": _STATUS}),
                },
            }
        ),
        "CaseCreate": _model(cases.CaseCreate),
        "CaseUpdate": _model(cases.CaseUpdate),
        "TransitionRequest": _model(cases.TransitionRequest),
        "NoteRequest": _model(cases.NoteRequest),
        "ParentRequest": _model(cases.ParentRequest),
        "AgencyOverride": _model(cases.AgencyOverride),
        "CategoryRequest": _model(cases.CategoryRequest),
        "RuleRequest": _model(cases.RuleRequest),
        "PublicReport": _model(public.PublicReport),
        "WhistleblowerReport": _model(public.WhistleblowerReport),
        "FollowUp": _model(public.FollowUp),
    }
)
SCHEMAS["CaseDetail"] = {
    **SCHEMAS["Case"],
    "required": [*SCHEMAS["Case"]["required"], "history", "notes", "duplicates"],
    "properties": {
        **SCHEMAS["Case"]["properties"],
        "history": {"type": "array", "items": _ref("HistoryEntry")},
        "notes": {"type": "array", "items": _ref("Note")},
        "duplicates": {"type": "array", "items": _ref("Case")},
    },
}


def _query(name: str, schema: Schema, description: str = "") -> dict[str, Any]:
    parameter: dict[str, Any] = {"name": name, "in": "query", "schema": schema}
    if description:
        parameter["description"] = description
    return parameter


_HTML = {"description": "HTML.", "content": {"text/html": {"schema": {"type": "string"}}}}
_CONFLICT = {
    "409": _error(
        "The life cycle does not allow this step (code invalid_transition; the message names "
        "both states) or the link would chain duplicates (code link_refused)."
    )
}

OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/api/v1/cases"): {
        "operationId": "listCases",
        "tags": ["cases"],
        "summary": "The case queue: by priority, then SLA due time, paged by keyset cursor.",
        "parameters": [
            _query(
                "status",
                {"type": "string"},
                "Comma-separated statuses; 'open' stands for every status whose clock runs.",
            ),
            _query("category", {"type": "string"}),
            _query("agency", {"type": "string"}),
            _query("priority", _PRIORITY),
            _query("channel", {"type": "string"}),
            _query("region", {"type": "string"}, "Exact, case-insensitive."),
            _query("q", {"type": "string"}, "Text in number, title, description or address."),
            _query(
                "bbox",
                {"type": "string", "examples": ["106.7,-6.3,106.9,-6.1"]},
                "min_lon,min_lat,max_lon,max_lat",
            ),
            _query("overdue", {"type": "boolean"}, "Only open cases past their SLA due time."),
            _query("parent_id", {"type": "integer"}, "Only the duplicates linked under a case."),
            _query(
                "limit",
                {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": cases.MAX_PAGE,
                    "default": cases.DEFAULT_PAGE,
                },
            ),
            _query("cursor", {"type": "string"}, "next_cursor of the previous page."),
        ],
        "responses": {"200": _json("One page.", _ref("CasePage")), "400": _BODY_ERRORS["400"]},
    },
    ("POST", "/api/v1/cases"): {
        "operationId": "createCase",
        "tags": ["cases"],
        "summary": "Take a report (call-taker form, API client); 201 once committed.",
        "description": (
            "Routing (agency, SLA) runs at intake; a likely duplicate is named in duplicate_of. "
            "An unknown category gives 400 unknown_category with field category."
        ),
        "requestBody": _body("CaseCreate"),
        "responses": {"201": _json("The new case.", _ref("Case")), **_BODY_ERRORS},
    },
    ("GET", "/api/v1/cases/{id}"): {
        "operationId": "getCase",
        "tags": ["cases"],
        "summary": "A case with its history, notes and linked duplicates.",
        "parameters": [_CASE_ID],
        "responses": {"200": _json("The case.", _ref("CaseDetail")), **_NOT_FOUND},
    },
    ("PATCH", "/api/v1/cases/{id}"): {
        "operationId": "updateCase",
        "tags": ["cases"],
        "summary": "Correct a case; a new category, region or priority re-routes it.",
        "parameters": [_CASE_ID],
        "requestBody": _body("CaseUpdate"),
        "responses": {"200": _json("The case.", _ref("Case")), **_BODY_ERRORS, **_NOT_FOUND},
    },
    ("POST", "/api/v1/cases/{id}/transitions"): {
        "operationId": "transitionCase",
        "tags": ["cases"],
        "summary": "Move a case along its life cycle.",
        "description": (
            "new → triaged → assigned → in_progress → resolved → closed; rejected and reopened "
            "need a reason; going back from assigned or in_progress to triaged is the owner "
            "agency's bounce and needs a reason."
        ),
        "parameters": [_CASE_ID],
        "requestBody": _body("TransitionRequest"),
        "responses": {
            "200": _json("The case.", _ref("Case")),
            **_BODY_ERRORS,
            **_NOT_FOUND,
            **_CONFLICT,
        },
    },
    ("POST", "/api/v1/cases/{id}/notes"): {
        "operationId": "addCaseNote",
        "tags": ["cases"],
        "summary": "Add a note to a case.",
        "parameters": [_CASE_ID],
        "requestBody": _body("NoteRequest"),
        "responses": {"201": _json("The note.", _ref("Note")), **_BODY_ERRORS, **_NOT_FOUND},
    },
    ("GET", "/api/v1/cases/{id}/events"): {
        "operationId": "caseEvents",
        "tags": ["cases"],
        "summary": "A case's append-only history, oldest first.",
        "parameters": [_CASE_ID],
        "responses": {
            "200": _json(
                "The history.",
                _object({"events": {"type": "array", "items": _ref("HistoryEntry")}}),
            ),
            **_NOT_FOUND,
        },
    },
    ("PUT", "/api/v1/cases/{id}/parent"): {
        "operationId": "linkCase",
        "tags": ["cases"],
        "summary": "Link a case as a duplicate of another (one level deep).",
        "parameters": [_CASE_ID],
        "requestBody": _body("ParentRequest"),
        "responses": {
            "200": _json("The case.", _ref("Case")),
            **_BODY_ERRORS,
            **_NOT_FOUND,
            **_CONFLICT,
        },
    },
    ("DELETE", "/api/v1/cases/{id}/parent"): {
        "operationId": "unlinkCase",
        "tags": ["cases"],
        "summary": "Undo a duplicate link, or dismiss a duplicate suspicion.",
        "parameters": [_CASE_ID],
        "responses": {"200": _json("The case.", _ref("Case")), **_NOT_FOUND},
    },
    ("PUT", "/api/v1/cases/{id}/agency"): {
        "operationId": "overrideCaseAgency",
        "tags": ["cases"],
        "summary": "A supervisor's routing override: give the case to another agency.",
        "parameters": [_CASE_ID],
        "requestBody": _body("AgencyOverride"),
        "responses": {"200": _json("The case.", _ref("Case")), **_BODY_ERRORS, **_NOT_FOUND},
    },
    ("GET", "/api/v1/case-categories"): {
        "operationId": "listCaseCategories",
        "tags": ["cases"],
        "summary": "The category catalogue.",
        "responses": {
            "200": _json(
                "Categories.", _object({"categories": {"type": "array", "items": _ref("Category")}})
            )
        },
    },
    ("PUT", "/api/v1/case-categories/{code}"): {
        "operationId": "putCaseCategory",
        "tags": ["cases"],
        "summary": "Create or change a category.",
        "parameters": [
            {"name": "code", "in": "path", "required": True, "schema": {"type": "string"}}
        ],
        "requestBody": _body("CategoryRequest"),
        "responses": {
            "200": _json("Changed.", _ref("Category")),
            "201": _json("Created.", _ref("Category")),
            **_BODY_ERRORS,
        },
    },
    ("GET", "/api/v1/agencies"): {
        "operationId": "listAgencies",
        "tags": ["cases"],
        "summary": "Agencies and directorates that own cases.",
        "responses": {
            "200": _json(
                "Agencies.", _object({"agencies": {"type": "array", "items": _ref("Agency")}})
            )
        },
    },
    ("GET", "/api/v1/routing-rules"): {
        "operationId": "listRoutingRules",
        "tags": ["cases"],
        "summary": "Routing rules: the agency and SLA minutes per (category, region).",
        "responses": {
            "200": _json(
                "Rules.", _object({"rules": {"type": "array", "items": _ref("RoutingRule")}})
            )
        },
    },
    ("PUT", "/api/v1/routing-rules"): {
        "operationId": "putRoutingRule",
        "tags": ["cases"],
        "summary": "Create or replace the rule of a (category, region).",
        "requestBody": _body("RuleRequest"),
        "responses": {"200": _json("The rule.", _ref("RoutingRule")), **_BODY_ERRORS},
    },
    ("GET", "/report"): {
        "operationId": "reportPage",
        "tags": ["pages"],
        "summary": "The public report form (and tracking).",
        "responses": {"200": _HTML},
    },
    ("GET", "/report/anonymous"): {
        "operationId": "whistleblowerPage",
        "tags": ["pages"],
        "summary": "The anonymous whistleblower form.",
        "responses": {"200": _HTML},
    },
    ("GET", "/api/v1/public/categories"): {
        "operationId": "publicCategories",
        "tags": ["public"],
        "summary": "Active categories for the public forms.",
        "responses": {
            "200": _json(
                "Categories.",
                _object(
                    {
                        "categories": {
                            "type": "array",
                            "items": _object(
                                {
                                    "code": {"type": "string"},
                                    "label_id": {"type": "string"},
                                    "label_en": {"type": "string"},
                                }
                            ),
                        }
                    }
                ),
            )
        },
    },
    ("POST", "/api/v1/public/reports"): {
        "operationId": "submitPublicReport",
        "tags": ["public"],
        "summary": "File a public report; 201 with a tracking code once committed.",
        "requestBody": _body("PublicReport"),
        "responses": {
            "201": _json("Received.", _ref("PublicReceipt")),
            **_BODY_ERRORS,
            **_LIMITED,
        },
    },
    ("POST", "/api/v1/public/whistleblower"): {
        "operationId": "submitWhistleblowerReport",
        "tags": ["public"],
        "summary": "File an anonymous report; 201 with a secret follow-up code.",
        "description": (
            "No identity is accepted (unknown fields are refused) and the client address is "
            "neither stored nor logged with it."
        ),
        "requestBody": _body("WhistleblowerReport"),
        "responses": {
            "201": _json("Received.", _ref("WhistleblowerReceipt")),
            **_BODY_ERRORS,
            **_LIMITED,
        },
    },
    ("GET", "/api/v1/public/reports/{code}"): {
        "operationId": "trackPublicReport",
        "tags": ["public"],
        "summary": "A report's public status and timeline (nothing private).",
        "parameters": [_CODE],
        "responses": {
            "200": _json("The status.", _ref("PublicStatus")),
            **_NOT_FOUND,
            **_LIMITED,
        },
    },
    ("POST", "/api/v1/public/reports/{code}/notes"): {
        "operationId": "addWhistleblowerInformation",
        "tags": ["public"],
        "summary": "The holder of a follow-up code (WB-…) adds information.",
        "parameters": [_CODE],
        "requestBody": _body("FollowUp"),
        "responses": {
            "201": _json("Received.", _object({"received_at": _TIME})),
            "403": _error("A tracking code (LP-…) cannot add information."),
            **_BODY_ERRORS,
            **_NOT_FOUND,
            **_LIMITED,
        },
    },
}
