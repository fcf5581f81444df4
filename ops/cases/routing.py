"""Routing at intake: the owner agency and the SLA due time from the catalogue's rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from db import categories
from db.pool import Connection

#: SLA minutes per priority when a category has no rule at all.
DEFAULT_SLA_MINUTES: Final = {"critical": 60, "high": 240, "medium": 1440, "low": 4320}


@dataclass(frozen=True, slots=True)
class Routing:
    """Where a case goes and by when it must be resolved."""

    agency: str | None
    sla_due_at: datetime
    sla_minutes: int


def sla_due(created_at: datetime, rule: categories.RuleRow | None, priority: str) -> datetime:
    """When a case opened at ``created_at`` at ``priority`` must be resolved."""
    minutes = rule.sla_minutes(priority) if rule else DEFAULT_SLA_MINUTES[priority]
    return created_at + timedelta(minutes=minutes)


def from_rule(rule: categories.RuleRow | None, priority: str, created_at: datetime) -> Routing:
    """The routing a rule (or its absence) gives a case opened at ``created_at``."""
    minutes = rule.sla_minutes(priority) if rule else DEFAULT_SLA_MINUTES[priority]
    return Routing(
        agency=rule.agency if rule else None,
        sla_due_at=created_at + timedelta(minutes=minutes),
        sla_minutes=minutes,
    )


async def route(
    conn: Connection, *, category: str, region: str | None, priority: str, created_at: datetime
) -> Routing:
    """Apply the most specific rule for (category, region)."""
    return from_rule(await categories.find_rule(conn, category, region), priority, created_at)
