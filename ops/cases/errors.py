"""What the case domain refuses, each with the field or states a client needs to fix it."""

from __future__ import annotations

from ops.core.errors import PoskoError


class CaseError(PoskoError):
    """A refused case operation."""


class InvalidReport(CaseError):  # noqa: N818 - reads as the condition it reports
    """A report or change with a wrong field (unknown category, coordinates out of range…)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class CaseNotFound(CaseError, LookupError):  # noqa: N818 - reads as the condition it reports
    """No case with that id (or tracking code)."""


class InvalidTransition(CaseError):  # noqa: N818 - reads as the condition it reports
    """The life cycle does not allow going from ``current`` to ``target``."""

    def __init__(self, current: str, target: str, detail: str = "") -> None:
        message = f"a case cannot go from {current} to {target}"
        super().__init__(f"{message}: {detail}" if detail else message)
        self.current = current
        self.target = target


class LinkRefused(CaseError):  # noqa: N818 - reads as the condition it reports
    """A duplicate link that would make a loop or a chain."""
