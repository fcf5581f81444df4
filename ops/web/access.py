"""Who may call what: one table of every route and the roles it admits, enforced for every request.

Access is denied by default: a route missing from :data:`ROUTE_ROLES` answers 403 to everyone
(and :func:`check_table` refuses to start an app that has one), so a new route is never public
by accident. Public routes are marked :data:`PUBLIC` explicitly.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Final, Literal

from aiohttp import web

from ops.users import Role, role_names
from ops.web.errors import ApiError
from ops.web.sessions import USER_KEY, resolve_session

_LOGGER = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Public = Literal["public"]
PUBLIC: Final[Public] = "public"
ANY_ROLE: Final = frozenset(Role)
SUPERVISOR_ONLY: Final = frozenset({Role.SUPERVISOR})
CASE_WORKERS: Final = frozenset({Role.OPERATOR, Role.SUPERVISOR})
WALL_OPERATORS: Final = frozenset({Role.OPERATOR, Role.SUPERVISOR})
DISPATCHERS: Final = frozenset({Role.OPERATOR, Role.SUPERVISOR})
DEVICE_KEEPERS: Final = frozenset({Role.TECHNICIAN, Role.SUPERVISOR})

Access = frozenset[Role] | Public

#: (method, route template) -> PUBLIC or the roles admitted.
ROUTE_ROLES: Final[dict[tuple[str, str], Access]] = {
    # Probes and scrapers carry no session (see ops.web.health for why /metrics is public).
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    # The console shell and its assets; the data they show comes from the API below.
    ("GET", "/"): PUBLIC,
    ("GET", "/static/{path}"): PUBLIC,
    ("GET", "/api/v1/openapi.json"): PUBLIC,
    ("POST", "/api/v1/auth/login"): PUBLIC,
    ("POST", "/api/v1/auth/logout"): ANY_ROLE,
    ("GET", "/api/v1/auth/me"): ANY_ROLE,
    ("GET", "/api/v1/hub/status"): ANY_ROLE,
    ("GET", "/api/v1/live"): ANY_ROLE,
    ("GET", "/api/v1/audit"): SUPERVISOR_ONLY,
    # Devices and alarms (ops.web.devices): everyone reads; technicians and supervisors
    # register devices, send commands, acknowledge and clear alarms.
    ("GET", "/devices"): PUBLIC,
    ("GET", "/api/v1/devices"): ANY_ROLE,
    ("POST", "/api/v1/devices"): DEVICE_KEEPERS,
    ("GET", "/api/v1/devices/{id}"): ANY_ROLE,
    ("PATCH", "/api/v1/devices/{id}"): DEVICE_KEEPERS,
    ("GET", "/api/v1/devices/{id}/health"): ANY_ROLE,
    ("POST", "/api/v1/devices/{id}/commands"): DEVICE_KEEPERS,
    ("GET", "/api/v1/alarms"): ANY_ROLE,
    ("POST", "/api/v1/alarms/{id}/ack"): DEVICE_KEEPERS,
    ("POST", "/api/v1/alarms/{id}/clear"): DEVICE_KEEPERS,
    # Cases (ops.web.cases): everyone reads, operators and supervisors act, supervisors own
    # the catalogue and routing overrides.
    ("GET", "/api/v1/cases"): ANY_ROLE,
    ("POST", "/api/v1/cases"): CASE_WORKERS,
    ("GET", "/api/v1/cases/{id}"): ANY_ROLE,
    ("PATCH", "/api/v1/cases/{id}"): CASE_WORKERS,
    ("POST", "/api/v1/cases/{id}/transitions"): CASE_WORKERS,
    ("POST", "/api/v1/cases/{id}/notes"): CASE_WORKERS,
    ("GET", "/api/v1/cases/{id}/events"): ANY_ROLE,
    ("PUT", "/api/v1/cases/{id}/parent"): CASE_WORKERS,
    ("DELETE", "/api/v1/cases/{id}/parent"): CASE_WORKERS,
    ("PUT", "/api/v1/cases/{id}/agency"): SUPERVISOR_ONLY,
    ("GET", "/api/v1/case-categories"): ANY_ROLE,
    ("PUT", "/api/v1/case-categories/{code}"): SUPERVISOR_ONLY,
    ("GET", "/api/v1/agencies"): ANY_ROLE,
    ("GET", "/api/v1/routing-rules"): ANY_ROLE,
    ("PUT", "/api/v1/routing-rules"): SUPERVISOR_ONLY,
    # The public doors (ops.web.public): rate-limited, no session.
    ("GET", "/report"): PUBLIC,
    ("GET", "/report/anonymous"): PUBLIC,
    ("GET", "/api/v1/public/categories"): PUBLIC,
    ("POST", "/api/v1/public/reports"): PUBLIC,
    ("GET", "/api/v1/public/reports/{code}"): PUBLIC,
    ("POST", "/api/v1/public/reports/{code}/notes"): PUBLIC,
    ("POST", "/api/v1/public/whistleblower"): PUBLIC,
    # Video walls (videowall/web.py): everyone signed in reads; operators push and recall;
    # supervisors shape walls, presets and screens. A paired screen signs in with its token.
    ("GET", "/wall/{name}"): PUBLIC,
    ("GET", "/api/v1/walls"): ANY_ROLE,
    ("GET", "/api/v1/walls/{name}"): ANY_ROLE,
    ("PUT", "/api/v1/walls/{name}"): SUPERVISOR_ONLY,
    ("DELETE", "/api/v1/walls/{name}"): SUPERVISOR_ONLY,
    ("PUT", "/api/v1/walls/{name}/tiles/{index}"): WALL_OPERATORS,
    ("GET", "/api/v1/walls/{name}/presets"): ANY_ROLE,
    ("POST", "/api/v1/walls/{name}/presets"): WALL_OPERATORS,
    ("DELETE", "/api/v1/walls/{name}/presets/{preset}"): SUPERVISOR_ONLY,
    ("POST", "/api/v1/walls/{name}/presets/{preset}/recall"): WALL_OPERATORS,
    ("GET", "/api/v1/walls/{name}/screens"): SUPERVISOR_ONLY,
    ("POST", "/api/v1/walls/{name}/screens"): SUPERVISOR_ONLY,
    ("DELETE", "/api/v1/walls/{name}/screens/{screen}"): SUPERVISOR_ONLY,
    ("POST", "/api/v1/walls/{name}/screens/{screen}/session"): PUBLIC,
    ("GET", "/api/v1/walls/{name}/live"): ANY_ROLE,
    ("GET", "/api/v1/console/settings"): ANY_ROLE,
    ("GET", "/api/v1/map/provinces"): ANY_ROLE,
    # Units and dispatch (ops/web/units.py, dispatch.py): operators dispatch and set unit
    # status; supervisors register units and override availability; everyone reads.
    ("GET", "/api/v1/units"): ANY_ROLE,
    ("POST", "/api/v1/units"): SUPERVISOR_ONLY,
    ("GET", "/api/v1/units/recommend"): ANY_ROLE,
    ("GET", "/api/v1/positions/stats"): ANY_ROLE,
    ("GET", "/api/v1/units/{unit_id}"): ANY_ROLE,
    ("POST", "/api/v1/units/{unit_id}/status"): DISPATCHERS,
    ("GET", "/api/v1/units/{unit_id}/positions"): ANY_ROLE,
    ("POST", "/api/v1/dispatches"): DISPATCHERS,
    ("GET", "/api/v1/dispatches"): ANY_ROLE,
    ("GET", "/api/v1/dispatches/{order_id}"): ANY_ROLE,
    ("POST", "/api/v1/dispatches/{order_id}/acknowledge"): DISPATCHERS,
    ("POST", "/api/v1/dispatches/{order_id}/cancel"): DISPATCHERS,
    ("GET", "/api/v1/shifts/current"): ANY_ROLE,
}


def access_for(method: str, template: str) -> Access | None:
    """The table entry for a route, or None when it has none (and is therefore refused)."""
    return ROUTE_ROLES.get((method, template))


@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolve the session and enforce :data:`ROUTE_ROLES` before any handler runs."""
    resource = request.match_info.route.resource
    if resource is None:  # no route matched: let the router's 404/405 through
        return await handler(request)
    access = access_for(request.method, resource.canonical)
    if access is None:
        _LOGGER.error(
            "refused %s %s: the route has no access entry", request.method, resource.canonical
        )
        raise ApiError(403, "forbidden", "this route has no access rule and is refused")
    if access == PUBLIC:
        return await handler(request)
    user = await resolve_session(request)
    if user is None:
        raise ApiError(401, "unauthenticated", "sign in first")
    if user.role not in access:
        raise ApiError(403, "forbidden", f"requires role: {role_names(sorted(access))}")
    request[USER_KEY] = user
    return await handler(request)


def routes_of(app: web.Application) -> Iterator[tuple[str, str]]:
    """Every (method, route template) the app serves."""
    for route in app.router.routes():
        resource = route.resource
        if resource is not None and route.method != "*":
            yield route.method, resource.canonical


def check_table(app: web.Application) -> None:
    """Refuse an app with a route missing from the table, or a table entry with no route.

    Raises:
        RuntimeError: naming the routes without an entry and the entries without a route.
    """
    served = set(routes_of(app))
    missing = sorted(served - ROUTE_ROLES.keys())
    stale = sorted(ROUTE_ROLES.keys() - served)
    if missing or stale:
        raise RuntimeError(
            "access table out of step with the routes: "
            f"no entry for {missing}, no route for {stale}"
        )
