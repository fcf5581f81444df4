"""The case catalogue: agencies, categories and the routing rules (agency and SLA per priority)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    import asyncpg

    from db.pool import Connection


@dataclass(frozen=True, slots=True)
class AgencyRow:
    """An agency or directorate that owns cases."""

    code: str
    name_id: str
    name_en: str


@dataclass(frozen=True, slots=True)
class CategoryRow:
    """One category of the catalogue."""

    code: str
    label_id: str
    label_en: str
    default_priority: str
    active: bool
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class RuleRow:
    """Who owns a category's cases in a region ('' = everywhere else) and the SLA minutes."""

    category: str
    region: str
    agency: str
    sla_critical: int
    sla_high: int
    sla_medium: int
    sla_low: int
    updated_at: datetime

    def sla_minutes(self, priority: str) -> int:
        """Minutes allowed from opening to resolution at ``priority``."""
        return {
            "critical": self.sla_critical,
            "high": self.sla_high,
            "medium": self.sla_medium,
            "low": self.sla_low,
        }[priority]


async def list_agencies(conn: Connection) -> list[AgencyRow]:
    """Every agency, by code."""
    rows = await conn.fetch("SELECT code, name_id, name_en FROM agencies ORDER BY code")
    return [AgencyRow(**dict(row.items())) for row in rows]


async def agency_exists(conn: Connection, code: str) -> bool:
    """Whether ``code`` names an agency."""
    return bool(await conn.fetchval("SELECT true FROM agencies WHERE code = $1", code))


async def list_categories(conn: Connection, *, active_only: bool = False) -> list[CategoryRow]:
    """The catalogue, by code."""
    rows = await conn.fetch(
        """
        SELECT code, label_id, label_en, default_priority, active, updated_at
        FROM case_categories WHERE ($1::boolean IS FALSE OR active) ORDER BY code
        """,
        active_only,
    )
    return [_category(row) for row in rows]


async def get_category(conn: Connection, code: str) -> CategoryRow | None:
    """One category, or None."""
    row = await conn.fetchrow(
        """
        SELECT code, label_id, label_en, default_priority, active, updated_at
        FROM case_categories WHERE code = $1
        """,
        code,
    )
    return None if row is None else _category(row)


async def upsert_category(
    conn: Connection,
    *,
    code: str,
    label_id: str,
    label_en: str,
    default_priority: str,
    active: bool,
) -> CategoryRow:
    """Create or replace a category (its rules stay)."""
    row = await conn.fetchrow(
        """
        INSERT INTO case_categories (code, label_id, label_en, default_priority, active)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (code) DO UPDATE SET
            label_id = EXCLUDED.label_id, label_en = EXCLUDED.label_en,
            default_priority = EXCLUDED.default_priority, active = EXCLUDED.active,
            updated_at = now()
        RETURNING code, label_id, label_en, default_priority, active, updated_at
        """,
        code,
        label_id,
        label_en,
        default_priority,
        active,
    )
    assert row is not None  # noqa: S101 - RETURNING of an upsert always yields the row
    return _category(row)


_RULE_COLUMNS = "category, region, agency, sla_critical, sla_high, sla_medium, sla_low, updated_at"


async def list_rules(conn: Connection) -> list[RuleRow]:
    """Every routing rule, by category then region."""
    rows = await conn.fetch(f"SELECT {_RULE_COLUMNS} FROM routing_rules ORDER BY category, region")  # noqa: S608 - constant column lists
    return [RuleRow(**dict(row.items())) for row in rows]


async def find_rule(conn: Connection, category: str, region: str | None) -> RuleRow | None:
    """The rule for a category in a region: the region's own (any case), else the default.

    Regions are unique without case, so at most one regional rule matches; the order after
    that only makes the choice deterministic.
    """
    row = await conn.fetchrow(
        f"""
        SELECT {_RULE_COLUMNS} FROM routing_rules
        WHERE category = $1 AND (region = '' OR lower(region) = lower($2))
        ORDER BY region = '', updated_at DESC, region LIMIT 1
        """,  # noqa: S608 - constant column lists
        category,
        region or "",
    )
    return None if row is None else RuleRow(**dict(row.items()))


async def category_and_rule(
    conn: Connection, code: str, region: str | None
) -> tuple[CategoryRow | None, RuleRow | None]:
    """A category and the rule :func:`find_rule` would pick, in one round trip (for intake)."""
    row = await conn.fetchrow(
        """
        SELECT c.code, c.label_id, c.label_en, c.default_priority, c.active, c.updated_at,
               r.region, r.agency, r.sla_critical, r.sla_high, r.sla_medium, r.sla_low,
               r.updated_at AS rule_updated_at
        FROM case_categories AS c
        LEFT JOIN LATERAL (
            SELECT * FROM routing_rules AS r
            WHERE r.category = c.code AND (r.region = '' OR lower(r.region) = lower($2))
            ORDER BY r.region = '', r.updated_at DESC, r.region LIMIT 1
        ) AS r ON true
        WHERE c.code = $1
        """,
        code,
        region or "",
    )
    if row is None:
        return None, None
    category = CategoryRow(
        code=row["code"],
        label_id=row["label_id"],
        label_en=row["label_en"],
        default_priority=row["default_priority"],
        active=row["active"],
        updated_at=row["updated_at"],
    )
    if row["agency"] is None:
        return category, None
    rule = RuleRow(
        category=row["code"],
        region=row["region"],
        agency=row["agency"],
        sla_critical=row["sla_critical"],
        sla_high=row["sla_high"],
        sla_medium=row["sla_medium"],
        sla_low=row["sla_low"],
        updated_at=row["rule_updated_at"],
    )
    return category, rule


async def upsert_rule(
    conn: Connection,
    *,
    category: str,
    region: str,
    agency: str,
    sla: dict[str, int],
) -> RuleRow:
    """Create or replace the rule for (category, region); regions match without case.

    The region is stored trimmed with its inner whitespace collapsed; writing "kota bandung"
    replaces the rule of "Kota Bandung" (taking the new spelling).
    """
    region = " ".join(region.split())
    row = await conn.fetchrow(
        f"""
        INSERT INTO routing_rules
            (category, region, agency, sla_critical, sla_high, sla_medium, sla_low)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (category, lower(region)) DO UPDATE SET
            region = EXCLUDED.region, agency = EXCLUDED.agency,
            sla_critical = EXCLUDED.sla_critical, sla_high = EXCLUDED.sla_high,
            sla_medium = EXCLUDED.sla_medium, sla_low = EXCLUDED.sla_low, updated_at = now()
        RETURNING {_RULE_COLUMNS}
        """,  # noqa: S608 - constant column lists
        category,
        region,
        agency,
        sla["critical"],
        sla["high"],
        sla["medium"],
        sla["low"],
    )
    assert row is not None  # noqa: S101 - RETURNING of an upsert always yields the row
    return RuleRow(**dict(row.items()))


def _category(row: asyncpg.Record) -> CategoryRow:
    return CategoryRow(**dict(row.items()))
