"""The audit log read back (supervisors), newest first, paged by id.

Keyset paging: ``before_id`` is the last id of the previous page, so a page never shifts when
new entries arrive meanwhile. Entries are written by :func:`ops.http.audit.record`.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from db import audit
from ops.http.keys import HUB_KEY
from ops.http.models import AnyJson, Out, Time
from ops.http.roles import SUPERVISOR_ONLY
from ops.http.routes import Api, read_query, reply

DEFAULT_PAGE = 100
MAX_PAGE = 500

api = Api("audit")


class AuditQuery(BaseModel):
    """The query string of ``GET /api/v1/audit``."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=DEFAULT_PAGE, ge=1, le=MAX_PAGE)
    before_id: int | None = Field(
        default=None, ge=1, description="Only entries older than this id (next_before_id)."
    )
    actor: str | None = Field(default=None, min_length=1, max_length=200)
    target: str | None = Field(default=None, min_length=1, max_length=200)


class AuditEntry(Out):
    """One entry of the audit trail."""

    id: int
    at: Time
    actor: str = Field(description="A username, 'anonymous', or 'cli'.")
    action: str = Field(examples=["auth.login", "user.add"])
    target: str | None = Field(examples=["user:budi"])
    before: AnyJson
    after: AnyJson
    detail: AnyJson


class AuditPage(Out):
    """One page of audit entries, newest first."""

    entries: list[AuditEntry]
    next_before_id: int | None = Field(
        description="Pass as before_id for the next (older) page; null on the last."
    )


@api.get(
    "/api/v1/audit",
    roles=SUPERVISOR_ONLY,
    summary="Audit entries, newest first, paged by id.",
    query=AuditQuery,
    response=AuditPage,
)
async def list_audit(request: web.Request) -> web.Response:
    """Recent audit entries, newest first, with the ``before_id`` of the next page."""
    query = read_query(request, AuditQuery)
    async with request.app[HUB_KEY].pool.acquire() as conn:
        rows = await audit.list_entries(
            conn,
            limit=query.limit,
            before_id=query.before_id,
            actor=query.actor,
            target=query.target,
        )
    next_before = rows[-1].id if len(rows) == query.limit else None
    return reply(
        AuditPage(
            entries=[AuditEntry.model_validate(row) for row in rows], next_before_id=next_before
        )
    )
