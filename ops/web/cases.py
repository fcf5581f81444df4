"""The case API for signed-in people: queue, call-taker intake, detail, changes and catalogue.

``GET /api/v1/cases`` pages the queue (priority, then SLA due time, then id) by an opaque keyset
cursor. Every change goes through :mod:`ops.cases.service`, which commits before it answers and
announces ``case.changed`` on the live feed.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable
from datetime import datetime
from typing import Any, Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from db import cases as case_rows
from db import categories
from ops import audit
from ops.cases import service
from ops.cases.errors import CaseNotFound, InvalidReport, InvalidTransition, LinkRefused
from ops.cases.intake import IncomingReport, open_case
from ops.cases.model import (
    MAX_DESCRIPTION,
    MAX_NOTE,
    MAX_SHORT,
    MAX_TITLE,
    OPEN_STATUSES,
    PRIORITIES,
    STATUSES,
    CaseText,
)
from ops.http.audit import SOURCE
from ops.http.errors import ApiError, read_json
from ops.http.keys import HUB_KEY
from ops.http.roles import ANY_ROLE, CASE_WORKERS, SUPERVISOR_ONLY
from ops.http.routes import Api, read_query, reply
from ops.http.sessions import current_user
from ops.web.case_models import (
    Agencies,
    AgencyOut,
    CaseDetail,
    CaseEvents,
    CaseOut,
    CasePage,
    Categories,
    CategoryOut,
    HistoryEntry,
    NoteOut,
    Priority,
    RoutingRule,
    RoutingRules,
    Status,
)

DEFAULT_PAGE = 50
MAX_PAGE = 200
MAX_ID = 2**63 - 1

T = TypeVar("T")
_CASE_ID = {"type": "integer", "minimum": 1}
_NOT_FOUND = {404: "No such case (code not_found)."}
_CONFLICT = {
    409: "The life cycle does not allow this step (code invalid_transition; the message names "
    "both states) or the link would chain duplicates (code link_refused)."
}

api = Api("cases")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CaseCreate(_Body):
    """A call-taker's or an API client's report."""

    category: CaseText = Field(min_length=1, max_length=32)
    description: CaseText = Field(default="", max_length=MAX_DESCRIPTION)
    title: CaseText | None = Field(default=None, max_length=MAX_TITLE)
    priority: Priority | None = None
    priority_reason: CaseText | None = Field(default=None, max_length=MAX_SHORT)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    address: CaseText | None = Field(default=None, max_length=MAX_SHORT)
    region: CaseText | None = Field(default=None, max_length=MAX_SHORT)
    reporter_name: CaseText | None = Field(default=None, max_length=MAX_SHORT)
    reporter_contact: CaseText | None = Field(default=None, max_length=MAX_SHORT)
    channel: Literal["console", "api"] = "api"


class CaseUpdate(_Body):
    """Fields an operator may correct; category, region and priority re-route the case."""

    category: CaseText | None = Field(default=None, min_length=1, max_length=32)
    title: CaseText | None = Field(default=None, min_length=1, max_length=MAX_TITLE)
    description: CaseText | None = Field(default=None, max_length=MAX_DESCRIPTION)
    priority: Priority | None = None
    priority_reason: CaseText | None = Field(default=None, min_length=1, max_length=MAX_SHORT)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    address: CaseText | None = Field(default=None, max_length=MAX_SHORT)
    region: CaseText | None = Field(default=None, max_length=MAX_SHORT)


class TransitionRequest(_Body):
    """Move a case to another status."""

    to: Status
    reason: CaseText | None = Field(default=None, max_length=MAX_SHORT)
    agency: CaseText | None = Field(default=None, min_length=1, max_length=32)


class NoteRequest(_Body):
    """A note on a case."""

    body: CaseText = Field(min_length=1, max_length=MAX_NOTE)


class ParentRequest(_Body):
    """Link a case as a duplicate of ``parent_id``."""

    parent_id: int = Field(ge=1, le=MAX_ID)


class AgencyOverride(_Body):
    """A supervisor's routing override."""

    agency: CaseText = Field(min_length=1, max_length=32)
    reason: CaseText = Field(min_length=1, max_length=MAX_SHORT)


class CategoryRequest(_Body):
    """A category of the catalogue (created or replaced)."""

    label_id: CaseText = Field(min_length=1, max_length=100)
    label_en: CaseText = Field(min_length=1, max_length=100)
    default_priority: Priority
    active: bool = True


class SlaMinutes(_Body):
    """Minutes from opening to resolution, per priority."""

    critical: int = Field(ge=1, le=525_600)
    high: int = Field(ge=1, le=525_600)
    medium: int = Field(ge=1, le=525_600)
    low: int = Field(ge=1, le=525_600)


class RuleRequest(_Body):
    """A routing rule (created or replaced); region "" is the category's default."""

    category: CaseText = Field(min_length=1, max_length=32)
    region: CaseText = Field(default="", max_length=MAX_SHORT)
    agency: CaseText = Field(min_length=1, max_length=32)
    sla_minutes: SlaMinutes


class CaseQuery(BaseModel):
    """The query string of ``GET /api/v1/cases``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    status: CaseText | None = None
    category: CaseText | None = Field(default=None, max_length=32)
    agency: CaseText | None = Field(default=None, max_length=32)
    priority: Priority | None = None
    channel: CaseText | None = Field(default=None, max_length=32)
    region: CaseText | None = Field(default=None, max_length=MAX_SHORT)
    q: CaseText | None = Field(default=None, min_length=1, max_length=200)
    bbox: CaseText | None = None
    overdue: bool = False
    parent_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    limit: int = Field(default=DEFAULT_PAGE, ge=1, le=MAX_PAGE)
    cursor: CaseText | None = Field(default=None, max_length=200)

    @field_validator("status")
    @classmethod
    def _statuses(cls, value: str | None) -> str | None:
        if value is None:
            return None
        wanted = [part.strip() for part in value.split(",") if part.strip()]
        aliases = {"open": list(OPEN_STATUSES)}
        expanded = [s for part in wanted for s in aliases.get(part, [part])]
        unknown = [part for part in expanded if part not in STATUSES]
        if unknown or not expanded:
            raise ValueError(f"unknown status {unknown[0] if unknown else value!r}")
        return ",".join(expanded)

    @field_validator("bbox")
    @classmethod
    def _bbox(cls, value: str | None) -> str | None:
        if value is None:
            return None
        _parse_bbox(value)
        return value


# -- queue and intake ---------------------------------------------------------------------------


@api.get(
    "/api/v1/cases",
    roles=ANY_ROLE,
    summary="The case queue: by priority, then SLA due time, paged by keyset cursor.",
    query=CaseQuery,
    response=CasePage,
)
async def list_cases(request: web.Request) -> web.Response:
    """One page of the queue with the cursor of the next."""
    query = read_query(request, CaseQuery)
    after = None if query.cursor is None else decode_cursor(query.cursor)
    filters = case_rows.CaseFilter(
        statuses=None if query.status is None else tuple(query.status.split(",")),
        category=query.category,
        agency=query.agency,
        priority=query.priority,
        channel=query.channel,
        region=query.region,
        text=query.q,
        bbox=None if query.bbox is None else _parse_bbox(query.bbox),
        overdue=query.overdue,
        parent_id=query.parent_id,
    )
    async with request.app[HUB_KEY].pool.acquire() as conn:
        rows = await case_rows.list_cases(conn, filters, limit=query.limit, after=after)
    cursor = encode_cursor(rows[-1]) if len(rows) == query.limit else None
    return reply(CasePage(cases=[CaseOut.of(row) for row in rows], next_cursor=cursor))


@api.post(
    "/api/v1/cases",
    roles=CASE_WORKERS,
    summary="Take a report (call-taker form, API client); 201 once committed.",
    description=(
        "Routing (agency, SLA) runs at intake; a likely duplicate is named in duplicate_of. "
        "An unknown category gives 400 unknown_category with field category."
    ),
    body=CaseCreate,
    responses={201: CaseOut},
)
async def create_case(request: web.Request) -> web.Response:
    """Take a report (call-taker form or API client); 201 once the case is committed."""
    body = await read_json(request, CaseCreate)
    user = current_user(request)
    hub = request.app[HUB_KEY]
    report = IncomingReport(
        channel=body.channel,
        category=body.category,
        description=body.description,
        title=body.title,
        priority=body.priority,
        priority_reason=body.priority_reason
        or (None if body.priority is None else f"set by {user.username}"),
        lat=body.lat,
        lon=body.lon,
        address=body.address,
        region=body.region,
        reporter_name=body.reporter_name,
        reporter_contact=body.reporter_contact,
        actor=user.username,
    )
    ref, row = await domain_call(open_case(hub.pool, hub.bus, report, config=hub.config.cases))
    if row is None:  # no external id here, so never an earlier case; read it back all the same
        async with hub.pool.acquire() as conn:
            row = await case_rows.get_case(conn, ref.id)
    if row is None:
        raise ApiError(404, "not_found", f"case {ref.number} is gone")
    return reply(CaseOut.of(row), status=201, headers={"Location": f"/api/v1/cases/{row.id}"})


# -- one case -----------------------------------------------------------------------------------


@api.get(
    "/api/v1/cases/{id:\\d+}",
    roles=ANY_ROLE,
    summary="A case with its history, notes and linked duplicates.",
    path_params={"id": _CASE_ID},
    response=CaseDetail,
    errors=_NOT_FOUND,
)
async def get_case(request: web.Request) -> web.Response:
    """A case with its history, notes and duplicates."""
    detail = await domain_call(service.get_detail(request.app[HUB_KEY].pool, _case_id(request)))
    return reply(CaseDetail.of_detail(detail))


@api.patch(
    "/api/v1/cases/{id:\\d+}",
    roles=CASE_WORKERS,
    summary="Correct a case; a new category, region or priority re-routes it.",
    path_params={"id": _CASE_ID},
    body=CaseUpdate,
    response=CaseOut,
    errors=_NOT_FOUND,
)
async def update_case(request: web.Request) -> web.Response:
    """Correct a case's fields."""
    body = await read_json(request, CaseUpdate)
    changes = body.model_dump(exclude_unset=True)
    for name in ("category", "title", "description", "priority", "priority_reason"):
        if name in changes and changes[name] is None:
            raise ApiError(400, "invalid_field", f"{name} cannot be null", name)
    if not changes:
        raise ApiError(400, "invalid_body", "nothing to change", None)
    hub = request.app[HUB_KEY]
    row = await domain_call(
        service.update(
            hub.pool, hub.bus, _case_id(request), changes, actor=current_user(request).username
        )
    )
    return reply(CaseOut.of(row))


@api.post(
    "/api/v1/cases/{id:\\d+}/transitions",
    roles=CASE_WORKERS,
    summary="Move a case along its life cycle.",
    description=(
        "new → triaged → assigned → in_progress → resolved → closed; rejected and reopened "
        "need a reason; going back from assigned or in_progress to triaged is the owner "
        "agency's bounce and needs a reason."
    ),
    path_params={"id": _CASE_ID},
    body=TransitionRequest,
    response=CaseOut,
    errors={**_NOT_FOUND, **_CONFLICT},
)
async def transition_case(request: web.Request) -> web.Response:
    """Move a case along its life cycle; 409 names both states when the step is not allowed."""
    body = await read_json(request, TransitionRequest)
    hub = request.app[HUB_KEY]
    row = await domain_call(
        service.transition(
            hub.pool,
            hub.bus,
            _case_id(request),
            to=body.to,
            actor=current_user(request).username,
            reason=body.reason,
            agency=body.agency,
        )
    )
    return reply(CaseOut.of(row))


@api.post(
    "/api/v1/cases/{id:\\d+}/notes",
    roles=CASE_WORKERS,
    summary="Add a note to a case.",
    path_params={"id": _CASE_ID},
    body=NoteRequest,
    responses={201: NoteOut},
    errors=_NOT_FOUND,
)
async def add_note(request: web.Request) -> web.Response:
    """Add a note."""
    body = await read_json(request, NoteRequest)
    hub = request.app[HUB_KEY]
    note = await domain_call(
        service.add_note(
            hub.pool,
            hub.bus,
            _case_id(request),
            author=current_user(request).username,
            body=body.body,
        )
    )
    return reply(NoteOut.model_validate(note), status=201)


@api.get(
    "/api/v1/cases/{id:\\d+}/events",
    roles=ANY_ROLE,
    summary="A case's append-only history, oldest first.",
    path_params={"id": _CASE_ID},
    response=CaseEvents,
    errors=_NOT_FOUND,
)
async def case_events(request: web.Request) -> web.Response:
    """A case's history, oldest first."""
    detail = await domain_call(service.get_detail(request.app[HUB_KEY].pool, _case_id(request)))
    return reply(CaseEvents(events=[HistoryEntry.model_validate(e) for e in detail.history]))


@api.put(
    "/api/v1/cases/{id:\\d+}/parent",
    roles=CASE_WORKERS,
    summary="Link a case as a duplicate of another (one level deep).",
    path_params={"id": _CASE_ID},
    body=ParentRequest,
    response=CaseOut,
    errors={**_NOT_FOUND, **_CONFLICT},
)
async def link_case(request: web.Request) -> web.Response:
    """Link a case as a duplicate of another."""
    body = await read_json(request, ParentRequest)
    hub = request.app[HUB_KEY]
    row = await domain_call(
        service.link(
            hub.pool,
            hub.bus,
            _case_id(request),
            parent_id=body.parent_id,
            actor=current_user(request).username,
        )
    )
    return reply(CaseOut.of(row))


@api.delete(
    "/api/v1/cases/{id:\\d+}/parent",
    roles=CASE_WORKERS,
    summary="Undo a duplicate link, or dismiss a duplicate suspicion.",
    path_params={"id": _CASE_ID},
    response=CaseOut,
    errors=_NOT_FOUND,
)
async def unlink_case(request: web.Request) -> web.Response:
    """Undo a duplicate link, or dismiss a duplicate suspicion."""
    hub = request.app[HUB_KEY]
    row = await domain_call(
        service.unlink(hub.pool, hub.bus, _case_id(request), actor=current_user(request).username)
    )
    return reply(CaseOut.of(row))


@api.put(
    "/api/v1/cases/{id:\\d+}/agency",
    roles=SUPERVISOR_ONLY,
    summary="A supervisor's routing override: give the case to another agency.",
    path_params={"id": _CASE_ID},
    body=AgencyOverride,
    response=CaseOut,
    errors=_NOT_FOUND,
)
async def override_agency(request: web.Request) -> web.Response:
    """A supervisor gives the case to another agency."""
    body = await read_json(request, AgencyOverride)
    hub = request.app[HUB_KEY]
    row = await domain_call(
        service.override_routing(
            hub.pool,
            hub.bus,
            _case_id(request),
            agency=body.agency,
            reason=body.reason,
            actor=current_user(request).username,
        )
    )
    return reply(CaseOut.of(row))


# -- catalogue ----------------------------------------------------------------------------------


@api.get(
    "/api/v1/case-categories",
    roles=ANY_ROLE,
    summary="The category catalogue.",
    response=Categories,
)
async def list_categories(request: web.Request) -> web.Response:
    """The category catalogue."""
    async with request.app[HUB_KEY].pool.acquire() as conn:
        rows = await categories.list_categories(conn)
    return reply(Categories(categories=[CategoryOut.model_validate(row) for row in rows]))


@api.put(
    "/api/v1/case-categories/{code}",
    roles=SUPERVISOR_ONLY,
    summary="Create or change a category.",
    body=CategoryRequest,
    responses={200: CategoryOut, 201: CategoryOut},
)
async def put_category(request: web.Request) -> web.Response:
    """Create or change a category (supervisors)."""
    code = request.match_info["code"]
    if not code.isascii() or not code.replace("_", "").isalnum() or len(code) > 32:  # noqa: PLR2004
        raise ApiError(400, "invalid_field", "code is 1-32 of a-z, 0-9 and _", "code")
    body = await read_json(request, CategoryRequest)
    async with request.app[HUB_KEY].pool.acquire() as conn, conn.transaction():
        before = await categories.get_category(conn, code.lower())
        row = await categories.upsert_category(
            conn,
            code=code.lower(),
            label_id=body.label_id,
            label_en=body.label_en,
            default_priority=body.default_priority,
            active=body.active,
        )
        entry = await audit.write(
            conn,
            actor=current_user(request).username,
            action="case_category.put",
            target=f"case_category:{row.code}",
            before=None if before is None else _json(CategoryOut.model_validate(before)),
            after=_json(CategoryOut.model_validate(row)),
        )
    audit.announce(request.app[HUB_KEY].bus, entry, source=SOURCE)
    return reply(CategoryOut.model_validate(row), status=200 if before else 201)


@api.get(
    "/api/v1/agencies",
    roles=ANY_ROLE,
    summary="Agencies and directorates that own cases.",
    response=Agencies,
)
async def list_agencies(request: web.Request) -> web.Response:
    """Agencies that own cases."""
    async with request.app[HUB_KEY].pool.acquire() as conn:
        rows = await categories.list_agencies(conn)
    return reply(Agencies(agencies=[AgencyOut.model_validate(row) for row in rows]))


@api.get(
    "/api/v1/routing-rules",
    roles=ANY_ROLE,
    summary="Routing rules: the agency and SLA minutes per (category, region).",
    response=RoutingRules,
)
async def list_rules(request: web.Request) -> web.Response:
    """Routing rules: agency and SLA per (category, region)."""
    async with request.app[HUB_KEY].pool.acquire() as conn:
        rows = await categories.list_rules(conn)
    return reply(RoutingRules(rules=[RoutingRule.of(row) for row in rows]))


@api.put(
    "/api/v1/routing-rules",
    roles=SUPERVISOR_ONLY,
    summary="Create or replace the rule of a (category, region).",
    body=RuleRequest,
    response=RoutingRule,
)
async def put_rule(request: web.Request) -> web.Response:
    """Create or replace a routing rule (supervisors)."""
    body = await read_json(request, RuleRequest)
    async with request.app[HUB_KEY].pool.acquire() as conn, conn.transaction():
        if await categories.get_category(conn, body.category) is None:
            raise ApiError(
                400, "unknown_category", f"unknown category {body.category!r}", "category"
            )
        if not await categories.agency_exists(conn, body.agency):
            raise ApiError(400, "unknown_agency", f"unknown agency {body.agency!r}", "agency")
        row = await categories.upsert_rule(
            conn,
            category=body.category,
            region=body.region,
            agency=body.agency,
            sla=body.sla_minutes.model_dump(),
        )
        entry = await audit.write(
            conn,
            actor=current_user(request).username,
            action="routing_rule.put",
            target=f"routing_rule:{row.category}/{row.region}",
            after=_json(RoutingRule.of(row)),
        )
    audit.announce(request.app[HUB_KEY].bus, entry, source=SOURCE)
    return reply(RoutingRule.of(row))


# -- cursors and errors -------------------------------------------------------------------------


def encode_cursor(row: case_rows.CaseRow) -> str:
    """The keyset of the last row of a page, opaque to clients."""
    raw = json.dumps([row.priority_rank, row.sla_due_at.isoformat(), row.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> case_rows.QueueKey:
    """Read a cursor back; 400 naming ``cursor`` when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        rank, due, case_id = json.loads(raw)
        key = (int(rank), datetime.fromisoformat(due), int(case_id))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ApiError(400, "invalid_field", "cursor is not a valid cursor", "cursor") from None
    # The rank goes back to the database as a smallint: a forged one must not reach it.
    if key[1].tzinfo is None or not 0 <= key[0] < len(PRIORITIES) or not 0 <= key[2] <= MAX_ID:
        raise ApiError(400, "invalid_field", "cursor is not a valid cursor", "cursor")
    return key


async def domain_call(call: Awaitable[T]) -> T:
    """Await a domain operation, turning its refusals into API errors."""
    try:
        return await call
    except CaseNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except InvalidReport as exc:
        code = {"category": "unknown_category", "agency": "unknown_agency"}.get(
            exc.field, "invalid_field"
        )
        raise ApiError(400, code, exc.message, exc.field) from None
    except InvalidTransition as exc:
        raise ApiError(409, "invalid_transition", str(exc), "to") from None
    except LinkRefused as exc:
        raise ApiError(409, "link_refused", str(exc), "parent_id") from None


def _case_id(request: web.Request) -> int:
    value = int(request.match_info["id"])
    if not 1 <= value <= MAX_ID:
        raise ApiError(404, "not_found", "no such case")
    return value


def _parse_bbox(value: str) -> tuple[float, float, float, float]:
    try:
        parts = tuple(float(part) for part in value.split(","))
    except ValueError:
        raise ValueError("bbox must be min_lon,min_lat,max_lon,max_lat") from None
    if len(parts) != 4:  # noqa: PLR2004
        raise ValueError("bbox must be min_lon,min_lat,max_lon,max_lat")
    min_lon, min_lat, max_lon, max_lat = parts
    if not (-180 <= min_lon <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90):  # noqa: PLR2004
        raise ValueError("bbox must be min_lon,min_lat,max_lon,max_lat within range, min <= max")
    return min_lon, min_lat, max_lon, max_lat


def _json(model: BaseModel) -> dict[str, Any]:
    """A response model as plain JSON values, for the audit log."""
    return model.model_dump(mode="json")
