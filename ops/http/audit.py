"""Recording what people do over the web in the audit log, and announcing it on the bus."""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from db import audit
from ops.core.events import AUDIT_RECORDED, AuditRecorded
from ops.http.keys import HUB_KEY

#: The bus source of the audit entries the web writes.
SOURCE: Final = "web"
#: The actor of what nobody signed in did (failed logins, refused screen tokens).
ANONYMOUS: Final = "anonymous"


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

    Only for entries that record no change of their own (a refused sign-in, a wrong screen
    token); a change writes its entry in its own transaction with :func:`ops.audit.write`.

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
