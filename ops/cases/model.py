"""The vocabulary of cases: priorities, statuses, channels, and the snapshot the bus carries."""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import AfterValidator

from db.cases import CaseRow
from ops.core.events import CaseSnapshot

PRIORITIES: Final = ("critical", "high", "medium", "low")
STATUSES: Final = (
    "new",
    "triaged",
    "assigned",
    "in_progress",
    "resolved",
    "closed",
    "rejected",
    "reopened",
)
#: Statuses whose SLA clock runs.
OPEN_STATUSES: Final = ("new", "triaged", "assigned", "in_progress", "reopened")
#: The doors a report comes in by; field adapters may name their own (lowercase, underscores).
CHANNELS: Final = (
    "console",
    "api",
    "public",
    "whistleblower",
    "email",
    "external",
    "panic",
    "radio",
    "satellite",
)

MAX_TITLE = 200
MAX_DESCRIPTION = 10_000
MAX_SHORT = 300
MAX_NOTE = 5_000
NUL_MESSAGE = "must not contain NUL characters"


def refuse_nul(value: str) -> str:
    """The value itself; ValueError when it holds NUL, which the database cannot store as text."""
    if "\x00" in value:
        raise ValueError(NUL_MESSAGE)
    return value


#: Text any case field or query may carry: every request model uses it for its strings.
CaseText = Annotated[str, AfterValidator(refuse_nul)]


def snapshot(row: CaseRow) -> CaseSnapshot:
    """The bus payload of a case after a committed change."""
    return CaseSnapshot(
        id=row.id,
        number=row.number,
        title=row.title,
        category=row.category,
        priority=row.priority,
        status=row.status,
        channel=row.channel,
        agency=row.agency,
        lat=row.lat,
        lon=row.lon,
        region=row.region,
        created_at=row.created_at,
        updated_at=row.updated_at,
        sla_due_at=row.sla_due_at,
        parent_id=row.parent_id,
        duplicate_of=row.duplicate_of,
        sla_breached_at=row.sla_breached_at,
        children=row.children,
    )


def title_from(description: str) -> str:
    """A title for a report that came without one: its first line, shortened."""
    first = next((line.strip() for line in description.splitlines() if line.strip()), "")
    if len(first) > MAX_TITLE:
        first = first[: MAX_TITLE - 1].rstrip() + "…"
    return first
