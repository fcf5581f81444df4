"""The case life cycle: which status may follow which, and what each step needs.

new → triaged → assigned → in_progress → resolved → closed, plus rejected (with a reason) and
reopened (with a reason). The owner agency bounces a case back to triaged with a reason, never
to a dead end; a case may also be resolved straight from assigned.
"""

from __future__ import annotations

from typing import Final

from ops.cases.errors import InvalidTransition

ALLOWED: Final[dict[str, frozenset[str]]] = {
    "new": frozenset({"triaged", "assigned", "rejected"}),
    "triaged": frozenset({"assigned", "rejected"}),
    "assigned": frozenset({"in_progress", "resolved", "triaged"}),
    "in_progress": frozenset({"resolved", "triaged"}),
    "resolved": frozenset({"closed", "reopened"}),
    "closed": frozenset({"reopened"}),
    "rejected": frozenset({"closed", "reopened"}),
    "reopened": frozenset({"triaged", "assigned", "rejected"}),
}

#: Agency-owned statuses: going back to triaged from these is a bounce.
_OWNED: Final = frozenset({"assigned", "in_progress"})


def is_bounce(current: str, target: str) -> bool:
    """Whether the step hands the case back from its owner agency to triage."""
    return current in _OWNED and target == "triaged"


def check_transition(current: str, target: str, *, reason: str | None, agency: str | None) -> None:
    """Refuse a step the life cycle does not allow, or one missing what it needs.

    Raises:
        InvalidTransition: naming both states and what is missing.
    """
    if target not in ALLOWED:
        raise InvalidTransition(current, target, "unknown status")
    if target not in ALLOWED.get(current, frozenset()):
        allowed = ", ".join(sorted(ALLOWED.get(current, frozenset()))) or "nothing"
        raise InvalidTransition(current, target, f"from {current} only {allowed} may follow")
    needs_reason = target in {"rejected", "reopened"} or is_bounce(current, target)
    if needs_reason and not (reason and reason.strip()):
        raise InvalidTransition(current, target, "a reason is required")
    if target == "assigned" and not agency:
        raise InvalidTransition(current, target, "an agency is required")
