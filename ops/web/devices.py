"""Devices, their health history, alarms and commands over HTTP, and the technician page.

Everyone signed in reads; technicians and supervisors register devices, acknowledge and clear
alarms and send commands, each audited with its actor. Live changes reach the page over the live
socket (``device.health``, ``device.alarm``), so these routes serve snapshots and actions.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Final

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from db import alarms as alarm_rows
from db import devices as device_rows
from db import health_samples
from db.devices import DeviceRow
from ops.devicehealth import service_of
from ops.devicehealth.service import (
    AlarmCleared,
    CommandRefused,
    DeviceExists,
    DeviceHealthService,
    DeviceNotFound,
)
from ops.http.assets import asset_response
from ops.http.errors import ApiError, read_json
from ops.http.keys import HUB_KEY
from ops.http.roles import ANY_ROLE, DEVICE_KEEPERS, PUBLIC
from ops.http.routes import HTML, Api, read_query, reply
from ops.http.sessions import current_user
from ops.web.device_models import (
    AlarmOut,
    AlarmPage,
    CommandReply,
    DeviceDetail,
    DeviceEvent,
    DeviceOut,
    Devices,
    FigureSpec,
    HealthBucket,
    HealthHistory,
    HealthSample,
    Threshold,
)

api = Api("devices")
_NO_DEVICE = {404: "No such device (code not_found)."}
_NO_ALARM = {404: "No such alarm (code not_found)."}

DEVICE_ID_PATTERN: Final = r"^[A-Za-z0-9_.:-]{1,128}$"
KIND_PATTERN: Final = r"^[a-z0-9_]{1,64}$"
STATES: Final = ("unknown", "online", "degraded", "offline")
ALARM_STATUSES: Final = ("active", "open", "acknowledged", "cleared")
DEFAULT_HISTORY = dt.timedelta(hours=1)
MAX_HISTORY = dt.timedelta(days=31)
DEFAULT_BUCKETS = 500
MAX_BUCKETS = 2000
RECENT_EVENTS = 50
DEFAULT_ALARM_PAGE = 100
PAGE_FILE = "devices/index.html"


class DeviceFields(BaseModel):
    """What a person may set on a device."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    site: str | None = Field(default=None, min_length=1, max_length=200)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    tags: list[str] = Field(default_factory=list, max_length=32)
    adapter: str | None = Field(default=None, min_length=1, max_length=64)
    attributes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("tags")
    @classmethod
    def _short_tags(cls, tags: list[str]) -> list[str]:
        if any(not 1 <= len(tag) <= 64 for tag in tags):  # noqa: PLR2004
            raise ValueError("each tag must be 1-64 characters")
        return tags


class DeviceCreate(DeviceFields):
    """``POST /api/v1/devices``: register a device by hand."""

    id: str = Field(pattern=DEVICE_ID_PATTERN)
    kind: str = Field(pattern=KIND_PATTERN)


class DeviceUpdate(BaseModel):
    """``PATCH /api/v1/devices/{id}``: change some of a device's registration."""

    model_config = ConfigDict(extra="forbid")

    kind: str | None = Field(default=None, pattern=KIND_PATTERN)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    site: str | None = Field(default=None, min_length=1, max_length=200)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    tags: list[str] | None = Field(default=None, max_length=32)
    adapter: str | None = Field(default=None, min_length=1, max_length=64)
    attributes: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _kind_not_null(self) -> DeviceUpdate:
        if "kind" in self.model_fields_set and self.kind is None:
            raise ValueError("kind cannot be null")
        return self


class CommandRequest(BaseModel):
    """``POST /api/v1/devices/{id}/commands``."""

    model_config = ConfigDict(extra="forbid")

    command: str = Field(pattern=KIND_PATTERN)
    args: dict[str, Any] = Field(default_factory=dict)


class DeviceQuery(BaseModel):
    """The query string of ``GET /api/v1/devices``."""

    model_config = ConfigDict(extra="forbid")

    kind: str | None = Field(default=None, pattern=KIND_PATTERN)
    site: str | None = Field(default=None, min_length=1, max_length=200)
    state: str | None = Field(default=None, pattern="^(unknown|online|degraded|offline)$")


class HealthQuery(BaseModel):
    """The query string of ``GET /api/v1/devices/{id}/health``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    since: dt.datetime | None = Field(default=None, alias="from")
    until: dt.datetime | None = Field(default=None, alias="to")
    buckets: int = Field(default=DEFAULT_BUCKETS, ge=1, le=MAX_BUCKETS)

    @model_validator(mode="after")
    def _aware(self) -> HealthQuery:
        for value in (self.since, self.until):
            if value is not None and value.tzinfo is None:
                raise ValueError("times need a UTC offset, e.g. 2026-01-01T00:00:00Z")
        return self


class AlarmQuery(BaseModel):
    """The query string of ``GET /api/v1/alarms``."""

    model_config = ConfigDict(extra="forbid")

    status: str | None = Field(default=None, pattern="^(active|open|acknowledged|cleared)$")
    device_id: str | None = Field(default=None, pattern=DEVICE_ID_PATTERN)
    limit: int = Field(default=DEFAULT_ALARM_PAGE, ge=1, le=alarm_rows.MAX_LIMIT)
    before_id: int | None = Field(default=None, ge=1)


# -- pages -------------------------------------------------------------------------------------


@api.get(
    "/devices",
    roles=PUBLIC,
    summary="The technician page: devices, health, charts, alarms, commands.",
    response=HTML,
)
async def devices_page(request: web.Request) -> web.FileResponse:
    """The technician page (its data comes from the API below)."""
    return asset_response(request, PAGE_FILE)


# -- devices -----------------------------------------------------------------------------------


@api.get(
    "/api/v1/devices",
    roles=ANY_ROLE,
    summary="Every device with its live health.",
    query=DeviceQuery,
    response=Devices,
)
async def list_devices(request: web.Request) -> web.Response:
    """Every device with its live health, filtered by kind, site and state."""
    query = read_query(request, DeviceQuery)
    service = _service(request)
    async with request.app[HUB_KEY].pool.acquire() as conn:
        rows = await device_rows.list_devices(conn, kind=query.kind, site=query.site)
    devices = [_device(service, row) for row in rows]
    if query.state is not None:
        devices = [device for device in devices if device.state == query.state]
    return reply(Devices(devices=devices))


@api.post(
    "/api/v1/devices",
    roles=DEVICE_KEEPERS,
    summary="Register a device by hand (a device first seen through its reports is adopted).",
    body=DeviceCreate,
    responses={201: DeviceOut},
    errors={409: "The device is registered already (code device_exists)."},
)
async def register_device(request: web.Request) -> web.Response:
    """Register a device by hand (it may already report: the registration then wins)."""
    body = await read_json(request, DeviceCreate)
    user = current_user(request)
    try:
        row = await _service(request).actions.register(
            body.id, body.model_dump(exclude={"id"}), actor=user.username
        )
    except DeviceExists:
        raise ApiError(
            409, "device_exists", f"device {body.id} is registered already", "id"
        ) from None
    return reply(_device(_service(request), row), status=201)


@api.get(
    "/api/v1/devices/{id}",
    roles=ANY_ROLE,
    summary="One device with its figures, kind rules, active alarms and recent events.",
    response=DeviceDetail,
    errors=_NO_DEVICE,
)
async def get_device(request: web.Request) -> web.Response:
    """One device with its figures, kind rules, active alarms and recent events."""
    device_id = request.match_info["id"]
    parts = service_of(request.app[HUB_KEY])
    service = parts.service
    async with request.app[HUB_KEY].pool.acquire() as conn:
        row = await device_rows.get_device(conn, device_id)
        if row is None:
            raise ApiError(404, "not_found", f"no device {device_id}")
        alarms = await alarm_rows.list_alarms(conn, status="active", device_id=device_id)
        events = await device_rows.recent_events(conn, device_id, limit=RECENT_EVENTS)
    rules = service.policy.rules(row.kind)
    return reply(
        DeviceDetail.model_validate(
            {
                **dict(_device(service, row)),
                "figure_specs": [FigureSpec.model_validate(f) for f in rules.figures],
                "thresholds": [Threshold.model_validate(t) for t in rules.thresholds],
                "alarms": [AlarmOut.of(alarm) for alarm in alarms],
                "events": [DeviceEvent.model_validate(e) for e in events],
                "rejected_input": parts.devicebus.rejected_from(device_id),
            }
        )
    )


@api.patch(
    "/api/v1/devices/{id}",
    roles=DEVICE_KEEPERS,
    summary="Change a device's registration.",
    body=DeviceUpdate,
    response=DeviceOut,
    errors=_NO_DEVICE,
)
async def update_device(request: web.Request) -> web.Response:
    """Change a device's registration; what a device announces no longer overrides it."""
    device_id = request.match_info["id"]
    body = await read_json(request, DeviceUpdate)
    user = current_user(request)
    changes = body.model_dump(exclude_unset=True)
    try:
        row = await _service(request).actions.update(device_id, changes, actor=user.username)
    except DeviceNotFound:
        raise ApiError(404, "not_found", f"no device {device_id}") from None
    return reply(_device(_service(request), row))


@api.get(
    "/api/v1/devices/{id}/health",
    roles=ANY_ROLE,
    summary="The device's health history between from and to (default: the last hour).",
    query=HealthQuery,
    response=HealthHistory,
    errors=_NO_DEVICE,
)
async def device_health(request: web.Request) -> web.Response:
    """The device's history between ``from`` and ``to`` (default: the last hour).

    At most ``buckets`` samples come back as they are (``resolution: raw``); a range holding
    more comes back as at most ``buckets`` time buckets of equal width, each with the avg, min
    and max of every numeric figure and the worst state (``resolution: "<seconds>s"``).
    """
    device_id = request.match_info["id"]
    query = read_query(request, HealthQuery)
    until = query.until or dt.datetime.now(dt.UTC)
    since = query.since or until - DEFAULT_HISTORY
    if since >= until:
        raise ApiError(400, "invalid_field", "from must be before to", "from")
    if until - since > MAX_HISTORY:
        raise ApiError(400, "invalid_field", "at most 31 days at once", "from")
    buckets: list[HealthBucket] = []
    resolution = "raw"
    async with request.app[HUB_KEY].pool.acquire() as conn:
        if await device_rows.get_device(conn, device_id) is None:
            raise ApiError(404, "not_found", f"no device {device_id}")
        samples = await health_samples.query(
            conn, device_id, since=since, until=until, limit=query.buckets + 1
        )
        if len(samples) > query.buckets:
            width = _bucket_width(since, until, query.buckets)
            rows = await health_samples.downsample(
                conn, device_id, since=since, until=until, width=width
            )
            buckets = [_bucket(row, width, until) for row in rows]
            resolution = f"{int(width.total_seconds())}s"
            samples = []
    return reply(
        HealthHistory(
            device_id=device_id,
            since=since,
            until=until,
            resolution=resolution,
            samples=[HealthSample.model_validate(sample) for sample in samples],
            buckets=buckets,
        )
    )


@api.post(
    "/api/v1/devices/{id}/commands",
    roles=DEVICE_KEEPERS,
    summary="Send a command to a device and answer with its reply.",
    body=CommandRequest,
    response=CommandReply,
    errors={
        **_NO_DEVICE,
        409: "The device does not accept this command (code command_not_accepted).",
        504: "The device did not answer in time (code device_timeout).",
    },
)
async def send_command(request: web.Request) -> web.Response:
    """Send a command to a device and answer with its reply (504 when it does not answer)."""
    device_id = request.match_info["id"]
    body = await read_json(request, CommandRequest)
    user = current_user(request)
    parts = service_of(request.app[HUB_KEY])
    try:
        answer = await parts.service.command(
            device_id,
            body.command,
            body.args,
            by=user.username,
            timeout=parts.devicebus.command_timeout + 1.0,
        )
    except DeviceNotFound:
        raise ApiError(404, "not_found", f"no device {device_id}") from None
    except CommandRefused as exc:
        raise ApiError(409, "command_not_accepted", str(exc), "command") from None
    if not answer.ok and answer.error == "no reply in time":
        raise ApiError(504, "device_timeout", f"{device_id} did not answer {body.command} in time")
    return reply(
        CommandReply(
            request_id=answer.request_id,
            device_id=device_id,
            ok=answer.ok,
            result=answer.result,
            error=answer.error,
        )
    )


# -- alarms ------------------------------------------------------------------------------------


@api.get(
    "/api/v1/alarms",
    roles=ANY_ROLE,
    summary="Alarms newest first, by status and device, paged by id.",
    query=AlarmQuery,
    response=AlarmPage,
)
async def list_alarms(request: web.Request) -> web.Response:
    """Alarms newest first, by status and device, paged by id."""
    query = read_query(request, AlarmQuery)
    async with request.app[HUB_KEY].pool.acquire() as conn:
        rows = await alarm_rows.list_alarms(
            conn,
            status=query.status,
            device_id=query.device_id,
            limit=query.limit,
            before_id=query.before_id,
        )
    next_before = rows[-1].id if len(rows) == query.limit else None
    return reply(AlarmPage(alarms=[AlarmOut.of(row) for row in rows], next_before_id=next_before))


@api.post(
    "/api/v1/alarms/{id}/ack",
    roles=DEVICE_KEEPERS,
    summary="Acknowledge an alarm; the first acknowledgement stands.",
    response=AlarmOut,
    errors={**_NO_ALARM, 409: "The alarm is cleared (code alarm_cleared)."},
)
async def acknowledge_alarm(request: web.Request) -> web.Response:
    """Acknowledge an alarm; the first acknowledgement (and its name) stands; 409 once cleared."""
    alarm_id = _alarm_id(request)
    user = current_user(request)
    try:
        row = await _service(request).acknowledge(alarm_id, user.username)
    except AlarmCleared as exc:
        raise ApiError(
            409, "alarm_cleared", f"alarm {alarm_id} is {exc.alarm.status}: nothing to acknowledge"
        ) from None
    if row is None:
        raise ApiError(404, "not_found", f"no alarm {alarm_id}")
    return reply(AlarmOut.of(row))


@api.post(
    "/api/v1/alarms/{id}/clear",
    roles=DEVICE_KEEPERS,
    summary="Clear an alarm by hand.",
    response=AlarmOut,
    errors={**_NO_ALARM, 409: "The alarm is cleared already (code already_cleared)."},
)
async def clear_alarm(request: web.Request) -> web.Response:
    """Clear an alarm by hand (device alarms also clear themselves when the device recovers)."""
    alarm_id = _alarm_id(request)
    user = current_user(request)
    row = await _service(request).clear(alarm_id, user.username)
    if row is None:
        async with request.app[HUB_KEY].pool.acquire() as conn:
            known = await alarm_rows.get_alarm(conn, alarm_id)
        if known is None:
            raise ApiError(404, "not_found", f"no alarm {alarm_id}")
        raise ApiError(409, "already_cleared", f"alarm {alarm_id} is cleared already")
    return reply(AlarmOut.of(row))


# -- helpers -----------------------------------------------------------------------------------


def _device(service: DeviceHealthService, row: DeviceRow) -> DeviceOut:
    return DeviceOut.of(row, service.live_view(row))


def _bucket_width(since: dt.datetime, until: dt.datetime, buckets: int) -> dt.timedelta:
    """Whole seconds per bucket, so that ``buckets`` of them cover ``[since, until)``."""
    seconds = math.ceil((until - since).total_seconds() / buckets)
    return dt.timedelta(seconds=max(seconds, 1))


def _bucket(row: health_samples.Bucket, width: dt.timedelta, until: dt.datetime) -> HealthBucket:
    return HealthBucket.model_validate(
        {
            "start": row.start,
            "to": min(row.start + width, until),
            "samples": row.samples,
            "state": row.state,
            "figures": row.figures,
        }
    )


def _service(request: web.Request) -> DeviceHealthService:
    return service_of(request.app[HUB_KEY]).service


def _alarm_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 18:  # noqa: PLR2004 - fits a bigint
        raise ApiError(404, "not_found", f"no alarm {raw[:40]}")
    return int(raw)
