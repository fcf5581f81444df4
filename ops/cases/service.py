"""Changes to open cases: transitions, edits, notes, duplicate links and routing overrides.

Each operation locks the case row, checks, writes the change and its history entry in one
transaction, and announces ``case.changed`` only after the commit.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from db import cases as case_rows
from db import categories
from db.pool import Connection, Pool
from ops.cases import codes, lifecycle, routing
from ops.cases.errors import CaseNotFound, InvalidReport, LinkRefused
from ops.cases.intake import SOURCE
from ops.cases.model import MAX_NOTE, PRIORITIES, refuse_nul, snapshot
from ops.core.bus import Bus
from ops.core.events import CASE_CHANGED

#: Statuses in which routing may still move a case to another agency by itself.
_UNOWNED = frozenset({"new", "triaged", "reopened"})
#: History actions a reporter with a tracking code may see (as status changes only).
_PUBLIC_ACTIONS = frozenset({"opened", "transition"})


@dataclass(frozen=True, slots=True)
class CaseDetail:
    """A case with everything the detail view shows."""

    case: case_rows.CaseRow
    history: list[case_rows.HistoryRow]
    notes: list[case_rows.NoteRow]
    children: list[case_rows.CaseRow]


@dataclass(frozen=True, slots=True)
class PublicView:
    """What a tracking code shows: status and its timeline, nothing about people or places."""

    number: str
    category: str
    status: str
    agency: str | None
    created_at: datetime
    updated_at: datetime
    timeline: list[tuple[datetime, str]]


async def get_detail(pool: Pool, case_id: int) -> CaseDetail:
    """A case with its history, notes and linked duplicates."""
    async with pool.acquire() as conn:
        row = await case_rows.get_case(conn, case_id)
        if row is None:
            raise CaseNotFound(f"case {case_id} does not exist")
        return CaseDetail(
            case=row,
            history=await case_rows.list_history(conn, case_id),
            notes=await case_rows.list_notes(conn, case_id),
            children=await case_rows.list_children(conn, case_id),
        )


async def transition(
    pool: Pool,
    bus: Bus,
    case_id: int,
    *,
    to: str,
    actor: str,
    reason: str | None = None,
    agency: str | None = None,
) -> case_rows.CaseRow:
    """Move a case to status ``to``.

    ``assigned`` takes ``agency`` (default: the routed one); a bounce back to ``triaged`` keeps
    the owner on record and says "bounced by AGENCY: reason", so triage sees who handed it back
    and re-assigns it (or a change of category or region re-routes it, the case being unowned
    in ``triaged``); ``rejected``, ``reopened`` and bounces need a reason.

    Raises:
        CaseNotFound, InvalidReport (unknown agency), InvalidTransition (naming both states).
    """
    async with _locked(pool, case_id) as (conn, row):
        target_agency = agency or row.agency
        lifecycle.check_transition(row.status, to, reason=reason, agency=target_agency)
        if agency is not None and not await categories.agency_exists(conn, agency):
            raise InvalidReport("agency", f"unknown agency {agency!r}")
        changes: dict[str, Any] = {"status": to, "status_reason": _clean(reason)}
        if to == "assigned":
            changes["agency"] = target_agency
        if lifecycle.is_bounce(row.status, to):
            changes["status_reason"] = f"bounced by {row.agency}: {_clean(reason)}"
        if to == "reopened":  # a fresh clock from now: the reopened problem is a new wait
            routed = await routing.route(
                conn,
                category=row.category,
                region=row.region,
                priority=row.priority,
                created_at=_now(),
            )
            changes["sla_due_at"] = routed.sla_due_at
            changes["sla_breached_at"] = None
        updated = await case_rows.update_case(conn, case_id, changes)
        await case_rows.append_history(
            conn,
            case_id,
            actor=actor,
            action="transition",
            before={"status": row.status, "agency": row.agency},
            after={
                "status": updated.status,
                "agency": updated.agency,
                "reason": changes["status_reason"],
                "bounce": lifecycle.is_bounce(row.status, to),
            },
        )
    _announce(bus, updated)
    return updated


async def update(
    pool: Pool, bus: Bus, case_id: int, changes: dict[str, Any], *, actor: str
) -> case_rows.CaseRow:
    """Edit a case's fields; a new category, region or priority re-routes it.

    The SLA is recomputed from when the clock last started (the opening, or the latest
    reopening); the agency moves only while no agency has taken the case (new, triaged,
    reopened). Raises CaseNotFound or InvalidReport.
    """
    async with _locked(pool, case_id) as (conn, row):
        changes = dict(changes)
        if "priority" in changes and changes["priority"] not in PRIORITIES:
            raise InvalidReport("priority", f"priority must be one of {', '.join(PRIORITIES)}")
        if "category" in changes:
            category = await categories.get_category(conn, changes["category"])
            if category is None or not category.active:
                raise InvalidReport("category", f"unknown category {changes['category']!r}")
        lat, lon = changes.get("lat", row.lat), changes.get("lon", row.lon)
        if (lat is None) != (lon is None):
            raise InvalidReport("lat" if lat is None else "lon", "give both lat and lon")
        if {"category", "region", "priority"} & changes.keys():
            started = await case_rows.clock_start(conn, case_id) or row.created_at
            routed = await routing.route(
                conn,
                category=changes.get("category", row.category),
                region=changes.get("region", row.region),
                priority=changes.get("priority", row.priority),
                created_at=started,
            )
            changes["sla_due_at"] = routed.sla_due_at
            if routed.sla_due_at > _now():
                changes["sla_breached_at"] = None
            if row.status in _UNOWNED:
                changes["agency"] = routed.agency
        if "priority" in changes and "priority_reason" not in changes:
            changes["priority_reason"] = f"set by {actor}"
        before = {name: _jsonable(getattr(row, name)) for name in sorted(changes)}
        updated = await case_rows.update_case(conn, case_id, changes)
        after = {name: _jsonable(getattr(updated, name)) for name in sorted(changes)}
        await case_rows.append_history(
            conn, case_id, actor=actor, action="updated", before=before, after=after
        )
    _announce(bus, updated)
    return updated


async def override_routing(
    pool: Pool, bus: Bus, case_id: int, *, agency: str, reason: str, actor: str
) -> case_rows.CaseRow:
    """A supervisor gives a case to another agency, whatever the rules said."""
    async with _locked(pool, case_id) as (conn, row):
        if not await categories.agency_exists(conn, agency):
            raise InvalidReport("agency", f"unknown agency {agency!r}")
        updated = await case_rows.update_case(conn, case_id, {"agency": agency})
        await case_rows.append_history(
            conn,
            case_id,
            actor=actor,
            action="routing_override",
            before={"agency": row.agency},
            after={"agency": agency, "reason": reason},
        )
    _announce(bus, updated)
    return updated


async def add_note(
    pool: Pool, bus: Bus, case_id: int, *, author: str, body: str
) -> case_rows.NoteRow:
    """Append a note to a case."""
    body = _note_body(body)
    async with _locked(pool, case_id) as (conn, _row):
        note = await case_rows.add_note(conn, case_id, author=author, body=body)
        updated = await case_rows.update_case(conn, case_id, {})
        await case_rows.append_history(
            conn, case_id, actor=author, action="note", before=None, after={"note_id": note.id}
        )
    _announce(bus, updated)
    return note


async def link(
    pool: Pool, bus: Bus, case_id: int, *, parent_id: int, actor: str
) -> case_rows.CaseRow:
    """Link a case under ``parent_id`` as its duplicate (one level: parents are not children).

    Raises CaseNotFound (either case) or LinkRefused.
    """
    if parent_id == case_id:
        raise LinkRefused("a case cannot be its own duplicate")
    async with _locked(pool, case_id) as (conn, row):
        parent = await case_rows.get_case(conn, parent_id, for_update=True)
        if parent is None:
            raise CaseNotFound(f"case {parent_id} does not exist")
        if parent.parent_id is not None:
            raise LinkRefused(f"case {parent.number} is itself a duplicate of another case")
        if row.children:
            raise LinkRefused(f"case {row.number} has duplicates of its own; link those instead")
        updated = await case_rows.update_case(
            conn, case_id, {"parent_id": parent_id, "duplicate_of": None}
        )
        await case_rows.append_history(
            conn,
            case_id,
            actor=actor,
            action="linked",
            before={"parent_id": row.parent_id},
            after={"parent_id": parent_id},
        )
        await case_rows.append_history(
            conn,
            parent_id,
            actor=actor,
            action="child_linked",
            before=None,
            after={"child": case_id},
        )
        parent = await case_rows.update_case(conn, parent_id, {})
    _announce(bus, updated)
    _announce(bus, parent)
    return updated


async def unlink(pool: Pool, bus: Bus, case_id: int, *, actor: str) -> case_rows.CaseRow:
    """Undo a duplicate link (also dismisses a duplicate suspicion)."""
    async with _locked(pool, case_id) as (conn, row):
        updated = await case_rows.update_case(
            conn, case_id, {"parent_id": None, "duplicate_of": None}
        )
        await case_rows.append_history(
            conn,
            case_id,
            actor=actor,
            action="unlinked",
            before={"parent_id": row.parent_id, "duplicate_of": row.duplicate_of},
            after={"parent_id": None},
        )
        parent = None
        if row.parent_id is not None:
            await case_rows.append_history(
                conn,
                row.parent_id,
                actor=actor,
                action="child_unlinked",
                before={"child": case_id},
                after=None,
            )
            parent = await case_rows.update_case(conn, row.parent_id, {})
    _announce(bus, updated)
    if parent is not None:
        _announce(bus, parent)
    return updated


async def public_view(pool: Pool, code: str) -> PublicView:
    """What a tracking or follow-up code shows. Raises CaseNotFound for any unknown code."""
    canonical = codes.normalize(code)
    if canonical is None:
        raise CaseNotFound("no report has this code")
    async with pool.acquire() as conn:
        row = await case_rows.get_by_tracking(conn, codes.digest(canonical))
        if row is None:
            raise CaseNotFound("no report has this code")
        history = await case_rows.list_history(conn, row.id)
    timeline = [
        (entry.at, str(entry.after["status"]))
        for entry in history
        if entry.action in _PUBLIC_ACTIONS and isinstance(entry.after, dict)
    ]
    return PublicView(
        number=row.number,
        category=row.category,
        status=row.status,
        agency=row.agency,
        created_at=row.created_at,
        updated_at=row.updated_at,
        timeline=timeline,
    )


async def add_reporter_note(pool: Pool, bus: Bus, code: str, body: str) -> datetime:
    """The holder of a follow-up code adds information; the note's author is "reporter"."""
    canonical = codes.normalize(code)
    if canonical is None:
        raise CaseNotFound("no report has this code")
    body = _note_body(body)
    async with pool.acquire() as conn, conn.transaction():
        found = await case_rows.get_by_tracking(conn, codes.digest(canonical))
        if found is None:
            raise CaseNotFound("no report has this code")
        await case_rows.get_case(conn, found.id, for_update=True)
        note = await case_rows.add_note(conn, found.id, author="reporter", body=body)
        updated = await case_rows.update_case(conn, found.id, {})
        await case_rows.append_history(
            conn,
            found.id,
            actor="reporter",
            action="reporter_note",
            before=None,
            after={"note_id": note.id},
        )
    _announce(bus, updated)
    return note.at


@contextlib.asynccontextmanager
async def _locked(pool: Pool, case_id: int) -> AsyncIterator[tuple[Connection, case_rows.CaseRow]]:
    async with pool.acquire() as conn, conn.transaction():
        row = await case_rows.get_case(conn, case_id, for_update=True)
        if row is None:
            raise CaseNotFound(f"case {case_id} does not exist")
        yield conn, row


def _announce(bus: Bus, row: case_rows.CaseRow) -> None:
    bus.publish(CASE_CHANGED, snapshot(row), source=SOURCE, key=str(row.id))


def _note_body(body: str) -> str:
    try:
        refuse_nul(body)
    except ValueError as exc:
        raise InvalidReport("body", f"body {exc}") from None
    body = body.strip()
    if not body:
        raise InvalidReport("body", "a note needs some text")
    if len(body) > MAX_NOTE:
        raise InvalidReport("body", f"a note is at most {MAX_NOTE} characters")
    return body


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    return value.strip() or None


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _now() -> datetime:
    return datetime.now(UTC)
