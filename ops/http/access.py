"""Who may call what: the roles each declared route admits, enforced for every request.

Access is denied by default: a route without a declaration answers 403 to everyone (and
:func:`ops.http.routes.check_declared` refuses to start an app that has one), so a new route is
never public by accident. Public routes are declared :data:`PUBLIC` explicitly.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from ops.http.errors import ApiError
from ops.http.roles import PUBLIC
from ops.http.routes import declared
from ops.http.sessions import USER_KEY, resolve_session
from ops.users import role_names

_LOGGER = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolve the session and enforce the matched route's declared roles before its handler."""
    resource = request.match_info.route.resource
    if resource is None:  # no route matched: let the router's 404/405 through
        return await handler(request)
    route = declared(request.app).get((request.method, resource.canonical))
    if route is None:
        _LOGGER.error(
            "refused %s %s: the route has no declaration", request.method, resource.canonical
        )
        raise ApiError(403, "forbidden", "this route has no access rule and is refused")
    access = route.access
    if access == PUBLIC:
        return await handler(request)
    user = await resolve_session(request)
    if user is None:
        raise ApiError(401, "unauthenticated", "sign in first")
    if user.role not in access:
        raise ApiError(403, "forbidden", f"requires role: {role_names(sorted(access))}")
    request[USER_KEY] = user
    return await handler(request)
