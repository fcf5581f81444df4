"""What the units and dispatch domains refuse, each with what a client needs to fix it."""

from __future__ import annotations

from ops.core.errors import PoskoError


class UnitError(PoskoError):
    """A refused unit or dispatch operation."""


class InvalidUnit(UnitError):  # noqa: N818 - reads as the condition it reports
    """A wrong field in a unit or a dispatch."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class UnitNotFound(UnitError, LookupError):  # noqa: N818
    """No unit with that id."""


class UnitTaken(UnitError):  # noqa: N818
    """The id or callsign of a new unit is already used."""
