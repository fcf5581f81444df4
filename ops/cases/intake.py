"""The one door every channel ends in: :func:`submit_report` turns a report into a case.

The call-taker form, the public and whistleblower forms, email, the external connector, panic
buttons and text from the field (radio, satellite) all build an :class:`IncomingReport` and
await ``submit_report(pool, bus, report)``. It validates, routes (agency and SLA), inserts,
writes the history, flags a likely duplicate, commits, and only then announces ``case.opened``
and returns — so a channel may acknowledge its sender as soon as it returns.

A report carrying an external id or an email Message-ID that was already taken returns the
existing case with ``created=False`` and announces nothing: a redelivery never makes a second case.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from db import cases as case_rows
from db import categories
from db.pool import Connection, Pool
from ops.cases import codes, routing
from ops.cases.errors import InvalidReport
from ops.cases.model import (
    MAX_DESCRIPTION,
    MAX_SHORT,
    MAX_TITLE,
    NUL_MESSAGE,
    PRIORITIES,
    refuse_nul,
    snapshot,
    title_from,
)
from ops.core.bus import Bus
from ops.core.config import CasesConfig
from ops.core.events import CASE_OPENED

_LOGGER = logging.getLogger(__name__)

SOURCE = "cases"
_CHANNEL = re.compile(r"^[a-z_]{1,32}$")
Tracking = Literal["public", "secret"]


@dataclass(frozen=True, slots=True)
class IncomingReport:
    """A report from any channel, before it is a case.

    ``channel`` is lowercase letters and underscores (``console``, ``email``, ``radio``…).
    ``priority`` None takes the category's default. ``anonymous`` forbids reporter fields.
    ``external_source``/``external_id`` and ``message_id`` make intake idempotent. ``tracking``
    asks for a tracking code (public) or a whistleblower's follow-up code (secret).
    ``attachments`` is metadata only (name, type, size, sha256): contents are never stored.
    No text may hold a NUL character (the database cannot store it): it is refused naming the
    field, as the request models refuse it with :data:`ops.cases.model.CaseText`.
    """

    channel: str
    category: str
    description: str = ""
    title: str | None = None
    priority: str | None = None
    priority_reason: str | None = None
    lat: float | None = None
    lon: float | None = None
    address: str | None = None
    region: str | None = None
    reporter_name: str | None = None
    reporter_contact: str | None = None
    anonymous: bool = False
    external_source: str | None = None
    external_id: str | None = None
    message_id: str | None = None
    attachments: tuple[dict[str, Any], ...] = ()
    tracking: Tracking | None = None
    actor: str | None = None


@dataclass(frozen=True, slots=True)
class CaseRef:
    """What a channel tells its sender: the case, and whether this call created it."""

    id: int
    number: str
    status: str
    created: bool
    tracking_code: str | None = None
    duplicate_of: int | None = None


async def submit_report(
    pool: Pool, bus: Bus, report: IncomingReport, *, config: CasesConfig | None = None
) -> CaseRef:
    """Validate, route and commit a report as a case; announce it; return its reference.

    Raises:
        InvalidReport: naming the field (unknown category, coordinates out of range, …);
            nothing is written.
    """
    ref, _row = await open_case(pool, bus, report, config=config)
    return ref


async def open_case(
    pool: Pool, bus: Bus, report: IncomingReport, *, config: CasesConfig | None = None
) -> tuple[CaseRef, case_rows.CaseRow | None]:
    """:func:`submit_report`, also giving the new row (None when the case existed already)."""
    config = config or CasesConfig()
    _check(report)
    async with pool.acquire() as conn:  # the insert is one statement: atomic without BEGIN
        ref, row = await _open(conn, report, config)
    if row is not None:
        bus.publish(CASE_OPENED, snapshot(row), source=SOURCE, key=str(row.id))
        if row.duplicate_of is not None:
            _LOGGER.info("case %s looks like a duplicate of %s", row.number, row.duplicate_of)
    return ref, row


async def _open(
    conn: Connection, report: IncomingReport, config: CasesConfig
) -> tuple[CaseRef, case_rows.CaseRow | None]:
    existing = await _existing(conn, report)
    if existing is not None:  # a re-read record or a resent mail: no insert, no id spent
        return CaseRef(existing.id, existing.number, existing.status, created=False), None
    category, rule = await categories.category_and_rule(
        conn, report.category, _clean(report.region)
    )
    if category is None or not category.active:
        raise InvalidReport("category", f"unknown category {report.category!r}")
    priority = report.priority or category.default_priority
    reason = report.priority_reason or (
        f"set by {report.channel}" if report.priority else f"category default ({category.code})"
    )
    now = datetime.now(UTC)
    routed = routing.from_rule(rule, priority, now)
    tracking_code = (
        None if report.tracking is None else codes.new_code(secret=report.tracking == "secret")
    )
    description = report.description.strip()
    values: dict[str, Any] = {
        "channel": report.channel,
        "category": category.code,
        "priority": priority,
        "priority_reason": reason,
        "title": (report.title or "").strip() or title_from(description) or category.label_en,
        "description": description,
        "lat": report.lat,
        "lon": report.lon,
        "address": _clean(report.address),
        "region": _clean(report.region),
        "reporter_name": None if report.anonymous else _clean(report.reporter_name),
        "reporter_contact": None if report.anonymous else _clean(report.reporter_contact),
        "anonymous": report.anonymous,
        "agency": routed.agency,
        "sla_due_at": routed.sla_due_at,
        "created_at": now,
        "updated_at": now,
        "external_source": report.external_source if report.external_id else None,
        "external_id": report.external_id,
        "message_id": report.message_id,
        "attachments": list(report.attachments),
        "tracking_hash": None if tracking_code is None else codes.digest(tracking_code),
    }
    opened = {
        "status": "new",
        "channel": report.channel,
        "category": category.code,
        "priority": priority,
        "priority_reason": reason,
        "agency": routed.agency,
        "sla_due_at": routed.sla_due_at.isoformat(),
    }
    window = case_rows.DuplicateWindow(
        since=now - timedelta(minutes=config.duplicate_window_minutes),
        distance_m=config.duplicate_distance_m,
    )
    row = await case_rows.insert_case(
        conn, values, actor=report.actor or report.channel, opened=opened, duplicates=window
    )
    if row is None:  # taken meanwhile by a concurrent delivery of the same record or mail
        existing = await _existing(conn, report)
        if existing is None:
            raise RuntimeError("case insert conflicted with no matching case")
        return CaseRef(existing.id, existing.number, existing.status, created=False), None
    ref = CaseRef(
        row.id,
        row.number,
        row.status,
        created=True,
        tracking_code=tracking_code,
        duplicate_of=row.duplicate_of,
    )
    return ref, row


async def _existing(conn: Connection, report: IncomingReport) -> case_rows.CaseRow | None:
    if report.external_id is None and report.message_id is None:
        return None
    return await case_rows.find_existing(
        conn,
        external_source=report.external_source if report.external_id else None,
        external_id=report.external_id,
        message_id=report.message_id,
    )


def _check(report: IncomingReport) -> None:
    """Refuse what no channel may store, before touching the database."""
    _check_text(report)
    if not _CHANNEL.fullmatch(report.channel):
        raise InvalidReport("channel", "channel is 1-32 lowercase letters and underscores")
    if report.priority is not None and report.priority not in PRIORITIES:
        raise InvalidReport("priority", f"priority must be one of {', '.join(PRIORITIES)}")
    if (report.lat is None) != (report.lon is None):
        raise InvalidReport("lat" if report.lat is None else "lon", "give both lat and lon")
    if report.lat is not None and not -90 <= report.lat <= 90:  # noqa: PLR2004
        raise InvalidReport("lat", "lat must be between -90 and 90")
    if report.lon is not None and not -180 <= report.lon <= 180:  # noqa: PLR2004
        raise InvalidReport("lon", "lon must be between -180 and 180")
    if not report.description.strip() and not (report.title or "").strip():
        raise InvalidReport("description", "a report needs a description or a title")
    _check_lengths(report)
    if report.anonymous and (report.reporter_name or report.reporter_contact):
        raise InvalidReport("reporter_contact", "an anonymous report carries no identity")


_TEXT_FIELDS = (
    "channel",
    "category",
    "description",
    "title",
    "priority",
    "priority_reason",
    "address",
    "region",
    "reporter_name",
    "reporter_contact",
    "external_source",
    "external_id",
    "message_id",
    "actor",
)


def _check_text(report: IncomingReport) -> None:
    for name in _TEXT_FIELDS:
        value = getattr(report, name)
        if value is None:
            continue
        try:
            refuse_nul(value)
        except ValueError:
            raise InvalidReport(name, f"{name} {NUL_MESSAGE}") from None
    if any(_holds_nul(attachment) for attachment in report.attachments):  # jsonb refuses it too
        raise InvalidReport("attachments", f"attachments {NUL_MESSAGE}")


def _holds_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_holds_nul(item) for item in value)
    return False


def _check_lengths(report: IncomingReport) -> None:
    if len(report.description) > MAX_DESCRIPTION:
        raise InvalidReport("description", f"description is longer than {MAX_DESCRIPTION}")
    if report.title is not None and len(report.title) > MAX_TITLE:
        raise InvalidReport("title", f"title is longer than {MAX_TITLE} characters")
    for name in ("address", "region", "reporter_name", "reporter_contact"):
        value = getattr(report, name)
        if value is not None and len(value) > MAX_SHORT:
            raise InvalidReport(name, f"{name} is longer than {MAX_SHORT} characters")


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None
