"""Dispatches over HTTP: send units to a case, follow the delivery ladder, acknowledge, cancel.

``POST /api/v1/dispatches`` answers 201 only after the order and its outbox copies are
committed, so an accepted dispatch is never lost, whatever happens to the hub next. The service
writes the audit entries (create, acknowledge, cancel) in the same transaction as the change.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ops.dispatch.service import (
    MAX_UNITS_PER_ORDER,
    DispatchRefused,
    OrderNotFound,
)
from ops.dispatch.setup import parts_of
from ops.http.errors import ApiError, read_json
from ops.http.keys import HUB_KEY
from ops.http.roles import ANY_ROLE, DISPATCHERS
from ops.http.routes import Api, read_query, reply
from ops.http.sessions import current_user
from ops.units import recommend
from ops.units.errors import UnitNotFound
from ops.units.model import ID_PATTERN, TEXT_PATTERN
from ops.users import Role
from ops.web.unit_models import AcknowledgeResult, OrderOut, Orders

api = Api("dispatch")
_NO_ORDER = {404: "No such order (code order_not_found)."}

_ORDER_ID = re.compile(r"^[0-9a-z]{8,32}$")
MAX_MESSAGE = 1000
MAX_ORDERS_PAGE = 200


class DispatchRequest(BaseModel):
    """The body of ``POST /api/v1/dispatches``: ``unit`` or ``units``, not both."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    case: int = Field(ge=1)
    unit: str | None = Field(default=None, pattern=ID_PATTERN)
    units: list[str] | None = Field(default=None, min_length=1, max_length=MAX_UNITS_PER_ORDER)
    message: str = Field(min_length=1, max_length=MAX_MESSAGE, pattern=TEXT_PATTERN)
    auto_escalate: bool | None = None
    override: bool = False
    override_reason: str | None = Field(
        default=None, min_length=1, max_length=500, pattern=TEXT_PATTERN
    )

    @model_validator(mode="after")
    def _one_way(self) -> DispatchRequest:
        if (self.unit is None) == (self.units is None):
            raise ValueError("give unit or units (not both)")
        if self.override and self.override_reason is None:
            raise ValueError("an override needs override_reason")
        if not self.message.strip():
            raise ValueError("message must not be blank")
        for unit_id in self.units or ():
            if not re.fullmatch(ID_PATTERN, unit_id):
                raise ValueError(f"units: {unit_id!r} is not a unit id")
        return self

    @property
    def unit_ids(self) -> list[str]:
        """Every unit asked for."""
        return [self.unit] if self.unit is not None else list(self.units or ())


class AcknowledgeRequest(BaseModel):
    """The body of ``POST /api/v1/dispatches/{order_id}/acknowledge``.

    For an acknowledgement a person received by other means (a phone call, voice radio).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    unit: str = Field(pattern=ID_PATTERN)
    via: str = Field(default="operator", pattern=r"^[a-z_]{1,32}$")


class CancelRequest(BaseModel):
    """The body of ``POST /api/v1/dispatches/{order_id}/cancel``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: str = Field(min_length=1, max_length=500, pattern=TEXT_PATTERN)


class OrdersQuery(BaseModel):
    """The query of ``GET /api/v1/dispatches``."""

    model_config = ConfigDict(extra="forbid")

    open: bool = False
    case: int | None = Field(default=None, ge=1)
    limit: int = Field(default=50, ge=1, le=MAX_ORDERS_PAGE)


@api.post(
    "/api/v1/dispatches",
    roles=DISPATCHERS,
    summary="Send units to a case: one order, its first copies queued; 201 once committed.",
    description="Overriding availability (override, override_reason) is for supervisors only.",
    body=DispatchRequest,
    responses={201: OrderOut},
    errors={
        404: "No such case (code case_not_found) or unit (code unit_not_found).",
        409: "A unit is not available, or the case is closed (the code says which).",
    },
)
async def create_dispatch(request: web.Request) -> web.Response:
    """Send units to a case: one order, its first copies queued; 201 once committed."""
    body = await read_json(request, DispatchRequest)
    user = current_user(request)
    if body.override and user.role != Role.SUPERVISOR:
        raise ApiError(403, "forbidden", "only a supervisor may override availability", "override")
    service = parts_of(request.app[HUB_KEY]).service
    try:
        detail = await service.dispatch(
            case_id=body.case,
            unit_ids=body.unit_ids,
            message=body.message.strip(),
            actor=user.username,
            auto_escalate=body.auto_escalate,
            override=body.override,
            override_reason=body.override_reason,
        )
    except recommend.CaseMissing as exc:
        raise ApiError(404, "case_not_found", str(exc), "case") from None
    except UnitNotFound as exc:
        raise ApiError(404, "unit_not_found", str(exc), "units" if body.units else "unit") from None
    except DispatchRefused as exc:
        raise ApiError(409, exc.code, exc.message) from None
    return reply(OrderOut.of(detail), status=201)


@api.get(
    "/api/v1/dispatches",
    roles=ANY_ROLE,
    summary="Orders newest first (only open ones with open=true), each with its ladder.",
    query=OrdersQuery,
    response=Orders,
)
async def list_dispatches(request: web.Request) -> web.Response:
    """Orders newest first (only open ones with ``open=true``), each with its ladder."""
    query = read_query(request, OrdersQuery)
    service = parts_of(request.app[HUB_KEY]).service
    orders = await service.list_orders(open_only=query.open, case_id=query.case, limit=query.limit)
    return reply(Orders(orders=[OrderOut.of(detail) for detail in orders]))


@api.get(
    "/api/v1/dispatches/{order_id}",
    roles=ANY_ROLE,
    summary="One order with its assignments, its copies on every channel and its history.",
    response=OrderOut,
    errors=_NO_ORDER,
)
async def get_dispatch(request: web.Request) -> web.Response:
    """One order with its assignments, its copies on every channel and its history."""
    service = parts_of(request.app[HUB_KEY]).service
    try:
        detail = await service.detail(_order_id(request))
    except OrderNotFound as exc:
        raise ApiError(404, "order_not_found", str(exc)) from None
    return reply(OrderOut.of(detail))


@api.post(
    "/api/v1/dispatches/{order_id}/acknowledge",
    roles=DISPATCHERS,
    summary="Record an acknowledgement a person received; a repeated one changes nothing.",
    body=AcknowledgeRequest,
    response=AcknowledgeResult,
    errors=_NO_ORDER,
)
async def acknowledge(request: web.Request) -> web.Response:
    """Record an acknowledgement a person received; a repeated one changes nothing."""
    order_id = _order_id(request)
    body = await read_json(request, AcknowledgeRequest)
    user = current_user(request)
    service = parts_of(request.app[HUB_KEY]).service
    try:
        changed = await service.acknowledge(
            order_id, body.unit, channel=body.via, actor=user.username
        )
        detail = await service.detail(order_id)
    except OrderNotFound as exc:
        raise ApiError(404, "order_not_found", str(exc)) from None
    return reply(AcknowledgeResult(changed=changed, order=OrderOut.of(detail)))


@api.post(
    "/api/v1/dispatches/{order_id}/cancel",
    roles=DISPATCHERS,
    summary="Stop an open order; units it still holds become available.",
    body=CancelRequest,
    response=OrderOut,
    errors={**_NO_ORDER, 409: "The order is closed already (the code says how)."},
)
async def cancel(request: web.Request) -> web.Response:
    """Stop an open order; units it still holds become available."""
    order_id = _order_id(request)
    body = await read_json(request, CancelRequest)
    user = current_user(request)
    service = parts_of(request.app[HUB_KEY]).service
    try:
        detail = await service.cancel(order_id, actor=user.username, reason=body.reason)
    except OrderNotFound as exc:
        raise ApiError(404, "order_not_found", str(exc)) from None
    except DispatchRefused as exc:
        raise ApiError(409, exc.code, exc.message) from None
    return reply(OrderOut.of(detail))


def _order_id(request: web.Request) -> str:
    order_id = request.match_info["order_id"]
    if not _ORDER_ID.fullmatch(order_id):
        raise ApiError(404, "order_not_found", f"no order {order_id!r}")
    return order_id


def _time(value: Any) -> str | None:
    return None if value is None else str(value.isoformat())
