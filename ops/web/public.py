"""The public doors: the report form, the anonymous whistleblower form, and tracking.

No sign-in. Submissions and lookups are rate-limited per client address, in memory only. A
whistleblower's request is never tied to its address: the limiter keys it by a keyed hash
whose key lives only in this process, nothing about the request is logged, and the report
model refuses any identity field. Tracking shows a status timeline and nothing private.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from db import categories
from ops.cases import service
from ops.cases.intake import IncomingReport, submit_report
from ops.cases.model import MAX_DESCRIPTION, MAX_NOTE, MAX_SHORT, MAX_TITLE, CaseText
from ops.core.config import CasesConfig
from ops.core.ratelimit import RateLimiter
from ops.http.assets import asset_response
from ops.http.errors import ApiError, read_json
from ops.http.keys import HUB_KEY
from ops.http.roles import PUBLIC
from ops.http.routes import HTML, Api, reply
from ops.web.case_models import (
    FollowUpReceived,
    PublicCategories,
    PublicCategory,
    PublicReceipt,
    PublicStatus,
    WhistleblowerReceipt,
)
from ops.web.cases import domain_call

api = Api("public")
_LIMITED = {429: "Too many requests from this address (code too_many_requests); see Retry-After."}
_CODE = {
    "type": "string",
    "description": "A tracking code (LP-…) or a whistleblower's follow-up code (WB-…).",
}
_NO_CODE = {404: "No report has this code (code not_found)."}


class PublicLimits:
    """The public endpoints' limiters and the process-local key that hides whistleblowers."""

    def __init__(self, config: CasesConfig) -> None:
        self.submissions = RateLimiter.per_minute(config.public_reports_per_minute)
        self.lookups = RateLimiter.per_minute(config.public_lookups_per_minute)
        self._key = secrets.token_bytes(32)

    def blind(self, address: str) -> str:
        """A keyed digest of a client address: countable, never reversible or logged."""
        return hmac.new(self._key, address.encode(), hashlib.sha256).hexdigest()


PUBLIC_LIMITS_KEY = web.AppKey("public_limits", PublicLimits)


class WhistleblowerReport(BaseModel):
    """The anonymous form: no field for a name, contact or anything else about the reporter."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    category: CaseText = Field(min_length=1, max_length=32)
    description: CaseText = Field(min_length=1, max_length=MAX_DESCRIPTION)
    title: CaseText | None = Field(default=None, max_length=MAX_TITLE)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    address: CaseText | None = Field(default=None, max_length=MAX_SHORT)
    region: CaseText | None = Field(default=None, max_length=MAX_SHORT)


class PublicReport(WhistleblowerReport):
    """The public form: the anonymous form's fields, plus who the reporter is if they say."""

    name: CaseText | None = Field(default=None, max_length=MAX_SHORT)
    contact: CaseText | None = Field(default=None, max_length=MAX_SHORT)


class FollowUp(BaseModel):
    """More information from the holder of a follow-up code."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    body: CaseText = Field(min_length=1, max_length=MAX_NOTE)


def install(app: web.Application, config: CasesConfig) -> None:
    """Add the limiters (per app, so each app counts on its own)."""
    app[PUBLIC_LIMITS_KEY] = PublicLimits(config)


@api.get("/report", roles=PUBLIC, summary="The public report form (and tracking).", response=HTML)
async def report_page(request: web.Request) -> web.FileResponse:
    """The public report form."""
    return asset_response(request, "report.html")


@api.get(
    "/report/anonymous",
    roles=PUBLIC,
    summary="The anonymous whistleblower form.",
    response=HTML,
)
async def whistleblower_page(request: web.Request) -> web.FileResponse:
    """The anonymous whistleblower form."""
    return asset_response(request, "whistleblower.html")


@api.get(
    "/api/v1/public/categories",
    roles=PUBLIC,
    summary="Active categories for the public forms.",
    response=PublicCategories,
)
async def public_categories(request: web.Request) -> web.Response:
    """The active categories, for the forms' pickers."""
    async with request.app[HUB_KEY].pool.acquire() as conn:
        rows = await categories.list_categories(conn, active_only=True)
    return reply(PublicCategories(categories=[PublicCategory.model_validate(row) for row in rows]))


@api.post(
    "/api/v1/public/reports",
    roles=PUBLIC,
    summary="File a public report; 201 with a tracking code once committed.",
    body=PublicReport,
    responses={201: PublicReceipt},
    errors=_LIMITED,
)
async def submit_public(request: web.Request) -> web.Response:
    """File a public report; 201 with a tracking code once it is committed."""
    limits = request.app[PUBLIC_LIMITS_KEY]
    _limit(limits.submissions, ("report", request.remote or "unknown"))
    body = await read_json(request, PublicReport)
    hub = request.app[HUB_KEY]
    report = IncomingReport(
        channel="public",
        category=body.category,
        description=body.description,
        title=body.title,
        lat=body.lat,
        lon=body.lon,
        address=body.address,
        region=body.region,
        reporter_name=body.name,
        reporter_contact=body.contact,
        tracking="public",
        actor="public",
    )
    ref = await domain_call(submit_report(hub.pool, hub.bus, report, config=hub.config.cases))
    return reply(
        PublicReceipt.model_validate(
            {"number": ref.number, "status": ref.status, "tracking_code": ref.tracking_code}
        ),
        status=201,
    )


@api.post(
    "/api/v1/public/whistleblower",
    roles=PUBLIC,
    summary="File an anonymous report; 201 with a secret follow-up code.",
    description=(
        "No identity is accepted (unknown fields are refused) and the client address is "
        "neither stored nor logged with it."
    ),
    body=WhistleblowerReport,
    responses={201: WhistleblowerReceipt},
    errors=_LIMITED,
)
async def submit_whistleblower(request: web.Request) -> web.Response:
    """File an anonymous report; 201 with the secret follow-up code once it is committed."""
    limits = request.app[PUBLIC_LIMITS_KEY]
    _limit(limits.submissions, ("whistleblower", limits.blind(request.remote or "unknown")))
    body = await read_json(request, WhistleblowerReport)
    hub = request.app[HUB_KEY]
    report = IncomingReport(
        channel="whistleblower",
        category=body.category,
        description=body.description,
        title=body.title,
        lat=body.lat,
        lon=body.lon,
        address=body.address,
        region=body.region,
        anonymous=True,
        tracking="secret",
        actor="anonymous",
    )
    ref = await domain_call(submit_report(hub.pool, hub.bus, report, config=hub.config.cases))
    return reply(
        WhistleblowerReceipt.model_validate(
            {"number": ref.number, "status": ref.status, "follow_up_code": ref.tracking_code}
        ),
        status=201,
    )


@api.get(
    "/api/v1/public/reports/{code}",
    roles=PUBLIC,
    summary="A report's public status and timeline (nothing private).",
    path_params={"code": _CODE},
    response=PublicStatus,
    errors={**_NO_CODE, **_LIMITED},
)
async def track(request: web.Request) -> web.Response:
    """The public status of a report and its timeline; 404 for any unknown code."""
    limits = request.app[PUBLIC_LIMITS_KEY]
    _limit(limits.lookups, ("lookup", limits.blind(request.remote or "unknown")))
    view = await domain_call(
        service.public_view(request.app[HUB_KEY].pool, request.match_info["code"])
    )
    return reply(PublicStatus.of(view))


@api.post(
    "/api/v1/public/reports/{code}/notes",
    roles=PUBLIC,
    summary="The holder of a follow-up code (WB-…) adds information.",
    path_params={"code": _CODE},
    body=FollowUp,
    responses={201: FollowUpReceived},
    errors={403: "A tracking code (LP-…) cannot add information.", **_NO_CODE, **_LIMITED},
)
async def follow_up(request: web.Request) -> web.Response:
    """The holder of a whistleblower follow-up code adds information."""
    limits = request.app[PUBLIC_LIMITS_KEY]
    _limit(limits.lookups, ("lookup", limits.blind(request.remote or "unknown")))
    code = request.match_info["code"]
    if not code.strip().upper().startswith("WB-"):
        raise ApiError(
            403, "forbidden", "only a whistleblower's follow-up code can add information", "code"
        )
    body = await read_json(request, FollowUp)
    hub = request.app[HUB_KEY]
    at = await domain_call(service.add_reporter_note(hub.pool, hub.bus, code, body.body))
    return reply(FollowUpReceived(received_at=at), status=201)


def _limit(limiter: RateLimiter, key: tuple[str, str]) -> None:
    verdict = limiter.attempt(key)
    if not verdict.allowed:
        retry = max(1, round(verdict.retry_after))
        raise ApiError(
            429,
            "too_many_requests",
            f"too many requests; try again in {retry} s",
            headers={"Retry-After": str(retry)},
        )
