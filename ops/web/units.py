"""Units over HTTP: list, register, status and duty, recommendation, positions, current shift.

Literal paths (``recommend``) are registered before ``{unit_id}``, and those words are refused
as unit ids, so the two can never collide.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator

from db import positions as position_rows
from db import units as unit_rows
from ops.dispatch.setup import parts_of
from ops.http.errors import ApiError, read_json
from ops.http.keys import HUB_KEY
from ops.http.roles import ANY_ROLE, DISPATCHERS, SUPERVISOR_ONLY
from ops.http.routes import Api, read_query, reply
from ops.http.sessions import current_user
from ops.shifts.schedule import Schedule
from ops.units import recommend, service
from ops.units.errors import InvalidUnit, UnitNotFound, UnitTaken
from ops.units.model import ID_PATTERN, TEXT_PATTERN, Kind, Status
from ops.web.unit_models import (
    CurrentShift,
    PositionHistory,
    PositionStats,
    Recommendation,
    UnitOut,
    Units,
)

api = Api("units")
_NO_UNIT = {404: "No such unit (code unit_not_found)."}
_ID = re.compile(ID_PATTERN)

MAX_UNITS_PAGE = 10_000
MAX_POSITIONS_PAGE = 5000


class UnitQuery(BaseModel):
    """The query of ``GET /api/v1/units``."""

    model_config = ConfigDict(extra="forbid")

    status: Status | None = None
    kind: Kind | None = None
    limit: int = Field(default=1000, ge=1, le=MAX_UNITS_PAGE)


class RecommendQuery(BaseModel):
    """The query of ``GET /api/v1/units/recommend``."""

    model_config = ConfigDict(extra="forbid")

    case: int = Field(ge=1)
    limit: int = Field(default=10, ge=1, le=recommend.MAX_LIMIT)
    kind: Kind | None = None
    skill: list[str] = Field(default_factory=list, max_length=16)


class StatusChange(BaseModel):
    """The body of ``POST /api/v1/units/{unit_id}/status``: a status, a duty change, or both."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: Status | None = None
    on_duty: bool | None = None
    reason: str | None = Field(default=None, min_length=1, max_length=500, pattern=TEXT_PATTERN)

    @model_validator(mode="after")
    def _something(self) -> StatusChange:
        if self.status is None and self.on_duty is None:
            raise ValueError("give status, on_duty or both")
        return self


class PositionsQuery(BaseModel):
    """The query of ``GET /api/v1/units/{unit_id}/positions``."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=500, ge=1, le=MAX_POSITIONS_PAGE)


@api.get(
    "/api/v1/units",
    roles=ANY_ROLE,
    summary="Units with status, duty and position freshness.",
    query=UnitQuery,
    response=Units,
)
async def list_units(request: web.Request) -> web.Response:
    """Every unit (or those of one status or kind), with freshness."""
    query = read_query(request, UnitQuery)
    hub = request.app[HUB_KEY]
    async with hub.pool.acquire() as conn:
        rows = await unit_rows.list_units(
            conn, status=query.status, kind=query.kind, limit=query.limit
        )
    stale_after = hub.config.dispatch.stale_after
    now = datetime.now(UTC)
    return reply(Units(units=[UnitOut.of(row, now, stale_after) for row in rows]))


@api.post(
    "/api/v1/units",
    roles=SUPERVISOR_ONLY,
    summary="Register a unit and its channels (tried in order).",
    body=service.UnitSpec,
    responses={201: UnitOut},
    errors={409: "A unit with this id or callsign exists (code unit_taken)."},
)
async def create_unit(request: web.Request) -> web.Response:
    """Register a unit."""
    spec = await read_json(request, service.UnitSpec)
    hub = request.app[HUB_KEY]
    try:
        row = await service.create_unit(
            hub.pool,
            hub.bus,
            spec,
            actor=current_user(request).username,
            schedule=Schedule.from_config(hub.config),
        )
    except UnitTaken as exc:
        raise ApiError(409, "unit_taken", str(exc), "id") from None
    except InvalidUnit as exc:
        raise ApiError(400, "invalid_field", exc.message, exc.field) from None
    return reply(UnitOut.of(row, datetime.now(UTC), hub.config.dispatch.stale_after), status=201)


@api.get(
    "/api/v1/units/recommend",
    roles=ANY_ROLE,
    summary="Available on-duty units ranked for a case, with the reasons for each place.",
    description="Ranked by distance, the skills and kinds the case's category needs, and duty.",
    query=RecommendQuery,
    response=Recommendation,
    errors={
        404: "No such case (code case_not_found).",
        409: "The case has no location (code case_without_location).",
    },
)
async def recommend_units(request: web.Request) -> web.Response:
    """Available on-duty units ranked for a case, each with the reasons for its place."""
    query = read_query(request, RecommendQuery)
    hub = request.app[HUB_KEY]
    now = datetime.now(UTC)
    stale_after = hub.config.dispatch.stale_after
    try:
        result = await recommend.recommend(
            hub.pool,
            query.case,
            now=now,
            stale_after=stale_after,
            limit=query.limit,
            kind=query.kind,
            skills=query.skill,
        )
    except recommend.CaseMissing as exc:
        raise ApiError(404, "case_not_found", str(exc), "case") from None
    except recommend.CaseNotLocated as exc:
        raise ApiError(409, "case_without_location", str(exc), "case") from None
    case = result.case
    return reply(
        Recommendation.model_validate(
            {
                "case": {
                    "id": case.id,
                    "number": case.number,
                    "category": case.category,
                    "lat": case.lat,
                    "lon": case.lon,
                },
                "need": {"kinds": list(result.need.kinds), "skills": list(result.need.skills)},
                "stale_after_s": stale_after,
                "units": [
                    {
                        "rank": item.rank,
                        "unit": UnitOut.of(item.unit, now, stale_after),
                        "distance_km": None
                        if item.distance_km is None
                        else round(item.distance_km, 3),
                        "score": round(item.score, 3),
                        "stale": item.stale,
                        "reasons": list(item.reasons),
                    }
                    for item in result.ranked
                ],
            }
        )
    )


@api.get(
    "/api/v1/positions/stats",
    roles=ANY_ROLE,
    summary="Positions accepted and dropped per source and reason since the hub started.",
    response=PositionStats,
)
async def position_stats(request: web.Request) -> web.Response:
    """Positions accepted and dropped per source and reason since the hub started."""
    parts = parts_of(request.app[HUB_KEY])
    return reply(
        PositionStats.model_validate(
            {**parts.ingestor.stats(), "events_rejected": dict(parts.inbound.rejected)}
        )
    )


@api.get(
    "/api/v1/shifts/current",
    roles=ANY_ROLE,
    summary="The shift on now, when it started and ends, and the whole schedule.",
    response=CurrentShift,
)
async def current_shift(request: web.Request) -> web.Response:
    """The shift on now, when it started and ends, and the whole schedule."""
    schedule = Schedule.from_config(request.app[HUB_KEY].config)
    period = schedule.at(datetime.now(UTC))
    return reply(
        CurrentShift.model_validate(
            {
                "shift": period.name,
                "started_at": period.started_at.isoformat(),
                "ends_at": period.ends_at.isoformat(),
                "timezone": schedule.zone.key,
                "shifts": [
                    {"name": shift.name, "start": shift.start.strftime("%H:%M")}
                    for shift in schedule.shifts
                ],
            }
        )
    )


@api.get(
    "/api/v1/units/{unit_id}",
    roles=ANY_ROLE,
    summary="One unit.",
    response=UnitOut,
    errors=_NO_UNIT,
)
async def get_unit(request: web.Request) -> web.Response:
    """One unit."""
    hub = request.app[HUB_KEY]
    row = await _unit(request)
    return reply(UnitOut.of(row, datetime.now(UTC), hub.config.dispatch.stale_after))


@api.post(
    "/api/v1/units/{unit_id}/status",
    roles=DISPATCHERS,
    summary="Set a unit's status and/or duty (audited, shown live).",
    body=StatusChange,
    response=UnitOut,
    errors=_NO_UNIT,
)
async def change_status(request: web.Request) -> web.Response:
    """Set a unit's status and/or duty (audited, shown live)."""
    unit_id = _unit_id(request)
    change = await read_json(request, StatusChange)
    hub = request.app[HUB_KEY]
    try:
        row = await service.change_status(
            hub.pool,
            hub.bus,
            unit_id,
            actor=current_user(request).username,
            status=change.status,
            on_duty=change.on_duty,
            reason=change.reason,
        )
    except UnitNotFound as exc:
        raise ApiError(404, "unit_not_found", str(exc)) from None
    except InvalidUnit as exc:
        raise ApiError(400, "invalid_field", exc.message, exc.field) from None
    return reply(UnitOut.of(row, datetime.now(UTC), hub.config.dispatch.stale_after))


@api.get(
    "/api/v1/units/{unit_id}/positions",
    roles=ANY_ROLE,
    summary="A unit's position history, newest first.",
    query=PositionsQuery,
    response=PositionHistory,
    errors=_NO_UNIT,
)
async def positions(request: web.Request) -> web.Response:
    """A unit's position history, newest first."""
    query = read_query(request, PositionsQuery)
    row = await _unit(request)
    async with request.app[HUB_KEY].pool.acquire() as conn:
        history = await position_rows.history(conn, row.id, limit=query.limit)
    return reply(
        PositionHistory.model_validate(
            {
                "unit": row.id,
                "positions": [
                    {
                        "at": p.at.isoformat(),
                        "lat": p.lat,
                        "lon": p.lon,
                        "source": p.source,
                        "received_at": p.received_at.isoformat(),
                    }
                    for p in history
                ],
            }
        )
    )


def _unit_id(request: web.Request) -> str:
    unit_id = request.match_info["unit_id"]
    if not _ID.fullmatch(unit_id):
        raise ApiError(404, "unit_not_found", f"no unit {unit_id!r}")
    return unit_id


async def _unit(request: web.Request) -> unit_rows.UnitRow:
    try:
        return await service.get_unit(request.app[HUB_KEY].pool, _unit_id(request))
    except UnitNotFound as exc:
        raise ApiError(404, "unit_not_found", str(exc)) from None
