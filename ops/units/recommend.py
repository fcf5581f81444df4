"""Which unit to send: available on-duty units ranked by distance, kind, skills and freshness.

The score is in kilometre-equivalents so each reason reads as a detour: the great-circle
distance, plus a penalty for the wrong kind, for each missing skill and for a stale position.
Candidates are the nearest available units by the spatial index (``CANDIDATES_PER_PICK`` per
place asked for, at least ``MIN_CANDIDATES``) together with the nearest ones of a fitting kind,
so a right unit a little farther off is never missed; units that never reported a position
follow them.
A road-network ETA would replace ``distance_km`` in :func:`rank` (see docs/dispatch.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from db import cases as case_rows
from db import units as unit_rows

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from db.pool import Connection, Pool

KIND_PENALTY_KM: Final = 25.0
SKILL_PENALTY_KM: Final = 10.0
STALE_PENALTY_KM: Final = 15.0
CANDIDATES_PER_PICK: Final = 5
MIN_CANDIDATES: Final = 50
KIND_CANDIDATES_PER_PICK: Final = 2
MAX_LIMIT: Final = 50

#: Case category -> (fitting unit kinds, skills wanted). Categories not listed take any kind.
NEEDS: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "fire": (("fire",), ("firefighting",)),
    "medical": (("medic",), ("first_aid",)),
    "disaster": (("volunteer", "logistics"), ("search_rescue",)),
    "child_protection": (("social_worker", "companion"), ("child_protection",)),
    "elderly": (("social_worker", "companion"), ()),
    "disability": (("companion", "social_worker"), ("disability_care",)),
    "social_aid": (("social_worker",), ()),
    "poverty": (("social_worker",), ()),
    "public_order": (("public_order",), ()),
    "animals": (("volunteer",), ()),
    "infrastructure": (("logistics", "volunteer"), ()),
}


class CaseNotLocated(LookupError):  # noqa: N818 - reads as the condition it reports
    """The case has no coordinates, so there is no distance to rank by."""


class CaseMissing(LookupError):  # noqa: N818 - reads as the condition it reports
    """No case with that id."""


@dataclass(frozen=True, slots=True)
class Need:
    """What the case asks of a unit."""

    kinds: tuple[str, ...]
    skills: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Ranked:
    """One unit in the ranking, with the reasons for its place."""

    rank: int
    unit: unit_rows.UnitRow
    distance_km: float | None
    score: float
    stale: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Recommendation:
    """The ranking for one case."""

    case: case_rows.CaseRow
    need: Need
    ranked: list[Ranked]


def need_for(category: str, kind: str | None = None, skills: Sequence[str] = ()) -> Need:
    """What a case of ``category`` needs; an explicit kind or skills replace the defaults."""
    kinds, wanted = NEEDS.get(category, ((), ()))
    return Need(
        kinds=(kind,) if kind else kinds,
        skills=tuple(skills) if skills else wanted,
    )


def rank(
    candidates: Sequence[unit_rows.Candidate],
    unplaced: Sequence[unit_rows.UnitRow],
    need: Need,
    *,
    now: datetime,
    stale_after: float,
) -> list[Ranked]:
    """Order candidates by score (lowest first); units without a position come last."""
    scored: list[tuple[float, str, Ranked]] = []
    for candidate in candidates:
        unit = candidate.unit
        distance_km = candidate.distance_m / 1000.0
        reasons = [f"{distance_km:.1f} km away"]
        score = distance_km
        score += _kind_penalty(unit, need, reasons)
        score += _skill_penalty(unit, need, reasons)
        age = (now - unit.position_at).total_seconds() if unit.position_at else None
        stale = age is not None and age > stale_after
        if stale and age is not None:
            score += STALE_PENALTY_KM
            reasons.append(f"position {_age(age)} old: stale (+{STALE_PENALTY_KM:g} km)")
        elif age is not None:
            reasons.append(f"position {_age(max(age, 0.0))} old")
        ranked_unit = Ranked(0, unit, distance_km, score, stale, tuple(reasons))
        scored.append((score, unit.id, ranked_unit))
    scored.sort(key=lambda item: (item[0], item[1]))
    ranked = [item[2] for item in scored]
    for unit in unplaced:
        reasons = ["no known position: distance unknown"]
        score = _kind_penalty(unit, need, reasons) + _skill_penalty(unit, need, reasons)
        ranked.append(Ranked(0, unit, None, score, stale=True, reasons=tuple(reasons)))
    return [_numbered(item, index) for index, item in enumerate(ranked, start=1)]


async def recommend(
    pool: Pool,
    case_id: int,
    *,
    now: datetime,
    stale_after: float,
    limit: int = 10,
    kind: str | None = None,
    skills: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> Recommendation:
    """Rank units for a case.

    Raises:
        CaseMissing: no such case.
        CaseNotLocated: the case has no coordinates.
    """
    async with pool.acquire() as conn:
        case = await case_rows.get_case(conn, case_id)
        if case is None:
            raise CaseMissing(f"no case {case_id}")
        if case.lat is None or case.lon is None:
            raise CaseNotLocated(f"case {case.number} has no location to measure from")
        need = need_for(case.category, kind, skills)
        candidates = await candidates_for(
            conn, case.lat, case.lon, need, limit=limit, exclude=exclude
        )
        unplaced = await unit_rows.without_position(conn, limit=limit, exclude=exclude)
    ranked = rank(candidates, unplaced, need, now=now, stale_after=stale_after)
    return Recommendation(case, need, ranked[:limit])


async def candidates_for(
    conn: Connection,
    lat: float,
    lon: float,
    need: Need,
    *,
    limit: int,
    exclude: Sequence[str] = (),
) -> list[unit_rows.Candidate]:
    """The nearest available units, plus the nearest of a fitting kind, without repeats."""
    found = await unit_rows.nearest(
        conn, lat, lon, limit=max(limit * CANDIDATES_PER_PICK, MIN_CANDIDATES), exclude=exclude
    )
    if need.kinds:
        seen = {c.unit.id for c in found}
        fitting = await unit_rows.nearest(
            conn,
            lat,
            lon,
            limit=limit * KIND_CANDIDATES_PER_PICK,
            exclude=exclude,
            kinds=need.kinds,
        )
        found += [c for c in fitting if c.unit.id not in seen]
    return found


def _kind_penalty(unit: unit_rows.UnitRow, need: Need, reasons: list[str]) -> float:
    if not need.kinds:
        return 0.0
    if unit.kind in need.kinds:
        reasons.append(f"kind {unit.kind} fits")
        return 0.0
    reasons.append(f"kind {unit.kind} is not {' or '.join(need.kinds)} (+{KIND_PENALTY_KM:g} km)")
    return KIND_PENALTY_KM


def _skill_penalty(unit: unit_rows.UnitRow, need: Need, reasons: list[str]) -> float:
    missing = [skill for skill in need.skills if skill not in unit.skills]
    had = [skill for skill in need.skills if skill in unit.skills]
    if had:
        reasons.append(f"has {', '.join(had)}")
    if missing:
        penalty = SKILL_PENALTY_KM * len(missing)
        reasons.append(f"lacks {', '.join(missing)} (+{penalty:g} km)")
        return penalty
    return 0.0


def _numbered(item: Ranked, place: int) -> Ranked:
    return dataclasses.replace(item, rank=place)


def _age(seconds: float) -> str:
    if seconds < 120:  # noqa: PLR2004
        return f"{seconds:.0f} s"
    if seconds < 7200:  # noqa: PLR2004
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
