"""What the case and public routes answer: one response model per shape.

Signed-in people see :class:`CaseOut` (never the tracking digest); the public sees only the
receipts and :class:`PublicStatus`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, Self

from pydantic import Field

from db import cases as case_rows
from db import categories
from ops.cases import service
from ops.cases.model import OPEN_STATUSES
from ops.http.models import AnyJson, Out, Time

Priority = Literal["critical", "high", "medium", "low"]
Status = Literal[
    "new", "triaged", "assigned", "in_progress", "resolved", "closed", "rejected", "reopened"
]


class CaseOut(Out):
    """A case."""

    id: int
    number: str = Field(examples=["PSK-0000042"])
    title: str
    description: str
    category: str
    priority: Priority
    priority_reason: str
    status: Status
    status_reason: str | None
    channel: str
    agency: str | None
    lat: float | None
    lon: float | None
    address: str | None
    region: str | None
    reporter_name: str | None
    reporter_contact: str | None
    anonymous: bool
    parent_id: int | None = Field(description="The case this one is linked under.")
    duplicate_of: int | None = Field(description="A likely duplicate found at intake.")
    children: int = Field(description="Cases linked under this one.")
    created_at: Time
    updated_at: Time
    sla_due_at: Time
    sla_breached_at: Time | None
    overdue: bool
    external_source: str | None
    external_id: str | None
    attachments: list[dict[str, Any]] = Field(
        description="Metadata of mail attachments; their contents are never stored."
    )

    @classmethod
    def of(cls, row: case_rows.CaseRow) -> Self:
        """The case of a row, with whether it is overdue now."""
        overdue = row.status in OPEN_STATUSES and row.sla_due_at < datetime.now(UTC)
        return cls.model_validate({**_fields(row, cls), "overdue": overdue})


class HistoryEntry(Out):
    """One entry of a case's history."""

    id: int
    at: Time
    actor: str
    action: str = Field(examples=["opened", "transition", "note"])
    before: AnyJson
    after: AnyJson


class NoteOut(Out):
    """A note on a case."""

    id: int
    at: Time
    author: str
    body: str


class CaseDetail(CaseOut):
    """A case with its history, notes and linked duplicates."""

    history: list[HistoryEntry]
    notes: list[NoteOut]
    duplicates: list[CaseOut]

    @classmethod
    def of_detail(cls, detail: service.CaseDetail) -> Self:
        """The detail of a case as the service reads it."""
        return cls.model_validate(
            {
                **CaseOut.of(detail.case).model_dump(),
                "history": [HistoryEntry.model_validate(entry) for entry in detail.history],
                "notes": [NoteOut.model_validate(note) for note in detail.notes],
                "duplicates": [CaseOut.of(child) for child in detail.children],
            }
        )


class CasePage(Out):
    """One page of the queue."""

    cases: list[CaseOut]
    next_cursor: str | None = Field(
        description="Pass as cursor for the next page; null on the last."
    )


class CaseEvents(Out):
    """A case's history, oldest first."""

    events: list[HistoryEntry]


class CategoryOut(Out):
    """One category of the catalogue."""

    code: str
    label_id: str
    label_en: str
    default_priority: Priority
    active: bool


class Categories(Out):
    """The category catalogue."""

    categories: list[CategoryOut]


class AgencyOut(Out):
    """An agency or directorate that owns cases."""

    code: str
    name_id: str
    name_en: str


class Agencies(Out):
    """Agencies that own cases."""

    agencies: list[AgencyOut]


class SlaMinutesOut(Out):
    """Minutes from opening to resolution, per priority."""

    critical: int = Field(ge=1)
    high: int = Field(ge=1)
    medium: int = Field(ge=1)
    low: int = Field(ge=1)


class RoutingRule(Out):
    """Who owns a category's cases in a region, and the SLA minutes."""

    category: str
    region: str = Field(description="'' is the category's default.")
    agency: str
    sla_minutes: SlaMinutesOut

    @classmethod
    def of(cls, row: categories.RuleRow) -> Self:
        """The rule of a row."""
        return cls(
            category=row.category,
            region=row.region,
            agency=row.agency,
            sla_minutes=SlaMinutesOut(
                critical=row.sla_critical,
                high=row.sla_high,
                medium=row.sla_medium,
                low=row.sla_low,
            ),
        )


class RoutingRules(Out):
    """Routing rules: agency and SLA per (category, region)."""

    rules: list[RoutingRule]


class PublicCategory(Out):
    """A category as the public forms offer it."""

    code: str
    label_id: str
    label_en: str


class PublicCategories(Out):
    """Active categories for the public forms."""

    categories: list[PublicCategory]


class PublicReceipt(Out):
    """A public report was received."""

    number: str
    status: Status
    tracking_code: str = Field(examples=["LP-7KQ2M9XH4C"])


class WhistleblowerReceipt(Out):
    """An anonymous report was received."""

    number: str
    status: Status
    follow_up_code: str = Field(
        description="Secret: shown once; lets its holder follow and add to it."
    )


class TimelineStep(Out):
    """A status a report reached, and when."""

    at: Time
    status: Status


class PublicStatus(Out):
    """A report's public status and timeline (nothing private)."""

    number: str
    category: str
    status: Status
    agency: str | None
    created_at: Time
    updated_at: Time
    timeline: list[TimelineStep]

    @classmethod
    def of(cls, view: service.PublicView) -> Self:
        """What a tracking code may see."""
        return cls.model_validate(
            {
                **_fields(view, cls),
                "timeline": [{"at": at, "status": status} for at, status in view.timeline],
            }
        )


class FollowUpReceived(Out):
    """The information was added."""

    received_at: Time


def _fields(source: object, model: type[Out]) -> dict[str, Any]:
    return {name: getattr(source, name) for name in model.model_fields if hasattr(source, name)}
