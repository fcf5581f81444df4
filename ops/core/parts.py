"""One typed registry of a hub's running parts, so no domain keeps a side table keyed by hub.

A domain declares a ``PartKey[T]`` next to its setup, puts its parts in at setup and others get
them back typed: ``hub.parts.get(DISPATCH)`` is a ``DispatchParts`` to mypy and at run time.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")


class PartKey(Generic[T]):
    """The name of one kind of part; the type parameter is what ``Parts.get`` returns."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"PartKey({self.name!r})"


class PartMissingError(LookupError):
    """A part was asked for before its domain was set up on this hub."""


class Parts:
    """The running parts of one hub, each under its key, put once."""

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts: dict[PartKey[Any], object] = {}

    def put(self, key: PartKey[T], part: T) -> None:
        """Register ``part``; a second registration under the same key is a wiring bug."""
        if key in self._parts:
            raise RuntimeError(f"{key.name} is already set up on this hub")
        self._parts[key] = part

    def get(self, key: PartKey[T]) -> T:
        """The part registered under ``key``."""
        try:
            return cast("T", self._parts[key])
        except KeyError:
            raise PartMissingError(f"{key.name} is not set up on this hub") from None

    def __contains__(self, key: object) -> bool:
        return key in self._parts
