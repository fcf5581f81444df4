"""The ranking alone: distance, kind, skills and freshness, with the reasons it gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from db.units import Candidate, UnitRow
from ops.units.recommend import (
    KIND_PENALTY_KM,
    SKILL_PENALTY_KM,
    STALE_PENALTY_KM,
    need_for,
    rank,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def unit(
    unit_id: str, kind: str = "medic", skills: tuple[str, ...] = (), age_s: float | None = 60
) -> UnitRow:
    at = None if age_s is None else NOW - timedelta(seconds=age_s)
    return UnitRow(
        id=unit_id,
        callsign=unit_id,
        name=unit_id,
        kind=kind,
        skills=skills,
        home_center=None,
        on_duty=True,
        status="available",
        status_reason=None,
        channels=(("mqtt", unit_id),),
        lat=None if at is None else 0.0,
        lon=None if at is None else 0.0,
        position_at=at,
        position_source=None if at is None else "mqtt",
        created_at=NOW,
        updated_at=NOW,
    )


def test_penalties_are_detours_in_kilometres() -> None:
    need = need_for("medical")
    assert need.kinds == ("medic",)
    assert need.skills == ("first_aid",)
    ranked = rank(
        [
            Candidate(unit("fit", skills=("first_aid",)), 9_000),
            Candidate(unit("no-skill"), 1_000),
            Candidate(unit("wrong-kind", kind="fire", skills=("first_aid",)), 2_000),
            Candidate(unit("stale", skills=("first_aid",), age_s=3600), 500),
        ],
        [unit("nowhere", skills=("first_aid",), age_s=None)],
        need,
        now=NOW,
        stale_after=900,
    )
    assert [r.unit.id for r in ranked] == ["fit", "no-skill", "stale", "wrong-kind", "nowhere"]
    assert [r.rank for r in ranked] == [1, 2, 3, 4, 5]
    by_id = {r.unit.id: r for r in ranked}
    assert by_id["fit"].score == 9.0
    assert by_id["no-skill"].score == 1.0 + SKILL_PENALTY_KM
    assert by_id["wrong-kind"].score == 2.0 + KIND_PENALTY_KM
    assert by_id["stale"].score == 0.5 + STALE_PENALTY_KM
    assert by_id["stale"].stale
    assert "position 60 min old: stale (+15 km)" in by_id["stale"].reasons
    assert by_id["fit"].reasons == (
        "9.0 km away",
        "kind medic fits",
        "has first_aid",
        "position 60 s old",
    )
    assert by_id["nowhere"].distance_km is None
    assert by_id["nowhere"].reasons[0] == "no known position: distance unknown"


def test_explicit_kind_and_skills_replace_the_category() -> None:
    need = need_for("medical", kind="logistics", skills=["boat"])
    assert (need.kinds, need.skills) == (("logistics",), ("boat",))
    assert need_for("unknown-category").kinds == ()
    ranked = rank(
        [Candidate(unit("a", kind="fire"), 100)], [], need_for("other"), now=NOW, stale_after=900
    )
    assert ranked[0].score == 0.1  # no kind or skill asked: distance only


def test_ties_break_by_unit_id() -> None:
    ranked = rank(
        [Candidate(unit("b"), 1000), Candidate(unit("a"), 1000)],
        [],
        need_for("medical"),
        now=NOW,
        stale_after=900,
    )
    assert [r.unit.id for r in ranked] == ["a", "b"]
