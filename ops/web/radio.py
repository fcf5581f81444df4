"""The radio room over HTTP: gateways and their transceivers, the radio log, units' threads.

Reads are for everyone signed in. Tuning a channel is for operators, supervisors and
technicians; keying the transmitter by hand and sending bulletins for operators and supervisors.
A command answers 202 once it is audited and on the bus: the radio acts on it when it can, and
the console sees the outcome as ``radio.transceiver`` (or, for a bulletin, as log lines).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import re
from typing import Final, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from db import radio as radio_rows
from db.radio import LogFilter, LogRow, ThreadMessage
from ops.http.errors import ApiError, read_json
from ops.http.keys import HUB_KEY
from ops.http.models import Out, Time
from ops.http.roles import ANY_ROLE, DISPATCHERS
from ops.http.routes import Api, Content, read_query, reply
from ops.http.sessions import current_user
from ops.radio.commands import BULLETIN_LIMIT, RadioRefused
from ops.radio.setup import parts_of
from ops.radio.view import GatewayView
from ops.units.model import ID_PATTERN
from ops.users import Role
from radio.events import FRAME_KINDS

_LOGGER = logging.getLogger(__name__)

api = Api("radio")

#: Tuning a channel is also a technician's job (testing the rig).
RIG_TUNERS: Final = frozenset({Role.OPERATOR, Role.SUPERVISOR, Role.TECHNICIAN})
DEFAULT_PAGE: Final = 100
MAX_PAGE: Final = 500
#: The most lines one CSV export holds.
MAX_EXPORT: Final = 1_000_000
#: Rows written to the socket at a time while an export streams.
EXPORT_CHUNK: Final = 500
#: A cell that a spreadsheet would read as a formula starts with one of these.
FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")

GATEWAY_PATTERN: Final = r"^[a-z0-9][a-z0-9_-]{0,31}$"
CALLSIGN_FILTER: Final = r"^[A-Za-z0-9]{1,6}(-[0-9]{1,2})?$"
ORDER_PATTERN: Final = r"^[0-9a-z]{8,32}$"
#: Printable text of one APRS message: no control characters, none of ``{ | ~``.
BULLETIN_TEXT: Final = r"^[^\x00-\x1f\x7f{|~]*$"
_GATEWAY = re.compile(GATEWAY_PATTERN)
_UNIT = re.compile(ID_PATTERN)

_NO_GATEWAY = {404: "No such gateway (code gateway_not_found)."}
_GATEWAY_PARAM = {"id": {"type": "string", "pattern": GATEWAY_PATTERN}}
_CSV = Content(
    "text/csv",
    description="The log as CSV (UTF-8, a header row, newest first); cells that a spreadsheet "
    "would take for a formula are prefixed with an apostrophe.",
)


# -- models -------------------------------------------------------------------------------------


class ChannelPlanOut(Out):
    """One named channel of a gateway's transceiver."""

    name: str
    frequency: int = Field(description="Hz")
    mode: str


class LinkOut(Out):
    """The gateway's KISS link as its adapter last reported it."""

    link: Literal["up", "down", "connecting"]
    detail: str
    frames_in: int
    frames_out: int
    decode_errors: int
    transmit_queue: int
    last_heard: Time | None
    channel_busy: bool


class TransceiverOut(Out):
    """The gateway's transceiver as its adapter last reported it."""

    rig_online: bool
    channel: str | None
    frequency: int | None
    mode: str | None
    ptt: bool
    detail: str


class GatewayOut(Out):
    """One configured gateway, with its link and transceiver (null until first reported)."""

    id: str
    name: str
    url: str
    kiss_port: int
    ptt: Literal["none", "rig", "serial"] = Field(
        description="How the room keys it: none (the TNC keys itself), rig (CAT), serial (RTS/DTR)."
    )
    has_rig: bool
    tx_timeout: float = Field(description="Seconds after which the hub unkeys, whatever happens.")
    channels: list[ChannelPlanOut]
    default_channel: str | None
    link: LinkOut | None
    transceiver: TransceiverOut | None

    @classmethod
    def of(cls, view: GatewayView) -> GatewayOut:
        """The answer for one gateway."""
        cfg = view.config
        link = view.link
        rig = view.transceiver
        return cls(
            id=cfg.id,
            name=cfg.name or cfg.id,
            url=cfg.url,
            kiss_port=cfg.kiss_port,
            ptt="serial" if cfg.ptt.startswith("serial:") else cfg.ptt,  # type: ignore[arg-type]
            has_rig=view.has_rig,
            tx_timeout=cfg.tx_timeout,
            channels=[ChannelPlanOut.model_validate(plan) for plan in cfg.channels],
            default_channel=cfg.default_channel,
            link=None if link is None else LinkOut.model_validate(link),
            transceiver=None if rig is None else TransceiverOut.model_validate(rig),
        )


class Gateways(Out):
    """Every configured gateway (empty when the room has no radio)."""

    callsign: str = Field(description="The room's own station.")
    gateways: list[GatewayOut]


class ChannelRequest(BaseModel):
    """The body of ``POST /api/v1/radio/gateways/{id}/channel``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: str = Field(min_length=1, max_length=40)


class PttRequest(BaseModel):
    """The body of ``POST /api/v1/radio/gateways/{id}/ptt``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    on: bool


class BulletinRequest(BaseModel):
    """The body of ``POST /api/v1/radio/bulletins``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    group: str = Field(
        min_length=1,
        max_length=20,
        description="A unit kind (every unit of that kind) or a group code of 1-5 letters/digits.",
    )
    text: str = Field(min_length=1, max_length=BULLETIN_LIMIT, pattern=BULLETIN_TEXT)
    gateway: str | None = Field(
        default=None, pattern=GATEWAY_PATTERN, description="One gateway (default: every one)."
    )

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()


class ChannelAccepted(Out):
    """A channel change on its way to the transceiver."""

    gateway: str
    channel: str


class PttAccepted(Out):
    """A keying on its way to the transceiver."""

    gateway: str
    on: bool
    tx_timeout: float = Field(description="The hub unkeys after this many seconds anyway.")


class BulletinAccepted(Out):
    """A bulletin on its way to the air."""

    group: str = Field(description="The APRS group it goes to (BLN0{group}).")
    text: str
    gateway: str | None


class LogFilters(BaseModel):
    """The filters of the log and of its CSV export."""

    model_config = ConfigDict(extra="forbid")

    gateway: str | None = Field(default=None, pattern=GATEWAY_PATTERN)
    callsign: str | None = Field(
        default=None,
        pattern=CALLSIGN_FILTER,
        description="With an SSID that station only; without one, the callsign with any SSID.",
    )
    unit: str | None = Field(default=None, pattern=ID_PATTERN)
    direction: Literal["in", "out"] | None = None
    kind: str | None = Field(default=None, description="One of: " + ", ".join(FRAME_KINDS) + ".")
    order: str | None = Field(default=None, pattern=ORDER_PATTERN)
    case: int | None = Field(default=None, ge=1)
    since: dt.datetime | None = Field(default=None, description="Inclusive; with a UTC offset.")
    until: dt.datetime | None = Field(default=None, description="Exclusive; with a UTC offset.")
    before_id: int | None = Field(
        default=None, ge=1, description="Only lines older than this id (next_before_id)."
    )

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str | None) -> str | None:
        if value is not None and value not in FRAME_KINDS:
            raise ValueError("must be one of " + ", ".join(FRAME_KINDS))
        return value

    @field_validator("since", "until")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a UTC offset, e.g. 2026-01-01T00:00:00Z")
        return value

    def to_filter(self) -> LogFilter:
        """The database's filter."""
        return LogFilter(
            gateway=self.gateway,
            callsign=self.callsign,
            unit_id=self.unit,
            direction=self.direction,
            kind=self.kind,
            order_id=self.order,
            case_id=self.case,
            since=self.since,
            until=self.until,
            before_id=self.before_id,
        )


class LogQuery(LogFilters):
    """The query of ``GET /api/v1/radio/log``."""

    limit: int = Field(default=DEFAULT_PAGE, ge=1, le=MAX_PAGE)


class ExportQuery(LogFilters):
    """The query of ``GET /api/v1/radio/log.csv``."""

    limit: int = Field(default=MAX_EXPORT, ge=1, le=MAX_EXPORT)


class LogLine(Out):
    """One line of the radio log."""

    id: int
    at: Time
    gateway: str
    channel: str | None
    direction: Literal["in", "out"]
    kind: str
    callsign: str = Field(description="The other station (the group for a bulletin).")
    text: str
    tnc2: str = Field(description="The whole frame in TNC2 form (empty for a PTT line).")
    number: str | None
    attempt: int | None
    unit_id: str | None
    order_id: str | None
    copy_id: int | None
    case_id: int | None


class LogPage(Out):
    """One page of the log, newest first."""

    lines: list[LogLine]
    next_before_id: int | None = Field(
        description="Pass as before_id for the next (older) page; null on the last."
    )


class ThreadMessageOut(Out):
    """A numbered message the room sent the unit, and what became of it."""

    number: str
    callsign: str
    text: str
    tries: int
    first_sent: Time
    last_sent: Time
    state: Literal["sent", "retried", "acked", "rejected"]
    answered_at: Time | None = Field(description="When the ack (or reject) came back.")
    order_id: str | None
    case_id: int | None
    copy_id: int | None

    @classmethod
    def of(cls, message: ThreadMessage) -> ThreadMessageOut:
        """The answer for one message."""
        return cls.model_validate(message)


class ThreadOut(Out):
    """A unit's conversation over radio: outgoing messages (newest first) and what it sent."""

    unit_id: str
    callsigns: list[str] = Field(description="The unit's radio addresses.")
    outgoing: list[ThreadMessageOut]
    incoming: list[LogLine]


# -- routes -------------------------------------------------------------------------------------


@api.get(
    "/api/v1/radio/gateways",
    roles=ANY_ROLE,
    summary="The room's radio gateways with link health, figures, transceiver and channel plan.",
    response=Gateways,
)
async def list_gateways(request: web.Request) -> web.Response:
    """The room's radio gateways with link health, figures, transceiver and channel plan."""
    hub = request.app[HUB_KEY]
    views = parts_of(hub).view.gateways()
    return reply(
        Gateways(callsign=hub.config.radio.callsign, gateways=[GatewayOut.of(v) for v in views])
    )


@api.post(
    "/api/v1/radio/gateways/{id}/channel",
    roles=RIG_TUNERS,
    summary="Tune a gateway's transceiver to a channel of its plan (202: on its way).",
    path_params=_GATEWAY_PARAM,
    body=ChannelRequest,
    responses={202: ChannelAccepted},
    errors={
        **_NO_GATEWAY,
        400: "Not a channel of the gateway's plan (code unknown_channel, field channel).",
        409: "The gateway has no rig to tune (code no_rig).",
    },
)
async def select_channel(request: web.Request) -> web.Response:
    """Tune a gateway's transceiver to a channel of its plan (202: on its way)."""
    gateway_id = _gateway_id(request)
    body = await read_json(request, ChannelRequest)
    commands = parts_of(request.app[HUB_KEY]).commands
    try:
        await commands.select_channel(
            gateway_id, body.channel, actor=current_user(request).username
        )
    except RadioRefused as exc:
        raise _api_error(exc) from None
    return reply(ChannelAccepted(gateway=gateway_id, channel=body.channel), status=202)


@api.post(
    "/api/v1/radio/gateways/{id}/ptt",
    roles=DISPATCHERS,
    summary="Key (on) or unkey a gateway's transmitter by hand; the time-out unkeys it anyway.",
    path_params=_GATEWAY_PARAM,
    body=PttRequest,
    responses={202: PttAccepted},
    errors={**_NO_GATEWAY, 409: "The TNC keys itself: no manual PTT (code no_ptt)."},
)
async def key_transmitter(request: web.Request) -> web.Response:
    """Key (on) or unkey a gateway's transmitter by hand; the time-out unkeys it anyway."""
    gateway_id = _gateway_id(request)
    body = await read_json(request, PttRequest)
    parts = parts_of(request.app[HUB_KEY])
    try:
        await parts.commands.key_transmitter(
            gateway_id, on=body.on, actor=current_user(request).username
        )
    except RadioRefused as exc:
        raise _api_error(exc) from None
    config = parts.view.config_of(gateway_id)
    timeout = config.tx_timeout if config is not None else 0.0
    return reply(PttAccepted(gateway=gateway_id, on=body.on, tx_timeout=timeout), status=202)


@api.post(
    "/api/v1/radio/bulletins",
    roles=DISPATCHERS,
    summary="Send a group bulletin (not acknowledged) on one gateway or on every one.",
    body=BulletinRequest,
    responses={202: BulletinAccepted},
    errors={
        404: "No such gateway (code gateway_not_found, field gateway).",
        409: "The room has no radio gateway (code no_gateway).",
    },
)
async def send_bulletin(request: web.Request) -> web.Response:
    """Send a group bulletin (not acknowledged) on one gateway or on every one."""
    body = await read_json(request, BulletinRequest)
    commands = parts_of(request.app[HUB_KEY]).commands
    try:
        command = await commands.send_bulletin(
            body.group, body.text, gateway_id=body.gateway, actor=current_user(request).username
        )
    except RadioRefused as exc:
        raise _api_error(exc) from None
    return reply(
        BulletinAccepted(group=command.group, text=command.text, gateway=command.gateway),
        status=202,
    )


@api.get(
    "/api/v1/radio/log",
    roles=ANY_ROLE,
    summary="The radio log, newest first, filtered, paged by id.",
    query=LogQuery,
    response=LogPage,
)
async def list_log(request: web.Request) -> web.Response:
    """The radio log, newest first, filtered, paged by id."""
    query = read_query(request, LogQuery)
    _check_range(query)
    async with request.app[HUB_KEY].pool.acquire() as conn:
        rows = await radio_rows.query(conn, query.to_filter(), limit=query.limit)
    next_before = rows[-1].id if len(rows) == query.limit else None
    return reply(LogPage(lines=[_line(row) for row in rows], next_before_id=next_before))


@api.get(
    "/api/v1/radio/log.csv",
    roles=ANY_ROLE,
    summary="The radio log as CSV with the same filters, newest first, streamed.",
    query=ExportQuery,
    response=_CSV,
)
async def export_log(request: web.Request) -> web.StreamResponse:
    """The radio log as CSV with the same filters, newest first, streamed."""
    query = read_query(request, ExportQuery)
    _check_range(query)
    hub = request.app[HUB_KEY]
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": 'attachment; filename="radio-log.csv"',
            "Cache-Control": "no-store",
        }
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(radio_rows.COLUMNS)
    try:
        async with hub.pool.acquire() as conn, conn.transaction(readonly=True):
            # Prepared only once the query runs, so a refused filter still answers its error.
            await response.prepare(request)
            pending = 0
            async for row in radio_rows.iterate(conn, query.to_filter(), limit=query.limit):
                writer.writerow(csv_cells(row))
                pending += 1
                if pending >= EXPORT_CHUNK:
                    await response.write(buffer.getvalue().encode())
                    buffer.seek(0)
                    buffer.truncate()
                    pending = 0
        await response.write(buffer.getvalue().encode())
        await response.write_eof()
    except ConnectionError:
        _LOGGER.debug("radio log export: the client went away")
    return response


@api.get(
    "/api/v1/radio/units/{unit_id}/thread",
    roles=ANY_ROLE,
    summary="A unit's radio thread: numbered messages sent (sent, retried, acked, rejected) "
    "and messages heard from it.",
    path_params={"unit_id": {"type": "string", "pattern": ID_PATTERN}},
    response=ThreadOut,
    errors={404: "No such unit (code unit_not_found)."},
)
async def unit_thread(request: web.Request) -> web.Response:
    """A unit's radio thread, computed from the log."""
    unit_id = request.match_info["unit_id"]
    if not _UNIT.fullmatch(unit_id):
        raise ApiError(404, "unit_not_found", f"no unit {unit_id!r}")
    async with request.app[HUB_KEY].pool.acquire() as conn:
        found = await radio_rows.thread(conn, unit_id)
    if found is None:
        raise ApiError(404, "unit_not_found", f"no unit {unit_id!r}")
    return reply(
        ThreadOut(
            unit_id=found.unit_id,
            callsigns=list(found.callsigns),
            outgoing=[ThreadMessageOut.of(m) for m in found.outgoing],
            incoming=[_line(row) for row in found.incoming],
        )
    )


# -- helpers ------------------------------------------------------------------------------------


def csv_cells(row: LogRow) -> list[str]:
    """One CSV record of a log line; a cell a spreadsheet would run as a formula is defused."""
    cells: list[str] = []
    for name in radio_rows.COLUMNS:
        value = getattr(row, name)
        if value is None:
            text = ""
        elif isinstance(value, dt.datetime):
            text = value.isoformat()
        else:
            text = str(value)
        if text.startswith(FORMULA_STARTS):
            text = "'" + text
        cells.append(text)
    return cells


def _line(row: LogRow) -> LogLine:
    return LogLine.model_validate(row)


def _gateway_id(request: web.Request) -> str:
    gateway_id = request.match_info["id"]
    if not _GATEWAY.fullmatch(gateway_id):
        raise ApiError(404, "gateway_not_found", f"no radio gateway {gateway_id!r}")
    return gateway_id


def _check_range(query: LogFilters) -> None:
    if query.since is not None and query.until is not None and query.since >= query.until:
        raise ApiError(400, "invalid_field", "until: must be after since", "until")


def _api_error(exc: RadioRefused) -> ApiError:
    return ApiError(exc.status, exc.code, exc.message, exc.field)
