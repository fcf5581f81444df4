"""The audit log from the web: recording what people do here, and reading it back (supervisors).

Entries are paged newest first by id (keyset paging): ``before_id`` is the last id of the previous
page, so a page never shifts when new entries arrive meanwhile.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from db import audit
from ops.core.events import AUDIT_RECORDED, AuditRecorded
from ops.web.encode import to_jsonable
from ops.web.errors import validation_error
from ops.web.keys import HUB_KEY

#: The bus source of the audit entries the web writes.
SOURCE = "web"
DEFAULT_PAGE = 100
MAX_PAGE = 500

routes = web.RouteTableDef()


async def record(
    request: web.Request,
    *,
    actor: str,
    action: str,
    target: str | None = None,
    before: Any = None,
    after: Any = None,
    detail: dict[str, Any] | None = None,
) -> int:
    """Append an entry on its own and announce it on the bus; return its id.

    Only for entries that record no change of their own (a refused sign-in); a change writes its
    entry in its own transaction with :func:`ops.audit.write`.

    The bus copy leaves ``detail`` out (it may hold client addresses): every live client,
    whatever its role, sees that topic.
    """
    hub = request.app[HUB_KEY]
    async with hub.pool.acquire() as conn:
        entry_id = await audit.append(
            conn,
            actor=actor,
            action=action,
            target=target,
            before=before,
            after=after,
            detail=detail,
        )
    hub.bus.publish(
        AUDIT_RECORDED,
        AuditRecorded(actor=actor, action=action, target=target),
        source=SOURCE,
        key=str(entry_id),
    )
    return entry_id


class AuditQuery(BaseModel):
    """The query string of ``GET /api/v1/audit``."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=DEFAULT_PAGE, ge=1, le=MAX_PAGE)
    before_id: int | None = Field(default=None, ge=1)
    actor: str | None = Field(default=None, min_length=1, max_length=200)
    target: str | None = Field(default=None, min_length=1, max_length=200)


@routes.get("/api/v1/audit", allow_head=False)
async def list_audit(request: web.Request) -> web.Response:
    """Recent audit entries, newest first, with the ``before_id`` of the next page."""
    try:
        query = AuditQuery.model_validate(dict(request.query))
    except ValidationError as exc:
        raise validation_error(exc) from None
    async with request.app[HUB_KEY].pool.acquire() as conn:
        rows = await audit.list_entries(
            conn,
            limit=query.limit,
            before_id=query.before_id,
            actor=query.actor,
            target=query.target,
        )
    entries = [
        {
            "id": row.id,
            "at": row.at.isoformat(),
            "actor": row.actor,
            "action": row.action,
            "target": row.target,
            "before": to_jsonable(row.before),
            "after": to_jsonable(row.after),
            "detail": to_jsonable(row.detail),
        }
        for row in rows
    ]
    next_before = rows[-1].id if len(rows) == query.limit else None
    return web.json_response({"entries": entries, "next_before_id": next_before})
